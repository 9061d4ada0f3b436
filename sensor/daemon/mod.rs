//! `trawl run`: the streaming sensor. Tails logs, sniffs interfaces, refreshes feeds, hot-reloads
//! snapshots and ships alerts to sinks, without losing a line.
//!
//! Shape (Vector's sources → transform → sinks):
//! * one thread per `[[source]]`: file sources own an `ingest::tail::Tailer`, parse and match each
//!   batch against the snapshot loaded at that moment (rayon inside the batch), hand the alerts to
//!   the sink thread and wait for its answer before acknowledging the batch, which checkpoints the
//!   read position — so a crash never skips a line;
//! * the sink thread: suppression, then every sink, durably, in order;
//! * a reload thread: watches `data/current` (new snapshots from the scheduler, from `trawl
//!   update` in another process, or SIGHUP) and swaps the snapshot with `ArcSwap` between batches;
//! * a feed scheduler thread running `feeds::update` when a feed's `refresh` is due;
//! * tokio for the admin endpoint (`/metrics`, `/healthz`) and signals.

pub mod metrics;
pub mod sinks;
pub mod suppress;

use crate::alert::AlertContext;
use crate::correlate::{Correlator, HitFilter};
use crate::scan::{match_lines, LineJob, Mode};
use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use ingest::logs::{detect_format, parser_for, LineParser, LogFormat};
use matcher::Snapshot;
use metrics::Metrics;
use serde::Deserialize;
use sinks::{build_sink, parse_duration, Sink, SinkConfig};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use suppress::Suppressor;

/// One `[[source]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `file`, `pcap` or `stdin`.
    pub kind: String,
    /// file: globs; list rotated names too (`access.log*`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// file/stdin: log format or `auto`.
    pub format: Option<String>,
    /// file: `beginning` (default) or `end` for files first seen.
    pub read_from: Option<String>,
    /// pcap: interface.
    pub interface: Option<String>,
    /// pcap: BPF filter.
    pub bpf: Option<String>,
    /// pcap: snap length.
    pub snaplen: Option<i32>,
    /// pcap: promiscuous mode (default true).
    pub promisc: Option<bool>,
}

/// Daemon options read from `[sensor]` (beyond name and data).
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Admin endpoint address (`/metrics`, `/healthz`); `None` disables it.
    pub metrics_addr: Option<String>,
    /// Suppression window; zero disables.
    pub suppress: Duration,
    /// How often the snapshot pointer is checked.
    pub reload_poll: Duration,
}

/// What the sink thread receives: alert lines and where to answer once they are durable.
struct SinkJob {
    lines: Vec<u8>,
    done: Option<SyncSender<Result<(), String>>>,
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(config_path: Option<&Path>) -> Result<ExitCode> {
    let Some((config, path)) = crate::commands::load_config(config_path)? else {
        bail!(
            "trawl run needs a config: pass --config FILE (or create ./trawl.toml); see README.md"
        );
    };
    let config_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let data = crate::commands::data_dir(
        &crate::cli::DataArgs {
            data: None,
            config: None,
        },
        Some(&config),
    );
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let opts = DaemonOptions {
        metrics_addr: config.sensor.metrics.clone(),
        suppress: config
            .sensor
            .suppress
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .unwrap_or(Duration::ZERO),
        reload_poll: Duration::from_secs(1),
    };
    let sources: Vec<SourceConfig> = config
        .sources
        .iter()
        .map(|t| {
            toml::Value::Table(t.clone())
                .try_into::<SourceConfig>()
                .context("in a [[source]] table")
        })
        .collect::<Result<_>>()?;
    let sink_configs: Vec<SinkConfig> = config
        .sinks
        .iter()
        .map(|t| {
            toml::Value::Table(t.clone())
                .try_into::<SinkConfig>()
                .context("in a [[sink]] table")
        })
        .collect::<Result<_>>()?;
    if sources.is_empty() {
        bail!(
            "no [[source]] in {}: add one (kind = \"file\", \"pcap\" or \"stdin\")",
            path.display()
        );
    }
    let mut sinks: Vec<Box<dyn Sink>> = sink_configs
        .iter()
        .enumerate()
        .map(|(i, c)| build_sink(c, &data.join("spool"), i))
        .collect::<Result<_>>()?;
    if sinks.is_empty() {
        sinks.push(Box::new(sinks::StdoutSink));
    }

    let metrics = Arc::new(Metrics::default());
    // A first snapshot: the published one, else compile the feeds now.
    let snapshot = match Snapshot::open_current(&data) {
        Ok(s) => s,
        Err(_) if !config.feeds.is_empty() => {
            tracing::info!(
                "no snapshot yet in {}: updating feeds first",
                data.display()
            );
            feeds::update::update(
                &config,
                &config_dir,
                &data,
                &feeds::update::UpdateOptions::default(),
                &feeds::NoProgress,
            )
            .context("first feed update")?;
            Snapshot::open_current(&data)?
        }
        Err(e) => return Err(e).context("loading the snapshot"),
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

    let stop = Arc::new(AtomicBool::new(false));
    let reload_now = Arc::new(AtomicBool::new(false));
    let (sink_tx, sink_rx) = mpsc::sync_channel::<SinkJob>(16);
    let mut threads = Vec::new();

    // Sink thread.
    {
        let metrics = metrics.clone();
        let window = opts.suppress;
        threads.push(
            std::thread::Builder::new()
                .name("sinks".into())
                .spawn(move || sink_loop(sink_rx, sinks, window, &metrics))?,
        );
    }
    // Sources.
    let mut source_threads = Vec::new();
    for (i, src) in sources.into_iter().enumerate() {
        let env = SourceEnv {
            current: current.clone(),
            ctx: ctx.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
            sink: sink_tx.clone(),
            data: data.clone(),
            index: i,
        };
        source_threads.push(
            std::thread::Builder::new()
                .name(format!("source-{i}-{}", src.kind))
                .spawn(move || {
                    if let Err(e) = run_source(&src, &env) {
                        tracing::error!("source {} ({}): {e:#}", env.index, src.kind);
                    }
                })?,
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
                    reload_loop(
                        &data,
                        &current,
                        &metrics,
                        &stop,
                        &reload_now,
                        opts.reload_poll,
                    )
                })?,
        );
    }
    // Feed scheduler: only feeds with a `refresh` interval are refreshed by the daemon (the
    // update itself skips those not yet due); without any, snapshots come from `trawl update`
    // run elsewhere (cron, another host) and are picked up by the reload thread.
    let min_refresh = config
        .feeds
        .iter()
        .filter_map(|f| f.refresh.map(|r| r.0))
        .min();
    if min_refresh.is_none() {
        tracing::info!(
            "no [[feed]] has refresh = \"...\": the daemon will not refresh feeds itself"
        );
    }
    if let Some(interval) = min_refresh {
        let interval = interval.max(Duration::from_secs(60));
        let stop = stop.clone();
        let reload_now = reload_now.clone();
        let data = data.clone();
        let config = config.clone();
        threads.push(
            std::thread::Builder::new()
                .name("feeds".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        sleep_unless(&stop, interval);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match feeds::update::update(
                            &config,
                            &config_dir,
                            &data,
                            &feeds::update::UpdateOptions::default(),
                            &feeds::NoProgress,
                        ) {
                            Ok(_) => reload_now.store(true, Ordering::Relaxed),
                            Err(e) => tracing::warn!("scheduled feed update: {e:#}"),
                        }
                    }
                })?,
        );
    }

    // tokio: signals and the admin endpoint.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        if let Some(addr) = &opts.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the admin endpoint {addr}"))?;
            tracing::info!("admin endpoint on http://{addr}/metrics");
            let metrics = metrics.clone();
            tokio::spawn(async move { admin_server(listener, metrics).await });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the snapshot");
                    reload_now.store(true, Ordering::Relaxed);
                }
            }
        }
        anyhow::Ok(())
    })?;
    tracing::info!("stopping: finishing in-flight batches and flushing sinks");
    stop.store(true, Ordering::Relaxed);
    for t in source_threads {
        let _ = t.join();
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(ExitCode::SUCCESS)
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn admin_server(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Read the whole request head (it may arrive in several segments): closing with
            // unread bytes would make the kernel reset the connection under the response.
            let mut buf = [0u8; 4096];
            let mut n = 0;
            while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let (status, ctype, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "try /metrics or /healthz\n".to_string(),
                ),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

fn reload_loop(
    data: &Path,
    current: &ArcSwap<Snapshot>,
    metrics: &Metrics,
    stop: &AtomicBool,
    reload_now: &AtomicBool,
    poll: Duration,
) {
    let pointer = data.join("current");
    let mut seen = std::fs::read_to_string(&pointer).unwrap_or_default();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(poll.min(Duration::from_millis(200)));
        let now = std::fs::read_to_string(&pointer).unwrap_or_default();
        let forced = reload_now.swap(false, Ordering::Relaxed);
        if now == seen && !forced {
            continue;
        }
        match Snapshot::open_current(data) {
            Ok(s) => {
                let version = s.meta().version;
                metrics.snapshot_version.store(version, Ordering::Relaxed);
                metrics
                    .snapshot_indicators
                    .store(s.len() as u64, Ordering::Relaxed);
                // The old snapshot is freed when the last batch using it drops its Arc.
                current.store(Arc::new(s));
                metrics.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(version, "snapshot reloaded");
                seen = now;
            }
            Err(e) => tracing::warn!("reload failed, keeping the current snapshot: {e:#}"),
        }
    }
}

fn sink_loop(
    rx: Receiver<SinkJob>,
    mut sinks: Vec<Box<dyn Sink>>,
    window: Duration,
    metrics: &Metrics,
) {
    let mut suppressor = (!window.is_zero()).then(|| Suppressor::new(window));
    let write_all = |sinks: &mut Vec<Box<dyn Sink>>, lines: &[u8]| -> Result<(), String> {
        for s in sinks.iter_mut() {
            // Retry a failing sink a few times before reporting: the source keeps the batch
            // unacknowledged (and re-reads it after a restart) when we give up.
            let mut attempt = 0;
            loop {
                match s.write(lines) {
                    Ok(()) => break,
                    Err(e) if attempt < 5 => {
                        attempt += 1;
                        metrics.sink_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("sink {}: {e:#} (retry {attempt})", s.name());
                        std::thread::sleep(Duration::from_millis(100 << attempt));
                    }
                    Err(e) => return Err(format!("sink {}: {e:#}", s.name())),
                }
            }
        }
        Ok(())
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(job) => {
                let lines = match suppressor.as_mut() {
                    None => job.lines,
                    Some(sup) => {
                        let now = Instant::now();
                        let mut out = Vec::with_capacity(job.lines.len());
                        for line in job.lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                                out.extend_from_slice(line);
                                out.push(b'\n');
                                continue;
                            };
                            match sup.offer(v, now) {
                                Some(v) => crate::scan::write_json_line(&mut out, &v),
                                None => {
                                    metrics.suppressed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        out
                    }
                };
                let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
                let result = write_all(&mut sinks, &lines);
                if result.is_ok() {
                    metrics.alerts.fetch_add(n, Ordering::Relaxed);
                }
                if let Some(done) = job.done {
                    let _ = done.send(result);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(sup) = suppressor.as_mut() {
            let expired = sup.expire(Instant::now());
            if !expired.is_empty() {
                let mut out = Vec::new();
                for v in &expired {
                    crate::scan::write_json_line(&mut out, v);
                }
                if let Err(e) = write_all(&mut sinks, &out) {
                    tracing::error!("{e}");
                }
            }
        }
        for s in sinks.iter_mut() {
            if let Err(e) = s.tick() {
                tracing::warn!("sink {}: {e:#}", s.name());
            }
        }
    }
    if let Some(sup) = suppressor.as_mut() {
        let mut out = Vec::new();
        for v in sup.drain() {
            crate::scan::write_json_line(&mut out, &v);
        }
        if let Err(e) = write_all(&mut sinks, &out) {
            tracing::error!("{e}");
        }
    }
    for s in sinks.iter_mut() {
        if let Err(e) = s.close() {
            tracing::error!("closing sink {}: {e:#}", s.name());
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
    data: PathBuf,
    index: usize,
}

impl SourceEnv {
    /// Hand alert lines to the sinks and wait until they are durable.
    fn deliver(&self, lines: Vec<u8>) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.sink
            .send(SinkJob {
                lines,
                done: Some(tx),
            })
            .map_err(|_| anyhow::anyhow!("the sink thread stopped"))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("the sink thread stopped"),
        }
    }

    /// Match whole lines with the snapshot loaded now.
    fn match_batch(
        &self,
        parser: &dyn LineParser,
        raw: bool,
        path: &str,
        bytes: &[u8],
        base: u64,
    ) -> Vec<u8> {
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
        };
        let (out, stats) = match_lines(&job, bytes, base);
        self.metrics.lines.fetch_add(stats.lines, Ordering::Relaxed);
        self.metrics
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.metrics
            .parse_failures
            .fetch_add(stats.failures(), Ordering::Relaxed);
        if let Ok(mut m) = self.metrics.alerts_by_feed.lock() {
            for (feed, n) in &stats.alerts_by_feed {
                *m.entry(feed.clone()).or_default() += n;
            }
        }
        out
    }
}

fn log_format(spec: Option<&str>, head: &[u8]) -> Result<LogFormat> {
    match spec {
        None | Some("auto") => Ok(detect_format(head).unwrap_or(LogFormat::Raw)),
        Some(f) => f
            .parse::<LogFormat>()
            .map_err(|e| anyhow::anyhow!("format {f}: {e}")),
    }
}

fn file_head(path: &Path) -> Vec<u8> {
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_end(&mut head);
    }
    head
}

fn run_source(src: &SourceConfig, env: &SourceEnv) -> Result<()> {
    match src.kind.as_str() {
        "file" => run_file_source(src, env),
        "stdin" => run_stdin_source(src, env),
        "pcap" => run_pcap_source(src, env),
        other => bail!("unknown [[source]] kind {other:?}: use file, pcap or stdin"),
    }
}

fn run_file_source(src: &SourceConfig, env: &SourceEnv) -> Result<()> {
    use ingest::tail::{ReadFrom, TailConfig, Tailer};
    if src.paths.is_empty() {
        bail!("[[source]] kind = \"file\" needs paths = [\"/var/log/...\"]");
    }
    let mut cfg = TailConfig::new(
        src.paths.clone(),
        env.data.join(format!("checkpoints-{}.json", env.index)),
    );
    cfg.read_from = match src.read_from.as_deref() {
        None | Some("beginning") => ReadFrom::Beginning,
        Some("end") => ReadFrom::End,
        Some(other) => bail!("read_from = {other:?}: use \"beginning\" or \"end\""),
    };
    let mut tailer = Tailer::new(cfg).context("starting the file tailer")?;
    let mut parsers: HashMap<String, (Box<dyn LineParser>, bool)> = HashMap::new();
    while !env.stop.load(Ordering::Relaxed) {
        let Some(batch) = tailer
            .next_batch(Duration::from_millis(250))
            .context("tailing")?
        else {
            continue;
        };
        let path = batch.path.to_string_lossy().into_owned();
        let key = batch.fingerprint.to_string();
        if !parsers.contains_key(&key) {
            let head = file_head(&batch.path);
            let head = if head.is_empty() {
                batch.bytes.clone()
            } else {
                head
            };
            let format = log_format(src.format.as_deref(), &head)?;
            let parser = parser_for(format, &head, None)?;
            parsers.insert(key.clone(), (parser, format == LogFormat::Raw));
        }
        let Some((parser, raw)) = parsers.get(&key) else {
            continue;
        };
        let alerts = env.match_batch(parser.as_ref(), *raw, &path, &batch.bytes, batch.offset);
        env.deliver(alerts)?;
        tailer.ack(&batch.id).context("checkpointing")?;
        if let Ok(mut lag) = env.metrics.lag_by_file.lock() {
            for f in tailer.stats().files {
                lag.insert(f.path.to_string_lossy().into_owned(), f.lag_bytes);
            }
        }
    }
    Ok(())
}

fn run_stdin_source(src: &SourceConfig, env: &SourceEnv) -> Result<()> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut offset = 0u64;
    let mut parser: Option<(Box<dyn LineParser>, bool)> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Batches of whole lines, up to ~1 MiB.
        while buf.len() < (1 << 20) {
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if !reader.fill_buf().map(|b| !b.is_empty()).unwrap_or(false) {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        if parser.is_none() {
            let format = log_format(src.format.as_deref(), &buf)?;
            parser = Some((parser_for(format, &buf, None)?, format == LogFormat::Raw));
        }
        if let Some((p, raw)) = &parser {
            let alerts = env.match_batch(p.as_ref(), *raw, "-", &buf, offset);
            env.deliver(alerts)?;
        }
        offset += buf.len() as u64;
        if env.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

fn run_pcap_source(src: &SourceConfig, env: &SourceEnv) -> Result<()> {
    use ingest::packet;
    let Some(interface) = src.interface.clone() else {
        bail!("[[source]] kind = \"pcap\" needs interface = \"eth0\"");
    };
    let mut cfg = packet::LiveOptions::new(&interface);
    cfg.bpf = src.bpf.clone().unwrap_or_default();
    cfg.snaplen = src.snaplen.unwrap_or(65535);
    cfg.promisc = src.promisc.unwrap_or(true);
    let mut hits = Vec::new();
    let now = crate::scan::now_ns();
    let stats = packet::sniff(
        cfg,
        &env.stop,
        |batch: Vec<ingest::Observation<'static>>| {
            // A fresh scratch per batch: its record cache belongs to one snapshot.
            let mut scratch = crate::correlate::Scratch::default();
            let snapshot = env.current.load_full();
            let correlator = Correlator::new(&snapshot, HitFilter::default());
            let mut out = Vec::new();
            for obs in &batch {
                hits.clear();
                correlator.correlate_with(obs, obs.dataset == "flow", &mut scratch, &mut hits);
                for hit in &hits {
                    crate::scan::write_json_line(
                        &mut out,
                        &crate::alert::build_alert(&env.ctx, obs, hit, None, now),
                    );
                }
            }
            env.metrics
                .packets
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            if !out.is_empty() {
                if let Err(e) = env.deliver(out) {
                    tracing::error!("pcap source {interface}: {e:#}");
                }
            }
        },
    )
    .with_context(|| format!("capturing on {}", src.interface.as_deref().unwrap_or("")))?;
    tracing::info!(
        "capture on {interface} ended: {:?}",
        serde_json::to_string(&stats).ok()
    );
    Ok(())
}
