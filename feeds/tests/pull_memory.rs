//! A pulled feed's store (TAXII collection, MISP feed; ARCHITECTURE.md §2.5) reaches the
//! parser as a mapped file, not a second copy on the heap: a quiet pull of a large stored
//! collection from a real HTTP server on 127.0.0.1 peaks at about one tree of the store's
//! objects (which the merge by id needs) and hands back a body the heap does not hold.
//!
//! Its own test binary: the global allocator below counts live bytes, and the one test
//! runs alone so nothing else allocates meanwhile.

use feeds::config::{FeedConfig, Format};
use feeds::parse::parse_feed;
use feeds::NoProgress;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The value of `f`, the most live heap it added above what was live before it, and what
/// it left live (held by its value).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (out, peak, LIVE.load(Ordering::Relaxed).saturating_sub(base))
}

/// An HTTP/1.1 server on 127.0.0.1 answering every GET with `body` (an empty TAXII page: the
/// collection has nothing new). It stops with the test process.
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api1/collections/c/objects/",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/taxii+json;version=2.1\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
        }
    });
    url
}

#[test]
fn a_quiet_pull_of_a_large_taxii_store_hands_the_parser_a_mapped_file() {
    let url = serve(r#"{"more":false}"#);
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
    assert!(pulled.bytes.is_spooled(), "the pulled store is mapped");
    assert!(
        held < stored.len() / 16,
        "the pulled store ({} bytes) is not on the heap: {held} bytes held",
        stored.len()
    );
    // Before: the file read whole, a tree of it, a copy merged, a clone serialised and the
    // bytes of that (more than two trees and two stores).
    assert!(
        peak < tree + stored.len() / 2,
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
