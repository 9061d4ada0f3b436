//! The fleet registry (ARCHITECTURE.md §11): who pulls releases from this server. A sensor
//! names itself in `X-Trawl-Sensor`, its trawl version in `User-Agent` (`trawl/VERSION`) and
//! the release it holds in `X-Trawl-Release`; each `latest.json` request records them in
//! the store's `fleet_sensors`. The view marks a sensor **stale** (its last pull is older
//! than `[server] fleet_stale`) and **behind** (not on the latest release of its grant), for
//! `GET /v1/fleet` (`trawl fleet`), the web page's Fleet page and `GET /metrics`.

use crate::http::App;
use crate::releases::grant_key;
use crate::store::{FleetSensor, StoreError};
use crate::token::Token;
use axum::http::HeaderMap;
use matcher::UnixTime;
use serde::Serialize;
use std::collections::HashMap;

/// The sensor-name header.
pub const SENSOR_HEADER: &str = "x-trawl-sensor";
/// The held-release header.
pub const RELEASE_HEADER: &str = "x-trawl-release";
/// Default `[server] fleet_stale`, seconds: three missed hourly pulls.
pub const DEFAULT_STALE: u64 = 3 * 3600;

/// Whether `name` is a sensor name this server records (1-64 of letters, digits, `-._`).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// The pull a request describes, or why its headers are refused; `Ok(None)` when it names
/// no sensor (a plain HTTP client: served, not recorded).
pub(crate) fn pull_of(
    headers: &HeaderMap,
    token: &Token,
    now: UnixTime,
) -> Result<Option<FleetSensor>, String> {
    let text = |h: &str| {
        headers
            .get(h)
            .map(|v| {
                v.to_str()
                    .map(str::trim)
                    .map_err(|_| format!("{h}: not ASCII"))
            })
            .transpose()
    };
    let Some(name) = text(SENSOR_HEADER)? else {
        return Ok(None);
    };
    if !valid_name(name) {
        return Err(format!(
            "{SENSOR_HEADER}: {:?} is not a sensor name (1-64 letters, digits, '-', '.', '_'); \
             fix [upstream] name",
            name.chars().take(64).collect::<String>()
        ));
    }
    let release = text(RELEASE_HEADER)?.unwrap_or_default();
    if !release.is_empty() && !feeds::fleet::manifest::valid_id(release) {
        return Err(format!("{RELEASE_HEADER}: not a release id"));
    }
    let version = text("user-agent")?
        .and_then(|ua| ua.split_whitespace().next())
        .and_then(|p| p.strip_prefix("trawl/"))
        .filter(|v| v.len() <= 32 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("unknown");
    Ok(Some(FleetSensor {
        name: name.to_string(),
        user: token.grant.user.clone(),
        grant_key: grant_key(token),
        release: release.to_string(),
        version: version.to_string(),
        first_pull: now,
        last_pull: now,
        pulls: 1,
        last_sighting_batch: None,
    }))
}

/// One sensor as the fleet view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetEntry {
    /// The stored row.
    #[serde(flatten)]
    pub sensor: FleetSensor,
    /// The latest release of its grant (`None`: none published yet).
    pub latest: Option<String>,
    /// Its last pull is older than `[server] fleet_stale`.
    pub stale: bool,
    /// It does not run the latest release of its grant.
    pub behind: bool,
}

/// Every sensor with its state at `now`.
pub fn view(app: &App, now: UnixTime) -> Result<Vec<FleetEntry>, StoreError> {
    let stale_after = app.config.fleet_stale().as_secs() as i64;
    let mut latest: HashMap<String, Option<String>> = HashMap::new();
    Ok(app
        .intel
        .store()
        .fleet_sensors()?
        .into_iter()
        .map(|s| {
            let l = latest
                .entry(s.grant_key.clone())
                .or_insert_with(|| app.releases.latest_id(&s.grant_key))
                .clone();
            FleetEntry {
                stale: now - s.last_pull > stale_after,
                behind: l.as_ref().is_some_and(|l| *l != s.release),
                latest: l,
                sensor: s,
            }
        })
        .collect())
}

/// `GET /metrics`: the fleet's gauges in the Prometheus text format.
pub fn metrics(app: &App, now: UnixTime) -> String {
    let (total, stale, behind, up) = match view(app, now) {
        Ok(v) => (
            v.len(),
            v.iter().filter(|e| e.stale).count(),
            v.iter().filter(|e| e.behind).count(),
            1,
        ),
        Err(e) => {
            tracing::error!("fleet view for /metrics: {e}");
            (0, 0, 0, 0)
        }
    };
    format!(
        "# HELP trawl_fleet_sensors Sensors that ever pulled a release from this server.\n\
         # TYPE trawl_fleet_sensors gauge\ntrawl_fleet_sensors {total}\n\
         # HELP trawl_fleet_sensors_stale Sensors whose last pull is older than [server] fleet_stale.\n\
         # TYPE trawl_fleet_sensors_stale gauge\ntrawl_fleet_sensors_stale {stale}\n\
         # HELP trawl_fleet_sensors_behind Sensors not on the latest release of their grant.\n\
         # TYPE trawl_fleet_sensors_behind gauge\ntrawl_fleet_sensors_behind {behind}\n\
         # HELP trawl_fleet_store_up Whether the fleet registry could be read.\n\
         # TYPE trawl_fleet_store_up gauge\ntrawl_fleet_store_up {up}\n\
         # HELP trawl_serve_snapshot_version Version of the snapshot served.\n\
         # TYPE trawl_serve_snapshot_version gauge\ntrawl_serve_snapshot_version {}\n",
        app.intel.snapshot_version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("ids-01.dc2_a"));
        for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
