//! `kill -9` a real tailing process (examples/tail_lines.rs) mid-stream, twice, with a rename
//! rotation in between, and restart it from the same checkpoint: the union of the outputs
//! covers every line, and a line appears twice only if the killed run printed it after its
//! last acknowledged batch.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LINE_LEN: usize = 32;

fn line(n: u64) -> String {
    format!("line {n:010} abcdefghijklmno\n")
}

fn append(path: &Path, range: std::ops::Range<u64>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let s: String = range.map(line).collect();
    assert_eq!(s.len() % LINE_LEN, 0);
    f.write_all(s.as_bytes()).unwrap();
}

/// The example binary, built by `cargo test`; built here if this test runs alone.
fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("examples").join("tail_lines");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "trawl-ingest", "--example", "tail_lines"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building tail_lines");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// One run's output: line numbers in print order, and the index in that list after which
/// nothing was acknowledged (lines printed after the last `#ACK` marker).
struct RunOutput {
    lines: Vec<u64>,
    acked_prefix: usize,
}

fn spawn(bin: &Path, dir: &Path, extra: &[&str]) -> (Child, Arc<Mutex<RunOutput>>) {
    let mut child = Command::new(bin)
        .arg("--checkpoint")
        .arg(dir.join("ck.json"))
        .args(["--batch", "4096", "--poll-ms", "20"])
        .args(extra)
        .arg(dir.join("app.log*"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(RunOutput {
        lines: Vec::new(),
        acked_prefix: 0,
    }));
    let stdout = child.stdout.take().unwrap();
    let o = out.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() != Some(&b'\n') {
                break; // cut by the kill: not a delivered line
            }
            let mut o = o.lock().unwrap();
            if buf.starts_with(b"#ACK ") {
                o.acked_prefix = o.lines.len();
            } else {
                let n = std::str::from_utf8(&buf[5..15]).unwrap().parse().unwrap();
                o.lines.push(n);
            }
        }
    });
    (child, out)
}

fn kill_after(mut child: Child, out: &Arc<Mutex<RunOutput>>, lines: usize) -> (Vec<u64>, usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.lock().unwrap().lines.len() < lines && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let the reader drain the pipe
    let o = out.lock().unwrap();
    (o.lines.clone(), o.acked_prefix)
}

#[test]
fn sigkill_twice_then_restart_loses_nothing_and_repeats_only_unacked() {
    let bin = example_bin();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, 0..30_000);

    let (c, o) = spawn(&bin, dir.path(), &[]);
    let (run1, acked1) = kill_after(c, &o, 4_000);

    // Rotate by rename while nothing runs, and keep writing.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, 30_000..60_000);

    let (c, o) = spawn(&bin, dir.path(), &[]);
    let (run2, acked2) = kill_after(c, &o, 20_000);

    append(&log, 60_000..70_000);
    let (mut c, o) = spawn(&bin, dir.path(), &["--idle-exit-ms", "1500"]);
    let status = c.wait().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(100));
    let run3 = o.lock().unwrap().lines.clone();

    eprintln!(
        "run1 {} lines ({} acked), run2 {} lines ({} acked), run3 {} lines",
        run1.len(),
        acked1,
        run2.len(),
        acked2,
        run3.len()
    );
    assert!(
        run1.len() >= 4_000 && run1.len() < 70_000,
        "killed mid-stream"
    );
    assert!(run2.len() < 70_000, "killed mid-stream");

    // Within one run, no repeats.
    for (i, r) in [&run1, &run2, &run3].iter().enumerate() {
        let set: HashSet<u64> = r.iter().copied().collect();
        assert_eq!(set.len(), r.len(), "run {} repeated a line", i + 1);
    }
    // Union covers everything.
    let all: HashSet<u64> = run1.iter().chain(&run2).chain(&run3).copied().collect();
    let missing: Vec<u64> = (0..70_000).filter(|n| !all.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} lines never delivered, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // A line printed by a killed run and again later must be one it printed after its last
    // acknowledged batch.
    let later2: HashSet<u64> = run2.iter().chain(&run3).copied().collect();
    let later3: HashSet<u64> = run3.iter().copied().collect();
    for (name, run, acked, later) in [
        ("run1", &run1, acked1, &later2),
        ("run2", &run2, acked2, &later3),
    ] {
        let bad: Vec<u64> = run[..acked]
            .iter()
            .copied()
            .filter(|n| later.contains(n))
            .collect();
        assert!(
            bad.is_empty(),
            "{name}: {} acknowledged lines delivered again, first {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }
    let dups = run1.len() + run2.len() + run3.len() - all.len();
    eprintln!("redelivered after kills: {dups} lines");
}
