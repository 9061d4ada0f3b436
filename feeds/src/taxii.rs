//! TAXII 2.1 collections as feeds (`format = "taxii"`, `source` = the collection's
//! `objects/` URL): incremental pulls kept in the data directory (ARCHITECTURE.md §2.5).
//!
//! Each pull asks for `match[type]=indicator` objects added after the cursor kept from the
//! last successful pull, page by page (`more` with `next`; without `next`, the
//! `X-TAXII-Date-Added-Last` header of the page as the next `added_after`). The objects are
//! merged by STIX id (the newest `modified` wins, so a revocation replaces what it revokes)
//! into the feed's store, `DATA/feeds/taxii/<feed>.json`, an envelope holding every indicator
//! the collection has given so far, in id order. The merge streams: the pages' objects are
//! sorted by id in a [`Sorter`] (spilling to disk past its budget) and merged with the store,
//! walked an object at a time, in one pass into the new store ([`crate::pull_store`]). The
//! store is what is parsed (as a STIX 2.1 envelope), so a quiet pull keeps the feed's
//! entries, and it replaces the old one only when the update accepts the parse
//! ([`Pulled::save`]): a failed update pulls the same objects again next time.

use crate::config::FeedConfig;
use crate::fetch::{self, FetchError, HeaderExchange};
use crate::parse::time::parse_time;
use crate::pull_store::{walk_page, walk_store, Ascending, Commas, Pulled, StoreWriter};
use crate::runs::{record, Merged, RunError, Runs, Sorter};
use crate::Progress;
use matcher::snapshot::{get_varint, put_varint};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The media type of TAXII 2.1 responses, sent as `Accept`.
pub const ACCEPT: &str = "application/taxii+json;version=2.1";

/// Objects asked for per page (servers cap it at their own maximum).
pub const PAGE_LIMIT: usize = 1000;

/// Pages fetched in one pull at most (a server that never ends is a failure).
pub const MAX_PAGES: usize = 100_000;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    /// The request failed (status, transport, size cap).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A page that is not a TAXII envelope.
    #[error("{url}: not a TAXII 2.1 envelope: {reason}")]
    Envelope {
        /// The page's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The server said `more` without a way to ask for it, or repeated itself.
    #[error("{url}: {reason}")]
    Paging {
        /// The page's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The pulled objects together are larger than the feed's `max_bytes`.
    #[error("the collection's indicators are larger than max_bytes = {0} bytes")]
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

/// The store file of a TAXII feed.
pub fn store_path(data_dir: &Path, feed: &str) -> PathBuf {
    crate::pull_store::path(data_dir, "taxii", feed)
}

/// What a usable store says of itself: the collection it was pulled from and the
/// `added_after` of the next pull.
#[derive(Debug, Default)]
struct Head {
    source: String,
    cursor: Option<String>,
}

fn store_error(path: &Path) -> impl Fn(String) -> TaxiiError + '_ {
    move |reason| TaxiiError::Store {
        path: path.to_path_buf(),
        reason,
    }
}

/// The store's head, read in a first walk that also checks it whole and in id order; `None`
/// when there is no store to merge with: none yet, another collection's, or one not in id
/// order (not written by this version: the collection is pulled afresh).
fn read_head(path: &Path, feed: &FeedConfig) -> Result<Option<Head>, TaxiiError> {
    let mut order = Ascending::default();
    let meta = walk_store(path, feed.max_bytes(), "objects", &mut |o| {
        if let Some(id) = o.get("id").and_then(Value::as_str) {
            order.next(id);
        }
    })
    .map_err(store_error(path))?;
    let Some(meta) = meta else {
        return Ok(None);
    };
    let head = Head {
        source: str_field(&meta, "x_trawl_source").unwrap_or_default(),
        cursor: str_field(&meta, "x_trawl_added_after"),
    };
    if head.source != feed.source {
        return Ok(None);
    }
    if !order.whole(&feed.name, path) {
        return Ok(None);
    }
    Ok(Some(head))
}

fn str_field(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An object's version for "newest wins": `modified`, else `created`.
fn version_text(o: &Value) -> &str {
    let text = |k| o.get(k).and_then(Value::as_str);
    text("modified")
        .or_else(|| text("created"))
        .unwrap_or_default()
}

/// Whether version `a` is as new as `b` or newer: as times, then as text (sub-second
/// digits).
fn as_new(a: &str, b: &str) -> bool {
    (parse_time(a), a) >= (parse_time(b), b)
}

/// A pulled object as a sort record ([`Sorter::push_record`]): its id as the key, then its
/// version and its JSON. An object without an id is not kept (false).
fn encode_object(o: &Value, out: &mut Vec<u8>) -> bool {
    let Some(id) = o.get("id").and_then(Value::as_str) else {
        return false;
    };
    out.clear();
    record::put_raw_key(0, id.as_bytes(), out);
    let v = version_text(o);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v.as_bytes());
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, o);
    true
}

/// A sort record's id, version and JSON ([`encode_object`]); `None` when damaged.
fn decode_object(rec: &[u8]) -> Option<(&str, &str, &[u8])> {
    let (_, id) = record::key(rec)?;
    let mut pos = (id.as_ptr() as usize - rec.as_ptr() as usize) + id.len();
    let len = usize::try_from(get_varint(rec, &mut pos)?).ok()?;
    let version = rec.get(pos..pos.checked_add(len)?)?;
    let json = rec.get(pos + len..)?;
    Some((
        std::str::from_utf8(id).ok()?,
        std::str::from_utf8(version).ok()?,
        json,
    ))
}

/// Why the merge of the store with the pulled objects stopped.
enum MergeError {
    Io(std::io::Error),
    Run(RunError),
    Damaged(String),
}

/// The one-pass merge of the store (walked in id order) with the pulled objects (merged
/// from their sorted runs in id order), written as the new store: of each id the newest
/// version, a pulled one on a tie, as if each had been applied in the order it came.
struct Merge<'w> {
    out: &'w mut StoreWriter,
    commas: Commas,
    pulled: Merged,
    /// The next pulled record not written yet.
    next: Option<Vec<u8>>,
    spare: Vec<u8>,
    order: Ascending,
    failed: Option<MergeError>,
}

impl Merge<'_> {
    fn advance(&mut self) -> Result<(), MergeError> {
        let mut rec = self
            .next
            .take()
            .unwrap_or_else(|| std::mem::take(&mut self.spare));
        if self.pulled.next_record(&mut rec).map_err(MergeError::Run)? {
            self.next = Some(rec);
        } else {
            self.spare = rec;
        }
        Ok(())
    }

    /// The next pulled record's id, if it comes before `id` (any, when `None`).
    fn next_before(&self, id: Option<&str>) -> Result<Option<String>, MergeError> {
        let Some(rec) = &self.next else {
            return Ok(None);
        };
        let (next, _, _) = decode_object(rec)
            .ok_or_else(|| MergeError::Damaged("a pulled object's sort record".into()))?;
        Ok(id.is_none_or(|id| next < id).then(|| next.to_string()))
    }

    /// Take the pulled versions of `id` (the next record's): the newest, the last one on a tie.
    fn take(&mut self, id: &str) -> Result<Option<Vec<u8>>, MergeError> {
        let mut best: Option<Vec<u8>> = None;
        while let Some(rec) = self.next.take() {
            let newer = match (decode_object(&rec), best.as_deref().and_then(decode_object)) {
                (Some((i, _, _)), _) if i != id => {
                    self.next = Some(rec);
                    break;
                }
                (Some((_, v, _)), Some((_, bv, _))) => as_new(v, bv),
                (Some(_), None) => true,
                (None, _) => {
                    return Err(MergeError::Damaged("a pulled object's sort record".into()))
                }
            };
            if newer {
                if let Some(old) = best.replace(rec) {
                    self.spare = old;
                }
            } else {
                self.spare = rec;
            }
            self.advance()?;
        }
        Ok(best)
    }

    /// Write the pulled objects whose ids come before `id` (all, when `None`).
    fn write_pulled(&mut self, id: Option<&str>) -> Result<(), MergeError> {
        while let Some(next) = self.next_before(id)? {
            if let Some(rec) = self.take(&next)? {
                self.write_json(&rec)?;
            }
        }
        Ok(())
    }

    fn write_json(&mut self, rec: &[u8]) -> Result<(), MergeError> {
        let (_, _, json) = decode_object(rec)
            .ok_or_else(|| MergeError::Damaged("a pulled object's sort record".into()))?;
        self.commas.next(self.out).map_err(MergeError::Io)?;
        self.out.write_all(json).map_err(MergeError::Io)
    }

    /// One object of the store: written unless a pulled version of it is as new or newer,
    /// after the pulled objects before it.
    fn store_object(&mut self, o: Value) -> Result<(), MergeError> {
        let Some(id) = o.get("id").and_then(Value::as_str) else {
            return Ok(());
        };
        if !self.order.next(id) {
            return Err(MergeError::Damaged(format!(
                "{id} is not after the object before it (the store changed during the pull?)"
            )));
        }
        self.write_pulled(Some(id))?;
        if self.next_before(None)?.as_deref() == Some(id) {
            if let Some(rec) = self.take(id)? {
                let newer =
                    decode_object(&rec).is_some_and(|(_, v, _)| as_new(v, version_text(&o)));
                if newer {
                    return self.write_json(&rec);
                }
            }
        }
        self.commas.next(self.out).map_err(MergeError::Io)?;
        serde_json::to_writer(&mut *self.out, &o).map_err(|e| MergeError::Io(e.into()))
    }
}

/// Write the new store: the envelope around the store's objects merged with the pulled
/// ones (`store`: whether there is a usable store at `path`), then trawl's cursor and
/// source.
fn write_store(
    out: &mut StoreWriter,
    path: &Path,
    feed: &FeedConfig,
    store: bool,
    pulled: Runs,
    head: &Head,
) -> Result<(), MergeError> {
    out.write_all(br#"{"objects":["#).map_err(MergeError::Io)?;
    let mut merge = Merge {
        out,
        commas: Commas::new(),
        pulled: pulled.merge(),
        next: None,
        spare: Vec::new(),
        order: Ascending::default(),
        failed: None,
    };
    merge.advance()?;
    if store {
        walk_store(path, feed.max_bytes(), "objects", &mut |o| {
            if merge.failed.is_none() {
                if let Err(e) = merge.store_object(o) {
                    merge.failed = Some(e);
                }
            }
        })
        .map_err(MergeError::Damaged)?;
        if let Some(e) = merge.failed.take() {
            return Err(e);
        }
    }
    merge.write_pulled(None)?;
    let w = merge.out;
    let mut tail = || -> std::io::Result<()> {
        w.write_all(b"]")?;
        if let Some(c) = &head.cursor {
            w.write_all(br#","x_trawl_added_after":"#)?;
            serde_json::to_writer(&mut *w, c)?;
        }
        w.write_all(br#","x_trawl_source":"#)?;
        serde_json::to_writer(&mut *w, &head.source)?;
        w.write_all(b"}")
    };
    tail().map_err(MergeError::Io)
}

/// The URL of one page: the collection's objects URL with the filter, the limit, the cursor
/// and `next`.
fn page_url(source: &str, added_after: Option<&str>, next: Option<&str>) -> String {
    let mut url = match url::Url::parse(source) {
        Ok(u) => u,
        Err(_) => return source.to_string(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("match[type]", "indicator");
        q.append_pair("limit", &PAGE_LIMIT.to_string());
        if let Some(a) = added_after {
            q.append_pair("added_after", a);
        }
        if let Some(n) = next {
            q.append_pair("next", n);
        }
    }
    url.to_string()
}

/// Pull the collection at `feed.source` into its store under `data_dir` (not saved yet):
/// the pulled objects are sorted by id in `objects` (spilling sorted runs to disk past its
/// budget), then merged with the store in one pass into the new store.
pub fn pull(
    feed: &FeedConfig,
    data_dir: &Path,
    mut objects: Sorter,
    progress: &dyn Progress,
) -> Result<Pulled, TaxiiError> {
    let path = store_path(data_dir, &feed.name);
    let store = read_head(&path, feed)?;
    let has_store = store.is_some();
    let mut head = store.unwrap_or_else(|| Head {
        source: feed.source.clone(),
        cursor: None,
    });
    let exchange = HeaderExchange {
        send: &[("Accept", ACCEPT)],
        want: &["X-TAXII-Date-Added-Last"],
    };
    let limit = feed.max_bytes();
    let mut added_after = head.cursor.clone();
    let mut next: Option<String> = None;
    let mut pages = 0;
    let mut received = 0;
    // Indicators without a string `id`: nothing to merge them by, so counted and dropped.
    let mut no_id = 0;
    let mut pulled_bytes = 0u64;
    let mut rec = Vec::new();
    let run_error = |e: RunError| TaxiiError::Store {
        path: path.clone(),
        reason: e.to_string(),
    };
    loop {
        let url = page_url(&feed.source, added_after.as_deref(), next.as_deref());
        let (body, headers) = fetch::get_with_headers(feed, &url, &exchange, progress)?;
        pages += 1;
        let no_id_before = no_id;
        pulled_bytes += body.len() as u64;
        if pulled_bytes > limit {
            return Err(TaxiiError::TooLarge(limit));
        }
        let envelope = |reason: String| TaxiiError::Envelope {
            url: url.clone(),
            reason,
        };
        // Each object is sorted away as it is read: the page is never one tree.
        let mut sorted: Result<(), RunError> = Ok(());
        let mut keep = |o: Value| {
            // `match[type]` is a filter servers may ignore: keep indicators only.
            if o.get("type").and_then(Value::as_str) == Some("indicator") {
                received += 1;
                if !encode_object(&o, &mut rec) {
                    no_id += 1;
                } else if sorted.is_ok() {
                    sorted = objects.push_record(&rec);
                }
            }
        };
        // An empty body is an empty envelope (TAXII 2.1 §3.7: servers may answer so).
        let doc = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            walk_page(&body, "objects", &mut keep).map_err(envelope)?
        };
        sorted.map_err(run_error)?;
        if no_id > no_id_before {
            tracing::warn!(
                "{}: {url}: {} indicator(s) without an `id` skipped",
                feed.name,
                no_id - no_id_before
            );
        }
        let date_added_last = headers.into_iter().next().flatten();
        if let Some(d) = &date_added_last {
            let later = head
                .cursor
                .as_deref()
                .is_none_or(|c| parse_time(d) >= parse_time(c));
            if later {
                head.cursor = Some(d.clone());
            }
        }
        let more = doc.get("more").and_then(Value::as_bool).unwrap_or(false);
        if !more {
            break;
        }
        if pages >= MAX_PAGES {
            return Err(TaxiiError::Paging {
                url,
                reason: format!("more than {MAX_PAGES} pages in one pull"),
            });
        }
        match doc.get("next").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => next = Some(n.to_string()),
            _ => {
                // No `next`: ask again from the last object this page held.
                let Some(d) = date_added_last else {
                    return Err(TaxiiError::Paging {
                        url,
                        reason: "the server says `more` but gives neither `next` nor \
                                 X-TAXII-Date-Added-Last"
                            .into(),
                    });
                };
                if added_after.as_deref() == Some(d.as_str()) {
                    return Err(TaxiiError::Paging {
                        url,
                        reason: format!("paging by added_after does not advance past {d}"),
                    });
                }
                added_after = Some(d);
                next = None;
            }
        }
    }
    let runs = objects.finish().map_err(run_error)?;
    // Written to a file beside the store and mapped: the parse reads it, never a copy on
    // the heap.
    let store_err = |e: std::io::Error| TaxiiError::Store {
        path: path.clone(),
        reason: format!("writing the pulled store beside it: {e}"),
    };
    let mut w = StoreWriter::new(&path, limit).map_err(store_err)?;
    match write_store(&mut w, &path, feed, has_store, runs, &head) {
        Ok(()) => {}
        Err(MergeError::Io(_)) if w.over() => return Err(TaxiiError::TooLarge(limit)),
        Err(MergeError::Io(e)) => return Err(store_err(e)),
        Err(MergeError::Run(e)) => return Err(run_error(e)),
        Err(MergeError::Damaged(reason)) => return Err(store_error(&path)(reason)),
    }
    let bytes = w.finish().map_err(store_err)?;
    Ok(Pulled::new(bytes, pages, received, no_id, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_compare_as_times_then_as_text() {
        assert!(as_new("2024-02-01T00:00:00Z", "2024-01-01T00:00:00.000Z"));
        assert!(!as_new("2024-01-01T00:00:00Z", "2024-02-01T00:00:00.000Z"));
        assert!(as_new("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.4Z"));
        assert!(!as_new("2024-01-01T00:00:00.4Z", "2024-01-01T00:00:00.5Z"));
        assert!(as_new("", ""));
        let o = json!({"id": "indicator--1", "created": "2024-01-01T00:00:00Z"});
        assert_eq!(version_text(&o), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn sort_records_carry_id_version_and_json() {
        let o = json!({"id": "indicator--é", "modified": "2024-01-01T00:00:00Z", "x": [1]});
        let mut rec = Vec::new();
        assert!(encode_object(&o, &mut rec));
        let (id, v, j) = decode_object(&rec).unwrap();
        assert_eq!((id, v), ("indicator--é", "2024-01-01T00:00:00Z"));
        assert_eq!(serde_json::from_slice::<Value>(j).unwrap(), o);
        assert!(!encode_object(&json!({"no": "id"}), &mut rec));
        for cut in 0..rec.len() {
            // Cut short, a record decodes to a prefix or not at all, never panics.
            let _ = decode_object(&rec[..cut]);
        }
    }

    #[test]
    fn the_merge_keeps_each_id_s_newest_version_a_pulled_one_on_a_tie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let o = |id: &str, modified: &str, from: &str| json!({"id": format!("indicator--{id}"), "modified": modified, "from": from});
        let (jan, feb) = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00.000Z");
        let stored = json!({"x_trawl_source": "s", "objects": [
            o("a", jan, "store"), o("c", feb, "store"), o("e", jan, "store"),
            o("g", jan, "store"), {"no": "id"},
        ]});
        std::fs::write(&path, stored.to_string()).unwrap();
        let mut sorter = Sorter::new(1 << 20, None);
        let mut rec = Vec::new();
        for p in [
            o("f", jan, "pull 1"),
            o("e", feb, "pull 1"),
            o("c", jan, "pull 1"),
            o("b", jan, "pull 1"),
            o("e", feb, "pull 2"),
            o("g", jan, "pull 1"),
            o("e", jan, "pull 3"),
        ] {
            assert!(encode_object(&p, &mut rec));
            sorter.push_record(&rec).unwrap();
        }
        let feed = FeedConfig::new("f", "s");
        let mut w = StoreWriter::new(&path, u64::MAX).unwrap();
        let head = Head {
            source: "s".into(),
            cursor: Some("2024-03-01T00:00:00Z".into()),
        };
        assert!(write_store(&mut w, &path, &feed, true, sorter.finish().unwrap(), &head).is_ok());
        let (bytes, _temp) = w.finish().unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let got: Vec<(String, String)> = doc["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap()[11..].to_string(),
                    o["from"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("a", "store"),
            ("b", "pull 1"),
            ("c", "store"),
            ("e", "pull 2"),
            ("f", "pull 1"),
            ("g", "pull 1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(doc["x_trawl_added_after"], "2024-03-01T00:00:00Z");
        assert_eq!(doc["x_trawl_source"], "s");
    }

    #[test]
    fn page_urls_carry_filter_limit_cursor_and_next() {
        let u = page_url(
            "https://t.example/api1/collections/c/objects/",
            Some("2024-01-01T00:00:00.000Z"),
            Some("a b"),
        );
        assert_eq!(
            u,
            "https://t.example/api1/collections/c/objects/?match%5Btype%5D=indicator&limit=1000\
             &added_after=2024-01-01T00%3A00%3A00.000Z&next=a+b"
        );
    }
}
