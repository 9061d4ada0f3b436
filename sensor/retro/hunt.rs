//! Hunting: indicators → the observed values they cover, from the index alone. Each
//! indicator's key range ([`super::key::probe`]) gives candidates; each candidate is then
//! looked up by the correlator as a live observation would be, so the snapshot's matching
//! semantics (label boundaries, exact-only domains, URL path boundaries, allowlists,
//! confidence and severity filters) decide, not a second implementation of them.

use super::key::{field_names, probe, Observed, Probe};
use super::segment::Stats;
use super::store::{day_of, RetroStore};
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

/// Every sighting of the indicators `ids` of `snapshot` in `store`, in id order, then
/// observed-key order, then partition. Allowlist entries and indicators the correlator's
/// filter refuses give none; so do patterns (the index holds no free text).
pub fn hunt(
    store: &RetroStore,
    snapshot: &Snapshot,
    correlator: &Correlator<'_>,
    ids: impl IntoIterator<Item = u32>,
    scope: HuntScope,
) -> Vec<Sighting> {
    let segments: Vec<_> = store
        .segments()
        .iter()
        .filter(|s| s.end() > scope.since)
        .collect();
    let mut damaged = vec![false; segments.len()];
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    let mut hits = Vec::new();
    for id in ids {
        let Some(ind) = snapshot.try_indicator(id) else {
            continue;
        };
        if ind.allowlist {
            continue;
        }
        let Some(p) = probe(&ind) else { continue };
        let mut found: BTreeMap<(Vec<u8>, Option<i64>), Stats> = BTreeMap::new();
        let mut add = |k: &[u8], s: Stats, start: i64| {
            let part = scope.per_partition.then(|| day_of(start));
            match found.get_mut(&(k.to_vec(), part)) {
                Some(m) => m.merge(&s, scope.clients),
                None => {
                    found.insert((k.to_vec(), part), s);
                }
            }
        };
        for (i, seg) in segments.iter().enumerate() {
            if damaged[i] {
                continue;
            }
            // A segment opened for structure only ([`super::segment::Check::Structure`])
            // whose FST is damaged inside can make the FST reader panic: that segment is
            // skipped, the rest answers.
            let looked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &p {
                Probe::Exact(k) => {
                    if let Some(s) = seg.get(k) {
                        add(k, s, seg.start);
                    }
                }
                Probe::Prefix(pre) => seg.range(pre, None, |k, s| {
                    let inside = k.starts_with(pre);
                    if inside {
                        add(k, s, seg.start);
                    }
                    inside
                }),
                Probe::Range(lo, hi) => seg.range(lo, Some(hi), |k, s| {
                    add(k, s, seg.start);
                    true
                }),
            }));
            if looked.is_err() {
                damaged[i] = true;
                tracing::warn!(
                    "retro index: {}: damaged segment (its FST could not be read); skipped, \
                     the rest still answers",
                    seg.path.display()
                );
            }
        }
        // One correlator check per observed value, shared by its partitions.
        let mut judged: HashMap<Vec<u8>, Option<(Observed, FieldHit)>> = HashMap::new();
        for ((key, part), stats) in found {
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
