//! Running the server: bind, optional TLS (rustls), a watcher that reloads the snapshot when
//! `DATA/current` changes and the submissions/search log when the store changes, and a
//! graceful stop on SIGINT/SIGTERM.

use crate::config::{ServerConfig, DEFAULT_LISTEN};
use crate::http::{now, router, App};
use crate::intel::{Intel, IntelError};
use crate::store::{Location, Store, StoreError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state could not be built.
    #[error(transparent)]
    Intel(#[from] IntelError),
    /// Binding or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A server-side TLS configuration (rustls).
pub type TlsConfig = axum_server::tls_rustls::RustlsConfig;

/// What `trawl serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The data directory (snapshot, store).
    pub data: PathBuf,
    /// `[server]`.
    pub config: ServerConfig,
    /// `--listen`, over `[server] listen`.
    pub listen: Option<String>,
    /// Write the bound address here once listening (for scripts and tests).
    pub ready_file: Option<PathBuf>,
    /// How often to look for a new snapshot or store changes.
    pub poll: Duration,
}

/// The store: `[server] database` (a `postgres://` URL, or a SQLite file relative to the
/// data directory), else `DATA/server.db`.
pub fn store_location(data: &Path, config: &ServerConfig) -> Location {
    Location::new(data, config.database.as_deref())
}

/// Open the store named by the configuration.
pub fn open_store(data: &Path, config: &ServerConfig) -> Result<Arc<dyn Store>, ServeError> {
    std::fs::create_dir_all(data).map_err(|source| ServeError::Io {
        what: format!("creating {}", data.display()),
        source,
    })?;
    Ok(store_location(data, config).open()?)
}

/// Serve until SIGINT/SIGTERM. Prints `listening on ADDR` on stderr once bound.
pub fn run(opts: ServeOptions) -> Result<(), ServeError> {
    let store = open_store(&opts.data, &opts.config)?;
    let intel = Intel::open(&opts.data, store, now())?;
    let version = intel.snapshot_version();
    if version == 0 {
        tracing::warn!(
            "no snapshot in {} yet: serving submissions only until `trawl update` publishes one",
            opts.data.display()
        );
    }
    let app = Arc::new(App::new(intel, opts.config.clone()));
    let listen = opts
        .listen
        .clone()
        .or_else(|| opts.config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listener = std::net::TcpListener::bind(&listen).map_err(|source| ServeError::Io {
        what: format!("listening on {listen}"),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Io {
            what: "listener".into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io {
        what: "listener".into(),
        source,
    })?;
    let tls = match (&opts.config.tls_cert, &opts.config.tls_key) {
        (Some(c), Some(k)) => Some(tls_from_pem(c, k)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("trawl serve: listening on {scheme}://{addr} (snapshot version {version})");
    tracing::info!(%addr, scheme, version, "listening");
    if let Some(f) = &opts.ready_file {
        std::fs::write(f, format!("{scheme}://{addr}\n")).map_err(|source| ServeError::Io {
            what: format!("writing {}", f.display()),
            source,
        })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let app = app.clone();
        let stop = stop.clone();
        let data = opts.data.clone();
        let poll = opts.poll;
        std::thread::Builder::new()
            .name("trawl-serve-reload".into())
            .spawn(move || watch(&app, &data, &stop, poll))
            .map_err(|source| ServeError::Io {
                what: "starting the reload thread".into(),
                source,
            })?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            what: "starting the runtime".into(),
            source,
        })?;
    let result = rt.block_on(async move {
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping");
            h.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        serve_listener(listener, app, tls, handle).await
    });
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    result.map_err(|source| ServeError::Io {
        what: "serving".into(),
        source,
    })
}

/// Serve `app` on `listener` (non-blocking, bound) until `handle` stops it: HTTP/1.1 and
/// HTTP/2, over TLS when `tls` is given (its handshake limited to 10 s), a client that has
/// not sent a whole request head within `[server] header_timeout` (idle keep-alive time
/// included) is disconnected, and a request (its body included) that takes longer than
/// `[server] timeout` is answered 408 (the router's layer).
pub async fn serve_listener(
    listener: std::net::TcpListener,
    app: Arc<App>,
    tls: Option<TlsConfig>,
    handle: axum_server::Handle,
) -> std::io::Result<()> {
    let header_timeout = app.config.header_timeout();
    let svc = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let limit = |b: &mut hyper_util::server::conn::auto::Builder<_>| {
        b.http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout);
        b.http2().timer(hyper_util::rt::TokioTimer::new());
    };
    match tls {
        Some(cfg) => {
            let mut server = axum_server::from_tcp_rustls(listener, cfg).handle(handle);
            limit(server.http_builder());
            server.serve(svc).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener).handle(handle);
            limit(server.http_builder());
            server.serve(svc).await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Reload the snapshot when `DATA/current` changes, and the store's submissions and search
/// log when another process (or this one, for the search log) changed them.
fn watch(app: &App, data: &Path, stop: &AtomicBool, poll: Duration) {
    let pointer = data.join("current");
    let mut seen = std::fs::read_to_string(&pointer).unwrap_or_default();
    let mut failed: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(poll.min(Duration::from_millis(200)));
        let cur = std::fs::read_to_string(&pointer).unwrap_or_default();
        if cur != seen {
            match app.intel.reload_snapshot() {
                Ok(v) => {
                    tracing::info!(version = v, "snapshot reloaded");
                    seen = cur;
                    failed = None;
                }
                Err(e) => {
                    if failed.as_ref() != Some(&cur) {
                        tracing::warn!("reload failed, keeping the current snapshot: {e}");
                        failed = Some(cur);
                    }
                }
            }
        }
        if let Err(e) = app.intel.refresh(now()) {
            tracing::warn!("refreshing from the store: {e}");
        }
    }
}

/// The TLS configuration of `[server] tls_cert` / `tls_key` (PEM), offering HTTP/2 and
/// HTTP/1.1 by ALPN.
pub fn tls_from_pem(cert: &Path, key: &Path) -> Result<TlsConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(cfg),
    ))
}
