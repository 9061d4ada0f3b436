//! Issue 22 in `trawl run`: a file source with `logformat = "..."` is read by its plan, and
//! a W3C log whose `#Fields:` changes in one batch is read by the new field list in the
//! next ones.

use crate::common::*;
use crate::daemon_support::{free_port, wait_for, Daemon};
use std::io::Write;
use std::time::Duration;

#[test]
fn logformat_sources_and_w3c_fields_changing_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("w3c")).unwrap();
    std::fs::create_dir_all(d.join("squid")).unwrap();
    std::fs::write(d.join("bad.txt"), "81.2.69.142\n").unwrap();
    let config = d.join("trawl.toml");
    let alerts = d.join("alerts.jsonl");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            r#"[sensor]
name = "formats"
data = "{data}"
metrics = "127.0.0.1:{port}"

[[feed]]
name = "bad"
source = "bad.txt"
format = "plain"
itype = "ipv4"
confidence = 90

[[source]]
kind = "file"
paths = ["{w3c}/ex.log"]

[[source]]
kind = "file"
paths = ["{squid}/access.log"]
format = "squid"
logformat = "logformat port %ts.%03tu %>a:%>p %Ss/%03>Hs %rm %ru"

[[sink]]
kind = "jsonl"
path = "{alerts}"
"#,
            data = p(&d.join("data")),
            w3c = p(&d.join("w3c")),
            squid = p(&d.join("squid")),
            alerts = p(&alerts),
        ),
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&config)]);
    let w3c = d.join("w3c/ex.log");
    let mut f = std::fs::File::create(&w3c).unwrap();
    // c-ip first: the bad address is the client of line 3.
    f.write_all(
        b"#Software: Microsoft Internet Information Services 10.0\n\
          #Fields: date time c-ip s-ip cs-method cs-uri-stem sc-status\n\
          2024-01-01 00:00:01 81.2.69.142 192.0.2.1 GET /a 200\n",
    )
    .unwrap();
    f.flush().unwrap();
    std::fs::write(
        d.join("squid/access.log"),
        "1700000000.500 81.2.69.142:5555 TCP_MISS/200 GET http://a.example/\n\
         1700000001.500 198.51.100.1 TCP_MISS/200 GET http://b.example/\n",
    )
    .unwrap();
    let daemon = Daemon::start(&config);
    let read = || json_lines(&std::fs::read_to_string(&alerts).unwrap_or_default());
    wait_for("the first two alerts", Duration::from_secs(30), || {
        read().len() == 2
    });
    // The field order changes: s-ip first now, so the bad address is the server. The
    // directive and the record come in two batches: the directive's parser is carried.
    let lines = || crate::daemon_support::metric(port, "trawl_lines_total").unwrap_or(0);
    wait_for("five lines read", Duration::from_secs(30), || lines() == 5);
    f.write_all(b"#Fields: date time s-ip c-ip cs-method cs-uri-stem sc-status\n")
        .unwrap();
    f.flush().unwrap();
    wait_for("the directive read", Duration::from_secs(30), || {
        lines() == 6
    });
    f.write_all(b"2024-01-01 00:00:02 81.2.69.142 192.0.2.2 GET /b 200\n")
        .unwrap();
    f.flush().unwrap();
    wait_for("the third alert", Duration::from_secs(30), || {
        read().len() == 3
    });
    std::thread::sleep(Duration::from_millis(500));
    daemon.term();
    let all = read();
    assert_eq!(all.len(), 3, "{all:#?}");
    let field =
        |a: &serde_json::Value| a["trawl"]["matched"]["field"].as_str().unwrap().to_string();
    let w3c_alerts: Vec<String> = all
        .iter()
        .filter(|a| {
            a["log"]["file"]["path"]
                .as_str()
                .unwrap()
                .ends_with("ex.log")
        })
        .map(field)
        .collect();
    assert_eq!(w3c_alerts, ["source.ip", "destination.ip"]);
    // The plan's line 1 (client with a port) alerts; line 2 does not fit `%>a:%>p`.
    let squid: Vec<&serde_json::Value> = all
        .iter()
        .filter(|a| {
            a["log"]["file"]["path"]
                .as_str()
                .unwrap()
                .ends_with("access.log")
        })
        .collect();
    assert_eq!(squid.len(), 1);
    assert_eq!(squid[0]["source"]["port"], 5555);
}
