//! Query parameters of searches and feeds (CIF v3's names; confidence on CIF's 0-10 scale
//! for the CIF endpoints, trawl's 0-100 for `/v1`), parsed strictly: an unknown or malformed
//! parameter is a 400 naming it, never ignored.

use matcher::{Indicator, IndicatorType, Tlp, UnixTime};

/// Which confidence scale the parameters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// CIF v3: 0-10 (trawl's value / 10).
    Cif,
    /// trawl: 0-100.
    Native,
}

impl Scale {
    /// A confidence as written on this scale → trawl's 0-100.
    pub fn to_trawl(self, text: &str) -> Option<u8> {
        let x: f64 = text.trim().parse().ok()?;
        let max = match self {
            Scale::Cif => 10.0,
            Scale::Native => 100.0,
        };
        if !(0.0..=max).contains(&x) {
            return None;
        }
        Some(((x * 100.0 / max).round()) as u8)
    }
}

/// CIF's confidence (0-10) of a trawl confidence.
pub fn cif_confidence(c: u8) -> f64 {
    f64::from(c) / 10.0
}

/// Longest value of any parameter, in bytes.
pub const MAX_PARAM_LEN: usize = 4096;
/// Most tags in one filter.
pub const MAX_TAGS: usize = 32;

/// The parsed filters of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// `q` / `indicator`: the value searched for.
    pub q: Option<String>,
    /// `itype`.
    pub itype: Option<IndicatorType>,
    /// `confidence`: the minimum, on trawl's scale.
    pub min_confidence: Option<u8>,
    /// `tags`: every one required (lower-case).
    pub tags: Vec<String>,
    /// `tags=!x`: none of these.
    pub not_tags: Vec<String>,
    /// `provider`.
    pub provider: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `nolog`: do not log this search.
    pub nolog: bool,
    /// `days`, `hours`, `reporttime`: reported at or after.
    pub since: Option<UnixTime>,
    /// `reporttimeend`: reported at or before.
    pub until: Option<UnixTime>,
    /// `groups`: only indicators of these groups (narrows; never widens a token's view).
    pub groups: Vec<String>,
    /// `tlp`: only this marking.
    pub tlp: Option<Tlp>,
    /// `format` (`/v1/feed` only).
    pub format: Option<String>,
    /// `seen_within` (`7d`, `12h`; a bare number is days): only indicators a sensor
    /// reported a sighting of at or after this time (sightings the token may see).
    pub seen_since: Option<UnixTime>,
}

/// A parameter that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct BadParam {
    /// The parameter's name (as sent, shortened).
    pub param: String,
    /// Why.
    pub reason: String,
}

const KNOWN: &[&str] = &[
    "q",
    "indicator",
    "itype",
    "confidence",
    "tags",
    "tag",
    "provider",
    "limit",
    "nolog",
    "days",
    "hours",
    "reporttime",
    "reporttimeend",
    "groups",
    "group",
    "tlp",
    "format",
    "write",
    "seen_within",
];

/// CIF filters trawl cannot apply: refused rather than silently ignored.
const UNSUPPORTED: &[&str] = &["asn", "asn_desc", "cc", "region", "rdata"];

impl Filters {
    /// Parse a URL query string (`a=1&b=2`, percent-encoded).
    pub fn parse(query: &str, scale: Scale, now: UnixTime) -> Result<Filters, BadParam> {
        let mut f = Filters::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let bad = |reason: String| BadParam {
                param: shorten(&k),
                reason,
            };
            if v.len() > MAX_PARAM_LEN {
                return Err(bad(format!("longer than {MAX_PARAM_LEN} bytes")));
            }
            let v = v.trim();
            match &*k {
                "q" | "indicator" => {
                    if !v.is_empty() {
                        f.q = Some(v.to_string());
                    }
                }
                "itype" => {
                    if !v.is_empty() {
                        f.itype = Some(
                            v.parse()
                                .map_err(|e: matcher::UnknownName| bad(e.to_string()))?,
                        );
                    }
                }
                "confidence" => {
                    if !v.is_empty() {
                        let max = if scale == Scale::Cif { 10 } else { 100 };
                        f.min_confidence =
                            Some(scale.to_trawl(v).ok_or_else(|| {
                                bad(format!("expected a number from 0 to {max}"))
                            })?);
                    }
                }
                "tags" | "tag" => {
                    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let (list, t) = match t.strip_prefix('!') {
                            Some(t) => (&mut f.not_tags, t),
                            None => (&mut f.tags, t),
                        };
                        if t.is_empty() || t.len() > 64 || t.chars().any(char::is_control) {
                            return Err(bad(format!("{:?} is not a tag", shorten(t))));
                        }
                        list.push(t.to_lowercase());
                    }
                    if f.tags.len() + f.not_tags.len() > MAX_TAGS {
                        return Err(bad(format!("more than {MAX_TAGS} tags")));
                    }
                }
                "provider" => {
                    if !v.is_empty() {
                        f.provider = Some(v.to_string());
                    }
                }
                "limit" => {
                    if !v.is_empty() {
                        f.limit = Some(v.parse().map_err(|_| bad("expected a count".into()))?);
                    }
                }
                "nolog" => {
                    f.nolog = flag(v).ok_or_else(|| bad("expected 1, 0, true or false".into()))?
                }
                "write" => {
                    flag(v).ok_or_else(|| bad("expected 1, 0, true or false".into()))?;
                }
                "days" | "hours" => {
                    if !v.is_empty() {
                        let n: i64 = v
                            .parse()
                            .ok()
                            .filter(|n| (0..=36_500 * 24).contains(n))
                            .ok_or_else(|| bad("expected a whole number".into()))?;
                        let secs = if k == "days" { n * 86_400 } else { n * 3_600 };
                        let t = now - secs;
                        f.since = Some(f.since.map_or(t, |s| s.max(t)));
                    }
                }
                "reporttime" | "reporttimeend" => {
                    if !v.is_empty() {
                        let t = parse_time(v).ok_or_else(|| {
                            bad("expected a time like 2024-05-01T00:00:00Z".into())
                        })?;
                        if k == "reporttime" {
                            f.since = Some(f.since.map_or(t, |s| s.max(t)));
                        } else {
                            f.until = Some(t);
                        }
                    }
                }
                "groups" | "group" => {
                    for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                        feeds::config::check_group_name(g).map_err(bad)?;
                        f.groups.push(g.to_string());
                    }
                }
                "tlp" => {
                    if !v.is_empty() {
                        f.tlp = Some(
                            v.parse()
                                .map_err(|e: matcher::UnknownName| bad(e.to_string()))?,
                        );
                    }
                }
                "format" => f.format = Some(v.to_string()),
                "seen_within" => {
                    if !v.is_empty() {
                        let secs = match v.parse::<i64>() {
                            Ok(days) => days.checked_mul(86_400),
                            Err(_) => v
                                .parse::<feeds::config::DurationSpec>()
                                .ok()
                                .and_then(|d| i64::try_from(d.0.as_secs()).ok()),
                        }
                        .filter(|s| (1..=36_500 * 86_400).contains(s))
                        .ok_or_else(|| {
                            bad("expected a duration like 7d or 12h (a bare number is days)".into())
                        })?;
                        f.seen_since = Some(now - secs);
                    }
                }
                other if UNSUPPORTED.contains(&other) => {
                    if !v.is_empty() {
                        return Err(bad("this server cannot filter by it".into()));
                    }
                }
                other => {
                    let hint = feeds::config::nearest(other, KNOWN.iter().copied())
                        .map(|n| format!(", did you mean {n}?"))
                        .unwrap_or_default();
                    return Err(bad(format!("unknown parameter{hint}")));
                }
            }
        }
        f.groups.sort();
        f.groups.dedup();
        Ok(f)
    }

    /// Whether `ind` passes every filter but `q` and `limit`.
    pub fn keeps(&self, ind: &Indicator) -> bool {
        if self.itype.is_some_and(|t| t != ind.itype) {
            return false;
        }
        if self.min_confidence.is_some_and(|c| ind.confidence < c) {
            return false;
        }
        if !self.tags.iter().all(|t| ind.tags.contains(t)) {
            return false;
        }
        if self.not_tags.iter().any(|t| ind.tags.contains(t)) {
            return false;
        }
        if let Some(p) = &self.provider {
            if ind.provider.as_deref() != Some(p.as_str()) && !ind.sources.contains(p) {
                return false;
            }
        }
        if !self.groups.is_empty()
            && !ind
                .groups
                .iter()
                .any(|g| self.groups.iter().any(|s| s == g))
        {
            return false;
        }
        if self.tlp.is_some_and(|t| t != ind.tlp) {
            return false;
        }
        // An indicator with no time at all is kept: it is listed now.
        if let Some(t) = ind.reported.or(ind.last_seen).or(ind.first_seen) {
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        true
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// RFC 3339 (`2024-05-01T00:00:00Z`, fractions and offsets allowed) or a date.
pub fn parse_time(v: &str) -> Option<UnixTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let d = time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp())
}

/// RFC 3339 of a time, UTC, whole seconds.
pub fn format_time(t: UnixTime) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// At most 64 characters of untrusted text, for error messages.
fn shorten(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn cif_parameters_parse_on_the_cif_scale() {
        let f = Filters::parse(
            "indicator=evil.example&itype=fqdn&confidence=7.5&tags=malware,!search&tags=C2\
             &limit=10&nolog=1&days=2&hours=1&groups=csirt&tlp=amber",
            Scale::Cif,
            NOW,
        )
        .unwrap();
        assert_eq!(f.q.as_deref(), Some("evil.example"));
        assert_eq!(f.itype, Some(IndicatorType::Fqdn));
        assert_eq!(f.min_confidence, Some(75));
        assert_eq!(f.tags, vec!["malware", "c2"]);
        assert_eq!(f.not_tags, vec!["search"]);
        assert_eq!((f.limit, f.nolog), (Some(10), true));
        assert_eq!(f.since, Some(NOW - 3600));
        assert_eq!(f.groups, vec!["csirt"]);
        assert_eq!(f.tlp, Some(Tlp::Amber));
        let n = Filters::parse("confidence=75", Scale::Native, NOW).unwrap();
        assert_eq!(n.min_confidence, Some(75));
        let r = Filters::parse("reporttime=2027-01-15T00:00:00Z", Scale::Cif, NOW).unwrap();
        assert_eq!(r.since, Some(1_799_971_200));
        assert_eq!(parse_time("2027-01-15"), Some(1_799_971_200));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (q, param) in [
            ("confidence=11", "confidence"),
            ("confidence=abc", "confidence"),
            ("itype=ftp", "itype"),
            ("limit=-1", "limit"),
            ("days=x", "days"),
            ("reporttime=yesterday", "reporttime"),
            ("groups=Bad%20Group", "groups"),
            ("tlp=purple", "tlp"),
            ("asn=64496", "asn"),
            ("indicatr=x", "indicatr"),
            ("nolog=maybe", "nolog"),
            ("tags=%00", "tags"),
        ] {
            let e = Filters::parse(q, Scale::Cif, NOW).unwrap_err();
            assert_eq!(e.param, param, "{q}: {e}");
        }
        let e = Filters::parse("indicatr=x", Scale::Cif, NOW).unwrap_err();
        assert!(e.reason.contains("indicator"), "{e}");
        let long = format!("q={}", "a".repeat(MAX_PARAM_LEN + 1));
        assert!(Filters::parse(&long, Scale::Cif, NOW).is_err());
    }

    #[test]
    fn filters_keep_what_they_say() {
        let mut i = Indicator::new("evil.example", IndicatorType::Fqdn, "feed");
        i.confidence = 80;
        i.tags = vec!["malware".into()];
        i.reported = Some(NOW - 10);
        let f = |q: &str| Filters::parse(q, Scale::Cif, NOW).unwrap().keeps(&i);
        assert!(f(
            "itype=fqdn&confidence=8&tags=malware&hours=1&provider=feed"
        ));
        assert!(!f("confidence=8.5"));
        assert!(!f("tags=!malware"));
        assert!(!f("itype=ipv4"));
        assert!(!f("reporttimeend=2020-01-01"));
        assert!(!f("groups=csirt"));
        assert!(f("groups=everyone"));
        assert!(!f("tlp=amber"));
    }

    proptest::proptest! {
        /// Any query string parses or is refused; never a panic.
        #[test]
        fn any_query_string_is_handled(q in "\\PC{0,80}") {
            let _ = Filters::parse(&q, Scale::Cif, NOW);
            let _ = Filters::parse(&q, Scale::Native, NOW);
        }
    }
}
