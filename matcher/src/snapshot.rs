//! Compiled snapshots (DESIGN §4). PLACEHOLDER SIGNATURES: being implemented.

use crate::matcher::{Hit, IndicatorId, Matcher};
use crate::model::{Indicator, UnixTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    _private: (),
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one normalised indicator, merging it into an existing one of the same itype and value.
    pub fn insert(&mut self, indicator: Indicator) {
        let _ = indicator;
        todo!()
    }

    /// Number of distinct indicators so far.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compile into an in-memory snapshot (tests, `trawl demo`).
    pub fn build(self) -> Result<Snapshot, SnapshotError> {
        todo!()
    }

    /// Compile and publish atomically as a new version under `data_dir`; returns its directory.
    pub fn publish(
        self,
        data_dir: &Path,
        extra: serde_json::Value,
    ) -> Result<PathBuf, SnapshotError> {
        let _ = (data_dir, extra);
        todo!()
    }
}

/// A loaded, immutable, `Send + Sync` compiled indicator set.
#[derive(Debug)]
pub struct Snapshot {
    _private: (),
}

impl Snapshot {
    /// Load the current snapshot of `data_dir` by mmap.
    pub fn open_current(data_dir: &Path) -> Result<Snapshot, SnapshotError> {
        let _ = data_dir;
        todo!()
    }

    /// Load the snapshot in `dir` by mmap.
    pub fn open(dir: &Path) -> Result<Snapshot, SnapshotError> {
        let _ = dir;
        todo!()
    }

    /// Its metadata.
    pub fn meta(&self) -> &SnapshotMeta {
        todo!()
    }

    /// Number of indicators.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// True when it holds no indicator.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The full record of indicator `id`.
    pub fn indicator(&self, id: IndicatorId) -> Indicator {
        let _ = id;
        todo!()
    }

    /// Every indicator, ordered by (itype, value); ids are 0..len in this order.
    pub fn iter(&self) -> impl Iterator<Item = Indicator> + '_ {
        (0..self.len() as IndicatorId).map(|id| self.indicator(id))
    }
}

impl Matcher for Snapshot {
    fn match_domain(&self, host: &str, hits: &mut Vec<Hit>) {
        let _ = (host, hits);
        todo!()
    }
    fn match_ip(&self, ip: IpAddr, hits: &mut Vec<Hit>) {
        let _ = (ip, hits);
        todo!()
    }
    fn match_url(&self, url: &str, hits: &mut Vec<Hit>) {
        let _ = (url, hits);
        todo!()
    }
    fn match_hash(&self, value: &str, hits: &mut Vec<Hit>) {
        let _ = (value, hits);
        todo!()
    }
    fn match_email(&self, address: &str, hits: &mut Vec<Hit>) {
        let _ = (address, hits);
        todo!()
    }
    fn match_pattern(&self, text: &[u8], hits: &mut Vec<Hit>) {
        let _ = (text, hits);
        todo!()
    }
    fn match_text(&self, text: &[u8], hits: &mut Vec<Hit>) {
        let _ = (text, hits);
        todo!()
    }
}
