//! What the matching commands share: the config and data directory, the snapshot with its
//! hit filter and alert context, the alert output (with `--suppress`), and the guard that
//! refuses an output naming an input. `commands` and `replay` both use it; neither imports
//! the other.

use crate::alert::{AlertBatch, AlertContext, AlertOutput};
use crate::cli::{AlertArgs, DataArgs};
use crate::correlate::HitFilter;
use crate::daemon::suppress::SuppressWriter;
use anyhow::{bail, Context, Result};
use feeds::config::Config;
use matcher::Snapshot;
use sensor::report::{write_report_file, Report, ReportTee, SharedReport};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The config named by --config/$TRAWL_CONFIG, else ./trawl.toml when present.
pub fn load_config(explicit: Option<&Path>) -> Result<Option<(Config, PathBuf)>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from("trawl.toml");
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok(Some((config, path)))
}

/// --data, $TRAWL_DATA, the config's [sensor] data, else ~/.local/share/trawl.
pub fn data_dir(args: &DataArgs, config: Option<&Config>) -> PathBuf {
    if let Some(d) = &args.data {
        return d.clone();
    }
    if let Some(d) = config.and_then(Config::data_dir) {
        return d;
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("trawl")
}

pub fn open_snapshot(dir: &Path) -> Result<Snapshot> {
    let snapshot = match Snapshot::open_current(dir) {
        Ok(s) => s,
        Err(matcher::SnapshotError::NoSnapshot(_)) => bail!(
            "no snapshot in {}: run `trawl update --config trawl.toml --data {}` first",
            dir.display(),
            dir.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("loading the snapshot from {}", dir.display()))
        }
    };
    if snapshot.prefilter_outdated() {
        tracing::warn!(
            "the snapshot in {} has a pre-screen written by another trawl version: scans stay \
             exact but run slower until it is rebuilt (run `trawl update --force` with the \
             config that builds it)",
            dir.display()
        );
    }
    Ok(snapshot)
}

/// `observer.name`: --sensor-name, the config's [sensor] name, the host name, else `trawl`.
pub fn sensor_name(explicit: Option<&str>, config: Option<&Config>) -> String {
    if let Some(n) = explicit {
        return n.to_string();
    }
    if let Some(c) = config {
        if !c.sensor.name.is_empty() {
            return c.sensor.name.clone();
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "trawl".into())
}

/// The `-c`/`-s` options as a hit filter.
pub fn hit_filter(alert: &AlertArgs) -> HitFilter {
    HitFilter {
        min_confidence: alert.min_confidence,
        min_severity: alert.min_severity,
    }
}

/// Open the alert destination: -o FILE or stdout.
pub fn alert_output(alert: &AlertArgs) -> Result<Box<dyn Write>> {
    Ok(match &alert.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock())),
    })
}

/// `-o` must not name one of the inputs (a log, a capture, a file of the data directory):
/// compared by device and inode, so a symlink or a hard link to an input is caught too.
/// Checked before the output is created, which would truncate it.
pub fn refuse_overwrite(output: Option<&Path>, inputs: &[PathBuf], data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(out) = output else { return Ok(()) };
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(()); // a new file cannot be an input
    };
    if !o.is_file() {
        return Ok(()); // /dev/null, a FIFO: writing there destroys nothing
    }
    let same =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == o.dev() && m.ino() == o.ino());
    let refuse = |what: String| -> Result<()> {
        Err(crate::exit::Usage(format!(
            "-o {}: that is {what}; refusing to overwrite an input",
            out.display()
        ))
        .into())
    };
    for input in inputs.iter().filter(|i| i.as_os_str() != "-") {
        if same(input) {
            return refuse(format!("the input {}", input.display()));
        }
    }
    // The data directory holds the snapshot (mapped while we run), feed state and query log.
    let mut dirs = vec![(data_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 3 => dirs.push((path, depth + 1)),
                Ok(_) if same(&path) => {
                    return refuse(format!("{}, in the data directory", path.display()))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The alert stream of scan/replay/sniff: plain, or folded by `--suppress`; with
/// `--report`, every line written is also counted into the HTML report.
pub struct AlertOut {
    stream: Stream,
    report: Option<(ReportTarget, SharedReport)>,
}

enum Stream {
    /// Every alert as it comes.
    Plain(Box<dyn Write>),
    /// Repeats folded by event time.
    Folding(SuppressWriter<Box<dyn Write>>),
}

/// `--report FILE.html` and what the page's title says was run.
pub struct ReportTarget {
    /// The page to write.
    pub path: PathBuf,
    /// What was run over what (`scan of access.log`).
    pub title: String,
}

impl ReportTarget {
    /// The target of `--report`, titled `what` and the inputs' names.
    pub fn of(path: Option<&Path>, what: &str, inputs: &[PathBuf]) -> Option<ReportTarget> {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        let mut title = format!("{what} of {}", names.join(", "));
        if title.chars().count() > 200 {
            title = format!("{what} of {} and {} more", names[0], names.len() - 1);
        }
        path.map(|p| ReportTarget {
            path: p.to_path_buf(),
            title,
        })
    }

    /// Write `report` to the target, saying where.
    pub fn write(&self, report: &Report, quiet: bool) -> Result<()> {
        write_report_file(report, &self.title, &self.path)
            .with_context(|| format!("writing the report {}", self.path.display()))?;
        if !quiet {
            eprintln!(
                "report of {} alert(s) written to {}",
                report.alerts,
                self.path.display()
            );
        }
        Ok(())
    }
}

impl AlertOut {
    /// The destination of `alert` (-o or stdout), folding when --suppress was given, and
    /// counted into `report` when given.
    pub fn open(alert: &AlertArgs, report: Option<ReportTarget>) -> Result<AlertOut> {
        if let (Some(r), Some(o)) = (&report, &alert.output) {
            if r.path == *o {
                return Err(crate::exit::Usage(format!(
                    "--report {} is also the -o alert file: give the report its own name \
                     (FILE.html)",
                    r.path.display()
                ))
                .into());
            }
        }
        let mut out = alert_output(alert)?;
        let report = report.map(|t| (t, SharedReport::new()));
        if let Some((_, shared)) = &report {
            out = Box::new(ReportTee::new(out, shared.clone()));
        }
        let stream = match alert.suppress {
            None => Stream::Plain(out),
            Some(w) => Stream::Folding(SuppressWriter::new(out, w)),
        };
        Ok(AlertOut { stream, report })
    }

    /// Flush (and emit what is still folded), write the report; returns how many alerts
    /// were folded.
    pub fn finish(self, quiet: bool) -> Result<u64> {
        let folded = match self.stream {
            Stream::Plain(mut w) => {
                w.flush().context("writing alerts")?;
                0
            }
            Stream::Folding(w) => w.finish().context("writing alerts")?,
        };
        if let Some((target, shared)) = &self.report {
            shared.with(|r| target.write(r, quiet))?;
        }
        Ok(folded)
    }
}

impl AlertOutput for AlertOut {
    fn wants_typed(&self) -> bool {
        match &self.stream {
            Stream::Plain(w) => w.wants_typed(),
            Stream::Folding(w) => w.wants_typed(),
        }
    }
    fn write_batch(&mut self, batch: AlertBatch) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Plain(w) => w.write_batch(batch),
            Stream::Folding(w) => w.write_batch(batch),
        }
    }
    fn flush_alerts(&mut self) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Plain(w) => w.flush_alerts(),
            Stream::Folding(w) => w.flush_alerts(),
        }
    }
}

/// Everything the matching commands share: the snapshot, the alert context and filter.
pub struct MatchSetup {
    /// The loaded snapshot.
    pub snapshot: Snapshot,
    /// The data directory it came from.
    pub dir: PathBuf,
    /// observer.* of alerts.
    pub ctx: AlertContext,
    /// -c / -s.
    pub filter: HitFilter,
}

/// Load config, data dir and snapshot for scan/replay/sniff.
pub fn match_setup(data: &DataArgs, alert: &AlertArgs) -> Result<MatchSetup> {
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let dir = data_dir(data, cfg);
    let snapshot = open_snapshot(&dir)?;
    tracing::info!(
        version = snapshot.meta().version,
        indicators = snapshot.len(),
        "snapshot loaded from {}",
        dir.display()
    );
    Ok(MatchSetup {
        snapshot,
        dir,
        ctx: AlertContext {
            observer_name: sensor_name(alert.sensor_name.as_deref(), cfg),
        },
        filter: hit_filter(alert),
    })
}
