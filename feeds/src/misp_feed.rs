//! MISP feeds as feeds (`format = "misp-feed"`, `source` = the directory URL holding
//! `manifest.json`), pulled incrementally (ARCHITECTURE.md §2.5).
//!
//! A MISP feed (what CIRCL's OSINT feed and MISP's "feed" export publish) is a
//! `manifest.json` mapping each event uuid to its header (with `timestamp`), and one
//! `<uuid>.json` per event. Each pull reads the manifest, fetches only the events whose
//! timestamp differs from the one kept, keeps the rest from the feed's store
//! (`DATA/feeds/misp/<feed>.json`, a `{"response": [{"Event": ...}]}` document the MISP parser
//! reads) and drops events the manifest no longer lists. `hashes.csv` (MD5s of attribute
//! values, for correlation) holds no indicator and is not read.

use crate::config::FeedConfig;
use crate::fetch::{self, FetchError, HeaderExchange};
use crate::pull_store::Pulled;
use crate::Progress;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
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

/// A manifest entry's or an event's `timestamp`, as text (MISP writes strings, some tools
/// numbers).
fn timestamp(v: &Value) -> Option<String> {
    match v.get("timestamp")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Events kept between pulls: uuid → (manifest timestamp, event object).
type Events = BTreeMap<String, (String, Value)>;

fn load(path: &Path, feed: &FeedConfig) -> Result<Events, MispFeedError> {
    let mut events = Events::new();
    if !path.exists() {
        return Ok(events);
    }
    let store_err = |reason: String| MispFeedError::Store {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = fetch::read_file(path, &feed.name, feed.max_bytes(), &crate::NoProgress)
        .map_err(|e| store_err(e.to_string()))?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| store_err(format!("{e} (delete the file to pull the feed afresh)")))?;
    if doc.get("x_trawl_source").and_then(Value::as_str) != Some(feed.source.as_str()) {
        return Ok(events);
    }
    let stamps = doc.get("x_trawl_timestamps").and_then(Value::as_object);
    if let (Some(stamps), Some(Value::Array(list))) = (stamps, doc.get("response")) {
        for item in list {
            let Some(ev) = item.get("Event") else {
                continue;
            };
            let Some(uuid) = ev.get("uuid").and_then(Value::as_str) else {
                continue;
            };
            if let Some(ts) = stamps.get(uuid).and_then(Value::as_str) {
                events.insert(uuid.to_string(), (ts.to_string(), ev.clone()));
            }
        }
    }
    Ok(events)
}

fn to_bytes(source: &str, events: &Events) -> Vec<u8> {
    let mut doc = Map::new();
    doc.insert("x_trawl_source".into(), Value::from(source));
    let stamps: Map<String, Value> = events
        .iter()
        .map(|(u, (ts, _))| (u.clone(), Value::from(ts.clone())))
        .collect();
    doc.insert("x_trawl_timestamps".into(), Value::Object(stamps));
    let list = events
        .values()
        .map(|(_, ev)| {
            let mut wrap = Map::new();
            wrap.insert("Event".into(), ev.clone());
            Value::Object(wrap)
        })
        .collect();
    doc.insert("response".into(), Value::Array(list));
    serde_json::to_vec(&Value::Object(doc)).unwrap_or_default()
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
    let mut kept = load(&path, feed)?;
    let base = directory(&feed.source)?;
    let limit = feed.max_bytes();
    let manifest_url = base
        .join("manifest.json")
        .map_err(|e| MispFeedError::Document {
            url: feed.source.clone(),
            reason: e.to_string(),
        })?;
    let (manifest, mut total) = get_json(feed, manifest_url.as_str(), progress)?;
    let Value::Object(manifest) = manifest else {
        return Err(MispFeedError::Document {
            url: manifest_url.to_string(),
            reason: "the manifest is not a JSON object of event uuids".into(),
        });
    };
    let mut events = Events::new();
    let mut requests = 1;
    let mut received = 0;
    let mut skipped = 0;
    for (uuid, header) in &manifest {
        if !is_uuid(uuid) {
            skipped += 1;
            continue;
        }
        let ts = timestamp(header).unwrap_or_default();
        if let Some((old_ts, ev)) = kept.remove(uuid) {
            if old_ts == ts && !ts.is_empty() {
                events.insert(uuid.clone(), (ts, ev));
                continue;
            }
        }
        let url = base
            .join(&format!("{uuid}.json"))
            .map_err(|e| MispFeedError::Document {
                url: feed.source.clone(),
                reason: e.to_string(),
            })?;
        let (doc, len) = get_json(feed, url.as_str(), progress)?;
        requests += 1;
        total += len;
        if total as u64 > limit {
            return Err(MispFeedError::TooLarge(limit));
        }
        let Some(Value::Object(ev)) = doc.get("Event").cloned() else {
            return Err(MispFeedError::Document {
                url: url.to_string(),
                reason: "not a MISP event (no \"Event\" object)".into(),
            });
        };
        let mut ev = Value::Object(ev);
        // The manifest's uuid is the event's (what the store is keyed by).
        ev["uuid"] = Value::from(uuid.clone());
        received += 1;
        events.insert(uuid.clone(), (ts, ev));
    }
    let bytes = to_bytes(&feed.source, &events);
    if bytes.len() as u64 > limit {
        return Err(MispFeedError::TooLarge(limit));
    }
    Ok(Pulled {
        bytes,
        requests,
        received,
        skipped,
        path,
    })
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

    #[test]
    fn directory_urls_get_a_slash() {
        let d = directory("http://h.example/feed").unwrap();
        assert_eq!(
            d.join("manifest.json").unwrap().as_str(),
            "http://h.example/feed/manifest.json"
        );
    }
}
