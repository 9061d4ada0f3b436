//! A sensor fleet (ARCHITECTURE.md §10): one publisher signs its indicator set as a versioned
//! bundle plus deltas from recent releases ([`publish`]), served from any static web server;
//! sensors pull it ([`pull`]), verify the signature and every hash, apply a delta or the full
//! bundle, refuse what looks wrong (fail closed: the last good set stays) and hand the set to
//! the update pipeline, which combines it with their own feeds and allowlist.
//!
//! - [`delta`]: deltas between releases (format 2 composes), applying and composing them.
//! - [`keys`]: Ed25519 keys (`trawl keygen`).
//! - [`set`]: the published indicator set, its canonical bytes and content hash, deltas.
//! - [`manifest`]: the signed manifest (`latest.json`).
//! - [`publish`]: `trawl publish --to DIR`.
//! - [`pull`]: the sensor side, `[upstream]` in `trawl update`.

pub mod delta;
pub mod keys;
pub mod manifest;
pub mod publish;
pub mod pull;
pub mod set;

use std::path::PathBuf;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key is missing, malformed or unusable.
    #[error("key: {0}")]
    Key(String),
    /// A download failed (network, HTTP status, size cap): the last good set is kept.
    #[error("{0}")]
    Fetch(#[from] crate::fetch::FetchError),
    /// What was published does not verify or fails a guard: refused, the last good set is
    /// kept.
    #[error("refused: {0}")]
    Refused(String),
    /// The local snapshot or publish directory is unusable.
    #[error("{0}")]
    Local(String),
}
