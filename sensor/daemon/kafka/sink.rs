//! `[[sink]] kind = "kafka"`: one message per alert, produced with `acks = all` (and
//! idempotence by default); `write` returns Ok only once the broker acknowledged every message
//! of the batch (delivery reports), so while the brokers are unreachable the alerts stay in
//! the sink's spool and are produced when they return.

use super::super::config::KafkaSinkConfig;
use super::super::metrics::{lock, Metrics};
use super::super::sinks::{Sink, SinkError, SinkFailure};
use super::{client_config, forward_log, handshake_hint};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Alerts produced, per sink.
const PRODUCED: &str = "trawl_kafka_produced_total";
/// Alerts whose production failed (retried from the spool), per sink.
const FAILED: &str = "trawl_kafka_produce_failures_total";

/// Delivery reports of the batch being written, by its line index.
struct Reports {
    name: String,
    results: Mutex<Vec<Option<Result<(), String>>>>,
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(&self.name, level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        let hint = handshake_hint(reason, "[sink.options]");
        tracing::warn!("{}: {error}: {reason}{hint}", self.name);
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let r = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        };
        if let Some(slot) = lock(&self.results).get_mut(index) {
            *slot = Some(r);
        }
    }
}

/// Produces alerts to a topic.
pub struct KafkaSink {
    producer: BaseProducer<Reports>,
    /// To create the producer again after a fatal error (an idempotent producer the
    /// brokers no longer know, after they lost their state).
    config: rdkafka::config::ClientConfig,
    topic: String,
    /// JSON pointer of the alert field used as the message key.
    key: Option<&'static str>,
    /// How long a write waits for its delivery reports.
    wait: Duration,
    metrics: Arc<Metrics>,
}

/// The JSON pointer a `key` names.
fn key_pointer(key: Option<&str>) -> Result<Option<&'static str>, SinkFailure> {
    Ok(match key {
        None | Some("none") => None,
        Some("community_id") => Some("/network/community_id"),
        Some("source.ip") => Some("/source/ip"),
        Some("threat.indicator.name") => Some("/threat/indicator/name"),
        Some(other) => {
            return Err(SinkFailure::Config(format!(
                "key = {other:?}: use \"community_id\", \"source.ip\", \"threat.indicator.name\" or \"none\""
            )))
        }
    })
}

/// The key of one alert line: the field at `pointer`, when the alert has it.
fn key_of(line: &[u8], pointer: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    match v.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl KafkaSink {
    /// Check the table and create the producer (it connects in the background: brokers down
    /// at start only delay the first delivery).
    pub fn new(c: &KafkaSinkConfig, metrics: Arc<Metrics>) -> Result<Self, SinkFailure> {
        let bad = |m: String| SinkFailure::Config(m);
        if c.topic.trim().is_empty() {
            return Err(bad("topic is empty: name the topic alerts go to".into()));
        }
        let key = key_pointer(c.key.as_deref())?;
        let compression = match c.compression.as_deref().unwrap_or("none") {
            v @ ("none" | "gzip" | "snappy" | "lz4" | "zstd") => v,
            other => {
                return Err(bad(format!(
                "compression = {other:?}: use \"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\""
            )))
            }
        };
        let acks = match c.acks.as_deref().unwrap_or("all") {
            "all" | "-1" => "all",
            v @ ("0" | "1") => v,
            other => {
                return Err(bad(format!(
                    "acks = {other:?}: use \"all\", \"1\" or \"0\""
                )))
            }
        };
        let idempotence = c.idempotence.unwrap_or(true);
        if idempotence && acks != "all" {
            return Err(bad(format!(
                "acks = {acks:?} with idempotence on: idempotent production needs acks = \"all\" \
                 (or set idempotence = false)"
            )));
        }
        let timeout = c.timeout.unwrap_or(30);
        if !(1..=3600).contains(&timeout) {
            return Err(bad(format!(
                "timeout = {timeout}: seconds a message may wait for the brokers, 1 to 3600"
            )));
        }
        let name = format!("kafka:{}", c.topic);
        let cfg = client_config(
            &c.brokers,
            &[
                ("compression.type", compression.to_string()),
                ("acks", acks.to_string()),
                ("enable.idempotence", idempotence.to_string()),
                ("message.timeout.ms", (timeout * 1000).to_string()),
                ("linger.ms", "5".to_string()),
            ],
            &c.options,
        )
        .map_err(bad)?;
        let producer = create(&cfg, &name)?;
        Ok(KafkaSink {
            producer,
            config: cfg,
            topic: c.topic.clone(),
            key,
            wait: Duration::from_secs(timeout) + Duration::from_secs(5),
            metrics,
        })
    }

    fn name_(&self) -> String {
        format!("kafka:{}", self.topic)
    }
}

fn create(
    cfg: &rdkafka::config::ClientConfig,
    name: &str,
) -> Result<BaseProducer<Reports>, SinkFailure> {
    cfg.create_with_context(Reports {
        name: name.to_string(),
        results: Mutex::new(Vec::new()),
    })
    .map_err(|e| SinkFailure::Config(format!("creating the Kafka producer: {e}")))
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        self.name_()
    }

    fn batch_lines(&self) -> usize {
        2000
    }

    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let mut spans = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', lines) {
            spans.push((start, end));
            start = end + 1;
        }
        {
            let mut r = lock(&self.producer.context().results);
            r.clear();
            r.resize(spans.len(), None);
        }
        for (i, &(s, e)) in spans.iter().enumerate() {
            let line = &lines[s..e];
            let key = self.key.and_then(|p| key_of(line, p));
            let mut record =
                BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, i).payload(line);
            if let Some(k) = &key {
                record = record.key(k.as_bytes());
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        self.producer.poll(Duration::from_millis(20));
                        record = back;
                    }
                    Err((e, _)) => {
                        if let Some(slot) = lock(&self.producer.context().results).get_mut(i) {
                            *slot = Some(Err(e.to_string()));
                        }
                        break;
                    }
                }
            }
        }
        // Every delivery report, or the wait runs out (then what is queued is purged: it is
        // produced again from the spool).
        let until = Instant::now() + self.wait;
        if self.producer.flush(self.wait).is_err() {
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            while self.producer.in_flight_count() > 0 && Instant::now() < until {
                self.producer.poll(Duration::from_millis(50));
            }
        }
        self.producer.poll(Duration::ZERO);
        let results = std::mem::take(&mut *lock(&self.producer.context().results));
        let ok = results.iter().filter(|r| matches!(r, Some(Ok(())))).count() as u64;
        let failed = results.len() as u64 - ok;
        let name = self.name_();
        if ok > 0 {
            self.metrics.count(
                PRODUCED,
                "Alerts produced per Kafka sink (acknowledged by the brokers).",
                &[("sink", &name)],
                ok,
            );
        }
        if failed == 0 {
            return Ok(());
        }
        self.metrics.count(
            FAILED,
            "Alerts whose production failed per Kafka sink (produced again from its spool).",
            &[("sink", &name)],
            failed,
        );
        // A fatal error, or nothing of the batch acknowledged (brokers that came back
        // without the state of this idempotent producer leave its messages waiting for
        // good): a new producer for the retry. What the old one did not deliver is produced
        // again from the spool.
        let fatal = self.producer.client().fatal_error();
        if fatal.is_some() || ok == 0 {
            match fatal {
                Some((code, why)) => tracing::warn!(
                    "{name}: fatal producer error ({code}: {why}); creating the producer again"
                ),
                None => tracing::info!("{name}: nothing acknowledged; creating the producer again"),
            }
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            self.producer = create(&self.config, &name)?;
        }
        // The lines before the first failure are delivered; the rest is written again
        // (at least once: some of it may have been acknowledged).
        let first_bad = results
            .iter()
            .position(|r| !matches!(r, Some(Ok(()))))
            .unwrap_or(results.len());
        let done = spans.get(first_bad).map_or(lines.len(), |&(s, _)| s);
        let why = match results.get(first_bad) {
            Some(Some(Err(e))) => e.clone(),
            _ => format!("no delivery report within {:?}", self.wait),
        };
        Err(SinkError::Retry {
            done,
            error: SinkFailure::Broker(format!(
                "producing to {}: {failed} of {} alert(s) not acknowledged: {why}",
                self.topic,
                results.len()
            )),
        })
    }

    fn close(&mut self) -> Result<(), SinkFailure> {
        self.producer
            .flush(self.wait)
            .map_err(|e| SinkFailure::Broker(format!("flushing {}: {e}", self.name_())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_alert_fields_the_table_names() {
        let line = br#"{"source":{"ip":"10.0.0.1"},"network":{"community_id":"1:abc"},"threat":{"indicator":{"name":"evil.example"}}}"#;
        for (key, want) in [
            ("community_id", "1:abc"),
            ("source.ip", "10.0.0.1"),
            ("threat.indicator.name", "evil.example"),
        ] {
            let p = key_pointer(Some(key)).unwrap().unwrap();
            assert_eq!(key_of(line, p).as_deref(), Some(want), "{key}");
        }
        assert_eq!(key_pointer(Some("none")).unwrap(), None);
        assert_eq!(key_of(b"{\"source\":{}}", "/source/ip"), None);
        assert_eq!(key_of(b"not json", "/source/ip"), None);
        let err = key_pointer(Some("src")).unwrap_err().to_string();
        assert!(err.contains("\"source.ip\""), "{err}");
    }
}
