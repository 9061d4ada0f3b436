//! The segments already checked whole, `DATA/retro/verified`: so a reader (`trawl hunt`)
//! checksums a segment once, not at every run.
//!
//! Segments are immutable once renamed into place, so a file with the same name, length,
//! modification time, inode and stored CRC-32 as when its every byte was checked is the
//! same file: a reader then checks only its structure ([`super::segment::Check::Structure`]).
//! A change in place that keeps all of these (a disk's bit rot, a hand edit that restores
//! the time) goes unnoticed by the record; the walk of such a segment is guarded
//! ([`super::hunt`]: a read that fails sets it aside for this run and [`forget`]s it, so the
//! next open checks it whole).
//!
//! Format: a first line `trawl-retro-verified 1`, then one line per segment, `NAME LEN
//! MTIME_NS INODE CRC` (decimal, the CRC in hex). Written to a temporary file, fsynced and
//! renamed; a missing, foreign or unreadable record is an empty one (every segment is then
//! checked whole), a line that does not parse is ignored.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const HEADER: &str = "trawl-retro-verified 1";
/// The file's name in the index directory.
pub const FILE: &str = "verified";
/// The most of the record read (a line is under 100 bytes: 10k segments).
const MAX_BYTES: u64 = 1 << 20;

/// What identifies one segment file as it was when checked whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time (nanoseconds since the epoch).
    pub mtime_ns: i128,
    /// Its inode (0 where there is none).
    pub inode: u64,
    /// The CRC-32 stored at its end.
    pub crc: u32,
}

impl FileId {
    /// The identity of an open file whose stored CRC is `crc`.
    pub fn of(meta: &std::fs::Metadata, crc: u32) -> FileId {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        FileId {
            len: meta.len(),
            mtime_ns,
            inode,
            crc,
        }
    }
}

/// The record of an index directory: segment file name → its identity when checked whole.
#[derive(Debug, Default)]
pub struct Verified {
    dir: PathBuf,
    files: BTreeMap<String, FileId>,
    changed: bool,
}

impl Verified {
    /// Read the record of `dir` (empty when there is none or it cannot be read).
    pub fn load(dir: &Path) -> Verified {
        let mut v = Verified {
            dir: dir.to_path_buf(),
            ..Verified::default()
        };
        let mut text = String::new();
        let read = std::fs::File::open(dir.join(FILE))
            .and_then(|f| f.take(MAX_BYTES).read_to_string(&mut text));
        if read.is_err() {
            return v;
        }
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return v;
        }
        for line in lines {
            if let Some((name, id)) = parse_line(line) {
                v.files.insert(name.to_string(), id);
            }
        }
        v
    }

    /// Whether `name` was checked whole when it had identity `id`.
    pub fn holds(&self, name: &str, id: &FileId) -> bool {
        self.files.get(name) == Some(id)
    }

    /// Remember that `name`, with identity `id`, was checked whole.
    pub fn insert(&mut self, name: &str, id: FileId) {
        if self.files.get(name) != Some(&id) {
            self.files.insert(name.to_string(), id);
            self.changed = true;
        }
    }

    /// Forget every file but those `keep` names (segments deleted since).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.files.len();
        self.files.retain(|n, _| keep(n));
        self.changed |= self.files.len() != before;
    }

    /// Write the record if it changed ([`crate::data_files::replace_durably`]).
    /// A failure is logged and otherwise harmless (the segments are checked whole again).
    pub fn save(&mut self) {
        if !self.changed {
            return;
        }
        let mut text = format!("{HEADER}\n");
        for (name, id) in &self.files {
            text.push_str(&format!(
                "{name} {} {} {} {:08x}\n",
                id.len, id.mtime_ns, id.inode, id.crc
            ));
        }
        let path = self.dir.join(FILE);
        match crate::data_files::replace_durably(&path, text.as_bytes()) {
            Ok(()) => self.changed = false,
            Err(e) => tracing::debug!("retro index: {}: not saved: {e}", path.display()),
        }
    }
}

/// Drop `name` from the record of `dir` (a segment found damaged while read), so the next
/// open checks it whole.
pub fn forget(dir: &Path, name: &str) {
    let mut v = Verified::load(dir);
    v.retain(|n| n != name);
    v.save();
}

fn parse_line(line: &str) -> Option<(&str, FileId)> {
    let mut f = line.split(' ');
    let name = f
        .next()
        .filter(|n| n.ends_with(".seg") && !n.contains('/'))?;
    let id = FileId {
        len: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
        inode: f.next()?.parse().ok()?,
        crc: u32::from_str_radix(f.next()?, 16).ok()?,
    };
    f.next().is_none().then_some((name, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_bad_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let id = FileId {
            len: 10,
            mtime_ns: 1_700_000_000_123_456_789,
            inode: 42,
            crc: 0xdead_beef,
        };
        let mut v = Verified::load(dir.path());
        v.insert("d0-1.seg", id);
        v.insert("d86400-2.seg", FileId { len: 11, ..id });
        v.save();
        let mut text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        text.push_str("d1-3.seg 1 2\nx.seg 1 2 3 zz\n../d2-4.seg 1 2 3 4\n");
        std::fs::write(dir.path().join(FILE), text).unwrap();
        let v = Verified::load(dir.path());
        assert!(v.holds("d0-1.seg", &id));
        assert!(!v.holds("d0-1.seg", &FileId { crc: 1, ..id }));
        assert!(v.holds("d86400-2.seg", &FileId { len: 11, ..id }));
        assert_eq!(v.files.len(), 2);
        forget(dir.path(), "d0-1.seg");
        assert!(!Verified::load(dir.path()).holds("d0-1.seg", &id));
        // A foreign file is an empty record.
        std::fs::write(
            dir.path().join(FILE),
            "something else\nd0-1.seg 10 1 42 1\n",
        )
        .unwrap();
        assert!(Verified::load(dir.path()).files.is_empty());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }
}
