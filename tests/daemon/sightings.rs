//! `[upstream] sightings = true` with real processes: alerts while the `trawl serve` is down
//! are spooled as batches, survive a restart of the sensor, and are delivered once the server
//! is up, each exactly once: the server's count equals the alerts written.

use crate::daemon_support::*;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `trawl serve` on a fixed port, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(cfg: &std::path::Path, port: u16) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["serve", "--config", p(cfg), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting trawl serve");
    let s = Serve(child);
    wait_for("trawl serve up", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    s
}

/// A new token of the server configured by `cfg`.
fn new_token(cfg: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--config", p(cfg), "--format", "json"];
    all.extend_from_slice(args);
    let v: serde_json::Value = serde_json::from_str(trawl_ok(&all).trim()).unwrap();
    v["token"].as_str().unwrap().to_string()
}

fn squid(n: u64, host: &str) -> String {
    format!(
        "1764309600.{:03} 10 10.0.0.{} TCP_MISS/200 100 GET http://{host}/n/{n} - HIER_DIRECT/93.184.216.34 text/html\n",
        n % 1000,
        n % 4 + 1
    )
}

fn append(log: &std::path::Path, from: u64, to: u64, host: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for n in from..to {
        f.write_all(squid(n, host).as_bytes()).unwrap();
    }
}

#[test]
fn sightings_spooled_while_the_server_is_down_arrive_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("intel.txt"),
        "evil.fleet.example\nother.fleet.example\n",
    )
    .unwrap();
    // The server: the same intel, and a token for the sensor (write: it may post sightings).
    let server_cfg = d.join("server.toml");
    std::fs::write(
        &server_cfg,
        "[sensor]\ndata = \"srv\"\n[server]\nrate_limit = 0\n\
         [[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\n",
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&server_cfg)]);
    let token = new_token(&server_cfg, &["--user", "ids-1", "--read", "--write"]);
    let reader = new_token(&server_cfg, &["--user", "analyst"]);
    trawl_ok(&["keygen", "--out", p(&d.join("fleet"))]);

    // The sensor: its own feed, sightings every second to a server not running yet.
    let (port, admin) = (free_port(), free_port());
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let log = d.join("logs/access.log");
    std::fs::write(&log, "").unwrap();
    let alerts = d.join("alerts.jsonl");
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[sensor]\nname = \"ids-1\"\ndata = \"{data}\"\nmetrics = \"127.0.0.1:{admin}\"\n\
             [upstream]\nurl = \"http://127.0.0.1:{port}\"\npublic_key = \"{key}\"\n\
             token = \"{token}\"\nrefresh = \"1h\"\nsightings = true\nsightings_flush = \"1s\"\n\
             [[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\n\
             [[source]]\nkind = \"file\"\npaths = [\"{log}\"]\nformat = \"squid\"\n\
             read_from = \"beginning\"\n\
             [[sink]]\nkind = \"jsonl\"\npath = \"{alerts}\"\n",
            data = p(&d.join("sdata")),
            key = p(&d.join("fleet.pub")),
            log = p(&log),
            alerts = p(&alerts),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config);
    append(&log, 0, 5, "evil.fleet.example");
    append(&log, 5, 7, "other.fleet.example");
    wait_for("7 alerts, a batch spooled", Duration::from_secs(60), || {
        metric(admin, "trawl_alerts_total") == Some(7)
            && metric(admin, "trawl_sightings_batches_spooled").unwrap_or(0) >= 1
    });
    assert_eq!(metric(admin, "trawl_sightings_batches_sent"), Some(0));
    // Stopped with the server still down: the batches stay on disk.
    assert!(daemon.term().success(), "{}", Daemon::stderr(&config));
    let spooled = d.join("sdata/spool/sightings/spool.jsonl");
    let held = std::fs::read_to_string(&spooled).unwrap_or_default();
    assert!(
        held.lines().count() >= 1,
        "nothing spooled: {}",
        Daemon::stderr(&config)
    );

    // Restarted, more alerts, still no server.
    let daemon = Daemon::start(&config);
    append(&log, 7, 10, "evil.fleet.example");
    wait_for("3 more alerts spooled", Duration::from_secs(60), || {
        metric(admin, "trawl_alerts_total") == Some(3)
            && metric(admin, "trawl_sightings_batches_spooled").unwrap_or(0) >= 1
    });
    assert_eq!(json_lines(&alerts).len(), 10);

    // The server comes up: everything spooled is delivered and the spool empties.
    let _server = serve(&server_cfg, port);
    wait_for("the spool delivered", Duration::from_secs(60), || {
        metric(admin, "trawl_sightings_batches_sent").unwrap_or(0) >= 1
            && std::fs::read_to_string(&spooled).map_or(true, |s| s.is_empty())
    });
    let ask = |q: &str| {
        let r = ureq::get(&format!("http://127.0.0.1:{port}/v1/search?q={q}&nolog=1"))
            .set("Authorization", &format!("Token token={reader}"))
            .call()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        v["data"][0]["sightings"].clone()
    };
    let evil = ask("evil.fleet.example");
    assert_eq!(evil["count"], 8, "{evil}");
    assert_eq!(evil["sensors"], 1);
    assert_eq!(ask("other.fleet.example")["count"], 2);
    // Later flushes with nothing new send nothing.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ask("evil.fleet.example")["count"], 8);
    assert_eq!(metric(admin, "trawl_sightings_batches_dropped"), Some(0));
    // `trawl query --remote` shows them too.
    let url = format!("http://127.0.0.1:{port}");
    let table = trawl_ok(&[
        "query",
        "-n",
        "--remote",
        &url,
        "--token",
        &reader,
        "evil.fleet.example",
    ]);
    assert!(
        table.contains("sighted 8x by 1 sensor(s), last 2025-11-28T"),
        "{table}"
    );
    assert!(daemon.term().success());
}

#[test]
fn past_its_bound_the_sightings_spool_drops_its_oldest_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let intel: String = (0..5).map(|i| format!("h{i}.fleet.example\n")).collect();
    std::fs::write(d.join("intel.txt"), intel).unwrap();
    trawl_ok(&["keygen", "--out", p(&d.join("fleet"))]);
    let (port, admin) = (free_port(), free_port());
    let log = d.join("access.log");
    std::fs::write(&log, "").unwrap();
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[sensor]\nname = \"ids-1\"\ndata = \"{data}\"\nmetrics = \"127.0.0.1:{admin}\"\n\
             [upstream]\nurl = \"http://127.0.0.1:{port}\"\npublic_key = \"{key}\"\n\
             refresh = \"1h\"\nsightings = true\nsightings_flush = \"1s\"\n\
             sightings_max_bytes = 400\n\
             [[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\n\
             [[source]]\nkind = \"file\"\npaths = [\"{log}\"]\nformat = \"squid\"\n\
             read_from = \"beginning\"\n\
             [[sink]]\nkind = \"jsonl\"\npath = \"{alerts}\"\n",
            data = p(&d.join("sdata")),
            key = p(&d.join("fleet.pub")),
            log = p(&log),
            alerts = p(&d.join("alerts.jsonl")),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config);
    // Batches of ~200 bytes each, a second apart, never delivered (no server): the spool
    // keeps the newest within 400 bytes and counts the rest as dropped; alerting goes on.
    for wave in 0..5u64 {
        append(
            &log,
            wave * 10,
            wave * 10 + 3,
            &format!("h{wave}.fleet.example"),
        );
        wait_for("the wave's batch", Duration::from_secs(30), || {
            metric(admin, "trawl_sightings_batches_spooled").unwrap_or(0) > wave
        });
    }
    wait_for("the oldest dropped", Duration::from_secs(30), || {
        metric(admin, "trawl_sightings_batches_dropped").unwrap_or(0) >= 2
    });
    assert_eq!(metric(admin, "trawl_alerts_total"), Some(15));
    let held = std::fs::read_to_string(d.join("sdata/spool/sightings/spool.jsonl")).unwrap();
    assert!(held.contains("h4.fleet.example"), "the newest kept: {held}");
    assert!(
        !held.contains("h0.fleet.example"),
        "the oldest dropped: {held}"
    );
    assert!(daemon.term().success());
}
