//! Seeded capture generator for `benches/replay_perf.sh` (README "Performance → Packets").
//!
//! The packet mix of `benches/replay.rs` (DNS 3%, HTTP 2%, TLS ClientHello 2% each on a new
//! connection, QUIC 10%, bulk UDP 15%, bulk TCP 68%; 10% of flows IPv6), with flows that churn
//! (a fresh set of 4096 long-lived flows every 200k packets, so flow state keeps growing unless
//! it is capped) and about 0.1% of packets planted as hits from the indicator files written by
//! `benches/gen_perf_data.py`: a DNS query, an HTTP Host or a TLS SNI naming a listed domain,
//! or a new flow to a listed IP.
//!
//! Usage: `cargo run --release -p trawl-ingest --example gen_capture -- OUT.pcap PACKETS [INDICATOR_DIR]`
//! Writes OUT.pcap and OUT.pcap.planted (one line per planted packet: number, kind, value).
//! `TRAWL_GEN_ACKS=1` makes the bulk TCP packets of one direction pure ACKs.

use ingest::packet::{LinkType, PcapWriter};
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

#[path = "../../benches/support/packets.rs"]
mod packets;
use packets::*;

fn http(host: &str, path: u64) -> Vec<u8> {
    format!("GET /p/{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n").into_bytes()
}

fn lines(dir: Option<&str>, name: &str) -> Vec<String> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    std::fs::read_to_string(format!("{dir}/{name}"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(packets)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: gen_capture OUT.pcap PACKETS [INDICATOR_DIR]");
        std::process::exit(2);
    };
    let packets: u64 = packets;
    let dir = args.get(3).map(String::as_str);
    let domains = lines(dir, "domains.txt");
    let bad_ips: Vec<u32> = lines(dir, "ips.txt")
        .iter()
        .filter_map(|l| l.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?),
        LinkType::ETHERNET,
    )?;
    let mut planted = BufWriter::new(std::fs::File::create(format!("{out}.planted"))?);
    let mut r = Rng(42);
    let bulk = vec![0x42u8; 1400];
    // TRAWL_GEN_ACKS=1: bulk TCP packets sent towards the client carry no payload (pure
    // ACKs, as in a real transfer, where about every second segment is answered) instead of
    // 1400 bytes each way.
    let acks = std::env::var("TRAWL_GEN_ACKS").is_ok_and(|v| v == "1");
    let mut seqs = vec![0u32; 4096];
    let mut http_seq = vec![1u32; 4096];
    let mut p = Vec::with_capacity(1600);
    let mut n_planted = 0u64;
    // Planted flows to a listed IP: (client, bad ip, port) continued for a few packets.
    let mut bad_flow: Option<(u32, u32, u16, u32)> = None;
    for i in 0..packets {
        let x = r.next();
        // 4096 long-lived flows per epoch of 200k packets; kind and family fixed by the id.
        let slot = (x % 4096) as u32;
        let epoch = (i / 200_000) as u32;
        let flow = slot + 4096 * epoch;
        let v6 = slot.is_multiple_of(10);
        let (a, b) = (0x0a00_0000 | flow, 0xc000_0200 | (slot % 97));
        let sp = 1024 + ((flow * 7) % 60000) as u16;
        let plant = !domains.is_empty() && (x >> 48).is_multiple_of(1000);
        let ts = 1_700_000_000_000_000_000 + i as i64 * 1000;
        if let Some((c, bad, port, left)) = bad_flow {
            if x.is_multiple_of(4) {
                // A few more packets of the planted flow; only its first one counts as planted.
                let l4 = tcp(port, 443, left, &bulk[..200]);
                eth(&mut p, false);
                ip(&mut p, false, c, bad, 6, l4.len());
                p.extend_from_slice(&l4);
                w.write(ts, &p)?;
                bad_flow = (left > 1).then_some((c, bad, port, left - 1));
                continue;
            }
        }
        let kind = (x >> 16) % 100;
        let (proto, l4) = if plant {
            n_planted += 1;
            let d = &domains[(x >> 20) as usize % domains.len()];
            // A connection of its own, so no stream state of the long-lived flow interferes.
            let sp = 1024 + (i % 60000) as u16;
            match (x >> 8) % 4 {
                0 => {
                    writeln!(planted, "{} dns {d}", i + 1)?;
                    (17, udp(sp, 53, &dns(d, i as u16)))
                }
                1 => {
                    writeln!(planted, "{} http {d}", i + 1)?;
                    (6, tcp(sp, 80, 1, &http(d, x % 999)))
                }
                2 => {
                    writeln!(planted, "{} tls {d}", i + 1)?;
                    (6, tcp(sp, 443, 1, &client_hello(d)))
                }
                _ if !bad_ips.is_empty() => {
                    let bad = bad_ips[(x >> 20) as usize % bad_ips.len()];
                    let c = 0x0a80_0000 | (i as u32 & 0x7f_ffff);
                    let port = 1024 + (i % 60000) as u16;
                    writeln!(planted, "{} ip {}", i + 1, Ipv4Addr::from(bad))?;
                    bad_flow = Some((c, bad, port, 3));
                    let l4 = tcp(port, 443, 0, &bulk[..200]);
                    eth(&mut p, false);
                    ip(&mut p, false, c, bad, 6, l4.len());
                    p.extend_from_slice(&l4);
                    w.write(ts, &p)?;
                    continue;
                }
                _ => {
                    writeln!(planted, "{} dns {d}", i + 1)?;
                    (17, udp(sp, 53, &dns(d, i as u16)))
                }
            }
        } else {
            match kind {
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
                    let req = http(&format!("site{}.example", flow % 300), x % 999);
                    let s = http_seq[slot as usize];
                    http_seq[slot as usize] = s.wrapping_add(req.len() as u32);
                    (6, tcp(sp, 80, s, &req))
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
                    if x.is_multiple_of(50) {
                        q[0] = 0xc0;
                        q[1..5].copy_from_slice(&[0, 0, 0, 1]);
                        q[5] = 8;
                    }
                    (17, udp(sp, 443, &q))
                }
                17..=31 => (17, udp(sp, 5000, &bulk[..(x % 1200) as usize + 20])),
                _ if acks && x & (1 << 40) == 0 => {
                    // The receiver's side of a bulk transfer: a pure ACK.
                    (
                        6,
                        tcp(sp, 8443, seqs[slot as usize].wrapping_add(1_000_000), &[]),
                    )
                }
                _ => {
                    let s = seqs[slot as usize];
                    seqs[slot as usize] = s.wrapping_add(1400);
                    (6, tcp(sp, 8443, s.wrapping_add(1_000_000), &bulk))
                }
            }
        };
        eth(&mut p, v6);
        let (sa, da) = if x & (1 << 40) != 0 { (a, b) } else { (b, a) };
        ip(&mut p, v6, sa, da, proto, l4.len());
        p.extend_from_slice(&l4);
        w.write(ts, &p)?;
    }
    w.into_inner().flush()?;
    planted.flush()?;
    eprintln!("{out}: {packets} packets, {n_planted} planted hits");
    Ok(())
}
