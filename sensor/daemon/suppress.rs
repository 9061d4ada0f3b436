//! Repeat suppression (ARCHITECTURE.md §6): repeats of the same (indicator, source ip) inside a window
//! are folded into one alert carrying `trawl.repeat_count`, never silently dropped.

use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

struct Entry {
    window_start: Instant,
    suppressed: u64,
    last: Option<Value>,
}

/// Folds repeated alerts.
pub struct Suppressor {
    window: Duration,
    entries: HashMap<(String, String), Entry>,
    max_keys: usize,
}

/// Open windows tracked at most. Each may hold its last repeat (a few KiB as JSON), so this
/// bounds the memory of suppression; beyond it alerts pass unfolded.
const MAX_KEYS: usize = 50_000;

fn key_of(alert: &Value) -> (String, String) {
    let ind = alert["trawl"]["matched"]["indicator"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let src = alert["source"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (ind, src)
}

fn with_count(mut alert: Value, count: u64) -> Value {
    if let Some(t) = alert.get_mut("trawl").and_then(Value::as_object_mut) {
        t.insert("repeat_count".into(), count.into());
    }
    alert
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
    pub fn offer(&mut self, alert: Value, now: Instant, out: &mut Vec<Value>) {
        let key = key_of(&alert);
        match self.entries.get_mut(&key) {
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
                        key,
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
    pub fn expire(&mut self, now: Instant) -> Vec<Value> {
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
        out
    }

    /// Everything still folded (shutdown).
    pub fn drain(&mut self) -> Vec<Value> {
        let out = self
            .entries
            .drain()
            .filter_map(|(_, mut e)| e.last.take().map(|l| with_count(l, e.suppressed)))
            .collect();
        out
    }
}

/// A `Write` adaptor for `scan`/`replay --suppress`: alert lines pass through a
/// [`Suppressor`] clocked by each alert's own `@timestamp` (event time, so an offline replay
/// folds exactly as the live sensor would have). Call [`SuppressWriter::finish`] at the end.
pub struct SuppressWriter<W: Write> {
    inner: W,
    suppressor: Suppressor,
    epoch: Instant,
    pending: Vec<u8>,
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
            pending: Vec::new(),
            folded: 0,
        }
    }

    fn event_instant(&self, alert: &Value) -> Instant {
        // Map event time onto the Instant scale: epoch + (t - 2000-01-01).
        let ms = alert["@timestamp"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64 - 946_684_800_000)
            .unwrap_or(0)
            .max(0);
        self.epoch + Duration::from_millis(ms as u64)
    }

    fn line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            self.inner.write_all(line)?;
            return self.inner.write_all(b"\n");
        };
        let now = self.event_instant(&v);
        for old in self.suppressor.expire(now) {
            serde_json::to_writer(&mut self.inner, &old)?;
            self.inner.write_all(b"\n")?;
        }
        let mut emit = Vec::new();
        self.suppressor.offer(v, now, &mut emit);
        if emit.is_empty() {
            self.folded += 1;
        }
        for v in emit {
            serde_json::to_writer(&mut self.inner, &v)?;
            self.inner.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Write what is still folded (with its count) and flush.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(&rest)?;
        }
        for v in self.suppressor.drain() {
            serde_json::to_writer(&mut self.inner, &v)?;
            self.inner.write_all(b"\n")?;
        }
        self.inner.flush()?;
        Ok(self.folded)
    }
}

impl<W: Write> Write for SuppressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = memchr::memchr(b'\n', &self.pending) {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let line = &line[..line.len() - 1];
            if !line.is_empty() {
                self.line(line)?;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(n: u64) -> Value {
        json!({"source":{"ip":"10.0.0.1"},"trawl":{"matched":{"indicator":"evil.example"}},"n":n})
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
        for (n, t) in [(1, "00:00"), (2, "00:10"), (3, "00:20"), (4, "02:00")] {
            let a = json!({"@timestamp": format!("2026-11-28T06:{t}.000Z"),
                "source":{"ip":"10.0.0.1"},"trawl":{"matched":{"indicator":"evil.example"}},"n":n});
            w.write_all(format!("{a}\n").as_bytes()).unwrap();
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
    fn past_the_key_bound_alerts_pass_unfolded() {
        let mut s = Suppressor::new(Duration::from_secs(60));
        s.max_keys = 2;
        let t0 = Instant::now();
        let mut out = Vec::new();
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"] {
            let a = json!({"source":{"ip":ip},"trawl":{"matched":{"indicator":"evil.example"}}});
            s.offer(a, t0, &mut out);
        }
        assert_eq!(
            out.len(),
            4,
            "the untracked key is not folded, nothing is lost"
        );
        assert_eq!(s.entries.len(), 2);
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
        assert_eq!(out[0]["trawl"]["repeat_count"], 1);
        assert_eq!(out[0]["n"], 2);
        assert!(s.expire(t0 + Duration::from_secs(30)).is_empty());
    }
}
