//! Compiled snapshots (ARCHITECTURE.md §4): the indicator set compiled into FSTs, IP range tables, an
//! Aho-Corasick automaton and compact metadata, published atomically as a versioned
//! directory and loaded by mmap.
//!
//! Directory `data_dir/snapshots/<version>/`:
//! * `domains.fst`: label-reversed names (`com.example.www`) → rank in that order;
//!   `domains.idx`: rank → id (+ exact-only bit) and id → rank.
//! * `values.fst`: every other indicator, key = type byte ‖ value, output = id. Keys sort in
//!   id order, so a value is reconstructed from its id by descending the FST (values are
//!   stored once).
//! * `ip.bin`: non-overlapping IPv4 (u32) and IPv6 (u128) elementary ranges, each with the
//!   list of every indicator covering it.
//! * `records.bin`: per id (profile id, reference string), delta-coded in blocks of
//!   [`BLOCK`]; `profiles.bin`: the distinct (confidence, severity, TLP, flags, tags, sources,
//!   provider, description, allowlisted_by, times, groups) tuples, many indicators sharing one;
//!   `strings.bin` (interned strings, front-coded in blocks) and `sets.bin` (interned tag and
//!   source sets).
//! * `ids.bin` (optional; older snapshots lack it): the external ids (STIX ids, MISP
//!   uuids) of the indicators that have one, sparse, sorted by indicator id.
//! * `prefilter.bin` (optional; older snapshots lack it): a Bloom filter over the domain
//!   names and URL hosts of the indicators that can alert and a bitset of the ids that
//!   cannot (allowlist entries, allowlisted indicators), for the `may_alert_*` pre-checks.
//! * `meta.json` ([`SnapshotMeta`]) and `manifest` (length and CRC-32 of every file, itself
//!   check-summed): a damaged or truncated file is refused at open.

mod build;
mod early;
mod format;
#[cfg(test)]
mod fst_fork_tests;
mod prefilter;
#[cfg(test)]
mod tests;

use crate::matcher::{Hit, IndicatorId, Matcher};
use crate::model::{Indicator, IndicatorType, MatchKind, UnixTime};
use crate::normalize::normalize_observed_url;
use crate::text;
/// The varint coding of the snapshot files, for other compact files built beside them.
pub use format::{get_varint, put_varint};
use format::{Blob, DomainIdx, ExternalIds, IpTables, Rows, Strings, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Records per metadata block.
pub(crate) const BLOCK: usize = 32;

/// How many published versions `publish` keeps.
pub const KEEP_VERSIONS: usize = 3;

/// Errors reading or writing a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// An I/O error on a snapshot path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No snapshot has been published in the data directory yet.
    #[error("no snapshot in {0}; run `trawl update` first")]
    NoSnapshot(PathBuf),
    /// A snapshot file is damaged or of another format version.
    #[error("{path}: corrupt snapshot: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Building an automaton failed.
    #[error("building {what}: {reason}")]
    Build {
        /// Which automaton.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// What a snapshot says about itself (`meta.json` in its directory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Monotonic version, one more than the previous snapshot in the data directory.
    pub version: u64,
    /// When it was built.
    pub created: UnixTime,
    /// Indicator counts by itype name.
    pub counts: BTreeMap<String, u64>,
    /// Free-form data the writer wants kept with the snapshot (e.g. per-feed state).
    pub extra: serde_json::Value,
}

/// Collects indicators (merging duplicates) and compiles them into a snapshot.
#[derive(Default)]
pub struct SnapshotBuilder {
    items: Vec<Indicator>,
    /// (hash, index into `items`): the hash is kept so growing never re-reads the values.
    /// Covers `items[..indexed]`; [`SnapshotBuilder::from_indicators`] leaves it empty
    /// until the first `insert`.
    index: hashbrown::HashTable<(u64, u32)>,
    indexed: usize,
    hasher: crate::fxhash::FxBuild,
    /// `items` are known to be sorted by (itype, value) (taken as merged by
    /// `from_indicators`, nothing inserted since): the compiler skips its order checks.
    sorted: bool,
}

impl std::fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field("len", &self.items.len())
            .finish()
    }
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one normalised indicator, merging it into an existing one of the same itype and
    /// value (`Indicator::merge`); tags and sources are tidied.
    pub fn insert(&mut self, mut indicator: Indicator) {
        use std::hash::BuildHasher;
        self.index_all();
        let hash = self
            .hasher
            .hash_one((indicator.itype, indicator.value.as_str()));
        let items = &mut self.items;
        if let Some(&(_, i)) = self.index.find(hash, |&(h, i)| {
            let it = &items[i as usize];
            h == hash && it.itype == indicator.itype && it.value == indicator.value
        }) {
            let it = &mut items[i as usize];
            indicator.tidy();
            it.merge(&indicator);
            it.tidy();
            return;
        }
        indicator.tidy();
        let i = items.len() as u32;
        items.push(indicator);
        self.sorted = false;
        self.index.insert_unique(hash, (hash, i), |&(h, _)| h);
        self.indexed = self.items.len();
    }

    /// A builder holding `indicators`. When they are sorted by (itype, value) with no two
    /// equal (as `trawl update` merges them), they are taken as they are, without hashing
    /// each one; otherwise they are inserted one by one, merging duplicates.
    pub fn from_indicators(indicators: Vec<Indicator>) -> Self {
        use rayon::prelude::*;
        // Both passes touch every indicator's heap data: on rayon's pool.
        let merged = indicators
            .par_windows(2)
            .all(|w| (w[0].itype, &w[0].value) < (w[1].itype, &w[1].value));
        let mut b = Self::new();
        if merged {
            b.items = indicators;
            b.sorted = true;
            b.items.par_iter_mut().for_each(Indicator::tidy);
        } else {
            for it in indicators {
                b.insert(it);
            }
        }
        b
    }

    /// Hash the items taken without an index (by `from_indicators`) into it.
    fn index_all(&mut self) {
        use std::hash::BuildHasher;
        while self.indexed < self.items.len() {
            let it = &self.items[self.indexed];
            let hash = self.hasher.hash_one((it.itype, it.value.as_str()));
            self.index
                .insert_unique(hash, (hash, self.indexed as u32), |&(h, _)| h);
            self.indexed += 1;
        }
    }

    /// Number of distinct indicators so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compile into an in-memory snapshot (tests, `trawl demo`); its version is 0.
    pub fn build(self) -> Result<Snapshot, SnapshotError> {
        from_files(build::compile(
            self.items,
            self.sorted,
            0,
            serde_json::Value::Null,
        )?)
    }

    /// Compile and publish atomically as a new version under `data_dir`; returns its directory.
    ///
    /// The files are written into `snapshots/.tmp-<pid>-<n>`, each fsynced, the directory
    /// renamed to `snapshots/<version>` (version = newest existing + 1, 1 for the first),
    /// then `current` is replaced (temp file, fsync, rename). Only the newest
    /// [`KEEP_VERSIONS`] versions are kept.
    pub fn publish(
        self,
        data_dir: &Path,
        extra: serde_json::Value,
    ) -> Result<PathBuf, SnapshotError> {
        publish_with(data_dir, |version| {
            build::compile(self.items, self.sorted, version, extra)
        })
    }
}

/// Takes merged indicators one at a time in id order ([`id_order`]: by itype, then by
/// value, domains by their label-reversed names, as `trawl update` streams them from its
/// sorted runs) and keeps only what the compiler needs: the type, the value's bytes, two
/// flags and the metadata interned, about 14 bytes besides the value per indicator.
/// Compiles to the same bytes as a [`SnapshotBuilder`] of the same indicators in the same
/// order.
#[derive(Default)]
pub struct StreamBuilder {
    lean: build::Lean,
    /// The last indicator's type and order key (a domain's label-reversed name).
    last: Option<(IndicatorType, Vec<u8>)>,
    /// The order key of the indicator being pushed.
    key: Vec<u8>,
    /// The FSTs, built on threads of their own as the indicators arrive.
    early: early::EarlyFsts,
}

impl std::fmt::Debug for StreamBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBuilder")
            .field("len", &self.lean.len())
            .finish()
    }
}

impl StreamBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the next indicator (tags and sources are tidied); one that does not sort after
    /// the previous one in id order (or equals it) is refused.
    pub fn push(&mut self, mut indicator: Indicator) -> Result<(), SnapshotError> {
        self.key.clear();
        if indicator.itype == IndicatorType::Fqdn {
            reverse_labels_into(indicator.value.as_bytes(), &mut self.key);
        } else {
            self.key.extend_from_slice(indicator.value.as_bytes());
        }
        if let Some((t, k)) = &self.last {
            if (*t, k.as_slice()) >= (indicator.itype, self.key.as_slice()) {
                return Err(SnapshotError::Build {
                    what: "snapshot",
                    reason: format!(
                        "indicators out of order: {} {:?} after {} {:?}",
                        indicator.itype.as_str(),
                        indicator.value,
                        t.as_str(),
                        String::from_utf8_lossy(k)
                    ),
                });
            }
        }
        indicator.tidy();
        self.lean.push(&indicator)?;
        self.early
            .push(indicator.itype, &self.key, indicator.exact_only);
        match &mut self.last {
            Some((t, k)) => {
                *t = indicator.itype;
                std::mem::swap(k, &mut self.key);
            }
            None => self.last = Some((indicator.itype, std::mem::take(&mut self.key))),
        }
        Ok(())
    }

    /// Number of indicators so far.
    pub fn len(&self) -> usize {
        self.lean.len()
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compile into an in-memory snapshot (tests); its version is 0.
    pub fn build(self) -> Result<Snapshot, SnapshotError> {
        from_files(self.compile(0, serde_json::Value::Null)?)
    }

    /// Compile and publish atomically, as [`SnapshotBuilder::publish`].
    pub fn publish(
        self,
        data_dir: &Path,
        extra: serde_json::Value,
    ) -> Result<PathBuf, SnapshotError> {
        publish_with(data_dir, |version| self.compile(version, extra))
    }

    /// The snapshot's files, with the FSTs built while the indicators arrived.
    fn compile(
        self,
        version: u64,
        extra: serde_json::Value,
    ) -> Result<Vec<(&'static str, Vec<u8>)>, SnapshotError> {
        let early = self.early.finish().transpose()?;
        build::compile_lean(self.lean, true, early, version, extra)
    }
}

/// An in-memory snapshot of compiled files.
fn from_files(files: Vec<(&'static str, Vec<u8>)>) -> Result<Snapshot, SnapshotError> {
    let dir = PathBuf::from("<memory>");
    let blobs = files
        .into_iter()
        .map(|(name, bytes)| (name, Blob::Mem(bytes)))
        .collect();
    Snapshot::from_blobs(&dir, blobs)
}

/// Compile (given the version) and publish atomically; see [`SnapshotBuilder::publish`].
fn publish_with(
    data_dir: &Path,
    compile: impl FnOnce(u64) -> Result<Vec<(&'static str, Vec<u8>)>, SnapshotError>,
) -> Result<PathBuf, SnapshotError> {
    let snaps = data_dir.join("snapshots");
    fs::create_dir_all(&snaps).map_err(io_err(&snaps))?;
    let mut version = newest_version(data_dir, &snaps)? + 1;
    let files = compile(version)?;
    let tmp = snaps.join(format!(".tmp-{}-{}", std::process::id(), next_tmp()));
    fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let written = (|| {
        let mut manifest = String::from("trawl-snapshot 1\n");
        for (name, bytes) in &files {
            let p = tmp.join(name);
            write_synced(&p, bytes)?;
            manifest.push_str(&format!(
                "{name} {} {:08x}\n",
                bytes.len(),
                crc32fast::hash(bytes)
            ));
        }
        let crc = crc32fast::hash(manifest.as_bytes());
        manifest.push_str(&format!("end {crc:08x}\n"));
        write_synced(&tmp.join("manifest"), manifest.as_bytes())?;
        sync_dir(&tmp)
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // Another publisher may have taken the version meanwhile: move on to the next one.
    // The version number inside meta.json then lags; rewrite it if so.
    let mut final_dir = snaps.join(version.to_string());
    let mut attempts = 0;
    while let Err(e) = fs::rename(&tmp, &final_dir) {
        attempts += 1;
        if attempts > 16 || !final_dir.exists() {
            let _ = fs::remove_dir_all(&tmp);
            return Err(SnapshotError::Io {
                path: final_dir,
                source: e,
            });
        }
        version += 1;
        final_dir = snaps.join(version.to_string());
    }
    if attempts > 0 {
        fix_version(&final_dir, version)?;
    }
    sync_dir(&snaps)?;
    let cur_tmp = data_dir.join(format!(
        ".current.tmp-{}-{}",
        std::process::id(),
        next_tmp()
    ));
    write_synced(&cur_tmp, format!("{version}\n").as_bytes())?;
    let cur = data_dir.join("current");
    fs::rename(&cur_tmp, &cur).map_err(io_err(&cur))?;
    sync_dir(data_dir)?;
    prune(&snaps, KEEP_VERSIONS);
    Ok(final_dir)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn next_tmp() -> u64 {
    TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Versions present as numeric directory names.
fn versions(snaps: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(snaps)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    v.sort_unstable();
    v
}

fn newest_version(data_dir: &Path, snaps: &Path) -> Result<u64, SnapshotError> {
    let cur = read_current(data_dir).ok().unwrap_or(0);
    Ok(cur.max(versions(snaps).last().copied().unwrap_or(0)))
}

fn fix_version(dir: &Path, version: u64) -> Result<(), SnapshotError> {
    // Rewrite meta.json and the manifest for the version actually taken.
    let meta_path = dir.join("meta.json");
    let bytes = fs::read(&meta_path).map_err(io_err(&meta_path))?;
    let mut meta: SnapshotMeta =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(&meta_path, e.to_string()))?;
    meta.version = version;
    let new = serde_json::to_vec_pretty(&meta).map_err(|e| corrupt(&meta_path, e.to_string()))?;
    write_synced(&meta_path, &new)?;
    reseal_manifest(dir, "meta.json", Some(&new))
}

/// Record in the manifest of the snapshot directory `dir` that file `name` now holds
/// `bytes` (its length and CRC), or is gone (`None`: its entry is dropped), and re-seal the
/// manifest's own checksum. For a publish that renumbers its version, and for tests that
/// stand in for another trawl's files.
#[doc(hidden)]
pub fn reseal_manifest(dir: &Path, name: &str, bytes: Option<&[u8]>) -> Result<(), SnapshotError> {
    let man_path = dir.join("manifest");
    let text = fs::read_to_string(&man_path).map_err(io_err(&man_path))?;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("end ") {
            continue;
        }
        match line.strip_prefix(name).filter(|rest| rest.starts_with(' ')) {
            Some(_) => {
                if let Some(b) = bytes {
                    out.push_str(&format!("{name} {} {:08x}\n", b.len(), crc32fast::hash(b)));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let crc = crc32fast::hash(out.as_bytes());
    out.push_str(&format!("end {crc:08x}\n"));
    write_synced(&man_path, out.as_bytes())?;
    sync_dir(dir)
}

/// Delete all but the newest `keep` versions (best effort: a sensor may still have one open,
/// which is fine for mmapped files on Unix).
fn prune(snaps: &Path, keep: usize) {
    let v = versions(snaps);
    if v.len() > keep {
        for old in &v[..v.len() - keep] {
            let _ = fs::remove_dir_all(snaps.join(old.to_string()));
        }
    }
}

fn read_current(data_dir: &Path) -> Result<u64, SnapshotError> {
    let p = data_dir.join("current");
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::NoSnapshot(data_dir.to_path_buf()))
        }
        Err(e) => return Err(SnapshotError::Io { path: p, source: e }),
    };
    text.trim()
        .parse::<u64>()
        .map_err(|_| corrupt(&p, format!("not a version number: {:?}", text.trim())))
}

/// File names of a snapshot directory, besides `manifest`.
pub(crate) const FILES: [&str; 10] = [
    "meta.json",
    "domains.fst",
    "domains.1.fst",
    "domains.idx",
    "values.fst",
    "ip.bin",
    "records.bin",
    "profiles.bin",
    "strings.bin",
    "sets.bin",
];

/// Files a snapshot may lack (older snapshots): loaded when the manifest lists them.
pub(crate) const OPTIONAL_FILES: [&str; 2] = ["prefilter.bin", "ids.bin"];

/// A loaded, immutable, `Send + Sync` compiled indicator set.
pub struct Snapshot {
    dir: PathBuf,
    meta: SnapshotMeta,
    /// Domain FST shards split at top-level-label boundaries (so a name and all its
    /// parents are in one shard), ordered by first key; built in parallel.
    domains: Vec<DomainShard>,
    dom_idx: DomainIdx,
    values: fst::Map<Blob>,
    ips: IpTables,
    records: Rows<2>,
    profiles: Rows<{ build::NPROFILE }>,
    strings: Strings,
    sets: Table,
    /// `ids.bin` (absent in snapshots written before external ids: none has one).
    external_ids: Option<ExternalIds>,
    /// First id of each type, in `IndicatorType::ALL` order, plus the total at the end.
    type_start: [u32; 14],
    patterns: Option<aho_corasick::AhoCorasick>,
    /// Pattern number in the automaton → indicator id.
    pattern_ids: Vec<IndicatorId>,
    /// `prefilter.bin` (absent in snapshots written before it existed, or by a trawl whose
    /// prefilter hashed differently).
    prefilter: Option<prefilter::Prefilter>,
    /// `prefilter.bin` is there but from another trawl version (so unused).
    prefilter_outdated: bool,
    /// One bit per IPv4 /24: set when a range of an alerting indicator touches it (built
    /// from `ip.bin` and the prefilter's quiet ids on the first `may_alert_ip`, 2 MiB).
    loud_v4: std::sync::OnceLock<Vec<u64>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Profiles [`Snapshot::record_cached`] keeps decoded: direct-mapped by profile id.
const PROFILE_CACHE: usize = 64;

/// The decoded profiles of a scan (bounded: [`PROFILE_CACHE`] slots), each with whether
/// the scan wants its entries.
struct ProfileCache {
    slots: Vec<Option<(u32, Indicator, bool)>>,
}

impl Default for ProfileCache {
    fn default() -> Self {
        ProfileCache {
            slots: vec![None; PROFILE_CACHE],
        }
    }
}

/// One entry as [`Snapshot::scan_keys`] hands it on: no profile decoded, no value made.
#[derive(Debug, Clone)]
pub struct KeyEntry<'a> {
    /// Its type.
    pub itype: IndicatorType,
    /// Its order key: the value, or a domain's label-reversed name (the FST's key).
    pub key: &'a [u8],
    /// Its profile ([`Snapshot::profile`]): everything but the value, the reference and
    /// the external id.
    pub profile: u32,
    /// Its reference.
    pub reference: Option<String>,
    /// Its external id.
    pub external_id: Option<String>,
}

/// One domain FST shard.
struct DomainShard {
    map: fst::Map<Blob>,
    /// Its smallest key (label-reversed) and that key's rank.
    first_key: Vec<u8>,
    first_rank: u64,
}

pub(crate) fn type_byte(t: IndicatorType) -> u8 {
    IndicatorType::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8
}

impl Snapshot {
    /// Load the current snapshot of `data_dir` by mmap (`data_dir/current` names the version).
    pub fn open_current(data_dir: &Path) -> Result<Snapshot, SnapshotError> {
        let v = read_current(data_dir)?;
        Snapshot::open(&data_dir.join("snapshots").join(v.to_string()))
    }

    /// Same as [`Snapshot::open`].
    pub fn from_dir(dir: &Path) -> Result<Snapshot, SnapshotError> {
        Snapshot::open(dir)
    }

    /// Load the snapshot in `dir` by mmap, after checking every file's length and CRC-32
    /// against the manifest.
    pub fn open(dir: &Path) -> Result<Snapshot, SnapshotError> {
        let man_path = dir.join("manifest");
        let text = fs::read(&man_path).map_err(io_err(&man_path))?;
        let text = std::str::from_utf8(&text).map_err(|_| corrupt(&man_path, "not UTF-8"))?;
        let body_end = text
            .rfind("end ")
            .ok_or_else(|| corrupt(&man_path, "no end line"))?;
        let (body, end) = text.split_at(body_end);
        let hex = end
            .strip_prefix("end ")
            .and_then(|e| e.strip_suffix('\n'))
            .filter(|h| h.len() == 8)
            .ok_or_else(|| corrupt(&man_path, "bad end line"))?;
        let want = u32::from_str_radix(hex, 16).map_err(|_| corrupt(&man_path, "bad end line"))?;
        if crc32fast::hash(body.as_bytes()) != want {
            return Err(corrupt(&man_path, "manifest checksum mismatch"));
        }
        let mut lines = body.lines();
        if lines.next() != Some("trawl-snapshot 1") {
            return Err(corrupt(&man_path, "unknown snapshot format"));
        }
        let mut listed: BTreeMap<&str, (u64, u32)> = BTreeMap::new();
        for line in lines {
            let mut parts = line.split(' ');
            let (Some(name), Some(len), Some(crc), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt(&man_path, format!("bad line {line:?}")));
            };
            let len: u64 = len
                .parse()
                .map_err(|_| corrupt(&man_path, format!("bad length in {line:?}")))?;
            let crc = u32::from_str_radix(crc, 16)
                .map_err(|_| corrupt(&man_path, format!("bad crc in {line:?}")))?;
            listed.insert(name, (len, crc));
        }
        let mut blobs = Vec::with_capacity(FILES.len());
        for name in FILES {
            let p = dir.join(name);
            let &(len, crc) = listed
                .get(name)
                .ok_or_else(|| corrupt(&man_path, format!("{name} not listed")))?;
            let blob = Blob::open(&p).map_err(io_err(&p))?;
            let bytes = blob.as_ref();
            if bytes.len() as u64 != len {
                return Err(corrupt(
                    &p,
                    format!("{} bytes, manifest says {len}", bytes.len()),
                ));
            }
            if crc32fast::hash(bytes) != crc {
                return Err(corrupt(&p, "checksum mismatch"));
            }
            blobs.push((name, blob));
        }
        for name in OPTIONAL_FILES {
            let Some(&(len, crc)) = listed.get(name) else {
                continue;
            };
            let p = dir.join(name);
            let blob = Blob::open(&p).map_err(io_err(&p))?;
            let bytes = blob.as_ref();
            if bytes.len() as u64 != len || crc32fast::hash(bytes) != crc {
                return Err(corrupt(&p, "length or checksum differs from the manifest"));
            }
            blobs.push((name, blob));
        }
        Snapshot::from_blobs(dir, blobs)
    }

    fn from_blobs(dir: &Path, blobs: Vec<(&'static str, Blob)>) -> Result<Snapshot, SnapshotError> {
        let mut map: BTreeMap<&str, Blob> = blobs.into_iter().collect();
        let mut take = |name: &str| {
            map.remove(name)
                .ok_or_else(|| corrupt(&dir.join(name), "missing file"))
        };
        let meta_blob = take("meta.json")?;
        let meta: SnapshotMeta = serde_json::from_slice(meta_blob.as_ref())
            .map_err(|e| corrupt(&dir.join("meta.json"), e.to_string()))?;
        let fst_map = |name: &str, b: Blob| {
            fst::Map::new(b).map_err(|e| corrupt(&dir.join(name), e.to_string()))
        };
        let mut domains = Vec::new();
        for name in ["domains.fst", "domains.1.fst"] {
            let map = fst_map(name, take(name)?)?;
            let first = {
                use fst::Streamer;
                let mut st = map.stream();
                st.next().map(|(k, v)| (k.to_vec(), v))
            };
            if let Some((first_key, first_rank)) = first {
                domains.push(DomainShard {
                    map,
                    first_key,
                    first_rank,
                });
            }
        }
        domains.sort_by(|a, b| a.first_key.cmp(&b.first_key));
        let dom_len: usize = domains.iter().map(|d| d.map.len()).sum();
        let values = fst_map("values.fst", take("values.fst")?)?;
        let dom_idx = DomainIdx::parse(take("domains.idx")?, &dir.join("domains.idx"))?;
        let ips = IpTables::parse(take("ip.bin")?, &dir.join("ip.bin"))?;
        let records = Rows::<2>::parse(
            take("records.bin")?,
            &dir.join("records.bin"),
            *b"TRWR",
            13,
            false,
        )?;
        let profiles = Rows::<{ build::NPROFILE }>::parse(
            take("profiles.bin")?,
            &dir.join("profiles.bin"),
            *b"TRWP",
            0,
            true,
        )?;
        let strings = Strings::parse(take("strings.bin")?, &dir.join("strings.bin"))?;
        let sets = Table::parse(take("sets.bin")?, &dir.join("sets.bin"), *b"TRWT")?;
        let external_ids = map
            .remove("ids.bin")
            .map(|b| ExternalIds::parse(b, &dir.join("ids.bin")))
            .transpose()?;
        let (prefilter, prefilter_outdated) = match map.remove("prefilter.bin") {
            Some(b) => {
                let pf = prefilter::Prefilter::parse(b, &dir.join("prefilter.bin"))?;
                let outdated = pf.is_none();
                (pf, outdated)
            }
            None => (None, false),
        };
        let mut type_counts = [0u32; 13];
        for (i, c) in type_counts.iter_mut().enumerate() {
            *c = records
                .extra(i)
                .ok_or_else(|| corrupt(&dir.join("records.bin"), "truncated header"))?;
        }
        let mut type_start = [0u32; 14];
        let mut acc = 0u64;
        for (i, c) in type_counts.iter().enumerate() {
            type_start[i] = acc as u32;
            acc += u64::from(*c);
        }
        type_start[13] = acc as u32;
        let rec_path = dir.join("records.bin");
        if acc != u64::from(records.len) {
            return Err(corrupt(&rec_path, "type counts do not add up"));
        }
        let n_dom = u64::from(type_counts[2]);
        if u64::from(dom_idx.len) != n_dom || dom_len as u64 != n_dom {
            return Err(corrupt(&dir.join("domains.idx"), "domain count mismatch"));
        }
        if values.len() as u64 + n_dom != acc {
            return Err(corrupt(&dir.join("values.fst"), "value count mismatch"));
        }
        for (name, c) in &meta.counts {
            let t: IndicatorType = name
                .parse()
                .map_err(|_| corrupt(&dir.join("meta.json"), format!("unknown type {name}")))?;
            if u64::from(type_counts[type_byte(t) as usize]) != *c {
                return Err(corrupt(
                    &dir.join("meta.json"),
                    format!("count of {name} mismatch"),
                ));
            }
        }
        // Patterns: the automaton is not serialisable, so it is rebuilt from the FST's
        // pattern keys (usually few).
        let pb = type_byte(IndicatorType::Pattern);
        let mut pats: Vec<Vec<u8>> = Vec::new();
        let mut pattern_ids = Vec::new();
        {
            use fst::{IntoStreamer, Streamer};
            let mut stream = values.range().ge([pb]).lt([pb + 1]).into_stream();
            while let Some((k, v)) = stream.next() {
                pats.push(k.get(1..).unwrap_or_default().to_vec());
                pattern_ids.push(v as IndicatorId);
            }
        }
        let patterns = if pats.is_empty() {
            None
        } else {
            Some(
                aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .build(&pats)
                    .map_err(|e| SnapshotError::Build {
                        what: "pattern automaton",
                        reason: e.to_string(),
                    })?,
            )
        };
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            meta,
            domains,
            dom_idx,
            values,
            ips,
            records,
            profiles,
            strings,
            sets,
            external_ids,
            type_start,
            patterns,
            pattern_ids,
            prefilter,
            prefilter_outdated,
            loud_v4: std::sync::OnceLock::new(),
        })
    }

    /// Whether the snapshot carries `prefilter.bin` (snapshots written before it existed do
    /// not; then every `may_alert_*` answers `true`).
    pub fn has_prefilter(&self) -> bool {
        self.prefilter.is_some()
    }

    /// Whether `prefilter.bin` is there but was written by a trawl whose prefilter format
    /// differs, so it is not used: scans stay exact but skip the pre-screen until the
    /// snapshot is rebuilt (`trawl update --force`).
    pub fn prefilter_outdated(&self) -> bool {
        self.prefilter_outdated
    }

    /// Could [`Matcher::match_domain`] on `host` return a hit that alerts (one that is not
    /// an allowlist entry or allowlisted)? `false` is exact; `true` means "look it up".
    /// A Bloom probe per label boundary, no FST walk.
    pub fn may_alert_domain(&self, host: &str) -> bool {
        let Some(pf) = &self.prefilter else {
            return true;
        };
        let Some(h) = text::trim_host(host) else {
            return false;
        };
        if let Some(ip) = text::host_as_ip(h) {
            return self.may_alert_ip(ip);
        }
        pf.may_contain_name(h.as_bytes())
    }

    /// Start loading what [`Snapshot::may_alert_ip`] will read for `ip` (its /24 bit), so
    /// that cache miss overlaps the caller's other work. A hint only.
    #[inline]
    pub fn prefetch_ip(&self, ip: IpAddr) {
        if let IpAddr::V4(a) = ip {
            self.prefetch_ipv4(a);
        }
    }

    /// [`Snapshot::prefetch_ip`] of an IPv4 address.
    #[inline]
    pub fn prefetch_ipv4(&self, a: Ipv4Addr) {
        let Some(loud) = self.loud_v4.get() else {
            return;
        };
        let block = (u32::from(a) >> 8) as usize;
        if let Some(w) = loud.get(block / 64) {
            crate::simd::prefetch(w);
        }
    }

    /// Could [`Matcher::match_ip`] on `ip` return a hit that alerts? Exact: the range lookup
    /// itself, with hits of allowlist entries (private ranges on most lines) discounted.
    pub fn may_alert_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.may_alert_ipv4(a),
            IpAddr::V6(a) => {
                let Some(pf) = &self.prefilter else {
                    return true;
                };
                let list = self.ips.lookup_v6(u128::from(a));
                list.into_iter().any(|raw| !pf.quiet(raw & 0x7fff_ffff))
            }
        }
    }

    /// [`Snapshot::may_alert_ip`] of an IPv4 address.
    #[inline]
    pub fn may_alert_ipv4(&self, a: Ipv4Addr) -> bool {
        let Some(pf) = &self.prefilter else {
            return true;
        };
        let a = u32::from(a);
        // One bit per /24: does any alerting range touch it? (built on first use)
        let loud = match self.loud_v4.get() {
            Some(loud) => loud,
            None => self.init_loud_v4(pf),
        };
        let block = (a >> 8) as usize;
        if loud
            .get(block / 64)
            .is_some_and(|w| w & (1 << (block % 64)) == 0)
        {
            return false;
        }
        self.ipv4_alerts(pf, a)
    }

    /// Build the one-bit-per-/24 "loud" map on first use.
    #[cold]
    #[inline(never)]
    fn init_loud_v4(&self, pf: &prefilter::Prefilter) -> &[u64] {
        self.loud_v4
            .get_or_init(|| self.ips.loud_v4_blocks(|id| pf.quiet(id)))
    }

    /// The range lookup behind [`Snapshot::may_alert_ipv4`] for an address in a loud /24
    /// (rare: kept out of line so the common "no" saves no registers).
    #[inline(never)]
    fn ipv4_alerts(&self, pf: &prefilter::Prefilter, a: u32) -> bool {
        self.ips
            .lookup_v4(a)
            .into_iter()
            .any(|raw| !pf.quiet(raw & 0x7fff_ffff))
    }

    /// Could [`Matcher::match_url`] on `url` return a hit that alerts? `false` is exact: no
    /// URL indicator has the URL's host (Bloom probe) and no pattern occurs in it.
    pub fn may_alert_url(&self, url: &str) -> bool {
        let Some(pf) = &self.prefilter else {
            return true;
        };
        if self.patterns.is_none() {
            let t = type_byte(IndicatorType::Url) as usize;
            if self.type_start[t] == self.type_start[t + 1] {
                return false;
            }
            // The common case, a plain http(s) host, in one pass over it.
            if let Some(host) = text::plain_http_host(url.as_bytes()) {
                return pf.may_contain(prefilter::host_hash(host));
            }
        }
        let u = normalize_observed_url(url);
        if self.may_alert_pattern(u.as_bytes()) {
            return true;
        }
        let t = type_byte(IndicatorType::Url) as usize;
        if self.type_start[t] == self.type_start[t + 1] {
            return false;
        }
        match text::url_host(&u) {
            Some(host) => pf.may_contain(prefilter::host_hash(host.as_bytes())),
            None => true,
        }
    }

    /// `may_alert_url(url) || may_alert_domain(host)` for a URL and its host (`url.full`
    /// and `url.domain` of one observation), with one hash walk when the URL's host is
    /// plain: the Bloom probes of the name's suffixes include the full name's, which is the
    /// one a URL indicator's host is filed under.
    /// `url` is the observed bytes: when its host is plain the rest of it is not looked at
    /// (every URL indicator with that host answers "maybe", whatever its path); otherwise
    /// text that is not UTF-8 answers "maybe".
    pub fn may_alert_url_and_domain(&self, url: &[u8], host: &str) -> bool {
        if let (Some(pf), None) = (&self.prefilter, &self.patterns) {
            if let Some(h) = text::plain_http_host(url) {
                if h.eq_ignore_ascii_case(host.as_bytes()) {
                    return plain_host_may_alert(pf, url, h);
                }
            }
        }
        match std::str::from_utf8(url) {
            Ok(u) => self.may_alert_url(u) || self.may_alert_domain(host),
            Err(_) => true,
        }
    }

    /// [`Snapshot::may_alert_url_and_domain`] for a URL whose host [`text::plain_http_host`]
    /// returned: such a host is ASCII, its own normalised form and no IP literal, so without
    /// patterns only its Bloom probes remain. A `host` that is not UTF-8 answers "maybe".
    pub fn may_alert_plain_http_url(&self, url: &[u8], host: &[u8]) -> bool {
        match &self.prefilter {
            Some(pf) if self.patterns.is_none() => plain_host_may_alert(pf, url, host),
            _ => std::str::from_utf8(host).map_or(true, |h| self.may_alert_url_and_domain(url, h)),
        }
    }

    /// Could [`Matcher::match_pattern`] on `text` return a hit? Exact (the automaton's
    /// `is_match`).
    pub fn may_alert_pattern(&self, text: &[u8]) -> bool {
        self.patterns.as_ref().is_some_and(|ac| ac.is_match(text))
    }

    /// Its metadata.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The directory it was loaded from (`<memory>` for [`SnapshotBuilder::build`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.type_start[13] as usize
    }

    /// True when it holds no indicator.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of indicator `id`, `None` when out of range.
    pub fn itype(&self, id: IndicatorId) -> Option<IndicatorType> {
        if id >= self.type_start[13] {
            return None;
        }
        let i = self.type_start[1..].partition_point(|&s| s <= id);
        IndicatorType::ALL.get(i).copied()
    }

    /// The normalised value of indicator `id` (reconstructed from the FSTs).
    pub fn value(&self, id: IndicatorId) -> Option<String> {
        let t = self.itype(id)?;
        if t == IndicatorType::Fqdn {
            let rank = self.dom_idx.rank_of(id - self.type_start[2])?;
            let shard = self
                .domains
                .iter()
                .rev()
                .find(|d| d.first_rank <= u64::from(rank))?;
            let rev = format::key_for_output(shard.map.as_fst(), u64::from(rank))?;
            let rev = String::from_utf8(rev).ok()?;
            Some(unreverse(&rev))
        } else {
            let key = format::key_for_output(self.values.as_fst(), u64::from(id))?;
            let v = key.get(1..)?;
            String::from_utf8(v.to_vec()).ok()
        }
    }

    /// The full record of indicator `id`. An id out of range (or a record the snapshot cannot
    /// decode) yields a placeholder pattern indicator with an empty value; ids from this
    /// snapshot's hits are always in range.
    pub fn indicator(&self, id: IndicatorId) -> Indicator {
        self.try_indicator(id)
            .unwrap_or_else(|| Indicator::new(String::new(), IndicatorType::Pattern, ""))
    }

    /// The full record of indicator `id`, `None` when out of range or undecodable.
    pub fn try_indicator(&self, id: IndicatorId) -> Option<Indicator> {
        let value = self.value(id)?;
        self.record_with_value(id, value)
    }

    /// The record of `id` around its already known value (from [`Snapshot::all_values`]),
    /// `None` when out of range or undecodable.
    pub fn record_with_value(&self, id: IndicatorId, value: String) -> Option<Indicator> {
        self.record_cached(id, value, None)
    }

    /// [`Snapshot::record_with_value`], the profile part (everything but the value, the
    /// reference and the external id) decoded once per profile while `cache` holds it:
    /// a scan's neighbours mostly share a few profiles, and a profile's sets and strings
    /// cost more to decode than to clone.
    fn record_cached(
        &self,
        id: IndicatorId,
        value: String,
        cache: Option<&mut ProfileCache>,
    ) -> Option<Indicator> {
        let all = |_: &Indicator| true;
        self.record_where(id, || Some(value), cache, &all)?
    }

    /// [`Snapshot::record_cached`] of an entry whose profile passes `want` (`Some(None)`
    /// when it does not; the value is made only for a wanted entry).
    fn record_where(
        &self,
        id: IndicatorId,
        value: impl FnOnce() -> Option<String>,
        cache: Option<&mut ProfileCache>,
        want: &dyn Fn(&Indicator) -> bool,
    ) -> Option<Option<Indicator>> {
        let itype = self.itype(id)?;
        let [pid, reference] = self.records.row(id)?;
        let pid = u32::try_from(pid).ok()?;
        let mut ind = match cache {
            Some(cache) => {
                let slot = &mut cache.slots[pid as usize % PROFILE_CACHE];
                let (t, wanted) = match slot {
                    Some((p, t, w)) if *p == pid => (t, *w),
                    _ => {
                        let t = self.profile_indicator(pid)?;
                        let w = want(&t);
                        let (_, t, _) = slot.insert((pid, t, w));
                        (t, w)
                    }
                };
                if !wanted {
                    return Some(None);
                }
                t.clone()
            }
            None => {
                let t = self.profile_indicator(pid)?;
                if !want(&t) {
                    return Some(None);
                }
                t
            }
        };
        ind.value = value()?;
        ind.itype = itype;
        ind.reference = self.opt_string(reference)?;
        ind.external_id = match self.external_ids.as_ref().and_then(|e| e.get(id)) {
            Some(sid) => self.opt_string(u64::from(sid) + 1)?,
            None => None,
        };
        Some(Some(ind))
    }

    /// An interned string by its 1-based id (0: none); `None` when undecodable.
    fn opt_string(&self, v: u64) -> Option<Option<String>> {
        if v == 0 {
            Some(None)
        } else {
            let b = self.strings.get(u32::try_from(v - 1).ok()?)?;
            Some(Some(String::from_utf8(b).ok()?))
        }
    }

    /// The indicator profile `pid` describes, with an empty value and no reference or
    /// external id.
    fn profile_indicator(&self, pid: u32) -> Option<Indicator> {
        let f = self.profiles.row(pid)?;
        let string = |v: u64| self.opt_string(v);
        let set = |v: u64| -> Option<Vec<String>> {
            let b = self.sets.get(u32::try_from(v).ok()?)?;
            b.chunks_exact(4)
                .map(|c| {
                    let sid = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    self.strings
                        .get(sid)
                        .and_then(|s| String::from_utf8(s).ok())
                })
                .collect()
        };
        let time = |v: u64| -> Option<UnixTime> {
            if v == 0 {
                None
            } else {
                Some(format::unzigzag(v - 1))
            }
        };
        let packed = f[1];
        let severity = match packed & 3 {
            0 => crate::model::Severity::Low,
            1 => crate::model::Severity::Medium,
            _ => crate::model::Severity::High,
        };
        let tlp = match (packed >> 2) & 7 {
            0 => crate::model::Tlp::Clear,
            1 => crate::model::Tlp::Green,
            2 => crate::model::Tlp::Amber,
            3 => crate::model::Tlp::AmberStrict,
            _ => crate::model::Tlp::Red,
        };
        Some(Indicator {
            value: String::new(),
            itype: IndicatorType::Pattern,
            confidence: u8::try_from(f[0]).ok()?,
            severity,
            tags: set(f[2])?,
            tlp,
            provider: string(f[4])?,
            description: string(f[5])?,
            reference: None,
            external_id: None,
            first_seen: time(f[7]),
            last_seen: time(f[8]),
            reported: time(f[9]),
            expires: time(f[10]),
            sources: set(f[3])?,
            derived: packed & 32 != 0,
            exact_only: packed & 64 != 0,
            allowlisted_by: string(f[6])?,
            allowlist: packed & 128 != 0,
            groups: match f[11] {
                0 => crate::model::Groups::everyone(),
                g => crate::model::Groups::from_names(set(g - 1)?),
            },
        })
    }

    /// Every value indexed by id, decoded in one streaming pass over each FST (a value
    /// rebuilt per id costs a reverse walk of its FST; whole-set readers such as exports
    /// and `trawl update`'s history use this instead). The FSTs are streamed on threads of
    /// their own.
    pub fn all_values(&self) -> Vec<String> {
        use fst::Streamer;
        let dom_base = self.type_start[2];
        let domains = |shard: &DomainShard| {
            let mut part: Vec<(usize, String)> = Vec::new();
            let mut stream = shard.map.stream();
            while let Some((key, rank)) = stream.next() {
                let Some((i, _)) = u32::try_from(rank).ok().and_then(|r| self.dom_idx.id_of(r))
                else {
                    continue;
                };
                if let (Some(id), Ok(rev)) = (dom_base.checked_add(i), std::str::from_utf8(key)) {
                    part.push((id as usize, unreverse(rev)));
                }
            }
            part
        };
        let others = || {
            let mut part: Vec<(usize, String)> = Vec::new();
            let mut stream = self.values.stream();
            while let Some((key, id)) = stream.next() {
                let v = key.get(1..).and_then(|v| std::str::from_utf8(v).ok());
                if let (Ok(id), Some(v)) = (usize::try_from(id), v) {
                    part.push((id, v.to_string()));
                }
            }
            part
        };
        let parts: Vec<Vec<(usize, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .domains
                .iter()
                .map(|shard| s.spawn(move || domains(shard)))
                .collect();
            let mut parts = vec![others()];
            parts.extend(handles.into_iter().map(join));
            parts
        });
        let mut vals = vec![String::new(); self.len()];
        for (id, v) in parts.into_iter().flatten() {
            if let Some(slot) = vals.get_mut(id) {
                *slot = v;
            }
        }
        vals
    }

    /// Every indicator in id order ([`id_order`]: by itype, then by value, domains by their
    /// label-reversed names), a block at a time (each block's records decoded on rayon's
    /// pool), without holding the set: how `trawl update` reads the previous snapshot, as
    /// one already sorted run. A record that does not decode is skipped.
    pub fn scan(&self, f: impl FnMut(Indicator)) {
        self.scan_where(|_| true, || false, f);
    }

    /// [`Snapshot::scan`] of the entries whose metadata passes `want` (asked once per
    /// profile while the scan's cache holds it, of the profile's indicator: no value,
    /// reference or external id; an entry not wanted is never made), checking `stop` before
    /// each block: how `trawl update` reads only the kept feeds' entries, and drops a read
    /// it no longer needs. False when `stop` ended it.
    pub fn scan_where(
        &self,
        want: impl Fn(&Indicator) -> bool + Sync,
        stop: impl Fn() -> bool,
        mut f: impl FnMut(Indicator),
    ) -> bool {
        use rayon::prelude::*;
        const BLOCK: usize = 1 << 16;
        /// Keys of one block in one arena: (id, end in `keys`, a domain's reversed name).
        #[derive(Default)]
        struct Block {
            keys: Vec<u8>,
            items: Vec<(u32, u32, bool)>,
        }
        impl Block {
            fn push(&mut self, id: u32, key: &[u8], domain: bool) -> bool {
                self.keys.extend_from_slice(key);
                let end = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                self.items.push((id, end, domain));
                self.items.len() >= BLOCK || end == u32::MAX
            }
        }
        let want = &want;
        let flush = |block: &mut Block, f: &mut dyn FnMut(Indicator)| {
            let b = &*block;
            let decoded: Vec<Option<Indicator>> = (0..b.items.len())
                .into_par_iter()
                .with_min_len(1024)
                .map_init(ProfileCache::default, |cache, k| {
                    let (id, end, domain) = b.items[k];
                    let start = k.checked_sub(1).map_or(0, |j| b.items[j].1 as usize);
                    let key = b.keys.get(start..end as usize)?;
                    let value = || {
                        let v = std::str::from_utf8(key).ok()?;
                        Some(if domain { unreverse(v) } else { v.to_string() })
                    };
                    self.record_where(id, value, Some(cache), want).flatten()
                })
                .collect();
            block.keys.clear();
            block.items.clear();
            decoded.into_iter().flatten().for_each(f);
        };
        let mut block = Block::default();
        let whole = self.walk_keys(|id, itype, key| {
            if block.push(id, key, itype == IndicatorType::Fqdn) {
                if stop() {
                    return false;
                }
                flush(&mut block, &mut f);
            }
            true
        });
        if whole {
            flush(&mut block, &mut f);
        }
        whole
    }

    /// Every entry's order key, profile, reference and external id in id order (as
    /// [`Snapshot::scan`], on the calling thread alone), decoding no profile and making no
    /// value: how `trawl update` reads the previous snapshot's history (its keys, seen
    /// times and fingerprints), a profile's part once per profile. `stop` is checked every
    /// 65,536 entries; false when it ended the scan. An entry that does not decode is skipped.
    pub fn scan_keys(&self, stop: impl Fn() -> bool, mut f: impl FnMut(KeyEntry<'_>)) -> bool {
        const CHECK: u32 = 1 << 16;
        let mut n = 0u32;
        let entry = |id: u32, itype: IndicatorType, key: &[u8]| -> bool {
            n = n.wrapping_add(1);
            if n.is_multiple_of(CHECK) && stop() {
                return false;
            }
            let Some([profile, reference]) = self.records.row(id) else {
                return true;
            };
            let (Ok(profile), Some(reference)) =
                (u32::try_from(profile), self.opt_string(reference))
            else {
                return true;
            };
            let external_id = match self.external_ids.as_ref().and_then(|e| e.get(id)) {
                Some(sid) => match self.opt_string(u64::from(sid) + 1) {
                    Some(e) => e,
                    None => return true,
                },
                None => None,
            };
            f(KeyEntry {
                itype,
                key,
                profile,
                reference,
                external_id,
            });
            true
        };
        self.walk_keys(entry)
    }

    /// Every entry's id, type and FST key (the value, or a domain's label-reversed name)
    /// in id order, until `f` says false (false then): the walk of every scan.
    fn walk_keys(&self, mut f: impl FnMut(u32, IndicatorType, &[u8]) -> bool) -> bool {
        use fst::{IntoStreamer, Streamer};
        /// The values of one stream (key: type byte ‖ value, output: id).
        fn values(
            mut stream: fst::map::Stream<'_>,
            f: &mut impl FnMut(u32, IndicatorType, &[u8]) -> bool,
        ) -> bool {
            while let Some((key, id)) = stream.next() {
                let itype = key
                    .first()
                    .and_then(|&t| IndicatorType::ALL.get(usize::from(t)));
                if let (Ok(id), Some(&itype), Some(v)) = (u32::try_from(id), itype, key.get(1..)) {
                    if !f(id, itype, v) {
                        return false;
                    }
                }
            }
            true
        }
        // The other values in two ranges around the domains' place in the type order.
        let fqdn = type_byte(IndicatorType::Fqdn);
        if !values(self.values.range().lt([fqdn]).into_stream(), &mut f) {
            return false;
        }
        let dom_base = self.type_start[2];
        for shard in &self.domains {
            let mut stream = shard.map.stream();
            while let Some((key, rank)) = stream.next() {
                let Some((i, _)) = u32::try_from(rank).ok().and_then(|r| self.dom_idx.id_of(r))
                else {
                    continue;
                };
                if let Some(id) = dom_base.checked_add(i) {
                    if !f(id, IndicatorType::Fqdn, key) {
                        return false;
                    }
                }
            }
        }
        values(self.values.range().gt([fqdn]).into_stream(), &mut f)
    }

    /// Profile `pid` of [`KeyEntry::profile`] as an indicator: its metadata, with an empty
    /// value and no reference or external id (`None` when undecodable).
    pub fn profile(&self, pid: u32) -> Option<Indicator> {
        self.profile_indicator(pid)
    }

    /// Every indicator in id order: by itype, then by value, except that domains come in
    /// the order of their label-reversed names (`com.example`, `com.example.www`, `net.a`),
    /// as the domain FST holds them. Records are decoded a block at a time, each block split
    /// over the available cores.
    pub fn iter(&self) -> impl Iterator<Item = Indicator> + '_ {
        const BLOCK: usize = 1 << 16;
        let vals = self.all_values();
        let n = vals.len();
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(4));
        let mut vals = vals.into_iter();
        (0..n.div_ceil(BLOCK)).flat_map(move |b| {
            let block: Vec<String> = vals.by_ref().take(BLOCK).collect();
            self.decode_block(b * BLOCK, block, threads)
                .into_iter()
                .flatten()
        })
    }

    /// The indicators with ids `first..first + values.len()`, decoded on up to `threads`
    /// threads, as consecutive parts.
    fn decode_block(
        &self,
        first: usize,
        values: Vec<String>,
        threads: usize,
    ) -> Vec<Vec<Indicator>> {
        let decode = |first: usize, values: Vec<String>| -> Vec<Indicator> {
            values
                .into_iter()
                .enumerate()
                .map(|(i, value)| {
                    u32::try_from(first + i)
                        .ok()
                        .and_then(|id| self.record_with_value(id, value))
                        .unwrap_or_else(|| {
                            Indicator::new(String::new(), IndicatorType::Pattern, "")
                        })
                })
                .collect()
        };
        if threads <= 1 || values.len() < 4096 {
            return vec![decode(first, values)];
        }
        let per = values.len().div_ceil(threads);
        let mut rest = values;
        let mut parts: Vec<(usize, Vec<String>)> = Vec::new();
        let mut start = first;
        while !rest.is_empty() {
            let tail = rest.split_off(per.min(rest.len()));
            let len = rest.len();
            parts.push((start, std::mem::replace(&mut rest, tail)));
            start += len;
        }
        std::thread::scope(|s| {
            let mut parts = parts.into_iter();
            let head = parts.next();
            let handles: Vec<_> = parts.map(|(f, v)| s.spawn(move || decode(f, v))).collect();
            let mut out: Vec<Vec<Indicator>> =
                head.map(|(f, v)| decode(f, v)).into_iter().collect();
            out.extend(handles.into_iter().map(join));
            out
        })
    }

    /// The id of the indicator with exactly this normalised value and type (e.g. a CIDR or
    /// URL given to `trawl query`).
    pub fn find(&self, itype: IndicatorType, value: &str) -> Option<IndicatorId> {
        if itype == IndicatorType::Fqdn {
            let rev = reverse_labels(value)?;
            let rank = self.domain_shard(&rev)?.map.get(&rev[..])?;
            self.dom_idx
                .id_of(u32::try_from(rank).ok()?)
                .map(|(id, _)| id + self.type_start[2])
        } else {
            let mut key = Vec::with_capacity(value.len() + 1);
            key.push(type_byte(itype));
            key.extend_from_slice(value.as_bytes());
            self.values.get(&key).and_then(|v| u32::try_from(v).ok())
        }
    }

    /// The shard that holds `rev_key` and all its parents, if any can.
    fn domain_shard(&self, rev_key: &[u8]) -> Option<&DomainShard> {
        self.domains
            .iter()
            .rev()
            .find(|d| d.first_key.as_slice() <= rev_key)
    }

    fn lookup_value(&self, t: IndicatorType, value_lower: &[u8], hits: &mut Vec<Hit>) {
        let fst = self.values.as_fst();
        let mut node = fst.root();
        let mut out = fst::raw::Output::zero();
        for &b in std::iter::once(&type_byte(t)).chain(value_lower) {
            match node.find_input(b) {
                Some(i) => {
                    let tr = node.transition(i);
                    out = out.cat(tr.out);
                    node = fst.node(tr.addr);
                }
                None => return,
            }
        }
        if node.is_final() {
            let id = out.cat(node.final_output()).value();
            if let Ok(id) = u32::try_from(id) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            }
        }
    }
}

/// The result of a scoped thread; its panic, if any, continues on this thread.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The order of snapshot ids (and of [`Snapshot::iter`]): by itype, then by value bytes,
/// except that two domains compare by their label-reversed names (`com.example.www`),
/// the domain FST's key order.
pub fn id_order(a: &Indicator, b: &Indicator) -> std::cmp::Ordering {
    a.itype.cmp(&b.itype).then_with(|| {
        if a.itype == IndicatorType::Fqdn {
            let key = |v: &str| reverse_labels(v).unwrap_or_else(|| v.as_bytes().to_vec());
            key(&a.value).cmp(&key(&b.value))
        } else {
            a.value.cmp(&b.value)
        }
    })
}

/// The domain FST's key of an observed name: trimmed as [`Matcher::match_domain`] trims it
/// (one trailing dot), label-reversed and lower-cased (`www.Example.com` →
/// `com.example.www`); `None` for an empty, over-long or IP-literal host. Other indexes of
/// observed names (the retro-hunt index) key them with this, so one prefix range over the
/// keys finds a domain and every name below it.
pub fn domain_key(host: &str) -> Option<Vec<u8>> {
    let h = text::trim_host(host)?;
    if h.len() > text::MAX_HOST_LEN || text::host_as_ip(h).is_some() {
        return None;
    }
    let mut buf = [0u8; text::MAX_HOST_LEN];
    Some(reversed_key(h.as_bytes(), &mut buf).to_vec())
}

/// The name a [`domain_key`] stands for (`com.example.www` → `www.example.com`).
pub fn domain_of_key(key: &str) -> String {
    unreverse(key)
}

/// `www.example.com` → `com.example.www` (at most 253 bytes).
fn reverse_labels(name: &str) -> Option<Vec<u8>> {
    if name.len() > 253 {
        return None;
    }
    let mut out = Vec::with_capacity(name.len());
    reverse_labels_into(name.as_bytes(), &mut out);
    Some(out)
}

/// Append `name`'s dot-separated labels last to first to `out` (`www.example.com` →
/// `com.example.www`), bytes as they are: the domain FST's key of a stored name. Its own
/// inverse, so the same call turns a key back into its name.
pub fn reverse_labels_into(name: &[u8], out: &mut Vec<u8>) {
    out.reserve(name.len());
    for (i, l) in name.rsplit(|&b| b == b'.').enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(l);
    }
}

fn unreverse(rev: &str) -> String {
    let mut out = Vec::with_capacity(rev.len());
    reverse_labels_into(rev.as_bytes(), &mut out);
    // Labels of valid UTF-8 split at an ASCII dot stay valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Ask the CPU to start loading the cache line of `p` (no effect on other targets).
#[inline]
/// `may_alert_domain` of a host [`text::plain_http_host`] returned, with no patterns
/// loaded: such a host is its own normalised form, has no trailing dot and is no IP
/// literal, so only its length and the Bloom probes of its suffixes remain. Also the whole
/// answer for its URL: every URL indicator's host is among the probed names.
fn plain_host_may_alert(pf: &prefilter::Prefilter, url: &[u8], host: &[u8]) -> bool {
    if host.len() > text::MAX_HOST_LEN {
        return false;
    }
    // When `host` is the slice of `url` that `plain_http_host` returned (not a copy), the
    // bytes after it are there to read whole words and 16-byte blocks from.
    match text::plain_http_rest(url) {
        Some(rest) if rest.as_ptr() == host.as_ptr() && rest.len() > host.len() => {
            pf.may_contain_lower_name(rest, host.len())
        }
        _ => pf.may_contain_name(host),
    }
}

/// `src` (at most [`text::MAX_HOST_LEN`] bytes) label-reversed and lower-cased into `buf`,
/// as the domain FST keys names: `www.Example.com` → `com.example.www`.
fn reversed_key<'b>(src: &[u8], buf: &'b mut [u8; text::MAX_HOST_LEN]) -> &'b [u8] {
    let mut w = 0;
    let mut end = src.len().min(buf.len());
    loop {
        let start = src[..end]
            .iter()
            .rposition(|&b| b == b'.')
            .map_or(0, |p| p + 1);
        for &b in &src[start..end] {
            buf[w] = b.to_ascii_lowercase();
            w += 1;
        }
        if start == 0 {
            break;
        }
        buf[w] = b'.';
        w += 1;
        end = start - 1;
    }
    &buf[..w]
}

/// Hash-like types looked up by `match_hash`, by observed length.
fn hash_types(len: usize) -> &'static [IndicatorType] {
    use IndicatorType as T;
    match len {
        32 => &[T::Md5, T::Ja3],
        40 => &[T::Sha1, T::X509Sha1],
        64 => &[T::Sha256],
        128 => &[T::Sha512],
        36 | 25 => &[T::Ja4],
        _ => &[],
    }
}

impl Matcher for Snapshot {
    fn match_domain(&self, host: &str, hits: &mut Vec<Hit>) {
        let Some(h) = text::trim_host(host) else {
            return;
        };
        if let Some(ip) = text::host_as_ip(h) {
            self.match_ip(ip, hits);
            return;
        }
        let mut buf = [0u8; text::MAX_HOST_LEN];
        let key = reversed_key(h.as_bytes(), &mut buf);
        let Some(shard) = self.domain_shard(key) else {
            return;
        };
        let fst = shard.map.as_fst();
        let mut node = fst.root();
        let mut out = fst::raw::Output::zero();
        let base = self.type_start[2];
        let report = |rank: u64, exact: bool, hits: &mut Vec<Hit>| {
            let Ok(rank) = u32::try_from(rank) else {
                return;
            };
            if let Some((id, exact_only)) = self.dom_idx.id_of(rank) {
                if exact || !exact_only {
                    hits.push(Hit {
                        id: id + base,
                        kind: if exact {
                            MatchKind::Exact
                        } else {
                            MatchKind::ParentDomain
                        },
                    });
                }
            }
        };
        for &b in key {
            if b == b'.' && node.is_final() {
                report(out.cat(node.final_output()).value(), false, hits);
            }
            match node.find_input(b) {
                Some(i) => {
                    let tr = node.transition(i);
                    out = out.cat(tr.out);
                    node = fst.node(tr.addr);
                }
                None => return,
            }
        }
        if node.is_final() {
            report(out.cat(node.final_output()).value(), true, hits);
        }
    }

    fn match_ip(&self, ip: IpAddr, hits: &mut Vec<Hit>) {
        let list = match ip {
            IpAddr::V4(a) => self.ips.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => self.ips.lookup_v6(u128::from(a)),
        };
        for raw in list {
            hits.push(Hit {
                id: raw & 0x7fff_ffff,
                kind: if raw & 0x8000_0000 != 0 {
                    MatchKind::EnclosingCidr
                } else {
                    MatchKind::Exact
                },
            });
        }
    }

    fn match_url(&self, url: &str, hits: &mut Vec<Hit>) {
        let u = normalize_observed_url(url);
        let bytes = u.as_bytes();
        let fst = self.values.as_fst();
        let mut node = fst.root();
        let mut out = fst::raw::Output::zero();
        let mut ok = true;
        match node.find_input(type_byte(IndicatorType::Url)) {
            Some(i) => {
                let tr = node.transition(i);
                out = out.cat(tr.out);
                node = fst.node(tr.addr);
            }
            None => ok = false,
        }
        let mut seen_query = false;
        if ok {
            for (i, &b) in bytes.iter().enumerate() {
                match node.find_input(b) {
                    Some(ti) => {
                        let tr = node.transition(ti);
                        out = out.cat(tr.out);
                        node = fst.node(tr.addr);
                    }
                    None => break,
                }
                if b == b'?' {
                    seen_query = true;
                }
                if !node.is_final() {
                    continue;
                }
                let id = out.cat(node.final_output()).value();
                let Ok(id) = u32::try_from(id) else { continue };
                if i + 1 == bytes.len() {
                    hits.push(Hit {
                        id,
                        kind: MatchKind::Exact,
                    });
                } else if !seen_query && (b == b'/' || matches!(bytes[i + 1], b'/' | b'?')) {
                    hits.push(Hit {
                        id,
                        kind: MatchKind::UrlPrefix,
                    });
                }
            }
        }
        self.match_pattern(bytes, hits);
    }

    fn match_hash(&self, value: &str, hits: &mut Vec<Hit>) {
        let types = hash_types(value.len());
        if types.is_empty() {
            return;
        }
        let mut buf = [0u8; 128];
        let Some(dst) = buf.get_mut(..value.len()) else {
            return;
        };
        for (d, s) in dst.iter_mut().zip(value.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        for &t in types {
            self.lookup_value(t, &buf[..value.len()], hits);
        }
    }

    fn match_email(&self, address: &str, hits: &mut Vec<Hit>) {
        let mut buf = [0u8; 320];
        let Some(dst) = buf.get_mut(..address.len()) else {
            return;
        };
        for (d, s) in dst.iter_mut().zip(address.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        self.lookup_value(IndicatorType::Email, &buf[..address.len()], hits);
    }

    fn match_pattern(&self, text: &[u8], hits: &mut Vec<Hit>) {
        let Some(ac) = &self.patterns else {
            return;
        };
        let start = hits.len();
        for m in ac.find_overlapping_iter(text) {
            let Some(&id) = self.pattern_ids.get(m.pattern().as_usize()) else {
                continue;
            };
            if !hits[start..].iter().any(|h| h.id == id) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Substring,
                });
            }
        }
    }

    fn match_text(&self, text: &[u8], hits: &mut Vec<Hit>) {
        text::match_text_with(self, text, hits);
    }
}
