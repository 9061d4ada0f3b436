//! `trawl keygen`, `trawl publish` and `trawl fleet`: the publisher's side of a sensor fleet
//! over `feeds::fleet` (a sensor pulls with `[upstream]` in `trawl update`).

use crate::cli::{DataArgs, RemoteArgs};
use crate::remote::Remote;
use crate::serve_cmd::server_setup;
use crate::setup::load_config;
use anyhow::{bail, Context, Result};
use feeds::fleet::{keys, publish};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `trawl keygen --out PREFIX`.
pub fn keygen(out: &Path, quiet: bool) -> Result<ExitCode> {
    let (key, public) = keys::keygen(out).with_context(|| {
        format!(
            "writing {}.key (an existing key is never overwritten: choose another --out)",
            out.display()
        )
    })?;
    if !quiet {
        let line = std::fs::read_to_string(&public).unwrap_or_default();
        eprintln!(
            "wrote {} (private, mode 0600: sign with `trawl publish --key`) and {}",
            key.display(),
            public.display()
        );
        eprintln!("sensors' [upstream] public_key = \"{}\"", line.trim());
    }
    Ok(ExitCode::SUCCESS)
}

/// `trawl publish --to DIR`.
pub fn publish(
    data: &DataArgs,
    to: &Path,
    key: Option<PathBuf>,
    keep: usize,
    intended: bool,
    format: &str,
    quiet: bool,
) -> Result<ExitCode> {
    let (dir, server) = server_setup(data)?;
    let Some(key_path) = key.or(server.signing_key) else {
        return Err(crate::exit::Usage(
            "no signing key: pass --key PREFIX.key or set [server] signing_key (make one with \
             `trawl keygen --out PREFIX`)"
                .into(),
        )
        .into());
    };
    let key = keys::SigningKey::load(&key_path)
        .with_context(|| format!("reading the signing key {}", key_path.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let opts = publish::PublishOptions {
        keep,
        intended,
        now,
    };
    let report = publish::publish(&dir, to, &key, &opts)
        .with_context(|| format!("publishing {} to {}", dir.display(), to.display()))?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !quiet {
        if report.unchanged {
            println!(
                "release {}: unchanged ({} indicators); nothing written",
                report.id, report.total
            );
        } else {
            println!(
                "release {}: {} indicators, bundle {} bytes, {} deltas{}",
                report.id,
                report.total,
                report.bundle_bytes,
                report.deltas.len(),
                if intended {
                    " (marked intended shrink)"
                } else {
                    ""
                }
            );
            for (from, bytes) in &report.deltas {
                println!("  delta from {from}: {bytes} bytes");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trawl fleet`: the server's `GET /v1/fleet` as a table or JSON; exit 1 when a sensor is
/// stale or behind.
pub fn fleet(data: &DataArgs, remote: &RemoteArgs, format: &str) -> Result<ExitCode> {
    let config = load_config(data.config.as_deref())?;
    let Some(r) = Remote::resolve(remote, config.as_ref().map(|(c, _)| c))? else {
        bail!(crate::exit::Usage(
            "trawl fleet asks a server: --remote URL --token T, $TRAWL_REMOTE/$TRAWL_TOKEN or \
             [remote] url and token in the config"
                .into()
        ));
    };
    let answer = r.get("/v1/fleet", &[], std::time::Duration::from_secs(30))?;
    if answer.status != 200 {
        return Err(answer.refusal());
    }
    let empty = Vec::new();
    let rows = answer.data().as_array().unwrap_or(&empty);
    let flag = |v: &serde_json::Value, k: &str| v[k].as_bool().unwrap_or(false);
    let troubled = rows.iter().any(|v| flag(v, "stale") || flag(v, "behind"));
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(answer.data())?);
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("-").to_string();
        let mut table = vec![[
            "SENSOR",
            "USER",
            "RUNS",
            "LATEST",
            "STATE",
            "LAST PULL",
            "VERSION",
            "SIGHTINGS",
        ]
        .map(String::from)];
        for v in rows {
            let state = match (flag(v, "stale"), flag(v, "behind")) {
                (true, true) => "STALE,BEHIND",
                (true, false) => "STALE",
                (false, true) => "BEHIND",
                (false, false) => "ok",
            };
            let ago = |k: &str| {
                v[k].as_i64().map_or("never".to_string(), |t| {
                    format!("{}s ago", (now - t).max(0))
                })
            };
            let runs = text(v, "release");
            table.push([
                text(v, "name"),
                text(v, "user"),
                if runs.is_empty() { "none".into() } else { runs },
                text(v, "latest"),
                state.to_string(),
                ago("last_pull"),
                text(v, "version"),
                ago("last_sighting_batch"),
            ]);
        }
        let widths: Vec<usize> = (0..8)
            .map(|i| {
                table
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", line.join("  ").trim_end());
        }
        if rows.is_empty() {
            println!("(no sensor has pulled a release from {} yet)", r.url());
        }
    }
    Ok(if troubled {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
