//! Link layers and tunnel framing, as functions from bytes to where the next layer starts:
//! Ethernet II / VLAN / MPLS / PPPoE, raw IP, NULL / LOOP, PPP, Linux SLL / SLL2 and NFLOG
//! framing; the GRE header (ERSPAN, PPTP) and the UDP tunnels VXLAN and Teredo. IP headers
//! are `packet::ip`'s; `packet::decoder` follows one layer to the next.

use super::capture::LinkType;
use etherparse::err::linux_sll;
use etherparse::{
    Ethernet2Header, Ethernet2HeaderSlice, LinuxSllHeader, LinuxSllHeaderSlice, SingleVlanHeader,
    SingleVlanHeaderSlice,
};

#[inline]
pub(super) fn be16(d: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(p)?, *d.get(p + 1)?]))
}

#[inline]
pub(super) fn be32(d: &[u8], p: usize) -> Option<u32> {
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
        LinkType::LINUX_SLL => linux_sll(d),
        // SLL2 is read by hand: etherparse 0.16 has no SLL2 header.
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

/// A Linux cooked (SLL) header, read by etherparse (kept out of [`link_layer`], which every
/// packet goes through three times: its shard, its prefetch, its decoding).
#[inline(never)]
fn linux_sll(d: &[u8]) -> Result<(L3, usize), &'static str> {
    let t = match LinuxSllHeaderSlice::from_slice(d) {
        Ok(h) => u16::from(h.protocol_type()),
        Err(linux_sll::HeaderSliceError::Len(_)) => return Err("link: truncated"),
        // etherparse knows packet types 0-7 and the ARPHRD types Ethernet, netlink,
        // IP-in-GRE, radiotap and FRAD only; a capture on Linux's "any" device also holds
        // loopback (772), tun (0xfffe), PPP (512), ... interfaces, whose protocol field is
        // an ethertype all the same.
        Err(linux_sll::HeaderSliceError::Content(_)) => be16(d, 14).ok_or("link: truncated")?,
    };
    ethertype_l3(t, LinuxSllHeader::LEN)
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

/// The GRE header at the start of `d`: its protocol type and where its payload starts.
pub(super) fn gre_header(d: &[u8]) -> Result<(u16, usize), &'static str> {
    let (Some(fl), Some(pt)) = (be16(d, 0), be16(d, 2)) else {
        return Err("gre: truncated");
    };
    let ver = fl & 7;
    let mut p = 4;
    if ver == 0 {
        if fl & 0x4000 != 0 {
            return Err("gre: source routing unsupported");
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
        return Err("gre: unknown version");
    }
    if p > d.len() {
        return Err("gre: truncated");
    }
    Ok((pt, p))
}

/// What a GRE payload of protocol type `pt` at `p` is, and where it starts (an Ethernet
/// frame is left for [`ether_walk`], after the tunnel depth check).
pub(super) fn gre_payload(d: &[u8], pt: u16, p: usize) -> Result<(L3, usize), &'static str> {
    match pt {
        0x0800 => Ok((L3::Ipv4, p)),
        0x86dd => Ok((L3::Ipv6, p)),
        0x6558 => Ok((L3::Ether, p)),
        0x8847 | 0x8848 | 0x8100 => ether_walk(d, p, Some(pt)),
        // ERSPAN type II: 8-byte header, then the mirrored Ethernet frame.
        0x88be => Ok((L3::Ether, p + 8)),
        0x22eb => {
            // ERSPAN type III: 12-byte header (+8 platform-specific if O bit).
            let o = d.get(p + 11).map_or(0, |b| if b & 1 != 0 { 8 } else { 0 });
            Ok((L3::Ether, p + 12 + o))
        }
        0x880b => {
            let mut q = p;
            if d.get(q..q + 2) == Some(&[0xff, 0x03]) {
                q += 2;
            }
            ppp_proto(d, q)
        }
        _ => Err("gre: unknown payload"),
    }
}

/// The tunnel a UDP payload carries, if any, and where its inner packet starts: VXLAN on
/// its ports; Teredo on its port, or (like Zeek) on any port when the payload is an IPv6
/// packet of exactly the datagram's length with a Teredo (2001::/32) endpoint.
#[inline]
pub(super) fn udp_tunnel(sport: u16, dport: u16, payload: &[u8]) -> Option<(L3, usize)> {
    if (dport == 4789 || dport == 8472) && payload.len() >= 8 && payload[0] & 0x08 != 0 {
        return Some((L3::Ether, 8));
    }
    let off = teredo_offset(payload)?;
    let teredo_addr = |o: usize| payload.get(o..o + 4) == Some(&[0x20, 0x01, 0x00, 0x00]);
    (sport == 3544 || dport == 3544 || teredo_addr(off + 8) || teredo_addr(off + 24))
        .then_some((L3::Ipv6, off))
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

    /// A Linux cooked (SLL) header: packet type, ARPHRD type, a 6-byte address, protocol.
    fn sll(packet_type: u16, arphrd: u16, proto: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&packet_type.to_be_bytes());
        h.extend_from_slice(&arphrd.to_be_bytes());
        h.extend_from_slice(&6u16.to_be_bytes());
        h.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        h.extend_from_slice(&proto.to_be_bytes());
        h
    }

    /// An SLL2 header: protocol, reserved, interface index, ARPHRD type, packet type, a
    /// 6-byte address.
    fn sll2(proto: u16, arphrd: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&proto.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 0, 3]);
        h.extend_from_slice(&arphrd.to_be_bytes());
        h.extend_from_slice(&[0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        h
    }

    /// A cooked header leads to what its protocol field names, after the header, whatever
    /// its ARPHRD and packet types (a capture on Linux's "any" device has loopback and tun
    /// interfaces too); a header cut before its protocol field is truncated.
    #[test]
    fn linux_cooked_headers_lead_to_their_protocol() {
        let cases = [
            (LinkType::LINUX_SLL, sll(0, 1, 0x0800), Ok((L3::Ipv4, 16))),
            (LinkType::LINUX_SLL, sll(4, 1, 0x86dd), Ok((L3::Ipv6, 16))),
            // ARPHRD_LOOPBACK, ARPHRD_NONE (tun), ARPHRD_PPP, ARPHRD_IPGRE
            (LinkType::LINUX_SLL, sll(0, 772, 0x0800), Ok((L3::Ipv4, 16))),
            (
                LinkType::LINUX_SLL,
                sll(4, 0xfffe, 0x86dd),
                Ok((L3::Ipv6, 16)),
            ),
            (LinkType::LINUX_SLL, sll(0, 512, 0x0800), Ok((L3::Ipv4, 16))),
            (LinkType::LINUX_SLL, sll(0, 778, 0x86dd), Ok((L3::Ipv6, 16))),
            // A packet type past Linux's 0-7.
            (LinkType::LINUX_SLL, sll(9, 1, 0x0800), Ok((L3::Ipv4, 16))),
            (LinkType::LINUX_SLL, sll(0, 1, 0x8100), Ok((L3::Ether, 16))),
            // ARP, and 802.2 LLC (one of Linux's non-Ethernet protocol numbers)
            (LinkType::LINUX_SLL, sll(0, 1, 0x0806), Ok((L3::None, 16))),
            (LinkType::LINUX_SLL, sll(0, 1, 0x0004), Ok((L3::None, 16))),
            (
                LinkType::LINUX_SLL,
                sll(0, 1, 0x0800)[..15].to_vec(),
                Err("link: truncated"),
            ),
            (LinkType::LINUX_SLL2, sll2(0x0800, 1), Ok((L3::Ipv4, 20))),
            (LinkType::LINUX_SLL2, sll2(0x86dd, 772), Ok((L3::Ipv6, 20))),
            (LinkType::LINUX_SLL2, sll2(0x88a8, 1), Ok((L3::Ether, 20))),
            (LinkType::LINUX_SLL2, sll2(0x0806, 1), Ok((L3::None, 20))),
            (LinkType::LINUX_SLL2, vec![8], Err("link: truncated")),
        ];
        for (link, h, want) in cases {
            assert_eq!(link_layer(link, &h), want, "{link:?} {h:02x?}");
        }
    }
}
