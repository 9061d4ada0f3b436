//! Fleet releases per token grant (ARCHITECTURE.md §11): `GET /v1/snapshot/latest.json`,
//! `/v1/snapshot/bundles/...` and `/v1/snapshot/deltas/...`, the layout of a `trawl publish`
//! directory, so a sensor's `[upstream] url` points here unchanged. What a token may see
//! (groups, TLP, itypes: [`Token::may_see`]) decides the set, so each distinct grant has its
//! own release directory `DATA/releases/<grant-key>/`, published by
//! [`feeds::fleet::publish::publish_set`] (the one publisher) the first time the grant asks
//! after a new snapshot, then served from the files.

use crate::config::ServerConfig;
use crate::http::{now, Reply};
use crate::intel::Intel;
use crate::token::Token;
use axum::http::{header, HeaderMap, StatusCode};
use feeds::fleet::keys::SigningKey;
use feeds::fleet::manifest::Manifest;
use feeds::fleet::publish::{publish_set, PublishOptions};
use feeds::fleet::set::{sha256_hex, IndicatorSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Release directories, under the data directory.
pub const RELEASES_DIR: &str = "releases";

/// Default `[server] snapshot_keep`: deltas from this many previous releases per grant.
pub const DEFAULT_KEEP: usize = 24;

/// The signing key as configured.
enum KeyState {
    /// `[server] signing_key` is not set: releases are not served.
    Unset,
    /// Set but unusable (the reason, for the log and the answer).
    Broken(String),
    /// Ready.
    Ready(SigningKey),
}

/// The per-grant releases of one server.
pub struct Releases {
    dir: PathBuf,
    key: KeyState,
    keep: usize,
    /// Per grant key: the snapshot version its release directory was last published for
    /// (the lock also keeps two requests of one grant from publishing at once).
    published: Mutex<HashMap<String, Arc<Mutex<u64>>>>,
    /// One publish at a time, whatever the grant: a publish holds the whole set in memory
    /// (about a GB for 1.21M indicators), so grants publishing at once would multiply it.
    publishing: Mutex<()>,
}

/// A grant's identity for releases: everything [`Token::may_see`] reads, and nothing else
/// (two tokens that see the same indicators share a release).
pub fn grant_key(token: &Token) -> String {
    let g = &token.grant;
    let mut groups = if g.admin {
        Vec::new()
    } else {
        g.groups.clone()
    };
    groups.sort();
    groups.dedup();
    let mut itypes: Vec<&str> = g.itypes.iter().map(|t| t.as_str()).collect();
    itypes.sort_unstable();
    itypes.dedup();
    let canonical = serde_json::json!({
        "admin": g.admin,
        "groups": groups,
        "max_tlp": g.max_tlp.as_str(),
        "itypes": itypes,
    })
    .to_string();
    sha256_hex(canonical.as_bytes())[..16].to_string()
}

impl Releases {
    /// The releases of data directory `data` with `config`'s key and `snapshot_keep`.
    pub fn new(data: &Path, config: &ServerConfig) -> Releases {
        let key = match &config.signing_key {
            None => KeyState::Unset,
            Some(path) => match SigningKey::load(path) {
                Ok(k) => KeyState::Ready(k),
                Err(e) => {
                    let why = format!("[server] signing_key {}: {e}", path.display());
                    tracing::error!("{why}: fleet releases will not be served");
                    KeyState::Broken(why)
                }
            },
        };
        Releases {
            dir: data.join(RELEASES_DIR),
            key,
            keep: config.snapshot_keep.unwrap_or(DEFAULT_KEEP),
            published: Mutex::new(HashMap::new()),
            publishing: Mutex::new(()),
        }
    }

    /// The id of grant `grant`'s latest published release (`None`: none yet, or no key).
    pub fn latest_id(&self, grant: &str) -> Option<String> {
        let KeyState::Ready(key) = &self.key else {
            return None;
        };
        if grant.len() != 16 || !grant.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = std::fs::read(self.dir.join(grant).join("latest.json")).ok()?;
        Manifest::open(&bytes, &key.public()).ok().map(|m| m.id)
    }

    /// Answer `GET /v1/snapshot/REST` for `token`.
    pub(crate) fn serve(
        &self,
        intel: &Intel,
        token: &Token,
        rest: &str,
        headers: &HeaderMap,
    ) -> Reply {
        let key = match &self.key {
            KeyState::Ready(k) => k,
            KeyState::Unset => {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    "this server publishes no fleet releases: set [server] signing_key = \
                     \"PREFIX.key\" (make one with `trawl keygen --out PREFIX`) and restart",
                )
            }
            KeyState::Broken(why) => {
                return Reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("{why}; fix it and restart"),
                )
            }
        };
        let Some(rel) = release_path(rest) else {
            return Reply::error(
                StatusCode::NOT_FOUND,
                "no such release file: GET /v1/snapshot/latest.json names the bundle and deltas",
            );
        };
        let pull = if rel == "latest.json" {
            match crate::fleet::pull_of(headers, token, now()) {
                Ok(p) => p,
                Err(why) => return Reply::error(StatusCode::BAD_REQUEST, &why),
            }
        } else {
            None
        };
        let dir = match self.ensure(intel, token, key) {
            Ok(d) => d,
            Err(r) => return r,
        };
        if let Some(p) = pull {
            if let Err(e) = intel.store().record_pull(&p) {
                tracing::warn!(sensor = %p.name, "fleet pull not recorded: {e}");
            }
        }
        let path = dir.join(rel);
        let body = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    "no such release file (pruned: fetch latest.json again)",
                )
            }
            Err(e) => {
                tracing::error!(file = %path.display(), "reading a release file: {e}");
                return Reply::error(StatusCode::SERVICE_UNAVAILABLE, "release file unreadable");
            }
        };
        file_reply(body, rel.ends_with(".gz"), headers)
    }

    /// The grant's release directory, published for the current snapshot.
    fn ensure(&self, intel: &Intel, token: &Token, key: &SigningKey) -> Result<PathBuf, Reply> {
        let snapshot = intel.snapshot();
        let Some(snap) = Option::as_ref(&snapshot) else {
            return Err(Reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no snapshot yet: run `trawl update` on the server",
            ));
        };
        let version = snap.meta().version;
        let grant = grant_key(token);
        let dir = self.dir.join(&grant);
        let slot = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(grant.clone())
            .or_default()
            .clone();
        let mut done = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if *done == version && dir.join("latest.json").is_file() {
            return Ok(dir);
        }
        let _one = self
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = std::time::Instant::now();
        let (set, counts) = IndicatorSet::from_snapshot_where(snap, |i| token.may_see(i));
        let opts = PublishOptions {
            keep: self.keep,
            intended: false,
            now: now(),
        };
        match publish_set(&set, counts, version, &dir, key, &opts) {
            Ok(r) => {
                tracing::info!(
                    grant = %grant,
                    user = %token.grant.user,
                    release = %r.id,
                    unchanged = r.unchanged,
                    indicators = r.total,
                    ms = started.elapsed().as_millis() as u64,
                    "fleet release published"
                );
                *done = version;
                Ok(dir)
            }
            Err(e) => {
                tracing::error!(grant = %grant, "publishing a fleet release: {e}");
                Err(Reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the release could not be published (see the server log)",
                ))
            }
        }
    }
}

/// `latest.json`, `bundles/NAME` or `deltas/NAME` with a name of the shapes publish makes
/// (letters, digits, `-`, `.`, `_`; no `..`), else `None`.
fn release_path(rest: &str) -> Option<&str> {
    if rest == "latest.json" {
        return Some(rest);
    }
    let (dir, name) = rest.split_once('/')?;
    let ok = matches!(dir, "bundles" | "deltas")
        && !name.is_empty()
        && name.len() < 200
        && !name.contains("..")
        && name.ends_with(".gz")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    ok.then_some(rest)
}

/// A release file with its `ETag`, or a 304 when the client holds that tag.
fn file_reply(body: Vec<u8>, gzip: bool, headers: &HeaderMap) -> Reply {
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    let held = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag || t.trim() == "*" || t.trim() == format!("W/{etag}"))
        });
    let (status, body) = if held {
        (StatusCode::NOT_MODIFIED, Vec::new())
    } else {
        (StatusCode::OK, body)
    };
    Reply {
        status,
        results: usize::from(status == StatusCode::OK),
        body,
        content_type: if gzip { GZIP_TYPE } else { "application/json" },
        retry_after: None,
        user: None,
        headers: vec![("etag", etag)],
    }
}

/// The content type of stored gzip files (sent as they are, never compressed again).
pub(crate) const GZIP_TYPE: &str = "application/gzip";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shapes_publish_makes_are_served() {
        assert!(release_path("latest.json").is_some());
        assert!(release_path("bundles/3-0123456789ab.jsonl.gz").is_some());
        assert!(release_path("deltas/2-0123456789ab-3-0123456789ab.delta.gz").is_some());
        for bad in [
            "",
            "latest.json.tmp",
            "bundles/",
            "bundles/../x.gz",
            "bundles/a/b.gz",
            "bundles/x.jsonl",
            "other/x.gz",
            "deltas/..gz",
            "bundles/%2e.gz",
        ] {
            assert!(release_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn etags_answer_304_only_for_the_same_bytes() {
        let r = file_reply(b"abc".to_vec(), false, &HeaderMap::new());
        assert_eq!(r.status, StatusCode::OK);
        let etag = r.headers[0].1.clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
        assert_eq!(
            file_reply(b"abc".to_vec(), false, &h).status,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            file_reply(b"abd".to_vec(), false, &h).status,
            StatusCode::OK
        );
    }
}
