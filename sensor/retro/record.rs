//! Recording: observations → per-hour stats in memory ([`Pending`], one per worker) →
//! hour segments at each flush ([`Recorder`]), then compaction and pruning.

use super::config::RetroConfig;
use super::key::{field_bit, key_into};
use super::segment::Stats;
use super::store::{day_of, Partitions, RetroStore};
use super::{RetroError, DAY, HOUR};
use crate::data_files::{DataLock, Role};
use ingest::Observation;
use std::collections::HashMap;
use std::path::Path;

/// Events more than this far ahead of now are rejected (clock skew allowance).
pub const MAX_FUTURE_SECS: i64 = 86_400;
/// Distinct (hour, value) pairs held in memory before a flush is forced.
pub const MAX_PENDING: usize = 4_000_000;

/// A worker's values of one hour: key → stats. Keys are hostile (observed values), so the
/// hasher is keyed per process (aHash's random state), not Fx.
type HourMap = HashMap<Box<[u8]>, Stats, ahash::RandomState>;

/// One pending value: its hour, key and stats.
type Entry = (i64, Box<[u8]>, Stats);

/// The order of sealed runs: day, then key, then hour, so that at a flush a closed day's
/// entries of one key are adjacent (merged into its day segment) and an open day's split
/// into hours stays in key order.
/// A sealed worker's values in [`entry_order`]: the keys end to end in one buffer, so the
/// flush's merge reads each run front to back instead of chasing one allocation per key.
#[derive(Debug, Default)]
struct Run {
    keys: Vec<u8>,
    /// Hour, the key's end in `keys` (it starts where the previous one ends), stats.
    entries: Vec<(i64, usize, Stats)>,
}

impl Run {
    /// The `i`th entry's hour and key.
    fn at(&self, i: usize) -> Option<(i64, &[u8])> {
        let (hour, end, _) = self.entries.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.entries[i - 1].1,
        };
        Some((*hour, self.keys.get(start..*end)?))
    }
}

fn entry_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    (day_of(a.0), &a.1, a.0).cmp(&(day_of(b.0), &b.1, b.0))
}

/// Observations not yet written: each worker's values by hour in hash maps (a value already
/// seen costs a lookup, no allocation), sealed into sorted runs when absorbed; a flush
/// merges the runs into segments.
#[derive(Debug, Default)]
pub struct Pending {
    hours: HashMap<i64, HourMap>,
    runs: Vec<Run>,
    held: usize,
    clients: usize,
    oldest: i64,
    newest: i64,
    /// Observations whose time was outside the accepted window (older than the retention,
    /// or more than a day ahead).
    pub rejected: u64,
    /// Observations recorded.
    pub observed: u64,
    /// The keys of the observation being recorded, end to end, and (end, field bits) of each.
    keys: Vec<u8>,
    spans: Vec<(usize, u32)>,
}

impl Pending {
    /// An empty buffer accepting events from `now − retention` to `now + 1 day`.
    pub fn new(cfg: &RetroConfig, now: i64) -> Pending {
        Pending {
            clients: cfg.clients,
            oldest: now.saturating_sub(cfg.retention_secs()),
            newest: now.saturating_add(MAX_FUTURE_SECS),
            ..Pending::default()
        }
    }

    /// Distinct (hour, value) pairs held (a value held by two absorbed workers counts
    /// twice until the flush merges them).
    pub fn len(&self) -> usize {
        self.held + self.hours.values().map(HashMap::len).sum::<usize>()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record every matchable value of `obs` (patterns aside) at its time, else at
    /// `default_ns` (an input line without a time of its own).
    pub fn observe(&mut self, obs: &Observation<'_>, default_ns: i64) {
        let t = obs
            .timestamp_ns
            .unwrap_or(default_ns)
            .div_euclid(1_000_000_000);
        if t < self.oldest || t > self.newest {
            self.rejected += 1;
            return;
        }
        self.observed += 1;
        let hour = t.div_euclid(HOUR) * HOUR;
        let client = obs.source_ip;
        let cap = self.clients;
        // A value seen in several fields of one observation counts once.
        let (mut keys, mut spans) = (
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.spans),
        );
        keys.clear();
        spans.clear();
        obs.for_each_matchable(true, |field, value| {
            let from = keys.len();
            if !key_into(value, &mut keys) {
                keys.truncate(from);
                return;
            }
            let bit = field_bit(field);
            let mut start = 0;
            for (end, bits) in spans.iter_mut() {
                if keys[start..*end] == keys[from..] {
                    *bits |= bit;
                    keys.truncate(from);
                    return;
                }
                start = *end;
            }
            spans.push((keys.len(), bit));
        });
        let map = self.hours.entry(hour).or_default();
        let mut start = 0;
        for &(end, bits) in &spans {
            let key = &keys[start..end];
            start = end;
            match map.get_mut(key) {
                Some(s) => s.add(t, bits, client, cap),
                None => {
                    map.insert(key.into(), Stats::one(t, bits, client, cap));
                }
            }
        }
        self.keys = keys;
        self.spans = spans;
    }

    /// Sort what was observed into a run: done by [`Pending::absorb`], but a worker calls
    /// it first, before it takes the recorder's lock, so the sorting is not under the lock.
    pub fn seal(&mut self) {
        let mut run: Vec<Entry> = Vec::with_capacity(self.hours.values().map(HashMap::len).sum());
        for (hour, map) in self.hours.drain() {
            run.extend(map.into_iter().map(|(k, s)| (hour, k, s)));
        }
        if run.is_empty() {
            return;
        }
        run.sort_unstable_by(entry_order);
        let mut sealed = Run {
            keys: Vec::with_capacity(run.iter().map(|e| e.1.len()).sum()),
            entries: Vec::with_capacity(run.len()),
        };
        for (hour, key, stats) in run {
            sealed.keys.extend_from_slice(&key);
            sealed.entries.push((hour, sealed.keys.len(), stats));
        }
        self.held += sealed.entries.len();
        self.runs.push(sealed);
    }

    /// Fold another buffer (a worker's, [`Pending::seal`]ed) into this one: its run is
    /// kept as it is; runs are merged at the flush.
    pub fn absorb(&mut self, mut other: Pending) {
        other.seal();
        self.rejected += other.rejected;
        self.observed += other.observed;
        self.held += other.held;
        self.runs.append(&mut other.runs);
    }

    /// Merge every run into one (equal (hour, key) entries folded): what the flush
    /// writes, and what [`Recorder::absorb`] does when the runs hold many values twice,
    /// so that the pending cap counts distinct values and a day is written once.
    fn consolidate(&mut self) {
        self.seal();
        if self.runs.len() <= 1 {
            return;
        }
        let runs = std::mem::take(&mut self.runs);
        let cap = self.clients;
        let total_keys: usize = runs.iter().map(|r| r.keys.len()).sum();
        let total: usize = runs.iter().map(|r| r.entries.len()).sum();
        let mut merged = Run {
            keys: Vec::with_capacity(total_keys),
            entries: Vec::with_capacity(total),
        };
        // A k-way merge: each run's head in a heap ordered by (day, key, hour).
        let mut heap = std::collections::BinaryHeap::with_capacity(runs.len());
        for (r, run) in runs.iter().enumerate() {
            if let Some((hour, key)) = run.at(0) {
                heap.push(std::cmp::Reverse((day_of(hour), key, hour, r, 0usize)));
            }
        }
        let mut last_start = 0;
        while let Some(std::cmp::Reverse((_, key, hour, r, i))) = heap.pop() {
            let s = &runs[r].entries[i].2;
            if let Some((h, k)) = runs[r].at(i + 1) {
                heap.push(std::cmp::Reverse((day_of(h), k, h, r, i + 1)));
            }
            match merged.entries.last_mut() {
                Some((h, end, have)) if *h == hour && merged.keys[last_start..*end] == *key => {
                    have.merge(s, cap);
                }
                _ => {
                    last_start = merged.keys.len();
                    merged.keys.extend_from_slice(key);
                    merged.entries.push((hour, merged.keys.len(), s.clone()));
                }
            }
        }
        self.held = merged.entries.len();
        self.runs.push(merged);
    }

    /// Everything held as one run in (day, key, hour) order, each (hour, key) once; the
    /// buffer is left empty (its counters aside).
    fn take_run(&mut self) -> Run {
        self.consolidate();
        self.held = 0;
        self.runs.pop().unwrap_or_default()
    }
}

/// A run split by partition: the days over at `now` (a day and an hour of grace before it)
/// as whole days (a key's hours folded), the others by hour; each partition in key order,
/// borrowing the run's keys.
fn partitions(run: &Run, now: i64, cap: usize) -> (Partitions<&[u8]>, Partitions<&[u8]>) {
    let (mut days, mut hours) = (Partitions::new(), Partitions::new());
    for i in 0..run.entries.len() {
        let Some((hour, key)) = run.at(i) else { break };
        let s = &run.entries[i].2;
        let day = day_of(hour);
        let (part, start) = if day + DAY + HOUR <= now {
            (&mut days, day)
        } else {
            (&mut hours, hour)
        };
        let entries: &mut Vec<(&[u8], Stats)> = part.entry(start).or_default();
        match entries.last_mut() {
            Some((k, have)) if *k == key => have.merge(s, cap),
            _ => entries.push((key, s.clone())),
        }
    }
    (days, hours)
}

/// What a recording did, for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordTotals {
    /// Observations recorded.
    pub observed: u64,
    /// Observations rejected for their time.
    pub rejected: u64,
    /// Segments written.
    pub segments: u64,
}

/// The writer of the index: what workers observed, flushed into segments.
#[derive(Debug)]
pub struct Recorder {
    _lock: DataLock,
    store: RetroStore,
    cfg: RetroConfig,
    pending: Pending,
    /// How many held (hour, value) pairs make [`Recorder::absorb`] merge the runs.
    merge_at: usize,
    totals: RecordTotals,
}

/// Now, in Unix seconds.
pub fn now_secs() -> i64 {
    crate::scan::now_ns().div_euclid(1_000_000_000)
}

impl Recorder {
    /// Open the index of `data_dir` for recording.
    pub fn open(data_dir: &Path, cfg: RetroConfig) -> Result<Recorder, RetroError> {
        std::fs::create_dir_all(data_dir).map_err(RetroError::io(data_dir))?;
        let Some(lock) = DataLock::try_lock(data_dir, Role::Retro)? else {
            return Err(RetroError::Busy(data_dir.display().to_string()));
        };
        let store = RetroStore::open(&RetroStore::dir_of(data_dir))?;
        Ok(Recorder {
            _lock: lock,
            pending: Pending::new(&cfg, now_secs()),
            store,
            cfg,
            merge_at: MAX_PENDING,
            totals: RecordTotals::default(),
        })
    }

    /// An empty buffer for a worker, with this recorder's window and client cap.
    pub fn buffer(&self) -> Pending {
        Pending::new(&self.cfg, now_secs())
    }

    /// Take a worker's buffer. Past [`MAX_PENDING`] held, the runs are merged first (a
    /// value every worker saw counts once); the buffer is flushed only when the distinct
    /// values still reach the cap, so a backfill under it writes each day once.
    pub fn absorb(&mut self, p: Pending) -> Result<(), RetroError> {
        self.pending.absorb(p);
        if self.pending.len() >= self.merge_at {
            self.pending.consolidate();
            let distinct = self.pending.len();
            if distinct >= MAX_PENDING {
                self.flush()?;
            } else {
                // The next merge once a quarter of the cap more is held: each merge costs
                // what is held, so merges stay few, and memory stays within 1.25 caps.
                self.merge_at = distinct + MAX_PENDING / 4;
            }
        }
        Ok(())
    }

    /// Write what is held as hour segments, compact the days that are over and prune.
    pub fn flush(&mut self) -> Result<(), RetroError> {
        let now = now_secs();
        let run = self.pending.take_run();
        let (days, hours) = partitions(&run, now, self.cfg.clients);
        self.totals.segments += (days.len() + hours.len()) as u64;
        self.totals.observed += std::mem::take(&mut self.pending.observed);
        self.totals.rejected += std::mem::take(&mut self.pending.rejected);
        // Days already over go straight into their day segments.
        self.store.write_days(days, self.cfg.clients)?;
        self.store.write_hours(hours)?;
        self.store.compact(now, self.cfg.clients)?;
        self.store
            .prune(now, self.cfg.retention_secs(), self.cfg.max_bytes);
        drop(run);
        self.pending = Pending::new(&self.cfg, now);
        self.merge_at = MAX_PENDING;
        Ok(())
    }

    /// What was recorded so far (flushed).
    pub fn totals(&self) -> RecordTotals {
        self.totals
    }

    /// The index being written.
    pub fn store(&self) -> &RetroStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retro::key::key_of;
    use ingest::MatchValue;
    use std::borrow::Cow;

    #[test]
    fn one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Recorder::open(dir.path(), RetroConfig::default()).unwrap();
        let second = Recorder::open(dir.path(), RetroConfig::default()).unwrap_err();
        assert!(
            second.to_string().contains("another trawl is recording"),
            "{second}"
        );
        drop(first);
        assert!(Recorder::open(dir.path(), RetroConfig::default()).is_ok());
    }

    #[test]
    fn a_value_in_two_fields_of_one_observation_counts_once_and_times_are_bounded() {
        let cfg = RetroConfig::default();
        let now = 100 * 86_400;
        let mut p = Pending::new(&cfg, now);
        let obs = Observation {
            timestamp_ns: Some((now - 10) * 1_000_000_000),
            dns_question_name: Some(Cow::Borrowed("a.example")),
            tls_sni: Some(Cow::Borrowed("A.example.")),
            ..Observation::default()
        };
        p.observe(&obs, 0);
        let mut late = obs.clone();
        late.timestamp_ns = Some((now + 2 * 86_400) * 1_000_000_000);
        p.observe(&late, 0);
        let mut old = obs.clone();
        old.timestamp_ns = Some((now - 91 * 86_400) * 1_000_000_000);
        p.observe(&old, 0);
        assert_eq!((p.observed, p.rejected, p.len()), (1, 2, 1));
        let run = p.take_run();
        let (days, hours) = partitions(&run, now, 0);
        assert!(days.is_empty());
        let (hour, values) = hours.iter().next().unwrap();
        assert_eq!(*hour, (now - 10).div_euclid(HOUR) * HOUR);
        let s = &values[0].1;
        assert_eq!(s.count, 1);
        assert_eq!(
            crate::retro::key::field_names(s.fields),
            ["dns.question.name", "tls.client.server_name"]
        );
    }

    #[test]
    fn runs_of_several_workers_merge_by_day_and_by_hour() {
        let cfg = RetroConfig::default();
        let now = 100 * DAY + 2 * HOUR;
        let at = |t: i64, name: &'static str| Observation {
            timestamp_ns: Some(t * 1_000_000_000),
            dns_question_name: Some(Cow::Borrowed(name)),
            ..Observation::default()
        };
        let mut main = Pending::new(&cfg, now);
        // Two workers see the same names in two hours of a closed day and of today.
        for (dt, name) in [
            (10, "a.example"),
            (HOUR + 5, "a.example"),
            (20, "b.example"),
        ] {
            let mut w = Pending::new(&cfg, now);
            w.observe(&at(99 * DAY + dt, name), 0);
            w.observe(&at(100 * DAY + dt, name), 0);
            w.observe(&at(100 * DAY + dt + 1, name), 0);
            w.seal();
            main.absorb(w);
        }
        assert_eq!((main.observed, main.len()), (9, 6));
        let run = main.take_run();
        let (days, hours) = partitions(&run, now, 0);
        let day: Vec<(Vec<u8>, u64, i64, i64)> = days[&(99 * DAY)]
            .iter()
            .map(|(k, s)| (k.to_vec(), s.count, s.first, s.last))
            .collect();
        let (a, b) = (
            key_of(MatchValue::Domain("a.example")).unwrap(),
            key_of(MatchValue::Domain("b.example")).unwrap(),
        );
        assert_eq!(
            day,
            vec![
                (a.clone(), 2, 99 * DAY + 10, 99 * DAY + HOUR + 5),
                (b.clone(), 1, 99 * DAY + 20, 99 * DAY + 20)
            ]
        );
        let h0: Vec<(Vec<u8>, u64)> = hours[&(100 * DAY)]
            .iter()
            .map(|(k, s)| (k.to_vec(), s.count))
            .collect();
        assert_eq!(h0, vec![(a.clone(), 2), (b, 2)]);
        assert_eq!(hours[&(100 * DAY + HOUR)][0].1.count, 2);
        assert!(main.is_empty());
    }

    #[test]
    fn merging_runs_counts_each_hour_and_value_once_and_keeps_the_order() {
        let cfg = RetroConfig::default();
        let now = 100 * DAY;
        let at = |t: i64, name: String| Observation {
            timestamp_ns: Some(t * 1_000_000_000),
            dns_question_name: Some(Cow::Owned(name)),
            ..Observation::default()
        };
        let mut main = Pending::new(&cfg, now);
        // Five workers each see the same 100 names in two hours, and 10 of their own.
        for w in 0..5 {
            let mut p = Pending::new(&cfg, now);
            for i in 0..100 {
                p.observe(&at(now - 2 * HOUR + i, format!("n{i}.example")), 0);
                p.observe(&at(now - HOUR + i, format!("n{i}.example")), 0);
            }
            for i in 0..10 {
                p.observe(&at(now - HOUR, format!("w{w}-{i}.example")), 0);
            }
            main.absorb(p);
        }
        assert_eq!(main.len(), 5 * 210);
        main.consolidate();
        assert_eq!(main.len(), 2 * 100 + 50);
        let run = main.take_run();
        let order: Vec<(i64, i64, Vec<u8>)> = (0..run.entries.len())
            .map(|i| {
                let (h, k) = run.at(i).unwrap();
                (day_of(h), h, k.to_vec())
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by(|a, b| (a.0, &a.2, a.1).cmp(&(b.0, &b.2, b.1)));
        assert_eq!(order, sorted);
        let n0 = key_of(MatchValue::Domain("n0.example")).unwrap();
        let counts: Vec<u64> = (0..run.entries.len())
            .filter(|&i| run.at(i).unwrap().1 == &n0[..])
            .map(|i| run.entries[i].2.count)
            .collect();
        assert_eq!(counts, vec![5, 5]);
        assert!(main.is_empty());
    }
}
