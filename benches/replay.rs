//! Packet replay throughput: a seeded generated capture (DNS 3%, HTTP 2%, TLS ClientHello 2%,
//! QUIC 10%, bulk UDP 15% and TCP 68% of packets; 10% of flows IPv6) decoded by one `PacketDecoder` and by `replay_parallel` with 2
//! workers. Packet count: TRAWL_BENCH_PACKETS (default 200000).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingest::packet::{
    read_capture, replay_parallel, DecoderLimits, LinkType, PacketDecoder, PcapWriter,
};
use ingest::Origin;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

#[path = "support/packets.rs"]
mod packets;
use packets::*;

/// Write the seeded capture; returns the packet count.
pub fn generate(path: &Path, packets: usize, seed: u64) -> usize {
    let f = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = PcapWriter::new(f, LinkType::ETHERNET).unwrap();
    let mut r = Rng(seed | 1);
    let bulk = vec![0x42u8; 1400];
    let mut seqs = vec![0u32; 4096];
    let mut http_seq = vec![1u32; 4096];
    for i in 0..packets {
        let x = r.next();
        // 1024 long-lived flows; a flow's kind and address family are fixed by its id.
        let flow = (x % 1024) as u32;
        let v6 = flow % 10 == 0;
        let (a, b) = (0x0a00_0000 | flow, 0xc000_0200 | (flow % 97));
        let sp = 1024 + (flow as u16 % 60000);
        // Mix by packets: DNS 3%, HTTP requests 2%, TLS ClientHellos 2% (each a new
        // connection), QUIC 10%, bulk UDP 15%, bulk TCP 68%.
        let kind = (x >> 16) % 100;
        let (proto, l4) = match kind {
            0..=2 => (
                17,
                udp(
                    sp,
                    53,
                    &dns(
                        &format!("host{}.example{}.com", x % 1000, flow % 50),
                        i as u16,
                    ),
                ),
            ),
            3..=4 => {
                let req = format!(
                    "GET /p/{} HTTP/1.1\r\nHost: site{}.example\r\nUser-Agent: bench\r\n\r\n",
                    x % 999,
                    flow % 300
                );
                let s = http_seq[flow as usize];
                http_seq[flow as usize] = s.wrapping_add(req.len() as u32);
                (6, tcp(sp, 80, s, req.as_bytes()))
            }
            5..=6 => (
                6,
                tcp(
                    1024 + (i % 60000) as u16,
                    443,
                    1,
                    &client_hello(&format!("sni{}.example.net", flow % 500)),
                ),
            ),
            7..=16 => {
                // QUIC short-header data packets (and a long header now and then).
                let mut q = vec![0x40u8; 1200];
                if x % 50 == 0 {
                    q[0] = 0xc0;
                    q[1..5].copy_from_slice(&[0, 0, 0, 1]);
                    q[5] = 8;
                }
                (17, udp(sp, 443, &q))
            }
            17..=31 => (17, udp(sp, 5000, &bulk[..(x % 1200) as usize + 20])),
            _ => {
                let s = seqs[flow as usize];
                seqs[flow as usize] = s.wrapping_add(1400);
                (6, tcp(sp, 8443, s.wrapping_add(1_000_000), &bulk))
            }
        };
        let mut p = Vec::new();
        eth(&mut p, v6);
        let (sa, da) = if x & (1 << 40) != 0 { (a, b) } else { (b, a) };
        ip(&mut p, v6, sa, da, proto, l4.len());
        p.extend_from_slice(&l4);
        w.write(1_700_000_000_000_000_000 + i as i64 * 1000, &p)
            .unwrap();
    }
    packets
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("TRAWL_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bench.pcap");
    generate(&path, n, 42);
    if let Ok(keep) = std::env::var("TRAWL_BENCH_KEEP") {
        let _ = std::fs::copy(&path, keep);
    }
    one_shot_cpu_figures(&path, n);
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("decode_1_worker", |b| {
        b.iter(|| {
            let mut dec = PacketDecoder::new(DecoderLimits::default());
            let mut out = Vec::new();
            read_capture(&path, |p| {
                dec.decode(p.link, p.ts_ns, p.data, Origin::None, &mut out);
                if out.len() > 4096 {
                    out.clear();
                }
            })
            .unwrap();
        })
    });
    g.bench_function("replay_parallel_2_workers", |b| {
        b.iter(|| {
            replay_parallel(
                std::slice::from_ref(&path),
                2,
                DecoderLimits::default(),
                &|_, v| {
                    drop(v);
                },
            )
            .unwrap()
        })
    });
    g.finish();
}

/// CPU seconds (user + system) of this thread or process, from /proc (clock ticks).
fn cpu_secs(which: &str) -> f64 {
    let s = std::fs::read_to_string(which).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The machine is shared, so wall time undercounts: also print packets per CPU-second.
fn one_shot_cpu_figures(path: &Path, n: usize) {
    let rounds = 5;
    let (c0, t0) = (
        cpu_secs("/proc/thread-self/stat"),
        std::time::Instant::now(),
    );
    let mut obs = 0;
    for _ in 0..rounds {
        let mut dec = PacketDecoder::new(DecoderLimits::default());
        let mut out = Vec::new();
        read_capture(path, |p| {
            dec.decode(p.link, p.ts_ns, p.data, Origin::None, &mut out);
            if out.len() > 4096 {
                obs += out.len();
                out.clear();
            }
        })
        .unwrap();
        obs += out.len();
    }
    let (cpu, wall) = (
        cpu_secs("/proc/thread-self/stat") - c0,
        t0.elapsed().as_secs_f64(),
    );
    let pk = (n * rounds) as f64;
    eprintln!(
        "decode 1 worker: {} packets, {} observations, wall {wall:.2}s ({:.2} Mpps), cpu {cpu:.2}s ({:.2} Mpps per CPU-second)",
        n * rounds, obs, pk / wall / 1e6, pk / cpu.max(0.01) / 1e6
    );
    let (c0, t0) = (cpu_secs("/proc/self/stat"), std::time::Instant::now());
    for _ in 0..rounds {
        replay_parallel(
            &[path.to_path_buf()],
            2,
            DecoderLimits::default(),
            &|_, v| drop(v),
        )
        .unwrap();
    }
    let (cpu, wall) = (cpu_secs("/proc/self/stat") - c0, t0.elapsed().as_secs_f64());
    eprintln!(
        "replay_parallel 2 workers: wall {wall:.2}s ({:.2} Mpps), process cpu {cpu:.2}s ({:.2} Mpps per CPU-second, {:.2} Mpps if given 2 full cores)",
        pk / wall / 1e6, pk / cpu.max(0.01) / 1e6, 2.0 * pk / cpu.max(0.01) / 1e6
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
