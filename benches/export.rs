//! Export throughput: 1M generated indicators (IPv4 addresses and CIDRs, IPv6, domains,
//! URLs, hashes) through every format into a sink. Target: each format under 5 s.

use criterion::{criterion_group, BatchSize, Criterion};
use feeds::export::{export, ExportFormat, ExportOptions, Filter};
use matcher::{Indicator, IndicatorType, Severity};
use std::time::Duration;

fn generate(n: usize) -> Vec<Indicator> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let r = next();
        let (value, t) = match i % 20 {
            0..=5 => {
                let a = (r >> 8) as u32;
                (std::net::Ipv4Addr::from(a).to_string(), IndicatorType::Ipv4)
            }
            6 => {
                let a = ((r >> 8) as u32) & 0xffff_ff00;
                (
                    format!("{}/24", std::net::Ipv4Addr::from(a)),
                    IndicatorType::Ipv4,
                )
            }
            7 => (
                format!(
                    "2001:db8:{:x}:{:x}::{:x}",
                    (r >> 16) & 0xffff,
                    (r >> 32) & 0xffff,
                    r & 0xffff
                ),
                IndicatorType::Ipv6,
            ),
            8..=15 => (
                format!("h{:x}.d{}.example", r >> 20, r % 50_000),
                IndicatorType::Fqdn,
            ),
            16..=18 => (
                format!(
                    "http://d{}.example/p/{:x}.php?id={}",
                    r % 50_000,
                    r >> 24,
                    i
                ),
                IndicatorType::Url,
            ),
            _ => (
                format!("{:016x}{:016x}{:016x}{:016x}", r, !r, r.rotate_left(7), i),
                IndicatorType::Sha256,
            ),
        };
        let mut ind = Indicator::new(value, t, if r % 3 == 0 { "urlhaus" } else { "feodo" });
        ind.confidence = (r % 100) as u8;
        ind.severity = [Severity::Low, Severity::Medium, Severity::High][(r % 3) as usize];
        ind.tags = vec!["malware".into()];
        ind.first_seen = Some(1_700_000_000 + (r % 1_000_000) as i64);
        v.push(ind);
    }
    v
}

fn bench(c: &mut Criterion) {
    let inds = generate(1_000_000);
    let opts = ExportOptions {
        snapshot_version: 1,
        ..ExportOptions::default()
    };
    let mut g = c.benchmark_group("export_1m");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(10));
    for f in ExportFormat::ALL {
        g.bench_function(f.as_str(), |b| {
            b.iter_batched(
                || inds.clone(),
                |v| {
                    export(
                        f,
                        &mut v.into_iter(),
                        &Filter::default(),
                        &opts,
                        &mut std::io::sink(),
                    )
                    .expect("export")
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);

/// User + system CPU seconds of this process so far (from /proc/self/stat, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// `TRAWL_EXPORT_QUICK=1`: one export per format with wall and CPU time (for a machine too
/// loaded for criterion's samples); otherwise the criterion benchmark.
fn main() {
    if let Ok(only) = std::env::var("TRAWL_EXPORT_QUICK") {
        let inds = generate(1_000_000);
        let opts = ExportOptions {
            snapshot_version: 1,
            ..ExportOptions::default()
        };
        for f in ExportFormat::ALL {
            if only != "1" && !only.split(',').any(|o| o == f.as_str()) {
                continue;
            }
            let v = inds.clone();
            let mut out = CountingSink(0);
            let (c0, t0) = (cpu_seconds(), std::time::Instant::now());
            let stats =
                export(f, &mut v.into_iter(), &Filter::default(), &opts, &mut out).expect("export");
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
            println!(
                "{:10} wall {wall:6.2} s  cpu {cpu:6.2} s  written {:8}  records {:8}  {:6} MB",
                f.as_str(),
                stats.written,
                stats.rules,
                out.0 / 1_000_000
            );
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// A sink that counts bytes.
struct CountingSink(usize);

impl std::io::Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
