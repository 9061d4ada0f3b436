//! `trawl replay`, `trawl sniff` and `trawl observe` on captures.

use crate::alert::{AlertBatch, AlertOutput};
use crate::cli::{AlertArgs, DataArgs};
use crate::correlate::Correlator;
use crate::scan::{now_ns, write_json_line};
use crate::setup::{match_setup, refuse_overwrite, AlertOut};
use anyhow::{Context, Result};
use ingest::packet::{self, DecoderLimits, PacketDecoder};
use ingest::{Observation, Origin};
use sensor::packets::{alerts_for_packet, PacketScratch};
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
pub fn replay_cmd(
    data: &DataArgs,
    alert: &AlertArgs,
    threads: Option<usize>,
    record: Option<&Mutex<Recorder>>,
    files: &[PathBuf],
    quiet: bool,
) -> Result<ExitCode> {
    let setup = match_setup(data, alert)?;
    refuse_overwrite(alert.output.as_deref(), files, &setup.dir)?;
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
    let stats = packet::replay_parallel(files, workers, limits.clone(), &sink)
        .context("replaying captures")?;
    let mut made = made.into_inner().unwrap_or_default();
    made.sort_by_key(|r| r.key);
    let mut out = AlertOut::open(alert)?;
    let mut alerts = 0u64;
    for r in made {
        alerts += r.alerts.len() as u64;
        out.write_batch(r.alerts).context("writing alerts")?;
    }
    let folded = out.finish()?;
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
    let out = Mutex::new(AlertOut::open(alert)?);
    let now = now_ns();
    let typed = out.lock().is_ok_and(|o| o.wants_typed());
    let mut buffers = PacketScratch::default();
    let mut feeds = BTreeMap::new();
    let mut cfg = packet::LiveOptions::new(&args.interface);
    cfg.bpf = args.bpf.clone().unwrap_or_default();
    cfg.snaplen = args.snaplen;
    cfg.promisc = args.promisc;
    cfg.max_packets = args.count;
    cfg.max_duration = args.duration.map(std::time::Duration::from_secs);
    let stats = packet::sniff(cfg, &stop, |batch: Vec<Observation<'static>>| {
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
                if let Ok(mut o) = out.lock() {
                    // Live alerts are written (and flushed) as they happen.
                    let _ = o.write_batch(alerts).and_then(|_| o.flush_alerts());
                }
            }
        }
    })
    .with_context(|| format!("capturing on {}", args.interface))?;
    if let Ok(o) = out.into_inner() {
        o.finish()?;
    }
    if !quiet {
        eprintln!("{}", serde_json::to_string(&stats)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `f` on SIGINT/SIGTERM (graceful stop of live capture).
fn ctrlc_like(f: impl Fn() + Send + Sync + 'static) {
    let _ = ctrlc::set_handler(f);
}
