//! The per-worker packet decoder: [`PacketDecoder`], its bounds and counters. What it does
//! is split by layer: link layers, tunnels and IP in `packet::link`, flow keys and the flow
//! table's observations in `packet::flow`, TCP streams and the DNS / HTTP / TLS / QUIC
//! dispatch in `packet::stream`.

use super::capture::LinkType;
use super::flow::{Flow, FlowKey, Tuple};
use super::flowtable::FlowTable;
use super::frag::Reassembler;
use super::link::{be16, ether_walk, link_layer, L3};
use crate::observation::{Observation, Origin};
use etherparse::{Ipv4HeaderSlice, Ipv6Header, Ipv6HeaderSlice};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub use super::flow::flow_shard;

/// Bounds on the decoder's per-worker state.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderLimits {
    /// Flows tracked at once (per worker); older flows are evicted in bulk (two generations).
    pub max_flows: usize,
    /// Fragment bytes held for reassembly (per worker).
    pub max_frag_bytes: usize,
    /// Datagrams being reassembled at once (per worker).
    pub max_frag_datagrams: usize,
    /// Give up on an incomplete datagram after this long (capture time), nanoseconds.
    pub frag_timeout_ns: i64,
    /// Bytes buffered per flow direction for a ClientHello / server Certificate / HTTP head /
    /// QUIC CRYPTO data that spans segments or packets.
    pub tls_buffer_per_flow: usize,
    /// Bytes buffered per flow direction for DNS over TCP (a message is up to 64 KiB).
    pub dns_tcp_buffer: usize,
    /// Nested tunnels / encapsulations followed.
    pub max_depth: u8,
    /// Emit a `flow` observation for the first packet of each flow direction.
    pub flow_observations: bool,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_flows: 262_144,
            max_frag_bytes: 16 << 20,
            max_frag_datagrams: 8192,
            frag_timeout_ns: 30_000_000_000,
            tls_buffer_per_flow: 32 * 1024,
            dns_tcp_buffer: 65_537,
            max_depth: 6,
            flow_observations: true,
        }
    }
}

/// Counters of one decoder; [`DecodeStats::merge`] adds several workers up.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets given to `decode`.
    pub packets: u64,
    /// Captured bytes given to `decode`.
    pub bytes: u64,
    /// Observations produced.
    pub observations: u64,
    /// Packets (or layers) not decoded, by reason.
    pub dropped_by_reason: BTreeMap<&'static str, u64>,
    /// Packets that carry no IP (ARP, LLDP, STP, ...), not an error.
    pub non_ip: u64,
    /// Packets decoded through at least one tunnel.
    pub tunnelled: u64,
    /// Flow table entries evicted to keep within `max_flows`.
    pub flows_evicted: u64,
    /// Flows currently tracked (gauge; summed over workers).
    pub flows_active: u64,
    /// Fragments received.
    pub frag_fragments: u64,
    /// Datagrams reassembled.
    pub frag_reassembled: u64,
    /// Datagrams abandoned on timeout.
    pub frag_timeouts: u64,
    /// Fragment bytes currently held (gauge).
    pub frag_bytes_held: u64,
    /// Observations by dataset.
    pub observations_by_dataset: BTreeMap<&'static str, u64>,
}

impl DecodeStats {
    /// Add another worker's counters to these.
    pub fn merge(&mut self, o: &DecodeStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.observations += o.observations;
        for (k, v) in &o.dropped_by_reason {
            *self.dropped_by_reason.entry(k).or_default() += v;
        }
        for (k, v) in &o.observations_by_dataset {
            *self.observations_by_dataset.entry(k).or_default() += v;
        }
        self.non_ip += o.non_ip;
        self.tunnelled += o.tunnelled;
        self.flows_evicted += o.flows_evicted;
        self.flows_active += o.flows_active;
        self.frag_fragments += o.frag_fragments;
        self.frag_reassembled += o.frag_reassembled;
        self.frag_timeouts += o.frag_timeouts;
        self.frag_bytes_held += o.frag_bytes_held;
    }

    pub(super) fn drop(&mut self, reason: &'static str) {
        *self.dropped_by_reason.entry(reason).or_default() += 1;
    }
}

/// Per-worker decoder state: flows, fragments, TLS/TCP-DNS/HTTP buffers.
pub struct PacketDecoder {
    pub(super) limits: DecoderLimits,
    pub(super) stats: DecodeStats,
    pub(super) cur: FlowTable<FlowKey, Flow>,
    pub(super) old: FlowTable<FlowKey, Flow>,
    pub(super) frags: Reassembler,
    pub(super) ts: i64,
    pub(super) origin: Origin<'static>,
    pub(super) tunnelled: bool,
    /// Observations by dataset not yet added to `stats` (a few names, counted without the
    /// BTreeMap's string compares on every observation; folded in by [`PacketDecoder::stats`]).
    pub(super) by_dataset: Vec<(&'static str, u64)>,
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
            cur: FlowTable::default(),
            old: FlowTable::default(),
            frags,
            ts: 0,
            origin: Origin::None,
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
        self.stats.flows_active = (self.cur.len() + self.old.len()) as u64;
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
        self.cur.prefetch(&FlowKey::of(&t).0);
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
        self.ts = ts_ns;
        self.origin = origin;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::community::community_id;

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
