//! The per-worker packet decoder: link layers, tunnels, IP (with reassembly), TCP/UDP, the
//! flow table, and dispatch to the DNS / HTTP / TLS / QUIC parsers.

use super::capture::LinkType;
use super::community::FlowTuple;
use super::flowtable::FlowTable;
use super::frag::{FragKey, FragOutcome, Reassembler};
use super::{dns, http, quic, tls};
use crate::observation::{CommunityId, DnsAnswer, Observation, Origin};
use etherparse::err::{ipv4, ipv6};
use etherparse::{
    Ethernet2Header, Ethernet2HeaderSlice, Ipv4Header, Ipv4HeaderSlice, Ipv6Header,
    Ipv6HeaderSlice, SingleVlanHeader, SingleVlanHeaderSlice, TcpHeader, TcpHeaderSlice,
    UdpHeaderSlice,
};
use matcher::fxhash::FxHasher;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::net::IpAddr;

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

    fn drop(&mut self, reason: &'static str) {
        *self.dropped_by_reason.entry(reason).or_default() += 1;
    }
}

/// A canonical (direction-free) flow key, packed for the flow table: both addresses as 16
/// bytes (IPv4 in the last four), ports, protocol and family in one word. Comparing and
/// hashing it is a few word operations (the `IpAddr` enum pair cost a branchy compare and
/// byte-wise hashing on every packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    a: [u8; 16],
    b: [u8; 16],
    /// ports (a, b), protocol, family (bit 40: IPv6).
    rest: u64,
}

impl FlowKey {
    /// The canonical key of a packet's tuple, and the packet's direction in it (0: the
    /// source is `a`): the smaller (family, address, port) end first, as `IpAddr` orders.
    fn of(t: &Tuple) -> (Self, u8) {
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(v) => {
                let mut x = [0u8; 16];
                x[12..].copy_from_slice(&v.octets());
                x
            }
            IpAddr::V6(v) => v.octets(),
        };
        let (s, d) = (bytes(t.src), bytes(t.dst));
        // IPv4 sorts before IPv6; within a family the 16-byte forms compare as the
        // addresses do (big-endian integers), so this is `(src, sport) <= (dst, dport)`
        // without IpAddr's branchy comparison.
        let key = |ip: IpAddr, b: [u8; 16], port: u16| (ip.is_ipv6(), u128::from_be_bytes(b), port);
        let forward = key(t.src, s, t.sport) <= key(t.dst, d, t.dport);
        let (a, b, pa, pb, v6, dir) = if forward {
            (s, d, t.sport, t.dport, t.src.is_ipv6(), 0)
        } else {
            (d, s, t.dport, t.sport, t.dst.is_ipv6(), 1)
        };
        let rest =
            u64::from(pa) | u64::from(pb) << 16 | u64::from(t.proto) << 32 | u64::from(v6) << 40;
        (FlowKey { a, b, rest }, dir)
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for half in [&self.a, &self.b] {
            let (x, y) = half.split_at(8);
            let word = |s: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(s);
                u64::from_le_bytes(w)
            };
            h.write_u64(word(x));
            h.write_u64(word(y));
        }
        h.write_u64(self.rest);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    TlsClient,
    TlsServer,
    Dns,
    Http,
    Off,
}

/// The parsing state of one TCP stream direction (its [`Mode`] is kept in [`Flow::modes`]).
#[derive(Debug, Default)]
struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    skip: u64,
}

#[derive(Debug, Default)]
struct QuicState {
    orig_dcid: Vec<u8>,
    version: u32,
    crypto: Vec<(u64, Vec<u8>)>,
    bytes: usize,
    done: bool,
}

/// Application-layer state of a flow, allocated only when a direction has something to
/// parse (a TCP stream in a mode other than `Off`, QUIC Initials).
#[derive(Debug, Default)]
struct App {
    dirs: [Stream; 2],
    quic: Option<QuicState>,
    sni: Option<String>,
}

/// One flow-table entry, 16 bytes (a slot with its hash and key is 64).
#[derive(Debug)]
struct Flow {
    /// bit 0: a→b seen, bit 1: b→a seen, bit 2: the first packet was b→a
    /// ([`Flow::initiator`]), bit 3: nothing more to parse ([`Flow::done`]).
    bits: u8,
    /// Per direction (a→b, b→a): what its TCP stream carries, decided on its first payload.
    /// Kept here rather than in [`App`], so that the bulk of flows, whose streams carry
    /// nothing to parse, never allocate one.
    modes: [Mode; 2],
    app: Option<Box<App>>,
    /// ICMP flows only: the packet direction and (type, code) the flow's Community ID was
    /// first taken from. An ICMP flow's ID depends on its first packet's type (and, for a
    /// type without a reply type, on that packet's direction), and every direction of the
    /// flow reports that same ID. TCP/UDP IDs are symmetric in the tuple: nothing is kept.
    icmp_cid: Option<(u8, Option<(u8, u8)>)>,
}

impl Flow {
    const DONE: u8 = 8;

    /// A flow whose first packet went in direction `dir`.
    fn new(dir: u8) -> Self {
        Flow {
            bits: (dir & 1) << 2,
            modes: [Mode::Unknown; 2],
            app: None,
            icmp_cid: None,
        }
    }

    /// Direction of the first packet (0: a→b).
    fn initiator(&self) -> u8 {
        (self.bits >> 2) & 1
    }

    /// Nothing more to parse in this flow.
    fn done(&self) -> bool {
        self.bits & Self::DONE != 0
    }

    /// Mark direction `dir` seen; whether it was new.
    fn see(&mut self, dir: u8) -> bool {
        let bit = 1u8 << (dir & 1);
        let new = self.bits & bit == 0;
        self.bits |= bit;
        new
    }

    /// Stop parsing the flow when both directions are `Off` (its state is dropped).
    fn finish_if_off(&mut self) {
        if self.modes == [Mode::Off; 2] {
            self.bits |= Self::DONE;
            self.app = None;
        }
    }
}

/// The 5-tuple of one packet, in packet direction.
#[derive(Debug, Clone, Copy)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
}

/// Per-worker decoder state: flows, fragments, TLS/TCP-DNS/HTTP buffers.
pub struct PacketDecoder {
    limits: DecoderLimits,
    stats: DecodeStats,
    cur: FlowTable<FlowKey, Flow>,
    old: FlowTable<FlowKey, Flow>,
    frags: Reassembler,
    ts: i64,
    origin: Origin<'static>,
    tunnelled: bool,
    /// Observations by dataset not yet added to `stats` (a few names, counted without the
    /// BTreeMap's string compares on every observation; folded in by [`PacketDecoder::stats`]).
    by_dataset: Vec<(&'static str, u64)>,
}

fn transport_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospf",
        132 => "sctp",
        _ => return None,
    })
}

#[inline]
fn be16(d: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(p)?, *d.get(p + 1)?]))
}

#[inline]
fn be32(d: &[u8], p: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(p)?,
        *d.get(p + 1)?,
        *d.get(p + 2)?,
        *d.get(p + 3)?,
    ]))
}

/// Layer-3 payload kinds the link layers lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L3 {
    Ipv4,
    Ipv6,
    Ether,
    None,
}

/// Strip a link-layer header: returns what follows and where.
pub(crate) fn link_layer(link: LinkType, d: &[u8]) -> Result<(L3, usize), &'static str> {
    match link {
        LinkType::ETHERNET => Ok((L3::Ether, 0)),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => match d.first().map(|b| b >> 4) {
            Some(4) => Ok((L3::Ipv4, 0)),
            Some(6) => Ok((L3::Ipv6, 0)),
            Some(_) => Err("link: raw ip version"),
            None => Err("link: truncated"),
        },
        LinkType::NULL | LinkType::LOOP => {
            let f = d.get(..4).ok_or("link: truncated")?;
            let le = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            let be = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            let fam = if link == LinkType::LOOP || le > 0xffff {
                be
            } else {
                le
            };
            match fam {
                2 => Ok((L3::Ipv4, 4)),
                10 | 24 | 28 | 30 => Ok((L3::Ipv6, 4)),
                _ => Ok((L3::None, 4)),
            }
        }
        LinkType::PPP => {
            let mut p = 0;
            if d.get(..2) == Some(&[0xff, 0x03]) {
                p = 2;
            }
            ppp_proto(d, p)
        }
        LinkType::LINUX_SLL => {
            let t = be16(d, 14).ok_or("link: truncated")?;
            ethertype_l3(t, 16)
        }
        LinkType::LINUX_SLL2 => {
            let t = be16(d, 0).ok_or("link: truncated")?;
            ethertype_l3(t, 20)
        }
        LinkType::NFLOG => {
            let fam = *d.first().ok_or("link: truncated")?;
            let mut p = 4;
            while p + 4 <= d.len() {
                let len = usize::from(u16::from_le_bytes([d[p], d[p + 1]]));
                let t = u16::from_le_bytes([d[p + 2], d[p + 3]]);
                if len < 4 {
                    return Err("link: bad nflog tlv");
                }
                if t == 9 {
                    return match fam {
                        2 => Ok((L3::Ipv4, p + 4)),
                        10 => Ok((L3::Ipv6, p + 4)),
                        _ => Ok((L3::None, p + 4)),
                    };
                }
                p += len.div_ceil(4) * 4;
            }
            Ok((L3::None, d.len()))
        }
        _ => Err("link: unsupported link type"),
    }
}

fn ppp_proto(d: &[u8], mut p: usize) -> Result<(L3, usize), &'static str> {
    let b = *d.get(p).ok_or("link: truncated")?;
    let proto = if b & 1 == 1 {
        p += 1;
        u16::from(b)
    } else {
        let v = be16(d, p).ok_or("link: truncated")?;
        p += 2;
        v
    };
    Ok(match proto {
        0x21 => (L3::Ipv4, p),
        0x57 => (L3::Ipv6, p),
        _ => (L3::None, p),
    })
}

fn ethertype_l3(t: u16, off: usize) -> Result<(L3, usize), &'static str> {
    Ok(match t {
        0x0800 => (L3::Ipv4, off),
        0x86dd => (L3::Ipv6, off),
        // VLAN etc. inside SLL: let the Ethernet walker continue from the type field.
        0x8100 | 0x88a8 | 0x9100 | 0x8847 | 0x8848 | 0x8864 => (L3::Ether, off),
        _ => (L3::None, off),
    })
}

/// The ethertype of the Ethernet II header at `start` (etherparse) and the offset after it.
fn ethernet2(
    d: &[u8],
    start: usize,
    truncated: &'static str,
) -> Result<(u16, usize), &'static str> {
    let eth = d
        .get(start..)
        .and_then(|e| Ethernet2HeaderSlice::from_slice(e).ok());
    Ok((
        eth.ok_or(truncated)?.ether_type().0,
        start + Ethernet2Header::LEN,
    ))
}

/// Walk an Ethernet header (or, with `typ` given, continue after an ethertype) through
/// VLAN/QinQ, MPLS and PPPoE to the IP header.
pub(crate) fn ether_walk(
    d: &[u8],
    start: usize,
    typ: Option<u16>,
) -> Result<(L3, usize), &'static str> {
    let (mut t, mut p) = match typ {
        Some(t) => (t, start),
        None => ethernet2(d, start, "eth: truncated")?,
    };
    for _ in 0..8 {
        match t {
            0x0800 => return Ok((L3::Ipv4, p)),
            0x86dd => return Ok((L3::Ipv6, p)),
            0x8100 | 0x88a8 | 0x9100 => {
                let vlan = d
                    .get(p..)
                    .and_then(|v| SingleVlanHeaderSlice::from_slice(v).ok());
                t = vlan.ok_or("vlan: truncated")?.ether_type().0;
                p += SingleVlanHeader::LEN;
            }
            0x8847 | 0x8848 => {
                loop {
                    let l = be32(d, p).ok_or("mpls: truncated")?;
                    p += 4;
                    if l & 0x100 != 0 {
                        break;
                    }
                }
                match d.get(p).map(|b| b >> 4) {
                    Some(4) => return Ok((L3::Ipv4, p)),
                    Some(6) => return Ok((L3::Ipv6, p)),
                    Some(0) => {
                        // pseudowire control word, then Ethernet
                        (t, p) = ethernet2(d, p + 4, "mpls: truncated")?;
                    }
                    _ => return Err("mpls: unknown payload"),
                }
            }
            0x8864 => {
                // PPPoE session: ver/type, code, session id, length, then PPP protocol.
                return ppp_proto(d, p + 6);
            }
            _ => return Ok((L3::None, p)),
        }
    }
    Err("eth: too many tags")
}

/// Symmetric shard hash of the outermost IP pair of a packet.
///
/// The outermost pair is the same for every fragment of a datagram and for every packet of
/// a tunnelled flow, so all per-flow state (streams, QUIC CRYPTO data, reassembly) stays on
/// one worker. (Hashing inner 5-tuples would balance tunnel-heavy captures better but splits
/// state whenever only some packets of a flow are outer-fragmented.)
pub fn flow_shard(link: LinkType, data: &[u8]) -> u64 {
    let Ok((mut l3, mut off)) = link_layer(link, data) else {
        return 0;
    };
    if l3 == L3::Ether {
        match ether_walk(data, off, None) {
            Ok((l, o)) => {
                l3 = l;
                off = o;
            }
            Err(_) => return 0,
        }
    }
    let Some(d) = data.get(off..) else { return 0 };
    let (a, b) = match l3 {
        L3::Ipv4 if d.len() >= 20 => (&d[12..16], &d[16..20]),
        L3::Ipv6 if d.len() >= 40 => (&d[8..24], &d[24..40]),
        _ => return 0,
    };
    // As big-endian integers the addresses order as the slices do (no memcmp call).
    let le = match (<[u8; 4]>::try_from(a), <[u8; 4]>::try_from(b)) {
        (Ok(x), Ok(y)) => u32::from_be_bytes(x) <= u32::from_be_bytes(y),
        _ => match (<[u8; 16]>::try_from(a), <[u8; 16]>::try_from(b)) {
            (Ok(x), Ok(y)) => u128::from_be_bytes(x) <= u128::from_be_bytes(y),
            _ => a <= b,
        },
    };
    let (x, y) = if le { (a, b) } else { (b, a) };
    let mut h = FxHasher::default();
    h.write(x);
    h.write(y);
    let v = h.finish();
    v ^ (v >> 32)
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
        match l3 {
            L3::Ipv4 => self.ipv4(ip, depth, out),
            L3::Ipv6 => self.ipv6(ip, depth, out),
            _ => self.stats.non_ip += 1,
        }
    }

    fn ipv4(&mut self, d: &[u8], depth: u8, out: &mut Vec<Observation<'static>>) {
        if d.len() < Ipv4Header::MIN_LEN {
            self.stats.drop("ipv4: truncated header");
            return;
        }
        let h = match Ipv4HeaderSlice::from_slice(d) {
            Ok(h) => h,
            Err(ipv4::HeaderSliceError::Content(ipv4::HeaderError::UnexpectedVersion {
                ..
            })) => {
                self.stats.drop("ipv4: bad version");
                return;
            }
            // The IHL is below 5 or runs past the captured bytes.
            Err(_) => {
                self.stats.drop("ipv4: bad length");
                return;
            }
        };
        let ihl = h.slice().len();
        let total = usize::from(h.total_len());
        if total < ihl {
            self.stats.drop("ipv4: bad length");
            return;
        }
        let end = if total > d.len() {
            // snap length cut: decode what we have
            self.stats.drop("ipv4: truncated (snaplen)");
            d.len()
        } else {
            total
        };
        let src = IpAddr::V4(h.source_addr());
        let dst = IpAddr::V4(h.destination_addr());
        let proto = h.protocol().0;
        let more = h.more_fragments();
        let foff = usize::from(h.fragments_offset().value()) * 8;
        let payload = &d[ihl..end];
        if more || foff != 0 {
            self.stats.frag_fragments += 1;
            let key = FragKey {
                src,
                dst,
                id: u32::from(h.identification()),
                proto,
            };
            match self.frags.add(key, self.ts, foff, more, proto, payload) {
                FragOutcome::Pending => {}
                FragOutcome::Dropped(r) => self.stats.drop(r),
                FragOutcome::Complete(p, buf) => self.l4(src, dst, p, &buf, depth, out),
            }
            return;
        }
        self.l4(src, dst, proto, payload, depth, out);
    }

    fn ipv6(&mut self, d: &[u8], depth: u8, out: &mut Vec<Observation<'static>>) {
        let h = match Ipv6HeaderSlice::from_slice(d) {
            Ok(h) => h,
            Err(ipv6::HeaderSliceError::Len(_)) => {
                self.stats.drop("ipv6: truncated header");
                return;
            }
            Err(ipv6::HeaderSliceError::Content(_)) => {
                self.stats.drop("ipv6: bad version");
                return;
            }
        };
        let plen = usize::from(h.payload_length());
        let end = if 40 + plen > d.len() {
            self.stats.drop("ipv6: truncated (snaplen)");
            d.len()
        } else if plen == 0 {
            // jumbogram or bogus: use what was captured
            d.len()
        } else {
            40 + plen
        };
        let src = IpAddr::V6(h.source_addr());
        let dst = IpAddr::V6(h.destination_addr());
        // Extension headers are walked here: etherparse stops at mobility, HIP and shim6
        // headers, and fragments go to our own reassembly policy.
        let mut nh = h.next_header().0;
        let mut p = Ipv6Header::LEN;
        for _ in 0..16 {
            match nh {
                0 | 43 | 60 | 135 | 139 | 140 => {
                    let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                        self.stats.drop("ipv6: truncated extension");
                        return;
                    };
                    nh = *n;
                    p += (usize::from(*l) + 1) * 8;
                }
                51 => {
                    let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                        self.stats.drop("ipv6: truncated extension");
                        return;
                    };
                    nh = *n;
                    p += (usize::from(*l) + 2) * 4;
                }
                44 => {
                    let Some(fh) = d.get(p..p + 8) else {
                        self.stats.drop("ipv6: truncated extension");
                        return;
                    };
                    let next = fh[0];
                    let fo = u16::from_be_bytes([fh[2], fh[3]]);
                    let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
                    let more = fo & 1 != 0;
                    let foff = usize::from(fo >> 3) * 8;
                    let Some(payload) = d.get(p + 8..end) else {
                        self.stats.drop("ipv6: bad fragment length");
                        return;
                    };
                    self.stats.frag_fragments += 1;
                    if !more && foff == 0 {
                        // atomic fragment
                        self.l4(src, dst, next, payload, depth, out);
                        return;
                    }
                    let key = FragKey {
                        src,
                        dst,
                        id,
                        proto: 0,
                    };
                    match self.frags.add(key, self.ts, foff, more, next, payload) {
                        FragOutcome::Pending => {}
                        FragOutcome::Dropped(r) => self.stats.drop(r),
                        FragOutcome::Complete(n, buf) => {
                            self.ipv6_upper(src, dst, n, &buf, depth, out)
                        }
                    }
                    return;
                }
                59 => {
                    // No next header (Teredo bubbles): the endpoints still count.
                    self.flow_only(src, dst, 59, None, out);
                    return;
                }
                _ => break,
            }
        }
        let Some(payload) = d.get(p..end) else {
            self.stats.drop("ipv6: extension past end");
            return;
        };
        self.l4(src, dst, nh, payload, depth, out);
    }

    /// After IPv6 reassembly: the unfragmentable part is gone, but extension headers after
    /// the fragment header (destination options) may remain.
    fn ipv6_upper(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        mut nh: u8,
        d: &[u8],
        depth: u8,
        out: &mut Vec<Observation<'static>>,
    ) {
        let mut p = 0;
        for _ in 0..8 {
            match nh {
                0 | 43 | 60 => {
                    let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                        self.stats.drop("ipv6: truncated extension");
                        return;
                    };
                    nh = *n;
                    p += (usize::from(*l) + 1) * 8;
                }
                _ => break,
            }
        }
        if let Some(payload) = d.get(p..) {
            self.l4(src, dst, nh, payload, depth, out);
        }
    }

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
                let ports = match (d.first(), d.get(1)) {
                    (Some(t), Some(c)) => Some((*t, *c)),
                    _ => None,
                };
                self.flow_only(src, dst, proto, ports, out);
            }
            _ => self.flow_only(src, dst, proto, None, out),
        }
    }

    fn gre(&mut self, d: &[u8], depth: u8, out: &mut Vec<Observation<'static>>) {
        let (Some(fl), Some(pt)) = (be16(d, 0), be16(d, 2)) else {
            self.stats.drop("gre: truncated");
            return;
        };
        let ver = fl & 7;
        let mut p = 4;
        if ver == 0 {
            if fl & 0x4000 != 0 {
                self.stats.drop("gre: source routing unsupported");
                return;
            }
            for bit in [0x8000u16, 0x2000, 0x1000] {
                if fl & bit != 0 {
                    p += 4;
                }
            }
        } else if ver == 1 {
            // Enhanced GRE (PPTP): key always present; sequence (S) and ack (A) optional.
            p += 4;
            if fl & 0x1000 != 0 {
                p += 4;
            }
            if fl & 0x0080 != 0 {
                p += 4;
            }
        } else {
            self.stats.drop("gre: unknown version");
            return;
        }
        if p > d.len() {
            self.stats.drop("gre: truncated");
            return;
        }
        self.tunnelled = true;
        match pt {
            0x0800 => self.l3(L3::Ipv4, d, p, depth + 1, out),
            0x86dd => self.l3(L3::Ipv6, d, p, depth + 1, out),
            0x6558 => self.l3(L3::Ether, d, p, depth + 1, out),
            0x8847 | 0x8848 | 0x8100 => match ether_walk(d, p, Some(pt)) {
                Ok((l3, o)) => self.l3(l3, d, o, depth + 1, out),
                Err(r) => self.stats.drop(r),
            },
            0x88be => {
                // ERSPAN type II: 8-byte header, then the mirrored Ethernet frame.
                self.l3(L3::Ether, d, p + 8, depth + 1, out)
            }
            0x22eb => {
                // ERSPAN type III: 12-byte header (+8 platform-specific if O bit).
                let o = d.get(p + 11).map_or(0, |b| if b & 1 != 0 { 8 } else { 0 });
                self.l3(L3::Ether, d, p + 12 + o, depth + 1, out)
            }
            0x880b => {
                let mut q = p;
                if d.get(q..q + 2) == Some(&[0xff, 0x03]) {
                    q += 2;
                }
                match ppp_proto(d, q) {
                    Ok((l3, o)) => self.l3(l3, d, o, depth + 1, out),
                    Err(r) => self.stats.drop(r),
                }
            }
            _ => self.stats.drop("gre: unknown payload"),
        }
    }

    /// Find or create the flow; emit the flow observation for a new direction.
    fn flow(
        &mut self,
        t: &Tuple,
        icmp: Option<(u8, u8)>,
        out: &mut Vec<Observation<'static>>,
    ) -> (FlowKey, u8, bool) {
        let (key, dir) = FlowKey::of(t);
        let mut done = false;
        let emit = self.limits.flow_observations;
        let mut cid = None;
        if let Some(f) = self.cur.get_mut(&key) {
            if f.see(dir) && emit {
                cid = Some(Self::cid(f, t, dir, icmp));
            }
            done = f.done();
        } else {
            let mut f = self.old.remove(&key).unwrap_or_else(|| Flow::new(dir));
            if f.see(dir) && emit {
                cid = Some(Self::cid(&mut f, t, dir, icmp));
            }
            if self.cur.len() >= self.limits.max_flows / 2 {
                self.stats.flows_evicted += self.old.len() as u64;
                // The evicted generation's table is reused (cleared, capacity kept): no
                // regrowth and no fresh pages for every generation.
                self.old.clear();
                std::mem::swap(&mut self.old, &mut self.cur);
            }
            self.cur.insert(key, f);
        }
        if let Some(cid) = cid {
            let mut o = self.obs(t, "flow", None);
            o.community_id = Some(CommunityId::Flow(cid));
            out.push(o);
        }
        (key, dir, done)
    }

    /// What the Community ID of packet `t` (direction `dir` of flow `f`) is computed from
    /// when it is rendered. The same for every packet of a flow: TCP/UDP/SCTP and
    /// port-less tuples hash the same either way round; an ICMP flow keeps the tuple of
    /// the packet it was first taken from (`Flow::icmp_cid`).
    fn cid(f: &mut Flow, t: &Tuple, dir: u8, icmp: Option<(u8, u8)>) -> FlowTuple {
        if t.proto == 1 || t.proto == 58 {
            let (first, tc) = *f.icmp_cid.get_or_insert((dir, icmp));
            let (src, dst) = if first == dir {
                (t.src, t.dst)
            } else {
                (t.dst, t.src)
            };
            return FlowTuple {
                src,
                dst,
                proto: t.proto,
                ports: tc.map(|(ty, code)| (u16::from(ty), u16::from(code))),
            };
        }
        Self::port_cid(t)
    }

    /// The Community ID tuple of a TCP/UDP/SCTP packet or one of a protocol without ports.
    fn port_cid(t: &Tuple) -> FlowTuple {
        let has_ports = t.proto == 6 || t.proto == 17 || t.proto == 132;
        FlowTuple {
            src: t.src,
            dst: t.dst,
            proto: t.proto,
            ports: has_ports.then_some((t.sport, t.dport)),
        }
    }

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

    fn obs(
        &self,
        t: &Tuple,
        dataset: &'static str,
        protocol: Option<&'static str>,
    ) -> Observation<'static> {
        let has_ports = t.proto == 6 || t.proto == 17 || t.proto == 132;
        Observation {
            timestamp_ns: Some(self.ts),
            dataset,
            source_ip: Some(t.src),
            destination_ip: Some(t.dst),
            source_port: has_ports.then_some(t.sport),
            destination_port: has_ports.then_some(t.dport),
            transport: transport_name(t.proto),
            protocol,
            origin: self.origin.clone(),
            ..Default::default()
        }
    }

    /// An application-layer observation (DNS, HTTP, TLS, QUIC: TCP or UDP) of packet `t`.
    fn app_obs(
        &self,
        t: &Tuple,
        dataset: &'static str,
        protocol: &'static str,
    ) -> Observation<'static> {
        let mut o = self.obs(t, dataset, Some(protocol));
        o.community_id = Some(CommunityId::Flow(Self::port_cid(t)));
        o
    }

    fn udp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        d: &[u8],
        depth: u8,
        out: &mut Vec<Observation<'static>>,
    ) {
        // A header whose checksum is cut off is truncated too (found by the pkt_decode fuzz
        // target).
        let Ok(h) = UdpHeaderSlice::from_slice(d) else {
            self.stats.drop("udp: truncated header");
            return;
        };
        let (sport, dport) = (h.source_port(), h.destination_port());
        let ulen = usize::from(h.length());
        let payload = if ulen < 8 {
            self.stats.drop("udp: bad length");
            return;
        } else if ulen > d.len() {
            self.stats.drop("udp: truncated (snaplen)");
            &d[8..]
        } else {
            &d[8..ulen]
        };
        let t = Tuple {
            src,
            dst,
            sport,
            dport,
            proto: 17,
        };
        let (key, dir, _) = self.flow(&t, None, out);
        // Tunnels carried in UDP.
        if (dport == 4789 || dport == 8472) && payload.len() >= 8 && payload[0] & 0x08 != 0 {
            self.tunnelled = true;
            self.l3(L3::Ether, payload, 8, depth + 1, out);
            return;
        }
        // Teredo: on its port, or (like Zeek) on any port when the payload is an IPv6
        // packet of exactly the datagram's length with a Teredo (2001::/32) endpoint.
        if let Some(off) = teredo_offset(payload) {
            let teredo_addr = |o: usize| payload.get(o..o + 4) == Some(&[0x20, 0x01, 0x00, 0x00]);
            if sport == 3544 || dport == 3544 || teredo_addr(off + 8) || teredo_addr(off + 24) {
                self.tunnelled = true;
                self.l3(L3::Ipv6, payload, off, depth + 1, out);
                return;
            }
        }
        if sport == 53 || dport == 53 {
            self.dns_msg(&t, payload, out);
            return;
        }
        if payload.len() >= 7 && payload[0] & 0xc0 == 0xc0 {
            let v = be32(payload, 1).unwrap_or(0);
            if v == quic::V1 || v == quic::V2 {
                self.quic(&t, key, dir, payload, out);
            }
        }
    }

    fn dns_msg(&mut self, t: &Tuple, msg: &[u8], out: &mut Vec<Observation<'static>>) {
        match dns::parse(msg) {
            Ok(m) => {
                let mut o = self.app_obs(t, "dns", "dns");
                o.dns_question_type = m.qname.as_ref().map(|_| dns::type_name(m.qtype));
                o.dns_question_name = m.qname.map(Cow::Owned);
                o.dns_answers = m
                    .answers
                    .into_iter()
                    .map(|(t, data)| DnsAnswer {
                        rtype: dns::type_name(t),
                        data: Cow::Owned(data),
                    })
                    .collect();
                out.push(o);
            }
            Err(e) => self.stats.drop(e.reason()),
        }
    }

    fn quic(
        &mut self,
        t: &Tuple,
        key: FlowKey,
        dir: u8,
        d: &[u8],
        out: &mut Vec<Observation<'static>>,
    ) {
        let max = self.limits.tls_buffer_per_flow;
        let Some(flow) = self.cur.get_mut(&key) else {
            return;
        };
        if flow.done() || flow.initiator() != dir {
            return;
        }
        let app = flow.app.get_or_insert_with(Box::default);
        let mut st = app.quic.take().unwrap_or_default();
        if st.done {
            app.quic = Some(st);
            return;
        }
        let mut start = 0;
        let mut err: Option<&'static str> = None;
        while start < d.len() {
            let h = match quic::long_header(d, start) {
                Ok(h) => h,
                Err(e) => {
                    if start == 0 {
                        err = Some(e.reason());
                    }
                    break;
                }
            };
            if h.initial {
                if st.orig_dcid.is_empty() {
                    st.orig_dcid = h.dcid.to_vec();
                    st.version = h.version;
                }
                let mut ok = false;
                for dc in [st.orig_dcid.clone(), h.dcid.to_vec()] {
                    let Some(keys) = quic::InitialKeys::client(h.version, &dc) else {
                        continue;
                    };
                    let mut frames = Vec::new();
                    match quic::decrypt_initial(d, start, &h, &keys, &mut frames) {
                        Ok(()) => {
                            for f in frames {
                                st.bytes += f.1.len();
                                st.crypto.push(f);
                            }
                            ok = true;
                            break;
                        }
                        Err(e) => err = Some(e.reason()),
                    }
                    if dc == h.dcid {
                        break;
                    }
                }
                if ok {
                    err = None;
                }
            }
            if h.end <= start {
                break;
            }
            start = h.end;
        }
        if let Some(r) = err {
            self.stats.drop(r);
        }
        if st.bytes > max {
            self.stats.drop("quic: crypto buffer overflow");
            st.done = true;
            st.crypto = Vec::new();
        }
        let data = quic::assemble(&st.crypto, max);
        let mut result = None;
        if data.len() >= 4 {
            if data[0] != 1 {
                self.stats.drop("quic: crypto is not a client hello");
                st.done = true;
            } else {
                let l =
                    usize::from(data[1]) << 16 | usize::from(data[2]) << 8 | usize::from(data[3]);
                if let Some(body) = data.get(4..4 + l) {
                    st.done = true;
                    result = Some(tls::parse_client_hello(body));
                }
            }
        }
        if st.done {
            st.crypto = Vec::new();
        }
        app.quic = Some(st);
        match result {
            Some(Ok(ch)) => {
                let mut o = self.app_obs(t, "tls", "quic");
                o.ja3 = Some(tls::ja3(&ch).into());
                o.ja4 = Some(tls::ja4(&ch, true).into());
                o.tls_sni = ch.sni.map(Cow::Owned);
                out.push(o);
            }
            Some(Err(e)) => self.stats.drop(e.reason()),
            None => {}
        }
    }

    fn tcp(&mut self, src: IpAddr, dst: IpAddr, d: &[u8], out: &mut Vec<Observation<'static>>) {
        if d.len() < TcpHeader::MIN_LEN {
            self.stats.drop("tcp: truncated header");
            return;
        }
        // The data offset is below 5 or runs past the captured bytes.
        let Ok(h) = TcpHeaderSlice::from_slice(d) else {
            self.stats.drop("tcp: bad header length");
            return;
        };
        let (sport, dport, seq) = (h.source_port(), h.destination_port(), h.sequence_number());
        let payload = &d[h.slice().len()..];
        let t = Tuple {
            src,
            dst,
            sport,
            dport,
            proto: 6,
        };
        let (key, dir, done) = self.flow(&t, None, out);
        if payload.is_empty() || done {
            return;
        }
        let lim = self.limits.tls_buffer_per_flow;
        let dns_lim = self.limits.dns_tcp_buffer;
        let Some(flow) = self.cur.get_mut(&key) else {
            return;
        };
        if flow.done() {
            return;
        }
        let d = usize::from(dir & 1);
        let mut mode = flow.modes[d];
        if mode == Mode::Off {
            return;
        }
        if mode == Mode::Unknown {
            mode = if payload.len() >= 6 && payload[0] == 22 && payload[1] == 3 && payload[5] == 1 {
                Mode::TlsClient
            } else if payload.len() >= 6 && payload[0] == 22 && payload[1] == 3 && payload[5] == 2 {
                Mode::TlsServer
            } else if sport == 53 || dport == 53 {
                Mode::Dns
            } else if http::looks_like_request(payload) {
                Mode::Http
            } else {
                Mode::Off
            };
            flow.modes[d] = mode;
            if mode == Mode::Off {
                // Both directions decided and nothing to parse: stop looking at this flow.
                flow.finish_if_off();
                return;
            }
        }
        let app = flow.app.get_or_insert_with(Box::default);
        let st = &mut app.dirs[d];
        // Append in sequence order; retransmitted bytes skipped; a gap ends the stream for
        // length-framed protocols (HTTP resynchronises on the next request line).
        let cap = if mode == Mode::Dns { dns_lim } else { lim };
        let mut data_start = 0usize;
        match st.next_seq {
            None => st.next_seq = Some(seq.wrapping_add(payload.len() as u32)),
            Some(n) => {
                let diff = seq.wrapping_sub(n) as i32;
                if diff < 0 {
                    let skip = diff.unsigned_abs() as usize;
                    if skip >= payload.len() {
                        return;
                    }
                    data_start = skip;
                    st.next_seq = Some(seq.wrapping_add(payload.len() as u32));
                } else if diff > 0 {
                    st.buf.clear();
                    st.skip = 0;
                    st.next_seq = Some(seq.wrapping_add(payload.len() as u32));
                    if mode != Mode::Http {
                        flow.modes[d] = Mode::Off;
                        self.stats.drop("tcp: gap in stream");
                        return;
                    }
                } else {
                    st.next_seq = Some(seq.wrapping_add(payload.len() as u32));
                }
            }
        }
        let seg = &payload[data_start..];
        // HTTP body skipping without buffering.
        let mut seg = seg;
        if mode == Mode::Http && st.skip > 0 && st.buf.is_empty() {
            let n = (st.skip as usize).min(seg.len());
            st.skip -= n as u64;
            seg = &seg[n..];
            if seg.is_empty() {
                return;
            }
        }
        let mut buf = std::mem::take(&mut st.buf);
        let work: &[u8] = if buf.is_empty() {
            seg
        } else {
            buf.extend_from_slice(seg);
            &buf
        };
        let sni = app.sni.clone();
        let (consumed, new_mode, skip, events) = parse_stream(mode, work, st.skip, lim);
        let rest = work.get(consumed..).unwrap_or(&[]);
        let rest_len = rest.len();
        let mut keep = Vec::new();
        if new_mode != Mode::Off && rest_len > 0 {
            if rest_len > cap {
                self.stats.drop(if mode == Mode::Dns {
                    "dns: tcp buffer overflow"
                } else {
                    "tls: buffer overflow"
                });
            } else {
                keep = rest.to_vec();
            }
        }
        buf.clear();
        let (mut final_mode, mut final_keep) = (new_mode, keep);
        if final_mode != Mode::Off && rest_len > cap {
            final_mode = Mode::Off;
            final_keep = Vec::new();
        }
        let st = &mut app.dirs[d];
        flow.modes[d] = final_mode;
        st.buf = final_keep;
        st.skip = skip;
        let mut new_sni = None;
        for ev in events {
            match ev {
                StreamEvent::Dns(m) => {
                    let mut o = self.app_obs(&t, "dns", "dns");
                    o.dns_question_type = m.qname.as_ref().map(|_| dns::type_name(m.qtype));
                    o.dns_question_name = m.qname.map(Cow::Owned);
                    o.dns_answers = m
                        .answers
                        .into_iter()
                        .map(|(t, data)| DnsAnswer {
                            rtype: dns::type_name(t),
                            data: Cow::Owned(data),
                        })
                        .collect();
                    out.push(o);
                }
                StreamEvent::Http(h) => {
                    let mut o = self.app_obs(&t, "http", "http");
                    let host = h.host.clone().unwrap_or_else(|| {
                        let ip = match t.dst {
                            IpAddr::V6(a) => format!("[{a}]"),
                            a => a.to_string(),
                        };
                        if t.dport == 80 {
                            ip
                        } else {
                            format!("{ip}:{}", t.dport)
                        }
                    });
                    let domain = http::host_domain(&host).to_string();
                    let full = if h.uri.starts_with("http://") || h.uri.starts_with("https://") {
                        h.uri.clone()
                    } else if h.method == "CONNECT" && !h.uri.starts_with('/') {
                        format!("https://{}", h.uri)
                    } else if h.uri.starts_with('/') {
                        format!("http://{host}{}", h.uri)
                    } else {
                        format!("http://{host}/{}", h.uri)
                    };
                    let path = full
                        .split_once("://")
                        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
                        .map(|p| p.split(['?', '#']).next().unwrap_or(p).to_string());
                    o.url_full = Some(full.into());
                    o.url_domain = Some(domain.into());
                    o.url_path = path.map(Cow::Owned);
                    o.http_method = Some(h.method.into());
                    o.user_agent = h.user_agent.map(Cow::Owned);
                    out.push(o);
                }
                StreamEvent::ClientHello(ch) => {
                    let mut o = self.app_obs(&t, "tls", "tls");
                    o.ja3 = Some(tls::ja3(&ch).into());
                    o.ja4 = Some(tls::ja4(&ch, false).into());
                    new_sni = ch.sni.clone();
                    o.tls_sni = ch.sni.map(Cow::Owned);
                    out.push(o);
                }
                StreamEvent::ServerCert(sha1) => {
                    let mut o = self.app_obs(&t, "tls", "tls");
                    o.tls_server_sha1 = Some(sha1.into());
                    o.tls_sni = sni.clone().map(Cow::Owned);
                    out.push(o);
                }
                StreamEvent::Error(r) => self.stats.drop(r),
            }
        }
        if let Some(s) = new_sni {
            if let Some(f) = self.cur.get_mut(&key) {
                if let Some(app) = f.app.as_mut() {
                    app.sni = Some(s);
                }
            }
        }
        if let Some(f) = self.cur.get_mut(&key) {
            if f.app.is_some() {
                f.finish_if_off();
            }
        }
    }
}

/// An owned HTTP request head (the stream buffer does not outlive parsing).
#[derive(Debug)]
struct OwnedHttp {
    method: String,
    uri: String,
    host: Option<String>,
    user_agent: Option<String>,
}

#[derive(Debug)]
enum StreamEvent {
    Dns(dns::DnsMessage),
    Http(OwnedHttp),
    ClientHello(tls::ClientHello),
    ServerCert(String),
    Error(&'static str),
}

/// Parse what a stream direction has accumulated. Returns (bytes consumed, next mode,
/// HTTP body bytes still to skip, events).
fn parse_stream(
    mode: Mode,
    data: &[u8],
    mut skip: u64,
    max: usize,
) -> (usize, Mode, u64, Vec<StreamEvent>) {
    let mut ev = Vec::new();
    match mode {
        Mode::Dns => {
            let mut p = 0;
            while let Some(l) = be16(data, p) {
                let l = usize::from(l);
                let Some(msg) = data.get(p + 2..p + 2 + l) else {
                    break;
                };
                match dns::parse(msg) {
                    Ok(m) => ev.push(StreamEvent::Dns(m)),
                    Err(e) => ev.push(StreamEvent::Error(e.reason())),
                }
                p += 2 + l;
            }
            (p, Mode::Dns, 0, ev)
        }
        Mode::Http => {
            let mut p = 0;
            loop {
                if skip > 0 {
                    let n = (skip as usize).min(data.len() - p);
                    skip -= n as u64;
                    p += n;
                }
                if p >= data.len() {
                    return (p, Mode::Http, skip, ev);
                }
                match http::parse_request(&data[p..]) {
                    http::HttpParse::Request(r) => {
                        ev.push(StreamEvent::Http(OwnedHttp {
                            method: r.method.to_string(),
                            uri: r.uri.to_string(),
                            host: r.host.map(str::to_string),
                            user_agent: r.user_agent.map(str::to_string),
                        }));
                        p += r.head_len;
                        skip = r.content_length.unwrap_or(0);
                    }
                    http::HttpParse::Incomplete => return (p, Mode::Http, skip, ev),
                    http::HttpParse::NotHttp => return (data.len(), Mode::Http, 0, ev),
                }
            }
        }
        Mode::TlsClient => match tls::scan_handshake(data, max) {
            Ok(scan) => {
                if let Some((_, body)) = scan.messages.iter().find(|m| m.0 == 1) {
                    match tls::parse_client_hello(body) {
                        Ok(ch) => ev.push(StreamEvent::ClientHello(ch)),
                        Err(e) => ev.push(StreamEvent::Error(e.reason())),
                    }
                    (data.len(), Mode::Off, 0, ev)
                } else if scan.ended || !scan.messages.is_empty() {
                    ev.push(StreamEvent::Error("tls: no client hello"));
                    (data.len(), Mode::Off, 0, ev)
                } else {
                    (0, Mode::TlsClient, 0, ev)
                }
            }
            Err(e) => {
                ev.push(StreamEvent::Error(e.reason()));
                (data.len(), Mode::Off, 0, ev)
            }
        },
        Mode::TlsServer => match tls::scan_handshake(data, max) {
            Ok(scan) => {
                let mut version = None;
                for (t, body) in &scan.messages {
                    match *t {
                        2 => match tls::server_hello_version(body) {
                            Ok(v) => version = Some(v),
                            Err(e) => {
                                ev.push(StreamEvent::Error(e.reason()));
                                return (data.len(), Mode::Off, 0, ev);
                            }
                        },
                        11 => {
                            if version.is_some_and(|v| v <= 0x0303) {
                                match tls::first_cert_sha1(body) {
                                    Ok(h) => ev.push(StreamEvent::ServerCert(h)),
                                    Err(e) => ev.push(StreamEvent::Error(e.reason())),
                                }
                            }
                            return (data.len(), Mode::Off, 0, ev);
                        }
                        14 => return (data.len(), Mode::Off, 0, ev),
                        _ => {}
                    }
                }
                if version.is_some_and(|v| v > 0x0303) || scan.ended {
                    (data.len(), Mode::Off, 0, ev)
                } else {
                    (0, Mode::TlsServer, 0, ev)
                }
            }
            Err(e) => {
                ev.push(StreamEvent::Error(e.reason()));
                (data.len(), Mode::Off, 0, ev)
            }
        },
        Mode::Unknown | Mode::Off => (data.len(), Mode::Off, 0, ev),
    }
}

/// Where the IPv6 packet starts in a Teredo payload (after origin indication and
/// authentication headers), if it is one.
fn teredo_offset(p: &[u8]) -> Option<usize> {
    let mut o = 0;
    for _ in 0..2 {
        match (p.get(o), p.get(o + 1)) {
            (Some(0), Some(1)) => {
                let idl = usize::from(*p.get(o + 2)?);
                let aul = usize::from(*p.get(o + 3)?);
                o += 4 + idl + aul + 9;
            }
            (Some(0), Some(0)) => o += 8,
            _ => break,
        }
    }
    let v = p.get(o..o + 40)?;
    if v[0] >> 4 != 6 {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([v[4], v[5]]));
    (o + 40 + plen == p.len()).then_some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::community::community_id;
    use std::net::{Ipv4Addr, Ipv6Addr};

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

    /// A flow-table slot (hash, key, flow) fills one 64-byte cache line (the table aligns
    /// its slots to 64; one byte more would double them).
    #[test]
    fn flow_slot_is_a_cache_line() {
        assert_eq!(std::mem::size_of::<Flow>(), 16);
        assert_eq!(std::mem::size_of::<Option<(u64, FlowKey, Flow)>>(), 64);
    }

    fn addr(v6: bool, x: u128) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(x))
        } else {
            IpAddr::V4(Ipv4Addr::from(x as u32))
        }
    }

    proptest::proptest! {
        /// The packed key orders a tuple's ends as `(IpAddr, port)` does (families mixed
        /// too), and both directions of a flow get the same key.
        #[test]
        fn flow_key_orders_as_ipaddr(
            (v6a, v6b) in (proptest::bool::ANY, proptest::bool::ANY),
            (x, y) in (0u128..4, 0u128..4),
            (hx, hy) in (proptest::num::u128::ANY, proptest::num::u128::ANY),
            (sp, dp) in (0u16..3, 0u16..3),
        ) {
            // Few distinct values, so that equal addresses and ports come up.
            let (src, dst) = (addr(v6a, (x << 100) | (x + hx % 2)), addr(v6b, (y << 100) | (y + hy % 2)));
            let t = Tuple { src, dst, sport: sp, dport: dp, proto: 6 };
            let r = Tuple { src: dst, dst: src, sport: dp, dport: sp, proto: 6 };
            let (k, dir) = FlowKey::of(&t);
            let (kr, dir_r) = FlowKey::of(&r);
            proptest::prop_assert_eq!(dir, u8::from((src, sp) > (dst, dp)));
            if (src, sp) != (dst, dp) {
                proptest::prop_assert_eq!(k, kr);
                proptest::prop_assert_eq!(dir, 1 - dir_r);
            }
        }
    }
}
