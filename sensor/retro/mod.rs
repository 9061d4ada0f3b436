//! Retro-hunt: an index of what the network already did (ARCHITECTURE.md §10).
//!
//! Every distinct matchable value an observation carries (the fields of
//! [`ingest::MATCH_FIELDS`], read through [`ingest::Observation::for_each_matchable`], patterns
//! aside) is recorded with its first and last time, count, the fields it was seen in and a
//! bounded sample of clients, per hour, in immutable segments under `DATA/retro/` that are
//! compacted into days. Keys are the snapshot's ([`key`]): a domain indicator finds every
//! observed name below it by one prefix range, a CIDR every observed address in its range.
//!
//! * [`config`]: `[retro]` (`retention`, `max_bytes`, `clients`, `flush`).
//! * [`key`]: observed value ↔ index key, and the key ranges an indicator covers.
//! * [`segment`]: one segment file (header, index, data, CRC), written crash-safely.
//! * [`blocks`]: a segment's keys and stats in front-coded, compressed blocks under their heads.
//! * [`store`]: the directory of segments: open (damaged ones set aside), write, compact,
//!   prune by retention and size.
//! * [`record`]: observations → pending per-hour stats → segments (`--record`, `[retro]`).
//! * [`table`]: a worker's pending values, (hour, value) → stats over one key arena.
//! * [`merge`]: a flush's sorted tables merged by key range on both cores into partitions.
//! * [`hunt`]: indicators → observed values, checked with the snapshot's own matching.
//! * [`verified`]: the segments already checked whole, so a reader checks them once.

pub mod blocks;
pub mod config;
pub mod hunt;
pub mod key;
pub mod merge;
pub mod record;
pub mod segment;
pub mod store;
pub mod table;
pub mod verified;

/// Seconds in one hour partition.
pub const HOUR: i64 = 3600;
/// Seconds in one day partition.
pub const DAY: i64 = 86_400;

/// Errors of the retro index.
#[derive(Debug, thiserror::Error)]
pub enum RetroError {
    /// A file of the index could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A segment's bytes are not a valid segment.
    #[error("{path}: damaged segment: {reason}")]
    Damaged {
        /// The segment file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Another process is writing the index.
    #[error(
        "{0}: another trawl is recording into this retro index (a `trawl run` with [retro], \
         or a `scan --record`); wait for it to finish or record into another --data"
    )]
    Busy(String),
    /// The index's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] crate::data_files::DataFileError),
    /// `[retro]` is invalid.
    #[error("[retro]: {0}")]
    Config(String),
}

impl RetroError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RetroError + '_ {
        move |source| RetroError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
