//! `[[sink]] kind = "taxii"`: the daemon alerts on an indicator a `format = "taxii"` feed
//! brought from medallion (the OASIS TAXII 2.1 server, PyPI `medallion`), and posts a STIX
//! sighting of it, by its STIX id, to a writable collection of the same server.

use crate::daemon_support::*;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

const INTEL: &str = "a6e7a9b5-6c8a-4d4e-9a51-2f0d3c1b7e10";
const SIGHTINGS: &str = "c2f1d7e4-3b5a-4f6e-8d2c-9e4b1a0f5d21";
const INDICATOR: &str = "indicator--00000000-0000-4000-8000-0000000000aa";
/// `u:p` in base64.
const BASIC: &str = "dTpw";

fn medallion(dir: &std::path::Path) -> crate::medallion::Medallion {
    let indicator = json!({
        "type": "indicator", "spec_version": "2.1", "id": INDICATOR,
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'sighted.example']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    });
    let data = crate::medallion::api_root(vec![
        crate::medallion::collection(INTEL, false, vec![indicator]),
        crate::medallion::collection(SIGHTINGS, true, vec![]),
    ]);
    crate::medallion::start(dir, &data, &[("u", "p")], 100, None)
}

fn sightings(port: u16) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{port}/api1/collections/{SIGHTINGS}/objects/");
    let Ok(resp) = ureq::get(&url)
        .set("Authorization", &format!("Basic {BASIC}"))
        .set("Accept", "application/taxii+json;version=2.1")
        .call()
    else {
        return Vec::new();
    };
    let env: Value = serde_json::from_reader(resp.into_reader()).unwrap_or_default();
    env["objects"].as_array().cloned().unwrap_or_default()
}

#[test]
fn taxii_sink_posts_sightings_of_taxii_indicators() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = medallion(d);
    let taxii_port = server.port;
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(d.join("local.txt"), "local.example\n").unwrap();
    let config = d.join("trawl.toml");
    let base = format!("http://127.0.0.1:{taxii_port}/api1/collections");
    std::fs::write(
        &config,
        format!(
            r#"[sensor]
name = "taxii-sensor"
data = "{dir}/data"
metrics = "127.0.0.1:{metrics}"

[[feed]]
name = "intel"
source = "{base}/{INTEL}/objects/"
format = "taxii"
auth_header = "Authorization: Basic {BASIC}"

[[feed]]
name = "local"
source = "local.txt"
itype = "fqdn"

[[source]]
kind = "file"
paths = ["{dir}/logs/access.log*"]
format = "squid"

[[sink]]
kind = "jsonl"
path = "{dir}/alerts.jsonl"

[[sink]]
kind = "taxii"
collection = "{base}/{SIGHTINGS}/objects/"
token_env = "TRAWL_TEST_TAXII_BASIC"
auth_scheme = "Basic"
"#,
            dir = p(d),
            metrics = free_port(),
        ),
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&config)]);
    let daemon = Daemon::start_env(&config, &[("TRAWL_TEST_TAXII_BASIC", BASIC)]);
    let mut log = std::fs::File::create(d.join("logs/access.log")).unwrap();
    for (n, host) in ["www.sighted.example", "local.example", "sighted.example"]
        .iter()
        .enumerate()
    {
        writeln!(
            log,
            "1764309600.{n:03} 10 10.0.0.{n} TCP_MISS/200 100 GET http://{host}/x - HIER_DIRECT/93.184.216.34 text/html"
        )
        .unwrap();
    }
    drop(log);
    wait_for("three alerts", Duration::from_secs(30), || {
        json_lines(&d.join("alerts.jsonl")).len() >= 3
    });
    wait_for(
        "a sighting in the collection",
        Duration::from_secs(30),
        || {
            sightings(taxii_port)
                .iter()
                .any(|o| o["type"] == "sighting")
        },
    );
    daemon.term();
    // The pulled indicator's STIX id rides in the alert as `threat.indicator.id`.
    let alerts = json_lines(&d.join("alerts.jsonl"));
    for a in &alerts {
        let ti = &a["threat"]["indicator"];
        if a["trawl"]["matched"]["indicator"] == "sighted.example" {
            assert_eq!(ti["id"], INDICATOR, "{a}");
            assert!(ti.get("reference").is_none(), "{a}");
        } else {
            assert!(ti.get("id").is_none(), "{a}");
        }
    }
    let objs = sightings(taxii_port);
    let identity = objs
        .iter()
        .find(|o| o["type"] == "identity")
        .unwrap_or_else(|| panic!("{objs:?}"));
    assert_eq!(identity["name"], "taxii-sensor");
    // One identity per sensor: its STIX export names itself by the same id.
    let export: Value = serde_json::from_str(&trawl_ok(&[
        "-q",
        "export",
        "--config",
        p(&config),
        "--format",
        "stix",
    ]))
    .unwrap();
    let exported = export["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["type"] == "identity"))
        .unwrap_or_else(|| panic!("{export}"));
    assert_eq!(exported["id"], identity["id"], "{export}");
    let seen: Vec<&Value> = objs.iter().filter(|o| o["type"] == "sighting").collect();
    assert!(
        seen.iter()
            .all(|s| s["sighting_of_ref"] == INDICATOR
                && s["where_sighted_refs"][0] == identity["id"]),
        "only the TAXII indicator is sighted: {seen:?}"
    );
    let count: u64 = seen.iter().filter_map(|s| s["count"].as_u64()).sum();
    assert_eq!(count, 2, "{seen:?}");
    assert!(seen
        .iter()
        .all(|s| s["first_seen"].as_str().unwrap() <= s["last_seen"].as_str().unwrap()));
}
