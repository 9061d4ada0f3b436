//! IP headers and the transport headers they carry, as functions from bytes to the next
//! layer: IPv4 and IPv6 (with the IPv6 extension walk and fragment reassembly) to a
//! [`Datagram`]; the UDP, TCP and ICMP headers, and the IP header an ICMP error quotes. What
//! is malformed is counted in the [`DecodeStats`] given and yields nothing.

use super::frag::{FragKey, FragOutcome, Reassembler};
use super::stats::DecodeStats;
use super::tuple::Tuple;
use etherparse::err::{ipv4, ipv6};
use etherparse::{
    Ipv4Header, Ipv4HeaderSlice, Ipv6Header, Ipv6HeaderSlice, TcpHeader, TcpHeaderSlice,
    UdpHeaderSlice,
};
use std::borrow::Cow;
use std::net::IpAddr;

/// An IP packet's (or reassembled datagram's) transport protocol and payload.
pub(super) struct Transport<'d> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) proto: u8,
    /// Borrowed from the packet, or owned when reassembled from fragments.
    pub(super) payload: Cow<'d, [u8]>,
}

/// The addresses of an IP header whose transport header is not decoded now: a fragment of a
/// datagram not complete (held or dropped by reassembly), or an IPv6 packet whose extension
/// headers cannot be walked. Its flow is still reported, so that no address hides behind
/// fragmentation (application parsing waits for the reassembled datagram).
pub(super) struct Partial<'d> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) proto: u8,
    /// The first bytes of the transport header (a first fragment), for its ports.
    pub(super) head: Option<&'d [u8]>,
}

impl<'d> Partial<'d> {
    /// A packet from `src` to `dst` whose `proto` header at the start of `d` is malformed.
    pub(super) fn of(src: IpAddr, dst: IpAddr, proto: u8, d: &'d [u8]) -> Self {
        Partial {
            src,
            dst,
            proto,
            head: Some(d),
        }
    }
}

/// What an IP header leads to.
pub(super) enum Datagram<'d> {
    /// A whole datagram (unfragmented or just reassembled).
    Whole(Transport<'d>),
    /// Addresses (and maybe ports) only: see [`Partial`].
    Partial(Partial<'d>),
    /// Nothing to report: a malformed header (counted), or a later fragment of a datagram
    /// whose first fragment, held, already reported the flow.
    Nothing,
}

/// The IPv4 packet `d` (captured at `ts`): its transport payload, or only its addresses
/// when it is a fragment of a datagram not yet complete (held in `frags`).
#[inline]
pub(super) fn ipv4<'d>(
    d: &'d [u8],
    ts: i64,
    frags: &mut Reassembler,
    stats: &mut DecodeStats,
) -> Datagram<'d> {
    match ipv4_inner(d, ts, frags, stats) {
        Some(x) => x,
        None => Datagram::Nothing,
    }
}

#[inline]
fn ipv4_inner<'d>(
    d: &'d [u8],
    ts: i64,
    frags: &mut Reassembler,
    stats: &mut DecodeStats,
) -> Option<Datagram<'d>> {
    if d.len() < Ipv4Header::MIN_LEN {
        stats.drop("ipv4: truncated header");
        return None;
    }
    let h = match Ipv4HeaderSlice::from_slice(d) {
        Ok(h) => h,
        Err(ipv4::HeaderSliceError::Content(ipv4::HeaderError::UnexpectedVersion { .. })) => {
            stats.drop("ipv4: bad version");
            return None;
        }
        // The IHL is below 5 or runs past the captured bytes.
        Err(_) => {
            stats.drop("ipv4: bad length");
            return None;
        }
    };
    let ihl = h.slice().len();
    let total = usize::from(h.total_len());
    if total < ihl {
        stats.drop("ipv4: bad length");
        return None;
    }
    let end = if total > d.len() {
        // snap length cut: decode what we have
        stats.drop("ipv4: truncated (snaplen)");
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
        stats.frag_fragments += 1;
        let key = FragKey {
            src,
            dst,
            id: u32::from(h.identification()),
            proto,
        };
        let partial = Datagram::Partial(Partial {
            src,
            dst,
            proto,
            head: (foff == 0).then_some(payload),
        });
        return Some(match frags.add(key, ts, foff, more, proto, payload) {
            FragOutcome::Pending if foff != 0 && frags.has_first(&key) => Datagram::Nothing,
            FragOutcome::Pending => partial,
            FragOutcome::Dropped(r) => {
                stats.drop(r);
                partial
            }
            FragOutcome::Complete(p, buf) => Datagram::Whole(Transport {
                src,
                dst,
                proto: p,
                payload: Cow::Owned(buf),
            }),
        });
    }
    Some(Datagram::Whole(Transport {
        src,
        dst,
        proto,
        payload: Cow::Borrowed(payload),
    }))
}

/// The IPv6 packet `d` (captured at `ts`): its transport payload after the extension
/// headers, or only its addresses when it is a fragment of a datagram not yet complete (held
/// in `frags`) or its extension headers cannot be walked (counted). "No next header"
/// (Teredo bubbles) is protocol 59 with an empty payload: the endpoints still count.
#[inline]
pub(super) fn ipv6<'d>(
    d: &'d [u8],
    ts: i64,
    frags: &mut Reassembler,
    stats: &mut DecodeStats,
) -> Datagram<'d> {
    let h = match Ipv6HeaderSlice::from_slice(d) {
        Ok(h) => h,
        Err(ipv6::HeaderSliceError::Len(_)) => {
            stats.drop("ipv6: truncated header");
            return Datagram::Nothing;
        }
        Err(ipv6::HeaderSliceError::Content(_)) => {
            stats.drop("ipv6: bad version");
            return Datagram::Nothing;
        }
    };
    let plen = usize::from(h.payload_length());
    let end = if 40 + plen > d.len() {
        stats.drop("ipv6: truncated (snaplen)");
        d.len()
    } else if plen == 0 {
        // jumbogram or bogus: use what was captured
        d.len()
    } else {
        40 + plen
    };
    let src = IpAddr::V6(h.source_addr());
    let dst = IpAddr::V6(h.destination_addr());
    let transport = |proto, payload| {
        Datagram::Whole(Transport {
            src,
            dst,
            proto,
            payload,
        })
    };
    let partial = |proto, head| {
        Datagram::Partial(Partial {
            src,
            dst,
            proto,
            head,
        })
    };
    // Extension headers are walked here: etherparse stops at mobility, HIP and shim6
    // headers, and fragments go to our own reassembly policy.
    let mut nh = h.next_header().0;
    let mut p = Ipv6Header::LEN;
    for _ in 0..16 {
        match nh {
            0 | 43 | 60 | 135 | 139 | 140 => {
                let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                    stats.drop("ipv6: truncated extension");
                    return partial(nh, None);
                };
                nh = *n;
                p += (usize::from(*l) + 1) * 8;
            }
            51 => {
                let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                    stats.drop("ipv6: truncated extension");
                    return partial(nh, None);
                };
                nh = *n;
                p += (usize::from(*l) + 2) * 4;
            }
            44 => {
                let Some(fh) = d.get(p..p + 8) else {
                    stats.drop("ipv6: truncated extension");
                    return partial(nh, None);
                };
                let next = fh[0];
                let fo = u16::from_be_bytes([fh[2], fh[3]]);
                let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
                let more = fo & 1 != 0;
                let foff = usize::from(fo >> 3) * 8;
                let Some(payload) = d.get(p + 8..end) else {
                    stats.drop("ipv6: bad fragment length");
                    return partial(next, None);
                };
                stats.frag_fragments += 1;
                if !more && foff == 0 {
                    // atomic fragment
                    return transport(next, Cow::Borrowed(payload));
                }
                let key = FragKey {
                    src,
                    dst,
                    id,
                    proto: 0,
                };
                // A first fragment's transport header may follow more extension headers.
                let first = || match ipv6_upper(next, payload) {
                    Some((nh, off)) => partial(nh, payload.get(off..)),
                    None => partial(next, None),
                };
                return match frags.add(key, ts, foff, more, next, payload) {
                    FragOutcome::Pending if foff == 0 => first(),
                    FragOutcome::Pending if frags.has_first(&key) => Datagram::Nothing,
                    FragOutcome::Pending => partial(next, None),
                    FragOutcome::Dropped(r) => {
                        stats.drop(r);
                        if foff == 0 {
                            first()
                        } else {
                            partial(next, None)
                        }
                    }
                    FragOutcome::Complete(n, mut buf) => {
                        let Some((nh, off)) = ipv6_upper(n, &buf).filter(|u| u.1 <= buf.len())
                        else {
                            stats.drop("ipv6: truncated extension");
                            return partial(n, None);
                        };
                        buf.drain(..off);
                        transport(nh, Cow::Owned(buf))
                    }
                };
            }
            // No next header (Teredo bubbles): the endpoints still count.
            59 => return transport(59, Cow::Borrowed(&[])),
            _ => break,
        }
    }
    let Some(payload) = d.get(p..end) else {
        stats.drop("ipv6: extension past end");
        return partial(nh, None);
    };
    transport(nh, Cow::Borrowed(payload))
}

/// After IPv6 reassembly: the unfragmentable part is gone, but extension headers after
/// the fragment header (destination options) may remain. The upper-layer protocol and
/// where its header starts in `d` (`None`: an extension header is cut).
fn ipv6_upper(mut nh: u8, d: &[u8]) -> Option<(u8, usize)> {
    let mut p = 0;
    for _ in 0..8 {
        match nh {
            0 | 43 | 60 => {
                let (Some(n), Some(l)) = (d.get(p), d.get(p + 1)) else {
                    return None;
                };
                nh = *n;
                p += (usize::from(*l) + 1) * 8;
            }
            _ => break,
        }
    }
    Some((nh, p))
}

/// The UDP datagram `d`: (source port, destination port, payload), or `None` when its
/// header is malformed (counted). A payload cut by the snap length is decoded as far as
/// captured (and counted).
#[inline]
pub(super) fn udp_datagram<'d>(
    d: &'d [u8],
    stats: &mut DecodeStats,
) -> Option<(u16, u16, &'d [u8])> {
    // A header whose checksum is cut off is truncated too (found by the pkt_decode fuzz
    // target).
    let Ok(h) = UdpHeaderSlice::from_slice(d) else {
        stats.drop("udp: truncated header");
        return None;
    };
    let ulen = usize::from(h.length());
    let payload = if ulen < 8 {
        stats.drop("udp: bad length");
        return None;
    } else if ulen > d.len() {
        stats.drop("udp: truncated (snaplen)");
        &d[8..]
    } else {
        &d[8..ulen]
    };
    Some((h.source_port(), h.destination_port(), payload))
}

/// One TCP segment: its tuple, sequence number and payload.
pub(super) struct Segment<'d> {
    pub(super) t: Tuple,
    pub(super) seq: u32,
    pub(super) payload: &'d [u8],
}

/// The TCP segment `d` from `src` to `dst`, or `None` when its header is malformed
/// (counted).
#[inline]
pub(super) fn tcp_segment<'d>(
    src: IpAddr,
    dst: IpAddr,
    d: &'d [u8],
    stats: &mut DecodeStats,
) -> Option<Segment<'d>> {
    if d.len() < TcpHeader::MIN_LEN {
        stats.drop("tcp: truncated header");
        return None;
    }
    // The data offset is below 5 or runs past the captured bytes.
    let Ok(h) = TcpHeaderSlice::from_slice(d) else {
        stats.drop("tcp: bad header length");
        return None;
    };
    let t = Tuple {
        src,
        dst,
        sport: h.source_port(),
        dport: h.destination_port(),
        proto: 6,
    };
    Some(Segment {
        t,
        seq: h.sequence_number(),
        payload: &d[h.slice().len()..],
    })
}

/// The IP header an ICMP (`proto` 1) or ICMPv6 (58) error message `d` quotes (destination
/// unreachable, time exceeded, parameter problem, redirect, source quench / packet too big),
/// of the same IP version: its addresses, protocol and the first bytes of its transport
/// header (`None` when the quoted packet is a later fragment). `None` for other messages
/// and for a quoted header that is cut or malformed. The quoted packet is usually cut, so
/// only the header is read: its lengths are not checked against what follows.
pub(super) fn icmp_quoted(proto: u8, d: &[u8]) -> Option<Partial<'_>> {
    let typ = *d.first()?;
    let q = d.get(8..)?;
    match (proto, typ) {
        (1, 3 | 4 | 5 | 11 | 12) => header_only(false, q),
        (58, 1..=4) => header_only(true, q),
        _ => None,
    }
}

/// The IPv4 (or, `v6`, IPv6) header at the start of `q`, read but not decoded further (an
/// ICMP error's quote, the inner header of a tunnel's first fragment): addresses, protocol
/// and the first bytes of its transport header (`None` when `q` is a later fragment). The
/// lengths are not checked against what follows (such a packet is cut); `None` when the
/// header itself is cut or malformed.
pub(super) fn header_only(v6: bool, q: &[u8]) -> Option<Partial<'_>> {
    if !v6 {
        let h = Ipv4HeaderSlice::from_slice(q).ok()?;
        let later = h.fragments_offset().value() != 0;
        return Some(Partial {
            src: IpAddr::V4(h.source_addr()),
            dst: IpAddr::V4(h.destination_addr()),
            proto: h.protocol().0,
            head: (!later).then(|| &q[h.slice().len()..]),
        });
    }
    let h = Ipv6HeaderSlice::from_slice(q).ok()?;
    let rest = &q[Ipv6Header::LEN..];
    let (mut proto, mut head) = (h.next_header().0, None);
    if let Some((nh, off)) = ipv6_upper(proto, rest) {
        proto = nh;
        head = rest.get(off..);
    }
    if proto == 44 {
        // A fragment header: its next header, and the transport header only in the first
        // fragment.
        let fh = head?.get(..8)?;
        let first = u16::from_be_bytes([fh[2], fh[3]]) >> 3 == 0;
        proto = fh[0];
        head = head.and_then(|x| x.get(8..)).filter(|_| first);
    }
    Some(Partial {
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        proto,
        head,
    })
}

/// The type and code (its Community ID "ports") of an ICMP or ICMPv6 message, if captured:
/// its first two bytes. Not etherparse's `Icmpv4Slice`/`Icmpv6Slice`: they refuse a message
/// cut under 8 bytes or an ICMP timestamp of another length than 20, which real captures
/// carry and whose flow must keep its Community ID, and only these two bytes are needed.
pub(super) fn icmp_type_code(d: &[u8]) -> Option<(u8, u8)> {
    match d {
        [t, c, ..] => Some((*t, *c)),
        _ => None,
    }
}
