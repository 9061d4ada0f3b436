//! Tails files and prints their lines, acknowledging each batch after it is written out.
//!
//! `tail_lines --checkpoint FILE [--batch BYTES] [--poll-ms MS] [--idle-exit-ms MS] GLOB...`
//!
//! After each batch's lines are written and flushed to stdout, the batch is acknowledged
//! and a marker line `#ACK <fingerprint> <end offset>` is printed. Used by the `kill -9`
//! integration test (ingest/tests/ingest_tests/tail_kill.rs); handy for trying the tailer by hand.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ingest::tail::{TailConfig, Tailer};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut checkpoint = None;
    let mut batch = None;
    let mut poll_ms = None;
    let mut idle_exit = None;
    let mut globs = Vec::new();
    while let Some(a) = args.next() {
        let num = |v: Option<String>| v.and_then(|s| s.parse::<u64>().ok());
        match a.as_str() {
            "--checkpoint" => checkpoint = args.next(),
            "--batch" => batch = num(args.next()),
            "--poll-ms" => poll_ms = num(args.next()),
            "--idle-exit-ms" => idle_exit = num(args.next()).map(Duration::from_millis),
            _ => globs.push(a),
        }
    }
    let (Some(checkpoint), false) = (checkpoint, globs.is_empty()) else {
        eprintln!("usage: tail_lines --checkpoint FILE [--batch BYTES] [--poll-ms MS] [--idle-exit-ms MS] GLOB...");
        return ExitCode::from(2);
    };
    let mut cfg = TailConfig::new(globs, checkpoint);
    if let Some(b) = batch {
        cfg.max_batch_bytes = b as usize;
    }
    if let Some(p) = poll_ms {
        cfg.poll_interval = Duration::from_millis(p);
    }
    let mut tailer = match Tailer::new(cfg) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tail_lines: {e}");
            return ExitCode::from(1);
        }
    };
    let stdout = std::io::stdout();
    let mut last = Instant::now();
    loop {
        match tailer.next_batch(Duration::from_millis(100)) {
            Ok(Some(b)) => {
                let mut out = stdout.lock();
                if out.write_all(&b.bytes).and_then(|_| out.flush()).is_err() {
                    return ExitCode::from(1);
                }
                if let Err(e) = tailer.ack(&b.id) {
                    eprintln!("tail_lines: {e}");
                    return ExitCode::from(1);
                }
                if writeln!(out, "#ACK {} {}", b.fingerprint, b.end)
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return ExitCode::from(1);
                }
                last = Instant::now();
            }
            Ok(None) => {
                if idle_exit.is_some_and(|d| last.elapsed() >= d) {
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => {
                eprintln!("tail_lines: {e}");
                return ExitCode::from(1);
            }
        }
    }
}
