//! The STIX id (or MISP uuid) of an indicator in a field of its own, end to end on the
//! command line: a STIX file and a MISP event file through `trawl update`, the snapshot,
//! `trawl query` (JSON and table) and the JSON and Zeek exports.

use crate::common::*;

const ID_A: &str = "indicator--0a000000-0000-4000-8000-000000000001";
const ID_B: &str = "indicator--0b000000-0000-4000-8000-000000000002";
const MISP_UUID: &str = "5f0c8a3e-1111-4000-8000-000000000003";

fn stix(id: &str, pattern: &str) -> String {
    format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"{id}","created":"2024-01-01T00:00:00.000Z",
        "modified":"2024-01-01T00:00:00.000Z","pattern":"{pattern}","pattern_type":"stix",
        "valid_from":"2024-01-01T00:00:00Z",
        "external_references":[{{"source_name":"acme","url":"https://intel.example/r/1"}}]}}"#
    )
}

#[test]
fn the_stix_id_and_misp_uuid_reach_query_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two STIX feeds list evil.example under different ids: the smaller id is kept,
    // whatever the feed order.
    let bundle = |objs: &[String]| {
        format!(
            r#"{{"type":"bundle","id":"bundle--1","objects":[{}]}}"#,
            objs.join(",")
        )
    };
    std::fs::write(
        d.join("b.json"),
        bundle(&[stix(ID_B, "[domain-name:value = 'evil.example']")]),
    )
    .unwrap();
    std::fs::write(
        d.join("a.json"),
        bundle(&[
            stix(ID_A, "[domain-name:value = 'evil.example']"),
            stix(
                "indicator--0c000000-0000-4000-8000-000000000003",
                "[ipv4-addr:value = '198.51.100.7']",
            ),
        ]),
    )
    .unwrap();
    let misp = serde_json::json!({"Event": {"uuid": "5f0c8a3e-0000-4000-8000-000000000000",
        "info": "test", "Attribute": [{"uuid": MISP_UUID, "type": "domain",
        "category": "Network activity", "value": "misp.example", "to_ids": true}]}});
    std::fs::write(d.join("misp.json"), misp.to_string()).unwrap();
    let cfg = d.join("trawl.toml");
    std::fs::write(
        &cfg,
        r#"[sensor]
data = "state"

[[feed]]
name = "b"
source = "b.json"
format = "stix2"

[[feed]]
name = "a"
source = "a.json"
format = "stix2"

[[feed]]
name = "m"
source = "misp.json"
format = "misp"
"#,
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let query = |v: &str| -> serde_json::Value {
        let out = trawl_ok(&["query", "-n", "--format", "json", "--config", p(&cfg), v]);
        serde_json::from_str(out.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{out}: {e}"))
    };
    let evil = query("evil.example");
    assert_eq!(evil["external_id"], ID_A, "{evil}");
    assert_eq!(evil["reference"], "https://intel.example/r/1", "{evil}");
    assert_eq!(query("misp.example")["external_id"], MISP_UUID);
    let table = trawl_ok(&["query", "-n", "--config", p(&cfg), "evil.example"]);
    assert!(table.contains(&format!("id {ID_A}")), "{table}");

    let jsonl = trawl_ok(&["export", "--config", p(&cfg), "--format", "jsonl"]);
    let line = jsonl
        .lines()
        .find(|l| l.contains("\"evil.example\""))
        .unwrap_or_else(|| panic!("{jsonl}"));
    let row: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(row["external_id"], ID_A);
    let zeek = trawl_ok(&["export", "--config", p(&cfg), "--format", "zeek"]);
    assert!(
        zeek.lines()
            .any(|l| l.starts_with("misp.example\t") && l.contains(&format!("id={MISP_UUID}"))),
        "{zeek}"
    );
}

#[test]
fn export_feed_dir_writes_a_misp_feed_with_the_kept_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let misp = serde_json::json!({"Event": {"uuid": "5f0c8a3e-0000-4000-8000-000000000000",
        "info": "x", "Attribute": [{"uuid": MISP_UUID, "type": "domain",
        "category": "Network activity", "value": "misp.example", "to_ids": true}]}});
    std::fs::write(d.join("misp.json"), misp.to_string()).unwrap();
    std::fs::write(d.join("list.txt"), "plain.example\n45.76.11.9\n").unwrap();
    let cfg = d.join("trawl.toml");
    std::fs::write(
        &cfg,
        "[sensor]\nname = \"edge-9\"\ndata = \"state\"\n\n[[feed]]\nname = \"m\"\n\
         source = \"misp.json\"\nformat = \"misp\"\n\n[[feed]]\nname = \"l\"\nsource = \"list.txt\"\n",
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let feed = d.join("feed");
    trawl_ok(&[
        "-q",
        "export",
        "--config",
        p(&cfg),
        "-f",
        "misp",
        "--feed-dir",
        p(&feed),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(feed.join("manifest.json")).unwrap())
            .unwrap();
    // An event per feed, each of the sensor.
    let events = manifest.as_object().unwrap();
    assert_eq!(events.len(), 2, "{manifest}");
    let mut held = Vec::new();
    for (uuid, head) in events {
        assert_eq!(head["Orgc"]["name"], "edge-9", "{manifest}");
        let event = std::fs::read_to_string(feed.join(format!("{uuid}.json"))).unwrap();
        let ev: serde_json::Value = serde_json::from_str(&event).unwrap();
        assert_eq!(ev["Event"]["uuid"], uuid.as_str());
        let values: Vec<String> = ev["Event"]["Attribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["value"].as_str().unwrap().to_string())
            .collect();
        if head["info"].as_str().unwrap().ends_with(" from m") {
            assert!(event.contains(MISP_UUID), "{event}");
            assert_eq!(values, ["misp.example"]);
        } else {
            assert!(
                head["info"].as_str().unwrap().ends_with(" from l"),
                "{head}"
            );
            assert_eq!(values, ["45.76.11.9", "plain.example"]);
        }
        held.push((uuid.clone(), values.len()));
    }
    let hashes = std::fs::read_to_string(feed.join("hashes.csv")).unwrap();
    assert_eq!(hashes.lines().count(), 3, "{hashes}");
    for (uuid, n) in held {
        let of = hashes.lines().filter(|l| l.ends_with(&format!(",{uuid}")));
        assert_eq!(
            of.filter(|l| l.len() == 33 + uuid.len()).count(),
            n,
            "{hashes}"
        );
    }
    // Never over an existing directory, and only for MISP; both say what to do instead.
    for (args, says) in [
        (vec!["-f", "misp"], "exists"),
        (vec!["-f", "stix"], "--format misp"),
    ] {
        let mut all = vec!["-q", "export", "--config", p(&cfg), "--feed-dir", p(&feed)];
        all.extend(args);
        let out = trawl(&all);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(std::fs::read_dir(&feed).unwrap().count(), 4);
    assert_eq!(
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".misp-feed-")
            })
            .count(),
        0,
        "no temporary directory left"
    );
}
