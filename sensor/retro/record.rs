//! Recording: observations → per-hour stats in memory ([`Pending`], one per worker) →
//! hour segments at each flush ([`Recorder`]), then compaction and pruning.

use super::config::RetroConfig;
use super::key::{field_bit, key_of};
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
pub const MAX_PENDING: usize = 2_000_000;

/// Observations not yet written: stats per (hour start, key).
#[derive(Debug, Default)]
pub struct Pending {
    map: HashMap<(i64, Vec<u8>), Stats>,
    clients: usize,
    oldest: i64,
    newest: i64,
    /// Observations whose time was outside the accepted window (older than the retention,
    /// or more than a day ahead).
    pub rejected: u64,
    /// Observations recorded.
    pub observed: u64,
    scratch: Vec<(Vec<u8>, u32)>,
}

impl Pending {
    /// An empty buffer accepting events from `now − retention` to `now + 1 day`.
    pub fn new(cfg: &RetroConfig, now: i64) -> Pending {
        Pending {
            map: HashMap::new(),
            clients: cfg.clients,
            oldest: now.saturating_sub(cfg.retention_secs()),
            newest: now.saturating_add(MAX_FUTURE_SECS),
            rejected: 0,
            observed: 0,
            scratch: Vec::new(),
        }
    }

    /// Distinct (hour, value) pairs held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
        let mut keys = std::mem::take(&mut self.scratch);
        obs.for_each_matchable(true, |field, value| {
            let Some(key) = key_of(value) else { return };
            let bit = field_bit(field);
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, bits)) => *bits |= bit,
                None => keys.push((key, bit)),
            }
        });
        for (key, bits) in keys.drain(..) {
            let one = Stats::one(t, bits, client, cap);
            match self.map.entry((hour, key)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&one, cap),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(one);
                }
            }
        }
        self.scratch = keys;
    }

    /// Fold another buffer (a worker's) into this one.
    pub fn absorb(&mut self, other: Pending) {
        self.rejected += other.rejected;
        self.observed += other.observed;
        let cap = self.clients;
        if self.map.is_empty() {
            self.map = other.map;
            return;
        }
        for (k, s) in other.map {
            match self.map.get_mut(&k) {
                Some(m) => m.merge(&s, cap),
                None => {
                    self.map.insert(k, s);
                }
            }
        }
    }

    /// Everything held, by partition: the days over at `now` (a day and an hour of grace
    /// before it) as whole days, the others by hour; sorted once into the segments' order.
    fn take_partitions(&mut self, now: i64) -> (Partitions, Partitions) {
        let mut all: Vec<(bool, i64, Vec<u8>, Stats)> = self
            .map
            .drain()
            .map(|((hour, key), s)| {
                let day = day_of(hour);
                if day + DAY + HOUR <= now {
                    (true, day, key, s)
                } else {
                    (false, hour, key, s)
                }
            })
            .collect();
        all.sort_unstable_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        let (mut days, mut hours) = (Partitions::new(), Partitions::new());
        let cap = self.clients;
        for (closed, start, key, s) in all {
            let part = if closed { &mut days } else { &mut hours };
            let entries = part.entry(start).or_default();
            match entries.last_mut() {
                Some((k, have)) if *k == key => have.merge(&s, cap),
                _ => entries.push((key, s)),
            }
        }
        (days, hours)
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

/// The writer of the index: what workers observed, flushed into segments.
#[derive(Debug)]
pub struct Recorder {
    _lock: DataLock,
    store: RetroStore,
    cfg: RetroConfig,
    pending: Pending,
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
            totals: RecordTotals::default(),
        })
    }

    /// An empty buffer for a worker, with this recorder's window and client cap.
    pub fn buffer(&self) -> Pending {
        Pending::new(&self.cfg, now_secs())
    }

    /// Take a worker's buffer; flushes when too much is held.
    pub fn absorb(&mut self, p: Pending) -> Result<(), RetroError> {
        self.pending.absorb(p);
        if self.pending.len() >= MAX_PENDING {
            self.flush()?;
        }
        Ok(())
    }

    /// Write what is held as hour segments, compact the days that are over and prune.
    pub fn flush(&mut self) -> Result<(), RetroError> {
        let now = now_secs();
        let (days, hours) = self.pending.take_partitions(now);
        self.totals.segments += (days.len() + hours.len()) as u64;
        self.totals.observed += std::mem::take(&mut self.pending.observed);
        self.totals.rejected += std::mem::take(&mut self.pending.rejected);
        // Days already over go straight into their day segments.
        self.store.write_days(days, self.cfg.clients)?;
        self.store.write_hours(hours)?;
        self.store.compact(now, self.cfg.clients)?;
        self.store
            .prune(now, self.cfg.retention_secs(), self.cfg.max_bytes);
        self.pending = Pending::new(&self.cfg, now);
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
        let (days, hours) = p.take_partitions(now);
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
}
