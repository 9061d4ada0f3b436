//! Offline capture readers compared (not a test; run it in release), for `benches/README.md`
//! "Capture reader":
//!
//! `cargo run --release -p trawl-ingest --example capture_readers -- FILE [trawl|libpcap|pcap-parser|all]`
//!
//! Reads every packet of FILE (pcap or pcapng) with trawl's `read_capture`, with libpcap (the
//! `pcap` crate, nanosecond precision) or with `pcap-parser`'s streaming reader (1 MiB buffer),
//! and prints the packet count, the summed captured lengths and the summed nanosecond
//! timestamps (so nothing is optimised away, and the three can be checked to agree), then how
//! the read ended: `ok`, or the reader's error with whatever position it gives. `all` (the
//! default) runs the three in turn and exits 1 if their sums differ.

use std::path::Path;
use std::process::ExitCode;

use pcap_parser::{Block, PcapBlockOwned, PcapError};

/// What one reader saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sums {
    packets: u64,
    bytes: u64,
    ts_ns: i64,
}

impl Sums {
    fn add(&mut self, len: usize, ts_ns: i64) {
        self.packets += 1;
        self.bytes += len as u64;
        self.ts_ns = self.ts_ns.wrapping_add(ts_ns);
    }
}

/// One way of reading a capture: its sums and how the read ended.
type Reader = fn(&Path) -> (Sums, String);

fn trawl(path: &Path) -> (Sums, String) {
    let mut s = Sums::default();
    let r = ingest::packet::read_capture(path, |p| s.add(p.data.len(), p.ts_ns));
    let end = match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    (s, end)
}

fn libpcap(path: &Path) -> (Sums, String) {
    let mut s = Sums::default();
    let mut cap = match pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano) {
        Ok(c) => c,
        Err(e) => return (s, e.to_string()),
    };
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                // time_t / suseconds_t width differs by platform; tv_usec holds nanoseconds here.
                #[allow(clippy::useless_conversion)]
                let ts = i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_usec);
                s.add(p.data.len(), ts);
            }
            Err(pcap::Error::NoMorePackets) => return (s, "ok".to_string()),
            Err(e) => return (s, e.to_string()),
        }
    }
}

/// The largest buffer the `pcap-parser` reader may grow to (trawl's largest record, 256 MiB).
const MAX_BUFFER: usize = 256 << 20;

/// Nanoseconds from a pcapng timestamp in `resol` units per second plus `offset` seconds.
fn ng_ns(high: u32, low: u32, resol: u64, offset: i64) -> i64 {
    let t = (u64::from(high) << 32) | u64::from(low);
    let frac = (u128::from(t % resol) * 1_000_000_000 / u128::from(resol)) as i64;
    ((t / resol) as i64 + offset) * 1_000_000_000 + frac
}

fn pcap_parser(path: &Path) -> (Sums, String) {
    let mut s = Sums::default();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return (s, e.to_string()),
    };
    let mut capacity = 1 << 20;
    let mut reader = match pcap_parser::create_reader(capacity, file) {
        Ok(r) => r,
        Err(e) => return (s, format!("{e:?}")),
    };
    let mut legacy_nanos = false;
    // (resolution in units per second, offset in seconds) of each interface of this section.
    let mut ifaces: Vec<(u64, i64)> = Vec::new();
    loop {
        match reader.next() {
            Ok((used, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_nanos = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let frac = i64::from(b.ts_usec) * if legacy_nanos { 1 } else { 1000 };
                        s.add(b.data.len(), i64::from(b.ts_sec) * 1_000_000_000 + frac);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resol = idb.ts_resolution().unwrap_or(1_000_000);
                        ifaces.push((resol, idb.ts_offset()));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let Some(&(resol, offset)) = ifaces.get(epb.if_id as usize) else {
                            return (s, format!("packet on undeclared interface {}", epb.if_id));
                        };
                        let len = (epb.caplen as usize).min(epb.data.len());
                        s.add(len, ng_ns(epb.ts_high, epb.ts_low, resol, offset));
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => s.add(spb.data.len(), 0),
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(used);
            }
            Err(PcapError::Eof) => return (s, "ok".to_string()),
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    return (s, format!("{e:?}"));
                }
            }
            // A block longer than the buffer: grow it, up to trawl's own record limit.
            Err(PcapError::BufferTooSmall) if capacity < MAX_BUFFER => {
                capacity *= 2;
                if !reader.grow(capacity) {
                    return (s, format!("could not grow the buffer to {capacity} bytes"));
                }
            }
            Err(e) => {
                let msg = format!("{e:?}");
                let at = reader.consumed();
                return (s, format!("{msg} (at byte {at})"));
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        eprintln!("usage: capture_readers FILE [trawl|libpcap|pcap-parser|all]");
        return ExitCode::from(2);
    };
    let path = Path::new(file);
    let which = args.get(2).map_or("all", String::as_str);
    let readers: [(&str, Reader); 3] = [
        ("trawl", trawl),
        ("libpcap", libpcap),
        ("pcap-parser", pcap_parser),
    ];
    let mut seen: Vec<Sums> = Vec::new();
    for (name, read) in readers {
        if which != "all" && which != name {
            continue;
        }
        let (s, end) = read(path);
        println!(
            "{name:<12} packets {} bytes {} ts_sum {} end: {end}",
            s.packets, s.bytes, s.ts_ns
        );
        seen.push(s);
    }
    if seen.is_empty() {
        eprintln!("unknown reader {which}");
        return ExitCode::from(2);
    }
    if seen.windows(2).any(|w| w[0] != w[1]) {
        println!("the readers disagree");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
