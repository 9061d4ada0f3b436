//! `[retro]` of `trawl.toml`: whether and how the daemon records the observation index.

use super::RetroError;
use serde::Deserialize;
use std::time::Duration;

/// Most client addresses kept per value and partition (`clients`).
pub const MAX_CLIENTS: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetroTable {
    retention: Option<String>,
    max_bytes: Option<u64>,
    clients: Option<usize>,
    flush: Option<String>,
}

/// The retro index's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetroConfig {
    /// Partitions older than this are deleted; events older than it are rejected (`90d`).
    pub retention: Duration,
    /// The index's size cap in bytes; the oldest partitions go first (none by default).
    pub max_bytes: Option<u64>,
    /// Client addresses sampled per value and partition (0: none).
    pub clients: usize,
    /// How often the daemon writes what it observed (`60s`): what a `kill -9` can lose.
    pub flush: Duration,
}

impl Default for RetroConfig {
    fn default() -> Self {
        RetroConfig {
            retention: Duration::from_secs(90 * 86_400),
            max_bytes: None,
            clients: 0,
            flush: Duration::from_secs(60),
        }
    }
}

impl RetroConfig {
    /// Read the `[retro]` table (unknown keys and bad values are errors that say what is
    /// accepted).
    pub fn from_table(table: &toml::Table) -> Result<RetroConfig, RetroError> {
        let t: RetroTable = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| RetroError::Config(e.message().to_string()))?;
        let dur = |key: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => match s.parse::<feeds::config::DurationSpec>() {
                Ok(feeds::config::DurationSpec(d)) if !d.is_zero() => Ok(d),
                Ok(_) => Err(RetroError::Config(format!("{key} must be at least 1s"))),
                Err(e) => Err(RetroError::Config(format!("{key}: {e}"))),
            },
        };
        let d = RetroConfig::default();
        let clients = t.clients.unwrap_or(0);
        if clients > MAX_CLIENTS {
            return Err(RetroError::Config(format!(
                "clients = {clients}: at most {MAX_CLIENTS} client addresses are kept per value"
            )));
        }
        Ok(RetroConfig {
            retention: dur("retention", t.retention, d.retention)?,
            max_bytes: t.max_bytes,
            clients,
            flush: dur("flush", t.flush, d.flush)?,
        })
    }

    /// The retention in seconds.
    pub fn retention_secs(&self) -> i64 {
        i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RetroConfig, RetroError> {
        RetroConfig::from_table(&s.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse("").unwrap(), RetroConfig::default());
        let c =
            parse("retention = \"30d\"\nmax_bytes = 1000\nclients = 4\nflush = \"5s\"").unwrap();
        assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.max_bytes, Some(1000));
        assert_eq!(c.clients, 4);
        assert_eq!(c.flush, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_are_refused_with_reason() {
        assert!(parse("retension = \"30d\"")
            .unwrap_err()
            .to_string()
            .contains("retension"));
        assert!(parse("retention = \"soon\"").is_err());
        assert!(parse("flush = \"0s\"").is_err());
        assert!(parse("clients = 1000")
            .unwrap_err()
            .to_string()
            .contains("at most"));
    }
}
