//! Recording: observations → pending values per worker ([`Pending`]: a [`ValueTable`],
//! handed back to the [`Recorder`] after each batch and reused by the next, so a value a
//! worker already holds costs a hash and a probe) → at each flush ([`Flush`]) the tables
//! sorted and merged on both cores ([`super::merge`]) into hour segments (the days already
//! over straight into day segments), then compaction and pruning. The daemon takes a flush
//! under the recorder's lock and writes it without: its sources keep recording meanwhile.

use super::config::RetroConfig;
use super::key::{field_bit, key_into};
use super::merge::partitions;
use super::store::RetroStore;
use super::table::{hash_of, Run, ValueTable};
use super::{RetroError, HOUR};
use crate::data_files::{DataLock, Role};
use ingest::Observation;
use rayon::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Events more than this far ahead of now are rejected (clock skew allowance).
pub const MAX_FUTURE_SECS: i64 = 86_400;
/// Distinct (hour, value) pairs held in memory (over the workers' buffers) before a flush
/// is forced.
pub const MAX_PENDING: usize = 4_000_000;
/// Memory held by the workers' buffers (keys and tables) before a flush is forced: long
/// values reach it before [`MAX_PENDING`] does.
pub const MAX_PENDING_BYTES: usize = 1 << 30;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A worker's observations not yet written: (hour, value) → stats in a [`ValueTable`].
#[derive(Debug, Default)]
pub struct Pending {
    table: ValueTable,
    clients: usize,
    retention: i64,
    oldest: i64,
    newest: i64,
    /// Observations whose time was outside the accepted window (older than the retention,
    /// or more than a day ahead), and values the buffer could not hold (past 4 GiB).
    pub rejected: u64,
    /// Observations recorded.
    pub observed: u64,
    /// The keys of the observation being recorded, end to end, and (end, field bits, hash)
    /// of each.
    keys: Vec<u8>,
    spans: Vec<(usize, u32, u64)>,
}

impl Pending {
    /// An empty buffer accepting events from `now − retention` to `now + 1 day`.
    pub fn new(cfg: &RetroConfig, now: i64) -> Pending {
        let mut p = Pending {
            clients: cfg.clients,
            retention: cfg.retention_secs(),
            ..Pending::default()
        };
        p.window(now);
        p
    }

    /// Accept events from `now − retention` to `now + 1 day`.
    fn window(&mut self, now: i64) {
        self.oldest = now.saturating_sub(self.retention);
        self.newest = now.saturating_add(MAX_FUTURE_SECS);
    }

    /// Distinct (hour, value) pairs held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
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
        // A value seen in several fields of one observation counts once; each is hashed
        // once, for this check and the table.
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
            let hash = hash_of(hour, &keys[from..]);
            let mut start = 0;
            for (end, bits, h) in spans.iter_mut() {
                if *h == hash && keys[start..*end] == keys[from..] {
                    *bits |= bit;
                    keys.truncate(from);
                    return;
                }
                start = *end;
            }
            spans.push((keys.len(), bit, hash));
        });
        let mut start = 0;
        for &(end, bits, hash) in &spans {
            let key = &keys[start..end];
            start = end;
            if !self.table.add(hash, hour, key, t, bits, client, cap) {
                self.rejected += 1;
            }
        }
        self.keys = keys;
        self.spans = spans;
    }
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

/// The index and what was written to it: what a [`Flush`] holds while it writes.
#[derive(Debug)]
struct Writer {
    _lock: DataLock,
    store: RetroStore,
    totals: RecordTotals,
}

/// The writer of the index: the workers' buffers, flushed into segments.
#[derive(Debug)]
pub struct Recorder {
    cfg: RetroConfig,
    /// Buffers handed back by the workers, reused by the next batches.
    idle: Mutex<Vec<Pending>>,
    writer: Arc<Mutex<Writer>>,
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
            cfg,
            idle: Mutex::new(Vec::new()),
            writer: Arc::new(Mutex::new(Writer {
                _lock: lock,
                store,
                totals: RecordTotals::default(),
            })),
        })
    }

    /// A buffer for a worker's batch: one handed back earlier (its values kept) or a new
    /// one, accepting events around now.
    pub fn buffer(&self) -> Pending {
        let now = now_secs();
        let mut p = lock(&self.idle)
            .pop()
            .unwrap_or_else(|| Pending::new(&self.cfg, now));
        p.window(now);
        p
    }

    /// Take a worker's buffer back. Past [`MAX_PENDING`] values or [`MAX_PENDING_BYTES`]
    /// held by the buffers handed back, they are flushed.
    pub fn absorb(&mut self, p: Pending) -> Result<(), RetroError> {
        let idle = self.idle.get_mut().unwrap_or_else(|p| p.into_inner());
        idle.push(p);
        let held: usize = idle.iter().map(Pending::len).sum();
        let bytes: usize = idle
            .iter()
            .map(|p| p.table.bytes() + p.keys.capacity())
            .sum();
        if held >= MAX_PENDING || bytes >= MAX_PENDING_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Take what the buffers handed back hold, to write with [`Flush::write`] without this
    /// recorder (the daemon's sources keep recording into new buffers meanwhile).
    pub fn take(&mut self) -> Flush {
        let idle = self.idle.get_mut().unwrap_or_else(|p| p.into_inner());
        Flush {
            buffers: std::mem::take(idle),
            writer: self.writer.clone(),
            cfg: self.cfg.clone(),
        }
    }

    /// Write what is held as hour segments, compact the days that are over and prune.
    pub fn flush(&mut self) -> Result<(), RetroError> {
        self.take().write()
    }

    /// What was recorded so far (flushed).
    pub fn totals(&self) -> RecordTotals {
        lock(&self.writer).totals
    }

    /// The index as it is now, to read while recording goes on ([`RetroStore::view`]).
    pub fn view(&self) -> RetroStore {
        lock(&self.writer).store.view()
    }

    /// The damaged segments set aside when the index was opened, each with why.
    pub fn set_aside(&self) -> Vec<String> {
        lock(&self.writer).store.set_aside.clone()
    }
}

/// A flush taken from a [`Recorder`]: its buffers, and the index to write them to.
#[derive(Debug)]
pub struct Flush {
    buffers: Vec<Pending>,
    writer: Arc<Mutex<Writer>>,
    cfg: RetroConfig,
}

impl Flush {
    /// Sort each buffer and merge them on both cores, then write the partitions (days
    /// already over into their day segments, the others as hour segments), compact the
    /// days that are over and prune. Flushes write one at a time.
    pub fn write(self) -> Result<(), RetroError> {
        let now = now_secs();
        let (observed, rejected) = self
            .buffers
            .iter()
            .fold((0, 0), |(o, r), p| (o + p.observed, r + p.rejected));
        let runs: Vec<Run> = self
            .buffers
            .into_par_iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.table.into_run())
            .collect();
        let clients = self.cfg.clients;
        let (days, hours) = partitions(&runs, now, clients);
        let mut w = lock(&self.writer);
        w.totals.segments += (days.len() + hours.len()) as u64;
        w.totals.observed += observed;
        w.totals.rejected += rejected;
        w.store.write_days(days, clients)?;
        w.store.write_hours(hours)?;
        w.store.compact(now, clients)?;
        w.store
            .prune(now, self.cfg.retention_secs(), self.cfg.max_bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retro::key::key_of;
    use crate::retro::store::Partitions;
    use crate::retro::DAY;
    use ingest::MatchValue;
    use std::borrow::Cow;

    type Owned = Partitions<Vec<u8>>;

    /// What a flush of `buffers` at `now` writes: (day partitions, hour partitions).
    fn flushed(buffers: Vec<Pending>, now: i64, cap: usize) -> (Owned, Owned) {
        let runs: Vec<Run> = buffers.into_iter().map(|p| p.table.into_run()).collect();
        let (days, hours) = partitions(&runs, now, cap);
        let own = |p: Partitions<&[u8]>| -> Owned {
            p.into_iter()
                .map(|(s, l)| (s, l.into_iter().map(|(k, v)| (k.to_vec(), v)).collect()))
                .collect()
        };
        (own(days), own(hours))
    }

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
        let (days, hours) = flushed(vec![p], now, 0);
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
    fn buffers_of_several_workers_merge_by_day_and_by_hour() {
        let cfg = RetroConfig::default();
        let now = 100 * DAY + 2 * HOUR;
        let at = |t: i64, name: &'static str| Observation {
            timestamp_ns: Some(t * 1_000_000_000),
            dns_question_name: Some(Cow::Borrowed(name)),
            ..Observation::default()
        };
        let mut buffers = Vec::new();
        // Three workers see names in two hours of a closed day and of today.
        for (dt, name) in [
            (10, "a.example"),
            (HOUR + 5, "a.example"),
            (20, "b.example"),
        ] {
            let mut w = Pending::new(&cfg, now);
            w.observe(&at(99 * DAY + dt, name), 0);
            w.observe(&at(100 * DAY + dt, name), 0);
            w.observe(&at(100 * DAY + dt + 1, name), 0);
            buffers.push(w);
        }
        assert_eq!(buffers.iter().map(|b| b.observed).sum::<u64>(), 9);
        let (days, hours) = flushed(buffers, now, 0);
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
    }

    #[test]
    fn a_handed_back_buffer_is_reused_and_a_flush_writes_every_buffer_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::open(dir.path(), RetroConfig::default()).unwrap();
        let now = now_secs();
        let at = |name: String| Observation {
            timestamp_ns: Some(now * 1_000_000_000),
            dns_question_name: Some(Cow::Owned(name)),
            ..Observation::default()
        };
        // Two workers at once, then one batch more: the same 100 names, and 10 each.
        let (mut a, mut b) = (r.buffer(), r.buffer());
        for (w, p) in [&mut a, &mut b].into_iter().enumerate() {
            for i in 0..100 {
                p.observe(&at(format!("n{i}.example")), 0);
            }
            for i in 0..10 {
                p.observe(&at(format!("w{w}-{i}.example")), 0);
            }
        }
        r.absorb(a).unwrap();
        r.absorb(b).unwrap();
        let mut c = r.buffer();
        assert_eq!(c.len(), 110, "a handed-back buffer, its values kept");
        c.observe(&at("n0.example".into()), 0);
        assert_eq!(c.len(), 110, "a value it holds costs no new entry");
        r.absorb(c).unwrap();
        r.flush().unwrap();
        assert_eq!(r.totals().observed, 221);
        let view = r.view();
        assert_eq!(view.segments().len(), 1);
        let seg = &view.segments()[0];
        assert_eq!(seg.len(), 120);
        let n0 = key_of(MatchValue::Domain("n0.example")).unwrap();
        assert_eq!(seg.get(&n0).unwrap().unwrap().count, 3);
        // Nothing is held after the flush: the next one writes no segment.
        assert!(r.buffer().is_empty());
        r.flush().unwrap();
        assert_eq!(r.view().segments().len(), 1);
    }

    #[test]
    fn a_flush_taken_is_written_while_workers_record_into_new_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::open(dir.path(), RetroConfig::default()).unwrap();
        let now = now_secs();
        let at = |name: &'static str| Observation {
            timestamp_ns: Some(now * 1_000_000_000),
            dns_question_name: Some(Cow::Borrowed(name)),
            ..Observation::default()
        };
        let mut p = r.buffer();
        p.observe(&at("before.example"), 0);
        r.absorb(p).unwrap();
        let taken = r.take();
        // The recorder is free: a worker records into a new buffer before the write.
        let mut q = r.buffer();
        assert!(q.is_empty());
        q.observe(&at("after.example"), 0);
        r.absorb(q).unwrap();
        taken.write().unwrap();
        let before = key_of(MatchValue::Domain("before.example")).unwrap();
        let after = key_of(MatchValue::Domain("after.example")).unwrap();
        let find = |r: &Recorder, k: &[u8]| {
            r.view()
                .segments()
                .iter()
                .any(|s| matches!(s.get(k), Ok(Some(_))))
        };
        assert!(find(&r, &before) && !find(&r, &after));
        r.flush().unwrap();
        assert!(find(&r, &after));
        assert_eq!(r.totals().observed, 2);
    }
}
