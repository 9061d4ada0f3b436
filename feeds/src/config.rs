//! `trawl.toml`: the sensor, feed and allowlist tables, and the source and sink tables passed
//! to the daemon (README "Configuration"; ARCHITECTURE.md §2.1).

use matcher::{IndicatorType, Severity, Tlp};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Errors loading or validating a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TOML syntax error, wrong type or unknown key (the message names it).
    #[error("{path}: {message}")]
    Toml {
        /// The config file (or `<string>`).
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is syntactically fine but not acceptable.
    #[error("feed {feed:?}: {key}: {reason}")]
    Invalid {
        /// The feed name (empty for non-feed tables).
        feed: String,
        /// The offending key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// An `[update]` value that is not acceptable.
    #[error("{path}: [update] {reason}")]
    Update {
        /// The config file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An `[allowlist]` entry so broad it would silence everything under it.
    #[error("{path}: [allowlist] {entry}")]
    BroadAllowlist {
        /// The config file.
        path: PathBuf,
        /// The entry and why (in the message, not a separate cause, so it is said once).
        entry: crate::breadth::BroadAllowlistEntry,
    },
}

/// The whole `trawl.toml`. Unknown tables and keys are errors naming the line and the
/// nearest valid name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[sensor]`.
    #[serde(default)]
    pub sensor: SensorConfig,
    /// `[[feed]]` tables.
    #[serde(default, rename = "feed")]
    pub feeds: Vec<FeedConfig>,
    /// `[allowlist]`: the operator's own domains and networks.
    #[serde(default)]
    pub allowlist: AllowlistConfig,
    /// `[[source]]` tables, passed through to the sensor.
    #[serde(default, rename = "source")]
    pub sources: Vec<toml::Table>,
    /// `[[sink]]` tables, passed through to the sensor.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<toml::Table>,
    /// `[server]`, passed through to `trawl serve` (which reads it with [`server_table`]).
    #[serde(default)]
    pub server: Option<toml::Table>,
    /// `[remote]`: the `trawl serve` that `query`, `export` and `submit` ask.
    #[serde(default)]
    pub remote: Option<RemoteConfig>,
    /// `[retro]`: the retro-hunt observation index, passed through to the sensor (which
    /// reads it with its own struct).
    #[serde(default)]
    pub retro: Option<toml::Table>,
    /// `[upstream]`: a signed snapshot published by `trawl publish` / `trawl serve` that
    /// `trawl update` pulls and combines with the local feeds ([`crate::fleet`]).
    #[serde(default)]
    pub upstream: Option<UpstreamConfig>,
    /// `[update]`: how `trawl update` sorts and merges.
    #[serde(default)]
    pub update: UpdateConfig,
    /// The config file's directory (empty: the working directory).
    #[serde(skip)]
    base_dir: PathBuf,
}

/// `[update]`: how `trawl update` works.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// Memory for sorting and merging the indicators (`"1GiB"`; default
    /// [`DEFAULT_UPDATE_MEMORY`]): past it, sorted runs of compact records spill to
    /// `DATA/tmp` and are merged back from disk.
    #[serde(default)]
    pub memory: Option<ByteSize>,
}

/// `[update] memory` when not set: 512 MiB.
pub const DEFAULT_UPDATE_MEMORY: u64 = 512 << 20;

impl UpdateConfig {
    /// `memory`, else [`DEFAULT_UPDATE_MEMORY`].
    pub fn memory(&self) -> u64 {
        self.memory.map_or(DEFAULT_UPDATE_MEMORY, |b| b.0)
    }
}

/// `[remote]`: where `trawl query`, `export` and `submit` find a `trawl serve`, and the
/// token they present (`token` in the file, or `token_env`: the name of the variable that
/// holds it, to keep secrets out of config files).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The server's base URL (`https://cif.example.org:8443`).
    #[serde(default)]
    pub url: Option<String>,
    /// The API token itself.
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding the API token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl RemoteConfig {
    /// The token: `token`, else the value of the variable `token_env` names; an error when
    /// `token_env` names an unset variable (a silent fallback would send no token at all).
    pub fn token(&self) -> Result<Option<String>, String> {
        resolve_token("remote", self.token.as_deref(), self.token_env.as_deref())
    }
}

/// A table's token: `token`, else the value of the variable `token_env` names; an error
/// when `token_env` names an unset variable (a silent fallback would send no token at all).
fn resolve_token(
    table: &str,
    token: Option<&str>,
    token_env: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(t) = token {
        return Ok(Some(t.to_string()));
    }
    match token_env {
        None => Ok(None),
        Some(var) => std::env::var(var).map(Some).map_err(|_| {
            format!("[{table}] token_env = {var:?}, but ${var} is not set (or not UTF-8)")
        }),
    }
}

/// `[upstream]`: the signed snapshot a sensor pulls (ARCHITECTURE.md §11).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Where `latest.json` is: a `trawl publish` directory served over HTTP(S)
    /// (`https://intel.example/fleet/`) or a `trawl serve` (`https://cif.example:8443`).
    pub url: String,
    /// A token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding that token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The publisher's public key: the path of `PREFIX.pub` (relative to the config file)
    /// or its one base64 line.
    pub public_key: String,
    /// Pull no more often than this (default 1h; `trawl update --force` ignores it).
    #[serde(default)]
    pub refresh: Option<DurationSpec>,
    /// `trawl run`'s scheduled pulls come up to this much later, at random (default a tenth
    /// of `refresh`; `"0s"`: none), so sensors started together spread their pulls.
    #[serde(default)]
    pub jitter: Option<DurationSpec>,
    /// Intel older than this (since the last good pull) is stale: `/healthz` degraded.
    #[serde(default)]
    pub max_age: Option<DurationSpec>,
    /// Refuse a release that shrank by more than this fraction of the last good one
    /// (0 to 1, default 0.5) unless the publisher marked it intended.
    #[serde(default)]
    pub max_shrink: Option<f64>,
    /// Cap on each download, raw and decompressed (default 512 MiB).
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// HTTP timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// The name this sensor gives the server (`X-Trawl-Sensor`, shown by `trawl fleet`):
    /// 1-64 letters, digits, `-`, `.`, `_` (default: the host name).
    #[serde(default)]
    pub name: Option<String>,
    /// `trawl run` reports what it alerted on to the server (`POST /v1/sightings`).
    #[serde(default)]
    pub sightings: bool,
    /// Include client addresses (`source.ip`) in sightings (default false).
    #[serde(default)]
    pub sightings_clients: bool,
    /// How often a sightings batch is written (default 60s).
    #[serde(default)]
    pub sightings_flush: Option<DurationSpec>,
    /// Where sightings go (default: `url` + `/v1/sightings`, for a `trawl serve`).
    #[serde(default)]
    pub sightings_url: Option<String>,
    /// Most undelivered sightings kept on disk (default 64 MiB; the oldest batches go first).
    #[serde(default)]
    pub sightings_max_bytes: Option<ByteSize>,
}

/// This host's name as the kernel (else `/etc/hostname`) has it, trimmed; empty if neither
/// says.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether `name` is a fleet sensor name: 1-64 letters, digits, `-`, `.`, `_`.
pub fn valid_sensor_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Default `[upstream] refresh`.
pub const DEFAULT_UPSTREAM_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

impl UpstreamConfig {
    /// The name sent as `X-Trawl-Sensor`: `name`, else the host name made into a valid name
    /// (other characters become `-`; none at all: `trawl`).
    pub fn sensor_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let h: String = host_name()
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if h.is_empty() {
            "trawl".into()
        } else {
            h
        }
    }

    /// Where sightings are POSTed: `sightings_url`, else the server's `/v1/sightings` (`url`
    /// with a trailing `/v1/snapshot/`, where `trawl serve` serves releases, taken off).
    pub fn sightings_endpoint(&self) -> String {
        match &self.sightings_url {
            Some(u) => u.clone(),
            None => {
                let base = self.url.trim_end_matches('/');
                let base = base.strip_suffix("/v1/snapshot").unwrap_or(base);
                format!("{base}/v1/sightings")
            }
        }
    }

    /// The token to present, if any (see [`RemoteConfig::token`]).
    pub fn token(&self) -> Result<Option<String>, String> {
        resolve_token("upstream", self.token.as_deref(), self.token_env.as_deref())
    }

    /// `refresh`, default [`DEFAULT_UPSTREAM_REFRESH`].
    pub fn refresh(&self) -> std::time::Duration {
        self.refresh.map_or(DEFAULT_UPSTREAM_REFRESH, |r| r.0)
    }

    /// `jitter`, default a tenth of [`UpstreamConfig::refresh`].
    pub fn jitter(&self) -> std::time::Duration {
        self.jitter.map_or(self.refresh() / 10, |j| j.0)
    }

    /// `max_shrink`, default 0.5.
    pub fn max_shrink(&self) -> f64 {
        self.max_shrink.unwrap_or(0.5)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: String| ConfigError::Invalid {
            feed: "[upstream]".into(),
            key,
            reason,
        };
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => {
                return Err(bad(
                    "url",
                    "only http:// and https:// URLs are pulled".into(),
                ))
            }
            Err(e) => return Err(bad("url", format!("{:?} is not a URL: {e}", self.url))),
        }
        if let Some(u) = &self.sightings_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") => {}
                _ => {
                    return Err(bad(
                        "sightings_url",
                        format!("{u:?} is not an http:// or https:// URL"),
                    ))
                }
            }
        }
        if !(0.0..=1.0).contains(&self.max_shrink()) {
            return Err(bad(
                "max_shrink",
                "must be between 0 and 1 (0.5: half)".into(),
            ));
        }
        if !self.jitter().is_zero() && self.jitter() >= self.refresh() {
            return Err(bad(
                "jitter",
                format!(
                    "must be shorter than refresh ({}s), e.g. a tenth of it",
                    self.refresh().as_secs()
                ),
            ));
        }
        if let Some(n) = self.name.as_deref().filter(|n| !valid_sensor_name(n)) {
            return Err(bad(
                "name",
                format!("{n:?}: use 1-64 letters, digits, '-', '.', '_'"),
            ));
        }
        Ok(())
    }
}

/// `[sensor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// Observer name in alerts.
    #[serde(default = "default_sensor_name")]
    pub name: String,
    /// Data directory (snapshots, fetch cache); relative to the config file's directory.
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// `trawl run`: address of the admin endpoint (`/metrics`, `/healthz`), e.g. `127.0.0.1:9102`.
    #[serde(default)]
    pub metrics: Option<String>,
    /// `trawl run`: fold repeats of (indicator, source ip) within this window (`60s`, `5m`).
    #[serde(default)]
    pub suppress: Option<String>,
    /// `trawl run`: once captures, sinks and spools are open, run as this user (its groups,
    /// gid and uid), e.g. `trawl`; the data directory must be writable by it.
    #[serde(default)]
    pub user: Option<String>,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            name: default_sensor_name(),
            data: None,
            metrics: None,
            suppress: None,
            user: None,
        }
    }
}

fn default_sensor_name() -> String {
    "trawl".to_string()
}

/// `[allowlist]`: domains (covering their subdomains) and CIDRs that never alert or export.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    /// Domains; each covers itself and every name below it.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Addresses or CIDRs (v4 or v6).
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Set to false to drop the built-in IANA special-purpose registries (default true).
    #[serde(default)]
    pub iana: Option<bool>,
}

/// A feed's format name (`format = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Detect from the content ([`crate::parse::detect_format`]).
    #[default]
    Auto,
    /// One value a line; `#`/`;` comments and trailing comments.
    Plain,
    /// Comma-separated with quoting and header detection.
    Csv,
    /// Tab-separated.
    Tsv,
    /// Any single-character delimiter (`delimiter`), detected when absent.
    Delimited,
    /// A regex per line (`pattern`, `values`).
    Pattern,
    /// FireHOL `.netset`/`.ipset`.
    Netset,
    /// Spamhaus DROP/EDROP (`cidr ; SBLnnn`).
    SpamhausDrop,
    /// `/etc/hosts` style (`0.0.0.0 evil.com`).
    Hosts,
    /// DShield `block.txt` (start, end, prefix length, ...).
    Dshield,
    /// A JSON document (`field` dotted path; arrays walked).
    Json,
    /// One JSON object a line.
    Jsonl,
    /// STIX 2.0/2.1 bundle.
    Stix2,
    /// MISP event JSON (or MISP attribute CSV).
    Misp,
    /// A TAXII 2.1 collection (`source` = its `objects/` URL), pulled incrementally.
    Taxii,
    /// A MISP feed (`source` = the directory of its `manifest.json`), pulled incrementally.
    MispFeed,
    /// RSS 2.0 / Atom.
    Rss,
    /// CIF v3/v4 JSON, or csirtg.io CSV.
    Cif,
    /// csirtg.io CSV (same parser as `cif` on CSV input).
    Csirtg,
    /// maltrail static trail file.
    Maltrail,
    /// Zeek intel framework file.
    ZeekIntel,
    /// Content we recognise but cannot use (e.g. STIX 1.x XML); every record is reported.
    /// Never a config value, but named in summaries (`--format json`).
    #[serde(skip_deserializing)]
    Unsupported,
}

impl Format {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Plain => "plain",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Delimited => "delimited",
            Format::Pattern => "pattern",
            Format::Netset => "netset",
            Format::SpamhausDrop => "spamhaus-drop",
            Format::Hosts => "hosts",
            Format::Dshield => "dshield",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Stix2 => "stix2",
            Format::Misp => "misp",
            Format::Taxii => "taxii",
            Format::MispFeed => "misp-feed",
            Format::Rss => "rss",
            Format::Cif => "cif",
            Format::Csirtg => "csirtg",
            Format::Maltrail => "maltrail",
            Format::ZeekIntel => "zeek-intel",
            Format::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `column = "url"` or `column = 3` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 1-based index.
    Index(usize),
    /// Header name (case-insensitive).
    Name(String),
}

/// A duration written as `"90s"`, `"15m"`, `"1h"`, `"7d"`, `"1w"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl FromStr for DurationSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("bad duration {s:?}: expected e.g. 90s, 15m, 1h, 7d"))?;
        let mult = match unit.trim() {
            "" | "s" | "sec" | "secs" => 1,
            "ms" => return Ok(DurationSpec(Duration::from_millis(n))),
            "m" | "min" | "mins" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            other => {
                return Err(format!(
                    "bad duration unit {other:?} in {s:?}: use s, m, h, d or w"
                ))
            }
        };
        n.checked_mul(mult)
            .map(|secs| DurationSpec(Duration::from_secs(secs)))
            .ok_or_else(|| format!("duration {s:?} is too long"))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(DurationSpec(Duration::from_secs(n))),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

fn de_fromstr_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| s.parse::<T>().map_err(serde::de::Error::custom))
        .transpose()
}

/// One `[[feed]]` table. Unknown keys are an error naming the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Unique feed name (also the indicator `sources` entry).
    pub name: String,
    /// Path (relative to the config file), `file://` or `http(s)://` URL.
    pub source: String,
    /// Format name; `auto` (default) detects by content.
    #[serde(default)]
    pub format: Format,
    /// Type of every value; inferred per value when absent.
    #[serde(default, deserialize_with = "de_fromstr_opt")]
    pub itype: Option<IndicatorType>,
    /// csv/tsv/delimited: header name or 1-based index of the indicator column.
    #[serde(default)]
    pub column: Option<Column>,
    /// json/jsonl: dotted path of the indicator (arrays walked).
    #[serde(default)]
    pub field: Option<String>,
    /// `pattern`/`rss`: a regex applied to each line (or item description).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Names of the pattern's capture groups in order (`indicator`, `reference`,
    /// `description`, `tags`, `first_seen`, `last_seen`, `confidence`, `severity`, `itype`).
    #[serde(default)]
    pub values: Vec<String>,
    /// Default confidence 0-100.
    #[serde(default)]
    pub confidence: Option<u8>,
    /// Default severity.
    #[serde(default, deserialize_with = "de_fromstr_opt")]
    pub severity: Option<Severity>,
    /// Tags added to every entry.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Default TLP.
    #[serde(default, deserialize_with = "de_fromstr_opt")]
    pub tlp: Option<Tlp>,
    /// Provider name.
    #[serde(default)]
    pub provider: Option<String>,
    /// How often `trawl update` refetches it (always when absent).
    #[serde(default)]
    pub refresh: Option<DurationSpec>,
    /// True: its entries are allowlist entries.
    #[serde(default)]
    pub allowlist: bool,
    /// Other per-record fields: target (`description`, `reference`, `first_seen`,
    /// `last_seen`, `reported`, `expires`, `tags`, `confidence`, `severity`, `tlp`, `itype`,
    /// `provider`) → column name / dotted JSON path.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Derive a URL's host as an fqdn/IP indicator (default true).
    #[serde(default)]
    pub derive: Option<bool>,
    /// Drop entries whose feed-given time is older than this.
    #[serde(default)]
    pub max_age: Option<DurationSpec>,
    /// Domains match only themselves, not names below them.
    #[serde(default)]
    pub exact: bool,
    /// An HTTP header sent with the request, `${VAR}` expanded from the environment at
    /// fetch time (`"Authorization: Bearer ${OTX_KEY}"`).
    #[serde(default)]
    pub auth_header: Option<String>,
    /// HTTPS: a client certificate (PEM, the leaf first, then any intermediates) presented
    /// to servers that ask for one (a TAXII server's mutual TLS); relative to the config file.
    #[serde(default)]
    pub tls_client_cert: Option<PathBuf>,
    /// HTTPS: the private key of `tls_client_cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_client_key: Option<PathBuf>,
    /// HTTPS: the CA certificates (PEM) that server certificates must chain to, instead of
    /// the built-in public roots (a private CA).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// HTTP timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Field delimiter for `delimited` (`","`, `"\t"`, `"|"`, `"tab"`, ...).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Multiplier applied to feed-given confidences (`cif`: default 10 for CIF v3's 0-10).
    #[serde(default)]
    pub confidence_scale: Option<f64>,
    /// MISP: only attributes with `to_ids` set (default true).
    #[serde(default)]
    pub to_ids_only: Option<bool>,
    /// HTTP retries after the first attempt (default 2).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Cap on the body, raw and decompressed (`"64MiB"` or bytes; default 512 MiB): a larger
    /// one (a gzip bomb, `/dev/zero`) fails the feed.
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// A fresh parse with fewer than this fraction of the last good parse's entries is a
    /// failure that keeps the previous entries (0 to 1; default 0.5; 0 turns it off).
    #[serde(default)]
    pub min_ratio: Option<f64>,
    /// Shortest IP prefixes accepted (`{ ipv4 = 8, ipv6 = 16 }` by default); wider networks
    /// are rejected like malformed lines ([`crate::breadth`]).
    #[serde(default)]
    pub min_prefix: Option<crate::breadth::MinPrefix>,
    /// Privilege group of its entries (`trawl serve` shows them only to tokens of that
    /// group; ARCHITECTURE.md §3); `everyone` when absent.
    #[serde(default)]
    pub group: Option<String>,
}

/// A URL of a CIF v3 `/feed` (or `/v1/feed`) that names no `itype` (which CIF requires).
fn cif_feed_without_itype(source: &str) -> bool {
    let Ok(u) = url::Url::parse(source) else {
        return false;
    };
    u.path().trim_end_matches('/').ends_with("/feed") && !u.query_pairs().any(|(k, _)| k == "itype")
}

/// A size written as a number of bytes or with a binary unit (`"512KiB"`, `"64MiB"`, `"1G"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("bad size {s:?}: expected e.g. 64MiB, 1GiB or a number of bytes")
        })?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => {
                return Err(format!(
                    "bad size unit in {s:?}: expected B, KiB, MiB, GiB or TiB"
                ))
            }
        };
        n.checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl FeedConfig {
    /// A feed with just a name and a source (everything else default).
    pub fn new(name: &str, source: &str) -> Self {
        FeedConfig {
            name: name.to_string(),
            source: source.to_string(),
            ..FeedConfig::default()
        }
    }

    /// The delimiter byte configured for this feed, if any.
    pub fn delimiter_byte(&self) -> Option<u8> {
        let d = self.delimiter.as_deref()?;
        Some(match d {
            "\\t" | "\t" | "tab" => b'\t',
            "comma" => b',',
            "pipe" => b'|',
            "semicolon" => b';',
            "space" => b' ',
            s if s.len() == 1 => s.as_bytes()[0],
            _ => return None,
        })
    }

    /// The body cap: `max_bytes`, else [`crate::fetch::DEFAULT_MAX_BYTES`].
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
            .map_or(crate::fetch::DEFAULT_MAX_BYTES, |b| b.0)
    }

    /// The shrink guard: `min_ratio`, else 0.5.
    pub fn min_ratio(&self) -> f64 {
        self.min_ratio.unwrap_or(0.5)
    }

    /// The privilege group of this feed's entries (`group`, else `everyone`).
    pub fn group(&self) -> &str {
        self.group
            .as_deref()
            .unwrap_or(matcher::model::DEFAULT_GROUP)
    }

    /// Whether derivation is on (default true; never for allowlist feeds).
    pub fn derive_enabled(&self) -> bool {
        self.derive.unwrap_or(true) && !self.allowlist
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| ConfigError::Invalid {
            feed: self.name.clone(),
            key,
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        if self.source.trim().is_empty() {
            return Err(bad("source", "must not be empty".into()));
        }
        match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(_), None) => {
                return Err(bad(
                    "tls_client_key",
                    "tls_client_cert needs tls_client_key, the PEM file of its private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "tls_client_cert",
                    "tls_client_key needs tls_client_cert, the PEM file of its certificate".into(),
                ))
            }
            _ => {}
        }
        if let Some(c) = self.confidence {
            if c > 100 {
                return Err(bad("confidence", format!("{c} is above 100")));
            }
        }
        if let Some(p) = &self.pattern {
            regex::Regex::new(p).map_err(|e| bad("pattern", e.to_string()))?;
        }
        let http = self.source.starts_with("http://") || self.source.starts_with("https://");
        if self.format == Format::Taxii && !http {
            return Err(bad(
                "source",
                "format \"taxii\" needs the http(s) URL of a collection's objects \
                 (https://HOST/API-ROOT/collections/ID/objects/)"
                    .into(),
            ));
        }
        if self.format == Format::Cif && http && cif_feed_without_itype(&self.source) {
            return Err(bad(
                "source",
                "a CIF v3 /feed answers one itype at a time: add it to the URL \
                 (…/feed?itype=fqdn&confidence=7.5&tags=phishing)"
                    .into(),
            ));
        }
        if self.format == Format::MispFeed && !http {
            return Err(bad(
                "source",
                "format \"misp-feed\" needs the http(s) URL of the feed's directory, the one \
                 holding manifest.json (https://www.circl.lu/doc/misp/feed-osint/)"
                    .into(),
            ));
        }
        if self.format == Format::Pattern && self.pattern.is_none() {
            return Err(bad("pattern", "format \"pattern\" needs a pattern".into()));
        }
        if self.delimiter.is_some() && self.delimiter_byte().is_none() {
            return Err(bad(
                "delimiter",
                "must be one character (or tab, comma, pipe, semicolon, space)".into(),
            ));
        }
        if let Some(g) = &self.group {
            if let Err(reason) = check_group_name(g) {
                return Err(bad("group", reason));
            }
        }
        if let Some(Column::Index(0)) = self.column {
            return Err(bad("column", "indexes are 1-based".into()));
        }
        if let Some(r) = self.min_ratio {
            if !(0.0..=1.0).contains(&r) {
                return Err(bad("min_ratio", format!("{r} is not between 0 and 1")));
            }
        }
        if self.max_bytes == Some(ByteSize(0)) {
            return Err(bad("max_bytes", "must be more than 0".into()));
        }
        if let Some(s) = self.confidence_scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(bad("confidence_scale", "must be a positive number".into()));
            }
        }
        const MAP_KEYS: &[&str] = &[
            "description",
            "reference",
            "first_seen",
            "last_seen",
            "reported",
            "expires",
            "tags",
            "confidence",
            "severity",
            "tlp",
            "itype",
            "provider",
        ];
        for k in self.map.keys() {
            if !MAP_KEYS.contains(&k.as_str()) {
                let reason = match nearest(k, MAP_KEYS.iter().copied()) {
                    Some(n) => format!("unknown target {k:?}, did you mean {n:?}?"),
                    None => format!(
                        "unknown target {k:?}; expected one of {}",
                        MAP_KEYS.join(" ")
                    ),
                };
                return Err(bad("map", reason));
            }
        }
        for v in &self.values {
            if v != "indicator" && v != "_" && !MAP_KEYS.contains(&v.as_str()) {
                return Err(bad("values", format!("unknown value name {v:?}")));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::parse(text, Path::new("<string>"))
    }

    fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            message: toml_message(text, &e),
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for f in &mut config.feeds {
            for p in [&mut f.tls_client_cert, &mut f.tls_client_key, &mut f.tls_ca]
                .into_iter()
                .flatten()
            {
                *p = config.base_dir.join(&*p);
            }
        }
        let mut names = HashSet::new();
        for f in &config.feeds {
            f.validate()?;
            if !names.insert(f.name.as_str()) {
                return Err(ConfigError::Invalid {
                    feed: f.name.clone(),
                    key: "name",
                    reason: "feed names must be unique".into(),
                });
            }
        }
        if let Some(u) = &config.upstream {
            u.validate()?;
        }
        if config.update.memory == Some(ByteSize(0)) {
            return Err(ConfigError::Update {
                path: path.to_path_buf(),
                reason: "memory must be more than 0 (e.g. \"512MiB\")".into(),
            });
        }
        crate::breadth::check_allowlist(&config.allowlist).map_err(|entry| {
            ConfigError::BroadAllowlist {
                path: path.to_path_buf(),
                entry,
            }
        })?;
        Ok(config)
    }

    /// The directory relative paths in the config are relative to: the config file's
    /// (empty, i.e. the working directory, for a config parsed from a string).
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// A path from the config resolved against [`Config::base_dir`] (absolute ones as is).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// The data directory: `[sensor] data` resolved against the config's directory, if set.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.sensor.data.as_deref().map(|d| self.resolve(d))
    }
}

/// A group name is 1-64 of `a-z 0-9 . _ -` (it travels in tokens, URLs and files).
pub fn check_group_name(g: &str) -> Result<(), String> {
    let ok = !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{g:?} is not a group name: use 1-64 of a-z, 0-9, '.', '_', '-'"
        ))
    }
}

/// The `[server]` table of a config file's `text` as `T` (`T::default()` when absent), with
/// the same error messages as the rest of the file: the line of an unknown or invalid key and
/// the nearest valid name.
pub fn server_table<T: serde::de::DeserializeOwned + Default>(text: &str) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Only<T> {
        #[serde(default)]
        server: Option<T>,
    }
    let only: Only<T> = toml::from_str(text).map_err(|e| toml_message(text, &e))?;
    Ok(only.server.unwrap_or_default())
}

/// The name in `candidates` closest to `name`, when close enough to be a likely typo: the
/// smallest edit distance within a third of the length, else a shared stem (Jaro-Winkler
/// 0.8 or more, so `batch_size` finds `batch`).
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let by_edits = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), *c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_edits.or_else(|| {
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(name, c), *c))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    })
}

/// One line for an error deserialising the TOML text `text`: where it is, and for an
/// unknown key, table or value (a `kind`) its nearest valid name ("unknown key `confidnce`
/// at line 12, did you mean `confidence`?"). Every reader of `trawl.toml` renders its
/// errors with this, the feeds config and the daemon's `[[source]]`/`[[sink]]` tables alike.
pub fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let span = e
        .span()
        .map(|s| s.start.min(text.len())..s.end.min(text.len()));
    // 1-based line of a byte offset (bytes: an offset inside a character cannot panic).
    let line_of = |at: usize| memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count() + 1;
    let msg = e.message().trim();
    let unknown = msg
        .strip_prefix("unknown field `")
        .map(|rest| ("key", rest))
        .or_else(|| {
            msg.strip_prefix("unknown variant `")
                .map(|rest| ("value", rest))
        });
    let Some((mut what, rest)) = unknown else {
        return match span {
            Some(s) => format!("{msg} at line {}", line_of(s.start)),
            None => msg.to_string(),
        };
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return msg.to_string();
    };
    // serde lists the valid names in backquotes: "expected one of `a`, `b`".
    let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let mut line = span.as_ref().map(|s| line_of(s.start));
    if let (Some(s), "key") = (&span, what) {
        let first = line_of(s.start);
        let line_start = text
            .get(..s.start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |p| p + 1);
        let at_header = text
            .get(line_start..)
            .is_some_and(|t| t.trim_start().starts_with('['));
        // A key of a table tagged by `kind` is reported with the whole table's span: point
        // at the key's own line. Otherwise a span starting at `[` names an unknown table.
        match text.get(s.clone()).and_then(|t| {
            t.lines().position(|l| {
                l.trim_start()
                    .strip_prefix(name)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
        }) {
            Some(i) => line = Some(first + i),
            None if at_header => what = "table",
            None => {}
        }
    }
    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    match nearest(name, valid.iter().copied()) {
        Some(n) => format!("unknown {what} `{name}`{at}, did you mean `{n}`?"),
        None if valid.is_empty() => format!("unknown {what} `{name}`{at}"),
        None => format!(
            "unknown {what} `{name}`{at}; expected one of {}",
            valid.join(", ")
        ),
    }
}

/// Where a feed's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    /// A local file.
    File(PathBuf),
    /// An http(s) URL.
    Http(String),
}

impl FeedConfig {
    /// Resolve `source` against the config file's directory.
    pub fn location(&self, config_dir: &Path) -> SourceLocation {
        let s = self.source.trim();
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            SourceLocation::Http(s.to_string())
        } else if let Some(p) = s.strip_prefix("file://") {
            SourceLocation::File(config_dir.join(p))
        } else {
            SourceLocation::File(config_dir.join(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[sensor]
name = "sensor-1"
data = "/var/lib/trawl"

[[feed]]
name = "spamhaus-drop"
source = "feeds/drop.txt"
format = "auto"
itype = "ipv4"
column = "url"
field = "url"
pattern = '^(\S+) ; (\S+)'
values = ["indicator", "reference"]
confidence = 95
severity = "high"
tags = ["hijacked"]
tlp = "green"
provider = "spamhaus.org"
refresh = "1h"
allowlist = false
map = { description = "desc" }
derive = false
max_age = "30d"
exact = true
auth_header = "Authorization: Bearer ${KEY}"
timeout = 10
delimiter = "tab"
confidence_scale = 10.0

[[feed]]
name = "urlhaus"
source = "https://urlhaus.abuse.ch/downloads/csv_recent/"
format = "csv"
column = 3

[allowlist]
domains = ["example.com"]
cidrs = ["192.0.2.0/24"]

[[source]]
kind = "file"
paths = ["/var/log/squid/access.log"]

[[sink]]
kind = "jsonl"
path = "/tmp/a.jsonl"
"#;

    #[test]
    fn pulled_formats_check_their_source() {
        let cfg = |source: &str, format: &str| {
            Config::from_toml_str(&format!(
                "[[feed]]\nname = \"x\"\nsource = \"{source}\"\nformat = \"{format}\"\n"
            ))
        };
        for (source, format, says) in [
            ("feed.json", "taxii", "objects"),
            ("dir/", "misp-feed", "manifest.json"),
            ("https://cif.example/feed?confidence=7", "cif", "itype"),
            ("https://cif.example/v1/feed/", "cif", "itype"),
        ] {
            let e = cfg(source, format).unwrap_err().to_string();
            assert!(e.contains(says), "{source} {format}: {e}");
        }
        for (source, format) in [
            ("https://t.example/api1/collections/c/objects/", "taxii"),
            ("https://m.example/feed-osint/", "misp-feed"),
            ("https://cif.example/feed?itype=fqdn", "cif"),
            ("https://csirtg.example/feeds/x.csv", "cif"),
        ] {
            assert!(cfg(source, format).is_ok(), "{source} {format}");
        }
    }

    #[test]
    fn full_config_parses() {
        let c = Config::from_toml_str(FULL).unwrap();
        assert_eq!(c.sensor.name, "sensor-1");
        assert_eq!(c.feeds.len(), 2);
        let f = &c.feeds[0];
        assert_eq!(f.itype, Some(IndicatorType::Ipv4));
        assert_eq!(f.severity, Some(Severity::High));
        assert_eq!(f.tlp, Some(Tlp::Green));
        assert_eq!(f.refresh, Some(DurationSpec(Duration::from_secs(3600))));
        assert_eq!(
            f.max_age,
            Some(DurationSpec(Duration::from_secs(30 * 86400)))
        );
        assert_eq!(f.timeout, Some(DurationSpec(Duration::from_secs(10))));
        assert_eq!(f.delimiter_byte(), Some(b'\t'));
        assert_eq!(f.column, Some(Column::Name("url".into())));
        assert_eq!(c.feeds[1].column, Some(Column::Index(3)));
        assert_eq!(c.feeds[1].format, Format::Csv);
        assert!(matches!(
            c.feeds[1].location(Path::new("/etc/trawl")),
            SourceLocation::Http(_)
        ));
        assert_eq!(
            f.location(Path::new("/etc/trawl")),
            SourceLocation::File(PathBuf::from("/etc/trawl/feeds/drop.txt"))
        );
        assert_eq!(c.allowlist.cidrs, vec!["192.0.2.0/24"]);
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.sinks.len(), 1);
    }

    #[test]
    fn unknown_tables_and_keys_name_the_line_and_nearest_name() {
        for (text, expect) in [
            (
                "[[feed]]\nname = \"a\"\nsource = \"x\"\nconfidnce = 5\n",
                "unknown key `confidnce` at line 4, did you mean `confidence`?",
            ),
            (
                "[sensors]\nname = \"s\"\n",
                "unknown table `sensors` at line 1, did you mean `sensor`?",
            ),
            (
                "[sensor]\nname = \"s\"\n\n[[feeds]]\nname = \"a\"\nsource = \"x\"\n",
                "unknown table `feeds` at line 4, did you mean `feed`?",
            ),
            (
                "[[sinks]]\nkind = \"stdout\"\n",
                "unknown table `sinks` at line 1, did you mean `sink`?",
            ),
            (
                "[sensor]\nname = \"s\"\ndat = \"d\"\n",
                "unknown key `dat` at line 3, did you mean `data`?",
            ),
            (
                "[allowlist]\ndomain = [\"a.example\"]\n",
                "unknown key `domain` at line 2, did you mean `domains`?",
            ),
            (
                "colour = 1\n",
                "unknown key `colour` at line 1; expected one of",
            ),
        ] {
            let err = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn remote_table_gives_url_and_token() {
        let c = Config::from_toml_str(
            "[remote]\nurl = \"https://cif.example:8443\"\ntoken = \"abc\"\n",
        )
        .unwrap();
        let r = c.remote.unwrap();
        assert_eq!(r.url.as_deref(), Some("https://cif.example:8443"));
        assert_eq!(r.token().unwrap().as_deref(), Some("abc"));
        let c = Config::from_toml_str("[remote]\ntoken_env = \"TRAWL_TEST_SURELY_UNSET_VAR\"\n")
            .unwrap();
        let err = c.remote.unwrap().token().unwrap_err();
        assert!(err.contains("TRAWL_TEST_SURELY_UNSET_VAR"), "{err}");
        let err = Config::from_toml_str("[remote]\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `url`"), "{err}");
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trawl.toml");
        std::fs::write(&path, "[sensor]\ndata = \"state\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.base_dir(), dir.path());
        assert_eq!(c.data_dir(), Some(dir.path().join("state")));
        assert_eq!(c.resolve(Path::new("/abs/x")), PathBuf::from("/abs/x"));
        assert_eq!(
            c.resolve(Path::new("sink.jsonl")),
            dir.path().join("sink.jsonl")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// The body of the `config_toml` fuzz target: any text is a config or an error.
        #[test]
        fn any_text_loads_or_errs(text in "(\\[{0,2}[a-z_]{0,9}\\]{0,2}\n|[a-z_ ]{0,10}=[ -~]{0,12}\n|\\PC{0,20}\n){0,8}") {
            let _ = Config::from_toml_str(&text);
        }
    }

    #[test]
    fn body_cap_and_shrink_guard_keys() {
        let f = FeedConfig::new("a", "b");
        assert_eq!((f.max_bytes(), f.min_ratio()), (512 << 20, 0.5));
        for (v, want) in [
            ("1024", Some(1024)),
            ("\"64MiB\"", Some(64 << 20)),
            ("\"1 G\"", Some(1 << 30)),
            ("\"100kb\"", Some(100 << 10)),
            ("\"12 parsecs\"", None),
            ("\"99999999999TiB\"", None),
            ("0", None),
        ] {
            let text = format!("[[feed]]\nname = \"a\"\nsource = \"x\"\nmax_bytes = {v}\n");
            let got = Config::from_toml_str(&text).map(|c| c.feeds[0].max_bytes());
            assert_eq!(got.as_ref().ok().copied(), want, "{v}: {got:?}");
        }
        for (v, ok) in [
            ("0.0", true),
            ("0.9", true),
            ("1.5", false),
            ("-0.1", false),
        ] {
            let text = format!("[[feed]]\nname = \"a\"\nsource = \"x\"\nmin_ratio = {v}\n");
            assert_eq!(Config::from_toml_str(&text).is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn sightings_go_to_the_server_the_releases_come_from() {
        let endpoint = |upstream: &str| {
            let text = format!("[upstream]\n{upstream}\npublic_key = \"k.pub\"\n");
            Config::from_toml_str(&text)
                .unwrap()
                .upstream
                .unwrap()
                .sightings_endpoint()
        };
        for url in [
            "https://intel.example:5000/v1/snapshot/",
            "https://intel.example:5000/v1/snapshot",
            "https://intel.example:5000/",
        ] {
            assert_eq!(
                endpoint(&format!("url = \"{url}\"")),
                "https://intel.example:5000/v1/sightings",
                "{url}"
            );
        }
        assert_eq!(
            endpoint("url = \"https://cdn.example/fleet/\"\nsightings_url = \"https://intel.example/v1/sightings\""),
            "https://intel.example/v1/sightings"
        );
    }

    #[test]
    fn unknown_feed_key_is_named() {
        let err = Config::from_toml_str("[[feed]]\nname = \"a\"\nsource = \"x\"\nconfidnce = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("confidnce"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (snippet, key) in [
            ("confidence = 101", "confidence"),
            ("severity = \"extreme\"", "severity"),
            ("tlp = \"purple\"", "tlp"),
            ("format = \"yaml\"", "yaml"),
            ("pattern = \"(\"", "pattern"),
            ("refresh = \"1 fortnight\"", "fortnight"),
            ("column = 0", "column"),
            ("map = { colour = \"x\" }", "colour"),
        ] {
            let text = format!("[[feed]]\nname = \"a\"\nsource = \"x\"\n{snippet}\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{snippet}: {err}");
        }
        let dup =
            "[[feed]]\nname = \"a\"\nsource = \"x\"\n[[feed]]\nname = \"a\"\nsource = \"y\"\n";
        assert!(Config::from_toml_str(dup).is_err());
    }
}
