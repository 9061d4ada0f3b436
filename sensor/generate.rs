//! `trawl generate`: man pages and shell completions, written from the clap definitions so
//! they always say what `--help` says (packaging runs it; `make deb` puts them in the .deb).

use crate::cli::{Cli, GenerateWhat};
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Write what was asked: man pages into `out` (a directory), a completion script to stdout.
pub fn generate(what: GenerateWhat, out: &Path) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    match what {
        GenerateWhat::Man => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            clap_mangen::generate_to(cmd, out)
                .with_context(|| format!("writing man pages into {}", out.display()))?;
        }
        GenerateWhat::Bash | GenerateWhat::Zsh | GenerateWhat::Fish => {
            let shell = match what {
                GenerateWhat::Bash => Shell::Bash,
                GenerateWhat::Zsh => Shell::Zsh,
                _ => Shell::Fish,
            };
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "trawl", &mut buf);
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&buf).context("writing to stdout")?;
            stdout.flush().context("writing to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
