//! The checkpoint file: committed read positions per file fingerprint, written atomically
//! (temp file, fsync, rename, fsync of the directory) so a crash leaves either the old or the
//! new version, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Fingerprint, TailError};

/// Format version written in the file; a different version is rejected rather than misread.
const VERSION: u32 = 1;

/// One file's committed position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Number of leading bytes the fingerprint covers.
    pub fp_len: u32,
    /// xxh3-64 of those bytes, as 16 hex digits.
    pub fp: String,
    /// Byte offset just past the last acknowledged line.
    pub offset: u64,
    /// The path the file had when last seen (informational only; identity is the fingerprint).
    pub path: PathBuf,
    /// Unix seconds when the file was last seen by a scan (for pruning).
    pub seen: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Doc {
    version: u32,
    files: Vec<Entry>,
}

impl Entry {
    /// The fingerprint this entry is keyed by, or `None` if the hex is malformed.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let hash = u64::from_str_radix(&self.fp, 16).ok()?;
        Some(Fingerprint {
            len: self.fp_len,
            hash,
        })
    }
}

/// Loads the checkpoint; a missing file is an empty checkpoint.
pub(crate) fn load(path: &Path) -> Result<Vec<Entry>, TailError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TailError::CheckpointIo {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let doc: Doc = serde_json::from_slice(&text).map_err(|e| TailError::CheckpointFormat {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if doc.version != VERSION {
        return Err(TailError::CheckpointFormat {
            path: path.to_path_buf(),
            reason: format!("version {} (this build reads {VERSION})", doc.version),
        });
    }
    for e in &doc.files {
        if e.fingerprint().is_none() || e.fp_len == 0 {
            return Err(TailError::CheckpointFormat {
                path: path.to_path_buf(),
                reason: format!("bad fingerprint {:?}/{}", e.fp, e.fp_len),
            });
        }
    }
    Ok(doc.files)
}

/// Writes the checkpoint atomically: `<path>.tmp`, fsync, rename over `path`, fsync the directory.
pub(crate) fn store(path: &Path, files: Vec<Entry>) -> Result<(), TailError> {
    let io_err = |source| TailError::CheckpointIo {
        path: path.to_path_buf(),
        source,
    };
    let doc = Doc {
        version: VERSION,
        files,
    };
    let mut bytes = serde_json::to_vec(&doc).map_err(|e| io_err(io::Error::other(e)))?;
    bytes.push(b'\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        // A fresh temp file, never a symlink's target: whatever is at the temp name (a stale
        // temp file, a planted link) is removed, and O_EXCL | O_NOFOLLOW refuse a new one.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io_err)?;
        f.write_all(&bytes).map_err(io_err)?;
        f.sync_data().map_err(io_err)?;
    }
    fs::rename(&tmp, path).map_err(io_err)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.json");
        assert!(load(&p).unwrap().is_empty());
        let e = Entry {
            fp_len: 256,
            fp: format!("{:016x}", 0xdead_beef_u64),
            offset: 42,
            path: PathBuf::from("/x/y.log"),
            seen: 7,
        };
        store(&p, vec![e.clone()]).unwrap();
        assert_eq!(load(&p).unwrap(), vec![e]);
        fs::write(&p, b"{\"version\":1,\"files\":[{\"fp_len\":3,").unwrap();
        assert!(matches!(load(&p), Err(TailError::CheckpointFormat { .. })));
        fs::write(&p, b"{\"version\":9,\"files\":[]}").unwrap();
        assert!(matches!(load(&p), Err(TailError::CheckpointFormat { .. })));
        fs::write(&p, b"{\"version\":1,\"files\":[{\"fp_len\":3,\"fp\":\"zz\",\"offset\":1,\"path\":\"a\",\"seen\":0}]}").unwrap();
        assert!(matches!(load(&p), Err(TailError::CheckpointFormat { .. })));
    }
}
