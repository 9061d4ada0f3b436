//! A sink's durable queue: `DATA/spool/<kind>-<N>/spool.jsonl` and its delivered position
//! `spool.pos`. The sink dispatcher appends (fsynced, whole lines or nothing) and acknowledges
//! the input once every sink's spool took the alerts; the sink's own thread delivers from the
//! position in order and moves it on, so a slow or failing sink never holds up another one.

use crate::data_files::{open_append, refusing_symlink, replace, DataFileError};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A spool file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An I/O error on one of the spool's files.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done (`appending to`, `reading`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The position or dead-letter file.
    #[error(transparent)]
    File(#[from] DataFileError),
}

/// `map_err` for an I/O error while doing `action` on `path`.
fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io {
        action,
        path,
        source,
    }
}

/// A sink's on-disk queue (shared by the dispatcher, which appends, and the sink's thread).
pub struct Spool {
    file: PathBuf,
    dead_letter: PathBuf,
    pos_path: PathBuf,
    max_bytes: u64,
    /// The delivered position; held while the files change, so appends, reads and the
    /// clean-up after delivery never interleave.
    pos: Mutex<u64>,
}

/// What became of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written and synced.
    Written,
    /// Refused: this many bytes are undelivered and the append would pass the bound.
    Full(u64),
}

/// Whole lines read from a spool, to deliver.
pub struct Batch {
    /// The lines, each ending in `\n`.
    pub lines: Vec<u8>,
    /// How many lines.
    pub count: usize,
    start: u64,
}

/// Cut an unfinished last line (a crash or a failed write in the middle of an append) from
/// the file at `path`; returns the bytes cut. A missing file has none.
pub fn cut_partial_line(path: &Path) -> Result<u64, SpoolError> {
    let mut f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("opening", path)(refusing_symlink(path, e))),
    };
    let len = f.metadata().map_err(io_error("reading", path))?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.read_exact(chunk))
            .map_err(io_error("reading", path))?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        f.set_len(end)
            .and_then(|()| f.sync_all())
            .map_err(io_error("cutting a partial line from", path))?;
    }
    Ok(len - end)
}

/// Spools under `root` that no configured sink uses (`used`) and that still hold alerts: a
/// sink removed from the config, or moved to another position, with alerts undelivered.
pub fn orphans(root: &Path, used: &[PathBuf]) -> Vec<(PathBuf, u64)> {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, u64)> = dirs
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| !used.contains(d))
        .filter_map(|d| {
            let len = std::fs::metadata(d.join("spool.jsonl")).ok()?.len();
            (len > 0).then_some((d, len))
        })
        .collect();
    found.sort();
    found
}

impl Spool {
    /// Open (create) the spool in `dir`, holding at most `max_bytes` undelivered.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let file = dir.join("spool.jsonl");
        let cut = cut_partial_line(&file)?;
        if cut > 0 {
            tracing::warn!(
                "spool {}: cut {cut} bytes of a partial line (its input was not acknowledged)",
                file.display()
            );
        }
        let pos_path = dir.join("spool.pos");
        let pos = std::fs::read_to_string(&pos_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Ok(Spool {
            file,
            dead_letter: dir.join("rejected.jsonl"),
            pos_path,
            max_bytes,
            pos: Mutex::new(pos),
        })
    }

    fn len(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    /// Bytes spooled and not yet delivered.
    pub fn pending_bytes(&self) -> u64 {
        let pos = super::metrics::lock(&self.pos);
        self.len().saturating_sub(*pos)
    }

    /// Append alert lines durably (fsynced). All or nothing: a failed write (disk full) is
    /// cut back, so the spool never holds half a line nor, after a retry, a line twice.
    /// Refused when the undelivered part would exceed the bound (an empty spool takes any one
    /// append whole, so a batch bigger than the bound cannot wedge the sink).
    pub fn append(&self, lines: &[u8]) -> Result<Appended, SpoolError> {
        if lines.is_empty() {
            return Ok(Appended::Written);
        }
        let pos = super::metrics::lock(&self.pos);
        let before = self.len();
        let pending = before.saturating_sub(*pos);
        if pending > 0 && pending + lines.len() as u64 > self.max_bytes {
            return Ok(Appended::Full(pending));
        }
        let mut f = open_append(&self.file)?;
        if let Err(e) = f.write_all(lines).and_then(|()| f.sync_data()) {
            let undo = f.set_len(before).and_then(|()| f.sync_data());
            if let Err(u) = undo {
                tracing::error!(
                    "spool {}: cutting a failed append: {u} (cut again at the next start)",
                    self.file.display()
                );
            }
            return Err(io_error("appending to", &self.file)(e));
        }
        Ok(Appended::Written)
    }

    /// The bound on undelivered bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The next whole lines to deliver from the position: at most `max_lines` lines and about
    /// `max_bytes` bytes (one line more than that is not split). `None` when all is delivered.
    pub fn next_batch(
        &self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>, SpoolError> {
        let pos = super::metrics::lock(&self.pos);
        let file = match File::open(&self.file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("reading", &self.file)(e)),
        };
        let mut reader = BufReader::new(file);
        reader
            .seek(SeekFrom::Start(*pos))
            .map_err(io_error("reading", &self.file))?;
        let mut batch = Batch {
            lines: Vec::new(),
            count: 0,
            start: *pos,
        };
        while batch.count < max_lines.max(1) && batch.lines.len() < max_bytes {
            let before = batch.lines.len();
            let n = reader
                .read_until(b'\n', &mut batch.lines)
                .map_err(io_error("reading", &self.file))?;
            if n == 0 || batch.lines.last() != Some(&b'\n') {
                batch.lines.truncate(before);
                break;
            }
            batch.count += 1;
        }
        Ok((batch.count > 0).then_some(batch))
    }

    /// The first `bytes` of `batch` (whole lines) were delivered: move the position on. A
    /// spool delivered to its end starts over empty; one whose delivered head reaches half the
    /// bound is compacted, so the file stays within the bound too.
    pub fn consume(&self, batch: &Batch, bytes: usize) -> Result<(), SpoolError> {
        let mut pos = super::metrics::lock(&self.pos);
        let new = batch.start + bytes as u64;
        let len = self.len();
        if new >= len {
            // The position goes first: a crash in between re-sends, never skips.
            std::fs::remove_file(&self.pos_path).ok();
            std::fs::remove_file(&self.file).ok();
            *pos = 0;
            return Ok(());
        }
        if new >= self.max_bytes / 2 {
            self.compact(new)?;
            *pos = 0;
            return Ok(());
        }
        replace(&self.pos_path, new.to_string().as_bytes())?;
        *pos = new;
        Ok(())
    }

    /// Keep alert lines the destination refused for good in `rejected.jsonl` beside the
    /// spool (fsynced); returns its path.
    pub fn reject(&self, lines: &[u8]) -> Result<&Path, SpoolError> {
        let mut f = open_append(&self.dead_letter)?;
        f.write_all(lines)
            .and_then(|()| f.sync_data())
            .map_err(io_error("appending to", &self.dead_letter))?;
        Ok(&self.dead_letter)
    }

    /// Drop the delivered head (`pos` bytes) of a spool that never drains completely.
    fn compact(&self, pos: u64) -> Result<(), SpoolError> {
        let failed = || io_error("compacting", &self.file);
        let mut src = File::open(&self.file).map_err(failed())?;
        src.seek(SeekFrom::Start(pos)).map_err(failed())?;
        let mut tmp = self.file.clone();
        tmp.as_mut_os_string().push(".tmp");
        {
            let mut dst = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| failed()(refusing_symlink(&tmp, e)))?;
            std::io::copy(&mut src, &mut dst)
                .and_then(|_| dst.sync_all())
                .map_err(failed())?;
        }
        // Position 0 first: a crash before the rename re-sends the head, never skips.
        replace(&self.pos_path, b"0")?;
        std::fs::rename(&tmp, &self.file).map_err(failed())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_in_order_resumes_after_partial_delivery_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 40).unwrap();
        spool.append(b"a1\na2\na3\n").unwrap();
        let b = spool.next_batch(2, 1000).unwrap().unwrap();
        assert_eq!((b.lines.as_slice(), b.count), (&b"a1\na2\n"[..], 2));
        spool.consume(&b, 3).unwrap(); // only a1 taken
        let b = spool.next_batch(10, 1000).unwrap().unwrap();
        assert_eq!(b.lines, b"a2\na3\n");
        spool.consume(&b, b.lines.len()).unwrap();
        assert!(spool.next_batch(10, 1000).unwrap().is_none());
        assert!(
            !dir.path().join("spool.jsonl").exists(),
            "starts over empty"
        );
        // Bounded: a non-empty spool refuses what would exceed it.
        assert_eq!(spool.append(&[b'x'; 30]).unwrap(), Appended::Written);
        spool.append(b"\n").unwrap();
        assert_eq!(spool.append(&[b'y'; 20]).unwrap(), Appended::Full(31));
        // A partial line (crash mid-append) is cut when the spool is opened again.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("spool.jsonl"))
            .unwrap()
            .write_all(b"half")
            .unwrap();
        let spool = Spool::open(dir.path(), 40).unwrap();
        assert_eq!(spool.pending_bytes(), 31);
    }

    #[test]
    fn spools_no_sink_uses_any_more_are_found_when_they_hold_alerts() {
        let root = tempfile::tempdir().unwrap();
        for (name, text) in [("jsonl-0", "a\n"), ("http-1", "b\n"), ("syslog-2", "")] {
            let spool = Spool::open(&root.path().join(name), 1000).unwrap();
            spool.append(text.as_bytes()).unwrap();
        }
        let used = [root.path().join("jsonl-0")];
        assert_eq!(
            orphans(root.path(), &used),
            [(root.path().join("http-1"), 2)]
        );
    }
}
