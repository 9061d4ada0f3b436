//! Log line parsing throughput (MB/s) on generated lines: Squid native (the target
//! format), plus CLF/combined and Zeek TSV dns for comparison.
//!
//! Two groups: `logparse` (wall time, criterion's default) and `logparse_cpu` (this
//! thread's on-CPU time from `/proc/thread-self/schedstat`), because the 2-core build
//! machine is shared and wall time there mostly measures the other tenants.
//!
//! `squid_screened` is what `trawl scan` does per Squid line: the pre-screen against a real
//! snapshot's prefilter (250k domains, 20k URLs, 20k IPv4, the private ranges allowlisted),
//! and the full parse only for the lines it cannot clear; `squid_parsed_then_prefiltered` is
//! the same answer without the screen (full parse, then the prefilter per value), and
//! `squid_varied` the full parse of those lines alone (hosts spread over a million names).
//! `combined_screened` and `combined_parsed_then_prefiltered` are the same pair for
//! Apache/nginx combined lines (origin-form paths and a user agent, both asked of the
//! pattern set).
//!
//! `cargo bench --bench logparse`. Lines are generated with a fixed-seed xorshift, so every
//! run parses the same bytes.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ingest::logs::{parser_for, AlertProbe, LineParser, LogFormat, Screened};
use matcher::{Indicator, IndicatorType, Snapshot, SnapshotBuilder};
use std::net::IpAddr;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const HOSTS: &[&str] = &[
    "www.example.com",
    "cdn.jsdelivr.net",
    "login.microsoftonline.com",
    "api.github.com",
    "static.xx.fbcdn.net",
    "ocsp.digicert.com",
    "update.googleapis.com",
    "s3.amazonaws.com",
    "news.ycombinator.com",
    "a.b.c.tracking-pixel.io",
];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/wp-content/uploads/2024/05/image.jpg",
    "/api/v3/repos/rust-lang/rust/issues?state=open&page=2",
    "/static/js/app.3f9a1c.js",
    "/gate.php?id=42",
    "/favicon.ico",
    "/search?q=rust+fst+automata&hl=en",
];
const ACTIONS: &[&str] = &[
    "TCP_MISS/200",
    "TCP_HIT/200",
    "TCP_REFRESH_HIT/304",
    "TCP_DENIED/403",
];

fn squid_lines(n: usize) -> Vec<u8> {
    squid_lines_with(n, false)
}

/// `varied`: every line's host gets a random label in front (as real proxy logs spread
/// over many thousands of names), so no single name dominates the pre-screen's answers.
fn squid_lines_with(n: usize, varied: bool) -> Vec<u8> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n * 140);
    for i in 0..n {
        let host = if varied {
            format!("n{:x}.{}", r.next() % 1_000_000, r.pick(HOSTS))
        } else {
            r.pick(HOSTS).to_string()
        };
        let method = if r.next() % 10 == 0 { "CONNECT" } else { "GET" };
        let url = if method == "CONNECT" {
            format!("{host}:443")
        } else {
            format!("http://{host}{}", r.pick(PATHS))
        };
        out.extend_from_slice(
            format!(
                "{}.{:03} {:6} 10.{}.{}.{} {} {} {method} {url} - DIRECT/192.0.2.{} text/html\n",
                1_700_000_000 + i,
                r.next() % 1000,
                r.next() % 5000,
                r.next() % 256,
                r.next() % 256,
                r.next() % 256,
                r.pick(ACTIONS),
                r.next() % 100_000,
                r.next() % 256,
            )
            .as_bytes(),
        );
    }
    out
}

fn combined_lines(n: usize) -> Vec<u8> {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut out = Vec::with_capacity(n * 200);
    for _ in 0..n {
        out.extend_from_slice(
            format!(
                "192.0.2.{} - - [08/Jun/2020:08:04:43 +0000] \"GET {} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\"\n",
                r.next() % 256,
                r.pick(PATHS),
                r.next() % 100_000
            )
            .as_bytes(),
        );
    }
    out
}

/// A Zeek TSV log: the header for `path` with `fields` and `types` (space-separated), then
/// `n` rows from `row(i, rng)`.
fn zeek_log(
    path: &str,
    fields: &str,
    types: &str,
    seed: u64,
    n: usize,
    mut row: impl FnMut(usize, &mut Rng) -> String,
) -> Vec<u8> {
    let tabs = |s: &str| s.replace(' ', "\t");
    let mut out = format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#fields\t{}\n#types\t{}\n",
        tabs(fields),
        tabs(types)
    )
    .into_bytes();
    let mut r = Rng(seed);
    for i in 0..n {
        out.extend_from_slice(row(i, &mut r).as_bytes());
    }
    out
}

fn zeek_dns_lines(n: usize) -> Vec<u8> {
    zeek_log(
        "dns",
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected",
        "time string addr port addr port enum count interval string count string count string count string bool bool bool bool count vector[string] vector[interval] bool",
        0x0bad_cafe_dead_beef,
        n,
        |i, r| {
            format!(
                "1521911720.{:06}\tCqKst53mF3det3eDV9\t10.47.1.{}\t41772\t10.0.0.100\t53\tudp\t36329\t0.000870\t{}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\tx.cdn.example.net,192.0.2.{}\t2230.000000,41830.000000\tF\n",
                i % 1_000_000,
                r.next() % 256,
                r.pick(HOSTS),
                r.next() % 256
            )
        },
    )
}

/// Zeek http.log lines: `host` and an origin-form `uri`, a browser user agent.
fn zeek_http_lines(n: usize) -> Vec<u8> {
    zeek_log(
        "http",
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri referrer version user_agent status_code",
        "time string addr port addr port count string string string string string string count",
        0x005e_ed0f_7a11_c0de,
        n,
        |i, r| {
            format!(
                "1521911720.{:06}\tCqKst53mF3det3eDV9\t10.47.1.{}\t41772\t192.0.2.{}\t80\t1\tGET\t{}\t{}\t-\t1.1\tMozilla/5.0 (Windows NT 10.0; Win64; x64)\t200\n",
                i % 1_000_000,
                r.next() % 256,
                r.next() % 256,
                r.pick(HOSTS),
                r.pick(PATHS),
            )
        },
    )
}

/// Suricata EVE dns v2 answer events.
fn eve_dns_lines(n: usize) -> Vec<u8> {
    let mut r = Rng(0x0e0e_dead_beef_0001);
    let mut out = Vec::new();
    for i in 0..n {
        let host = r.pick(HOSTS);
        out.extend_from_slice(
            format!(
                "{{\"timestamp\":\"2024-05-01T10:00:00.{:06}+0000\",\"flow_id\":{i},\"event_type\":\"dns\",\"src_ip\":\"10.47.1.{}\",\"src_port\":41772,\"dest_ip\":\"10.0.0.100\",\"dest_port\":53,\"proto\":\"UDP\",\"dns\":{{\"version\":2,\"type\":\"answer\",\"id\":{},\"rrname\":\"{host}\",\"rrtype\":\"A\",\"rcode\":\"NOERROR\",\"answers\":[{{\"rrname\":\"{host}\",\"rrtype\":\"A\",\"ttl\":300,\"rdata\":\"192.0.2.{}\"}}]}}}}\n",
                i % 1_000_000,
                r.next() % 256,
                i % 65536,
                r.next() % 256,
            )
            .as_bytes(),
        );
    }
    out
}

/// On-CPU nanoseconds of the calling thread (Linux schedstat), wall clock elsewhere.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical >= 1e9 {
            (1e9, "s")
        } else if typical >= 1e6 {
            (1e6, "ms")
        } else if typical >= 1e3 {
            (1e3, "µs")
        } else {
            (1.0, "ns")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            Throughput::Elements(n) => *n as f64,
        };
        values
            .iter_mut()
            .for_each(|v| *v = n / (*v / 1e9) / (1024.0 * 1024.0));
        "MiB/s (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn bench_format<M: Measurement>(c: &mut Criterion<M>, name: &str, format: LogFormat, data: &[u8]) {
    let p: Box<dyn LineParser> = parser_for(format, data, None).expect("parser");
    let mut g = c.benchmark_group(GROUP.with(|g| *g.borrow()));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in data.split(|&b| b == b'\n') {
                if let Ok(Some(o)) = p.parse(line) {
                    ok += usize::from(o.url_domain.is_some() || o.dns_question_name.is_some());
                }
            }
            black_box(ok)
        })
    });
    g.finish();
}

/// The snapshot's prefilter as the scan's correlator asks it.
struct Probe<'a>(&'a Snapshot);

impl AlertProbe for Probe<'_> {
    fn ip(&self, ip: IpAddr) -> bool {
        self.0.may_alert_ip(ip)
    }
    fn domain(&self, host: &str) -> bool {
        self.0.may_alert_domain(host)
    }
    fn url(&self, url: &str) -> bool {
        self.0.may_alert_url(url)
    }
    fn url_and_domain(&self, url: &[u8], host: &str) -> bool {
        self.0.may_alert_url_and_domain(url, host)
    }
    fn plain_http_url(&self, url: &[u8], host: &[u8]) -> bool {
        self.0.may_alert_plain_http_url(url, host)
    }
    fn prefetch_ip(&self, ip: IpAddr) {
        self.0.prefetch_ip(ip);
    }
    fn pattern(&self, text: &[u8]) -> bool {
        self.0.may_alert_pattern(text)
    }
}

/// 250k random domains, 20k URLs on them, 20k IPv4 addresses, and 10/8 allowlisted (the
/// generated clients), none of which the generated lines hit.
fn screen_snapshot() -> Snapshot {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut items = Vec::new();
    let mut name = || {
        let v = r.next();
        format!(
            "{:x}.{}",
            v >> 20,
            ["com", "net", "org", "io"][(v % 4) as usize]
        )
    };
    for _ in 0..250_000 {
        items.push(Indicator::new(name(), IndicatorType::Fqdn, "bench"));
    }
    for _ in 0..20_000 {
        items.push(Indicator::new(
            format!("http://{}/x/", name()),
            IndicatorType::Url,
            "bench",
        ));
    }
    let mut r = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let a = std::net::Ipv4Addr::from((r.next() as u32) | 0x0100_0000);
        items.push(Indicator::new(a.to_string(), IndicatorType::Ipv4, "bench"));
    }
    let mut private = Indicator::new("10.0.0.0/8", IndicatorType::Ipv4, "bench");
    private.allowlist = true;
    items.push(private);
    let mut b = SnapshotBuilder::new();
    for i in items {
        b.insert(i);
    }
    b.build().expect("snapshot")
}

fn bench_screened<M: Measurement>(
    c: &mut Criterion<M>,
    snap: &Snapshot,
    name: &str,
    format: LogFormat,
    data: &[u8],
) {
    let probe = Probe(snap);
    let p: Box<dyn LineParser> = parser_for(format, data, None).expect("parser");
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let (total, clean) = lines.fold((0, 0), |(t, c), l| {
        (
            t + 1,
            c + usize::from(p.screen(l, &probe) == Screened::Clean),
        )
    });
    eprintln!("{name}_screened: {clean} of {total} lines cleared by the pre-screen");
    let mut g = c.benchmark_group(GROUP.with(|g| *g.borrow()));
    g.throughput(Throughput::Bytes(data.len() as u64));
    // Without the pre-screen: parse every line, then ask the prefilter about each value the
    // correlator would look up (what the scan does for formats that have no screen).
    g.bench_function(format!("{name}_parsed_then_prefiltered"), |b| {
        b.iter(|| {
            let mut maybe = 0usize;
            for line in data.split(|&b| b == b'\n') {
                if let Ok(Some(o)) = p.parse(line) {
                    let ips = [o.source_ip, o.destination_ip].into_iter().flatten();
                    let path = o
                        .url_full
                        .is_none()
                        .then_some(o.url_path.as_deref())
                        .flatten();
                    let hit = ips.into_iter().any(|ip| probe.ip(ip))
                        || o.url_full.as_deref().is_some_and(|u| probe.url(u))
                        || path.is_some_and(|p| probe.pattern(p.as_bytes()))
                        || o.url_domain.as_deref().is_some_and(|d| probe.domain(d))
                        || o.user_agent
                            .as_deref()
                            .is_some_and(|ua| probe.pattern(ua.as_bytes()))
                        || o.dns_question_name
                            .as_deref()
                            .is_some_and(|q| probe.domain(q))
                        || o.dns_answers.iter().any(|a| match a.data.parse() {
                            Ok(ip) => probe.ip(ip),
                            Err(_) => !a.data.is_empty() && probe.domain(&a.data),
                        });
                    maybe += usize::from(hit);
                }
            }
            black_box(maybe)
        })
    });
    g.bench_function(format!("{name}_screened"), |b| {
        b.iter(|| {
            let mut full = 0usize;
            for line in data.split(|&b| b == b'\n') {
                if p.screen(line, &probe) == Screened::Unsure {
                    full += usize::from(matches!(p.parse(line), Ok(Some(_))));
                }
            }
            black_box(full)
        })
    });
    g.finish();
}

fn benches<M: Measurement>(c: &mut Criterion<M>) {
    let n = 100_000;
    bench_format(c, "squid", LogFormat::Squid, &squid_lines(n));
    // The same lines over many names: full parse, then what `trawl scan` does instead.
    let varied = squid_lines_with(n, true);
    bench_format(c, "squid_varied", LogFormat::Squid, &varied);
    let snap = screen_snapshot();
    bench_screened(c, &snap, "squid", LogFormat::Squid, &varied);
    let combined = combined_lines(n);
    bench_format(c, "combined", LogFormat::Combined, &combined);
    bench_screened(c, &snap, "combined", LogFormat::Combined, &combined);
    let zeek_dns = zeek_dns_lines(n);
    bench_format(c, "zeek_dns_tsv", LogFormat::ZeekTsv, &zeek_dns);
    bench_screened(c, &snap, "zeek_dns_tsv", LogFormat::ZeekTsv, &zeek_dns);
    let zeek_http = zeek_http_lines(n);
    bench_format(c, "zeek_http_tsv", LogFormat::ZeekTsv, &zeek_http);
    bench_screened(c, &snap, "zeek_http_tsv", LogFormat::ZeekTsv, &zeek_http);
    bench_format(c, "eve_dns", LogFormat::SuricataEve, &eve_dns_lines(n));
}

thread_local! {
    static GROUP: std::cell::RefCell<&'static str> = const { std::cell::RefCell::new("logparse") };
}

fn wall(c: &mut Criterion) {
    GROUP.with(|g| *g.borrow_mut() = "logparse");
    benches(c);
}

fn cpu(c: &mut Criterion<CpuTime>) {
    GROUP.with(|g| *g.borrow_mut() = "logparse_cpu");
    benches(c);
}

criterion_group! {
    name = logparse;
    config = Criterion::default().sample_size(20);
    targets = wall
}
criterion_group! {
    name = logparse_cpu;
    config = Criterion::default().with_measurement(CpuTime).sample_size(20);
    targets = cpu
}
criterion_main!(logparse, logparse_cpu);
