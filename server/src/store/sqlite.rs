//! The embedded store: one SQLite file (`DATA/server.db` by default) in WAL mode, so the
//! server and `trawl token ...` in another process can use it at once.

use super::{join, split, LoggedSearch, Store, StoreError, MIGRATIONS};
use crate::token::{Grant, Token, TokenHash};
use matcher::{Indicator, IndicatorType, Tlp, UnixTime};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

/// A SQLite store. One connection behind a mutex: every call is a short transaction.
pub struct SqliteStore {
    conn: Mutex<Connection>,
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
        let store = SqliteStore {
            conn: Mutex::new(conn),
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
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        while version < known {
            let step = migrations[version as usize];
            let tx = conn.transaction().map_err(db)?;
            tx.execute_batch(step).map_err(db)?;
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

    fn db(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn damaged(&self, table: &'static str, reason: String) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            table,
            reason,
        }
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

/// The columns of a token row, in `TOKEN_COLUMNS` order.
const TOKEN_COLUMNS: &str = "id, hash, username, groups, can_read, can_write, is_admin, \
                             max_tlp, itypes, expires, revoked, created";

type TokenRow = (
    i64,
    String,
    String,
    String,
    bool,
    bool,
    bool,
    String,
    String,
    Option<i64>,
    bool,
    i64,
);

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

impl SqliteStore {
    fn decode_token(&self, row: TokenRow) -> Result<Token, StoreError> {
        let (id, hash, user, groups, read, write, admin, max_tlp, itypes, expires, revoked, c) =
            row;
        let max_tlp: Tlp = max_tlp
            .parse()
            .map_err(|e: matcher::UnknownName| self.damaged("tokens", e.to_string()))?;
        let itypes = split(&itypes)
            .iter()
            .map(|t| t.parse::<IndicatorType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.damaged("tokens", e.to_string()))?;
        Ok(Token {
            id,
            grant: Grant {
                user,
                groups: split(&groups),
                read,
                write,
                admin,
                max_tlp,
                itypes,
                expires,
            },
            created: c,
            revoked,
            hash_prefix: hash.get(..8).unwrap_or_default().to_string(),
        })
    }
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
        let row = self
            .lock()
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"),
                [hash.to_hex()],
                token_row,
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some(row) = row else { return Ok(None) };
        // The index found it by hash; compare once more in constant time, so no timing
        // difference depends on how much of a guess was right.
        let stored = parse_hash(&row.1);
        if !stored.is_some_and(|s| s.matches(hash)) {
            return Ok(None);
        }
        self.decode_token(row).map(Some)
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
        rows.into_iter().map(|r| self.decode_token(r)).collect()
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
                let json = serde_json::to_string(ind)
                    .map_err(|e| self.damaged("submissions", e.to_string()))?;
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
            .map(|j| {
                serde_json::from_str(j).map_err(|e| self.damaged("submissions", e.to_string()))
            })
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

    fn log_search(&self, s: &LoggedSearch) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let db = |e: rusqlite::Error| self.db(e);
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO search_log (itype, value, username, groups, tlp, count, first_seen, \
             last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (itype, value, username, groups, tlp) DO UPDATE SET \
             count = count + excluded.count, last_seen = MAX(last_seen, excluded.last_seen)",
            params![
                s.itype.as_str(),
                s.value,
                s.user,
                join(&s.groups),
                s.tlp.as_str(),
                s.count as i64,
                s.first_seen,
                s.last_seen,
            ],
        )
        .map_err(db)?;
        Self::bump(&tx, Changed::Searches).map_err(db)?;
        tx.commit().map_err(db)
    }

    fn searches(&self) -> Result<Vec<LoggedSearch>, StoreError> {
        type Row = (String, String, String, String, String, i64, i64, i64);
        let rows: Vec<Row> = {
            let conn = self.lock();
            let mut st = conn
                .prepare(
                    "SELECT itype, value, username, groups, tlp, count, first_seen, last_seen \
                     FROM search_log ORDER BY itype, value",
                )
                .map_err(|e| self.db(e))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .map_err(|e| self.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.db(e))?;
            rows
        };
        rows.into_iter()
            .map(|(itype, value, user, groups, tlp, count, first, last)| {
                let bad = |e: matcher::UnknownName| self.damaged("search_log", e.to_string());
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
            })
            .collect()
    }

    fn generations(&self) -> Result<(i64, i64), StoreError> {
        self.lock()
            .query_row("SELECT submissions, searches FROM changes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.db(e))
    }
}

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
