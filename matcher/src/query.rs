//! The lookup behind `trawl query` and `trawl serve`'s searches: one value (any itype) →
//! every indicator of a snapshot covering it, with how it covers it (ARCHITECTURE.md §4).

use crate::matcher::{Hit, Matcher};
use crate::model::{Indicator, IndicatorType, MatchKind};
use crate::normalize::{normalize, parse_cidr, prefix_range, NormalizeError};
use crate::snapshot::Snapshot;
use crate::text::url_host;
use std::net::IpAddr;

/// What one looked-up value found.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The value in normal form.
    pub normalized: String,
    /// Its indicator type.
    pub itype: IndicatorType,
    /// Every covering indicator and how it covers the value, in snapshot id order.
    pub hits: Vec<(Indicator, MatchKind)>,
}

/// Every indicator of `snapshot` covering `raw`: a domain and its parents, an address and
/// its enclosing CIDRs (a CIDR query: the CIDR itself and every CIDR enclosing it), a URL
/// (exact or by prefix) and its host, an e-mail address and its domain, a hash, a pattern.
pub fn lookup(snapshot: &Snapshot, raw: &str) -> Result<Lookup, NormalizeError> {
    let n = normalize(raw, None)?;
    let mut hits: Vec<Hit> = Vec::new();
    match n.itype {
        IndicatorType::Fqdn => snapshot.match_domain(&n.value, &mut hits),
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
            if let Some((addr, len)) = parse_cidr(&n.value).filter(|_| n.value.contains('/')) {
                if let Some(id) = snapshot.find(n.itype, &n.value) {
                    hits.push(Hit {
                        id,
                        kind: MatchKind::Exact,
                    });
                }
                let mut inner = Vec::new();
                snapshot.match_ip(addr, &mut inner);
                for h in inner {
                    let covers = snapshot
                        .value(h.id)
                        .is_some_and(|v| v != n.value && cidr_covers(&v, addr, len));
                    if covers {
                        hits.push(h);
                    }
                }
            } else if let Ok(ip) = n.value.parse::<IpAddr>() {
                snapshot.match_ip(ip, &mut hits);
            }
        }
        IndicatorType::Url => {
            snapshot.match_url(&n.value, &mut hits);
            if let Some(host) = url_host(&n.value) {
                snapshot.match_domain(host, &mut hits);
            }
        }
        IndicatorType::Email => {
            snapshot.match_email(&n.value, &mut hits);
            if let Some((_, domain)) = n.value.rsplit_once('@') {
                snapshot.match_domain(domain, &mut hits);
            }
        }
        IndicatorType::Pattern => {
            if let Some(id) = snapshot.find(n.itype, &n.value) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            }
        }
        _ => snapshot.match_hash(&n.value, &mut hits),
    }
    hits.sort();
    hits.dedup_by_key(|h| h.id);
    let hits = hits
        .into_iter()
        .filter_map(|h| Some((snapshot.try_indicator(h.id)?, h.kind)))
        .collect();
    Ok(Lookup {
        normalized: n.value,
        itype: n.itype,
        hits,
    })
}

/// One row of `trawl query --format json` (and of the server's native search): the query,
/// the indicator's fields and how it matched.
pub fn row_json(query: &str, ind: &Indicator, kind: MatchKind) -> serde_json::Value {
    serde_json::json!({
        "query": query,
        "value": ind.value,
        "itype": ind.itype.as_str(),
        "confidence": ind.confidence,
        "severity": ind.severity.as_str(),
        "tags": ind.tags,
        "sources": ind.sources,
        "tlp": ind.tlp.as_str(),
        "matched": kind.as_str(),
        "provider": ind.provider,
        "description": ind.description,
        "reference": ind.reference,
        "external_id": ind.external_id,
        "first_seen": ind.first_seen,
        "last_seen": ind.last_seen,
        "expires": ind.expires,
        "derived": ind.derived,
        "allowlist": ind.allowlist,
        "allowlisted_by": ind.allowlisted_by,
        "groups": ind.groups,
    })
}

/// Whether CIDR `outer` contains the network `inner_addr/inner_len`.
fn cidr_covers(outer: &str, inner_addr: IpAddr, inner_len: u8) -> bool {
    let Some((addr, len)) = parse_cidr(outer) else {
        return false;
    };
    if len > inner_len {
        return false;
    }
    let (net, inner, v4) = match (addr, inner_addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), true),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.into(), b.into(), false),
        _ => return false,
    };
    let (lo, hi) = prefix_range(net, len, v4);
    (lo..=hi).contains(&inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotBuilder;

    fn snap(values: &[&str]) -> Snapshot {
        let mut b = SnapshotBuilder::new();
        for v in values {
            let n = normalize(v, None).unwrap_or_else(|e| panic!("{v}: {e}"));
            b.insert(Indicator::new(n.value, n.itype, "t"));
        }
        b.build().unwrap_or_else(|e| panic!("{e}"))
    }

    fn found(l: &Lookup) -> Vec<(&str, MatchKind)> {
        l.hits.iter().map(|(i, k)| (i.value.as_str(), *k)).collect()
    }

    #[test]
    fn covers_parents_cidrs_urls_and_hosts() {
        let s = snap(&[
            "evil.example",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "http://bad.example/x",
        ]);
        let l = lookup(&s, "a.evil.example").unwrap();
        assert_eq!(found(&l), vec![("evil.example", MatchKind::ParentDomain)]);
        let l = lookup(&s, "10.1.2.3").unwrap();
        assert_eq!(l.hits.len(), 2);
        // A CIDR query: enclosing CIDRs only, not the narrower ones inside it.
        let l = lookup(&s, "10.0.0.0/12").unwrap();
        assert_eq!(found(&l), vec![("10.0.0.0/8", MatchKind::EnclosingCidr)]);
        let l = lookup(&s, "hxxp://bad[.]example/x/y").unwrap();
        assert_eq!(l.normalized, "http://bad.example/x/y");
        assert_eq!(
            found(&l),
            vec![("http://bad.example/x", MatchKind::UrlPrefix)]
        );
        assert!(lookup(&s, "notevil.example").unwrap().hits.is_empty());
        assert!(lookup(&s, "").is_err());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn cidr_covers_wider_networks_of_the_same_family_only() {
        assert!(cidr_covers("10.0.0.0/8", ip("10.1.0.0"), 16));
        assert!(cidr_covers("0.0.0.0/0", ip("203.0.113.7"), 32));
        assert!(cidr_covers("10.1.0.0/16", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.0.0.0/16", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.1.0.0/24", ip("10.1.0.0"), 16));
        assert!(!cidr_covers("10.0.0.0/8", ip("2001:db8::"), 32));
        assert!(cidr_covers("2001:db8::/32", ip("2001:db8:ff::"), 48));
        assert!(cidr_covers("::/0", ip("ffff::1"), 128));
        assert!(!cidr_covers("2001:db9::/32", ip("2001:db8::"), 48));
        assert!(!cidr_covers("not a net", ip("10.0.0.0"), 8));
    }
}
