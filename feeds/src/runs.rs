//! Sorted runs of compact indicator records ([`record`]), spilled to disk over a memory
//! budget and merged back in `(itype, value)` order (ARCHITECTURE.md §2.1): how
//! `trawl update` sorts and merges millions of indicators without holding an
//! [`Indicator`] per entry.
//!
//! A [`Sorter`] takes records in push order; when its buffer passes the budget it sorts
//! them (stably) into a run in an unnamed temporary file of `DATA/tmp` (gone when closed,
//! even after a crash). [`Runs`] are the finished pieces; [`Runs::merge`] walks several of
//! them at once, folding equal keys with [`Indicator::merge`] in push order (earlier runs
//! first), which is exactly what sorting everything stably in memory and merging
//! neighbours gives.

pub mod record;

use matcher::Indicator;
use rayon::slice::ParallelSliceMut;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why a run could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Creating, writing or reading a temporary run file.
    #[error("{path}: {source} (sorting indicators on disk; is the data directory full?)")]
    Io {
        /// The directory of the run files.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record read back does not decode (the temporary file was damaged).
    #[error("{path}: a damaged record in a temporary run file")]
    Damaged {
        /// The directory of the run files.
        path: PathBuf,
    },
}

/// Bytes of bookkeeping per buffered record ([`Slot`]), counted against the budget.
const PER_RECORD: usize = std::mem::size_of::<Slot>();
/// Read buffer of each run file: a merge may read from many at once.
const READ_BUFFER: usize = 128 << 10;
/// Longest record read back from a run (a value plus its metadata; far above any real one).
const MAX_RECORD: usize = 1 << 26;

/// Collects records and sorts them, spilling sorted runs to `dir` over `budget` bytes.
pub struct Sorter {
    budget: usize,
    /// `None`: never spill (tests, benchmarks, small inputs).
    dir: Option<PathBuf>,
    buf: Vec<u8>,
    /// One slot per record of `buf`, in push order.
    recs: Vec<Slot>,
    runs: Vec<Source>,
    /// Records come in key order ([`Sorter::presorted`]): kept in push order, unsorted, and
    /// past the budget appended to `run`, one file.
    presorted: bool,
    /// The last record's key while presorted (type byte ‖ key bytes).
    last: Vec<u8>,
    /// The one run file of a presorted sorter, being written.
    run: Option<BufWriter<File>>,
}

/// Where a buffered record is, and the first bytes of its sort key to compare first.
#[derive(Clone, Copy)]
struct Slot {
    /// The key's first 8 bytes (type byte, then value), big-endian, zero-padded: two
    /// prefixes that differ order as their whole keys do; equal ones need the whole keys.
    prefix: u64,
    start: u32,
    len: u32,
}

impl Slot {
    fn new(buf: &[u8], start: usize) -> Slot {
        let rec = &buf[start..];
        let mut p = [0u8; 8];
        if let Some((t, v)) = record::key(rec) {
            p[0] = t;
            let n = v.len().min(7);
            p[1..=n].copy_from_slice(&v[..n]);
        }
        Slot {
            prefix: u64::from_be_bytes(p),
            start: start as u32,
            len: rec.len() as u32,
        }
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

impl Sorter {
    /// A sorter that keeps at most about `budget` bytes before spilling a run into `dir`
    /// (created when first needed), or never spills when `dir` is `None`.
    pub fn new(budget: usize, dir: Option<&Path>) -> Self {
        Sorter {
            // Offsets are 32-bit: a buffer never grows past 2 GiB.
            budget: budget.clamp(1, 1 << 31),
            dir: dir.map(Path::to_path_buf),
            buf: Vec::new(),
            recs: Vec::new(),
            runs: Vec::new(),
            presorted: false,
            last: Vec::new(),
            run: None,
        }
    }

    /// A sorter for records pushed already in key order (a previous snapshot's entries,
    /// scanned in its id order, which is the records' order): they are never sorted, and
    /// past the budget they are appended to one run file, so they stay one run that the
    /// merge reads straight through. A record pushed out of order is no error: the records
    /// before it stay that one run and the rest is sorted as [`Sorter::new`] sorts.
    pub fn presorted(budget: usize, dir: Option<&Path>) -> Self {
        Sorter {
            presorted: true,
            ..Sorter::new(budget, dir)
        }
    }

    /// Add one indicator.
    pub fn push(&mut self, ind: &Indicator) -> Result<(), RunError> {
        let start = self.buf.len();
        record::encode(ind, &mut self.buf);
        self.pushed(start)
    }

    /// Add one record encoded elsewhere: it starts with its sort key as [`record::key`]
    /// reads it (e.g. [`record::encode_prev`]'s); read back with [`Merged::next_record`].
    pub fn push_record(&mut self, rec: &[u8]) -> Result<(), RunError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(rec);
        self.pushed(start)
    }

    /// Index the record appended at `start`; spill over the budget.
    fn pushed(&mut self, start: usize) -> Result<(), RunError> {
        if self.presorted {
            self.check_order(start)?;
        }
        self.recs.push(Slot::new(&self.buf, start));
        if self.dir.is_some()
            && (self.buf.len() + self.recs.len() * PER_RECORD >= self.budget
                || self.buf.len() >= (1 << 31) - MAX_RECORD)
        {
            self.spill()?;
        }
        Ok(())
    }

    /// Bytes held in memory now.
    pub fn mem_bytes(&self) -> usize {
        self.buf.len() + self.recs.len() * PER_RECORD
    }

    fn sort(&mut self) {
        let buf = &self.buf;
        let key = |r: &Slot| record::key(&buf[r.range()]);
        // Equal keys keep their push order (the order of their starts), which the merge
        // folds in: the result of a stable sort, at an unstable sort's cost.
        self.recs.par_sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| key(a).cmp(&key(b)))
                .then(a.start.cmp(&b.start))
        });
    }

    /// While presorted: keep the key of the record appended at `start` if it is in order;
    /// if not, end the presorted run (the records before it) and sort from here on.
    fn check_order(&mut self, start: usize) -> Result<(), RunError> {
        let Some((t, v)) = record::key(&self.buf[start..]) else {
            return Ok(());
        };
        let in_order = match self.last.split_first() {
            Some((lt, lv)) => (*lt, lv) <= (t, v),
            None => true,
        };
        if in_order {
            self.last.clear();
            self.last.push(t);
            self.last.extend_from_slice(v);
            return Ok(());
        }
        self.presorted = false;
        self.last = Vec::new();
        if let Some(w) = self.run.take() {
            let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
            self.runs.push(Source::finish_file(w, &dir)?);
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), RunError> {
        if self.recs.is_empty() {
            return Ok(());
        }
        if self.presorted {
            // Append to the one run, in push order (which is key order).
            let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
            let w = match &mut self.run {
                Some(w) => w,
                None => self.run.insert(Source::create_file(&dir)?),
            };
            Source::write_recs(w, &self.buf, &self.recs, &dir)?;
            self.buf.clear();
            self.recs.clear();
            return Ok(());
        }
        self.sort();
        let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        let mem = Source::Mem {
            buf: std::mem::take(&mut self.buf),
            recs: std::mem::take(&mut self.recs),
            next: 0,
        };
        self.runs.push(mem.into_file(&dir)?);
        Ok(())
    }

    /// The sorted runs: one in memory when nothing was spilled, else the files on disk.
    pub fn finish(mut self) -> Result<Runs, RunError> {
        if self.presorted && self.run.is_none() {
            // In memory, already in order.
            return Ok(Runs {
                sources: vec![Source::Mem {
                    buf: self.buf,
                    recs: self.recs,
                    next: 0,
                }],
            });
        }
        if self.presorted {
            self.spill()?;
            let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
            if let Some(w) = self.run.take() {
                return Ok(Runs {
                    sources: vec![Source::finish_file(w, &dir)?],
                });
            }
        }
        if self.runs.is_empty() {
            self.sort();
            return Ok(Runs {
                sources: vec![Source::Mem {
                    buf: self.buf,
                    recs: self.recs,
                    next: 0,
                }],
            });
        }
        self.spill()?;
        Ok(Runs { sources: self.runs })
    }
}

/// One sorted run.
enum Source {
    Mem {
        buf: Vec<u8>,
        recs: Vec<Slot>,
        next: usize,
    },
    File {
        reader: BufReader<File>,
        dir: PathBuf,
    },
}

impl Source {
    /// Write a run held in memory to an unnamed file in `dir`, ready to be read from its start.
    fn into_file(self, dir: &Path) -> Result<Source, RunError> {
        let Source::Mem { buf, recs, next } = self else {
            return Ok(self);
        };
        let mut w = Source::create_file(dir)?;
        Source::write_recs(&mut w, &buf, recs.get(next..).unwrap_or_default(), dir)?;
        Source::finish_file(w, dir)
    }

    /// A new unnamed run file in `dir` (created when missing).
    fn create_file(dir: &Path) -> Result<BufWriter<File>, RunError> {
        let io = |source| RunError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = tempfile::tempfile_in(dir).map_err(io)?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    }

    /// Append the records `recs` of `buf` to a run file, each after its length.
    fn write_recs(
        w: &mut BufWriter<File>,
        buf: &[u8],
        recs: &[Slot],
        dir: &Path,
    ) -> Result<(), RunError> {
        let io = |source| RunError::Io {
            path: dir.to_path_buf(),
            source,
        };
        for r in recs {
            w.write_all(&r.len.to_le_bytes()).map_err(io)?;
            w.write_all(&buf[r.range()]).map_err(io)?;
        }
        Ok(())
    }

    /// A written run file, ready to be read from its start.
    fn finish_file(w: BufWriter<File>, dir: &Path) -> Result<Source, RunError> {
        let io = |source| RunError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.rewind().map_err(io)?;
        Ok(Source::File {
            reader: BufReader::with_capacity(READ_BUFFER, file),
            dir: dir.to_path_buf(),
        })
    }

    fn mem_bytes(&self) -> usize {
        match self {
            Source::Mem { buf, recs, .. } => buf.len() + recs.len() * PER_RECORD,
            Source::File { .. } => 0,
        }
    }

    /// The next record into `out`; false at the end.
    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool, RunError> {
        out.clear();
        match self {
            Source::Mem { buf, recs, next } => {
                let Some(r) = recs.get(*next) else {
                    return Ok(false);
                };
                *next += 1;
                out.extend_from_slice(&buf[r.range()]);
                Ok(true)
            }
            Source::File { reader, dir } => {
                let io = |source| RunError::Io {
                    path: dir.clone(),
                    source,
                };
                let mut len = [0u8; 4];
                match reader.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(io(e)),
                }
                let len = u32::from_le_bytes(len) as usize;
                if len > MAX_RECORD {
                    return Err(RunError::Damaged { path: dir.clone() });
                }
                out.resize(len, 0);
                reader.read_exact(out).map_err(io)?;
                Ok(true)
            }
        }
    }
}

/// Finished sorted runs (of one sorter, or several joined in order).
#[derive(Default)]
pub struct Runs {
    sources: Vec<Source>,
}

impl Runs {
    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> usize {
        self.sources.iter().map(Source::mem_bytes).sum()
    }

    /// Move every run held in memory to an unnamed file in `dir`.
    pub fn spill_to(self, dir: &Path) -> Result<Runs, RunError> {
        let sources = self
            .sources
            .into_iter()
            .map(|s| s.into_file(dir))
            .collect::<Result<_, _>>()?;
        Ok(Runs { sources })
    }

    /// `self`'s runs followed by `later`'s: equal keys fold `self`'s first.
    pub fn then(mut self, later: Runs) -> Runs {
        self.sources.extend(later.sources);
        self
    }

    /// Every record in key order, equal keys folded into one indicator.
    pub fn merge(self) -> Merged {
        self.merge_where(None)
    }

    /// [`Runs::merge`] of only the keys one of whose records passes `only` (tested on the
    /// raw record, e.g. [`record::is_allowlist`]); the others are skipped undecoded.
    pub fn merge_where(self, only: Option<fn(&[u8]) -> bool>) -> Merged {
        let n = self.sources.len();
        Merged {
            sources: self.sources,
            heads: vec![Vec::new(); n],
            heap: BinaryHeap::with_capacity(n),
            spare: Vec::new(),
            started: false,
            only,
            group: Vec::new(),
        }
    }
}

/// The merged walk of [`Runs::merge`]: each item is one indicator and how many records
/// were folded into it beyond the first.
pub struct Merged {
    sources: Vec<Source>,
    /// The current record of each run.
    heads: Vec<Vec<u8>>,
    /// (type byte ‖ value of a run's head, the run): the smallest first, then the earliest
    /// run. The bytes compare as the (type, value) pair does, the type being one byte.
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    /// Key buffers to reuse.
    spare: Vec<Vec<u8>>,
    started: bool,
    only: Option<fn(&[u8]) -> bool>,
    /// The records of one key, while [`Merged::only`] decides on it.
    group: Vec<Vec<u8>>,
}

impl Merged {
    /// The runs again, each back at its start, for another walk.
    pub fn rewind(self) -> Result<Runs, RunError> {
        let mut sources = self.sources;
        for s in &mut sources {
            match s {
                Source::Mem { next, .. } => *next = 0,
                Source::File { reader, dir } => reader.rewind().map_err(|source| RunError::Io {
                    path: dir.clone(),
                    source,
                })?,
            }
        }
        Ok(Runs { sources })
    }

    fn damaged(&self, k: usize) -> RunError {
        let path = match &self.sources[k] {
            Source::File { dir, .. } => dir.clone(),
            Source::Mem { .. } => PathBuf::from("<memory>"),
        };
        RunError::Damaged { path }
    }

    /// Read run `k`'s next record and queue its key.
    fn advance(&mut self, k: usize) -> Result<(), RunError> {
        if !self.sources[k].next_into(&mut self.heads[k])? {
            return Ok(());
        }
        let Some((t, v)) = record::key(&self.heads[k]) else {
            return Err(self.damaged(k));
        };
        let mut key = self.spare.pop().unwrap_or_default();
        key.clear();
        key.push(t);
        key.extend_from_slice(v);
        self.heap.push(Reverse((key, k)));
        Ok(())
    }

    /// Take the smallest head: its run, with its key in `key`; the run moves on.
    fn take(&mut self, key: &mut Vec<u8>) -> Result<Option<usize>, RunError> {
        let Some(Reverse((k_key, k))) = self.heap.pop() else {
            return Ok(None);
        };
        let old = std::mem::replace(key, k_key);
        self.recycle(old);
        Ok(Some(k))
    }

    /// Keep a key buffer for reuse: at most one per run (more would only pile up).
    fn recycle(&mut self, key: Vec<u8>) {
        if key.capacity() > 0 && self.spare.len() <= self.heads.len() {
            self.spare.push(key);
        }
    }

    /// Whether the smallest head has this key.
    fn next_is(&self, key: &[u8]) -> bool {
        self.heap
            .peek()
            .is_some_and(|Reverse((k_key, _))| k_key.as_slice() == key)
    }

    fn start(&mut self) -> Result<(), RunError> {
        if !self.started {
            self.started = true;
            for k in 0..self.sources.len() {
                self.advance(k)?;
            }
        }
        Ok(())
    }

    /// The next record itself into `out`, in key order, equal keys not folded (runs of
    /// records pushed with [`Sorter::push_record`], which do not decode as indicators);
    /// false at the end.
    pub fn next_record(&mut self, out: &mut Vec<u8>) -> Result<bool, RunError> {
        self.start()?;
        let mut key = Vec::new();
        let Some(k) = self.take(&mut key)? else {
            return Ok(false);
        };
        std::mem::swap(out, &mut self.heads[k]);
        self.advance(k)?;
        self.recycle(key);
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<(Indicator, usize)>, RunError> {
        self.start()?;
        if let Some(only) = self.only {
            return self.step_where(only);
        }
        let mut key = Vec::new();
        let Some(k) = self.take(&mut key)? else {
            return Ok(None);
        };
        let mut ind = record::decode(&self.heads[k]).ok_or_else(|| self.damaged(k))?;
        self.advance(k)?;
        let mut folded = 0;
        while self.next_is(&key) {
            let mut same = Vec::new();
            let Some(j) = self.take(&mut same)? else {
                break;
            };
            let other = record::decode(&self.heads[j]).ok_or_else(|| self.damaged(j))?;
            ind.merge(&other);
            folded += 1;
            self.advance(j)?;
            self.recycle(same);
        }
        self.recycle(key);
        Ok(Some((ind, folded)))
    }

    /// [`Merged::step`] for [`Runs::merge_where`]: gather each key's records and decode
    /// them only when one passes `only`.
    fn step_where(
        &mut self,
        only: fn(&[u8]) -> bool,
    ) -> Result<Option<(Indicator, usize)>, RunError> {
        let mut key = Vec::new();
        let mut group = std::mem::take(&mut self.group);
        loop {
            let mut n = 0;
            while n == 0 || self.next_is(&key) {
                let Some(k) = self.take(&mut key)? else {
                    break;
                };
                if group.len() <= n {
                    group.push(Vec::new());
                }
                group[n].clear();
                group[n].extend_from_slice(&self.heads[k]);
                n += 1;
                self.advance(k)?;
            }
            if n == 0 {
                self.group = group;
                return Ok(None);
            }
            let recs = &group[..n];
            if !recs.iter().any(|r| only(r)) {
                continue;
            }
            let mut merged: Option<Indicator> = None;
            let mut damaged = false;
            for r in recs {
                match (record::decode(r), merged.as_mut()) {
                    (Some(o), Some(m)) => m.merge(&o),
                    (Some(o), None) => merged = Some(o),
                    (None, _) => damaged = true,
                }
            }
            let folded = n - 1;
            self.group = group;
            return match merged.filter(|_| !damaged) {
                Some(ind) => Ok(Some((ind, folded))),
                None => Err(RunError::Damaged {
                    path: PathBuf::from("<sorted runs>"),
                }),
            };
        }
    }
}

impl Iterator for Merged {
    type Item = Result<(Indicator, usize), RunError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

#[cfg(test)]
mod tests;
