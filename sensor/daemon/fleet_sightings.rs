//! Sightings pushed back to the fleet's server (`[upstream] sightings = true`,
//! ARCHITECTURE.md §11): the sink dispatcher hands every spooled alert line to an
//! [`Aggregator`] (per indicator: count, first and last time, optionally client addresses,
//! bounded); every `sightings_flush` its content becomes one batch line with a fresh batch id,
//! appended to the sightings spool (`DATA/spool/sightings`, the sinks' [`super::spool::Spool`]),
//! and the sightings delivery thread (the sinks' `deliver_spool`) POSTs each line to
//! `/v1/sightings` through the HTTP sink's client ([`SightingsSink`]). A line leaves the spool
//! only after the server's 2xx; the server stores a batch id once, so a re-sent batch counts
//! once.

use super::metrics::Metrics;
use super::sinks::{HttpSink, Sink, SinkError, SinkFailure};
use matcher::UnixTime;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most indicators one batch carries (the server takes at most 10,000 items): the aggregator
/// flushes early when it holds this many, which bounds its memory too.
pub const MAX_BATCH_ITEMS: usize = 10_000;
/// Most client addresses kept per indicator and batch.
pub const MAX_CLIENTS: usize = 32;
/// Default bound on undelivered batches, in bytes: past it the oldest batches are dropped.
pub const DEFAULT_SPOOL_BYTES: u64 = 64 << 20;

/// One indicator's alerts since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    count: u64,
    first: UnixTime,
    last: UnixTime,
    clients: BTreeSet<String>,
}

/// Alerts folded per indicator until the next flush.
#[derive(Debug)]
pub struct Aggregator {
    sensor: String,
    clients: bool,
    seen: HashMap<(String, String), Seen>,
    /// Batches closed because the aggregator filled up, not yet taken.
    ready: Vec<Vec<u8>>,
}

impl Aggregator {
    /// An empty aggregator for sensor `sensor` (`[upstream]`'s
    /// [`sensor_name`](feeds::config::UpstreamConfig::sensor_name), the name its pulls carry,
    /// so the server's fleet view joins the two), keeping client addresses when `clients` is
    /// set.
    pub fn new(sensor: String, clients: bool) -> Aggregator {
        Aggregator {
            sensor,
            clients,
            seen: HashMap::new(),
            ready: Vec::new(),
        }
    }

    /// Whether the open batch holds as many indicators as a batch may.
    fn full(&self) -> bool {
        self.seen.len() >= MAX_BATCH_ITEMS
    }

    /// Whether nothing was seen since the last flush.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.ready.is_empty()
    }

    /// Fold alert lines (one JSON alert each); lines that are not alerts of an indicator
    /// (a warning event) are skipped. `now` stands in for a missing or unreadable time.
    pub fn offer(&mut self, lines: &[u8], now: UnixTime) {
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let m = &v["trawl"]["matched"];
            let (Some(value), Some(itype)) = (m["indicator"].as_str(), m["itype"].as_str()) else {
                continue;
            };
            let t = v["@timestamp"]
                .as_str()
                .and_then(server::query::parse_time)
                .unwrap_or(now);
            let n = v["trawl"]["repeat_count"].as_u64().unwrap_or(1).max(1);
            let key = (itype.to_string(), value.to_string());
            if !self.seen.contains_key(&key) && self.full() {
                // A full batch is closed at once: memory stays bounded, nothing is lost.
                match self.take_batch() {
                    Ok(Some(b)) => self.ready.push(b),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(
                            "sightings: no batch id ({e}); {} indicator(s) dropped",
                            self.seen.len()
                        );
                        self.seen.clear();
                    }
                }
            }
            let s = self.seen.entry(key).or_insert(Seen {
                count: 0,
                first: t,
                last: t,
                clients: BTreeSet::new(),
            });
            s.count = s.count.saturating_add(n);
            s.first = s.first.min(t);
            s.last = s.last.max(t);
            if self.clients && s.clients.len() < MAX_CLIENTS {
                if let Some(ip) = v["source"]["ip"].as_str() {
                    s.clients.insert(ip.to_string());
                }
            }
        }
    }

    /// Every batch line (each ending in `\n`, each with a fresh batch id) of what was seen
    /// since the last flush, the aggregator emptied.
    pub fn take_batches(&mut self) -> Result<Vec<Vec<u8>>, std::io::Error> {
        let mut out = std::mem::take(&mut self.ready);
        out.extend(self.take_batch()?);
        Ok(out)
    }

    /// The open batch as one line; `None` when nothing was seen.
    fn take_batch(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        if self.seen.is_empty() {
            return Ok(None);
        }
        let id = batch_id()?;
        let mut items: Vec<((String, String), Seen)> = self.seen.drain().collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let time = |t| server::query::format_time(t).map_or(Value::Null, Value::String);
        let sightings: Vec<Value> = items
            .into_iter()
            .map(|((itype, value), s)| {
                let mut o = json!({
                    "itype": itype,
                    "value": value,
                    "count": s.count,
                    "first_seen": time(s.first),
                    "last_seen": time(s.last),
                });
                if self.clients {
                    o["clients"] = json!(s.clients);
                }
                o
            })
            .collect();
        let mut line = serde_json::to_vec(&json!({
            "batch_id": id,
            "sensor": self.sensor,
            "sightings": sightings,
        }))
        .map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(Some(line))
    }
}

/// 128 random bits as 32 hex digits, from the kernel's random source.
fn batch_id() -> Result<String, std::io::Error> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(server::token::hex(&b))
}

/// The sightings spool's delivery: one batch line per POST through the HTTP sink, counted in
/// `trawl_sightings_*`; past the spool's bound the oldest batches are dropped.
pub struct SightingsSink {
    http: HttpSink,
    metrics: Arc<Metrics>,
    keep: u64,
}

impl SightingsSink {
    /// POST to `url` (`.../v1/sightings`) with `token` as a Bearer token, keeping at most
    /// `keep` bytes of undelivered batches.
    pub fn new(
        url: &str,
        token: Option<String>,
        timeout: std::time::Duration,
        keep: u64,
        metrics: Arc<Metrics>,
    ) -> Result<SightingsSink, SinkFailure> {
        Ok(SightingsSink {
            http: HttpSink::sightings(url, token, timeout)?,
            metrics,
            keep,
        })
    }
}

impl Sink for SightingsSink {
    fn name(&self) -> String {
        self.http.name().replacen("http:", "sightings:", 1)
    }
    fn batch_lines(&self) -> usize {
        1
    }
    fn keep_at_most(&self) -> Option<u64> {
        Some(self.keep)
    }
    fn dropped_oldest(&mut self, lines: u64) {
        self.metrics
            .sightings_dropped
            .fetch_add(lines, Ordering::Relaxed);
    }
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let r = self.http.write(lines);
        if r.is_ok() {
            self.metrics.sightings_sent.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(value: &str, itype: &str, ts: &str, ip: &str) -> String {
        json!({
            "@timestamp": ts,
            "source": {"ip": ip},
            "trawl": {"matched": {"indicator": value, "itype": itype}},
        })
        .to_string()
            + "\n"
    }

    #[test]
    fn alerts_fold_per_indicator_into_batches_the_server_accepts() {
        let mut a = Aggregator::new("ids-1.eu".into(), true);
        let mut lines = String::new();
        lines += &alert("evil.example", "fqdn", "2026-05-01T00:00:10Z", "10.0.0.1");
        lines += &alert("evil.example", "fqdn", "2026-05-01T00:00:05Z", "10.0.0.2");
        lines += &alert(
            "198.51.100.0/24",
            "ipv4",
            "2026-05-01T00:00:07Z",
            "10.0.0.1",
        );
        lines += "{\"event\": {\"kind\": \"warning\"}}\nnot json\n";
        a.offer(lines.as_bytes(), 0);
        let mut batches = a.take_batches().unwrap();
        assert!(a.is_empty() && a.take_batches().unwrap().is_empty());
        assert_eq!(batches.len(), 1);
        let line = batches.remove(0);
        assert_eq!(line.last(), Some(&b'\n'));
        let b = server::sighting::parse_batch(&line, 1_800_000_000).unwrap();
        assert_eq!(
            (b.sensor.as_str(), b.accepted, b.refused),
            ("ids-1.eu", 2, 0)
        );
        let evil = b.items.iter().find(|i| i.value == "evil.example").unwrap();
        assert_eq!(evil.count, 2);
        assert_eq!(evil.last_seen - evil.first_seen, 5);
        assert_eq!(evil.clients, vec!["10.0.0.1", "10.0.0.2"]);
        // Each batch its own id.
        a.offer(
            alert("x.example", "fqdn", "2026-05-01T00:00:10Z", "::1").as_bytes(),
            0,
        );
        let again = a.take_batches().unwrap().remove(0);
        let b2 = server::sighting::parse_batch(&again, 1_800_000_000).unwrap();
        assert_ne!(b.batch_id, b2.batch_id);
    }

    #[test]
    fn clients_stay_out_unless_asked_and_memory_is_bounded() {
        let mut a = Aggregator::new("s".into(), false);
        let mut lines = String::new();
        for i in 0..MAX_BATCH_ITEMS + 5 {
            lines += &alert(
                &format!("h{i}.example"),
                "fqdn",
                "2026-05-01T00:00:10Z",
                "10.0.0.1",
            );
        }
        a.offer(lines.as_bytes(), 0);
        assert!(a.seen.len() <= MAX_BATCH_ITEMS);
        let batches = a.take_batches().unwrap();
        let sizes: Vec<usize> = batches
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_slice(l).unwrap();
                assert!(v["sightings"][0].get("clients").is_none());
                v["sightings"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(sizes, vec![MAX_BATCH_ITEMS, 5]);
    }
}
