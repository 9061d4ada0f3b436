//! Crafted captures of address evasions (issue 23), built byte by byte: fragments that never
//! reassemble, cut transport headers, tunnels (IP-in-IP, GRE, VXLAN, Teredo) and ICMP errors
//! quoting a packet to a listed address. Shared by trawl-ingest's decoder tests (compared with
//! tshark) and the CLI's replay test (`#[path]`), so both read the same packets.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

/// A listed IPv4 address (samples/feeds/drop.txt: 185.220.100.0/22).
pub const LISTED4: Ipv4Addr = Ipv4Addr::new(185, 220, 100, 66);
/// A listed IPv6 address (samples/feeds/drop.txt: 2a0e:1c80::/29).
pub const LISTED6: Ipv6Addr = Ipv6Addr::new(0x2a0e, 0x1c80, 0, 0, 0, 0, 0, 0x66);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5);
const TUN_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const TUN_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const TUN_A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const TUN_B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// One crafted frame (Ethernet link) and what it is.
pub struct Frame {
    /// What the frame tries (shown in failures).
    pub case: &'static str,
    /// The Ethernet frame.
    pub bytes: Vec<u8>,
    /// Whether the frame's flow to the listed address is new in the capture (it alerts once
    /// when the capture is replayed in order).
    pub new_flow_to_listed: bool,
    /// The listed address is IPv6 (else IPv4).
    pub listed_v6: bool,
}

/// An IPv4 header and payload: protocol, identification, flags+offset word.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 header (payload length from the payload) and payload.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 fragment header (next header, offset in bytes, more flag, id) and its data.
pub fn frag6(next: u8, offset: u16, more: bool, id: u32, data: &[u8]) -> Vec<u8> {
    let mut p = vec![next, 0];
    p.extend_from_slice(&((offset / 8) << 3 | u16::from(more)).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(data);
    p
}

/// A TCP SYN (20-byte header).
pub fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[
        0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p
}

/// A UDP datagram.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// An Ethernet II frame.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An ICMP (or ICMPv6) message: type, code, 4 unused bytes, the quoted packet.
fn icmp(typ: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut p = vec![typ, code, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(quoted);
    p
}

/// The evasion frames, in capture order. Every frame reaches a listed address; each uses
/// its own ports, except where a frame repeats an earlier flow on purpose.
pub fn evasion_frames() -> Vec<Frame> {
    let (c4, x4, c6, x6) = (CLIENT4, LISTED4, CLIENT6, LISTED6);
    let v4 = |b: Vec<u8>| eth(0x0800, &b);
    let v6 = |b: Vec<u8>| eth(0x86dd, &b);
    let frame = |case, bytes, new_flow_to_listed, listed_v6| Frame {
        case,
        bytes,
        new_flow_to_listed,
        listed_v6,
    };
    // A SYN with 4 bytes of data: 24 bytes, a multiple of 8 as a first fragment's must be.
    let mut syn_data = tcp_syn(40001, 443);
    syn_data.extend_from_slice(b"evil");
    let syn_cut = tcp_syn(40001, 443)[..12].to_vec();
    let inner_udp4 = |sport| ipv4(c4, x4, 17, 7, 0, &udp(sport, 9999, b"inner"));
    let inner_udp6 = |sport| ipv6(c6, x6, 17, &udp(sport, 9999, b"inner"));
    let inner_eth4 = |sport| eth(0x0800, &inner_udp4(sport));
    let gre = |proto: u16, inner: &[u8]| {
        let mut g = vec![0, 0];
        g.extend_from_slice(&proto.to_be_bytes());
        g.extend_from_slice(inner);
        g
    };
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vxlan.extend_from_slice(&eth(0x0800, &ipv4(c4, x4, 6, 9, 0, &tcp_syn(40011, 443))));
    let mut vxlan_first = vec![0x08, 0, 0, 0, 0, 0, 43, 0];
    vxlan_first.extend_from_slice(&eth(0x0800, &ipv4(c4, x4, 6, 14, 0, &tcp_syn(40017, 443))));
    // Outer first fragments carry a multiple of 8 bytes: GRE (4) + inner IPv4 (20) + UDP (8);
    // UDP (8) + VXLAN (8) + Ethernet (14) + inner IPv4 (20) + 14 bytes of TCP.
    let gre_first = gre(0x0800, &inner_udp4(40016))[..32].to_vec();
    let vxlan_first = udp(50002, 4789, &vxlan_first)[..64].to_vec();
    let quoted4 = ipv4(c4, x4, 17, 11, 0, &udp(40012, 33434, b"probe-data"))[..28].to_vec();
    let quoted6 = ipv6(c6, x6, 6, &tcp_syn(40013, 443))[..48].to_vec();
    let quoted_first6 = ipv6(
        c6,
        x6,
        44,
        &frag6(17, 0, true, 0x3001, &udp(40015, 53, b"16 bytes")),
    )[..56]
        .to_vec();
    let quoted_later4 = ipv4(c4, x4, 17, 12, 3, b"a later fragment, quoted")[..28].to_vec();
    vec![
        frame(
            "IPv4 first fragment of a SYN, never completed",
            v4(ipv4(c4, x4, 6, 0x1001, 0x2000, &syn_data)),
            true,
            false,
        ),
        frame(
            "IPv4 SYN cut to 12 bytes of TCP header (same flow as the first fragment)",
            v4(ipv4(c4, x4, 6, 0x1002, 0, &syn_cut)),
            false,
            false,
        ),
        frame(
            "IPv4 later fragment of another datagram (no ports)",
            v4(ipv4(c4, x4, 6, 0x1003, 3, b"later fragment data")),
            true,
            false,
        ),
        frame(
            "IPv4 later fragment again (same addresses: reported once)",
            v4(ipv4(c4, x4, 6, 0x1004, 3, b"later fragment data")),
            false,
            false,
        ),
        frame(
            "IPv4 TCP header of 2 bytes (no ports)",
            v4(ipv4(c4, x4, 6, 0x1005, 0, &[0x9c])),
            false,
            false,
        ),
        frame(
            "IPv4 UDP header cut to 6 bytes",
            v4(ipv4(c4, x4, 17, 0x1006, 0, &udp(40003, 53, b"")[..6])),
            true,
            false,
        ),
        frame(
            "IPv6 first fragment of a UDP datagram",
            v6(ipv6(
                c6,
                x6,
                44,
                &frag6(17, 0, true, 0x2001, &udp(40004, 53, b"16 bytes")),
            )),
            true,
            true,
        ),
        frame(
            "IPv6 later fragment (no ports)",
            v6(ipv6(c6, x6, 44, &frag6(17, 64, false, 0x2002, b"later"))),
            true,
            true,
        ),
        frame(
            "IPv4 in IPv4",
            v4(ipv4(TUN_A, TUN_B, 4, 1, 0, &inner_udp4(40005))),
            true,
            false,
        ),
        frame(
            "IPv4 in IPv4, first fragment of the outer packet, never completed",
            v4(ipv4(TUN_A, TUN_B, 4, 8, 0x2000, &inner_udp4(40014)[..32])),
            true,
            false,
        ),
        frame(
            "IPv6 in IPv4",
            v4(ipv4(TUN_A, TUN_B, 41, 2, 0, &inner_udp6(40006))),
            true,
            true,
        ),
        frame(
            "IPv4 in IPv6",
            v6(ipv6(TUN_A6, TUN_B6, 4, &inner_udp4(40007))),
            true,
            false,
        ),
        frame(
            "GRE with an IPv4 payload",
            v4(ipv4(
                TUN_A,
                TUN_B,
                47,
                3,
                0,
                &gre(0x0800, &inner_udp4(40008)),
            )),
            true,
            false,
        ),
        frame(
            "GRE with an Ethernet payload (transparent Ethernet bridging)",
            v4(ipv4(
                TUN_A,
                TUN_B,
                47,
                4,
                0,
                &gre(0x6558, &inner_eth4(40009)),
            )),
            true,
            false,
        ),
        frame(
            "GRE with an IPv4 payload, first fragment of the outer packet, never completed",
            v4(ipv4(TUN_A, TUN_B, 47, 15, 0x2000, &gre_first)),
            true,
            false,
        ),
        frame(
            "VXLAN with an Ethernet payload, first fragment of the outer packet, never completed",
            v4(ipv4(TUN_A, TUN_B, 17, 16, 0x2000, &vxlan_first)),
            true,
            false,
        ),
        frame(
            "VXLAN (UDP 4789) with an Ethernet payload",
            v4(ipv4(TUN_A, TUN_B, 17, 5, 0, &udp(50000, 4789, &vxlan))),
            true,
            false,
        ),
        frame(
            "Teredo (UDP 3544) with an IPv6 payload",
            v4(ipv4(
                TUN_A,
                TUN_B,
                17,
                6,
                0,
                &udp(50001, 3544, &inner_udp6(40010)),
            )),
            true,
            true,
        ),
        frame(
            "ICMP destination unreachable quoting a UDP packet",
            v4(ipv4(ROUTER4, c4, 1, 7, 0, &icmp(3, 3, &quoted4))),
            true,
            false,
        ),
        frame(
            "ICMPv6 time exceeded quoting a TCP SYN",
            v6(ipv6(ROUTER6, c6, 58, &icmp(3, 0, &quoted6))),
            true,
            true,
        ),
        frame(
            "ICMPv6 packet too big quoting the first fragment of a UDP datagram",
            v6(ipv6(ROUTER6, c6, 58, &icmp(2, 0, &quoted_first6))),
            true,
            true,
        ),
        frame(
            "ICMP time exceeded quoting a later fragment (no ports)",
            v4(ipv4(ROUTER4, c4, 1, 13, 0, &icmp(11, 1, &quoted_later4))),
            true,
            false,
        ),
    ]
}

/// A DNS query for `name` from the client to the listed address inside GRE, its outer IPv4
/// packet in two fragments: the first carries the GRE header, the inner IPv4 and UDP headers
/// and the start of the query; the second the rest.
pub fn gre_dns_in_fragments(name: &str) -> [Vec<u8>; 2] {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let inner = ipv4(CLIENT4, LISTED4, 17, 21, 0, &udp(40018, 53, &q));
    let mut g = vec![0, 0, 0x08, 0x00];
    g.extend_from_slice(&inner);
    let (first, rest) = g.split_at(40);
    [
        eth(0x0800, &ipv4(TUN_A, TUN_B, 47, 22, 0x2000, first)),
        eth(0x0800, &ipv4(TUN_A, TUN_B, 47, 22, 40 / 8, rest)),
    ]
}

/// The IPv4 packets of `depth` nested IP-in-IP tunnels around a UDP datagram to the listed
/// address (every tunnel between unlisted endpoints).
pub fn nested_ip_in_ip(depth: usize) -> Vec<u8> {
    let mut p = ipv4(CLIENT4, LISTED4, 17, 1, 0, &udp(40100, 9999, b"deep"));
    for i in 0..depth {
        let a = Ipv4Addr::new(192, 0, 2, 10 + i as u8);
        p = ipv4(a, TUN_B, 4, i as u16, 0, &p);
    }
    eth(0x0800, &p)
}
