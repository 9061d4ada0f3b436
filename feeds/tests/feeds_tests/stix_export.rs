//! `trawl export --format stix` round trip: a snapshot built from a STIX bundle (ids kept,
//! an OR pattern under one id, TLP markings) and a plain list (no ids) is exported as a STIX
//! 2.1 bundle, POSTed to a medallion collection (the OASIS TAXII 2.1 server, started here
//! on 127.0.0.1), and pulled back with `format = "taxii"`: the same indicators, the kept
//! ids again, stable uuid5 ids for the rest, and the same metadata.

use feeds::config::Config;
use feeds::export::{export, export_misp_feed, uuid5_id, ExportFormat, ExportOptions, Filter};
use feeds::update::{update, UpdateOptions};
use feeds::NoProgress;
use matcher::{Indicator, IndicatorType, Snapshot, Tlp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const COLLECTION: &str = "2b1f0a7e-5d0c-4c39-9b8e-5f0d3c3a9e01";
/// `u:p` in base64.
const BASIC: &str = "dTpw";
const ID_OR: &str = "indicator--0a000000-0000-4000-8000-00000000000a";
const ID_IP: &str = "indicator--0b000000-0000-4000-8000-00000000000b";
const AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";

fn entries(data: &Path) -> BTreeMap<(IndicatorType, String), Indicator> {
    Snapshot::open_current(data)
        .unwrap()
        .iter()
        .filter(|i| !i.allowlist)
        .map(|i| ((i.itype, i.value.clone()), i))
        .collect()
}

/// Write `files` into `d`, update with the feeds of `config` and keep the data directory as
/// `d/first`: it and its entries.
fn first_snapshot(
    d: &Path,
    files: &[(&str, &str)],
    config: &str,
) -> (PathBuf, BTreeMap<(IndicatorType, String), Indicator>) {
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
    }
    let cfg = Config::from_toml_str(config).unwrap();
    let first = d.join("first");
    crate::taxii::run(&cfg, d);
    std::fs::rename(d.join("data"), &first).unwrap();
    let want = entries(&first);
    (first, want)
}

fn stix_export(data: &Path) -> String {
    exported(data, ExportFormat::Stix)
}

fn exported(data: &Path, format: ExportFormat) -> String {
    let snap = Snapshot::open_current(data).unwrap();
    let opts = ExportOptions {
        sensor_name: "edge-1".into(),
        created: 1_767_225_600,
        ..ExportOptions::default()
    };
    let mut out = Vec::new();
    let stats = export(
        format,
        &mut snap.iter(),
        &Filter::default(),
        &opts,
        &mut out,
    )
    .unwrap();
    assert_eq!(stats.read, stats.accounted(), "{stats:?}");
    String::from_utf8(out).unwrap()
}

#[test]
fn a_stix_export_posted_to_taxii_pulls_back_the_same_indicators_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": ID_OR,
         "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
         "pattern": "[domain-name:value = 'kept.example'] OR [url:value = 'http://kept.example/it\\'s']",
         "pattern_type": "stix", "valid_from": "2026-01-02T00:00:00Z", "confidence": 70,
         "labels": ["c2"], "object_marking_refs": [AMBER]},
        {"type": "indicator", "spec_version": "2.1", "id": ID_IP,
         "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
         "pattern": "[ipv4-addr:value ISSUBSET '45.76.10.0/24']",
         "pattern_type": "stix", "valid_from": "2026-01-03T00:00:00Z", "confidence": 90,
         "valid_until": "2099-01-01T00:00:00Z", "description": "scanner range"},
    ]});
    let (first, want) = first_snapshot(
        d,
        &[
            ("intel.json", &bundle.to_string()),
            (
                "list.txt",
                "plain.example\n45.76.11.9\nbob@phish.example\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
            ),
        ],
        "[[feed]]\nname = \"stix\"\nsource = \"intel.json\"\nformat = \"stix2\"\n\
         [[feed]]\nname = \"list\"\nsource = \"list.txt\"\nconfidence = 60\n",
    );
    assert_eq!(want.len(), 7, "{want:?}");

    let text = stix_export(&first);
    // Deterministic: the same snapshot, the same bytes.
    assert_eq!(text, stix_export(&first));
    let exported: Value = serde_json::from_str(&text).unwrap();
    let objects = exported["objects"].as_array().unwrap().clone();
    let or = objects.iter().find(|o| o["id"] == ID_OR).expect("kept id");
    assert_eq!(
        or["pattern"].as_str().unwrap().matches(" OR ").count(),
        1,
        "{or}"
    );
    assert_eq!(or["object_marking_refs"][0], AMBER);

    // Into a TAXII collection, as a producer would.
    let data = crate::medallion::api_root(vec![crate::medallion::collection(
        COLLECTION,
        true,
        Vec::new(),
    )]);
    let server = crate::medallion::start(d, &data, &[("u", "p")], 3, None);
    let url = server.url(&format!("/api1/collections/{COLLECTION}/objects/"));
    crate::taxii::post(&url, &objects);

    // Pulled back.
    let pull = Config::from_toml_str(&format!(
        "[[feed]]\nname = \"back\"\nsource = \"{url}\"\nformat = \"taxii\"\n\
         auth_header = \"Authorization: Basic {BASIC}\"\nretries = 0\nmin_ratio = 0\n"
    ))
    .unwrap();
    let report = crate::taxii::run(&pull, d);
    assert!(
        report.feeds.iter().all(|s| s.rejected == 0),
        "{:?}",
        report.feeds
    );
    let got = entries(&d.join("data"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same indicators"
    );
    for (key, w) in &want {
        let g = &got[key];
        let id = w
            .external_id
            .clone()
            .unwrap_or_else(|| uuid5_id("indicator", &format!("{}:{}", key.0.as_str(), key.1)));
        assert_eq!(g.external_id.as_deref(), Some(id.as_str()), "{key:?}");
        assert_eq!((g.confidence, g.tlp), (w.confidence, w.tlp), "{key:?}");
        assert!(w.tags.iter().all(|t| g.tags.contains(t)), "{key:?}: {g:?}");
        let from = w.reported.or(w.first_seen).or(Some(1_767_225_600));
        assert_eq!(g.reported, from, "{key:?}");
    }
    let kept = &got[&(IndicatorType::Fqdn, "kept.example".to_string())];
    assert_eq!(kept.external_id.as_deref(), Some(ID_OR));
    assert_eq!(kept.tlp, Tlp::Amber);
    let range = &got[&(IndicatorType::Ipv4, "45.76.10.0/24".to_string())];
    assert_eq!(range.description.as_deref(), Some("scanner range"));
    assert!(range.expires.is_some());
}

/// MISP feed export round trip: the feed directory `export_misp_feed` writes (an event per
/// feed, a `manifest.json` and `hashes.csv` equal to PyMISP's), served over HTTP
/// from 127.0.0.1, pulled with `format = "misp-feed"`: the same
/// indicators, each attribute's uuid the kept MISP uuid or the uuid5 the STIX export uses.
#[test]
fn a_misp_export_served_as_a_feed_pulls_back_the_same_indicators_and_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    const KEPT: &str = "5f0c8a3e-1111-4000-8000-000000000003";
    let event = json!({"Event": {"info": "source", "Tag": [{"name": "tlp:amber"}],
        "Attribute": [
            {"type": "domain", "to_ids": true, "value": "misp-kept.example", "uuid": KEPT,
             "timestamp": "1767312000", "Tag": [{"name": "phishing"}]},
            {"type": "sha256", "to_ids": true, "uuid": "6a0c8a3e-2222-4000-8000-000000000004",
             "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}});
    let (first, want) = first_snapshot(
        d,
        &[
            ("event.json", &event.to_string()),
            (
                "list.txt",
                "plain.example\n45.76.11.9\nhttp://x.example/a\n",
            ),
        ],
        "[[feed]]\nname = \"misp\"\nsource = \"event.json\"\nformat = \"misp\"\n\
         [[feed]]\nname = \"list\"\nsource = \"list.txt\"\n",
    );

    // The whole feed directory, as `trawl export --format misp-feed` writes it.
    let snap = Snapshot::open_current(&first).unwrap();
    let opts = ExportOptions {
        sensor_name: "edge-1".into(),
        created: 1_767_225_600,
        ..ExportOptions::default()
    };
    let feed_dir = d.join("www").join("feed");
    std::fs::create_dir_all(d.join("www")).unwrap();
    let stats = export_misp_feed(&mut snap.iter(), &Filter::default(), &opts, &feed_dir).unwrap();
    assert_eq!(stats.read, stats.accounted(), "{stats:?}");
    drop(snap);
    // Never over an existing directory (it is left as it was).
    let again = export_misp_feed(
        &mut std::iter::empty(),
        &Filter::default(),
        &opts,
        &feed_dir,
    );
    assert!(again.is_err());
    // An event per feed (the MISP event file and the list), a manifest and hashes.csv.
    let events = events_of(&feed_dir);
    assert_eq!(events.len(), 2, "{events:?}");
    // Every exportable indicator is in its feed's event, as in the one-event export.
    let one: Value = serde_json::from_str(&exported(&first, ExportFormat::Misp)).unwrap();
    let mut all: Vec<Value> = one["Event"]["Attribute"].as_array().unwrap().clone();
    let mut split: Vec<Value> = events
        .iter()
        .flat_map(|e| e.1["Event"]["Attribute"].as_array().unwrap().clone())
        .collect();
    let by_uuid = |a: &Value, b: &Value| a["uuid"].as_str().cmp(&b["uuid"].as_str());
    all.sort_by(by_uuid);
    split.sort_by(by_uuid);
    assert_eq!(split, all);
    // manifest.json and hashes.csv are what PyMISP's feed generator makes of the events.
    let hashes = assert_pymisp_feed_meta(d, &feed_dir);
    assert_eq!(hashes.lines().count(), want.len(), "{hashes}");
    let server = crate::misp_feed::HttpServer::start(&d.join("www"), &d.join("http.log"));
    let pull = Config::from_toml_str(&format!(
        "[[feed]]\nname = \"back\"\nsource = \"{}\"\nformat = \"misp-feed\"\nretries = 0\nmin_ratio = 0\n",
        server.url
    ))
    .unwrap();
    crate::taxii::run(&pull, d);
    let got = entries(&d.join("data"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same indicators"
    );
    for (key, w) in &want {
        let g = &got[key];
        let id = match w.external_id.as_deref() {
            Some(id) if !id.contains("--") => id.to_string(),
            _ => uuid5_id("indicator", &format!("{}:{}", key.0.as_str(), key.1))
                .trim_start_matches("indicator--")
                .to_string(),
        };
        assert_eq!(g.external_id.as_deref(), Some(id.as_str()), "{key:?}");
        assert_eq!(g.tlp, w.tlp, "{key:?}");
        assert!(w.tags.iter().all(|t| g.tags.contains(t)), "{key:?}: {g:?}");
    }
    let kept = &got[&(IndicatorType::Fqdn, "misp-kept.example".to_string())];
    assert_eq!(kept.external_id.as_deref(), Some(KEPT));
    assert_eq!(kept.tlp, Tlp::Amber);
}

/// The events of the MISP feed in `dir`: (uuid, event document), by uuid.
fn events_of(dir: &Path) -> BTreeMap<String, Value> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let events: BTreeMap<String, Value> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".json").filter(|u| u.len() == 36))
        .map(|u| {
            let text = std::fs::read_to_string(dir.join(format!("{u}.json"))).unwrap();
            (u.to_string(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    assert_eq!(names.len(), events.len() + 2, "{names:?}");
    assert!(names.contains(&"manifest.json".to_string()) && names.contains(&"hashes.csv".into()));
    events
}

/// Assert that the MISP feed in `dir` has the `manifest.json` and `hashes.csv` PyMISP's feed
/// generator makes of its events (`MISPEvent.manifest`, `to_feed(with_meta=True)`'s
/// `_hashes`, event after event); returns hashes.csv.
fn assert_pymisp_feed_meta(work: &Path, dir: &Path) -> String {
    let script = work.join("feed_meta.py");
    std::fs::write(
        &script,
        r#"import json, sys
from pymisp import MISPEvent
manifest, hashes = {}, []
for path in sys.argv[1:]:
    ev = MISPEvent()
    ev.load_file(path)
    feed = ev.to_feed(with_meta=True)
    feed = feed.get("Event", feed)
    manifest.update(ev.manifest)
    hashes.append("".join("{},{}\n".format(h, ev.uuid) for h in feed["_hashes"]))
print(json.dumps(manifest))
print(json.dumps(hashes))
"#,
    )
    .unwrap();
    let ours = std::fs::read_to_string(dir.join("hashes.csv")).unwrap();
    // The events in the order hashes.csv lists them.
    let mut order: Vec<String> = Vec::new();
    for l in ours.lines() {
        let uuid = l.split_once(',').unwrap().1.to_string();
        if !order.contains(&uuid) {
            order.push(uuid);
        }
    }
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(order.iter().map(|u| dir.join(format!("{u}.json"))))
        .output()
        .expect("python3 with pymisp (pip install pymisp; `make deps` does)");
    assert!(
        out.status.success(),
        "PyMISP: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (manifest, hashes) = text.split_once('\n').unwrap();
    let manifest: Value = serde_json::from_str(manifest).unwrap();
    let hashes: Vec<String> = serde_json::from_str(hashes).unwrap();
    let mine: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(mine, manifest);
    assert_eq!(
        mine.as_object().unwrap().len(),
        order.len(),
        "every event has values"
    );
    assert_eq!(ours, hashes.concat());
    ours
}

/// Exporting a MISP feed again after one feed changed: every event keeps its uuid, and only
/// the changed feed's event (its file, its hashes.csv lines) and its manifest timestamp
/// differ, so a MISP feed consumer fetches that event alone.
#[test]
fn a_misp_feed_exported_again_changes_only_the_changed_feed_s_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.txt"), "a.example\n45.76.11.9\n").unwrap();
    std::fs::write(d.join("b.txt"), "b.example\nhttp://b.example/x\n").unwrap();
    let cfg = Config::from_toml_str(
        "[[feed]]\nname = \"a\"\nsource = \"a.txt\"\n\
         [[feed]]\nname = \"b\"\nsource = \"b.txt\"\n",
    )
    .unwrap();
    let update_at = |now: i64| {
        let opts = UpdateOptions {
            force: true,
            now: Some(now),
            allow_empty: true,
        };
        update(&cfg, d, &d.join("data"), &opts, &NoProgress).unwrap();
    };
    let export_to = |name: &str, created: i64| {
        let snap = Snapshot::open_current(&d.join("data")).unwrap();
        let opts = ExportOptions {
            sensor_name: "edge-1".into(),
            created,
            ..ExportOptions::default()
        };
        let to = d.join(name);
        export_misp_feed(&mut snap.iter(), &Filter::default(), &opts, &to).unwrap();
        to
    };
    update_at(1_767_225_600);
    let before = export_to("before", 1_767_226_000);
    // Exported again, unchanged: the same feed, byte for byte, whatever the export's time.
    let again = export_to("again", 1_767_229_000);
    for name in ["manifest.json", "hashes.csv"] {
        assert_eq!(
            std::fs::read(before.join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{name}"
        );
    }
    // Feed b gains an indicator an hour later.
    std::fs::write(
        d.join("b.txt"),
        "b.example\nhttp://b.example/x\nc.example\n",
    )
    .unwrap();
    update_at(1_767_229_200);
    let after = export_to("after", 1_767_229_300);
    assert_pymisp_feed_meta(d, &after);
    let (old, new) = (events_of(&before), events_of(&after));
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>(),
        "the same event uuids"
    );
    let manifest = |dir: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let (m_old, m_new) = (manifest(&before), manifest(&after));
    let mut changed = Vec::new();
    for uuid in old.keys() {
        let info = m_new[uuid]["info"].as_str().unwrap().to_string();
        if info.ends_with(" from b") {
            changed.push(uuid.clone());
            assert_eq!(m_new[uuid]["timestamp"], 1_767_229_200, "{m_new}");
            assert_ne!(old[uuid], new[uuid]);
        } else {
            assert!(info.ends_with(" from a"), "{info}");
            assert_eq!(m_old[uuid], m_new[uuid]);
            assert_eq!(old[uuid], new[uuid]);
        }
    }
    assert_eq!(changed.len(), 1);
    let lines = |dir: &Path, keep: bool| -> Vec<String> {
        std::fs::read_to_string(dir.join("hashes.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.ends_with(&changed[0]) == keep)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(lines(&before, false), lines(&after, false));
    assert_eq!(lines(&before, true).len() + 1, lines(&after, true).len());
}
