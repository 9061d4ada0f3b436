//! `trawl replay`, `trawl sniff` and `trawl observe` on captures.

use crate::alert::{AlertBatch, AlertOutput};
use crate::cli::{AlertArgs, DataArgs};
use crate::correlate::Correlator;
use crate::scan::{now_ns, write_json_line};
use crate::setup::{match_setup, refuse_overwrite, AlertOut, ReportTarget};
use anyhow::{Context, Result};
use ingest::packet::LiveEvent;
use ingest::packet::{self, DecoderLimits, PacketDecoder};
use ingest::{Observation, Origin};
use sensor::packets::{alerts_for_packet, warn_new_drops, PacketScratch};
use sensor::privilege::{drop_capabilities, drop_to_user};
use sensor::retro::record::Recorder;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Alerts of one observation with the key that restores capture order.
struct PacketAlerts {
    key: (usize, u64, u64),
    alerts: AlertBatch,
}

/// `trawl replay FILE...`.
#[allow(clippy::too_many_arguments)]
pub fn replay_cmd(
    data: &DataArgs,
    alert: &AlertArgs,
    threads: Option<usize>,
    bpf: Option<&str>,
    record: Option<&Mutex<Recorder>>,
    files: &[PathBuf],
    report: Option<ReportTarget>,
    quiet: bool,
) -> Result<ExitCode> {
    let filter = bpf.map(packet::BpfFilter::new).transpose()?;
    let files = &capture_files(files)?;
    let setup = match_setup(data, alert)?;
    refuse_overwrite(alert.output.as_deref(), files, &setup.dir)?;
    refuse_overwrite(report.as_ref().map(|r| r.path.as_path()), files, &setup.dir)?;
    let correlator = Correlator::new(&setup.snapshot, setup.filter);
    let workers = threads.unwrap_or_else(rayon::current_num_threads).max(1);
    let started = Instant::now();
    let now = now_ns();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    // --suppress folds typed alerts; the output is opened once the captures are read.
    let typed = alert.suppress.is_some();
    let made: Mutex<Vec<PacketAlerts>> = Mutex::new(Vec::new());
    let by_feed: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    let sink = |_worker: usize, batch: Vec<Observation<'static>>| {
        let mut buffers = PacketScratch::default();
        let mut local = Vec::new();
        let mut feeds = BTreeMap::new();
        let mut recording = record.map(|r| {
            r.lock()
                .map_or_else(|p| p.into_inner().buffer(), |r| r.buffer())
        });
        for (seq, obs) in batch.iter().enumerate() {
            if let Some(p) = recording.as_mut() {
                p.observe(obs, now);
            }
            let mut alerts = AlertBatch::new(typed);
            let n = alerts_for_packet(
                &correlator,
                &setup.ctx,
                obs,
                now,
                &mut buffers,
                &mut alerts,
                &mut feeds,
            );
            if n == 0 {
                continue;
            }
            let key = match &obs.origin {
                Origin::Packet { capture, number } => (
                    names
                        .iter()
                        .position(|n| n == capture)
                        .unwrap_or(usize::MAX),
                    *number,
                    seq as u64,
                ),
                _ => (usize::MAX, 0, seq as u64),
            };
            local.push(PacketAlerts { key, alerts });
        }
        if let Ok(mut r) = made.lock() {
            r.extend(local);
        }
        if let (Some(p), Some(r)) = (recording, record) {
            let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = r.absorb(p) {
                tracing::warn!("recording the retro index: {e}");
            }
        }
        if let Ok(mut b) = by_feed.lock() {
            for (k, v) in feeds {
                *b.entry(k).or_default() += v;
            }
        }
    };
    let limits = DecoderLimits::default();
    let stats = packet::replay_parallel_filtered(files, workers, limits.clone(), filter, &sink)
        .context("replaying captures")?;
    let mut made = made.into_inner().unwrap_or_default();
    made.sort_by_key(|r| r.key);
    let mut out = AlertOut::open(alert, report)?;
    let mut alerts = 0u64;
    for r in made {
        alerts += r.alerts.len() as u64;
        out.write_batch(r.alerts).context("writing alerts")?;
    }
    let folded = out.finish(quiet)?;
    // Like tshark: each capture read only in part (or not at all) is an error on stderr, and
    // the alerts of what could be read are kept.
    for e in &stats.errors {
        eprintln!("trawl: {e}");
    }
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        let summary = serde_json::json!({
            "files": files.len(),
            "seconds": secs,
            "alerts": alerts,
            "folded_by_suppress": folded,
            "alerts_by_feed": by_feed.into_inner().unwrap_or_default(),
            "decode": stats,
            "workers": workers,
            "limits_per_worker": limits,
        });
        if alert.summary_json {
            eprintln!("{summary}");
        } else {
            let d = &summary["decode"]["decode"];
            if bpf.is_some() {
                eprintln!("BPF filter: {} packets left out", stats.filtered_out);
            }
            eprintln!(
                "replayed {} capture(s) in {:.2} s: {} packets, {} observations, {} alerts; dropped by reason: {}",
                files.len(),
                secs,
                d["packets"],
                d["observations"],
                alerts,
                d["dropped_by_reason"]
            );
            // State is capped per worker; say what the caps did.
            eprintln!(
                "state: flows {} tracked at end, {} evicted (cap {} per worker x {workers}); fragments {} reassembled, {} timed out, {} bytes held (cap {} bytes, {} datagrams per worker)",
                d["flows_active"],
                d["flows_evicted"],
                limits.max_flows,
                d["frag_reassembled"],
                d["frag_timeouts"],
                d["frag_bytes_held"],
                limits.max_frag_bytes,
                limits.max_frag_datagrams,
            );
        }
    }
    Ok(if stats.errors.is_empty() {
        crate::exit::Exit::Ok
    } else {
        crate::exit::Exit::Partial
    }
    .into())
}

/// The captures to replay: files as given; a directory's files in the order of their first
/// packet's timestamp (then by name), so that flows continue across them. A file of a
/// directory with no packet in its first MiB (not a capture) is skipped, and said so.
fn capture_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut found = Vec::new();
        let entries =
            std::fs::read_dir(input).with_context(|| format!("listing {}", input.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", input.display()))?
                .path();
            if !path.is_file() {
                continue;
            }
            match packet::first_timestamp(&path) {
                Some(ts) => found.push((ts, path)),
                None => eprintln!(
                    "trawl: {}: no packet in its first MiB (not a capture?), skipped",
                    path.display()
                ),
            }
        }
        if found.is_empty() {
            anyhow::bail!(
                "{}: no capture in this directory (replay takes pcap/pcapng files or directories of them)",
                input.display()
            );
        }
        found.sort();
        files.extend(found.into_iter().map(|(_, p)| p));
    }
    Ok(files)
}

/// `trawl observe` on a capture: every observation in packet order.
pub fn observe_capture(path: &Path, out: &mut dyn Write) -> Result<()> {
    let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let mut decoder = PacketDecoder::new(DecoderLimits::default());
    let mut batch: Vec<Observation<'static>> = Vec::new();
    let mut write_err = None;
    let result = packet::read_capture(path, |pkt| {
        batch.clear();
        let origin = Origin::Packet {
            capture: std::borrow::Cow::Owned(name.to_string()),
            number: pkt.number,
        };
        decoder.decode(pkt.link, pkt.ts_ns, pkt.data, origin, &mut batch);
        for obs in &batch {
            let mut line = Vec::new();
            write_json_line(&mut line, &Value::Object(obs.to_ecs()));
            if let Err(e) = out.write_all(&line) {
                write_err.get_or_insert(e);
            }
        }
    });
    if let Some(e) = write_err {
        return Err(e).context("writing observations");
    }
    result.with_context(|| format!("reading {}", path.display()))?;
    Ok(())
}

/// Options of `trawl sniff`.
#[derive(Debug, Clone)]
pub struct SniffArgs {
    /// Interface.
    pub interface: String,
    /// BPF filter.
    pub bpf: Option<String>,
    /// Snap length.
    pub snaplen: i32,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Kernel ring size in MiB.
    pub buffer_mib: i32,
    /// Drop to this user once the capture is open.
    pub user: Option<String>,
    /// Capture handles in one kernel fanout group, one thread each.
    pub workers: usize,
    /// Each worker's capture → decoder queue, in batches.
    pub queue_batches: usize,
    /// Stop after N packets.
    pub count: Option<u64>,
    /// Stop after N seconds.
    pub duration: Option<u64>,
}

/// `trawl sniff -i IFACE`.
pub fn sniff_cmd(
    data: &DataArgs,
    alert: &AlertArgs,
    args: SniffArgs,
    quiet: bool,
) -> Result<ExitCode> {
    let setup = match_setup(data, alert)?;
    refuse_overwrite(alert.output.as_deref(), &[], &setup.dir)?;
    let correlator = Correlator::new(&setup.snapshot, setup.filter);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc_like(move || stop.store(true, Ordering::SeqCst));
    }
    let mut out = AlertOut::open(alert, None)?;
    let now = now_ns();
    let typed = out.wants_typed();
    if args.workers > 1 && args.count.is_some() {
        anyhow::bail!(
            "--count stops one capture; with --workers {} stop with --duration or Ctrl-C",
            args.workers
        );
    }
    let mut cfg = packet::LiveOptions::new(&args.interface);
    cfg.bpf = args.bpf.clone().unwrap_or_default();
    cfg.snaplen = args.snaplen;
    cfg.promisc = args.promisc;
    cfg.max_packets = args.count;
    cfg.max_duration = args.duration.map(std::time::Duration::from_secs);
    cfg.buffer_size = args.buffer_mib << 20;
    cfg.queue_batches = args.queue_batches;
    // Several workers: one handle each, in one kernel fanout group (a group id is per network
    // namespace: the process id keeps two sniffers apart).
    if args.workers > 1 {
        cfg.fanout = Some((std::process::id() & 0xffff) as u16);
    }
    let mut caps = Vec::new();
    for _ in 0..args.workers {
        caps.push(
            packet::LiveCapture::open(cfg.clone())
                .with_context(|| format!("opening {} for capture", args.interface))?,
        );
    }
    // The capture handles and the output are open: nothing below needs root.
    match &args.user {
        Some(user) => {
            drop_to_user(user)?;
            tracing::info!("capturing on {} as user {user}", args.interface);
        }
        None => drop_capabilities()?,
    }
    // Workers match; the alerts go to this thread, which writes them (and flushes each batch:
    // live alerts are written as they happen).
    let (alerts_tx, alerts_rx) = std::sync::mpsc::sync_channel::<AlertBatch>(1024);
    let worker = |cap: &mut packet::LiveCapture,
                  label: String,
                  tx: std::sync::mpsc::SyncSender<AlertBatch>| {
        let mut buffers = PacketScratch::default();
        let mut feeds = BTreeMap::new();
        let mut lost = 0;
        let tick = std::time::Duration::from_secs(1);
        let stats = cap.run_events(&stop, tick, |ev| {
            let batch = match ev {
                LiveEvent::Observations(batch) => batch,
                LiveEvent::Stats(st) => {
                    warn_new_drops(&label, st, &mut lost);
                    return;
                }
            };
            for obs in &batch {
                let mut alerts = AlertBatch::new(typed);
                if alerts_for_packet(
                    &correlator,
                    &setup.ctx,
                    obs,
                    now,
                    &mut buffers,
                    &mut alerts,
                    &mut feeds,
                ) > 0
                {
                    let _ = tx.send(alerts);
                }
            }
        });
        if let Ok(st) = &stats {
            warn_new_drops(&label, st, &mut lost);
        }
        // One worker ending (an error, its duration) ends them all.
        stop.store(true, Ordering::SeqCst);
        stats
    };
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = caps
            .iter_mut()
            .enumerate()
            .map(|(i, cap)| {
                let label = if args.workers > 1 {
                    format!("{} (worker {i})", args.interface)
                } else {
                    args.interface.clone()
                };
                let (worker, tx) = (&worker, alerts_tx.clone());
                scope.spawn(move || worker(cap, label, tx))
            })
            .collect();
        drop(alerts_tx);
        for alerts in alerts_rx {
            let _ = out.write_batch(alerts).and_then(|_| out.flush_alerts());
        }
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut stats = packet::LiveStats::default();
    for r in results {
        let st = r
            .map_err(|_| anyhow::anyhow!("a capture worker panicked"))?
            .with_context(|| format!("capturing on {}", args.interface))?;
        stats.merge(&st);
    }
    out.finish(true)?;
    if !quiet {
        eprintln!(
            "captured {} packets on {}: {} dropped by the kernel (ring full), {} by the \
             interface, {} by trawl (decoder queue full)",
            stats.decode.packets,
            args.interface,
            stats.kernel_dropped,
            stats.if_dropped,
            stats.queue_dropped
        );
        eprintln!("{}", serde_json::to_string(&stats)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `f` on SIGINT/SIGTERM (graceful stop of live capture).
fn ctrlc_like(f: impl Fn() + Send + Sync + 'static) {
    let _ = ctrlc::set_handler(f);
}
