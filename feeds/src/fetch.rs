//! Getting a feed's bytes: local files, and HTTP(S) with conditional GET (ETag /
//! Last-Modified), timeouts, retries with backoff, an auth header from the environment,
//! and gzip / zip bodies.

use crate::config::{FeedConfig, SourceLocation};
use crate::Progress;
use std::io::Read;
use std::time::Duration;

/// Decompressed bodies larger than this are refused (zip bombs).
pub const MAX_BODY: u64 = 4 << 30;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Reading a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server answered with an error status.
    #[error("HTTP {status} from {url}")]
    Status {
        /// The status code.
        status: u16,
        /// The URL.
        url: String,
    },
    /// Connection, TLS or timeout error.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The auth header names an environment variable that is not set.
    #[error("auth_header: environment variable {0} is not set")]
    MissingEnv(String),
    /// The body could not be decompressed.
    #[error("decompressing: {0}")]
    Decompress(String),
}

/// Validators from the previous successful fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// `ETag` to send as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified` to send as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// The result of a fetch.
#[derive(Debug)]
pub enum Fetched {
    /// New content.
    Body {
        /// Decompressed bytes.
        bytes: Vec<u8>,
        /// New validators.
        validators: Validators,
    },
    /// The server said 304 Not Modified.
    NotModified,
}

/// Expand `${VAR}` references from the environment.
pub fn expand_env(s: &str) -> Result<String, FetchError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[p..]);
            return Ok(out);
        };
        let var = &after[..end];
        let val = std::env::var(var).map_err(|_| FetchError::MissingEnv(var.to_string()))?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Decompress gzip (also concatenated members) and zip (all files concatenated) bodies,
/// recognised by their magic bytes; anything else is returned as is.
pub fn decompress(bytes: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(MAX_BODY)
            .read_to_end(&mut out)
            .map_err(|e| FetchError::Decompress(format!("gzip: {e}")))?;
        return Ok(out);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..]))
            .map_err(|e| FetchError::Decompress(format!("zip: {e}")))?;
        let mut out = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip
                .by_index(i)
                .map_err(|e| FetchError::Decompress(format!("zip: {e}")))?;
            if f.is_dir() {
                continue;
            }
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            let budget = MAX_BODY.saturating_sub(out.len() as u64);
            (&mut f)
                .take(budget)
                .read_to_end(&mut out)
                .map_err(|e| FetchError::Decompress(format!("zip: {e}")))?;
        }
        return Ok(out);
    }
    Ok(bytes)
}

/// Read a local feed file (decompressing `.gz`/`.zip` content).
pub fn read_file(
    path: &std::path::Path,
    name: &str,
    progress: &dyn Progress,
) -> Result<Vec<u8>, FetchError> {
    let io = |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    progress.feed_started(name, Some(len));
    let bytes = std::fs::read(path).map_err(io)?;
    progress.feed_bytes(name, bytes.len() as u64);
    decompress(bytes)
}

/// Fetch a feed from its location. `validators` are sent for a conditional GET (pass
/// `None` to force a full download).
pub fn fetch(
    feed: &FeedConfig,
    location: &SourceLocation,
    validators: Option<&Validators>,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    let url = match location {
        SourceLocation::File(p) => {
            return Ok(Fetched::Body {
                bytes: read_file(p, &feed.name, progress)?,
                validators: Validators::default(),
            })
        }
        SourceLocation::Http(u) => u,
    };
    let timeout = feed.timeout.map_or(Duration::from_secs(30), |d| d.0);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")))
        .build();
    let auth = match &feed.auth_header {
        Some(h) => {
            let h = expand_env(h)?;
            match h.split_once(':') {
                Some((k, v)) => Some((k.trim().to_string(), v.trim().to_string())),
                None => Some(("Authorization".to_string(), h.trim().to_string())),
            }
        }
        None => None,
    };
    let retries = feed.retries.unwrap_or(2);
    let mut attempt = 0;
    loop {
        let mut req = agent.get(url).set("Accept-Encoding", "gzip");
        if let Some(v) = validators {
            if let Some(e) = &v.etag {
                req = req.set("If-None-Match", e);
            }
            if let Some(m) = &v.last_modified {
                req = req.set("If-Modified-Since", m);
            }
        }
        if let Some((k, v)) = &auth {
            req = req.set(k, v);
        }
        let result = req.call();
        let retry_err = match result {
            Ok(resp) if resp.status() == 304 => return Ok(Fetched::NotModified),
            Ok(resp) => return read_response(resp, url, &feed.name, progress),
            Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 => FetchError::Status {
                status: code,
                url: url.clone(),
            },
            Err(ureq::Error::Status(code, _)) => {
                return Err(FetchError::Status {
                    status: code,
                    url: url.clone(),
                })
            }
            Err(ureq::Error::Transport(t)) => FetchError::Transport {
                url: url.clone(),
                reason: t.to_string(),
            },
        };
        if attempt >= retries {
            return Err(retry_err);
        }
        std::thread::sleep(Duration::from_millis(500u64 << attempt.min(4)));
        attempt += 1;
    }
}

fn read_response(
    resp: ureq::Response,
    url: &str,
    name: &str,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    let validators = Validators {
        etag: resp.header("ETag").map(str::to_string),
        last_modified: resp.header("Last-Modified").map(str::to_string),
    };
    let total = resp.header("Content-Length").and_then(|l| l.parse().ok());
    progress.feed_started(name, total);
    let mut reader = resp.into_reader().take(MAX_BODY);
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 28) as usize);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| FetchError::Transport {
            url: url.to_string(),
            reason: format!("reading body: {e}"),
        })?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        progress.feed_bytes(name, n as u64);
    }
    Ok(Fetched::Body {
        bytes: decompress(bytes)?,
        validators,
    })
}
