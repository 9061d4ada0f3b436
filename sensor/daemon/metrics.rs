//! Daemon counters and their Prometheus text rendering (`/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters shared by every daemon thread.
#[derive(Default)]
pub struct Metrics {
    /// Log lines read.
    pub lines: AtomicU64,
    /// Log bytes read.
    pub bytes: AtomicU64,
    /// Packets captured.
    pub packets: AtomicU64,
    /// Unparseable lines.
    pub parse_failures: AtomicU64,
    /// Alerts handed to the sinks (after suppression).
    pub alerts: AtomicU64,
    /// Alerts folded by suppression.
    pub suppressed: AtomicU64,
    /// Packets dropped by the kernel or interface.
    pub drops: AtomicU64,
    /// Sink write failures (the batch is retried, never dropped).
    pub sink_errors: AtomicU64,
    /// Snapshots loaded since start (the first counts).
    pub reloads: AtomicU64,
    /// Version of the snapshot in use.
    pub snapshot_version: AtomicU64,
    /// Indicators in the snapshot in use.
    pub snapshot_indicators: AtomicU64,
    /// Alerts by feed.
    pub alerts_by_feed: Mutex<BTreeMap<String, u64>>,
    /// Bytes not yet read, per tailed file.
    pub lag_by_file: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let counters: [(&str, &str, &AtomicU64); 9] = [
            ("trawl_lines_total", "Log lines read.", &self.lines),
            ("trawl_bytes_total", "Log bytes read.", &self.bytes),
            ("trawl_packets_total", "Packets captured.", &self.packets),
            (
                "trawl_parse_failures_total",
                "Unparseable log lines.",
                &self.parse_failures,
            ),
            (
                "trawl_alerts_total",
                "Alerts handed to the sinks.",
                &self.alerts,
            ),
            (
                "trawl_alerts_suppressed_total",
                "Repeats folded by suppression.",
                &self.suppressed,
            ),
            (
                "trawl_drops_total",
                "Packets dropped by kernel or interface.",
                &self.drops,
            ),
            (
                "trawl_sink_errors_total",
                "Sink write failures (retried).",
                &self.sink_errors,
            ),
            ("trawl_reloads_total", "Snapshots loaded.", &self.reloads),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP trawl_snapshot_version Version of the snapshot in use.\n# TYPE trawl_snapshot_version gauge\ntrawl_snapshot_version {}",
            self.snapshot_version.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP trawl_snapshot_indicators Indicators in the snapshot in use.\n# TYPE trawl_snapshot_indicators gauge\ntrawl_snapshot_indicators {}",
            self.snapshot_indicators.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# HELP trawl_alerts_by_feed_total Alerts by feed.\n# TYPE trawl_alerts_by_feed_total counter");
        if let Ok(m) = self.alerts_by_feed.lock() {
            for (feed, n) in m.iter() {
                let _ = writeln!(
                    s,
                    "trawl_alerts_by_feed_total{{feed=\"{}\"}} {n}",
                    escape(feed)
                );
            }
        }
        let _ = writeln!(s, "# HELP trawl_file_lag_bytes Bytes not yet read per tailed file.\n# TYPE trawl_file_lag_bytes gauge");
        if let Ok(m) = self.lag_by_file.lock() {
            for (file, n) in m.iter() {
                let _ = writeln!(s, "trawl_file_lag_bytes{{file=\"{}\"}} {n}", escape(file));
            }
        }
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.lines.store(7, Ordering::Relaxed);
        m.alerts_by_feed.lock().unwrap().insert("a\"b".into(), 3);
        let text = m.render();
        assert!(text.contains("\ntrawl_lines_total 7\n"), "{text}");
        assert!(
            text.contains("trawl_alerts_by_feed_total{feed=\"a\\\"b\"} 3"),
            "{text}"
        );
    }
}
