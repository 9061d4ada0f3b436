//! The per-feed stores of pulled feeds (TAXII collections, MISP feeds) in the data directory:
//! `DATA/feeds/<kind>/<feed>-<hash>.json`, what earlier pulls brought, written atomically once
//! an update accepts them (ARCHITECTURE.md §2.5).

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
    /// The merged store, in a format the feed's parser reads.
    pub bytes: Vec<u8>,
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
