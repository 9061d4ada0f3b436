//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>).

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

fn ip_bytes(ip: &IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
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
    let ordered = one_way || {
        let mut a = Vec::with_capacity(16);
        let mut b = Vec::with_capacity(16);
        ip_bytes(&src, &mut a);
        ip_bytes(&dst, &mut b);
        (a.as_slice(), sp) < (b.as_slice(), dp)
    };
    let (s, d) = if ordered {
        (src, dst)
    } else {
        std::mem::swap(&mut sp, &mut dp);
        (dst, src)
    };
    let mut buf = Vec::with_capacity(40);
    buf.extend_from_slice(&seed.to_be_bytes());
    ip_bytes(&s, &mut buf);
    ip_bytes(&d, &mut buf);
    buf.push(proto);
    buf.push(0);
    if ports.is_some() {
        buf.extend_from_slice(&sp.to_be_bytes());
        buf.extend_from_slice(&dp.to_be_bytes());
    }
    let h = Sha1::digest(&buf);
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(h))
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
