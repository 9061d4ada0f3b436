//! Each configured feed's state as `trawl feeds` shows it and the daemon's `/metrics`
//! publishes it: last fetch and how it went, indicators now and the change since the fetch
//! before, the age of its data and when it is due next. Read from the update pipeline's
//! per-feed state (`DATA/feeds/state.json`, [`crate::update::feed_states`]).

use crate::config::Config;
use crate::update::{config_hash, feed_states, FeedState, FetchOutcome};
use matcher::UnixTime;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// How a feed's last attempt went, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// No update has tried it yet.
    Never,
    /// New content, parsed and used.
    Fresh,
    /// Unchanged since the fetch before (HTTP 304, or the same file).
    NotModified,
    /// It failed; its last good entries (if any) were kept.
    Failed,
    /// It succeeded (recorded by an older trawl that did not say whether it was new).
    Ok,
}

impl Outcome {
    /// The name shown in the table and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Never => "never fetched",
            Outcome::Fresh => "fresh",
            Outcome::NotModified => "not modified",
            Outcome::Failed => "failed",
            Outcome::Ok => "ok",
        }
    }
}

/// One configured feed's state.
#[derive(Debug, Clone, Serialize)]
pub struct FeedRow {
    /// Feed name.
    pub name: String,
    /// Provider, from the config.
    pub provider: Option<String>,
    /// The last fetch attempt (Unix seconds).
    pub last_fetch: Option<UnixTime>,
    /// How it went.
    pub outcome: Outcome,
    /// Why the last attempt failed.
    pub reason: Option<String>,
    /// Failed attempts in a row.
    pub consecutive_failures: u32,
    /// Entries listing this feed in the snapshot now (after a failure: the kept ones).
    pub indicators: Option<usize>,
    /// `indicators` minus what the feed had before its last fetch (`None`: first fetch).
    pub change: Option<i64>,
    /// When the feed last delivered good content or confirmed it unchanged.
    pub last_success: Option<UnixTime>,
    /// Seconds since `last_success`.
    pub data_age_secs: Option<i64>,
    /// Its `refresh` interval in seconds (`None`: fetched at every update).
    pub refresh_secs: Option<u64>,
    /// When `refresh` makes it due again (`None`: at every update, or now).
    pub next_due: Option<UnixTime>,
    /// The next `trawl update` fetches it.
    pub due_now: bool,
}

impl FeedRow {
    fn new(feed: &crate::config::FeedConfig, state: Option<&FeedState>, now: UnixTime) -> Self {
        let refresh_secs = feed.refresh.map(|r| r.0.as_secs());
        let Some(st) = state else {
            return FeedRow {
                name: feed.name.clone(),
                provider: feed.provider.clone(),
                last_fetch: None,
                outcome: Outcome::Never,
                reason: None,
                consecutive_failures: 0,
                indicators: None,
                change: None,
                last_success: None,
                data_age_secs: None,
                refresh_secs,
                next_due: None,
                due_now: true,
            };
        };
        let outcome = match st.last_outcome {
            Some(FetchOutcome::Fresh) => Outcome::Fresh,
            Some(FetchOutcome::NotModified) => Outcome::NotModified,
            Some(FetchOutcome::Failed) => Outcome::Failed,
            None if st.last_error.is_some() => Outcome::Failed,
            None if st.last_success.is_some() => Outcome::Ok,
            None => Outcome::Never,
        };
        // The config changed since its last good parse (or there never was one): the next
        // update fetches it whatever its refresh says.
        let config_changed = st.config_hash != Some(config_hash(feed));
        let next_due = match (refresh_secs, st.last_attempt) {
            (Some(r), Some(last)) if !config_changed => {
                Some(last.saturating_add(i64::try_from(r).unwrap_or(i64::MAX)))
            }
            _ => None,
        };
        let change = match (st.indicators, st.previous_indicators) {
            (Some(n), Some(before)) => Some(n as i64 - before as i64),
            _ => None,
        };
        FeedRow {
            name: feed.name.clone(),
            provider: feed.provider.clone(),
            last_fetch: st.last_attempt,
            outcome,
            reason: st.last_error.clone(),
            consecutive_failures: st.consecutive_failures,
            indicators: st.indicators,
            change,
            last_success: st.last_success,
            data_age_secs: st.last_success.map(|t| now.saturating_sub(t).max(0)),
            refresh_secs,
            next_due,
            due_now: next_due.is_none_or(|t| t <= now),
        }
    }
}

/// One row per `[[feed]]` of `config`, in config order, from the state in `data_dir`.
pub fn feed_rows(config: &Config, data_dir: &Path, now: UnixTime) -> Vec<FeedRow> {
    let states = feed_states(data_dir);
    config
        .feeds
        .iter()
        .map(|f| FeedRow::new(f, states.get(&f.name), now))
        .collect()
}

/// A time as RFC 3339 UTC (`-` when absent).
fn when(t: Option<UnixTime>) -> String {
    t.and_then(crate::export::rfc3339)
        .unwrap_or_else(|| "-".to_string())
}

/// A span of seconds as `45s`, `12m`, `3h`, `2d`.
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7_199 => format!("{}m", s / 60),
        7_200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The rows as the `trawl feeds` table: one line per feed, then the failures' reasons.
pub fn render_table(rows: &[FeedRow]) -> String {
    let mut s = String::new();
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        s,
        "{:<name_w$}  {:<20}  {:<24}  {:>10}  {:>8}  {:>8}  NEXT DUE",
        "FEED", "LAST FETCH", "OUTCOME", "INDICATORS", "CHANGE", "DATA AGE"
    );
    for r in rows {
        let outcome = match (r.outcome, r.indicators) {
            (Outcome::Failed, Some(n)) if n > 0 => format!("failed, kept {n}"),
            (o, _) => o.as_str().to_string(),
        };
        let indicators = r.indicators.map_or("-".to_string(), |n| n.to_string());
        let change = match (r.change, r.indicators) {
            (Some(c), _) => format!("{c:+}"),
            (None, Some(_)) => "new".to_string(),
            (None, None) => "-".to_string(),
        };
        let age = r.data_age_secs.map_or("-".to_string(), span);
        let due = match (r.due_now, r.next_due) {
            (true, _) => "now".to_string(),
            (false, t) => when(t),
        };
        let _ = writeln!(
            s,
            "{:<name_w$}  {:<20}  {:<24}  {:>10}  {:>8}  {:>8}  {due}",
            r.name,
            when(r.last_fetch),
            outcome,
            indicators,
            change,
            age
        );
    }
    for r in rows.iter().filter(|r| r.outcome == Outcome::Failed) {
        let _ = writeln!(
            s,
            "{}: {} ({} failed attempt(s) in a row)",
            r.name,
            r.reason.as_deref().unwrap_or("failed"),
            r.consecutive_failures
        );
    }
    s
}

/// The rows as JSON (times as RFC 3339 UTC).
pub fn render_json(rows: &[FeedRow]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let t = |x: Option<UnixTime>| x.and_then(crate::export::rfc3339);
            serde_json::json!({
                "name": r.name,
                "provider": r.provider,
                "last_fetch": t(r.last_fetch),
                "outcome": r.outcome,
                "reason": r.reason,
                "consecutive_failures": r.consecutive_failures,
                "kept_last_good": r.outcome == Outcome::Failed && r.indicators.is_some_and(|n| n > 0),
                "indicators": r.indicators,
                "change": r.change,
                "last_success": t(r.last_success),
                "data_age_seconds": r.data_age_secs,
                "refresh_seconds": r.refresh_secs,
                "next_due": t(r.next_due),
                "due_now": r.due_now,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::FeedState;

    fn config() -> Config {
        Config::from_toml_str(
            "[[feed]]\nname = \"a\"\nsource = \"a.txt\"\nrefresh = \"1h\"\n\
             [[feed]]\nname = \"b\"\nsource = \"b.txt\"\n\
             [[feed]]\nname = \"c\"\nsource = \"c.txt\"\nrefresh = \"1h\"\n",
        )
        .unwrap()
    }

    #[test]
    fn rows_from_state_and_config() {
        let c = config();
        let a = FeedState {
            last_attempt: Some(1_000),
            last_success: Some(900),
            last_error: Some("HTTP 503".into()),
            consecutive_failures: 2,
            last_outcome: Some(FetchOutcome::Failed),
            indicators: Some(40),
            previous_indicators: Some(42),
            config_hash: Some(config_hash(&c.feeds[0])),
            ..FeedState::default()
        };
        // An old state file: no outcome, no counts.
        let b = FeedState {
            last_attempt: Some(1_000),
            last_success: Some(1_000),
            ..FeedState::default()
        };
        let states = [("a", &a), ("b", &b)];
        let rows: Vec<FeedRow> = c
            .feeds
            .iter()
            .map(|f| {
                let st = states.iter().find(|(n, _)| *n == f.name).map(|(_, s)| *s);
                FeedRow::new(f, st, 2_000)
            })
            .collect();
        assert_eq!(rows[0].outcome, Outcome::Failed);
        assert_eq!(rows[0].change, Some(-2));
        assert_eq!(rows[0].data_age_secs, Some(1_100));
        assert_eq!(rows[0].next_due, Some(4_600));
        assert!(!rows[0].due_now);
        assert_eq!(rows[1].outcome, Outcome::Ok);
        assert_eq!((rows[1].next_due, rows[1].due_now), (None, true));
        assert_eq!(rows[2].outcome, Outcome::Never);
        let table = render_table(&rows);
        assert!(table.contains("failed, kept 40"), "{table}");
        assert!(
            table.contains("a: HTTP 503 (2 failed attempt(s) in a row)"),
            "{table}"
        );
        assert!(table.contains("1970-01-01T01:16:40Z"), "{table}");
        let json = render_json(&rows);
        assert_eq!(json[0]["kept_last_good"], true);
        assert_eq!(json[0]["outcome"], "failed");
        assert_eq!(json[1]["outcome"], "ok");
        assert_eq!(json[2]["outcome"], "never");
    }

    #[test]
    fn state_files_of_older_versions_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("feeds")).unwrap();
        // What trawl wrote before `last_outcome` and the indicator counts existed.
        std::fs::write(
            dir.path().join("feeds/state.json"),
            r#"{"a": {"last_attempt": 1000, "last_success": 900, "etag": null,
                "last_modified": null, "file_stamp": null, "config_hash": 7,
                "last_error": "HTTP 500", "accepted": 12, "consecutive_failures": 1}}"#,
        )
        .unwrap();
        let rows = feed_rows(&config(), dir.path(), 2_000);
        assert_eq!(rows[0].outcome, Outcome::Failed);
        assert_eq!(rows[0].reason.as_deref(), Some("HTTP 500"));
        assert_eq!((rows[0].indicators, rows[0].change), (None, None));
        assert_eq!(rows[0].data_age_secs, Some(1_100));
        assert_eq!(rows[1].outcome, Outcome::Never);
    }

    #[test]
    fn a_changed_config_is_due_now() {
        let c = config();
        let st = FeedState {
            last_attempt: Some(1_000),
            last_success: Some(1_000),
            last_outcome: Some(FetchOutcome::Fresh),
            config_hash: Some(1),
            ..FeedState::default()
        };
        let row = FeedRow::new(&c.feeds[0], Some(&st), 1_001);
        assert!(row.due_now);
        assert_eq!(row.next_due, None);
    }

    #[test]
    fn spans() {
        assert_eq!(span(59), "59s");
        assert_eq!(span(600), "10m");
        assert_eq!(span(3 * 3600), "3h");
        assert_eq!(span(3 * 86_400), "3d");
        assert_eq!(span(-5), "0s");
    }
}
