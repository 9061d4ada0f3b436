//! Allowlists: the built-in IANA special-purpose address registries (IPv4 and IPv6, RFC 6890
//! and its successors), the operator's `[allowlist]` table and allowlist feeds, and the
//! index that decides which indicator an allowlist entry covers.

use matcher::normalize::{parse_cidr, prefix_range};
use matcher::{Indicator, IndicatorType};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// The source name of the built-in IANA entries.
pub const IANA_SOURCE: &str = "iana-special-purpose";
/// The source name of `[allowlist]` entries.
pub const CONFIG_SOURCE: &str = "config-allowlist";

/// One special-purpose block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// The block.
    pub cidr: &'static str,
    /// Registry name.
    pub name: &'static str,
    /// Defining RFC.
    pub rfc: &'static str,
}

const fn r(cidr: &'static str, name: &'static str, rfc: &'static str) -> SpecialRange {
    SpecialRange { cidr, name, rfc }
}

/// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and successors), plus multicast.
/// 172.16.0.0/12 included (CIF forgot it).
pub const IANA_SPECIAL_V4: &[SpecialRange] = &[
    r("0.0.0.0/8", "\"This network\"", "RFC 791"),
    r("10.0.0.0/8", "Private-Use", "RFC 1918"),
    r("100.64.0.0/10", "Shared Address Space", "RFC 6598"),
    r("127.0.0.0/8", "Loopback", "RFC 1122"),
    r("169.254.0.0/16", "Link Local", "RFC 3927"),
    r("172.16.0.0/12", "Private-Use", "RFC 1918"),
    r("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890"),
    r("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737"),
    r("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    r("192.52.193.0/24", "AMT", "RFC 7450"),
    r(
        "192.88.99.0/24",
        "Deprecated (6to4 Relay Anycast)",
        "RFC 7526",
    ),
    r("192.168.0.0/16", "Private-Use", "RFC 1918"),
    r(
        "192.175.48.0/24",
        "Direct Delegation AS112 Service",
        "RFC 7534",
    ),
    r("198.18.0.0/15", "Benchmarking", "RFC 2544"),
    r("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737"),
    r("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737"),
    r("224.0.0.0/4", "Multicast", "RFC 5771"),
    r("240.0.0.0/4", "Reserved", "RFC 1112"),
    r("255.255.255.255/32", "Limited Broadcast", "RFC 8190"),
];

/// IANA IPv6 Special-Purpose Address Registry (RFC 6890 and successors), plus multicast.
pub const IANA_SPECIAL_V6: &[SpecialRange] = &[
    r("::1/128", "Loopback Address", "RFC 4291"),
    r("::/128", "Unspecified Address", "RFC 4291"),
    r("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291"),
    r("64:ff9b::/96", "IPv4-IPv6 Translation", "RFC 6052"),
    r("64:ff9b:1::/48", "IPv4-IPv6 Translation", "RFC 8215"),
    r("100::/64", "Discard-Only Address Block", "RFC 6666"),
    r("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780"),
    r("2001::/23", "IETF Protocol Assignments", "RFC 2928"),
    r("2001:db8::/32", "Documentation", "RFC 3849"),
    r("2002::/16", "6to4", "RFC 3056"),
    r(
        "2620:4f:8000::/48",
        "Direct Delegation AS112 Service",
        "RFC 7534",
    ),
    r("3fff::/20", "Documentation", "RFC 9637"),
    r("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602"),
    r("fc00::/7", "Unique-Local", "RFC 4193"),
    r("fe80::/10", "Link-Local Unicast", "RFC 4291"),
    r("ff00::/8", "Multicast", "RFC 4291"),
];

/// Parse `addr` or `addr/len` into (network bits as u128, prefix length, is_v4).
pub fn parse_net(value: &str) -> Option<(u128, u8, bool)> {
    Some(match parse_cidr(value)? {
        (IpAddr::V4(a), len) => (u128::from(u32::from(a)), len, true),
        (IpAddr::V6(a), len) => (u128::from(a), len, false),
    })
}

fn mask(bits: u128, len: u8, v4: bool) -> u128 {
    prefix_range(bits, len, v4).0
}

/// The host part of a normalised URL (`scheme://[userinfo@]host[:port]/...`), IPv6
/// literals without brackets.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(v6) = auth.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    let host = match auth.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => auth,
    };
    (!host.is_empty()).then_some(host)
}

/// Lookup structure over allowlist entries.
#[derive(Debug, Default)]
pub struct AllowlistIndex {
    domains: HashMap<String, String>,
    /// prefix length → (network, is_v4) → label
    nets: BTreeMap<(bool, u8), HashMap<u128, String>>,
    exact: HashMap<(IndicatorType, String), String>,
}

impl AllowlistIndex {
    /// Index every indicator with `allowlist == true`.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a Indicator>) -> Self {
        let mut idx = AllowlistIndex::default();
        for e in entries {
            if !e.allowlist {
                continue;
            }
            let label = format!(
                "{}:{}",
                e.sources.first().map_or("allowlist", String::as_str),
                e.value
            );
            match e.itype {
                IndicatorType::Fqdn => {
                    idx.domains.entry(e.value.clone()).or_insert(label);
                }
                IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
                    if let Some((net, len, v4)) = parse_net(&e.value) {
                        idx.nets
                            .entry((v4, len))
                            .or_default()
                            .entry(net)
                            .or_insert(label);
                    }
                }
                t => {
                    idx.exact.entry((t, e.value.clone())).or_insert(label);
                }
            }
        }
        idx
    }

    /// True when there is nothing to check against.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.nets.is_empty() && self.exact.is_empty()
    }

    fn domain(&self, name: &str) -> Option<&str> {
        let mut d = name;
        loop {
            if let Some(l) = self.domains.get(d) {
                return Some(l);
            }
            d = d.split_once('.')?.1;
        }
    }

    fn net(&self, value: &str) -> Option<&str> {
        let (bits, len, v4) = parse_net(value)?;
        for (&(is_v4, plen), table) in &self.nets {
            if is_v4 != v4 || plen > len {
                continue;
            }
            if let Some(l) = table.get(&mask(bits, plen, v4)) {
                return Some(l);
            }
        }
        None
    }

    /// The allowlist entry (`source:value`) that covers `ind`, if any: a domain covers its
    /// subdomains (and URLs and e-mail addresses on them), a CIDR every address and
    /// narrower CIDR inside it (and URLs on those addresses).
    pub fn covers(&self, ind: &Indicator) -> Option<&str> {
        if !self.exact.is_empty() {
            if let Some(l) = self.exact.get(&(ind.itype, ind.value.clone())) {
                return Some(l);
            }
        }
        match ind.itype {
            IndicatorType::Fqdn => self.domain(&ind.value),
            IndicatorType::Ipv4 | IndicatorType::Ipv6 => self.net(&ind.value),
            IndicatorType::Url => {
                let host = url_host(&ind.value)?;
                if host.parse::<IpAddr>().is_ok() {
                    self.net(host)
                } else {
                    self.domain(host)
                }
            }
            IndicatorType::Email => self.domain(ind.value.rsplit_once('@')?.1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(v: &str, t: IndicatorType) -> Indicator {
        let mut i = Indicator::new(v, t, "al");
        i.allowlist = true;
        i
    }

    #[test]
    fn covers_subdomains_and_inner_networks_only() {
        let entries = vec![
            allow("example.com", IndicatorType::Fqdn),
            allow("10.0.0.0/8", IndicatorType::Ipv4),
            allow("2001:db8::/32", IndicatorType::Ipv6),
        ];
        let idx = AllowlistIndex::new(&entries);
        let t = |v: &str, it| idx.covers(&Indicator::new(v, it, "f")).map(str::to_string);
        assert_eq!(
            t("a.example.com", IndicatorType::Fqdn).as_deref(),
            Some("al:example.com")
        );
        assert_eq!(t("notexample.com", IndicatorType::Fqdn), None);
        assert_eq!(
            t("10.1.2.3", IndicatorType::Ipv4).as_deref(),
            Some("al:10.0.0.0/8")
        );
        assert_eq!(
            t("10.1.0.0/16", IndicatorType::Ipv4).as_deref(),
            Some("al:10.0.0.0/8")
        );
        assert_eq!(
            t("10.0.0.0/7", IndicatorType::Ipv4),
            None,
            "a wider block is not inside"
        );
        assert_eq!(t("11.0.0.1", IndicatorType::Ipv4), None);
        assert!(t("2001:db8::1", IndicatorType::Ipv6).is_some());
        assert!(t("http://10.9.9.9:8080/x", IndicatorType::Url).is_some());
        assert!(t("http://www.example.com/x", IndicatorType::Url).is_some());
        assert!(t("bob@mail.example.com", IndicatorType::Email).is_some());
    }

    #[test]
    fn iana_tables_parse_and_include_172_16() {
        for s in IANA_SPECIAL_V4.iter().chain(IANA_SPECIAL_V6) {
            let (net, len, _) = parse_net(s.cidr).unwrap();
            // every block is written as its network address
            let again = parse_net(s.cidr).unwrap();
            assert_eq!((net, len), (again.0, again.1), "{}", s.cidr);
        }
        assert!(IANA_SPECIAL_V4.iter().any(|s| s.cidr == "172.16.0.0/12"));
        assert_eq!(url_host("http://[2001:db8::1]:80/a"), Some("2001:db8::1"));
        assert_eq!(url_host("https://u:p@h.example:8443?q"), Some("h.example"));
    }
}
