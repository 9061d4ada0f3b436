//! The subcommands' implementations.

use crate::alert::AlertContext;
use crate::cli::{AlertArgs, Cli, Command, DataArgs, ExportArgs};
use crate::correlate::Correlator;
use crate::scan::{self, Mode, ScanOptions, ScanStats};
use crate::setup::{data_dir, load_config, match_setup, open_snapshot, refuse_overwrite, AlertOut};
use anyhow::{anyhow, bail, Context, Result};
use ingest::logs::LogFormat;
use matcher::normalize::{parse_cidr, prefix_range};
use matcher::text::url_host;
use matcher::{normalize, Hit, Indicator, IndicatorType, Matcher, Snapshot};
use serde_json::json;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Dispatch one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Demo { workdir, samples } => crate::commands::demo(workdir, samples, quiet),
        Command::Update {
            data,
            force,
            allow_empty,
            format,
        } => update(&data, force, allow_empty, &format, quiet),
        Command::Init { dir, force } => init(&dir, force, quiet),
        Command::Feeds { data, format } => feeds_cmd(&data, &format),
        Command::Scan {
            data,
            alert,
            format,
            logformat,
            raw,
            strict,
            no_prefilter,
            files,
        } => {
            let format = if raw { Some(LogFormat::Raw) } else { format };
            let opts = ScanOptions {
                format,
                field_map: None,
                logformat: compile_logformat(format, logformat.as_deref())?,
                strict,
                no_prefilter,
            };
            scan_cmd(&data, &alert, &opts, &files, quiet)
        }
        Command::Replay {
            data,
            alert,
            threads,
            files,
        } => crate::replay::replay_cmd(&data, &alert, threads, &files, quiet),
        Command::Sniff {
            data,
            alert,
            interface,
            bpf,
            snaplen,
            no_promisc,
            count,
            duration,
        } => crate::replay::sniff_cmd(
            &data,
            &alert,
            crate::replay::SniffArgs {
                interface,
                bpf,
                snaplen,
                promisc: !no_promisc,
                count,
                duration,
            },
            quiet,
        ),
        Command::Observe {
            format,
            logformat,
            files,
        } => observe(format, logformat.as_deref(), &files),
        Command::Query {
            data,
            format,
            nolog,
            values,
        } => query(&data, &format, nolog, &values),
        Command::Export { data, args } => export(&data, args, quiet),
        Command::Run { config } => {
            let Some((config, path)) = load_config(config.as_deref())? else {
                bail!(
                    "trawl run needs a config: pass --config FILE (or create ./trawl.toml); \
                     see README.md"
                );
            };
            // As for every command: $TRAWL_DATA, else the config's [sensor] data, else the
            // default (trawl run has no --data: the config says where its state lives).
            let data = data_dir(
                &DataArgs {
                    data: std::env::var_os("TRAWL_DATA").map(PathBuf::from),
                    config: None,
                },
                Some(&config),
            );
            Ok(crate::daemon::run(config, &path, data)?)
        }
        Command::Generate { what, out } => crate::generate::generate(what, &out),
    }
}

fn scan_cmd(
    data: &DataArgs,
    alert: &AlertArgs,
    opts: &ScanOptions,
    files: &[PathBuf],
    quiet: bool,
) -> Result<ExitCode> {
    let setup = match_setup(data, alert)?;
    refuse_overwrite(alert.output.as_deref(), files, &setup.dir)?;
    let mut correlator = Correlator::new(&setup.snapshot, setup.filter);
    if opts.no_prefilter {
        correlator = correlator.without_prefilter();
    }
    let mut out = AlertOut::open(alert)?;
    let mut stats = ScanStats::default();
    let mut failed = Vec::new();
    for file in files {
        if let Err(e) = scan::scan_file(
            file,
            Mode::Alerts,
            Some(&correlator),
            &setup.ctx,
            opts,
            &mut out,
            &mut stats,
        ) {
            eprintln!("trawl: {}", crate::exit::render(&e.into()));
            failed.push(file.display().to_string());
            if opts.strict {
                break;
            }
        }
    }
    let folded = out.finish()?;
    if folded > 0 && !quiet {
        eprintln!("--suppress folded {folded} repeated alert(s) into trawl.repeat_count");
    }
    if !quiet {
        if alert.summary_json {
            eprintln!("{}", serde_json::to_string(&stats)?);
        } else {
            eprint!("{}", stats.render());
        }
    }
    Ok(if failed.is_empty() {
        crate::exit::Exit::Ok
    } else {
        crate::exit::Exit::Partial
    }
    .into())
}

fn is_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let ok = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok();
    ok && matches!(
        magic,
        [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x0a, 0x0d, 0x0d, 0x0a]
    )
}

/// `--logformat`, compiled once for the dialect `--format` names.
fn compile_logformat(
    format: Option<LogFormat>,
    logformat: Option<&str>,
) -> Result<Option<ingest::logs::FormatPlan>> {
    logformat
        .map(|text| {
            ingest::logs::FormatPlan::for_format(format, text)
                .map_err(|e| anyhow::anyhow!("--logformat: {e}"))
        })
        .transpose()
}

fn observe(
    format: Option<LogFormat>,
    logformat: Option<&str>,
    files: &[PathBuf],
) -> Result<ExitCode> {
    let opts = ScanOptions {
        format,
        field_map: None,
        logformat: compile_logformat(format, logformat)?,
        strict: false,
        no_prefilter: false,
    };
    let ctx = AlertContext {
        observer_name: String::new(),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut stats = ScanStats::default();
    let mut partial = false;
    for file in files {
        // Like scan and replay: a file read only in part is reported, the others still read.
        let read = if file.as_os_str() != "-" && is_capture(file) {
            crate::replay::observe_capture(file, &mut out)
        } else {
            scan::scan_file(
                file,
                Mode::Observations,
                None,
                &ctx,
                &opts,
                &mut out,
                &mut stats,
            )
            .map_err(anyhow::Error::from)
        };
        if let Err(e) = read {
            eprintln!("trawl: {}", crate::exit::render(&e));
            partial = true;
        }
    }
    out.flush()?;
    Ok(if partial {
        crate::exit::Exit::Partial
    } else {
        crate::exit::Exit::Ok
    }
    .into())
}

fn update(
    data: &DataArgs,
    force: bool,
    allow_empty: bool,
    format: &str,
    quiet: bool,
) -> Result<ExitCode> {
    let config = config_or_init_hint(data)?;
    let dir = data_dir(data, Some(&config));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = feeds::update::UpdateOptions {
        force,
        allow_empty,
        ..Default::default()
    };
    // One update at a time per data directory (a daemon's scheduled updates included).
    let _lock = crate::data_files::DataLock::lock(&dir, crate::data_files::Role::Update, || {
        eprintln!(
            "trawl: another update is running on {}; waiting for it to finish",
            dir.display()
        )
    })?;
    let progress = crate::progress::BarProgress::new(quiet);
    let report = feeds::update::update(&config, config.base_dir(), &dir, &opts, &progress)
        .context("updating feeds")?;
    progress.finish();
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => {
            if !quiet {
                print!("{}", report.render_text());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The config of `update` and `feeds`; without one, how to get one (trawl never fetches a
/// feed the user did not configure).
fn config_or_init_hint(data: &DataArgs) -> Result<feeds::config::Config> {
    match load_config(data.config.as_deref())? {
        Some((config, _)) => Ok(config),
        None => Err(crate::exit::Usage(
            "no config: no --config FILE, no $TRAWL_CONFIG and no ./trawl.toml. Run \
             `trawl init` to write a trawl.toml with a curated set of free public feeds \
             (nothing is fetched until you run `trawl update`), or pass --config FILE with \
             your own [[feed]] tables; see README.md \"First real run\""
                .into(),
        )
        .into()),
    }
}

/// `trawl init`: write the default trawl.toml into `dir`, never over an existing one
/// without `--force`.
fn init(dir: &Path, force: bool, quiet: bool) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("trawl.toml");
    let text = feeds::defaults::TRAWL_TOML;
    if force {
        // Replace by rename: a symlink named trawl.toml is replaced, not followed.
        let tmp = dir.join(".trawl.toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    } else {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        let mut f = match created {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(crate::exit::Usage(format!(
                    "{} exists: not overwriting it (pass --force to replace it, or --dir to \
                     write one elsewhere)",
                    path.display()
                ))
                .into())
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        };
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let config = feeds::config::Config::load(&path)
        .with_context(|| format!("checking {}", path.display()))?;
    if !quiet {
        let disabled = text.lines().filter(|l| *l == "# [[feed]]").count();
        let shown = path.display();
        eprintln!(
            "wrote {shown}: {} feeds enabled, {disabled} more commented out (they need a key \
             or restrict their use; see the file).\nNext:\n  trawl update --config {shown}    \
             # fetch them (nothing was fetched yet)\n  trawl feeds --config {shown}     \
             # how each feed went",
            config.feeds.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `trawl feeds`: each configured feed's state.
fn feeds_cmd(data: &DataArgs, format: &str) -> Result<ExitCode> {
    let config = config_or_init_hint(data)?;
    let dir = data_dir(data, Some(&config));
    let now = scan::now_ns() / 1_000_000_000;
    let rows = feeds::status::feed_rows(&config, &dir, now);
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&feeds::status::render_json(&rows))?
        ),
        _ => print!("{}", feeds::status::render_table(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `trawl query` output.
fn query_row(query: &str, ind: &Indicator, kind: matcher::MatchKind) -> serde_json::Value {
    json!({
        "query": query,
        "value": ind.value,
        "itype": ind.itype.as_str(),
        "confidence": ind.confidence,
        "severity": ind.severity.as_str(),
        "tags": ind.tags,
        "sources": ind.sources,
        "tlp": ind.tlp.as_str(),
        "matched": kind.as_str(),
        "provider": ind.provider,
        "description": ind.description,
        "reference": ind.reference,
        "first_seen": ind.first_seen,
        "last_seen": ind.last_seen,
        "expires": ind.expires,
        "derived": ind.derived,
        "allowlist": ind.allowlist,
        "allowlisted_by": ind.allowlisted_by,
    })
}

fn cidr_covers(outer: &str, inner_addr: IpAddr, inner_len: u8) -> bool {
    let Some((addr, len)) = parse_cidr(outer) else {
        return false;
    };
    if len > inner_len {
        return false;
    }
    let (net, inner, v4) = match (addr, inner_addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), true),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.into(), b.into(), false),
        _ => return false,
    };
    let (lo, hi) = prefix_range(net, len, v4);
    (lo..=hi).contains(&inner)
}

/// Every indicator of `snapshot` covering one query value.
pub fn lookup(
    snapshot: &Snapshot,
    raw: &str,
) -> Result<(String, Vec<(Indicator, matcher::MatchKind)>)> {
    let n = normalize(raw, None).map_err(|e| anyhow!("{raw}: {e}"))?;
    let mut hits: Vec<Hit> = Vec::new();
    match n.itype {
        IndicatorType::Fqdn => snapshot.match_domain(&n.value, &mut hits),
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
            if let Some((addr, len)) = parse_cidr(&n.value).filter(|_| n.value.contains('/')) {
                if let Some(id) = snapshot.find(n.itype, &n.value) {
                    hits.push(Hit {
                        id,
                        kind: matcher::MatchKind::Exact,
                    });
                }
                let mut inner = Vec::new();
                snapshot.match_ip(addr, &mut inner);
                for h in inner {
                    let ind = snapshot.indicator(h.id);
                    if ind.value != n.value && cidr_covers(&ind.value, addr, len) {
                        hits.push(h);
                    }
                }
            } else if let Ok(ip) = n.value.parse::<IpAddr>() {
                snapshot.match_ip(ip, &mut hits);
            }
        }
        IndicatorType::Url => {
            snapshot.match_url(&n.value, &mut hits);
            if let Some(host) = url_host(&n.value) {
                snapshot.match_domain(host, &mut hits);
            }
        }
        IndicatorType::Email => {
            snapshot.match_email(&n.value, &mut hits);
            if let Some((_, domain)) = n.value.rsplit_once('@') {
                snapshot.match_domain(domain, &mut hits);
            }
        }
        IndicatorType::Pattern => {
            if let Some(id) = snapshot.find(n.itype, &n.value) {
                hits.push(Hit {
                    id,
                    kind: matcher::MatchKind::Exact,
                });
            }
        }
        _ => snapshot.match_hash(&n.value, &mut hits),
    }
    hits.sort();
    hits.dedup_by_key(|h| h.id);
    let rows = hits
        .into_iter()
        .map(|h| (snapshot.indicator(h.id), h.kind))
        .collect();
    Ok((n.value, rows))
}

fn query(data: &DataArgs, format: &str, nolog: bool, values: &[String]) -> Result<ExitCode> {
    let config = load_config(data.config.as_deref())?;
    let dir = data_dir(data, config.as_ref().map(|(c, _)| c));
    let snapshot = open_snapshot(&dir)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut found_any = false;
    let mut log_rows = Vec::new();
    for raw in values {
        let (normal, rows) = match lookup(&snapshot, raw) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("trawl: {}", crate::exit::render(&e));
                continue;
            }
        };
        found_any |= !rows.is_empty();
        log_rows.push(json!({"query": raw, "normalized": normal, "hits": rows.len()}));
        if format == "json" {
            for (ind, kind) in &rows {
                writeln!(out, "{}", query_row(raw, ind, *kind))?;
            }
        } else if rows.is_empty() {
            writeln!(out, "{raw}: no indicator covers {normal}")?;
        } else {
            writeln!(out, "{raw} ({normal}):")?;
            for (ind, kind) in &rows {
                let mut line = format!(
                    "  {:<14} {:<40} {:<9} conf {:>3}  {:<6}  tlp:{:<6} tags [{}]  sources [{}]",
                    kind.as_str(),
                    ind.value,
                    ind.itype.as_str(),
                    ind.confidence,
                    ind.severity.as_str(),
                    ind.tlp.as_str(),
                    ind.tags.join(","),
                    ind.sources.join(","),
                );
                if ind.allowlist {
                    line.push_str("  ALLOWLIST ENTRY");
                }
                if let Some(by) = &ind.allowlisted_by {
                    line.push_str(&format!("  ALLOWLISTED by {by}"));
                }
                if ind.derived {
                    line.push_str("  (derived)");
                }
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if !nolog {
        let entry = json!({"time": scan::now_ns() / 1_000_000_000, "queries": log_rows});
        let path = dir.join("query.log");
        // The answer is printed already: a log that cannot be written (read-only data
        // directory) is worth a warning, not a failure.
        if let Err(e) = append_line(&path, &entry.to_string()) {
            tracing::warn!(
                "not recorded in the query log {}: {e} (use -n to skip the query log)",
                path.display()
            );
        }
    }
    Ok(if found_any {
        crate::exit::Exit::Ok
    } else {
        crate::exit::Exit::NoMatch
    }
    .into())
}

/// Append one line to a log file, never through a symlink (O_NOFOLLOW): a link planted in the
/// data directory cannot make trawl append to another file.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// `--feed` names must be feeds of the snapshot (the ones its last update recorded, or that
/// list one of its indicators): a typo would otherwise export nothing, quietly.
fn check_feeds(snapshot: &Snapshot, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut known: std::collections::BTreeSet<String> = snapshot
        .meta()
        .extra
        .get("feeds")
        .and_then(|f| f.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let missing = |known: &std::collections::BTreeSet<String>| {
        wanted.iter().find(|w| !known.contains(w.as_str())).cloned()
    };
    if missing(&known).is_some() {
        for ind in snapshot.iter() {
            known.extend(ind.sources);
        }
    }
    match missing(&known) {
        None => Ok(()),
        Some(name) => Err(crate::exit::Usage(format!(
            "--feed {name}: no such feed in the snapshot; its feeds are: {}",
            known.into_iter().collect::<Vec<_>>().join(" ")
        ))
        .into()),
    }
}

fn export(data: &DataArgs, req: ExportArgs, quiet: bool) -> Result<ExitCode> {
    use feeds::export::{ExportOptions, Filter, FirewallAction};
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let dir = data_dir(data, cfg);
    let snapshot = open_snapshot(&dir)?;
    check_feeds(&snapshot, &req.feeds)?;
    refuse_overwrite(req.output.as_deref(), &[], &dir)?;
    let format = req.format;
    let filter = Filter {
        types: req.types,
        min_confidence: req.min_confidence,
        min_severity: req.min_severity,
        tags: req.tags,
        max_tlp: req.tlp,
        feeds: req.feeds,
    };
    let opts = ExportOptions {
        sid_base: req.sid_base,
        snort3: req.snort3,
        action: if req.reject {
            FirewallAction::Reject
        } else {
            FirewallAction::Drop
        },
        dataset_dir: req.dataset_dir,
        snapshot_version: snapshot.meta().version,
        created: snapshot.meta().created,
        sensor_name: cfg.map(|c| c.sensor.name.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let mut out: Box<dyn Write> = match &req.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut iter = snapshot.iter();
    let stats =
        feeds::export::export(format, &mut iter, &filter, &opts, &mut out).context("exporting")?;
    out.flush()?;
    if !quiet {
        eprintln!("{}", serde_json::to_string(&stats)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub use crate::demo_impl::demo;

#[cfg(test)]
mod tests {
    use super::cidr_covers;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn cidr_covers_wider_networks_of_the_same_family_only() {
        assert!(cidr_covers("10.0.0.0/8", ip("10.1.0.0"), 16));
        assert!(cidr_covers("0.0.0.0/0", ip("203.0.113.7"), 32));
        assert!(cidr_covers("10.1.0.0/16", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.0.0.0/16", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.1.0.0/24", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.0.0.0/8", ip("2001:db8::"), 32));
        assert!(cidr_covers("2001:db8::/32", ip("2001:db8:ff::"), 48));
        assert!(cidr_covers("::/0", ip("ffff::1"), 128));
        assert!(!cidr_covers("2001:db9::/32", ip("2001:db8::"), 48));
        assert!(!cidr_covers("not a net", ip("10.0.0.0"), 8));
    }
}
