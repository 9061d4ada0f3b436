//! A pulled feed's store (TAXII collection, MISP feed; ARCHITECTURE.md §2.5) is merged
//! with each pull in one pass, an item at a time, and reaches the parser as a mapped file:
//! pulls from a real HTTP server on 127.0.0.1 peak at the same heap whether the stored
//! collection holds 30,000 indicators or 300,000 (a MISP feed: 1,000 events or 10,000),
//! far below one tree of the store, and hand back a body the heap does not hold.
//!
//! Its own test binary: the global allocator below counts live bytes, and the one test
//! runs the cases one after another so nothing else allocates meanwhile.

use feeds::config::{FeedConfig, Format};
use feeds::parse::parse_feed;
use feeds::pull_store::Pulled;
use feeds::runs::Sorter;
use feeds::NoProgress;
use serde_json::{json, Value};
use std::path::Path;

#[path = "common/mod.rs"]
mod common;
#[path = "common/heap.rs"]
mod heap;
use common::{serve_paths, Server};
use heap::peak_of;

/// One test: the cases one after another, so the counts are each case's alone.
#[test]
fn pulls_merge_large_stores_in_heap_independent_of_their_size() {
    let small = taxii_store(30_000);
    let large = taxii_store(300_000);
    eprintln!("taxii peaks: 30k {small:?}, 300k {large:?}");
    for (what, s, l) in [("quiet", small.0, large.0), ("busy", small.1, large.1)] {
        // The store grew tenfold (by tens of MB); the pull's peak did not grow with it.
        assert!(
            l < s + (256 << 10),
            "a {what} pull of 300k stored indicators peaked at {l} bytes, of 30k at {s}"
        );
    }
    let small = misp_feed_store(1_000);
    let large = misp_feed_store(10_000);
    eprintln!("misp feed peaks: 1k events {small}, 10k events {large}");
    // Bounded by the manifest (bytes an event, which the pull lists in memory), not by the
    // events' attributes the store holds.
    assert!(
        large < small + 9_000 * MISP_EVENT,
        "a pull of 10k stored events peaked at {large} bytes, of 1k at {small}"
    );
}

/// Store `stored` at `path` and pull (`pull`, which makes `requests` requests and gets
/// nothing new): the result, the store unchanged and mapped, and the pull's peak heap, which
/// must be below `bound` bytes.
fn quiet_pull<E: std::fmt::Debug>(
    what: &str,
    path: &Path,
    stored: &[u8],
    (requests, bound): (usize, usize),
    pull: impl FnOnce() -> Result<Pulled, E>,
) -> (Pulled, usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, stored).unwrap();
    let (pulled, peak, held) = peak_of(pull);
    let pulled = pulled.unwrap();
    eprintln!(
        "{what}: store {} bytes, quiet pull peak {peak}, held {held}",
        stored.len()
    );
    assert!(
        pulled.bytes.is_spooled(),
        "{what}: the pulled store is mapped"
    );
    assert!(
        held < 64 << 10,
        "{what}: the pulled store ({} bytes) is not on the heap: {held} bytes held",
        stored.len()
    );
    assert!(
        peak < bound,
        "{what}: the pull peaked at {peak} bytes, above {bound}; the store is {}",
        stored.len()
    );
    assert_eq!((pulled.requests, pulled.received), (requests, 0), "{what}");
    // What the parser reads is the store, unchanged by a quiet pull.
    assert!(&*pulled.bytes == stored, "{what}: the store changed");
    // Saved from the mapping, it is the same file again, and no temporary file is left.
    let mut pulled = pulled;
    pulled.save().unwrap();
    assert!(std::fs::read(path).unwrap() == stored, "{what}");
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
    (pulled, peak)
}

/// Heap a MISP feed's pull may hold per event the manifest lists.
const MISP_EVENT: usize = 600;

/// A stored STIX indicator (compact, keys in order, as the pull writes it).
fn indicator(i: usize, modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "name": format!("bad host {i}"),
        "pattern": format!("[domain-name:value = 'host-{i}.bad.example']"),
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        "labels": ["c2", "malware"],
    })
}

/// The store a former pull of `n` indicators left, written a piece at a time.
fn taxii_stored(n: usize, url: &str) -> Vec<u8> {
    let mut out = br#"{"objects":["#.to_vec();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &indicator(i, "2026-01-01T00:00:00.000Z")).unwrap();
    }
    out.extend_from_slice(br#"],"x_trawl_source":"#);
    serde_json::to_writer(&mut out, url).unwrap();
    out.push(b'}');
    out
}

fn sorter(data: &Path) -> Sorter {
    Sorter::new(4 << 20, Some(&data.join("tmp")))
}

/// A quiet pull and a busy one (1,000 objects: 500 newer versions of stored ones, 500 new)
/// of a stored collection of `n`: their peak heap.
fn taxii_store(n: usize) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start("/api1/collections/c/objects/");
    server.serve(br#"{"more":false}"#, "\"q\"");
    let mut feed = FeedConfig::new("big-taxii", &server.url);
    feed.format = Format::Taxii;
    feed.retries = Some(0);
    let stored = taxii_stored(n, &server.url);
    let path = feeds::taxii::store_path(&data, &feed.name);
    // Far below the store (a tree of 30k is 32 MB), whatever its size.
    let bound = 1 << 20;
    let (pulled, quiet_peak) =
        quiet_pull(&format!("taxii {n}"), &path, &stored, (1, bound), || {
            feeds::taxii::pull(&feed, &data, sorter(&data), &NoProgress)
        });
    if n <= 30_000 {
        let (_, tree, _) = peak_of(|| serde_json::from_slice::<Value>(&stored).map(drop));
        eprintln!("taxii {n}: one tree of the store {tree}");
        assert_eq!(parse_feed(&pulled.bytes, &feed).records.len(), n);
    }
    drop((pulled, stored));

    // A busy pull from the same collection: newer versions of every 60th stored object
    // (revoked) and new ones, in one page.
    let page: Vec<Value> = (0..1_000)
        .map(|k| {
            if k % 2 == 0 {
                let mut o = indicator(k / 2 * 60, "2026-02-01T00:00:00.000Z");
                o["revoked"] = json!(true);
                o
            } else {
                indicator(n + k, "2026-02-01T00:00:00.000Z")
            }
        })
        .collect();
    let page = serde_json::to_vec(&json!({ "more": false, "objects": page })).unwrap();
    server.serve(&page, "\"b\"");
    drop(page);
    let (pulled, busy_peak, _) =
        peak_of(|| feeds::taxii::pull(&feed, &data, sorter(&data), &NoProgress));
    let mut pulled = pulled.unwrap();
    eprintln!("taxii {n}: busy pull peak {busy_peak}");
    assert_eq!((pulled.requests, pulled.received), (1, 1_000));
    if n <= 30_000 {
        let parsed = parse_feed(&pulled.bytes, &feed);
        assert_eq!(parsed.records.len(), n + 500 - 500, "500 revoked, 500 new");
        assert_eq!(parsed.revoked, 500);
    }
    let store: Value = serde_json::from_slice(&pulled.bytes).unwrap();
    let objects = store["objects"].as_array().unwrap();
    assert_eq!(objects.len(), n + 500);
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert_eq!(objects[0]["revoked"], true, "the newer version replaced it");
    assert!(objects[1].get("revoked").is_none());
    pulled.save().unwrap();
    (quiet_peak, busy_peak)
}

/// A quiet pull of a stored MISP feed of `events` events of 20 attributes: its peak heap.
fn misp_feed_store(events: usize) -> usize {
    let attrs = 20;
    let uuid = |i: usize| format!("5f0c8a3e-0000-4000-8000-{i:012}");
    let manifest: serde_json::Map<String, Value> = (0..events)
        .map(|e| (uuid(e), json!({"timestamp": "1700000000", "info": "x"})))
        .collect();
    let url = serve_paths(vec![(
        "/manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    )]);
    drop(manifest);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut feed = FeedConfig::new("big-misp", &url);
    feed.format = Format::MispFeed;
    feed.retries = Some(0);
    // The store a former pull left: compact, keys in order, as the pull writes it.
    let mut stored = br#"{"response":["#.to_vec();
    for e in 0..events {
        if e > 0 {
            stored.push(b',');
        }
        let attributes: Vec<Value> = (0..attrs)
            .map(|a| {
                json!({
                    "type": "domain", "category": "Network activity", "to_ids": true,
                    "uuid": uuid(events + e * attrs + a),
                    "value": format!("host-{e}-{a}.bad.example"),
                    "timestamp": "1700000000",
                })
            })
            .collect();
        let item = json!({"Event": {
            "uuid": uuid(e), "info": format!("campaign {e}"), "timestamp": "1700000000",
            "Attribute": attributes, "Tag": [{"name": "tlp:green"}],
        }});
        serde_json::to_writer(&mut stored, &item).unwrap();
    }
    let stamps: serde_json::Map<String, Value> = (0..events)
        .map(|e| (uuid(e), json!("1700000000")))
        .collect();
    stored.extend_from_slice(br#"],"x_trawl_source":"#);
    serde_json::to_writer(&mut stored, &url).unwrap();
    stored.extend_from_slice(br#","x_trawl_timestamps":"#);
    serde_json::to_writer(&mut stored, &stamps).unwrap();
    stored.push(b'}');
    drop(stamps);
    let path = feeds::misp_feed::store_path(&data, &feed.name);
    // The manifest and hashes.csv (404): no event fetched again.
    let what = format!("misp feed {events}");
    // The manifest's list (its tree while read, the kept timestamps): bytes an event.
    let bound = events * MISP_EVENT + (256 << 10);
    let (pulled, peak) = quiet_pull(&what, &path, &stored, (2, bound), || {
        feeds::misp_feed::pull(&feed, &data, &NoProgress)
    });
    if events <= 1_000 {
        assert_eq!(
            parse_feed(&pulled.bytes, &feed).records.len(),
            events * attrs
        );
    }
    peak
}
