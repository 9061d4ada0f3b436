//! TAXII 2.1 collections as feeds (`format = "taxii"`, `source` = the collection's
//! `objects/` URL): incremental pulls kept in the data directory (ARCHITECTURE.md §2.5).
//!
//! Each pull asks for `match[type]=indicator` objects added after the cursor kept from the
//! last successful pull, page by page (`more` with `next`; without `next`, the
//! `X-TAXII-Date-Added-Last` header of the page as the next `added_after`). The objects are
//! merged by STIX id (the newest `modified` wins, so a revocation replaces what it revokes)
//! into the feed's store, `DATA/feeds/taxii/<feed>.json`, an envelope holding every indicator
//! the collection has given so far. The store is what is parsed (as a STIX 2.1 envelope), so
//! a quiet pull keeps the feed's entries, and it is written back only when the update accepts
//! the parse ([`crate::pull_store::Pulled::save`]): a failed update pulls the same objects
//! again next time.

use crate::config::FeedConfig;
use crate::fetch::{self, FetchError, HeaderExchange};
use crate::parse::time::parse_time;
use crate::Progress;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
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

/// What the store holds between pulls.
#[derive(Debug, Default)]
struct Store {
    /// The collection it was pulled from (another source starts afresh).
    source: String,
    /// `added_after` of the next pull.
    cursor: Option<String>,
    /// Indicators by STIX id.
    objects: BTreeMap<String, Value>,
}

impl Store {
    fn load(path: &Path, feed: &FeedConfig) -> Result<Store, TaxiiError> {
        let doc = crate::pull_store::read_doc(path, feed.max_bytes()).map_err(|reason| {
            TaxiiError::Store {
                path: path.to_path_buf(),
                reason,
            }
        })?;
        let Some(mut doc) = doc else {
            return Ok(Store::default());
        };
        let mut store = Store {
            source: str_field(&doc, "x_trawl_source").unwrap_or_default(),
            cursor: str_field(&doc, "x_trawl_added_after"),
            objects: BTreeMap::new(),
        };
        // Moved out of the document, not copied: one tree of the objects at a time.
        if let Some(Value::Array(objs)) = doc.get_mut("objects").map(Value::take) {
            for o in objs {
                store.merge(o);
            }
        }
        Ok(store)
    }

    /// Keep `o` unless the store holds a newer version of the same id.
    fn merge(&mut self, o: Value) -> bool {
        let Some(id) = str_field(&o, "id") else {
            return false;
        };
        let newer = match self.objects.get(&id) {
            Some(old) => version(&o) >= version(old),
            None => true,
        };
        if newer {
            self.objects.insert(id, o);
        }
        newer
    }

    /// The store as a STIX envelope (with trawl's source and cursor), a piece at a time.
    fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(br#"{"objects":["#)?;
        for (i, o) in self.objects.values().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, o)?;
        }
        w.write_all(b"]")?;
        if let Some(c) = &self.cursor {
            w.write_all(br#","x_trawl_added_after":"#)?;
            serde_json::to_writer(&mut *w, c)?;
        }
        w.write_all(br#","x_trawl_source":"#)?;
        serde_json::to_writer(&mut *w, &self.source)?;
        w.write_all(b"}")
    }
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// An object's version for "newest wins": `modified` (else `created`), as a time and then
/// as text (sub-second digits).
fn version(o: &Value) -> (Option<i64>, String) {
    let s = str_field(o, "modified")
        .or_else(|| str_field(o, "created"))
        .unwrap_or_default();
    (parse_time(&s), s)
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

/// Pull the collection at `feed.source` into its store under `data_dir` (not saved yet).
pub fn pull(
    feed: &FeedConfig,
    data_dir: &Path,
    progress: &dyn Progress,
) -> Result<crate::pull_store::Pulled, TaxiiError> {
    let path = store_path(data_dir, &feed.name);
    let mut store = Store::load(&path, feed)?;
    if store.source != feed.source {
        store = Store {
            source: feed.source.clone(),
            ..Store::default()
        };
    }
    let exchange = HeaderExchange {
        send: &[("Accept", ACCEPT)],
        want: &["X-TAXII-Date-Added-Last"],
    };
    let limit = feed.max_bytes();
    let mut added_after = store.cursor.clone();
    let mut next: Option<String> = None;
    let mut pages = 0;
    let mut received = 0;
    let mut pulled_bytes = 0u64;
    loop {
        let url = page_url(&feed.source, added_after.as_deref(), next.as_deref());
        let (body, headers) = fetch::get_with_headers(feed, &url, &exchange, progress)?;
        pages += 1;
        pulled_bytes += body.len() as u64;
        if pulled_bytes > limit {
            return Err(TaxiiError::TooLarge(limit));
        }
        let envelope = |reason: String| TaxiiError::Envelope {
            url: url.clone(),
            reason,
        };
        // An empty body is an empty envelope (TAXII 2.1 §3.7: servers may answer so).
        let doc: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&body).map_err(|e| envelope(e.to_string()))?
        };
        let Value::Object(mut doc) = doc else {
            return Err(envelope("the body is not a JSON object".into()));
        };
        let objects = match doc.remove("objects") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(envelope("`objects` is not an array".into())),
        };
        for o in objects {
            // `match[type]` is a filter servers may ignore: keep indicators only.
            if o.get("type").and_then(Value::as_str) == Some("indicator") {
                received += 1;
                store.merge(o);
            }
        }
        let date_added_last = headers.into_iter().next().flatten();
        if let Some(d) = &date_added_last {
            let later = store
                .cursor
                .as_deref()
                .is_none_or(|c| parse_time(d) >= parse_time(c));
            if later {
                store.cursor = Some(d.clone());
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
    // Written to an unnamed file and mapped: the parse reads it while the objects' tree is
    // freed, never a second copy on the heap.
    let store_err = |e: std::io::Error| TaxiiError::Store {
        path: path.clone(),
        reason: format!("writing the pulled store beside it: {e}"),
    };
    let mut w = crate::pull_store::StoreWriter::new(&path, limit).map_err(store_err)?;
    if let Err(e) = store.write_to(&mut w) {
        return Err(if w.over() {
            TaxiiError::TooLarge(limit)
        } else {
            store_err(e)
        });
    }
    drop(store);
    let bytes = w.finish().map_err(store_err)?;
    Ok(crate::pull_store::Pulled {
        bytes,
        requests: pages,
        received,
        skipped: 0,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newest_version_wins_and_a_revocation_replaces() {
        let mut s = Store::default();
        let v1 = json!({"id": "indicator--1", "modified": "2024-01-01T00:00:00.000Z"});
        let v2 =
            json!({"id": "indicator--1", "modified": "2024-02-01T00:00:00.000Z", "revoked": true});
        assert!(s.merge(v2.clone()));
        assert!(!s.merge(v1));
        assert_eq!(s.objects["indicator--1"], v2);
        assert!(!s.merge(json!({"no": "id"})));
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
