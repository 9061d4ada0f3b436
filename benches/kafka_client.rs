//! The Kafka benchmark's client (benches/kafka.sh): creates topics, produces a file of records
//! as fast as the broker takes them or at a set rate, and reads the alerts back to check the
//! planted hits and time them. librdkafka through `rdkafka`, as trawl itself, so the client
//! costs what trawl's own client costs and the broker is what is measured against.
//!
//! ```text
//! kafka_client topic   BROKERS TOPIC PARTITIONS
//! kafka_client produce BROKERS TOPIC PARTITIONS RECORDS PLANTED OFFSETS_OUT [RATE]
//! kafka_client collect BROKERS TOPIC PARTITIONS OFFSETS TIMEOUT_SECS
//! ```
//! `produce` sends line i of RECORDS to partition i % PARTITIONS (RATE messages/s, or as fast
//! as it can) and writes, for each line number listed in PLANTED, `topic partition offset
//! create_ms` to OFFSETS_OUT from its delivery report. `collect` reads the alert topic from
//! the beginning until every planted message of OFFSETS has an alert (its `log.file.path`
//! `kafka:TOPIC/PARTITION` and `log.offset` name the message) or TIMEOUT_SECS pass, and prints
//! how many were alerted and the latency from the record's produce time to the alert's.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = match args.first().map(String::as_str) {
        Some("topic") if args.len() == 4 => topic(&args[1], &args[2], num(&args[3])),
        Some("produce") if (7..=8).contains(&args.len()) => produce(
            &args[1],
            &args[2],
            num(&args[3]),
            &args[4],
            &args[5],
            &args[6],
            args.get(7).map(|r| num(r)),
        ),
        Some("collect") if args.len() == 6 => collect(
            &args[1],
            &args[2],
            num(&args[3]),
            &args[4],
            Duration::from_secs(num(&args[5])),
        ),
        // `cargo bench` runs every bench target with `--bench`: nothing to do without a broker.
        _ => {
            eprintln!(
                "usage: kafka_client topic BROKERS TOPIC PARTITIONS\n       \
                 kafka_client produce BROKERS TOPIC PARTITIONS RECORDS PLANTED OFFSETS_OUT [RATE]\n       \
                 kafka_client collect BROKERS TOPIC PARTITIONS OFFSETS TIMEOUT_SECS\n\
                 (run by benches/kafka.sh)"
            );
            return ExitCode::SUCCESS;
        }
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("kafka_client: {s:?} is not a number");
        std::process::exit(2)
    })
}

fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

fn topic(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client(brokers).create().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in rt
        .block_on(admin.create_topics([&t], &opts))
        .map_err(|e| e.to_string())?
    {
        r.map_err(|(t, e)| format!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Delivery reports of planted lines: (line, partition, offset, create time ms).
struct Reports {
    planted: BTreeSet<usize>,
    seen: Mutex<Vec<(usize, i32, i64, i64)>>,
    failed: Mutex<u64>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, line: usize) {
        match result {
            Ok(m) if self.planted.contains(&line) => {
                let ms = m.timestamp().to_millis().unwrap_or(-1);
                if let Ok(mut s) = self.seen.lock() {
                    s.push((line, m.partition(), m.offset(), ms));
                }
            }
            Ok(_) => {}
            Err(_) => {
                if let Ok(mut f) = self.failed.lock() {
                    *f += 1;
                }
            }
        }
    }
}

fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    records: &str,
    planted: &str,
    offsets_out: &str,
    rate: Option<u64>,
) -> Result<()> {
    let planted: BTreeSet<usize> = std::fs::read_to_string(planted)
        .map_err(|e| format!("{planted}: {e}"))?
        .split_whitespace()
        .map(|n| n.parse().map_err(|_| format!("{planted}: {n:?}")))
        .collect::<Result<_>>()?;
    let producer: BaseProducer<Reports> = client(brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Reports {
            planted,
            seen: Mutex::new(Vec::new()),
            failed: Mutex::new(0),
        })
        .map_err(|e| e.to_string())?;
    let file = std::fs::File::open(records).map_err(|e| format!("{records}: {e}"))?;
    let start = Instant::now();
    let mut n = 0usize;
    let mut bytes = 0usize;
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let line = line.map_err(|e| format!("{records}: {e}"))?;
        if let Some(r) = rate {
            // Paced: line n is due n / rate seconds after the start.
            let due = Duration::from_secs_f64(n as f64 / r as f64);
            while start.elapsed() < due {
                producer.poll(Duration::from_millis(1));
            }
        }
        let mut rec = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, n)
            .payload(line.as_bytes())
            .partition((n % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(5));
                    rec = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
        n += 1;
        bytes += line.len();
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flushing: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let ctx = producer.context();
    let failed = *ctx.failed.lock().map_err(|e| e.to_string())?;
    let mut seen = ctx.seen.lock().map_err(|e| e.to_string())?.clone();
    seen.sort_unstable();
    let mut out = std::fs::File::create(offsets_out).map_err(|e| format!("{offsets_out}: {e}"))?;
    for (_, p, o, ms) in &seen {
        writeln!(out, "{topic} {p} {o} {ms}").map_err(|e| e.to_string())?;
    }
    println!(
        "produced {n} records ({} MB) to {topic} in {secs:.1} s: {:.0} messages/s; {failed} failed; {} planted",
        bytes / 1_000_000,
        n as f64 / secs,
        seen.len()
    );
    if failed > 0 || seen.len() != ctx.planted.len() {
        return Err(format!(
            "{failed} deliveries failed, {} of {} planted records acknowledged",
            seen.len(),
            ctx.planted.len()
        ));
    }
    Ok(())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn collect(
    brokers: &str,
    topic: &str,
    partitions: i32,
    offsets: &str,
    timeout: Duration,
) -> Result<()> {
    // (topic, partition, offset) -> produce time (ms).
    let mut want: HashMap<(String, i32, u64), i64> = HashMap::new();
    for line in std::fs::read_to_string(offsets)
        .map_err(|e| format!("{offsets}: {e}"))?
        .lines()
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [t, p, o, ms] = f[..] {
            let key = (t.to_string(), num(p), num(o));
            want.insert(key, num(ms));
        }
    }
    let consumer: BaseConsumer = client(brokers)
        .set("group.id", "kafka-bench-collector")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut alerts = 0u64;
    let mut other = 0u64;
    let mut found: HashMap<(String, i32, u64), i64> = HashMap::new();
    while found.len() < want.len() && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.map_err(|e| e.to_string())?;
        alerts += 1;
        let at = m.timestamp().to_millis().unwrap_or(-1);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
        else {
            continue;
        };
        let path = v["log"]["file"]["path"].as_str().unwrap_or_default();
        let Some((t, p)) = path
            .strip_prefix("kafka:")
            .and_then(|tp| tp.rsplit_once('/'))
        else {
            continue;
        };
        let (Ok(p), Some(o)) = (p.parse::<i32>(), v["log"]["offset"].as_u64()) else {
            continue;
        };
        let key = (t.to_string(), p, o);
        if let Some(&produced) = want.get(&key) {
            // The first alert of a message (a repeat after a rebalance comes later).
            found.entry(key).or_insert(at - produced);
        } else {
            other += 1;
        }
    }
    let mut lat: Vec<i64> = found.values().copied().collect();
    lat.sort_unstable();
    println!(
        "alerted {} of {} planted records ({alerts} alert messages read from {topic}, {other} \
         for other records); latency produce -> alert produced: p50 {} ms, p99 {} ms, max {} ms",
        found.len(),
        want.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(-1)
    );
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    if found.len() < want.len() {
        return Err(format!(
            "{} planted records have no alert after {} s",
            want.len() - found.len(),
            timeout.as_secs()
        ));
    }
    Ok(())
}
