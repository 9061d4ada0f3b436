//! Following log files as they are written: globs, rotation, truncation, checkpoints.
//!
//! A [`Tailer`] watches the files matching a set of globs and hands out [`Batch`]es of complete
//! lines, one file at a time. The caller acknowledges a batch with [`Tailer::ack`] once the
//! alerts for all its lines reached every sink; only then is the read position persisted, so a
//! crash (even `kill -9`) re-delivers unacknowledged lines and never skips one.
//!
//! # File identity
//! Files are identified by a [`Fingerprint`]: the xxh3-64 hash of their first
//! `fingerprint_bytes` bytes (default 256), not by name or inode. The rule, which never changes
//! a file's identity as it grows:
//! * a file with at least `fingerprint_bytes` bytes is fingerprinted by exactly those bytes;
//! * a shorter file is fingerprinted by **all of its current bytes** (`len` < `fingerprint_bytes`)
//!   once it holds at least one complete line and has not grown for one `poll_interval`;
//!   a candidate matches that (length, hash) pair if its first `len` bytes hash the same (the
//!   longest matching known prefix wins), so the identity survives growth and restarts;
//! * when a short-fingerprinted file reaches `fingerprint_bytes`, its position moves to its
//!   full fingerprint (the checkpoint keeps only that), so a later, different file that merely
//!   starts with the same short prefix (a rotated log's identical first line) is not taken
//!   for it. The ambiguity remains only while a file stays shorter than `fingerprint_bytes`;
//! * an empty file, or a short one without a complete line, is not read until one rule applies.
//!
//! Two files with the same fingerprint are the same file: a rotated copy continues from the
//! checkpointed offset. The price (as in Vector) is that two *different* files whose first
//! `fingerprint_bytes` bytes are equal (a long identical header) are taken for one; raise
//! `fingerprint_bytes` for such logs.
//!
//! # Rotation
//! * rename-and-create: the renamed file keeps its inode and open descriptor and is drained to
//!   its end (whether or not its new name matches a glob; a file no glob lists any more is
//!   closed once it has been read to its end and not grown for `drain_linger`); the new file
//!   is read from its beginning. A file renamed out of the globs before the tailer ever
//!   opened it (it lived under a listed name for less than a scan) cannot be followed: list
//!   the rotated names too (`access.log*`).
//! * copytruncate: a size below the read position, or a first-bytes check after each read that
//!   no longer matches the fingerprint, marks the file truncated: its identity is dropped and it
//!   is read from 0 as a new file. The copy, if a glob lists it, carries the old fingerprint and
//!   continues from the old position (no duplicates). While both exist with one fingerprint,
//!   only one of them (the first seen) is read. A copy still shorter than the position it
//!   inherits waits for it instead of being taken for truncated.
//!
//! # Acknowledgement and checkpoints
//! Each file may have up to `max_unacked_batches` batches out; positions only advance over a
//! prefix of acknowledged batches (acks may come in any order). Every [`Tailer::ack`] writes
//! the checkpoint (temp file, fsync, rename, directory fsync), which costs one fsync: a caller
//! that finishes several batches at once should use [`Tailer::ack_many`] (one write). Keep the
//! checkpoint outside the watched directories, or its own writes wake the tailer.
//!
//! # Start position
//! A file with a checkpoint resumes there. A file without one is read from its beginning,
//! except that with [`ReadFrom::End`] the files present at the first scan (in [`Tailer::new`])
//! start after their last complete line. Files that appear later (rotation) are always read
//! from the beginning, or their first lines would be lost.

mod checkpoint;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::{EventKind, RecursiveMode, Watcher};

/// The default cap on a line's length (without its newline): longer lines are cut to it and
/// counted. `trawl scan` applies the same cap.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Where to start reading a file seen for the first time (no checkpoint) at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// From byte 0 (the default).
    #[default]
    Beginning,
    /// After the last complete line present when the tailer starts.
    End,
}

/// What to tail and how; build it with [`TailConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Glob patterns, e.g. `/var/log/squid/access.log*` (rotated names may be listed too).
    pub paths: Vec<String>,
    /// Patterns matched against a file's *name*; matching files are never tailed.
    /// Default: compressed rotations (`*.gz`, `*.zst`, `*.bz2`, `*.xz`).
    pub exclude: Vec<String>,
    /// Start position for files without a checkpoint found at startup.
    pub read_from: ReadFrom,
    /// Fallback polling period (and glob rescan period), default 250 ms.
    pub poll_interval: Duration,
    /// Upper bound on the bytes of one batch, default 1 MiB.
    pub max_batch_bytes: usize,
    /// Longer lines (without their newline) are truncated to this many bytes and counted;
    /// default 1 MiB.
    pub max_line_bytes: usize,
    /// Bytes the fingerprint covers, default 256.
    pub fingerprint_bytes: usize,
    /// Where read positions are persisted.
    pub checkpoint_path: PathBuf,
    /// A file no glob lists any more (renamed away, deleted) is closed once drained and idle
    /// this long; default 1 s.
    pub drain_linger: Duration,
    /// A listed file that is drained and idle this long has its descriptor closed (it is
    /// reopened when it changes); default 60 s.
    pub idle_close: Duration,
    /// At most this many unacknowledged batches per file; the file waits for acks beyond it.
    /// Default 16.
    pub max_unacked_batches: usize,
    /// Checkpoint entries of files not seen for this long are dropped; default 7 days.
    pub checkpoint_ttl: Duration,
    /// Use filesystem notifications to wake up early (default true); polling always runs.
    pub use_notify: bool,
}

impl TailConfig {
    /// A configuration with the defaults documented on each field.
    pub fn new(paths: Vec<String>, checkpoint_path: impl Into<PathBuf>) -> Self {
        TailConfig {
            paths,
            exclude: ["*.gz", "*.zst", "*.bz2", "*.xz"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            read_from: ReadFrom::Beginning,
            poll_interval: Duration::from_millis(250),
            max_batch_bytes: 1 << 20,
            max_line_bytes: MAX_LINE_BYTES,
            fingerprint_bytes: 256,
            checkpoint_path: checkpoint_path.into(),
            drain_linger: Duration::from_secs(1),
            idle_close: Duration::from_secs(60),
            max_unacked_batches: 16,
            checkpoint_ttl: Duration::from_secs(7 * 24 * 3600),
            use_notify: true,
        }
    }
}

/// A file's identity: the hash of its first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    /// How many leading bytes are hashed (`fingerprint_bytes`, or fewer for a short file).
    pub len: u32,
    /// xxh3-64 of those bytes.
    pub hash: u64,
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}/{}", self.hash, self.len)
    }
}

/// Names one delivered batch, for [`Tailer::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchId {
    fp: Fingerprint,
    seq: u64,
}

/// Complete lines from one file.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Pass to [`Tailer::ack`] once every line was handled.
    pub id: BatchId,
    /// The file's path when read.
    pub path: PathBuf,
    /// The file's identity.
    pub fingerprint: Fingerprint,
    /// Byte offset of the first line in the file.
    pub offset: u64,
    /// Byte offset just past the last line (the read position after this batch).
    pub end: u64,
    /// Number of lines in `bytes`.
    pub line_count: usize,
    /// 1 if this batch is a single over-long line cut to `max_line_bytes`, else 0.
    pub truncated_lines: usize,
    /// Whole lines, each ending in `\n`.
    pub bytes: Vec<u8>,
}

impl Batch {
    /// Each line (without its `\n`) with its byte offset in the file.
    pub fn iter_lines(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut rest: &[u8] = &self.bytes;
        let mut off = self.offset;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let n = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = &rest[..n];
            let here = off;
            let step = (n + 1).min(rest.len());
            rest = &rest[step..];
            off += step as u64;
            Some((here, line))
        })
    }
}

/// Per-file figures in [`TailStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    /// Current path of the open file.
    pub path: PathBuf,
    /// Identity, once established.
    pub fingerprint: Option<Fingerprint>,
    /// Read (delivered) position.
    pub offset: u64,
    /// Acknowledged (persisted) position.
    pub committed: u64,
    /// Current size.
    pub size: u64,
    /// `size - offset`: bytes not yet delivered.
    pub lag_bytes: u64,
}

/// Counters and per-file state for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Every open file.
    pub files: Vec<FileStats>,
    /// Lines delivered.
    pub lines: u64,
    /// Bytes delivered (file bytes covered by batches).
    pub bytes: u64,
    /// Batches delivered.
    pub batches: u64,
    /// Paths that came to name a different file (rename rotations).
    pub rotations: u64,
    /// Files found truncated (copytruncate or rewrite in place).
    pub truncations: u64,
    /// Over-long lines cut to `max_line_bytes`.
    pub lines_truncated: u64,
    /// Open or read failures (the file is retried at the next scan).
    pub errors: u64,
    /// Filesystem notifications are active (false: polling only).
    pub notify_active: bool,
}

/// Errors of the tailer.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A glob in `paths` or `exclude` does not parse.
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid tail configuration: {0}")]
    Config(String),
    /// The checkpoint file cannot be read or written.
    #[error("checkpoint {path}: {source}")]
    CheckpointIo {
        /// Checkpoint path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The checkpoint file does not parse.
    #[error("checkpoint {path}: malformed: {reason}")]
    CheckpointFormat {
        /// Checkpoint path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `ack` of a batch that was not delivered or was already acknowledged.
    #[error("unknown or already acknowledged batch {0:?}")]
    UnknownBatch(BatchId),
}

/// Makes a blocked [`Tailer::next_batch`] return `None` promptly, from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake: SyncSender<()>,
}

impl StopHandle {
    /// Sets the stop flag and wakes the tailer.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }
}

type Key = (u64, u64);
/// (size, mtime seconds, mtime nanoseconds): a closed file is reopened when it changes.
type Stamp = (u64, i64, i64);

#[derive(Debug)]
struct Inflight {
    seq: u64,
    end: u64,
    acked: bool,
}

/// What we know about one fingerprint.
#[derive(Debug)]
struct Progress {
    committed: u64,
    delivered: u64,
    inflight: VecDeque<Inflight>,
    owner: Option<Key>,
    path: PathBuf,
    seen: u64,
}

#[derive(Debug)]
struct LongLine {
    start: u64,
    scan: u64,
    head: Vec<u8>,
}

/// An open file.
#[derive(Debug)]
struct Open {
    file: File,
    key: Key,
    path: PathBuf,
    listed: bool,
    broken: bool,
    fp: Option<Fingerprint>,
    shadowed: bool,
    pos: u64,
    /// This handle has seen the file at least `pos` long (a taken-over copy may still be
    /// shorter than the fingerprint's position: then it waits instead of counting as truncated).
    reached: bool,
    seen_size: u64,
    seen_change: Instant,
    /// Found truncated since it was last identified: its content is new, whatever its
    /// first bytes say.
    cut: bool,
    /// Size at which the last read attempt found no complete line.
    idle_size: Option<u64>,
    long: Option<LongLine>,
    from_first_scan: bool,
}

/// Follows the files matching a set of globs; see the [module docs](self).
pub struct Tailer {
    cfg: TailConfig,
    exclude: Vec<glob::Pattern>,
    opens: Vec<Open>,
    cursor: usize,
    /// Closed idle files: (size, mtime) when closed and identity; reopened when either changes.
    parked: HashMap<Key, (Stamp, Option<Fingerprint>)>,
    path_inode: HashMap<PathBuf, Key>,
    known: HashMap<Fingerprint, Progress>,
    known_lens: BTreeSet<u32>,
    /// Short fingerprints upgraded to full ones (for acks of batches delivered before).
    aliases: HashMap<Fingerprint, Fingerprint>,
    next_seq: u64,
    ckpt_dirty: bool,
    next_scan: Instant,
    first_scan_done: bool,
    watcher: Option<notify::RecommendedWatcher>,
    unwatched: Vec<(PathBuf, RecursiveMode)>,
    wake_rx: Receiver<()>,
    wake_tx: SyncSender<()>,
    ns_dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: TailStats,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hash(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// `pread` until `buf` is full or end of file; returns the bytes read.
fn read_full_at(f: &File, buf: &mut [u8], mut off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], off) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Directory to watch for a glob, and whether below it must be watched recursively.
fn watch_root(pattern: &str) -> (PathBuf, RecursiveMode) {
    let p = Path::new(pattern);
    let mut base = PathBuf::new();
    let mut rest = 0usize;
    let mut globbed = false;
    for c in p.components() {
        let s = c.as_os_str().to_string_lossy();
        if globbed || s.contains(['*', '?', '[', '{']) {
            globbed = true;
            rest += 1;
        } else {
            base.push(c);
        }
    }
    if !globbed {
        // A plain path: watch its directory.
        base.pop();
        rest = 1;
    }
    if base.as_os_str().is_empty() || base.components().all(|c| c == Component::CurDir) {
        base = PathBuf::from(".");
    }
    let mode = if rest > 1 || pattern.contains("**") {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    (base, mode)
}

impl Tailer {
    /// Validates the configuration, loads the checkpoint, starts the notify watcher and runs
    /// the first scan (files found now are the ones [`ReadFrom::End`] applies to).
    pub fn new(cfg: TailConfig) -> Result<Tailer, TailError> {
        if cfg.fingerprint_bytes == 0 || cfg.fingerprint_bytes > u32::MAX as usize {
            return Err(TailError::Config("fingerprint_bytes must be >= 1".into()));
        }
        if cfg.max_batch_bytes == 0 || cfg.max_line_bytes == 0 || cfg.max_unacked_batches == 0 {
            return Err(TailError::Config(
                "max_batch_bytes, max_line_bytes and max_unacked_batches must be >= 1".into(),
            ));
        }
        if cfg.poll_interval < Duration::from_millis(1) {
            return Err(TailError::Config("poll_interval must be >= 1 ms".into()));
        }
        if cfg.paths.is_empty() {
            return Err(TailError::Config("no paths to tail".into()));
        }
        for p in &cfg.paths {
            glob::Pattern::new(p).map_err(|e| TailError::Pattern {
                pattern: p.clone(),
                reason: e.to_string(),
            })?;
        }
        let exclude = cfg
            .exclude
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| TailError::Pattern {
                    pattern: p.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut known = HashMap::new();
        let mut known_lens = BTreeSet::new();
        for e in checkpoint::load(&cfg.checkpoint_path)? {
            if let Some(fp) = e.fingerprint() {
                known_lens.insert(fp.len);
                known.insert(
                    fp,
                    Progress {
                        committed: e.offset,
                        delivered: e.offset,
                        inflight: VecDeque::new(),
                        owner: None,
                        path: e.path,
                        seen: e.seen,
                    },
                );
            }
        }
        let (wake_tx, wake_rx) = mpsc::sync_channel(1);
        let ns_dirty = Arc::new(AtomicBool::new(false));
        let mut unwatched: Vec<(PathBuf, RecursiveMode)> = Vec::new();
        let watcher = if cfg.use_notify {
            let tx = wake_tx.clone();
            let flag = ns_dirty.clone();
            let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                match res {
                    Ok(ev) => {
                        if !matches!(
                            ev.kind,
                            EventKind::Modify(notify::event::ModifyKind::Data(_))
                        ) && !matches!(ev.kind, EventKind::Access(_))
                        {
                            flag.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(_) => flag.store(true, Ordering::SeqCst),
                }
                match tx.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
                }
            });
            for p in &cfg.paths {
                let root = watch_root(p);
                if !unwatched.contains(&root) {
                    unwatched.push(root);
                }
            }
            w.ok()
        } else {
            None
        };
        let mut t = Tailer {
            cfg,
            exclude,
            opens: Vec::new(),
            cursor: 0,
            parked: HashMap::new(),
            path_inode: HashMap::new(),
            known,
            known_lens,
            aliases: HashMap::new(),
            next_seq: 0,
            ckpt_dirty: false,
            next_scan: Instant::now(),
            first_scan_done: false,
            watcher,
            unwatched,
            wake_rx,
            wake_tx,
            ns_dirty,
            stop: Arc::new(AtomicBool::new(false)),
            counters: TailStats::default(),
        };
        t.retry_watches();
        let now = Instant::now();
        t.scan(now);
        t.next_scan = now + t.cfg.poll_interval;
        if t.ckpt_dirty {
            t.write_checkpoint()?;
        }
        Ok(t)
    }

    /// A handle that makes `next_batch` return `None` (now and from then on).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: self.stop.clone(),
            wake: self.wake_tx.clone(),
        }
    }

    /// Blocks until there are new complete lines (or `timeout` passes, or the stop flag is
    /// set: then `Ok(None)`); returns a batch of whole lines from one file. Files take turns.
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Option<Batch>, TailError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= self.next_scan || self.ns_dirty.swap(false, Ordering::SeqCst) {
                self.scan(now);
                self.next_scan = now + self.cfg.poll_interval;
            }
            if self.ckpt_dirty {
                self.write_checkpoint()?;
            }
            if let Some(b) = self.poll_all() {
                return Ok(Some(b));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = deadline.min(self.next_scan).saturating_duration_since(now);
            match self.wake_rx.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
    }

    /// Acknowledges a batch: its lines were handed to every sink. Persists (temp file, fsync,
    /// rename) the read position past every acknowledged batch that has no unacknowledged batch
    /// of the same file before it.
    pub fn ack(&mut self, id: &BatchId) -> Result<(), TailError> {
        self.ack_many(std::slice::from_ref(id))
    }

    /// Acknowledges several batches and persists the checkpoint once (coalesced write).
    pub fn ack_many(&mut self, ids: &[BatchId]) -> Result<(), TailError> {
        let mut advanced = false;
        let mut err = None;
        for id in ids {
            match self.mark_acked(id) {
                Ok(a) => advanced |= a,
                Err(e) => err = Some(e),
            }
        }
        if advanced || self.ckpt_dirty {
            self.write_checkpoint()?;
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Per-file positions and lag, and the running totals.
    pub fn stats(&self) -> TailStats {
        let mut s = self.counters.clone();
        s.notify_active = self.watcher.is_some();
        s.files = self
            .opens
            .iter()
            .map(|o| {
                let size = o.file.metadata().map(|m| m.len()).unwrap_or(o.seen_size);
                let committed =
                    o.fp.and_then(|fp| self.known.get(&fp))
                        .map(|p| p.committed)
                        .unwrap_or(0);
                FileStats {
                    path: o.path.clone(),
                    fingerprint: o.fp,
                    offset: o.pos,
                    committed,
                    size,
                    lag_bytes: size.saturating_sub(o.pos),
                }
            })
            .collect();
        s
    }

    /// A short-fingerprinted file that reached `fingerprint_bytes` takes its full
    /// fingerprint: the position moves over, the short one stays only as an alias for acks.
    fn upgrade(&mut self, i: usize, old: Fingerprint) -> Option<Fingerprint> {
        let fpb = self.cfg.fingerprint_bytes;
        let mut buf = vec![0u8; fpb];
        let n = read_full_at(&self.opens[i].file, &mut buf, 0).ok()?;
        if n < fpb || hash(buf.get(..old.len as usize)?) != old.hash {
            return None; // shrunk or rewritten: the truncation checks handle it
        }
        let full = Fingerprint {
            len: fpb as u32,
            hash: hash(&buf),
        };
        if self.known.contains_key(&full) {
            return None;
        }
        let p = self.known.remove(&old)?;
        self.known.insert(full, p);
        self.aliases.insert(old, full);
        for o in &mut self.opens {
            if o.fp == Some(old) {
                o.fp = Some(full);
            }
        }
        for (_, f) in self.parked.values_mut() {
            if *f == Some(old) {
                *f = Some(full);
            }
        }
        self.ckpt_dirty = true;
        Some(full)
    }

    fn mark_acked(&mut self, id: &BatchId) -> Result<bool, TailError> {
        let mut fp = id.fp;
        for _ in 0..8 {
            match self.aliases.get(&fp) {
                Some(next) => fp = *next,
                None => break,
            }
        }
        let p = self
            .known
            .get_mut(&fp)
            .ok_or(TailError::UnknownBatch(*id))?;
        let e = p
            .inflight
            .iter_mut()
            .find(|e| e.seq == id.seq && !e.acked)
            .ok_or(TailError::UnknownBatch(*id))?;
        e.acked = true;
        let mut advanced = false;
        while p.inflight.front().is_some_and(|f| f.acked) {
            if let Some(f) = p.inflight.pop_front() {
                if f.end > p.committed {
                    p.committed = f.end;
                    advanced = true;
                }
            }
        }
        Ok(advanced)
    }

    fn write_checkpoint(&mut self) -> Result<(), TailError> {
        let now = now_unix();
        let ttl = self.cfg.checkpoint_ttl.as_secs();
        let live: std::collections::HashSet<Fingerprint> = self
            .opens
            .iter()
            .filter_map(|o| o.fp)
            .chain(
                self.known
                    .iter()
                    .filter(|(_, p)| p.owner.is_some())
                    .map(|(f, _)| *f),
            )
            .collect();
        let mut live = live;
        live.extend(self.parked.values().filter_map(|(_, fp)| *fp));
        let mut pruned = false;
        self.known.retain(|fp, p| {
            if live.contains(fp) {
                p.seen = now;
            }
            let keep =
                !p.inflight.is_empty() || live.contains(fp) || now.saturating_sub(p.seen) < ttl;
            pruned |= !keep;
            keep
        });
        if pruned {
            self.known_lens = self.known.keys().map(|f| f.len).collect();
        }
        let known = &self.known;
        self.aliases.retain(|_, to| known.contains_key(to));
        let mut entries: Vec<checkpoint::Entry> = self
            .known
            .iter()
            .map(|(fp, p)| checkpoint::Entry {
                fp_len: fp.len,
                fp: format!("{:016x}", fp.hash),
                offset: p.committed,
                path: p.path.clone(),
                seen: p.seen,
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path).then(a.fp.cmp(&b.fp)));
        checkpoint::store(&self.cfg.checkpoint_path, entries)?;
        self.ckpt_dirty = false;
        Ok(())
    }

    fn retry_watches(&mut self) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        self.unwatched
            .retain(|(dir, mode)| !(dir.is_dir() && w.watch(dir, *mode).is_ok()));
    }

    fn excluded(&self, path: &Path) -> bool {
        let Some(name) = path.file_name() else {
            return true;
        };
        // Never tail our own checkpoint (or its temp file), should a glob cover it.
        let ck = &self.cfg.checkpoint_path;
        if let Some(ck_name) = ck.file_name() {
            let mut tmp = ck_name.to_owned();
            tmp.push(".tmp");
            if name == ck_name || name == tmp.as_os_str() {
                let dir = |p: &Path| {
                    p.parent()
                        .filter(|d| !d.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .canonicalize()
                        .ok()
                };
                if dir(path).is_some() && dir(path) == dir(ck) {
                    return true;
                }
            }
        }
        let n = name.to_string_lossy();
        self.exclude.iter().any(|p| p.matches(&n))
    }

    /// Expands the globs, opens new files, identifies them, closes drained or idle ones.
    fn scan(&mut self, now: Instant) {
        if !self.unwatched.is_empty() {
            self.retry_watches();
        }
        let mut listed: HashMap<Key, (PathBuf, Stamp)> = HashMap::new();
        for pat in &self.cfg.paths {
            let Ok(paths) = glob::glob(pat) else { continue };
            for path in paths.flatten() {
                if self.excluded(&path) {
                    continue;
                }
                let Ok(md) = std::fs::metadata(&path) else {
                    continue;
                };
                if !md.is_file() {
                    continue;
                }
                listed
                    .entry((md.dev(), md.ino()))
                    .or_insert((path, (md.len(), md.mtime(), md.mtime_nsec())));
            }
        }
        for o in &mut self.opens {
            o.listed = false;
        }
        let mut new_path_inode = HashMap::with_capacity(listed.len());
        for (key, (path, stamp)) in &listed {
            if self.path_inode.get(path).is_some_and(|old| old != key) {
                self.counters.rotations += 1;
            }
            new_path_inode.insert(path.clone(), *key);
            if let Some(o) = self.opens.iter_mut().find(|o| o.key == *key) {
                o.listed = true;
                if o.path != *path {
                    o.path = path.clone();
                }
                continue;
            }
            if self.parked.get(key).is_some_and(|(s, _)| s == stamp) {
                continue;
            }
            self.parked.remove(key);
            let file = match File::open(path) {
                Ok(f) => f,
                Err(_) => {
                    self.counters.errors += 1;
                    continue;
                }
            };
            let Ok(md) = file.metadata() else {
                self.counters.errors += 1;
                continue;
            };
            if (md.dev(), md.ino()) != *key {
                continue; // replaced between stat and open: next scan
            }
            self.opens.push(Open {
                file,
                key: *key,
                path: path.clone(),
                listed: true,
                broken: false,
                fp: None,
                shadowed: false,
                pos: 0,
                reached: true,
                seen_size: md.len(),
                seen_change: now,
                cut: false,
                idle_size: None,
                long: None,
                from_first_scan: !self.first_scan_done,
            });
        }
        // A path missing from this scan (renamed away, its successor not created yet) keeps
        // its old file while that file is still open, so the successor is counted as a
        // rotation whenever it appears.
        for (path, key) in self.path_inode.drain() {
            if !new_path_inode.contains_key(&path) && self.opens.iter().any(|o| o.key == key) {
                new_path_inode.insert(path, key);
            }
        }
        self.path_inode = new_path_inode;
        self.parked.retain(|k, _| listed.contains_key(k));
        self.first_scan_done = true;

        for i in 0..self.opens.len() {
            let size = match self.opens[i].file.metadata() {
                Ok(m) => m.len(),
                Err(_) => {
                    self.opens[i].broken = true;
                    self.counters.errors += 1;
                    continue;
                }
            };
            let o = &mut self.opens[i];
            if size != o.seen_size {
                o.seen_size = size;
                o.seen_change = now;
            }
            if o.fp.is_none() {
                self.identify(i, now);
            } else if o.shadowed {
                self.try_takeover(i);
            } else if size < o.pos && o.reached {
                self.truncated(i, now);
                self.identify(i, now);
            }
        }

        // Close what is broken, drained and gone, or idle.
        let mut i = 0;
        while i < self.opens.len() {
            let o = &self.opens[i];
            let quiet = now.saturating_duration_since(o.seen_change);
            let drained = o.fp.is_none()
                || o.shadowed
                || (o.long.is_none() && o.idle_size == Some(o.seen_size));
            let close = o.broken
                || (!o.listed && drained && quiet >= self.cfg.drain_linger)
                || (o.listed
                    && drained
                    && o.fp.is_some()
                    && !o.shadowed
                    && quiet >= self.cfg.idle_close);
            if close {
                let o = self.opens.remove(i);
                if o.listed && !o.broken {
                    let stamp = o
                        .file
                        .metadata()
                        .map(|m| (m.len(), m.mtime(), m.mtime_nsec()))
                        .unwrap_or((o.seen_size, 0, 0));
                    self.parked.insert(o.key, (stamp, o.fp));
                }
                if let Some(fp) = o.fp {
                    self.release(fp, o.key);
                }
                if self.cursor > i {
                    self.cursor -= 1;
                }
            } else {
                i += 1;
            }
        }
    }

    /// Drops `key`'s ownership of `fp` and hands it to a waiting file with the same identity.
    fn release(&mut self, fp: Fingerprint, key: Key) {
        if let Some(p) = self.known.get_mut(&fp) {
            if p.owner == Some(key) {
                p.owner = None;
            }
        }
        if let Some(j) = self
            .opens
            .iter()
            .position(|o| o.key != key && o.fp == Some(fp) && o.shadowed)
        {
            self.try_takeover(j);
        } else {
            // A closed idle file with this identity is reopened at the next scan.
            self.parked.retain(|k, (_, f)| *k == key || *f != Some(fp));
        }
    }

    /// A shadowed file becomes the reader of its fingerprint if the owner is gone.
    fn try_takeover(&mut self, i: usize) {
        let Some(fp) = self.opens[i].fp else { return };
        let key = self.opens[i].key;
        let owner_alive = self.known.get(&fp).and_then(|p| p.owner).is_some_and(|k| {
            k != key
                && self
                    .opens
                    .iter()
                    .any(|o| o.key == k && o.fp == Some(fp) && !o.shadowed)
        });
        if owner_alive || self.restart_if_rewritten(i, fp) {
            return;
        }
        let size = self.opens[i].seen_size;
        self.opens[i].cut = false;
        if let Some(p) = self.known.get_mut(&fp) {
            p.owner = Some(key);
            p.path = self.opens[i].path.clone();
            let o = &mut self.opens[i];
            o.shadowed = false;
            o.pos = p.delivered;
            o.reached = size >= o.pos;
            o.idle_size = None;
        }
    }

    /// The file at `i` no longer has the content its fingerprint names: start it afresh.
    fn truncated(&mut self, i: usize, now: Instant) {
        self.counters.truncations += 1;
        // Identify the new content at the next turn rather than the next poll.
        self.ns_dirty.store(true, Ordering::SeqCst);
        let key = self.opens[i].key;
        let fp = self.opens[i].fp.take();
        let o = &mut self.opens[i];
        o.pos = 0;
        o.reached = true;
        o.long = None;
        o.idle_size = None;
        o.shadowed = false;
        o.from_first_scan = false;
        o.seen_change = now;
        o.cut = true;
        if let Some(fp) = fp {
            self.release(fp, key);
        }
    }

    /// Establishes the identity of the file at `i` (see the module docs for the rule).
    fn identify(&mut self, i: usize, now: Instant) {
        let fpb = self.cfg.fingerprint_bytes;
        let o = &self.opens[i];
        let size = o.seen_size;
        let want = size.min(fpb as u64) as usize;
        if want == 0 {
            return;
        }
        let mut buf = vec![0u8; want];
        let n = match read_full_at(&o.file, &mut buf, 0) {
            Ok(n) => n,
            Err(_) => {
                self.opens[i].broken = true;
                self.counters.errors += 1;
                return;
            }
        };
        buf.truncate(n);
        let mut found = None;
        for &k in self.known_lens.iter().rev() {
            let Some(prefix) = buf.get(..k as usize) else {
                continue;
            };
            let fp = Fingerprint {
                len: k,
                hash: hash(prefix),
            };
            if self.known.contains_key(&fp) {
                found = Some(fp);
                break;
            }
        }
        let fp = match found {
            Some(fp) => fp,
            None if n == fpb => Fingerprint {
                len: n as u32,
                hash: hash(&buf),
            },
            None => {
                let quiet_for = |t: SystemTime| SystemTime::now().duration_since(t).ok();
                let mtime_quiet = o
                    .file
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(quiet_for)
                    .is_some_and(|d| d >= self.cfg.poll_interval);
                let quiet = now.saturating_duration_since(o.seen_change) >= self.cfg.poll_interval
                    || mtime_quiet;
                if n as u64 == size && quiet && memchr::memchr(b'\n', &buf).is_some() {
                    Fingerprint {
                        len: n as u32,
                        hash: hash(&buf),
                    }
                } else {
                    return;
                }
            }
        };
        self.attach(i, fp, size);
    }

    fn attach(&mut self, i: usize, fp: Fingerprint, size: u64) {
        self.known_lens.insert(fp.len);
        let key = self.opens[i].key;
        self.opens[i].fp = Some(fp);
        self.opens[i].idle_size = None;
        if self.known.contains_key(&fp) {
            self.opens[i].shadowed = true;
            self.try_takeover(i);
            return;
        }
        self.opens[i].cut = false;
        let start = if self.opens[i].from_first_scan && self.cfg.read_from == ReadFrom::End {
            self.last_line_end(i, size)
        } else {
            0
        };
        self.opens[i].pos = start;
        self.opens[i].reached = true;
        self.opens[i].shadowed = false;
        if start > 0 {
            self.ckpt_dirty = true;
        }
        self.known.insert(
            fp,
            Progress {
                committed: start,
                delivered: start,
                inflight: VecDeque::new(),
                owner: Some(key),
                path: self.opens[i].path.clone(),
                seen: now_unix(),
            },
        );
    }

    /// A file taking over a known fingerprint while shorter than the position it reached,
    /// where that position was read (this file, found truncated; or the path it was read
    /// from: the file re-created, or cut while we were stopped): the content is new and is
    /// read from its start. Elsewhere (a copy still being written by copytruncate) it waits
    /// for the position instead. Returns whether the position was restarted.
    fn restart_if_rewritten(&mut self, i: usize, fp: Fingerprint) -> bool {
        let key = self.opens[i].key;
        let (size, cut) = (self.opens[i].seen_size, self.opens[i].cut);
        let Some(p) = self.known.get(&fp) else {
            return false;
        };
        let here = cut || p.path == self.opens[i].path;
        if !here || size >= p.delivered {
            return false;
        }
        if !cut {
            self.counters.truncations += 1;
        }
        let path = self.opens[i].path.clone();
        if let Some(p) = self.known.get_mut(&fp) {
            p.committed = 0;
            p.delivered = 0;
            // Acks of batches of the old content must not move the new position.
            for e in &mut p.inflight {
                e.end = 0;
            }
            p.owner = Some(key);
            p.path = path;
        }
        let o = &mut self.opens[i];
        o.pos = 0;
        o.reached = true;
        o.shadowed = false;
        o.cut = false;
        o.idle_size = None;
        self.ckpt_dirty = true;
        true
    }

    /// Offset just past the last `\n` before `size` (0 if none).
    fn last_line_end(&self, i: usize, size: u64) -> u64 {
        let f = &self.opens[i].file;
        let mut hi = size;
        let mut buf = vec![0u8; 64 * 1024];
        while hi > 0 {
            let lo = hi.saturating_sub(buf.len() as u64);
            let want = (hi - lo) as usize;
            let Some(chunk) = buf.get_mut(..want) else {
                return 0;
            };
            match read_full_at(f, chunk, lo) {
                Ok(n) if n == want => {}
                _ => return 0,
            }
            if let Some(p) = memchr::memrchr(b'\n', chunk) {
                return lo + p as u64 + 1;
            }
            hi = lo;
        }
        0
    }

    /// Tries every file once, starting after the last one that delivered.
    fn poll_all(&mut self) -> Option<Batch> {
        let n = self.opens.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if let Some(b) = self.poll_file(i) {
                self.cursor = (i + 1) % n.max(1);
                return Some(b);
            }
        }
        None
    }

    /// Checks the first bytes still hash to the fingerprint (catches truncate-and-regrow).
    fn verify(&self, i: usize, fp: Fingerprint) -> bool {
        let mut buf = [0u8; 4096];
        let len = fp.len as usize;
        if len <= buf.len() {
            let b = &mut buf[..len];
            matches!(read_full_at(&self.opens[i].file, b, 0), Ok(n) if n == len)
                && hash(b) == fp.hash
        } else {
            let mut v = vec![0u8; len];
            matches!(read_full_at(&self.opens[i].file, &mut v, 0), Ok(n) if n == len)
                && hash(&v) == fp.hash
        }
    }

    fn poll_file(&mut self, i: usize) -> Option<Batch> {
        let o = &self.opens[i];
        if o.broken || o.shadowed {
            return None;
        }
        if o.fp.is_none() {
            // A new file that has grown since it was last looked at: identify it now rather
            // than at the next scan (a rotated-in file is usually empty when first seen).
            let size = o.file.metadata().map(|m| m.len()).ok()?;
            if size == o.seen_size {
                return None;
            }
            let now = Instant::now();
            let o = &mut self.opens[i];
            o.seen_size = size;
            o.seen_change = now;
            self.identify(i, now);
        }
        let o = &self.opens[i];
        if o.shadowed {
            return None;
        }
        let fp = o.fp?;
        let p = self.known.get(&fp)?;
        if p.inflight.len() >= self.cfg.max_unacked_batches {
            return None;
        }
        let size = match o.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => {
                self.opens[i].broken = true;
                self.counters.errors += 1;
                return None;
            }
        };
        let mut fp = fp;
        let fpb = self.cfg.fingerprint_bytes;
        if (fp.len as usize) < fpb && size >= fpb as u64 {
            if let Some(full) = self.upgrade(i, fp) {
                fp = full;
            }
        }
        let now = Instant::now();
        let o = &mut self.opens[i];
        if size != o.seen_size {
            o.seen_size = size;
            o.seen_change = now;
        }
        if size < o.pos {
            if o.reached {
                self.truncated(i, now);
            } else {
                o.idle_size = Some(size);
            }
            return None;
        }
        o.reached = true;
        if o.idle_size == Some(size) {
            return None;
        }
        if o.long.is_some() {
            return self.continue_long(i, fp, size);
        }
        let pos = o.pos;
        let avail = size - pos;
        if avail == 0 {
            o.idle_size = Some(size);
            return None;
        }
        let want = avail.min(self.cfg.max_batch_bytes as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = match read_full_at(&o.file, &mut buf, pos) {
            Ok(n) => n,
            Err(_) => {
                o.broken = true;
                self.counters.errors += 1;
                return None;
            }
        };
        buf.truncate(n);
        let max_line = self.cfg.max_line_bytes;
        let mut end_in_buf = match memchr::memrchr(b'\n', &buf) {
            Some(p) => p + 1,
            None => {
                if n == self.cfg.max_batch_bytes || n > max_line {
                    o.long = Some(LongLine {
                        start: pos,
                        scan: pos,
                        head: Vec::new(),
                    });
                    return self.continue_long(i, fp, size);
                }
                o.idle_size = Some(size);
                return None;
            }
        };
        let mut lines = 0usize;
        if end_in_buf > max_line {
            // Lines may exceed the cap: cut the batch before the first one that does.
            let mut start = 0usize;
            for nl in memchr::memchr_iter(b'\n', &buf[..end_in_buf]) {
                if nl - start > max_line {
                    if start == 0 {
                        o.long = Some(LongLine {
                            start: pos,
                            scan: pos,
                            head: Vec::new(),
                        });
                        return self.continue_long(i, fp, size);
                    }
                    end_in_buf = start;
                    break;
                }
                lines += 1;
                start = nl + 1;
            }
        } else {
            lines = memchr::memchr_iter(b'\n', &buf[..end_in_buf]).count();
        }
        buf.truncate(end_in_buf);
        if !self.verify(i, fp) {
            self.truncated(i, now);
            return None;
        }
        let end = pos + end_in_buf as u64;
        Some(self.deliver(i, fp, pos, end, lines, 0, buf))
    }

    /// Scans an over-long line for its end, keeping at most `max_line_bytes` of it.
    fn continue_long(&mut self, i: usize, fp: Fingerprint, size: u64) -> Option<Batch> {
        let max_line = self.cfg.max_line_bytes;
        let chunk_len = self.cfg.max_batch_bytes.max(4096);
        let mut chunk = vec![0u8; chunk_len.min(size as usize + 1)];
        for _ in 0..64 {
            let o = &mut self.opens[i];
            let long = o.long.as_mut()?;
            if long.scan >= size {
                o.idle_size = Some(size);
                return None;
            }
            let want = ((size - long.scan) as usize).min(chunk.len());
            let n = match read_full_at(&o.file, &mut chunk[..want], long.scan) {
                Ok(n) => n,
                Err(_) => {
                    o.broken = true;
                    self.counters.errors += 1;
                    return None;
                }
            };
            if n == 0 {
                o.idle_size = Some(size);
                return None;
            }
            let got = &chunk[..n];
            let nl = memchr::memchr(b'\n', got);
            let upto = nl.unwrap_or(n);
            let room = max_line.saturating_sub(long.head.len());
            long.head.extend_from_slice(&got[..upto.min(room)]);
            match nl {
                None => long.scan += n as u64,
                Some(p) => {
                    let end = long.scan + p as u64 + 1;
                    let start = long.start;
                    let cut = end - 1 - start > max_line as u64;
                    let mut bytes = std::mem::take(&mut long.head);
                    bytes.push(b'\n');
                    o.long = None;
                    if !self.verify(i, fp) {
                        self.truncated(i, Instant::now());
                        return None;
                    }
                    if cut {
                        self.counters.lines_truncated += 1;
                    }
                    return Some(self.deliver(i, fp, start, end, 1, usize::from(cut), bytes));
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        i: usize,
        fp: Fingerprint,
        offset: u64,
        end: u64,
        lines: usize,
        truncated_lines: usize,
        bytes: Vec<u8>,
    ) -> Batch {
        let seq = self.next_seq;
        self.next_seq += 1;
        let o = &mut self.opens[i];
        o.pos = end;
        o.idle_size = None;
        if let Some(p) = self.known.get_mut(&fp) {
            p.inflight.push_back(Inflight {
                seq,
                end,
                acked: false,
            });
            p.delivered = p.delivered.max(end);
        }
        self.counters.lines += lines as u64;
        self.counters.bytes += end - offset;
        self.counters.batches += 1;
        Batch {
            id: BatchId { fp, seq },
            path: o.path.clone(),
            fingerprint: fp,
            offset,
            end,
            line_count: lines,
            truncated_lines,
            bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailer_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Tailer>();
        send::<Batch>();
        send::<StopHandle>();
    }

    #[test]
    fn watch_roots() {
        assert_eq!(
            watch_root("/var/log/squid/access.log*"),
            (PathBuf::from("/var/log/squid"), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            watch_root("/var/log/named/query.log"),
            (PathBuf::from("/var/log/named"), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            watch_root("/var/log/*/x.log"),
            (PathBuf::from("/var/log"), RecursiveMode::Recursive)
        );
        assert_eq!(
            watch_root("x.log"),
            (PathBuf::from("."), RecursiveMode::NonRecursive)
        );
    }

    #[test]
    fn iter_lines_offsets() {
        let b = Batch {
            id: BatchId {
                fp: Fingerprint { len: 1, hash: 0 },
                seq: 0,
            },
            path: PathBuf::new(),
            fingerprint: Fingerprint { len: 1, hash: 0 },
            offset: 10,
            end: 19,
            line_count: 3,
            truncated_lines: 0,
            bytes: b"ab\n\ncdef\n".to_vec(),
        };
        let v: Vec<(u64, &[u8])> = b.iter_lines().collect();
        assert_eq!(
            v,
            vec![(10, &b"ab"[..]), (13, &b""[..]), (14, &b"cdef"[..])]
        );
    }
}
