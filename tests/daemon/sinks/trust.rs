//! `trawl run` under bad conditions: workers that panic, a full disk under a sink, sinks that
//! refuse or cannot be reached, a second daemon on the same data directory, symlinks where
//! the daemon appends, and a flood of idle and slow connections on the admin port.

use super::*;
use std::net::TcpStream;

/// `/healthz` with its status line.
fn healthz(port: u16) -> String {
    http_get(port, "/healthz")
}

/// A labelled sample of a sink, e.g. `sink_metric(port, "failures_total", "jsonl:/x")`.
fn sink_metric(port: u16, what: &str, sink: &str) -> u64 {
    metric(port, &format!("trawl_sink_{what}{{sink=\"{sink}\"}}")).unwrap_or(0)
}

#[test]
fn a_worker_that_panics_is_counted_shown_and_restarted_and_no_line_is_lost() {
    if !cfg!(debug_assertions) {
        eprintln!("PANIC INJECTION UNAVAILABLE: TRAWL_TEST_PANIC exists in debug builds only");
        return;
    }
    let s = setup("", JSONL_SINK);
    s.edit_config(
        "severity = \"high\"",
        "severity = \"high\"\nrefresh = \"1s\"",
    );
    s.hits(1..=20);
    // Each worker panics once: a file source in the middle of a batch (before its alerts are
    // delivered), the sink dispatcher in the middle of a job, a sink's delivery thread, the
    // reload thread and the feed scheduler.
    let workers = ["source-0", "sinks", "sink-0", "reload", "feeds"];
    let daemon = Daemon::start_env(
        &s.config,
        &[(
            "TRAWL_TEST_PANIC",
            "source-0-batch,sinks-job,sink-0,reload,feeds",
        )],
    );
    let panics = |w: &str| {
        metric(
            s.port,
            &format!("trawl_worker_panics_total{{worker=\"{w}\"}}"),
        )
        .unwrap_or(0)
    };
    wait_for(
        "every worker's panic counted",
        Duration::from_secs(30),
        || workers.iter().all(|w| panics(w) == 1),
    );
    let health = healthz(s.port);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    for w in workers {
        assert!(health.contains(&format!("worker {w}: ")), "{w}: {health}");
        assert!(
            metric(
                s.port,
                &format!("trawl_worker_restarts_total{{worker=\"{w}\"}}")
            )
            .unwrap_or(0)
                >= 1,
            "{w} restarted"
        );
    }
    let stderr = Daemon::stderr(&s.config);
    assert!(
        stderr.contains("worker sinks panicked: injected fault at sinks-job"),
        "{stderr}"
    );
    // The restarted workers do their work: every line alerted once, the scheduler refreshes
    // the feed and the reload thread swaps the new snapshot in.
    let alerts = s.path("alerts.jsonl");
    wait_for("20 alerts", Duration::from_secs(30), || {
        json_lines(&alerts).len() >= 20
    });
    let before = metric(s.port, "trawl_snapshot_indicators").unwrap();
    std::fs::write(s.path("bad.txt"), "bad.example\nnew-bad.example\n").unwrap();
    wait_for(
        "a refresh after the restarts",
        Duration::from_secs(30),
        || metric(s.port, "trawl_snapshot_indicators") == Some(before + 1),
    );
    s.hits(21..=30);
    wait_for("30 alerts", Duration::from_secs(30), || {
        json_lines(&alerts).len() >= 30
    });
    assert!(daemon.term().success());
    assert_eq!(numbers(&[alerts]), once(1..=30));
}

/// A feed server whose every answer redirects to `file:///etc/passwd`.
fn redirecting_feed_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut conn = conn;
            let _ = conn.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

#[test]
fn a_feed_redirected_to_file_is_reported_on_healthz_and_the_daemon_keeps_detecting() {
    let s = setup("", JSONL_SINK);
    let port = redirecting_feed_server();
    // Added after the first update: the daemon meets it in its own scheduler.
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        format!(
            "{text}\n[[feed]]\nname = \"evil\"\nsource = \"http://127.0.0.1:{port}/feed\"\nformat = \"plain\"\nitype = \"fqdn\"\nrefresh = \"1s\"\n"
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&s.config);
    // Whether the fetch fails cleanly or panics inside the HTTP client, the daemon says so
    // and the scheduler keeps trying.
    let attempts = || {
        metric(s.port, "trawl_feed_failures_total{feed=\"evil\"}").unwrap_or(0)
            + metric(s.port, "trawl_worker_restarts_total{worker=\"feeds\"}").unwrap_or(0)
    };
    wait_for("two failed refreshes", Duration::from_secs(30), || {
        attempts() >= 2
    });
    let health = healthz(s.port);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains("feed evil:") || health.contains("worker feeds:"),
        "{health}"
    );
    s.hits(1..=5);
    let alerts = s.path("alerts.jsonl");
    wait_for("alerts still flow", Duration::from_secs(30), || {
        json_lines(&alerts).len() == 5
    });
    assert!(daemon.term().success());
}

/// A small tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a 64 KiB tmpfs on `dir`, or say why not.
    fn mount(dir: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs", p(dir)])
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", p(&self.0)]).status();
    }
}

/// Write to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [b'f'; 1024];
    let mut n = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k as u64,
        }
    }
}

#[test]
fn a_full_disk_under_a_sink_leaves_no_partial_or_repeated_alert_and_the_other_sink_goes_on() {
    let s = setup(
        "",
        r#"[[sink]]
kind = "jsonl"
path = "{dir}/small/alerts.jsonl"

[[sink]]
kind = "jsonl"
path = "{dir}/alerts.jsonl"
"#,
    );
    let small = s.path("small");
    let _tmpfs = match Tmpfs::mount(&small) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("ENOSPC TEST SKIPPED: cannot mount a tmpfs ({why}); run it as root");
            return;
        }
    };
    let full = small.join("alerts.jsonl");
    let other = s.path("alerts.jsonl");
    let full_sink = format!("jsonl:{}", p(&full));
    let daemon = Daemon::start(&s.config);
    s.hits(1..=10);
    wait_for("10 alerts in both sinks", Duration::from_secs(30), || {
        json_lines(&full).len() == 10 && json_lines(&other).len() == 10
    });
    // The disk fills up: the next alerts fit only partly in the file's last page.
    let filler = small.join("filler");
    assert!(fill(&filler) > 0);
    s.hits(11..=60);
    wait_for(
        "the other sink to get every alert",
        Duration::from_secs(30),
        || json_lines(&other).len() == 60,
    );
    wait_for("the failures to show", Duration::from_secs(30), || {
        sink_metric(s.port, "failures_total", &full_sink) >= 2
            && sink_metric(s.port, "spool_bytes", &full_sink) > 0
    });
    let health = healthz(s.port);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains(&format!("sink {full_sink}:")) && health.contains("No space left"),
        "{health}"
    );
    assert_eq!(metric(s.port, "trawl_degraded_components"), Some(1));
    // Space returns: the sink goes on exactly where it stopped.
    std::fs::remove_file(&filler).unwrap();
    wait_for("the full sink to catch up", Duration::from_secs(30), || {
        sink_metric(s.port, "delivered_total", &full_sink) == 60
    });
    assert_eq!(numbers(std::slice::from_ref(&full)), once(1..=60));
    assert!(std::fs::read(&full).unwrap().ends_with(b"\n"));
    assert_eq!(numbers(&[other]), once(1..=60));
    wait_for("healthz ok again", Duration::from_secs(10), || {
        healthz(s.port).ends_with("\r\n\r\nok\n")
    });
    assert_eq!(sink_metric(s.port, "spool_bytes", &full_sink), 0);
    assert_eq!(metric(s.port, "trawl_degraded_components"), Some(0));
    assert!(daemon.term().success());
}

#[test]
fn a_refused_batch_goes_to_the_dead_letter_file_and_an_unreachable_sink_blocks_nothing() {
    // The HTTP endpoint refuses (400) every batch holding line 13, forever; the syslog
    // collector is not there at all.
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    let got = recording_server(http, |_, req| {
        if req.body.contains("/n/13\"") {
            ("400 Bad Request", r#"{"error":"mapping"}"#.into())
        } else {
            ("200 OK", String::new())
        }
    });
    let closed = free_port();
    let s = setup(
        "",
        &format!(
            r#"[[sink]]
kind = "syslog"
endpoint = "tcp://127.0.0.1:{closed}"

[[sink]]
kind = "http"
endpoint = "http://127.0.0.1:{http_port}/ingest"
batch = 1

{JSONL_SINK}"#
        ),
    );
    let daemon = Daemon::start(&s.config);
    s.hits(1..=20);
    let alerts = s.path("alerts.jsonl");
    wait_for(
        "every alert in the jsonl sink",
        Duration::from_secs(30),
        || json_lines(&alerts).len() == 20,
    );
    let posted = || -> Vec<u64> {
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
    wait_for(
        "the HTTP sink past the refused batch",
        Duration::from_secs(30),
        || posted().len() == 19,
    );
    assert_eq!(
        posted(),
        (1..=20).filter(|n| *n != 13).collect::<Vec<u64>>()
    );
    let dead = s.path("data/spool/http-1/rejected.jsonl");
    assert_eq!(numbers(&[dead]), once(13..=13));
    let http_sink = format!("http:http://127.0.0.1:{http_port}/ingest");
    // The endpoint records a POST before the sink has its answer and counts it: wait for the
    // count rather than read it once.
    wait_for(
        "the HTTP sink's counters to settle",
        Duration::from_secs(10),
        || sink_metric(s.port, "delivered_total", &http_sink) == 19,
    );
    assert_eq!(sink_metric(s.port, "dead_letter_total", &http_sink), 1);
    let syslog_sink = format!("syslog:tcp://127.0.0.1:{closed}");
    wait_for(
        "the syslog failures to show",
        Duration::from_secs(30),
        || sink_metric(s.port, "failures_total", &syslog_sink) >= 1,
    );
    let health = healthz(s.port);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(
        health.contains(&format!("sink {syslog_sink}: connecting")),
        "{health}"
    );
    assert!(!health.contains("http:"), "{health}");
    assert!(daemon.term().success());
}

#[test]
fn a_second_daemon_on_the_same_data_directory_refuses_to_start_and_updates_still_run() {
    let s = setup("", JSONL_SINK);
    let daemon = Daemon::start(&s.config);
    wait_for("the first daemon", Duration::from_secs(30), || {
        metric(s.port, "trawl_snapshot_version").is_some()
    });
    // Same data directory, another admin port.
    let second = s.path("second.toml");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &second,
        text.replace(
            &format!("127.0.0.1:{}", s.port),
            &format!("127.0.0.1:{}", free_port()),
        ),
    )
    .unwrap();
    let mut other = Daemon::start(&second);
    wait_for(
        "the second daemon to refuse",
        Duration::from_secs(30),
        || other.exited().is_some(),
    );
    let err = Daemon::stderr(&second);
    assert!(!other.exited().unwrap().success(), "{err}");
    assert!(
        err.contains("another trawl run is already using the data directory"),
        "{err}"
    );
    // An update beside the daemon is not blocked by it.
    trawl_ok(&["-q", "update", "--force", "--config", p(&s.config)]);
    wait_for("the reload", Duration::from_secs(30), || {
        metric(s.port, "trawl_snapshot_version") == Some(2)
    });
    assert!(daemon.term().success());
}

#[test]
fn the_daemon_never_appends_through_a_symlink_in_its_spool() {
    let http_port = free_port();
    let s = setup(
        "",
        &format!("[[sink]]\nkind = \"http\"\nendpoint = \"http://127.0.0.1:{http_port}/ingest\"\n"),
    );
    let precious = s.path("precious");
    std::fs::write(&precious, "keep me\n").unwrap();
    let spool_dir = s.path("data/spool/http-0");
    std::fs::create_dir_all(&spool_dir).unwrap();
    std::os::unix::fs::symlink(&precious, spool_dir.join("spool.jsonl")).unwrap();
    s.hits(1..=3);
    let mut daemon = Daemon::start(&s.config);
    // Refused at the start (or, if it started, never written through).
    wait_for("the daemon to refuse", Duration::from_secs(30), || {
        daemon.exited().is_some()
    });
    let err = Daemon::stderr(&s.config);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
}

#[test]
fn idle_and_slow_admin_connections_are_timed_out_and_never_stall_detection() {
    let s = setup("", JSONL_SINK);
    // A low descriptor limit: without a cap, the connections below would exhaust it.
    let daemon = Daemon(
        Command::new("sh")
            .args([
                "-c",
                "ulimit -n 256 && exec \"$0\" run --config \"$1\"",
                env!("CARGO_BIN_EXE_trawl"),
                p(&s.config),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.config.with_extension("stderr")).unwrap())
            .env_remove("TRAWL_DATA")
            .env_remove("TRAWL_CONFIG")
            .spawn()
            .unwrap(),
    );
    wait_for("the daemon", Duration::from_secs(30), || {
        metric(s.port, "trawl_snapshot_version").is_some()
    });
    // 300 idle connections and a slowloris sending a byte every 100 ms.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", s.port)).ok())
        .collect();
    assert!(idle.len() >= 250, "only {} connections", idle.len());
    let slow_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = {
        let port = s.port;
        let stop = slow_stop.clone();
        std::thread::spawn(move || -> bool {
            let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            for b in b"GET /metrics HTTP/1.1\r\nX-Slow: "
                .iter()
                .chain([b'a'; 1000].iter())
            {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return false;
                }
                if c.write_all(&[*b]).is_err() {
                    return true; // the server closed it
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        })
    };
    // Detection goes on meanwhile, through a rotation (new files need descriptors).
    s.hits(1..=10);
    std::fs::rename(&s.log, s.path("logs/access.log.1")).unwrap();
    s.hits(11..=20);
    let alerts = s.path("alerts.jsonl");
    wait_for(
        "alerts while the port is flooded",
        Duration::from_secs(30),
        || json_lines(&alerts).len() == 20,
    );
    // So do reloads.
    trawl_ok(&["-q", "update", "--force", "--config", p(&s.config)]);
    wait_for(
        "the reload, once the idle connections time out",
        Duration::from_secs(30),
        || metric(s.port, "trawl_snapshot_version") == Some(2),
    );
    // The server closed the idle connections.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 16];
        let r = c.read(&mut buf);
        let closed = match &r {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        };
        assert!(closed, "an idle connection was kept open: {r:?}");
    }
    let closed = slow.join().unwrap();
    slow_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(closed, "the slowloris connection was kept open");
    assert!(daemon.term().success());
    assert_eq!(numbers(&[alerts]), once(1..=20));
}

#[test]
fn source_and_sink_tables_refuse_unknown_keys_and_take_paths_relative_to_the_config() {
    let s = setup(
        "",
        "[[sink]]\nkind = \"jsonl\"\npath = \"out/alerts.jsonl\"\n",
    );
    // The daemon runs elsewhere (the test's directory): relative paths follow the config.
    s.edit_config(
        &format!("paths = [\"{}/logs/access.log*\"]", p(s.dir.path())),
        "paths = [\"logs/access.log*\"]",
    );
    s.hits(1..=3);
    let daemon = Daemon::start(&s.config);
    let alerts = s.path("out/alerts.jsonl");
    wait_for("alerts beside the config", Duration::from_secs(30), || {
        json_lines(&alerts).len() == 3
    });
    assert!(daemon.term().success());
    // A typo in a sink table: refused, with its line and the key meant.
    s.edit_config(
        "path = \"out/alerts.jsonl\"",
        "path = \"out/alerts.jsonl\"\nmax_byte = 1000",
    );
    let text = std::fs::read_to_string(&s.config).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("max_byte"))
        .unwrap()
        + 1;
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["run", "--config", p(&s.config)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(
        err.contains(&format!(
            "trawl.toml: unknown key `max_byte` at line {line}, did you mean `max_bytes`?"
        )),
        "{err}"
    );
}

#[test]
fn a_second_update_on_the_same_data_directory_says_so_and_waits_for_the_first() {
    let s = setup("", JSONL_SINK);
    // A feed server that holds its first answer until the test lets it go.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (fetching_tx, fetching) = std::sync::mpsc::channel::<()>();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            if n == 0 {
                let _ = fetching_tx.send(());
                let _ = release_rx.recv_timeout(Duration::from_secs(60));
            }
            let body = "slow.example\n";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        format!("{text}\n[[feed]]\nname = \"slow\"\nsource = \"http://127.0.0.1:{port}/feed\"\nformat = \"plain\"\nitype = \"fqdn\"\n"),
    )
    .unwrap();
    let update = |log: &str| {
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["update", "--force", "--config", p(&s.config)])
            .env_remove("TRAWL_DATA")
            .env_remove("TRAWL_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(s.path(log)).unwrap())
            .spawn()
            .unwrap()
    };
    let mut first = update("first.stderr");
    fetching
        .recv_timeout(Duration::from_secs(30))
        .expect("the first update to fetch");
    let mut second = update("second.stderr");
    wait_for(
        "the second update to say it waits",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(s.path("second.stderr"))
                .unwrap()
                .contains("another update is running")
        },
    );
    assert!(second.try_wait().unwrap().is_none(), "it did not wait");
    release.send(()).unwrap();
    assert!(first.wait().unwrap().success());
    assert!(
        second.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(s.path("second.stderr")).unwrap()
    );
}

#[test]
fn a_sink_with_a_full_spool_and_when_full_drop_drops_its_own_alerts_and_stops_no_other() {
    // Nothing listens on the HTTP endpoint: its spool fills up.
    let http_port = free_port();
    let s = setup(
        "",
        &format!(
            r#"[[sink]]
kind = "http"
endpoint = "http://127.0.0.1:{http_port}/ingest"
spool_max_bytes = 4000
when_full = "drop"

{JSONL_SINK}"#
        ),
    );
    let daemon = Daemon::start(&s.config);
    let alerts = s.path("alerts.jsonl");
    for k in 0..6u64 {
        s.hits(k * 10 + 1..=k * 10 + 10);
        wait_for("the jsonl sink to keep up", Duration::from_secs(30), || {
            json_lines(&alerts).len() as u64 == k * 10 + 10
        });
    }
    let http_sink = format!("http:http://127.0.0.1:{http_port}/ingest");
    let dropped = sink_metric(s.port, "dropped_total", &http_sink);
    assert!((40..60).contains(&dropped), "dropped {dropped}");
    let health = healthz(s.port);
    assert!(health.contains("dropping new alerts"), "{health}");
    assert!(daemon.term().success());
    assert_eq!(numbers(&[alerts]), once(1..=60));
}

#[test]
fn a_feed_that_fails_its_scheduled_fetch_is_named_on_healthz_until_it_works_again() {
    let s = setup("", JSONL_SINK);
    s.edit_config(
        "severity = \"high\"",
        "severity = \"high\"\nrefresh = \"1s\"",
    );
    let daemon = Daemon::start(&s.config);
    wait_for("the daemon", Duration::from_secs(30), || {
        healthz(s.port).ends_with("\r\n\r\nok\n")
    });
    let feed = s.path("bad.txt");
    std::fs::rename(&feed, s.path("bad.txt.away")).unwrap();
    wait_for("the failed fetch counted", Duration::from_secs(30), || {
        metric(s.port, "trawl_feed_failures_total{feed=\"bad\"}").unwrap_or(0) >= 1
    });
    let health = healthz(s.port);
    assert!(
        health.starts_with("HTTP/1.1 503") && health.contains("feed bad: "),
        "{health}"
    );
    // Its previous entries still alert.
    s.hits(1..=2);
    let alerts = s.path("alerts.jsonl");
    wait_for(
        "alerts from the kept entries",
        Duration::from_secs(30),
        || json_lines(&alerts).len() == 2,
    );
    std::fs::rename(s.path("bad.txt.away"), &feed).unwrap();
    wait_for("healthz ok again", Duration::from_secs(30), || {
        healthz(s.port).ends_with("\r\n\r\nok\n")
    });
    assert!(daemon.term().success());
}

#[test]
fn a_snapshot_that_cannot_be_loaded_is_named_on_healthz_and_the_current_one_keeps_alerting() {
    let s = setup("", JSONL_SINK);
    let daemon = Daemon::start(&s.config);
    wait_for("the daemon", Duration::from_secs(30), || {
        healthz(s.port).ends_with("\r\n\r\nok\n")
    });
    let pointer = s.path("data/current");
    let good = std::fs::read_to_string(&pointer).unwrap();
    std::fs::write(&pointer, "999\n").unwrap();
    wait_for(
        "the failed reload on healthz",
        Duration::from_secs(30),
        || healthz(s.port).contains("snapshot: reload failed"),
    );
    s.hits(1..=2);
    let alerts = s.path("alerts.jsonl");
    wait_for(
        "alerts from the snapshot in use",
        Duration::from_secs(30),
        || json_lines(&alerts).len() == 2,
    );
    std::fs::write(&pointer, good).unwrap();
    wait_for("healthz ok again", Duration::from_secs(30), || {
        healthz(s.port).ends_with("\r\n\r\nok\n")
    });
    assert!(daemon.term().success());
}

#[test]
fn an_http_sink_redirected_to_file_fails_cleanly_and_the_other_sink_goes_on() {
    // The endpoint answers every POST with a redirect to file:// (the HTTP client panicked).
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in http.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let _ = conn.write_all(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let s = setup(
        "",
        &format!(
            "[[sink]]\nkind = \"http\"\nendpoint = \"http://127.0.0.1:{http_port}/ingest\"\n\n{JSONL_SINK}"
        ),
    );
    let daemon = Daemon::start(&s.config);
    s.hits(1..=5);
    let alerts = s.path("alerts.jsonl");
    wait_for("the jsonl sink's alerts", Duration::from_secs(30), || {
        json_lines(&alerts).len() == 5
    });
    let http_sink = format!("http:http://127.0.0.1:{http_port}/ingest");
    wait_for(
        "the redirect counted as a failure",
        Duration::from_secs(30),
        || sink_metric(s.port, "failures_total", &http_sink) >= 2,
    );
    assert_eq!(
        metric(s.port, "trawl_worker_panics_total{worker=\"sink-0\"}"),
        None,
        "the sink panicked"
    );
    let health = healthz(s.port);
    assert!(
        health.contains(&format!("sink {http_sink}: POST"))
            && health.contains("redirects are not followed"),
        "{health}"
    );
    assert!(
        sink_metric(s.port, "spool_bytes", &http_sink) > 0,
        "kept for later"
    );
    assert!(daemon.term().success());
}
