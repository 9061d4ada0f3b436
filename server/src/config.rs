//! The `[server]` table of `trawl.toml`.

use feeds::config::{ByteSize, DurationSpec};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The default listen address: loopback only (put a TLS certificate in and listen on a
/// public address on purpose), on CIF's customary port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";

/// `[server]`. Unknown keys are errors naming the line and the nearest valid key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default [`DEFAULT_LISTEN`]; port 0 picks a free one).
    pub listen: Option<String>,
    /// The store: a path to the SQLite file (relative to the data directory; default
    /// `server.db`), or a `postgres://user[:password]@host:port/db` URL.
    pub database: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Requests per second per token (burst: twice that; default 50; 0 turns it off).
    pub rate_limit: Option<u32>,
    /// Requests per second per client address (default 100; 0 turns it off).
    pub rate_limit_per_address: Option<u32>,
    /// Largest request body (default `"16MiB"`), before and after decompression.
    pub max_body: Option<ByteSize>,
    /// Longest a request may take, reading the body included (default `"30s"`).
    pub timeout: Option<DurationSpec>,
    /// Longest a client may take to send a request's head (request line and headers), and
    /// longest an idle keep-alive connection stays open (default `"10s"`): slow-header
    /// (slowloris) clients are disconnected.
    pub header_timeout: Option<DurationSpec>,
    /// Most results one search or feed returns (default 100000; CIF's clients ask less).
    pub max_results: Option<usize>,
    /// The Ed25519 key (`trawl keygen`'s `PREFIX.key`) that signs fleet releases: those
    /// `trawl serve` serves at `/v1/snapshot/...`, and `trawl publish`'s when `--key` is not
    /// given. Unset: `/v1/snapshot/...` answers 404.
    pub signing_key: Option<PathBuf>,
    /// Deltas kept per token grant's release: from this many previous releases (default
    /// 24); a sensor further behind gets the full bundle.
    pub snapshot_keep: Option<usize>,
    /// A fleet sensor whose last pull is older than this is stale in `trawl fleet`, the
    /// web page's Fleet page and `trawl_fleet_sensors_stale` (default `"3h"`).
    pub fleet_stale: Option<DurationSpec>,
}

impl ServerConfig {
    /// Requests per second per token.
    pub fn token_rate(&self) -> u32 {
        self.rate_limit.unwrap_or(50)
    }

    /// Requests per second per address.
    pub fn address_rate(&self) -> u32 {
        self.rate_limit_per_address.unwrap_or(100)
    }

    /// The body cap in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
            .map_or(16 << 20, |b| usize::try_from(b.0).unwrap_or(usize::MAX))
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(30), |d| d.0)
    }

    /// The request-head timeout.
    pub fn header_timeout(&self) -> Duration {
        self.header_timeout.map_or(Duration::from_secs(10), |d| d.0)
    }

    /// `fleet_stale`.
    pub fn fleet_stale(&self) -> Duration {
        self.fleet_stale
            .map_or(Duration::from_secs(crate::fleet::DEFAULT_STALE), |d| d.0)
    }

    /// The result cap.
    pub fn max_results(&self) -> usize {
        self.max_results.unwrap_or(100_000)
    }

    /// Read `[server]` from a config file's text ([`feeds::config::server_table`]'s errors:
    /// line and nearest key).
    pub fn from_config_text(text: &str) -> Result<ServerConfig, String> {
        let c: ServerConfig = feeds::config::server_table(text)?;
        if c.tls_cert.is_some() != c.tls_key.is_some() {
            return Err("[server]: tls_cert and tls_key go together: set both or neither".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_unknown_ones_name_line_and_nearest() {
        let c = ServerConfig::from_config_text(
            "[sensor]\nname = \"x\"\n\n[server]\nlisten = \"0.0.0.0:5443\"\nmax_body = \"1MiB\"\n\
             timeout = \"5s\"\nrate_limit = 3\n",
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:5443"));
        assert_eq!(c.max_body(), 1 << 20);
        assert_eq!(c.timeout(), Duration::from_secs(5));
        assert_eq!(c.token_rate(), 3);
        let e = ServerConfig::from_config_text("[server]\nlisten = \"x\"\nrate_limt = 3\n")
            .unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("rate_limt") && e.contains("`rate_limit`"),
            "{e}"
        );
        let e = ServerConfig::from_config_text("[server]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert!(e.contains("tls_key"), "{e}");
        assert_eq!(
            ServerConfig::from_config_text("").unwrap().max_results(),
            100_000
        );
    }
}
