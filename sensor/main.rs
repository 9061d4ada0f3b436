//! `trawl`: a threat-intelligence sensor. Compiles indicator feeds into a snapshot, matches
//! logs and packets against it, writes ECS JSON alerts and exports IDS/firewall rules.

// The engine lives in the library (sensor/lib.rs); the binary is the command line.
use sensor::{alert, correlate, daemon, data_files, scan};

mod cli;
mod commands;
mod demo_impl;
mod exit;
mod fleet_cmd;
mod generate;
mod progress;
mod remote;
mod replay;
mod retro_cmd;
mod serve_cmd;
mod setup;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose, args.quiet);
    match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trawl: error: {}", exit::render(&e));
            exit::code_of(&e).into()
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // `trawl serve`'s audit lines (one per request) show unless -q.
    let default = if quiet {
        default.to_string()
    } else {
        format!("{default},trawl::audit=info")
    };
    let filter = EnvFilter::try_from_env("TRAWL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour escapes only for a person at a terminal, never into journald or a file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
