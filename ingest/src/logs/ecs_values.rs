//! Field values normalised to their ECS form: hashes, transport names, DNS answer types.

use std::borrow::Cow;
use std::net::IpAddr;

use super::address::parse_ip_str;

/// Is `s` 40 (SHA-1) hex digits? (`n` = wanted length)
pub(crate) fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A hash normalised to lower-case hex, colons removed (`6a:ff:..` → `6aff..`).
pub(crate) fn norm_hash(c: Cow<'_, str>) -> Cow<'_, str> {
    if c.bytes().any(|b| b == b':' || b.is_ascii_uppercase()) {
        let mut s: String = c.chars().filter(|&ch| ch != ':').collect();
        s.make_ascii_lowercase();
        Cow::Owned(s)
    } else {
        c
    }
}

/// `tcp`/`udp`/... as a static ECS `network.transport` value.
pub(crate) fn transport(b: &[u8]) -> Option<&'static str> {
    let t = match b.len() {
        3 if b.eq_ignore_ascii_case(b"tcp") => "tcp",
        3 if b.eq_ignore_ascii_case(b"udp") => "udp",
        4 if b.eq_ignore_ascii_case(b"icmp") => "icmp",
        4 if b.eq_ignore_ascii_case(b"sctp") => "sctp",
        9 if b.eq_ignore_ascii_case(b"ipv6-icmp") => "ipv6-icmp",
        6 if b.eq_ignore_ascii_case(b"icmpv6") => "ipv6-icmp",
        _ => return None,
    };
    Some(t)
}

/// DNS answer type from the shape of its data: `A`, `AAAA`, else `fallback`.
pub(crate) fn answer_type(data: &str, fallback: &'static str) -> &'static str {
    answer_type_of(parse_ip_str(data), fallback)
}

/// [`answer_type`] of data already parsed (`ip` is `parse_ip_str` of it).
pub(crate) fn answer_type_of(ip: Option<IpAddr>, fallback: &'static str) -> &'static str {
    match ip {
        Some(IpAddr::V4(_)) => "A",
        Some(IpAddr::V6(_)) => "AAAA",
        None => fallback,
    }
}
