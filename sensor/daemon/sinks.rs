//! Alert sinks of the daemon: jsonl file (rotation), stdout, syslog (RFC 5424), HTTP (batched
//! POST); the Kafka sink is in `kafka/sink.rs`.
//!
//! Each sink runs on its own thread and is fed from its own durable spool (`spool.rs`): a
//! sink's `write` returns once the alerts are delivered in the sink's sense (written and synced
//! to the file, sent on the socket, POSTed), and the spool position moves on only then, by the
//! whole lines the sink reports as taken, so a failure never loses nor repeats an alert.

use super::config::{HttpSinkConfig, SinkConfig, TaxiiSinkConfig};
use super::spool::SpoolError;
use crate::data_files::DataFileError;
use std::fs::File;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What made a sink fail a write (retried) or refuse to start.
#[derive(Debug, thiserror::Error)]
pub enum SinkFailure {
    /// An I/O error; `what` says on which file or endpoint.
    #[error("{what}")]
    Io {
        /// What was being done (`writing /var/log/trawl/alerts.jsonl`).
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The jsonl file's partial last line could not be cut.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The jsonl file could not be opened to append (or is a symlink).
    #[error(transparent)]
    File(#[from] DataFileError),
    /// The sink's table asks for something unusable (a scheme, a format, a missing token).
    #[error("{0}")]
    Config(String),
    /// The HTTP endpoint failed, or answered what cannot count as delivered.
    #[error("{0}")]
    Http(String),
    /// The message brokers failed or did not acknowledge the alerts.
    #[error("{0}")]
    Broker(String),
}

impl SinkFailure {
    /// The OS error code behind an I/O failure.
    fn os_error(&self) -> Option<i32> {
        match self {
            SinkFailure::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `map_err` for an I/O error while doing `what`.
fn io_failure(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SinkFailure {
    let what = what.into();
    move |source| SinkFailure::Io { what, source }
}

/// Why a sink did not take a whole batch.
#[derive(Debug)]
pub enum SinkError {
    /// Failed for now (disk full, endpoint down): retried later. The first `done` bytes of
    /// the batch (whole lines) were delivered before the failure and are not sent again.
    Retry {
        /// Bytes of the batch delivered before the failure.
        done: usize,
        /// What failed.
        error: SinkFailure,
    },
    /// The destination refused these lines for good (the rest of the batch was delivered):
    /// they go to the sink's dead-letter file instead of blocking what follows.
    Rejected {
        /// The refused alert lines, each ending in `\n`.
        lines: Vec<u8>,
        /// Why.
        reason: String,
    },
}

impl From<SinkFailure> for SinkError {
    fn from(error: SinkFailure) -> Self {
        SinkError::Retry { done: 0, error }
    }
}

/// An alert destination.
pub trait Sink: Send {
    /// Human name for logs and metrics (`jsonl:/var/log/trawl/alerts.jsonl`).
    fn name(&self) -> String;
    /// Alerts handed to one `write` at most.
    fn batch_lines(&self) -> usize {
        500
    }
    /// For a sink that would rather lose its oldest lines than its newest: the most bytes
    /// its spool keeps undelivered, the oldest lines past it dropped before each delivery.
    fn keep_at_most(&self) -> Option<u64> {
        None
    }
    /// `lines` of the oldest were dropped by [`Sink::keep_at_most`].
    fn dropped_oldest(&mut self, _lines: u64) {}
    /// Deliver JSON lines (each ending in `\n`); delivered (durable for files) when Ok.
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError>;
    /// Periodic work (time-based rotation).
    fn tick(&mut self) -> Result<(), SinkFailure> {
        Ok(())
    }
    /// Flush everything before shutdown.
    fn close(&mut self) -> Result<(), SinkFailure> {
        Ok(())
    }
}

/// A duration option (`suppress`, `rotate`, `--suppress`): the same grammar as a feed's
/// `refresh` ([`feeds::config::DurationSpec`]: `90s`, `15m`, `1h`, `7d`, `1w`, seconds); the
/// error says what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<feeds::config::DurationSpec>().map(|d| d.0)
}

/// Build the sink a table describes. A sink that cannot reach its destination yet (a syslog
/// host down or not resolving) still starts: it fails its writes, which are retried.
pub fn build_sink(
    cfg: &SinkConfig,
    metrics: &std::sync::Arc<super::metrics::Metrics>,
) -> Result<Box<dyn Sink>, SinkFailure> {
    Ok(match cfg {
        SinkConfig::Stdout(_) => Box::new(StdoutSink),
        SinkConfig::Jsonl(c) => Box::new(JsonlSink::open(
            c.path.clone(),
            c.max_bytes,
            c.rotate
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| SinkFailure::Config(format!("rotate: {e}")))?,
        )?),
        SinkConfig::Syslog(c) => Box::new(SyslogSink::new(
            c.endpoint.as_deref().unwrap_or("unix:///dev/log"),
        )?),
        SinkConfig::Http(c) => Box::new(HttpSink::new(c)?),
        SinkConfig::Taxii(c) => Box::new(HttpSink::taxii(c)?),
        #[cfg(feature = "kafka")]
        SinkConfig::Kafka(c) => Box::new(super::kafka::sink::KafkaSink::new(c, metrics.clone())?),
        #[cfg(not(feature = "kafka"))]
        SinkConfig::Kafka(_) => {
            let _ = metrics;
            return Err(SinkFailure::Config(
                "kind = \"kafka\": this trawl was built without Kafka support (build it with \
                 the default features, or `--features kafka`)"
                    .into(),
            ));
        }
    })
}

/// Writes alerts to stdout.
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn name(&self) -> String {
        "stdout".into()
    }
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        out.write_all(lines)
            .and_then(|()| out.flush())
            .map_err(io_failure("writing to stdout"))?;
        Ok(())
    }
}

/// Appends alerts to a file, rotating by size and/or age (`alerts.jsonl` → `alerts.jsonl.<unix-time>`).
pub struct JsonlSink {
    path: PathBuf,
    file: File,
    size: u64,
    opened: Instant,
    max_bytes: Option<u64>,
    max_age: Option<Duration>,
}

impl JsonlSink {
    /// Open (append) the file, creating its directory; a symlink in its place is refused, and
    /// an unfinished last line (a crash mid-write; not delivered, so it is written again) cut.
    pub fn open(
        path: PathBuf,
        max_bytes: Option<u64>,
        max_age: Option<Duration>,
    ) -> Result<Self, SinkFailure> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(io_failure(format!("creating {}", dir.display())))?;
        }
        let cut = super::spool::cut_partial_line(&path)?;
        if cut > 0 {
            tracing::warn!("{}: cut {cut} bytes of a partial line", path.display());
        }
        let file = crate::data_files::open_append(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonlSink {
            path,
            file,
            size,
            opened: Instant::now(),
            max_bytes,
            max_age,
        })
    }

    fn rotate(&mut self) -> Result<(), SinkFailure> {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        // Never overwrite an earlier rotation (several can happen in one millisecond).
        let mut target = self.path.clone().into_os_string();
        target.push(format!(".{stamp}"));
        let mut n = 0;
        while Path::new(&target).exists() {
            n += 1;
            target = self.path.clone().into_os_string();
            target.push(format!(".{stamp}-{n}"));
        }
        self.file.sync_all().ok();
        std::fs::rename(&self.path, &target)
            .map_err(io_failure(format!("rotating {}", self.path.display())))?;
        *self = JsonlSink::open(self.path.clone(), self.max_bytes, self.max_age)?;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SinkFailure> {
        self.file
            .write_all(bytes)
            .map_err(io_failure(format!("writing {}", self.path.display())))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Append `lines` and sync, rotating between lines. On failure `done` holds the bytes of
    /// `lines` already in rotated (synced) files and `base` the current file's length before
    /// the rest was appended: what to cut back to.
    fn write_lines(
        &mut self,
        lines: &[u8],
        done: &mut usize,
        base: &mut u64,
    ) -> Result<(), SinkFailure> {
        match self.max_bytes {
            None => self.append(lines)?,
            Some(max) => {
                // Rotate between lines, so no file exceeds max_bytes unless one alert does.
                let mut rest = lines;
                while !rest.is_empty() {
                    let room = max.saturating_sub(self.size) as usize;
                    let mut take = 0;
                    for l in rest.split_inclusive(|&b| b == b'\n') {
                        if take + l.len() > room {
                            break;
                        }
                        take += l.len();
                    }
                    if take == 0 {
                        if self.size > 0 {
                            self.file
                                .sync_data()
                                .map_err(io_failure(format!("writing {}", self.path.display())))?;
                            self.rotate()?;
                            *done = lines.len() - rest.len();
                            *base = 0;
                            continue;
                        }
                        // One alert larger than max_bytes: it gets a file of its own.
                        take = rest
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(rest.len(), |i| i + 1);
                    }
                    let (now, later) = rest.split_at(take);
                    self.append(now)?;
                    rest = later;
                }
            }
        }
        self.file
            .sync_data()
            .map_err(io_failure(format!("writing {}", self.path.display())))
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut done = 0;
        let mut base = self.size;
        if let Err(error) = self.write_lines(lines, &mut done, &mut base) {
            // Disk full or another write error: cut what this write added to the current file
            // (never leave half a line, never keep what will be written again on the retry).
            let undo = self.file.set_len(base).and_then(|()| self.file.sync_data());
            match undo {
                Ok(()) => self.size = base,
                Err(u) => tracing::error!(
                    "{}: cutting a failed write: {u} (cut again at the next start)",
                    self.path.display()
                ),
            }
            return Err(SinkError::Retry { done, error });
        }
        Ok(())
    }
    fn tick(&mut self) -> Result<(), SinkFailure> {
        if self
            .max_age
            .is_some_and(|a| self.size > 0 && self.opened.elapsed() >= a)
        {
            self.rotate()?;
        }
        Ok(())
    }
}

enum SyslogTransport {
    Udp(UdpSocket, String),
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixDatagram),
}

/// RFC 5424 syslog; each alert's JSON is the MSG. TCP uses octet-counting framing (RFC 6587).
pub struct SyslogSink {
    endpoint: String,
    /// Connected on first use and again after a failure.
    transport: Option<SyslogTransport>,
    hostname: String,
}

/// The refusal of an endpoint that is not syslog's.
fn bad_endpoint(endpoint: &str) -> SinkFailure {
    SinkFailure::Config(format!(
        "syslog endpoint {endpoint:?}: use udp://host:port, tcp://host:port or unix:///dev/log"
    ))
}

fn syslog_transport(endpoint: &str) -> Result<SyslogTransport, SinkFailure> {
    let connecting = || io_failure(format!("connecting to {endpoint}"));
    Ok(if let Some(addr) = endpoint.strip_prefix("udp://") {
        let sock = UdpSocket::bind(if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .map_err(connecting())?;
        SyslogTransport::Udp(sock, addr.to_string())
    } else if let Some(addr) = endpoint.strip_prefix("tcp://") {
        SyslogTransport::Tcp(TcpStream::connect(addr).map_err(connecting())?)
    } else if let Some(path) = endpoint.strip_prefix("unix://") {
        let sock = std::os::unix::net::UnixDatagram::unbound().map_err(connecting())?;
        sock.connect(path).map_err(connecting())?;
        SyslogTransport::Unix(sock)
    } else {
        return Err(bad_endpoint(endpoint));
    })
}

/// The host name for the HOSTNAME field: printable ASCII without spaces, at most 255 bytes
/// (RFC 5424 §6.2.4), or `-`.
fn syslog_hostname() -> String {
    let h: String = feeds::config::host_name()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

impl SyslogSink {
    /// A sink for `udp://host:port`, `tcp://host:port` or `unix:///path` (checked now,
    /// connected at the first write).
    pub fn new(endpoint: &str) -> Result<Self, SinkFailure> {
        if !["udp://", "tcp://", "unix://"]
            .iter()
            .any(|p| endpoint.starts_with(p))
        {
            return Err(bad_endpoint(endpoint));
        }
        Ok(SyslogSink {
            endpoint: endpoint.to_string(),
            transport: None,
            hostname: syslog_hostname(),
        })
    }

    /// One RFC 5424 message for one alert line (facility local0, severity from the alert).
    pub fn format_message(&self, alert: &str) -> String {
        let sev = serde_json::from_str::<serde_json::Value>(alert)
            .ok()
            .and_then(|v| v["trawl"]["severity"].as_str().map(str::to_string));
        let severity = match sev.as_deref() {
            Some("high") => 2,   // critical
            Some("medium") => 4, // warning
            _ => 5,              // notice
        };
        let pri = 16 * 8 + severity;
        let ts = ingest::observation::format_timestamp(crate::scan::now_ns());
        format!(
            "<{pri}>1 {ts} {} trawl {} alert - {alert}",
            self.hostname,
            std::process::id()
        )
    }

    fn send(&mut self, msg: &str) -> Result<(), SinkFailure> {
        let transport = match &mut self.transport {
            Some(t) => t,
            None => self.transport.insert(syslog_transport(&self.endpoint)?),
        };
        let sent = match transport {
            SyslogTransport::Udp(sock, addr) => {
                sock.send_to(msg.as_bytes(), addr.as_str()).map(drop)
            }
            SyslogTransport::Tcp(stream) => write!(stream, "{} {}", msg.len(), msg),
            SyslogTransport::Unix(sock) => sock.send(msg.as_bytes()).map(drop),
        };
        sent.map_err(io_failure(format!("sending to {}", self.endpoint)))
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> String {
        format!("syslog:{}", self.endpoint)
    }
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let mut done = 0;
        // Alerts too long for a datagram can never be sent: they go to the dead-letter file.
        let mut too_long = Vec::new();
        let mut first_too_long = None;
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            if !text.is_empty() {
                let msg = self.format_message(&String::from_utf8_lossy(text));
                if let Err(e) = self.send(&msg) {
                    // The collector restarted (TCP reset, unix socket re-created): reconnect
                    // and send again once; a second failure is retried from the spool.
                    tracing::warn!("{e:#}; reconnecting");
                    self.transport = None;
                    match self.send(&msg) {
                        Ok(()) => {}
                        Err(e) if e.os_error() == Some(libc::EMSGSIZE) => {
                            first_too_long.get_or_insert(done);
                            too_long.extend_from_slice(text);
                            too_long.push(b'\n');
                        }
                        Err(error) => {
                            self.transport = None;
                            // Resend from the first refused alert: it must reach the
                            // dead-letter file.
                            let done = first_too_long.unwrap_or(done);
                            return Err(SinkError::Retry { done, error });
                        }
                    }
                }
            }
            done += line.len();
        }
        if too_long.is_empty() {
            Ok(())
        } else {
            Err(SinkError::Rejected {
                lines: too_long,
                reason: format!("too long for a datagram to {}", self.endpoint),
            })
        }
    }
}

/// Batched HTTP POST of alerts, `batch` alerts per POST, in order from the sink's spool.
/// A transport error, a `5xx` or a `4xx` about the endpoint (see [`permanent_refusal`]) is
/// retried (with backoff, from the spool); any other `4xx` refuses the batch for good: it goes
/// to the dead-letter file and what follows is sent.
/// Delivery is at-least-once: a crash between a successful POST and the spool position update
/// re-sends that batch (Elasticsearch dedups it: every alert is created with an `_id` derived
/// from its bytes, and a `409` on create counts as delivered).
pub struct HttpSink {
    url: String,
    format: String,
    auth: Option<String>,
    batch: usize,
    agent: ureq::Agent,
}

/// Bytes of alerts handed to a sink in one write at most (besides its batch size).
pub const MAX_WRITE_BYTES: usize = 8 << 20;

/// FNV-1a 64 of an alert line: its Elasticsearch `_id`, stable across retries and restarts.
fn doc_id(line: &[u8]) -> u64 {
    line.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The alert's `@timestamp` as Unix seconds with milliseconds (Splunk HEC `time`).
fn epoch_seconds(alert: &serde_json::Value) -> Option<String> {
    let ts = alert["@timestamp"].as_str()?;
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    Some(format!(
        "{}.{:03}",
        ms.div_euclid(1000),
        ms.rem_euclid(1000)
    ))
}

impl HttpSink {
    /// A sink for `cfg.endpoint`.
    pub fn new(cfg: &HttpSinkConfig) -> Result<Self, SinkFailure> {
        let url = cfg.endpoint.clone();
        let format = cfg.format.clone().unwrap_or_else(|| "ndjson".into());
        if !["ndjson", "es-bulk", "splunk-hec"].contains(&format.as_str()) {
            return Err(SinkFailure::Config(format!(
                "http sink format {format:?}: use ndjson, es-bulk or splunk-hec"
            )));
        }
        let auth = match &cfg.token_env {
            Some(var) => {
                let token = std::env::var(var).map_err(|_| {
                    SinkFailure::Config(format!("http sink: environment variable {var} is not set"))
                })?;
                let scheme = cfg.auth_scheme.clone().unwrap_or_else(|| {
                    if format == "splunk-hec" {
                        "Splunk".into()
                    } else {
                        "Bearer".into()
                    }
                });
                Some(format!("{scheme} {token}"))
            }
            None => None,
        };
        // Redirects are not followed: a POST endpoint that moved is a configuration to fix
        // (and the HTTP client panics on a redirect to a non-HTTP scheme).
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(cfg.timeout.unwrap_or(10)))
            .redirects(0)
            .build();
        Ok(HttpSink {
            url,
            format,
            auth,
            batch: cfg.batch.unwrap_or(500).max(1),
            agent,
        })
    }

    /// A sink POSTing STIX sightings to the TAXII collection `cfg.collection`
    /// ([`super::sighting`]).
    pub fn taxii(cfg: &TaxiiSinkConfig) -> Result<Self, SinkFailure> {
        let scheme = cfg.auth_scheme.clone().unwrap_or_else(|| "Bearer".into());
        let mut sink = HttpSink::new(&HttpSinkConfig {
            endpoint: cfg.collection.clone(),
            format: None,
            token_env: cfg.token_env.clone(),
            auth_scheme: Some(scheme),
            batch: cfg.batch,
            spool_max_bytes: cfg.spool_max_bytes,
            when_full: cfg.when_full,
            timeout: cfg.timeout,
        })
        .map_err(|e| SinkFailure::Config(e.to_string().replace("http sink", "taxii sink")))?;
        sink.format = "taxii".into();
        Ok(sink)
    }

    /// A sink POSTing each line as it is (a sightings batch, [`super::fleet_sightings`]) to
    /// `url` with `token` as a Bearer token.
    pub fn sightings(
        url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, SinkFailure> {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .build();
        Ok(HttpSink {
            url: url.to_string(),
            format: "sightings".into(),
            auth: token.map(|t| format!("Bearer {t}")),
            batch: 1,
            agent,
        })
    }

    fn body(&self, lines: &[&[u8]]) -> Vec<u8> {
        if self.format == "taxii" {
            return super::sighting::envelope(lines).unwrap_or_default();
        }
        let mut body = Vec::new();
        for &line in lines {
            match self.format.as_str() {
                "es-bulk" => {
                    body.extend_from_slice(
                        format!("{{\"create\":{{\"_id\":\"{:016x}\"}}}}\n", doc_id(line))
                            .as_bytes(),
                    );
                    body.extend_from_slice(line);
                }
                "splunk-hec" => {
                    body.push(b'{');
                    let time = serde_json::from_slice::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| epoch_seconds(&v));
                    if let Some(t) = time {
                        body.extend_from_slice(format!("\"time\":{t},").as_bytes());
                    }
                    body.extend_from_slice(b"\"sourcetype\":\"trawl:alert\",\"event\":");
                    body.extend_from_slice(line);
                    body.push(b'}');
                }
                _ => body.extend_from_slice(line),
            }
            body.push(b'\n');
        }
        body
    }

    /// POST one batch. Elasticsearch answers 200 even when some documents failed: those
    /// that may succeed later (429, 5xx) fail the whole batch (retried; the `_id`s make the
    /// retry idempotent); those rejected for good (mapping errors) go to the dead-letter file
    /// rather than blocking the stream forever.
    fn post(&self, lines: &[&[u8]]) -> Result<(), SinkError> {
        let ctype = match self.format.as_str() {
            "splunk-hec" | "sightings" => "application/json",
            "taxii" => feeds::taxii::ACCEPT,
            _ => "application/x-ndjson",
        };
        let body = self.body(lines);
        if body.is_empty() {
            // A TAXII batch without an alert of a STIX indicator: nothing to tell.
            return Ok(());
        }
        let mut req = self.agent.post(&self.url).set("Content-Type", ctype);
        if self.format == "taxii" {
            req = req.set("Accept", ctype);
        }
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        let resp = match req.send_bytes(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) if permanent_refusal(code) => {
                let detail: String = r
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                return Err(SinkError::Rejected {
                    lines: lines
                        .iter()
                        .flat_map(|l| [*l, b"\n"])
                        .flatten()
                        .copied()
                        .collect(),
                    reason: format!("POST {} answered {code}: {}", self.url, detail.trim()),
                });
            }
            Err(e) => return Err(SinkFailure::Http(format!("POST {}: {e}", self.url)).into()),
        };
        if resp.status() >= 300 {
            let to = resp.header("location").unwrap_or("nowhere").to_string();
            return Err(SinkFailure::Http(format!(
                "POST {} answered {} (to {to}): redirects are not followed, set endpoint to the final URL",
                self.url,
                resp.status()
            ))
            .into());
        }
        if self.format == "taxii" {
            return taxii_status(resp, &self.url, lines);
        }
        if self.format != "es-bulk" {
            return Ok(());
        }
        let text = resp.into_string().unwrap_or_default();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Ok(());
        };
        if v["errors"] != serde_json::Value::Bool(true) {
            return Ok(());
        }
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let mut rejected = Vec::new();
        let mut reason = String::new();
        for (i, item) in items.iter().enumerate() {
            let r = item
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or_default();
            let status = r["status"].as_u64().unwrap_or(0);
            match status {
                200..=299 | 409 => {}
                429 | 500..=599 | 0 => {
                    return Err(SinkFailure::Http(format!(
                        "POST {}: bulk item {i} failed with {status}: {}",
                        self.url, r["error"]
                    ))
                    .into())
                }
                _ => {
                    if reason.is_empty() {
                        reason = format!("bulk item refused ({status}): {}", r["error"]);
                    }
                    if let Some(l) = lines.get(i) {
                        rejected.extend_from_slice(l);
                        rejected.push(b'\n');
                    }
                }
            }
        }
        if rejected.is_empty() {
            return Ok(());
        }
        Err(SinkError::Rejected {
            lines: rejected,
            reason,
        })
    }
}

/// A TAXII status resource: objects the server refused go (with the batch's alerts, which
/// were folded into them) to the dead-letter file; the rest counts as delivered.
fn taxii_status(resp: ureq::Response, url: &str, lines: &[&[u8]]) -> Result<(), SinkError> {
    let status: serde_json::Value =
        serde_json::from_str(&resp.into_string().unwrap_or_default()).unwrap_or_default();
    if status["failure_count"].as_u64().unwrap_or(0) == 0 {
        return Ok(());
    }
    let why = status["failures"][0]["message"]
        .as_str()
        .unwrap_or("no reason given");
    Err(SinkError::Rejected {
        lines: lines
            .iter()
            .flat_map(|l| [*l, b"\n"])
            .flatten()
            .copied()
            .collect(),
        reason: format!("POST {url}: the TAXII server refused sightings: {why}"),
    })
}

/// An HTTP status that refuses the batch itself, which retrying cannot change: a 4xx other
/// than those about the endpoint or the moment (401/403 credentials, 404 wrong URL, 407
/// proxy, 408 timeout, 429 rate limit), which are retried from the spool until fixed.
fn permanent_refusal(code: u16) -> bool {
    (400..500).contains(&code) && ![401, 403, 404, 407, 408, 429].contains(&code)
}

impl Sink for HttpSink {
    fn name(&self) -> String {
        format!("http:{}", self.url)
    }
    fn batch_lines(&self) -> usize {
        self.batch
    }
    fn write(&mut self, lines: &[u8]) -> Result<(), SinkError> {
        let lines: Vec<&[u8]> = lines
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        self.post(&lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        // The feeds' grammar: `refresh = "1w"` and `suppress = "1w"` mean the same.
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        assert_eq!(
            parse_duration("2 weeks").unwrap(),
            Duration::from_secs(1_209_600)
        );
        assert!(parse_duration("5 fortnights").is_err());
        assert!(
            parse_duration("99999999999999999d").is_err(),
            "overflow is an error, not a panic"
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn jsonl_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = JsonlSink::open(path.clone(), Some(20), None).unwrap();
        s.write(b"{\"n\":1,\"pad\":\"xx\"}\n").unwrap();
        s.write(b"{\"n\":2,\"pad\":\"xx\"}\n").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"n\":2,\"pad\":\"xx\"}\n"
        );
    }

    #[test]
    fn an_alert_too_long_for_a_datagram_is_refused_for_good_and_the_others_are_sent() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let mut s = SyslogSink::new(&format!("udp://{addr}")).unwrap();
        let big = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(70_000));
        let batch = format!("{{\"n\":1}}\n{big}{{\"n\":3}}\n");
        match s.write(batch.as_bytes()) {
            Err(SinkError::Rejected { lines, .. }) => assert_eq!(lines, big.as_bytes()),
            other => panic!("{other:?}"),
        }
        let mut buf = vec![0u8; 70_000];
        for want in ["{\"n\":1}", "{\"n\":3}"] {
            let n = server.recv(&mut buf).unwrap();
            let msg = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(msg.ends_with(want), "{msg}");
        }
    }

    #[test]
    fn http_statuses_about_the_batch_are_final_those_about_the_endpoint_are_retried() {
        for code in [400, 413, 422] {
            assert!(permanent_refusal(code), "{code}");
        }
        for code in [200, 401, 403, 404, 407, 408, 429, 500, 503] {
            assert!(!permanent_refusal(code), "{code}");
        }
    }

    #[test]
    fn syslog_udp_message_is_rfc5424() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let mut s = SyslogSink::new(&format!("udp://{addr}")).unwrap();
        s.write(b"{\"trawl\":{\"severity\":\"high\"}}\n").unwrap();
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(msg.starts_with("<130>1 "), "{msg}");
        assert!(msg.contains(" trawl "), "{msg}");
        assert!(
            msg.ends_with("{\"trawl\":{\"severity\":\"high\"}}"),
            "{msg}"
        );
    }
}
