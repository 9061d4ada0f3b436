//! trawl's bottom floor: the indicator model, normalisation, the compiled snapshot and the
//! matcher. No tokio and no I/O besides reading and writing its own snapshot directories.
//!
//! * [`model`]: [`Indicator`], [`IndicatorType`], [`Severity`], [`Tlp`], merge rules.
//! * [`normalize`]: canonical forms of domains, IPs/CIDRs, URLs, hashes; refanging.
//! * [`snapshot`]: [`SnapshotBuilder`] (immutable builder) → a versioned directory published
//!   atomically → [`Snapshot`] loaded by mmap.
//! * [`query`]: the lookup of one value of any type, shared by `trawl query` and the server.
//! * [`calendar`]: civil dates ↔ days since the epoch, for every timestamp parser.
//! * [`fxhash`]: the one fast hasher for maps without hostile keys.
//! * [`simd`]: every SIMD primitive (byte-class masks, the octet shuffle) beside its scalar
//!   twin, shared with the log parsers.
//! * [`text`]: observed-host helpers and the `--raw` tokeniser shared by every matcher.
//! * [`Matcher`]: the lookup trait, implemented by [`Snapshot`] and by the reference
//!   [`NaiveMatcher`] that property tests compare it against.

pub mod calendar;
pub mod fxhash;
pub mod matcher;
pub mod model;
pub mod naive;
pub mod normalize;
pub mod panics;
pub mod query;
pub mod simd;
pub mod snapshot;
pub mod text;

pub use matcher::{Hit, IndicatorId, Matcher};
pub use model::{
    Groups, Indicator, IndicatorType, MatchKind, Severity, Tlp, UnixTime, UnknownName,
    DEFAULT_GROUP,
};
pub use naive::NaiveMatcher;
pub use normalize::{normalize, NormalizeError, Normalized};
pub use snapshot::{Snapshot, SnapshotBuilder, SnapshotError, SnapshotMeta, StreamBuilder};
