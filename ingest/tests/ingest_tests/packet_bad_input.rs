//! Bad input is normal input: truncated captures, snaplen cuts, bogus lengths, malformed
//! application data and fragment floods are counted, never panic, never grow memory.

use ingest::packet::{
    fuzzing, read_capture, read_capture_from, CaptureError, DecoderLimits, LinkType, PacketDecoder,
    PcapWriter,
};
use ingest::Origin;
use proptest::prelude::*;
use std::path::Path;

fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 14];
    p[12] = 0x08;
    let total = 20 + 8 + payload.len();
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let ul = 8 + payload.len();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[(ul >> 8) as u8, ul as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut v = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.extend_from_slice(&[0, 0, 1, 0, 1]);
    v
}

fn pcap_bytes(pkts: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for (i, p) in pkts.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as i64, p).unwrap();
    }
    w.into_inner()
}

#[test]
fn truncated_capture_reports_good_packets_then_error() {
    let pkts: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            ipv4_udp(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                4000 + i,
                53,
                &dns_query("a.example"),
            )
        })
        .collect();
    let full = pcap_bytes(&pkts);
    let cut = &full[..full.len() - 10];
    let mut n = 0;
    let r = read_capture_from(Path::new("cut.pcap"), &mut &cut[..], &mut |_| n += 1);
    match r {
        Err(CaptureError::Corrupt {
            after_packets,
            stats,
            reason,
            ..
        }) => {
            assert_eq!(after_packets, 2);
            assert_eq!(stats.packets, 2);
            assert_eq!(reason, "truncated packet data");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(n, 2);
    // A bogus record length is refused, not allocated.
    let mut bogus = full.clone();
    bogus[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let r = read_capture_from(Path::new("bogus.pcap"), &mut &bogus[..], &mut |_| {});
    assert!(
        matches!(
            r,
            Err(CaptureError::Corrupt {
                after_packets: 0,
                ..
            })
        ),
        "{r:?}"
    );
    let r = read_capture_from(
        Path::new("x"),
        &mut &b"hello world, no pcap"[..],
        &mut |_| {},
    );
    assert!(matches!(r, Err(CaptureError::BadMagic { .. })));
}

#[test]
fn snaplen_cut_packet_is_counted_and_still_yields_ips() {
    let p = ipv4_udp(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        4000,
        53,
        &dns_query("long.example.org"),
    );
    let cut = &p[..p.len() - 6];
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    dec.decode(LinkType::ETHERNET, 0, cut, Origin::None, &mut out);
    assert_eq!(out.len(), 1, "flow observation only");
    assert_eq!(out[0].dataset, "flow");
    let st = dec.stats().clone();
    assert_eq!(
        st.dropped_by_reason.get("ipv4: truncated (snaplen)"),
        Some(&1)
    );
    assert_eq!(
        st.dropped_by_reason.get("udp: truncated (snaplen)"),
        Some(&1)
    );
    assert!(st.dropped_by_reason.keys().any(|k| k.starts_with("dns:")));
}

#[test]
fn fragment_flood_is_bounded_and_counted() {
    let limits = DecoderLimits {
        max_frag_bytes: 256 * 1024,
        max_frag_datagrams: 512,
        ..Default::default()
    };
    let mut dec = PacketDecoder::new(limits);
    let mut out = Vec::new();
    for i in 0..20_000u32 {
        let mut p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, &[0u8; 1000]);
        // id = i, MF set, offset 0: never completes.
        p[14 + 4..14 + 6].copy_from_slice(&(i as u16).to_be_bytes());
        p[14 + 6] = 0x20;
        p[14 + 2..14 + 4].copy_from_slice(&1028u16.to_be_bytes());
        p.truncate(14 + 20 + 1008);
        dec.decode(LinkType::ETHERNET, i64::from(i), &p, Origin::None, &mut out);
        assert!(dec.stats().frag_bytes_held <= 256 * 1024);
    }
    let st = dec.stats().clone();
    assert_eq!(st.frag_fragments, 20_000);
    let dropped: u64 = st
        .dropped_by_reason
        .iter()
        .filter(|(k, _)| k.starts_with("frag:"))
        .map(|(_, v)| v)
        .sum();
    assert!(dropped > 19_000, "{:?}", st.dropped_by_reason);
    // Held or dropped, every fragment's addresses count: one flow, reported once (its ports
    // from the first fragments' UDP header).
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dataset, "flow");
    assert_eq!(
        (out[0].source_port, out[0].destination_port),
        (Some(1), Some(2))
    );
}

#[test]
fn reassembled_fragments_decode_dns() {
    let payload = dns_query("fragmented.example.net");
    let full = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 5555, 53, &payload);
    let l4 = &full[34..];
    let (a, b) = l4.split_at(16);
    let frag = |data: &[u8], off: u16, more: bool| {
        let mut p = full[..34].to_vec();
        let total = (20 + data.len()) as u16;
        p[14 + 2..14 + 4].copy_from_slice(&total.to_be_bytes());
        let fo = (off / 8) | if more { 0x2000 } else { 0 };
        p[14 + 6..14 + 8].copy_from_slice(&fo.to_be_bytes());
        p.extend_from_slice(data);
        p
    };
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    dec.decode(
        LinkType::ETHERNET,
        0,
        &frag(b, 16, false),
        Origin::None,
        &mut out,
    );
    // A later fragment first: its addresses are reported (no ports known yet, no made-up
    // ones), the datagram is held.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dataset, "flow");
    assert_eq!(out[0].source_port, None);
    assert!(out[0].community_id.is_none());
    dec.decode(
        LinkType::ETHERNET,
        1,
        &frag(a, 0, true),
        Origin::None,
        &mut out,
    );
    let dns: Vec<_> = out.iter().filter(|o| o.dataset == "dns").collect();
    assert_eq!(dns.len(), 1);
    assert_eq!(
        dns[0].dns_question_name.as_deref(),
        Some("fragmented.example.net")
    );
    assert_eq!(dec.stats().frag_reassembled, 1);
}

/// pcapng with two interfaces (Ethernet at µs, raw IP at ns via if_tsresol=9), big-endian
/// section, an unknown block in between.
#[test]
fn pcapng_interfaces_and_resolutions() {
    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&b);
        v.extend_from_slice(&len.to_be_bytes());
        v
    }
    let mut f = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_be_bytes().to_vec();
    shb.extend_from_slice(&[0, 1, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_be_bytes());
    f.extend(block(0x0a0d_0d0a, &shb));
    f.extend(block(1, &[0, 1, 0, 0, 0, 0, 0xff, 0xff])); // Ethernet, default µs
    let mut idb2 = vec![0, 101, 0, 0, 0, 0, 0xff, 0xff];
    idb2.extend_from_slice(&[0, 9, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol=9, end
    f.extend(block(1, &idb2));
    let eth = ipv4_udp(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        4000,
        53,
        &dns_query("a.example"),
    );
    let raw = eth[14..].to_vec();
    for (ifid, data, ts) in [(0u32, &eth, 1_000_000u64), (1, &raw, 1_000_000_000)] {
        let mut epb = ifid.to_be_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_be_bytes());
        epb.extend_from_slice(&(ts as u32).to_be_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_be_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_be_bytes());
        epb.extend_from_slice(data);
        f.extend(block(6, &epb));
        f.extend(block(0x0bad, &[1, 2, 3, 4]));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcapng");
    std::fs::write(&path, &f).unwrap();
    let mut got = Vec::new();
    let st = read_capture(&path, |p| {
        got.push((p.link, p.ts_ns, p.data.len(), p.number))
    })
    .unwrap();
    assert_eq!(
        got,
        vec![
            (LinkType::ETHERNET, 1_000_000_000, eth.len(), 1),
            (LinkType::RAW, 1_000_000_000, raw.len(), 2)
        ]
    );
    assert_eq!(st.blocks_skipped, 2);
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    for (l, d) in [(LinkType::ETHERNET, &eth), (LinkType::RAW, &raw)] {
        dec.decode(l, 0, d, Origin::None, &mut out);
    }
    assert_eq!(out.iter().filter(|o| o.dataset == "dns").count(), 2);
}

#[test]
fn malformed_tls_and_quic_counted() {
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    // A QUIC v1 long header Initial with garbage ciphertext (fails authentication).
    let mut q = vec![
        0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x44, 0xd0,
    ];
    q.extend(std::iter::repeat_n(0x5a, 1232));
    let p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 50000, 443, &q);
    dec.decode(LinkType::ETHERNET, 0, &p, Origin::None, &mut out);
    assert_eq!(
        dec.stats().dropped_by_reason.get("quic: decrypt failed"),
        Some(&1)
    );
    assert_eq!(out.len(), 1, "flow only");
}

fn arb_packets() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..1600)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn dns_never_panics(d in arb_packets()) { fuzzing::dns(&d); }

    #[test]
    fn tls_never_panics(d in arb_packets()) { fuzzing::tls(&d); }

    #[test]
    fn quic_never_panics(d in arb_packets()) { fuzzing::quic(&d); }

    #[test]
    fn http_never_panics(d in arb_packets()) { fuzzing::http(&d); }

    #[test]
    fn decode_never_panics(d in arb_packets()) { fuzzing::decode(&d); }

    #[test]
    fn capture_never_panics(d in arb_packets()) { fuzzing::capture(&d); }

    /// Valid headers, random tails: reaches deeper parser states than pure noise.
    #[test]
    fn decode_structured_noise_never_panics(tail in arb_packets(), port in prop_oneof![Just(53u16), Just(80), Just(443), Just(3544), Just(4789)], proto in prop_oneof![Just(6u8), Just(17), Just(47), Just(4), Just(41)]) {
        let mut p = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, port, &tail);
        p[14 + 9] = proto;
        let mut dec = PacketDecoder::new(DecoderLimits::default());
        let mut out = Vec::new();
        dec.decode(LinkType::ETHERNET, 0, &p, Origin::None, &mut out);
        let mut q = p.clone();
        q[0] ^= 1;
        dec.decode(LinkType::ETHERNET, 1, &q, Origin::None, &mut out);
    }
}

/// Regression: a UDP header cut after its length field (found by the `pkt_decode` fuzz target)
/// used to slice past the end of the packet.
#[test]
fn fuzz_regression_udp_header_cut_after_length() {
    let crash: [u8; 47] = [
        0x01, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x0a, 0xff, 0xed, 0x27, 0x32, 0x00, 0x00,
        0x00, 0x6b, 0x00, 0x9c, 0x80, 0x5b, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x11, 0x0a, 0xed, 0x27,
        0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xf9,
    ];
    ingest::packet::fuzzing::decode(&crash);
    // Every prefix too: truncation at any byte is normal input.
    for n in 0..crash.len() {
        ingest::packet::fuzzing::decode(&crash[..n]);
    }
}

/// Packets and outcome of one reader, for comparing readers.
type ReadOutcome = (Vec<(u64, i64, Vec<u8>)>, String);

fn outcome(r: Result<ingest::packet::CaptureStats, CaptureError>) -> String {
    match r {
        Ok(s) => format!("ok {s:?}"),
        Err(CaptureError::Corrupt {
            reason,
            after_packets,
            offset,
            stats,
            ..
        }) => format!("corrupt {reason} {after_packets} {offset} {stats:?}"),
        Err(e) => format!("other {e}"),
    }
}

/// The windowed reader used by the parallel replay delivers exactly what the streaming
/// reader does (packets, statistics, errors and their offsets) across many windows, on the
/// whole file and cut at and around every window boundary, and with a bogus length late in
/// the file.
#[test]
fn windowed_reader_equals_streaming_reader() {
    let dir = tempfile::tempdir().unwrap();
    // ~3 MB: the smallest window (snap length 262144 + 128 KiB) is crossed about eight times.
    let pkts: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| {
            let pad = vec![(i % 251) as u8; 600 + (i as usize * 37) % 700];
            ipv4_udp(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                4000 + (i % 100) as u16,
                9,
                &pad,
            )
        })
        .collect();
    let full = pcap_bytes(&pkts);
    let mut cuts: Vec<usize> = vec![full.len(), 24, 30, 40, 1000];
    for k in 1..(full.len() / (64 << 10)) {
        for d in [-17i64, -1, 0, 1, 15, 16, 300] {
            cuts.push(((k * (64 << 10)) as i64 + d) as usize);
        }
    }
    let mut bogus = full.clone();
    // Record header of some packet past the second window: its length set huge.
    let mut off = 24;
    let mut n = 0;
    while off < 1_200_000 {
        let incl = u32::from_le_bytes(bogus[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
        n += 1;
    }
    bogus[off + 8..off + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let mut files: Vec<(String, Vec<u8>)> = cuts
        .iter()
        .filter(|&&c| c <= full.len())
        .map(|&c| (format!("cut {c}"), full[..c].to_vec()))
        .collect();
    files.push((format!("bogus at packet {n}"), bogus));
    let mut compared = 0;
    for (what, bytes) in &files {
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, bytes).unwrap();
        let mut streamed: ReadOutcome = (Vec::new(), String::new());
        let r = read_capture(&path, |p| {
            streamed.0.push((p.number, p.ts_ns, p.data.to_vec()))
        });
        streamed.1 = outcome(r);
        let mut mapped: ReadOutcome = (Vec::new(), String::new());
        let r = ingest::packet::read_pcap_windows(&path, 0, |w, p| {
            // The packet bytes lie inside the window handed with them.
            let (w0, p0) = (w.as_ptr() as usize, p.data.as_ptr() as usize);
            assert!(p0 >= w0 && p0 + p.data.len() <= w0 + w.len(), "{what}");
            mapped.0.push((p.number, p.ts_ns, p.data.to_vec()))
        });
        let Some(r) = r else {
            // Only a file shorter than the global header is left to the streaming reader.
            assert!(bytes.len() < 24, "{what}: not mapped");
            continue;
        };
        mapped.1 = outcome(r);
        assert_eq!(mapped.1, streamed.1, "{what}");
        assert_eq!(mapped.0.len(), streamed.0.len(), "{what}");
        assert!(mapped.0 == streamed.0, "{what}: packets differ");
        compared += 1;
    }
    assert!(compared > 40, "{compared}");
    // Not pcap (pcapng, text): left to the streaming reader.
    let path = dir.path().join("x.txt");
    std::fs::write(&path, vec![b'x'; 100]).unwrap();
    assert!(ingest::packet::read_pcap_windows(&path, 0, |_, _| {}).is_none());
}

/// ~6 MB of UDP packets: more than one block of the streaming reader, and the smallest
/// window is crossed about twenty times.
fn big_capture() -> Vec<u8> {
    let pkts: Vec<Vec<u8>> = (0..6000u32)
        .map(|_| ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 4000, 9, &vec![7u8; 1000]))
        .collect();
    pcap_bytes(&pkts)
}

/// A capture truncated while it is read (logrotate's copytruncate, a full disk cleaned up)
/// ends the read with an error that says so, after the packets read before; with the file
/// mapped, the reader would have died of SIGBUS instead.
#[test]
fn capture_shrinking_while_read_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinks.pcap");
    let full = big_capture();
    type Reader =
        fn(&Path, &mut dyn FnMut()) -> (u64, Result<ingest::packet::CaptureStats, CaptureError>);
    let windowed: Reader = |path, at_first| {
        let mut n = 0;
        let r = ingest::packet::read_pcap_windows(path, 0, |_, _| {
            n += 1;
            if n == 1 {
                at_first();
            }
        })
        .expect("a classic pcap");
        (n, r)
    };
    let streamed: Reader = |path, at_first| {
        let mut n = 0;
        let r = read_capture(path, |_| {
            n += 1;
            if n == 1 {
                at_first();
            }
        });
        (n, r)
    };
    for (what, read) in [("windowed", windowed), ("streamed", streamed)] {
        std::fs::write(&path, &full).unwrap();
        let cut_to = 100_000u64;
        let (n, r) = read(&path, &mut || {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut_to).unwrap();
        });
        match r {
            Err(e @ CaptureError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("shrank"), "{what}: {msg}");
                assert!(msg.contains("shrinks.pcap"), "{what}: {msg}");
                let CaptureError::Corrupt { after_packets, .. } = e else {
                    unreachable!()
                };
                assert_eq!(after_packets, n, "{what}");
                assert!((1..6000).contains(&n), "{what}: {n} packets");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// Files with nothing to read are errors naming the file and place, like tshark's.
#[test]
fn empty_header_only_and_undeclared_interface_captures_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let full = big_capture();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.pcap", Vec::new(), "empty file"),
        ("header.pcap", full[..24].to_vec(), "no packets"),
        (
            "short.pcap",
            full[..10].to_vec(),
            "truncated pcap file header",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = read_capture(&path, |_| {}).expect_err(name).to_string();
        assert!(e.contains(name) && e.contains(reason), "{e}");
        assert!(e.contains("packet 1 at byte offset"), "{e}");
        if let Some(r) = ingest::packet::read_pcap_windows(&path, 0, |_, _| {}) {
            let e = r.expect_err(name).to_string();
            assert!(e.contains(reason), "{e}");
        }
    }
    // An enhanced packet block naming interface 3 of a section that declares one.
    let mut f = pcapng_section(true, &[(0, b"abcd")]);
    f.extend(pcapng_block(true, 6, &epb(true, 3, b"efgh")));
    let path = dir.path().join("iface.pcapng");
    std::fs::write(&path, &f).unwrap();
    let mut n = 0;
    let e = read_capture(&path, |_| n += 1)
        .expect_err("iface")
        .to_string();
    assert_eq!(n, 1);
    assert!(
        e.contains("undeclared interface") && e.contains("packet 2 at byte offset"),
        "{e}"
    );
}

fn pcapng_block(le: bool, t: u32, body: &[u8]) -> Vec<u8> {
    let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut b = body.to_vec();
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    let len = (b.len() + 12) as u32;
    let mut v = u32b(t).to_vec();
    v.extend_from_slice(&u32b(len));
    v.extend_from_slice(&b);
    v.extend_from_slice(&u32b(len));
    v
}

fn epb(le: bool, ifid: u32, data: &[u8]) -> Vec<u8> {
    let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut b = u32b(ifid).to_vec();
    b.extend_from_slice(&u32b(0));
    b.extend_from_slice(&u32b(1_000_000));
    b.extend_from_slice(&u32b(data.len() as u32));
    b.extend_from_slice(&u32b(data.len() as u32));
    b.extend_from_slice(data);
    b
}

/// One pcapng section (byte order `le`) with one Ethernet interface and these packets
/// (interface id, bytes), its section header carrying an option (so it is longer than 28).
fn pcapng_section(le: bool, pkts: &[(u32, &[u8])]) -> Vec<u8> {
    let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut shb = if le {
        0x1a2b_3c4du32.to_le_bytes().to_vec()
    } else {
        0x1a2b_3c4du32.to_be_bytes().to_vec()
    };
    shb.extend_from_slice(&u16b(1));
    shb.extend_from_slice(&u16b(0));
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    // shb_userappl (4) = "trawl", then opt_endofopt.
    shb.extend_from_slice(&u16b(4));
    shb.extend_from_slice(&u16b(5));
    shb.extend_from_slice(b"trawl\0\0\0");
    shb.extend_from_slice(&[0, 0, 0, 0]);
    let mut f = pcapng_block(le, 0x0a0d_0d0a, &shb);
    let mut idb = u16b(1).to_vec();
    idb.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff]);
    f.extend(pcapng_block(le, 1, &idb));
    for (ifid, data) in pkts {
        f.extend(pcapng_block(le, 6, &epb(le, *ifid, data)));
    }
    f
}

/// Several sections in one file (valid pcapng: `cat a.pcapng b.pcapng`), of either byte
/// order, are read whole, in order; tshark, when installed, reads the same packets.
#[test]
fn pcapng_sections_are_read_whole() {
    let pkt = |i: u32| {
        ipv4_udp(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            4000 + i as u16,
            53,
            &dns_query("a.example"),
        )
    };
    let (a, b, c) = (pkt(1), pkt(2), pkt(3));
    let mut f = pcapng_section(true, &[(0, &a), (0, &b)]);
    f.extend(pcapng_section(false, &[(0, &c)]));
    f.extend(pcapng_section(true, &[(0, &a)]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sections.pcapng");
    std::fs::write(&path, &f).unwrap();
    let mut got = Vec::new();
    let st = read_capture(&path, |p| got.push((p.number, p.data.to_vec()))).unwrap();
    let want = vec![(1, a.clone()), (2, b), (3, c), (4, a)];
    assert_eq!(got, want);
    assert_eq!(st.packets, 4);
    match std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args(["-T", "fields", "-e", "frame.cap_len"])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "tshark: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lens: Vec<usize> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().parse().unwrap())
                .collect();
            assert_eq!(lens, want.iter().map(|(_, d)| d.len()).collect::<Vec<_>>());
        }
        Err(e) => eprintln!("TSHARK ABSENT ({e}): checked against the spec only"),
    }
}

proptest! {
    /// Multi-section pcapng (both byte orders) with bytes flipped and cut anywhere: the reader
    /// never panics, and what it delivers before an error is a prefix of the packets.
    #[test]
    fn pcapng_sections_cut_or_corrupted_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let pkt = |i: u8| vec![i; 20 + usize::from(i)];
        let (a, b, c) = (pkt(1), pkt(2), pkt(3));
        let mut f = pcapng_section(true, &[(0, &a), (0, &b)]);
        f.extend(pcapng_section(false, &[(0, &c)]));
        let want = [a, b, c];
        let clean = f.clone();
        for (at, v) in &flips {
            let i = at.index(f.len());
            f[i] ^= v;
        }
        f.truncate(cut.index(f.len() + 1));
        let mut got = Vec::new();
        let r = read_capture_from(Path::new("p.pcapng"), &mut &f[..], &mut |p| got.push(p.data.to_vec()));
        if flips.is_empty() {
            let n = got.len();
            prop_assert_eq!(&got[..], &want[..n]);
            // Whole: read whole. Cut (maybe at a block boundary, which looks whole): no more.
            if f.len() == clean.len() {
                prop_assert!(r.is_ok());
                prop_assert_eq!(n, 3);
            }
        }
    }
}
