//! `trawl update`: fetch due feeds, parse, normalise, derive, merge with what is kept from
//! the previous snapshot, apply allowlists, expiry and history, publish a new snapshot.

use crate::allowlist::{self, AllowlistIndex, CONFIG_SOURCE, IANA_SOURCE};
use crate::config::{Config, FeedConfig, Format};
use crate::fetch::{self, Fetched, Validators};
use crate::parse::{FeedRecord, Reject};
use crate::runs::{RunError, Runs, Sorter};
use crate::Progress;
use matcher::{
    normalize, Indicator, IndicatorType, Snapshot, SnapshotError, StreamBuilder, UnixTime,
};
use previous::{fingerprint, read_carried, read_history, Carried, Keep};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

mod previous;

/// Options for [`update`].
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Refetch every feed, ignoring `refresh` and conditional-GET validators.
    pub force: bool,
    /// The current time (tests); the system clock when `None`.
    pub now: Option<UnixTime>,
    /// Publish even with no `[[feed]]`, or when the result would hold no feed indicator
    /// where the current snapshot has some (`trawl update --allow-empty`).
    pub allow_empty: bool,
}

/// Errors that stop an update (only when nothing usable was produced).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Every feed failed and there was nothing to keep from a previous snapshot.
    #[error("no usable feed: {0}")]
    NothingUsable(String),
    /// The config has no `[[feed]]` (and `allow_empty` is off).
    #[error("the config has no [[feed]] table: nothing to update (pass --allow-empty to publish an empty snapshot)")]
    NoFeeds,
    /// The new snapshot would hold no feed indicator where the current one has some (and
    /// `allow_empty` is off); nothing was published.
    #[error("the new snapshot would hold no feed indicators where the current one has {previous}: not publishing it (pass --allow-empty to publish it anyway)")]
    WouldEmpty {
        /// Feed indicators in the current snapshot.
        previous: usize,
    },
    /// Publishing the snapshot failed.
    #[error("publishing the snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// Sorting the indicators on disk failed.
    #[error("merging the indicators: {0}")]
    Runs(#[from] RunError),
    /// Writing feed state failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// What one pull of a TAXII collection or a MISP feed brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PullCounts {
    /// HTTP requests made (TAXII pages; a MISP manifest and its changed events).
    pub requests: usize,
    /// Objects they brought: TAXII indicators, MISP events (new or changed).
    pub received: usize,
}

/// What happened to one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum FeedStatus {
    /// Fetched (or read) and parsed.
    Fetched,
    /// The server said 304, or the file is unchanged: previous entries kept, nothing parsed.
    NotModified,
    /// Its `refresh` interval has not passed: previous entries kept.
    NotDue,
    /// Fetching failed, or the content is unusable (an HTML page, empty, every line
    /// rejected, shrunk below `min_ratio`): previous entries kept.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Per-feed summary.
#[derive(Debug, Clone, Serialize)]
pub struct FeedSummary {
    /// Feed name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub status: FeedStatus,
    /// Format parsed (after detection).
    pub format: Option<Format>,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Distinct indicators it contributed (after dedup, before allowlisting).
    pub accepted: usize,
    /// Lines/items rejected by the parser or by normalisation.
    pub rejected: usize,
    /// The first reasons, with line numbers.
    pub reject_samples: Vec<Reject>,
    /// Records that repeated a value already seen in this feed.
    pub duplicates: usize,
    /// Well-formed entries carrying no usable indicator (e.g. MISP `filename`).
    pub skipped: usize,
    /// STIX indicators marked `revoked` (dropped).
    pub revoked: usize,
    /// Pulled feeds (TAXII, MISP feeds): requests made and what they brought.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullCounts>,
    /// Indicators derived from its URLs.
    pub derived: usize,
    /// Of its indicators, how many an allowlist entry covers.
    pub allowlisted: usize,
    /// Entries dropped because `expires`/`valid_until` passed or older than `max_age`.
    pub expired: usize,
    /// Entries carried over from the previous snapshot (not due, not modified, failed).
    pub kept: usize,
}

impl FeedSummary {
    fn new(name: &str, status: FeedStatus) -> Self {
        FeedSummary {
            name: name.to_string(),
            status,
            format: None,
            bytes: 0,
            accepted: 0,
            rejected: 0,
            reject_samples: Vec::new(),
            duplicates: 0,
            skipped: 0,
            revoked: 0,
            pull: None,
            derived: 0,
            allowlisted: 0,
            expired: 0,
            kept: 0,
        }
    }
}

/// What `trawl update` did (printed as JSON with `--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// Per-feed summaries in config order.
    pub feeds: Vec<FeedSummary>,
    /// Indicators in the new snapshot (allowlist entries included).
    pub total: usize,
    /// Of which allowlist entries.
    pub allowlist_entries: usize,
    /// Of which covered by an allowlist entry.
    pub allowlisted: usize,
    /// Counts by itype.
    pub by_type: BTreeMap<String, usize>,
    /// New since the previous snapshot.
    pub added: usize,
    /// Gone since the previous snapshot.
    pub removed: usize,
    /// Present in both with different metadata.
    pub changed: usize,
    /// The published snapshot directory (the previous one when `unchanged`).
    pub snapshot: PathBuf,
    /// Nothing was fetched anew, nothing expired and the config is the same: the previous
    /// snapshot stays current and nothing was rebuilt.
    pub unchanged: bool,
    /// Problems that did not stop the update (e.g. an unreadable previous snapshot).
    pub warnings: Vec<String>,
    /// What the `[upstream]` pull did, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<crate::fleet::pull::UpstreamSummary>,
}

impl UpdateReport {
    /// Human summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if let Some(u) = &self.upstream {
            let _ = writeln!(s, "{}", u.render());
        }
        for f in &self.feeds {
            let status = match &f.status {
                FeedStatus::Fetched => "fetched".to_string(),
                FeedStatus::NotModified => "not modified".to_string(),
                FeedStatus::NotDue => "skipped (not due)".to_string(),
                FeedStatus::Failed { reason } => format!("FAILED ({reason})"),
            };
            let fmt = f.format.map_or(String::new(), |x| format!(" [{x}]"));
            let _ = write!(s, "{}{fmt}: {status}", f.name);
            if f.status == FeedStatus::Fetched {
                let _ = write!(
                    s,
                    ": {} accepted, {} rejected, {} duplicates, {} derived, {} allowlisted",
                    f.accepted, f.rejected, f.duplicates, f.derived, f.allowlisted
                );
                if f.skipped > 0 {
                    let _ = write!(s, ", {} skipped", f.skipped);
                }
                if f.expired > 0 {
                    let _ = write!(s, ", {} expired", f.expired);
                }
                if f.revoked > 0 {
                    let _ = write!(s, ", {} revoked", f.revoked);
                }
                if let Some(p) = &f.pull {
                    let _ = write!(
                        s,
                        " (pulled {} new or changed objects in {} requests)",
                        p.received, p.requests
                    );
                }
            } else {
                let _ = write!(s, ": kept {} entries from the previous snapshot", f.kept);
            }
            s.push('\n');
            for r in f.reject_samples.iter().take(5) {
                let _ = writeln!(s, "    line {}: {}", r.line, r.reason);
            }
        }
        let types: Vec<String> = self
            .by_type
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "total: {} indicators ({}), {} allowlist entries, {} allowlisted",
            self.total,
            types.join(", "),
            self.allowlist_entries,
            self.allowlisted
        );
        let _ = writeln!(
            s,
            "vs previous snapshot: {} added, {} removed, {} changed",
            self.added, self.removed, self.changed
        );
        if self.unchanged {
            let _ = writeln!(
                s,
                "snapshot: {} (unchanged: no feed had new content, nothing expired)",
                self.snapshot.display()
            );
        } else {
            let _ = writeln!(s, "snapshot: {}", self.snapshot.display());
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// Per-feed state kept in `data_dir/feeds/state.json` (and in the snapshot's `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    /// Last fetch attempt.
    pub last_attempt: Option<UnixTime>,
    /// Last successful fetch (new content or not modified).
    pub last_success: Option<UnixTime>,
    /// ETag of the last body.
    pub etag: Option<String>,
    /// Last-Modified of the last body.
    pub last_modified: Option<String>,
    /// Local files: (mtime seconds, length) of the last read.
    pub file_stamp: Option<(i64, u64)>,
    /// Hash of the feed's config when last parsed (a config change forces a re-parse).
    pub config_hash: Option<u64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Indicators accepted at the last good parse (the base of `min_ratio`).
    pub accepted: usize,
    /// Failed attempts since the last success (0 when the last attempt succeeded).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// How the last attempt went (absent in state files of older versions).
    #[serde(default)]
    pub last_outcome: Option<FetchOutcome>,
    /// Entries listing this feed in the snapshot after the last update (fresh or kept).
    #[serde(default)]
    pub indicators: Option<usize>,
    /// [`FeedState::indicators`] as it was before the last attempt: the change since the
    /// previous fetch is `indicators - previous_indicators`.
    #[serde(default)]
    pub previous_indicators: Option<usize>,
}

/// How a feed's last fetch attempt went (`trawl feeds`, the daemon's feed gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchOutcome {
    /// New content, parsed and used.
    Fresh,
    /// The server said 304 or the file is unchanged: the entries stay as they were.
    NotModified,
    /// Fetching failed or the content was unusable: the last good entries were kept.
    Failed,
}

impl FeedState {
    /// Record a failed attempt: the previous entries stay, the next attempt refetches in full.
    fn failed(&mut self, reason: &str) {
        self.last_error = Some(reason.to_string());
        self.file_stamp = None;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_outcome = Some(FetchOutcome::Failed);
    }

    /// Record a successful attempt whose content was unchanged.
    fn not_modified(&mut self, now: UnixTime) {
        self.last_success = Some(now);
        self.last_error = None;
        self.consecutive_failures = 0;
        self.last_outcome = Some(FetchOutcome::NotModified);
    }
}

const STATE_FILE: &str = "state.json";

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("feeds").join(STATE_FILE)
}

/// Each feed's state after the last update in `data_dir` (last success, last error with its
/// reason, consecutive failures): what a daemon publishes per feed. Empty when there is none.
pub fn feed_states(data_dir: &Path) -> BTreeMap<String, FeedState> {
    std::fs::read(state_path(data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(data_dir: &Path, state: &BTreeMap<String, FeedState>) -> Result<(), UpdateError> {
    let path = state_path(data_dir);
    let io = |source| UpdateError::Io {
        path: path.clone(),
        source,
    };
    let dir = data_dir.join("feeds");
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let body = serde_json::to_vec_pretty(state).unwrap_or_default();
    std::fs::write(&tmp, body).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Everything besides the feeds' content that decides a snapshot's entries: trawl's version
/// (the built-in allowlist), every feed's config in order, the `[allowlist]` table, and the
/// server's submissions file when there is one.
fn inputs_fingerprint(config: &Config, submissions: Option<u64>, upstream: Option<u64>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    for f in &config.feeds {
        config_hash(f).hash(&mut h);
    }
    format!("{:?}", config.allowlist).hash(&mut h);
    if let Some(s) = submissions {
        s.hash(&mut h);
    }
    if let Some(u) = upstream {
        ("upstream", u).hash(&mut h);
    }
    h.finish()
}

/// Where `trawl serve` keeps its live submissions for the next update (relative to the data
/// directory; one JSON indicator a line, replaced atomically by the server).
pub const SUBMISSIONS_FILE: &str = "server/submissions.jsonl";
/// The source name of indicators submitted to `trawl serve`.
pub const SUBMISSIONS_SOURCE: &str = "trawl-serve";

/// The indicators `trawl serve` accepted, from [`SUBMISSIONS_FILE`], each checked again as
/// a feed's value is (normal form, breadth, group name): a line that fails is a warning and
/// is left out. Also a hash of the file, so an update notices when it changed.
pub fn served_submissions(data_dir: &Path) -> (Vec<Indicator>, Vec<String>, Option<u64>) {
    let path = data_dir.join(SUBMISSIONS_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return (Vec::new(), Vec::new(), None);
    }
    let limit = crate::fetch::DEFAULT_MAX_BYTES;
    let text = match crate::fetch::read_file(&path, SUBMISSIONS_SOURCE, limit, &crate::NoProgress) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), vec![e.to_string()], None),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (n, line) in String::from_utf8_lossy(&text).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let checked = check_served_line(line).map(|mut i| {
            i.sources = vec![SUBMISSIONS_SOURCE.to_string()];
            i.allowlist = false;
            i.allowlisted_by = None;
            i.tidy();
            i
        });
        match checked {
            Ok(i) => out.push(i),
            Err(e) => warnings.push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
    }
    (out, warnings, Some(h.finish()))
}

/// One JSON indicator line from another trawl (a server's submissions, a fleet publisher's
/// set), checked as a feed's value is: normal form, breadth, group names.
pub fn check_served_line(line: &str) -> Result<Indicator, String> {
    let i = serde_json::from_str::<Indicator>(line).map_err(|e| e.to_string())?;
    let norm = normalize(&i.value, Some(i.itype)).map_err(|e| e.to_string())?;
    if norm.value != i.value || norm.itype != i.itype {
        return Err(format!("{} is not in normal form", i.value));
    }
    crate::breadth::check_feed_value(i.itype, &i.value, None)?;
    for g in i.groups.iter() {
        crate::config::check_group_name(g)?;
    }
    if let Some(id) = i.external_id.as_deref() {
        if !matcher::model::is_external_id(id) {
            return Err(format!("{}: external_id is not a STIX id or uuid", i.value));
        }
    }
    Ok(i)
}

/// What an update records in the snapshot's `extra` so that the next one can tell nothing
/// changed and answer without rebuilding.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
struct PublishedFacts {
    /// [`inputs_fingerprint`] of the config that built it.
    inputs: u64,
    /// The earliest `expires` of any entry.
    next_expiry: Option<UnixTime>,
    /// Entries listing each source.
    per_source: BTreeMap<String, usize>,
    /// Entries an allowlist entry covers, per source.
    allowlisted_per_source: BTreeMap<String, usize>,
    /// Allowlist entries.
    allowlist_entries: usize,
    /// Entries an allowlist entry covers.
    allowlisted: usize,
}

/// The report for an update that keeps `snap` as it is, or `None` when something may have
/// changed (a feed was parsed anew, the config differs, an entry expired, or the snapshot
/// predates these facts).
fn unchanged_report(
    snap: &Snapshot,
    config: &Config,
    submissions: Option<u64>,
    upstream: Option<u64>,
    runs: &[FeedRun],
    now: UnixTime,
) -> Option<UpdateReport> {
    if runs.iter().any(|r| r.indicators.is_some()) {
        return None;
    }
    let facts: PublishedFacts =
        serde_json::from_value(snap.meta().extra.get("facts")?.clone()).ok()?;
    if facts.inputs != inputs_fingerprint(config, submissions, upstream)
        || facts.next_expiry.is_some_and(|e| e <= now)
    {
        return None;
    }
    let feeds = runs
        .iter()
        .map(|r| {
            let mut s = r.summary.clone();
            s.kept = facts.per_source.get(&s.name).copied().unwrap_or(0);
            s.allowlisted = facts
                .allowlisted_per_source
                .get(&s.name)
                .copied()
                .unwrap_or(0);
            s
        })
        .collect();
    Some(UpdateReport {
        feeds,
        total: snap.len(),
        allowlist_entries: facts.allowlist_entries,
        allowlisted: facts.allowlisted,
        by_type: snap
            .meta()
            .counts
            .iter()
            .map(|(k, v)| (k.clone(), *v as usize))
            .collect(),
        added: 0,
        removed: 0,
        changed: 0,
        snapshot: snap.dir().to_path_buf(),
        unchanged: true,
        warnings: Vec::new(),
        upstream: None,
    })
}

/// A hash of everything in a feed's config (a change forces a fetch and a re-parse).
pub(crate) fn config_hash(feed: &FeedConfig) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{feed:?}").hash(&mut h);
    h.finish()
}

fn now_unix() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn file_stamp(path: &Path) -> Option<(i64, u64)> {
    let md = std::fs::metadata(path).ok()?;
    let mtime = md
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(((mtime % (i64::MAX as u128)) as i64, md.len()))
}

/// Turn one raw record into an indicator with the feed's defaults.
pub fn to_indicator(rec: &FeedRecord, feed: &FeedConfig) -> Result<Indicator, String> {
    let hint = rec.itype.or(feed.itype);
    let (value, itype, exact) = if hint == Some(IndicatorType::Pattern) {
        let v = rec.value.trim();
        if v.is_empty() || v.bytes().any(|b| b.is_ascii_control()) {
            return Err("pattern is empty or has control characters".into());
        }
        (v.to_string(), IndicatorType::Pattern, false)
    } else {
        let n = normalize(&rec.value, hint).map_err(|e| e.to_string())?;
        (n.value, n.itype, n.exact_only)
    };
    crate::breadth::check_feed_value(itype, &value, feed.min_prefix)?;
    let mut ind = Indicator::new(value, itype, &feed.name);
    ind.exact_only = exact || (feed.exact && itype == IndicatorType::Fqdn);
    ind.confidence = feed.confidence.unwrap_or(ind.confidence);
    ind.severity = feed.severity.unwrap_or(ind.severity);
    ind.tlp = feed.tlp.unwrap_or(ind.tlp);
    if feed.group.is_some() {
        ind.groups = matcher::Groups::one(feed.group());
    }
    ind.tags.clone_from(&feed.tags);
    ind.provider.clone_from(&feed.provider);
    ind.allowlist = feed.allowlist;
    if let Some(m) = &rec.meta {
        if let Some(c) = m.confidence {
            ind.confidence = c;
        }
        if let Some(s) = m.severity {
            ind.severity = s;
        }
        if let Some(t) = m.tlp {
            ind.tlp = t;
        }
        ind.tags.extend(m.tags.iter().cloned());
        if m.provider.is_some() {
            ind.provider.clone_from(&m.provider);
        }
        ind.description.clone_from(&m.description);
        ind.reference.clone_from(&m.reference);
        if let Some(id) = &m.external_id {
            if !matcher::model::is_external_id(id) {
                let shown: String = id.chars().take(80).collect();
                return Err(format!(
                    "id {shown:?} is neither a STIX id (type--uuid) nor a uuid"
                ));
            }
            ind.external_id = Some(id.clone());
        }
        ind.first_seen = m.first_seen;
        ind.last_seen = m.last_seen;
        ind.reported = m.reported;
        ind.expires = m.expires;
    }
    ind.tidy();
    Ok(ind)
}

/// The host of a URL indicator as a derived fqdn/IP indicator (ARCHITECTURE.md §2.1: domain at c/2,
/// IP at c−20, tagged `derived`, exact-only for domains: the URL names that host only).
pub fn derive_host(url: &Indicator) -> Option<Indicator> {
    if url.itype != IndicatorType::Url || url.derived {
        return None;
    }
    let host = allowlist::url_host(&url.value)?;
    let n = normalize(host, None).ok()?;
    // `http://github.io/x` is a narrow URL, but its host alone would not be.
    if n.itype == IndicatorType::Fqdn && crate::breadth::public_suffix(&n.value).is_some() {
        return None;
    }
    let mut d = url.clone();
    d.value = n.value;
    d.itype = n.itype;
    d.derived = true;
    match n.itype {
        IndicatorType::Fqdn => {
            d.confidence = url.confidence / 2;
            d.exact_only = true;
        }
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
            d.confidence = url.confidence.saturating_sub(20);
            d.exact_only = false;
        }
        _ => return None,
    }
    d.reference = Some(url.value.clone());
    // The host is not the platform's indicator: a sighting of it is not one of the URL's.
    d.external_id = None;
    d.tags.push("derived".into());
    d.tidy();
    Some(d)
}

/// The merge's order: a snapshot's id order (domains by their label-reversed names), the
/// order of [`crate::runs::record`]'s keys.
#[cfg(test)]
fn key_cmp(a: &Indicator, b: &Indicator) -> std::cmp::Ordering {
    matcher::snapshot::id_order(a, b)
}

/// Sort by (itype, value) and merge equal keys; returns how many were merged away. The
/// in-memory merge `update` did before [`crate::runs`]: the reference they are tested
/// against.
/// Sorts compact keys (itype, first 8 value bytes, index) rather than the indicators
/// (large to move, and their values live behind a pointer), then moves each once.
#[cfg(test)]
pub(crate) fn sort_merge(v: &mut Vec<Indicator>) -> usize {
    if v.windows(2).all(|w| key_cmp(&w[0], &w[1]).is_lt()) {
        return 0;
    }
    let mut keyed: Vec<u32> = (0..v.len() as u32).collect();
    {
        let items: &[Indicator] = v;
        keyed.par_sort_unstable_by(|&a, &b| {
            key_cmp(&items[a as usize], &items[b as usize])
                // Equal keys in list order: the merge's first-wins fields are deterministic.
                .then(a.cmp(&b))
        });
    }
    let idx = keyed.into_iter().map(|k| k as usize);
    let mut slots: Vec<Option<Indicator>> = std::mem::take(v).into_iter().map(Some).collect();
    let mut out: Vec<Indicator> = Vec::with_capacity(slots.len());
    let mut merged = 0;
    for i in idx {
        let Some(ind) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.itype == ind.itype && last.value == ind.value => {
                last.merge(&ind);
                merged += 1;
            }
            _ => out.push(ind),
        }
    }
    *v = out;
    merged
}

/// Merge lists each sorted by (itype, value) with no repeats inside one, merging equal
/// keys across them: one sequential pass, each indicator moved once.
#[cfg(test)]
pub(crate) fn merge_sorted(parts: Vec<Vec<Indicator>>) -> Vec<Indicator> {
    let total = parts.iter().map(Vec::len).sum();
    let mut out: Vec<Indicator> = Vec::with_capacity(total);
    let mut iters: Vec<std::vec::IntoIter<Indicator>> =
        parts.into_iter().map(Vec::into_iter).collect();
    // A handful of parts (feeds): a linear scan of their heads beats a heap, whose sifts
    // would move the large records around.
    let mut heads: Vec<Option<Indicator>> = iters.iter_mut().map(Iterator::next).collect();
    loop {
        let mut best: Option<usize> = None;
        for (k, h) in heads.iter().enumerate() {
            let Some(h) = h else { continue };
            let better = match best.and_then(|b| heads[b].as_ref()) {
                Some(cur) => key_cmp(h, cur).is_lt(),
                None => true,
            };
            if better {
                best = Some(k);
            }
        }
        let Some(k) = best else { break };
        let next = iters[k].next();
        let Some(ind) = std::mem::replace(&mut heads[k], next) else {
            break;
        };
        match out.last_mut() {
            Some(last) if last.itype == ind.itype && last.value == ind.value => last.merge(&ind),
            _ => out.push(ind),
        }
    }
    out
}

/// Result of fetching and parsing one feed.
struct FeedRun {
    summary: FeedSummary,
    /// `None`: keep the previous snapshot's entries.
    indicators: Option<Runs>,
    state: FeedState,
}

impl FeedRun {
    /// A feed that failed for `reason`: recorded in its state, its previous entries kept.
    fn failed(name: &str, mut state: FeedState, reason: String) -> FeedRun {
        state.failed(&reason);
        FeedRun {
            summary: FeedSummary::new(name, FeedStatus::Failed { reason }),
            indicators: None,
            state,
        }
    }
}

/// Why freshly parsed content must not replace the feed's previous entries, if it must not:
/// an empty body, an HTML page (a login or error page), every record rejected, or fewer
/// entries than `min_ratio` of `baseline` (the last good parse, when there is one to keep).
fn unusable(
    bytes: &[u8],
    summary: &FeedSummary,
    feed: &FeedConfig,
    baseline: Option<usize>,
) -> Option<String> {
    let text = bytes.trim_ascii_start();
    let text = text
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(text)
        .trim_ascii();
    if text.is_empty() {
        return Some("the content is empty".into());
    }
    let head = text.get(..14).unwrap_or(text).to_ascii_lowercase();
    if feed.format != Format::Pattern
        && (head.starts_with(b"<!doctype html") || head.starts_with(b"<html"))
    {
        return Some("the content is an HTML page, not a feed".into());
    }
    if summary.accepted == 0 && summary.rejected > 0 {
        let first = summary.reject_samples.first().map_or(String::new(), |r| {
            format!("; line {}: {}", r.line, r.reason)
        });
        return Some(format!(
            "every record was rejected ({}){first}",
            summary.rejected
        ));
    }
    let base = baseline.unwrap_or(0);
    let ratio = feed.min_ratio();
    if base > 0 && (summary.accepted as f64) < ratio * base as f64 {
        return Some(format!(
            "it shrank to {} entries from {base} at the last good fetch, below min_ratio = {ratio}",
            summary.accepted
        ));
    }
    None
}

/// Where a feed's relative paths start, the data directory (TAXII stores), and how its
/// indicators are sorted.
#[derive(Clone, Copy)]
struct Dirs<'a> {
    config: &'a Path,
    data: &'a Path,
    spill: Spill<'a>,
}

/// How one sort may use memory (ARCHITECTURE.md §2.1): `budget` bytes of compact records,
/// then sorted runs in `dir` (none: in memory only), and `held`, the bytes of finished
/// feeds' runs kept in memory, shared by every feed of an update, with its cap.
#[derive(Clone, Copy)]
pub(crate) struct Spill<'a> {
    budget: usize,
    dir: Option<&'a Path>,
    held: Option<(&'a std::sync::atomic::AtomicUsize, usize)>,
}

impl Spill<'_> {
    /// Everything in memory.
    const MEMORY: Spill<'static> = Spill {
        budget: usize::MAX,
        dir: None,
        held: None,
    };

    fn sorter(&self) -> Sorter {
        Sorter::new(self.budget, self.dir)
    }

    /// A sorter of records pushed in key order ([`Sorter::presorted`]).
    fn presorted(&self) -> Sorter {
        Sorter::presorted(self.budget, self.dir)
    }

    /// Keep a finished feed's runs in memory while the update's cap allows, else move them
    /// to disk.
    fn settle(&self, runs: Runs) -> Result<Runs, RunError> {
        use std::sync::atomic::Ordering;
        let (Some(dir), Some((held, cap))) = (self.dir, self.held) else {
            return Ok(runs);
        };
        let n = runs.mem_bytes();
        if held.fetch_add(n, Ordering::Relaxed) + n <= cap {
            return Ok(runs);
        }
        held.fetch_sub(n, Ordering::Relaxed);
        runs.spill_to(dir)
    }
}

/// [`run_feed`], with a panic anywhere in fetching or parsing turned into that feed's
/// failure: the other feeds go on and this one keeps its previous entries.
fn run_feed_caught(
    feed: &FeedConfig,
    dirs: Dirs<'_>,
    prev: Option<&FeedState>,
    opts: &UpdateOptions,
    keep: bool,
    now: UnixTime,
    progress: &dyn Progress,
) -> FeedRun {
    let run = || run_feed(feed, dirs, prev, opts, keep, now, progress);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|payload| {
        let reason = format!(
            "internal error while fetching or parsing (please report it): {}",
            matcher::panics::panic_text(payload.as_ref())
        );
        let mut state = prev.cloned().unwrap_or_default();
        state.last_attempt = Some(now);
        FeedRun::failed(&feed.name, state, reason)
    })
}

/// Fetch and parse one feed. `keep`: a previous snapshot holds entries this feed could keep
/// (without one, any usable content is taken, however small).
fn run_feed(
    feed: &FeedConfig,
    dirs: Dirs<'_>,
    prev: Option<&FeedState>,
    opts: &UpdateOptions,
    keep: bool,
    now: UnixTime,
    progress: &dyn Progress,
) -> FeedRun {
    let mut state = prev.cloned().unwrap_or_default();
    let hash = config_hash(feed);
    let same_config = state.config_hash == Some(hash);
    if !opts.force && same_config {
        if let (Some(refresh), Some(last)) = (feed.refresh, state.last_attempt) {
            if now < last.saturating_add(refresh.0.as_secs() as i64) {
                return FeedRun {
                    summary: FeedSummary::new(&feed.name, FeedStatus::NotDue),
                    indicators: None,
                    state,
                };
            }
        }
    }
    state.last_attempt = Some(now);
    state.previous_indicators = state.indicators;
    let location = feed.location(dirs.config);
    let conditional = !opts.force && same_config && state.last_success.is_some();
    // Local files: unchanged (mtime, length) and config → not modified.
    if let crate::config::SourceLocation::File(p) = &location {
        let stamp = file_stamp(p);
        if conditional && stamp.is_some() && stamp == state.file_stamp {
            state.not_modified(now);
            return FeedRun {
                summary: FeedSummary::new(&feed.name, FeedStatus::NotModified),
                indicators: None,
                state,
            };
        }
        state.file_stamp = stamp;
    }
    if matches!(feed.format, Format::Taxii | Format::MispFeed) {
        return run_pulled(feed, dirs, state, same_config && keep, hash, now, progress);
    }
    let validators = Validators {
        etag: state.etag.clone(),
        last_modified: state.last_modified.clone(),
    };
    // A large body goes to an unnamed file of DATA/tmp, parsed mapped (§2.1.1).
    let spool = fetch::Spool::in_dir(dirs.data.join("tmp"));
    let fetched = fetch::fetch_spooled(
        feed,
        &location,
        conditional.then_some(&validators),
        &spool,
        progress,
    );
    let (bytes, v) = match fetched {
        Ok(Fetched::NotModified) => {
            state.not_modified(now);
            return FeedRun {
                summary: FeedSummary::new(&feed.name, FeedStatus::NotModified),
                indicators: None,
                state,
            };
        }
        Ok(Fetched::Body { bytes, validators }) => (bytes, validators),
        Err(e) => return FeedRun::failed(&feed.name, state, e.to_string()),
    };
    let (mut summary, indicators) = match process_runs(&bytes, feed, now, dirs.spill) {
        Ok(r) => r,
        Err(e) => return FeedRun::failed(&feed.name, state, e.to_string()),
    };
    // The shrink guard compares with the last good parse of the same config, when there
    // are previous entries to keep (`keep` is false without a previous snapshot).
    let baseline = (same_config && keep).then_some(state.accepted);
    if let Some(reason) = unusable(&bytes, &summary, feed, baseline) {
        // Validators are not stored: the next attempt refetches and judges again.
        state.failed(&reason);
        summary.status = FeedStatus::Failed { reason };
        return FeedRun {
            summary,
            indicators: None,
            state,
        };
    }
    state.etag = v.etag;
    state.last_modified = v.last_modified;
    succeeded(state, summary, indicators, hash, now, dirs.spill)
}

/// A feed's run that fetched and parsed usable content: its state says so.
fn succeeded(
    mut state: FeedState,
    mut summary: FeedSummary,
    indicators: Runs,
    hash: u64,
    now: UnixTime,
    spill: Spill<'_>,
) -> FeedRun {
    let indicators = match spill.settle(indicators) {
        Ok(r) => r,
        Err(e) => {
            let reason = e.to_string();
            state.failed(&reason);
            summary.status = FeedStatus::Failed { reason };
            return FeedRun {
                summary,
                indicators: None,
                state,
            };
        }
    };
    state.last_success = Some(now);
    state.last_error = None;
    state.consecutive_failures = 0;
    state.last_outcome = Some(FetchOutcome::Fresh);
    state.config_hash = Some(hash);
    state.accepted = summary.accepted;
    FeedRun {
        summary,
        indicators: Some(indicators),
        state,
    }
}

/// A pulled feed's run ([`crate::taxii`], [`crate::misp_feed`]): pull into the store, parse
/// the store, and save it (the next pull's starting point) only when the parse is usable.
fn run_pulled(
    feed: &FeedConfig,
    dirs: Dirs<'_>,
    state: FeedState,
    guard: bool,
    hash: u64,
    now: UnixTime,
    progress: &dyn Progress,
) -> FeedRun {
    let failed = |mut state: FeedState, summary: Option<FeedSummary>, reason: String| {
        state.failed(&reason);
        let mut summary =
            summary.unwrap_or_else(|| FeedSummary::new(&feed.name, FeedStatus::Fetched));
        summary.status = FeedStatus::Failed { reason };
        FeedRun {
            summary,
            indicators: None,
            state,
        }
    };
    let pulled = match feed.format {
        Format::Taxii => crate::taxii::pull(feed, dirs.data, dirs.spill.sorter(), progress)
            .map_err(|e| e.to_string()),
        _ => crate::misp_feed::pull(feed, dirs.data, progress).map_err(|e| e.to_string()),
    };
    let mut pulled = match pulled {
        Ok(p) => p,
        Err(e) => return failed(state, None, e),
    };
    let (mut summary, indicators) = match process_runs(&pulled.bytes, feed, now, dirs.spill) {
        Ok(r) => r,
        Err(e) => return failed(state, None, e.to_string()),
    };
    summary.skipped += pulled.skipped;
    summary.pull = Some(PullCounts {
        requests: pulled.requests,
        received: pulled.received,
    });
    // A collection whose every indicator was revoked or expired is empty, not broken.
    let gone = summary.revoked + summary.expired;
    let baseline = guard.then_some(state.accepted);
    if gone == 0 || summary.accepted > 0 {
        if let Some(reason) = unusable(&pulled.bytes, &summary, feed, baseline) {
            return failed(state, Some(summary), reason);
        }
    }
    if let Err(e) = pulled.save() {
        let reason = format!("{}: {e}", pulled.path.display());
        return failed(state, Some(summary), reason);
    }
    succeeded(state, summary, indicators, hash, now, dirs.spill)
}

/// Parse, normalise, derive, dedup and expire one feed's bytes (no I/O). Exposed for
/// benchmarks and tests.
pub fn process_bytes(
    bytes: &[u8],
    feed: &FeedConfig,
    now: UnixTime,
) -> (FeedSummary, Vec<Indicator>) {
    match process_runs(bytes, feed, now, Spill::MEMORY) {
        // In memory, runs cannot fail but on a record they wrote themselves.
        Ok((summary, runs)) => (
            summary,
            runs.merge()
                .filter_map(|r| r.ok())
                .map(|(i, _)| i)
                .collect(),
        ),
        Err(e) => {
            let mut summary = FeedSummary::new(
                &feed.name,
                FeedStatus::Failed {
                    reason: e.to_string(),
                },
            );
            summary.bytes = bytes.len() as u64;
            (summary, Vec::new())
        }
    }
}

/// Records normalised at a time: bounds the indicators held besides the sorter's records.
const NORMALISE_CHUNK: usize = 1 << 16;
/// Bytes of a line-by-line feed parsed into records at a time.
const PARSE_CHUNK: usize = 16 << 20;

/// [`process_bytes`] into sorted runs of compact records (ARCHITECTURE.md §2.1): values
/// are normalised a chunk at a time into a [`Sorter`], merged (within-feed duplicates
/// folded and counted), and the merged ones and the hosts derived from them are the feed's
/// runs (the derived after, so equal keys fold as when appended and merged in memory).
pub(crate) fn process_runs(
    bytes: &[u8],
    feed: &FeedConfig,
    now: UnixTime,
    spill: Spill<'_>,
) -> Result<(FeedSummary, Runs), RunError> {
    let mut summary = FeedSummary::new(&feed.name, FeedStatus::Fetched);
    summary.bytes = bytes.len() as u64;
    // Expiry and max_age.
    let min_time = feed
        .max_age
        .map(|d| now.saturating_sub(d.0.as_secs() as i64));
    let current = |i: &Indicator| {
        if i.expires.is_some_and(|e| e <= now) {
            return false;
        }
        if let Some(min) = min_time {
            if let Some(t) = i.last_seen.or(i.reported).or(i.first_seen) {
                return t >= min;
            }
        }
        true
    };
    let mut sorter = spill.sorter();
    let mut samples: Vec<Reject> = Vec::new();
    let mut norm_rejects = Vec::new();
    let mut failed: Option<RunError> = None;
    crate::parse::parse_feed_chunks(bytes, feed, PARSE_CHUNK, |parsed| {
        if failed.is_some() {
            return;
        }
        summary.format = Some(parsed.format);
        summary.skipped += parsed.skipped;
        summary.revoked += parsed.revoked;
        summary.rejected += parsed.rejected;
        if samples.len() < crate::parse::MAX_KEPT_REJECTS {
            samples.extend(parsed.rejects);
        }
        for chunk in parsed.records.chunks(NORMALISE_CHUNK) {
            let results: Vec<Result<Indicator, (usize, String)>> = chunk
                .par_iter()
                .with_min_len(4096)
                .map(|r| {
                    to_indicator(r, feed)
                        .map_err(|e| (r.line, format!("{:?}: {e}", short(&r.value))))
                })
                .collect();
            for r in results {
                match r {
                    Ok(i) if current(&i) => {
                        if let Err(e) = sorter.push(&i) {
                            failed = Some(e);
                            return;
                        }
                    }
                    Ok(_) => summary.expired += 1,
                    Err((line, reason)) => {
                        summary.rejected += 1;
                        if norm_rejects.len() < crate::parse::MAX_KEPT_REJECTS {
                            norm_rejects.push(Reject { line, reason });
                        }
                    }
                }
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    samples.extend(norm_rejects);
    samples.sort_by_key(|r| r.line);
    samples.truncate(crate::parse::MAX_KEPT_REJECTS);
    summary.reject_samples = samples;
    let derive = feed.derive_enabled();
    let mut merged = spill.sorter();
    let mut derived = spill.sorter();
    for m in sorter.finish()?.merge() {
        let (ind, folded) = m?;
        summary.duplicates += folded;
        summary.accepted += 1;
        if derive {
            if let Some(d) = derive_host(&ind) {
                summary.derived += 1;
                derived.push(&d)?;
            }
        }
        merged.push(&ind)?;
    }
    Ok((summary, merged.finish()?.then(derived.finish()?)))
}

fn short(v: &str) -> String {
    if v.len() <= 80 {
        v.to_string()
    } else {
        let mut end = 80;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &v[..end])
    }
}

/// The built-in IANA special-purpose entries and the `[allowlist]` table as allowlist
/// indicators.
pub fn builtin_allowlist(config: &Config) -> (Vec<Indicator>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    if config.allowlist.iana.unwrap_or(true) {
        for s in allowlist::IANA_SPECIAL_V4
            .iter()
            .chain(allowlist::IANA_SPECIAL_V6)
        {
            match normalize(s.cidr, None) {
                Ok(n) => {
                    let mut i = Indicator::new(n.value, n.itype, IANA_SOURCE);
                    i.allowlist = true;
                    i.confidence = 100;
                    i.tlp = matcher::Tlp::Clear;
                    i.description = Some(format!("{} ({})", s.name, s.rfc));
                    i.provider = Some("iana.org".into());
                    out.push(i);
                }
                Err(e) => warnings.push(format!("built-in allowlist {}: {e}", s.cidr)),
            }
        }
    }
    let entries = config
        .allowlist
        .domains
        .iter()
        .map(|d| (d, Some(IndicatorType::Fqdn)))
        .chain(config.allowlist.cidrs.iter().map(|c| (c, None)));
    for (raw, hint) in entries {
        match normalize(raw, hint) {
            Ok(n) => {
                let mut i = Indicator::new(n.value, n.itype, CONFIG_SOURCE);
                i.allowlist = true;
                i.confidence = 100;
                out.push(i);
            }
            Err(e) => warnings.push(format!("[allowlist] {raw:?}: {e}")),
        }
    }
    (out, warnings)
}

/// Whether an entry comes from a `[[feed]]` (not only from the built-in or config allowlist).
fn from_a_feed(i: &Indicator) -> bool {
    i.sources
        .iter()
        .any(|s| s != IANA_SOURCE && s != CONFIG_SOURCE)
}

/// Run an update: see the module docs. Returns Err when nothing usable was produced, when
/// the config has no feed, or when the result would empty the feeds' indicators (the last
/// two unless `allow_empty`); nothing is published then.
pub fn update(
    config: &Config,
    config_dir: &Path,
    data_dir: &Path,
    opts: &UpdateOptions,
    progress: &dyn Progress,
) -> Result<UpdateReport, UpdateError> {
    if config.feeds.is_empty() && config.upstream.is_none() && !opts.allow_empty {
        return Err(UpdateError::NoFeeds);
    }
    let now = opts.now.unwrap_or_else(now_unix);
    let timing = std::env::var_os("TRAWL_FEEDS_TIMING").is_some();
    let t0 = std::time::Instant::now();
    let phase = |name: &str| {
        tracing::debug!(elapsed = ?t0.elapsed(), "update: {name}");
        if timing {
            eprintln!("update: {name} at {:?}", t0.elapsed());
        }
    };
    let prev_state = feed_states(data_dir);
    let mut warnings = Vec::new();
    let (submitted, w, submitted_hash) = served_submissions(data_dir);
    warnings.extend(w);
    // The fleet publisher's set: pulled first (fail-closed: the last good set stays), then
    // read like the submissions, so the local allowlist applies to it as to every feed.
    let upstream = config
        .upstream
        .as_ref()
        .map(|u| crate::fleet::pull::pull(u, config_dir, data_dir, now, opts.force));
    let upstream_hash = upstream
        .as_ref()
        .and_then(|_| crate::fleet::pull::upstream_fingerprint(data_dir));

    // Without a readable previous snapshot there is nothing to keep: fetch everything in
    // full (no conditional GET, no refresh skipping), or entries would silently vanish.
    let previous = Snapshot::open_current(data_dir);
    let run_opts = UpdateOptions {
        force: opts.force || previous.is_err(),
        ..opts.clone()
    };
    let keep = previous.is_ok();
    // Sorting in bounded memory: each sorter gets a share of `[update] memory` (feeds are
    // parsed in parallel, three sorters each), finished feeds keep a quarter in memory
    // between them, and the rest goes to sorted runs in DATA/tmp.
    let memory = usize::try_from(config.update.memory()).unwrap_or(usize::MAX);
    let threads = rayon::current_num_threads().max(1);
    let tmp = data_dir.join("tmp");
    let held = std::sync::atomic::AtomicUsize::new(0);
    let spill = Spill {
        budget: (memory / 4 / threads / 3).max(1),
        dir: Some(&tmp),
        held: Some((&held, memory / 4)),
    };
    let whole = Spill {
        budget: (memory / 4).max(1),
        ..spill
    };
    // 1. Fetch and parse every feed (in parallel), and meanwhile read the previous
    // snapshot's history on a thread of its own: it does not depend on the fetch (only the
    // kept feeds' entries do, read after it). It is dropped when the update turns out
    // unchanged.
    let stop = AtomicBool::new(false);
    let (runs, unchanged, history) = std::thread::scope(|s| {
        let reader = previous.as_ref().ok().map(|snap| {
            std::thread::Builder::new()
                .name("trawl-history".into())
                .spawn_scoped(s, || read_history(snap, whole, &stop))
        });
        let runs: Vec<FeedRun> = config
            .feeds
            .par_iter()
            .map(|f| {
                let run = run_feed_caught(
                    f,
                    Dirs {
                        config: config_dir,
                        data: data_dir,
                        spill,
                    },
                    prev_state.get(&f.name),
                    &run_opts,
                    keep,
                    now,
                    progress,
                );
                progress.feed_finished(&f.name, &run.summary);
                run
            })
            .collect();
        phase("fetched and parsed");
        let unchanged = previous.as_ref().ok().and_then(|snap| {
            unchanged_report(snap, config, submitted_hash, upstream_hash, &runs, now)
        });
        if unchanged.is_some() {
            stop.store(true, Ordering::Relaxed);
        }
        let history = match (reader, &previous) {
            (Some(Ok(thread)), _) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: read here.
            (_, Ok(snap)) if unchanged.is_none() => read_history(snap, whole, &stop),
            _ => Ok(None),
        };
        (runs, unchanged, history)
    });
    if let Some(report) = unchanged {
        let states: BTreeMap<String, FeedState> = runs
            .into_iter()
            .zip(&report.feeds)
            .map(|(mut r, summary)| {
                r.state.indicators = Some(summary.kept);
                (r.summary.name, r.state)
            })
            .collect();
        save_state(data_dir, &states)?;
        return Ok(UpdateReport { upstream, ..report });
    }
    let history = history?;
    phase("previous snapshot's history read");
    // 2. The previous snapshot's entries of kept feeds.
    let kept: HashSet<&str> = runs
        .iter()
        .filter(|r| r.indicators.is_none())
        .map(|r| r.summary.name.as_str())
        .collect();
    let allowlist_feeds: HashSet<&str> = config
        .feeds
        .iter()
        .filter(|f| f.allowlist)
        .map(|f| f.name.as_str())
        .collect();
    let mut carried = Carried::default();
    match &previous {
        Ok(snap) if !kept.is_empty() => {
            let keep = Keep {
                feeds: &kept,
                allowlist_feeds: &allowlist_feeds,
                // Each feed's breadth limits: an entry an older build accepted and the rule
                // now refuses is not carried over (it would otherwise stay until its feed
                // fetches again).
                min_prefix: config
                    .feeds
                    .iter()
                    .map(|f| (f.name.as_str(), f.min_prefix.unwrap_or_default()))
                    .collect(),
                now,
            };
            carried = read_carried(snap, &keep, whole)?;
        }
        Ok(_) | Err(SnapshotError::NoSnapshot(_)) => {}
        Err(e) => warnings.push(format!(
            "previous snapshot unreadable, starting afresh: {e}"
        )),
    }
    if carried.too_broad > 0 {
        warnings.push(format!(
            "{} entries of the previous snapshot are too broad (min_prefix, \
             public suffixes) and were not carried over",
            carried.too_broad
        ));
    }
    let carried_len = carried.len;
    let kept_counts = std::mem::take(&mut carried.counts);
    let (prev_len, prev_from_feeds, prev_runs) =
        history.map_or((0, 0, Runs::default()), |h| (h.len, h.from_feeds, h.runs));
    let mut prev = prev_runs.merge();
    let mut prev_rec = Vec::new();
    let mut prev_live = prev.next_record(&mut prev_rec)?;
    phase("previous snapshot read");

    // Nothing usable?
    let any_fresh = runs.iter().any(|r| r.indicators.is_some());
    if !config.feeds.is_empty() && !any_fresh && carried_len == 0 {
        let reasons: Vec<String> = runs
            .iter()
            .map(|r| match &r.summary.status {
                FeedStatus::Failed { reason } => format!("{}: {reason}", r.summary.name),
                s => format!("{}: {s:?} but no previous entries", r.summary.name),
            })
            .collect();
        // Each feed's attempt is still recorded (`trawl feeds` shows why it failed); it
        // has no entry in any snapshot.
        let states: BTreeMap<String, FeedState> = runs
            .into_iter()
            .map(|mut r| {
                r.state.indicators = Some(0);
                (r.summary.name, r.state)
            })
            .collect();
        save_state(data_dir, &states)?;
        return Err(UpdateError::NothingUsable(reasons.join("; ")));
    }

    // 3. Merge.
    let (builtin, w) = builtin_allowlist(config);
    warnings.extend(w);
    let mut summaries: Vec<FeedSummary> = Vec::with_capacity(runs.len());
    let mut states: BTreeMap<String, FeedState> = BTreeMap::new();
    // Every part is sorted (or sorted here), so they are merged rather than re-sorted.
    // Read only now: an unchanged update never decodes the upstream set.
    let upstream_set = match &upstream {
        Some(_) => {
            let (set, w) = crate::fleet::pull::upstream_indicators(data_dir);
            warnings.extend(w);
            set
        }
        None => Vec::new(),
    };
    // Runs in this order fold equal keys as merging the parts in this order did: what is
    // carried, the built-in allowlist, submissions, the upstream set, then the feeds.
    let mut parts = carried.runs;
    for part in [builtin, submitted, upstream_set] {
        let mut sorter = whole.sorter();
        for i in part.iter().filter(|i| i.expires.is_none_or(|e| e > now)) {
            sorter.push(i)?;
        }
        drop(part);
        parts = parts.then(sorter.finish()?);
    }
    for run in runs {
        let mut summary = run.summary;
        summary.kept = kept_counts.get(&summary.name).copied().unwrap_or(0);
        if let Some(inds) = run.indicators {
            parts = parts.then(inds);
        }
        states.insert(summary.name.clone(), run.state);
        summaries.push(summary);
    }
    // 4. Two walks over the merged runs: the allowlist entries first (only their keys are
    // decoded), then every indicator once, marked, dated, counted and handed to the
    // snapshot builder, so the set is never held as indicators.
    let mut walk = parts.merge_where(Some(crate::runs::record::is_allowlist));
    let allow_entries = walk
        .by_ref()
        .map(|r| r.map(|(i, _)| i))
        .collect::<Result<Vec<Indicator>, RunError>>()?;
    let index = AllowlistIndex::new(&allow_entries);
    drop(allow_entries);
    let merged = walk.rewind()?.merge();
    phase("allowlist read");
    let is_allowlist_source =
        |s: &str| allowlist_feeds.contains(s) || s == IANA_SOURCE || s == CONFIG_SOURCE;
    let mut allowlisted_per_feed: HashMap<String, usize> = HashMap::new();
    let mut allowlisted = 0;
    // History and diff (both in key order).
    let fresh: HashSet<&str> = summaries
        .iter()
        .filter(|s| s.status == FeedStatus::Fetched)
        .map(|s| s.name.as_str())
        .collect();
    let (mut added, mut changed) = (0, 0);
    let mut matched = 0;
    // Counted per itype and per source without a tree walk per indicator.
    let mut type_counts = [0usize; IndicatorType::ALL.len()];
    let mut allowlist_entries = 0;
    let mut per_source: HashMap<String, usize> = HashMap::new();
    let mut next_expiry: Option<UnixTime> = None;
    let mut any_from_a_feed = false;
    let mut builder = StreamBuilder::new();
    let mut want_key = Vec::new();
    for m in merged {
        let (mut ind, _) = m?;
        any_from_a_feed |= from_a_feed(&ind);
        // Allowlists.
        if !ind.allowlist {
            if let Some(mark) = index.covers(&ind) {
                allowlisted += 1;
                for s in &ind.sources {
                    *allowlisted_per_feed.entry(s.clone()).or_default() += 1;
                }
                ind.allowlisted_by = Some(mark.to_string());
            }
        } else if ind.sources.iter().any(|s| !is_allowlist_source(s)) {
            // An allowlist entry that is also a blocklist value is covered by itself.
            ind.allowlisted_by = Some(format!(
                "{}:{}",
                ind.sources
                    .iter()
                    .find(|s| is_allowlist_source(s))
                    .map_or("allowlist", String::as_str),
                ind.value
            ));
        }
        // History and diff.
        let mut p = None;
        let want = crate::runs::record::key_of(ind.itype, &ind.value, &mut want_key);
        while prev_live {
            let damaged = || RunError::Damaged { path: tmp.clone() };
            let have = crate::runs::record::key(&prev_rec).ok_or_else(damaged)?;
            match have.cmp(&want) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    p = Some(crate::runs::record::decode_prev(&prev_rec).ok_or_else(damaged)?);
                }
                std::cmp::Ordering::Greater => break,
            }
            prev_live = prev.next_record(&mut prev_rec)?;
            if p.is_some() {
                break;
            }
        }
        let listed_now = ind.sources.iter().any(|s| fresh.contains(s.as_str()));
        if listed_now {
            ind.last_seen = Some(now);
        }
        match p {
            Some(p) => {
                matched += 1;
                ind.first_seen = [p.first_seen, ind.first_seen].into_iter().flatten().min();
                if !listed_now {
                    ind.last_seen = ind.last_seen.max(p.last_seen);
                }
                if fingerprint(&ind) != p.fp {
                    changed += 1;
                }
            }
            None => {
                added += 1;
                if ind.first_seen.is_none() {
                    ind.first_seen = Some(now);
                }
                if ind.last_seen.is_none() {
                    ind.last_seen = Some(now);
                }
            }
        }
        // Counts.
        if let Some(n) = IndicatorType::ALL
            .iter()
            .position(|t| *t == ind.itype)
            .and_then(|k| type_counts.get_mut(k))
        {
            *n += 1;
        }
        allowlist_entries += usize::from(ind.allowlist);
        for s in &ind.sources {
            match per_source.get_mut(s.as_str()) {
                Some(n) => *n += 1,
                None => {
                    per_source.insert(s.clone(), 1);
                }
            }
        }
        if let Some(e) = ind.expires {
            next_expiry = Some(next_expiry.map_or(e, |n| n.min(e)));
        }
        builder.push(ind)?;
    }
    phase("merged, allowlists applied, history and diff");
    if !opts.allow_empty && prev_from_feeds > 0 && !any_from_a_feed {
        return Err(UpdateError::WouldEmpty {
            previous: prev_from_feeds,
        });
    }
    for s in &mut summaries {
        s.allowlisted = allowlisted_per_feed.get(&s.name).copied().unwrap_or(0);
    }
    let removed = prev_len.saturating_sub(matched);
    drop(prev);

    // 5. Publish.
    let by_type: BTreeMap<String, usize> = IndicatorType::ALL
        .iter()
        .zip(type_counts)
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| (t.as_str().to_string(), n))
        .collect();
    let total = builder.len();
    let mut facts = PublishedFacts {
        inputs: inputs_fingerprint(config, submitted_hash, upstream_hash),
        next_expiry,
        allowlist_entries,
        allowlisted,
        ..PublishedFacts::default()
    };
    facts.per_source = per_source.into_iter().collect();
    facts.allowlisted_per_source = allowlisted_per_feed
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for (name, state) in &mut states {
        state.indicators = Some(facts.per_source.get(name).copied().unwrap_or(0));
    }
    let extra = serde_json::json!({ "feeds": &states, "facts": &facts });
    let snapshot = builder.publish(data_dir, extra)?;
    phase("published");
    save_state(data_dir, &states)?;
    Ok(UpdateReport {
        feeds: summaries,
        total,
        allowlist_entries,
        allowlisted,
        by_type,
        added,
        removed,
        changed,
        snapshot,
        unchanged: false,
        warnings,
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::RecordMeta;
    use matcher::{Severity, Tlp};

    fn feed() -> FeedConfig {
        let mut f = FeedConfig::new("f", "f");
        f.confidence = Some(80);
        f.severity = Some(Severity::High);
        f.tags = vec!["Phishing".into()];
        f.provider = Some("example.org".into());
        f
    }

    #[test]
    fn record_overrides_feed_defaults() {
        let mut r = FeedRecord::new(3, "HXXP://Evil[.]Example:80/a#x");
        r.meta = Some(Box::new(RecordMeta {
            confidence: Some(95),
            tlp: Some(Tlp::Amber),
            tags: vec!["c2".into()],
            expires: Some(5),
            ..RecordMeta::default()
        }));
        let i = to_indicator(&r, &feed()).unwrap();
        assert_eq!(i.value, "http://evil.example/a");
        assert_eq!(i.itype, IndicatorType::Url);
        assert_eq!(
            (i.confidence, i.severity, i.tlp),
            (95, Severity::High, Tlp::Amber)
        );
        assert_eq!(i.tags, vec!["c2", "phishing"]);
        assert_eq!(i.sources, vec!["f"]);
        assert_eq!(i.provider.as_deref(), Some("example.org"));
        assert_eq!(i.expires, Some(5));
        assert!(to_indicator(&FeedRecord::new(1, "nul\0.example"), &feed()).is_err());
    }

    #[test]
    fn an_external_id_is_kept_checked_and_not_derived() {
        let with_id = |id: &str| {
            let mut r = FeedRecord::new(2, "http://a.evil.example/x");
            r.meta = Some(Box::new(RecordMeta {
                external_id: Some(id.to_string()),
                ..RecordMeta::default()
            }));
            to_indicator(&r, &feed())
        };
        let id = "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d";
        let url = with_id(id).unwrap();
        assert_eq!(url.external_id.as_deref(), Some(id));
        assert_eq!(url.reference, None);
        assert_eq!(derive_host(&url).unwrap().external_id, None);
        let why = with_id("indicator--1\n<script>").unwrap_err();
        assert!(why.contains("neither a STIX id"), "{why}");
        // A served line (fleet set, remote) is held to the same shape.
        let mut served = url.clone();
        served.external_id = Some("../../etc".into());
        let line = serde_json::to_string(&served).unwrap();
        assert!(check_served_line(&line).is_err());
        let line = serde_json::to_string(&url).unwrap();
        assert_eq!(check_served_line(&line).unwrap(), url);
    }

    #[test]
    fn derivation_lowers_confidence_and_never_chains() {
        let r = FeedRecord::new(1, "http://a.evil.example/x");
        let url = to_indicator(&r, &feed()).unwrap();
        let d = derive_host(&url).unwrap();
        assert_eq!(
            (d.value.as_str(), d.itype, d.confidence),
            ("a.evil.example", IndicatorType::Fqdn, 40)
        );
        assert!(d.derived && d.exact_only && d.tags.contains(&"derived".to_string()));
        assert!(derive_host(&d).is_none());
        let ip = to_indicator(&FeedRecord::new(1, "http://198.51.100.7:8080/x"), &feed()).unwrap();
        let d = derive_host(&ip).unwrap();
        assert_eq!(
            (d.value.as_str(), d.itype, d.confidence),
            ("198.51.100.7", IndicatorType::Ipv4, 60)
        );
    }

    #[test]
    fn merge_sorted_equals_sort_merge_of_the_concatenation() {
        let mk = |v: &str, t: IndicatorType, src: &str, conf: u8| {
            let mut i = Indicator::new(v, t, src);
            i.confidence = conf;
            i
        };
        let a = vec![
            mk("1.2.3.4", IndicatorType::Ipv4, "a", 10),
            mk("evil.example", IndicatorType::Fqdn, "a", 50),
            mk("x.example", IndicatorType::Fqdn, "a", 50),
        ];
        let b = vec![
            mk("0.0.0.1", IndicatorType::Ipv4, "b", 20),
            mk("evil.example", IndicatorType::Fqdn, "b", 90),
        ];
        let c = vec![mk("x.example", IndicatorType::Fqdn, "c", 70)];
        let mut expect: Vec<Indicator> = a.iter().chain(&b).chain(&c).cloned().collect();
        sort_merge(&mut expect);
        let got = merge_sorted(vec![a, Vec::new(), b, c]);
        assert_eq!(got, expect);
        let values: Vec<&str> = got.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["0.0.0.1", "1.2.3.4", "evil.example", "x.example"]);
        let evil = &got[2];
        assert_eq!((evil.confidence, evil.sources.len()), (90, 2));
    }

    #[test]
    fn process_bytes_counts_duplicates_expiry_and_derived() {
        let mut f = feed();
        f.max_age = Some(crate::config::DurationSpec(std::time::Duration::from_secs(
            86_400,
        )));
        let csv = b"url,seen\nhttp://a.example/x,2020-01-01\nhttp://A.example/x,2020-01-01\nhttp://b.example/y,2020-01-10 00:00:00\nnot a url at all,2020-01-10\n";
        f.format = Format::Csv;
        f.map.insert("last_seen".into(), "seen".into());
        let now = crate::parse::time::parse_time("2020-01-10 12:00:00").unwrap();
        let (s, inds) = process_bytes(csv, &f, now);
        assert_eq!(s.expired, 2, "both a.example rows are older than max_age");
        assert_eq!(s.rejected, 1);
        assert_eq!(s.reject_samples[0].line, 5);
        assert_eq!(s.accepted, 1);
        assert_eq!(s.derived, 1);
        let v: Vec<&str> = inds.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(v, vec!["b.example", "http://b.example/y"]);
        // Duplicates in one feed merge.
        let (s, inds) = process_bytes(
            b"a.example\nA.EXAMPLE\na.example.\n",
            &FeedConfig::new("d", "d"),
            now,
        );
        assert_eq!((s.accepted, s.duplicates, inds.len()), (1, 2, 1));
    }

    #[test]
    fn builtin_allowlist_normalises_every_iana_block() {
        let (entries, warnings) = builtin_allowlist(&Config::default());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            entries.len(),
            allowlist::IANA_SPECIAL_V4.len() + allowlist::IANA_SPECIAL_V6.len()
        );
        assert!(entries.iter().all(|e| e.allowlist));
        assert!(entries.iter().any(|e| e.value == "255.255.255.255"));
        assert!(entries.iter().any(|e| e.value == "::1"));
        let idx = AllowlistIndex::new(&entries);
        let probe = |v: &str| {
            let n = normalize(v, None).unwrap();
            idx.covers(&Indicator::new(n.value, n.itype, "x"))
                .map(str::to_string)
        };
        assert!(probe("172.20.1.1").unwrap().contains("172.16.0.0/12"));
        assert!(probe("192.168.1.0/24").is_some());
        assert!(probe("fe80::1").is_some());
        assert!(probe("2001:db8::/48").is_some());
        assert!(probe("8.8.8.8").is_none());
        assert!(probe("2a00:1450::1").is_none());
    }

    #[test]
    fn report_text_lists_rejects_with_lines() {
        let (s, _) = process_bytes(b"evil.example\n???\n", &FeedConfig::new("t", "t"), 0);
        let r = UpdateReport {
            feeds: vec![s],
            total: 1,
            allowlist_entries: 0,
            allowlisted: 0,
            by_type: BTreeMap::new(),
            added: 1,
            removed: 0,
            changed: 0,
            snapshot: PathBuf::from("/d/v1"),
            unchanged: false,
            warnings: vec![],
            upstream: None,
        };
        let text = r.render_text();
        assert!(
            text.contains("t [plain]: fetched: 1 accepted, 1 rejected"),
            "{text}"
        );
        assert!(text.contains("line 2: "), "{text}");
        assert!(text.contains("1 added, 0 removed, 0 changed"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["feeds"][0]["status"], "fetched");
    }
}
