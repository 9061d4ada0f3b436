//! `trawl serve`: a CIF v3-compatible threat-intelligence server over trawl's snapshot
//! (ARCHITECTURE.md §9).
//!
//! * [`store`]: tokens, submissions and the search log behind the [`store::Store`] trait;
//!   [`store::sqlite::SqliteStore`] is the embedded default, with versioned migrations.
//! * [`token`]: secrets (256 random bits, stored as SHA-256, compared in constant time) and
//!   the privilege rule [`token::Token::may_see`].
//! * [`token_cache`]: tokens already looked up, valid until the store changes.
//! * [`intel`]: what a search sees: the published snapshot, the submissions overlay, the
//!   search log; every row passes the privilege rule.
//! * [`query`]: the query-parameter parser (CIF's names and scales).
//! * [`cif`]: CIF v3's and the native API's JSON shapes, submission parsing.
//! * [`http`]: the endpoints, authentication, rate limits, compression, the audit log.
//! * [`fleet`]: the fleet registry (who pulls which release) and its `/metrics`.
//! * [`releases`]: fleet releases per token grant at `/v1/snapshot/...`.
//! * [`sighting`]: sightings batches sensors push back, and their per-indicator summary.
//! * [`web`]: the analyst web page at `/` (sign in, search, feeds; no script, strict CSP).
//! * [`serve`]: binding, TLS, reloads, shutdown.
//! * [`config`]: the `[server]` table.

pub mod cif;
pub mod config;
pub mod fleet;
pub mod http;
pub mod intel;
pub mod limit;
pub mod query;
pub mod releases;
pub mod serve;
pub mod sighting;
pub mod store;
pub mod token;
pub mod token_cache;
pub mod web;
