//! The indicator data model (ARCHITECTURE.md §3): one normalised observable plus what we know of it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kind of observable an indicator describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndicatorType {
    /// An IPv4 address or CIDR (`192.0.2.1`, `198.51.100.0/24`).
    Ipv4,
    /// An IPv6 address or CIDR in RFC 5952 form.
    Ipv6,
    /// A domain name; matches itself and every name below it unless the entry is exact-only.
    Fqdn,
    /// A normalised URL (`http://host/path?q`).
    Url,
    /// An e-mail address.
    Email,
    /// MD5 file hash, lower-case hex.
    Md5,
    /// SHA-1 file hash, lower-case hex.
    Sha1,
    /// SHA-256 file hash, lower-case hex.
    Sha256,
    /// SHA-512 file hash, lower-case hex.
    Sha512,
    /// JA3 TLS client fingerprint (an MD5, lower-case hex).
    Ja3,
    /// JA4 TLS client fingerprint (`t13d1516h2_8daaf6152771_b186095e22b6`), or JA4S, the
    /// server's of the same family (`t120400_c030_4e8089b08790`).
    Ja4,
    /// SHA-1 fingerprint of an X.509 certificate, lower-case hex.
    #[serde(rename = "x509-sha1")]
    X509Sha1,
    /// A substring matched by Aho-Corasick inside URLs and user agents (e.g. `/gate.php`).
    Pattern,
}

impl IndicatorType {
    /// Every type, in a stable order.
    pub const ALL: [IndicatorType; 13] = [
        IndicatorType::Ipv4,
        IndicatorType::Ipv6,
        IndicatorType::Fqdn,
        IndicatorType::Url,
        IndicatorType::Email,
        IndicatorType::Md5,
        IndicatorType::Sha1,
        IndicatorType::Sha256,
        IndicatorType::Sha512,
        IndicatorType::Ja3,
        IndicatorType::Ja4,
        IndicatorType::X509Sha1,
        IndicatorType::Pattern,
    ];

    /// The name used in config files, JSON and `--type` (`ipv4`, `fqdn`, `x509-sha1`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorType::Ipv4 => "ipv4",
            IndicatorType::Ipv6 => "ipv6",
            IndicatorType::Fqdn => "fqdn",
            IndicatorType::Url => "url",
            IndicatorType::Email => "email",
            IndicatorType::Md5 => "md5",
            IndicatorType::Sha1 => "sha1",
            IndicatorType::Sha256 => "sha256",
            IndicatorType::Sha512 => "sha512",
            IndicatorType::Ja3 => "ja3",
            IndicatorType::Ja4 => "ja4",
            IndicatorType::X509Sha1 => "x509-sha1",
            IndicatorType::Pattern => "pattern",
        }
    }

    /// The ECS / STIX name for `threat.indicator.type` (ARCHITECTURE.md §6).
    pub fn ecs_name(self) -> &'static str {
        match self {
            IndicatorType::Ipv4 => "ipv4-addr",
            IndicatorType::Ipv6 => "ipv6-addr",
            IndicatorType::Fqdn => "domain-name",
            IndicatorType::Url | IndicatorType::Pattern => "url",
            IndicatorType::Email => "email-addr",
            IndicatorType::Md5
            | IndicatorType::Sha1
            | IndicatorType::Sha256
            | IndicatorType::Sha512 => "file",
            IndicatorType::X509Sha1 => "x509-certificate",
            IndicatorType::Ja3 | IndicatorType::Ja4 => "software",
        }
    }

    /// True for the file-hash types (md5, sha1, sha256, sha512).
    pub fn is_file_hash(self) -> bool {
        matches!(
            self,
            IndicatorType::Md5
                | IndicatorType::Sha1
                | IndicatorType::Sha256
                | IndicatorType::Sha512
        )
    }

    /// True for ipv4 and ipv6.
    pub fn is_ip(self) -> bool {
        matches!(self, IndicatorType::Ipv4 | IndicatorType::Ipv6)
    }
}

impl fmt::Display for IndicatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown name given where an enum value was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of: {expected}")]
pub struct UnknownName {
    /// What was being parsed ("indicator type", "severity", "tlp").
    pub what: &'static str,
    /// The offending input.
    pub value: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl FromStr for IndicatorType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t =
            match s.trim().to_ascii_lowercase().as_str() {
                "ipv4" | "ip" | "ipv4-addr" | "cidr" => IndicatorType::Ipv4,
                "ipv6" | "ipv6-addr" => IndicatorType::Ipv6,
                "fqdn" | "domain" | "domain-name" | "hostname" => IndicatorType::Fqdn,
                "url" | "uri" => IndicatorType::Url,
                "email" | "email-addr" => IndicatorType::Email,
                "md5" => IndicatorType::Md5,
                "sha1" => IndicatorType::Sha1,
                "sha256" => IndicatorType::Sha256,
                "sha512" => IndicatorType::Sha512,
                "ja3" => IndicatorType::Ja3,
                "ja4" => IndicatorType::Ja4,
                "x509-sha1" | "x509" | "x509-certificate" => IndicatorType::X509Sha1,
                "pattern" => IndicatorType::Pattern,
                _ => return Err(UnknownName {
                    what: "indicator type",
                    value: s.to_string(),
                    expected:
                        "ipv4 ipv6 fqdn url email md5 sha1 sha256 sha512 ja3 ja4 x509-sha1 pattern",
                }),
            };
        Ok(t)
    }
}

/// CIF's "pain scale": how bad a hit is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Worth looking at (the default).
    #[default]
    Medium,
    /// Act now.
    High,
}

impl Severity {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// The ECS `event.severity` number for this level combined with a confidence (0-100).
    pub fn event_severity(self, confidence: u8) -> u8 {
        let base: u16 = match self {
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
        };
        (base + u16::from(confidence.min(100)) / 4).min(99) as u8
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" | "l" | "1" => Ok(Severity::Low),
            "medium" | "med" | "m" | "2" => Ok(Severity::Medium),
            "high" | "h" | "3" | "critical" => Ok(Severity::High),
            _ => Err(UnknownName {
                what: "severity",
                value: s.to_string(),
                expected: "low medium high",
            }),
        }
    }
}

/// Traffic Light Protocol 2.0 marking; ordered from least to most restricted.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Tlp {
    /// TLP:CLEAR (formerly WHITE; CIF `public`).
    #[serde(rename = "clear")]
    Clear,
    /// TLP:GREEN.
    #[default]
    #[serde(rename = "green")]
    Green,
    /// TLP:AMBER (CIF `need-to-know`).
    #[serde(rename = "amber")]
    Amber,
    /// TLP:AMBER+STRICT.
    #[serde(rename = "amber+strict")]
    AmberStrict,
    /// TLP:RED (CIF `private`).
    #[serde(rename = "red")]
    Red,
}

impl Tlp {
    /// `clear`, `green`, `amber`, `amber+strict` or `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The ECS `threat.indicator.marking.tlp` spelling (`CLEAR`, `AMBER+STRICT`, ...).
    pub fn ecs_name(self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tlp {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.strip_prefix("tlp:").unwrap_or(&lower);
        match lower {
            "clear" | "white" | "public" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" | "need-to-know" => Ok(Tlp::Amber),
            "amber+strict" => Ok(Tlp::AmberStrict),
            "red" | "private" => Ok(Tlp::Red),
            _ => Err(UnknownName {
                what: "tlp",
                value: s.to_string(),
                expected: "clear green amber amber+strict red",
            }),
        }
    }
}

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

/// One normalised observable plus everything known about it.
///
/// `value` is always in normal form (see [`crate::normalize`]); build indicators through
/// [`Indicator::new`] or after normalising.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// The normalised value (`evil.example`, `198.51.100.0/24`, `http://h/p`, hex hash).
    pub value: String,
    /// What kind of observable `value` is.
    pub itype: IndicatorType,
    /// 0-100, CIF v1/v2 scale (95+ certain, 85 very, 75 somewhat, 50 coin flip).
    pub confidence: u8,
    /// low | medium | high.
    pub severity: Severity,
    /// Free-form lower-case tags (malware, botnet, phishing, c2, ...), sorted and unique.
    pub tags: Vec<String>,
    /// Sharing restriction.
    pub tlp: Tlp,
    /// Who reported it (e.g. `abuse.ch`).
    pub provider: Option<String>,
    /// Human description.
    pub description: Option<String>,
    /// A reference URL or identifier (e.g. `SBL256893`).
    pub reference: Option<String>,
    /// The indicator's own id at the intel platform it came from (ARCHITECTURE.md §3): a
    /// STIX id (`indicator--<uuid>`, from STIX files and TAXII) or a MISP attribute uuid.
    /// What a sighting refers to and what STIX/MISP-shaped exports reuse as their id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// First time any feed listed it.
    pub first_seen: Option<UnixTime>,
    /// Last time any feed listed it.
    pub last_seen: Option<UnixTime>,
    /// When the feed says it was reported.
    pub reported: Option<UnixTime>,
    /// After this instant the indicator is dropped at the next update.
    pub expires: Option<UnixTime>,
    /// Every feed that listed it, sorted and unique.
    pub sources: Vec<String>,
    /// True when derived from another indicator (a URL's host), never chained further.
    pub derived: bool,
    /// Domains only: match this exact name, not names below it.
    pub exact_only: bool,
    /// Set when an allowlist entry covers this indicator: it never alerts and never exports.
    pub allowlisted_by: Option<String>,
    /// True for an entry of an allowlist (an allowlist feed, the operator's `[allowlist]`, or
    /// the built-in IANA special-purpose ranges): observations it covers never alert, and
    /// firewall exports subtract it from enclosing blocklisted CIDRs.
    pub allowlist: bool,
    /// Privilege groups (ARCHITECTURE.md §3): who may see it through `trawl serve`. Sorted,
    /// unique, never empty; [`DEFAULT_GROUP`] unless a feed says otherwise. A record merged
    /// from feeds of several groups carries all of them and is shown only to a token that is
    /// a member of every one, so no merged field can reveal a group's data to an outsider.
    #[serde(default)]
    pub groups: Groups,
}

/// The group of every indicator whose feed names none (CIF's `everyone`).
pub const DEFAULT_GROUP: &str = "everyone";

/// The privilege groups of an indicator: a sorted, unique, never-empty set of names. Only
/// [`DEFAULT_GROUP`] (nearly every indicator) is held as nothing, so the common case costs
/// one pointer-sized word and no allocation; every reader sees the names through
/// [`Groups::iter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
// A boxed Vec on purpose: one word in every `Indicator`, where a Vec would be three.
#[allow(clippy::box_collection)]
pub struct Groups(Option<Box<Vec<String>>>);

impl Groups {
    /// Only [`DEFAULT_GROUP`].
    pub const fn everyone() -> Self {
        Groups(None)
    }

    /// Exactly one group.
    pub fn one(name: &str) -> Self {
        Groups::normal(vec![name.to_string()])
    }

    /// The set of the given names (sorted and deduplicated; none at all is [`DEFAULT_GROUP`]).
    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut v: Vec<String> = names.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        Groups::normal(v)
    }

    fn normal(v: Vec<String>) -> Self {
        match v.as_slice() {
            [] => Groups::everyone(),
            [g] if g == DEFAULT_GROUP => Groups::everyone(),
            _ => Groups(Some(Box::new(v))),
        }
    }

    /// Whether the set is exactly [`DEFAULT_GROUP`].
    pub fn is_everyone(&self) -> bool {
        self.0.is_none()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let default = self.0.is_none().then_some(DEFAULT_GROUP);
        let named = self.0.iter().flat_map(|v| v.iter().map(String::as_str));
        default.into_iter().chain(named)
    }

    /// The names, sorted, as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The names joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }

    /// Whether `name` is one of the groups.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|g| g == name)
    }

    /// Add every group of `other`.
    pub fn union(&mut self, other: &Groups) {
        if self == other {
            return;
        }
        let mut v = self.to_vec();
        union_sorted(&mut v, &other.to_vec());
        *self = Groups::normal(v);
    }

    /// The stored names when not the default set (what the snapshot interns); `None` for
    /// [`DEFAULT_GROUP`] alone.
    pub fn explicit(&self) -> Option<&[String]> {
        self.0.as_deref().map(Vec::as_slice)
    }
}

impl Serialize for Groups {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Groups::from_names(Vec::<String>::deserialize(d)?))
    }
}

impl Indicator {
    /// An indicator with the given normalised value and type, default metadata
    /// (confidence 50, medium, TLP:GREEN) and one source.
    pub fn new(value: impl Into<String>, itype: IndicatorType, source: &str) -> Self {
        Indicator {
            value: value.into(),
            itype,
            confidence: 50,
            severity: Severity::Medium,
            tags: Vec::new(),
            tlp: Tlp::Green,
            provider: None,
            description: None,
            reference: None,
            external_id: None,
            first_seen: None,
            last_seen: None,
            reported: None,
            expires: None,
            sources: vec![source.to_string()],
            derived: false,
            exact_only: false,
            allowlisted_by: None,
            allowlist: false,
            groups: Groups::everyone(),
        }
    }

    /// Merge another record of the same `(itype, value)` into this one (ARCHITECTURE.md §3): highest
    /// confidence and severity, union of tags and sources, widest time range, most
    /// restrictive TLP, first non-empty descriptive fields, one external id (a STIX
    /// indicator id first, then the smallest), union of groups (seen only by a
    /// token in all of them). A derived record merged with a direct one yields a direct one.
    pub fn merge(&mut self, other: &Indicator) {
        debug_assert_eq!(self.itype, other.itype);
        self.confidence = self.confidence.max(other.confidence);
        self.severity = self.severity.max(other.severity);
        self.tlp = self.tlp.max(other.tlp);
        union_sorted(&mut self.tags, &other.tags);
        union_sorted(&mut self.sources, &other.sources);
        self.groups.union(&other.groups);
        self.first_seen = min_opt(self.first_seen, other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.reported = min_opt(self.reported, other.reported);
        self.expires = match (self.expires, other.expires) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        if self.provider.is_none() {
            self.provider.clone_from(&other.provider);
        }
        if self.description.is_none() {
            self.description.clone_from(&other.description);
        }
        if self.reference.is_none() {
            self.reference.clone_from(&other.reference);
        }
        if let Some(o) = &other.external_id {
            if self
                .external_id
                .as_deref()
                .is_none_or(|s| external_id_rank(o) < external_id_rank(s))
            {
                self.external_id = Some(o.clone());
            }
        }
        self.derived = self.derived && other.derived;
        self.exact_only = self.exact_only && other.exact_only;
        if self.allowlisted_by.is_none() {
            self.allowlisted_by.clone_from(&other.allowlisted_by);
        }
        self.allowlist = self.allowlist || other.allowlist;
    }

    /// Sort and deduplicate `tags` and `sources`, lower-casing tags (`groups` is kept in
    /// normal form by [`Groups`] itself).
    pub fn tidy(&mut self) {
        for t in &mut self.tags {
            if t.bytes().any(|b| b.is_ascii_uppercase()) {
                *t = t.to_ascii_lowercase();
            }
        }
        self.tags.sort();
        self.tags.dedup();
        self.sources.sort();
        self.sources.dedup();
    }
}

/// The first 16 bytes of a value, big-endian, zero-padded: orders like the bytes except for
/// ties, which need a full compare. Sorting (key, index) pairs by it keeps most comparisons
/// off the values' heap memory (16 bytes, not 8: URLs share `https://`, label-reversed
/// domain keys their top-level labels).
pub fn order_prefix(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    let n = b.len().min(16);
    a[..n].copy_from_slice(&b[..n]);
    u128::from_be_bytes(a)
}

/// Whether `id` has the shape of an external id (ARCHITECTURE.md §3): a UUID in its
/// canonical 8-4-4-4-12 hex form (a MISP uuid), optionally after a STIX object type and
/// `--` (`indicator--<uuid>`; the type lower-case ASCII letters, digits and `-`, at most 64).
pub fn is_external_id(id: &str) -> bool {
    let uuid = match id.rsplit_once("--") {
        Some((ty, uuid)) => {
            let ty_ok = !ty.is_empty()
                && ty.len() <= 64
                && ty
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ty_ok {
                return false;
            }
            uuid
        }
        None => id,
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The merge order of external ids (ARCHITECTURE.md §3): a STIX indicator id before any
/// other id (a sighting can refer only to it), then the smaller string, so the id kept does
/// not depend on the order feeds are merged in.
fn external_id_rank(id: &str) -> (bool, &str) {
    (!id.starts_with("indicator--"), id)
}

fn min_opt(a: Option<UnixTime>, b: Option<UnixTime>) -> Option<UnixTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn union_sorted(into: &mut Vec<String>, from: &[String]) {
    for s in from {
        if let Err(pos) = into.binary_search(s) {
            into.insert(pos, s.clone());
        }
    }
}

/// How an indicator covered an observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchKind {
    /// The observed value equals the indicator.
    Exact,
    /// The indicator is a parent domain of the observed name.
    ParentDomain,
    /// The indicator is a CIDR enclosing the observed address.
    EnclosingCidr,
    /// The indicator URL is a prefix of the observed URL at a path boundary.
    UrlPrefix,
    /// The indicator is a pattern found inside the observed text.
    Substring,
}

impl MatchKind {
    /// `exact`, `parent-domain`, `enclosing-cidr`, `url-prefix` or `substring`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::ParentDomain => "parent-domain",
            MatchKind::EnclosingCidr => "enclosing-cidr",
            MatchKind::UrlPrefix => "url-prefix",
            MatchKind::Substring => "substring",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A strictly smaller prefix means strictly smaller bytes; equal bytes, equal prefix.
        #[test]
        fn order_prefix_orders_like_the_bytes(
            a in proptest::collection::vec(0u8..4, 0..24),
            b in proptest::collection::vec(0u8..4, 0..24),
        ) {
            let (pa, pb) = (order_prefix(&a), order_prefix(&b));
            if pa < pb {
                proptest::prop_assert!(a < b);
            }
            if a == b {
                proptest::prop_assert_eq!(pa, pb);
            }
            if a.len() <= 16 && b.len() <= 16 && !a.contains(&0) && !b.contains(&0) {
                proptest::prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }

    #[test]
    fn merge_keeps_highest_and_unions() {
        let mut a = Indicator::new("evil.example", IndicatorType::Fqdn, "feed-b");
        a.confidence = 60;
        a.tags = vec!["malware".into()];
        a.first_seen = Some(100);
        a.last_seen = Some(200);
        let mut b = Indicator::new("evil.example", IndicatorType::Fqdn, "feed-a");
        b.confidence = 90;
        b.severity = Severity::High;
        b.tlp = Tlp::Amber;
        b.tags = vec!["c2".into(), "malware".into()];
        b.first_seen = Some(50);
        b.last_seen = Some(150);
        a.merge(&b);
        assert_eq!(a.confidence, 90);
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.tlp, Tlp::Amber);
        assert_eq!(a.tags, vec!["c2", "malware"]);
        assert_eq!(a.sources, vec!["feed-a", "feed-b"]);
        assert_eq!((a.first_seen, a.last_seen), (Some(50), Some(200)));
        assert_eq!(a.groups.to_vec(), vec![DEFAULT_GROUP]);
        assert!(a.groups.is_everyone());
    }

    /// Groups merge as a union, whichever record comes first: the merged record mixes both
    /// feeds' fields, so it must need both groups.
    #[test]
    fn merge_unions_groups_in_either_order() {
        let public = Indicator::new("evil.example", IndicatorType::Fqdn, "public");
        let mut private = Indicator::new("evil.example", IndicatorType::Fqdn, "private");
        private.groups = Groups::one("csirt");
        let mut a = public.clone();
        a.merge(&private);
        private.merge(&public);
        assert_eq!(a.groups.to_vec(), vec!["csirt", DEFAULT_GROUP]);
        assert_eq!(private.groups, a.groups);
        assert!(!a.groups.is_everyone());
    }

    #[test]
    fn external_ids_are_uuids_with_an_optional_stix_type() {
        for ok in [
            "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d",
            "x-acme-thing--0D3B5B1C-2F3A-4B8E-9C1D-7E6F5A4B3C2D",
            "5f0c8a3e-1111-4000-8000-000000000003",
        ] {
            assert!(is_external_id(ok), "{ok}");
        }
        for bad in [
            "",
            "indicator--",
            "--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d",
            "Indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d",
            "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2",
            "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d-0",
            "indicator--0d3b5b1c_2f3a-4b8e-9c1d-7e6f5a4b3c2d",
            "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2g",
            "in dicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d",
            "https://example.com/0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d",
        ] {
            assert!(!is_external_id(bad), "{bad}");
        }
    }

    #[test]
    fn merge_keeps_one_external_id_whatever_the_order() {
        let with = |source: &str, id: Option<&str>| {
            let mut i = Indicator::new("evil.example", IndicatorType::Fqdn, source);
            i.external_id = id.map(str::to_string);
            i
        };
        let misp = with("misp", Some("5f0c8a3e-0000-4000-8000-000000000001"));
        let stix_b = with(
            "taxii-b",
            Some("indicator--b0000000-0000-4000-8000-000000000000"),
        );
        let stix_a = with(
            "taxii-a",
            Some("indicator--a0000000-0000-4000-8000-000000000000"),
        );
        let none = with("plain", None);
        let feeds = [&misp, &stix_b, &none, &stix_a];
        // Every order of merging keeps the same id: a STIX indicator id (a sighting can
        // refer only to one), the smallest of them.
        for first in 0..feeds.len() {
            let mut m = feeds[first].clone();
            for (i, f) in feeds.iter().enumerate() {
                if i != first {
                    m.merge(f);
                }
            }
            assert_eq!(m.external_id, stix_a.external_id, "starting from {first}");
        }
        // A MISP uuid is kept when no STIX id is there; no id at all stays none.
        let mut m = none.clone();
        m.merge(&misp);
        assert_eq!(m.external_id, misp.external_id);
        let mut m = none.clone();
        m.merge(&none);
        assert_eq!(m.external_id, None);
    }

    /// The default set is stored as nothing, spelled out when read or serialised, and
    /// normalised from every spelling (listed alone, or no list at all).
    #[test]
    fn default_group_is_free_and_normal() {
        assert_eq!(std::mem::size_of::<Groups>(), std::mem::size_of::<usize>());
        let g = Groups::one(DEFAULT_GROUP);
        assert!(g.is_everyone() && g.explicit().is_none());
        assert_eq!(g, Groups::from_names(Vec::<String>::new()));
        assert_eq!(g, Groups::from_names(["everyone", "everyone"]));
        assert_eq!(serde_json::to_string(&g).unwrap(), r#"["everyone"]"#);
        let two: Groups = serde_json::from_str(r#"["ops","csirt","ops"]"#).unwrap();
        assert_eq!(two.join(","), "csirt,ops");
        assert!(two.contains("ops") && !two.contains(DEFAULT_GROUP));
    }

    #[test]
    fn names_round_trip() {
        for t in IndicatorType::ALL {
            assert_eq!(t.as_str().parse::<IndicatorType>(), Ok(t));
        }
        assert_eq!("TLP:WHITE".parse::<Tlp>(), Ok(Tlp::Clear));
        assert_eq!("need-to-know".parse::<Tlp>(), Ok(Tlp::Amber));
        assert!("purple".parse::<Tlp>().is_err());
        assert!(Severity::High > Severity::Low);
    }
}
