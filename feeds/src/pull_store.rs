//! The per-feed stores of pulled feeds (TAXII collections, MISP feeds) in the data directory:
//! `DATA/feeds/<kind>/<feed>-<hash>.json`, what earlier pulls brought, written atomically once
//! an update accepts them (ARCHITECTURE.md §2.5).
//!
//! A store is a JSON envelope the feed's parser reads, its items (STIX objects, MISP
//! events) in increasing id order. A pull walks the old store an item at a time beside
//! what it brought, sorted by id the same way, and writes the merged store in one pass to a
//! temporary file beside it: the heap holds an item (and the pull's sort buffer), never the
//! store.

use crate::fetch::Body;
use crate::parse::json_items::{walk, walk_reader, Visit};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The store file of `feed` under `kind`: the feed's name made safe for a file name, plus a
/// hash of the name so that two names that sanitise alike do not share one.
pub fn path(data_dir: &Path, kind: &str, feed: &str) -> PathBuf {
    let safe: String = feed
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = feed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    data_dir
        .join("feeds")
        .join(kind)
        .join(format!("{safe}-{:08x}.json", hash as u32))
}

/// A pull's result: the store with what the pull brought merged in, what the feed's parse
/// reads; saved only when the update accepts it ([`Pulled::save`]), so a failed update
/// pulls the same again next time.
#[derive(Debug)]
pub struct Pulled {
    /// The merged store, in a format the feed's parser reads: the new store file beside the
    /// old one (written by a [`StoreWriter`]), mapped, so it is not on the heap.
    pub bytes: Body,
    /// HTTP requests made.
    pub requests: usize,
    /// Objects they brought (new or changed).
    pub received: usize,
    /// Entries the pull could not use (a MISP manifest key that is not a uuid).
    pub skipped: usize,
    /// Where the store is kept.
    pub path: PathBuf,
    /// The new store's temporary file, until [`Pulled::save`] renames it into place.
    temp: Option<tempfile::NamedTempFile>,
}

impl Pulled {
    /// The pull's result, `temp` being the new store [`StoreWriter::finish`] gave.
    pub(crate) fn new(
        (bytes, temp): (Body, tempfile::NamedTempFile),
        requests: usize,
        received: usize,
        skipped: usize,
        path: PathBuf,
    ) -> Pulled {
        Pulled {
            bytes,
            requests,
            received,
            skipped,
            path,
            temp: Some(temp),
        }
    }

    /// Make this pull's store the next one's, crash-safely: the new store's file is
    /// fsynced, renamed over the old one and the directory fsynced, so after a crash the
    /// store is the old one or the new one, whole. A second call does nothing.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        temp.as_file().sync_all()?;
        temp.persist(&self.path).map_err(|e| e.error)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// A store or a TAXII page (`{"objects": [...], ...}`), walked: each element of its
/// `items` array is handed to `f` as it is read and dropped before the next, so the heap
/// holds one item at a time; the other top-level members are kept in `meta`.
struct Envelope<'a, 'f> {
    items: &'a str,
    f: &'f mut dyn FnMut(Value),
    depth: usize,
    /// The document is an array or a scalar, not an object.
    not_object: bool,
    meta: Map<String, Value>,
}

impl Visit for Envelope<'_, '_> {
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool {
        let walk = match self.depth {
            0 => {
                // A top-level array is walked too (its elements dropped one at a time).
                self.not_object = array;
                true
            }
            1 => array && !self.not_object && key == Some(self.items),
            _ => false,
        };
        self.depth += usize::from(walk);
        walk
    }

    fn value(&mut self, key: Option<&str>, v: Value) {
        match (self.depth, key) {
            (0, _) => self.not_object = true,
            (1, Some(k)) if !self.not_object => {
                self.meta.insert(k.to_string(), v);
            }
            (2, _) => (self.f)(v),
            _ => {}
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// Walk the envelope `read` gives ([`Envelope`]): `f` gets each item of its `items` array;
/// returns the other top-level members. A document that is not a JSON object, or not JSON,
/// is the error (after `f` saw the items before the damage: walk twice to act only on a
/// whole document).
fn walk_envelope(
    read: impl FnOnce(&mut dyn Visit) -> Result<(), serde_json::Error>,
    items: &str,
    f: &mut dyn FnMut(Value),
) -> Result<Map<String, Value>, String> {
    let mut env = Envelope {
        items,
        f,
        depth: 0,
        not_object: false,
        meta: Map::new(),
    };
    read(&mut env).map_err(|e| e.to_string())?;
    if env.not_object {
        return Err("the document is not a JSON object".into());
    }
    match env.meta.remove(items) {
        None | Some(Value::Null) => Ok(env.meta),
        Some(_) => Err(format!("`{items}` is not an array")),
    }
}

/// Walk a TAXII page (or any JSON envelope) in memory: `f` gets each element of its `items`
/// array as it is read; returns the other top-level members. A document that is not a JSON
/// object, not JSON, or whose `items` is not an array is the error (after `f` saw the items
/// before the damage).
pub fn walk_page(
    bytes: &[u8],
    items: &str,
    f: &mut dyn FnMut(Value),
) -> Result<Map<String, Value>, String> {
    walk_envelope(|v| walk(bytes, v), items, f)
}

/// [`walk_envelope`] of the store at `path`, read a buffer at a time, or `None` when there
/// is none yet; larger than `limit` bytes is an error.
pub(crate) fn walk_store(
    path: &Path,
    limit: u64,
    items: &str,
    f: &mut dyn FnMut(Value),
) -> Result<Option<Map<String, Value>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > limit {
        return Err(format!(
            "{len} bytes, larger than the feed's max_bytes = {limit} (raise it, or delete the \
             file to pull afresh)"
        ));
    }
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    walk_envelope(|v| walk_reader(reader, v), items, f)
        .map(Some)
        .map_err(|e| format!("{e} (delete the file to pull afresh)"))
}

/// Whether a store's items come in strictly increasing key order, which the one-pass merge
/// of a pull needs (every store trawl writes does; one that does not is pulled afresh).
#[derive(Debug, Default)]
pub(crate) struct Ascending {
    last: Option<String>,
    /// A key came not after the one before it.
    pub(crate) broken: bool,
}

impl Ascending {
    /// Note the next item's key; false (and broken) when it is not after the last one.
    pub(crate) fn next(&mut self, key: &str) -> bool {
        let after = self.last.as_deref().is_none_or(|l| l < key);
        if after {
            let last = self.last.get_or_insert_with(String::new);
            last.clear();
            last.push_str(key);
        } else {
            self.broken = true;
        }
        after
    }

    /// Whether every key of the store at `path` came in order; if not, says (a warning) that
    /// feed `feed` is pulled afresh.
    pub(crate) fn whole(&self, feed: &str, path: &Path) -> bool {
        if self.broken {
            tracing::warn!(
                feed = %feed,
                "{}: items not in id order (not written by this trawl?): pulled afresh",
                path.display()
            );
        }
        !self.broken
    }
}

/// A new store being written, a piece at a time, into its own temporary file beside the
/// store (`.<store name>.<random>.tmp`); more than `limit` bytes fails ([`StoreWriter::over`]
/// says so).
pub(crate) struct StoreWriter {
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    len: u64,
    limit: u64,
    over: bool,
}

/// A temporary store file left by a crash is removed by a later pull once it is this old
/// (a pull's own lives from the end of its pages to the end of its update).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl StoreWriter {
    /// A writer for the store at `path`, bounded by `limit` bytes.
    pub(crate) fn new(path: &Path, limit: u64) -> std::io::Result<StoreWriter> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let prefix = format!(
            ".{}.",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        remove_stale(dir, &prefix);
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(StoreWriter {
            out: std::io::BufWriter::with_capacity(1 << 16, temp),
            len: 0,
            limit,
            over: false,
        })
    }

    /// Whether a write failed for passing the limit.
    pub(crate) fn over(&self) -> bool {
        self.over
    }

    /// The written store, mapped, and its file (for [`Pulled::new`]).
    pub(crate) fn finish(self) -> std::io::Result<(Body, tempfile::NamedTempFile)> {
        let temp = self.out.into_inner().map_err(|e| e.into_error())?;
        let bytes = Body::map_unnamed(temp.as_file())?;
        Ok((bytes, temp))
    }
}

/// Remove the temporary store files (`prefix…tmp`) in `dir` that crashed pulls left.
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Write for StoreWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len() as u64;
        if self.len > self.limit {
            self.over = true;
            return Err(std::io::Error::other("larger than the feed's max_bytes"));
        }
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes the items of a store's array, a comma between two.
pub(crate) struct Commas {
    first: bool,
}

impl Commas {
    /// Before the first item.
    pub(crate) fn new() -> Commas {
        Commas { first: true }
    }

    /// Separate the next item from the one before it.
    pub(crate) fn next(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        if !std::mem::take(&mut self.first) {
            w.write_all(b",")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crashed_pull_s_temporary_store_is_removed_a_day_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("f-1.json");
        let old = dir.path().join(".f-1.json.abc.tmp");
        let recent = dir.path().join(".f-1.json.def.tmp");
        let other = dir.path().join(".g-2.json.abc.tmp");
        for p in [&old, &recent, &other] {
            std::fs::write(p, b"{").unwrap();
        }
        let two_days = std::time::SystemTime::now() - 2 * STALE_TEMP;
        for p in [&old, &other] {
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(two_days).unwrap();
        }
        let mut w = StoreWriter::new(&store, 10).unwrap();
        assert!(!old.exists(), "stale: removed");
        assert!(recent.exists(), "maybe a running pull's: kept");
        assert!(other.exists(), "another store's: not this pull's to judge");
        // Past the limit, a write fails and says so.
        assert!(w.write_all(b"0123456789ab").is_err());
        assert!(w.over());
    }

    #[test]
    fn ids_must_ascend() {
        let mut a = Ascending::default();
        assert!(a.next("b") && a.next("c"));
        assert!(!a.next("c"));
        assert!(!a.next("a"));
        assert!(a.broken);
    }

    #[test]
    fn paths_are_safe_and_distinct() {
        let d = Path::new("/d");
        let a = path(d, "taxii", "a/b");
        let b = path(d, "taxii", "a_b");
        assert_ne!(a, b);
        assert!(a.starts_with("/d/feeds/taxii"));
        assert!(!a.file_name().unwrap().to_str().unwrap().contains('/'));
    }
}
