//! The naive reference matcher: a plain list scanned linearly, with ARCHITECTURE.md §4 semantics
//! written as directly as possible. Property tests check that [`crate::Snapshot`] answers
//! exactly like it.

use crate::matcher::{Hit, IndicatorId, Matcher};
use crate::model::{Indicator, IndicatorType, MatchKind};
use crate::normalize::{normalize_observed_url, parse_cidr};
use crate::text;
use std::net::IpAddr;

/// Reference [`crate::Matcher`] over a `Vec<Indicator>` (ids are indices), for property tests.
#[derive(Debug, Clone)]
pub struct NaiveMatcher {
    /// The indicators, in id order.
    pub indicators: Vec<Indicator>,
}

impl NaiveMatcher {
    /// Merge duplicates (same itype and value) like `SnapshotBuilder::insert`, tidy, and sort
    /// into id order: (itype in `IndicatorType::ALL` order, value bytes).
    pub fn new(mut indicators: Vec<Indicator>) -> Self {
        let pos = |t: IndicatorType| IndicatorType::ALL.iter().position(|x| *x == t);
        // Stable sort, then merge runs of equal (itype, value) in input order.
        indicators.sort_by(|a, b| {
            (pos(a.itype), a.value.as_bytes()).cmp(&(pos(b.itype), b.value.as_bytes()))
        });
        let mut merged: Vec<Indicator> = Vec::new();
        for mut ind in indicators {
            ind.tidy();
            match merged.last_mut() {
                Some(m) if m.itype == ind.itype && m.value == ind.value => {
                    m.merge(&ind);
                    m.tidy();
                }
                _ => merged.push(ind),
            }
        }
        NaiveMatcher { indicators: merged }
    }

    fn each(&self) -> impl Iterator<Item = (IndicatorId, &Indicator)> {
        self.indicators
            .iter()
            .enumerate()
            .map(|(i, ind)| (i as IndicatorId, ind))
    }
}

impl Matcher for NaiveMatcher {
    fn match_domain(&self, host: &str, hits: &mut Vec<Hit>) {
        let Some(h) = text::trim_host(host) else {
            return;
        };
        if let Some(ip) = text::host_as_ip(h) {
            self.match_ip(ip, hits);
            return;
        }
        let h = h.to_ascii_lowercase();
        for (id, ind) in self.each() {
            if ind.itype != IndicatorType::Fqdn {
                continue;
            }
            if h == ind.value {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            } else if !ind.exact_only
                && h.len() > ind.value.len()
                && h.ends_with(&ind.value)
                && h.as_bytes()[h.len() - ind.value.len() - 1] == b'.'
            {
                hits.push(Hit {
                    id,
                    kind: MatchKind::ParentDomain,
                });
            }
        }
    }

    fn match_ip(&self, ip: IpAddr, hits: &mut Vec<Hit>) {
        for (id, ind) in self.each() {
            if !ind.itype.is_ip() {
                continue;
            }
            let Some((net, p)) = parse_cidr(&ind.value) else {
                continue;
            };
            let (inside, full) = match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let shift = 32 - u32::from(p);
                    let same = shift == 32 || (u32::from(n) >> shift) == (u32::from(a) >> shift);
                    (same, p == 32)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let shift = 128 - u32::from(p);
                    let same = shift == 128 || (u128::from(n) >> shift) == (u128::from(a) >> shift);
                    (same, p == 128)
                }
                _ => (false, false),
            };
            if inside {
                let kind = if full {
                    MatchKind::Exact
                } else {
                    MatchKind::EnclosingCidr
                };
                hits.push(Hit { id, kind });
            }
        }
    }

    fn match_url(&self, url: &str, hits: &mut Vec<Hit>) {
        let u = normalize_observed_url(url);
        for (id, ind) in self.each() {
            if ind.itype != IndicatorType::Url {
                continue;
            }
            let v = ind.value.as_str();
            if *u == *v {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            } else if !v.contains('?') && u.len() > v.len() && u.starts_with(v) {
                let next = u.as_bytes()[v.len()];
                if v.ends_with('/') || next == b'/' || next == b'?' {
                    hits.push(Hit {
                        id,
                        kind: MatchKind::UrlPrefix,
                    });
                }
            }
        }
        self.match_pattern(u.as_bytes(), hits);
    }

    fn match_hash(&self, value: &str, hits: &mut Vec<Hit>) {
        for (id, ind) in self.each() {
            let hashy = ind.itype.is_file_hash()
                || matches!(
                    ind.itype,
                    IndicatorType::Ja3 | IndicatorType::Ja4 | IndicatorType::X509Sha1
                );
            if hashy && ind.value.eq_ignore_ascii_case(value) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            }
        }
    }

    fn match_email(&self, address: &str, hits: &mut Vec<Hit>) {
        for (id, ind) in self.each() {
            if ind.itype == IndicatorType::Email && ind.value.eq_ignore_ascii_case(address) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Exact,
                });
            }
        }
    }

    fn match_pattern(&self, text: &[u8], hits: &mut Vec<Hit>) {
        let hay = text.to_ascii_lowercase();
        for (id, ind) in self.each() {
            if ind.itype != IndicatorType::Pattern || ind.value.is_empty() {
                continue;
            }
            let needle = ind.value.as_bytes().to_ascii_lowercase();
            if hay.windows(needle.len()).any(|w| w == needle.as_slice()) {
                hits.push(Hit {
                    id,
                    kind: MatchKind::Substring,
                });
            }
        }
    }

    fn match_text(&self, text: &[u8], hits: &mut Vec<Hit>) {
        text::match_text_with(self, text, hits);
    }
}
