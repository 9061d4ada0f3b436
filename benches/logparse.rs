//! Log line parsing throughput (MB/s) on generated lines: Squid native (the target
//! format), plus CLF/combined and Zeek TSV dns for comparison.
//!
//! Two groups: `logparse` (wall time, criterion's default) and `logparse_cpu` (this
//! thread's on-CPU time from `/proc/thread-self/schedstat`), because the 2-core build
//! machine is shared and wall time there mostly measures the other tenants.
//!
//! `cargo bench --bench logparse`. Lines are generated with a fixed-seed xorshift, so every
//! run parses the same bytes.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ingest::logs::{parser_for, LineParser, LogFormat};

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
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n * 140);
    for i in 0..n {
        let host = r.pick(HOSTS);
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

fn zeek_dns_lines(n: usize) -> Vec<u8> {
    let mut r = Rng(0x0bad_cafe_dead_beef);
    let mut out = b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool\n".to_vec();
    for i in 0..n {
        out.extend_from_slice(
            format!(
                "1521911720.{:06}\tCqKst53mF3det3eDV9\t10.47.1.{}\t41772\t10.0.0.100\t53\tudp\t36329\t0.000870\t{}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\tx.cdn.example.net,192.0.2.{}\t2230.000000,41830.000000\tF\n",
                i % 1_000_000,
                r.next() % 256,
                r.pick(HOSTS),
                r.next() % 256
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

fn benches<M: Measurement>(c: &mut Criterion<M>) {
    let n = 100_000;
    bench_format(c, "squid", LogFormat::Squid, &squid_lines(n));
    bench_format(c, "combined", LogFormat::Combined, &combined_lines(n));
    bench_format(c, "zeek_dns_tsv", LogFormat::ZeekTsv, &zeek_dns_lines(n));
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
