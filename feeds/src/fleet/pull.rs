//! The sensor side of a fleet: `[upstream]` in `trawl update`. Fetch the signed manifest
//! (conditional GET), then the deltas from the held release or else the full bundle, verify
//! the signature and every hash, apply, check the result's content hash (a mismatch fetches
//! the full bundle), refuse an older release (a replay), an empty set or one that shrank by
//! more than `max_shrink` (unless the publisher marked it intended). Anything refused or
//! failed keeps the last good set, says why in the update summary and in
//! `DATA/upstream/state.json` (which `trawl run`'s `/metrics` and `/healthz` read).

use super::keys::PublicKey;
use super::manifest::{DeltaRef, FileRef, Manifest};
use super::set::{sha256_hex, IndicatorSet};
use super::FleetError;
use crate::config::{FeedConfig, UpstreamConfig};
use crate::fetch::{Fetched, Validators};
use matcher::Indicator;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The held set, relative to the data directory.
pub const SET_FILE: &str = "upstream/indicators.jsonl";
/// The pull state, relative to the data directory.
pub const STATE_FILE: &str = "upstream/state.json";
/// Sources of upstream indicators are the publisher's feed names behind this prefix, so
/// they never mix with a local feed of the same name.
pub const SOURCE_PREFIX: &str = "upstream:";

/// Default `[upstream] refresh`, in seconds.
pub const DEFAULT_REFRESH: u64 = crate::config::DEFAULT_UPSTREAM_REFRESH.as_secs();

/// The release a sensor holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Release id.
    pub id: String,
    /// Its serial.
    pub serial: u64,
    /// Its content hash.
    pub content_hash: String,
    /// Indicators.
    pub total: usize,
    /// When the publisher made it.
    pub created: i64,
}

/// What the last pulls did (`DATA/upstream/state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamState {
    /// The last good release.
    pub held: Option<Held>,
    /// `ETag` of the manifest last read.
    pub etag: Option<String>,
    /// `Last-Modified` of the manifest last read.
    pub last_modified: Option<String>,
    /// Last pull attempt (Unix seconds).
    pub last_attempt: i64,
    /// Last time the sensor knew it held the latest release (applied or unchanged).
    pub verified_at: i64,
    /// What the last attempt did.
    pub last_outcome: String,
    /// Why the last attempt was refused or failed (cleared by a good one).
    pub last_error: Option<String>,
    /// Releases refused (bad signature or hash, replay, empty, shrink).
    pub refused_total: u64,
    /// Pulls that failed (network, HTTP, size).
    pub failed_total: u64,
    /// Pulls that applied a delta.
    pub deltas_total: u64,
    /// Pulls that applied a full bundle.
    pub bundles_total: u64,
    /// Bytes of release files downloaded (as stored, compressed), all pulls.
    pub bytes_total: u64,
}

/// How a pull ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PullOutcome {
    /// Not due (`refresh`).
    NotDue,
    /// The held release is the latest (a 304, or the same id).
    Unchanged,
    /// A new release applied.
    Applied {
        /// `delta` or `bundle`.
        how: String,
        /// Bytes downloaded for it (manifest excluded, as stored).
        bytes: u64,
    },
    /// Refused: kept the last good set.
    Refused {
        /// Why.
        reason: String,
    },
    /// Failed: kept the last good set.
    Failed {
        /// Why.
        reason: String,
    },
}

/// The upstream part of an update report.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamSummary {
    /// The URL pulled.
    pub url: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: PullOutcome,
    /// The release now held (the last good one).
    pub held: Option<Held>,
}

impl UpstreamSummary {
    /// One line for `trawl update`'s text summary.
    pub fn render(&self) -> String {
        let held = self.held.as_ref().map_or("none".to_string(), |h| {
            format!("{} ({} indicators)", h.id, h.total)
        });
        match &self.outcome {
            PullOutcome::NotDue => {
                format!("upstream {}: skipped (not due), holding {held}", self.url)
            }
            PullOutcome::Unchanged => format!("upstream {}: unchanged, holding {held}", self.url),
            PullOutcome::Applied { how, bytes } => {
                format!(
                    "upstream {}: applied {how} ({bytes} bytes), now {held}",
                    self.url
                )
            }
            PullOutcome::Refused { reason } => format!(
                "upstream {}: REFUSED ({reason}); kept the last good release {held}",
                self.url
            ),
            PullOutcome::Failed { reason } => format!(
                "upstream {}: FAILED ({reason}); kept the last good release {held}",
                self.url
            ),
        }
    }
}

/// What is wrong with the upstream intel now, for `/healthz`: the last pull refused or
/// failed, or the intel is older than `max_age` (seconds since the sensor last knew it held
/// the latest release). Empty when all is well.
pub fn health(cfg: &UpstreamConfig, state: &UpstreamState, now: i64) -> Vec<String> {
    let mut out = Vec::new();
    if state.held.is_none() {
        out.push("no upstream release held yet".to_string());
    }
    if let Some(e) = &state.last_error {
        out.push(format!(
            "last pull {}: {e} (last good release kept)",
            state.last_outcome
        ));
    }
    if let (Some(max), Some(age)) = (cfg.max_age, state.age(now)) {
        if age > max.0.as_secs() as i64 {
            out.push(format!(
                "intel is {age}s old, older than max_age = {}s",
                max.0.as_secs()
            ));
        }
    }
    out
}

impl UpstreamState {
    /// Seconds since the sensor last knew it held the latest release (`None`: never).
    pub fn age(&self, now: i64) -> Option<i64> {
        (self.verified_at > 0 && self.held.is_some()).then(|| (now - self.verified_at).max(0))
    }
}

/// The pull state in `data_dir` (default when absent or unreadable).
pub fn load_state(data_dir: &Path) -> UpstreamState {
    std::fs::read(data_dir.join(STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(data_dir: &Path, state: &UpstreamState) -> Result<(), FleetError> {
    let body = serde_json::to_vec_pretty(state).unwrap_or_default();
    write_file(&data_dir.join(STATE_FILE), &body)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FleetError> {
    let io = |source| FleetError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A fetcher of release files: the one capped HTTP path of feeds (`crate::fetch`).
struct Client {
    base: url::Url,
    feed: FeedConfig,
    /// `X-Trawl-Sensor` and `X-Trawl-Release` (the held release), for a `trawl serve`'s
    /// fleet registry; a static web server ignores them.
    sensor: String,
    held: String,
}

impl Client {
    fn new(cfg: &UpstreamConfig, held: Option<&Held>) -> Result<Client, FleetError> {
        let mut base = cfg.url.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        let base = url::Url::parse(&base)
            .map_err(|e| FleetError::Local(format!("[upstream] url {:?}: {e}", cfg.url)))?;
        let token = cfg.token().map_err(FleetError::Local)?;
        let mut feed = FeedConfig::new("upstream", base.as_str());
        feed.auth_header = token.map(|t| format!("Authorization: Bearer {t}"));
        feed.max_bytes = cfg.max_bytes;
        feed.timeout = cfg.timeout;
        feed.retries = Some(1);
        Ok(Client {
            base,
            feed,
            sensor: cfg.sensor_name(),
            held: held.map(|h| h.id.clone()).unwrap_or_default(),
        })
    }

    fn get(&self, path: &str, validators: Option<&Validators>) -> Result<Fetched, FleetError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| FleetError::Local(format!("{path}: {e}")))?;
        let mut send = vec![("X-Trawl-Sensor", self.sensor.as_str())];
        if !self.held.is_empty() {
            send.push(("X-Trawl-Release", self.held.as_str()));
        }
        Ok(crate::fetch::fetch_sending(
            &self.feed,
            url.as_str(),
            validators,
            &send,
            &crate::NoProgress,
        )?)
    }

    /// A release file, its content checked against the manifest's hash.
    fn file(&self, file: &FileRef) -> Result<Vec<u8>, FleetError> {
        let fetched = self.get(&file.path, None).map_err(|e| match e {
            // A body that does not decompress was damaged on the way or on the server.
            FleetError::Fetch(crate::fetch::FetchError::Decompress(why)) => FleetError::Refused(
                format!("{}: corrupt ({why}): tampered or truncated", file.path),
            ),
            e => e,
        })?;
        match fetched {
            Fetched::Body { bytes, .. } => {
                let got = sha256_hex(&bytes);
                if got != file.sha256 {
                    return Err(FleetError::Refused(format!(
                        "{}: SHA-256 {got} is not the manifest's {} (tampered or truncated)",
                        file.path, file.sha256
                    )));
                }
                Ok(bytes)
            }
            Fetched::NotModified => Err(FleetError::Refused(format!(
                "{}: 304 to an unconditional GET",
                file.path
            ))),
        }
    }
}

/// Pull from `[upstream]` into `data_dir` (see the module docs); `force` ignores `refresh`.
/// Never an error: whatever goes wrong is the outcome, and the last good set stays.
pub fn pull(
    cfg: &UpstreamConfig,
    config_dir: &Path,
    data_dir: &Path,
    now: i64,
    force: bool,
) -> UpstreamSummary {
    let mut state = load_state(data_dir);
    let refresh = cfg.refresh().as_secs() as i64;
    let has_set = data_dir.join(SET_FILE).is_file();
    let due = force || !has_set || state.held.is_none() || now - state.last_attempt >= refresh;
    let outcome = if due {
        state.last_attempt = now;
        match pull_once(cfg, config_dir, data_dir, &mut state, has_set) {
            Ok(o) => {
                state.verified_at = now;
                state.last_error = None;
                o
            }
            Err(FleetError::Refused(reason)) => {
                state.refused_total += 1;
                state.last_error = Some(reason.clone());
                PullOutcome::Refused { reason }
            }
            Err(e) => {
                state.failed_total += 1;
                let reason = e.to_string();
                state.last_error = Some(reason.clone());
                PullOutcome::Failed { reason }
            }
        }
    } else {
        PullOutcome::NotDue
    };
    match &outcome {
        PullOutcome::Refused { reason } => {
            tracing::warn!(url = %cfg.url, %reason, "upstream release refused; keeping the last good one")
        }
        PullOutcome::Failed { reason } => {
            tracing::warn!(url = %cfg.url, %reason, "upstream pull failed; keeping the last good release")
        }
        o => tracing::info!(url = %cfg.url, outcome = ?o, "upstream pull"),
    }
    if due {
        state.last_outcome = match &outcome {
            PullOutcome::NotDue => "not due".into(),
            PullOutcome::Unchanged => "unchanged".into(),
            PullOutcome::Applied { how, .. } => format!("applied {how}"),
            PullOutcome::Refused { .. } => "refused".into(),
            PullOutcome::Failed { .. } => "failed".into(),
        };
        if let Err(e) = save_state(data_dir, &state) {
            tracing::warn!(error = %e, "could not save the upstream state");
        }
    }
    UpstreamSummary {
        url: cfg.url.clone(),
        outcome,
        held: state.held,
    }
}

fn pull_once(
    cfg: &UpstreamConfig,
    config_dir: &Path,
    data_dir: &Path,
    state: &mut UpstreamState,
    has_set: bool,
) -> Result<PullOutcome, FleetError> {
    let key = PublicKey::from_config(&cfg.public_key, config_dir)?;
    let held = state.held.clone().filter(|_| has_set);
    let client = Client::new(cfg, held.as_ref())?;
    let validators = Validators {
        etag: state.etag.clone(),
        last_modified: state.last_modified.clone(),
    };
    let conditional = held.is_some().then_some(&validators);
    let (bytes, validators) = match client.get("latest.json", conditional)? {
        Fetched::NotModified => return Ok(PullOutcome::Unchanged),
        Fetched::Body { bytes, validators } => (bytes, validators),
    };
    let m = Manifest::open(&bytes, &key)?;
    if let Some(h) = &held {
        if m.serial < h.serial || (m.serial == h.serial && m.id != h.id) {
            return Err(FleetError::Refused(format!(
                "release {} (serial {}) is older than the held {} (serial {}): a replayed manifest?",
                m.id, m.serial, h.id, h.serial
            )));
        }
        if m.id == h.id {
            state.etag = validators.etag;
            state.last_modified = validators.last_modified;
            return Ok(PullOutcome::Unchanged);
        }
    }
    let (set, how, downloaded) = fetch_set(&client, &m, held.as_ref(), data_dir)?;
    if set.is_empty() && !m.intended {
        return Err(FleetError::Refused(format!(
            "release {} is empty (not marked intended)",
            m.id
        )));
    }
    if let Some(h) = &held {
        let floor = h.total as f64 * (1.0 - cfg.max_shrink());
        if (set.len() as f64) < floor && !m.intended {
            return Err(FleetError::Refused(format!(
                "release {} has {} indicators, the held {} has {}: shrank by more than max_shrink = {} (not marked intended)",
                m.id,
                set.len(),
                h.id,
                h.total,
                cfg.max_shrink()
            )));
        }
    }
    write_file(&data_dir.join(SET_FILE), &set.to_bytes())?;
    state.held = Some(Held {
        id: m.id.clone(),
        serial: m.serial,
        content_hash: m.content_hash.clone(),
        total: set.len(),
        created: m.created,
    });
    state.etag = validators.etag;
    state.last_modified = validators.last_modified;
    // Tell a `trawl serve`'s fleet registry what this sensor runs now: one conditional GET
    // (a 304) carrying the new release id; a failure here changes nothing.
    let confirm = Validators {
        etag: state.etag.clone(),
        last_modified: state.last_modified.clone(),
    };
    if let Ok(c) = Client::new(cfg, state.held.as_ref()) {
        if let Err(e) = c.get("latest.json", Some(&confirm)) {
            tracing::debug!(error = %e, "confirming the new release to the server");
        }
    }
    state.bytes_total += downloaded;
    if how == "delta" {
        state.deltas_total += 1;
    } else {
        state.bundles_total += 1;
    }
    Ok(PullOutcome::Applied {
        how: how.into(),
        bytes: downloaded,
    })
}

/// The deltas that take release `from` to `m`'s, in order: each starts where the one
/// before ends (a publisher lists a step from each of its last releases to the next; one
/// before steps listed deltas straight to the latest). None when the manifest offers none.
fn chain<'m>(m: &'m Manifest, from: &str) -> Option<Vec<(&'m DeltaRef, &'m str)>> {
    let mut out = Vec::new();
    let mut at = from;
    while at != m.id {
        if out.len() >= m.deltas.len() {
            return None;
        }
        let link = m
            .deltas
            .iter()
            .filter(|d| d.from == at)
            .filter_map(|d| Some((d, d.to()?)))
            .max_by_key(|(_, to)| *to == m.id)?;
        at = link.1;
        out.push(link);
    }
    (!out.is_empty()).then_some(out)
}

/// The release's set: the deltas from the held release applied to the held set when the
/// manifest offers them and the result has the manifest's content hash, else the bundle.
fn fetch_set(
    client: &Client,
    m: &Manifest,
    held: Option<&Held>,
    data_dir: &Path,
) -> Result<(IndicatorSet, &'static str, u64), FleetError> {
    let mut downloaded = 0;
    if let Some(h) = held {
        if let Some(links) = chain(m, &h.id) {
            downloaded += links.iter().map(|(d, _)| d.file.bytes).sum::<u64>();
            let applied = read_held(data_dir).and_then(|mut set| {
                for (d, to) in &links {
                    let delta = client.file(&d.file)?;
                    set.apply_delta(&delta, &d.from, to)?;
                }
                Ok(set)
            });
            match applied {
                Ok(set) if set.content_hash() == m.content_hash => {
                    return Ok((set, "delta", downloaded))
                }
                Ok(_) => tracing::warn!(
                    release = %m.id,
                    "the delta's result differs from the manifest's content hash: fetching the full bundle"
                ),
                Err(FleetError::Fetch(e)) => return Err(FleetError::Fetch(e)),
                Err(e) => {
                    tracing::warn!(release = %m.id, error = %e, "delta not applied: fetching the full bundle")
                }
            }
        }
    }
    let bytes = client.file(&m.bundle)?;
    downloaded += m.bundle.bytes;
    if sha256_hex(&bytes) != m.content_hash {
        return Err(FleetError::Refused(format!(
            "bundle of {} does not have the manifest's content hash",
            m.id
        )));
    }
    let set = IndicatorSet::parse(&bytes, &m.bundle.path)?;
    Ok((set, "bundle", downloaded))
}

fn read_held(data_dir: &Path) -> Result<IndicatorSet, FleetError> {
    let path = data_dir.join(SET_FILE);
    let bytes = std::fs::read(&path).map_err(|source| FleetError::Io {
        path: path.clone(),
        source,
    })?;
    IndicatorSet::parse_known(&bytes, &path.display().to_string())
}

/// A hash of the held set's file, so an update notices a change (`None`: no set held).
pub fn upstream_fingerprint(data_dir: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(data_dir.join(SET_FILE)).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// The held upstream set as indicators for the update pipeline (sources behind
/// [`SOURCE_PREFIX`], groups kept), and warnings. Nothing when no set is held.
pub fn upstream_indicators(data_dir: &Path) -> (Vec<Indicator>, Vec<String>) {
    let path = data_dir.join(SET_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![format!("{}: {e}", path.display())]),
    };
    // Verified line by line when pulled; read back as such.
    match IndicatorSet::parse_known(&bytes, &path.display().to_string()) {
        Ok(set) => {
            let out = set
                .indicators()
                .map(|mut i| {
                    i.sources = i
                        .sources
                        .iter()
                        .map(|s| format!("{SOURCE_PREFIX}{s}"))
                        .collect();
                    if i.sources.is_empty() {
                        i.sources
                            .push(SOURCE_PREFIX.trim_end_matches(':').to_string());
                    }
                    i.tidy();
                    i
                })
                .collect();
            (out, Vec::new())
        }
        Err(e) => (Vec::new(), vec![e.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn upstream(extra: &str) -> UpstreamConfig {
        let text =
            format!("[upstream]\nurl = \"http://127.0.0.1:9/\"\npublic_key = \"k.pub\"\n{extra}");
        Config::from_toml_str(&text).unwrap().upstream.unwrap()
    }

    #[test]
    fn upstream_config_is_checked_at_load() {
        assert_eq!(upstream("").max_shrink(), 0.5);
        assert_eq!(
            upstream("").jitter().as_secs(),
            360,
            "a tenth of the default 1h"
        );
        assert_eq!(upstream("refresh = \"10m\"\n").jitter().as_secs(), 60);
        assert_eq!(upstream("jitter = \"0s\"\n").jitter().as_secs(), 0);
        for bad in [
            "max_shrink = 1.5\n",
            "refesh = \"1h\"\n",
            "url2 = 1\n",
            "name = \"a b\"\n",
            "jitter = \"1h\"\n",
            "refresh = \"10m\"\njitter = \"20m\"\n",
        ] {
            let text = format!("[upstream]\nurl = \"http://x/\"\npublic_key = \"k\"\n{bad}");
            assert!(Config::from_toml_str(&text).is_err(), "{bad}");
        }
        let text = "[upstream]\nurl = \"file:///etc/\"\npublic_key = \"k\"\n";
        let err = Config::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains("http"), "{err}");
    }

    #[test]
    fn health_names_refusals_and_intel_older_than_max_age() {
        let cfg = upstream("max_age = \"1h\"\n");
        let mut st = UpstreamState::default();
        assert_eq!(health(&cfg, &st, 1000).len(), 1, "nothing held yet");
        st.held = Some(Held {
            id: "1-aaaaaaaaaaaa".into(),
            ..Held::default()
        });
        st.verified_at = 10_000;
        assert!(health(&cfg, &st, 10_000 + 3600).is_empty());
        let stale = health(&cfg, &st, 10_000 + 3601);
        assert!(stale[0].contains("older than max_age"), "{stale:?}");
        assert_eq!(st.age(10_000 + 3601), Some(3601));
        st.last_outcome = "refused".into();
        st.last_error = Some("manifest signature does not verify".into());
        let h = health(&cfg, &st, 10_000);
        assert!(h[0].contains("signature") && h[0].contains("kept"), "{h:?}");
    }
}
