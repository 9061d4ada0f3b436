//! The per-worker packet decoder: [`PacketDecoder`] owns the state (flows, fragments,
//! counters) and follows each packet layer by layer, the only module that does. Below it,
//! each layer is functions from bytes (and the state they need) to the next layer:
//! `packet::link` (link layers, tunnel framing), `packet::ip` (IP and transport headers,
//! fragments), `packet::flow` (the flow table), `packet::stream` (TCP streams and the
//! DNS / HTTP / TLS / QUIC dispatch); `packet::tuple`, `packet::limits` and
//! `packet::stats` hold what they share.

use super::capture::LinkType;
use super::flow::{Flows, Seen};
use super::frag::Reassembler;
use super::ip::{self, Datagram};
use super::link::{self, be16, be32, ether_walk, link_layer, L3};
use super::quic;
use super::stream::{self, App, Emit};
use super::tuple::{FlowKey, PacketMeta, Tuple};
use crate::observation::{CommunityId, Observation, Origin};
use etherparse::{Ipv4HeaderSlice, Ipv6Header, Ipv6HeaderSlice};
use std::net::IpAddr;

pub use super::flow::flow_shard;
pub use super::limits::DecoderLimits;
pub use super::stats::DecodeStats;

/// Per-worker decoder state: flows, fragments, TLS/TCP-DNS/HTTP buffers.
pub struct PacketDecoder {
    limits: DecoderLimits,
    stats: DecodeStats,
    flows: Flows<App>,
    frags: Reassembler,
    /// Time and origin of the packet being decoded.
    pkt: PacketMeta,
    /// The packet being decoded went through a tunnel.
    tunnelled: bool,
    /// Observations by dataset not yet added to `stats` (a few names, counted without the
    /// BTreeMap's string compares on every observation; folded in by [`PacketDecoder::stats`]).
    by_dataset: Vec<(&'static str, u64)>,
}

impl PacketDecoder {
    /// A decoder with the given bounds.
    pub fn new(limits: DecoderLimits) -> Self {
        let frags = Reassembler::new(
            limits.max_frag_bytes,
            limits.max_frag_datagrams,
            limits.frag_timeout_ns,
        );
        PacketDecoder {
            limits,
            stats: DecodeStats::default(),
            flows: Flows::default(),
            frags,
            pkt: PacketMeta {
                ts: 0,
                origin: Origin::None,
            },
            tunnelled: false,
            by_dataset: Vec::new(),
        }
    }

    /// Counters so far (gauges refreshed).
    pub fn stats(&mut self) -> &DecodeStats {
        for (k, n) in &mut self.by_dataset {
            if *n > 0 {
                *self.stats.observations_by_dataset.entry(k).or_default() += *n;
                *n = 0;
            }
        }
        self.stats.flows_evicted = self.flows.evicted;
        self.stats.flows_active = self.flows.len() as u64;
        self.stats.frag_reassembled = self.frags.reassembled;
        self.stats.frag_timeouts = self.frags.timeouts;
        self.stats.frag_bytes_held = self.frags.bytes_held() as u64;
        &self.stats
    }

    /// Prefetch the flow-table slot of a packet that will be decoded soon (plain TCP/UDP
    /// over Ethernet/VLAN/raw IP, unfragmented; anything else is left alone). Decoding is
    /// unchanged whether or not this is called: it only hides the memory latency of the
    /// lookup when called a couple of packets ahead.
    pub fn prefetch_flow(&self, link: LinkType, data: &[u8]) {
        let Ok((mut l3, mut off)) = link_layer(link, data) else {
            return;
        };
        if l3 == L3::Ether {
            let Ok((l, o)) = ether_walk(data, off, None) else {
                return;
            };
            (l3, off) = (l, o);
        }
        let Some(d) = data.get(off..) else { return };
        let (src, dst, proto, l4) = match l3 {
            L3::Ipv4 => {
                let Ok(h) = Ipv4HeaderSlice::from_slice(d) else {
                    return;
                };
                if h.more_fragments() || h.fragments_offset().value() != 0 {
                    return;
                }
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    h.protocol().0,
                    h.slice().len(),
                )
            }
            L3::Ipv6 => {
                let Ok(h) = Ipv6HeaderSlice::from_slice(d) else {
                    return;
                };
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    h.next_header().0,
                    Ipv6Header::LEN,
                )
            }
            _ => return,
        };
        if proto != 6 && proto != 17 {
            return;
        }
        let (Some(sport), Some(dport)) = (be16(d, l4), be16(d, l4 + 2)) else {
            return;
        };
        let t = Tuple {
            src,
            dst,
            sport,
            dport,
            proto,
        };
        self.flows.prefetch(&FlowKey::of(&t).0);
    }

    /// Decode one captured packet; push every observation it yields (DNS message, HTTP
    /// request, ClientHello, server certificate, QUIC Initial, first packet of a flow
    /// direction) into `out`.
    pub fn decode(
        &mut self,
        link: LinkType,
        ts_ns: i64,
        data: &[u8],
        origin: Origin<'static>,
        out: &mut Vec<Observation<'static>>,
    ) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        self.pkt.ts = ts_ns;
        self.pkt.origin = origin;
        self.tunnelled = false;
        let before = out.len();
        match link_layer(link, data) {
            Ok((l3, off)) => self.l3(l3, data, off, 0, out),
            Err(r) => self.stats.drop(r),
        }
        if self.tunnelled {
            self.stats.tunnelled += 1;
        }
        let n = out.len() - before;
        self.stats.observations += n as u64;
        for o in &out[before..] {
            // Dataset names are string constants: the same pointer, almost always.
            let same = |k: &str| std::ptr::eq(k, o.dataset) || k == o.dataset;
            match self.by_dataset.iter_mut().find(|(k, _)| same(k)) {
                Some((_, n)) => *n += 1,
                None => self.by_dataset.push((o.dataset, 1)),
            }
        }
    }

    /// The layer-3 packet at `off` of `d` (`depth`: tunnels followed so far).
    fn l3(&mut self, l3: L3, d: &[u8], off: usize, depth: u8, out: &mut Vec<Observation<'static>>) {
        if depth > self.limits.max_depth {
            self.stats.drop("tunnel: too deep");
            return;
        }
        let (l3, off) = if l3 == L3::Ether {
            match ether_walk(d, off, None) {
                Ok(x) => x,
                Err(r) => {
                    self.stats.drop(r);
                    return;
                }
            }
        } else {
            (l3, off)
        };
        let Some(ip) = d.get(off..) else {
            self.stats.drop("link: truncated");
            return;
        };
        // One `l4` call per IP version: the address family stays known to the compiler
        // (a merged `IpAddr` cost ~70 instructions a packet in copies).
        match l3 {
            L3::Ipv4 => match ip::ipv4(ip, self.pkt.ts, &mut self.frags, &mut self.stats) {
                Datagram::Whole(t) => self.l4(t.src, t.dst, t.proto, &t.payload, depth, out),
                Datagram::Partial(p) => self.unparsed(&p, true, out),
                Datagram::Nothing => {}
            },
            L3::Ipv6 => match ip::ipv6(ip, self.pkt.ts, &mut self.frags, &mut self.stats) {
                Datagram::Whole(t) => self.l4(t.src, t.dst, t.proto, &t.payload, depth, out),
                Datagram::Partial(p) => self.unparsed(&p, true, out),
                Datagram::Nothing => {}
            },
            _ => self.stats.non_ip += 1,
        }
    }

    /// The flow of an IP header whose transport header is not decoded (a fragment, a cut or
    /// malformed transport header, the header an ICMP error quotes): with its ports when the
    /// first four bytes of a TCP/UDP/SCTP header are there (the flow the whole packet would
    /// have: reported once), ICMP with its type and code, else by its addresses alone.
    /// `inner`: also report the inner header a tunnel's first fragment carries (IP-in-IP,
    /// GRE, VXLAN, Teredo: [`tunnelled_header`]; one level: its own inner header is not
    /// followed).
    fn unparsed(&mut self, p: &ip::Partial<'_>, inner: bool, out: &mut Vec<Observation<'static>>) {
        let (src, dst, proto) = (p.src, p.dst, p.proto);
        match proto {
            6 | 17 | 132 => {
                let ports = p.head.and_then(|d| Some((be16(d, 0)?, be16(d, 2)?)));
                let (sport, dport) = ports.unwrap_or((0, 0));
                let t = Tuple {
                    src,
                    dst,
                    sport,
                    dport,
                    proto,
                };
                if ports.is_some() {
                    self.flow(&t, None, out);
                } else {
                    let seen = self.flows.see(
                        &t,
                        None,
                        self.limits.max_flows,
                        self.limits.flow_observations,
                    );
                    if seen.new_direction.is_some() {
                        // Ports unknown: no made-up port 0, no Community ID.
                        let mut o = self.pkt.obs(&t, "flow", None);
                        o.source_port = None;
                        o.destination_port = None;
                        out.push(o);
                    }
                }
            }
            1 | 58 => {
                let icmp = p.head.and_then(ip::icmp_type_code);
                self.flow_only(src, dst, proto, icmp, out);
            }
            _ => self.flow_only(src, dst, proto, None, out),
        }
        let tunnelled = p.head.filter(|_| inner);
        if let Some(q) = tunnelled.and_then(|d| tunnelled_header(proto, d)) {
            self.tunnelled = true;
            self.unparsed(&q, false, out);
        }
    }

    /// The transport payload `d` of an IP packet: TCP, UDP, IP-in-IP, GRE, ICMP, or only
    /// its flow.
    fn l4(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        d: &[u8],
        depth: u8,
        out: &mut Vec<Observation<'static>>,
    ) {
        match proto {
            6 => self.tcp(src, dst, d, out),
            17 => self.udp(src, dst, d, depth, out),
            4 | 41 => {
                self.flow_only(src, dst, proto, None, out);
                self.tunnelled = true;
                let l3 = if proto == 4 { L3::Ipv4 } else { L3::Ipv6 };
                self.l3(l3, d, 0, depth + 1, out);
            }
            47 => {
                self.flow_only(src, dst, proto, None, out);
                self.gre(d, depth, out);
            }
            1 | 58 => {
                let icmp = ip::icmp_type_code(d);
                self.flow_only(src, dst, proto, icmp, out);
                // An error's quoted header: its endpoints count too (not parsed further).
                if let Some(q) = ip::icmp_quoted(proto, d) {
                    self.unparsed(&q, false, out);
                }
            }
            _ => self.flow_only(src, dst, proto, None, out),
        }
    }

    fn gre(&mut self, d: &[u8], depth: u8, out: &mut Vec<Observation<'static>>) {
        let (pt, p) = match link::gre_header(d) {
            Ok(x) => x,
            Err(r) => {
                self.stats.drop(r);
                return;
            }
        };
        self.tunnelled = true;
        match link::gre_payload(d, pt, p) {
            Ok((l3, o)) => self.l3(l3, d, o, depth + 1, out),
            Err(r) => self.stats.drop(r),
        }
    }

    fn udp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        d: &[u8],
        depth: u8,
        out: &mut Vec<Observation<'static>>,
    ) {
        let Some((sport, dport, payload)) = ip::udp_datagram(d, &mut self.stats) else {
            self.unparsed(&ip::Partial::of(src, dst, 17, d), false, out);
            return;
        };
        let t = Tuple {
            src,
            dst,
            sport,
            dport,
            proto: 17,
        };
        let Seen { key, dir, .. } = self.flow(&t, None, out);
        // Tunnels carried in UDP.
        if let Some((l3, off)) = link::udp_tunnel(sport, dport, payload) {
            self.tunnelled = true;
            self.l3(l3, payload, off, depth + 1, out);
            return;
        }
        let mut emit = Emit {
            pkt: &self.pkt,
            stats: &mut self.stats,
            out,
        };
        if sport == 53 || dport == 53 {
            stream::dns_datagram(&t, payload, &mut emit);
            return;
        }
        if payload.len() >= 7 && payload[0] & 0xc0 == 0xc0 {
            let v = be32(payload, 1).unwrap_or(0);
            if v == quic::V1 || v == quic::V2 {
                if let Some(flow) = self.flows.get_mut(&key) {
                    let max = self.limits.tls_buffer_per_flow;
                    stream::quic_initial(&t, payload, flow, dir, max, &mut emit);
                }
            }
        }
    }

    /// A TCP segment: header checks, the flow (and its `flow` observation), then the
    /// stream direction's reassembly and parsing, and the observations of what it yields.
    fn tcp(&mut self, src: IpAddr, dst: IpAddr, d: &[u8], out: &mut Vec<Observation<'static>>) {
        let Some(seg) = ip::tcp_segment(src, dst, d, &mut self.stats) else {
            self.unparsed(&ip::Partial::of(src, dst, 6, d), false, out);
            return;
        };
        let seen = self.flow(&seg.t, None, out);
        // A direction whose stream is `Off` gives `stream::tcp_payload` nothing to do:
        // skip its flow lookup (most segments of bulk transfers).
        if seg.payload.is_empty() || seen.done || seen.direction_off {
            return;
        }
        let (key, dir) = (seen.key, seen.dir);
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let mut emit = Emit {
            pkt: &self.pkt,
            stats: &mut self.stats,
            out,
        };
        stream::tcp_payload(&seg, flow, dir, &self.limits, &mut emit);
    }

    /// Find or create the flow of packet `t` (ICMP: its type and code); emit the `flow`
    /// observation for a new direction. Returns where the packet stands in its flow.
    #[inline]
    fn flow(
        &mut self,
        t: &Tuple,
        icmp: Option<(u8, u8)>,
        out: &mut Vec<Observation<'static>>,
    ) -> Seen {
        let seen = self.flows.see(
            t,
            icmp,
            self.limits.max_flows,
            self.limits.flow_observations,
        );
        if let Some(cid) = seen.new_direction {
            let mut o = self.pkt.obs(t, "flow", None);
            o.community_id = Some(CommunityId::Flow(cid));
            out.push(o);
        }
        seen
    }

    /// The flow of a packet without ports (ICMP: its type and code).
    fn flow_only(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        icmp: Option<(u8, u8)>,
        out: &mut Vec<Observation<'static>>,
    ) {
        let t = Tuple {
            src,
            dst,
            sport: 0,
            dport: 0,
            proto,
        };
        self.flow(&t, icmp, out);
    }
}

/// The inner IP header a tunnel's first fragment carries in `head` (the first bytes of its
/// `proto` header: IP-in-IP, GRE, or UDP carrying VXLAN or Teredo), read but not decoded.
fn tunnelled_header(proto: u8, head: &[u8]) -> Option<ip::Partial<'_>> {
    let (l3, off) = match proto {
        4 => (L3::Ipv4, 0),
        41 => (L3::Ipv6, 0),
        47 => {
            let (pt, p) = link::gre_header(head).ok()?;
            link::gre_payload(head, pt, p).ok()?
        }
        17 => {
            let (sport, dport) = (be16(head, 0)?, be16(head, 2)?);
            let (l3, off) = link::udp_tunnel(sport, dport, head.get(8..)?)?;
            (l3, off + 8)
        }
        _ => return None,
    };
    let (l3, off) = if l3 == L3::Ether {
        ether_walk(head, off, None).ok()?
    } else {
        (l3, off)
    };
    match l3 {
        L3::Ipv4 => ip::header_only(false, head.get(off..)?),
        L3::Ipv6 => ip::header_only(true, head.get(off..)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::community::community_id;
    use crate::packet::flow::Flow;

    /// A raw IPv4 ICMP packet.
    fn icmp4(src: [u8; 4], dst: [u8; 4], typ: u8, code: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[typ, code, 0, 0, 0, 0, 0, 0]);
        p
    }

    fn flow_cids(packets: &[Vec<u8>]) -> Vec<(IpAddr, String)> {
        let mut d = PacketDecoder::new(DecoderLimits::default());
        let mut out = Vec::new();
        for p in packets {
            d.decode(LinkType::RAW, 0, p, Origin::None, &mut out);
        }
        out.iter()
            .filter(|o| o.dataset == "flow")
            .filter_map(|o| Some((o.source_ip?, o.community_id.as_ref()?.to_string())))
            .collect()
    }

    /// A flow-table slot (hash, key, flow) fills one 64-byte cache line (the table aligns
    /// its slots to 64; one byte more would double them).
    #[test]
    fn flow_slot_is_a_cache_line() {
        assert_eq!(std::mem::size_of::<Flow<App>>(), 16);
        assert_eq!(std::mem::size_of::<Option<(u64, FlowKey, Flow<App>)>>(), 64);
    }

    /// The reasons the IP, TCP and UDP header checks (etherparse's slices) give for each kind
    /// of malformed header, one packet each (the same reasons as the hand-written checks).
    #[test]
    fn malformed_headers_are_dropped_with_their_reason() {
        let v4 = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = icmp4([10, 0, 0, 1], [10, 0, 0, 2], 8, 0);
            f(&mut p);
            p
        };
        let l4 = |proto: u8, hdr: &[u8]| {
            v4(&|p| {
                p.truncate(20);
                p[9] = proto;
                p.extend_from_slice(hdr);
                p[3] = p.len() as u8;
            })
        };
        let mut tcp = vec![
            0, 80, 0, 81, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0,
        ];
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
        v6.extend_from_slice(&[0; 32]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (v4(&|p| p.truncate(19)), "ipv4: truncated header"),
            (v4(&|p| p[0] = 0x55), "ipv4: bad version"),
            (v4(&|p| p[0] = 0x44), "ipv4: bad length"),
            (v4(&|p| p[0] = 0x4f), "ipv4: bad length"),
            (v4(&|p| p[3] = 16), "ipv4: bad length"),
            (v4(&|p| p[3] = 40), "ipv4: truncated (snaplen)"),
            (l4(6, &tcp[..19]), "tcp: truncated header"),
            (
                l4(6, &{
                    tcp[12] = 0x40;
                    tcp.clone()
                }),
                "tcp: bad header length",
            ),
            (
                l4(6, &{
                    tcp[12] = 0x60;
                    tcp.clone()
                }),
                "tcp: bad header length",
            ),
            (l4(17, &[0, 53, 0, 53, 0, 8, 0]), "udp: truncated header"),
            (l4(17, &[0, 53, 0, 53, 0, 7, 0, 0]), "udp: bad length"),
            (v6[..39].to_vec(), "ipv6: truncated header"),
            (
                {
                    v6[0] = 0x40;
                    v6.clone()
                },
                "ipv6: bad version",
            ),
        ];
        for (ip, reason) in cases {
            // Behind Ethernet, which names the IP version (raw IP links take it from the header).
            let mut packet = vec![0; 12];
            packet.extend_from_slice(if reason.starts_with("ipv6") {
                &[0x86, 0xdd]
            } else {
                &[8, 0]
            });
            packet.extend_from_slice(&ip);
            let mut d = PacketDecoder::new(DecoderLimits::default());
            d.decode(
                LinkType::ETHERNET,
                0,
                &packet,
                Origin::None,
                &mut Vec::new(),
            );
            let dropped: Vec<_> = d.stats().dropped_by_reason.keys().copied().collect();
            assert_eq!(dropped, [reason], "{packet:02x?}");
        }
    }

    /// An ICMP or ICMPv6 message shorter than its 8-byte header (or an ICMP timestamp
    /// message of another length than 20 bytes) still has its flow, whose Community ID
    /// takes the type and code the message has (none under two bytes).
    #[test]
    fn short_icmp_messages_keep_their_flow() {
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (a6, b6) = (
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe; 16],
        );
        let cases = [
            (1u8, vec![], None),
            (1, vec![8], None),
            (1, vec![8, 0], Some((8u16, 0u16))),
            (1, vec![3, 1, 0, 0, 0, 0, 0], Some((3, 1))),
            (1, vec![13, 0, 0, 0, 0, 0, 0, 0], Some((13, 0))),
            (1, vec![14, 0, 0, 0, 0, 0, 0, 0, 0], Some((14, 0))),
            (58, vec![128], None),
            (58, vec![135, 0], Some((135, 0))),
            (58, vec![1, 4, 0, 0, 0], Some((1, 4))),
        ];
        for (proto, icmp, tc) in cases {
            let (packet, src, dst) = if proto == 1 {
                let mut p = icmp4(a, b, 0, 0);
                p.truncate(20);
                p.extend_from_slice(&icmp);
                p[3] = p.len() as u8;
                (p, IpAddr::from(a), IpAddr::from(b))
            } else {
                let mut p = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 64];
                p.extend_from_slice(&a6);
                p.extend_from_slice(&b6);
                p.extend_from_slice(&icmp);
                (p, IpAddr::from(a6), IpAddr::from(b6))
            };
            let want = community_id(src, dst, proto, tc);
            assert_eq!(flow_cids(&[packet]), vec![(src, want)], "{proto} {icmp:?}");
        }
    }

    /// Every direction of an ICMP flow reports the Community ID of the flow's first packet:
    /// its type decides the pairing, and for a type without a reply type its direction.
    #[test]
    fn icmp_flow_keeps_first_packets_community_id() {
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let ip = |x: [u8; 4]| IpAddr::from(x);
        // Destination unreachable (one-way) from b, then an echo request from a.
        let got = flow_cids(&[icmp4(b, a, 3, 1), icmp4(a, b, 8, 0)]);
        let want = community_id(ip(b), ip(a), 1, Some((3, 1)));
        assert_eq!(got, vec![(ip(b), want.clone()), (ip(a), want)]);
        // Echo request and reply: the same ID both ways, whichever comes first.
        let got = flow_cids(&[icmp4(a, b, 0, 0), icmp4(b, a, 8, 0)]);
        let want = community_id(ip(b), ip(a), 1, Some((8, 0)));
        assert_eq!(got, vec![(ip(a), want.clone()), (ip(b), want)]);
    }
}
