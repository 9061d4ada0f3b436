//! Kafka in and out (librdkafka through `rdkafka`, cargo feature `kafka`): a consumer-group
//! source ([`source`]) and a producer sink ([`sink`]). The rest of the daemon sees them only
//! through the source runner and [`super::sinks::Sink`] interfaces.

pub mod sink;
pub mod source;

use super::config::{Brokers, ClientValue};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use std::collections::BTreeMap;

/// A client config: the brokers, trawl's `settings`, then the table's `[options]` (which win,
/// so TLS, SASL and timeouts are the user's to set).
fn client_config(
    brokers: &Brokers,
    settings: &[(&str, String)],
    options: &BTreeMap<String, ClientValue>,
) -> Result<ClientConfig, String> {
    let servers = brokers.joined();
    if servers.is_empty() {
        return Err("brokers is empty: list them, brokers = [\"kafka1:9092\"]".into());
    }
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", servers);
    for (k, v) in settings {
        cfg.set(*k, v.as_str());
    }
    for (k, v) in options {
        cfg.set(k.as_str(), v.to_string());
    }
    cfg.set_log_level(RDKafkaLogLevel::Warning);
    Ok(cfg)
}

/// librdkafka's log lines and errors, through `tracing`, prefixed with the component.
fn forward_log(component: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!("{component}: librdkafka {fac}: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!("{component}: librdkafka {fac}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!("{component}: librdkafka {fac}: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!("{component}: librdkafka {fac}: {message}"),
    }
}

/// What to check after a client error whose `reason` is a failed TLS or SASL handshake
/// (empty for other errors); `table` is where the client's settings are (`[source.options]`).
fn handshake_hint(reason: &str, table: &str) -> String {
    if reason.contains("certificate verify failed") || reason.contains("SSL handshake failed") {
        format!(
            " (check \"ssl.ca.location\" in {table}: the CA file that signed the broker's \
             certificate, and that the certificate names the host in brokers)"
        )
    } else if reason.contains("SASL") && reason.contains("authentication") {
        format!(" (check \"sasl.mechanism\", \"sasl.username\" and \"sasl.password\" in {table})")
    } else {
        String::new()
    }
}
