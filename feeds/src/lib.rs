//! trawl's feed side: `trawl.toml` feed config ([`config`]), format parsers and detection
//! ([`parse`]), fetching ([`fetch`]), allowlists ([`allowlist`]) and the update pipeline
//! that normalises, derives, merges, expires and publishes a snapshot ([`update`]), each
//! feed's state as `trawl feeds` shows it ([`status`]) and the default feed set `trawl init`
//! writes ([`defaults`]).

pub mod allowlist;
pub mod breadth;
pub mod config;
pub mod defaults;
pub mod export;
pub mod fetch;
pub mod fleet;
pub mod misp_feed;
pub mod parse;
pub mod pull_store;
pub mod runs;
pub mod status;
pub mod taxii;
pub mod update;

pub use config::{Config, ConfigError, FeedConfig, Format};
pub use parse::{detect_format, parse_feed, ParsedFeed};
pub use update::{update, FeedStatus, FeedSummary, UpdateError, UpdateOptions, UpdateReport};

/// Progress callbacks from [`update::update`] (the CLI draws bars with them).
pub trait Progress: Sync {
    /// A feed's fetch or read started; `total_bytes` when known.
    fn feed_started(&self, name: &str, total_bytes: Option<u64>);
    /// `n` more bytes of the feed were read.
    fn feed_bytes(&self, name: &str, n: u64);
    /// The feed is done (parsed, skipped or failed).
    fn feed_finished(&self, name: &str, summary: &FeedSummary);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn feed_started(&self, _name: &str, _total_bytes: Option<u64>) {}
    fn feed_bytes(&self, _name: &str, _n: u64) {}
    fn feed_finished(&self, _name: &str, _summary: &FeedSummary) {}
}
