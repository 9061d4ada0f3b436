//! Index keys: one byte saying how the value is looked up, then the value as the snapshot
//! keys it. Domains are label-reversed ([`matcher::snapshot::domain_key`]), addresses their
//! big-endian bytes (so a CIDR is one key range), URLs their observed normal form
//! ([`matcher::normalize::normalize_observed_url`]), hashes and e-mail addresses lower-cased.

use ingest::observation::DnsAnswer;
use ingest::{MatchValue, Observation, MATCH_FIELDS};
use matcher::normalize::{normalize_observed_url, parse_cidr, prefix_range};
use matcher::snapshot::{domain_key, domain_of_key};
use matcher::{Indicator, IndicatorType};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const DOMAIN: u8 = b'd';
const ADDR4: u8 = b'4';
const ADDR6: u8 = b'6';
const URL: u8 = b'u';
const HASH: u8 = b'h';
const EMAIL: u8 = b'e';

/// Longest URL recorded (longer ones are not indexed).
pub const MAX_URL: usize = 2048;

/// Append the index key of one matchable value to `out`; false (and `out` as it was, or
/// longer: the caller truncates) for what the index does not hold. No allocation for a URL
/// already in normal form, an address or a hash already lower-case.
pub fn key_into(value: MatchValue<'_>, out: &mut Vec<u8>) -> bool {
    match value {
        MatchValue::Domain(name) => {
            match matcher::text::trim_host(name).and_then(matcher::text::host_as_ip) {
                Some(ip) => address_into(ip, out),
                None => match domain_key(name) {
                    Some(k) => {
                        out.push(DOMAIN);
                        out.extend_from_slice(&k);
                    }
                    None => return false,
                },
            }
        }
        MatchValue::Address(ip, _) => address_into(ip, out),
        MatchValue::Url(url) => {
            let u = normalize_observed_url(url);
            if u.is_empty() || u.len() > MAX_URL {
                return false;
            }
            out.push(URL);
            out.extend_from_slice(u.as_bytes());
        }
        MatchValue::Hash(h) => return lowered_into(HASH, h, 128, out),
        MatchValue::Email(a) => return lowered_into(EMAIL, a, 320, out),
        MatchValue::Pattern(_) => return false,
    }
    true
}

fn address_into(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(a) => {
            out.push(ADDR4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(ADDR6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn lowered_into(tag: u8, v: &str, max: usize, out: &mut Vec<u8>) -> bool {
    if v.is_empty() || v.len() > max {
        return false;
    }
    out.push(tag);
    out.extend(v.bytes().map(|b| b.to_ascii_lowercase()));
    true
}

/// The index key of one matchable value; `None` for what the index does not hold
/// (substring patterns, over-long or empty values).
pub fn key_of(value: MatchValue<'_>) -> Option<Vec<u8>> {
    let mut k = Vec::new();
    key_into(value, &mut k).then_some(k)
}

fn tagged(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(tag);
    k.extend_from_slice(rest);
    k
}

fn lowered(tag: u8, v: &str, max: usize) -> Option<Vec<u8>> {
    let mut k = Vec::new();
    lowered_into(tag, v, max, &mut k).then_some(k)
}

fn address_key(ip: IpAddr) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    address_into(ip, &mut k);
    k
}

/// An observed value read back from its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Observed {
    /// A domain name.
    Domain(String),
    /// An address.
    Address(IpAddr),
    /// A URL (observed normal form).
    Url(String),
    /// A hash or fingerprint.
    Hash(String),
    /// An e-mail address.
    Email(String),
}

impl Observed {
    /// The value of `key`, or `None` for bytes no key of ours has.
    pub fn from_key(key: &[u8]) -> Option<Observed> {
        let (&tag, rest) = key.split_first()?;
        let text = || std::str::from_utf8(rest).ok().map(str::to_string);
        Some(match tag {
            DOMAIN => Observed::Domain(domain_of_key(std::str::from_utf8(rest).ok()?)),
            ADDR4 => Observed::Address(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(rest).ok()?))),
            ADDR6 => {
                Observed::Address(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(rest).ok()?)))
            }
            URL => Observed::Url(text()?),
            HASH => Observed::Hash(text()?),
            EMAIL => Observed::Email(text()?),
            _ => return None,
        })
    }

    /// The value as text.
    pub fn text(&self) -> String {
        match self {
            Observed::Domain(s) | Observed::Url(s) | Observed::Hash(s) | Observed::Email(s) => {
                s.clone()
            }
            Observed::Address(ip) => ip.to_string(),
        }
    }

    /// An observation carrying this value in `field` (an ECS name of [`MATCH_FIELDS`]), so
    /// the correlator can judge it exactly as it judges a live one; a field that does not
    /// fit the value's kind falls back to the kind's usual field.
    pub fn observation(&self, field: &str) -> Observation<'_> {
        let mut o = Observation::default();
        let s = |v: &str| Some(Cow::Owned(v.to_string()));
        match self {
            Observed::Domain(name) => match field {
                "url.domain" => o.url_domain = s(name),
                "tls.client.server_name" => o.tls_sni = s(name),
                "dns.answers.data" => o.dns_answers.push(DnsAnswer {
                    rtype: Cow::Borrowed("CNAME"),
                    data: Cow::Borrowed(name),
                }),
                _ => o.dns_question_name = s(name),
            },
            Observed::Address(ip) => match field {
                "dns.answers.data" => o.dns_answers.push(DnsAnswer {
                    rtype: Cow::Borrowed(if ip.is_ipv4() { "A" } else { "AAAA" }),
                    data: Cow::Owned(ip.to_string()),
                }),
                "source.ip" => o.source_ip = Some(*ip),
                _ => o.destination_ip = Some(*ip),
            },
            Observed::Url(u) => o.url_full = s(u),
            Observed::Hash(h) => match field {
                "tls.client.ja4" => o.ja4 = s(h),
                "tls.server.hash.sha1" => o.tls_server_sha1 = s(h),
                "tls.server.hash.sha256" => o.tls_server_sha256 = s(h),
                "tls.server.ja4s" => o.tls_server_ja4s = s(h),
                "file.hash.md5" => o.file_md5 = s(h),
                "file.hash.sha1" => o.file_sha1 = s(h),
                "file.hash.sha256" => o.file_sha256 = s(h),
                _ => o.ja3 = s(h),
            },
            Observed::Email(a) => o.email_from = s(a),
        }
        o
    }
}

/// The bit of `field` in a value's field set ([`MATCH_FIELDS`] index).
pub fn field_bit(field: &str) -> u32 {
    MATCH_FIELDS
        .iter()
        .position(|(n, _)| *n == field)
        .map_or(0, |i| 1 << i)
}

/// The ECS names of a field set, in [`MATCH_FIELDS`] order.
pub fn field_names(bits: u32) -> Vec<&'static str> {
    MATCH_FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, (n, _))| *n)
        .collect()
}

/// Which keys could hold a value an indicator covers. A superset: every candidate is then
/// checked with the snapshot's own matching ([`super::hunt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Exactly this key.
    Exact(Vec<u8>),
    /// Every key starting with these bytes.
    Prefix(Vec<u8>),
    /// Every key between the two, inclusive.
    Range(Vec<u8>, Vec<u8>),
}

/// The keys an indicator can cover: a domain and every name below it, the addresses of a
/// CIDR, the URLs under a URL, one hash or e-mail address. Patterns: none (the index holds
/// no free text).
pub fn probe(ind: &Indicator) -> Option<Probe> {
    use IndicatorType as T;
    match ind.itype {
        T::Fqdn => {
            let name = ind.value.trim_start_matches("*.").trim_start_matches('.');
            domain_key(name).map(|k| Probe::Prefix(tagged(DOMAIN, &k)))
        }
        T::Ipv4 | T::Ipv6 => {
            let (addr, len) = parse_cidr(&ind.value)?;
            Some(match addr {
                IpAddr::V4(a) => {
                    let (lo, hi) = prefix_range(u128::from(u32::from(a)), len, true);
                    let k = |v: u128| address_key(IpAddr::V4(Ipv4Addr::from(v as u32)));
                    Probe::Range(k(lo), k(hi))
                }
                IpAddr::V6(a) => {
                    let (lo, hi) = prefix_range(u128::from(a), len, false);
                    let k = |v: u128| address_key(IpAddr::V6(Ipv6Addr::from(v)));
                    Probe::Range(k(lo), k(hi))
                }
            })
        }
        T::Url => Some(Probe::Prefix(tagged(URL, ind.value.as_bytes()))),
        T::Email => lowered(EMAIL, &ind.value, 320).map(Probe::Exact),
        T::Pattern => None,
        _ => lowered(HASH, &ind.value, 128).map(Probe::Exact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        for (v, want) in [
            (
                MatchValue::Domain("WWW.Example.com."),
                Observed::Domain("www.example.com".into()),
            ),
            (
                MatchValue::Domain("10.1.2.3"),
                Observed::Address("10.1.2.3".parse().unwrap()),
            ),
            (
                MatchValue::Address("::1".parse().unwrap(), None),
                Observed::Address("::1".parse().unwrap()),
            ),
            (
                MatchValue::Url("HTTP://Evil.com:80/a"),
                Observed::Url("http://evil.com/a".into()),
            ),
            (MatchValue::Hash("ABCDEF"), Observed::Hash("abcdef".into())),
            (
                MatchValue::Email("A@B.org"),
                Observed::Email("a@b.org".into()),
            ),
        ] {
            let k = key_of(v).unwrap();
            assert_eq!(Observed::from_key(&k), Some(want), "{v:?}");
        }
        assert_eq!(key_of(MatchValue::Pattern("Mozilla")), None);
        assert_eq!(Observed::from_key(b"x123"), None);
        assert_eq!(Observed::from_key(b"4\x01"), None);
    }

    #[test]
    fn domain_probe_is_a_prefix_of_its_subdomains_only_by_labels_after_checking() {
        let ind = Indicator::new("example.com", IndicatorType::Fqdn, "t");
        let Some(Probe::Prefix(p)) = probe(&ind) else {
            panic!("a domain probes a prefix")
        };
        assert!(key_of(MatchValue::Domain("a.b.example.com"))
            .unwrap()
            .starts_with(&p));
        assert!(key_of(MatchValue::Domain("example.com"))
            .unwrap()
            .starts_with(&p));
        assert!(!key_of(MatchValue::Domain("example.org"))
            .unwrap()
            .starts_with(&p));
    }

    #[test]
    fn cidr_probe_spans_its_addresses() {
        let ind = Indicator::new("10.1.0.0/16", IndicatorType::Ipv4, "t");
        let Some(Probe::Range(lo, hi)) = probe(&ind) else {
            panic!("a CIDR probes a range")
        };
        let inside = key_of(MatchValue::Address("10.1.255.7".parse().unwrap(), None)).unwrap();
        let outside = key_of(MatchValue::Address("10.2.0.0".parse().unwrap(), None)).unwrap();
        assert!(lo <= inside && inside <= hi);
        assert!(outside > hi);
    }
}
