//! Hunting: indicators → the observed values they cover, from the index alone. Each
//! indicator's key range ([`super::key::probe`]) gives candidates; each candidate is then
//! looked up by the correlator as a live observation would be, so the snapshot's matching
//! semantics (label boundaries, exact-only domains, URL path boundaries, allowlists,
//! confidence and severity filters) decide, not a second implementation of them.

use super::key::{field_names, probe, Observed, Probe};
use super::segment::{Segment, Stats};
use super::store::{day_of, RetroStore};
use super::RetroError;
use crate::alert::{build_alert, Alert, AlertContext};
use crate::correlate::{Correlator, FieldHit, Scratch};
use ingest::observation::format_timestamp;
use matcher::Snapshot;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// One indicator seen in the index: a value it covers, where and how often.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// The hit as the correlator made it (field, observed value, indicator).
    pub hit: FieldHit,
    /// The observed value.
    pub observed: Observed,
    /// First and last time, count, fields and clients.
    pub stats: Stats,
    /// The day partition (its start), when sightings are per partition (retro alerts).
    pub partition: Option<i64>,
}

/// What to hunt over.
#[derive(Debug, Clone, Copy)]
pub struct HuntScope {
    /// Partitions ending at or before this time (Unix seconds) are not searched.
    pub since: i64,
    /// One sighting per day partition (retro alerts) instead of one per value (hunt).
    pub per_partition: bool,
    /// Clients kept when stats are merged.
    pub clients: usize,
}

/// From how many indicators [`hunt`] intersects their probes with each segment in one pass
/// instead of looking each one up in each segment.
pub const MERGE_FROM: usize = 256;

/// What an indicator's candidates are, keyed by (observed key, day partition).
type Found = BTreeMap<(Vec<u8>, Option<i64>), Stats>;

/// Every sighting of the indicators `ids` of `snapshot` in `store`, in id order, then
/// observed-key order, then partition. Allowlist entries and indicators the correlator's
/// filter refuses give none; so do patterns (the index holds no free text). Up to
/// [`MERGE_FROM`] indicators each probe is looked up in each segment; from there on, the
/// probes become one FST walked together with each segment's (a retro check of 1M
/// indicators reads each segment once). Both give the same candidates.
pub fn hunt(
    store: &RetroStore,
    snapshot: &Snapshot,
    correlator: &Correlator<'_>,
    ids: impl IntoIterator<Item = u32>,
    scope: HuntScope,
) -> Vec<Sighting> {
    let ids: Vec<u32> = ids.into_iter().collect();
    let merged = ids.len() >= MERGE_FROM;
    hunt_by(store, snapshot, correlator, &ids, scope, merged)
}

/// [`hunt`], choosing the way candidates are found.
fn hunt_by(
    store: &RetroStore,
    snapshot: &Snapshot,
    correlator: &Correlator<'_>,
    ids: &[u32],
    scope: HuntScope,
    merged: bool,
) -> Vec<Sighting> {
    let segments: Vec<&Segment> = store
        .segments()
        .iter()
        .filter(|s| s.end() > scope.since)
        .collect();
    let mut damaged = vec![false; segments.len()];
    let mut probes: HashMap<u32, Probe> = HashMap::new();
    for &id in ids {
        let Some(ind) = snapshot.try_indicator(id) else {
            continue;
        };
        if ind.allowlist {
            continue;
        }
        if let Some(p) = probe(&ind) {
            probes.insert(id, p);
        }
    }
    let mut found: HashMap<u32, Found> = HashMap::new();
    if merged {
        let each = intersect(&segments, &mut damaged, &probes, scope, &mut found);
        for id in each {
            if let Some(p) = probes.get(&id) {
                let f = lookups(&segments, &mut damaged, p, scope);
                found.insert(id, f);
            }
        }
    } else {
        for &id in ids {
            if let Some(p) = probes.get(&id) {
                let f = lookups(&segments, &mut damaged, p, scope);
                found.insert(id, f);
            }
        }
    }
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    let mut hits = Vec::new();
    for &id in ids {
        let Some(candidates) = found.get_mut(&id) else {
            continue;
        };
        // One correlator check per observed value, shared by its partitions.
        let mut judged: HashMap<Vec<u8>, Option<(Observed, FieldHit)>> = HashMap::new();
        for ((key, part), stats) in std::mem::take(candidates) {
            let verdict = judged.entry(key.clone()).or_insert_with(|| {
                let observed = Observed::from_key(&key)?;
                let field = field_names(stats.fields).first().copied().unwrap_or("");
                let obs = observed.observation(field);
                hits.clear();
                correlator.correlate_with(&obs, true, &mut scratch, &mut hits);
                let hit = hits.iter().find(|h| h.hit.id == id)?.clone();
                Some((observed, hit))
            });
            if let Some((observed, hit)) = verdict {
                out.push(Sighting {
                    hit: hit.clone(),
                    observed: observed.clone(),
                    stats,
                    partition: part,
                });
            }
        }
    }
    out
}

/// Add one candidate of an indicator: per partition (retro alerts) or merged over them.
fn add(found: &mut Found, k: &[u8], s: Stats, start: i64, scope: HuntScope) {
    let part = scope.per_partition.then(|| day_of(start));
    match found.get_mut(&(k.to_vec(), part)) {
        Some(m) => m.merge(&s, scope.clients),
        None => {
            found.insert((k.to_vec(), part), s);
        }
    }
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is reading a segment under [`hunt`]'s guard, where a panic is caught
/// and said as a warning: a panic hook (`trawl hunt`'s) keeps quiet about those.
pub fn reading_guarded() -> bool {
    GUARDED.with(std::cell::Cell::get)
}

/// Run `f` on a segment unless it is known damaged. A segment opened for structure only
/// ([`super::segment::Check::Structure`]: checked whole before, [`super::verified`]) but
/// damaged since is found out as it is read: a version 3 block that does not decode (its own
/// CRC-32, bounds) is an error; the FST reader of versions 1-2 can panic instead (never
/// loop: see `Check::Structure`), which is caught here. Either way that segment is then
/// skipped, the rest answers, and it is dropped from the record of verified segments so that
/// the next open checks it whole and sets it aside.
fn guarded(seg: &Segment, damaged: &mut bool, f: impl FnOnce() -> Result<(), RetroError>) {
    if *damaged {
        return;
    }
    let result = if seg.is_blocked() {
        f().map_err(|e| e.to_string())
    } else {
        GUARDED.with(|g| g.set(true));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        GUARDED.with(|g| g.set(false));
        match caught {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "{}: damaged segment (its FST could not be read)",
                seg.path.display()
            )),
        }
    };
    if let Err(e) = result {
        *damaged = true;
        tracing::warn!("retro index: {e}; skipped, the rest still answers");
        if let (Some(dir), Some(name)) = (seg.path.parent(), seg.path.file_name()) {
            super::verified::forget(dir, &name.to_string_lossy());
        }
    }
}

/// The candidates of one probe, looked up in each segment.
fn lookups(segments: &[&Segment], damaged: &mut [bool], p: &Probe, scope: HuntScope) -> Found {
    let mut found = Found::new();
    for (seg, bad) in segments.iter().zip(damaged.iter_mut()) {
        let f = &mut found;
        guarded(seg, bad, || match p {
            Probe::Exact(k) => {
                if let Some(s) = seg.get(k)? {
                    add(f, k, s, seg.start, scope);
                }
                Ok(())
            }
            Probe::Prefix(pre) => seg.range(pre, None, |k, s| {
                let inside = k.starts_with(pre);
                if inside {
                    add(f, k, s, seg.start, scope);
                }
                inside
            }),
            Probe::Range(lo, hi) => seg.range(lo, Some(hi), |k, s| {
                add(f, k, s, seg.start, scope);
                true
            }),
        });
    }
    found
}

/// The key prefixes whose keys are exactly a probe's: its key (an exact key counts only
/// when the whole key is met), or for an address range the one or more prefixes a CIDR's
/// range is; `None` for a range of another shape (looked up alone).
fn prefixes(p: &Probe) -> Option<Vec<Vec<u8>>> {
    match p {
        Probe::Exact(k) | Probe::Prefix(k) => Some(vec![k.clone()]),
        Probe::Range(lo, hi) => {
            if lo.len() != hi.len() || lo > hi {
                return None;
            }
            let c = lo.iter().zip(hi).take_while(|(a, b)| a == b).count();
            let whole = |from: usize| {
                lo[from..].iter().all(|&b| b == 0) && hi[from..].iter().all(|&b| b == 0xff)
            };
            if c == lo.len() || whole(c) {
                Some(vec![lo[..c].to_vec()])
            } else if whole(c + 1) {
                Some(
                    (lo[c]..=hi[c])
                        .map(|b| {
                            let mut k = lo[..c].to_vec();
                            k.push(b);
                            k
                        })
                        .collect(),
                )
            } else {
                None
            }
        }
    }
}

/// The probes as one FST of key prefixes, each prefix → its group of (indicator, exact): how
/// a version 1-2 segment's FST is walked with them.
struct ProbeSet<'a> {
    fst: fst::raw::Fst<Vec<u8>>,
    groups: &'a [Vec<(u32, bool)>],
}

/// Where the walk of a segment's key is in the probe FST.
#[derive(Clone, Copy)]
enum At {
    /// No probe prefix can come.
    Dead,
    /// At this node of the probe FST.
    Node(fst::raw::CompiledAddr),
    /// Past a whole prefix: every key from here on is a candidate.
    Under,
}

/// The automaton accepting the keys some probe prefix starts.
struct UnderAny<'a>(&'a fst::raw::Fst<Vec<u8>>);

impl fst::Automaton for UnderAny<'_> {
    type State = At;

    fn start(&self) -> At {
        At::Node(self.0.root().addr())
    }

    fn is_match(&self, state: &At) -> bool {
        match *state {
            At::Under => true,
            At::Node(a) => self.0.node(a).is_final(),
            At::Dead => false,
        }
    }

    fn can_match(&self, state: &At) -> bool {
        !matches!(state, At::Dead)
    }

    fn will_always_match(&self, state: &At) -> bool {
        matches!(state, At::Under)
    }

    fn accept(&self, state: &At, byte: u8) -> At {
        match *state {
            At::Node(a) => {
                let node = self.0.node(a);
                if node.is_final() {
                    return At::Under;
                }
                match node.find_input(byte) {
                    Some(i) => At::Node(node.transition(i).addr),
                    None => At::Dead,
                }
            }
            other => other,
        }
    }
}

impl ProbeSet<'_> {
    /// The groups of every probe prefix `key` starts with (an exact probe's only when it
    /// is the whole key).
    fn covering(&self, key: &[u8], mut f: impl FnMut(u32)) {
        let mut node = self.fst.root();
        let mut out = fst::raw::Output::zero();
        for i in 0..=key.len() {
            if node.is_final() {
                let g = out.cat(node.final_output()).value();
                for &(id, exact) in self.groups.get(g as usize).into_iter().flatten() {
                    if !exact || i == key.len() {
                        f(id);
                    }
                }
            }
            let Some(&b) = key.get(i) else { break };
            let Some(t) = node.find_input(b).map(|t| node.transition(t)) else {
                break;
            };
            out = out.cat(t.out);
            node = self.fst.node(t.addr);
        }
    }
}

/// The candidates of every probe, each segment read once: a version 3 segment's blocks
/// merged with the probes' sorted prefixes in one forward pass, a version 1-2 segment's FST
/// walked together with an FST of those prefixes. Returns the indicators whose probe has no
/// prefix form (looked up one by one).
fn intersect(
    segments: &[&Segment],
    damaged: &mut [bool],
    probes: &HashMap<u32, Probe>,
    scope: HuntScope,
    found: &mut HashMap<u32, Found>,
) -> Vec<u32> {
    let mut each = Vec::new();
    let mut pairs: Vec<(Vec<u8>, u32, bool)> = Vec::with_capacity(probes.len());
    for (&id, p) in probes {
        match prefixes(p) {
            Some(ks) => {
                let exact = matches!(p, Probe::Exact(_));
                pairs.extend(ks.into_iter().map(|k| (k, id, exact)));
            }
            None => each.push(id),
        }
    }
    pairs.sort_unstable();
    // The distinct prefixes, sorted, each with its group of (indicator, exact).
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut groups: Vec<Vec<(u32, bool)>> = Vec::new();
    for (k, id, exact) in pairs {
        match (keys.last(), groups.last_mut()) {
            (Some(last), Some(g)) if *last == k => g.push((id, exact)),
            _ => {
                keys.push(k);
                groups.push(vec![(id, exact)]);
            }
        }
    }
    // Each key under a prefix, for that prefix's indicators.
    let by_prefixes = |seg: &Segment, found: &mut HashMap<u32, Found>| {
        seg.under_prefixes(&keys, |i, k, s| {
            let (Some(p), Some(g)) = (keys.get(i), groups.get(i)) else {
                return;
            };
            for &(id, exact) in g {
                if !exact || k == &p[..] {
                    add(found.entry(id).or_default(), k, s.clone(), seg.start, scope);
                }
            }
        })
    };
    let mut set: Option<Option<ProbeSet>> = None;
    for (seg, bad) in segments.iter().zip(damaged.iter_mut()) {
        if !seg.is_blocked() {
            // An FST built in memory from sorted, distinct keys is not expected to fail; if
            // it did, such a segment is read prefix by prefix (below).
            if let Some(set) = set.get_or_insert_with(|| probe_set(&keys, &groups)) {
                guarded(seg, bad, || {
                    seg.search(UnderAny(&set.fst), |k, s| {
                        set.covering(k, |id| {
                            add(found.entry(id).or_default(), k, s.clone(), seg.start, scope);
                        });
                    });
                    Ok(())
                });
                continue;
            }
        }
        guarded(seg, bad, || by_prefixes(seg, found));
    }
    each
}

/// The FST of the probes' sorted, distinct prefixes, each → its group's index.
fn probe_set<'a>(keys: &[Vec<u8>], groups: &'a [Vec<(u32, bool)>]) -> Option<ProbeSet<'a>> {
    let mut builder = fst::MapBuilder::memory();
    for (i, k) in keys.iter().enumerate() {
        builder.insert(k, i as u64).ok()?;
    }
    let fst = builder.into_inner().and_then(fst::raw::Fst::new).ok()?;
    Some(ProbeSet { fst, groups })
}

impl Sighting {
    /// The alert document of this sighting: what a live alert on the observed value carries
    /// (`threat.indicator.*`, `trawl.matched.*`, ...), with `@timestamp` its last time, plus
    /// `trawl.retro: true`, `event.start`/`event.end` and `trawl.observed.*`.
    pub fn alert(&self, ctx: &AlertContext, now_ns: i64) -> Alert {
        let field = self.hit.field;
        let mut obs = self.observed.observation(field);
        obs.timestamp_ns = Some(self.stats.last.saturating_mul(1_000_000_000));
        let mut alert = build_alert(ctx, &obs, &self.hit, None, now_ns);
        let first = format_timestamp(self.stats.first.saturating_mul(1_000_000_000));
        let last = format_timestamp(self.stats.last.saturating_mul(1_000_000_000));
        alert.insert_path("event.start", first.clone().into());
        alert.insert_path("event.end", last.clone().into());
        alert.insert_path("trawl.retro", true.into());
        let mut o = serde_json::Map::new();
        o.insert("value".into(), self.observed.text().into());
        o.insert("first_seen".into(), first.into());
        o.insert("last_seen".into(), last.into());
        o.insert("count".into(), self.stats.count.into());
        o.insert("fields".into(), Value::from(field_names(self.stats.fields)));
        if !self.stats.clients.is_empty() {
            let clients: Vec<String> = self.stats.clients.iter().map(|c| c.to_string()).collect();
            o.insert("clients".into(), clients.into());
        }
        if let Some(p) = self.partition {
            o.insert(
                "partition".into(),
                format_timestamp(p.saturating_mul(1_000_000_000)).into(),
            );
        }
        alert.insert_path("trawl.observed", Value::Object(o));
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::HitFilter;
    use crate::retro::key::{field_bit, key_of};
    use crate::retro::segment::tests::v2_bytes;
    use crate::retro::segment::{file_name, Span};
    use crate::retro::store::Partitions;
    use crate::retro::DAY;
    use ingest::MatchValue;
    use matcher::{Indicator, IndicatorType, SnapshotBuilder};

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
            of[self.below(of.len() as u64) as usize]
        }
    }

    const LABELS: &[&str] = &["a", "b", "ab", "www", "c2"];
    const ZONES: &[&str] = &["x.example", "y.example", "example", "x.examplex"];

    fn name(r: &mut Rng) -> String {
        match r.below(3) {
            0 => r.pick(ZONES).to_string(),
            1 => format!("{}.{}", r.pick(LABELS), r.pick(ZONES)),
            _ => format!("{}.{}.{}", r.pick(LABELS), r.pick(LABELS), r.pick(ZONES)),
        }
    }

    fn addr(r: &mut Rng) -> String {
        format!("10.{}.{}.{}", r.below(2), r.below(4) * 64, r.below(8))
    }

    fn url(r: &mut Rng) -> String {
        let mut u = format!("http://{}/", name(r));
        for _ in 0..r.below(3) {
            u.push_str(r.pick(&["p", "q", "pq", "p/", "x?y=1"]));
        }
        u
    }

    fn hash(r: &mut Rng) -> String {
        [
            "d41d8cd98f00b204e9800998ecf8427e",
            "d41d8cd98f00b204e9800998ecf8427f",
        ][r.below(2) as usize]
            .to_string()
    }

    /// A day segment checked whole once, then damaged in place with its length, time and
    /// inode kept (what the record of verified segments cannot see): for every byte of its
    /// index and blocks changed, a hunt over the structure-checked index never panics (the
    /// blocked format's reads are not guarded by `catch_unwind`: a panic fails this test) or
    /// hangs, the intact day answers as before, and a read that failed drops the segment from
    /// the record, so the next open checks it whole and sets it aside.
    #[test]
    fn a_segment_damaged_after_verification_never_brings_the_hunt_down() {
        use crate::retro::segment::Check;
        use crate::retro::verified::{Verified, FILE};
        let dir = tempfile::tempdir().unwrap();
        let mut store = RetroStore::open(dir.path()).unwrap();
        for day in 1..=2i64 {
            let mut values: BTreeMap<Vec<u8>, Stats> = BTreeMap::new();
            for i in 0..40 {
                for name in [format!("a{i}.c2.example"), format!("b{i}.other.example")] {
                    let k = key_of(MatchValue::Domain(&name)).unwrap();
                    values.insert(k, Stats::one(day * DAY + i, 1, None, 0));
                }
            }
            let mut p = Partitions::new();
            p.insert(day * DAY, values.into_iter().collect());
            store.write_days(p, 0).unwrap();
        }
        drop(store);
        let snap = SnapshotBuilder::from_indicators(vec![Indicator::new(
            "c2.example",
            IndicatorType::Fqdn,
            "t",
        )])
        .build()
        .unwrap();
        let correlator = Correlator::new(&snap, HitFilter::default());
        let scope = HuntScope {
            since: 0,
            per_partition: true,
            clients: 0,
        };
        let day_one = |st: &RetroStore| -> Vec<(String, u64)> {
            hunt(st, &snap, &correlator, [0], scope)
                .into_iter()
                .filter(|s| s.partition == Some(DAY))
                .map(|s| (s.observed.text(), s.stats.count))
                .collect()
        };
        let st = RetroStore::open_read_only(dir.path(), Check::Structure).unwrap();
        let want = day_one(&st);
        assert_eq!(want.len(), 40);
        let victim = st.segments()[1].path.clone();
        let id = st.segments()[1].file_id.unwrap();
        let name = victim.file_name().unwrap().to_string_lossy().into_owned();
        assert!(Verified::load(dir.path()).holds(&name, &id));
        drop(st);
        let record = std::fs::read(dir.path().join(FILE)).unwrap();
        let good = std::fs::read(&victim).unwrap();
        let mtime = std::fs::metadata(&victim).unwrap().modified().unwrap();
        assert_eq!(good[4], 3, "a version 3 segment");
        let (mut failed, mut set_aside) = (0, 0);
        for i in 48..good.len() - 4 {
            for flip in [0x01u8, 0x40, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                // In place: the same inode, length and time as when it was checked.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&victim)
                    .unwrap();
                std::io::Write::write_all(&mut &f, &bad).unwrap();
                f.set_modified(mtime).unwrap();
                drop(f);
                std::fs::write(dir.path().join(FILE), &record).unwrap();
                let st = RetroStore::open_read_only(dir.path(), Check::Structure).unwrap();
                if st.segments().len() == 2 {
                    assert_eq!(day_one(&st), want, "byte {i} ^ {flip:#x}");
                    if !Verified::load(dir.path()).holds(&name, &id) {
                        failed += 1;
                        let again =
                            RetroStore::open_read_only(dir.path(), Check::Structure).unwrap();
                        assert_eq!(again.set_aside.len(), 1, "byte {i} ^ {flip:#x}");
                        assert_eq!(day_one(&again), want);
                        set_aside += 1;
                    }
                } else {
                    // The header's view of the index no longer holds: set aside at open.
                    assert_eq!(st.set_aside.len(), 1, "byte {i} ^ {flip:#x}");
                    assert_eq!(day_one(&st), want);
                    set_aside += 1;
                }
                let damaged = victim.with_extension("seg.damaged");
                if damaged.exists() {
                    std::fs::rename(&damaged, &victim).unwrap();
                }
            }
        }
        eprintln!(
            "{} bytes x 3: {failed} reads failed, {set_aside} set aside",
            good.len() - 52
        );
        assert!(failed > 0 && set_aside >= failed);
    }

    /// The intersected probes find exactly what each probe looked up alone finds: every
    /// indicator kind (domains, CIDRs of every length, URLs, hashes), per partition and
    /// merged, over a version 2 day (FST walk) and version 3 days (block merge).
    #[test]
    fn intersecting_the_probes_finds_what_looking_each_up_finds() {
        for case in 0..12u64 {
            let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ (case + 1));
            let dir = tempfile::tempdir().unwrap();
            let mut store = RetroStore::open(dir.path()).unwrap();
            for day in 1..=3i64 {
                let mut values: BTreeMap<Vec<u8>, Stats> = BTreeMap::new();
                for i in 0..150 {
                    let (k, field) = match r.below(4) {
                        0 => (
                            key_of(MatchValue::Domain(&name(&mut r))),
                            "dns.question.name",
                        ),
                        1 => (
                            key_of(MatchValue::Address(addr(&mut r).parse().unwrap(), None)),
                            "destination.ip",
                        ),
                        2 => (key_of(MatchValue::Url(&url(&mut r))), "url.full"),
                        _ => (key_of(MatchValue::Hash(&hash(&mut r))), "file.hash.md5"),
                    };
                    let s = Stats::one(day * DAY + i, field_bit(field), None, 0);
                    values.entry(k.unwrap()).or_insert(s).count += 1;
                }
                let values: Vec<(Vec<u8>, Stats)> = values.into_iter().collect();
                if day == 1 {
                    // A day of the FST format (version 2), still read: walked as an FST.
                    let b = v2_bytes(Span::Day, DAY, 100, &values);
                    std::fs::write(dir.path().join(file_name(Span::Day, DAY, 100)), b).unwrap();
                    continue;
                }
                let mut p = Partitions::new();
                p.insert(day * DAY, values);
                store.write_days(p, 0).unwrap();
            }
            let store = RetroStore::open(dir.path()).unwrap();
            let versions: Vec<u8> = store.segments().iter().map(Segment::version).collect();
            assert_eq!(versions, [2, 3, 3], "case {case}");
            let mut inds = Vec::new();
            for _ in 0..60 {
                inds.push(match r.below(4) {
                    0 => Indicator::new(name(&mut r), IndicatorType::Fqdn, "t"),
                    1 => {
                        let len = [8, 16, 18, 24, 26, 30, 32][r.below(7) as usize];
                        Indicator::new(format!("{}/{len}", addr(&mut r)), IndicatorType::Ipv4, "t")
                    }
                    2 => Indicator::new(url(&mut r), IndicatorType::Url, "t"),
                    _ => Indicator::new(hash(&mut r), IndicatorType::Md5, "t"),
                });
            }
            let snap = match SnapshotBuilder::from_indicators(inds).build() {
                Ok(s) => s,
                Err(e) => panic!("case {case}: {e}"),
            };
            let correlator = Correlator::new(&snap, HitFilter::default());
            let ids: Vec<u32> = (0..snap.len() as u32).collect();
            for per_partition in [false, true] {
                let scope = HuntScope {
                    since: 0,
                    per_partition,
                    clients: 0,
                };
                let view = |merged| -> Vec<(u32, String, Option<i64>, u64, i64, i64)> {
                    hunt_by(&store, &snap, &correlator, &ids, scope, merged)
                        .into_iter()
                        .map(|s| {
                            (
                                s.hit.hit.id,
                                s.observed.text(),
                                s.partition,
                                s.stats.count,
                                s.stats.first,
                                s.stats.last,
                            )
                        })
                        .collect()
                };
                let (each, merged) = (view(false), view(true));
                assert!(!each.is_empty(), "case {case}: the generators overlap");
                assert_eq!(each, merged, "case {case}, per partition {per_partition}");
            }
        }
    }
}
