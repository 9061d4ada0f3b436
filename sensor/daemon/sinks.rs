//! Alert sinks of the daemon: jsonl file (rotation), stdout, syslog (RFC 5424), HTTP (batched
//! POST with retries and a bounded on-disk spool).
//!
//! A sink's `write` returns only once the alerts are durable in the sink's sense (written and
//! flushed to the file, sent on the socket, POSTed or spooled to disk and fsynced): the daemon
//! checkpoints the input position after every sink has returned, so no alert is lost on a crash.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// One `[[sink]]` table of trawl.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `jsonl`, `stdout`, `syslog` or `http`.
    pub kind: String,
    /// jsonl: the file alerts are appended to.
    pub path: Option<PathBuf>,
    /// jsonl: rotate when the file reaches this many bytes (e.g. 104857600).
    pub max_bytes: Option<u64>,
    /// jsonl: rotate after this long (`1h`, `1d`).
    pub rotate: Option<String>,
    /// syslog: `udp://host:514`, `tcp://host:601` or `unix:///dev/log`; http: the URL.
    pub endpoint: Option<String>,
    /// http: `ndjson` (default), `es-bulk` (Elasticsearch `_bulk`) or `splunk-hec`.
    pub format: Option<String>,
    /// http: name of the environment variable holding the token (`Authorization` header:
    /// `Bearer` for ndjson/es-bulk, `Splunk` for splunk-hec).
    pub token_env: Option<String>,
    /// http: `Authorization` scheme before the token (default `Bearer`, `Splunk` for
    /// splunk-hec; e.g. `ApiKey` for an Elasticsearch API key).
    pub auth_scheme: Option<String>,
    /// http: alerts per POST (default 500).
    pub batch: Option<usize>,
    /// http: maximum bytes spooled on disk while the endpoint is down (default 1 GiB).
    pub spool_max_bytes: Option<u64>,
    /// http: request timeout in seconds (default 10).
    pub timeout: Option<u64>,
}

/// An alert destination.
pub trait Sink: Send {
    /// Human name for logs and metrics (`jsonl:/var/log/trawl/alerts.jsonl`).
    fn name(&self) -> String;
    /// Deliver JSON lines (each ending in `\n`); durable when this returns Ok.
    fn write(&mut self, lines: &[u8]) -> Result<()>;
    /// Periodic work (retries of spooled data, time-based rotation).
    fn tick(&mut self) -> Result<()> {
        Ok(())
    }
    /// Flush everything before shutdown.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Parse `30s`, `5m`, `1h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let unit_secs: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("bad duration {s:?}: use s, m, h or d"),
    };
    let secs = n
        .checked_mul(unit_secs)
        .with_context(|| format!("duration {s:?} is too long"))?;
    Ok(Duration::from_secs(secs))
}

/// Build the sink a table describes; `spool_dir` is where HTTP sinks keep undelivered alerts.
pub fn build_sink(cfg: &SinkConfig, spool_dir: &Path, index: usize) -> Result<Box<dyn Sink>> {
    Ok(match cfg.kind.as_str() {
        "stdout" => Box::new(StdoutSink),
        "jsonl" => {
            let path = cfg
                .path
                .clone()
                .context("[[sink]] kind = \"jsonl\" needs path = \"...\"")?;
            Box::new(JsonlSink::open(
                path,
                cfg.max_bytes,
                cfg.rotate.as_deref().map(parse_duration).transpose()?,
            )?)
        }
        "syslog" => Box::new(SyslogSink::connect(
            cfg.endpoint.as_deref().unwrap_or("unix:///dev/log"),
        )?),
        "http" => Box::new(HttpSink::new(
            cfg,
            &spool_dir.join(format!("http-{index}")),
        )?),
        other => bail!("unknown [[sink]] kind {other:?}: use jsonl, stdout, syslog or http"),
    })
}

/// Writes alerts to stdout.
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn name(&self) -> String {
        "stdout".into()
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(lines)?;
        out.flush()?;
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
    /// Open (append) the file, creating its directory.
    pub fn open(path: PathBuf, max_bytes: Option<u64>, max_age: Option<Duration>) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
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

    fn rotate(&mut self) -> Result<()> {
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
            .with_context(|| format!("rotating {}", self.path.display()))?;
        *self = JsonlSink::open(self.path.clone(), self.max_bytes, self.max_age)?;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
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
                            self.file.sync_data().ok();
                            self.rotate()?;
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
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
    fn tick(&mut self) -> Result<()> {
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
    transport: SyslogTransport,
    hostname: String,
}

fn syslog_transport(endpoint: &str) -> Result<SyslogTransport> {
    Ok(if let Some(addr) = endpoint.strip_prefix("udp://") {
        let sock = UdpSocket::bind(if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })?;
        SyslogTransport::Udp(sock, addr.to_string())
    } else if let Some(addr) = endpoint.strip_prefix("tcp://") {
        SyslogTransport::Tcp(
            TcpStream::connect(addr).with_context(|| format!("connecting to {endpoint}"))?,
        )
    } else if let Some(path) = endpoint.strip_prefix("unix://") {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        sock.connect(path)
            .with_context(|| format!("connecting to {endpoint}"))?;
        SyslogTransport::Unix(sock)
    } else {
        bail!(
            "syslog endpoint {endpoint:?}: use udp://host:port, tcp://host:port or unix:///dev/log"
        );
    })
}

/// The host name for the HOSTNAME field: printable ASCII without spaces, at most 255 bytes
/// (RFC 5424 §6.2.4), or `-`.
fn syslog_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let h: String = raw
        .trim()
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
    /// Connect to `udp://host:port`, `tcp://host:port` or `unix:///path`.
    pub fn connect(endpoint: &str) -> Result<Self> {
        Ok(SyslogSink {
            endpoint: endpoint.to_string(),
            transport: syslog_transport(endpoint)?,
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

    fn send(&mut self, msg: &str) -> std::io::Result<()> {
        match &mut self.transport {
            SyslogTransport::Udp(sock, addr) => {
                sock.send_to(msg.as_bytes(), addr.as_str()).map(drop)
            }
            SyslogTransport::Tcp(stream) => write!(stream, "{} {}", msg.len(), msg),
            SyslogTransport::Unix(sock) => sock.send(msg.as_bytes()).map(drop),
        }
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> String {
        format!("syslog:{}", self.endpoint)
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let msg = self.format_message(&String::from_utf8_lossy(line));
            if let Err(e) = self.send(&msg) {
                // The collector restarted (TCP reset, unix socket re-created): reconnect and
                // send again once; a second failure goes back to the daemon, which retries.
                tracing::warn!("syslog {}: {e}; reconnecting", self.endpoint);
                self.transport = syslog_transport(&self.endpoint)?;
                self.send(&msg)
                    .with_context(|| format!("sending to {}", self.endpoint))?;
            }
        }
        if let SyslogTransport::Tcp(stream) = &mut self.transport {
            stream.flush()?;
        }
        Ok(())
    }
}

/// Batched HTTP POST of alerts with retries and a bounded on-disk spool.
///
/// Every write is appended to the spool (`spool.jsonl`, fsynced) first, then the spool is
/// delivered in order from the position in `spool.pos`, `batch` alerts per POST, streaming (the
/// spool is never read into memory whole). While the endpoint is down, POSTs are retried with
/// exponential backoff (200 ms doubling to 30 s) and the undelivered part of the spool grows up
/// to `spool_max_bytes`; beyond that `write` fails, so the daemon stops acknowledging input:
/// backpressure, not loss (an empty spool takes one write whole even above the bound, so a
/// batch bigger than the bound cannot wedge the sink). Delivery is at-least-once: a crash between a successful POST and
/// the position update re-sends that batch (Elasticsearch dedups it: every alert is created
/// with an `_id` derived from its bytes, and a `409` on create counts as delivered).
pub struct HttpSink {
    url: String,
    format: String,
    auth: Option<String>,
    batch: usize,
    spool: PathBuf,
    pos_path: PathBuf,
    rejected: PathBuf,
    spool_max: u64,
    agent: ureq::Agent,
    backoff: Duration,
    next_try: Instant,
    /// Alerts delivered so far.
    pub delivered: u64,
}

/// Bytes of one POST body at most (besides `batch`).
const HTTP_MAX_BODY: usize = 8 << 20;

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
    /// A sink for `cfg.endpoint`, spooling into `spool_dir`.
    pub fn new(cfg: &SinkConfig, spool_dir: &Path) -> Result<Self> {
        let url = cfg
            .endpoint
            .clone()
            .context("[[sink]] kind = \"http\" needs endpoint = \"http(s)://...\"")?;
        let format = cfg.format.clone().unwrap_or_else(|| "ndjson".into());
        if !["ndjson", "es-bulk", "splunk-hec"].contains(&format.as_str()) {
            bail!("http sink format {format:?}: use ndjson, es-bulk or splunk-hec");
        }
        let auth = match &cfg.token_env {
            Some(var) => {
                let token = std::env::var(var)
                    .with_context(|| format!("http sink: environment variable {var} is not set"))?;
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
        std::fs::create_dir_all(spool_dir)
            .with_context(|| format!("creating {}", spool_dir.display()))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(cfg.timeout.unwrap_or(10)))
            .build();
        let sink = HttpSink {
            url,
            format,
            auth,
            batch: cfg.batch.unwrap_or(500).max(1),
            spool: spool_dir.join("spool.jsonl"),
            pos_path: spool_dir.join("spool.pos"),
            rejected: spool_dir.join("rejected.jsonl"),
            spool_max: cfg.spool_max_bytes.unwrap_or(1 << 30),
            agent,
            backoff: Duration::from_millis(200),
            next_try: Instant::now(),
            delivered: 0,
        };
        sink.repair_spool()?;
        Ok(sink)
    }

    /// A crash in the middle of an append leaves a partial last line: cut it (its input was
    /// not acknowledged, so it is read again).
    fn repair_spool(&self) -> Result<()> {
        let Ok(bytes) = std::fs::read(&self.spool) else {
            return Ok(());
        };
        let keep = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        if keep < bytes.len() {
            tracing::warn!(
                "http spool {}: cutting {} bytes of a partial line",
                self.spool.display(),
                bytes.len() - keep
            );
            let f = OpenOptions::new().write(true).open(&self.spool)?;
            f.set_len(keep as u64)?;
            f.sync_all()?;
        }
        Ok(())
    }

    fn pos(&self) -> u64 {
        std::fs::read_to_string(&self.pos_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn set_pos(&self, pos: u64) -> Result<()> {
        let tmp = self.pos_path.with_extension("pos.tmp");
        std::fs::write(&tmp, pos.to_string())?;
        std::fs::rename(&tmp, &self.pos_path)?;
        Ok(())
    }

    /// Bytes spooled and not yet delivered.
    pub fn pending_bytes(&self) -> u64 {
        let len = std::fs::metadata(&self.spool).map(|m| m.len()).unwrap_or(0);
        len.saturating_sub(self.pos())
    }

    fn body(&self, lines: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for line in lines {
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
    /// retry idempotent); those rejected for good (mapping errors) go to `rejected.jsonl`
    /// beside the spool rather than blocking the stream forever.
    fn post(&self, lines: &[Vec<u8>]) -> Result<()> {
        let ctype = if self.format == "splunk-hec" {
            "application/json"
        } else {
            "application/x-ndjson"
        };
        let mut req = self.agent.post(&self.url).set("Content-Type", ctype);
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        let resp = match req.send_bytes(&self.body(lines)) {
            Ok(r) => r,
            Err(e) => bail!("POST {}: {e}", self.url),
        };
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
                    bail!(
                        "POST {}: bulk item {i} failed with {status}: {}",
                        self.url,
                        r["error"]
                    )
                }
                _ => {
                    tracing::warn!(
                        "http sink {}: alert rejected ({status}): {}; kept in {}",
                        self.url,
                        r["error"],
                        self.rejected.display()
                    );
                    if let Some(l) = lines.get(i) {
                        rejected.extend_from_slice(l);
                        rejected.push(b'\n');
                    }
                }
            }
        }
        if !rejected.is_empty() {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.rejected)?;
            f.write_all(&rejected)?;
            f.sync_data()?;
        }
        Ok(())
    }

    /// Deliver the spool in order; stop at the first failure (kept for the next try).
    fn drain(&mut self) -> Result<()> {
        if Instant::now() < self.next_try {
            return Ok(());
        }
        let Ok(file) = File::open(&self.spool) else {
            return Ok(());
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut pos = self.pos().min(len);
        let mut reader = BufReader::new(file);
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(pos))
            .context("reading the http spool")?;
        loop {
            let mut lines = Vec::new();
            let mut bytes = 0usize;
            while lines.len() < self.batch && bytes < HTTP_MAX_BODY {
                let mut line = Vec::new();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .context("reading the http spool")?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                bytes += n;
                line.pop();
                lines.push(line);
            }
            if lines.is_empty() {
                break;
            }
            if let Err(e) = self.post(&lines) {
                tracing::warn!("http sink: {e:#}; retrying in {:?}", self.backoff);
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
                return Ok(());
            }
            pos += bytes as u64;
            self.set_pos(pos)?;
            self.delivered += lines.len() as u64;
        }
        self.backoff = Duration::from_millis(200);
        if pos >= len {
            // Everything delivered: start an empty spool. The position goes first: a crash
            // in between re-sends (duplicates), never skips.
            std::fs::remove_file(&self.pos_path).ok();
            std::fs::remove_file(&self.spool).ok();
        }
        Ok(())
    }
}

impl Sink for HttpSink {
    fn name(&self) -> String {
        format!("http:{}", self.url)
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        if !lines.is_empty() {
            if self.pending_bytes() + lines.len() as u64 > self.spool_max {
                self.drain()?;
                let pending = self.pending_bytes();
                // An empty spool takes any one write whole (a batch larger than the bound
                // would otherwise never fit).
                if pending > 0 && pending + lines.len() as u64 > self.spool_max {
                    bail!(
                        "http sink {}: endpoint down and spool full ({pending} bytes undelivered, spool_max_bytes = {})",
                        self.url,
                        self.spool_max
                    );
                }
            }
            if self.pos() > 0 && self.pos() >= self.spool_max / 2 {
                self.compact()?;
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.spool)
                .with_context(|| format!("opening {}", self.spool.display()))?;
            f.write_all(lines)?;
            f.sync_data()?;
        }
        self.drain()
    }
    fn tick(&mut self) -> Result<()> {
        self.drain()
    }
    fn close(&mut self) -> Result<()> {
        self.next_try = Instant::now();
        self.drain()
    }
}

impl HttpSink {
    /// Drop the delivered head of a spool that never drains completely (the endpoint keeps
    /// up only partly), so the file on disk stays within `spool_max_bytes` too.
    fn compact(&self) -> Result<()> {
        let pos = self.pos();
        let mut src = File::open(&self.spool)?;
        std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(pos))?;
        let tmp = self.spool.with_extension("tmp");
        {
            let mut dst = File::create(&tmp)?;
            std::io::copy(&mut src, &mut dst)?;
            dst.sync_all()?;
        }
        // Position 0 first: a crash before the rename re-sends the head, never skips.
        self.set_pos(0)?;
        std::fs::rename(&tmp, &self.spool)?;
        Ok(())
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
        assert!(parse_duration("5 weeks").is_err());
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
    fn syslog_udp_message_is_rfc5424() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let mut s = SyslogSink::connect(&format!("udp://{addr}")).unwrap();
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
