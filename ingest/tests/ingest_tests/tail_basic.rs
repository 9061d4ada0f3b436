//! File tailing semantics on real files: partial lines, restarts, new files, long lines,
//! start positions, fingerprint stability, rotated copies, backpressure.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ingest::tail::{Batch, ReadFrom, TailConfig, TailError, Tailer};

/// Fixed-width numbered line (32 bytes with its newline).
fn line(n: u64) -> String {
    format!("line {n:010} abcdefghijklmno\n")
}

fn num(l: &[u8]) -> u64 {
    std::str::from_utf8(&l[5..15]).unwrap().parse().unwrap()
}

fn append(path: &Path, range: std::ops::Range<u64>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let s: String = range.map(line).collect();
    f.write_all(s.as_bytes()).unwrap();
}

fn cfg(dir: &Path, globs: &[&str]) -> TailConfig {
    let paths = globs
        .iter()
        .map(|g| dir.join(g).to_string_lossy().into_owned())
        .collect();
    let mut c = TailConfig::new(paths, dir.join("checkpoint.json"));
    c.poll_interval = Duration::from_millis(30);
    c
}

/// Reads batches until `want` lines were seen or 20 s pass; acks each when `ack`.
fn collect(t: &mut Tailer, want: usize, ack: bool) -> Vec<u64> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want && Instant::now() < deadline {
        if let Some(b) = t.next_batch(Duration::from_millis(100)).unwrap() {
            got.extend(b.iter_lines().map(|(_, l)| num(l)));
            if ack {
                t.ack(&b.id).unwrap();
            }
        }
    }
    got
}

fn next(t: &mut Tailer) -> Batch {
    t.next_batch(Duration::from_secs(10))
        .unwrap()
        .expect("a batch within 10 s")
}

#[test]
fn partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    fs::write(&p, b"first\nsecond-part").unwrap();
    let mut t = Tailer::new(cfg(dir.path(), &["a.log"])).unwrap();
    let b = next(&mut t);
    assert_eq!(b.bytes, b"first\n");
    assert_eq!((b.offset, b.end, b.line_count), (0, 6, 1));
    t.ack(&b.id).unwrap();
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"-rest\nthird\n").unwrap();
    let b = next(&mut t);
    assert_eq!(b.bytes, b"second-part-rest\nthird\n");
    assert_eq!(b.offset, 6);
    let lines: Vec<(u64, &[u8])> = b.iter_lines().collect();
    assert_eq!(
        lines,
        vec![(6, &b"second-part-rest"[..]), (23, &b"third"[..])]
    );
}

#[test]
fn restart_redelivers_exactly_the_unacked_batch() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..1000);
    let mut c = cfg(dir.path(), &["a.log"]);
    c.max_batch_bytes = 32 * 50; // 50 lines per batch
    let mut t = Tailer::new(c.clone()).unwrap();
    for _ in 0..7 {
        let b = next(&mut t);
        t.ack(&b.id).unwrap();
    }
    let unacked = next(&mut t);
    assert_eq!(unacked.offset, 7 * 50 * 32);
    let first_unacked = num(unacked.iter_lines().next().unwrap().1);
    assert_eq!(first_unacked, 350);
    drop(t);
    let mut t = Tailer::new(c).unwrap();
    let b = next(&mut t);
    assert_eq!(b.offset, unacked.offset, "resumes at the unacked batch");
    assert_eq!(b.bytes, unacked.bytes);
    t.ack(&b.id).unwrap();
    let mut got: Vec<u64> = b.iter_lines().map(|(_, l)| num(l)).collect();
    got.extend(collect(&mut t, 1000 - 400, true));
    assert_eq!(got, (350..1000).collect::<Vec<_>>());
}

#[test]
fn clean_stop_after_acks_neither_skips_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..300);
    let c = cfg(dir.path(), &["a.log"]);
    let mut t = Tailer::new(c.clone()).unwrap();
    assert_eq!(collect(&mut t, 300, true), (0..300).collect::<Vec<_>>());
    drop(t);
    append(&p, 300..500);
    let mut t = Tailer::new(c).unwrap();
    assert_eq!(collect(&mut t, 200, true), (300..500).collect::<Vec<_>>());
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
}

#[test]
fn out_of_order_acks_never_persist_past_an_unacked_batch() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..300);
    let mut c = cfg(dir.path(), &["a.log"]);
    c.max_batch_bytes = 32 * 100;
    let mut t = Tailer::new(c.clone()).unwrap();
    let b1 = next(&mut t);
    let b2 = next(&mut t);
    let b3 = next(&mut t);
    t.ack_many(&[b1.id, b3.id]).unwrap();
    assert!(matches!(t.ack(&b1.id), Err(TailError::UnknownBatch(_))));
    drop(t);
    let mut t = Tailer::new(c.clone()).unwrap();
    let again = next(&mut t);
    assert_eq!(again.offset, b2.offset, "b2 was not acked: resume there");
    t.ack(&again.id).unwrap();
    // b3's lines come again too: the position could not move past unacked b2.
    assert_eq!(collect(&mut t, 100, true), (200..300).collect::<Vec<_>>());
    let s = t.stats();
    assert_eq!(s.files.len(), 1);
    assert_eq!(
        (
            s.files[0].offset,
            s.files[0].committed,
            s.files[0].lag_bytes
        ),
        (9600, 9600, 0)
    );
}

#[test]
fn new_files_are_picked_up_with_and_without_notify() {
    for notify in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path(), &["*.log*"]);
        c.use_notify = notify;
        // The glob covers the checkpoint (rewritten at each ack): it must never be tailed.
        c.checkpoint_path = dir.path().join("state.log");
        let mut t = Tailer::new(c).unwrap();
        assert!(t.next_batch(Duration::from_millis(100)).unwrap().is_none());
        append(&dir.path().join("a.log"), 0..20);
        append(&dir.path().join("b.log"), 20..40);
        fs::write(dir.path().join("c.txt"), line(99)).unwrap();
        append(&dir.path().join("d.log.gz"), 50..60);
        let mut got = collect(&mut t, 40, true);
        got.sort();
        assert_eq!(got, (0..40).collect::<Vec<_>>(), "notify={notify}");
        assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
        assert!(dir.path().join("state.log").exists());
    }
}

#[test]
fn over_long_lines_are_cut_and_counted_offsets_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let mut data = line(0).into_bytes();
    data.extend(std::iter::repeat_n(b'x', 5000));
    data.push(b'\n');
    data.extend(line(1).into_bytes());
    data.extend(std::iter::repeat_n(b'y', 150));
    data.push(b'\n');
    data.extend(line(2).into_bytes());
    fs::write(&p, &data).unwrap();
    let mut c = cfg(dir.path(), &["a.log"]);
    c.max_line_bytes = 100;
    c.max_batch_bytes = 1024;
    let mut t = Tailer::new(c).unwrap();
    let mut batches = Vec::new();
    while let Some(b) = t.next_batch(Duration::from_millis(300)).unwrap() {
        t.ack(&b.id).unwrap();
        batches.push(b);
    }
    let lines: Vec<(u64, Vec<u8>, usize)> = batches
        .iter()
        .flat_map(|b| {
            b.iter_lines()
                .map(move |(o, l)| (o, l.to_vec(), b.truncated_lines))
        })
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0].0, 0);
    assert_eq!(lines[1], (32, vec![b'x'; 100], 1));
    assert_eq!(lines[2].0, 32 + 5001);
    assert_eq!(lines[3], (32 + 5001 + 32, vec![b'y'; 100], 1));
    assert_eq!(lines[4].0, 32 + 5001 + 32 + 151);
    assert_eq!(num(&lines[4].1), 2);
    assert_eq!(batches.last().unwrap().end, data.len() as u64);
    assert_eq!(t.stats().lines_truncated, 2);
}

#[test]
fn read_from_end_applies_to_files_present_at_start_only() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), 0..50);
    let mut c = cfg(dir.path(), &["*.log"]);
    c.read_from = ReadFrom::End;
    let mut t = Tailer::new(c.clone()).unwrap();
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
    append(&dir.path().join("a.log"), 50..55);
    append(&dir.path().join("b.log"), 100..110);
    let mut got = collect(&mut t, 15, true);
    got.sort();
    let want: Vec<u64> = (50..55).chain(100..110).collect();
    assert_eq!(got, want);
    drop(t);
    // The start position was persisted: a restart does not jump past lines written meanwhile.
    append(&dir.path().join("a.log"), 55..60);
    let mut t = Tailer::new(c).unwrap();
    assert_eq!(collect(&mut t, 5, true), (55..60).collect::<Vec<_>>());
}

#[test]
fn short_file_identity_is_stable_as_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..1); // 32 bytes < fingerprint_bytes
    let c = cfg(dir.path(), &["a.log"]);
    let mut t = Tailer::new(c.clone()).unwrap();
    let b = next(&mut t);
    assert_eq!(b.fingerprint.len, 32);
    t.ack(&b.id).unwrap();
    drop(t);
    append(&p, 1..100);
    // Found by its short fingerprint, then moved to its full one as it is now long enough.
    let mut t = Tailer::new(c.clone()).unwrap();
    let b = next(&mut t);
    assert_eq!(b.fingerprint.len, 256);
    assert_eq!(b.offset, 32, "continues after the first line");
    t.ack(&b.id).unwrap();
    let mut got: Vec<u64> = b.iter_lines().map(|(_, l)| num(l)).collect();
    got.extend(collect(&mut t, 99 - got.len(), true));
    assert_eq!(got, (1..100).collect::<Vec<_>>());
    drop(t);
    let ck = fs::read_to_string(dir.path().join("checkpoint.json")).unwrap();
    assert!(
        ck.contains("\"fp_len\":256") && !ck.contains("\"fp_len\":32"),
        "{ck}"
    );
    append(&p, 100..110);
    let mut t = Tailer::new(c).unwrap();
    assert_eq!(collect(&mut t, 10, true), (100..110).collect::<Vec<_>>());
}

#[test]
fn a_new_file_sharing_a_grown_files_first_line_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    fs::write(&p, b"daemon starting\n").unwrap();
    let mut t = Tailer::new(cfg(dir.path(), &["app.log*"])).unwrap();
    let b = next(&mut t);
    assert_eq!(
        (b.fingerprint.len, b.bytes.as_slice()),
        (16, &b"daemon starting\n"[..])
    );
    append(&p, 0..20);
    assert_eq!(collect(&mut t, 20, true), (0..20).collect::<Vec<_>>());
    // Delivered under the short fingerprint, acknowledged after the move to the full one.
    t.ack(&b.id).unwrap();
    drop(t);
    // Rotated offline; the new log starts with the same first line.
    fs::rename(&p, dir.path().join("app.log.1")).unwrap();
    fs::write(&p, b"daemon starting\n").unwrap();
    append(&p, 100..120);
    let mut t = Tailer::new(cfg(dir.path(), &["app.log*"])).unwrap();
    let b = next(&mut t);
    assert_eq!(b.offset, 0);
    assert!(b.bytes.starts_with(b"daemon starting\n"));
    t.ack(&b.id).unwrap();
    let mut got: Vec<u64> = b.iter_lines().skip(1).map(|(_, l)| num(l)).collect();
    got.extend(collect(&mut t, 20 - got.len(), true));
    assert_eq!(got, (100..120).collect::<Vec<_>>());
    assert!(t.next_batch(Duration::from_millis(300)).unwrap().is_none());
}

#[test]
fn renamed_and_copied_files_continue_from_their_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    append(&p, 0..200);
    let c = cfg(dir.path(), &["app.log*"]);
    let mut t = Tailer::new(c.clone()).unwrap();
    assert_eq!(collect(&mut t, 200, true), (0..200).collect::<Vec<_>>());
    drop(t);
    // Offline: rotate by rename, write to the old file, and leave an identical copy around.
    fs::rename(&p, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), 200..210);
    fs::copy(
        dir.path().join("app.log.1"),
        dir.path().join("app.log.copy"),
    )
    .unwrap();
    append(&p, 300..320);
    let mut t = Tailer::new(c).unwrap();
    let mut got = collect(&mut t, 30, true);
    got.sort();
    let want: Vec<u64> = (200..210).chain(300..320).collect();
    assert_eq!(got, want);
    assert!(t.next_batch(Duration::from_millis(300)).unwrap().is_none());
}

#[test]
fn a_file_waits_when_its_unacked_batches_reach_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), 0..100);
    let mut c = cfg(dir.path(), &["a.log"]);
    c.max_batch_bytes = 320;
    c.max_unacked_batches = 2;
    let mut t = Tailer::new(c).unwrap();
    let b1 = next(&mut t);
    let _b2 = next(&mut t);
    assert!(t.next_batch(Duration::from_millis(150)).unwrap().is_none());
    t.ack(&b1.id).unwrap();
    let b3 = next(&mut t);
    assert_eq!(b3.offset, 640);
}

#[test]
fn unlisted_renamed_file_is_drained_through_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    let mut w = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    let s: String = (0..100).map(line).collect();
    w.write_all(s.as_bytes()).unwrap();
    let c = cfg(dir.path(), &["app.log"]);
    let mut t = Tailer::new(c).unwrap();
    let mut got = collect(&mut t, 50, true);
    fs::rename(&p, dir.path().join("old")).unwrap();
    let s: String = (100..150).map(line).collect();
    w.write_all(s.as_bytes()).unwrap(); // the writer has not reopened yet
    append(&p, 150..200);
    got.extend(collect(&mut t, 200 - got.len(), true));
    got.sort();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert!(t.stats().rotations >= 1);
}

#[test]
fn copytruncate_in_place_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    append(&p, 0..100);
    let mut t = Tailer::new(cfg(dir.path(), &["app.log*"])).unwrap();
    assert_eq!(collect(&mut t, 100, true), (0..100).collect::<Vec<_>>());
    append(&p, 100..110);
    fs::copy(&p, dir.path().join("app.log.1")).unwrap();
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, 1000..1200); // regrows past the old position before the next read
    let mut got = collect(&mut t, 210, true);
    got.sort();
    let want: Vec<u64> = (100..110).chain(1000..1200).collect();
    assert_eq!(got, want);
    assert!(t.next_batch(Duration::from_millis(300)).unwrap().is_none());
    assert_eq!(t.stats().truncations, 1);
}

#[test]
fn bad_configuration_and_checkpoint_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), &["a.log"]);
    c.paths = vec!["[".into()];
    assert!(matches!(Tailer::new(c), Err(TailError::Pattern { .. })));
    let mut c = cfg(dir.path(), &["a.log"]);
    c.poll_interval = Duration::ZERO;
    assert!(matches!(Tailer::new(c), Err(TailError::Config(_))));
    let c = cfg(dir.path(), &["a.log"]);
    fs::write(dir.path().join("checkpoint.json"), b"not json").unwrap();
    assert!(matches!(
        Tailer::new(c),
        Err(TailError::CheckpointFormat { .. })
    ));
    let mut c = cfg(dir.path(), &["a.log"]);
    c.checkpoint_path = PathBuf::from("/nonexistent-dir/ck.json");
    // A checkpoint that cannot be written surfaces at the first ack.
    append(&dir.path().join("a.log"), 0..10);
    let mut t = Tailer::new(c).unwrap();
    let b = next(&mut t);
    assert!(matches!(t.ack(&b.id), Err(TailError::CheckpointIo { .. })));
}

#[test]
fn stop_handle_unblocks_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tailer::new(cfg(dir.path(), &["a.log"])).unwrap();
    let h = t.stop_handle();
    let th = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.stop();
    });
    let start = Instant::now();
    assert!(t.next_batch(Duration::from_secs(30)).unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(20));
    th.join().unwrap();
}

#[test]
fn idle_files_are_closed_and_reopened_when_they_grow() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..100);
    let mut c = cfg(dir.path(), &["a.log"]);
    c.idle_close = Duration::from_millis(100);
    let mut t = Tailer::new(c).unwrap();
    assert_eq!(collect(&mut t, 100, true), (0..100).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.stats().files.is_empty() && Instant::now() < deadline {
        assert!(t.next_batch(Duration::from_millis(50)).unwrap().is_none());
    }
    assert!(t.stats().files.is_empty(), "idle descriptor closed");
    append(&p, 100..150);
    assert_eq!(collect(&mut t, 50, true), (100..150).collect::<Vec<_>>());
    assert_eq!(t.stats().files.len(), 1);
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
}

#[test]
fn deleted_file_is_drained_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let mut w = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    w.write_all((0..50).map(line).collect::<String>().as_bytes())
        .unwrap();
    let mut c = cfg(dir.path(), &["a.log"]);
    c.drain_linger = Duration::from_millis(150);
    let mut t = Tailer::new(c).unwrap();
    let mut got = collect(&mut t, 10, true);
    fs::remove_file(&p).unwrap();
    w.write_all((50..80).map(line).collect::<String>().as_bytes())
        .unwrap();
    got.extend(collect(&mut t, 80 - got.len(), true));
    assert_eq!(got, (0..80).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.stats().files.is_empty() && Instant::now() < deadline {
        assert!(t.next_batch(Duration::from_millis(50)).unwrap().is_none());
    }
    assert!(t.stats().files.is_empty(), "drained deleted file closed");
}

#[test]
fn identical_copy_waiting_behind_an_idle_original_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    append(&p, 0..100);
    let mut c = cfg(dir.path(), &["app.log*"]);
    c.idle_close = Duration::from_millis(150);
    let mut t = Tailer::new(c).unwrap();
    let mut got = collect(&mut t, 100, true);
    append(&p, 100..110);
    fs::copy(&p, dir.path().join("app.log.1")).unwrap();
    // Both idle long enough to be closed, in whatever order.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        if let Some(b) = t.next_batch(Duration::from_millis(50)).unwrap() {
            got.extend(b.iter_lines().map(|(_, l)| num(l)));
            t.ack(&b.id).unwrap();
        }
    }
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, 1000..1100);
    got.extend(collect(&mut t, 210 - got.len(), true));
    got.sort();
    let want: Vec<u64> = (0..110).chain(1000..1100).collect();
    assert_eq!(got, want);
    assert!(t.next_batch(Duration::from_millis(300)).unwrap().is_none());
}

/// A file cut (truncated, or re-created) and rewritten with the same first bytes, shorter
/// than the position its fingerprint had reached, is new content: it is read again from its
/// start, while running and after a restart, and the lag says how much is unread.
#[test]
fn a_file_cut_and_rewritten_with_the_same_first_bytes_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    append(&p, 0..100);
    let c = cfg(dir.path(), &["app.log"]);
    let mut t = Tailer::new(c.clone()).unwrap();
    assert_eq!(collect(&mut t, 100, true), (0..100).collect::<Vec<_>>());
    // Running: truncated in place, then the same first 20 lines (the fingerprint's 256 bytes
    // and more) and 5 new ones: 800 bytes, below the position 3200.
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, 0..20);
    append(&p, 500..505);
    let want: Vec<u64> = (0..20).chain(500..505).collect();
    assert_eq!(collect(&mut t, 25, true), want);
    assert!(t.stats().truncations >= 1);
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
    // Running: re-created (a new inode at the same path) with the same first lines, the old
    // one deleted; 23 lines, below the position 800.
    fs::remove_file(&p).unwrap();
    append(&p, 0..20);
    append(&p, 600..603);
    let want: Vec<u64> = (0..20).chain(600..603).collect();
    assert_eq!(collect(&mut t, 23, true), want);
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
    drop(t);
    // Stopped: re-created (a new inode) with the same first lines, shorter than the
    // checkpointed position 736.
    fs::remove_file(&p).unwrap();
    append(&p, 0..20);
    append(&p, 700..702);
    let mut t = Tailer::new(c.clone()).unwrap();
    let lag: u64 = t.stats().files.iter().map(|f| f.lag_bytes).sum();
    assert_eq!(lag, 22 * 32, "the lag counts the unread file, not 0");
    let want: Vec<u64> = (0..20).chain(700..702).collect();
    assert_eq!(collect(&mut t, 22, true), want);
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
    drop(t);
    // Stopped, then truncated in place to the same first lines only.
    File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(10 * 32)
        .unwrap();
    let mut t = Tailer::new(c).unwrap();
    assert_eq!(collect(&mut t, 10, true), (0..10).collect::<Vec<_>>());
    assert!(t.next_batch(Duration::from_millis(200)).unwrap().is_none());
}

/// The checkpoint is written through a temp file that is never a symlink's target: a link
/// planted there is replaced, and what it pointed to is left alone.
#[test]
fn the_checkpoint_is_never_written_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    append(&p, 0..10);
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    let c = cfg(dir.path(), &["a.log"]);
    std::os::unix::fs::symlink(&victim, dir.path().join("checkpoint.json.tmp")).unwrap();
    let mut t = Tailer::new(c.clone()).unwrap();
    assert_eq!(collect(&mut t, 10, true), (0..10).collect::<Vec<_>>());
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert!(!fs::symlink_metadata(dir.path().join("checkpoint.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    drop(t);
    let t = Tailer::new(c).unwrap();
    assert_eq!(
        t.stats().files[0].committed,
        320,
        "the checkpoint was written"
    );
}
