//! Getting a feed's bytes: local files, and HTTP(S) with conditional GET (ETag /
//! Last-Modified), timeouts, retries with backoff, redirects (http(s) only, bounded), an auth
//! header from the environment, and gzip / zip bodies, all under a size cap. A body past
//! the [`Spool`]'s threshold is written to an unnamed file of `DATA/tmp` and mapped, never
//! held in memory (ARCHITECTURE.md §2.1.1).

use crate::config::{FeedConfig, SourceLocation};
use crate::Progress;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default cap on a feed's body, raw and decompressed (a feed's `max_bytes` changes it).
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// Redirects followed for one fetch; one more is a failure (loops end here).
pub const MAX_REDIRECTS: u32 = 5;

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
    /// A local source that is a device, a directory or a socket.
    #[error("{path}: not a regular file ({kind})")]
    NotAFile {
        /// The path.
        path: String,
        /// What it is instead.
        kind: &'static str,
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
    /// A redirect that is not followed: not to http(s), malformed, or one too many.
    #[error("{url}: {reason}")]
    Redirect {
        /// The URL that redirected.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The body, raw or decompressed, is larger than the feed's `max_bytes`.
    #[error("{origin}: body larger than max_bytes = {limit} bytes (decompressed)")]
    TooLarge {
        /// The file or URL.
        origin: String,
        /// The cap.
        limit: u64,
    },
    /// The auth header names an environment variable that is not set.
    #[error("auth_header: environment variable {0} is not set")]
    MissingEnv(String),
    /// The body could not be decompressed.
    #[error("decompressing: {0}")]
    Decompress(String),
    /// A large body could not be written to the spool directory (`DATA/tmp`).
    #[error("{origin}: spooling the body to {dir}: {reason}")]
    Spool {
        /// The file or URL.
        origin: String,
        /// The spool directory.
        dir: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A feed's TLS file (`tls_client_cert`, `tls_client_key`, `tls_ca`) is unusable.
    #[error("{key} {path}: {reason}")]
    Tls {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// The TLS settings of a feed's HTTPS requests, when it has any of its own: the client
/// certificate and key it presents, and the CA its servers must chain to (else the built-in
/// public roots). `None`: ureq's defaults.
pub fn tls_config(feed: &FeedConfig) -> Result<Option<Arc<rustls::ClientConfig>>, FetchError> {
    if feed.tls_client_cert.is_none() && feed.tls_client_key.is_none() && feed.tls_ca.is_none() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    match &feed.tls_ca {
        Some(ca) => {
            for c in pem_certs("tls_ca", ca)? {
                roots
                    .add(c)
                    .map_err(|e| tls_err("tls_ca", ca, format!("not a CA certificate: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FetchError::Transport {
        url: feed.source.clone(),
        reason: format!("TLS setup: {e}"),
    })?
    .with_root_certificates(roots);
    let config = match (&feed.tls_client_cert, &feed.tls_client_key) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs("tls_client_cert", cert)?;
            let private = pem_key(key)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                tls_err(
                    "tls_client_key",
                    key,
                    format!("does not go with tls_client_cert {}: {e}", cert.display()),
                )
            })?
        }
        (Some(p), None) => {
            return Err(tls_err(
                "tls_client_key",
                p,
                "missing: tls_client_cert needs its key".into(),
            ))
        }
        (None, Some(p)) => {
            return Err(tls_err(
                "tls_client_cert",
                p,
                "missing: tls_client_key needs its certificate".into(),
            ))
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

fn tls_err(key: &'static str, path: &Path, reason: String) -> FetchError {
    FetchError::Tls {
        key,
        path: path.display().to_string(),
        reason,
    }
}

/// A TLS file, small by nature: more than 1 MiB is not one.
fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, FetchError> {
    let bytes =
        std::fs::read(path).map_err(|e| tls_err(key, path, format!("cannot be read: {e}")))?;
    if bytes.len() > 1 << 20 {
        return Err(tls_err(
            key,
            path,
            "larger than 1 MiB: not a PEM file".into(),
        ));
    }
    Ok(bytes)
}

fn pem_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, FetchError> {
    let bytes = read_pem(key, path)?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(key, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(
            key,
            path,
            "holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn pem_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, FetchError> {
    let key = "tls_client_key";
    let bytes = read_pem(key, path)?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| tls_err(key, path, format!("not PEM: {e}")))?
        .ok_or_else(|| {
            tls_err(
                key,
                path,
                "holds no private key (expected PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                    .into(),
            )
        })
}

/// Validators from the previous successful fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// `ETag` to send as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified` to send as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// The result of a fetch: the body as `B` ([`fetch`]: a `Vec<u8>`; [`fetch_spooled`]: a
/// [`Body`]).
#[derive(Debug)]
pub enum Fetched<B = Vec<u8>> {
    /// New content.
    Body {
        /// Decompressed bytes.
        bytes: B,
        /// New validators.
        validators: Validators,
    },
    /// The server said 304 Not Modified.
    NotModified,
}

/// Bodies up to this many bytes stay in memory; larger ones go to the spool's file.
pub const SPOOL_THRESHOLD: u64 = 8 << 20;

/// Bytes of fetched bodies spooled at once (every feed of an update together), unless a
/// [`Spool`] says otherwise: a few bodies of the default `max_bytes`.
pub const DEFAULT_SPOOL_DISK: u64 = 4 * DEFAULT_MAX_BYTES;

/// Bytes in spool files now, in this process (what [`Spool::disk`] bounds).
static SPOOLED: AtomicU64 = AtomicU64::new(0);

/// Where a fetched body goes once it is larger than `threshold`: an unnamed file of `dir`
/// (gone when closed, and after a crash: nothing to clean up at start-up), mapped for the
/// parse, so a large feed never sits in memory. At most `disk` bytes of such files exist
/// at once in the process; past that a fetch fails ([`FetchError::Spool`]).
#[derive(Debug, Clone)]
pub struct Spool {
    /// The directory (`DATA/tmp`); `None`: every body stays in memory.
    pub dir: Option<PathBuf>,
    /// Bodies up to this many bytes stay in memory.
    pub threshold: u64,
    /// Bytes of spool files the process may hold at once.
    pub disk: u64,
}

impl Spool {
    /// Every body in memory (bounded only by `max_bytes`).
    pub const MEMORY: Spool = Spool {
        dir: None,
        threshold: u64::MAX,
        disk: 0,
    };

    /// Bodies past [`SPOOL_THRESHOLD`] to unnamed files of `dir`, at most
    /// [`DEFAULT_SPOOL_DISK`] bytes of them at once.
    pub fn in_dir(dir: PathBuf) -> Spool {
        Spool {
            dir: Some(dir),
            threshold: SPOOL_THRESHOLD,
            disk: DEFAULT_SPOOL_DISK,
        }
    }
}

/// A fetched body, decompressed: in memory, or in a spool file mapped read-only. Derefs to
/// its bytes.
#[derive(Debug)]
pub struct Body(BodyBytes);

#[derive(Debug)]
enum BodyBytes {
    Memory(Vec<u8>),
    Spooled { map: memmap2::Mmap, _held: Held },
}

impl Body {
    /// Whether the body is in a spool file rather than in memory.
    pub fn is_spooled(&self) -> bool {
        matches!(self.0, BodyBytes::Spooled { .. })
    }

    /// `file` (unnamed, made by `tempfile::tempfile_in`, or a pulled store's own temporary
    /// file, made by `tempfile` with a random name; written by this process alone) mapped
    /// read-only.
    pub(crate) fn map_unnamed(file: &std::fs::File) -> std::io::Result<Body> {
        // SAFETY: as for a spool file: the file is unnamed, or named at random in trawl's
        // data directory and replaced only by a rename, and only this process writes it, so
        // nothing of trawl's shrinks it beneath the mapping.
        let map = unsafe { memmap2::Mmap::map(file) }?;
        Ok(Body(BodyBytes::Spooled {
            map,
            _held: Held::default(),
        }))
    }

    /// The bytes in memory (copied out of a spool file).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            BodyBytes::Memory(v) => v,
            BodyBytes::Spooled { map, .. } => map.to_vec(),
        }
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            BodyBytes::Memory(v) => v,
            BodyBytes::Spooled { map, .. } => map,
        }
    }
}

/// Bytes counted in [`SPOOLED`], given back when dropped (with the file).
#[derive(Debug, Default)]
struct Held(u64);

impl Drop for Held {
    fn drop(&mut self) {
        SPOOLED.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// A body being written: in memory up to the spool's threshold, then to its file; more
/// than `limit` bytes is [`FetchError::TooLarge`].
struct BodyWriter<'a> {
    spool: &'a Spool,
    origin: &'a str,
    limit: u64,
    mem: Vec<u8>,
    file: Option<(std::io::BufWriter<std::fs::File>, Held)>,
    len: u64,
    /// The last byte written.
    last: Option<u8>,
}

impl<'a> BodyWriter<'a> {
    fn new(spool: &'a Spool, origin: &'a str, limit: u64) -> Self {
        BodyWriter {
            spool,
            origin,
            limit,
            mem: Vec::new(),
            file: None,
            len: 0,
            last: None,
        }
    }

    fn spool_err(&self, dir: &Path, reason: String) -> FetchError {
        FetchError::Spool {
            origin: self.origin.to_string(),
            dir: dir.display().to_string(),
            reason,
        }
    }

    fn io_err(&self, dir: &Path, e: &std::io::Error) -> FetchError {
        self.spool_err(
            dir,
            format!("{e} (free disk space there, or lower the feed's max_bytes)"),
        )
    }

    fn ends_with_newline(&self) -> bool {
        self.last == Some(b'\n')
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), FetchError> {
        if buf.is_empty() {
            return Ok(());
        }
        let n = buf.len() as u64;
        if self.len + n > self.limit {
            return Err(FetchError::TooLarge {
                origin: self.origin.to_string(),
                limit: self.limit,
            });
        }
        self.len += n;
        self.last = buf.last().copied();
        if let (None, Some(dir)) = (&self.file, &self.spool.dir) {
            if self.mem.len() as u64 + n > self.spool.threshold {
                std::fs::create_dir_all(dir).map_err(|e| self.io_err(dir, &e))?;
                let file = tempfile::tempfile_in(dir).map_err(|e| self.io_err(dir, &e))?;
                self.file = Some((std::io::BufWriter::new(file), Held::default()));
                let mem = std::mem::take(&mut self.mem);
                self.append_file(&mem)?;
            }
        }
        if self.file.is_some() {
            self.append_file(buf)
        } else {
            self.mem.extend_from_slice(buf);
            Ok(())
        }
    }

    /// Append to the spool file, counted against the spool's disk bound.
    fn append_file(&mut self, buf: &[u8]) -> Result<(), FetchError> {
        let dir = self.spool.dir.clone().unwrap_or_default();
        let n = buf.len() as u64;
        let now = SPOOLED.fetch_add(n, Ordering::Relaxed) + n;
        let Some((w, held)) = &mut self.file else {
            SPOOLED.fetch_sub(n, Ordering::Relaxed);
            return Ok(());
        };
        held.0 += n;
        if now > self.spool.disk {
            let disk = self.spool.disk;
            return Err(self.spool_err(
                &dir,
                format!(
                    "more than {disk} bytes of fetched bodies would be spooled at once (the \
                     spool's disk bound): update fewer large feeds at once, or lower their max_bytes"
                ),
            ));
        }
        if let Err(e) = w.write_all(buf) {
            return Err(self.io_err(&dir, &e));
        }
        Ok(())
    }

    fn finish(self) -> Result<Body, FetchError> {
        let Some((w, held)) = self.file else {
            return Ok(Body(BodyBytes::Memory(self.mem)));
        };
        let dir = self.spool.dir.clone().unwrap_or_default();
        let origin = self.origin;
        let err = |e: &dyn std::fmt::Display| FetchError::Spool {
            origin: origin.to_string(),
            dir: dir.display().to_string(),
            reason: format!("{e} (free disk space there, or lower the feed's max_bytes)"),
        };
        let file = w.into_inner().map_err(|e| err(&e.error().to_string()))?;
        // SAFETY: the file is unnamed (made by `tempfile_in`, unlinked at once) and only
        // this process holds it: nothing can shrink it beneath the mapping.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| err(&e))?;
        Ok(Body(BodyBytes::Spooled { map, _held: held }))
    }
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

/// Counts the raw bytes read through it into the feed's progress.
struct Counted<'a, R> {
    inner: R,
    name: &'a str,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.feed_bytes(self.name, n as u64);
        Ok(n)
    }
}

/// Copy everything `r` yields into `out`; `read_err` turns a read error into the
/// caller's error.
fn copy_into(
    mut r: impl Read,
    out: &mut BodyWriter<'_>,
    read_err: &dyn Fn(std::io::Error) -> FetchError,
) -> Result<(), FetchError> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.write(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
}

/// Read a body, decompressing gzip (also concatenated members, while streaming) and zip
/// (all files concatenated), recognised by their magic bytes; more than `limit` bytes, raw or
/// decompressed, is [`FetchError::TooLarge`]. `io_err` turns a read error of `r` into the
/// caller's error. Past the spool's threshold the body goes to its file.
fn read_body(
    mut r: impl Read,
    limit: u64,
    origin: &str,
    io_err: &dyn Fn(std::io::Error) -> FetchError,
    spool: &Spool,
) -> Result<Body, FetchError> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let head = &head[..got];
    let r = head.chain(r);
    let mut out = BodyWriter::new(spool, origin, limit);
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz_err = |e: std::io::Error| FetchError::Decompress(format!("gzip: {e}"));
        copy_into(flate2::read::MultiGzDecoder::new(r), &mut out, &gz_err)?;
        return out.finish();
    }
    copy_into(r, &mut out, io_err)?;
    let raw = out.finish()?;
    if !raw.starts_with(b"PK\x03\x04") {
        return Ok(raw);
    }
    let zip_err = |e: &dyn std::fmt::Display| FetchError::Decompress(format!("zip: {e}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&raw[..])).map_err(|e| zip_err(&e))?;
    let mut out = BodyWriter::new(spool, origin, limit);
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| zip_err(&e))?;
        if f.is_dir() {
            continue;
        }
        if out.len > 0 && !out.ends_with_newline() {
            out.write(b"\n")?;
        }
        copy_into(f, &mut out, &|e| zip_err(&e))?;
    }
    out.finish()
}

/// Decode a body held in memory as a fetched one is decoded (gzip or zip by their magic
/// bytes, at most `limit` bytes out): the fuzz targets' way in.
pub fn decode_body(bytes: &[u8], limit: u64) -> Result<Vec<u8>, FetchError> {
    read_body(
        bytes,
        limit,
        "<memory>",
        &|e| FetchError::Decompress(e.to_string()),
        &Spool::MEMORY,
    )
    .map(Body::into_vec)
}

/// What a file type is, for [`FetchError::NotAFile`].
fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Read a local feed file (decompressing gzip/zip content), refusing devices, directories
/// and more than `limit` bytes. Named pipes are read (up to `limit`).
pub fn read_file(
    path: &std::path::Path,
    name: &str,
    limit: u64,
    progress: &dyn Progress,
) -> Result<Vec<u8>, FetchError> {
    read_file_spooled(path, name, limit, progress, &Spool::MEMORY).map(Body::into_vec)
}

/// [`read_file`], a large body going to `spool`'s file.
fn read_file_spooled(
    path: &std::path::Path,
    name: &str,
    limit: u64,
    progress: &dyn Progress,
    spool: &Spool,
) -> Result<Body, FetchError> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display().to_string();
    let io = |source| FetchError::Io {
        path: shown.clone(),
        source,
    };
    let md = std::fs::metadata(path).map_err(io)?;
    let kind = md.file_type();
    if !kind.is_file() && !kind.is_fifo() {
        return Err(FetchError::NotAFile {
            path: shown,
            kind: file_kind(kind),
        });
    }
    if md.len() > limit {
        return Err(FetchError::TooLarge {
            origin: shown,
            limit,
        });
    }
    progress.feed_started(name, kind.is_file().then_some(md.len()));
    let file = std::fs::File::open(path).map_err(io)?;
    let counted = Counted {
        inner: file,
        name,
        progress,
    };
    read_body(counted, limit, &shown, &io, spool)
}

/// Where a redirect from `from` goes, when it may be followed: http(s) with a host only.
fn redirect_target(from: &url::Url, location: Option<&str>) -> Result<url::Url, String> {
    let loc = location.ok_or("redirect without a Location header")?;
    let shown: String = loc.chars().take(100).collect();
    let next = from
        .join(loc)
        .map_err(|e| format!("redirect to {shown:?} refused: {e}"))?;
    match next.scheme() {
        "http" | "https" if next.host_str().is_some() => Ok(next),
        _ => Err(format!(
            "redirect to {shown:?} refused: only http and https are followed"
        )),
    }
}

/// Fetch a feed from its location. `validators` are sent for a conditional GET (pass
/// `None` to force a full download). Redirects are followed by hand (at most
/// [`MAX_REDIRECTS`], to http(s) only); the auth header goes to the feed's own origin only.
pub fn fetch(
    feed: &FeedConfig,
    location: &SourceLocation,
    validators: Option<&Validators>,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    fetch_spooled(feed, location, validators, &Spool::MEMORY, progress).map(in_memory)
}

/// [`fetch`], a body larger than the spool's threshold going to its file (what `trawl
/// update` does: ARCHITECTURE.md §2.1.1).
pub fn fetch_spooled(
    feed: &FeedConfig,
    location: &SourceLocation,
    validators: Option<&Validators>,
    spool: &Spool,
    progress: &dyn Progress,
) -> Result<Fetched<Body>, FetchError> {
    let limit = feed.max_bytes();
    let url = match location {
        SourceLocation::File(p) => {
            return Ok(Fetched::Body {
                bytes: read_file_spooled(p, &feed.name, limit, progress, spool)?,
                validators: Validators::default(),
            })
        }
        SourceLocation::Http(u) => u,
    };
    let none = HeaderExchange::default();
    http_get(feed, url, validators, &none, spool, progress).map(|(f, _)| f)
}

/// A fetch's body in memory.
fn in_memory(f: Fetched<Body>) -> Fetched {
    match f {
        Fetched::Body { bytes, validators } => Fetched::Body {
            bytes: bytes.into_vec(),
            validators,
        },
        Fetched::NotModified => Fetched::NotModified,
    }
}

/// [`fetch`] of an http(s) `url` sending the extra request headers `send` too.
pub fn fetch_sending(
    feed: &FeedConfig,
    url: &str,
    validators: Option<&Validators>,
    send: &[(&str, &str)],
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    let exchange = HeaderExchange { send, want: &[] };
    http_get(feed, url, validators, &exchange, &Spool::MEMORY, progress).map(|(f, _)| in_memory(f))
}

/// Extra request headers to send and response headers to hand back, for protocols on top of
/// a plain GET (TAXII's `Accept` and `X-TAXII-Date-Added-Last`).
#[derive(Debug, Default)]
pub struct HeaderExchange<'a> {
    /// Sent with every request (after the auth header; to every origin).
    pub send: &'a [(&'a str, &'a str)],
    /// Response headers whose values are returned, in this order.
    pub want: &'a [&'a str],
}

/// One GET of `url` through the feed's fetch rules (auth, timeouts, retries, redirects, the
/// `max_bytes` cap), sending `exchange.send` and returning the values of `exchange.want`.
pub fn get_with_headers(
    feed: &FeedConfig,
    url: &str,
    exchange: &HeaderExchange<'_>,
    progress: &dyn Progress,
) -> Result<(Vec<u8>, Vec<Option<String>>), FetchError> {
    match http_get(feed, url, None, exchange, &Spool::MEMORY, progress)? {
        (Fetched::Body { bytes, .. }, headers) => Ok((bytes.into_vec(), headers)),
        // No validators were sent: a 304 is the server's mistake.
        (Fetched::NotModified, _) => Err(FetchError::Status {
            status: 304,
            url: url.to_string(),
        }),
    }
}

fn http_get(
    feed: &FeedConfig,
    url: &str,
    validators: Option<&Validators>,
    exchange: &HeaderExchange<'_>,
    spool: &Spool,
    progress: &dyn Progress,
) -> Result<(Fetched<Body>, Vec<Option<String>>), FetchError> {
    let limit = feed.max_bytes();
    let start = url::Url::parse(url).map_err(|e| FetchError::Transport {
        url: url.to_string(),
        reason: format!("bad URL: {e}"),
    })?;
    let timeout = feed.timeout.map_or(Duration::from_secs(30), |d| d.0);
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = tls_config(feed)? {
        builder = builder.tls_config(tls);
    }
    let agent = builder.build();
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
    let mut redirects = 0;
    let mut current = start.clone();
    loop {
        let mut req = agent
            .request_url("GET", &current)
            .set("Accept-Encoding", "gzip");
        if let Some(v) = validators {
            if let Some(e) = &v.etag {
                req = req.set("If-None-Match", e);
            }
            if let Some(m) = &v.last_modified {
                req = req.set("If-Modified-Since", m);
            }
        }
        if let Some((k, v)) = &auth {
            if current.origin() == start.origin() {
                req = req.set(k, v);
            }
        }
        for (k, v) in exchange.send {
            req = req.set(k, v);
        }
        let result = req.call();
        let retry_err = match result {
            Ok(resp) if resp.status() == 304 => return Ok((Fetched::NotModified, Vec::new())),
            Ok(resp) if (300..400).contains(&resp.status()) => {
                let refused = |reason| FetchError::Redirect {
                    url: current.to_string(),
                    reason,
                };
                let next = redirect_target(&current, resp.header("Location")).map_err(refused)?;
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(refused(format!(
                        "more than {MAX_REDIRECTS} redirects (a loop?)"
                    )));
                }
                current = next;
                continue;
            }
            Ok(resp) => {
                let wanted = exchange
                    .want
                    .iter()
                    .map(|h| resp.header(h).map(str::to_string))
                    .collect();
                let body =
                    read_response(resp, current.as_str(), &feed.name, limit, spool, progress)?;
                return Ok((body, wanted));
            }
            Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 => FetchError::Status {
                status: code,
                url: current.to_string(),
            },
            Err(ureq::Error::Status(code, _)) => {
                return Err(FetchError::Status {
                    status: code,
                    url: current.to_string(),
                })
            }
            Err(ureq::Error::Transport(t)) => FetchError::Transport {
                url: current.to_string(),
                reason: transport_reason(feed, &t.to_string()),
            },
        };
        if attempt >= retries {
            return Err(retry_err);
        }
        std::thread::sleep(Duration::from_millis(500u64 << attempt.min(4)));
        attempt += 1;
    }
}

/// A transport error's text, with what to do when it is about certificates.
fn transport_reason(feed: &FeedConfig, text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificaterequired") || lower.contains("certificate required") {
        if feed.tls_client_cert.is_none() {
            return format!(
                "{text} (the server asks for a client certificate: set tls_client_cert and tls_client_key)"
            );
        }
        return format!(
            "{text} (the server refused tls_client_cert: is it signed by a CA it trusts?)"
        );
    }
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        let hint = if feed.tls_ca.is_some() {
            "the server's certificate does not chain to tls_ca"
        } else {
            "the server's certificate is not from a public CA: set tls_ca to its CA's PEM"
        };
        return format!("{text} ({hint})");
    }
    if lower.contains("badcertificate")
        || lower.contains("bad certificate")
        || lower.contains("unknownca")
        || lower.contains("unknown ca")
    {
        return format!(
            "{text} (the server refused tls_client_cert: is it signed by a CA it trusts?)"
        );
    }
    text.to_string()
}

fn read_response(
    resp: ureq::Response,
    url: &str,
    name: &str,
    limit: u64,
    spool: &Spool,
    progress: &dyn Progress,
) -> Result<Fetched<Body>, FetchError> {
    let validators = Validators {
        etag: resp.header("ETag").map(str::to_string),
        last_modified: resp.header("Last-Modified").map(str::to_string),
    };
    let total: Option<u64> = resp.header("Content-Length").and_then(|l| l.parse().ok());
    if total.is_some_and(|t| t > limit) {
        return Err(FetchError::TooLarge {
            origin: url.to_string(),
            limit,
        });
    }
    progress.feed_started(name, total);
    let counted = Counted {
        inner: resp.into_reader(),
        name,
        progress,
    };
    let io_err = |e: std::io::Error| FetchError::Transport {
        url: url.to_string(),
        reason: format!("reading body: {e}"),
    };
    Ok(Fetched::Body {
        bytes: read_body(counted, limit, url, &io_err, spool)?,
        validators,
    })
}
