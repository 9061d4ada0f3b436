//! MISP feeds as feeds (`format = "misp-feed"`, `source` = the directory URL holding
//! `manifest.json`), pulled incrementally (ARCHITECTURE.md §2.5).
//!
//! A MISP feed (what CIRCL's OSINT feed and MISP's "feed" export publish) is a
//! `manifest.json` mapping each event uuid to its header (with `timestamp`), and one
//! `<uuid>.json` per event. Each pull reads the manifest, fetches only the events whose
//! timestamp differs from the one kept, keeps the rest from the feed's store
//! (`DATA/feeds/misp/<feed>.json`, a `{"response": [{"Event": ...}]}` document the MISP parser
//! reads) and drops events the manifest no longer lists.
//!
//! The optional `hashes.csv` lists `md5(value),event_uuid` for every attribute value of the
//! feed (each part of a composite `a|b` value, object attributes included), which MISP uses
//! to look values up without the events. A pull reads it as a second opinion on which events
//! changed: an event kept because its manifest timestamp did not move is fetched again when
//! the MD5s of its stored values disagree with the ones `hashes.csv` lists for it (a value
//! held is not listed, or more or fewer are: a feed regenerated without new timestamps).
//! Absent (404) it is simply not used; unreadable, it is skipped with a warning and the
//! manifest decides alone.

use crate::config::FeedConfig;
use crate::fetch::{self, FetchError, HeaderExchange};
use crate::pull_store::{walk_store, Ascending, Commas, Pulled, StoreWriter};
use crate::Progress;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum MispFeedError {
    /// A request failed (status, transport, size cap).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The manifest or an event is not what a MISP feed holds.
    #[error("{url}: {reason}")]
    Document {
        /// The file's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The events together are larger than the feed's `max_bytes`.
    #[error("the feed's events are larger than max_bytes = {0} bytes")]
    TooLarge(u64),
    /// The store in the data directory could not be read.
    #[error("{path}: {reason}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The store file of a MISP feed.
pub fn store_path(data_dir: &Path, feed: &str) -> PathBuf {
    crate::pull_store::path(data_dir, "misp", feed)
}

/// A MISP uuid (36 characters of hex digits and dashes): the only names of event files
/// asked for, so a manifest cannot point the fetch anywhere else.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A manifest entry as the pull reads it: its `timestamp` (MISP writes strings, some tools
/// numbers), the rest skipped unread; an entry that is not an object has none.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Header {
    Event {
        #[serde(default)]
        timestamp: Option<Value>,
    },
    Other(serde::de::IgnoredAny),
}

impl Header {
    /// The timestamp as text (empty when there is none).
    fn timestamp(&self) -> String {
        match self {
            Header::Event {
                timestamp: Some(Value::String(s)),
            } => s.clone(),
            Header::Event {
                timestamp: Some(Value::Number(n)),
            } => n.to_string(),
            _ => String::new(),
        }
    }
}

/// `hashes.csv` read: event uuid (lower case) → the sorted, unique MD5s of its values.
pub type ValueHashes = BTreeMap<String, Vec<[u8; 16]>>;

/// Parse `hashes.csv`: one `md5,event_uuid` a line (32 hex digits, a uuid; blank lines and
/// a trailing `\r` allowed). Other lines are counted (the second value) and skipped.
pub fn parse_hashes(body: &[u8]) -> (ValueHashes, usize) {
    let mut out = ValueHashes::new();
    let mut bad = 0;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = std::str::from_utf8(line).ok().and_then(|l| {
            let (md5, uuid) = l.trim().split_once(',')?;
            let md5 = hex16(md5.trim())?;
            let uuid = uuid.trim();
            is_uuid(uuid).then(|| (md5, uuid.to_ascii_lowercase()))
        });
        match parsed {
            Some((md5, uuid)) => out.entry(uuid).or_default().push(md5),
            None => bad += 1,
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    (out, bad)
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The MD5s `hashes.csv` would list for `event`: of every attribute value, its own and its
/// objects', each `|`-separated part of a composite type's (and of a `malware-sample`'s)
/// hashed alone; sorted and unique. Returns (all of them, those of attributes other than
/// `datetime`): PyMISP's generator hashes a `datetime` as Python prints it, not as stored.
fn event_value_hashes(event: &Value) -> (Vec<[u8; 16]>, Vec<[u8; 16]>) {
    use md5::Digest;
    let (mut all, mut checkable) = (Vec::new(), Vec::new());
    let mut add = |attrs: Option<&Value>| {
        for a in attrs.and_then(Value::as_array).into_iter().flatten() {
            let Some(value) = a.get("value").and_then(Value::as_str) else {
                continue;
            };
            let ty = a.get("type").and_then(Value::as_str).unwrap_or_default();
            let parts: Vec<&str> = if ty.contains('|') || ty == "malware-sample" {
                value.split('|').collect()
            } else {
                vec![value]
            };
            for part in parts {
                let h: [u8; 16] = md5::Md5::digest(part.as_bytes()).into();
                all.push(h);
                if ty != "datetime" {
                    checkable.push(h);
                }
            }
        }
    };
    add(event.get("Attribute"));
    for o in event
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(o.get("Attribute"));
    }
    for v in [&mut all, &mut checkable] {
        v.sort_unstable();
        v.dedup();
    }
    (all, checkable)
}

/// Whether the values of a stored event still agree with the MD5s `hashes.csv` lists for it:
/// every value held (but a `datetime`'s) is listed, and as many values are listed as held.
fn agrees(event: &Value, listed: &[[u8; 16]]) -> bool {
    let (all, checkable) = event_value_hashes(event);
    all.len() == listed.len() && checkable.iter().all(|h| listed.binary_search(h).is_ok())
}

/// Fetch and read `hashes.csv` beside the manifest: `None` when the feed has none (404 or
/// 410) or it cannot be read (a warning; the manifest decides alone then).
fn fetch_hashes(
    feed: &FeedConfig,
    base: &url::Url,
    progress: &dyn Progress,
) -> (Option<ValueHashes>, usize, usize) {
    let Ok(url) = base.join("hashes.csv") else {
        return (None, 0, 0);
    };
    let none = HeaderExchange::default();
    match fetch::get_with_headers(feed, url.as_str(), &none, progress) {
        Ok((body, _)) => {
            let (hashes, bad) = parse_hashes(&body);
            if bad > 0 {
                tracing::warn!(
                    feed = %feed.name,
                    "{url}: {bad} lines are not `md5,event_uuid`; skipped"
                );
            }
            (Some(hashes), bad, body.len())
        }
        Err(FetchError::Status {
            status: 404 | 410, ..
        }) => (None, 0, 0),
        Err(e) => {
            tracing::warn!(
                feed = %feed.name,
                "hashes.csv not used (the manifest's timestamps decide alone): {e}"
            );
            (None, 0, 0)
        }
    }
}

/// The manifest timestamps of the store's events (uuid → timestamp), read in a first walk
/// that also checks the store whole and its events in uuid order; `None` when there is no
/// store to merge with: none yet, another feed's, or one not in uuid order (not written by
/// this version: every event is fetched afresh).
fn read_stamps(
    path: &Path,
    feed: &FeedConfig,
) -> Result<Option<Map<String, Value>>, MispFeedError> {
    let mut order = Ascending::default();
    let meta = walk_store(path, feed.max_bytes(), "response", &mut |item| {
        if let Some(uuid) = event_uuid(&item) {
            order.next(uuid);
        }
    })
    .map_err(|reason| MispFeedError::Store {
        path: path.to_path_buf(),
        reason,
    })?;
    let Some(mut meta) = meta else {
        return Ok(None);
    };
    if meta.get("x_trawl_source").and_then(Value::as_str) != Some(feed.source.as_str()) {
        return Ok(None);
    }
    if !order.whole(&feed.name, path) {
        return Ok(None);
    }
    match meta.remove("x_trawl_timestamps") {
        Some(Value::Object(stamps)) => Ok(Some(stamps)),
        _ => Ok(None),
    }
}

/// The uuid of a store item's event (`{"Event": {"uuid": ...}}`).
fn event_uuid(item: &Value) -> Option<&str> {
    item.get("Event")?.get("uuid")?.as_str()
}

/// The one-pass merge of the store's events (walked in uuid order) with the manifest
/// (sorted by uuid), written as the new store: an event kept while its manifest timestamp
/// and `hashes.csv` say it did not change, else fetched, one at a time.
struct Merge<'a> {
    feed: &'a FeedConfig,
    /// The store.
    path: &'a Path,
    base: &'a url::Url,
    progress: &'a dyn Progress,
    /// The manifest's events, (uuid, timestamp), sorted by uuid.
    manifest: &'a [(String, String)],
    /// The next manifest event not written yet.
    at: usize,
    /// The store's manifest timestamps.
    stamps: Map<String, Value>,
    hashes: Option<&'a ValueHashes>,
    out: &'a mut StoreWriter,
    commas: Commas,
    order: Ascending,
    /// Bytes fetched (bounded by `max_bytes`).
    total: usize,
    requests: usize,
    received: usize,
    refetched: usize,
    failed: Option<MispFeedError>,
}

impl Merge<'_> {
    /// Fetch the manifest's events before `uuid` (all the rest, when `None`).
    fn fetch_before(&mut self, uuid: Option<&str>) -> Result<(), MispFeedError> {
        let manifest = self.manifest;
        while let Some((u, _)) = manifest.get(self.at) {
            if uuid.is_some_and(|uuid| u.as_str() >= uuid) {
                break;
            }
            self.at += 1;
            self.fetch(u)?;
        }
        Ok(())
    }

    /// Fetch event `uuid` and write it.
    fn fetch(&mut self, uuid: &str) -> Result<(), MispFeedError> {
        let url = self
            .base
            .join(&format!("{uuid}.json"))
            .map_err(|e| MispFeedError::Document {
                url: self.feed.source.clone(),
                reason: e.to_string(),
            })?;
        let (mut doc, len) = get_json(self.feed, url.as_str(), self.progress)?;
        self.requests += 1;
        self.total += len;
        if self.total as u64 > self.feed.max_bytes() {
            return Err(MispFeedError::TooLarge(self.feed.max_bytes()));
        }
        let Some(Value::Object(ev)) = doc.get_mut("Event").map(Value::take) else {
            return Err(MispFeedError::Document {
                url: url.to_string(),
                reason: "not a MISP event (no \"Event\" object)".into(),
            });
        };
        drop(doc);
        let mut ev = Value::Object(ev);
        // The manifest's uuid is the event's (what the store is keyed by).
        ev["uuid"] = Value::from(uuid);
        self.received += 1;
        self.write(&ev)
    }

    fn write(&mut self, ev: &Value) -> Result<(), MispFeedError> {
        let mut write = || -> std::io::Result<()> {
            self.commas.next(self.out)?;
            self.out.write_all(br#"{"Event":"#)?;
            serde_json::to_writer(&mut *self.out, ev)?;
            self.out.write_all(b"}")
        };
        write().map_err(|e| self.write_error(e))
    }

    fn write_error(&self, e: std::io::Error) -> MispFeedError {
        if self.out.over() {
            MispFeedError::TooLarge(self.feed.max_bytes())
        } else {
            MispFeedError::Store {
                path: self.path.to_path_buf(),
                reason: format!("writing the pulled store beside it: {e}"),
            }
        }
    }

    /// One item of the store: its event kept when the manifest lists it unchanged, fetched
    /// when changed, dropped when no longer listed; after the manifest's events before it.
    fn store_item(&mut self, mut item: Value) -> Result<(), MispFeedError> {
        let Some(uuid) = event_uuid(&item).map(str::to_string) else {
            return Ok(());
        };
        if !self.order.next(&uuid) {
            return Err(MispFeedError::Store {
                path: self.path.to_path_buf(),
                reason: format!(
                    "event {uuid} is not after the one before it (the store changed during \
                     the pull?)"
                ),
            });
        }
        self.fetch_before(Some(&uuid))?;
        let manifest = self.manifest;
        let Some((u, ts)) = manifest.get(self.at) else {
            return Ok(());
        };
        if *u != uuid {
            return Ok(());
        }
        self.at += 1;
        let old_ts = self.stamps.get(&uuid).and_then(Value::as_str);
        if old_ts == Some(ts.as_str()) && !ts.is_empty() {
            let ev = item.get_mut("Event").map(Value::take).unwrap_or_default();
            let listed = self.hashes.map(|h| {
                h.get(&uuid.to_ascii_lowercase())
                    .map_or(&[][..], Vec::as_slice)
            });
            if listed.is_none_or(|l| agrees(&ev, l)) {
                return self.write(&ev);
            }
            self.refetched += 1;
        }
        drop(item);
        self.fetch(&uuid)
    }
}

/// Write the new store, a `{"response": [{"Event": ...}]}` document of the events in uuid
/// order, with trawl's source and the manifest timestamps.
fn write_store(merge: &mut Merge<'_>, store: bool) -> Result<(), MispFeedError> {
    let path = merge.path;
    let err = |m: &Merge<'_>, e| m.write_error(e);
    merge
        .out
        .write_all(br#"{"response":["#)
        .map_err(|e| err(merge, e))?;
    if store {
        walk_store(path, merge.feed.max_bytes(), "response", &mut |item| {
            if merge.failed.is_none() {
                if let Err(e) = merge.store_item(item) {
                    merge.failed = Some(e);
                }
            }
        })
        .map_err(|reason| MispFeedError::Store {
            path: path.to_path_buf(),
            reason,
        })?;
        if let Some(e) = merge.failed.take() {
            return Err(e);
        }
    }
    merge.fetch_before(None)?;
    let mut tail = || -> std::io::Result<()> {
        let w = &mut *merge.out;
        w.write_all(br#"],"x_trawl_source":"#)?;
        serde_json::to_writer(&mut *w, &merge.feed.source)?;
        w.write_all(br#","x_trawl_timestamps":{"#)?;
        let mut commas = Commas::new();
        for (uuid, ts) in merge.manifest {
            commas.next(w)?;
            serde_json::to_writer(&mut *w, uuid)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, ts)?;
        }
        w.write_all(b"}}")
    };
    tail().map_err(|e| err(merge, e))
}

/// `base` as a directory URL (a trailing slash), so file names join below it.
fn directory(base: &str) -> Result<url::Url, MispFeedError> {
    let with_slash = if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    };
    url::Url::parse(&with_slash).map_err(|e| MispFeedError::Document {
        url: base.to_string(),
        reason: format!("bad URL: {e}"),
    })
}

fn get_json(
    feed: &FeedConfig,
    url: &str,
    progress: &dyn Progress,
) -> Result<(Value, usize), MispFeedError> {
    let none = HeaderExchange::default();
    let (body, _) = fetch::get_with_headers(feed, url, &none, progress)?;
    let doc = serde_json::from_slice(&body).map_err(|e| MispFeedError::Document {
        url: url.to_string(),
        reason: format!("invalid JSON: {e}"),
    })?;
    Ok((doc, body.len()))
}

/// Pull the MISP feed at `feed.source` into its store under `data_dir` (not saved yet).
pub fn pull(
    feed: &FeedConfig,
    data_dir: &Path,
    progress: &dyn Progress,
) -> Result<Pulled, MispFeedError> {
    let path = store_path(data_dir, &feed.name);
    let stamps = read_stamps(&path, feed)?;
    let base = directory(&feed.source)?;
    let limit = feed.max_bytes();
    let manifest_url = base
        .join("manifest.json")
        .map_err(|e| MispFeedError::Document {
            url: feed.source.clone(),
            reason: e.to_string(),
        })?;
    // Read into each entry's timestamp alone: a small list an event, not a tree of the
    // manifest.
    let none = HeaderExchange::default();
    let (body, _) = fetch::get_with_headers(feed, manifest_url.as_str(), &none, progress)?;
    let mut total = body.len();
    let manifest: BTreeMap<String, Header> =
        serde_json::from_slice(&body).map_err(|e| MispFeedError::Document {
            url: manifest_url.to_string(),
            reason: format!("the manifest is not a JSON object of event uuids: {e}"),
        })?;
    drop(body);
    // Manifest keys that are not uuids and `hashes.csv` lines that are not `md5,uuid`.
    let mut skipped = 0;
    let mut events: Vec<(String, String)> = Vec::with_capacity(manifest.len());
    for (uuid, header) in manifest {
        if is_uuid(&uuid) {
            events.push((uuid, header.timestamp()));
        } else {
            skipped += 1;
        }
    }
    // In uuid order already: the manifest is a BTreeMap, the merge walks the store in it.
    let (hashes, bad_lines, hashes_len) = fetch_hashes(feed, &base, progress);
    total += hashes_len;
    skipped += bad_lines;
    // Written to a file beside the store and mapped: the parse reads it, never a copy on
    // the heap.
    let store_err = |e: std::io::Error| MispFeedError::Store {
        path: path.clone(),
        reason: format!("writing the pulled store beside it: {e}"),
    };
    let mut w = StoreWriter::new(&path, limit).map_err(store_err)?;
    let has_store = stamps.is_some();
    let mut merge = Merge {
        feed,
        path: &path,
        base: &base,
        progress,
        manifest: &events,
        at: 0,
        stamps: stamps.unwrap_or_default(),
        hashes: hashes.as_ref(),
        out: &mut w,
        commas: Commas::new(),
        order: Ascending::default(),
        total,
        requests: 2,
        received: 0,
        refetched: 0,
        failed: None,
    };
    write_store(&mut merge, has_store)?;
    let (requests, received, refetched) = (merge.requests, merge.received, merge.refetched);
    let bytes = w.finish().map_err(store_err)?;
    if refetched > 0 {
        tracing::info!(
            feed = %feed.name,
            "{refetched} events fetched again: their values differ from hashes.csv's"
        );
    }
    Ok(Pulled::new(bytes, requests, received, skipped, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uuids_name_event_files() {
        assert!(is_uuid("5ecea68b-9bc0-493b-9c23-7555c0a80102"));
        for bad in [
            "../../etc/passwd",
            "5ecea68b-9bc0-493b-9c23-7555c0a8010",
            "5ecea68b-9bc0-493b-9c23-7555c0a80102/",
            "5ecea68b99bc0-493b-9c23-7555c0a80102",
            "5ecea68b-9bc0-493b-9c23-7555c0a8010g",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    fn h(hex: &str) -> [u8; 16] {
        hex16(hex).unwrap()
    }

    #[test]
    fn hashes_csv_lines_are_md5_comma_uuid() {
        let ev = "5ecea68b-9bc0-493b-9c23-7555c0a80102";
        let body = format!(
            "96119eb3210daa472225fbad69fa9770,{ev}\r\n\n\
             96119EB3210DAA472225FBAD69FA9770,{}\n\
             526291673f8700ef4e4902e29550a03b,{ev}\n\
             not-a-hash,{ev}\n\
             +6119eb3210daa472225fbad69fa9770,{ev}\n\
             96119eb3210daa472225fbad69fa9770,../../etc/passwd\n\
             96119eb3210daa472225fbad69fa9770\n",
            ev.to_uppercase()
        );
        let mut body = body.into_bytes();
        body.extend_from_slice(b"\xff,\xfe\n");
        let (got, bad) = parse_hashes(&body);
        assert_eq!(bad, 5);
        assert_eq!(got.len(), 1, "one event, its uuid lower-cased");
        assert_eq!(
            got[ev],
            vec![
                h("526291673f8700ef4e4902e29550a03b"),
                h("96119eb3210daa472225fbad69fa9770")
            ]
        );
    }

    #[test]
    fn an_event_s_value_hashes_split_composites_and_include_objects() {
        let ev = serde_json::json!({
            "Attribute": [
                {"type": "domain", "value": "evil.example"},
                {"type": "filename|md5", "value": "a.exe|d41d8cd98f00b204e9800998ecf8427e"},
                {"type": "datetime", "value": "2020-05-18T15:45:24.000000+0000"},
                {"type": "domain", "value": "evil.example"},
            ],
            "Object": [{"Attribute": [{"type": "ip-dst", "value": "198.51.100.7"}]}],
        });
        let (all, checkable) = event_value_hashes(&ev);
        let mut want = vec![
            h("96119eb3210daa472225fbad69fa9770"),
            h("2c3ccd32927839768639b88829a5c04a"),
            h("74be16979710d4c4e7c6647856088456"),
            h("526291673f8700ef4e4902e29550a03b"),
        ];
        want.sort_unstable();
        assert_eq!(checkable, want);
        assert_eq!(all.len(), 5, "the datetime's own hash too");
        // PyMISP lists the datetime as Python prints it: still agrees.
        let mut listed = want.clone();
        listed.push(h("733888b7fa13cdfec6b85496950457c0"));
        listed.sort_unstable();
        assert!(agrees(&ev, &listed));
        // A value no longer listed, or one more listed: the event changed.
        assert!(!agrees(&ev, &listed[1..]));
        listed.push(h("00000000000000000000000000000001"));
        listed.sort_unstable();
        assert!(!agrees(&ev, &listed));
    }

    #[test]
    fn directory_urls_get_a_slash() {
        let d = directory("http://h.example/feed").unwrap();
        assert_eq!(
            d.join("manifest.json").unwrap().as_str(),
            "http://h.example/feed/manifest.json"
        );
    }
}
