//! `trawl keygen` and `trawl publish`: the publisher's side of a sensor fleet over
//! `feeds::fleet` (a sensor pulls with `[upstream]` in `trawl update`).

use crate::cli::DataArgs;
use crate::serve_cmd::server_setup;
use anyhow::{Context, Result};
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
