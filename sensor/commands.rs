//! The subcommands' implementations.

use crate::alert::AlertContext;
use crate::cli::{AlertArgs, Cli, Command, DataArgs, ExportArgs, RemoteArgs};
use crate::correlate::Correlator;
use crate::remote::{Remote, Submission};
use crate::scan::{self, Mode, ScanOptions, ScanStats};
use crate::setup::{
    data_dir, load_config, match_setup, open_snapshot, refuse_overwrite, AlertOut, ReportTarget,
};
use anyhow::{anyhow, bail, Context, Result};
use ingest::logs::LogFormat;
use matcher::Snapshot;
use serde_json::json;
use std::io::{BufWriter, Write};
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
            record,
            report,
            files,
        } => {
            let format = if raw { Some(LogFormat::Raw) } else { format };
            let opts = ScanOptions {
                format,
                field_map: None,
                logformat: compile_logformat(format, logformat.as_deref())?,
                strict,
                no_prefilter,
                record: record
                    .then(|| crate::retro_cmd::open_recorder(&data))
                    .transpose()?,
            };
            let report = ReportTarget::of(report.as_deref(), "trawl scan", &files);
            let code = scan_cmd(&data, &alert, &opts, &files, report, quiet)?;
            if let Some(r) = &opts.record {
                crate::retro_cmd::finish_recorder(r, quiet)?;
            }
            Ok(code)
        }
        Command::Replay {
            data,
            alert,
            threads,
            bpf,
            record,
            report,
            files,
        } => {
            let recorder = record
                .then(|| crate::retro_cmd::open_recorder(&data))
                .transpose()?;
            let code = crate::replay::replay_cmd(
                &data,
                &alert,
                threads,
                bpf.as_deref(),
                recorder.as_deref(),
                &files,
                ReportTarget::of(report.as_deref(), "trawl replay", &files),
                quiet,
            )?;
            if let Some(r) = &recorder {
                crate::retro_cmd::finish_recorder(r, quiet)?;
            }
            Ok(code)
        }
        Command::Hunt {
            data,
            since,
            format,
            indicators,
            feed,
            report,
            values,
        } => crate::retro_cmd::hunt_cmd(
            &data,
            crate::retro_cmd::HuntArgs {
                since,
                json: format == "json",
                indicators,
                feed,
                values,
                report,
            },
        ),
        Command::Sniff {
            data,
            alert,
            interface,
            bpf,
            snaplen,
            no_promisc,
            buffer,
            user,
            workers,
            queue_batches,
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
                buffer_mib: buffer,
                user,
                workers,
                queue_batches,
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
            remote,
            values,
        } => query(&data, &format, nolog, &remote, &values),
        Command::Export { data, args, remote } => export(&data, args, &remote, quiet),
        Command::Submit {
            config,
            remote,
            confidence,
            severity,
            tags,
            tlp,
            group,
            itype,
            expires,
            description,
            reference,
            external_id,
            format,
            values,
        } => {
            let expires = match expires {
                Some(e) => Some(expiry(&e)?),
                None => None,
            };
            if let Some(id) = external_id.as_deref() {
                if !matcher::model::is_external_id(id) {
                    bail!(crate::exit::Usage(format!(
                        "--external-id {id:?}: not a STIX id or a MISP uuid; give one like \
                         indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f or \
                         5f0c8a3e-1111-4000-8000-000000000003"
                    )));
                }
            }
            let sub = Submission {
                itype,
                confidence,
                severity,
                tags,
                tlp,
                group,
                expires,
                description,
                reference,
                external_id,
            };
            submit(config.as_deref(), &remote, &sub, &format, &values)
        }
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
        Command::Serve {
            data,
            listen,
            ready_file,
        } => crate::serve_cmd::serve(&data, listen, ready_file),
        Command::Token { action } => crate::serve_cmd::token(action),
        Command::Keygen { out } => crate::fleet_cmd::keygen(&out, quiet),
        Command::Publish {
            data,
            to,
            key,
            keep,
            intended_shrink,
            format,
        } => crate::fleet_cmd::publish(&data, &to, key, keep, intended_shrink, &format, quiet),
        Command::Fleet {
            data,
            remote,
            format,
        } => crate::fleet_cmd::fleet(&data, &remote, &format),
    }
}

fn scan_cmd(
    data: &DataArgs,
    alert: &AlertArgs,
    opts: &ScanOptions,
    files: &[PathBuf],
    report: Option<ReportTarget>,
    quiet: bool,
) -> Result<ExitCode> {
    let setup = match_setup(data, alert)?;
    refuse_overwrite(alert.output.as_deref(), files, &setup.dir)?;
    refuse_overwrite(report.as_ref().map(|r| r.path.as_path()), files, &setup.dir)?;
    let mut correlator = Correlator::new(&setup.snapshot, setup.filter);
    if opts.no_prefilter {
        correlator = correlator.without_prefilter();
    }
    let mut out = AlertOut::open(alert, report)?;
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
    let folded = out.finish(quiet)?;
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
        record: None,
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

/// `trawl query`: the local snapshot, or a `trawl serve` (`--remote`, $TRAWL_REMOTE or
/// `[remote]`).
fn query(
    data: &DataArgs,
    format: &str,
    nolog: bool,
    remote: &RemoteArgs,
    values: &[String],
) -> Result<ExitCode> {
    enum Where {
        Local(PathBuf, Box<Snapshot>),
        Remote(Remote),
    }
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let place = match Remote::resolve(remote, cfg)? {
        Some(r) => Where::Remote(r),
        None => {
            let dir = data_dir(data, cfg);
            let snapshot = open_snapshot(&dir)?;
            Where::Local(dir, Box::new(snapshot))
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut found_any = false;
    let mut log_rows = Vec::new();
    for raw in values {
        let found = match &place {
            Where::Local(_, snapshot) => matcher::query::lookup(snapshot, raw)
                .map(|l| {
                    let rows = l
                        .hits
                        .iter()
                        .map(|(ind, kind)| matcher::query::row_json(raw, ind, *kind))
                        .collect::<Vec<_>>();
                    (l.normalized, rows)
                })
                .map_err(|e| anyhow!("{raw}: {e}")),
            Where::Remote(r) => remote_lookup(r, raw, nolog)?,
        };
        let (normal, rows) = match found {
            Ok(x) => x,
            Err(e) => {
                eprintln!("trawl: {}", crate::exit::render(&e));
                continue;
            }
        };
        found_any |= !rows.is_empty();
        log_rows.push(json!({"query": raw, "normalized": normal, "hits": rows.len()}));
        if format == "json" {
            for row in &rows {
                writeln!(out, "{row}")?;
            }
        } else if rows.is_empty() {
            writeln!(out, "{raw}: no indicator covers {normal}")?;
        } else {
            writeln!(out, "{raw} ({normal}):")?;
            for row in &rows {
                writeln!(out, "{}", table_line(row))?;
            }
        }
    }
    out.flush()?;
    if let (Where::Local(dir, _), false) = (&place, nolog) {
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

/// One row of `trawl query`'s table, from the row as `--format json` prints it (so a local
/// and a remote answer print alike).
fn table_line(row: &serde_json::Value) -> String {
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
    let list = |k: &str| {
        row[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let mut line = format!(
        "  {:<14} {:<40} {:<9} conf {:>3}  {:<6}  tlp:{:<6} tags [{}]  sources [{}]",
        text("matched"),
        text("value"),
        text("itype"),
        row["confidence"].as_u64().unwrap_or(0),
        text("severity"),
        text("tlp"),
        list("tags"),
        list("sources"),
    );
    if row["allowlist"].as_bool() == Some(true) {
        line.push_str("  ALLOWLIST ENTRY");
    }
    if let Some(by) = row["allowlisted_by"].as_str() {
        line.push_str(&format!("  ALLOWLISTED by {by}"));
    }
    if row["derived"].as_bool() == Some(true) {
        line.push_str("  (derived)");
    }
    if let Some(id) = row["external_id"].as_str() {
        line.push_str(&format!("  id {id}"));
    }
    if let Some(n) = row["searched"].as_u64().filter(|n| *n > 0) {
        line.push_str(&format!("  searched {n}x"));
    }
    let seen = &row["sightings"];
    if let Some(n) = seen["count"].as_u64() {
        line.push_str(&format!(
            "  sighted {n}x by {} sensor(s), last {}",
            seen["sensors"].as_u64().unwrap_or(0),
            seen["last_seen"].as_str().unwrap_or("?")
        ));
    }
    line
}

/// Ask a `trawl serve` (`GET /v1/search`) about one value: `Ok(Err(..))` for a value the
/// server (or the local normaliser) refuses, which is reported and skipped like a local
/// one; `Err` when the server cannot be asked at all.
fn remote_lookup(
    remote: &Remote,
    raw: &str,
    nolog: bool,
) -> Result<Result<(String, Vec<serde_json::Value>)>> {
    let normal = match matcher::normalize(raw, None) {
        Ok(n) => n.value,
        Err(e) => return Ok(Err(anyhow!("{raw}: {e}"))),
    };
    let params = [
        ("q", raw.to_string()),
        ("nolog", if nolog { "1" } else { "0" }.to_string()),
    ];
    let a = remote.get("/v1/search", &params, crate::remote::ASK_TIMEOUT)?;
    match a.status {
        200 => {
            let mut rows = a.data().as_array().cloned().unwrap_or_default();
            // The fields `export --remote` needs, which a local query does not print.
            for r in &mut rows {
                if let Some(o) = r.as_object_mut() {
                    o.remove("exact_only");
                    o.remove("reported");
                }
            }
            Ok(Ok((normal, rows)))
        }
        400 | 403 => Ok(Err(anyhow!(
            "{raw}: the server refused it: {}",
            a.message()
        ))),
        _ => Err(a.refusal()),
    }
}

/// `--expires`: a duration from now (`30d`) or a time (`2027-01-31T00:00:00Z`).
fn expiry(text: &str) -> Result<i64> {
    if let Some(t) = server::query::parse_time(text) {
        return Ok(t);
    }
    let d: feeds::config::DurationSpec = text.parse().map_err(|e: String| {
        crate::exit::Usage(format!(
            "--expires {text:?}: {e}; or give a time like 2027-01-31T00:00:00Z"
        ))
    })?;
    let secs = i64::try_from(d.0.as_secs()).unwrap_or(i64::MAX);
    Ok(server::http::now().saturating_add(secs))
}

/// `trawl submit`: POST the values to `/v1/indicators`, then print them as stored.
fn submit(
    config: Option<&Path>,
    remote: &RemoteArgs,
    sub: &Submission,
    format: &str,
    values: &[String],
) -> Result<ExitCode> {
    let config = load_config(config)?;
    let Some(r) = Remote::resolve(remote, config.as_ref().map(|(c, _)| c))? else {
        bail!(crate::exit::Usage(
            "trawl submit needs a server: --remote URL, $TRAWL_REMOTE or [remote] url in the \
             config"
                .into()
        ));
    };
    let body = serde_json::Value::Array(values.iter().map(|v| sub.object(v)).collect());
    let a = r.post("/v1/indicators", &body, crate::remote::ASK_TIMEOUT)?;
    match a.status {
        200 | 201 => {}
        422 => {
            for e in a.data().as_array().map(Vec::as_slice).unwrap_or_default() {
                eprintln!("trawl: refused: {}", e.as_str().unwrap_or_default());
            }
            bail!(crate::exit::Usage(format!(
                "{}: nothing was stored ({}); fix the values above and submit again",
                a.endpoint,
                a.message()
            )));
        }
        _ => return Err(a.refusal()),
    }
    let now = server::http::now();
    let mut out = BufWriter::new(std::io::stdout().lock());
    if format != "json" {
        writeln!(
            out,
            "stored {} indicator(s) on {}:",
            a.data().as_u64().unwrap_or(values.len() as u64),
            r.url()
        )?;
    }
    for v in values {
        let ind = sub.stored(v, now)?;
        let mut row = matcher::query::row_json(v, &ind, matcher::MatchKind::Exact);
        row["matched"] = json!("submitted");
        if format == "json" {
            writeln!(out, "{row}")?;
        } else {
            writeln!(out, "{}  group {}", table_line(&row), ind.groups.join(","))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
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

/// `trawl export`: the local snapshot's indicators, or (`--remote`) the server's that the
/// token may see, through the same filters and exporter.
fn export(data: &DataArgs, req: ExportArgs, remote: &RemoteArgs, quiet: bool) -> Result<ExitCode> {
    use feeds::export::{ExportOptions, Filter, FirewallAction};
    let config = load_config(data.config.as_deref())?;
    let cfg = config.as_ref().map(|(c, _)| c);
    let (snapshot, version, created) = match Remote::resolve(remote, cfg)? {
        Some(r) => {
            // Nothing local is read: no input to protect from -o.
            let f = r.feed(&req.types, req.min_confidence, quiet)?;
            (f.snapshot, f.version, f.created)
        }
        None => {
            let dir = data_dir(data, cfg);
            let snapshot = open_snapshot(&dir)?;
            refuse_overwrite(req.output.as_deref(), &[], &dir)?;
            let (v, c) = (snapshot.meta().version, snapshot.meta().created);
            (snapshot, v, c)
        }
    };
    check_feeds(&snapshot, &req.feeds)?;
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
        snapshot_version: version,
        created,
        sensor_name: cfg.map(|c| c.sensor.name.clone()).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(dir) = &req.feed_dir {
        if format != feeds::export::ExportFormat::Misp {
            bail!(
                "--feed-dir writes a MISP feed: use it with --format misp (or -o FILE for {})",
                format.as_str()
            );
        }
        let stats = feeds::export::export_misp_feed(&mut snapshot.iter(), &filter, &opts, dir)
            .with_context(|| format!("writing the MISP feed {}", dir.display()))?;
        if !quiet {
            eprintln!("{}", serde_json::to_string(&stats)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
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
