//! Arbitrary bytes appended in arbitrary pieces, read while being written: batches are
//! contiguous, hold only complete lines, respect `max_line_bytes`, and together reproduce the
//! file up to its last newline. No input makes the tailer panic.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use ingest::tail::{TailConfig, Tailer};
use proptest::prelude::*;

fn check(content: &[u8], cuts: &[usize], max_line: usize, max_batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut cfg = TailConfig::new(
        vec![path.to_string_lossy().into_owned()],
        dir.path().join("ck.json"),
    );
    cfg.poll_interval = Duration::from_millis(5);
    cfg.max_line_bytes = max_line;
    cfg.max_batch_bytes = max_batch;
    cfg.fingerprint_bytes = 64;
    cfg.max_unacked_batches = 1_000_000;
    let mut t = Tailer::new(cfg).unwrap();
    let mut batches = Vec::new();
    let mut written = 0;
    for &c in cuts {
        let upto = c.clamp(written, content.len());
        f.write_all(&content[written..upto]).unwrap();
        written = upto;
        while let Some(b) = t.next_batch(Duration::ZERO).unwrap() {
            batches.push(b);
        }
    }
    f.write_all(&content[written..]).unwrap();
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(60) {
        if let Some(b) = t.next_batch(Duration::from_millis(10)).unwrap() {
            batches.push(b);
            idle = Instant::now();
        }
    }
    let complete = content
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    // Identification needs a complete line within the fingerprint or 64 bytes.
    let identifiable = complete > 0 || content.len() >= 64;
    let mut pos = 0u64;
    let mut rebuilt = Vec::new();
    for b in &batches {
        assert_eq!(b.offset, pos, "contiguous");
        assert!(b.bytes.ends_with(b"\n"));
        let lines: Vec<(u64, &[u8])> = b.iter_lines().collect();
        assert_eq!(lines.len(), b.line_count);
        for (_, l) in &lines {
            assert!(l.len() <= max_line);
        }
        if b.truncated_lines == 0 {
            assert_eq!(b.end - b.offset, b.bytes.len() as u64);
            rebuilt.extend_from_slice(&b.bytes);
        } else {
            assert_eq!(b.line_count, 1);
            let orig = &content[b.offset as usize..b.end as usize];
            assert!(orig.len() > max_line + 1);
            assert_eq!(&b.bytes[..max_line], &orig[..max_line]);
            rebuilt.extend_from_slice(orig);
        }
        pos = b.end;
    }
    if identifiable {
        assert_eq!(pos as usize, complete);
        assert_eq!(rebuilt, &content[..complete]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn batches_reproduce_the_file(
        content in proptest::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(b'\n')], 0..3000),
        cuts in proptest::collection::vec(0usize..3000, 0..8),
        max_line in 1usize..200,
        max_batch in 1usize..600,
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        check(&content, &cuts, max_line, max_batch);
    }
}
