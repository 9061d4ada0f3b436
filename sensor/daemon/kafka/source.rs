//! `[[source]] kind = "kafka"`: a member of a consumer group. Messages (one record each) are
//! taken in batches, matched, their alerts handed to the sinks, and the partitions' offsets
//! committed only once every sink's spool holds those alerts: the contract of the file
//! checkpoints. A `kill -9` repeats what was in flight and loses nothing; a rebalance drops
//! the in-flight messages of the partitions taken away (their next owner reads them from the
//! last commit), and everything delivered before it is committed already.
//!
//! Messages are taken from librdkafka in arrays (`rd_kafka_consume_batch_queue`), not one
//! poll and one reference-counted event each: at assignment every partition's fetch queue is
//! forwarded to a queue of the member's own ([`MessageQueue`]), while the consumer's queue
//! keeps the events (rebalances, statistics, errors), served by `BaseConsumer::poll` between
//! two arrays. A partition's messages still come in order, and a rebalance is served only
//! between arrays, so the revocation's bookkeeping is unchanged.

use super::super::config::KafkaSource;
use super::super::metrics::{label_set, lock, Metrics};
use super::super::{log_format, source_parser, RunSource, SourceConfig, SourceEnv, SourceError};
use super::{client_config, forward_log, handshake_hint};
use crate::alert::AlertBatch;
use ingest::logs::{LineParser, LogFormat};
use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicPtr, Ordering};
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
const DROPPED_HELP: &str =
    "In-flight messages dropped at a revocation (read again by the next owner).";
/// Offset commits that failed (the messages are read again: at least once).
const COMMIT_FAILURES: &str = "trawl_kafka_commit_failures_total";

/// At most this many messages (or bytes), or this long, make one batch.
const BATCH_MESSAGES: usize = 20_000;
const BATCH_BYTES: usize = 8 << 20;
const BATCH_LINGER: Duration = Duration::from_millis(100);
/// Messages taken from librdkafka per call.
const ARRAY: usize = 1024;
/// The longest wait for a first message (events are served between two waits).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// The group member's context: rebalances, statistics (lag) and logs.
struct Group {
    name: String,
    group: String,
    metrics: Arc<Metrics>,
    /// Partitions revoked since the run loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// The partitions assigned now: a message of any other (fetched before its revocation
    /// and still queued) is dropped, never committed over the ones dropped at the revocation.
    assigned: Mutex<Vec<(String, i32)>>,
    /// The member's message queue (owned by [`KafkaConsumer`]; null until it is made and
    /// again once it is gone), where assigned partitions' messages are forwarded.
    messages: AtomicPtr<rdsys::rd_kafka_queue_t>,
    /// The partitions forwarded there, to undo at the end.
    forwarded: Mutex<Vec<(CString, i32)>>,
}

impl Group {
    /// Forward `topic`/`partition`'s fetch queue to the message queue; before the partition
    /// is assigned (librdkafka keeps an application's forward when fetching starts).
    fn forward(&self, consumer: &BaseConsumer<Self>, topic: &str, partition: i32) {
        let to = self.messages.load(Ordering::Acquire);
        let Ok(name) = CString::new(topic) else {
            return; // no topic name has a NUL: its messages stay on the consumer's queue
        };
        if to.is_null() || !point_queue(consumer, &name, partition, to) {
            return; // its messages reach the consumer's queue, read by `poll` as before
        }
        let mut fwd = lock(&self.forwarded);
        if !fwd.iter().any(|(t, p)| *p == partition && *t == name) {
            fwd.push((name, partition));
        }
    }
}

/// Point `topic`/`partition`'s fetch queue at `to` (null: at no queue of the application's);
/// `false` when librdkafka has no such partition queue.
fn point_queue(
    consumer: &BaseConsumer<Group>,
    topic: &CStr,
    partition: i32,
    to: *mut rdsys::rd_kafka_queue_t,
) -> bool {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live consumer; the partition queue handle is released here, the
    // forward itself is kept by librdkafka; `to` is null or the live message queue.
    unsafe {
        let pq = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), partition);
        if pq.is_null() {
            return false;
        }
        rdsys::rd_kafka_queue_forward(pq, to);
        rdsys::rd_kafka_queue_destroy(pq);
    }
    true
}

/// A queue of the application's in librdkafka, destroyed on drop.
struct MessageQueue(*mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka queues are safe to use from any thread.
unsafe impl Send for MessageQueue {}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: made by `rd_kafka_queue_new` and destroyed only here.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) }
    }
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

impl ConsumerContext for Group {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                tracing::info!("{}: partitions revoked: {}", self.name, show(&parts));
                lock(&self.assigned).retain(|a| !parts.contains(a));
                lock(&self.revoked).extend(parts);
            }
            Rebalance::Assign(tpl) => {
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                tracing::info!("{}: partitions assigned: {}", self.name, show(&parts));
                for (topic, partition) in &parts {
                    self.forward(consumer, topic, *partition);
                }
                let mut assigned = lock(&self.assigned);
                for part in parts {
                    if !assigned.contains(&part) {
                        assigned.push(part);
                    }
                }
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
    /// Where the assigned partitions' messages arrive (first: dropped before the consumer).
    messages: MessageQueue,
    consumer: BaseConsumer<Group>,
    /// The array `rd_kafka_consume_batch_queue` fills.
    array: Vec<*mut rdsys::rd_kafka_message_t>,
    name: String,
}

// SAFETY: the message pointers in `array` are only held during one call of `take`.
unsafe impl Send for KafkaConsumer {}

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
                assigned: Mutex::new(Vec::new()),
                messages: AtomicPtr::new(std::ptr::null_mut()),
                forwarded: Mutex::new(Vec::new()),
            })
            .map_err(|e| bad(format!("creating the Kafka consumer: {e}")))?;
        // SAFETY: the consumer is live; the queue is destroyed before it (`Drop`).
        let queue = unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) };
        if queue.is_null() {
            return Err(bad("librdkafka made no message queue".into()));
        }
        let messages = MessageQueue(queue);
        consumer
            .context()
            .messages
            .store(messages.0, Ordering::Release);
        let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| bad(format!("subscribing to {}: {e}", c.topics.join(", "))))?;
        Ok(KafkaConsumer {
            messages,
            consumer,
            array: vec![std::ptr::null_mut(); ARRAY],
            name,
        })
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

/// What a batch holds so far.
#[derive(Default)]
struct Taken {
    messages: usize,
    bytes: usize,
}

/// Whether a message (topic, partition, offset) is of a partition not assigned now: then it
/// is counted as dropped at a revocation and left out.
fn fenced(
    assigned: &[(String, i32)],
    (topic, partition, _): (&str, i32, i64),
    env: &SourceEnv,
) -> bool {
    if assigned.iter().any(|(t, p)| *p == partition && t == topic) {
        return false;
    }
    env.metrics
        .count(DROPPED, DROPPED_HELP, &[("topic", topic)], 1);
    true
}

/// Add a message to its partition's pending batch.
fn add(
    pending: &mut Vec<((String, i32), Pending)>,
    taken: &mut Taken,
    (topic, partition, offset): (&str, i32, i64),
    payload: Option<&[u8]>,
) {
    let p = pending_for(pending, topic, partition);
    if let Some(payload) = payload {
        taken.bytes += payload.len();
        p.records.push((
            p.lines.len() as u64,
            u64::try_from(offset).unwrap_or_default(),
        ));
        push_record(&mut p.lines, payload);
    }
    p.last = offset;
    p.count += 1;
    taken.messages += 1;
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
            // A batch: what arrives within the linger after the first wait that brought a
            // message, in arrays of up to `ARRAY` (one clock read each).
            let mut taken = Taken::default();
            let mut first_at: Option<Instant> = None;
            loop {
                self.serve_events(&mut pending, &mut taken, env);
                if taken.messages >= BATCH_MESSAGES || taken.bytes >= BATCH_BYTES {
                    break;
                }
                let wait = match first_at {
                    None => IDLE_WAIT,
                    Some(t) => match BATCH_LINGER.checked_sub(t.elapsed()) {
                        Some(w) => w,
                        None => break,
                    },
                };
                let started = Instant::now();
                self.take(wait, &mut pending, &mut taken, env);
                if taken.messages == 0 {
                    break; // nothing within the wait: look at the stop flag
                }
                first_at.get_or_insert(started);
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
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                // Not lost: read again (by this member or the partition's next owner).
                tracing::warn!(
                    "{}: committing offsets: {e} (those messages will be read again)",
                    self.name
                );
                env.metrics.count(
                    COMMIT_FAILURES,
                    "Offset commits that failed per consumer group (their messages are read again).",
                    &[("source", &self.name)],
                    1,
                );
            }
        }
        Ok(())
    }
}

/// Polls of the consumer's queue between two arrays: each serves at most one event.
const EVENT_POLLS: usize = 8;

impl KafkaConsumer {
    /// Serve the consumer queue's events (rebalances, statistics, errors) without waiting;
    /// a message found there (a partition librdkafka had no queue for when it was assigned)
    /// joins the batch as the arrays' do.
    fn serve_events(
        &mut self,
        pending: &mut Vec<((String, i32), Pending)>,
        taken: &mut Taken,
        env: &SourceEnv,
    ) {
        for _ in 0..EVENT_POLLS {
            let polled = self.consumer.poll(Duration::ZERO);
            match polled {
                None => {}
                Some(Err(e)) => self.consume_error(&e.to_string(), env),
                Some(Ok(m)) => {
                    let assigned = lock(&self.consumer.context().assigned).clone();
                    let key = (m.topic(), m.partition(), m.offset());
                    if fenced(&assigned, key, env) {
                        continue;
                    }
                    add(pending, taken, key, m.payload())
                }
            }
            if self.drop_revoked(pending, env) {
                // What librdkafka fetched of the revoked partitions before they stopped:
                // taken now and dropped (see `Group::assigned`); the others' kept.
                while self.take(Duration::ZERO, pending, taken, env) > 0 {}
            }
        }
    }

    /// Take one array of messages from the message queue (waiting up to `wait` for it to
    /// fill) into `pending`; how many librdkafka handed over.
    fn take(
        &mut self,
        wait: Duration,
        pending: &mut Vec<((String, i32), Pending)>,
        taken: &mut Taken,
        env: &SourceEnv,
    ) -> usize {
        let assigned = lock(&self.consumer.context().assigned).clone();
        let ms = std::os::raw::c_int::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the queue is live and the array has `len` slots, of which librdkafka
        // fills the first `n` with messages that are ours to destroy.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.messages.0,
                ms,
                self.array.as_mut_ptr(),
                self.array.len(),
            )
        };
        let n = usize::try_from(n).unwrap_or(0).min(self.array.len());
        for &m in &self.array[..n] {
            // SAFETY: a message librdkafka handed over; read, then destroyed once.
            unsafe {
                let msg = &*m;
                if msg.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let text = CStr::from_ptr(rdsys::rd_kafka_message_errstr(m));
                    self.consume_error(&text.to_string_lossy(), env);
                } else if let Some(topic) = topic_name(msg.rkt) {
                    let payload = (!msg.payload.is_null())
                        .then(|| std::slice::from_raw_parts(msg.payload as *const u8, msg.len));
                    let key = (topic, msg.partition, msg.offset);
                    if !fenced(&assigned, key, env) {
                        add(pending, taken, key, payload);
                    }
                }
                rdsys::rd_kafka_message_destroy(m);
            }
        }
        n
    }

    /// A consumer error (the broker, a partition): logged, the source degraded for a while.
    fn consume_error(&self, e: &str, env: &SourceEnv) {
        tracing::warn!("{}: {e}", self.name);
        env.metrics
            .health
            .degrade_for(&self.name, e, Duration::from_secs(30));
    }

    /// Forget the in-flight messages of partitions revoked by a rebalance: not committed,
    /// their next owner reads them again.
    /// Whether any partition was revoked.
    fn drop_revoked(&self, pending: &mut Vec<((String, i32), Pending)>, env: &SourceEnv) -> bool {
        let revoked = std::mem::take(&mut *lock(&self.consumer.context().revoked));
        let any = !revoked.is_empty();
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
                env.metrics
                    .count(DROPPED, DROPPED_HELP, &[("topic", &key.0)], p.count);
            }
        }
        any
    }
}

/// A message's topic name (`None` without one, or not UTF-8, which Kafka's names never are).
///
/// # Safety
/// `rkt` is null or the topic handle of a message not yet destroyed.
unsafe fn topic_name<'a>(rkt: *const rdsys::rd_kafka_topic_t) -> Option<&'a str> {
    if rkt.is_null() {
        return None;
    }
    // SAFETY: librdkafka's topic name, NUL-terminated, alive while the message is.
    unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(rkt)) }
        .to_str()
        .ok()
}

impl Drop for KafkaConsumer {
    /// Undo the forwards before the message queue goes (then the consumer closes).
    fn drop(&mut self) {
        let group = self.consumer.context();
        group
            .messages
            .store(std::ptr::null_mut(), Ordering::Release);
        for (topic, partition) in std::mem::take(&mut *lock(&group.forwarded)) {
            point_queue(&self.consumer, &topic, partition, std::ptr::null_mut());
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
