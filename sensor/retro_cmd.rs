//! `trawl hunt`, and the `--record` of `scan` and `replay`, over the retro index
//! (`sensor::retro`, ARCHITECTURE.md §10).

use crate::alert::AlertContext;
use crate::cli::DataArgs;
use crate::correlate::{Correlator, HitFilter};
use crate::setup::{data_dir, load_config, refuse_overwrite, sensor_name, ReportTarget};
use anyhow::{bail, Context, Result};
use feeds::config::Config;
use matcher::{Indicator, Snapshot, SnapshotBuilder};
use sensor::report::Report;
use sensor::retro::config::RetroConfig;
use sensor::retro::hunt::{hunt, HuntScope, Sighting};
use sensor::retro::record::{now_secs, Recorder};
use sensor::retro::segment::Check;
use sensor::retro::store::RetroStore;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The config's `[retro]`, defaults when absent.
fn retro_config(config: Option<&Config>) -> Result<RetroConfig> {
    match config.and_then(|c| c.retro.as_ref()) {
        Some(t) => Ok(RetroConfig::from_table(t)?),
        None => Ok(RetroConfig::default()),
    }
}

/// The recorder of `--record`: the data directory's index, the config's `[retro]`.
pub fn open_recorder(data: &DataArgs) -> Result<Arc<Mutex<Recorder>>> {
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let dir = data_dir(data, cfg);
    let recorder = Recorder::open(&dir, retro_config(cfg)?)
        .with_context(|| format!("opening the retro index in {}", dir.display()))?;
    for e in &recorder.set_aside() {
        eprintln!("trawl: warning: retro index: {e}; set aside, the rest still answers");
    }
    Ok(Arc::new(Mutex::new(recorder)))
}

/// Write what `--record` still holds and say what was recorded.
pub fn finish_recorder(recorder: &Mutex<Recorder>, quiet: bool) -> Result<()> {
    let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
    r.flush().context("writing the retro index")?;
    let t = r.totals();
    if !quiet {
        let store = r.view();
        let values: usize = store.segments().iter().map(|s| s.len()).sum();
        eprintln!(
            "retro index: {} observations recorded, {} rejected for their time (older than the \
             retention or over a day ahead); {} segments, {} values, {} bytes",
            t.observed,
            t.rejected,
            store.segments().len(),
            values,
            store.total_bytes()
        );
    }
    Ok(())
}

/// What `trawl hunt` was asked.
pub struct HuntArgs {
    /// `--since`.
    pub since: Option<Duration>,
    /// `--format json`.
    pub json: bool,
    /// `--indicators FILE`.
    pub indicators: Option<PathBuf>,
    /// `--feed NAME`.
    pub feed: Option<String>,
    /// The values on the command line.
    pub values: Vec<String>,
    /// `--report FILE.html`.
    pub report: Option<PathBuf>,
}

/// The values to hunt, normalised: each refused one is said on stderr with its line.
fn hunted_values(args: &HuntArgs, current: Option<&Snapshot>) -> Result<Vec<Indicator>> {
    let mut raw: Vec<(String, String)> = args
        .values
        .iter()
        .map(|v| (format!("argument {v:?}"), v.clone()))
        .collect();
    if let Some(path) = &args.indicators {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let v = line.trim();
            if !v.is_empty() && !v.starts_with('#') {
                raw.push((format!("{}:{}", path.display(), i + 1), v.to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for (at, v) in raw {
        match matcher::normalize(&v, None) {
            Ok(n) => {
                let known = current
                    .and_then(|s| s.find(n.itype, &n.value).and_then(|id| s.try_indicator(id)))
                    .filter(|i| !i.allowlist);
                // Asked by name: an allowlist does not hide it from the analyst.
                let mut ind = known.unwrap_or_else(|| Indicator::new(n.value, n.itype, "hunt"));
                ind.allowlisted_by = None;
                out.push(ind);
            }
            Err(e) => eprintln!("trawl: {at}: skipped: {e}"),
        }
    }
    Ok(out)
}

/// `trawl hunt`.
pub fn hunt_cmd(data: &DataArgs, args: HuntArgs) -> Result<ExitCode> {
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let dir = data_dir(data, cfg);
    let retro = retro_config(cfg)?;
    let index_dir = RetroStore::dir_of(&dir);
    if !index_dir.is_dir() {
        bail!(
            "no retro index in {}: record one with `trawl scan --record LOG...` or `trawl \
             replay --record CAPTURE...`, or add [retro] to the config of `trawl run`",
            dir.display()
        );
    }
    let store = RetroStore::open_read_only(&index_dir, Check::Structure)
        .with_context(|| format!("opening the retro index in {}", index_dir.display()))?;
    for e in &store.set_aside {
        eprintln!("trawl: warning: retro index: {e}; set aside, the rest still answers");
    }
    let current = Snapshot::open_current(&dir).ok();
    let (snapshot, ids): (Snapshot, Vec<u32>) = match &args.feed {
        Some(feed) => {
            let Some(snap) = current else {
                bail!(
                    "--feed needs a snapshot in {}: run `trawl update` first",
                    dir.display()
                );
            };
            let ids: Vec<u32> = snap
                .iter()
                .enumerate()
                .filter(|(_, i)| i.sources.iter().any(|s| s == feed))
                .filter_map(|(id, _)| u32::try_from(id).ok())
                .collect();
            if ids.is_empty() {
                bail!(
                    "no indicator of feed {feed:?} in the snapshot: `trawl feeds` lists the feeds"
                );
            }
            (snap, ids)
        }
        None => {
            if args.values.is_empty() && args.indicators.is_none() {
                bail!("nothing to hunt: give VALUE..., --indicators FILE or --feed NAME");
            }
            let wanted = hunted_values(&args, current.as_ref())?;
            if wanted.is_empty() {
                bail!("no valid value to hunt (each refused one is said above)");
            }
            let snap = SnapshotBuilder::from_indicators(wanted)
                .build()
                .context("compiling the hunted values")?;
            let ids = (0..snap.len())
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
            (snap, ids)
        }
    };
    let since = match args.since {
        Some(d) => d,
        None => retro.retention,
    };
    let now = now_secs();
    let scope = HuntScope {
        since: now.saturating_sub(i64::try_from(since.as_secs()).unwrap_or(i64::MAX)),
        per_partition: false,
        clients: sensor::retro::config::MAX_CLIENTS,
    };
    let correlator = Correlator::new(&snapshot, HitFilter::default());
    // A segment damaged since it was checked whole can make the FST reader panic: `hunt`
    // catches that and warns; the panic's own message would only confuse.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !sensor::retro::hunt::reading_guarded() {
            default_hook(info);
        }
    }));
    let found = hunt(&store, &snapshot, &correlator, ids.iter().copied(), scope);
    let ctx = AlertContext {
        observer_name: sensor_name(None, cfg),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let now_ns = now.saturating_mul(1_000_000_000);
    if args.json {
        for s in &found {
            s.alert(&ctx, now_ns).write_line(&mut out)?;
        }
    } else {
        write_table(&mut out, &found)?;
    }
    out.flush()?;
    let what = match &args.feed {
        Some(f) => vec![PathBuf::from(format!("feed {f}"))],
        None => args
            .values
            .iter()
            .map(PathBuf::from)
            .chain(args.indicators.iter().cloned())
            .collect(),
    };
    if let Some(target) = ReportTarget::of(args.report.as_deref(), "trawl hunt", &what) {
        refuse_overwrite(
            Some(&target.path),
            &args.indicators.iter().cloned().collect::<Vec<_>>(),
            &dir,
        )?;
        let mut report = Report::new();
        for s in &found {
            report.add(s.alert(&ctx, now_ns).doc());
        }
        target.write(&report, false)?;
    }
    let indicators: std::collections::BTreeSet<u32> = found.iter().map(|s| s.hit.hit.id).collect();
    eprintln!(
        "{} observed value(s) matched {} of {} indicator(s) in {} partition(s) of {}",
        found.len(),
        indicators.len(),
        ids.len(),
        store
            .segments()
            .iter()
            .filter(|s| s.end() > scope.since)
            .count(),
        index_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut dyn Write, found: &[Sighting]) -> Result<()> {
    let time = |t: i64| ingest::observation::format_timestamp(t.saturating_mul(1_000_000_000));
    writeln!(
        out,
        "{:<32} {:<40} {:<24} {:<24} {:>8}  {:<24} CLIENTS",
        "INDICATOR", "OBSERVED", "FIRST SEEN", "LAST SEEN", "COUNT", "FIELD"
    )?;
    for s in found {
        let clients: Vec<String> = s.stats.clients.iter().map(|c| c.to_string()).collect();
        writeln!(
            out,
            "{:<32} {:<40} {:<24} {:<24} {:>8}  {:<24} {}",
            s.hit.indicator.value,
            s.observed.text(),
            time(s.stats.first),
            time(s.stats.last),
            s.stats.count,
            s.hit.field,
            clients.join(",")
        )?;
    }
    Ok(())
}
