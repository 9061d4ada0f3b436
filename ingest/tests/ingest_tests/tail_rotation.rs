//! A writer thread appends numbered lines as fast as it can and rotates the log both ways
//! (rename-and-create, copytruncate) while a tailer reads and acks; every line number must be
//! seen exactly once.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::tail::{TailConfig, Tailer};

const LINES: u64 = 120_000;
const ROTATE_EVERY: u64 = 10_000;
const CHUNK: u64 = 40;

fn line(n: u64) -> String {
    format!("{n:010} GET http://example.com/some/path?q={n} 200\n")
}

fn open_append(p: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
}

/// Writes `LINES` lines in chunks; every `ROTATE_EVERY` lines rotates, alternating
/// rename-and-create (also writing a chunk to the old descriptor after the rename, as a
/// daemon does before it reopens) and copytruncate (copy, then truncate in place; the writer
/// keeps its O_APPEND descriptor).
/// With `copytruncate` false the rotated names are not listed: a file renamed before the
/// tailer ever opened it could not be followed (no glob names it), so the writer then waits
/// (at most 10 s) until the reader has seen a line of the current file before renaming it.
fn writer(
    dir: PathBuf,
    done: Arc<AtomicBool>,
    copytruncate: bool,
    reader_max: Arc<AtomicU64>,
) -> (u64, u64) {
    let log = dir.join("app.log");
    let mut f = open_append(&log);
    let mut renames = 0;
    let mut copies = 0;
    let mut n = 0;
    let mut gen = 0;
    while n < LINES {
        let s: String = (n..(n + CHUNK).min(LINES)).map(line).collect();
        f.write_all(s.as_bytes()).unwrap();
        n = (n + CHUNK).min(LINES);
        if n % ROTATE_EVERY == 0 && n < LINES {
            gen += 1;
            let rotated = dir.join(format!("app.log.{gen}"));
            if gen % 2 == 1 || !copytruncate {
                if !copytruncate {
                    let until = Instant::now() + Duration::from_secs(10);
                    // `reader_max` is 1 + the highest line read; this line is in the current file.
                    while reader_max.load(Ordering::SeqCst) <= n - ROTATE_EVERY + CHUNK
                        && Instant::now() < until
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                fs::rename(&log, &rotated).unwrap();
                let s: String = (n..n + CHUNK).map(line).collect();
                f.write_all(s.as_bytes()).unwrap();
                n += CHUNK;
                f = open_append(&log);
                renames += 1;
            } else {
                fs::copy(&log, &rotated).unwrap();
                f.set_len(0).unwrap();
                copies += 1;
            }
        }
        // ~40 lines per millisecond: fast, yet slow enough that the tailer is caught up at
        // most rotations, so both the drain and the truncation paths are exercised.
        std::thread::sleep(Duration::from_millis(1));
    }
    done.store(true, Ordering::SeqCst);
    (renames, copies)
}

/// `listed_rotations`: the glob also matches the rotated names (`app.log*`); otherwise only
/// `app.log` is listed, and rotation is by rename only (a copy no glob lists cannot be
/// followed), so renamed files are drained through their open descriptor.
fn run(use_notify: bool, listed_rotations: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TailConfig::new(
        vec![dir
            .path()
            .join(if listed_rotations {
                "app.log*"
            } else {
                "app.log"
            })
            .to_string_lossy()
            .into_owned()],
        dir.path().join("checkpoint.json"),
    );
    cfg.use_notify = use_notify;
    cfg.poll_interval = Duration::from_millis(20);
    cfg.max_batch_bytes = 64 * 1024;
    let mut t = Tailer::new(cfg).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader_max = Arc::new(AtomicU64::new(0));
    let w = {
        let (d, done, m) = (dir.path().to_path_buf(), done.clone(), reader_max.clone());
        std::thread::spawn(move || writer(d, done, listed_rotations, m))
    };
    let mut seen = vec![0u32; LINES as usize];
    let mut total = 0u64;
    let mut done_at = None;
    while total < LINES {
        if done.load(Ordering::SeqCst) && done_at.is_none() {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|d| d.elapsed() > Duration::from_secs(30)) {
            break;
        }
        if let Some(b) = t.next_batch(Duration::from_millis(50)).unwrap() {
            for (_, l) in b.iter_lines() {
                let n: usize = std::str::from_utf8(&l[..10]).unwrap().parse().unwrap();
                seen[n] += 1;
                total += 1;
                reader_max.fetch_max(n as u64 + 1, Ordering::SeqCst);
            }
            t.ack(&b.id).unwrap();
        }
    }
    let (renames, copies) = w.join().unwrap();
    // Anything late or duplicated shows up here.
    while let Some(b) = t.next_batch(Duration::from_millis(300)).unwrap() {
        for (_, l) in b.iter_lines() {
            let n: usize = std::str::from_utf8(&l[..10]).unwrap().parse().unwrap();
            seen[n] += 1;
        }
        t.ack(&b.id).unwrap();
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    let dup: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).collect();
    let s = t.stats();
    eprintln!(
        "notify={use_notify} renames={renames} copytruncates={copies} stats: lines={} batches={} rotations={} truncations={}",
        s.lines, s.batches, s.rotations, s.truncations
    );
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &m in &missing {
        match ranges.last_mut() {
            Some(r) if r.1 + 1 == m => r.1 = m,
            _ => ranges.push((m, m)),
        }
    }
    assert!(
        missing.is_empty(),
        "{} missing, ranges {:?}",
        missing.len(),
        &ranges[..ranges.len().min(20)]
    );
    assert!(
        dup.is_empty(),
        "{} duplicated, first {:?}",
        dup.len(),
        &dup[..dup.len().min(10)]
    );
    assert_eq!(s.lines, LINES);
    assert!(s.rotations >= 1, "rename rotations observed");
    if listed_rotations {
        assert_eq!((renames, copies), (6, 5));
        assert!(s.truncations >= 1, "copytruncate observed");
    } else {
        assert_eq!((renames, copies), (11, 0));
    }
}

#[test]
fn every_line_exactly_once_across_rotations_with_notify() {
    run(true, true);
}

#[test]
fn every_line_exactly_once_across_rotations_polling_only() {
    run(false, true);
}

#[test]
fn renamed_files_outside_the_glob_are_drained_exactly_once() {
    run(true, false);
}

/// A scan that falls between the rename and the creation of the successor (the path names
/// no file for a moment) must still count the successor as a rotation.
#[test]
fn a_scan_between_rename_and_create_still_counts_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut cfg = TailConfig::new(
        vec![dir.path().join("app*.log").to_string_lossy().into_owned()],
        dir.path().join("ck.json"),
    );
    cfg.poll_interval = Duration::from_millis(10);
    let mut t = Tailer::new(cfg).unwrap();
    let drain = |t: &mut Tailer| {
        let mut n = 0;
        while let Some(b) = t.next_batch(Duration::from_millis(200)).unwrap() {
            n += b.iter_lines().count();
            t.ack(&b.id).unwrap();
        }
        n
    };
    fs::write(&log, "one\n").unwrap();
    assert_eq!(drain(&mut t), 1);
    fs::rename(&log, dir.path().join("app-1.log")).unwrap();
    // Scans run while the path is missing.
    assert_eq!(drain(&mut t), 0);
    fs::write(&log, "two\n").unwrap();
    assert_eq!(drain(&mut t), 1);
    assert_eq!(t.stats().rotations, 1);
}
