//! The shared store: a PostgreSQL database (`[server] database = "postgres://..."`), so
//! several server replicas (and `trawl token ...`) share tokens, submissions and the search
//! log. Same schema and migrations as SQLite ([`MIGRATIONS`] through [`Dialect::Postgres`]).
//!
//! Connections are pooled (at most [`MAX_CONNECTIONS`]); one that the server dropped (a
//! restart, a network cut) is thrown away and the call tried once more on a new one, so a
//! restarted PostgreSQL costs no request. No TLS: `sslmode=disable` (or the default,
//! `prefer`, which falls back to plain); meant for loopback or a trusted network.

use super::{
    check_version, decode_search, decode_sighting, decode_submission, encode_submission, join,
    sighting_filter, Dialect, FleetSensor, LoggedSearch, SearchRow, SightingDbRow, Store,
    StoreError, TokenRow, FLEET_COLUMNS, MIGRATIONS, RECORD_PULL_SQL, SEARCH_COLUMNS,
    SIGHTING_COLUMNS, SIGHTING_SEEN_SQL, TOKEN_COLUMNS,
};
use crate::sighting::{SightingBatch, SightingRow, BATCH_MEMORY};
use crate::token::{Grant, Token, TokenHash};
use ::postgres::config::{Host, SslMode};
use ::postgres::error::SqlState;
use ::postgres::{Client, Config, GenericClient, NoTls, Row};
use matcher::{Indicator, IndicatorType, UnixTime};
use std::cell::Cell;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Most connections one process opens at once; more callers wait for a free one.
pub const MAX_CONNECTIONS: usize = 8;

/// The key of the advisory lock that serialises migrations between replicas starting at once.
const MIGRATION_LOCK: i64 = 0x7472_6177_6c00_0001;

/// How long a connection attempt may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL store: a small pool of connections, every call one short transaction.
pub struct PgStore {
    config: Config,
    /// The URL without its password, for messages.
    shown: String,
    pool: Mutex<Pool>,
    freed: Condvar,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.shown).finish()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a sync client blocks on a runtime of its own, which panics on an async
        // worker (where the last holder of a server's state may drop it): close them on a
        // plain thread.
        let idle = std::mem::take(&mut self.lock().idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user[:password]@host[:port]/db`,
    /// optionally `?sslmode=disable`) and bring its schema up to date.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        Self::open_with(url, MIGRATIONS)
    }

    /// Connect and apply `migrations` (a prefix of [`MIGRATIONS`] builds the store an older
    /// trawl wrote; tests use it to check upgrades).
    pub fn open_with(url: &str, migrations: &[&str]) -> Result<PgStore, StoreError> {
        let mut config: Config = url.parse().map_err(|e| StoreError::Db {
            path: redact(url),
            message: format!(
                "not a PostgreSQL URL ({e}); write postgres://USER[:PASSWORD]@HOST:PORT/DATABASE"
            ),
        })?;
        let shown = describe(&config);
        match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => {}
            _ => {
                return Err(StoreError::Db {
                    path: shown,
                    message: "this trawl connects to PostgreSQL without TLS: use sslmode=disable \
                              (loopback or a trusted network)"
                        .into(),
                })
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("trawl serve");
        }
        let store = PgStore {
            config,
            shown,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        };
        let mut client = store.connect()?;
        let migrated = store.migrate(&mut client, migrations);
        store.checkin(client);
        migrated?;
        Ok(store)
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Apply the steps of `migrations` past the store's version, each in one transaction
    /// holding an advisory lock, so replicas starting together run each step once.
    fn migrate(&self, client: &mut Client, migrations: &[&str]) -> Result<u32, StoreError> {
        let known = migrations.len() as u32;
        let db = |e: ::postgres::Error| self.db(e);
        loop {
            let mut tx = client.transaction().map_err(db)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(db)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )
            .map_err(db)?;
            let version = current_version(&mut tx).map_err(db)?;
            check_version(&self.shown, version, known)?;
            let Some(step) = migrations.get(version as usize) else {
                tx.commit().map_err(db)?;
                return Ok(version);
            };
            tx.batch_execute(&Dialect::Postgres.step(step))
                .map_err(db)?;
            tx.execute("DELETE FROM schema_version", &[]).map_err(db)?;
            let next = i32::try_from(version + 1).unwrap_or(i32::MAX);
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&next])
                .map_err(db)?;
            tx.commit().map_err(db)?;
            tracing::info!(store = %self.shown, version = version + 1, "store schema upgraded");
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(|e| {
            let (host, port) = first_host(&self.config);
            StoreError::Db {
                path: self.shown.clone(),
                message: format!(
                    "cannot connect to PostgreSQL: {}; check that it runs and listens on \
                     {host} port {port} (pg_isready -h {host} -p {port}), and the URL's user, \
                     password and database",
                    reason(&e)
                ),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, or a new one while fewer than [`MAX_CONNECTIONS`] are open, or
    /// the next one freed.
    fn checkout(&self) -> Result<Client, StoreError> {
        let mut pool = self.lock();
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok(c);
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| self.discarded());
            }
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn checkin(&self, client: Client) {
        if client.is_closed() {
            self.discarded();
            return;
        }
        self.lock().idle.push(client);
        self.freed.notify_one();
    }

    fn discarded(&self) {
        let mut pool = self.lock();
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.freed.notify_one();
    }

    /// Run `f` on a pooled connection. When the connection turns out dead (the server
    /// restarted since it was last used), all idle ones are dropped and `f` runs once more on
    /// a fresh connection, unless it died while committing (through [`commit`]): then the
    /// change may be stored or not, and the caller gets the error rather than a second copy.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, ::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut retried = false;
        loop {
            let mut client = self.checkout()?;
            COMMITTING.with(|c| c.set(false));
            match f(&mut client) {
                Ok(v) => {
                    self.checkin(client);
                    return Ok(v);
                }
                Err(e) if lost(&e, &client) => {
                    drop(client);
                    self.discarded();
                    // Connections idle since the same restart are dead too.
                    let stale: Vec<Client> = std::mem::take(&mut self.lock().idle);
                    for _ in &stale {
                        self.discarded();
                    }
                    if COMMITTING.with(Cell::get) {
                        return Err(StoreError::Db {
                            path: self.shown.clone(),
                            message: format!(
                                "connection lost while committing, the change may or may not \
                                 be stored: {}",
                                reason(&e)
                            ),
                        });
                    }
                    if retried {
                        return Err(self.db(e));
                    }
                    tracing::warn!(store = %self.shown, "PostgreSQL connection lost ({e}); reconnecting");
                    retried = true;
                }
                Err(e) => {
                    self.checkin(client);
                    return Err(self.db(e));
                }
            }
        }
    }

    fn db(&self, e: ::postgres::Error) -> StoreError {
        StoreError::Db {
            path: self.shown.clone(),
            message: reason(&e),
        }
    }

    fn bump(tx: &mut impl GenericClient, what: &str) -> Result<u64, ::postgres::Error> {
        tx.execute(&format!("UPDATE changes SET {what} = {what} + 1"), &[])
    }
}

/// A row read as the tuple of its columns, column i into field i (the tuples that
/// `decode_search` and `decode_sighting` check, shared with SQLite).
trait RowTuple: Sized {
    fn from_row(r: &Row) -> Result<Self, ::postgres::Error>;
}

macro_rules! row_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: for<'a> ::postgres::types::FromSql<'a>),+> RowTuple for ($($t,)+) {
            fn from_row(r: &Row) -> Result<Self, ::postgres::Error> {
                Ok(($(r.try_get($i)?,)+))
            }
        }
    };
}
row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Every row of `sql` as a [`RowTuple`].
fn select_rows<T: RowTuple>(
    c: &mut Client,
    sql: &str,
    args: &[&(dyn ::postgres::types::ToSql + Sync)],
) -> Result<Vec<T>, ::postgres::Error> {
    c.query(sql, args)?.iter().map(T::from_row).collect()
}

thread_local! {
    /// Whether the call running on this thread has sent its COMMIT ([`commit`]).
    static COMMITTING: Cell<bool> = const { Cell::new(false) };
}

/// Commit a write's transaction, noting that from here a lost connection leaves its outcome
/// unknown (so [`PgStore::with`] must not run it again).
fn commit(tx: ::postgres::Transaction<'_>) -> Result<(), ::postgres::Error> {
    COMMITTING.with(|c| c.set(true));
    tx.commit()
}

/// What went wrong, in full: the server's message and code, or the error and its cause
/// (`postgres::Error` alone prints only "db error" or "error connecting to server").
fn reason(e: &::postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} ({})", d.message(), d.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether an error means the connection is gone (rather than the statement refused).
fn lost(e: &::postgres::Error, client: &Client) -> bool {
    if client.is_closed() || e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08 (connection exception), 57P01-57P03 (shutting down, cannot connect now).
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn current_version(c: &mut impl GenericClient) -> Result<u32, ::postgres::Error> {
    let v: i32 = c
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
        .try_get(0)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// `postgres://user@host:port/db` of a configuration, never its password.
fn describe(c: &Config) -> String {
    let (host, port) = first_host(c);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().or(c.get_user()).unwrap_or("")
    )
}

fn first_host(c: &Config) -> (String, u16) {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    (host, c.get_ports().first().copied().unwrap_or(5432))
}

/// A URL that did not parse, with anything between `://` and `@` dropped.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &url[..a], &url[b..]),
        _ => url.to_string(),
    }
}

fn token_row(r: &Row) -> Result<TokenRow, ::postgres::Error> {
    let flag = |i: usize| r.try_get::<_, i32>(i).map(|v| v != 0);
    Ok(TokenRow {
        id: r.try_get(0)?,
        hash: r.try_get(1)?,
        user: r.try_get(2)?,
        groups: r.try_get(3)?,
        read: flag(4)?,
        write: flag(5)?,
        admin: flag(6)?,
        max_tlp: r.try_get(7)?,
        itypes: r.try_get(8)?,
        expires: r.try_get(9)?,
        revoked: flag(10)?,
        created: r.try_get(11)?,
    })
}

impl Store for PgStore {
    fn needs_blocking_pool(&self) -> bool {
        true
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(current_version)
    }

    fn create_token(
        &self,
        hash: &TokenHash,
        grant: &Grant,
        now: UnixTime,
    ) -> Result<Token, StoreError> {
        let hex = hash.to_hex();
        let groups = join(&grant.groups);
        let itypes = join(grant.itypes.iter().map(|t| t.as_str()));
        let id: i64 = self.with(|c| {
            // A transaction, so a dead connection shows at BEGIN (safe to run again) and a
            // loss at COMMIT is not retried into a duplicate.
            let mut tx = c.transaction()?;
            let id = tx
                .query_one(
                    "INSERT INTO tokens (hash, username, groups, can_read, can_write, \
                     is_admin, max_tlp, itypes, expires, revoked, created) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) RETURNING id",
                    &[
                        &hex,
                        &grant.user,
                        &groups,
                        &i32::from(grant.read),
                        &i32::from(grant.write),
                        &i32::from(grant.admin),
                        &grant.max_tlp.as_str(),
                        &itypes,
                        &grant.expires,
                        &now,
                    ],
                )?
                .try_get(0)?;
            commit(tx)?;
            Ok(id)
        })?;
        Ok(Token {
            id,
            grant: grant.clone(),
            created: now,
            revoked: false,
            hash_prefix: hex.get(..8).unwrap_or_default().to_string(),
        })
    }

    fn token(&self, hash: &TokenHash) -> Result<Option<Token>, StoreError> {
        let hex = hash.to_hex();
        let row = self.with(|c| {
            c.query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"),
                &[&hex],
            )?
            .as_ref()
            .map(token_row)
            .transpose()
        })?;
        match row {
            Some(row) if row.matches(hash) => row.decode(&self.shown).map(Some),
            _ => Ok(None),
        }
    }

    fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        let rows = self.with(|c| {
            c.query(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"),
                &[],
            )?
            .iter()
            .map(token_row)
            .collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(|r| r.decode(&self.shown)).collect()
    }

    fn revoke_hash(&self, hash: &TokenHash) -> Result<usize, StoreError> {
        let hex = hash.to_hex();
        self.with(|c| {
            c.execute(
                "UPDATE tokens SET revoked = 1 WHERE hash = $1 AND revoked = 0",
                &[&hex],
            )
        })
        .map(|n| n as usize)
    }

    fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tokens SET revoked = 1 WHERE username = $1 AND revoked = 0",
                &[&user],
            )
        })
        .map(|n| n as usize)
    }

    fn add_submissions(&self, items: &[Indicator], now: UnixTime) -> Result<Vec<i64>, StoreError> {
        let rows = items
            .iter()
            .map(|ind| encode_submission(&self.shown, ind).map(|json| (ind, json)))
            .collect::<Result<Vec<_>, _>>()?;
        self.with(|c| {
            let mut tx = c.transaction()?;
            let st = tx.prepare(
                "INSERT INTO submissions (itype, value, provider, indicator, created, expires) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )?;
            let mut ids = Vec::with_capacity(rows.len());
            for (ind, json) in &rows {
                let id: i64 = tx
                    .query_one(
                        &st,
                        &[
                            &ind.itype.as_str(),
                            &ind.value,
                            &ind.provider.as_deref().unwrap_or_default(),
                            json,
                            &now,
                            &ind.expires,
                        ],
                    )?
                    .try_get(0)?;
                ids.push(id);
            }
            Self::bump(&mut tx, "submissions")?;
            commit(tx)?;
            Ok(ids)
        })
    }

    fn submissions(&self, now: UnixTime) -> Result<Vec<Indicator>, StoreError> {
        let rows: Vec<String> = self.with(|c| {
            c.query(
                "SELECT indicator FROM submissions \
                 WHERE expires IS NULL OR expires > $1 ORDER BY id",
                &[&now],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
        })?;
        rows.iter()
            .map(|j| decode_submission(&self.shown, j))
            .collect()
    }

    fn delete_submissions(
        &self,
        itype: Option<IndicatorType>,
        value: &str,
    ) -> Result<usize, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let n = match itype {
                Some(t) => tx.execute(
                    "DELETE FROM submissions WHERE itype = $1 AND value = $2",
                    &[&t.as_str(), &value],
                )?,
                None => tx.execute("DELETE FROM submissions WHERE value = $1", &[&value])?,
            };
            if n > 0 {
                Self::bump(&mut tx, "submissions")?;
            }
            commit(tx)?;
            Ok(n as usize)
        })
    }

    fn log_searches(&self, searches: &[LoggedSearch]) -> Result<(), StoreError> {
        if searches.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, i64)> = searches
            .iter()
            .map(|s| (join(&s.groups), i64::try_from(s.count).unwrap_or(i64::MAX)))
            .collect();
        self.with(|c| {
            let mut tx = c.transaction()?;
            let st = tx.prepare(
                "INSERT INTO search_log (itype, value, username, groups, tlp, count, \
                 first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (itype, value, username, groups, tlp) DO UPDATE SET \
                 count = search_log.count + excluded.count, \
                 last_seen = GREATEST(search_log.last_seen, excluded.last_seen)",
            )?;
            for (s, (groups, count)) in searches.iter().zip(&rows) {
                tx.execute(
                    &st,
                    &[
                        &s.itype.as_str(),
                        &s.value,
                        &s.user,
                        groups,
                        &s.tlp.as_str(),
                        count,
                        &s.first_seen,
                        &s.last_seen,
                    ],
                )?;
            }
            Self::bump(&mut tx, "searches")?;
            commit(tx)
        })
    }

    fn searches(&self) -> Result<Vec<LoggedSearch>, StoreError> {
        let sql = format!("SELECT {SEARCH_COLUMNS} FROM search_log ORDER BY itype, value");
        let rows: Vec<SearchRow> = self.with(|c| select_rows(c, &sql, &[]))?;
        rows.into_iter()
            .map(|r| decode_search(&self.shown, r))
            .collect()
    }

    fn generations(&self) -> Result<(i64, i64), StoreError> {
        self.with(|c| {
            let r = c.query_one("SELECT submissions, searches FROM changes", &[])?;
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    fn record_pull(&self, s: &FleetSensor) -> Result<(), StoreError> {
        let sql = RECORD_PULL_SQL.replace('?', "$");
        self.with(|c| {
            c.execute(
                sql.as_str(),
                &[
                    &s.name,
                    &s.user,
                    &s.grant_key,
                    &s.release,
                    &s.version,
                    &s.last_pull,
                ],
            )
        })
        .map(|_| ())
    }

    fn fleet_sensors(&self) -> Result<Vec<FleetSensor>, StoreError> {
        self.with(|c| {
            c.query(
                &format!("SELECT {FLEET_COLUMNS} FROM fleet_sensors ORDER BY name, username"),
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(FleetSensor {
                    name: r.try_get(0)?,
                    user: r.try_get(1)?,
                    grant_key: r.try_get(2)?,
                    release: r.try_get(3)?,
                    version: r.try_get(4)?,
                    first_pull: r.try_get(5)?,
                    last_pull: r.try_get(6)?,
                    pulls: r.try_get(7)?,
                    last_sighting_batch: r.try_get(8)?,
                })
            })
            .collect()
        })
    }

    fn add_sightings(
        &self,
        user: &str,
        groups: &[String],
        batch: &SightingBatch,
        answer: &str,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        // Column arrays: one statement per table, whatever the batch's size (a round trip
        // per row would cap ingestion at the loopback's latency).
        let groups = join(groups);
        let mut itypes = Vec::with_capacity(batch.items.len());
        let mut values = Vec::with_capacity(batch.items.len());
        let (mut counts, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
        for it in &batch.items {
            itypes.push(it.itype.as_str());
            values.push(it.value.as_str());
            counts.push(i64::try_from(it.count).unwrap_or(i64::MAX));
            firsts.push(it.first_seen);
            lasts.push(it.last_seen);
        }
        let clients = super::client_rows(batch);
        let c_itypes: Vec<&str> = clients.iter().map(|c| c.0).collect();
        let c_values: Vec<&str> = clients.iter().map(|c| c.1).collect();
        let c_clients: Vec<&str> = clients.iter().map(|c| c.2).collect();
        let c_lasts: Vec<i64> = clients.iter().map(|c| c.3).collect();
        let oldest = now - BATCH_MEMORY;
        self.with(|c| {
            let mut tx = c.transaction()?;
            // Claim the id first: a concurrent copy of the batch waits here for this
            // transaction, then finds the id taken and reads the answer.
            let claimed = tx.execute(
                "INSERT INTO sighting_batches (username, batch_id, sensor, received, answer) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username, batch_id) DO NOTHING",
                &[&user, &batch.batch_id, &batch.sensor, &now, &answer],
            )?;
            if claimed == 0 {
                let row = tx.query_one(
                    "SELECT answer FROM sighting_batches WHERE username = $1 AND batch_id = $2",
                    &[&user, &batch.batch_id],
                )?;
                return Ok(Some(row.try_get(0)?));
            }
            tx.execute(
                "DELETE FROM sighting_batches WHERE received < $1",
                &[&oldest],
            )?;
            tx.execute(
                SIGHTING_SEEN_SQL.replace('?', "$").as_str(),
                &[&now, &batch.sensor, &user],
            )?;
            if !itypes.is_empty() {
                tx.execute(
                    "INSERT INTO sightings (itype, value, sensor, groups, count, first_seen, \
                     last_seen) \
                     SELECT t.itype, t.value, $3, $4, t.count, t.first_seen, t.last_seen \
                     FROM UNNEST($1::text[], $2::text[], $5::bigint[], $6::bigint[], \
                     $7::bigint[]) AS t (itype, value, count, first_seen, last_seen) \
                     ON CONFLICT (itype, value, sensor, groups) DO UPDATE SET \
                     count = sightings.count + excluded.count, \
                     first_seen = LEAST(sightings.first_seen, excluded.first_seen), \
                     last_seen = GREATEST(sightings.last_seen, excluded.last_seen)",
                    &[
                        &itypes,
                        &values,
                        &batch.sensor,
                        &groups,
                        &counts,
                        &firsts,
                        &lasts,
                    ],
                )?;
            }
            if !c_itypes.is_empty() {
                tx.execute(
                    "INSERT INTO sighting_clients (itype, value, sensor, client, last_seen) \
                     SELECT t.itype, t.value, $3, t.client, t.last_seen \
                     FROM UNNEST($1::text[], $2::text[], $4::text[], $5::bigint[]) \
                     AS t (itype, value, client, last_seen) \
                     ON CONFLICT (itype, value, sensor, client) DO UPDATE SET \
                     last_seen = GREATEST(sighting_clients.last_seen, excluded.last_seen)",
                    &[&c_itypes, &c_values, &batch.sensor, &c_clients, &c_lasts],
                )?;
            }
            commit(tx)?;
            Ok(None)
        })
    }

    fn sightings(
        &self,
        itype: Option<IndicatorType>,
        value: Option<&str>,
    ) -> Result<Vec<SightingRow>, StoreError> {
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} FROM sightings {}",
            sighting_filter(itype.is_some(), value.is_some())
        );
        let t = itype.map(|t| t.as_str());
        let rows: Vec<SightingDbRow> = self.with(|c| {
            let mut args: Vec<&(dyn ::postgres::types::ToSql + Sync)> = Vec::new();
            if let Some(t) = &t {
                args.push(t);
            }
            if let Some(v) = &value {
                args.push(v);
            }
            select_rows(c, &sql, &args)
        })?;
        rows.into_iter()
            .map(|r| decode_sighting(&self.shown, r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_password_and_tls_modes_are_refused_clearly() {
        let c: Config = "postgres://trawl:s3cret@db.example:6543/intel?sslmode=disable"
            .parse()
            .unwrap();
        assert_eq!(describe(&c), "postgres://trawl@db.example:6543/intel");
        assert_eq!(
            redact("postgres://trawl:s3cret@db.example/x?bad=1"),
            "postgres://…@db.example/x?bad=1"
        );
        let e = PgStore::open("postgresql://trawl:s3cret@127.0.0.1:1/x?sslmode=require")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslmode=disable") && !e.contains("s3cret"),
            "{e}"
        );
        let e = PgStore::open("postgres://trawl:s3cret@127.0.0.1:1/x?nonsense=1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a PostgreSQL URL") && !e.contains("s3cret"),
            "{e}"
        );
        // Nothing listens on port 1: the message names host and port and what to check.
        let e = PgStore::open("postgres://trawl@127.0.0.1:1/x?sslmode=disable")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("127.0.0.1 port 1") && e.contains("pg_isready") && e.contains("refused"),
            "{e}"
        );
    }
}
