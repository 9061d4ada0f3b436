//! `trawl demo`: the whole pipeline on `samples/` — feeds → snapshot → scan + replay → alerts,
//! then a query and exports — printing what each step did.

use crate::alert::AlertContext;
use crate::correlate::{Correlator, HitFilter};
use crate::scan::{scan_file, Mode, ScanOptions, ScanStats};
use anyhow::{bail, Context, Result};
use feeds::config::Config;
use matcher::Snapshot;
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn find_samples(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    for candidate in [
        PathBuf::from("samples"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples"),
    ] {
        if candidate.join("trawl.toml").is_file() {
            return Ok(candidate);
        }
    }
    bail!("samples/ not found: run from the trawl source tree or pass --samples DIR")
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn print_alerts(path: &Path) -> Result<usize> {
    let f = std::fs::File::open(path)?;
    let mut n = 0;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        let v: Value = serde_json::from_str(&line)?;
        n += 1;
        let t = &v["trawl"];
        let place = if let Some(p) = v["log"]["file"]["path"].as_str() {
            let file = Path::new(p)
                .file_name()
                .map_or(p.into(), |f| f.to_string_lossy());
            format!("{}@{}", file, v["log"]["offset"])
        } else {
            format!(
                "{}#{}",
                v["trawl"]["capture"]["file"]
                    .as_str()
                    .map(|p| Path::new(p)
                        .file_name()
                        .map_or(p.to_string(), |f| f.to_string_lossy().into_owned()))
                    .unwrap_or_default(),
                v["trawl"]["capture"]["packet"]
            )
        };
        println!(
            "  {:<18} {:<24} {:<34} -> {:<32} {:<13} conf {:>3} {:<6} [{}] ({})",
            place,
            t["matched"]["field"].as_str().unwrap_or(""),
            truncate(t["matched"]["value"].as_str().unwrap_or(""), 34),
            truncate(t["matched"]["indicator"].as_str().unwrap_or(""), 32),
            t["matched"]["kind"].as_str().unwrap_or(""),
            t["confidence"],
            t["severity"].as_str().unwrap_or(""),
            joined(&t["sources"]),
            joined(&t["tags"]),
        );
    }
    Ok(n)
}

/// The strings of a JSON array, comma-separated.
fn joined(list: &Value) -> String {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Run the demo.
pub fn demo(workdir: Option<PathBuf>, samples: Option<PathBuf>, quiet: bool) -> Result<ExitCode> {
    let samples = find_samples(samples)?;
    let work = workdir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("trawl-demo-{}", std::process::id())));
    let data = work.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    println!(
        "== trawl demo: samples {} -> work dir {}",
        samples.display(),
        work.display()
    );

    // 1. Feeds -> snapshot.
    let config_path = samples.join("trawl.toml");
    let config =
        Config::load(&config_path).with_context(|| format!("loading {}", config_path.display()))?;
    println!(
        "\n== 1. trawl update --config {} --data {}",
        config_path.display(),
        data.display()
    );
    let progress = crate::progress::BarProgress::new(quiet);
    let report = feeds::update::update(
        &config,
        &samples,
        &data,
        &feeds::update::UpdateOptions {
            force: true,
            ..Default::default()
        },
        &progress,
    )
    .context("compiling the sample feeds")?;
    progress.finish();
    print!("{}", report.render_text());
    let snapshot = Snapshot::open_current(&data)?;
    println!(
        "snapshot v{}: {} indicators {:?}",
        snapshot.meta().version,
        snapshot.len(),
        snapshot.meta().counts
    );

    // 2. Logs.
    let ctx = AlertContext {
        observer_name: if config.sensor.name.is_empty() {
            "trawl-demo".into()
        } else {
            config.sensor.name.clone()
        },
    };
    let correlator = Correlator::new(&snapshot, HitFilter::default());
    let logs = files_in(&samples.join("logs"))?;
    let log_alerts = work.join("alerts-logs.jsonl");
    println!(
        "\n== 2. trawl scan samples/logs/* > {}",
        log_alerts.display()
    );
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&log_alerts)?);
        let mut stats = ScanStats::default();
        for log in &logs {
            scan_file(
                log,
                Mode::Alerts,
                Some(&correlator),
                &ctx,
                &ScanOptions::default(),
                &mut out,
                &mut stats,
            )?;
        }
        out.flush()?;
        print!("{}", stats.render());
    }
    let n_logs = print_alerts(&log_alerts)?;

    // 3. Captures.
    let pcaps = files_in(&samples.join("pcaps"))?;
    let pcap_alerts = work.join("alerts-pcaps.jsonl");
    println!(
        "\n== 3. trawl replay samples/pcaps/* > {}",
        pcap_alerts.display()
    );
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(&exe)
        .arg("replay")
        .arg("--data")
        .arg(&data)
        .arg("--sensor-name")
        .arg(&ctx.observer_name)
        .arg("-o")
        .arg(&pcap_alerts)
        .args(&pcaps)
        .status()
        .context("running trawl replay")?;
    if !status.success() {
        bail!("trawl replay failed ({status})");
    }
    let n_pcaps = print_alerts(&pcap_alerts)?;

    // 4. Query and exports.
    println!("\n== 4. trawl query / trawl export");
    std::process::Command::new(&exe)
        .args(["query", "-n", "--data"])
        .arg(&data)
        .args([
            "www.update-checker.top",
            "hxxp://secure-login-paypa1[.]com/verify/account.php?id=7",
            "45.142.212.9",
        ])
        .status()
        .context("running trawl query")?;
    for (format, file) in [
        ("suricata", "trawl.rules"),
        ("iptables", "iptables.rules"),
        ("nftables", "trawl.nft"),
        ("zeek", "intel.dat"),
        ("rpz", "rpz.zone"),
        ("html", "indicators.html"),
    ] {
        let path = work.join(file);
        let status = std::process::Command::new(&exe)
            .args(["-q", "export", "--data"])
            .arg(&data)
            .args(["--format", format, "-o"])
            .arg(&path)
            .status()?;
        println!(
            "  export --format {format:<9} -> {} ({})",
            path.display(),
            if status.success() { "ok" } else { "FAILED" }
        );
    }
    println!(
        "\n== done: {} alerts from logs, {} from captures; alerts in {} and {}",
        n_logs,
        n_pcaps,
        log_alerts.display(),
        pcap_alerts.display()
    );
    Ok(ExitCode::SUCCESS)
}
