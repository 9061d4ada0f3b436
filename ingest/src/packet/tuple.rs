//! One packet's transport tuple and what is built from it: the [`Tuple`] in packet
//! direction, the packed direction-free [`FlowKey`] the flow table is keyed by, and the
//! observation skeleton of a packet ([`PacketMeta`]: time, origin, endpoints, Community ID).

use super::community::FlowTuple;
use crate::observation::{CommunityId, Observation, Origin};
use std::hash::Hasher;
use std::net::IpAddr;

/// The 5-tuple of one packet, in packet direction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuple {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) proto: u8,
}

impl Tuple {
    /// Whether the protocol has ports (TCP, UDP, SCTP).
    fn has_ports(&self) -> bool {
        self.proto == 6 || self.proto == 17 || self.proto == 132
    }

    /// The Community ID tuple of a TCP/UDP/SCTP packet or one of a protocol without ports
    /// (ICMP flows keep theirs in the flow entry: `packet::flow`).
    pub(super) fn port_cid(&self) -> FlowTuple {
        FlowTuple {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            ports: self.has_ports().then_some((self.sport, self.dport)),
        }
    }
}

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

/// What every observation of the packet being decoded shares: its capture time and origin.
#[derive(Debug)]
pub(super) struct PacketMeta {
    /// Capture time, nanoseconds.
    pub(super) ts: i64,
    pub(super) origin: Origin<'static>,
}

impl PacketMeta {
    /// An observation of packet `t` in `dataset`: time, origin, endpoints, transport.
    pub(super) fn obs(
        &self,
        t: &Tuple,
        dataset: &'static str,
        protocol: Option<&'static str>,
    ) -> Observation<'static> {
        let has_ports = t.has_ports();
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
        o.community_id = Some(CommunityId::Flow(t.port_cid()));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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
