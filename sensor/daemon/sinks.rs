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
        let mut target = self.path.clone().into_os_string();
        target.push(format!(".{stamp}"));
        self.file.sync_all().ok();
        std::fs::rename(&self.path, &target)
            .with_context(|| format!("rotating {}", self.path.display()))?;
        *self = JsonlSink::open(self.path.clone(), self.max_bytes, self.max_age)?;
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
        if self
            .max_bytes
            .is_some_and(|m| self.size > 0 && self.size + lines.len() as u64 > m)
        {
            self.rotate()?;
        }
        self.file
            .write_all(lines)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.size += lines.len() as u64;
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

impl SyslogSink {
    /// Connect to `udp://host:port`, `tcp://host:port` or `unix:///path`.
    pub fn connect(endpoint: &str) -> Result<Self> {
        let transport = if let Some(addr) = endpoint.strip_prefix("udp://") {
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
            bail!("syslog endpoint {endpoint:?}: use udp://host:port, tcp://host:port or unix:///dev/log");
        };
        let hostname = std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "-".into());
        Ok(SyslogSink {
            endpoint: endpoint.to_string(),
            transport,
            hostname: if hostname.is_empty() {
                "-".into()
            } else {
                hostname
            },
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
}

impl Sink for SyslogSink {
    fn name(&self) -> String {
        format!("syslog:{}", self.endpoint)
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let msg = self.format_message(&String::from_utf8_lossy(line));
            match &mut self.transport {
                SyslogTransport::Udp(sock, addr) => {
                    sock.send_to(msg.as_bytes(), addr.as_str())?;
                }
                SyslogTransport::Tcp(stream) => {
                    write!(stream, "{} {}", msg.len(), msg)?;
                }
                SyslogTransport::Unix(sock) => {
                    sock.send(msg.as_bytes())?;
                }
            }
        }
        if let SyslogTransport::Tcp(stream) = &mut self.transport {
            stream.flush()?;
        }
        Ok(())
    }
}

/// Batched HTTP POST of alerts with retries and an on-disk spool.
///
/// Every write is appended to the spool (fsynced) first, then the spool is delivered in order;
/// while the endpoint is down the spool grows up to `spool_max_bytes` (beyond that `write`
/// fails, which stops the daemon from checkpointing: backpressure, not loss). Delivery is
/// at-least-once: a crash between a successful POST and the spool truncation re-sends that batch.
pub struct HttpSink {
    url: String,
    format: String,
    token: Option<String>,
    batch: usize,
    spool: PathBuf,
    spool_max: u64,
    agent: ureq::Agent,
    backoff: Duration,
    next_try: Instant,
    /// Alerts delivered so far.
    pub delivered: u64,
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
        let token = match &cfg.token_env {
            Some(var) => Some(
                std::env::var(var)
                    .with_context(|| format!("http sink: environment variable {var} is not set"))?,
            ),
            None => None,
        };
        std::fs::create_dir_all(spool_dir)
            .with_context(|| format!("creating {}", spool_dir.display()))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(cfg.timeout.unwrap_or(10)))
            .build();
        Ok(HttpSink {
            url,
            format,
            token,
            batch: cfg.batch.unwrap_or(500).max(1),
            spool: spool_dir.join("spool.jsonl"),
            spool_max: cfg.spool_max_bytes.unwrap_or(1 << 30),
            agent,
            backoff: Duration::from_millis(200),
            next_try: Instant::now(),
            delivered: 0,
        })
    }

    fn body(&self, lines: &[&str]) -> String {
        let mut body = String::new();
        for line in lines {
            match self.format.as_str() {
                "es-bulk" => {
                    body.push_str("{\"create\":{}}\n");
                    body.push_str(line);
                }
                "splunk-hec" => {
                    body.push_str("{\"sourcetype\":\"trawl:alert\",\"event\":");
                    body.push_str(line);
                    body.push('}');
                }
                _ => body.push_str(line),
            }
            body.push('\n');
        }
        body
    }

    fn post(&self, body: &str) -> Result<()> {
        let ctype = if self.format == "splunk-hec" {
            "application/json"
        } else {
            "application/x-ndjson"
        };
        let mut req = self.agent.post(&self.url).set("Content-Type", ctype);
        if let Some(t) = &self.token {
            let scheme = if self.format == "splunk-hec" {
                "Splunk"
            } else {
                "Bearer"
            };
            req = req.set("Authorization", &format!("{scheme} {t}"));
        }
        match req.send_string(body) {
            Ok(_) => Ok(()),
            Err(e) => bail!("POST {}: {e}", self.url),
        }
    }

    /// Deliver the spool in order; stop at the first failure (kept for the next try).
    fn drain(&mut self) -> Result<()> {
        if Instant::now() < self.next_try {
            return Ok(());
        }
        let Ok(file) = File::open(&self.spool) else {
            return Ok(());
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .context("reading the http spool")?;
        let mut sent = 0;
        while sent < lines.len() {
            let end = (sent + self.batch).min(lines.len());
            let chunk: Vec<&str> = lines[sent..end].iter().map(String::as_str).collect();
            if let Err(e) = self.post(&self.body(&chunk)) {
                tracing::warn!("http sink: {e:#}; retrying in {:?}", self.backoff);
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
                self.rewrite_spool(&lines[sent..])?;
                return Ok(());
            }
            sent = end;
            self.delivered += chunk.len() as u64;
        }
        self.backoff = Duration::from_millis(200);
        std::fs::remove_file(&self.spool).ok();
        Ok(())
    }

    fn rewrite_spool(&self, rest: &[String]) -> Result<()> {
        let tmp = self.spool.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            for l in rest {
                f.write_all(l.as_bytes())?;
                f.write_all(b"\n")?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.spool)?;
        Ok(())
    }
}

impl Sink for HttpSink {
    fn name(&self) -> String {
        format!("http:{}", self.url)
    }
    fn write(&mut self, lines: &[u8]) -> Result<()> {
        if !lines.is_empty() {
            let size = std::fs::metadata(&self.spool).map(|m| m.len()).unwrap_or(0);
            if size + lines.len() as u64 > self.spool_max {
                self.drain()?;
                let size = std::fs::metadata(&self.spool).map(|m| m.len()).unwrap_or(0);
                if size + lines.len() as u64 > self.spool_max {
                    bail!(
                        "http sink {}: endpoint down and spool full ({} bytes)",
                        self.url,
                        size
                    );
                }
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
