//! Feed parse + normalise throughput on a generated 1M-line plain feed (70% domains, 20%
//! IPv4 addresses/CIDRs, 10% URLs), and the same feed as CSV.
//!
//! `cargo bench --bench update`
//!
//! Measured 2026-11-28 on the shared 2-core machine (other builds running, so upper
//! bounds): parse_plain 272 ms per 1M lines (103 MiB/s); detect + parse + normalise +
//! derive + dedup 6.1 s per 1M lines (normalisation dominates); CSV 5.0 s per 1M rows.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use feeds::config::{FeedConfig, Format};

fn generate(lines: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines * 32);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = match i % 10 {
            0 => format!(
                "http://h{:x}.example.net/p/{}.php?id={}\n",
                x & 0xffff_ffff,
                i,
                x % 997
            ),
            1 => format!(
                "{}.{}.{}.{}\n",
                (x >> 8) % 223 + 1,
                (x >> 16) % 256,
                (x >> 24) % 256,
                x % 256
            ),
            2 => format!(
                "{}.{}.{}.0/24\n",
                (x >> 8) % 223 + 1,
                (x >> 16) % 256,
                (x >> 24) % 256
            ),
            _ => format!("d{:x}.bad{}.example.com\n", x & 0xff_ffff_ffff, i % 1000),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn bench(c: &mut Criterion) {
    let plain = generate(1_000_000);
    let mut g = c.benchmark_group("feed_1m_lines");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(plain.len() as u64));
    let mut f = FeedConfig::new("bench", "bench");
    f.format = Format::Plain;
    g.bench_function("parse_plain", |b| {
        b.iter(|| feeds::parse_feed(&plain, &f).records.len())
    });
    g.bench_function("detect_parse_normalise_plain", |b| {
        let auto = FeedConfig::new("bench", "bench");
        b.iter(|| {
            feeds::update::process_bytes(&plain, &auto, 1_800_000_000)
                .1
                .len()
        })
    });
    let csv: Vec<u8> = {
        let mut v = b"id,indicator,seen\n".to_vec();
        for (i, l) in plain
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            v.extend_from_slice(format!("{i},\"").as_bytes());
            v.extend_from_slice(l);
            v.extend_from_slice(b"\",2024-01-01 00:00:00\n");
        }
        v
    };
    let mut fc = FeedConfig::new("bench", "bench");
    fc.format = Format::Csv;
    g.throughput(Throughput::Bytes(csv.len() as u64));
    g.bench_function("parse_normalise_csv", |b| {
        b.iter(|| {
            feeds::update::process_bytes(&csv, &fc, 1_800_000_000)
                .1
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
