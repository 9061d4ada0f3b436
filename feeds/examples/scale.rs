//! Scale check: 30 generated feeds, 5M indicators in all, through a full `update`
//! (parse, normalise, derive, merge, allowlists, history, snapshot publish), twice.
//!
//! `cargo run --release -p trawl-feeds --example scale [TOTAL]`

use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let per = total / 30;
    let mut cfg = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let t = Instant::now();
    for f in 0..30 {
        let mut body = String::with_capacity(per * 32);
        for i in 0..per {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let _ = match f % 3 {
                0 => writeln!(body, "d{:x}.f{f}.example.com", x & 0xff_ffff_ffff),
                1 => writeln!(
                    body,
                    "{}.{}.{}.{}",
                    (x >> 8) % 223 + 1,
                    (x >> 16) % 256,
                    (x >> 24) % 256,
                    x % 256
                ),
                _ => writeln!(body, "http://h{:x}.example.net/p/{i}.php", x & 0xffff_ffff),
            };
        }
        let name = format!("feed{f:02}.txt");
        std::fs::write(dir.path().join(&name), body).expect("write");
        let _ = writeln!(
            cfg,
            "[[feed]]\nname = \"f{f}\"\nsource = \"{name}\"\nderive = false\n"
        );
    }
    eprintln!("generated {} lines in {:?}", per * 30, t.elapsed());
    let config = feeds::Config::from_toml_str(&cfg).expect("config");
    for run in 0..3 {
        if run == 2 {
            // One feed of 30 changes (its last line goes): the usual scheduled refresh.
            let p = dir.path().join("feed00.txt");
            let body = std::fs::read_to_string(&p).expect("read");
            let cut = body.trim_end().rfind('\n').map_or(0, |i| i + 1);
            std::fs::write(&p, &body[..cut]).expect("write");
        }
        let t = Instant::now();
        let opts = feeds::UpdateOptions {
            force: run == 0,
            ..Default::default()
        };
        let r = feeds::update(
            &config,
            dir.path(),
            &dir.path().join("data"),
            &opts,
            &feeds::NoProgress,
        )
        .expect("update");
        eprintln!(
            "update {run}: {:?}: total {} added {} removed {} unchanged {} ({})",
            t.elapsed(),
            r.total,
            r.added,
            r.removed,
            r.unchanged,
            match run {
                0 => "forced parse",
                1 => "files unchanged: not modified",
                _ => "one feed changed: 29 kept from the previous snapshot",
            }
        );
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        for l in s.lines().filter(|l| l.starts_with("VmHWM")) {
            eprintln!("{l}");
        }
    }
}
