//! `trawl run` pulling `[upstream]`: the scheduler applies releases from a real static web
//! server, `/metrics` and `/healthz` say when the server is gone (and the intel older than
//! `max_age`) while the last good snapshot stays, and the sensor catches up when it returns.

use crate::common::static_server;
use crate::daemon_support::*;
use std::time::Duration;

fn publish(dir: &std::path::Path, values: &str) {
    std::fs::write(dir.join("intel.txt"), values).unwrap();
    let cfg = dir.join("pub.toml");
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let www = dir.join("www");
    trawl_ok(&[
        "publish",
        "--config",
        p(&cfg),
        "--to",
        p(&www),
        "--key",
        p(&dir.join("fleet.key")),
    ]);
}

#[test]
fn the_daemon_pulls_says_when_upstream_is_gone_or_stale_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("pub.toml"),
        "[sensor]\ndata = \"pubdata\"\n[[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\n",
    )
    .unwrap();
    trawl_ok(&["keygen", "--out", p(&d.join("fleet"))]);
    publish(d, "one.fleet.example\ntwo.fleet.example\n");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let (web_port, admin) = (free_port(), free_port());
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[sensor]\ndata = \"{data}\"\nmetrics = \"127.0.0.1:{admin}\"\n\
             [upstream]\nurl = \"http://127.0.0.1:{web_port}/\"\npublic_key = \"{key}\"\n\
             refresh = \"1s\"\nmax_age = \"3s\"\n\
             [[source]]\nkind = \"file\"\npaths = [\"{logs}/access.log*\"]\nformat = \"squid\"\n\
             [[sink]]\nkind = \"jsonl\"\npath = \"{alerts}\"\n",
            data = p(&d.join("sdata")),
            key = p(&d.join("fleet.pub")),
            logs = p(&d.join("logs")),
            alerts = p(&d.join("alerts.jsonl")),
        ),
    )
    .unwrap();
    let server = static_server(&d.join("www"), web_port, &d.join("http.log"));
    let mut daemon = Daemon::start(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(metric(admin, "trawl_upstream_release_serial") == Some(1)
        && metric(admin, "trawl_upstream_up") == Some(1))
    {
        let exited = daemon.exited();
        assert!(
            exited.is_none() && std::time::Instant::now() < deadline,
            "no release 1 ({exited:?}): {}\n{}",
            http_get(admin, "/healthz"),
            Daemon::stderr(&config)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http_get(admin, "/healthz").ends_with("ok\n"));
    assert_eq!(metric(admin, "trawl_upstream_indicators"), Some(2));

    // The server goes away: failures counted, /healthz names upstream, then its age.
    drop(server);
    wait_for("the failure on /healthz", Duration::from_secs(30), || {
        metric(admin, "trawl_upstream_failures_total").unwrap_or(0) >= 1
            && http_get(admin, "/healthz").contains("upstream: last pull failed")
    });
    assert_eq!(metric(admin, "trawl_upstream_up"), Some(0));
    wait_for("staleness on /healthz", Duration::from_secs(30), || {
        http_get(admin, "/healthz").contains("older than max_age")
    });
    assert_eq!(metric(admin, "trawl_upstream_release_serial"), Some(1));
    // Stale: ONE intel-stale event reaches the sink, however long it stays stale.
    let alerts = d.join("alerts.jsonl");
    wait_for("the intel-stale event", Duration::from_secs(30), || {
        stale_events(&alerts).len() == 1
    });
    let e = &stale_events(&alerts)[0];
    assert_eq!(e["event"]["kind"], "event");
    assert!(
        e["trawl"]["upstream"]["age_seconds"].as_i64().unwrap() > 3,
        "{e}"
    );
    assert_eq!(e["trawl"]["upstream"]["release_serial"], 1);
    assert!(e["trawl"]["upstream"]["release"]
        .as_str()
        .unwrap()
        .starts_with("1-"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(stale_events(&alerts).len(), 1, "warned more than once");

    // It comes back with a new release: the sensor catches up (a delta) and is healthy.
    publish(
        d,
        "one.fleet.example\ntwo.fleet.example\nthree.fleet.example\n",
    );
    let server = static_server(&d.join("www"), web_port, &d.join("http2.log"));
    wait_for("release 2 held", Duration::from_secs(60), || {
        metric(admin, "trawl_upstream_release_serial") == Some(2)
    });
    assert_eq!(metric(admin, "trawl_upstream_deltas_total"), Some(1));
    wait_for("healthy again", Duration::from_secs(30), || {
        http_get(admin, "/healthz").ends_with("ok\n")
    });
    wait_for("the new snapshot loaded", Duration::from_secs(30), || {
        metric(admin, "trawl_snapshot_version") == Some(2)
    });

    // Recovered, then stale again: one more event, naming the release now held.
    assert_eq!(stale_events(&alerts).len(), 1);
    drop(server);
    wait_for(
        "the second intel-stale event",
        Duration::from_secs(30),
        || stale_events(&alerts).len() == 2,
    );
    assert_eq!(
        stale_events(&alerts)[1]["trawl"]["upstream"]["release_serial"],
        2
    );
    assert!(Daemon::stderr(&config).contains("upstream intel is stale"));
}

/// The intel-stale events in the sink's file.
fn stale_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"]["action"] == "intel-stale")
        .collect()
}
