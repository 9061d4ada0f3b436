//! `trawl run` sinks and operations, end to end with the real binary: jsonl rotation by size
//! and by time, syslog RFC 5424 over UDP, TCP and a unix socket, HTTP in the Splunk HEC and
//! Elasticsearch `_bulk` forms with tokens from the environment, the bounded on-disk HTTP
//! spool across an outage and a `kill -9`, suppression counts, the /metrics names, and a
//! stdin source; `sinks/trust.rs`: the same daemon under bad conditions.

mod taxii;
mod trust;
use crate::daemon_support::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn squid_line(n: u64, host: &str) -> String {
    format!(
        "1764309600.{:03} 10 10.0.0.5 TCP_MISS/200 100 GET http://{host}/n/{n} - HIER_DIRECT/93.184.216.34 text/html\n",
        n % 1000
    )
}

/// The `/n/N` number of an alert.
fn line_no(alert: &serde_json::Value) -> u64 {
    alert["url"]["full"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no /n/N in {alert}"))
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Setup {
    /// Rewrite the config with `from` replaced by `to`.
    fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, text.replace(from, to)).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn append(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    fn hits(&self, range: std::ops::RangeInclusive<u64>) {
        let text: String = range.map(|n| squid_line(n, "www.bad.example")).collect();
        self.append(&text);
    }
}

/// A feed listing `bad.example`, a file source on `logs/access.log*`, and what `tables`
/// adds (given the test directory).
fn setup_with(tables: impl FnOnce(DaemonConfig, &Path) -> DaemonConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(d.join("bad.txt"), "bad.example\n").unwrap();
    let port = free_port();
    let config = d.join("trawl.toml");
    let logs = format!("{}/logs/access.log*", p(d));
    let base = DaemonConfig::new("sinks-test", &d.join("data"), port).source(
        "file",
        table([("paths", vec![logs].into()), ("format", "squid".into())]),
    );
    tables(base, d).write(&config);
    Setup {
        log: d.join("logs/access.log"),
        dir,
        config,
        port,
    }
}

/// [`setup_with`] from TOML text: `sensor_extra` keys of `[sensor]` and the `rest` tables
/// (`{dir}` in them replaced by the test directory).
fn setup(sensor_extra: &str, rest: &str) -> Setup {
    let extra: toml::Table = sensor_extra.parse().expect("[sensor] keys");
    setup_with(|c, d| {
        extra
            .into_iter()
            .fold(c, |c, (k, v)| c.sensor(&k, v))
            .tables(&rest.replace("{dir}", p(d)))
    })
}

/// A `jsonl` sink's keys: the alert file `path`, and `more`.
fn jsonl(path: &Path, more: toml::Table) -> toml::Table {
    let mut t = table([("path", p(path).into())]);
    t.extend(more);
    t
}

/// An `http` sink's keys: its `endpoint`, and `more`.
fn http(endpoint: String, more: toml::Table) -> toml::Table {
    let mut t = table([("endpoint", endpoint.into())]);
    t.extend(more);
    t
}

/// The plain alert file sink most tests write to.
const JSONL_SINK: &str = r#"[[sink]]
kind = "jsonl"
path = "{dir}/alerts.jsonl"
"#;

/// Every file of `dir` whose name starts with `prefix`.
fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

/// Line numbers of the alerts across `files`, with multiplicity.
fn numbers(files: &[PathBuf]) -> BTreeMap<u64, u32> {
    let mut m = BTreeMap::new();
    for f in files {
        for a in json_lines(f) {
            *m.entry(line_no(&a)).or_insert(0) += 1;
        }
    }
    m
}

fn once(range: std::ops::RangeInclusive<u64>) -> BTreeMap<u64, u32> {
    range.map(|n| (n, 1)).collect()
}

#[test]
fn jsonl_sink_rotates_by_size_and_by_time_without_losing_an_alert() {
    let s = setup_with(|c, d| {
        c.sink(
            "jsonl",
            jsonl(&d.join("size.jsonl"), table([("max_bytes", 4000.into())])),
        )
        .sink(
            "jsonl",
            jsonl(&d.join("time.jsonl"), table([("rotate", "1s".into())])),
        )
    });
    let d = s.dir.path().to_path_buf();
    let daemon = Daemon::start(&s.config);
    s.hits(1..=20);
    wait_for(
        "20 alerts in the time sink",
        Duration::from_secs(30),
        || numbers(&files_with_prefix(&d, "time.jsonl")) == once(1..=20),
    );
    // Time rotation: within about a second the file is renamed aside (nothing written since).
    wait_for("a time rotation", Duration::from_secs(10), || {
        files_with_prefix(&d, "time.jsonl.").len() == 1
    });
    s.hits(21..=40);
    wait_for("40 alerts in both sinks", Duration::from_secs(30), || {
        numbers(&files_with_prefix(&d, "time.jsonl")) == once(1..=40)
            && numbers(&files_with_prefix(&d, "size.jsonl")) == once(1..=40)
    });
    assert!(daemon.term().success());
    let rotated = files_with_prefix(&d, "time.jsonl.");
    assert!(!rotated.is_empty());
    assert_eq!(
        numbers(&rotated[..1]),
        once(1..=20),
        "the first time rotation holds the first burst"
    );
    // Size rotation between alerts: no file above max_bytes, and several files.
    let sized = files_with_prefix(&d, "size.jsonl");
    let alert_len = std::fs::read_to_string(&sized[0])
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .len();
    assert!(alert_len < 4000, "an alert is {alert_len} bytes");
    assert!(
        sized.len() >= 40 * alert_len / 4000,
        "{} files for 40 alerts of ~{alert_len} bytes",
        sized.len()
    );
    for f in &sized {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 4000, "{} is {len} bytes", f.display());
        assert!(std::fs::read(f).unwrap().ends_with(b"\n"));
    }
}

/// Reads octet-counted RFC 6587 frames from every connection.
fn tcp_syslog_server(listener: TcpListener, got: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let got = got.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = Vec::new();
                    if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                        return;
                    }
                    let n: usize = std::str::from_utf8(&len[..len.len() - 1])
                        .unwrap()
                        .parse()
                        .unwrap();
                    let mut msg = vec![0u8; n];
                    r.read_exact(&mut msg).unwrap();
                    got.lock().unwrap().push(String::from_utf8(msg).unwrap());
                }
            });
        }
    });
}

/// Checks one RFC 5424 message and returns its MSG parsed as JSON.
fn rfc5424(msg: &str, pid: u32) -> serde_json::Value {
    let parts: Vec<&str> = msg.splitn(8, ' ').collect();
    assert_eq!(parts.len(), 8, "{msg}");
    // severity high → critical (2), facility local0 (16): PRI 130; VERSION 1.
    assert_eq!(parts[0], "<130>1", "{msg}");
    time::OffsetDateTime::parse(parts[1], &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("TIMESTAMP {}: {e}", parts[1]));
    assert!(
        !parts[2].is_empty() && parts[2].chars().all(|c| c.is_ascii_graphic()),
        "HOSTNAME {}",
        parts[2]
    );
    assert_eq!(parts[3], "trawl", "APP-NAME");
    assert_eq!(parts[4], pid.to_string(), "PROCID");
    assert_eq!(parts[5], "alert", "MSGID");
    assert_eq!(parts[6], "-", "STRUCTURED-DATA");
    serde_json::from_str(parts[7]).unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {msg}"))
}

#[test]
fn syslog_sink_sends_rfc5424_over_udp_tcp_and_unix_socket() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let unix_dir = tempfile::tempdir().unwrap();
    let unix_path = unix_dir.path().join("log.sock");
    let unix = std::os::unix::net::UnixDatagram::bind(&unix_path).unwrap();
    unix.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let s = setup_with(|c, d| {
        let syslog = |endpoint: String| table([("endpoint", endpoint.into())]);
        c.sink("jsonl", jsonl(&d.join("alerts.jsonl"), table([])))
            .sink("syslog", syslog(format!("udp://{udp_addr}")))
            .sink("syslog", syslog(format!("tcp://{tcp_addr}")))
            .sink("syslog", syslog(format!("unix://{}", p(&unix_path))))
    });
    let tcp_got = Arc::new(Mutex::new(Vec::new()));
    tcp_syslog_server(tcp, tcp_got.clone());
    let daemon = Daemon::start(&s.config);
    let pid = daemon.0.id();
    s.hits(1..=5);
    let mut udp_got = Vec::new();
    let mut unix_got = Vec::new();
    let mut buf = vec![0u8; 65536];
    wait_for(
        "5 messages on each transport",
        Duration::from_secs(30),
        || {
            if let Ok(n) = udp.recv(&mut buf) {
                udp_got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            if let Ok(n) = unix.recv(&mut buf) {
                unix_got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
            udp_got.len() >= 5 && unix_got.len() >= 5 && tcp_got.lock().unwrap().len() >= 5
        },
    );
    assert!(daemon.term().success());
    let jsonl = json_lines(&s.path("alerts.jsonl"));
    assert_eq!(jsonl.len(), 5);
    let tcp_got = tcp_got.lock().unwrap().clone();
    for (name, got) in [("udp", &udp_got), ("tcp", &tcp_got), ("unix", &unix_got)] {
        assert_eq!(got.len(), 5, "{name}");
        let msgs: Vec<serde_json::Value> = got.iter().map(|m| rfc5424(m, pid)).collect();
        assert_eq!(
            msgs, jsonl,
            "{name}: the alert JSON is the message, in order"
        );
    }
}

/// A recorded HTTP request.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// An HTTP/1.1 server recording requests; `answer(n, &request)` gives the n-th response
/// (status line and body).
fn recording_server(
    listener: TcpListener,
    answer: impl Fn(usize, &Request) -> (&'static str, String) + Send + 'static,
) -> Arc<Mutex<Vec<Request>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut count = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).unwrap_or(0) == 0 {
                continue;
            }
            let path = first.split(' ').nth(1).unwrap_or("").to_string();
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let req = Request {
                path,
                headers,
                body: String::from_utf8(body).unwrap(),
            };
            let (status, resp) = answer(count, &req);
            count += 1;
            if status.starts_with("200") {
                seen.lock().unwrap().push(req);
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{resp}",
                resp.len()
            );
        }
    });
    got
}

#[test]
fn http_sink_splunk_hec_and_elasticsearch_bulk_with_tokens_from_the_environment() {
    let hec = TcpListener::bind("127.0.0.1:0").unwrap();
    let hec_port = hec.local_addr().unwrap().port();
    let es = TcpListener::bind("127.0.0.1:0").unwrap();
    let es_port = es.local_addr().unwrap().port();
    let hec_got = recording_server(hec, |_, _| {
        ("200 OK", r#"{"text":"Success","code":0}"#.into())
    });
    // Elasticsearch answers the first bulk with a per-item 429 (HTTP 200, "errors": true):
    // the batch must be sent again, with the same _ids.
    let es_got = recording_server(es, |n, req| {
        let docs = req.body.lines().count() / 2;
        let status = |i: usize| if n == 0 && i == 0 { 429 } else { 201 };
        let items: Vec<String> = (0..docs)
            .map(|i| format!(r#"{{"create":{{"status":{}}}}}"#, status(i)))
            .collect();
        (
            "200 OK",
            format!(r#"{{"errors":{},"items":[{}]}}"#, n == 0, items.join(",")),
        )
    });
    let s = setup_with(|c, d| {
        c.sink("jsonl", jsonl(&d.join("alerts.jsonl"), table([])))
            .sink(
                "http",
                http(
                    format!("http://127.0.0.1:{hec_port}/services/collector/event"),
                    table([
                        ("format", "splunk-hec".into()),
                        ("token_env", "TRAWL_TEST_HEC_TOKEN".into()),
                    ]),
                ),
            )
            .sink(
                "http",
                http(
                    format!("http://127.0.0.1:{es_port}/trawl-alerts/_bulk"),
                    table([
                        ("format", "es-bulk".into()),
                        ("token_env", "TRAWL_TEST_ES_TOKEN".into()),
                        ("auth_scheme", "ApiKey".into()),
                        ("batch", 3.into()),
                    ]),
                ),
            )
    });
    // Without the variable the daemon refuses to start, naming it.
    let mut bad = Daemon::start(&s.config);
    wait_for("the daemon to refuse", Duration::from_secs(20), || {
        bad.exited().is_some()
    });
    assert!(!bad.exited().unwrap().success());
    assert!(
        Daemon::stderr(&s.config).contains("TRAWL_TEST_HEC_TOKEN"),
        "{}",
        Daemon::stderr(&s.config)
    );
    let daemon = Daemon::start_env(
        &s.config,
        &[
            ("TRAWL_TEST_HEC_TOKEN", "hec-secret"),
            ("TRAWL_TEST_ES_TOKEN", "es-secret"),
        ],
    );
    s.hits(1..=5);
    let es_docs = || -> usize {
        es_got
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.lines().count() / 2)
            .sum()
    };
    let hec_events = || -> usize {
        hec_got
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.lines().count())
            .sum()
    };
    wait_for("5 alerts at each endpoint", Duration::from_secs(30), || {
        hec_events() >= 5 && es_docs() >= 8
    });
    assert!(daemon.term().success());
    let jsonl = json_lines(&s.path("alerts.jsonl"));
    assert_eq!(jsonl.len(), 5);

    // Splunk HEC: "Authorization: Splunk <token>", one JSON object per event, the alert as
    // `event`, its @timestamp as `time` (epoch seconds).
    let hec_got = hec_got.lock().unwrap().clone();
    let mut events = Vec::new();
    for r in &hec_got {
        assert_eq!(r.path, "/services/collector/event");
        assert_eq!(r.headers["authorization"], "Splunk hec-secret");
        assert_eq!(r.headers["content-type"], "application/json");
        for line in r.body.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["sourcetype"], "trawl:alert");
            let ts = time::OffsetDateTime::parse(
                v["event"]["@timestamp"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let want = (ts.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0;
            assert!(
                (v["time"].as_f64().unwrap() - want).abs() < 0.0005,
                "{line}"
            );
            events.push(v["event"].clone());
        }
    }
    assert_eq!(events, jsonl, "HEC: every alert once, in order");

    // Elasticsearch _bulk: "Authorization: ApiKey <token>", NDJSON action/document pairs,
    // batches of 3; the first batch twice (item 0 answered 429) with the same _ids.
    let es_got = es_got.lock().unwrap().clone();
    assert_eq!(es_got.len(), 3, "{es_got:?}");
    let mut docs = Vec::new();
    let mut ids = Vec::new();
    for r in &es_got {
        assert_eq!(r.path, "/trawl-alerts/_bulk");
        assert_eq!(r.headers["authorization"], "ApiKey es-secret");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert!(r.body.ends_with('\n'));
        let lines: Vec<&str> = r.body.lines().collect();
        for pair in lines.chunks(2) {
            let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
            let id = action["create"]["_id"].as_str().unwrap().to_string();
            assert_eq!(id.len(), 16);
            ids.push(id);
            docs.push(serde_json::from_str::<serde_json::Value>(pair[1]).unwrap());
        }
    }
    assert_eq!(&docs[..3], &jsonl[..3], "the first batch");
    assert_eq!(
        &docs[3..],
        &jsonl[..],
        "resent whole after the 429, then the rest"
    );
    assert_eq!(ids[..3], ids[3..6], "a resent batch keeps its _ids");
    let distinct: std::collections::BTreeSet<&String> = ids[3..].iter().collect();
    assert_eq!(distinct.len(), 5);
}

#[test]
fn http_spool_is_bounded_on_disk_while_down_and_delivers_everything_after_kill9() {
    let http_port = free_port();
    let s = setup_with(|c, d| {
        c.sink("jsonl", jsonl(&d.join("alerts.jsonl"), table([])))
            .sink(
                "http",
                http(
                    format!("http://127.0.0.1:{http_port}/ingest"),
                    table([("spool_max_bytes", 20000.into()), ("batch", 4.into())]),
                ),
            )
    });
    let spool = s.path("data/spool/http-1/spool.jsonl");
    let daemon = Daemon::start(&s.config);
    wait_for("the daemon", Duration::from_secs(30), || {
        metric(s.port, "trawl_lines_total").is_some()
    });
    // One line at a time, each processed before the next is written (so every spool write
    // is one small alert) until the spool is full and refuses; then the rest at once.
    let refused = || http_get(s.port, "/healthz").contains(": spool full (");
    for n in 1..=60 {
        s.hits(n..=n);
        wait_for("the line to be processed", Duration::from_secs(30), || {
            metric(s.port, "trawl_alerts_total").unwrap_or(0) >= n || refused()
        });
        if refused() {
            if n < 60 {
                s.hits(n + 1..=60);
            }
            break;
        }
    }
    wait_for(
        "the spool to fill and refuse",
        Duration::from_secs(30),
        || {
            let len = std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);
            assert!(len <= 20000, "spool is {len} bytes, above spool_max_bytes");
            // Refused writes (spool full) are retried, not dropped: the batch stays
            // unacknowledged while the daemon waits (backpressure).
            len > 0 && refused()
        },
    );
    daemon.kill9();
    assert!(std::fs::metadata(&spool).unwrap().len() <= 20000);

    // The endpoint comes back; so does the daemon: every alert arrives once, in order.
    let listener = TcpListener::bind(("127.0.0.1", http_port)).unwrap();
    let got = recording_server(listener, |_, _| ("200 OK", String::new()));
    let daemon = Daemon::start(&s.config);
    let received = || -> Vec<u64> {
        got.lock()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.body
                    .lines()
                    .map(|l| line_no(&serde_json::from_str(l).unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received().len() < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: received {:?}\nspool {:?}\n{}",
            received(),
            std::fs::metadata(&spool).map(|m| m.len()),
            Daemon::stderr(&s.config)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("the spool to empty", Duration::from_secs(10), || {
        !spool.exists()
    });
    assert!(daemon.term().success());
    assert_eq!(
        received(),
        (1..=60).collect::<Vec<u64>>(),
        "exactly once, in order"
    );
}

#[test]
fn suppression_counts_repeats_and_metrics_expose_every_name() {
    let s = setup_with(|c, d| {
        c.sensor("suppress", "1s")
            .sink("jsonl", jsonl(&d.join("alerts.jsonl"), table([])))
    });
    let daemon = Daemon::start(&s.config);
    // Four hits on one (indicator, source ip) in one write, one unparseable line.
    s.hits(1..=4);
    s.append("this is not a squid line\n");
    let alerts = s.path("alerts.jsonl");
    wait_for("the window's folded alert", Duration::from_secs(30), || {
        json_lines(&alerts).len() == 2
    });
    let got = json_lines(&alerts);
    assert!(got[0]["trawl"].get("repeat_count").is_none());
    assert_eq!(got[0]["url"]["full"], "http://www.bad.example/n/1");
    assert_eq!(got[1]["trawl"]["repeat_count"], 3, "{}", got[1]);
    assert_eq!(got[1]["url"]["full"], "http://www.bad.example/n/4");
    let m = |name: &str| metric(s.port, name).unwrap_or_else(|| panic!("{name} missing"));
    wait_for("lag to settle", Duration::from_secs(10), || {
        metric(
            s.port,
            &format!("trawl_file_lag_bytes{{file=\"{}\"}}", p(&s.log)),
        ) == Some(0)
    });
    assert_eq!(m("trawl_lines_total"), 5);
    assert_eq!(
        m("trawl_bytes_total"),
        std::fs::metadata(&s.log).unwrap().len()
    );
    assert_eq!(m("trawl_parse_failures_total"), 1);
    assert_eq!(m("trawl_alerts_by_feed_total{feed=\"bad\"}"), 4);
    // The counter moves right after the sink write returns: the file can show the folded
    // alert a moment before /metrics counts it.
    wait_for("both alerts counted", Duration::from_secs(10), || {
        metric(s.port, "trawl_alerts_total") == Some(2)
    });
    assert_eq!(m("trawl_alerts_suppressed_total"), 3);
    assert_eq!(m("trawl_packets_total"), 0);
    assert_eq!(m("trawl_packet_bytes_total"), 0);
    assert_eq!(m("trawl_drops_total"), 0);
    assert_eq!(m("trawl_reloads_total"), 1);
    assert_eq!(m("trawl_snapshot_version"), 1);
    assert!(m("trawl_snapshot_indicators") > 0);
    assert_eq!(m("trawl_sink_errors_total"), 0);
    // `trawl feeds` facts as gauges.
    assert_eq!(m("trawl_feed_up{feed=\"bad\"}"), 1);
    assert!(m("trawl_feed_indicators{feed=\"bad\"}") > 0);
    let body = http_get(s.port, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("Content-Type: text/plain; version=0.0.4"));
    for name in [
        "trawl_lines_total",
        "trawl_file_lag_bytes",
        "trawl_alerts_by_feed_total",
    ] {
        assert!(body.contains(&format!("# TYPE {name} ")), "{name}");
    }
    assert!(http_get(s.port, "/healthz").ends_with("\r\n\r\nok\n"));
    // SIGHUP reloads the snapshot (same version: nothing was published since).
    Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    wait_for("the SIGHUP reload", Duration::from_secs(10), || {
        metric(s.port, "trawl_reloads_total") == Some(2)
    });
    assert_eq!(m("trawl_snapshot_version"), 1);
    assert!(daemon.term().success());
}

#[test]
fn stdin_source_matches_until_end_of_input_then_the_daemon_exits() {
    let s = setup("", JSONL_SINK);
    // The same config with the file source replaced by stdin, and a stdout sink.
    let stdin_cfg = s.path("stdin.toml");
    DaemonConfig::new("sinks-test", &s.path("data"), s.port)
        .source("stdin", table([("format", "squid".into())]))
        .sink("jsonl", jsonl(&s.path("alerts.jsonl"), table([])))
        .sink("stdout", table([]))
        .write(&stdin_cfg);
    let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["run", "--config", p(&stdin_cfg)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    for n in 1..=50 {
        let host = if n % 5 == 0 {
            "x.bad.example"
        } else {
            "x.good.example"
        };
        input.write_all(squid_line(n, host).as_bytes()).unwrap();
    }
    let alerts = s.path("alerts.jsonl");
    // Lines are matched while stdin stays open.
    wait_for("10 alerts from stdin", Duration::from_secs(30), || {
        json_lines(&alerts).len() == 10
    });
    drop(input);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit at end of input"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let got: Vec<u64> = json_lines(&alerts).iter().map(line_no).collect();
    assert_eq!(got, (1..=10).map(|n| n * 5).collect::<Vec<u64>>());
    // The stdout sink wrote the same alerts.
    let printed: Vec<serde_json::Value> = reader
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, json_lines(&alerts));
}

#[test]
fn read_from_end_skips_what_was_there_and_reads_new_files_from_their_beginning() {
    let s = setup("", JSONL_SINK);
    s.edit_config(
        "format = \"squid\"",
        "format = \"squid\"\nread_from = \"end\"",
    );
    s.hits(1..=10);
    let daemon = Daemon::start(&s.config);
    wait_for("the daemon", Duration::from_secs(30), || {
        metric(s.port, "trawl_lines_total").is_some()
    });
    s.hits(11..=15);
    // A file that appears later (a rotation) is read from its beginning.
    std::fs::write(
        s.path("logs/access.log.new"),
        (16..=18)
            .map(|n| squid_line(n, "www.bad.example"))
            .collect::<String>(),
    )
    .unwrap();
    let alerts = s.path("alerts.jsonl");
    wait_for("8 alerts", Duration::from_secs(30), || {
        json_lines(&alerts).len() >= 8
    });
    assert!(daemon.term().success());
    let mut got: Vec<u64> = json_lines(&alerts).iter().map(line_no).collect();
    got.sort();
    assert_eq!(got, (11..=18).collect::<Vec<u64>>());
}

#[test]
fn a_bad_file_source_fails_the_start_with_the_reason() {
    let s = setup("", JSONL_SINK);
    let good = std::fs::read_to_string(&s.config).unwrap();
    for (from, to, want) in [
        ("format = \"squid\"", "format = \"squidd\"", "squidd"),
        ("access.log*", "access.log[", "access.log["),
        (
            "format = \"squid\"",
            "format = \"squid\"\nread_from = \"middle\"",
            "middle",
        ),
        // Kafka is a kind now: a misspelt one is named with the nearest.
        (
            "kind = \"file\"",
            "kind = \"kafak\"",
            "did you mean `kafka`?",
        ),
    ] {
        std::fs::write(&s.config, good.replace(from, to)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["run", "--config", p(&s.config)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}: started anyway");
        assert!(err.contains(want), "{to}: {err}");
    }
}

#[test]
fn the_feed_scheduler_refreshes_a_feed_when_its_refresh_is_due() {
    let s = setup("", JSONL_SINK);
    s.edit_config(
        "severity = \"high\"",
        "severity = \"high\"\nrefresh = \"1s\"",
    );
    let daemon = Daemon::start(&s.config);
    wait_for("the daemon", Duration::from_secs(30), || {
        metric(s.port, "trawl_snapshot_version").is_some()
    });
    let before = metric(s.port, "trawl_snapshot_indicators").unwrap();
    // The feed changes on disk; no `trawl update` is run: the daemon's scheduler fetches it
    // and swaps in a snapshot with one more indicator.
    std::fs::write(s.path("bad.txt"), "bad.example\nnew-bad.example\n").unwrap();
    wait_for("the scheduled refresh", Duration::from_secs(20), || {
        metric(s.port, "trawl_snapshot_indicators") == Some(before + 1)
    });
    s.append(&squid_line(1, "x.new-bad.example"));
    let alerts = s.path("alerts.jsonl");
    wait_for(
        "an alert on the new indicator",
        Duration::from_secs(20),
        || json_lines(&alerts).len() == 1,
    );
    assert_eq!(
        json_lines(&alerts)[0]["trawl"]["matched"]["indicator"],
        "new-bad.example"
    );
    assert!(metric(s.port, "trawl_reloads_total").unwrap() >= 2);
    assert!(daemon.term().success());
}
