//! Compiling indicators into the snapshot files (in memory).

use super::early::Early;
use super::format::{zigzag, DomainIdx, ExternalIds, IpTables, Rows, Strings, Table};
use super::{SnapshotError, SnapshotMeta};
use crate::fxhash::FxBuild;
use crate::model::{order_prefix, Indicator, IndicatorType, Severity, Tlp};
use crate::normalize::{parse_cidr, prefix_range};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// `TRAWL_COMPILE_TIMING=1`: print when each piece of the compile ends (stderr), to see
/// where the time goes and whether a core idles.
struct Timing(Option<std::time::Instant>);

impl Timing {
    fn new() -> Self {
        Timing(std::env::var_os("TRAWL_COMPILE_TIMING").map(|_| std::time::Instant::now()))
    }

    fn at(&self, what: &str) {
        if let Some(t) = self.0 {
            eprintln!("compile: {what:<24} at {:7.3} s", t.elapsed().as_secs_f64());
        }
    }
}

pub(super) fn build_err(what: &'static str) -> impl FnOnce(fst::Error) -> SnapshotError {
    move |e| SnapshotError::Build {
        what,
        reason: e.to_string(),
    }
}

/// What the compiler keeps of each indicator (ARCHITECTURE.md §4, "bounded memory"): its
/// type and value, the two flags the indexes need, and its metadata interned into a
/// profile and a reference id as it arrives. About the value's bytes plus 14 bytes per
/// indicator, where an [`Indicator`] is about 250 before its strings.
#[derive(Default)]
pub(crate) struct Lean {
    arena: Vec<u8>,
    /// End of each value in `arena`.
    ends: Vec<u32>,
    /// Type byte, with [`EXACT`] and [`QUIET`].
    kinds: Vec<u8>,
    /// (profile id, reference: 0 or 1 + string id) per item.
    rows: Vec<[u32; 2]>,
    /// (item, string id) of the few items with an external id, in item order.
    external_ids: Vec<(u32, u32)>,
    interner: Interner,
}

/// Domains only: exact-only (`domains.idx`).
const EXACT: u8 = 0x40;
/// An allowlist entry or an allowlisted indicator (the prefilter's quiet bits).
const QUIET: u8 = 0x80;

impl Lean {
    /// Add one tidied indicator (the next item index).
    pub(crate) fn push(&mut self, it: &Indicator) -> Result<(), SnapshotError> {
        let too_big = || SnapshotError::Build {
            what: "snapshot",
            reason: "too many indicators or value bytes (ids are 30 bits, values 4 GiB)".into(),
        };
        if self.ends.len() >= 0x3fff_ffff {
            return Err(too_big());
        }
        self.arena.extend_from_slice(it.value.as_bytes());
        self.ends
            .push(u32::try_from(self.arena.len()).map_err(|_| too_big())?);
        let mut kind = super::type_byte(it.itype);
        if it.exact_only {
            kind |= EXACT;
        }
        if it.allowlist || it.allowlisted_by.is_some() {
            kind |= QUIET;
        }
        self.kinds.push(kind);
        let prof = profile(it, &mut self.interner);
        let pid = self.interner.profile(prof);
        let reference = self.interner.opt(&it.reference) as u32;
        if let Some(e) = &it.external_id {
            let item = self.rows.len() as u32;
            self.external_ids.push((item, self.interner.string(e)));
        }
        self.rows.push([pid, reference]);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn value(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    fn type_byte(&self, i: u32) -> u8 {
        self.kinds[i as usize] & 0x3f
    }

    fn exact(&self, i: u32) -> bool {
        self.kinds[i as usize] & EXACT != 0
    }

    fn quiet(&self, i: u32) -> bool {
        self.kinds[i as usize] & QUIET != 0
    }

    /// The value as text (pushed from a `String`; a damaged one reads as empty).
    fn text(&self, i: u32) -> &str {
        std::str::from_utf8(self.value(i)).unwrap_or("")
    }
}

/// Compile merged, tidied indicators into `(file name, bytes)` for every snapshot file.
/// `sorted`: the caller knows `items` are sorted by (itype, value), so the order checks
/// (a pass over every value) are skipped.
pub(crate) fn compile(
    items: Vec<Indicator>,
    sorted: bool,
    version: u64,
    extra: serde_json::Value,
) -> Result<Vec<(&'static str, Vec<u8>)>, SnapshotError> {
    let mut lean = Lean::default();
    for it in &items {
        lean.push(it)?;
    }
    // Freeing a million indicators' strings takes a good part of a second: a thread does
    // it while the compile goes on (if it cannot start, they are freed here).
    let _ = std::thread::Builder::new()
        .name("trawl-free".into())
        .spawn(move || drop(items));
    compile_lean(lean, sorted, None, version, extra)
}

/// [`compile`] of what [`Lean`] kept.
///
/// On rayon's pool: the domains are sorted into the two `domains*.fst` shards while the
/// rest is sorted into `values.fst` and the IP tables; then the metadata is encoded.
/// `early`: the FSTs a [`super::StreamBuilder`] built while the items arrived (in id
/// order), which are not built again.
pub(crate) fn compile_lean(
    lean: Lean,
    sorted: bool,
    early: Option<Early>,
    version: u64,
    extra: serde_json::Value,
) -> Result<Vec<(&'static str, Vec<u8>)>, SnapshotError> {
    let tm = Timing::new();
    let tm = &tm;
    // Id order: type order, then value bytes (domains: label-reversed key bytes, the FST's
    // order); sort indices per type, not the records.
    let mut by_type: Vec<Vec<u32>> = vec![Vec::new(); 13];
    for i in 0..lean.len() as u32 {
        by_type[usize::from(lean.type_byte(i)).min(12)].push(i);
    }
    let mut type_counts = [0u32; 13];
    for (c, v) in type_counts.iter_mut().zip(&by_type) {
        *c = v.len() as u32;
    }
    let fqdn_b = super::type_byte(IndicatorType::Fqdn) as usize;
    let doms = std::mem::take(&mut by_type[fqdn_b]);
    let items_ref = &lean;
    let (dom_part, other_part) = match early {
        Some(early) => {
            // Built beside the pushes: the domains came in key order.
            let (s0, s1, idx) = early.domains;
            let ip = ip_tables(items_ref, &by_type);
            tm.at("ip.bin");
            (Ok((doms, s0, s1, idx)), Ok((early.values, ip)))
        }
        None => compile_fsts(items_ref, sorted, &mut by_type, doms, &type_counts, tm),
    };
    tm.at("join");
    let (doms, domains_fst, domains1_fst, dom_idx) = dom_part?;
    let (values_fst, ip) = other_part?;
    by_type[fqdn_b] = doms;
    let Lean {
        arena,
        ends,
        kinds,
        rows: by_item,
        external_ids,
        mut interner,
    } = lean;
    // Most used profiles get the smallest ids (shortest varints).
    let by_item = interner.renumber_profiles_by_use(by_item);
    tm.at("metadata interned");
    let lean = Lean {
        arena,
        ends,
        kinds,
        rows: Vec::new(),
        external_ids: Vec::new(),
        interner: Interner::default(),
    };

    // Metadata: records (profile id, reference) in id order; profiles hold the rest. The
    // prefilter (hashes of a million names) is built beside it.
    let (prefilter_file, rec_file) = rayon::join(
        || {
            super::prefilter::write(by_type.iter().flatten().map(|&i| {
                let host = match IndicatorType::ALL.get(usize::from(lean.type_byte(i))) {
                    Some(IndicatorType::Fqdn) => Some(lean.text(i)),
                    Some(IndicatorType::Url) => crate::text::url_host(lean.text(i)),
                    _ => None,
                };
                (lean.quiet(i), host)
            }))
        },
        || {
            let rows: Vec<[u64; 2]> = by_type
                .iter()
                .flatten()
                .map(|&i| by_item[i as usize].map(u64::from))
                .collect();
            Rows::<2>::write(*b"TRWR", &type_counts, &rows, false)
        },
    );
    drop(by_item);
    let ids_file = external_ids_file(&by_type, &external_ids);
    drop(external_ids);
    let prof_file = Rows::<NPROFILE>::write(*b"TRWP", &[], &interner.profiles, true);
    let strings: Vec<&str> = interner.strings.iter().map(|s| &**s).collect();
    let strings_file = Strings::write(&strings);
    drop(strings);
    let sets_file = Table::write(*b"TRWT", interner.sets.iter().map(|s| s.as_slice()));
    let mut counts = std::collections::BTreeMap::new();
    for (i, c) in type_counts.iter().enumerate() {
        if *c > 0 {
            counts.insert(IndicatorType::ALL[i].as_str().to_string(), u64::from(*c));
        }
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let meta = SnapshotMeta {
        version,
        created,
        counts,
        extra,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| SnapshotError::Build {
        what: "meta.json",
        reason: e.to_string(),
    })?;
    drop(interner);
    drop(lean);
    tm.at("metadata written");
    Ok(vec![
        ("meta.json", meta_json),
        ("domains.fst", domains_fst),
        ("domains.1.fst", domains1_fst),
        ("domains.idx", dom_idx),
        ("values.fst", values_fst),
        ("ip.bin", ip),
        ("records.bin", rec_file),
        ("profiles.bin", prof_file),
        ("strings.bin", strings_file),
        ("sets.bin", sets_file),
        ("prefilter.bin", prefilter_file),
        ("ids.bin", ids_file),
    ])
}

/// The domains in key order, their two shards and `domains.idx`.
type DomainPart = (Vec<u32>, Vec<u8>, Vec<u8>, Vec<u8>);
/// `values.fst` and `ip.bin`.
type OtherPart = (Vec<u8>, Vec<u8>);

/// The domain files (`doms` put in key order, the two shards, `domains.idx`) and the
/// others (`values.fst`, `ip.bin`) of what [`Lean`] kept, each list of `by_type` sorted by
/// value unless `sorted`.
///
/// Two branches joined on rayon's pool, so whichever thread is free picks up the next
/// piece: the domain keys and then their two FST shards on one side; the other values'
/// FST and the IP tables on the other.
fn compile_fsts(
    items: &Lean,
    sorted: bool,
    by_type: &mut [Vec<u32>],
    mut doms: Vec<u32>,
    type_counts: &[u32; 13],
    tm: &Timing,
) -> (
    Result<DomainPart, SnapshotError>,
    Result<OtherPart, SnapshotError>,
) {
    let fqdn_b = super::type_byte(IndicatorType::Fqdn) as usize;
    rayon::join(
        || {
            // Domain ids follow the label-reversed key order, so an FST output (the key's
            // rank) is the id itself: no rank/id permutation on disk or per lookup.
            let (arena, entries, r2i) = domain_keys(items, &doms);
            tm.at("domain keys sorted");
            let in_key_order: Vec<u32> = r2i.iter().map(|&(i, _)| doms[i as usize]).collect();
            doms = in_key_order;
            let split = shard_split(entries.len(), |i| {
                entries
                    .get(i)
                    .and_then(|e| arena.get(e.0 as usize))
                    .copied()
            });
            let (first, second) = entries.split_at(split);
            // The exact-only bits (`domains.idx`) beside the two shards.
            let ((s0, s1), idx) = rayon::join(
                || {
                    rayon::join(
                        || {
                            let r = shard_fst(key_slices(&arena, first), 0);
                            tm.at("domain shard 0");
                            r
                        },
                        || {
                            let r = shard_fst(key_slices(&arena, second), split);
                            tm.at("domain shard 1");
                            r
                        },
                    )
                },
                || {
                    let r = DomainIdx::write_identity(r2i.iter().map(|&(_, exact)| exact));
                    tm.at("domains.idx");
                    r
                },
            );
            Ok::<_, SnapshotError>((doms, s0?, s1?, idx))
        },
        || {
            for (t, v) in by_type.iter_mut().enumerate() {
                if t != fqdn_b && !sorted {
                    sort_by_value(items, v);
                }
            }
            let by_type = &*by_type;
            let vals = values_fst(items, by_type, fqdn_b, type_counts[fqdn_b]);
            tm.at("values.fst");
            let ip = ip_tables(items, by_type);
            tm.at("ip.bin");
            Ok::<_, SnapshotError>((vals?, ip))
        },
    )
}

/// `ids.bin`: (indicator id, string id) of the items with an external id, in id order.
fn external_ids_file(by_type: &[Vec<u32>], external_ids: &[(u32, u32)]) -> Vec<u8> {
    let mut pairs = Vec::with_capacity(external_ids.len());
    if !external_ids.is_empty() {
        for (id, &item) in by_type.iter().flatten().enumerate() {
            if let Ok(k) = external_ids.binary_search_by_key(&item, |p| p.0) {
                pairs.push((id as u32, external_ids[k].1));
            }
        }
    }
    ExternalIds::write(&pairs)
}

/// Sort indices into `items` by value bytes (already sorted, as `trawl update` hands them
/// over: one pass to check).
fn sort_by_value(items: &Lean, v: &mut Vec<u32>) {
    if v.windows(2).all(|w| items.value(w[0]) <= items.value(w[1])) {
        return;
    }
    let mut keyed: Vec<(u128, u32)> = v
        .iter()
        .map(|&i| (order_prefix(items.value(i)), i))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| items.value(a.1).cmp(items.value(b.1)))
    });
    v.clear();
    v.extend(keyed.into_iter().map(|k| k.1));
}

/// (start in the arena, length, domain index) of one label-reversed key.
type KeyRef = (u32, u32, u32);

/// The keys `part` refers to in `arena`.
fn key_slices<'a>(arena: &'a [u8], part: &'a [KeyRef]) -> impl Iterator<Item = &'a [u8]> + 'a {
    part.iter()
        .map(move |e| &arena[e.0 as usize..(e.0 + e.1) as usize])
}

/// Domains below this count go into one FST shard (tiny in tests, so property tests cover
/// the two-shard layout).
#[cfg(not(test))]
const SHARD_MIN: usize = 50_000;
#[cfg(test)]
const SHARD_MIN: usize = 3;

/// Label-reversed keys of the domains sorted by value, sorted; plus what `domains.idx`
/// is written from. Returns (arena, entries (start, len, domain index) in key order,
/// (domain index, exact-only) in key order).
fn domain_keys(items: &Lean, doms: &[u32]) -> (Vec<u8>, Vec<KeyRef>, Vec<(u32, bool)>) {
    use rayon::slice::ParallelSliceMut;
    let mut arena: Vec<u8> = Vec::with_capacity(doms.iter().map(|&d| items.value(d).len()).sum());
    let mut entries: Vec<(u32, u32, u32)> = Vec::with_capacity(doms.len());
    // Read in domain order (sequential in `items` when they come sorted), so the key-order
    // pass below looks flags up here instead of chasing each indicator again.
    let mut exact = Vec::with_capacity(doms.len());
    for (i, &d) in doms.iter().enumerate() {
        let start = arena.len();
        exact.push(items.exact(d));
        // Labels last to first (as `rsplit('.')` joined by dots), in one backward scan.
        let v = items.value(d);
        let mut end = v.len();
        for j in (0..v.len()).rev() {
            if v[j] == b'.' {
                arena.extend_from_slice(&v[j + 1..end]);
                arena.push(b'.');
                end = j;
            }
        }
        arena.extend_from_slice(&v[..end]);
        entries.push((start as u32, (arena.len() - start) as u32, i as u32));
    }
    let slice = |e: &(u32, u32, u32)| &arena[e.0 as usize..(e.0 + e.1) as usize];
    let mut keyed: Vec<(u128, (u32, u32, u32))> = entries
        .iter()
        .map(|e| (order_prefix(slice(e)), *e))
        .collect();
    keyed.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| slice(&a.1).cmp(slice(&b.1))));
    let entries: Vec<(u32, u32, u32)> = keyed.into_iter().map(|k| k.1).collect();
    let r2i = entries.iter().map(|e| (e.2, exact[e.2 as usize])).collect();
    (arena, entries, r2i)
}

/// Where to split the sorted keys into two shards: where the first byte changes, nearest
/// the middle. A name and all its parents start with the same byte (they share the
/// top-level label), so one shard holds them all.
/// `first(i)`: the first byte of key `i` of `n`.
pub(super) fn shard_split(n: usize, first: impl Fn(usize) -> Option<u8>) -> usize {
    if n < SHARD_MIN {
        return n;
    }
    let mid = n / 2;
    let b = first(mid);
    let mut start = mid;
    while start > 0 && first(start - 1) == b {
        start -= 1;
    }
    let mut end = mid;
    while end < n && first(end) == b {
        end += 1;
    }
    if start > 0 && (mid - start <= end - mid || end == n) {
        start
    } else {
        end
    }
}

/// One shard FST of `keys` (in order), outputs = global rank from `first_rank`.
pub(super) fn shard_fst<'k>(
    keys: impl Iterator<Item = &'k [u8]>,
    first_rank: usize,
) -> Result<Vec<u8>, SnapshotError> {
    let mut db = fst::MapBuilder::memory();
    for (i, key) in keys.enumerate() {
        db.insert(key, (first_rank + i) as u64)
            .map_err(build_err("domain FST"))?;
    }
    db.into_inner().map_err(build_err("domain FST"))
}

/// `values.fst`: every non-domain indicator, key = type byte ‖ value, output = id.
fn values_fst(
    items: &Lean,
    by_type: &[Vec<u32>],
    fqdn_b: usize,
    n_domains: u32,
) -> Result<Vec<u8>, SnapshotError> {
    let mut vb = fst::MapBuilder::memory();
    let mut key = Vec::with_capacity(256);
    let mut id = 0u64;
    for (t, list) in by_type.iter().enumerate() {
        if t == fqdn_b {
            id += u64::from(n_domains);
            continue;
        }
        for &i in list {
            key.clear();
            key.push(t as u8);
            key.extend_from_slice(items.value(i));
            vb.insert(&key, id).map_err(build_err("value FST"))?;
            id += 1;
        }
    }
    vb.into_inner().map_err(build_err("value FST"))
}

/// `ip.bin` from the ipv4/ipv6 indicators (types 0 and 1, ids from 0).
fn ip_tables(items: &Lean, by_type: &[Vec<u32>]) -> Vec<u8> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut id = 0u32;
    for list in by_type.iter().take(2) {
        for &i in list {
            let tag_id = id;
            id += 1;
            let Some((net, p)) = parse_cidr(items.text(i)) else {
                continue;
            };
            match net {
                IpAddr::V4(a) => {
                    let (lo, hi) = prefix_range(u32::from(a).into(), p, true);
                    let tag = tag_id | if p < 32 { 0x8000_0000 } else { 0 };
                    v4.push((lo, hi, tag));
                }
                IpAddr::V6(a) => {
                    let (lo, hi) = prefix_range(a.into(), p, false);
                    let tag = tag_id | if p < 128 { 0x8000_0000 } else { 0 };
                    v6.push((lo, hi, tag));
                }
            }
        }
    }
    let mut lists = Vec::new();
    let r4: Vec<(u32, u32, u32, u32)> = elementary(v4, &mut lists)
        .into_iter()
        .map(|(s, e, o, l)| (s as u32, e as u32, o, l))
        .collect();
    let r6 = elementary(v6, &mut lists);
    IpTables::write(&r4, &r6, &lists)
}

/// Fields of a profile (everything but the value and the reference).
/// Column 11, the groups, is 0 for [`crate::model::DEFAULT_GROUP`] alone, else 1 + a set id:
/// profiles written before groups existed have 11 columns, and a delta-coded row never marks
/// a column past its writer's, so they read back as `everyone`.
pub(crate) const NPROFILE: usize = 12;

/// Strings, string sets and profiles, each kept once (owned: indicators arrive one at a
/// time and are gone after).
#[derive(Default)]
struct Interner {
    strings: Vec<Arc<str>>,
    string_ids: HashMap<Arc<str>, u32, FxBuild>,
    sets: Vec<Vec<u8>>,
    set_ids: HashMap<Vec<String>, u32, FxBuild>,
    profiles: Vec<[u64; NPROFILE]>,
    profile_ids: HashMap<[u64; NPROFILE], u32, FxBuild>,
}

impl Interner {
    fn string(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.string_ids.insert(s, i);
        i
    }

    fn opt(&mut self, s: &Option<String>) -> u64 {
        s.as_deref().map_or(0, |s| u64::from(self.string(s)) + 1)
    }

    fn set(&mut self, list: &[String]) -> u64 {
        if let Some(&i) = self.set_ids.get(list) {
            return u64::from(i);
        }
        let mut b = Vec::with_capacity(list.len() * 4);
        for s in list {
            let id = self.string(s);
            b.extend_from_slice(&id.to_le_bytes());
        }
        let i = self.sets.len() as u32;
        self.sets.push(b);
        self.set_ids.insert(list.to_vec(), i);
        u64::from(i)
    }

    /// Renumber profiles so the most used come first; rewrites the rows' profile ids.
    fn renumber_profiles_by_use(&mut self, mut rows: Vec<[u32; 2]>) -> Vec<[u32; 2]> {
        let mut uses = vec![0u32; self.profiles.len()];
        for r in &rows {
            if let Some(u) = uses.get_mut(r[0] as usize) {
                *u += 1;
            }
        }
        let mut order: Vec<u32> = (0..self.profiles.len() as u32).collect();
        order.sort_by_key(|&p| (std::cmp::Reverse(uses[p as usize]), p));
        let mut new_id = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        self.profiles = order.iter().map(|&o| self.profiles[o as usize]).collect();
        self.profile_ids.clear();
        for r in &mut rows {
            if let Some(&n) = new_id.get(r[0] as usize) {
                r[0] = n;
            }
        }
        rows
    }

    fn profile(&mut self, p: [u64; NPROFILE]) -> u32 {
        if let Some(&i) = self.profile_ids.get(&p) {
            return i;
        }
        let i = self.profiles.len() as u32;
        self.profiles.push(p);
        self.profile_ids.insert(p, i);
        i
    }
}

fn time(t: Option<i64>) -> u64 {
    t.map_or(0, |t| zigzag(t) + 1)
}

/// The profile fields of one indicator (layout read back by `Snapshot::try_indicator`).
fn profile(it: &Indicator, int: &mut Interner) -> [u64; NPROFILE] {
    let sev = match it.severity {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
    };
    let tlp = match it.tlp {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    };
    let packed = sev
        | tlp << 2
        | u64::from(it.derived) << 5
        | u64::from(it.exact_only) << 6
        | u64::from(it.allowlist) << 7;
    [
        u64::from(it.confidence),
        packed,
        int.set(&it.tags),
        int.set(&it.sources),
        int.opt(&it.provider),
        int.opt(&it.description),
        int.opt(&it.allowlisted_by),
        time(it.first_seen),
        time(it.last_seen),
        time(it.reported),
        time(it.expires),
        it.groups.explicit().map_or(0, |g| int.set(g) + 1),
    ]
}

fn elementary(mut iv: Vec<(u128, u128, u32)>, lists: &mut Vec<u32>) -> Vec<(u128, u128, u32, u32)> {
    iv.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut out = Vec::with_capacity(iv.len());
    let mut stack: Vec<(u128, u32)> = Vec::new();
    let mut cur: u128 = 0;
    let emit = |s: u128,
                e: u128,
                stack: &[(u128, u32)],
                out: &mut Vec<(u128, u128, u32, u32)>,
                lists: &mut Vec<u32>| {
        if s <= e && !stack.is_empty() {
            let off = lists.len() as u32;
            lists.extend(stack.iter().map(|x| x.1));
            out.push((s, e, off, stack.len() as u32));
        }
    };
    for (lo, hi, tag) in iv {
        while let Some(&(top_hi, _)) = stack.last() {
            if top_hi >= lo {
                break;
            }
            emit(cur, top_hi, &stack, &mut out, lists);
            cur = top_hi + 1;
            stack.pop();
        }
        if !stack.is_empty() && cur < lo {
            emit(cur, lo - 1, &stack, &mut out, lists);
        }
        cur = lo;
        stack.push((hi, tag));
    }
    while let Some(&(top_hi, _)) = stack.last() {
        emit(cur, top_hi, &stack, &mut out, lists);
        stack.pop();
        match top_hi.checked_add(1) {
            Some(n) => cur = n,
            None => break,
        }
    }
    out
}
