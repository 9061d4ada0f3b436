//! Tailing throughput and latency on this machine (not a test; run it in release):
//!
//! `cargo run --release -p trawl-ingest --example tail_bench -- [LINES] [RATE] [SECONDS]`
//!
//! 1. catch-up: LINES (default 2,000,000) Squid-like lines (~130 bytes) already on disk are
//!    read with the default configuration (1 MiB batches), every line visited, every batch
//!    acknowledged (checkpoint fsync'd per ack): the sustained lines/s of one `Tailer`.
//! 2. live: a writer appends RATE lines/s (default 100,000) for SECONDS (default 10), renaming
//!    the log every 2 s (rotation), each line carrying its write time; the reader reports
//!    delivered lines/s and write-to-delivery latency p50/p99/max.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::tail::{TailConfig, Tailer};

fn squid_line(out: &mut Vec<u8>, n: u64, micros: u64) {
    // Squid native: time elapsed client code/status bytes method URL user hierarchy/from type
    let _ = writeln!(
        out,
        "{micros:016} {:5} 10.0.{}.{} TCP_MISS/200 {} GET http://host{}.example.com/path/{n} - HIER_DIRECT/93.184.216.34 text/html",
        n % 977,
        (n >> 8) % 256,
        n % 256,
        1000 + n % 50_000,
        n % 10_000
    );
}

/// The checkpoint lives beside, not inside, the watched directory (as the docs advise).
fn cfg(dir: &Path) -> TailConfig {
    let logs = dir.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    TailConfig::new(
        vec![logs.join("access.log*").to_string_lossy().into_owned()],
        dir.join("checkpoint.json"),
    )
}

/// `group`: acknowledge this many batches at once with `ack_many` (one checkpoint fsync).
fn catch_up(lines: u64, group: usize) -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("logs"))?;
    let path = dir.path().join("logs").join("access.log");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    let mut buf = Vec::with_capacity(256);
    for n in 0..lines {
        buf.clear();
        squid_line(&mut buf, n, 0);
        w.write_all(&buf)?;
    }
    w.flush()?;
    drop(w);
    let size = std::fs::metadata(&path)?.len();
    let mut t = Tailer::new(cfg(dir.path())).map_err(std::io::Error::other)?;
    let start = Instant::now();
    let (mut got, mut batches, mut check) = (0u64, 0u64, 0usize);
    let mut pending = Vec::with_capacity(group);
    while got < lines {
        match t.next_batch(Duration::from_secs(5)) {
            Ok(Some(b)) => {
                for (_, l) in b.iter_lines() {
                    check = check.wrapping_add(l.len());
                    got += 1;
                }
                batches += 1;
                pending.push(b.id);
                if pending.len() >= group {
                    t.ack_many(&pending).map_err(std::io::Error::other)?;
                    pending.clear();
                }
            }
            Ok(None) => break,
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    t.ack_many(&pending).map_err(std::io::Error::other)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "catch-up (ack every {group} batch(es)): {got} lines, {:.1} MB, {batches} batches acked, {secs:.3} s: {:.0} lines/s, {:.0} MB/s (check {check})",
        size as f64 / 1e6,
        got as f64 / secs,
        size as f64 / 1e6 / secs
    );
    Ok(())
}

fn live(rate: u64, seconds: u64) -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("logs"))?;
    let path = dir.path().join("logs").join("access.log");
    File::create(&path)?;
    let mut c = cfg(dir.path());
    c.poll_interval = Duration::from_millis(
        std::env::var("POLL_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(250),
    );
    let mut t = Tailer::new(c).map_err(std::io::Error::other)?;
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, done) = (dir.path().join("logs"), done.clone());
        std::thread::spawn(move || -> std::io::Result<u64> {
            let log = dir.join("access.log");
            let mut f = OpenOptions::new().append(true).open(&log)?;
            let per_ms = (rate / 1000).max(1);
            let mut n = 0u64;
            let mut buf = Vec::with_capacity(per_ms as usize * 160);
            let mut gen = 0;
            let mut tick = 0u64;
            while tick < seconds * 1000 {
                let due = t0 + Duration::from_millis(tick);
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
                buf.clear();
                let us = t0.elapsed().as_micros() as u64;
                for _ in 0..per_ms {
                    squid_line(&mut buf, n, us);
                    n += 1;
                }
                f.write_all(&buf)?;
                tick += 1;
                if tick.is_multiple_of(2000) {
                    gen += 1;
                    std::fs::rename(&log, dir.join(format!("access.log.{gen}")))?;
                    f = OpenOptions::new().create(true).append(true).open(&log)?;
                }
            }
            done.store(true, Ordering::SeqCst);
            Ok(n)
        })
    };
    let mut lat: Vec<u32> = Vec::with_capacity((rate * seconds) as usize);
    let mut got = 0u64;
    let mut idle_since = None;
    loop {
        match t.next_batch(Duration::from_millis(100)) {
            Ok(Some(b)) => {
                let now = t0.elapsed().as_micros() as u64;
                for (_, l) in b.iter_lines() {
                    let w: u64 = std::str::from_utf8(l.get(..16).unwrap_or(b"0"))
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(now);
                    lat.push(now.saturating_sub(w).min(u32::MAX as u64) as u32);
                    got += 1;
                }
                t.ack(&b.id).map_err(std::io::Error::other)?;
                idle_since = None;
            }
            Ok(None) => {
                if done.load(Ordering::SeqCst) {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
            }
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    let written = writer
        .join()
        .map_err(|_| std::io::Error::other("writer"))??;
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let s = t.stats();
    println!(
        "live: target {rate} lines/s for {seconds} s: written {written}, delivered {got} ({}), {:.0} lines/s incl. 2 s idle tail; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms; rotations {} batches {}",
        if written == got { "all, none twice" } else { "MISMATCH" },
        got as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        s.rotations,
        s.batches
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut a = std::env::args().skip(1).map(|s| s.parse::<u64>().ok());
    let lines = a.next().flatten().unwrap_or(2_000_000);
    let rate = a.next().flatten().unwrap_or(100_000);
    let seconds = a.next().flatten().unwrap_or(10);
    catch_up(lines, 1)?;
    catch_up(lines, 8)?;
    live(rate, seconds)?;
    Ok(())
}
