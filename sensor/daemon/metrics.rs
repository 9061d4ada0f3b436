//! Daemon counters and their Prometheus text rendering (`/metrics`).

use ingest::packet::LiveStats;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Lock a mutex even if a thread panicked while holding it: the counters behind it stay
/// usable (a worker that panicked is restarted, and its figures must keep moving).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    /// Sink failures, all sinks: failed deliveries and refused spool appends (each retried).
    pub sink_errors: AtomicU64,
    /// Sightings batches the server took (`[upstream] sightings`).
    pub sightings_sent: AtomicU64,
    /// Sightings batches written to the sightings spool.
    pub sightings_spooled: AtomicU64,
    /// Sightings batches dropped (the spool full, or not writable).
    pub sightings_dropped: AtomicU64,
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
    /// Counters and spool size per sink (by sink name).
    pub sinks: Mutex<BTreeMap<String, SinkCounters>>,
    /// Panics caught per worker thread.
    pub worker_panics: Mutex<BTreeMap<String, u64>>,
    /// Restarts per worker thread (after a panic or an error).
    pub worker_restarts: Mutex<BTreeMap<String, u64>>,
    /// Failed fetches per feed (scheduled updates of the daemon).
    pub feed_failures: Mutex<BTreeMap<String, u64>>,
    /// What is degraded now, for `/healthz`.
    pub health: Health,
    /// The feeds whose state (`trawl feeds`) is published as gauges, and the data directory
    /// holding it; read at each scrape, so updates by another process show too.
    pub feed_status: Mutex<Option<(feeds::config::Config, std::path::PathBuf)>>,
    /// Labelled series of optional sources and sinks (the Kafka ones), by metric name,
    /// rendered after the built-in metrics.
    pub families: Mutex<BTreeMap<&'static str, Family>>,
}

/// One labelled metric family published by an optional source or sink.
#[derive(Debug, Default)]
pub struct Family {
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Value by rendered label set (`topic="a",partition="0"`).
    pub series: BTreeMap<String, u64>,
}

// Used by the optional sources and sinks only.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
/// A label set in exposition form, values escaped: `topic="a",partition="0"`.
pub fn label_set(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counters of one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Alerts the sink took.
    pub delivered: u64,
    /// Failed deliveries (retried from the spool).
    pub failures: u64,
    /// Alerts refused for good and moved to the dead-letter file.
    pub dead_letter: u64,
    /// Alerts dropped for this sink because its spool was full (`when_full = "drop"`).
    pub dropped: u64,
    /// Bytes spooled and not yet delivered.
    pub spool_bytes: u64,
}

/// Components (sources, sinks, feeds, workers) that are not working as they should, with why.
#[derive(Default)]
pub struct Health {
    degraded: Mutex<BTreeMap<String, (String, Option<Instant>)>>,
}

impl Health {
    /// Mark `component` degraded until [`Health::recover`].
    pub fn degrade(&self, component: &str, reason: &str) {
        lock(&self.degraded).insert(component.to_string(), (reason.to_string(), None));
    }

    /// Mark `component` degraded for `how_long` (an event such as a restart, not a state).
    pub fn degrade_for(&self, component: &str, reason: &str, how_long: Duration) {
        lock(&self.degraded).insert(
            component.to_string(),
            (reason.to_string(), Some(Instant::now() + how_long)),
        );
    }

    /// `component` works again.
    pub fn recover(&self, component: &str) {
        let mut m = lock(&self.degraded);
        if m.contains_key(component) {
            m.remove(component);
        }
    }

    /// What is degraded now: `component: reason` lines, sorted; empty when all is well.
    pub fn report(&self) -> Vec<String> {
        let now = Instant::now();
        let mut m = lock(&self.degraded);
        m.retain(|_, (_, until)| until.is_none_or(|u| u > now));
        m.iter().map(|(c, (r, _))| format!("{c}: {r}")).collect()
    }
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
    /// Read from the ring but dropped: the queue to the decoder was full.
    pub queue_dropped: u64,
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
        let queue = now.queue_dropped.saturating_sub(last.queue_dropped);
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.packet_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.packet_decode_errors
            .fetch_add(decode_errors, Ordering::Relaxed);
        self.drops
            .fetch_add(kernel + ifdrop + queue, Ordering::Relaxed);
        {
            let mut m = lock(&self.captures);
            let c = m.entry(iface.to_string()).or_default();
            c.packets += packets;
            c.bytes += bytes;
            c.received += received;
            c.kernel_dropped += kernel;
            c.if_dropped += ifdrop;
            c.queue_dropped += queue;
        }
        *last = now.clone();
    }

    /// Count a capture error on `iface`.
    pub fn capture_error(&self, iface: &str) {
        lock(&self.captures)
            .entry(iface.to_string())
            .or_default()
            .errors += 1;
    }

    /// Count one for `key` in a labelled counter.
    pub fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
        *lock(map).entry(key.to_string()).or_default() += 1;
    }

    /// Add `n` to the counter `name` (a [`Family`]) for `labels`.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub fn count(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], n: u64) {
        let mut f = lock(&self.families);
        let fam = f.entry(name).or_insert_with(|| Family {
            kind: "counter",
            help,
            series: BTreeMap::new(),
        });
        *fam.series.entry(label_set(labels)).or_default() += n;
    }

    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    /// Replace the series of gauge `name` whose label set starts with `prefix` (one source's)
    /// by `series`.
    pub fn set_gauges(
        &self,
        name: &'static str,
        help: &'static str,
        prefix: &str,
        series: impl IntoIterator<Item = (String, u64)>,
    ) {
        let mut f = lock(&self.families);
        let fam = f.entry(name).or_insert_with(|| Family {
            kind: "gauge",
            help,
            series: BTreeMap::new(),
        });
        fam.series.retain(|k, _| !k.starts_with(prefix));
        fam.series.extend(series);
    }

    /// Update the counters of sink `name`.
    pub fn sink(&self, name: &str, f: impl FnOnce(&mut SinkCounters)) {
        f(lock(&self.sinks).entry(name.to_string()).or_default());
    }

    /// Publish the state of `config`'s feeds (in `data`) as the `trawl_feed_*` gauges.
    pub fn watch_feeds(&self, config: feeds::config::Config, data: std::path::PathBuf) {
        *lock(&self.feed_status) = Some((config, data));
    }

    /// `upstream: reason` lines for `/healthz` (read from the pull state at each call).
    pub fn upstream_health(&self) -> Vec<String> {
        let guard = lock(&self.feed_status);
        let Some((config, data)) = &*guard else {
            return Vec::new();
        };
        let Some(up) = &config.upstream else {
            return Vec::new();
        };
        let now = crate::scan::now_ns() / 1_000_000_000;
        let state = feeds::fleet::pull::load_state(data);
        feeds::fleet::pull::health(up, &state, now)
            .into_iter()
            .map(|r| format!("upstream: {r}"))
            .collect()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let counters: [(&str, &str, &AtomicU64); 17] = [
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
                "Sink failures: failed deliveries and refused spool appends (retried).",
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
            (
                "trawl_sightings_batches_sent",
                "Sightings batches the upstream server took.",
                &self.sightings_sent,
            ),
            (
                "trawl_sightings_batches_spooled",
                "Sightings batches written to the sightings spool.",
                &self.sightings_spooled,
            ),
            (
                "trawl_sightings_batches_dropped",
                "Sightings batches dropped: the spool full (oldest first) or not writable.",
                &self.sightings_dropped,
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
        let _ = writeln!(
            s,
            "# HELP trawl_degraded_components Sources, sinks, feeds and workers /healthz names as degraded.\n# TYPE trawl_degraded_components gauge\ntrawl_degraded_components {}",
            self.health.report().len() + self.upstream_health().len()
        );
        labelled(
            &mut s,
            "trawl_alerts_by_feed_total",
            "counter",
            "Alerts by feed.",
            "feed",
            &lock(&self.alerts_by_feed),
        );
        labelled(
            &mut s,
            "trawl_feed_failures_total",
            "counter",
            "Failed scheduled fetches per feed (previous entries kept).",
            "feed",
            &lock(&self.feed_failures),
        );
        labelled(
            &mut s,
            "trawl_worker_panics_total",
            "counter",
            "Panics caught per daemon worker (the worker is restarted).",
            "worker",
            &lock(&self.worker_panics),
        );
        labelled(
            &mut s,
            "trawl_worker_restarts_total",
            "counter",
            "Worker restarts after a panic or an error.",
            "worker",
            &lock(&self.worker_restarts),
        );
        {
            let sinks = lock(&self.sinks);
            type Field = fn(&SinkCounters) -> u64;
            let per_sink: [(&str, &str, &str, Field); 5] = [
                (
                    "trawl_sink_delivered_total",
                    "counter",
                    "Alerts delivered per sink.",
                    |c| c.delivered,
                ),
                (
                    "trawl_sink_failures_total",
                    "counter",
                    "Failed deliveries per sink (retried from its spool).",
                    |c| c.failures,
                ),
                (
                    "trawl_sink_dead_letter_total",
                    "counter",
                    "Alerts refused for good per sink, kept in its dead-letter file.",
                    |c| c.dead_letter,
                ),
                (
                    "trawl_sink_dropped_total",
                    "counter",
                    "Alerts dropped per sink because its spool was full (when_full = drop).",
                    |c| c.dropped,
                ),
                (
                    "trawl_sink_spool_bytes",
                    "gauge",
                    "Bytes spooled and not yet delivered per sink.",
                    |c| c.spool_bytes,
                ),
            ];
            for (name, kind, help, field) in per_sink {
                let values: BTreeMap<String, u64> =
                    sinks.iter().map(|(k, c)| (k.clone(), field(c))).collect();
                labelled(&mut s, name, kind, help, "sink", &values);
            }
        }
        let _ = writeln!(s, "# HELP trawl_file_lag_bytes Bytes not yet read per tailed file.\n# TYPE trawl_file_lag_bytes gauge");
        {
            let m = lock(&self.lag_by_source);
            let files: BTreeMap<&String, u64> =
                m.values().flatten().map(|(f, n)| (f, *n)).collect();
            for (file, n) in files {
                let _ = writeln!(s, "trawl_file_lag_bytes{{file=\"{}\"}} {n}", escape(file));
            }
        }
        {
            let m = lock(&self.captures);
            type Field = fn(&CaptureCounters) -> u64;
            let per_iface: [(&str, &str, Field); 7] = [
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
                    "trawl_capture_queue_drops_total",
                    "Packets read from the ring but dropped, the queue to the decoder full.",
                    |c| c.queue_dropped,
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
        if let Some((config, data)) = &*lock(&self.feed_status) {
            let now = crate::scan::now_ns() / 1_000_000_000;
            feed_gauges(&mut s, &feeds::status::feed_rows(config, data, now));
            if config.upstream.is_some() {
                upstream_gauges(&mut s, &feeds::fleet::pull::load_state(data), now);
            }
        }
        for (name, fam) in lock(&self.families).iter() {
            let _ = writeln!(s, "# HELP {name} {}\n# TYPE {name} {}", fam.help, fam.kind);
            for (labels, n) in &fam.series {
                let _ = writeln!(s, "{name}{{{labels}}} {n}");
            }
        }
        s
    }
}

/// The `[upstream]` pull state (`trawl_upstream_*`) and the intel's age.
fn upstream_gauges(s: &mut String, st: &feeds::fleet::pull::UpstreamState, now: i64) {
    let held = st.held.as_ref();
    let rows: [(&str, &str, &str, Option<i64>); 10] = [
        (
            "trawl_upstream_up",
            "gauge",
            "1 when the last upstream pull succeeded (applied or unchanged), else 0.",
            Some(i64::from(st.last_error.is_none() && held.is_some())),
        ),
        (
            "trawl_upstream_release_serial",
            "gauge",
            "Serial of the upstream release held (the last good one).",
            held.map(|h| h.serial as i64),
        ),
        (
            "trawl_upstream_indicators",
            "gauge",
            "Indicators in the upstream release held.",
            held.map(|h| h.total as i64),
        ),
        (
            "trawl_upstream_last_attempt_timestamp_seconds",
            "gauge",
            "Unix time of the last upstream pull attempt.",
            (st.last_attempt > 0).then_some(st.last_attempt),
        ),
        (
            "trawl_snapshot_age_seconds",
            "gauge",
            "Seconds since the sensor last knew it held the latest upstream release.",
            st.age(now),
        ),
        (
            "trawl_upstream_refused_total",
            "counter",
            "Upstream releases refused (signature, hash, replay, empty, shrink); the last good one kept.",
            Some(st.refused_total as i64),
        ),
        (
            "trawl_upstream_failures_total",
            "counter",
            "Upstream pulls that failed (network, HTTP, size); the last good release kept.",
            Some(st.failed_total as i64),
        ),
        (
            "trawl_upstream_deltas_total",
            "counter",
            "Upstream releases applied from a delta.",
            Some(st.deltas_total as i64),
        ),
        (
            "trawl_upstream_bundles_total",
            "counter",
            "Upstream releases applied from the full bundle.",
            Some(st.bundles_total as i64),
        ),
        (
            "trawl_upstream_bytes_total",
            "counter",
            "Bytes of upstream release files downloaded (as stored, compressed).",
            Some(st.bytes_total as i64),
        ),
    ];
    for (name, kind, help, v) in rows {
        if let Some(v) = v {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    }
}

/// The `trawl feeds` facts as gauges, one sample per feed (absent facts are not written).
fn feed_gauges(s: &mut String, rows: &[feeds::status::FeedRow]) {
    use feeds::status::{FeedRow, Outcome};
    type Fact = fn(&FeedRow) -> Option<i64>;
    let facts: [(&str, &str, Fact); 8] = [
        (
            "trawl_feed_up",
            "1 when the feed's last fetch succeeded (fresh or not modified), else 0.",
            |r| {
                Some(i64::from(matches!(
                    r.outcome,
                    Outcome::Fresh | Outcome::NotModified | Outcome::Ok
                )))
            },
        ),
        (
            "trawl_feed_indicators",
            "Indicators listing the feed in the snapshot (after a failure: the kept ones).",
            |r| r.indicators.and_then(|n| i64::try_from(n).ok()),
        ),
        (
            "trawl_feed_indicators_change",
            "Change of trawl_feed_indicators since the feed's previous fetch.",
            |r| r.change,
        ),
        (
            "trawl_feed_last_fetch_timestamp_seconds",
            "Unix time of the feed's last fetch attempt.",
            |r| r.last_fetch,
        ),
        (
            "trawl_feed_last_success_timestamp_seconds",
            "Unix time the feed last delivered good content or confirmed it unchanged.",
            |r| r.last_success,
        ),
        (
            "trawl_feed_data_age_seconds",
            "Seconds since trawl_feed_last_success_timestamp_seconds.",
            |r| r.data_age_secs,
        ),
        (
            "trawl_feed_consecutive_failures",
            "Failed fetches of the feed in a row.",
            |r| Some(i64::from(r.consecutive_failures)),
        ),
        (
            "trawl_feed_next_due_timestamp_seconds",
            "Unix time the feed's refresh interval makes it due again.",
            |r| r.next_due,
        ),
    ];
    for (name, help, fact) in facts {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in rows {
            if let Some(v) = fact(r) {
                let _ = writeln!(s, "{name}{{feed=\"{}\"}} {v}", escape(&r.name));
            }
        }
    }
}

/// One labelled metric family: HELP, TYPE and a sample per key.
fn labelled(
    s: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<String, u64>,
) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (k, n) in values {
        let _ = writeln!(s, "{name}{{{label}=\"{}\"}} {n}", escape(k));
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
    fn families_of_optional_components_render_with_their_labels() {
        let m = Metrics::default();
        m.count("x_total", "X.", &[("topic", "a\"b")], 2);
        m.count("x_total", "X.", &[("topic", "a\"b")], 3);
        m.set_gauges(
            "lag",
            "Lag.",
            "group=\"g\",",
            [(label_set(&[("group", "g"), ("partition", "0")]), 7)],
        );
        m.set_gauges(
            "lag",
            "Lag.",
            "group=\"g2\",",
            [(label_set(&[("group", "g2"), ("partition", "0")]), 1)],
        );
        // A new statistics round replaces that group's series only.
        m.set_gauges(
            "lag",
            "Lag.",
            "group=\"g\",",
            [(label_set(&[("group", "g"), ("partition", "1")]), 4)],
        );
        let s = m.render();
        assert!(
            s.contains("# TYPE x_total counter\nx_total{topic=\"a\\\"b\"} 5\n"),
            "{s}"
        );
        assert!(s.contains("# TYPE lag gauge\n"), "{s}");
        assert!(s.contains("lag{group=\"g\",partition=\"1\"} 4\n"), "{s}");
        assert!(s.contains("lag{group=\"g2\",partition=\"0\"} 1\n"), "{s}");
        assert!(!s.contains("lag{group=\"g\",partition=\"0\"}"), "{s}");
    }

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
    fn feed_state_is_published_as_gauges() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("l.txt"), "evil.example\nbad.example\n").unwrap();
        let config = feeds::config::Config::from_toml_str(
            "[[feed]]\nname = \"l\"\nsource = \"l.txt\"\nrefresh = \"1h\"\n\
             [[feed]]\nname = \"gone\"\nsource = \"missing.txt\"\n",
        )
        .unwrap();
        let data = dir.path().join("data");
        let opts = feeds::update::UpdateOptions::default();
        feeds::update::update(&config, dir.path(), &data, &opts, &feeds::NoProgress).unwrap();
        let m = Metrics::default();
        assert!(!m.render().contains("trawl_feed_up"));
        m.watch_feeds(config, data);
        let text = m.render();
        for want in [
            "trawl_feed_up{feed=\"l\"} 1\n",
            "trawl_feed_up{feed=\"gone\"} 0\n",
            "trawl_feed_indicators{feed=\"l\"} 2\n",
            "trawl_feed_indicators{feed=\"gone\"} 0\n",
            "trawl_feed_consecutive_failures{feed=\"gone\"} 1\n",
            "trawl_feed_data_age_seconds{feed=\"l\"} ",
            "trawl_feed_next_due_timestamp_seconds{feed=\"l\"} ",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        // No refresh: due at every update, no next-due time.
        assert!(!text.contains("trawl_feed_next_due_timestamp_seconds{feed=\"gone\"}"));
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
        now.queue_dropped = 6;
        m.record_capture("lo", &now, &mut last);
        let c = m.captures.lock().unwrap()["lo"].clone();
        assert_eq!((c.packets, c.bytes), (15, 1500));
        assert_eq!(c.received, (1 << 32) + 5);
        assert_eq!((c.kernel_dropped, c.if_dropped), (3, 4));
        assert_eq!(c.queue_dropped, 6);
        assert_eq!(m.drops.load(Ordering::Relaxed), 13);
        let text = m.render();
        assert!(text.contains("\ntrawl_packets_total 15\n"), "{text}");
        assert!(text.contains("\ntrawl_packet_bytes_total 1500\n"), "{text}");
        assert!(
            text.contains("trawl_capture_kernel_drops_total{interface=\"lo\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("trawl_capture_queue_drops_total{interface=\"lo\"} 6"),
            "{text}"
        );
    }
}
