//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>).

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// What a Community ID hashes: the flow's addresses, protocol and ports (ICMP type and code
/// for ICMP/ICMPv6), as the arguments of [`community_id`].
///
/// The packet decoder attaches this to its observations instead of the finished string, so
/// the SHA-1 and base64 are paid only for an observation that is rendered (an alert, or
/// `trawl observe`), not for every new flow direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// Source address (for a one-way ICMP type the order matters).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Ports for TCP/UDP/SCTP, (type, code) for ICMP/ICMPv6, `None` for other protocols.
    pub ports: Option<(u16, u16)>,
}

impl FlowTuple {
    /// The Community ID v1 (seed 0) of this tuple: `1:` + base64(SHA1(...)).
    pub fn community_id(&self) -> String {
        community_id(self.src, self.dst, self.proto, self.ports)
    }
}

/// ICMPv4 / ICMPv6 request → reply type pairs that make a two-way "flow".
fn icmp_counterpart(proto: u8, t: u16) -> Option<u16> {
    let pairs: &[(u16, u16)] = if proto == 1 {
        &[
            (8, 0),
            (0, 8),
            (13, 14),
            (14, 13),
            (15, 16),
            (16, 15),
            (17, 18),
            (18, 17),
            (10, 9),
            (9, 10),
        ]
    } else {
        &[
            (128, 129),
            (129, 128),
            (133, 134),
            (134, 133),
            (135, 136),
            (136, 135),
            (130, 131),
            (131, 130),
            (139, 140),
            (140, 139),
            (144, 145),
            (145, 144),
        ]
    };
    pairs.iter().find(|(a, _)| *a == t).map(|(_, b)| *b)
}

/// Community ID v1 (seed 0) of a flow: `1:` + base64(SHA1(...)).
///
/// For TCP/UDP/SCTP pass the ports; for ICMP/ICMPv6 pass the type as `sport` and the code
/// as `dport`; for other protocols pass `None`.
pub fn community_id(src: IpAddr, dst: IpAddr, proto: u8, ports: Option<(u16, u16)>) -> String {
    community_id_seed(0, src, dst, proto, ports)
}

/// [`community_id`] with an explicit seed.
pub fn community_id_seed(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> String {
    let (mut sp, mut dp) = ports.unwrap_or((0, 0));
    let mut one_way = false;
    if ports.is_some() && (proto == 1 || proto == 58) {
        match icmp_counterpart(proto, sp) {
            Some(c) => dp = c,
            None => one_way = true,
        }
    }
    // Addresses as bytes on the stack: this runs for every new flow.
    let bytes = |ip: &IpAddr| -> ([u8; 16], usize) {
        let mut b = [0u8; 16];
        match ip {
            IpAddr::V4(a) => {
                b[..4].copy_from_slice(&a.octets());
                (b, 4)
            }
            IpAddr::V6(a) => (a.octets(), 16),
        }
    };
    let (sb, sl) = bytes(&src);
    let (db, dl) = bytes(&dst);
    let ordered = one_way || (&sb[..sl], sp) < (&db[..dl], dp);
    let ((s, s_len), (d, d_len)) = if ordered {
        ((sb, sl), (db, dl))
    } else {
        std::mem::swap(&mut sp, &mut dp);
        ((db, dl), (sb, sl))
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&s[..s_len]);
    h.update(&d[..d_len]);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(sp.to_be_bytes());
        h.update(dp.to_be_bytes());
    }
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(h.finalize(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's baseline vectors (community-id-spec baseline/baseline_deflt.json).
    #[test]
    fn spec_vectors() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            community_id(
                ip("128.232.110.120"),
                ip("66.35.250.204"),
                6,
                Some((34855, 80))
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        // symmetric
        assert_eq!(
            community_id(
                ip("66.35.250.204"),
                ip("128.232.110.120"),
                6,
                Some((80, 34855))
            ),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
    }

    /// suricata-verify community-id-ipv4/test.yaml: Suricata's own value for this flow,
    /// computed with `community-id-seed: 7` (its suricata.yaml).
    #[test]
    fn suricata_verify_vector() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            community_id_seed(
                7,
                ip("172.26.0.39"),
                ip("172.217.14.206"),
                6,
                Some((35958, 443))
            ),
            "1:IwiTNfuO7aCaamMijl+7/X9uLx0="
        );
    }
}
