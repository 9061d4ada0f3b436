//! Link layers and tunnels down to the transport: Ethernet II / VLAN / MPLS / PPPoE, raw IP,
//! NULL / LOOP, PPP, Linux SLL / SLL2 and NFLOG framing; IPv4 and IPv6 headers (with the
//! IPv6 extension walk and fragment reassembly); IP-in-IP, GRE (ERSPAN, PPTP), and the UDP
//! tunnels VXLAN and Teredo. TCP payloads go on to [`super::stream`], UDP ones to its DNS
//! and QUIC dispatch.

use super::capture::LinkType;
use super::decoder::PacketDecoder;
use super::flow::Tuple;
use super::frag::{FragKey, FragOutcome};
use super::quic;
use crate::observation::Observation;
use etherparse::err::{ipv4, ipv6};
use etherparse::{
    Ethernet2Header, Ethernet2HeaderSlice, Ipv4Header, Ipv4HeaderSlice, Ipv6Header,
    Ipv6HeaderSlice, SingleVlanHeader, SingleVlanHeaderSlice, UdpHeaderSlice,
};
use std::net::IpAddr;

#[inline]
pub(super) fn be16(d: &[u8], p: usize) -> Option<u16> {
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
pub(super) enum L3 {
    Ipv4,
    Ipv6,
    Ether,
    None,
}

/// Strip a link-layer header: returns what follows and where.
#[inline]
pub(super) fn link_layer(link: LinkType, d: &[u8]) -> Result<(L3, usize), &'static str> {
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
#[inline]
pub(super) fn ether_walk(
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

impl PacketDecoder {
    pub(super) fn l3(
        &mut self,
        l3: L3,
        d: &[u8],
        off: usize,
        depth: u8,
        out: &mut Vec<Observation<'static>>,
    ) {
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
