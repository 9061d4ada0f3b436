//! `trawl run`: the streaming sensor. Tails logs, sniffs interfaces, refreshes feeds, hot-reloads
//! snapshots and ships alerts to sinks, without losing a line.
//!
//! Shape (Vector's sources → transform → sinks):
//! * one thread per `[[source]]`, opened before the daemon starts (a bad glob, interface or BPF
//!   filter fails `trawl run` at once): file sources own an `ingest::tail::Tailer`, take the
//!   batches ready (one or several files), parse and match them against the snapshot loaded at
//!   that moment (rayon inside a batch), hand the alerts to the sink thread and wait for its
//!   answer before acknowledging them all (`ack_many`: one checkpoint write), so a crash never
//!   skips a line; pcap sources match what was captured every 200 ms (or 4096 observations)
//!   and publish libpcap's packet, byte and drop counters as they go;
//!   Kafka sources (`kafka/`, feature `kafka`) run their own loop behind `RunSource` and
//!   commit offsets only after the same answer;
//! * the sink dispatcher: suppression, then the alerts are appended to every sink's own
//!   durable spool (`spool.rs`) and the source answered; one thread per sink delivers its
//!   spool in order, retrying with backoff, so a failing sink never holds up the others;
//! * a reload thread: watches `data/current` (new snapshots from the scheduler, from `trawl
//!   update` in another process, or SIGHUP) and swaps the snapshot with `ArcSwap` between batches;
//! * a feed scheduler thread running `feeds::update` when a feed's `refresh` is due;
//! * tokio for the admin endpoint (`/metrics`, `/healthz`) and signals.
//!
//! Every worker runs under [`supervise::supervise`]: a panic or an error is logged, counted,
//! shown on `/healthz` and the worker restarted.

mod admin;
pub mod config;
mod fleet_sightings;
#[cfg(feature = "kafka")]
mod kafka;
mod metrics;
mod retro;
mod sighting;
mod sinks;
mod spool;
mod stale;
mod supervise;
pub mod suppress;

use crate::alert::{AlertBatch, AlertContext};
use crate::correlate::{Correlator, HitFilter};
use crate::error_chain::one_line;
use crate::scan::{match_lines, LineJob, Mode};
use arc_swap::ArcSwap;
use config::WhenFull;
use config::{PcapSource, SourceConfig};
use feeds::Config;
use ingest::logs::LogError;
use ingest::logs::{detect_format, parser_for, LineParser, LogFormat};
use ingest::packet::{LiveCapture, LiveEvent, LiveOptions, LiveStats};
use ingest::tail::TailError;
use ingest::tail::{BatchId, Fingerprint, Tailer};
use matcher::Snapshot;
use metrics::{lock, Metrics};
use sinks::{build_sink, parse_duration, Sink, SinkError, SinkFailure};
use spool::{Appended, Spool, SpoolError};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use supervise::{fault, supervise};
use suppress::Suppressor;

use crate::data_files::{DataFileError, DataLock, Role};

/// Why `trawl run` could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `[upstream] sightings = true` cannot be set up.
    #[error("[upstream] sightings: {0}")]
    Sightings(String),
    /// The `[[source]]` / `[[sink]]` tables.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// `[sensor] user`: could not become that user.
    #[error("[sensor] user: {0}")]
    Privilege(#[from] crate::privilege::PrivilegeError),
    /// `[sensor] user`: the data directory is not writable as that user.
    #[error("[sensor] user = {user:?} cannot write the data directory {}: {source} (give it to that user: `chown -R {user} {}`)", path.display(), path.display())]
    DataNotWritable {
        /// The user.
        user: String,
        /// The data directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `[retro]` or its index.
    #[error("retro index: {0}")]
    Retro(#[from] crate::retro::RetroError),
    /// `[sensor] suppress` is not a duration.
    #[error("[sensor] suppress = {value:?}: {reason}")]
    Suppress {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The config has no `[[source]]`.
    #[error("no [[source]] in {}: add one (kind = \"file\", \"pcap\", \"stdin\" or \"kafka\")", .0.display())]
    NoSource(PathBuf),
    /// The data directory could not be created.
    #[error("creating {}", path.display())]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A lock file of the data directory.
    #[error(transparent)]
    DataFile(#[from] DataFileError),
    /// Another daemon holds the data directory.
    #[error(
        "another trawl run is already using the data directory {}: one daemon per data \
         directory (stop it, or give this one its own [sensor] data)",
        .0.display()
    )]
    Busy(PathBuf),
    /// The admin endpoint's address could not be bound.
    #[error("binding the admin endpoint {addr}")]
    Admin {
        /// `[sensor] metrics`.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No snapshot yet, and compiling the feeds failed.
    #[error("first feed update")]
    FirstUpdate(#[source] feeds::update::UpdateError),
    /// The snapshot could not be loaded.
    #[error("loading the snapshot")]
    Snapshot(#[source] matcher::SnapshotError),
    /// A source could not be opened (a bad glob, interface or BPF filter).
    #[error("[[source]] {index} (kind = {kind:?})")]
    Source {
        /// 1-based, in the config's order.
        index: usize,
        /// Its `kind`.
        kind: &'static str,
        /// The cause.
        source: Box<SourceError>,
    },
    /// A sink could not be set up.
    #[error(transparent)]
    Sink(#[from] SinkFailure),
    /// A sink's spool could not be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The daemon's threads, runtime or signal handlers could not be started.
    #[error("{what}")]
    Start {
        /// What was being started.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why a source could not be opened, or stopped (its worker is restarted).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `format` names no log format.
    #[error("format = {spec:?}: {source}")]
    Format {
        /// As written.
        spec: String,
        /// Why it is refused.
        source: LogError,
    },
    /// The format's parser refused the file's head (a Zeek file without its header).
    #[error("setting up the {format} parser")]
    Parser {
        /// The format's name.
        format: &'static str,
        /// The cause.
        source: LogError,
    },
    /// A table misses a key or has a value out of its range.
    #[error("{0}")]
    Config(&'static str),
    /// `logformat` is not a format string trawl can compile.
    #[error("logformat = {text:?}: {source}")]
    Logformat {
        /// As written.
        text: String,
        /// Why it is refused.
        source: ingest::logs::PlanError,
    },
    /// `read_from` is neither `beginning` nor `end`.
    #[error("read_from = {0:?}: use \"beginning\" or \"end\"")]
    ReadFrom(String),
    /// The file tailer failed.
    #[error("{what}")]
    Tail {
        /// `starting the file tailer`, `tailing` or `checkpointing`.
        what: &'static str,
        /// The cause.
        source: TailError,
    },
    /// The interface could not be opened.
    #[error("opening interface {iface}")]
    Capture {
        /// The interface.
        iface: String,
        /// The cause.
        source: ingest::packet::CaptureError,
    },
    /// The stdin reader thread could not be started.
    #[error("starting the stdin reader")]
    Thread(#[source] std::io::Error),
    /// The sinks did not take the alerts (their spools refused them as the daemon stopped).
    #[error("{0}")]
    Delivery(String),
    /// The sink thread is gone.
    #[error("the sink thread stopped")]
    SinkThread,
    /// A message-broker source's table, client or subscription.
    #[error("{0}")]
    Broker(String),
}

/// A source that runs its own loop (the Kafka consumer): it matches with
/// [`SourceEnv::match_batch`] and acknowledges upstream only once [`SourceEnv::deliver`]
/// returned, so what it read is durable in every sink's spool first.
trait RunSource: Send {
    /// Read, match and deliver until `env.stop`.
    fn run(&mut self, src: &SourceConfig, env: &SourceEnv) -> Result<(), SourceError>;
}

/// Daemon options read from `[sensor]` (beyond name and data).
#[derive(Debug, Clone)]
struct DaemonOptions {
    /// Admin endpoint address (`/metrics`, `/healthz`); `None` disables it.
    pub metrics_addr: Option<String>,
    /// Suppression window; zero disables.
    pub suppress: Duration,
    /// How often the snapshot pointer is checked.
    pub reload_poll: Duration,
}

/// What runs after each snapshot load, given the previous snapshot and the new one.
type OnLoad = dyn Fn(Option<&Snapshot>, &Snapshot) + Send;

/// What the sink dispatcher receives: alerts (typed when suppression is on) and where to
/// answer once they are spooled.
struct SinkJob {
    alerts: AlertBatch,
    done: Option<SyncSender<Result<(), String>>>,
}

/// Hand `alerts` to the sink dispatcher and wait until they are spooled (retro alerts, the
/// intel-stale event).
fn to_sinks(sink: &SyncSender<SinkJob>, alerts: AlertBatch) -> Result<(), String> {
    let (tx, rx) = mpsc::sync_channel(1);
    sink.send(SinkJob {
        alerts,
        done: Some(tx),
    })
    .map_err(|_| "the sink thread has ended".to_string())?;
    rx.recv()
        .map_err(|_| "the sink thread has ended".to_string())?
}

/// Run the daemon until SIGTERM/SIGINT: `config` was read from `path` (its `[[source]]` and
/// `[[sink]]` tables are read from there again, with their line numbers, for the errors);
/// `data` is the data directory.
pub fn run(config: Config, path: &Path, data: PathBuf) -> Result<ExitCode, DaemonError> {
    let path = path.to_path_buf();
    // The [[source]] and [[sink]] tables, read with their line numbers for the errors.
    let (sources, sink_configs) = config::load(&path)?;
    let config_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&data).map_err(|source| DaemonError::DataDir {
        path: data.clone(),
        source,
    })?;
    let Some(_daemon_lock) = DataLock::try_lock(&data, Role::Daemon)? else {
        return Err(DaemonError::Busy(data));
    };
    raise_fd_limit();
    let retro: Option<Arc<retro::RetroDaemon>> = match &config.retro {
        Some(table) => Some(Arc::new(retro::RetroDaemon::open(&data, table)?)),
        None => None,
    };
    let suppress = match config.sensor.suppress.as_deref() {
        None => Duration::ZERO,
        Some(value) => parse_duration(value).map_err(|reason| DaemonError::Suppress {
            value: value.to_string(),
            reason,
        })?,
    };
    let opts = DaemonOptions {
        metrics_addr: config.sensor.metrics.clone(),
        suppress,
        reload_poll: Duration::from_secs(1),
    };
    if sources.is_empty() {
        return Err(DaemonError::NoSource(path));
    }
    let sources = expand_pcap_workers(sources)?;
    let metrics = Arc::new(Metrics::default());
    let spool_root = data.join("spool");
    let mut spool_dirs = Vec::new();
    let mut sinks: Vec<(Box<dyn Sink>, Spool, WhenFull)> = sink_configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sink = build_sink(c, &metrics)?;
            let (max, when_full) = c.spool();
            let dir = spool_root.join(format!("{}-{i}", c.kind()));
            let spool = Spool::open(&dir, max.unwrap_or(DEFAULT_SPOOL_MAX))?;
            spool_dirs.push(dir);
            Ok((sink, spool, when_full.unwrap_or_default()))
        })
        .collect::<Result<_, DaemonError>>()?;
    if sinks.is_empty() {
        let dir = spool_root.join("stdout-0");
        let spool = Spool::open(&dir, DEFAULT_SPOOL_MAX)?;
        spool_dirs.push(dir);
        sinks.push((Box::new(sinks::StdoutSink), spool, WhenFull::Block));
    }
    // `[upstream] sightings = true`: its own spool, delivered like a sink's.
    let sightings = match config.upstream.as_ref().filter(|u| u.sightings) {
        Some(u) => {
            let token = u.token().map_err(DaemonError::Sightings)?;
            let keep = u
                .sightings_max_bytes
                .map_or(fleet_sightings::DEFAULT_SPOOL_BYTES, |b| b.0);
            let dir = spool_root.join("sightings");
            // Twice the bound: the delivery thread drops the oldest past `keep`; only when it
            // cannot keep up at all does an append find the spool full (the newest dropped).
            let spool = Spool::open(&dir, keep.saturating_mul(2))?;
            spool_dirs.push(dir);
            let flush = u
                .sightings_flush
                .map_or(Duration::from_secs(60), |d| d.0)
                .max(Duration::from_secs(1));
            let timeout = u.timeout.map_or(Duration::from_secs(30), |d| d.0);
            Some((
                u.sightings_endpoint(),
                token,
                keep,
                timeout,
                flush,
                u.sightings_clients,
                spool,
                u.sensor_name(),
            ))
        }
        None => None,
    };
    for (dir, bytes) in spool::orphans(&spool_root, &spool_dirs) {
        tracing::warn!(
            "{} holds {bytes} bytes of alerts for a sink no longer configured there; \
             they are not delivered (restore that [[sink]] in its place, or remove the directory)",
            dir.display()
        );
    }

    // Bind the admin endpoint first: a port in use fails the start before anything runs.
    let admin = match &opts.metrics_addr {
        Some(addr) => {
            let admin_error = |source| DaemonError::Admin {
                addr: addr.clone(),
                source,
            };
            let l = std::net::TcpListener::bind(addr).map_err(admin_error)?;
            l.set_nonblocking(true).map_err(admin_error)?;
            Some(l)
        }
        None => None,
    };
    metrics.watch_feeds(config.clone(), data.clone());
    // A first snapshot: the published one, else compile the feeds now.
    let snapshot = match Snapshot::open_current(&data) {
        Ok(s) => s,
        Err(_) if !config.feeds.is_empty() || config.upstream.is_some() => {
            tracing::info!(
                "no snapshot yet in {}: updating feeds first",
                data.display()
            );
            let _update_lock = DataLock::lock(&data, Role::Update, || {
                tracing::warn!("another update is running; waiting for it to finish")
            })?;
            let report = feeds::update::update(
                &config,
                &config_dir,
                &data,
                &feeds::update::UpdateOptions::default(),
                &feeds::NoProgress,
            )
            .map_err(DaemonError::FirstUpdate)?;
            record_feed_report(&metrics, &report);
            Snapshot::open_current(&data).map_err(DaemonError::Snapshot)?
        }
        Err(e) => return Err(DaemonError::Snapshot(e)),
    };
    metrics.reloads.fetch_add(1, Ordering::Relaxed);
    metrics
        .snapshot_version
        .store(snapshot.meta().version, Ordering::Relaxed);
    metrics
        .snapshot_indicators
        .store(snapshot.len() as u64, Ordering::Relaxed);
    let current = Arc::new(ArcSwap::from_pointee(snapshot));
    let ctx = Arc::new(AlertContext {
        observer_name: if config.sensor.name.is_empty() {
            "trawl".into()
        } else {
            config.sensor.name.clone()
        },
    });

    let thread_error = |source| DaemonError::Start {
        what: "starting the daemon's threads",
        source,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reload_now = Arc::new(AtomicBool::new(false));
    let (sink_tx, sink_rx) = mpsc::sync_channel::<SinkJob>(16);
    let mut threads = Vec::new();

    // Open every source first: configuration errors stop the start, not a thread later.
    let prepared: Vec<(SourceConfig, Prepared)> = sources
        .into_iter()
        .enumerate()
        .map(|(i, src)| {
            let p = prepare_source(&src, &data, i, &metrics).map_err(|e| DaemonError::Source {
                index: i + 1,
                kind: src.kind(),
                source: Box::new(e),
            })?;
            Ok((src, p))
        })
        .collect::<Result<_, DaemonError>>()?;
    // Captures, sinks, spools, the admin socket and the data lock are open: nothing below
    // needs root (a pcap source that fails later is re-opened as this user, and may not be).
    if let Some(user) = &config.sensor.user {
        crate::privilege::drop_to_user(user)?;
        let probe = data.join(".trawl-write-check");
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| DaemonError::DataNotWritable {
                user: user.clone(),
                path: data.clone(),
                source,
            })?;
        tracing::info!("running as user {user}");
    } else {
        // SAFETY: a plain system call.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            // Started with capabilities (systemd's AmbientCapabilities=CAP_NET_RAW): the
            // captures are open, none is needed any more.
            crate::privilege::drop_capabilities()?;
        }
    }

    // Sinks: the dispatcher spools, one thread per sink delivers.
    let closing = Arc::new(AtomicBool::new(false));
    let mut slots = Vec::new();
    let mut sink_threads = Vec::new();
    for (i, (mut sink, spool, when_full)) in sinks.into_iter().enumerate() {
        let spool = Arc::new(spool);
        let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
        let name = sink.name();
        slots.push(SinkSlot {
            name,
            spool: spool.clone(),
            when_full,
            wake: wake_tx,
        });
        let metrics = metrics.clone();
        let closing = closing.clone();
        let worker = format!("sink-{i}");
        sink_threads.push(
            std::thread::Builder::new()
                .name(worker.clone())
                .spawn(move || {
                    let r = supervise(&worker, &metrics, &closing, || {
                        deliver_spool(sink.as_mut(), &spool, &wake_rx, &metrics, &closing)
                    });
                    if let Err(e) = r {
                        tracing::error!("sink {}: {}", sink.name(), one_line(&e));
                    }
                    if let Err(e) = sink.close() {
                        tracing::error!("closing sink {}: {}", sink.name(), one_line(&e));
                    }
                })
                .map_err(thread_error)?,
        );
    }
    let mut sightings_out = None;
    if let Some((url, token, keep, timeout, flush, clients, spool, name)) = sightings {
        let sink = fleet_sightings::SightingsSink::new(&url, token, timeout, keep, metrics.clone())
            .map_err(|e| DaemonError::Sightings(one_line(&e)))?;
        let spool = Arc::new(spool);
        let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
        sightings_out = Some(SightingsOut {
            aggregator: fleet_sightings::Aggregator::new(name, clients),
            spool: spool.clone(),
            wake: wake_tx,
            flush,
            last: Instant::now(),
        });
        tracing::info!("sightings go to {} every {flush:?}", url);
        let metrics = metrics.clone();
        let closing = closing.clone();
        let mut sink: Box<dyn Sink> = Box::new(sink);
        sink_threads.push(
            std::thread::Builder::new()
                .name("sightings".into())
                .spawn(move || {
                    let r = supervise("sightings", &metrics, &closing, || {
                        deliver_spool(sink.as_mut(), &spool, &wake_rx, &metrics, &closing)
                    });
                    if let Err(e) = r {
                        tracing::error!("sightings: {}", one_line(&e));
                    }
                })
                .map_err(thread_error)?,
        );
    }
    {
        let metrics = metrics.clone();
        let window = opts.suppress;
        let stop = stop.clone();
        let closing = closing.clone();
        threads.push(
            std::thread::Builder::new()
                .name("sinks".into())
                .spawn(move || {
                    let mut suppressor = (!window.is_zero()).then(|| Suppressor::new(window));
                    let never = AtomicBool::new(false);
                    let r = supervise("sinks", &metrics, &never, || {
                        dispatch(
                            &sink_rx,
                            &slots,
                            &mut suppressor,
                            &mut sightings_out,
                            &metrics,
                            &stop,
                        )
                    });
                    if let Err(e) = r {
                        tracing::error!("{e:#}");
                    }
                    // What was seen since the last flush goes to the spool before stopping.
                    if let Some(out) = sightings_out.as_mut() {
                        out.flush(&metrics);
                    }
                    closing.store(true, Ordering::SeqCst);
                    for slot in &slots {
                        let _ = slot.wake.try_send(());
                    }
                    if let Some(out) = &sightings_out {
                        let _ = out.wake.try_send(());
                    }
                })
                .map_err(thread_error)?,
        );
    }
    // Sources. When every source has ended (stdin at end of input) the daemon stops.
    let live_sources = Arc::new(AtomicUsize::new(prepared.len()));
    let source_failed = Arc::new(AtomicBool::new(false));
    let mut source_threads = Vec::new();
    for (i, (src, prepared)) in prepared.into_iter().enumerate() {
        let env = SourceEnv {
            current: current.clone(),
            ctx: ctx.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
            sink: sink_tx.clone(),
            index: i,
            typed: !opts.suppress.is_zero(),
            retro: retro.clone(),
        };
        let live_sources = live_sources.clone();
        let source_failed = source_failed.clone();
        let data = data.clone();
        let worker = format!("source-{i}");
        source_threads.push(
            std::thread::Builder::new()
                .name(format!("source-{i}-{}", src.kind()))
                .spawn(move || {
                    // A restarted file or pcap source is opened afresh (from its checkpoints:
                    // what was not acknowledged is read again); stdin goes on where it was.
                    let mut state = Some(prepared);
                    let mut fresh = true;
                    let r = supervise(&worker, &env.metrics, &env.stop, || {
                        if !fresh && !matches!(state, Some(Prepared::Stdin(..))) {
                            state = None;
                        }
                        fresh = false;
                        let p = match &mut state {
                            Some(p) => p,
                            None => state.insert(prepare_source(&src, &data, i, &env.metrics)?),
                        };
                        run_source(&src, p, &env)
                    });
                    if let Err(e) = r {
                        tracing::error!("source {} ({}): {}", env.index, src.kind(), one_line(&e));
                        source_failed.store(true, Ordering::Relaxed);
                    }
                    drop(env);
                    live_sources.fetch_sub(1, Ordering::SeqCst);
                })
                .map_err(thread_error)?,
        );
    }
    // Retro: the index flushed every `flush`; retro alerts at every snapshot load.
    if let Some(retro) = &retro {
        let retro = retro.clone();
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("retro-flush".into())
                .spawn(move || retro.flush_loop(&stop))
                .map_err(thread_error)?,
        );
    }
    let on_load: Box<OnLoad> = match &retro {
        Some(retro) => {
            let retro = retro.clone();
            let sink = sink_tx.clone();
            let ctx = ctx.clone();
            let typed = !opts.suppress.is_zero();
            Box::new(move |prev: Option<&Snapshot>, new: &Snapshot| {
                let deliver = |alerts: AlertBatch| to_sinks(&sink, alerts);
                if let Err(e) = retro.check(prev, new, &ctx, typed, deliver) {
                    tracing::warn!("retro alerts not delivered, retried at the next load: {e}");
                }
            })
        }
        None => Box::new(|_: Option<&Snapshot>, _: &Snapshot| {}),
    };
    // The first snapshot against the one last checked (a restart checks only what changed).
    let first_check = retro.as_ref().and_then(|r| {
        let now = current.load_full();
        match r.checked_version() {
            Some(v) if v == now.meta().version => None,
            Some(v) => Some((
                Snapshot::open(&data.join("snapshots").join(v.to_string())).ok(),
                now,
            )),
            None => Some((None, now)),
        }
    });
    // The intel-stale warning: one event to the sinks per episode past [upstream] max_age.
    if let Some(up) = config.upstream.clone().filter(|u| u.max_age.is_some()) {
        let sink = sink_tx.clone();
        let stop = stop.clone();
        let data = data.clone();
        let observer = ctx.observer_name.clone();
        threads.push(
            std::thread::Builder::new()
                .name("stale-watch".into())
                .spawn(move || {
                    stale::watch(&up, &data, &observer, &stop, |alerts| {
                        to_sinks(&sink, alerts)
                    })
                })
                .map_err(thread_error)?,
        );
    }
    drop(sink_tx);
    // Reloads.
    {
        let current = current.clone();
        let metrics = metrics.clone();
        let stop = stop.clone();
        let reload_now = reload_now.clone();
        let data = data.clone();
        threads.push(
            std::thread::Builder::new()
                .name("reload".into())
                .spawn(move || {
                    if let Some((prev, now)) = &first_check {
                        on_load(prev.as_ref(), now);
                    }
                    let r = supervise("reload", &metrics, &stop, || {
                        reload_loop(
                            &data,
                            &current,
                            &metrics,
                            &stop,
                            &reload_now,
                            opts.reload_poll,
                            &*on_load,
                        );
                        Ok::<(), Infallible>(())
                    });
                    if let Err(e) = r {
                        tracing::error!("{e:#}");
                    }
                })
                .map_err(thread_error)?,
        );
    }
    // Feed scheduler: only feeds with a `refresh` interval are refreshed by the daemon (the
    // update itself skips those not yet due); without any, snapshots come from `trawl update`
    // run elsewhere (cron, another host) and are picked up by the reload thread.
    // An `[upstream]` is pulled by the same scheduler, every `refresh` (default 1h).
    let upstream_refresh = config.upstream.as_ref().map(|u| u.refresh());
    let min_refresh = config
        .feeds
        .iter()
        .filter_map(|f| f.refresh.map(|r| r.0))
        .chain(upstream_refresh)
        .min();
    if min_refresh.is_none() {
        tracing::info!(
            "no [[feed]] has refresh = \"...\": the daemon will not refresh feeds itself"
        );
    }
    if let Some(interval) = min_refresh {
        let interval = interval.max(Duration::from_secs(1));
        let stop = stop.clone();
        let reload_now = reload_now.clone();
        let data = data.clone();
        let config = config.clone();
        let metrics = metrics.clone();
        threads.push(
            std::thread::Builder::new()
                .name("feeds".into())
                .spawn(move || {
                    let r = supervise("feeds", &metrics, &stop, || {
                        schedule_feeds(
                            &config,
                            &config_dir,
                            &data,
                            interval,
                            &reload_now,
                            &metrics,
                            &stop,
                        )
                    });
                    if let Err(e) = r {
                        tracing::error!("{e:#}");
                    }
                })
                .map_err(thread_error)?,
        );
    }

    // tokio: signals and the admin endpoint.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Start {
            what: "starting the admin endpoint's runtime",
            source,
        })?;
    rt.block_on(async {
        let admin = match admin {
            Some(listener) => {
                let listener = Arc::new(tokio::net::TcpListener::from_std(listener).map_err(
                    |source| DaemonError::Start {
                        what: "starting the admin endpoint",
                        source,
                    },
                )?);
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!("admin endpoint on http://{addr}/metrics");
                }
                Some(listener)
            }
            None => None,
        };
        let spawn_admin = || {
            admin
                .clone()
                .map(|l| tokio::spawn(admin::serve(l, metrics.clone())))
        };
        let mut admin_task = spawn_admin();
        let signal = |kind| {
            tokio::signal::unix::signal(kind).map_err(|source| DaemonError::Start {
                what: "handling signals",
                source,
            })
        };
        use tokio::signal::unix::SignalKind;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut check = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = check.tick() => {
                    if live_sources.load(Ordering::SeqCst) == 0 {
                        tracing::info!("every source has ended");
                        break;
                    }
                    // The admin endpoint is a worker too: if it ever ends, count and restart it.
                    if admin_task.as_ref().is_some_and(|t| t.is_finished()) {
                        if let Some(task) = admin_task.take() {
                            let why = match task.await {
                                Err(e) if e.is_panic() => {
                                    Metrics::bump(&metrics.worker_panics, "admin");
                                    matcher::panics::panic_text(e.into_panic().as_ref()).to_string()
                                }
                                Err(e) => e.to_string(),
                                Ok(()) => "ended".into(),
                            };
                            tracing::error!("admin endpoint: {why}; restarting it");
                            Metrics::bump(&metrics.worker_restarts, "admin");
                        }
                        admin_task = spawn_admin();
                    }
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the snapshot");
                    reload_now.store(true, Ordering::Relaxed);
                }
            }
        }
        Ok::<(), DaemonError>(())
    })?;
    tracing::info!("stopping: finishing in-flight batches and flushing sinks");
    stop.store(true, Ordering::Relaxed);
    for t in source_threads {
        let _ = t.join();
    }
    for t in threads {
        let _ = t.join();
    }
    if let Some(retro) = &retro {
        retro.flush();
    }
    for t in sink_threads {
        let _ = t.join();
    }
    Ok(if source_failed.load(Ordering::Relaxed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Bytes a sink's spool holds undelivered at most, unless `spool_max_bytes` says otherwise.
const DEFAULT_SPOOL_MAX: u64 = 1 << 30;

/// Raise the soft limit on open files to the hard one: the admin endpoint's connections are
/// capped, but files, sockets and snapshots must never run short because of a low default.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a pointer to a live `rlimit`.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Count and show on `/healthz` the feeds an update could not fetch (a later success clears
/// them).
fn record_feed_report(metrics: &Metrics, report: &feeds::update::UpdateReport) {
    use feeds::update::FeedStatus;
    for f in &report.feeds {
        let component = format!("feed {}", f.name);
        match &f.status {
            FeedStatus::Failed { reason } => {
                Metrics::bump(&metrics.feed_failures, &f.name);
                metrics
                    .health
                    .degrade(&component, &format!("{reason} (previous entries kept)"));
            }
            FeedStatus::NotDue => {}
            _ => metrics.health.recover(&component),
        }
    }
    if let Some(u) = &report.upstream {
        use feeds::fleet::pull::PullOutcome;
        match &u.outcome {
            PullOutcome::Refused { .. } | PullOutcome::Failed { .. } => {
                tracing::warn!("{}", u.render())
            }
            PullOutcome::Applied { .. } => tracing::info!("{}", u.render()),
            PullOutcome::NotDue | PullOutcome::Unchanged => {}
        }
    }
}

/// The feed scheduler: every `interval`, update the feeds that are due (holding the data
/// directory's update lock), report each feed's failure on `/healthz` and in
/// `trawl_feed_failures_total`, and have the new snapshot loaded.
fn schedule_feeds(
    config: &feeds::config::Config,
    config_dir: &Path,
    data: &Path,
    interval: Duration,
    reload_now: &AtomicBool,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), DataFileError> {
    // Each wake comes up to `[upstream] jitter` late, at random: sensors started together
    // (a fleet-wide restart) drift apart instead of all pulling at the same second.
    let jitter = config
        .upstream
        .as_ref()
        .map_or(Duration::ZERO, |u| u.jitter());
    while !stop.load(Ordering::Relaxed) {
        sleep_unless(stop, interval + random_up_to(jitter));
        // Wait for an update running in another process, but stay stoppable.
        let _lock = loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let Some(l) = DataLock::try_lock(data, Role::Update)? {
                break l;
            }
            sleep_unless(stop, Duration::from_millis(200));
        };
        match feeds::update::update(
            config,
            config_dir,
            data,
            &feeds::update::UpdateOptions::default(),
            &feeds::NoProgress,
        ) {
            Ok(report) => {
                metrics.health.recover("feeds");
                record_feed_report(metrics, &report);
                reload_now.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                let e = one_line(&e);
                tracing::warn!("scheduled feed update: {e}");
                metrics.health.degrade("feeds", &e);
            }
        }
    }
    Ok(())
}

/// A random duration from zero to `max` (millisecond steps; not for secrets).
fn random_up_to(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ms = max.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    // `RandomState` is seeded from the system's random source, per process and per call.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    Duration::from_millis(h.finish() % (ms + 1))
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reload_loop(
    data: &Path,
    current: &ArcSwap<Snapshot>,
    metrics: &Metrics,
    stop: &AtomicBool,
    reload_now: &AtomicBool,
    poll: Duration,
    on_load: &OnLoad,
) {
    let pointer = data.join("current");
    let mut seen = std::fs::read_to_string(&pointer).unwrap_or_default();
    // The pointer whose snapshot last failed to load: retried, but logged once.
    let mut failed: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(poll.min(Duration::from_millis(200)));
        let now = std::fs::read_to_string(&pointer).unwrap_or_default();
        let forced = reload_now.swap(false, Ordering::Relaxed);
        if now == seen && !forced {
            // The pointer names the snapshot in use (again, after a failed reload).
            metrics.health.recover("snapshot");
            continue;
        }
        match Snapshot::open_current(data) {
            Ok(s) => {
                let version = s.meta().version;
                let indicators = s.len() as u64;
                // The old snapshot is freed when the last batch using it drops its Arc. The
                // metrics follow the swap: a version seen on /metrics is the one in use.
                let new = Arc::new(s);
                let old = current.swap(new.clone());
                metrics.snapshot_version.store(version, Ordering::SeqCst);
                metrics
                    .snapshot_indicators
                    .store(indicators, Ordering::Relaxed);
                metrics.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(version, "snapshot reloaded");
                metrics.health.recover("snapshot");
                seen = now;
                on_load(Some(&old), &new);
            }
            Err(e) => {
                if failed.as_ref() != Some(&now) || forced {
                    tracing::warn!("reload failed, keeping the current snapshot: {e:#}");
                    failed = Some(now);
                }
                metrics.health.degrade(
                    "snapshot",
                    &format!("reload failed, the previous one stays in use: {e:#}"),
                );
            }
        }
    }
}

/// A sink as the dispatcher sees it: its spool, and how to wake its delivery thread.
struct SinkSlot {
    name: String,
    spool: Arc<Spool>,
    when_full: WhenFull,
    wake: SyncSender<()>,
}

/// Append `lines` to every sink's spool. A spool that refuses (its disk failing, or full with
/// `when_full = "block"`) is retried with backoff (100 ms doubling to 5 s): the sources wait
/// (backpressure) instead of losing alerts. A full spool with `when_full = "drop"` drops the
/// lines for that sink only, counted. Once the daemon is stopping a spool gets three more
/// tries; then the batch stays unacknowledged (read again after the restart). Spools that
/// already took the batch are not written twice.
fn spool_all(
    slots: &[SinkSlot],
    lines: &[u8],
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    for slot in slots {
        let mut attempt = 0u32;
        let mut after_stop = 0;
        let component = format!("sink {} spool", slot.name);
        loop {
            let e = match slot.spool.append(lines) {
                Ok(Appended::Written) => {
                    metrics.health.recover(&component);
                    break;
                }
                Ok(Appended::Full(pending)) if slot.when_full == WhenFull::Drop => {
                    let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
                    metrics.sink(&slot.name, |c| c.dropped += n);
                    metrics.health.degrade(
                        &component,
                        &format!("spool full ({pending} bytes undelivered): dropping new alerts"),
                    );
                    tracing::error!(
                        "sink {}: spool full ({pending} bytes undelivered, spool_max_bytes = {}): {n} alert(s) dropped for this sink",
                        slot.name,
                        slot.spool.max_bytes()
                    );
                    break;
                }
                Ok(Appended::Full(pending)) => format!(
                    "spool full ({pending} bytes undelivered, spool_max_bytes = {})",
                    slot.spool.max_bytes()
                ),
                Err(e) => one_line(&e),
            };
            metrics.sink_errors.fetch_add(1, Ordering::Relaxed);
            metrics.health.degrade(&component, &e);
            if stop.load(Ordering::Relaxed) {
                after_stop += 1;
                if after_stop > 3 {
                    return Err(format!("sink {}: {e}", slot.name));
                }
            }
            attempt += 1;
            let wait = Duration::from_millis(100 << attempt.min(6)).min(Duration::from_secs(5));
            tracing::warn!("sink {}: {e} (retry {attempt} in {wait:?})", slot.name);
            std::thread::sleep(wait);
        }
        let pending = slot.spool.pending_bytes();
        metrics.sink(&slot.name, |c| c.spool_bytes = pending);
        let _ = slot.wake.try_send(());
    }
    Ok(())
}

/// The sink dispatcher: suppression, then every sink's spool; answers each job once its
/// alerts are spooled. Returns when every source is gone, after writing what suppression
/// still holds.
fn dispatch(
    rx: &Receiver<SinkJob>,
    slots: &[SinkSlot],
    suppressor: &mut Option<Suppressor>,
    sightings: &mut Option<SightingsOut>,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), Infallible> {
    // Alerts the sinks took count as sightings (`[upstream] sightings`).
    let mut spool_all = |slots: &[SinkSlot], lines: &[u8], metrics: &Metrics, stop: &AtomicBool| {
        let r = spool_all(slots, lines, metrics, stop);
        if let (Ok(()), Some(out)) = (&r, sightings.as_mut()) {
            out.aggregator.offer(lines, server::http::now());
            if out.last.elapsed() >= out.flush {
                out.flush(metrics);
            }
        }
        r
    };
    let mut emit = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(job) => {
                let lines = match suppressor.as_mut() {
                    None => job.alerts.into_lines(),
                    Some(sup) => {
                        let now = Instant::now();
                        let AlertBatch {
                            mut lines, typed, ..
                        } = job.alerts;
                        // Windows that are over are closed first, in order.
                        for a in sup.expire(now) {
                            let _ = a.write_line(&mut lines);
                        }
                        for alert in typed {
                            emit.clear();
                            sup.offer(alert, now, &mut emit);
                            if emit.is_empty() {
                                metrics.suppressed.fetch_add(1, Ordering::Relaxed);
                            }
                            for a in &emit {
                                let _ = a.write_line(&mut lines);
                            }
                        }
                        lines
                    }
                };
                let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
                if cfg!(debug_assertions) {
                    fault::inject("sinks-job");
                }
                let result = spool_all(slots, &lines, metrics, stop);
                if result.is_ok() {
                    metrics.alerts.fetch_add(n, Ordering::Relaxed);
                }
                if let Some(done) = job.done {
                    let _ = done.send(result);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // No alert for a while: an open sightings batch still goes out on time.
                spool_all(slots, &[], metrics, stop).ok();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(sup) = suppressor.as_mut() {
            let expired = sup.expire(Instant::now());
            if !expired.is_empty() {
                let mut out = Vec::new();
                for a in &expired {
                    let _ = a.write_line(&mut out);
                }
                match spool_all(slots, &out, metrics, stop) {
                    Ok(()) => {
                        metrics
                            .alerts
                            .fetch_add(expired.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => tracing::error!("{e}"),
                }
            }
        }
    }
    // Shutdown: what suppression still holds is written with its count.
    if let Some(sup) = suppressor.as_mut() {
        let mut out = Vec::new();
        let held = sup.drain();
        for a in &held {
            let _ = a.write_line(&mut out);
        }
        match spool_all(slots, &out, metrics, stop) {
            Ok(()) => {
                metrics
                    .alerts
                    .fetch_add(held.len() as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
    Ok(())
}

/// The dispatcher's side of `[upstream] sightings`: the alerts folded since the last flush,
/// and the spool the batches go to.
struct SightingsOut {
    aggregator: fleet_sightings::Aggregator,
    spool: Arc<Spool>,
    wake: SyncSender<()>,
    flush: Duration,
    last: Instant,
}

impl SightingsOut {
    /// Write what was seen since the last flush to the spool as batches (each with a fresh
    /// batch id) and wake the delivery thread. Never retried nor waited for: alerting goes
    /// on, a batch the spool refuses is dropped and counted.
    fn flush(&mut self, metrics: &Metrics) {
        self.last = Instant::now();
        if self.aggregator.is_empty() {
            return;
        }
        let batches = match self.aggregator.take_batches() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("sightings: no batch id from the random source: {e}");
                metrics.sightings_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        for b in batches {
            match self.spool.append(&b) {
                Ok(Appended::Written) => {
                    metrics.sightings_spooled.fetch_add(1, Ordering::Relaxed);
                    metrics.health.recover("sightings spool");
                }
                Ok(Appended::Full(pending)) => {
                    metrics.sightings_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "sightings: spool full ({pending} bytes undelivered): a batch dropped"
                    );
                }
                Err(e) => {
                    metrics.sightings_dropped.fetch_add(1, Ordering::Relaxed);
                    let e = one_line(&e);
                    metrics.health.degrade("sightings spool", &e);
                    tracing::error!("sightings: a batch dropped: {e}");
                }
            }
        }
        let _ = self.wake.try_send(());
    }
}

/// A sink's delivery thread: hand its spool to the sink in order, moving the spool position
/// on by what the sink took; a failure is retried with backoff (100 ms doubling to 5 s), a
/// refusal for good goes to the dead-letter file. Returns once `closing` is set and the
/// spool is delivered (or after three more failed tries: the rest stays spooled for the next
/// start).
fn deliver_spool(
    sink: &mut dyn Sink,
    spool: &Spool,
    wake: &Receiver<()>,
    metrics: &Metrics,
    closing: &AtomicBool,
) -> Result<(), SpoolError> {
    let name = sink.name();
    let component = format!("sink {name}");
    let mut backoff = Duration::from_millis(100);
    let mut tries_closing = 0;
    let count = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
    loop {
        if let Some(keep) = sink.keep_at_most() {
            // Only this thread consumes, so the head it drops is not being delivered.
            let mut dropped = 0;
            while spool.pending_bytes() > keep {
                let Some(head) = spool.next_batch(1, usize::MAX)? else {
                    break;
                };
                spool.consume(&head, head.lines.len())?;
                dropped += head.count as u64;
            }
            if dropped > 0 {
                tracing::warn!(
                    "sink {name}: {dropped} oldest line(s) dropped: more than {keep} bytes undelivered"
                );
                metrics.sink(&name, |c| c.dropped += dropped);
                sink.dropped_oldest(dropped);
            }
        }
        let pending = spool.pending_bytes();
        metrics.sink(&name, |c| c.spool_bytes = pending);
        let Some(batch) = spool.next_batch(sink.batch_lines(), sinks::MAX_WRITE_BYTES)? else {
            if closing.load(Ordering::SeqCst) {
                return Ok(());
            }
            let _ = wake.recv_timeout(Duration::from_millis(200));
            if let Err(e) = sink.tick() {
                let e = one_line(&e);
                tracing::warn!("sink {name}: {e}");
                metrics.health.degrade(&component, &e);
            }
            continue;
        };
        match sink.write(&batch.lines) {
            Ok(()) => {
                spool.consume(&batch, batch.lines.len())?;
                metrics.sink(&name, |c| c.delivered += batch.count as u64);
                metrics.health.recover(&component);
                backoff = Duration::from_millis(100);
            }
            Err(SinkError::Rejected { lines, reason }) => {
                let path = spool.reject(&lines)?;
                let refused = count(&lines);
                tracing::warn!(
                    "sink {name}: {refused} alert(s) refused for good ({reason}); kept in {}",
                    path.display()
                );
                spool.consume(&batch, batch.lines.len())?;
                metrics.sink(&name, |c| {
                    c.dead_letter += refused;
                    c.delivered += (batch.count as u64).saturating_sub(refused);
                });
                metrics.health.recover(&component);
            }
            Err(SinkError::Retry { done, error }) => {
                let done = done.min(batch.lines.len());
                if done > 0 {
                    spool.consume(&batch, done)?;
                    metrics.sink(&name, |c| c.delivered += count(&batch.lines[..done]));
                }
                metrics.sink(&name, |c| c.failures += 1);
                metrics.sink_errors.fetch_add(1, Ordering::Relaxed);
                let error = one_line(&error);
                metrics.health.degrade(&component, &error);
                // Stopping: three quick tries, then what is left waits for the next start.
                let wait = if closing.load(Ordering::SeqCst) {
                    tries_closing += 1;
                    if tries_closing > 3 {
                        tracing::error!(
                            "sink {name}: {error}; stopping with {} bytes spooled (delivered at the next start)",
                            spool.pending_bytes()
                        );
                        return Ok(());
                    }
                    Duration::from_millis(200)
                } else {
                    backoff
                };
                tracing::warn!("sink {name}: {error} (retry in {wait:?})");
                std::thread::sleep(wait);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What a source thread shares with the rest of the daemon.
struct SourceEnv {
    current: Arc<ArcSwap<Snapshot>>,
    ctx: Arc<AlertContext>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    sink: SyncSender<SinkJob>,
    index: usize,
    /// Suppression is on: alerts go to the dispatcher typed.
    typed: bool,
    /// `[retro]`: where observations are recorded.
    retro: Option<Arc<retro::RetroDaemon>>,
}

impl SourceEnv {
    /// Hand alerts to the sinks and wait until they are durable.
    fn deliver(&self, alerts: AlertBatch) -> Result<(), SourceError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.sink
            .send(SinkJob {
                alerts,
                done: Some(tx),
            })
            .map_err(|_| SourceError::SinkThread)?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SourceError::Delivery(e)),
            Err(_) => Err(SourceError::SinkThread),
        }
    }

    /// Match captured observations with the snapshot loaded now and queue their alerts for
    /// the sinks (no acknowledgement to wait for: a capture cannot be re-read). Empties
    /// `pending`. The bounded queue blocks when the sinks fall behind; the kernel buffer then
    /// fills and its drops show in the capture metrics.
    fn ship_packets(&self, pending: &mut Vec<ingest::Observation<'static>>) {
        if pending.is_empty() {
            return;
        }
        let snapshot = self.current.load_full();
        let correlator = Correlator::new(&snapshot, HitFilter::default());
        let mut buffers = crate::packets::PacketScratch::default();
        let now = crate::scan::now_ns();
        let mut out = AlertBatch::new(self.typed);
        let mut by_feed = std::collections::BTreeMap::new();
        if let Some(retro) = &self.retro {
            // Observed without the recorder's lock; taken only to fetch and hand back.
            let recorder = retro.recorder();
            let mut buffer = recorder
                .lock()
                .map_or_else(|p| p.into_inner().buffer(), |r| r.buffer());
            for obs in pending.iter() {
                buffer.observe(obs, now);
            }
            let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = r.absorb(buffer) {
                tracing::warn!("retro index: {e}");
            }
        }
        for obs in pending.iter() {
            crate::packets::alerts_for_packet(
                &correlator,
                &self.ctx,
                obs,
                now,
                &mut buffers,
                &mut out,
                &mut by_feed,
            );
        }
        {
            let mut m = lock(&self.metrics.alerts_by_feed);
            for (feed, n) in by_feed {
                *m.entry(feed).or_default() += n;
            }
        }
        pending.clear();
        if !out.is_empty() {
            let _ = self.sink.send(SinkJob {
                alerts: out,
                done: None,
            });
        }
    }

    /// Match whole lines with the snapshot loaded now (`records`: see `LineJob::records`).
    fn match_batch(
        &self,
        parser: &dyn LineParser,
        raw: bool,
        path: &str,
        bytes: &[u8],
        base: u64,
        records: Option<&[(u64, u64)]>,
    ) -> AlertBatch {
        let snapshot = self.current.load_full();
        let correlator = Correlator::new(&snapshot, HitFilter::default());
        let job = LineJob {
            path,
            parser,
            raw,
            mode: Mode::Alerts,
            correlator: Some(&correlator),
            ctx: &self.ctx,
            now_ns: crate::scan::now_ns(),
            typed: self.typed,
            record: self.retro.as_deref().map(retro::RetroDaemon::recorder),
            records,
        };
        let (out, stats) = match_lines(&job, bytes, base);
        self.metrics.lines.fetch_add(stats.lines, Ordering::Relaxed);
        self.metrics
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.metrics
            .parse_failures
            .fetch_add(stats.failures(), Ordering::Relaxed);
        {
            let mut m = lock(&self.metrics.alerts_by_feed);
            for (feed, n) in &stats.alerts_by_feed {
                *m.entry(feed.clone()).or_default() += n;
            }
        }
        out
    }
}

/// The log format a source's `format` names (`auto` or none: detected from `head`).
fn log_format(spec: Option<&str>, head: &[u8]) -> Result<LogFormat, SourceError> {
    match spec {
        None | Some("auto") => Ok(detect_format(head).unwrap_or(LogFormat::Raw)),
        Some(f) => f
            .parse::<LogFormat>()
            .map_err(|source| SourceError::Format {
                spec: f.to_string(),
                source,
            }),
    }
}

/// A source's parser: its `logformat` plan when it has one, else the format's.
fn source_parser(
    src: &SourceConfig,
    format: LogFormat,
    head: &[u8],
) -> Result<Box<dyn LineParser>, SourceError> {
    Ok(match src.logformat() {
        Some(text) => {
            let forced = src.format().filter(|f| *f != "auto").map(|_| format);
            let plan = ingest::logs::FormatPlan::for_format(forced, text).map_err(|source| {
                SourceError::Logformat {
                    text: text.to_string(),
                    source,
                }
            })?;
            Box::new(ingest::logs::PlanParser::new(plan))
        }
        None => parser_for(format, head, None).map_err(|source| SourceError::Parser {
            format: format.as_str(),
            source,
        })?,
    })
}

/// After a batch, the parser of its last directive line (W3C `#Fields:` changing
/// mid-file), so the next batches are read by it.
fn follow_directive(parser: &mut Box<dyn LineParser>, batch: &[u8]) {
    if let Some(next) =
        crate::scan::last_directive(parser.as_ref(), batch).and_then(|d| parser.after_directive(d))
    {
        *parser = next;
    }
}

fn file_head(path: &Path) -> Vec<u8> {
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_end(&mut head);
    }
    head
}

/// A source opened before the daemon starts.
enum Prepared {
    File(Box<Tailer>),
    /// Chunks of whole lines from the stdin reader thread.
    Stdin(Receiver<Vec<u8>>, u64),
    /// `None` once handed to the capture loop.
    Pcap(Option<Box<LiveCapture>>, LiveOptions),
    /// A source with its own loop.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    Runner(Box<dyn RunSource>),
}

/// A pcap source with `workers = N` becomes N sources on its interface, one capture thread
/// each, in one kernel fanout group (by flow): each is opened, counted and re-opened as a
/// source of its own.
fn expand_pcap_workers(sources: Vec<SourceConfig>) -> Result<Vec<SourceConfig>, DaemonError> {
    let mut out = Vec::with_capacity(sources.len());
    for (i, src) in sources.into_iter().enumerate() {
        let SourceConfig::Pcap(p) = &src else {
            out.push(src);
            continue;
        };
        let n = p.workers.unwrap_or(1);
        if !(1..=64).contains(&n) {
            return Err(DaemonError::Source {
                index: i + 1,
                kind: src.kind(),
                source: Box::new(SourceError::Config(
                    "a pcap source's workers is 1 to 64 capture threads (default 1)",
                )),
            });
        }
        if n == 1 {
            out.push(src);
            continue;
        }
        // Fanout group ids are per network namespace: the process id and the source's place
        // keep them apart.
        let group = (std::process::id().wrapping_add(i as u32) & 0xffff) as u16;
        for _ in 0..n {
            let mut w = p.clone();
            w.fanout = Some(group);
            out.push(SourceConfig::Pcap(w));
        }
    }
    Ok(out)
}

fn live_options(src: &PcapSource) -> Result<LiveOptions, SourceError> {
    let Some(interface) = src.interface.as_deref() else {
        return Err(SourceError::Config(
            "kind = \"pcap\" needs interface = \"eth0\"",
        ));
    };
    let mut cfg = LiveOptions::new(interface);
    cfg.bpf = src.bpf.clone().unwrap_or_default();
    cfg.snaplen = src.snaplen.unwrap_or(65535);
    cfg.promisc = src.promisc.unwrap_or(true);
    cfg.fanout = src.fanout;
    if let Some(mib) = src.buffer {
        if !(1..=2047).contains(&mib) {
            return Err(SourceError::Config(
                "a pcap source's buffer is the kernel ring in MiB, 1 to 2047 (default 64)",
            ));
        }
        cfg.buffer_size = mib << 20;
    }
    Ok(cfg)
}

fn prepare_source(
    src: &SourceConfig,
    data: &Path,
    index: usize,
    metrics: &Arc<Metrics>,
) -> Result<Prepared, SourceError> {
    use ingest::tail::{ReadFrom, TailConfig};
    let format = log_format(src.format(), b"")?;
    if let Some(text) = src.logformat() {
        let forced = src.format().filter(|f| *f != "auto").map(|_| format);
        ingest::logs::FormatPlan::for_format(forced, text).map_err(|source| {
            SourceError::Logformat {
                text: text.to_string(),
                source,
            }
        })?;
    }
    Ok(match src {
        SourceConfig::File(src) => {
            if src.paths.is_empty() {
                return Err(SourceError::Config(
                    "kind = \"file\" needs paths = [\"/var/log/...\"]",
                ));
            }
            let mut cfg = TailConfig::new(
                src.paths.clone(),
                data.join(format!("checkpoints-{index}.json")),
            );
            cfg.read_from = match src.read_from.as_deref() {
                None | Some("beginning") => ReadFrom::Beginning,
                Some("end") => ReadFrom::End,
                Some(other) => return Err(SourceError::ReadFrom(other.to_string())),
            };
            Prepared::File(Box::new(Tailer::new(cfg).map_err(|source| {
                SourceError::Tail {
                    what: "starting the file tailer",
                    source,
                }
            })?))
        }
        SourceConfig::Stdin(_) => {
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name("stdin-reader".into())
                .spawn(move || {
                    // Ends with the input; a panic is counted and reading goes on.
                    let never = AtomicBool::new(false);
                    let _ = supervise("stdin-reader", &metrics, &never, || {
                        stdin_reader(&tx);
                        Ok::<(), Infallible>(())
                    });
                })
                .map_err(SourceError::Thread)?;
            Prepared::Stdin(rx, 0)
        }
        SourceConfig::Pcap(src) => {
            let opts = live_options(src)?;
            let cap = LiveCapture::open(opts.clone()).map_err(|source| SourceError::Capture {
                iface: opts.iface.clone(),
                source,
            })?;
            Prepared::Pcap(Some(Box::new(cap)), opts)
        }
        #[cfg(feature = "kafka")]
        SourceConfig::Kafka(c) => Prepared::Runner(Box::new(kafka::source::KafkaConsumer::open(
            c, index, metrics,
        )?)),
        #[cfg(not(feature = "kafka"))]
        SourceConfig::Kafka(_) => {
            return Err(SourceError::Config(
                "kind = \"kafka\": this trawl was built without Kafka support (build it with \
                 the default features, or `--features kafka`)",
            ))
        }
    })
}

fn run_source(
    src: &SourceConfig,
    prepared: &mut Prepared,
    env: &SourceEnv,
) -> Result<(), SourceError> {
    match prepared {
        Prepared::File(tailer) => run_file_source(src, tailer, env),
        Prepared::Stdin(rx, offset) => run_stdin_source(src, rx, offset, env),
        Prepared::Pcap(cap, opts) => run_pcap_source(cap.take(), opts, env),
        Prepared::Runner(r) => r.run(src, env),
    }
}

/// At most this many ready batches (and bytes) are matched, delivered and acknowledged as one.
const GROUP_BATCHES: usize = 8;
const GROUP_BYTES: usize = 8 << 20;

fn run_file_source(
    src: &SourceConfig,
    tailer: &mut Tailer,
    env: &SourceEnv,
) -> Result<(), SourceError> {
    let tail_error = |what| move |source| SourceError::Tail { what, source };
    let mut parsers: HashMap<Fingerprint, (Box<dyn LineParser>, bool)> = HashMap::new();
    let mut last_stats = Instant::now();
    let mut counted = (0u64, 0u64, 0u64);
    while !env.stop.load(Ordering::Relaxed) {
        let mut batches = Vec::new();
        if let Some(first) = tailer
            .next_batch(Duration::from_millis(250))
            .map_err(tail_error("tailing"))?
        {
            // Take what else is ready now (a backlog, the rest of a rotated file and its
            // successor): one sink write and one checkpoint write for the group.
            let mut bytes = first.bytes.len();
            batches.push(first);
            while batches.len() < GROUP_BATCHES && bytes < GROUP_BYTES {
                match tailer
                    .next_batch(Duration::ZERO)
                    .map_err(tail_error("tailing"))?
                {
                    Some(b) => {
                        bytes += b.bytes.len();
                        batches.push(b);
                    }
                    None => break,
                }
            }
        }
        if !batches.is_empty() {
            let mut alerts = AlertBatch::new(env.typed);
            for batch in &batches {
                let (parser, raw) = match parsers.entry(batch.fingerprint) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let head = file_head(&batch.path);
                        let head_from_file = !head.is_empty();
                        let head = if head.is_empty() {
                            batch.bytes.clone()
                        } else {
                            head
                        };
                        let format = log_format(src.format(), &head)?;
                        let mut parser = source_parser(src, format, &head)?;
                        // The directive in force where this batch starts, when the head
                        // reaches that far (a small file's fingerprint changes as it grows).
                        if head_from_file {
                            let before = usize::try_from(batch.offset).unwrap_or(usize::MAX);
                            follow_directive(&mut parser, &head[..before.min(head.len())]);
                        }
                        e.insert((parser, format == LogFormat::Raw))
                    }
                };
                let path = batch.path.to_string_lossy();
                alerts.append(env.match_batch(
                    parser.as_ref(),
                    *raw,
                    &path,
                    &batch.bytes,
                    batch.offset,
                    None,
                ));
                follow_directive(parser, &batch.bytes);
            }
            if cfg!(debug_assertions) {
                fault::inject(&format!("source-{}-batch", env.index));
            }
            env.deliver(alerts)?;
            let ids: Vec<BatchId> = batches.iter().map(|b| b.id).collect();
            tailer.ack_many(&ids).map_err(tail_error("checkpointing"))?;
        }
        if !batches.is_empty() || last_stats.elapsed() >= Duration::from_millis(250) {
            last_stats = Instant::now();
            let stats = tailer.stats();
            let m = &env.metrics;
            m.rotations
                .fetch_add(stats.rotations.saturating_sub(counted.0), Ordering::Relaxed);
            m.truncations.fetch_add(
                stats.truncations.saturating_sub(counted.1),
                Ordering::Relaxed,
            );
            m.lines_truncated.fetch_add(
                stats.lines_truncated.saturating_sub(counted.2),
                Ordering::Relaxed,
            );
            counted = (stats.rotations, stats.truncations, stats.lines_truncated);
            let lag: std::collections::BTreeMap<String, u64> = stats
                .files
                .iter()
                .map(|f| (f.path.to_string_lossy().into_owned(), f.lag_bytes))
                .collect();
            lock(&m.lag_by_source).insert(env.index, lag);
            // Forget the parsers of files no longer open (months of rotations).
            if parsers.len() > stats.files.len() + 16 {
                let open: std::collections::HashSet<Fingerprint> =
                    stats.files.iter().filter_map(|f| f.fingerprint).collect();
                parsers.retain(|fp, _| open.contains(fp));
            }
        }
    }
    Ok(())
}

/// Reads stdin in chunks of whole lines on its own thread (a blocking read must not hold up
/// shutdown); ends the channel at end of input.
fn stdin_reader(tx: &SyncSender<Vec<u8>>) {
    let mut stdin = std::io::stdin().lock();
    let mut chunk = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("reading stdin: {e}");
                0
            }
        };
        if n == 0 {
            if !carry.is_empty() {
                carry.push(b'\n');
                let _ = tx.send(carry);
            }
            return;
        }
        carry.extend_from_slice(&chunk[..n]);
        let cut = match memchr::memrchr(b'\n', &carry) {
            Some(i) => i + 1,
            // A line longer than 1 MiB without its end yet: pass it on as it is.
            None if carry.len() >= chunk.len() => {
                carry.push(b'\n');
                carry.len()
            }
            None => continue,
        };
        let rest = carry.split_off(cut);
        if tx.send(std::mem::replace(&mut carry, rest)).is_err() {
            return;
        }
    }
}

fn run_stdin_source(
    src: &SourceConfig,
    rx: &Receiver<Vec<u8>>,
    offset: &mut u64,
    env: &SourceEnv,
) -> Result<(), SourceError> {
    let mut parser: Option<(Box<dyn LineParser>, bool)> = None;
    while !env.stop.load(Ordering::Relaxed) {
        let buf = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(b) => b,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                tracing::info!("stdin: end of input after {offset} bytes");
                return Ok(());
            }
        };
        if parser.is_none() {
            let format = log_format(src.format(), &buf)?;
            parser = Some((source_parser(src, format, &buf)?, format == LogFormat::Raw));
        }
        if let Some((p, raw)) = &mut parser {
            let alerts = env.match_batch(p.as_ref(), *raw, "-", &buf, *offset, None);
            follow_directive(p, &buf);
            env.deliver(alerts)?;
        }
        *offset += buf.len() as u64;
    }
    Ok(())
}

/// Observations held before matching: at most this many, or 200 ms' worth.
const PCAP_BATCH: usize = 4096;

fn run_pcap_source(
    cap: Option<Box<LiveCapture>>,
    opts: &LiveOptions,
    env: &SourceEnv,
) -> Result<(), SourceError> {
    let iface = opts.iface.clone();
    let component = format!("source {} (pcap {iface})", env.index);
    let mut cap = cap.map(|c| *c);
    let mut pending: Vec<ingest::Observation<'static>> = Vec::new();
    while !env.stop.load(Ordering::Relaxed) {
        let mut c = match cap.take() {
            Some(c) => c,
            None => match LiveCapture::open(opts.clone()) {
                Ok(c) => {
                    tracing::info!("capture on {iface} re-opened");
                    env.metrics.health.recover(&component);
                    c
                }
                Err(e) => {
                    tracing::warn!("re-opening {iface}: {e}");
                    env.metrics
                        .health
                        .degrade(&component, &format!("re-opening: {e}"));
                    sleep_unless(&env.stop, Duration::from_secs(1));
                    continue;
                }
            },
        };
        let mut last = LiveStats::default();
        let mut lost = 0;
        let result = c.run_events(&env.stop, Duration::from_millis(200), |ev| match ev {
            LiveEvent::Observations(obs) => {
                pending.extend(obs);
                if pending.len() >= PCAP_BATCH {
                    env.ship_packets(&mut pending);
                }
            }
            LiveEvent::Stats(st) => {
                env.ship_packets(&mut pending);
                env.metrics.record_capture(&iface, st, &mut last);
                crate::packets::warn_new_drops(&iface, st, &mut lost);
            }
        });
        env.ship_packets(&mut pending);
        match result {
            Ok(st) => {
                env.metrics.record_capture(&iface, &st, &mut last);
                tracing::info!(
                    "capture on {iface} ended: {}",
                    serde_json::to_string(&st).unwrap_or_default()
                );
            }
            Err(e) => {
                env.metrics.capture_error(&iface);
                env.metrics.health.degrade(&component, &format!("{e}"));
                tracing::error!("capture on {iface}: {e}; re-opening");
                sleep_unless(&env.stop, Duration::from_secs(1));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_wakes_spread_over_the_jitter() {
        assert_eq!(random_up_to(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_secs(360);
        let draws: Vec<Duration> = (0..200).map(|_| random_up_to(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        // Spread over the whole range: some in each quarter.
        for q in 0..4u32 {
            let (lo, hi) = (max * q / 4, max * (q + 1) / 4);
            assert!(
                draws.iter().any(|d| *d >= lo && *d < hi),
                "quarter {q}: {draws:?}"
            );
        }
    }
}
