//! The server's own state: tokens, submissions and the search log, behind the [`Store`] trait
//! so the embedded SQLite file ([`sqlite::SqliteStore`], the default) and a PostgreSQL server
//! (next) share one schema and one list of migrations ([`MIGRATIONS`]).

pub mod sqlite;

use crate::token::{Grant, Token, TokenHash};
use matcher::{Indicator, IndicatorType, Tlp, UnixTime};
use serde::Serialize;

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("{path}: {message}")]
    Db {
        /// Where the store is.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store was written by a newer trawl.
    #[error(
        "{path}: store schema version {found} is newer than this trawl knows ({known}); \
         upgrade trawl"
    )]
    TooNew {
        /// Where the store is.
        path: String,
        /// Its version.
        found: u32,
        /// The newest this build knows.
        known: u32,
    },
    /// A stored row does not decode (edited by hand, or damaged).
    #[error("{path}: damaged row in {table}: {reason}")]
    Damaged {
        /// Where the store is.
        path: String,
        /// The table.
        table: &'static str,
        /// Why.
        reason: String,
    },
}

/// The schema, one step per version: version `i + 1` is reached by running `MIGRATIONS[i]`
/// in one transaction. Plain SQL that SQLite and PostgreSQL both accept. Never edit a
/// published step; add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: tokens.
    "CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        username TEXT NOT NULL,
        groups TEXT NOT NULL,
        can_read INTEGER NOT NULL,
        can_write INTEGER NOT NULL,
        is_admin INTEGER NOT NULL,
        max_tlp TEXT NOT NULL,
        itypes TEXT NOT NULL,
        expires BIGINT,
        revoked INTEGER NOT NULL DEFAULT 0,
        created BIGINT NOT NULL
    );
    CREATE INDEX tokens_username ON tokens (username);",
    // 2: submissions, the search log, and a change counter the servers poll.
    "CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        itype TEXT NOT NULL,
        value TEXT NOT NULL,
        provider TEXT NOT NULL,
        indicator TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT
    );
    CREATE INDEX submissions_value ON submissions (itype, value);
    CREATE TABLE search_log (
        itype TEXT NOT NULL,
        value TEXT NOT NULL,
        username TEXT NOT NULL,
        groups TEXT NOT NULL,
        tlp TEXT NOT NULL,
        count BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (itype, value, username, groups, tlp)
    );
    CREATE TABLE changes (submissions BIGINT NOT NULL, searches BIGINT NOT NULL);
    INSERT INTO changes (submissions, searches) VALUES (0, 0);",
];

/// One logged search: a user (with the groups and TLP ceiling of the token used) looked a
/// value up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedSearch {
    /// The value in normal form.
    pub value: String,
    /// Its type.
    pub itype: IndicatorType,
    /// Who searched.
    pub user: String,
    /// Who may see this record: the searching token's groups.
    pub groups: Vec<String>,
    /// Its TLP: the searching token's ceiling.
    pub tlp: Tlp,
    /// How many times.
    pub count: u64,
    /// First search.
    pub first_seen: UnixTime,
    /// Last search.
    pub last_seen: UnixTime,
}

/// What the server keeps. Every method is one short transaction; implementations are
/// shared between the server's threads.
pub trait Store: Send + Sync {
    /// The schema version after migrations.
    fn schema_version(&self) -> Result<u32, StoreError>;
    /// Store a new token's hash and grant.
    fn create_token(
        &self,
        hash: &TokenHash,
        grant: &Grant,
        now: UnixTime,
    ) -> Result<Token, StoreError>;
    /// The token with this hash, if any (revoked and expired ones too: the caller decides).
    fn token(&self, hash: &TokenHash) -> Result<Option<Token>, StoreError>;
    /// Every token, oldest first.
    fn tokens(&self) -> Result<Vec<Token>, StoreError>;
    /// Revoke the token with this hash; how many were revoked (0 or 1).
    fn revoke_hash(&self, hash: &TokenHash) -> Result<usize, StoreError>;
    /// Revoke every token of a user; how many were revoked.
    fn revoke_user(&self, user: &str) -> Result<usize, StoreError>;
    /// Add submitted indicators (their provider, groups and times already set); their ids.
    fn add_submissions(&self, items: &[Indicator], now: UnixTime) -> Result<Vec<i64>, StoreError>;
    /// Every submission not expired at `now`.
    fn submissions(&self, now: UnixTime) -> Result<Vec<Indicator>, StoreError>;
    /// Delete the submissions of this value (and type, when given); how many.
    fn delete_submissions(
        &self,
        itype: Option<IndicatorType>,
        value: &str,
    ) -> Result<usize, StoreError>;
    /// Count one search (adds to an existing record of the same value, user, groups, TLP).
    fn log_search(&self, search: &LoggedSearch) -> Result<(), StoreError>;
    /// Every logged search.
    fn searches(&self) -> Result<Vec<LoggedSearch>, StoreError>;
    /// Two numbers that change whenever the submissions, resp. the search log, change (from
    /// any process sharing the store).
    fn generations(&self) -> Result<(i64, i64), StoreError>;
}

/// Comma-joined names (group names and itypes never contain a comma).
pub(crate) fn join(list: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut s = String::new();
    for (i, x) in list.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(x.as_ref());
    }
    s
}

/// The inverse of [`join`].
pub(crate) fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}
