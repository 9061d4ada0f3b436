//! `trawl export --format stix` round trip: a snapshot built from a STIX bundle (ids kept,
//! an OR pattern under one id, TLP markings) and a plain list (no ids) is exported as a STIX
//! 2.1 bundle, POSTed to a medallion collection (the OASIS TAXII 2.1 server, started here
//! on 127.0.0.1), and pulled back with `format = "taxii"`: the same indicators, the kept
//! ids again, stable uuid5 ids for the rest, and the same metadata.

use feeds::config::Config;
use feeds::export::{export, export_misp_feed, uuid5_id, ExportFormat, ExportOptions, Filter};
use matcher::{Indicator, IndicatorType, Snapshot, Tlp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

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
    std::fs::write(d.join("intel.json"), bundle.to_string()).unwrap();
    std::fs::write(
        d.join("list.txt"),
        "plain.example\n45.76.11.9\nbob@phish.example\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
    )
    .unwrap();
    let cfg = Config::from_toml_str(
        "[[feed]]\nname = \"stix\"\nsource = \"intel.json\"\nformat = \"stix2\"\n\
         [[feed]]\nname = \"list\"\nsource = \"list.txt\"\nconfidence = 60\n",
    )
    .unwrap();
    let first = d.join("first");
    crate::taxii::run(&cfg, d);
    std::fs::rename(d.join("data"), &first).unwrap();
    let want = entries(&first);
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
    let resp = ureq::post(&url)
        .set("Authorization", &format!("Basic {BASIC}"))
        .set("Accept", "application/taxii+json;version=2.1")
        .set("Content-Type", "application/taxii+json;version=2.1")
        .send_string(&json!({ "objects": objects }).to_string())
        .unwrap();
    let status: Value = serde_json::from_reader(resp.into_reader()).unwrap();
    assert_eq!(status["success_count"], objects.len(), "{status}");

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

/// MISP feed export round trip: the feed directory `export_misp_feed` writes (the event of
/// `--format misp`, a `manifest.json` and `hashes.csv` equal to PyMISP's), served over HTTP
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
    std::fs::write(d.join("event.json"), event.to_string()).unwrap();
    std::fs::write(
        d.join("list.txt"),
        "plain.example\n45.76.11.9\nhttp://x.example/a\n",
    )
    .unwrap();
    let cfg = Config::from_toml_str(
        "[[feed]]\nname = \"misp\"\nsource = \"event.json\"\nformat = \"misp\"\n\
         [[feed]]\nname = \"list\"\nsource = \"list.txt\"\n",
    )
    .unwrap();
    let first = d.join("first");
    crate::taxii::run(&cfg, d);
    std::fs::rename(d.join("data"), &first).unwrap();
    let want = entries(&first);

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
    let mut names: Vec<String> = std::fs::read_dir(&feed_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let event_file = feed_dir.join(names.iter().find(|n| n.len() == 41).unwrap());
    let text = std::fs::read_to_string(&event_file).unwrap();
    // The event file is the one-event export, byte for byte.
    assert_eq!(text, exported(&first, ExportFormat::Misp));
    // manifest.json and hashes.csv are what PyMISP's feed generator makes of the event.
    let (manifest, hashes) = pymisp_feed_meta(d, &event_file);
    let ours: Value =
        serde_json::from_str(&std::fs::read_to_string(feed_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(ours, manifest);
    let uuid = event_file.file_stem().unwrap().to_str().unwrap();
    assert!(ours.get(uuid).is_some(), "{ours}");
    assert_eq!(
        std::fs::read_to_string(feed_dir.join("hashes.csv")).unwrap(),
        hashes
    );
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

/// PyMISP's `manifest.json` entry (`MISPEvent.manifest`) and `hashes.csv` lines
/// (`to_feed(with_meta=True)`'s `_hashes`, `md5,uuid`) for the event file at `event`.
fn pymisp_feed_meta(dir: &Path, event: &Path) -> (Value, String) {
    let script = dir.join("feed_meta.py");
    std::fs::write(
        &script,
        r#"import json, sys
from pymisp import MISPEvent
ev = MISPEvent()
ev.load_file(sys.argv[1])
feed = ev.to_feed(with_meta=True)
feed = feed.get("Event", feed)
print(json.dumps(ev.manifest))
for h in feed["_hashes"]:
    print("{},{}".format(h, ev.uuid))
"#,
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(event)
        .output()
        .expect("python3 with pymisp (pip install pymisp; `make deps` does)");
    assert!(
        out.status.success(),
        "PyMISP: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (manifest, hashes) = text.split_once('\n').unwrap();
    (serde_json::from_str(manifest).unwrap(), hashes.to_string())
}
