//! Repeat suppression (ARCHITECTURE.md §6): repeats of the same (indicator, source ip) inside a window
//! are folded into one alert carrying `trawl.repeat_count`, never silently dropped.

use crate::alert::{Alert, AlertBatch, AlertOutput, SuppressKey};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

struct Entry {
    window_start: Instant,
    suppressed: u64,
    last: Option<Alert>,
}

/// Folds repeated alerts.
pub(crate) struct Suppressor {
    window: Duration,
    entries: HashMap<SuppressKey, Entry>,
    max_keys: usize,
}

/// Open windows tracked at most. Each may hold its last repeat (a few KiB), so this bounds
/// the memory of suppression; beyond it alerts pass unfolded.
const MAX_KEYS: usize = 50_000;

fn with_count(mut alert: Alert, count: u64) -> Alert {
    alert.set_repeat_count(count);
    alert
}

/// Windows closing together come out in the order of their last repeat's event time (then
/// key), not in the hash map's: the same input gives the same output.
fn in_order(mut alerts: Vec<Alert>) -> Vec<Alert> {
    alerts.sort_by(|a, b| (a.time_ns, &a.key).cmp(&(b.time_ns, &b.key)));
    alerts
}

impl Suppressor {
    /// Fold repeats within `window`.
    pub fn new(window: Duration) -> Self {
        Suppressor {
            window,
            entries: HashMap::new(),
            max_keys: MAX_KEYS,
        }
    }

    /// Offer one alert at `now`; what must be written now goes to `out`: nothing (a repeat,
    /// folded), the alert itself (the first of its window), or — when it opens a new window
    /// before [`Suppressor::expire`] closed the old one — the old window's last repeat with its
    /// count, then the alert. Either way an alert with `trawl.repeat_count = N` stands for N
    /// hits (itself included) and one without it for one, so the counts always add up.
    pub fn offer(&mut self, alert: Alert, now: Instant, out: &mut Vec<Alert>) {
        match self.entries.get_mut(&alert.key) {
            Some(e) if now.duration_since(e.window_start) < self.window => {
                e.suppressed += 1;
                e.last = Some(alert);
            }
            Some(e) => {
                if let Some(last) = e.last.take() {
                    out.push(with_count(last, e.suppressed));
                }
                e.window_start = now;
                e.suppressed = 0;
                out.push(alert);
            }
            None => {
                // Bounded memory: past `max_keys` open windows new keys are not tracked (their
                // alerts pass unfolded) until windows close.
                if self.entries.len() < self.max_keys {
                    self.entries.insert(
                        alert.key.clone(),
                        Entry {
                            window_start: now,
                            suppressed: 0,
                            last: None,
                        },
                    );
                }
                out.push(alert);
            }
        }
    }

    /// Windows that ended with folded repeats and no later alert: emit their last repeat with
    /// the count, so nothing is silently dropped. Idle entries are forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        let window = self.window;
        self.entries.retain(|_, e| {
            if now.duration_since(e.window_start) < window {
                return true;
            }
            if let Some(last) = e.last.take() {
                out.push(with_count(last, e.suppressed));
            }
            false
        });
        in_order(out)
    }

    /// Everything still folded (shutdown).
    pub fn drain(&mut self) -> Vec<Alert> {
        in_order(
            self.entries
                .drain()
                .filter_map(|(_, mut e)| e.last.take().map(|l| with_count(l, e.suppressed)))
                .collect(),
        )
    }
}

/// The alert output of `scan`/`replay`/`sniff --suppress`: alerts pass through a
/// [`Suppressor`] clocked by each alert's own event time (`@timestamp`, so an offline replay
/// folds exactly as the live sensor would have). Call [`SuppressWriter::finish`] at the end.
pub struct SuppressWriter<W: Write> {
    inner: W,
    suppressor: Suppressor,
    epoch: Instant,
    /// Alerts folded into later ones.
    pub folded: u64,
}

impl<W: Write> SuppressWriter<W> {
    /// Fold repeats within `window` before writing to `inner`.
    pub fn new(inner: W, window: Duration) -> Self {
        SuppressWriter {
            inner,
            suppressor: Suppressor::new(window),
            epoch: Instant::now(),
            folded: 0,
        }
    }

    /// Event time on the Instant scale: epoch + (t - 2000-01-01), at millisecond precision
    /// (that of `@timestamp`); earlier times are the epoch.
    fn event_instant(&self, time_ns: i64) -> Instant {
        let ms = time_ns
            .div_euclid(1_000_000)
            .saturating_sub(946_684_800_000)
            .max(0);
        self.epoch + Duration::from_millis(ms as u64)
    }

    fn alert(&mut self, alert: Alert) -> std::io::Result<()> {
        let now = self.event_instant(alert.time_ns);
        for old in self.suppressor.expire(now) {
            old.write_line(&mut self.inner)?;
        }
        let mut emit = Vec::new();
        self.suppressor.offer(alert, now, &mut emit);
        if emit.is_empty() {
            self.folded += 1;
        }
        for a in &emit {
            a.write_line(&mut self.inner)?;
        }
        Ok(())
    }

    /// Write what is still folded (with its count) and flush; returns how many alerts were
    /// folded.
    pub fn finish(mut self) -> std::io::Result<u64> {
        for a in self.suppressor.drain() {
            a.write_line(&mut self.inner)?;
        }
        self.inner.flush()?;
        Ok(self.folded)
    }
}

impl<W: Write> AlertOutput for SuppressWriter<W> {
    fn wants_typed(&self) -> bool {
        true
    }
    /// Lines (observations, or alerts rendered by a producer that did not ask
    /// [`AlertOutput::wants_typed`]) pass as they are; typed alerts are folded.
    fn write_batch(&mut self, batch: AlertBatch) -> std::io::Result<()> {
        self.inner.write_all(&batch.lines)?;
        for a in batch.typed {
            self.alert(a)?;
        }
        Ok(())
    }
    fn flush_alerts(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// An alert on `evil.example` from `ip` at `time_ns`, numbered `n` in its document.
    fn alert_from(ip: &str, time_ns: i64, n: u64) -> Alert {
        let doc =
            json!({"source":{"ip":ip},"trawl":{"matched":{"indicator":"evil.example"}},"n":n});
        let Value::Object(doc) = doc else {
            unreachable!("an object literal")
        };
        let key = SuppressKey {
            indicator: "evil.example".into(),
            source_ip: Some(ip.parse().unwrap()),
        };
        Alert::from_parts(key, time_ns, doc)
    }

    fn alert(n: u64) -> Alert {
        alert_from("10.0.0.1", 0, n)
    }

    fn doc(a: &Alert) -> Value {
        Value::Object(a.doc().clone())
    }

    #[test]
    fn folds_and_counts() {
        let mut s = Suppressor::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut out = Vec::new();
        s.offer(alert(1), t0, &mut out);
        assert_eq!(out.len(), 1, "the first alert passes");
        s.offer(alert(2), t0 + Duration::from_secs(1), &mut out);
        s.offer(alert(3), t0 + Duration::from_secs(2), &mut out);
        assert_eq!(out.len(), 1, "repeats are folded");
        // A new window before expire() ran: the old window's last repeat, with the count of
        // the hits it stands for, comes out before the new alert (none is lost or merged).
        s.offer(alert(4), t0 + Duration::from_secs(61), &mut out);
        assert_eq!(out.len(), 3);
        let out: Vec<Value> = out.iter().map(doc).collect();
        assert_eq!(out[1]["n"], 3);
        assert_eq!(out[1]["trawl"]["repeat_count"], 2);
        assert_eq!(out[2]["n"], 4);
        assert!(out[2]["trawl"].get("repeat_count").is_none());
        let hits: u64 = out
            .iter()
            .map(|a| a["trawl"]["repeat_count"].as_u64().unwrap_or(1))
            .sum();
        assert_eq!(hits, 4, "counts add up to the hits offered");
    }

    #[test]
    fn writer_folds_by_event_time() {
        let mut out = Vec::new();
        let mut w = SuppressWriter::new(&mut out, Duration::from_secs(60));
        // 2026-11-28T06:00:00Z, then 10 s, 20 s and 2 min later.
        let t0 = 1_795_845_600_000_000_000i64;
        for (n, secs) in [(1, 0), (2, 10), (3, 20), (4, 120)] {
            let mut batch = AlertBatch::new(w.wants_typed());
            batch.push(alert_from("10.0.0.1", t0 + secs * 1_000_000_000, n));
            w.write_batch(batch).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 2);
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // The first alert, then (window over) the last repeat carrying the folded count,
        // then the alert of the new window.
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["n"], 1);
        assert!(lines[0]["trawl"].get("repeat_count").is_none());
        assert_eq!(lines[1]["n"], 3);
        assert_eq!(lines[1]["trawl"]["repeat_count"], 2);
        assert_eq!(lines[2]["n"], 4);
    }

    #[test]
    fn times_before_2000_share_the_epoch_and_fold_together() {
        let mut out = Vec::new();
        let mut w = SuppressWriter::new(&mut out, Duration::from_secs(60));
        for (n, t) in [(1, -5_000_000_000i64), (2, 0), (3, 900_000_000_000_000_000)] {
            let mut batch = AlertBatch::new(true);
            batch.push(alert_from("10.0.0.1", t, n));
            w.write_batch(batch).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 2, "1999 and earlier are one instant");
    }

    #[test]
    fn rendered_lines_pass_the_writer_unfolded() {
        let mut out = Vec::new();
        let mut w = SuppressWriter::new(&mut out, Duration::from_secs(60));
        let mut batch = AlertBatch::new(false);
        batch.push(alert(1));
        batch.push(alert(2));
        w.write_batch(batch).unwrap();
        assert_eq!(w.finish().unwrap(), 0);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 2);
    }

    #[test]
    fn past_the_key_bound_alerts_pass_unfolded() {
        let mut s = Suppressor::new(Duration::from_secs(60));
        s.max_keys = 2;
        let t0 = Instant::now();
        let mut out = Vec::new();
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"] {
            s.offer(alert_from(ip, 0, 0), t0, &mut out);
        }
        assert_eq!(
            out.len(),
            4,
            "the untracked key is not folded, nothing is lost"
        );
        assert_eq!(s.entries.len(), 2);
    }

    #[test]
    fn windows_closing_together_come_out_in_event_time_order() {
        let t0 = Instant::now();
        let ips = ["10.0.0.9", "10.0.0.1", "10.0.0.5", "10.0.0.3", "10.0.0.7"];
        for rotate in 0..ips.len() {
            let mut s = Suppressor::new(Duration::from_secs(10));
            let mut out = Vec::new();
            // Each address: a first alert, then a repeat whose event time orders them.
            for (i, ip) in ips.iter().cycle().skip(rotate).take(ips.len()).enumerate() {
                s.offer(alert_from(ip, 0, 0), t0, &mut out);
                let at = 1_000 - i64::try_from(i).unwrap();
                s.offer(alert_from(ip, at, 1), t0, &mut out);
            }
            let times: Vec<i64> = s
                .expire(t0 + Duration::from_secs(11))
                .iter()
                .map(|a| a.time_ns)
                .collect();
            let mut sorted = times.clone();
            sorted.sort_unstable();
            assert_eq!(times.len(), ips.len());
            assert_eq!(times, sorted, "offered from {rotate}");
        }
        // Shutdown drains in the same order.
        let mut s = Suppressor::new(Duration::from_secs(10));
        let mut out = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            s.offer(alert_from(ip, 0, 0), t0, &mut out);
            s.offer(
                alert_from(ip, 50 - i64::try_from(i).unwrap(), 1),
                t0,
                &mut out,
            );
        }
        let drained: Vec<i64> = s.drain().iter().map(|a| a.time_ns).collect();
        assert_eq!(drained, [46, 47, 48, 49, 50]);
    }

    #[test]
    fn expiry_emits_folded_repeats() {
        let mut s = Suppressor::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let mut out = Vec::new();
        s.offer(alert(1), t0, &mut out);
        s.offer(alert(2), t0 + Duration::from_secs(1), &mut out);
        let out = s.expire(t0 + Duration::from_secs(11));
        assert_eq!(out.len(), 1);
        assert_eq!(doc(&out[0])["trawl"]["repeat_count"], 1);
        assert_eq!(doc(&out[0])["n"], 2);
        assert!(s.expire(t0 + Duration::from_secs(30)).is_empty());
    }
}
