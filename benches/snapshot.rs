//! Snapshot benchmarks (issue 2 targets): compile 1M domains + 100k URLs + 100k IPv4 +
//! 10k CIDRs (< 3 s on 2 cores), the published snapshot's size on disk (< 30 MB), open time
//! (< 100 ms) and match throughput. Data comes from a seeded generator, so runs compare.
//!
//! Run: `cargo bench --bench snapshot`.

use criterion::{BatchSize, Criterion, Throughput};
use matcher::normalize::mask_v4;
use matcher::{Hit, Indicator, IndicatorType, Matcher, Severity, Snapshot, SnapshotBuilder, Tlp};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn label(&mut self, min: u64, max: u64) -> String {
        const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|i| {
                // Mostly letters, like real names; digits inside only.
                let pool = if i == 0 { 26 } else { CH.len() as u64 };
                char::from(CH[self.below(pool) as usize])
            })
            .collect()
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const TLDS: &[&str] = &[
    "com", "net", "org", "ru", "info", "xyz", "top", "cn", "io", "co.uk", "de", "biz", "online",
    "site",
];
const FEEDS: &[(&str, &str)] = &[
    ("urlhaus", "abuse.ch"),
    ("threatfox", "abuse.ch"),
    ("openphish", "openphish.com"),
    ("phishtank", "phishtank.org"),
    ("maltrail", "maltrail"),
    ("spamhaus-drop", "spamhaus.org"),
    ("emergingthreats", "proofpoint"),
    ("blocklist-de", "blocklist.de"),
];
const TAGS: &[&[&str]] = &[
    &["malware"],
    &["phishing"],
    &["botnet", "c2"],
    &["scanner"],
    &["spam"],
    &["exploit", "malware"],
];

struct Data {
    indicators: Vec<Indicator>,
    q_domains: Vec<String>,
    q_urls: Vec<String>,
    q_ips: Vec<IpAddr>,
}

/// Metadata as trawl's feed fetcher records it: each feed has its provider, default tags and
/// TLP; `first_seen` is the (daily) fetch at which the indicator first appeared over the past
/// year, `last_seen` the feed's latest fetch; confidence and severity vary per indicator.
fn meta(
    rng: &mut Rng,
    value: String,
    itype: IndicatorType,
    reference: Option<String>,
) -> Indicator {
    let f = rng.below(FEEDS.len() as u64) as usize;
    let (feed, provider) = FEEDS[f];
    let mut i = Indicator::new(value, itype, feed);
    i.provider = Some(provider.to_string());
    i.confidence = [50, 75, 85, 95][rng.below(4) as usize];
    i.severity = [Severity::Low, Severity::Medium, Severity::High][rng.below(3) as usize];
    i.tlp = if f % 3 == 0 { Tlp::Clear } else { Tlp::Green };
    i.tags = TAGS[f % TAGS.len()].iter().map(|t| t.to_string()).collect();
    let fetch0 = 1_732_000_000 + 600 * f as i64;
    i.first_seen = Some(fetch0 + 86_400 * rng.below(365) as i64);
    i.last_seen = Some(fetch0 + 86_400 * 365);
    i.reference = reference;
    i
}

/// A word-like label (syllables), as in phishing/spam/malware-hosting names.
fn word(rng: &mut Rng, syllables: u64) -> String {
    const ON: &[&str] = &[
        "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "st",
        "tr", "pr", "sh", "ch", "", "",
    ];
    const NU: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea", "y"];
    const CO: &[&str] = &["", "", "", "n", "r", "s", "t", "x", "ck", "ng", "ll"];
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(rng.pick(ON));
        w.push_str(rng.pick(NU));
        w.push_str(rng.pick(CO));
    }
    if rng.below(4) == 0 {
        w.push('-');
        w.push_str(&rng.label(2, 6));
    }
    w
}

fn generate() -> Data {
    let mut rng = Rng(0x7261_776c_2d62_656e);
    let mut indicators = Vec::with_capacity(1_210_000);
    // 1M domains: 40% word-like names, 30% sub-domains of 100k shared bases (free hosting,
    // dynamic DNS, compromised sites), 30% DGA-style random labels.
    let bases: Vec<String> = (0..100_000)
        .map(|_| {
            let n = 2 + rng.below(3);
            format!("{}.{}", word(&mut rng, n), rng.pick(TLDS))
        })
        .collect();
    let mut domains = Vec::with_capacity(1_000_000);
    for n in 0..1_000_000u32 {
        let d = match n % 10 {
            0..=3 => {
                let s = 2 + rng.below(4);
                format!("{}.{}", word(&mut rng, s), rng.pick(TLDS))
            }
            4..=6 => {
                let b = &bases[rng.below(bases.len() as u64) as usize];
                format!("{}.{b}", rng.label(2, 10))
            }
            _ => format!("{}.{}", rng.label(10, 20), rng.pick(TLDS)),
        };
        domains.push(d);
    }
    for d in &domains {
        let i = meta(&mut rng, d.clone(), IndicatorType::Fqdn, None);
        indicators.push(i);
    }
    let mut urls = Vec::with_capacity(100_000);
    for n in 0..100_000u32 {
        let host = if n % 10 == 0 {
            Ipv4Addr::from(rng.next() as u32).to_string()
        } else {
            domains[rng.below(domains.len() as u64) as usize].clone()
        };
        let segs: Vec<String> = (0..1 + rng.below(3)).map(|_| rng.label(3, 10)).collect();
        let mut u = format!(
            "{}://{host}/{}",
            if n % 3 == 0 { "https" } else { "http" },
            segs.join("/")
        );
        match n % 4 {
            0 => u.push_str(".php"),
            1 => u.push_str(&format!("?id={}", rng.below(100_000))),
            2 => u.push('/'),
            _ => u.push_str(".exe"),
        }
        let reference = Some(format!("https://urlhaus.abuse.ch/url/{}/", 2_000_000 + n));
        urls.push(u.clone());
        indicators.push(meta(&mut rng, u, IndicatorType::Url, reference));
    }
    let mut ips = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let a = Ipv4Addr::from(rng.next() as u32);
        ips.push(a);
        indicators.push(meta(&mut rng, a.to_string(), IndicatorType::Ipv4, None));
    }
    for _ in 0..10_000 {
        let p = 16 + rng.below(15) as u8;
        let a = mask_v4(rng.next() as u32, p);
        let v = format!("{}/{p}", Ipv4Addr::from(a));
        indicators.push(meta(&mut rng, v, IndicatorType::Ipv4, None));
    }
    // Queries: half hits (the name, a sub-domain), half misses (look-alikes, random).
    let mut q_domains = Vec::new();
    for n in 0..20_000 {
        let d = &domains[rng.below(domains.len() as u64) as usize];
        q_domains.push(match n % 4 {
            0 => d.clone(),
            1 => format!("www.{d}"),
            2 => format!("not{d}"),
            _ => format!("{}.{}", rng.label(5, 14), rng.pick(TLDS)),
        });
    }
    let mut q_urls = Vec::new();
    for n in 0..20_000 {
        let u = &urls[rng.below(urls.len() as u64) as usize];
        q_urls.push(match n % 4 {
            0 => u.clone(),
            1 => format!("{u}/more?x=1"),
            2 => format!("{u}x"),
            _ => format!("http://{}/index.html", rng.label(5, 12)),
        });
    }
    let mut q_ips = Vec::new();
    for n in 0..20_000 {
        q_ips.push(IpAddr::V4(if n % 2 == 0 {
            ips[rng.below(ips.len() as u64) as usize]
        } else {
            Ipv4Addr::from(rng.next() as u32)
        }));
    }
    Data {
        indicators,
        q_domains,
        q_urls,
        q_ips,
    }
}

fn compile(indicators: Vec<Indicator>) -> SnapshotBuilder {
    let mut b = SnapshotBuilder::new();
    for i in indicators {
        b.insert(i);
    }
    b
}

/// CPU seconds used by this process so far (all threads), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let t = Instant::now();
    let data = generate();
    eprintln!(
        "generated {} indicators in {:.2?}",
        data.indicators.len(),
        t.elapsed()
    );

    // One timed publish, with the size on disk and a breakdown of the phases.
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = data.indicators.clone();
    let (t, c0) = (Instant::now(), cpu_secs());
    let b = compile(input);
    let inserted = t.elapsed();
    let dir = b
        .publish(tmp.path(), serde_json::Value::Null)
        .expect("publish");
    let total = t.elapsed();
    let cpu = cpu_secs() - c0;
    let size = dir_size(&dir);
    eprintln!(
        "publish: insert {inserted:.2?} + compile/write/fsync {:.2?} = {total:.2?} wall, \
         {cpu:.2} s CPU; snapshot on disk: {size} bytes ({:.1} MiB)",
        total - inserted,
        size as f64 / (1024.0 * 1024.0)
    );
    let (t, c0) = (Instant::now(), cpu_secs());
    let opened = Snapshot::open_current(tmp.path()).expect("open");
    eprintln!(
        "open (cold process, warm page cache): {:.2?} wall, {:.3} s CPU, {} indicators",
        t.elapsed(),
        cpu_secs() - c0,
        opened.len()
    );
    drop(opened);
    for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        eprintln!("  {:<12} {len:>10}", e.file_name().to_string_lossy());
    }

    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(data.indicators.len() as u64));
    g.bench_function("compile_1.21M", |bch| {
        bch.iter_batched(
            || data.indicators.clone(),
            |v| compile(v).build().expect("build"),
            BatchSize::PerIteration,
        )
    });
    // What `trawl update` hands over after parsing: merged and sorted by (itype, value),
    // taken without per-insert hashing (SnapshotBuilder::from_indicators).
    let merged = merged(&data.indicators);
    g.bench_function("compile_1.21M_merged", |bch| {
        bch.iter_batched(
            || merged.clone(),
            |v| SnapshotBuilder::from_indicators(v).build().expect("build"),
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("open_current", |bch| {
        bch.iter(|| Snapshot::open_current(tmp.path()).expect("open"))
    });
    g.finish();
    fst_fork(c, &merged);

    let snap = Snapshot::open_current(tmp.path()).expect("open");
    let mut g = c.benchmark_group("match");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut hits: Vec<Hit> = Vec::with_capacity(64);
    g.throughput(Throughput::Elements(data.q_domains.len() as u64));
    g.bench_function("match_domain", |bch| {
        bch.iter(|| {
            let mut n = 0;
            for q in &data.q_domains {
                hits.clear();
                snap.match_domain(q, &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(data.q_ips.len() as u64));
    g.bench_function("match_ip", |bch| {
        bch.iter(|| {
            let mut n = 0;
            for q in &data.q_ips {
                hits.clear();
                snap.match_ip(*q, &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(data.q_urls.len() as u64));
    g.bench_function("match_url", |bch| {
        bch.iter(|| {
            let mut n = 0;
            for q in &data.q_urls {
                hits.clear();
                snap.match_url(q, &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("indicator_by_id_x1000", |bch| {
        bch.iter(|| {
            let mut n = 0;
            for id in (0..snap.len() as u32).step_by(snap.len() / 1000 + 1) {
                n += snap.indicator(id).value.len();
            }
            n
        })
    });
    g.finish();
}

/// The vendored fst against the crates.io release, in the same run, on the 1M domain names of
/// the set as `domains.fst` keys them (label-reversed, sorted, rank outputs). Both write the
/// same bytes (`matcher/src/snapshot/fst_fork_tests.rs`); this is what the fork buys.
fn fst_fork(c: &mut Criterion, merged: &[Indicator]) {
    let mut keys: Vec<Vec<u8>> = merged
        .iter()
        .filter(|i| i.itype == IndicatorType::Fqdn)
        .map(|i| {
            i.value
                .rsplit('.')
                .collect::<Vec<_>>()
                .join(".")
                .into_bytes()
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut g = c.benchmark_group("fst_fork");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("vendored", |bch| {
        bch.iter(|| {
            let mut b = fst::MapBuilder::memory();
            for (rank, k) in keys.iter().enumerate() {
                b.insert(k, rank as u64).expect("sorted");
            }
            b.into_inner().expect("in memory").len()
        })
    });
    g.bench_function("upstream", |bch| {
        bch.iter(|| {
            let mut b = fst_upstream::MapBuilder::memory();
            for (rank, k) in keys.iter().enumerate() {
                b.insert(k, rank as u64).expect("sorted");
            }
            b.into_inner().expect("in memory").len()
        })
    });
    g.finish();
}

/// The merged input of `compile_1.21M_merged`: what `trawl update` hands over after parsing,
/// merged and sorted by (itype, value).
fn merged(indicators: &[Indicator]) -> Vec<Indicator> {
    let snap = compile(indicators.to_vec()).build().expect("build");
    let mut all: Vec<Indicator> = snap.iter().collect();
    all.sort_by(|x, y| (x.itype, &x.value).cmp(&(y.itype, &y.value)));
    all
}

/// `TRAWL_SNAPSHOT_QUICK=N`: N timed runs of each compile (wall and CPU seconds of the
/// process, input cloned outside the timing, output dropped outside it), for a machine too
/// loaded for criterion's samples; otherwise the criterion benchmarks.
fn main() {
    if let Some(n) = std::env::var("TRAWL_SNAPSHOT_QUICK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let data = generate();
        let merged = merged(&data.indicators);
        for (name, sorted) in [("compile_1.21M_merged", true), ("compile_1.21M", false)] {
            for _ in 0..n {
                let input = if sorted {
                    merged.clone()
                } else {
                    data.indicators.clone()
                };
                // Let the previous run's freeing thread finish first.
                std::thread::sleep(Duration::from_millis(1500));
                let (t, c0) = (Instant::now(), cpu_secs());
                let snap = if sorted {
                    SnapshotBuilder::from_indicators(input).build()
                } else {
                    compile(input).build()
                }
                .expect("build");
                let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c0);
                println!(
                    "{name:22} wall {wall:5.2} s  cpu {cpu:5.2} s  {} indicators",
                    snap.len()
                );
            }
        }
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
