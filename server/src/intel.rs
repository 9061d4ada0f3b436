//! What the server searches: the published snapshot (swapped when `trawl update` publishes),
//! the submissions overlay (an in-memory snapshot rebuilt from the store when they change)
//! and the search log. Every answer passes [`Token::may_see`]: there is no path around it.

use crate::query::Filters;
use crate::store::{LoggedSearch, Store, StoreError};
use crate::token::Token;
use arc_swap::ArcSwap;
use matcher::query::lookup;
use matcher::{Indicator, IndicatorType, MatchKind, Snapshot, SnapshotBuilder, UnixTime};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use feeds::update::{SUBMISSIONS_FILE, SUBMISSIONS_SOURCE};
/// The source name of logged searches.
pub const SEARCH_SOURCE: &str = "search-log";
/// The tag of logged searches.
pub const SEARCH_TAG: &str = "search";
/// Confidence of a logged search (0-100): a hint, not a verdict.
pub const SEARCH_CONFIDENCE: u8 = 20;
/// The group of a search made by a token with no group (an admin's): admins only.
pub const ADMIN_GROUP: &str = "admin";

/// Most distinct (value, searcher) pairs buffered before a search request writes them
/// itself (the bound on the buffer's memory).
pub const MAX_PENDING_SEARCHES: usize = 100_000;

/// The search log in memory, by value: each refresh that adds searches copies the table
/// (pointers), not the rows, and only the lists it changes.
type SearchLog = HashMap<(IndicatorType, Arc<str>), Arc<Vec<LoggedSearch>>>;

/// A logged search's identity in the buffer: what the store merges on.
type SearchKey = (IndicatorType, String, String, Vec<String>, matcher::Tlp);

/// Where a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The published snapshot (the feeds).
    Snapshot,
    /// A submission in the store.
    Submission,
    /// The search log.
    SearchLog,
}

/// One answer row.
#[derive(Debug, Clone)]
pub struct Row {
    /// The indicator as the token may see it.
    pub ind: Indicator,
    /// How it covers the searched value (`exact` for feeds and listings).
    pub kind: MatchKind,
    /// Where it came from.
    pub origin: Origin,
    /// How often its value was searched, by searches this token may see.
    pub searched: u64,
    /// What sensors reported of it, as far as this token may see (filled by
    /// [`Intel::attach_sightings`]).
    pub sightings: Option<crate::sighting::Sighted>,
}

/// The server's searchable state.
pub struct Intel {
    data: PathBuf,
    snapshot: ArcSwap<Option<Snapshot>>,
    overlay: ArcSwap<Snapshot>,
    searches: ArcSwap<SearchLog>,
    submissions_gen: AtomicI64,
    /// The earliest `expires` among the submissions in the overlay (`i64::MAX`: none): the
    /// overlay is rebuilt once it passes, so an expired submission stops answering.
    next_expiry: AtomicI64,
    searches_gen: AtomicI64,
    /// Searches not yet written: merged by (value, searcher), written by
    /// [`Intel::flush_searches`] (each refresh), so a search costs no store write of its own.
    pending: Mutex<HashMap<SearchKey, LoggedSearch>>,
    store: Arc<dyn Store>,
}

impl Drop for Intel {
    fn drop(&mut self) {
        // The last holder may drop it on an async worker, where a store that blocks on a
        // runtime of its own (PostgreSQL) must not run: flush from a plain thread then.
        let flushed = if self.store.needs_blocking_pool() {
            std::thread::scope(|s| s.spawn(|| self.flush_searches()).join().unwrap_or(Ok(0)))
        } else {
            self.flush_searches()
        };
        if let Err(e) = flushed {
            tracing::warn!("searches not logged at shutdown: {e}");
        }
    }
}

/// Errors answering a request.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building the submissions overlay failed.
    #[error("building the submissions index: {0}")]
    Build(#[from] matcher::SnapshotError),
}

impl Intel {
    /// The state for data directory `data` (its snapshot, if one is published yet) and store.
    pub fn open(data: &Path, store: Arc<dyn Store>, now: UnixTime) -> Result<Intel, IntelError> {
        let snapshot = open_snapshot(data);
        let intel = Intel {
            data: data.to_path_buf(),
            snapshot: ArcSwap::from_pointee(snapshot),
            overlay: ArcSwap::from_pointee(SnapshotBuilder::new().build()?),
            searches: ArcSwap::from_pointee(HashMap::new()),
            submissions_gen: AtomicI64::new(i64::MIN),
            next_expiry: AtomicI64::new(i64::MAX),
            searches_gen: AtomicI64::new(i64::MIN),
            pending: Mutex::new(HashMap::new()),
            store,
        };
        intel.refresh(now)?;
        Ok(intel)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The snapshot in use (`None`: none published yet).
    pub fn snapshot(&self) -> Arc<Option<Snapshot>> {
        self.snapshot.load_full()
    }

    /// The version of the snapshot in use (0: none yet).
    pub fn snapshot_version(&self) -> u64 {
        Option::as_ref(&**self.snapshot.load()).map_or(0, |s| s.meta().version)
    }

    /// When the snapshot in use was built (0: none yet).
    pub fn snapshot_created(&self) -> UnixTime {
        Option::as_ref(&**self.snapshot.load()).map_or(0, |s| s.meta().created)
    }

    /// Reopen the published snapshot (after `DATA/current` changed). A snapshot that fails to
    /// open leaves the previous one in use; the error is returned for the log.
    pub fn reload_snapshot(&self) -> Result<u64, matcher::SnapshotError> {
        let s = Snapshot::open_current(&self.data)?;
        let v = s.meta().version;
        self.snapshot.store(Arc::new(Some(s)));
        Ok(v)
    }

    /// Log a search: buffered and merged with the pending searches of the same value by the
    /// same searcher; written at the next refresh (or at once when the buffer is full).
    pub fn log_search(&self, rec: LoggedSearch) -> Result<(), StoreError> {
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (
                rec.itype,
                rec.value.clone(),
                rec.user.clone(),
                rec.groups.clone(),
                rec.tlp,
            );
            match p.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    merge_count(o.get_mut(), &rec)
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(rec);
                }
            }
            p.len() >= MAX_PENDING_SEARCHES
        };
        if full {
            self.flush_searches()?;
        }
        Ok(())
    }

    /// Write the buffered searches to the store in one transaction; what a failing store
    /// refused stays buffered for the next try.
    pub fn flush_searches(&self) -> Result<usize, StoreError> {
        self.flush_batch().map(|b| b.len())
    }

    /// [`Intel::flush_searches`], returning what was written.
    fn flush_batch(&self) -> Result<Vec<LoggedSearch>, StoreError> {
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let written: Vec<LoggedSearch> = batch.values().cloned().collect();
        if let Err(e) = self.store.log_searches(&written) {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (k, v) in batch {
                if p.len() >= MAX_PENDING_SEARCHES {
                    break;
                }
                match p.entry(k) {
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        merge_count(o.get_mut(), &v)
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(v);
                    }
                }
            }
            return Err(e);
        }
        Ok(written)
    }

    /// Rebuild the submissions overlay and the search log from the store if they changed
    /// (by this process or another sharing the store), after writing the buffered searches.
    /// When only this process's own flush changed the search log, the flushed searches are
    /// merged into the in-memory log instead of reading the whole log back.
    pub fn refresh(&self, now: UnixTime) -> Result<bool, IntelError> {
        let (_, before) = self.store.generations()?;
        let written = self.flush_batch()?;
        let (subs_gen, searches_gen) = self.store.generations()?;
        let mut changed = false;
        if subs_gen != self.submissions_gen.load(Ordering::SeqCst)
            || now >= self.next_expiry.load(Ordering::SeqCst)
        {
            let subs = self.store.submissions(now)?;
            // For the next `trawl update`: the submissions reach the snapshot sensors pull.
            if let Err(e) = write_submissions(&self.data, &subs) {
                tracing::warn!("submissions not handed to the next update: {e}");
            }
            let mut b = SnapshotBuilder::new();
            let mut next = i64::MAX;
            for s in subs {
                next = next.min(s.expires.unwrap_or(i64::MAX));
                b.insert(s);
            }
            self.overlay.store(Arc::new(b.build()?));
            self.next_expiry.store(next, Ordering::SeqCst);
            self.submissions_gen.store(subs_gen, Ordering::SeqCst);
            changed = true;
        }
        let known = self.searches_gen.load(Ordering::SeqCst);
        let only_ours = before == known && !written.is_empty() && searches_gen == before + 1;
        if only_ours {
            let mut map = HashMap::clone(&self.searches.load());
            for w in written {
                let list = Arc::make_mut(
                    map.entry((w.itype, Arc::from(w.value.as_str())))
                        .or_default(),
                );
                match list
                    .iter_mut()
                    .find(|s| s.user == w.user && s.groups == w.groups && s.tlp == w.tlp)
                {
                    Some(s) => merge_count(s, &w),
                    None => list.push(w),
                }
            }
            self.searches.store(Arc::new(map));
            self.searches_gen.store(searches_gen, Ordering::SeqCst);
            changed = true;
        } else if searches_gen != known {
            let mut map: HashMap<(IndicatorType, Arc<str>), Vec<LoggedSearch>> = HashMap::new();
            for s in self.store.searches()? {
                map.entry((s.itype, Arc::from(s.value.as_str())))
                    .or_default()
                    .push(s);
            }
            let map: SearchLog = map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
            self.searches.store(Arc::new(map));
            self.searches_gen.store(searches_gen, Ordering::SeqCst);
            changed = true;
        }
        Ok(changed)
    }

    /// Every row covering one searched value that `token` may see and `f` keeps, the
    /// normalised value and its type; an error when the value is not a valid indicator.
    pub fn search_value(
        &self,
        token: &Token,
        raw: &str,
        f: &Filters,
    ) -> Result<(String, IndicatorType, Vec<Row>), matcher::NormalizeError> {
        let snap = self.snapshot.load();
        let overlay = self.overlay.load();
        let searches = self.searches.load();
        let mut rows = Vec::new();
        let mut push = |hits: Vec<(Indicator, MatchKind)>, origin| {
            rows.extend(hits.into_iter().map(|(ind, kind)| Row {
                ind,
                kind,
                origin,
                searched: 0,
                sightings: None,
            }));
        };
        if let Some(s) = Option::as_ref(&**snap) {
            push(lookup(s, raw)?.hits, Origin::Snapshot);
        }
        let l = lookup(&overlay, raw)?;
        let (normal, itype) = (l.normalized, l.itype);
        push(l.hits, Origin::Submission);
        if let Some(list) = searches.get(&(itype, Arc::from(normal.as_str()))) {
            rows.extend(list.iter().map(|s| Row {
                ind: search_indicator(s),
                kind: MatchKind::Exact,
                origin: Origin::SearchLog,
                searched: 0,
                sightings: None,
            }));
        }
        rows.retain(|r| token.may_see(&r.ind) && f.keeps(&r.ind));
        for r in &mut rows {
            r.searched = searched(&searches, token, r.ind.itype, &r.ind.value);
        }
        Ok((normal, itype, rows))
    }

    /// Fill each row's sightings with what `token` may see of its indicator's: one store
    /// lookup per indicator for a few rows, one read of the type's rows (`itype`, else all)
    /// for many.
    pub fn attach_sightings(
        &self,
        token: &Token,
        rows: &mut [Row],
        itype: Option<IndicatorType>,
    ) -> Result<(), StoreError> {
        const PER_VALUE: usize = 32;
        let mut found = Vec::new();
        if rows.len() <= PER_VALUE {
            let mut keys: Vec<(IndicatorType, &str)> = rows
                .iter()
                .map(|r| (r.ind.itype, r.ind.value.as_str()))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for (t, v) in keys {
                found.extend(self.store.sightings(Some(t), Some(v))?);
            }
        } else {
            found = self.store.sightings(itype, None)?;
        }
        let summary = crate::sighting::summarize(token, &found);
        for r in rows {
            r.sightings = summary.get(&(r.ind.itype, r.ind.value.clone())).copied();
        }
        Ok(())
    }

    /// Every indicator `token` may see that `f` keeps (no searched value): snapshot and
    /// submissions, and logged searches when `f` asks for the `search` tag. Allowlist
    /// entries are left out, and so are allowlisted indicators when `feed` is set.
    pub fn list(&self, token: &Token, f: &Filters, feed: bool) -> Vec<Row> {
        let snap = self.snapshot.load();
        let overlay = self.overlay.load();
        let searches = self.searches.load();
        let mut rows = Vec::new();
        let keep = |ind: &Indicator| {
            !ind.allowlist
                && (!feed || ind.allowlisted_by.is_none())
                && token.may_see(ind)
                && f.keeps(ind)
        };
        if let Some(s) = Option::as_ref(&**snap) {
            rows.extend(of_type(s, f.itype).filter(|i| keep(i)).map(|ind| Row {
                ind,
                kind: MatchKind::Exact,
                origin: Origin::Snapshot,
                searched: 0,
                sightings: None,
            }));
        }
        rows.extend(
            of_type(&overlay, f.itype)
                .filter(|i| keep(i))
                .map(|ind| Row {
                    ind,
                    kind: MatchKind::Exact,
                    origin: Origin::Submission,
                    searched: 0,
                    sightings: None,
                }),
        );
        if f.tags.iter().any(|t| t == SEARCH_TAG) {
            for list in searches.values() {
                for s in list.iter() {
                    let ind = search_indicator(s);
                    if keep(&ind) {
                        rows.push(Row {
                            ind,
                            kind: MatchKind::Exact,
                            origin: Origin::SearchLog,
                            searched: 0,
                            sightings: None,
                        });
                    }
                }
            }
        }
        for r in &mut rows {
            r.searched = searched(&searches, token, r.ind.itype, &r.ind.value);
        }
        rows
    }
}

/// The indicators of `s`, only those of type `itype` when given: the ids of one type are
/// contiguous (by type, then value), so a feed of 100k IPv4 decodes those, not the whole set.
fn of_type(s: &Snapshot, itype: Option<IndicatorType>) -> Box<dyn Iterator<Item = Indicator> + '_> {
    let Some(t) = itype else {
        return Box::new(s.iter());
    };
    let rank = |id: u32| {
        s.itype(id)
            .and_then(|x| IndicatorType::ALL.iter().position(|a| *a == x))
            .unwrap_or(usize::MAX)
    };
    let want = IndicatorType::ALL
        .iter()
        .position(|a| *a == t)
        .unwrap_or(usize::MAX);
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    // The first id whose type ranks at or after `t` (`at`: strictly after).
    let first = |after: bool| {
        let (mut lo, mut hi) = (0u32, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = rank(mid);
            if r < want || (after && r == want) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let (lo, hi) = (first(false), first(true));
    Box::new((lo..hi).filter_map(move |id| s.try_indicator(id)))
}

/// Replace `DATA/server/submissions.jsonl` atomically (temporary file, fsync, rename) with
/// `subs`, one JSON indicator a line; no file when there are none.
fn write_submissions(data: &Path, subs: &[Indicator]) -> std::io::Result<()> {
    use std::io::Write;
    let path = data.join(SUBMISSIONS_FILE);
    if subs.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let dir = path.parent().unwrap_or(data);
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".submissions.{}.tmp", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for s in subs {
        serde_json::to_writer(&mut f, s)?;
        f.write_all(b"\n")?;
    }
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)
}

fn open_snapshot(data: &Path) -> Option<Snapshot> {
    match Snapshot::open_current(data) {
        Ok(s) => Some(s),
        Err(matcher::SnapshotError::NoSnapshot(_)) => None,
        Err(e) => {
            tracing::warn!("serving without a snapshot: {e}");
            None
        }
    }
}

/// A logged search as an indicator: tagged `search`, low confidence, the searcher's groups
/// and TLP ceiling, the searcher as provider.
pub fn search_indicator(s: &LoggedSearch) -> Indicator {
    let mut i = Indicator::new(s.value.clone(), s.itype, SEARCH_SOURCE);
    i.confidence = SEARCH_CONFIDENCE;
    i.tags = vec![SEARCH_TAG.to_string()];
    i.tlp = s.tlp;
    i.groups = matcher::Groups::from_names(s.groups.iter().cloned());
    i.provider = Some(s.user.clone());
    i.first_seen = Some(s.first_seen);
    i.last_seen = Some(s.last_seen);
    i.reported = Some(s.last_seen);
    i.description = Some(format!("searched {} times", s.count));
    i.tidy();
    i
}

/// What a search by `token` for `value` logs: the token's user, groups ([`ADMIN_GROUP`] for a
/// token with none) and TLP ceiling.
pub fn search_record(
    token: &Token,
    itype: IndicatorType,
    value: &str,
    now: UnixTime,
) -> LoggedSearch {
    let groups = if token.grant.groups.is_empty() {
        vec![ADMIN_GROUP.to_string()]
    } else {
        token.grant.groups.clone()
    };
    LoggedSearch {
        value: value.to_string(),
        itype,
        user: token.grant.user.clone(),
        groups,
        tlp: token.grant.max_tlp,
        count: 1,
        first_seen: now,
        last_seen: now,
    }
}

/// Add `more` to the record `s` of the same value and searcher, as the store does: the
/// counts add up, the first search is kept and the last one is the later.
fn merge_count(s: &mut LoggedSearch, more: &LoggedSearch) {
    s.count = s.count.saturating_add(more.count);
    s.first_seen = s.first_seen.min(more.first_seen);
    s.last_seen = s.last_seen.max(more.last_seen);
}

/// How often `value` was searched, counting the logged searches `token` may see.
fn searched(map: &SearchLog, token: &Token, itype: IndicatorType, value: &str) -> u64 {
    map.get(&(itype, Arc::from(value))).map_or(0, |list| {
        list.iter()
            .filter(|s| token.may_see(&search_indicator(s)))
            .map(|s| s.count)
            .sum()
    })
}
