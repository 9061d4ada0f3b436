//! The retro check the daemon runs at a snapshot load (issue 20: 1M new indicators against
//! 30 day partitions of 2M distinct values each, target < 10 s), through `retro::hunt` as
//! `RetroDaemon::check` calls it (one sighting per day partition).
//!
//! `cargo bench --bench retro_check` (env: `TRAWL_RETRO_DIR`, default
//! `/tmp/trawl-retro-check`; `TRAWL_RETRO_DAYS` 30; `TRAWL_RETRO_PER_DAY` 2000000;
//! `TRAWL_RETRO_INDICATORS` 1000000; `TRAWL_RETRO_EACH=1`: each probe looked up in each
//! segment, the path below `retro::hunt::MERGE_FROM` indicators). The first run writes the index (day segments through
//! the recorder's own store, ~16 B a value on disk in version 3 segments) and the
//! indicators (`indicators.txt`, one value a line, and `trawl.toml`), kept for the next runs
//! and for the command-line path: `trawl hunt --config DIR/trawl.toml --indicators
//! DIR/indicators.txt --format json`.
//!
//! Each day holds 60% URLs (distinct), 20% domains and 20% IPv4 addresses; the indicators
//! (distinct) are 40% domains, 30% URLs, 25% addresses and 5% /24 CIDRs, none of which occurs in the
//! index except the planted ones: 1,000 domains seen (as a subdomain) on 3 days each, 1,000
//! URLs on 2 days, 1,000 addresses on 1 day and 100 CIDRs holding 5 seen addresses on 1
//! day: 6,500 sightings expected.
//!
//! A benchmark program over data it generates itself, not an input path: a failure to write
//! or read its own files (disk full, a directory left half-written by an interrupted run: delete
//! it) ends the run with the step named by its `expect`, as there is nothing to carry on with.

use matcher::{Indicator, IndicatorType, SnapshotBuilder};
use sensor::correlate::{Correlator, HitFilter};
use sensor::retro::hunt::{hunt, HuntScope};
use sensor::retro::key::{field_bit, key_of};
use sensor::retro::segment::{Check, Stats};
use sensor::retro::store::{Partitions, RetroStore};
use sensor::retro::DAY;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A small seeded generator (xorshift), so every run writes the same index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sightings the planted values make over `days` day partitions (one per planted value
/// and day it falls on, as [`day_values`] plants them): 6,500 over 30 days.
fn expected(days: usize) -> usize {
    let mut n = 0;
    for d in 1..=days {
        for k in 0..1000 {
            let on = |shift: usize| (k + shift) % 30 == d % 30;
            n += usize::from(on(0) || on(7) || on(15));
            n += usize::from(on(0) || on(11));
            n += usize::from(on(0));
        }
        n += (0..100).filter(|k| k % 30 == d % 30).count() * 5;
    }
    n
}

fn planted_domain(k: usize) -> String {
    format!("plant{k}.hit.example")
}
fn planted_url(k: usize) -> String {
    format!("http://planthost{k}.example/dir/{k}")
}
fn planted_ip(k: usize) -> String {
    format!("100.64.{}.{}", k / 250, k % 250 + 1)
}
fn planted_cidr(k: usize) -> String {
    format!("100.{}.{}.0/24", 80 + k / 250, k % 250)
}

/// One day's values: (key, field) — the planted ones that fall on `day` included.
fn day_values(day: usize, per_day: usize, rng: &mut Rng) -> Vec<(Vec<u8>, &'static str)> {
    use ingest::MatchValue;
    let mut out = Vec::with_capacity(per_day + 3000);
    let key = |v: MatchValue<'_>| key_of(v).expect("a generated value has a key");
    let (urls, domains) = (per_day * 6 / 10, per_day * 2 / 10);
    for i in 0..urls {
        let u = format!(
            "http://h{}.site{}.example/p/{day}/{i}/{:08x}",
            rng.next() % 200_000,
            i % 997,
            rng.next() as u32
        );
        out.push((key(MatchValue::Url(&u)), "url.full"));
    }
    for i in 0..domains {
        let d = format!("n{}.d{day}.zone{}.example", i, rng.next() % 5000);
        out.push((key(MatchValue::Domain(&d)), "dns.question.name"));
    }
    for _ in 0..per_day - urls - domains {
        // 10.0.0.0/8 and 172.16.0.0/12: never an indicator's.
        let a = rng.next() as u32;
        let ip = if a % 2 == 0 {
            std::net::Ipv4Addr::from(0x0a00_0000 | (a >> 8))
        } else {
            std::net::Ipv4Addr::from(0xac10_0000 | (a >> 12))
        };
        out.push((key(MatchValue::Address(ip.into(), None)), "destination.ip"));
    }
    for k in 0..1000 {
        if k % 30 == day % 30 || (k + 7) % 30 == day % 30 || (k + 15) % 30 == day % 30 {
            let d = format!("www.{}", planted_domain(k));
            out.push((key(MatchValue::Domain(&d)), "dns.question.name"));
        }
        if k % 30 == day % 30 || (k + 11) % 30 == day % 30 {
            out.push((key(MatchValue::Url(&planted_url(k))), "url.full"));
        }
        if k % 30 == day % 30 {
            let ip: std::net::IpAddr = planted_ip(k).parse().expect("planted address");
            out.push((key(MatchValue::Address(ip, None)), "destination.ip"));
        }
    }
    for k in 0..100 {
        if k % 30 == day % 30 {
            for host in [1, 50, 99, 200, 254] {
                let ip: std::net::IpAddr = format!("100.{}.{}.{host}", 80 + k / 250, k % 250)
                    .parse()
                    .expect("planted address");
                out.push((key(MatchValue::Address(ip, None)), "destination.ip"));
            }
        }
    }
    out
}

fn write_index(data: &Path, days: usize, per_day: usize, today: i64) {
    let dir = RetroStore::dir_of(data);
    std::fs::create_dir_all(&dir).expect("index directory");
    let mut store = RetroStore::open(&dir).expect("open the index");
    let mut rng = Rng(0x2026_1207);
    for d in 1..=days {
        let t = Instant::now();
        let start = today - d as i64 * DAY;
        let mut values = day_values(d, per_day, &mut rng);
        values.sort_unstable();
        values.dedup_by(|a, b| a.0 == b.0);
        let entries: Vec<(Vec<u8>, Stats)> = values
            .into_iter()
            .enumerate()
            .map(|(i, (k, field))| {
                let at = start + (i as i64 * 7919) % DAY;
                (k, Stats::one(at, field_bit(field), None, 0))
            })
            .collect();
        let n = entries.len();
        let mut p = Partitions::new();
        p.insert(start, entries);
        store.write_days(p, 0).expect("write a day");
        eprintln!(
            "day {d}/{days}: {n} values written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
}

fn indicators(n: usize) -> Vec<(String, IndicatorType)> {
    let mut out = Vec::with_capacity(n + 3100);
    let mut rng = Rng(0x5eed);
    for i in 0..n {
        let r = i % 20;
        let x = rng.next();
        out.push(match r {
            0..=7 => (
                format!("c2-{i}-{:x}.absent{}.example", x % 65536, x % 97),
                IndicatorType::Fqdn,
            ),
            8..=13 => (
                format!("http://absent{}.example/{i}/{:x}", x % 50_000, x >> 40),
                IndicatorType::Url,
            ),
            // 11.0.0.0/8 and 12.0.0.0/8: never in the index; each indicator distinct.
            14..=18 => (
                format!("11.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                IndicatorType::Ipv4,
            ),
            _ => (
                format!("12.{}.{}.0/24", ((i / 20) >> 8) & 255, (i / 20) & 255),
                IndicatorType::Ipv4,
            ),
        });
    }
    for k in 0..1000 {
        out.push((planted_domain(k), IndicatorType::Fqdn));
        out.push((planted_url(k), IndicatorType::Url));
        out.push((planted_ip(k), IndicatorType::Ipv4));
    }
    for k in 0..100 {
        out.push((planted_cidr(k), IndicatorType::Ipv4));
    }
    out
}

/// This process's CPU seconds (user + system), from `/proc/self/stat` (0 where unreadable):
/// the machine is shared, so wall time says as much about the others as about this.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("TRAWL_RETRO_DIR").unwrap_or_else(|_| "/tmp/trawl-retro-check".into()),
    );
    let days = env("TRAWL_RETRO_DAYS", 30);
    let per_day = env("TRAWL_RETRO_PER_DAY", 2_000_000);
    let n = env("TRAWL_RETRO_INDICATORS", 1_000_000);
    let now = sensor::retro::record::now_secs();
    let today = now.div_euclid(DAY) * DAY;
    let data = dir.join("data");
    let stamp = dir.join("generated");
    let want = format!("{days} {per_day} {today}");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let _ = std::fs::remove_dir_all(&dir);
        write_index(&data, days, per_day, today);
        std::fs::write(&stamp, &want).expect("stamp");
    }
    let inds = indicators(n);
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(dir.join("indicators.txt")).expect("indicators.txt"),
    );
    for (v, _) in &inds {
        writeln!(f, "{v}").expect("indicators.txt");
    }
    f.flush().expect("indicators.txt");
    std::fs::write(
        dir.join("trawl.toml"),
        format!(
            "[sensor]\ndata = \"data\"\n\n[retro]\nretention = \"{}d\"\n",
            days + 1
        ),
    )
    .expect("trawl.toml");

    let t = Instant::now();
    let snapshot = SnapshotBuilder::from_indicators(
        inds.iter()
            .map(|(v, it)| Indicator::new(v.clone(), *it, "bench"))
            .collect(),
    )
    .build()
    .expect("compile the indicators");
    eprintln!(
        "{} indicators compiled in {:.1} s",
        snapshot.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let store = RetroStore::open_read_only(&RetroStore::dir_of(&data), Check::Full)
        .expect("open the index");
    let values: usize = store.segments().iter().map(|s| s.len()).sum();
    eprintln!(
        "index opened (CRC-checked) in {:.1} s: {} segments, {values} values, {} bytes",
        t.elapsed().as_secs_f64(),
        store.segments().len(),
        store.total_bytes()
    );
    let (t, cpu) = (Instant::now(), cpu_secs());
    let correlator = Correlator::new(&snapshot, HitFilter::default());
    let ids = (0..snapshot.len()).filter_map(|i| u32::try_from(i).ok());
    let scope = HuntScope {
        since: now - (days as i64 + 1) * DAY,
        per_partition: true,
        clients: 0,
    };
    // TRAWL_RETRO_EACH=1: the per-lookup path (what the check did before: each probe
    // looked up in each segment), through `hunt` in batches under its merge threshold.
    let found = if std::env::var("TRAWL_RETRO_EACH").is_ok_and(|v| v == "1") {
        let ids: Vec<u32> = ids.collect();
        let mut found = Vec::new();
        for batch in ids.chunks(sensor::retro::hunt::MERGE_FROM - 1) {
            found.extend(hunt(
                &store,
                &snapshot,
                &correlator,
                batch.iter().copied(),
                scope,
            ));
        }
        found
    } else {
        hunt(&store, &snapshot, &correlator, ids, scope)
    };
    let took = t.elapsed().as_secs_f64();
    let want = expected(days);
    let cpu = cpu_secs() - cpu;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "retro check: {} indicators against {} day partitions ({values} values): {} sightings \
         (expected {want}) in {took:.2} s wall, {cpu:.2} CPU-s (load {})",
        snapshot.len(),
        store.segments().len(),
        found.len(),
        load.split_whitespace().next().unwrap_or("?")
    );
    if found.len() != want {
        eprintln!("MISMATCH: {} sightings, expected {want}", found.len());
        std::process::exit(1);
    }
}
