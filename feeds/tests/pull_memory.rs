//! A pulled feed's store (TAXII collection, MISP feed; ARCHITECTURE.md §2.5) reaches the
//! parser as a mapped file, not a second copy on the heap: a quiet pull of a large stored
//! collection from a real HTTP server on 127.0.0.1 peaks at about one tree of the store's
//! objects (which the merge by id needs) and hands back a body the heap does not hold.
//!
//! Its own test binary: the global allocator below counts live bytes, and the one test
//! runs the cases one after another so nothing else allocates meanwhile.

use feeds::config::{FeedConfig, Format};
use feeds::parse::parse_feed;
use feeds::NoProgress;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

#[path = "common/heap.rs"]
mod heap;
use heap::peak_of;

/// An HTTP/1.1 server on 127.0.0.1 answering a GET of a path ending in one of `pages`' names
/// with its body, anything else 404. It stops with the test process.
fn serve(pages: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/feed/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            let mut path = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
                if path.is_empty() {
                    path = line.split(' ').nth(1).unwrap_or("").to_string();
                }
            }
            let path = path.split('?').next().unwrap_or("");
            let page = pages.iter().find(|(name, _)| path.ends_with(name));
            let (status, body) = match page {
                Some((_, body)) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b"not found"[..]),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
            let _ = stream.flush();
        }
    });
    url
}

/// One test: the two cases one after another, so the counts are each case's alone.
#[test]
fn quiet_pulls_of_large_stores_hand_the_parser_a_mapped_file() {
    taxii_store();
    misp_feed_store();
}

fn taxii_store() {
    let url = serve(vec![("/objects/", br#"{"more":false}"#.to_vec())]) + "objects/";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut feed = FeedConfig::new("big-taxii", &url);
    feed.format = Format::Taxii;
    feed.retries = Some(0);
    let n = 30_000;
    let objects: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
                "name": format!("bad host {i}"),
                "pattern": format!("[domain-name:value = 'host-{i}.bad.example']"),
                "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
                "labels": ["c2", "malware"],
            })
        })
        .collect();
    // The store a former pull left: compact, keys in order, as the pull writes it.
    let stored = serde_json::to_vec(&json!({ "objects": objects, "x_trawl_source": url })).unwrap();
    drop(objects);
    let path = feeds::taxii::store_path(&data, &feed.name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &stored).unwrap();

    // One tree of the stored objects: what the merge by id holds while pulling.
    let (_, tree, _) = peak_of(|| serde_json::from_slice::<Value>(&stored).map(drop));
    let (pulled, peak, held) = peak_of(|| feeds::taxii::pull(&feed, &data, &NoProgress));
    let pulled = pulled.unwrap();
    eprintln!(
        "taxii: store {} bytes, one tree {tree}, pull peak {peak}, held {held}",
        stored.len()
    );
    assert!(pulled.bytes.is_spooled(), "the pulled store is mapped");
    assert!(
        held < stored.len() / 16,
        "the pulled store ({} bytes) is not on the heap: {held} bytes held",
        stored.len()
    );
    // One tree and less than the store's size besides (the merge's index, buffers). Before:
    // the file read whole, a tree of it and a copy merged, or the merge, a clone serialised
    // and its bytes: two trees and a store.
    assert!(
        peak < tree + stored.len(),
        "the pull peaked at {peak} bytes, one tree of the store is {tree} and the store {}",
        stored.len()
    );
    assert_eq!(pulled.requests, 1);
    assert_eq!(pulled.received, 0);
    // What the parser reads is the store, unchanged by a quiet pull.
    assert!(&*pulled.bytes == stored.as_slice(), "the store changed");
    let parsed = parse_feed(&pulled.bytes, &feed);
    assert_eq!(parsed.records.len(), n);
    // Saved from the mapping, it is the same file again.
    pulled.save().unwrap();
    assert!(std::fs::read(&path).unwrap() == stored);
}

fn misp_feed_store() {
    let (events, attrs) = (1_000, 20);
    let uuid = |i: usize| format!("5f0c8a3e-0000-4000-8000-{i:012}");
    let manifest: serde_json::Map<String, Value> = (0..events)
        .map(|e| (uuid(e), json!({"timestamp": "1700000000", "info": "x"})))
        .collect();
    let url = serve(vec![(
        "/manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    )]);
    drop(manifest);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut feed = FeedConfig::new("big-misp", &url);
    feed.format = Format::MispFeed;
    feed.retries = Some(0);
    let response: Vec<Value> = (0..events)
        .map(|e| {
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
            json!({"Event": {
                "uuid": uuid(e), "info": format!("campaign {e}"), "timestamp": "1700000000",
                "Attribute": attributes, "Tag": [{"name": "tlp:green"}],
            }})
        })
        .collect();
    let stamps: serde_json::Map<String, Value> = (0..events)
        .map(|e| (uuid(e), json!("1700000000")))
        .collect();
    // The store a former pull left: compact, keys in order, as the pull writes it.
    let stored = serde_json::to_vec(&json!({
        "response": response, "x_trawl_source": url, "x_trawl_timestamps": stamps,
    }))
    .unwrap();
    drop((response, stamps));
    let path = feeds::misp_feed::store_path(&data, &feed.name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &stored).unwrap();

    let (_, tree, _) = peak_of(|| serde_json::from_slice::<Value>(&stored).map(drop));
    let (pulled, peak, held) = peak_of(|| feeds::misp_feed::pull(&feed, &data, &NoProgress));
    let pulled = pulled.unwrap();
    eprintln!(
        "misp feed: store {} bytes, one tree {tree}, pull peak {peak}, held {held}",
        stored.len()
    );
    assert!(pulled.bytes.is_spooled(), "the pulled store is mapped");
    assert!(
        held < stored.len() / 16,
        "the pulled store ({} bytes) is not on the heap: {held} bytes held",
        stored.len()
    );
    assert!(
        peak < tree + stored.len(),
        "the pull peaked at {peak} bytes, one tree of the store is {tree} and the store {}",
        stored.len()
    );
    // The manifest and hashes.csv (404): no event fetched again.
    assert_eq!((pulled.requests, pulled.received), (2, 0));
    assert!(&*pulled.bytes == stored.as_slice(), "the store changed");
    assert_eq!(
        parse_feed(&pulled.bytes, &feed).records.len(),
        events * attrs
    );
    pulled.save().unwrap();
    assert!(std::fs::read(&path).unwrap() == stored);
}
