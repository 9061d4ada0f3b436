//! The embedded store: one SQLite file (`DATA/server.db` by default) in WAL mode, so the
//! server and `trawl token ...` in another process can use it at once.

use super::{
    check_version, client_rows, decode_search, decode_sighting, decode_submission,
    encode_submission, join, sighting_filter, Dialect, FleetSensor, LoggedSearch, SearchRow,
    SightingDbRow, Store, StoreError, TokenRow, FLEET_COLUMNS, MIGRATIONS, RECORD_PULL_SQL,
    SEARCH_COLUMNS, SIGHTING_COLUMNS, SIGHTING_SEEN_SQL, TOKEN_COLUMNS,
};
use crate::sighting::{SightingBatch, SightingRow, BATCH_MEMORY};
use crate::token::{Grant, Token, TokenHash};
use matcher::{Indicator, IndicatorType, UnixTime};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

/// A SQLite store. One connection behind a mutex for everything but token lookups: every
/// call is a short transaction. Token lookups and [`Store::tokens_version`] use a second,
/// read-only connection, so a request never waits behind a search-log flush (WAL readers do
/// not wait for writers).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    probe: Mutex<Connection>,
    path: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, MIGRATIONS)
    }

    /// Open the store and apply `migrations` (a prefix of [`MIGRATIONS`] builds the store an
    /// older trawl wrote; tests use it to check upgrades).
    pub fn open_with(path: &Path, migrations: &[&str]) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let db = |e: rusqlite::Error| StoreError::Db {
            path: shown.clone(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("{shown}: SQLite kept journal mode {mode}, not WAL");
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(db)?;
        let probe = Connection::open(path).map_err(db)?;
        probe
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        probe.execute_batch("PRAGMA query_only=ON;").map_err(db)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            probe: Mutex::new(probe),
            path: shown,
        };
        store.migrate(migrations)?;
        Ok(store)
    }

    /// Apply the steps of `migrations` past the store's version, each in one transaction.
    fn migrate(&self, migrations: &[&str]) -> Result<u32, StoreError> {
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(db)?;
        let mut version = current_version(&conn).map_err(db)?;
        let known = migrations.len() as u32;
        check_version(&self.path, version, known)?;
        for step in migrations.iter().skip(version as usize) {
            let tx = conn.transaction().map_err(db)?;
            tx.execute_batch(&Dialect::Sqlite.step(step)).map_err(db)?;
            tx.execute("DELETE FROM schema_version", []).map_err(db)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version + 1],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            version += 1;
            tracing::info!(store = %self.path, version, "store schema upgraded");
        }
        Ok(version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (every call is its own
        // transaction, rolled back when dropped).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_probe(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.probe.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Every row of `sql` as the tuple of its columns, column i into field i (the tuples that
    /// `decode_search` and `decode_sighting` check, shared with PostgreSQL).
    fn select_rows<T>(
        &self,
        conn: &Connection,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>,
    {
        let mut st = conn.prepare_cached(sql).map_err(|e| self.db(e))?;
        let rows = st
            .query_map(args, |r| T::try_from(r))
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e));
        rows
    }

    fn bump(conn: &Connection, what: Changed) -> rusqlite::Result<usize> {
        conn.execute(
            match what {
                Changed::Submissions => "UPDATE changes SET submissions = submissions + 1",
                Changed::Searches => "UPDATE changes SET searches = searches + 1",
            },
            [],
        )
    }
}

/// Which counter of `changes` a write bumps.
#[derive(Clone, Copy)]
enum Changed {
    Submissions,
    Searches,
}

fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        hash: r.get(1)?,
        user: r.get(2)?,
        groups: r.get(3)?,
        read: r.get(4)?,
        write: r.get(5)?,
        admin: r.get(6)?,
        max_tlp: r.get(7)?,
        itypes: r.get(8)?,
        expires: r.get(9)?,
        revoked: r.get(10)?,
        created: r.get(11)?,
    })
}

impl Store for SqliteStore {
    fn schema_version(&self) -> Result<u32, StoreError> {
        current_version(&self.lock()).map_err(|e| self.db(e))
    }

    fn create_token(
        &self,
        hash: &TokenHash,
        grant: &Grant,
        now: UnixTime,
    ) -> Result<Token, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO tokens (hash, username, groups, can_read, can_write, is_admin, \
             max_tlp, itypes, expires, revoked, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
            params![
                hash.to_hex(),
                grant.user,
                join(&grant.groups),
                grant.read,
                grant.write,
                grant.admin,
                grant.max_tlp.as_str(),
                join(grant.itypes.iter().map(|t| t.as_str())),
                grant.expires,
                now,
            ],
        )
        .map_err(|e| self.db(e))?;
        let id = conn.last_insert_rowid();
        Ok(Token {
            id,
            grant: grant.clone(),
            created: now,
            revoked: false,
            hash_prefix: hash.to_hex()[..8].to_string(),
        })
    }

    fn token(&self, hash: &TokenHash) -> Result<Option<Token>, StoreError> {
        let row = {
            let conn = self.lock_probe();
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"
                ))
                .map_err(|e| self.db(e))?;
            st.query_row([hash.to_hex()], token_row)
                .optional()
                .map_err(|e| self.db(e))?
        };
        match row {
            Some(row) if row.matches(hash) => row.decode(&self.path).map(Some),
            _ => Ok(None),
        }
    }

    fn tokens_version(&self) -> Result<Option<i64>, StoreError> {
        // Changes with every commit of any other connection, this process's writer included.
        let conn = self.lock_probe();
        let mut st = conn
            .prepare_cached("PRAGMA data_version")
            .map_err(|e| self.db(e))?;
        st.query_row([], |r| r.get(0))
            .map(Some)
            .map_err(|e| self.db(e))
    }

    fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        let rows: Vec<TokenRow> = {
            let conn = self.lock();
            let mut st = conn
                .prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))
                .map_err(|e| self.db(e))?;
            let rows = st
                .query_map([], token_row)
                .map_err(|e| self.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.db(e))?;
            rows
        };
        rows.into_iter().map(|r| r.decode(&self.path)).collect()
    }

    fn revoke_hash(&self, hash: &TokenHash) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "UPDATE tokens SET revoked = 1 WHERE hash = ?1 AND revoked = 0",
                [hash.to_hex()],
            )
            .map_err(|e| self.db(e))
    }

    fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "UPDATE tokens SET revoked = 1 WHERE username = ?1 AND revoked = 0",
                [user],
            )
            .map_err(|e| self.db(e))
    }

    fn add_submissions(&self, items: &[Indicator], now: UnixTime) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        let tx = conn.transaction().map_err(db)?;
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO submissions (itype, value, provider, indicator, created, expires) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db)?;
            for ind in items {
                let json = encode_submission(&self.path, ind)?;
                st.execute(params![
                    ind.itype.as_str(),
                    ind.value,
                    ind.provider.as_deref().unwrap_or_default(),
                    json,
                    now,
                    ind.expires,
                ])
                .map_err(db)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        Self::bump(&tx, Changed::Submissions).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(ids)
    }

    fn submissions(&self, now: UnixTime) -> Result<Vec<Indicator>, StoreError> {
        let rows: Vec<String> = {
            let conn = self.lock();
            let mut st = conn
                .prepare(
                    "SELECT indicator FROM submissions \
                     WHERE expires IS NULL OR expires > ?1 ORDER BY id",
                )
                .map_err(|e| self.db(e))?;
            let rows = st
                .query_map([now], |r| r.get(0))
                .map_err(|e| self.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.db(e))?;
            rows
        };
        rows.iter()
            .map(|j| decode_submission(&self.path, j))
            .collect()
    }

    fn delete_submissions(
        &self,
        itype: Option<IndicatorType>,
        value: &str,
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        let tx = conn.transaction().map_err(db)?;
        let n = match itype {
            Some(t) => tx.execute(
                "DELETE FROM submissions WHERE itype = ?1 AND value = ?2",
                params![t.as_str(), value],
            ),
            None => tx.execute("DELETE FROM submissions WHERE value = ?1", [value]),
        }
        .map_err(db)?;
        if n > 0 {
            Self::bump(&tx, Changed::Submissions).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(n)
    }

    fn log_searches(&self, searches: &[LoggedSearch]) -> Result<(), StoreError> {
        if searches.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        let tx = conn.transaction().map_err(db)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO search_log (itype, value, username, groups, tlp, count, \
                     first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (itype, value, username, groups, tlp) DO UPDATE SET \
                     count = search_log.count + excluded.count, \
                     last_seen = MAX(search_log.last_seen, excluded.last_seen)",
                )
                .map_err(db)?;
            for s in searches {
                st.execute(params![
                    s.itype.as_str(),
                    s.value,
                    s.user,
                    join(&s.groups),
                    s.tlp.as_str(),
                    i64::try_from(s.count).unwrap_or(i64::MAX),
                    s.first_seen,
                    s.last_seen,
                ])
                .map_err(db)?;
            }
        }
        Self::bump(&tx, Changed::Searches).map_err(db)?;
        tx.commit().map_err(db)
    }

    fn searches(&self) -> Result<Vec<LoggedSearch>, StoreError> {
        let rows: Vec<SearchRow> = self.select_rows(
            &self.lock(),
            &format!("SELECT {SEARCH_COLUMNS} FROM search_log ORDER BY itype, value"),
            [],
        )?;
        rows.into_iter()
            .map(|r| decode_search(&self.path, r))
            .collect()
    }

    fn generations(&self) -> Result<(i64, i64), StoreError> {
        self.lock()
            .query_row("SELECT submissions, searches FROM changes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.db(e))
    }

    fn record_pull(&self, s: &FleetSensor) -> Result<(), StoreError> {
        self.lock()
            .execute(
                RECORD_PULL_SQL,
                params![
                    s.name,
                    s.user,
                    s.grant_key,
                    s.release,
                    s.version,
                    s.last_pull
                ],
            )
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    fn fleet_sensors(&self) -> Result<Vec<FleetSensor>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {FLEET_COLUMNS} FROM fleet_sensors ORDER BY name, username"
            ))
            .map_err(|e| self.db(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(FleetSensor {
                    name: r.get(0)?,
                    user: r.get(1)?,
                    grant_key: r.get(2)?,
                    release: r.get(3)?,
                    version: r.get(4)?,
                    first_pull: r.get(5)?,
                    last_pull: r.get(6)?,
                    pulls: r.get(7)?,
                    last_sighting_batch: r.get(8)?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e));
        rows
    }

    fn add_sightings(
        &self,
        user: &str,
        groups: &[String],
        batch: &SightingBatch,
        answer: &str,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        let tx = conn.transaction().map_err(db)?;
        let seen: Option<String> = tx
            .query_row(
                "SELECT answer FROM sighting_batches WHERE username = ?1 AND batch_id = ?2",
                params![user, batch.batch_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if seen.is_some() {
            return Ok(seen);
        }
        tx.execute(
            "DELETE FROM sighting_batches WHERE received < ?1",
            [now - BATCH_MEMORY],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO sighting_batches (username, batch_id, sensor, received, answer) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user, batch.batch_id, batch.sensor, now, answer],
        )
        .map_err(db)?;
        tx.execute(SIGHTING_SEEN_SQL, params![now, batch.sensor, user])
            .map_err(db)?;
        let groups = join(groups);
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO sightings (itype, value, sensor, groups, count, first_seen, \
                     last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (itype, value, sensor, groups) DO UPDATE SET \
                     count = sightings.count + excluded.count, \
                     first_seen = MIN(sightings.first_seen, excluded.first_seen), \
                     last_seen = MAX(sightings.last_seen, excluded.last_seen)",
                )
                .map_err(db)?;
            for it in &batch.items {
                st.execute(params![
                    it.itype.as_str(),
                    it.value,
                    batch.sensor,
                    groups,
                    i64::try_from(it.count).unwrap_or(i64::MAX),
                    it.first_seen,
                    it.last_seen,
                ])
                .map_err(db)?;
            }
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO sighting_clients (itype, value, sensor, client, last_seen) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (itype, value, sensor, client) DO UPDATE SET \
                     last_seen = MAX(sighting_clients.last_seen, excluded.last_seen)",
                )
                .map_err(db)?;
            for (itype, value, client, last) in client_rows(batch) {
                st.execute(params![itype, value, batch.sensor, client, last])
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(None)
    }

    fn sightings(
        &self,
        itype: Option<IndicatorType>,
        value: Option<&str>,
    ) -> Result<Vec<SightingRow>, StoreError> {
        // On the read-only connection: a search never waits behind a batch being stored.
        let args: Vec<&str> = itype.map(|t| t.as_str()).into_iter().chain(value).collect();
        let rows: Vec<SightingDbRow> = self.select_rows(
            &self.lock_probe(),
            &format!(
                "SELECT {SIGHTING_COLUMNS} FROM sightings {}",
                sighting_filter(itype.is_some(), value.is_some())
            ),
            rusqlite::params_from_iter(args),
        )?;
        rows.into_iter()
            .map(|r| decode_sighting(&self.path, r))
            .collect()
    }
}
