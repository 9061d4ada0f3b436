//! The intel-stale warning (ARCHITECTURE.md §11): when the upstream intel a `trawl run`
//! daemon holds gets older than `[upstream] max_age`, ONE event goes to the sinks (and the
//! log); once the sensor has caught up and gone stale again, one more. A staleness episode
//! is named by the upstream state's `verified_at` (the last time the sensor knew it held
//! the latest release), remembered in `DATA/upstream/stale_warned` once the sinks took the
//! event, so a restart in the same episode does not warn twice.

use crate::alert::AlertBatch;
use feeds::config::UpstreamConfig;
use feeds::fleet::pull::{load_state, UpstreamState};
use ingest::observation::format_timestamp;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The file naming the episode last warned about, under the data directory.
pub const WARNED_FILE: &str = "upstream/stale_warned";

/// The warning event for `state` at `now` (Unix seconds), if the intel is stale: an
/// ECS-shaped document (`event.kind: "event"`, `event.action: "intel-stale"`).
pub fn stale_event(
    cfg: &UpstreamConfig,
    state: &UpstreamState,
    observer: &str,
    now: i64,
) -> Option<serde_json::Value> {
    let max = cfg.max_age?.0.as_secs() as i64;
    let age = state.age(now)?;
    if age <= max {
        return None;
    }
    let held = state.held.as_ref()?;
    let message = format!(
        "upstream intel is {age}s old, older than max_age = {max}s: still matching with \
         release {} from {}; last pull {}{}",
        held.id,
        cfg.url,
        if state.last_outcome.is_empty() {
            "none"
        } else {
            &state.last_outcome
        },
        state
            .last_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    Some(json!({
        "@timestamp": format_timestamp(now.saturating_mul(1_000_000_000)),
        "message": message,
        "event": {
            "kind": "event",
            "action": "intel-stale",
            "category": ["configuration"],
            "type": ["info"],
            "severity": 2,
            "dataset": "trawl.upstream",
        },
        "log": {"level": "warning"},
        "observer": {"name": observer, "type": "sensor", "vendor": "trawl"},
        "trawl": {"upstream": {
            "url": cfg.url,
            "age_seconds": age,
            "max_age_seconds": max,
            "release": held.id,
            "release_serial": held.serial,
            "release_created": format_timestamp(held.created.saturating_mul(1_000_000_000)),
            "verified_at": format_timestamp(state.verified_at.saturating_mul(1_000_000_000)),
            "last_outcome": state.last_outcome,
            "last_error": state.last_error,
        }},
    }))
}

/// Watch `data`'s upstream state until `stop`, sending each stale episode's event through
/// `deliver` (which returns once the sinks hold it; a failure is retried at the next look).
pub fn watch(
    cfg: &UpstreamConfig,
    data: &Path,
    observer: &str,
    stop: &AtomicBool,
    deliver: impl Fn(AlertBatch) -> Result<(), String>,
) {
    let Some(max) = cfg.max_age else {
        return;
    };
    // Look often enough to warn within a quarter of max_age (1 s to 60 s).
    let every = (max.0 / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let marker: PathBuf = data.join(WARNED_FILE);
    let mut warned: Option<i64> = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    while !stop.load(Ordering::Relaxed) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let state = load_state(data);
        if warned != Some(state.verified_at) {
            if let Some(event) = stale_event(cfg, &state, observer, now) {
                tracing::warn!(
                    age = state.age(now).unwrap_or(0),
                    release = state.held.as_ref().map_or("", |h| h.id.as_str()),
                    "upstream intel is stale (older than [upstream] max_age): sending the intel-stale event"
                );
                let mut batch = AlertBatch::new(false);
                batch.lines.extend_from_slice(event.to_string().as_bytes());
                batch.lines.push(b'\n');
                match deliver(batch) {
                    Ok(()) => {
                        warned = Some(state.verified_at);
                        if let Err(e) = std::fs::write(&marker, state.verified_at.to_string()) {
                            tracing::warn!(file = %marker.display(), "{e}");
                        }
                    }
                    Err(e) => tracing::warn!("intel-stale event not delivered, retrying: {e}"),
                }
            }
        }
        let until = std::time::Instant::now() + every;
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feeds::config::Config;
    use feeds::fleet::pull::Held;

    #[test]
    fn an_event_only_past_max_age_with_the_release_held() {
        let text =
            "[upstream]\nurl = \"http://127.0.0.1:9/\"\npublic_key = \"k\"\nmax_age = \"1h\"\n";
        let cfg = Config::from_toml_str(text).unwrap().upstream.unwrap();
        let mut st = UpstreamState {
            verified_at: 10_000,
            ..UpstreamState::default()
        };
        assert!(
            stale_event(&cfg, &st, "s1", 20_000).is_none(),
            "nothing held"
        );
        st.held = Some(Held {
            id: "4-0123456789ab".into(),
            serial: 4,
            ..Held::default()
        });
        assert!(stale_event(&cfg, &st, "s1", 10_000 + 3600).is_none());
        let e = stale_event(&cfg, &st, "s1", 10_000 + 3601).unwrap();
        assert_eq!(e["event"]["kind"], "event");
        assert_eq!(e["event"]["action"], "intel-stale");
        assert_eq!(e["trawl"]["upstream"]["age_seconds"], 3601);
        assert_eq!(e["trawl"]["upstream"]["release"], "4-0123456789ab");
        assert_eq!(e["observer"]["name"], "s1");
    }
}
