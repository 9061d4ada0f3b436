//! The per-feed stores of pulled feeds (TAXII collections, MISP feeds) in the data directory:
//! `DATA/feeds/<kind>/<feed>-<hash>.json`, what earlier pulls brought, written atomically once
//! an update accepts them (ARCHITECTURE.md §2.5).

use crate::fetch::Body;
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
    /// The merged store, in a format the feed's parser reads: an unnamed file beside the
    /// store, mapped (written by a [`StoreWriter`]), so it is not on the heap a second time.
    pub bytes: Body,
    /// HTTP requests made.
    pub requests: usize,
    /// Objects they brought (new or changed).
    pub received: usize,
    /// Entries the pull could not use (a MISP manifest key that is not a uuid).
    pub skipped: usize,
    /// Where the store is kept.
    pub path: PathBuf,
}

impl Pulled {
    /// Write the store back, making this pull's state the next one's.
    pub fn save(&self) -> std::io::Result<()> {
        save(&self.path, &self.bytes)
    }
}

/// The store document at `path`, parsed straight from the file (not read into memory
/// first), or `None` when there is none yet; larger than `limit` bytes is an error.
pub(crate) fn read_doc(path: &Path, limit: u64) -> Result<Option<serde_json::Value>, String> {
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
    serde_json::from_reader(std::io::BufReader::new(file))
        .map(Some)
        .map_err(|e| format!("{e} (delete the file to pull afresh)"))
}

/// A store document being written, a piece at a time, into an unnamed file in the store's
/// directory; more than `limit` bytes fails ([`StoreWriter::over`] says so).
pub(crate) struct StoreWriter {
    out: std::io::BufWriter<std::fs::File>,
    len: u64,
    limit: u64,
    over: bool,
}

impl StoreWriter {
    /// A writer for the store at `path`, bounded by `limit` bytes.
    pub(crate) fn new(path: &Path, limit: u64) -> std::io::Result<StoreWriter> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        Ok(StoreWriter {
            out: std::io::BufWriter::new(tempfile::tempfile_in(dir)?),
            len: 0,
            limit,
            over: false,
        })
    }

    /// Whether a write failed for passing the limit.
    pub(crate) fn over(&self) -> bool {
        self.over
    }

    /// The written document, mapped.
    pub(crate) fn finish(self) -> std::io::Result<Body> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Body::map_unnamed(&file)
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

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
