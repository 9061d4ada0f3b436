//! The daemon's `[[source]]` and `[[sink]]` tables: one struct per `kind`, each refusing keys
//! it does not know (the error names the line and the nearest valid key), and relative paths
//! resolved against the config file's directory, as feed sources are.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `[[source]]` / `[[sink]]` tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A table is malformed: the message names the file, the line and, for an unknown key or
    /// kind, the nearest valid one.
    #[error("{0}")]
    Invalid(String),
}

/// One `[[source]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// Log files, tailed.
    File(FileSource),
    /// A live capture.
    Pcap(PcapSource),
    /// Standard input, until its end.
    Stdin(StdinSource),
    /// Kafka topics, read as a member of a consumer group.
    Kafka(KafkaSource),
}

/// `kind = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Globs (relative ones to the config file's directory); list rotated names too
    /// (`access.log*`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Log format or `auto`.
    pub format: Option<String>,
    /// The server's format string (`--logformat`), with `format` squid, nginx or apache.
    pub logformat: Option<String>,
    /// `beginning` (default) or `end` for files first seen.
    pub read_from: Option<String>,
}

/// `kind = "pcap"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcapSource {
    /// The interface.
    pub interface: Option<String>,
    /// BPF filter.
    pub bpf: Option<String>,
    /// Snap length.
    pub snaplen: Option<i32>,
    /// Promiscuous mode (default true).
    pub promisc: Option<bool>,
    /// Kernel capture ring in MiB (1-2047, default 64).
    pub buffer: Option<i32>,
    /// Capture threads (1-64, default 1), each with its own ring, sharing the interface by
    /// flow in one kernel fanout group.
    pub workers: Option<usize>,
    /// The fanout group this source's handle joins (set when `workers` is expanded).
    #[serde(skip)]
    pub fanout: Option<u16>,
}

/// `kind = "stdin"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSource {
    /// Log format or `auto`.
    pub format: Option<String>,
    /// The server's format string (`--logformat`), with `format` squid, nginx or apache.
    pub logformat: Option<String>,
}

/// `kind = "kafka"`: one record per message, offsets committed once the alerts are durable
/// in every sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// Bootstrap brokers, `host:port` (a list, or one comma-separated string).
    pub brokers: Brokers,
    /// Topics to subscribe to; a name starting with `^` is a regular expression.
    #[serde(default)]
    pub topics: Vec<String>,
    /// The consumer group (default `trawl`): processes in one group split the partitions.
    pub group: Option<String>,
    /// Log format or `auto` (detected per topic from its first messages).
    pub format: Option<String>,
    /// The server's format string (`--logformat`), with `format` squid, nginx or apache.
    pub logformat: Option<String>,
    /// Where a group with no committed offset starts: `earliest` (default) or `latest`.
    pub start: Option<String>,
    /// librdkafka settings passed through as they are (`security.protocol`, `sasl.*`,
    /// `ssl.*`, `session.timeout.ms`, ...).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, ClientValue>,
}

/// `brokers = ["a:9092", "b:9092"]` or `brokers = "a:9092,b:9092"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Brokers {
    /// One string, librdkafka's `bootstrap.servers`.
    One(String),
    /// A list of `host:port`.
    Many(Vec<String>),
}

impl Brokers {
    /// librdkafka's `bootstrap.servers`.
    pub fn joined(&self) -> String {
        match self {
            Brokers::One(s) => s.trim().to_string(),
            Brokers::Many(v) => v.join(","),
        }
    }
}

/// A pass-through client setting: TOML strings, integers, floats and booleans.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ClientValue {
    /// `"SASL_SSL"`.
    Text(String),
    /// `6000`.
    Integer(i64),
    /// `0.5`.
    Float(f64),
    /// `true`.
    Bool(bool),
}

impl std::fmt::Display for ClientValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientValue::Text(s) => f.write_str(s),
            ClientValue::Integer(n) => write!(f, "{n}"),
            ClientValue::Float(x) => write!(f, "{x}"),
            ClientValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl SourceConfig {
    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            SourceConfig::Pcap(_) => "pcap",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Kafka(_) => "kafka",
        }
    }

    /// The log format of a file or stdin source.
    pub fn format(&self) -> Option<&str> {
        match self {
            SourceConfig::File(f) => f.format.as_deref(),
            SourceConfig::Stdin(s) => s.format.as_deref(),
            SourceConfig::Kafka(k) => k.format.as_deref(),
            SourceConfig::Pcap(_) => None,
        }
    }

    /// The `logformat` of a file or stdin source.
    pub fn logformat(&self) -> Option<&str> {
        match self {
            SourceConfig::File(f) => f.logformat.as_deref(),
            SourceConfig::Stdin(s) => s.logformat.as_deref(),
            SourceConfig::Kafka(k) => k.logformat.as_deref(),
            SourceConfig::Pcap(_) => None,
        }
    }
}

/// One `[[sink]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkConfig {
    /// Alerts appended to a file.
    Jsonl(JsonlSinkConfig),
    /// Alerts on standard output.
    Stdout(StdoutSinkConfig),
    /// RFC 5424 syslog.
    Syslog(SyslogSinkConfig),
    /// Batched HTTP POST.
    Http(HttpSinkConfig),
    /// STIX 2.1 sightings POSTed to a TAXII 2.1 collection.
    Taxii(TaxiiSinkConfig),
    /// Produced to a Kafka topic.
    Kafka(KafkaSinkConfig),
}

/// `kind = "kafka"`: one message per alert; a write is done when the broker acknowledged
/// every message of it (`acks = all`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, `host:port` (a list, or one comma-separated string).
    pub brokers: Brokers,
    /// The topic alerts are produced to.
    pub topic: String,
    /// The message key, so one flow, host or indicator stays on one partition:
    /// `community_id`, `source.ip`, `threat.indicator.name` or `none` (default).
    pub key: Option<String>,
    /// `none` (default), `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: Option<String>,
    /// Broker acknowledgements awaited: `all` (default), `1` or `0`.
    pub acks: Option<String>,
    /// Idempotent production (default true): no duplicates from the client's own retries.
    pub idempotence: Option<bool>,
    /// Seconds a message may wait for the broker before the write fails and is retried from
    /// the spool (default 30).
    pub timeout: Option<u64>,
    /// Undelivered bytes kept in the spool while the brokers are down (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
    /// librdkafka settings passed through as they are (`security.protocol`, `sasl.*`, ...).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, ClientValue>,
}

/// What a sink's spool does when it is full (the sink has been failing for long).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Refuse: the sources wait until the sink takes alerts again (nothing is lost, but every
    /// sink waits).
    #[default]
    Block,
    /// Drop the new alerts for this sink only (counted, shown on `/healthz`): the other sinks
    /// go on.
    Drop,
}

/// `kind = "jsonl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// The file alerts are appended to (relative: to the config file's directory).
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes (e.g. 104857600).
    pub max_bytes: Option<u64>,
    /// Rotate after this long (`1h`, `1d`).
    pub rotate: Option<String>,
    /// Undelivered bytes kept in the spool while the sink fails (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
}

/// `kind = "stdout"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Undelivered bytes kept in the spool while the sink fails (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
}

/// `kind = "syslog"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSinkConfig {
    /// `udp://host:514`, `tcp://host:601` or `unix:///dev/log` (the default).
    pub endpoint: Option<String>,
    /// Undelivered bytes kept in the spool while the sink fails (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
}

/// `kind = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The URL alerts are POSTed to.
    pub endpoint: String,
    /// `ndjson` (default), `es-bulk` (Elasticsearch `_bulk`) or `splunk-hec`.
    pub format: Option<String>,
    /// Name of the environment variable holding the token (`Authorization` header:
    /// `Bearer` for ndjson/es-bulk, `Splunk` for splunk-hec).
    pub token_env: Option<String>,
    /// `Authorization` scheme before the token (default `Bearer`, `Splunk` for
    /// splunk-hec; e.g. `ApiKey` for an Elasticsearch API key).
    pub auth_scheme: Option<String>,
    /// Alerts per POST (default 500).
    pub batch: Option<usize>,
    /// Undelivered bytes kept in the spool while the endpoint is down (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
    /// Request timeout in seconds (default 10).
    pub timeout: Option<u64>,
}

/// `kind = "taxii"`: a STIX 2.1 `sighting` (with the sensor as an `identity`) for every
/// alerted indicator that came from a TAXII feed, POSTed to a writable collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiSinkConfig {
    /// The collection's `objects/` URL.
    pub collection: String,
    /// Name of the environment variable holding the credentials (after `auth_scheme`).
    pub token_env: Option<String>,
    /// `Authorization` scheme: `Basic` (the variable holds base64 of `user:password`) or
    /// `Bearer` (default).
    pub auth_scheme: Option<String>,
    /// Alerts per POST (default 500; each POST folds them into one sighting per indicator).
    pub batch: Option<usize>,
    /// Undelivered bytes kept in the spool while the server is down (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// What to do when the spool is full: `block` (default) or `drop`.
    pub when_full: Option<WhenFull>,
    /// Request timeout in seconds (default 10).
    pub timeout: Option<u64>,
}

impl SinkConfig {
    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::Http(_) => "http",
            SinkConfig::Taxii(_) => "taxii",
            SinkConfig::Kafka(_) => "kafka",
        }
    }

    /// `spool_max_bytes` and `when_full`, if set.
    pub fn spool(&self) -> (Option<u64>, Option<WhenFull>) {
        match self {
            SinkConfig::Jsonl(c) => (c.spool_max_bytes, c.when_full),
            SinkConfig::Stdout(c) => (c.spool_max_bytes, c.when_full),
            SinkConfig::Syslog(c) => (c.spool_max_bytes, c.when_full),
            SinkConfig::Http(c) => (c.spool_max_bytes, c.when_full),
            SinkConfig::Taxii(c) => (c.spool_max_bytes, c.when_full),
            SinkConfig::Kafka(c) => (c.spool_max_bytes, c.when_full),
        }
    }
}

/// The `[[source]]` and `[[sink]]` tables of a config file (the other tables are the feeds
/// config's).
#[derive(Deserialize)]
struct Tables {
    #[serde(default, rename = "source")]
    sources: Vec<SourceConfig>,
    #[serde(default, rename = "sink")]
    sinks: Vec<SinkConfig>,
}

/// Read the `[[source]]` and `[[sink]]` tables of the config file at `path`, relative paths
/// resolved against its directory.
pub fn load(path: &Path) -> Result<(Vec<SourceConfig>, Vec<SinkConfig>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut tables: Tables =
        toml::from_str(&text).map_err(|e| ConfigError::Invalid(describe(path, &text, &e)))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    for s in &mut tables.sources {
        if let SourceConfig::File(f) = s {
            for glob in &mut f.paths {
                if Path::new(glob.as_str()).is_relative() {
                    *glob = dir.join(&*glob).to_string_lossy().into_owned();
                }
            }
        }
    }
    for s in &mut tables.sinks {
        if let SinkConfig::Jsonl(j) = s {
            if j.path.is_relative() {
                j.path = dir.join(&j.path);
            }
        }
    }
    Ok((tables.sources, tables.sinks))
}

/// A config error with its file, line and, for an unknown key or kind, the nearest valid one.
fn describe(path: &Path, text: &str, e: &toml::de::Error) -> String {
    format!(
        "{}: {}",
        path.display(),
        feeds::config::toml_message(text, e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<(Vec<SourceConfig>, Vec<SinkConfig>), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trawl.toml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn file_and_stdin_sources_take_a_logformat() {
        let (sources, _) = load_text(
            "[[source]]\nkind = \"file\"\npaths = [\"a.log\"]\nformat = \"squid\"\nlogformat = \"%ts %>a %rm %ru\"\n\n[[source]]\nkind = \"stdin\"\nlogformat = \"$remote_addr $request\"\n",
        )
        .unwrap();
        assert_eq!(sources[0].logformat(), Some("%ts %>a %rm %ru"));
        assert_eq!(sources[1].logformat(), Some("$remote_addr $request"));
    }

    #[test]
    fn unknown_keys_and_kinds_name_the_line_and_the_nearest_valid_name() {
        let base = "[sensor]\nname = \"s\"\n\n[[feed]]\nname = \"f\"\n\n";
        for (table, line, want) in [
            (
                "[[source]]\nkind = \"file\"\npathz = [\"a.log\"]\n",
                9,
                "unknown key `pathz` at line 9, did you mean `paths`?",
            ),
            (
                "[[source]]\nkind = \"pcap\"\nread_from = \"end\"\ninterface = \"lo\"\n",
                9,
                "unknown key `read_from` at line 9",
            ),
            (
                "[[source]]\nkind = \"fille\"\n",
                8,
                "unknown value `fille` at line 8, did you mean `file`?",
            ),
            (
                "[[sink]]\nkind = \"jsonl\"\npath = \"a\"\nmax_byte = 5\n",
                10,
                "unknown key `max_byte` at line 10, did you mean `max_bytes`?",
            ),
            (
                "[[sink]]\nkind = \"http\"\nendpoint = \"http://127.0.0.1:1/\"\nbatch_size = 5\n",
                10,
                "unknown key `batch_size` at line 10, did you mean `batch`?",
            ),
        ] {
            let err = format!("{:#}", load_text(&format!("{base}{table}")).unwrap_err());
            assert!(err.contains(want), "{table}: {err}");
            assert!(err.contains("trawl.toml: unknown "), "{table}: {err}");
            assert!(err.contains(&format!(" at line {line}")), "{table}: {err}");
        }
        // Far from every valid key: no guess.
        let err = format!(
            "{:#}",
            load_text("[[sink]]\nkind = \"stdout\"\ncolour = true\n").unwrap_err()
        );
        assert!(
            err.contains("unknown key `colour` at line 3") && !err.contains("did you mean"),
            "{err}"
        );
    }

    proptest::proptest! {
        // Whatever the text (broken TOML, odd keys, multi-byte characters), loading answers
        // with tables or an error, never a panic.
        #[test]
        fn any_text_loads_or_fails_cleanly(
            head in "[\\PC\n]{0,40}",
            key in "[a-zé_ü\"=\\[\\] ]{1,12}",
            tail in "[\\PC\n]{0,40}",
        ) {
            let text = format!("[[sink]]\nkind = \"jsonl\"\npath = \"a\"\n{head}\n{key} = 1\n{tail}");
            let _ = load_text(&text);
        }
    }

    #[test]
    fn kafka_tables_take_brokers_in_either_form_and_pass_options_through() {
        let (sources, sinks) = load_text(
            "[[source]]\nkind = \"kafka\"\nbrokers = \"a:9092, b:9092\"\ntopics = [\"^zeek-.*\"]\n[source.options]\n\"session.timeout.ms\" = 6000\n\"enable.ssl.certificate.verification\" = false\n\"security.protocol\" = \"SSL\"\n\n[[sink]]\nkind = \"kafka\"\nbrokers = [\"a:9092\", \"b:9092\"]\ntopic = \"alerts\"\nkey = \"source.ip\"\n",
        )
        .unwrap();
        let SourceConfig::Kafka(k) = &sources[0] else {
            panic!("{sources:?}")
        };
        assert_eq!(k.brokers.joined(), "a:9092, b:9092");
        let opts: Vec<(String, String)> = k
            .options
            .iter()
            .map(|(a, b)| (a.clone(), b.to_string()))
            .collect();
        assert_eq!(
            opts,
            [
                ("enable.ssl.certificate.verification".into(), "false".into()),
                ("security.protocol".into(), "SSL".into()),
                ("session.timeout.ms".into(), "6000".into()),
            ]
        );
        let SinkConfig::Kafka(s) = &sinks[0] else {
            panic!("{sinks:?}")
        };
        assert_eq!(s.brokers.joined(), "a:9092,b:9092");
        let err = format!(
            "{:#}",
            load_text("[[sink]]\nkind = \"kafka\"\nbrokers = \"a:1\"\ntopic = \"t\"\ncompresion = \"lz4\"\n")
                .unwrap_err()
        );
        assert!(err.contains("did you mean `compression`?"), "{err}");
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let path = dir.path().join("etc/trawl.toml");
        std::fs::write(
            &path,
            "[[source]]\nkind = \"file\"\npaths = [\"logs/a.log*\", \"/var/log/b.log\"]\n\n[[sink]]\nkind = \"jsonl\"\npath = \"out/alerts.jsonl\"\n",
        )
        .unwrap();
        let (sources, sinks) = load(&path).unwrap();
        let SourceConfig::File(f) = &sources[0] else {
            panic!("{sources:?}")
        };
        assert_eq!(
            f.paths,
            [
                dir.path().join("etc/logs/a.log*").to_string_lossy(),
                "/var/log/b.log".into()
            ]
        );
        let SinkConfig::Jsonl(j) = &sinks[0] else {
            panic!("{sinks:?}")
        };
        assert_eq!(j.path, dir.path().join("etc/out/alerts.jsonl"));
    }
}
