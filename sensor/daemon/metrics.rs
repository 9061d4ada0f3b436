//! Daemon counters and their Prometheus text rendering (`/metrics`).

use ingest::packet::LiveStats;
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
    /// Packets captured (decoded), all interfaces.
    pub packets: AtomicU64,
    /// Captured packet bytes, all interfaces.
    pub packet_bytes: AtomicU64,
    /// Packets (or layers) the decoder could not decode, all interfaces.
    pub packet_decode_errors: AtomicU64,
    /// Unparseable lines.
    pub parse_failures: AtomicU64,
    /// Alerts handed to the sinks (after suppression).
    pub alerts: AtomicU64,
    /// Alerts folded by suppression.
    pub suppressed: AtomicU64,
    /// Packets dropped by the kernel or interface (sum of the per-interface figures).
    pub drops: AtomicU64,
    /// Paths that came to name a new file (rename rotations seen by the tailers).
    pub rotations: AtomicU64,
    /// Files found truncated (copytruncate).
    pub truncations: AtomicU64,
    /// Over-long lines cut by the tailers.
    pub lines_truncated: AtomicU64,
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
    /// Bytes not yet read, per tailed file (one map per file source, replaced as a whole).
    pub lag_by_source: Mutex<BTreeMap<usize, BTreeMap<String, u64>>>,
    /// Live capture counters per interface.
    pub captures: Mutex<BTreeMap<String, CaptureCounters>>,
}

/// Live counters of one interface (cumulative since the daemon started, across re-opens).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    /// Packets captured and decoded.
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Packets that passed the filter (libpcap `ps_recv`).
    pub received: u64,
    /// Dropped by the kernel: the capture buffer was full (`ps_drop`).
    pub kernel_dropped: u64,
    /// Dropped by the interface or driver (`ps_ifdrop`).
    pub if_dropped: u64,
    /// Capture errors (the interface is re-opened).
    pub errors: u64,
}

/// Growth of a libpcap counter (32-bit in `struct pcap_stat`, so it wraps).
fn delta32(now: u64, last: u64) -> u64 {
    if now >= last {
        now - last
    } else {
        (now + (1 << 32)).saturating_sub(last)
    }
}

impl Metrics {
    /// Fold in a live capture's cumulative counters `now`; `last` holds what was folded in
    /// before from the same capture (start from `LiveStats::default()` for each new open).
    pub fn record_capture(&self, iface: &str, now: &LiveStats, last: &mut LiveStats) {
        let packets = now.decode.packets.saturating_sub(last.decode.packets);
        let bytes = now.decode.bytes.saturating_sub(last.decode.bytes);
        let undecoded = |s: &LiveStats| s.decode.dropped_by_reason.values().sum::<u64>();
        let decode_errors = undecoded(now).saturating_sub(undecoded(last));
        let received = delta32(now.received, last.received);
        let kernel = delta32(now.kernel_dropped, last.kernel_dropped);
        let ifdrop = delta32(now.if_dropped, last.if_dropped);
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.packet_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.packet_decode_errors
            .fetch_add(decode_errors, Ordering::Relaxed);
        self.drops.fetch_add(kernel + ifdrop, Ordering::Relaxed);
        if let Ok(mut m) = self.captures.lock() {
            let c = m.entry(iface.to_string()).or_default();
            c.packets += packets;
            c.bytes += bytes;
            c.received += received;
            c.kernel_dropped += kernel;
            c.if_dropped += ifdrop;
        }
        *last = now.clone();
    }

    /// Count a capture error on `iface`.
    pub fn capture_error(&self, iface: &str) {
        if let Ok(mut m) = self.captures.lock() {
            m.entry(iface.to_string()).or_default().errors += 1;
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let counters: [(&str, &str, &AtomicU64); 14] = [
            ("trawl_lines_total", "Log lines read.", &self.lines),
            ("trawl_bytes_total", "Log bytes read.", &self.bytes),
            (
                "trawl_packets_total",
                "Packets captured, all interfaces.",
                &self.packets,
            ),
            (
                "trawl_packet_bytes_total",
                "Captured packet bytes, all interfaces.",
                &self.packet_bytes,
            ),
            (
                "trawl_packet_decode_errors_total",
                "Packets or layers not decoded.",
                &self.packet_decode_errors,
            ),
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
            (
                "trawl_file_rotations_total",
                "Rename rotations seen by the tailers.",
                &self.rotations,
            ),
            (
                "trawl_file_truncations_total",
                "Truncated (copytruncate) files seen by the tailers.",
                &self.truncations,
            ),
            (
                "trawl_lines_truncated_total",
                "Over-long lines cut by the tailers.",
                &self.lines_truncated,
            ),
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
        if let Ok(m) = self.lag_by_source.lock() {
            let files: BTreeMap<&String, u64> =
                m.values().flatten().map(|(f, n)| (f, *n)).collect();
            for (file, n) in files {
                let _ = writeln!(s, "trawl_file_lag_bytes{{file=\"{}\"}} {n}", escape(file));
            }
        }
        if let Ok(m) = self.captures.lock() {
            type Field = fn(&CaptureCounters) -> u64;
            let per_iface: [(&str, &str, Field); 6] = [
                (
                    "trawl_capture_packets_total",
                    "Packets captured per interface.",
                    |c| c.packets,
                ),
                (
                    "trawl_capture_bytes_total",
                    "Captured bytes per interface.",
                    |c| c.bytes,
                ),
                (
                    "trawl_capture_received_total",
                    "Packets that passed the filter per interface (libpcap ps_recv).",
                    |c| c.received,
                ),
                (
                    "trawl_capture_kernel_drops_total",
                    "Packets dropped by the kernel, capture buffer full (ps_drop).",
                    |c| c.kernel_dropped,
                ),
                (
                    "trawl_capture_interface_drops_total",
                    "Packets dropped by the interface or driver (ps_ifdrop).",
                    |c| c.if_dropped,
                ),
                (
                    "trawl_capture_errors_total",
                    "Capture errors per interface (re-opened).",
                    |c| c.errors,
                ),
            ];
            for (name, help, field) in per_iface {
                let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
                for (iface, c) in m.iter() {
                    let _ = writeln!(s, "{name}{{interface=\"{}\"}} {}", escape(iface), field(c));
                }
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

    #[test]
    fn capture_counters_add_deltas_and_survive_wrap() {
        let m = Metrics::default();
        let mut last = LiveStats::default();
        let mut now = LiveStats::default();
        now.decode.packets = 10;
        now.decode.bytes = 1000;
        now.received = (1 << 32) - 5;
        now.kernel_dropped = 2;
        m.record_capture("lo", &now, &mut last);
        now.decode.packets = 15;
        now.decode.bytes = 1500;
        now.received = 5; // the 32-bit libpcap counter wrapped
        now.kernel_dropped = 3;
        now.if_dropped = 4;
        m.record_capture("lo", &now, &mut last);
        let c = m.captures.lock().unwrap()["lo"].clone();
        assert_eq!((c.packets, c.bytes), (15, 1500));
        assert_eq!(c.received, (1 << 32) + 5);
        assert_eq!((c.kernel_dropped, c.if_dropped), (3, 4));
        assert_eq!(m.drops.load(Ordering::Relaxed), 7);
        let text = m.render();
        assert!(text.contains("\ntrawl_packets_total 15\n"), "{text}");
        assert!(text.contains("\ntrawl_packet_bytes_total 1500\n"), "{text}");
        assert!(
            text.contains("trawl_capture_kernel_drops_total{interface=\"lo\"} 3"),
            "{text}"
        );
    }
}
