//! The breadth rule: an indicator or allowlist entry so wide that it would alert on (or
//! block, or silence) a large part of the internet is refused. IPv4 networks shorter than
//! `/8` and IPv6 networks shorter than `/16` by default (a feed's `min_prefix` changes
//! that), and domain names that are a public suffix or a bare top-level domain (`com`,
//! `co.uk`, `github.io`), decided by the Public Suffix List compiled into trawl (its ICANN
//! and private sections), so the check needs no network.

use crate::allowlist::parse_net;
use crate::config::AllowlistConfig;
use matcher::{normalize, IndicatorType};
use serde::{Deserialize, Deserializer};

/// The shortest prefix lengths an IP indicator may have (`min_prefix = { ipv4 = 8,
/// ipv6 = 16 }` in a `[[feed]]`; either key may be left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinPrefix {
    /// IPv4: networks shorter than this are refused (0-32, default 8).
    pub ipv4: u8,
    /// IPv6: networks shorter than this are refused (0-128, default 16).
    pub ipv6: u8,
}

impl MinPrefix {
    /// The default limits: `/8` for IPv4, `/16` for IPv6.
    pub const DEFAULT: MinPrefix = MinPrefix { ipv4: 8, ipv6: 16 };
}

impl Default for MinPrefix {
    fn default() -> Self {
        MinPrefix::DEFAULT
    }
}

impl<'de> Deserialize<'de> for MinPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "a table like { ipv4 = 8, ipv6 = 16 }"
        )]
        struct Raw {
            ipv4: Option<u8>,
            ipv6: Option<u8>,
        }
        let raw = Raw::deserialize(d)?;
        let ipv4 = raw.ipv4.unwrap_or(MinPrefix::DEFAULT.ipv4);
        let ipv6 = raw.ipv6.unwrap_or(MinPrefix::DEFAULT.ipv6);
        if ipv4 > 32 {
            return Err(serde::de::Error::custom(format!(
                "min_prefix.ipv4 = {ipv4}: must be 0-32"
            )));
        }
        if ipv6 > 128 {
            return Err(serde::de::Error::custom(format!(
                "min_prefix.ipv6 = {ipv6}: must be 0-128"
            )));
        }
        Ok(MinPrefix { ipv4, ipv6 })
    }
}

/// Why a value is too broad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooBroad {
    /// A network shorter than the limit.
    #[error("/{len} is wider than the /{min} limit for IPv{family}")]
    Prefix {
        /// Its prefix length.
        len: u8,
        /// The limit.
        min: u8,
        /// 4 or 6.
        family: u8,
    },
    /// A bare top-level domain.
    #[error("a top-level domain would cover every name under it")]
    TopLevel,
    /// A public suffix (from the ICANN or the private section of the list).
    #[error("a public suffix ({section} section of the Public Suffix List) would cover every name registered under it")]
    PublicSuffix {
        /// `ICANN` or `private`.
        section: &'static str,
    },
}

/// The reason `value` (normalised, of `itype`) is too broad to use, if it is: an IP network
/// shorter than `min`, or a domain that is a public suffix or a bare TLD. Other types are
/// never too broad.
pub fn too_broad(itype: IndicatorType, value: &str, min: MinPrefix) -> Option<TooBroad> {
    match itype {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
            let (_, len, v4) = parse_net(value)?;
            let (min, family) = if v4 { (min.ipv4, 4) } else { (min.ipv6, 6) };
            (len < min).then_some(TooBroad::Prefix { len, min, family })
        }
        IndicatorType::Fqdn => public_suffix(value),
        _ => None,
    }
}

/// A feed value's breadth check with the feed's `min_prefix` (the defaults when `None`): the
/// reject reason of a value that is too broad.
pub fn check_feed_value(
    itype: IndicatorType,
    value: &str,
    min_prefix: Option<MinPrefix>,
) -> Result<(), String> {
    match too_broad(itype, value, min_prefix.unwrap_or_default()) {
        None => Ok(()),
        Some(why @ TooBroad::Prefix { .. }) => Err(format!("too broad: {why} (min_prefix)")),
        Some(why) => Err(format!("too broad: {why}")),
    }
}

/// `Some` when the (lower-case, ASCII) domain `name` is itself a public suffix or a bare
/// top-level domain.
pub fn public_suffix(name: &str) -> Option<TooBroad> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    if !name.contains('.') {
        return Some(TooBroad::TopLevel);
    }
    let suffix = psl::suffix(name.as_bytes())?;
    if suffix.as_bytes() != name.as_bytes() {
        return None;
    }
    Some(match suffix.typ() {
        Some(psl::Type::Private) => TooBroad::PublicSuffix { section: "private" },
        _ => TooBroad::PublicSuffix { section: "ICANN" },
    })
}

/// An `[allowlist]` entry that is too broad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} entry {value:?} is too broad: {reason}; an allowlist entry that wide would silence everything under it")]
pub struct BroadAllowlistEntry {
    /// `domains` or `cidrs`.
    pub key: &'static str,
    /// The entry as written.
    pub value: String,
    /// Why.
    pub reason: TooBroad,
}

/// Check the `[allowlist]` table with the default limits: the first entry that is a public
/// suffix, a TLD or a network shorter than `/8` (IPv4) or `/16` (IPv6). Entries that do not
/// normalise are left to the update, which reports them.
pub fn check_allowlist(a: &AllowlistConfig) -> Result<(), BroadAllowlistEntry> {
    let entries = a
        .domains
        .iter()
        .map(|d| ("domains", d, Some(IndicatorType::Fqdn)))
        .chain(a.cidrs.iter().map(|c| ("cidrs", c, None)));
    for (key, raw, hint) in entries {
        let Ok(n) = normalize(raw, hint) else {
            continue;
        };
        if let Some(reason) = too_broad(n.itype, &n.value, MinPrefix::DEFAULT) {
            return Err(BroadAllowlistEntry {
                key,
                value: raw.clone(),
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broad(itype: IndicatorType, v: &str) -> bool {
        too_broad(itype, v, MinPrefix::DEFAULT).is_some()
    }

    #[test]
    fn prefixes_below_the_limits_are_broad() {
        use IndicatorType::{Ipv4, Ipv6};
        for v in ["0.0.0.0/0", "128.0.0.0/1", "10.0.0.0/7"] {
            assert!(broad(Ipv4, v), "{v}");
        }
        for v in ["10.0.0.0/8", "1.2.3.4", "198.51.100.0/24"] {
            assert!(!broad(Ipv4, v), "{v}");
        }
        for v in ["::/0", "2000::/3", "2001::/15"] {
            assert!(broad(Ipv6, v), "{v}");
        }
        for v in ["2001::/16", "2001:db8::/32", "::1"] {
            assert!(!broad(Ipv6, v), "{v}");
        }
        let loose = MinPrefix { ipv4: 4, ipv6: 8 };
        assert_eq!(too_broad(Ipv4, "10.0.0.0/7", loose), None);
        assert_eq!(
            too_broad(Ipv4, "0.0.0.0/0", loose),
            Some(TooBroad::Prefix {
                len: 0,
                min: 4,
                family: 4
            })
        );
        let strict = MinPrefix { ipv4: 24, ipv6: 48 };
        assert!(too_broad(Ipv4, "198.51.0.0/16", strict).is_some());
        assert!(too_broad(Ipv6, "2001:db8::/32", strict).is_some());
    }

    #[test]
    fn public_suffixes_and_tlds_are_broad() {
        use IndicatorType::Fqdn;
        assert_eq!(public_suffix("com"), Some(TooBroad::TopLevel));
        assert_eq!(public_suffix("localhost"), Some(TooBroad::TopLevel));
        assert_eq!(
            public_suffix("co.uk"),
            Some(TooBroad::PublicSuffix { section: "ICANN" })
        );
        assert_eq!(
            public_suffix("github.io"),
            Some(TooBroad::PublicSuffix { section: "private" })
        );
        for v in ["blogspot.com", "s3.amazonaws.com", "xn--p1ai", "com."] {
            assert!(broad(Fqdn, v), "{v}");
        }
        for v in [
            "example.com",
            "evil.co.uk",
            "user.github.io",
            "a.b.evil.example",
            "xn--80ak6aa92e.xn--p1ai",
        ] {
            assert!(!broad(Fqdn, v), "{v}");
        }
        // Other types have no breadth.
        assert!(!broad(IndicatorType::Url, "http://com/"));
        assert!(!broad(IndicatorType::Email, "a@com"));
    }

    proptest::proptest! {
        #[test]
        fn prefix_rule_is_exactly_len_below_min(a: u32, b: u128, len4 in 0u8..=32, len6 in 0u8..=128, min4 in 0u8..=32, min6 in 0u8..=128) {
            let min = MinPrefix { ipv4: min4, ipv6: min6 };
            let v4 = format!("{}/{len4}", std::net::Ipv4Addr::from(a));
            let v6 = format!("{}/{len6}", std::net::Ipv6Addr::from(b));
            proptest::prop_assert_eq!(too_broad(IndicatorType::Ipv4, &v4, min).is_some(), len4 < min4);
            proptest::prop_assert_eq!(too_broad(IndicatorType::Ipv6, &v6, min).is_some(), len6 < min6);
        }

        #[test]
        fn any_text_is_judged_without_panicking(s in "\\PC{0,80}", t in 0usize..13) {
            let itype = IndicatorType::ALL[t % IndicatorType::ALL.len()];
            let _ = too_broad(itype, &s, MinPrefix::DEFAULT);
            let _ = public_suffix(&s);
        }
    }

    #[test]
    fn min_prefix_parses_with_defaults_and_bounds() {
        #[derive(Deserialize)]
        struct T {
            m: MinPrefix,
        }
        let p = |s: &str| toml::from_str::<T>(s).map(|t| t.m);
        assert_eq!(
            p("m = { ipv4 = 16 }").unwrap(),
            MinPrefix { ipv4: 16, ipv6: 16 }
        );
        assert_eq!(p("m = {}").unwrap(), MinPrefix::DEFAULT);
        for (bad, word) in [
            ("m = { ipv4 = 33 }", "0-32"),
            ("m = { ipv6 = 129 }", "0-128"),
            ("m = { ipv5 = 1 }", "ipv5"),
            ("m = 8", "expected a table like { ipv4 = 8, ipv6 = 16 }"),
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn allowlist_table_refuses_what_would_silence_everything() {
        let mut a = AllowlistConfig {
            domains: vec!["example.org".into(), "corp.example".into()],
            cidrs: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            iana: None,
        };
        assert_eq!(check_allowlist(&a), Ok(()));
        for (domains, cidrs, key, reason) in [
            (vec!["CO.UK."], vec![], "domains", "public suffix"),
            (vec!["github.io"], vec![], "domains", "private section"),
            (vec!["com"], vec![], "domains", "top-level"),
            (
                vec![],
                vec!["0.0.0.0/0"],
                "cidrs",
                "/0 is wider than the /8",
            ),
            (vec![], vec!["::/0"], "cidrs", "IPv6"),
        ] {
            a.domains = domains.into_iter().map(String::from).collect();
            a.cidrs = cidrs.into_iter().map(String::from).collect();
            let e = check_allowlist(&a).unwrap_err();
            assert_eq!(e.key, key);
            let text = e.to_string();
            assert!(text.contains(reason), "{text}");
        }
    }
}
