//! The server's own state: tokens, submissions and the search log, behind the [`Store`] trait
//! so the embedded SQLite file ([`sqlite::SqliteStore`], the default) and a PostgreSQL server
//! ([`postgres::PgStore`], for several replicas) share one schema and one list of migrations
//! ([`MIGRATIONS`], adapted per [`Dialect`]) and one decoding of rows.

pub mod postgres;
pub mod sqlite;

use crate::sighting::{SightingBatch, SightingRow};
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
/// in one transaction. Plain SQL that SQLite and PostgreSQL both accept, but for the
/// substitutions of [`Dialect::step`]. Never edit a published step; add one.
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
    // 3 (fleet registry, issue 19): one row per sensor (name, token user) pulling releases.
    // `last_sighting_batch`: when its last sightings batch arrived.
    "CREATE TABLE fleet_sensors (
        name TEXT NOT NULL,
        username TEXT NOT NULL,
        grant_key TEXT NOT NULL,
        release_id TEXT NOT NULL,
        version TEXT NOT NULL,
        first_pull BIGINT NOT NULL,
        last_pull BIGINT NOT NULL,
        pulls BIGINT NOT NULL,
        last_sighting_batch BIGINT,
        PRIMARY KEY (name, username)
    );",
    // 4 (sightings, issue 19).
    SIGHTINGS_MIGRATION,
];

/// The upsert of one pull into `fleet_sensors` (parameters: name, user, grant key, release,
/// version, now), in SQLite's `?N` spelling; PostgreSQL's is the same with `$N`.
pub(crate) const RECORD_PULL_SQL: &str = "INSERT INTO fleet_sensors (name, username, \
     grant_key, release_id, version, first_pull, last_pull, pulls) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1) ON CONFLICT (name, username) DO UPDATE SET \
     grant_key = excluded.grant_key, release_id = excluded.release_id, \
     version = excluded.version, last_pull = excluded.last_pull, \
     pulls = fleet_sensors.pulls + 1";

/// A sightings batch's arrival noted on its sensor's fleet row (parameters: now, sensor name,
/// user), in SQLite's `?N` spelling; PostgreSQL's is the same with `$N`. A sensor that sends
/// sightings but never pulls releases has no row, and nothing is noted.
pub(crate) const SIGHTING_SEEN_SQL: &str =
    "UPDATE fleet_sensors SET last_sighting_batch = ?1 WHERE name = ?2 AND username = ?3";

/// The columns of a fleet sensor row, in [`FleetSensor`] order.
pub(crate) const FLEET_COLUMNS: &str = "name, username, grant_key, release_id, version, \
     first_pull, last_pull, pulls, last_sighting_batch";

/// A sensor of the fleet as the server last saw it pull (`fleet_sensors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetSensor {
    /// Its name (`X-Trawl-Sensor`, `[upstream] name`).
    pub name: String,
    /// The user of the token it pulls with.
    pub user: String,
    /// Its token's grant ([`crate::releases::grant_key`]): which release it should run.
    pub grant_key: String,
    /// The release it said it holds (empty: none yet).
    pub release: String,
    /// Its trawl version (from `User-Agent`).
    pub version: String,
    /// First pull seen.
    pub first_pull: UnixTime,
    /// Last pull seen.
    pub last_pull: UnixTime,
    /// Pulls seen.
    pub pulls: i64,
    /// When its last sighting batch arrived (filled by the sightings side; `None`: never).
    pub last_sighting_batch: Option<UnixTime>,
}

/// The step adding sightings (issue 19): the batches seen (for idempotency, with the answer
/// each got), the per-(indicator, sensor, groups) aggregates and the client addresses.
/// Kept as a named constant so its position in [`MIGRATIONS`] can move at a merge.
pub const SIGHTINGS_MIGRATION: &str = "CREATE TABLE sighting_batches (
        username TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        sensor TEXT NOT NULL,
        received BIGINT NOT NULL,
        answer TEXT NOT NULL,
        PRIMARY KEY (username, batch_id)
    );
    CREATE INDEX sighting_batches_sensor ON sighting_batches (sensor, received);
    CREATE INDEX sighting_batches_received ON sighting_batches (received);
    CREATE TABLE sightings (
        itype TEXT NOT NULL,
        value TEXT NOT NULL,
        sensor TEXT NOT NULL,
        groups TEXT NOT NULL,
        count BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (itype, value, sensor, groups)
    );
    CREATE TABLE sighting_clients (
        itype TEXT NOT NULL,
        value TEXT NOT NULL,
        sensor TEXT NOT NULL,
        client TEXT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (itype, value, sensor, client)
    );";

/// The SQL dialect a step of [`MIGRATIONS`] is run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: the steps as written.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// `step` for this dialect. The only difference is the auto-numbered key: SQLite numbers
    /// an `INTEGER PRIMARY KEY` (the rowid) itself, PostgreSQL needs an identity column.
    pub fn step(self, step: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Dialect::Sqlite => step.into(),
            Dialect::Postgres => step
                .replace(
                    "INTEGER PRIMARY KEY",
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                )
                .into(),
        }
    }
}

/// Where the store is: `[server] database` (a path, relative to the data directory, or a
/// `postgres://` / `postgresql://` URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL (or `key=value` string).
    Postgres(String),
}

impl Location {
    /// The store named by `database` (default `server.db`) for data directory `data`.
    pub fn new(data: &std::path::Path, database: Option<&std::path::Path>) -> Location {
        let db = database.unwrap_or(std::path::Path::new("server.db"));
        match db.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location::Postgres(url.to_string())
            }
            _ => Location::Sqlite(data.join(db)),
        }
    }

    /// Open the store (creating or upgrading its schema).
    pub fn open(&self) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        Ok(match self {
            Location::Sqlite(path) => std::sync::Arc::new(sqlite::SqliteStore::open(path)?),
            Location::Postgres(url) => std::sync::Arc::new(postgres::PgStore::open(url)?),
        })
    }
}

/// The schema version found in a store, checked against the `known` steps of this build.
pub(crate) fn check_version(path: &str, found: u32, known: u32) -> Result<(), StoreError> {
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known,
        });
    }
    Ok(())
}

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
    /// Whether a call may start a runtime of its own (the sync PostgreSQL client does), so it
    /// must never run on an async worker: requests then always go to the blocking pool.
    fn needs_blocking_pool(&self) -> bool {
        false
    }
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
    /// A number that changes whenever any process may have changed the store (so a token
    /// read before it may be stale), read without waiting for the store's writers; `None`
    /// when the store has no such cheap probe (then every request looks its token up).
    fn tokens_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
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
    /// Count searches (each adds to an existing record of the same value, user, groups,
    /// TLP), all in one transaction that bumps the search log's generation once.
    fn log_searches(&self, searches: &[LoggedSearch]) -> Result<(), StoreError>;
    /// Every logged search.
    fn searches(&self) -> Result<Vec<LoggedSearch>, StoreError>;
    /// Two numbers that change whenever the submissions, resp. the search log, change (from
    /// any process sharing the store).
    fn generations(&self) -> Result<(i64, i64), StoreError>;
    /// Record a sensor's pull of its release (`sensor.first_pull`, `pulls` and
    /// `last_sighting_batch` are ignored: kept from the stored row).
    fn record_pull(&self, sensor: &FleetSensor) -> Result<(), StoreError>;
    /// Every sensor seen, by name then user.
    fn fleet_sensors(&self) -> Result<Vec<FleetSensor>, StoreError>;
    /// Store a checked sightings batch sent by `user` with `groups` (who may see its rows),
    /// with `answer` (the text the sender gets), in one transaction. A batch id this user
    /// sent before changes nothing: the answer stored then is returned as `Some`.
    fn add_sightings(
        &self,
        user: &str,
        groups: &[String],
        batch: &SightingBatch,
        answer: &str,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError>;
    /// The stored sighting rows, of one type and one value when given.
    fn sightings(
        &self,
        itype: Option<IndicatorType>,
        value: Option<&str>,
    ) -> Result<Vec<SightingRow>, StoreError>;
}

/// The columns of a sighting row, in [`SightingDbRow`] order.
pub(crate) const SIGHTING_COLUMNS: &str =
    "itype, value, sensor, groups, count, first_seen, last_seen";

/// The `WHERE` clause selecting the sighting rows of [`Store::sightings`]'s arguments (with
/// `$1`/`$2` placeholders; SQLite reads them as numbered ones too), so that a lookup of
/// one value uses the key's index rather than a scan.
pub(crate) fn sighting_filter(itype: bool, value: bool) -> &'static str {
    match (itype, value) {
        (true, true) => "WHERE itype = $1 AND value = $2",
        (true, false) => "WHERE itype = $1",
        (false, true) => "WHERE value = $1",
        (false, false) => "",
    }
}

/// A sighting row as stored.
pub(crate) type SightingDbRow = (String, String, String, String, i64, i64, i64);

/// Decode a sighting row of the store at `path`.
pub(crate) fn decode_sighting(path: &str, row: SightingDbRow) -> Result<SightingRow, StoreError> {
    let (itype, value, sensor, groups, count, first, last) = row;
    Ok(SightingRow {
        itype: itype
            .parse()
            .map_err(|e: matcher::UnknownName| StoreError::Damaged {
                path: path.to_string(),
                table: "sightings",
                reason: e.to_string(),
            })?,
        value,
        sensor,
        groups: split(&groups),
        count: u64::try_from(count).unwrap_or(0),
        first_seen: first,
        last_seen: last,
    })
}

/// The client rows of a batch: (itype, value, client, last_seen).
pub(crate) fn client_rows(batch: &SightingBatch) -> Vec<(&'static str, &str, &str, i64)> {
    batch
        .items
        .iter()
        .flat_map(|it| {
            it.clients.iter().map(move |c| {
                (
                    it.itype.as_str(),
                    it.value.as_str(),
                    c.as_str(),
                    it.last_seen,
                )
            })
        })
        .collect()
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

/// The columns of a token row, in [`TokenRow`] order.
pub(crate) const TOKEN_COLUMNS: &str = "id, hash, username, groups, can_read, can_write, \
                                        is_admin, max_tlp, itypes, expires, revoked, created";

/// A token row as stored (flags as read from the database).
pub(crate) struct TokenRow {
    pub id: i64,
    pub hash: String,
    pub user: String,
    pub groups: String,
    pub read: bool,
    pub write: bool,
    pub admin: bool,
    pub max_tlp: String,
    pub itypes: String,
    pub expires: Option<i64>,
    pub revoked: bool,
    pub created: i64,
}

impl TokenRow {
    /// The token, if the row decodes; `None` for a row whose stored hash is not `wanted`
    /// (compared in constant time, so no timing difference depends on how much of a guess
    /// was right).
    pub(crate) fn matches(&self, wanted: &TokenHash) -> bool {
        parse_hash(&self.hash).is_some_and(|s| s.matches(wanted))
    }

    /// Decode the row of the store at `path`.
    pub(crate) fn decode(self, path: &str) -> Result<Token, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            path: path.to_string(),
            table: "tokens",
            reason,
        };
        let max_tlp: Tlp = self
            .max_tlp
            .parse()
            .map_err(|e: matcher::UnknownName| damaged(e.to_string()))?;
        let itypes = split(&self.itypes)
            .iter()
            .map(|t| t.parse::<IndicatorType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| damaged(e.to_string()))?;
        Ok(Token {
            id: self.id,
            grant: Grant {
                user: self.user,
                groups: split(&self.groups),
                read: self.read,
                write: self.write,
                admin: self.admin,
                max_tlp,
                itypes,
                expires: self.expires,
            },
            created: self.created,
            revoked: self.revoked,
            hash_prefix: self.hash.get(..8).unwrap_or_default().to_string(),
        })
    }
}

/// The columns of a search log row, in [`SearchRow`] order.
pub(crate) const SEARCH_COLUMNS: &str =
    "itype, value, username, groups, tlp, count, first_seen, last_seen";

/// A search log row as stored.
pub(crate) type SearchRow = (String, String, String, String, String, i64, i64, i64);

/// Decode a search log row of the store at `path`.
pub(crate) fn decode_search(path: &str, row: SearchRow) -> Result<LoggedSearch, StoreError> {
    let (itype, value, user, groups, tlp, count, first, last) = row;
    let bad = |e: matcher::UnknownName| StoreError::Damaged {
        path: path.to_string(),
        table: "search_log",
        reason: e.to_string(),
    };
    Ok(LoggedSearch {
        itype: itype.parse().map_err(bad)?,
        value,
        user,
        groups: split(&groups),
        tlp: tlp.parse().map_err(bad)?,
        count: u64::try_from(count).unwrap_or(0),
        first_seen: first,
        last_seen: last,
    })
}

/// A submission as stored (JSON of the indicator).
pub(crate) fn encode_submission(path: &str, ind: &Indicator) -> Result<String, StoreError> {
    serde_json::to_string(ind).map_err(|e| StoreError::Damaged {
        path: path.to_string(),
        table: "submissions",
        reason: e.to_string(),
    })
}

/// The inverse of [`encode_submission`].
pub(crate) fn decode_submission(path: &str, json: &str) -> Result<Indicator, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Damaged {
        path: path.to_string(),
        table: "submissions",
        reason: e.to_string(),
    })
}

/// A token hash from its stored hex.
fn parse_hash(hex: &str) -> Option<TokenHash> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let s = std::str::from_utf8(b.get(2 * i..2 * i + 2)?).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(TokenHash(out))
}
