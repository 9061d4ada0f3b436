//! The Kafka source and sink end to end: real `trawl run` processes against a real broker
//! (Tansu 0.6.0, a Kafka-protocol broker, memory storage, on 127.0.0.1), records produced
//! and alerts consumed with librdkafka. `make test-deps` installs Tansu; without it these tests
//! fail and say so.

use crate::daemon_support::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use toml::Table;

/// The Tansu binary: `$TANSU`, else `~/.cargo/bin/tansu`, else `tansu` on the PATH.
fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return p.into();
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/tansu"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Kafka tests need the Tansu broker, which is not installed: run `make test-deps` \
             (cargo install --debug tansu --version 0.6.0 --locked --no-default-features \
             --features dynostore), or set TANSU=/path/to/tansu"
            )
        })
}

/// A Tansu broker on 127.0.0.1 with memory storage; killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        Broker::start_advertising(dir, port, port)
    }

    /// A broker listening on `port` that tells clients (metadata) to connect to `advertised`.
    fn start_advertising(dir: &Path, port: u16, advertised: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        let mut b = Broker { child, port };
        wait_for("the broker to listen", Duration::from_secs(20), || {
            assert!(b.child.try_wait().unwrap().is_none(), "tansu exited");
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

fn create_topic(brokers: &str, name: &str, partitions: i32) {
    create_topic_with(&client(brokers), name, partitions)
}

fn create_topic_with(cfg: &ClientConfig, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let r = rt.block_on(admin.create_topics([&topic], &opts)).unwrap();
    for t in r {
        t.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Produce `records`, the i-th to partition `i % partitions`, and wait for the acks.
fn produce(brokers: &str, topic: &str, partitions: i32, records: &[String]) {
    produce_with(&client(brokers), topic, partitions, records)
}

fn produce_with(cfg: &ClientConfig, topic: &str, partitions: i32, records: &[String]) {
    let p: BaseProducer = cfg.create().unwrap();
    for (i, r) in records.iter().enumerate() {
        let mut rec = BaseRecord::<(), str>::to(topic)
            .payload(r.as_str())
            .partition(i as i32 % partitions);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    p.poll(Duration::from_millis(10));
                    rec = back;
                }
            }
        }
    }
    p.flush(Duration::from_secs(20)).expect("producing");
}

/// Every message of `topic` (its `partitions` read from the beginning) until `want` are in
/// or `timeout`: (key, payload).
fn consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
) -> Vec<(Option<String>, String)> {
    consume_with(&client(brokers), topic, partitions, want, timeout)
}

fn consume_with(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
) -> Vec<(Option<String>, String)> {
    let c: BaseConsumer = cfg
        .clone()
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            ));
        }
    }
    out
}

/// A Zeek dns record as Zeek's Kafka writer tags it; hits query under `bad.example`.
fn zeek_dns(n: u64, hit: bool) -> String {
    let q = if hit {
        format!("h{n}.bad.example")
    } else {
        format!("n{n}.good.example")
    };
    format!(
        r#"{{"dns": {{"ts":1764309600.{:03},"uid":"C{n}","id.orig_h":"10.1.{}.{}","id.orig_p":{},"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"{q}","qtype_name":"A","rcode_name":"NOERROR"}}}}"#,
        n % 1000,
        (n / 250) % 250,
        n % 250 + 1,
        1024 + n % 60000
    )
}

/// A Suricata EVE dns query; hits ask for `eN.bad.example`.
fn eve_dns(n: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-11-28T06:00:00.000000+0000","event_type":"dns","src_ip":"10.2.0.{}","src_port":5353,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","dns":{{"type":"query","id":{n},"rrname":"e{n}.bad.example","rrtype":"A"}}}}"#,
        n % 250 + 1
    )
}

/// `N` records numbered from `first`, every tenth a hit; the hits' numbers.
fn dns_round(first: u64, n: u64) -> (Vec<String>, BTreeSet<u64>) {
    let mut records = Vec::new();
    let mut hits = BTreeSet::new();
    for i in first..first + n {
        let hit = i % 10 == 0;
        if hit {
            hits.insert(i);
        }
        records.push(zeek_dns(i, hit));
    }
    (records, hits)
}

/// The queried name of an alert.
fn query(alert: &serde_json::Value) -> String {
    alert["dns"]["question"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no dns.question.name in {alert}"))
        .to_string()
}

/// The hit numbers (`hN.bad.example`) of the alerts in `files`, with repeats.
fn alerted(files: &[PathBuf]) -> Vec<u64> {
    files
        .iter()
        .flat_map(|f| json_lines(f))
        .filter_map(|a| {
            let q = query(&a);
            q.strip_prefix('h')?
                .strip_suffix(".bad.example")?
                .parse()
                .ok()
        })
        .collect()
}

/// A test directory with the `bad.example` feed; configs are written by [`Setup::daemon`].
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.txt"), "bad.example\n").unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `trawl-NAME.toml` (data in `data-NAME`, admin on `port`) with the sources and
    /// sinks `tables` adds, compile the feed into its data directory, return the config.
    fn daemon(
        &self,
        name: &str,
        port: u16,
        tables: impl FnOnce(DaemonConfig) -> DaemonConfig,
    ) -> PathBuf {
        let config = self.path(&format!("trawl-{name}.toml"));
        let data = self.path(&format!("data-{name}"));
        tables(DaemonConfig::new(&format!("kafka-{name}"), &data, port)).write(&config);
        config
    }
}

/// A Kafka source's keys: `topics` in `group`, quick to join and to notice a dead member,
/// with `options` added to its `[source.options]`.
fn kafka_source(brokers: &str, topics: &[&str], group: &str, options: Table) -> Table {
    let mut all = table([
        ("session.timeout.ms", 6000.into()),
        ("heartbeat.interval.ms", 300.into()),
        ("statistics.interval.ms", 500.into()),
        ("topic.metadata.refresh.interval.ms", 1000.into()),
    ]);
    all.extend(options);
    table([
        ("brokers", vec![brokers].into()),
        ("topics", topics.to_vec().into()),
        ("group", group.into()),
        ("start", "earliest".into()),
        ("options", all.into()),
    ])
}

/// A Kafka sink's keys: `topic` on `brokers`, and `more`.
fn kafka_sink(brokers: &str, topic: &str, more: Table) -> Table {
    let mut t = table([("brokers", vec![brokers].into()), ("topic", topic.into())]);
    t.extend(more);
    t
}

/// A JSONL alert file sink's keys.
fn jsonl_sink(path: &Path) -> Table {
    table([("path", p(path).into())])
}

/// The `/metrics` samples whose name and labels start with `prefix`.
fn samples(port: u16, prefix: &str) -> BTreeMap<String, u64> {
    http_get(port, "/metrics")
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_consumer_group_member_alerts_every_planted_hit_and_produces_the_alerts_to_kafka() {
    let s = Setup::new();
    let broker = Broker::start(s.dir.path(), free_port());
    let b = broker.addr();
    create_topic(&b, "dns", 4);
    create_topic(&b, "eve", 1);
    create_topic(&b, "alerts", 2);
    let (records, hits) = dns_round(1, 400);
    produce(&b, "dns", 4, &records);
    let eve: Vec<String> = (1..=5).map(eve_dns).collect();
    produce(&b, "eve", 1, &eve);

    let port = free_port();
    let config = s.daemon("a", port, |c| {
        c.source(
            "kafka",
            kafka_source(&b, &["^(dns|eve)$"], "g1", Table::new()),
        )
        .sink("jsonl", jsonl_sink(&s.path("alerts-a.jsonl")))
        .sink(
            "kafka",
            table([
                ("brokers", b.as_str().into()),
                ("topic", "alerts".into()),
                ("key", "source.ip".into()),
                ("compression", "lz4".into()),
            ]),
        )
    });
    let file = s.path("alerts-a.jsonl");
    let mut daemon = Daemon::start(&config);
    wait_for("every planted hit alerted", Duration::from_secs(60), || {
        assert!(daemon.exited().is_none(), "{}", Daemon::stderr(&config));
        json_lines(&file).len() >= hits.len() + eve.len()
    });
    // Every Zeek hit once, every EVE hit once (both formats detected by themselves).
    let mut got = alerted(std::slice::from_ref(&file));
    got.sort_unstable();
    assert_eq!(got, hits.iter().copied().collect::<Vec<_>>());
    let eve_alerts: BTreeSet<String> = json_lines(&file)
        .iter()
        .map(query)
        .filter(|q| q.starts_with('e'))
        .collect();
    assert_eq!(eve_alerts.len(), 5, "{eve_alerts:?}");
    // Each alert says where its message is: `log.file.path` = kafka:TOPIC/PARTITION and
    // `log.offset` = the message's Kafka offset (record i went to partition i % 4 at offset
    // i / 4; the EVE records to partition 0 in order).
    for a in json_lines(&file) {
        let q = query(&a);
        let (want_path, want_offset) = if let Some(n) = q.strip_prefix('e') {
            let n: u64 = n.strip_suffix(".bad.example").unwrap().parse().unwrap();
            ("kafka:eve/0".to_string(), n - 1)
        } else {
            let n: u64 = q[1..q.len() - ".bad.example".len()].parse().unwrap();
            (format!("kafka:dns/{}", (n - 1) % 4), (n - 1) / 4)
        };
        assert_eq!(a["log"]["file"]["path"], want_path.as_str(), "{a}");
        assert_eq!(a["log"]["offset"], want_offset, "{a}");
    }

    // The same alerts in the output topic, keyed by source.ip.
    let want = hits.len() + eve.len();
    let produced = consume(&b, "alerts", 2, want, Duration::from_secs(30));
    assert_eq!(produced.len(), want, "alerts in the topic");
    for (key, payload) in &produced {
        let alert: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(key.as_deref(), alert["source"]["ip"].as_str(), "{payload}");
    }
    wait_for("the metrics", Duration::from_secs(20), || {
        let m = samples(port, "trawl_kafka_");
        m.get(r#"trawl_kafka_messages_total{topic="dns"}"#) == Some(&400)
            && m.get(r#"trawl_kafka_messages_total{topic="eve"}"#) == Some(&5)
            && m.get(r#"trawl_kafka_produced_total{sink="kafka:alerts"}"#) == Some(&(want as u64))
            && m.get(r#"trawl_kafka_rebalances_total{group="g1"}"#) >= Some(&1)
            && m.get(r#"trawl_kafka_assigned_partitions{group="g1"}"#) == Some(&5)
            && (0..4).all(|p| {
                m.get(&format!(
                    r#"trawl_kafka_consumer_lag{{group="g1",topic="dns",partition="{p}"}}"#
                )) == Some(&0)
            })
    });
    // Stopped and started again: the committed offsets hold, only new records are read.
    assert!(daemon.term().success());
    let (more, more_hits) = dns_round(401, 20);
    produce(&b, "dns", 4, &more);
    let daemon = Daemon::start(&config);
    wait_for("the new hits", Duration::from_secs(60), || {
        alerted(std::slice::from_ref(&file)).len() >= hits.len() + more_hits.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut got = alerted(std::slice::from_ref(&file));
    got.sort_unstable();
    let all: Vec<u64> = hits.iter().chain(&more_hits).copied().collect();
    assert_eq!(got, all, "nothing read twice after a clean restart");
    assert!(daemon.term().success());
}

#[test]
fn the_kafka_sink_spools_while_the_broker_is_down_and_delivers_when_it_returns() {
    let s = Setup::new();
    let broker_port = free_port();
    let broker = Broker::start(s.dir.path(), broker_port);
    let b = broker.addr();
    create_topic(&b, "alerts", 1);
    std::fs::create_dir_all(s.path("logs")).unwrap();
    let log = s.path("logs/dns.log");
    let append = |range: std::ops::RangeInclusive<u64>| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        for n in range {
            writeln!(f, "{}", zeek_dns(n, true)).unwrap();
        }
    };
    let port = free_port();
    let config = s.daemon("sink", port, |c| {
        c.source("file", table([("paths", vec![p(&log)].into())]))
            .sink(
                "kafka",
                kafka_sink(
                    &b,
                    "alerts",
                    table([
                        ("timeout", 2.into()),
                        (
                            "options",
                            table([("reconnect.backoff.max.ms", 500.into())]).into(),
                        ),
                    ]),
                ),
            )
    });
    let mut daemon = Daemon::start(&config);
    append(1..=5);
    let got = consume(&b, "alerts", 1, 5, Duration::from_secs(30));
    assert_eq!(got.len(), 5, "{}", Daemon::stderr(&config));

    drop(broker);
    append(6..=10);
    wait_for("failed deliveries", Duration::from_secs(30), || {
        assert!(daemon.exited().is_none());
        samples(port, "trawl_kafka_produce_failures_total")
            .values()
            .any(|&n| n > 0)
            && metric(port, r#"trawl_sink_spool_bytes{sink="kafka:alerts"}"#) > Some(0)
    });
    // The broker returns (memory storage: empty, so the topic is made again).
    let broker = Broker::start(s.dir.path(), broker_port);
    create_topic(&b, "alerts", 1);
    let got = consume(&b, "alerts", 1, 5, Duration::from_secs(60));
    let names: BTreeSet<String> = got
        .iter()
        .map(|(_, a)| query(&serde_json::from_str(a).unwrap()))
        .collect();
    let want: BTreeSet<String> = (6..=10).map(|n| format!("h{n}.bad.example")).collect();
    assert_eq!(names, want, "{}", Daemon::stderr(&config));
    wait_for("the spool emptied", Duration::from_secs(20), || {
        metric(port, r#"trawl_sink_spool_bytes{sink="kafka:alerts"}"#) == Some(0)
    });
    assert!(daemon.term().success());
    drop(broker);
}

/// Like [`wait_for`], but a timeout shows `show()` (the members' logs and metrics).
fn wait_or_show(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> bool,
    show: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}\n{}", show());
}

#[test]
fn two_members_split_the_partitions_and_a_kill_9_loses_no_hit() {
    let s = Setup::new();
    let broker = Broker::start(s.dir.path(), free_port());
    let b = broker.addr();
    create_topic(&b, "dns", 4);
    let member = |name: &str| {
        let port = free_port();
        let config = s.daemon(name, port, |c| {
            c.source("kafka", kafka_source(&b, &["dns"], "pair", Table::new()))
                .sink(
                    "jsonl",
                    jsonl_sink(&s.path(&format!("alerts-{name}.jsonl"))),
                )
        });
        (config, port)
    };
    let (config_a, port_a) = member("a");
    let (config_b, port_b) = member("b");
    let files = [s.path("alerts-a.jsonl"), s.path("alerts-b.jsonl")];
    let show = || {
        let tail = |c: &Path| {
            let t = Daemon::stderr(c);
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "alerted {} distinct\n--- a: {:?}\n{}\n--- b: {:?}\n{}",
            alerted(&files).iter().collect::<BTreeSet<_>>().len(),
            samples(port_a, "trawl_kafka_"),
            tail(&config_a),
            samples(port_b, "trawl_kafka_"),
            tail(&config_b)
        )
    };
    let a = Daemon::start(&config_a);
    let bd = Daemon::start(&config_b);
    // Two partitions each once the group has settled (lag gauges list the assigned ones).
    let assigned = |port: u16| metric(port, r#"trawl_kafka_assigned_partitions{group="pair"}"#);
    wait_or_show(
        "two partitions each",
        Duration::from_secs(60),
        || assigned(port_a) == Some(2) && assigned(port_b) == Some(2),
        show,
    );
    let (r1, mut hits) = dns_round(1, 2000);
    produce(&b, "dns", 4, &r1);
    wait_or_show(
        "round 1 alerted",
        Duration::from_secs(60),
        || alerted(&files).iter().collect::<BTreeSet<_>>().len() == hits.len(),
        show,
    );
    let per_member: Vec<usize> = files.iter().map(|f| json_lines(f).len()).collect();
    assert!(
        per_member.iter().all(|&n| n > 0),
        "both members alerted: {per_member:?}"
    );
    // Round 2 produced while member a is killed with -9 and started again.
    let (r2, h2) = dns_round(2001, 4000);
    hits.extend(&h2);
    let producer = {
        let b = b.clone();
        std::thread::spawn(move || {
            for chunk in r2.chunks(400) {
                produce(&b, "dns", 4, chunk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    a.kill9();
    // a is started again once the dead member's session (6 s) is over. Tansu 0.6 drops a
    // dead member only at the next join and only if its session is over by then (no
    // rebalance of its own at the timeout, as Apache Kafka does): a member joining sooner
    // makes a generation that keeps the dead one's share unread.
    std::thread::sleep(Duration::from_secs(7));
    let a = Daemon::start(&config_a);
    producer.join().unwrap();
    wait_or_show(
        "every hit alerted",
        Duration::from_secs(90),
        || alerted(&files).iter().collect::<BTreeSet<_>>().len() == hits.len(),
        show,
    );
    let all = alerted(&files);
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct, hits, "every planted hit alerted");
    let repeats = all.len() - distinct.len();
    eprintln!(
        "{} hits, {} alerts, {repeats} repeated (in flight at the kill)",
        hits.len(),
        all.len()
    );
    assert!(
        repeats < h2.len(),
        "repeats only for what was in flight: {repeats}"
    );
    assert!(a.term().success());
    assert!(bd.term().success());
}

#[test]
fn the_sample_kafka_config_loads_and_runs_against_a_broker() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/kafka.toml");
    let (sources, sinks) = sensor::daemon::config::load(&sample).expect("samples/kafka.toml");
    assert_eq!(
        sources.iter().map(|s| s.kind()).collect::<Vec<_>>(),
        ["kafka"]
    );
    assert_eq!(
        sinks.iter().map(|s| s.kind()).collect::<Vec<_>>(),
        ["kafka"]
    );

    // The sample as it is, but for the brokers, the SASL credentials (Tansu has none), the
    // data directory and a local feed.
    let s = Setup::new();
    let broker = Broker::start(s.dir.path(), free_port());
    let b = broker.addr();
    create_topic(&b, "zeek-dns", 2);
    create_topic(&b, "trawl-alerts", 1);
    let text = std::fs::read_to_string(&sample).unwrap();
    let (_, tables) = text.split_once("[[source]]").unwrap();
    let tables = format!("[[source]]{tables}")
        .replace(r#"["kafka1:9092", "kafka2:9092"]"#, &format!(r#"["{b}"]"#))
        .lines()
        .filter(|l| !l.starts_with("\"s"))
        .collect::<Vec<_>>()
        .join("\n");
    let port = free_port();
    let config = s.daemon("sample", port, |c| c.tables(&tables));
    let (records, hits) = dns_round(1, 40);
    produce(&b, "zeek-dns", 2, &records);
    let daemon = Daemon::start(&config);
    let got = consume(&b, "trawl-alerts", 1, hits.len(), Duration::from_secs(60));
    let names: BTreeSet<String> = got
        .iter()
        .map(|(_, a)| query(&serde_json::from_str(a).unwrap()))
        .collect();
    let want: BTreeSet<String> = hits.iter().map(|n| format!("h{n}.bad.example")).collect();
    assert_eq!(names, want, "{}", Daemon::stderr(&config));
    assert!(daemon.term().success());
}

/// A TLS terminator (socat, from Debian) on 127.0.0.1:`port` forwarding to the broker's plain
/// port; killed when dropped.
struct Terminator(Child);

impl Terminator {
    fn start(dir: &Path, port: u16, to: u16, cert: &Path, key: &Path) -> Terminator {
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
            p(cert),
            p(key)
        );
        let child = Command::new("socat")
            .args([listen.as_str(), &format!("TCP:127.0.0.1:{to}")])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.join("socat.log")).unwrap())
            .spawn()
            .expect("socat (apt-get install socat)");
        let mut t = Terminator(child);
        wait_for("socat to listen", Duration::from_secs(10), || {
            assert!(t.0.try_wait().unwrap().is_none(), "socat exited");
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        t
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn source_and_sink_speak_tls_and_a_wrong_ca_is_named() {
    let s = Setup::new();
    let (cert, key) = crate::certs::self_signed(s.dir.path(), "broker", "trawl test broker");
    let (wrong, _) = crate::certs::self_signed(s.dir.path(), "other-ca", "trawl test other-ca");
    // Tansu 0.6 has no TLS listener of its own: socat terminates TLS in front of it, and the
    // broker advertises the TLS port so that metadata sends every client back through it.
    let (plain, tls) = (free_port(), free_port());
    let _broker = Broker::start_advertising(s.dir.path(), plain, tls);
    let _tls = Terminator::start(s.dir.path(), tls, plain, &cert, &key);
    let b = format!("127.0.0.1:{tls}");
    let mut over_tls = client(&b);
    over_tls
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", p(&cert));
    create_topic_with(&over_tls, "dns", 2);
    create_topic_with(&over_tls, "alerts", 1);
    let (records, hits) = dns_round(1, 200);
    produce_with(&over_tls, "dns", 2, &records);

    let tables = |group: &str, ca: &Path| {
        let tls = table([
            ("security.protocol", "ssl".into()),
            ("ssl.ca.location", p(ca).into()),
        ]);
        let source = kafka_source(&b, &["dns"], group, tls.clone());
        let sink = table([("timeout", 5.into()), ("options", tls.into())]);
        let sink = kafka_sink(&b, "alerts", sink);
        move |c: DaemonConfig| c.source("kafka", source).sink("kafka", sink)
    };
    let config = s.daemon("tls", free_port(), tables("tls", &cert));
    let daemon = Daemon::start(&config);
    let got = consume_with(&over_tls, "alerts", 1, hits.len(), Duration::from_secs(60));
    let names: BTreeSet<String> = got
        .iter()
        .map(|(_, a)| query(&serde_json::from_str(a).unwrap()))
        .collect();
    let want: BTreeSet<String> = hits.iter().map(|n| format!("h{n}.bad.example")).collect();
    assert_eq!(names, want, "{}", Daemon::stderr(&config));
    assert!(daemon.term().success());

    // A CA that did not sign the broker's certificate: nothing is read, and the log says
    // which broker refused and what to check.
    let port = free_port();
    let config = s.daemon("wrong-ca", port, tables("wrong", &wrong));
    let mut daemon = Daemon::start(&config);
    wait_for("the certificate error", Duration::from_secs(30), || {
        assert!(daemon.exited().is_none(), "{}", Daemon::stderr(&config));
        let log = Daemon::stderr(&config);
        log.contains("certificate verify failed")
            && log.contains(&format!("ssl://{b}"))
            && log.contains(r#"check "ssl.ca.location" in [source.options]"#)
    });
    assert_eq!(
        metric(port, r#"trawl_kafka_messages_total{topic="dns"}"#),
        None,
        "nothing consumed through an unverified broker"
    );
    assert!(daemon.term().success());
}

#[test]
fn zstd_compressed_records_are_read_and_alerts_are_produced_zstd_compressed() {
    let s = Setup::new();
    let broker = Broker::start(s.dir.path(), free_port());
    let b = broker.addr();
    create_topic(&b, "dns", 2);
    create_topic(&b, "alerts", 1);
    // Records compressed with zstd by their producer (as Vector or Zeek may be set to).
    let mut zstd = client(&b);
    zstd.set("compression.type", "zstd");
    let (records, hits) = dns_round(1, 300);
    produce_with(&zstd, "dns", 2, &records);
    let zstd_sink = |group: &str, codec: &str| {
        let sink = kafka_sink(&b, "alerts", table([("compression", codec.into())]));
        let source = kafka_source(&b, &["dns"], group, Table::new());
        move |c: DaemonConfig| c.source("kafka", source).sink("kafka", sink)
    };
    let config = s.daemon("zstd", free_port(), zstd_sink("z", "zstd"));
    let daemon = Daemon::start(&config);
    let got = consume(&b, "alerts", 1, hits.len(), Duration::from_secs(60));
    let mut names: Vec<String> = got
        .iter()
        .map(|(_, a)| query(&serde_json::from_str(a).unwrap()))
        .collect();
    names.sort_unstable();
    let mut want: Vec<String> = hits.iter().map(|n| format!("h{n}.bad.example")).collect();
    want.sort_unstable();
    assert_eq!(names, want, "{}", Daemon::stderr(&config));
    assert!(daemon.term().success());
    // A codec the sink does not know is refused at start, naming the ones it does.
    let bad = s.daemon("brotli", free_port(), zstd_sink("z2", "brotli"));
    let mut daemon = Daemon::start(&bad);
    wait_for("the refusal", Duration::from_secs(30), || {
        daemon.exited().is_some()
    });
    let err = Daemon::stderr(&bad);
    assert!(err.contains(r#""lz4" or "zstd""#), "{err}");
}
