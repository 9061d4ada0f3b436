//! `[retro]` in the daemon (ARCHITECTURE.md §10): every batch's observations recorded, the
//! index flushed every `flush` (taken from the recorder under its lock, written without it,
//! so the sources keep recording while the segments are built), and at every snapshot load the indicators that are new or
//! whose confidence rose checked against the index; each hit is a retro alert to the sinks,
//! once per (indicator, observed value, day partition), remembered across restarts in
//! `DATA/retro/alerted` (written only after the sinks made the alerts durable).

use crate::alert::{AlertBatch, AlertContext};
use crate::correlate::{Correlator, HitFilter};
use crate::retro::config::RetroConfig;
use crate::retro::hunt::{hunt, HuntScope};
use crate::retro::record::{now_secs, Recorder};
use crate::retro::store::RetroStore;
use crate::retro::RetroError;
use matcher::Snapshot;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The daemon's retro index: the recorder its sources feed and what was already alerted.
pub struct RetroDaemon {
    recorder: Mutex<Recorder>,
    /// Held while a flush is taken and written, so flushes write in the order taken.
    flushing: Mutex<()>,
    cfg: RetroConfig,
    dir: PathBuf,
    alerted: Mutex<HashSet<String>>,
}

/// The key of one retro alert in `DATA/retro/alerted`: itype, indicator, observed value and
/// day partition, tab-separated (values hold no tabs: they are normalised).
fn alert_key(itype: &str, indicator: &str, observed: &str, partition: i64) -> String {
    format!("{itype}\t{indicator}\t{observed}\t{partition}")
}

impl RetroDaemon {
    /// Open the index of `data` for `[retro]`.
    pub fn open(data: &Path, table: &toml::Table) -> Result<RetroDaemon, RetroError> {
        let cfg = RetroConfig::from_table(table)?;
        let recorder = Recorder::open(data, cfg.clone())?;
        for e in &recorder.set_aside() {
            tracing::warn!("retro index: {e}; set aside, the rest still answers");
        }
        let dir = RetroStore::dir_of(data);
        let horizon = now_secs().saturating_sub(cfg.retention_secs());
        // What was alerted, minus the partitions the retention has dropped.
        let alerted: HashSet<String> = std::fs::read_to_string(dir.join("alerted"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.rsplit('\t')
                    .next()
                    .and_then(|p| p.parse::<i64>().ok())
                    .is_some_and(|p| p + crate::retro::DAY > horizon)
            })
            .map(str::to_string)
            .collect();
        Ok(RetroDaemon {
            recorder: Mutex::new(recorder),
            flushing: Mutex::new(()),
            cfg,
            dir,
            alerted: Mutex::new(alerted),
        })
    }

    /// The recorder the sources hand their observations to.
    pub fn recorder(&self) -> &Mutex<Recorder> {
        &self.recorder
    }

    /// Write what was observed; a failure (a full disk) is a warning and recording goes on
    /// trying at the next flush, while alerting never stops. The recorder is held only to
    /// take what its buffers hold: the sources record into new ones while it is written.
    pub fn flush(&self) {
        let _one = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let taken = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Err(e) = taken.write() {
            tracing::warn!("retro index: recording failed, retrying at the next flush: {e}");
        }
    }

    /// Flush every `flush` until `stop`.
    pub fn flush_loop(&self, stop: &AtomicBool) {
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() >= self.cfg.flush {
                self.flush();
                last = Instant::now();
            }
        }
    }

    /// The snapshot version last checked, from `DATA/retro/checked`.
    pub fn checked_version(&self) -> Option<u64> {
        std::fs::read_to_string(self.dir.join("checked"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The retro alerts of `new` (its indicators absent from `prev` or of higher confidence
    /// there), not yet alerted; `deliver` hands them to the sinks and returns once durable,
    /// after which they are remembered. Returns how many were delivered.
    pub fn check(
        &self,
        prev: Option<&Snapshot>,
        new: &Snapshot,
        ctx: &AlertContext,
        typed: bool,
        deliver: impl FnOnce(AlertBatch) -> Result<(), String>,
    ) -> Result<usize, String> {
        let started = Instant::now();
        let ids: Vec<u32> = new
            .iter()
            .enumerate()
            .filter(|(_, ind)| {
                let before = prev.and_then(|p| {
                    p.find(ind.itype, &ind.value)
                        .and_then(|id| p.try_indicator(id))
                });
                before.is_none_or(|b| ind.confidence > b.confidence)
            })
            .filter_map(|(id, _)| u32::try_from(id).ok())
            .collect();
        self.flush();
        let now = now_secs();
        let scope = HuntScope {
            since: now.saturating_sub(self.cfg.retention_secs()),
            per_partition: true,
            clients: self.cfg.clients,
        };
        let correlator = Correlator::new(new, HitFilter::default());
        // The recorder is held only to take a view of the index: the sources keep
        // recording while the indicators are hunted.
        let view = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .view();
        let found = hunt(&view, new, &correlator, ids.iter().copied(), scope);
        let mut batch = AlertBatch::new(typed);
        let mut keys = Vec::new();
        let mut in_batch = HashSet::new();
        {
            let alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
            for s in &found {
                let key = alert_key(
                    s.hit.indicator.itype.as_str(),
                    &s.hit.indicator.value,
                    &s.observed.text(),
                    s.partition.unwrap_or(0),
                );
                if alerted.contains(&key) || !in_batch.insert(key.clone()) {
                    continue;
                }
                batch.push(s.alert(ctx, now.saturating_mul(1_000_000_000)));
                keys.push(key);
            }
        }
        let n = keys.len();
        if n > 0 {
            deliver(batch)?;
            self.remember(&keys).map_err(|e| e.to_string())?;
        }
        let _ = crate::data_files::replace_durably(
            &self.dir.join("checked"),
            new.meta().version.to_string().as_bytes(),
        );
        tracing::info!(
            indicators = ids.len(),
            alerts = n,
            seconds = started.elapsed().as_secs_f64(),
            "retro check of snapshot {}",
            new.meta().version
        );
        Ok(n)
    }

    fn remember(&self, keys: &[String]) -> Result<(), RetroError> {
        let path = self.dir.join("alerted");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(RetroError::io(&path))?;
        let mut text = String::new();
        for k in keys {
            text.push_str(k);
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(RetroError::io(&path))?;
        let mut alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
        alerted.extend(keys.iter().cloned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retro::key::key_of;
    use crate::retro::segment::Stats;
    use crate::retro::store::Partitions;
    use crate::retro::{DAY, HOUR};
    use ingest::{MatchValue, Observation};
    use matcher::{Indicator, IndicatorType, SnapshotBuilder};
    use std::borrow::Cow;
    use std::sync::atomic::AtomicBool;

    /// A live source: records `live.example` every 2 ms until `done`; returns the longest
    /// it waited for the recorder.
    fn record_live_until(retro: &RetroDaemon, now: i64, done: &AtomicBool) -> Duration {
        let mut max_wait = Duration::ZERO;
        let obs = Observation {
            timestamp_ns: Some(now * 1_000_000_000),
            dns_question_name: Some(Cow::Borrowed("live.example")),
            ..Observation::default()
        };
        while !done.load(Ordering::SeqCst) {
            let asked = Instant::now();
            let mut r = retro.recorder().lock().unwrap();
            max_wait = max_wait.max(asked.elapsed());
            let mut b = r.buffer();
            b.observe(&obs, 0);
            r.absorb(b).unwrap();
            drop(r);
            std::thread::sleep(Duration::from_millis(2));
        }
        max_wait
    }

    /// Runs `work` while a live source records (`record_live_until`); returns what `work`
    /// returned, how long it took and the longest the source waited for the recorder.
    fn beside_a_live_source<T>(
        retro: &RetroDaemon,
        now: i64,
        work: impl FnOnce() -> T,
    ) -> (T, Duration, Duration) {
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let source = s.spawn(|| record_live_until(retro, now, &done));
            let started = Instant::now();
            let out = work();
            let elapsed = started.elapsed();
            done.store(true, Ordering::SeqCst);
            (out, elapsed, source.join().unwrap())
        })
    }

    #[test]
    fn sources_keep_recording_while_a_retro_check_hunts() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_secs();
        // 10 days of 2,000 names each.
        let names: Vec<String> = (0..2000).map(|i| format!("n{i}.example")).collect();
        {
            let mut store = RetroStore::open(&RetroStore::dir_of(dir.path())).unwrap();
            let mut days = Partitions::new();
            for d in 2..12 {
                let day = (now / DAY - d) * DAY;
                let mut entries: Vec<(Vec<u8>, Stats)> = names
                    .iter()
                    .map(|n| {
                        let k = key_of(MatchValue::Domain(n)).unwrap();
                        (k, Stats::one(day + HOUR, 1, None, 0))
                    })
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                days.insert(day, entries);
            }
            store.write_days(days, 0).unwrap();
        }
        let table: toml::Table = "retention = \"90d\"".parse().unwrap();
        let retro = RetroDaemon::open(dir.path(), &table).unwrap();
        // 10 indicators seen, 10,000 not: the check is mostly hunting.
        let wanted = (0..10)
            .map(|i| format!("n{i}.example"))
            .chain((0..10_000).map(|i| format!("m{i}.example")));
        let snap = SnapshotBuilder::from_indicators(
            wanted
                .map(|n| Indicator::new(n, IndicatorType::Fqdn, "t"))
                .collect(),
        )
        .build()
        .unwrap();
        let ctx = AlertContext {
            observer_name: "t".into(),
        };
        let (n, elapsed, max_wait) = beside_a_live_source(&retro, now, || {
            retro.check(None, &snap, &ctx, false, |_| Ok(())).unwrap()
        });
        assert_eq!(n, 10 * 10, "one retro alert per name and day");
        // The check hunts for most of its time; the live source never waits that long.
        assert!(
            elapsed > Duration::from_millis(200),
            "{elapsed:?}: too quick to tell"
        );
        assert!(
            max_wait < elapsed / 3,
            "a live source waited {max_wait:?} for the recorder during a {elapsed:?} check"
        );
    }

    #[test]
    fn sources_keep_recording_while_a_flush_writes() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_secs();
        let table: toml::Table = "retention = \"90d\"".parse().unwrap();
        let retro = RetroDaemon::open(dir.path(), &table).unwrap();
        // 200,000 distinct URLs held: the flush sorts, merges and writes them.
        {
            let mut r = retro.recorder().lock().unwrap();
            let mut b = r.buffer();
            for i in 0..200_000 {
                let url = format!("http://h{}.example/p/{i}", i % 5000);
                let obs = Observation {
                    timestamp_ns: Some(now * 1_000_000_000),
                    url_full: Some(Cow::Owned(url)),
                    ..Observation::default()
                };
                b.observe(&obs, 0);
            }
            r.absorb(b).unwrap();
        }
        let ((), elapsed, max_wait) = beside_a_live_source(&retro, now, || retro.flush());
        assert!(
            elapsed > Duration::from_millis(100),
            "{elapsed:?}: too quick to tell"
        );
        assert!(
            max_wait < elapsed / 3,
            "a source waited {max_wait:?} for the recorder during a {elapsed:?} flush"
        );
        // What the source recorded meanwhile is written by the next flush.
        let live = key_of(MatchValue::Domain("live.example")).unwrap();
        let url = key_of(MatchValue::Url("http://h0.example/p/0")).unwrap();
        let view = retro.recorder().lock().unwrap().view();
        assert!(view
            .segments()
            .iter()
            .any(|s| matches!(s.get(&url), Ok(Some(_)))));
        retro.flush();
        let view = retro.recorder().lock().unwrap().view();
        assert!(view
            .segments()
            .iter()
            .any(|s| matches!(s.get(&live), Ok(Some(_)))));
    }
}
