//! A real Zeek dns.log from the corpus, written into a live log in pieces that split lines, and
//! rotated Zeek-style (rename, new file with its own header, whose `#open` timestamp lies
//! inside the fingerprinted first 256 bytes): every line arrives exactly once.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingest::tail::{TailConfig, Tailer};

fn corpus(rel: &str) -> Option<PathBuf> {
    let p = crate::corpus::corpus_dir()?.join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("CORPUS ABSENT: {}", p.display());
        None
    }
}

#[test]
fn zeek_dns_log_tailed_across_a_zeek_style_rotation() {
    let Some(src) = corpus("logs/zeek-wrccdc/dns.log") else {
        return;
    };
    let data = fs::read(&src).unwrap();
    // `wc -l logs/zeek-wrccdc/dns.log` = 3009 (8 header lines + records).
    let nl = data.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(nl, 3009);
    let header_end = {
        let mut end = 0;
        for (i, l) in data.split_inclusive(|&b| b == b'\n').enumerate() {
            if i >= 8 {
                break;
            }
            end += l.len();
        }
        end
    };
    let header = &data[..header_end];
    assert!(header.starts_with(b"#separator") && header.ends_with(b"\n"));
    let records = &data[header_end..];
    let half = records.len() / 2;
    let split = half + records[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let second_header = String::from_utf8_lossy(header)
        .replace("#open\t2024-04-12-19-29-12", "#open\t2024-04-12-20-00-00");
    assert_ne!(second_header.as_bytes(), header);
    let first: Vec<u8> = [header, &records[..split]].concat();
    let second: Vec<u8> = [second_header.as_bytes(), &records[split..]].concat();

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    let mut cfg = TailConfig::new(
        vec![dir.path().join("dns*.log").to_string_lossy().into_owned()],
        dir.path().join("ck.json"),
    );
    cfg.poll_interval = Duration::from_millis(20);
    cfg.max_batch_bytes = 16 * 1024;
    let mut t = Tailer::new(cfg).unwrap();

    let writer = {
        let (log, dir) = (log.clone(), dir.path().to_path_buf());
        let (first, second) = (first.clone(), second.clone());
        std::thread::spawn(move || {
            for (k, part) in [first, second].iter().enumerate() {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                for piece in part.chunks(4093) {
                    f.write_all(piece).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                if k == 0 {
                    fs::rename(&log, dir.join("dns-2024-04-12-19.log")).unwrap();
                }
            }
        })
    };
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < nl + 8 && Instant::now() < deadline {
        if let Some(b) = t.next_batch(Duration::from_millis(100)).unwrap() {
            got.extend(b.iter_lines().map(|(_, l)| l.to_vec()));
            t.ack(&b.id).unwrap();
        }
    }
    writer.join().unwrap();
    while let Some(b) = t.next_batch(Duration::from_millis(300)).unwrap() {
        got.extend(b.iter_lines().map(|(_, l)| l.to_vec()));
        t.ack(&b.id).unwrap();
    }
    let mut want: Vec<Vec<u8>> = first
        .split(|&b| b == b'\n')
        .chain(second.split(|&b| b == b'\n'))
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect();
    assert_eq!(want.len(), nl + 8, "two headers of 8 lines each");
    want.sort();
    got.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "delivered lines differ from the written ones");
    let s = t.stats();
    assert_eq!(s.lines as usize, nl + 8);
    assert!(s.rotations >= 1);
}
