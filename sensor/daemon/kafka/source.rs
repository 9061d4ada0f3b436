//! `[[source]] kind = "kafka"`: a member of a consumer group. Messages (one record each) are
//! taken in batches, matched, their alerts handed to the sinks, and the partitions' offsets
//! committed only once every sink's spool holds those alerts: the contract of the file
//! checkpoints. A `kill -9` repeats what was in flight and loses nothing; a rebalance drops
//! the in-flight messages of the partitions taken away (their next owner reads them from the
//! last commit), and everything delivered before it is committed already.

use super::super::config::KafkaSource;
use super::super::metrics::{label_set, lock, Metrics};
use super::super::{log_format, source_parser, RunSource, SourceConfig, SourceEnv, SourceError};
use super::{client_config, forward_log, handshake_hint};
use crate::alert::AlertBatch;
use ingest::logs::{LineParser, LogFormat};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages consumed per topic.
const CONSUMED: &str = "trawl_kafka_messages_total";
/// Consumer lag per partition.
const LAG: &str = "trawl_kafka_consumer_lag";
/// Partitions assigned to this member, per group.
const ASSIGNED: &str = "trawl_kafka_assigned_partitions";
/// Rebalances seen per group.
const REBALANCES: &str = "trawl_kafka_rebalances_total";
/// In-flight messages dropped at a revocation (read again by the partition's next owner).
const DROPPED: &str = "trawl_kafka_revoked_in_flight_total";
/// Offset commits that failed (the messages are read again: at least once).
const COMMIT_FAILURES: &str = "trawl_kafka_commit_failures_total";

/// At most this many messages (or bytes), or this long, make one batch.
const BATCH_MESSAGES: usize = 20_000;
const BATCH_BYTES: usize = 8 << 20;
const BATCH_LINGER: Duration = Duration::from_millis(100);
/// While messages keep coming, the linger is checked once per this many polls.
const CLOCK_EVERY: usize = 256;

/// The group member's context: rebalances, statistics (lag) and logs.
struct Group {
    name: String,
    group: String,
    metrics: Arc<Metrics>,
    /// Partitions revoked since the run loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
}

impl ClientContext for Group {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(&self.name, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let hint = handshake_hint(reason, "[source.options]");
        tracing::warn!("{}: {error}: {reason}{hint}", self.name);
        self.metrics
            .health
            .degrade_for(&self.name, reason, Duration::from_secs(30));
    }

    fn stats(&self, st: Statistics) {
        let prefix = format!("{},", label_set(&[("group", &self.group)]));
        let mut series = Vec::new();
        for (topic, t) in &st.topics {
            for (&p, part) in &t.partitions {
                if p < 0 || part.consumer_lag < 0 || part.fetch_state != "active" {
                    continue;
                }
                let labels = label_set(&[
                    ("group", &self.group),
                    ("topic", topic),
                    ("partition", &p.to_string()),
                ]);
                series.push((labels, part.consumer_lag as u64));
            }
        }
        self.metrics.set_gauges(
            LAG,
            "Messages not yet committed per assigned partition (high watermark - committed).",
            &prefix,
            series,
        );
    }
}

impl Group {
    /// An offset commit that failed: not lost, read again (by this member or the
    /// partition's next owner).
    fn commit_failed(&self, e: &KafkaError) {
        tracing::warn!(
            "{}: committing offsets: {e} (those messages will be read again)",
            self.name
        );
        self.metrics.count(
            COMMIT_FAILURES,
            "Offset commits that failed per consumer group (their messages are read again).",
            &[("source", &self.name)],
            1,
        );
    }
}

impl ConsumerContext for Group {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.commit_failed(&e);
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                tracing::info!("{}: partitions revoked: {}", self.name, show(&parts));
                lock(&self.revoked).extend(parts);
            }
            Rebalance::Assign(tpl) => {
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                tracing::info!("{}: partitions assigned: {}", self.name, show(&parts));
                self.metrics.count(
                    REBALANCES,
                    "Rebalances (new assignments) per consumer group.",
                    &[("group", &self.group)],
                    1,
                );
            }
            Rebalance::Error(e) => tracing::warn!("{}: rebalance: {e}", self.name),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        let n = consumer.assignment().map_or(0, |a| a.count() as u64);
        let labels = label_set(&[("group", &self.group)]);
        self.metrics.set_gauges(
            ASSIGNED,
            "Partitions assigned to this member per consumer group.",
            &labels,
            [(labels.clone(), n)],
        );
    }
}

/// The pending messages of `topic`/`partition`, added when it has none yet.
fn pending_for<'a>(
    pending: &'a mut Vec<((String, i32), Pending)>,
    topic: &str,
    partition: i32,
) -> &'a mut Pending {
    let i = match pending
        .iter()
        .position(|((t, p), _)| *p == partition && t == topic)
    {
        Some(i) => i,
        None => {
            pending.push(((topic.to_string(), partition), Pending::default()));
            pending.len() - 1
        }
    };
    &mut pending[i].1
}

fn show(parts: &[(String, i32)]) -> String {
    if parts.is_empty() {
        return "none".into();
    }
    parts
        .iter()
        .map(|(t, p)| format!("{t}/{p}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A consumer subscribed to the source's topics.
pub struct KafkaConsumer {
    consumer: BaseConsumer<Group>,
    name: String,
}

impl KafkaConsumer {
    /// Check the table, create the consumer and subscribe (joining the group happens in the
    /// background, at the first polls).
    pub fn open(
        c: &KafkaSource,
        index: usize,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, SourceError> {
        let bad = SourceError::Broker;
        if c.topics.is_empty() || c.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(bad(
                "topics is empty: list the topics, topics = [\"zeek-dns\"], or give a regular \
                 expression, topics = [\"^zeek-.*\"]"
                    .into(),
            ));
        }
        let reset = match c.start.as_deref().unwrap_or("earliest") {
            v @ ("earliest" | "latest") => v,
            other => {
                return Err(bad(format!(
                    "start = {other:?}: use \"earliest\" (a new group reads the topics from \
                     their beginning) or \"latest\" (only what arrives from now on)"
                )))
            }
        };
        let group = c.group.clone().unwrap_or_else(|| "trawl".into());
        let name = format!("source {index} (kafka group {group})");
        let cfg = client_config(
            &c.brokers,
            &[
                ("group.id", group.clone()),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
                ("auto.offset.reset", reset.into()),
                ("statistics.interval.ms", "5000".into()),
            ],
            &c.options,
        )
        .map_err(bad)?;
        let consumer: BaseConsumer<Group> = cfg
            .create_with_context(Group {
                name: name.clone(),
                group,
                metrics: metrics.clone(),
                revoked: Mutex::new(Vec::new()),
            })
            .map_err(|e| bad(format!("creating the Kafka consumer: {e}")))?;
        let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| bad(format!("subscribing to {}: {e}", c.topics.join(", "))))?;
        Ok(KafkaConsumer { consumer, name })
    }
}

/// The messages of one partition taken in the batch being built.
#[derive(Default)]
struct Pending {
    /// Their payloads, one line each.
    lines: Vec<u8>,
    /// Where each payload's line starts in `lines` and its message's offset (`log.offset`).
    records: Vec<(u64, u64)>,
    /// The offset of the last one.
    last: i64,
    count: u64,
}

/// Append a message's payload as one line: line breaks inside it become spaces (JSON allows
/// them only as whitespace; a text record is one line), trailing ones are cut.
fn push_record(out: &mut Vec<u8>, payload: &[u8]) {
    let mut end = payload.len();
    while end > 0 && matches!(payload[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let start = out.len();
    out.extend_from_slice(&payload[..end]);
    // Most payloads have no line break: one SIMD search instead of a loop over every byte.
    if memchr::memchr2(b'\n', b'\r', &payload[..end]).is_some() {
        for b in &mut out[start..] {
            if matches!(*b, b'\n' | b'\r') {
                *b = b' ';
            }
        }
    }
    out.push(b'\n');
}

impl RunSource for KafkaConsumer {
    fn run(&mut self, src: &SourceConfig, env: &SourceEnv) -> Result<(), SourceError> {
        let mut parsers: HashMap<String, (Box<dyn LineParser>, bool)> = HashMap::new();
        // A batch's partitions: few, so a list searched without allocating beats a map
        // keyed by an owned topic name made for every message.
        let mut pending: Vec<((String, i32), Pending)> = Vec::new();
        while !env.stop.load(Ordering::Relaxed) {
            // A batch: what arrives within the linger after the first message.
            let mut messages = 0usize;
            let mut bytes = 0usize;
            let mut first_at: Option<Instant> = None;
            // While messages are queued, poll without a timeout (librdkafka then skips its
            // deadline arithmetic) and look at the clock once per `CLOCK_EVERY` messages:
            // clock reads were a sixth of the consumer's CPU when every poll waited.
            let mut queued = false;
            let mut since_clock = 0usize;
            while messages < BATCH_MESSAGES && bytes < BATCH_BYTES {
                let wait = match first_at {
                    None => Duration::from_millis(250),
                    Some(_) if queued && since_clock < CLOCK_EVERY => Duration::ZERO,
                    Some(t) => {
                        since_clock = 0;
                        match BATCH_LINGER.checked_sub(t.elapsed()) {
                            Some(w) if !queued => w,
                            Some(_) => Duration::ZERO,
                            None => break,
                        }
                    }
                };
                let polled = self.consumer.poll(wait);
                self.drop_revoked(&mut pending, env);
                queued = matches!(polled, Some(Ok(_)));
                since_clock += 1;
                match polled {
                    None if first_at.is_none() => break,
                    None => continue,
                    Some(Err(e)) => {
                        tracing::warn!("{}: {e}", self.name);
                        env.metrics.health.degrade_for(
                            &self.name,
                            &e.to_string(),
                            Duration::from_secs(30),
                        );
                    }
                    Some(Ok(m)) => {
                        first_at.get_or_insert_with(Instant::now);
                        let p = pending_for(&mut pending, m.topic(), m.partition());
                        if let Some(payload) = m.payload() {
                            bytes += payload.len();
                            let offset = u64::try_from(m.offset()).unwrap_or_default();
                            p.records.push((p.lines.len() as u64, offset));
                            push_record(&mut p.lines, payload);
                        }
                        p.last = m.offset();
                        p.count += 1;
                        messages += 1;
                    }
                }
            }
            if pending.is_empty() {
                continue;
            }
            let mut alerts = AlertBatch::new(env.typed);
            let mut by_topic: BTreeMap<&str, u64> = BTreeMap::new();
            for ((topic, partition), p) in &pending {
                *by_topic.entry(topic).or_default() += p.count;
                if p.lines.is_empty() {
                    continue;
                }
                let (parser, raw) = match parsers.get(topic) {
                    Some(p) => p,
                    None => {
                        let format = log_format(src.format(), &p.lines)?;
                        let parser = source_parser(src, format, &p.lines)?;
                        tracing::info!("{}: topic {topic} read as {format}", self.name);
                        parsers
                            .entry(topic.clone())
                            .or_insert((parser, format == LogFormat::Raw))
                    }
                };
                let path = format!("kafka:{topic}/{partition}");
                alerts.append(env.match_batch(
                    parser.as_ref(),
                    *raw,
                    &path,
                    &p.lines,
                    0,
                    Some(&p.records),
                ));
            }
            for (topic, n) in by_topic {
                env.metrics.count(
                    CONSUMED,
                    "Messages consumed per Kafka topic.",
                    &[("topic", topic)],
                    n,
                );
            }
            // Durable in every sink's spool first, then committed.
            env.deliver(alerts)?;
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), p) in &pending {
                if let Err(e) =
                    tpl.add_partition_offset(topic, *partition, Offset::Offset(p.last + 1))
                {
                    tracing::warn!("{}: {topic}/{partition}: {e}", self.name);
                }
            }
            pending.clear();
            // Asynchronous: the loop takes the next batch while the broker answers (a failure
            // comes back as an event, counted by `Group::commit_callback`). A commit still in
            // flight at a stop is awaited by the consumer's close; at a `kill -9` its
            // messages are read again.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                self.consumer.context().commit_failed(&e);
            }
        }
        Ok(())
    }
}

impl KafkaConsumer {
    /// Forget the in-flight messages of partitions revoked by a rebalance: not committed,
    /// their next owner reads them again.
    fn drop_revoked(&self, pending: &mut Vec<((String, i32), Pending)>, env: &SourceEnv) {
        let revoked = std::mem::take(&mut *lock(&self.consumer.context().revoked));
        for key in revoked {
            if let Some(i) = pending.iter().position(|(k, _)| *k == key) {
                let (_, p) = pending.swap_remove(i);
                tracing::info!(
                    "{}: {}/{} revoked: {} in-flight message(s) left to its next owner",
                    self.name,
                    key.0,
                    key.1,
                    p.count
                );
                env.metrics.count(
                    DROPPED,
                    "In-flight messages dropped at a revocation (read again by the next owner).",
                    &[("topic", &key.0)],
                    p.count,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_becomes_one_line() {
        let mut out = Vec::new();
        push_record(&mut out, b"{\"a\":\n 1}\r\n\n");
        push_record(&mut out, b"");
        push_record(&mut out, b"plain");
        assert_eq!(out, b"{\"a\":  1}\n\nplain\n");
    }
}
