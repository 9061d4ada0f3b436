//! Flows: the packed direction-free [`FlowKey`], the flow-table entry [`Flow`] (directions
//! seen, per-direction stream modes, app state), the packet [`Tuple`], the `flow`
//! observation with its Community ID, and the symmetric [`flow_shard`] hash.

use super::capture::LinkType;
use super::community::FlowTuple;
use super::decoder::PacketDecoder;
use super::link::{ether_walk, link_layer, L3};
use super::stream::{App, Mode};
use crate::observation::{CommunityId, Observation};
use matcher::fxhash::FxHasher;
use std::hash::Hasher;
use std::net::IpAddr;

/// A canonical (direction-free) flow key, packed for the flow table: both addresses as 16
/// bytes (IPv4 in the last four), ports, protocol and family in one word. Comparing and
/// hashing it is a few word operations (the `IpAddr` enum pair cost a branchy compare and
/// byte-wise hashing on every packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FlowKey {
    a: [u8; 16],
    b: [u8; 16],
    /// ports (a, b), protocol, family (bit 40: IPv6).
    rest: u64,
}

impl FlowKey {
    /// The canonical key of a packet's tuple, and the packet's direction in it (0: the
    /// source is `a`): the smaller (family, address, port) end first, as `IpAddr` orders.
    #[inline]
    pub(super) fn of(t: &Tuple) -> (Self, u8) {
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

/// One flow-table entry, 16 bytes (a slot with its hash and key is 64).
#[derive(Debug)]
pub(super) struct Flow {
    /// bit 0: a→b seen, bit 1: b→a seen, bit 2: the first packet was b→a
    /// ([`Flow::initiator`]), bit 3: nothing more to parse ([`Flow::done`]).
    bits: u8,
    /// Per direction (a→b, b→a): what its TCP stream carries, decided on its first payload.
    /// Kept here rather than in [`App`], so that the bulk of flows, whose streams carry
    /// nothing to parse, never allocate one.
    pub(super) modes: [Mode; 2],
    pub(super) app: Option<Box<App>>,
    /// ICMP flows only: the packet direction and (type, code) the flow's Community ID was
    /// first taken from. An ICMP flow's ID depends on its first packet's type (and, for a
    /// type without a reply type, on that packet's direction), and every direction of the
    /// flow reports that same ID. TCP/UDP IDs are symmetric in the tuple: nothing is kept.
    icmp_cid: Option<(u8, Option<(u8, u8)>)>,
}

impl Flow {
    const DONE: u8 = 8;

    /// A flow whose first packet went in direction `dir`.
    #[inline]
    pub(super) fn new(dir: u8) -> Self {
        Flow {
            bits: (dir & 1) << 2,
            modes: [Mode::Unknown; 2],
            app: None,
            icmp_cid: None,
        }
    }

    /// Direction of the first packet (0: a→b).
    #[inline]
    pub(super) fn initiator(&self) -> u8 {
        (self.bits >> 2) & 1
    }

    /// Nothing more to parse in this flow.
    #[inline]
    pub(super) fn done(&self) -> bool {
        self.bits & Self::DONE != 0
    }

    /// Mark direction `dir` seen; whether it was new.
    #[inline]
    pub(super) fn see(&mut self, dir: u8) -> bool {
        let bit = 1u8 << (dir & 1);
        let new = self.bits & bit == 0;
        self.bits |= bit;
        new
    }

    /// Stop parsing the flow when both directions are `Off` (its state is dropped).
    #[inline]
    pub(super) fn finish_if_off(&mut self) {
        if self.modes == [Mode::Off; 2] {
            self.bits |= Self::DONE;
            self.app = None;
        }
    }
}

/// The 5-tuple of one packet, in packet direction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuple {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) proto: u8,
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
    /// Find or create the flow; emit the flow observation for a new direction.
    #[inline]
    pub(super) fn flow(
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

    pub(super) fn flow_only(
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
    pub(super) fn app_obs(
        &self,
        t: &Tuple,
        dataset: &'static str,
        protocol: &'static str,
    ) -> Observation<'static> {
        let mut o = self.obs(t, dataset, Some(protocol));
        o.community_id = Some(CommunityId::Flow(Self::port_cid(t)));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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
