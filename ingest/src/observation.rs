//! [`Observation`]: what a log line or a packet-level event says, under ECS names
//! (ARCHITECTURE.md §5), and the one table of its matchable fields ([`MATCH_FIELDS`],
//! [`Observation::for_each_matchable`]) that the correlator, the log pre-screen's contract and
//! the ECS rendering all read.

use crate::packet::community::FlowTuple;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// `network.community_id`: as the input gave it, or the flow tuple it is computed from when
/// it is rendered ([`fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunityId {
    /// The finished ID, as a log record carries it (`1:...`).
    Text(String),
    /// A packet flow's tuple; the ID (SHA-1, base64) is computed only when displayed, so
    /// the observations that never alert do not pay for it.
    Flow(FlowTuple),
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityId::Text(s) => f.write_str(s),
            CommunityId::Flow(t) => f.write_str(&t.community_id()),
        }
    }
}

impl From<String> for CommunityId {
    fn from(s: String) -> Self {
        CommunityId::Text(s)
    }
}

impl From<FlowTuple> for CommunityId {
    fn from(t: FlowTuple) -> Self {
        CommunityId::Flow(t)
    }
}

/// One DNS answer record (`dns.answers[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer<'a> {
    /// Record type name: `A`, `AAAA`, `CNAME`, ...
    pub rtype: Cow<'a, str>,
    /// Record data as text (an address, a name).
    pub data: Cow<'a, str>,
}

/// Where an observation came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin<'a> {
    /// Unknown / not set.
    #[default]
    None,
    /// A log record: `log.file.path` and `log.offset` (byte offset of the line).
    Log {
        /// The file path (`-` for stdin).
        path: Cow<'a, str>,
        /// Byte offset of the line's first byte.
        offset: u64,
    },
    /// A packet: the capture file (or interface) and the 1-based packet number.
    Packet {
        /// Capture file path or `iface:NAME`.
        capture: Cow<'a, str>,
        /// 1-based packet number in the capture.
        number: u64,
    },
}

/// How the correlator looks a matchable field up in the indicator set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A domain name: the name and its parents at label boundaries.
    Domain,
    /// An address: every range covering it.
    Address,
    /// `dns.answers.data`: an address or a name, by its shape.
    AddressOrDomain,
    /// A URL: exact, and URL prefixes at a path boundary.
    Url,
    /// Substring patterns (Aho-Corasick).
    Pattern,
    /// A hash or fingerprint: exact, case-insensitive.
    Hash,
    /// An e-mail address: exact, case-insensitive.
    Email,
}

/// Every matchable field of an [`Observation`], in the order the correlator looks them up
/// (and so the order of the alerts of one observation): the ECS name and how it is looked
/// up. [`Observation::for_each_matchable`] yields exactly these fields; tests check that the
/// rendering ([`Observation::to_ecs`]) names them too, so the three cannot drift apart.
///
/// New fields are appended: a field's index is its bit in the retro-hunt index's stored
/// field sets (`sensor::retro::key::field_bit`), so the order of existing rows is fixed.
pub const MATCH_FIELDS: [(&str, Lookup); 18] = [
    ("dns.question.name", Lookup::Domain),
    ("dns.answers.data", Lookup::AddressOrDomain),
    ("url.full", Lookup::Url),
    ("url.path", Lookup::Pattern),
    ("url.domain", Lookup::Domain),
    ("tls.client.server_name", Lookup::Domain),
    ("user_agent.original", Lookup::Pattern),
    ("tls.client.ja3", Lookup::Hash),
    ("tls.client.ja4", Lookup::Hash),
    ("tls.server.hash.sha1", Lookup::Hash),
    ("file.hash.md5", Lookup::Hash),
    ("file.hash.sha1", Lookup::Hash),
    ("file.hash.sha256", Lookup::Hash),
    ("email.from.address", Lookup::Email),
    ("source.ip", Lookup::Address),
    ("destination.ip", Lookup::Address),
    ("tls.server.hash.sha256", Lookup::Hash),
    ("tls.server.ja4s", Lookup::Hash),
];

/// One value to look up, as [`Observation::for_each_matchable`] hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchValue<'v> {
    /// A domain name ([`Lookup::Domain`], or a `dns.answers.data` that is not an address).
    Domain(&'v str),
    /// An address, with its text when the input wrote one (`dns.answers.data`).
    Address(IpAddr, Option<&'v str>),
    /// A URL.
    Url(&'v str),
    /// Text searched for substring patterns.
    Pattern(&'v str),
    /// A hash or fingerprint.
    Hash(&'v str),
    /// An e-mail address.
    Email(&'v str),
}

/// One observed event: a log record, a DNS message, an HTTP request, a ClientHello, a flow.
///
/// Fields borrow from the input where they can (`Cow`), so parsing a log line does not
/// allocate; packet parsers own what they decode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation<'a> {
    /// `@timestamp` as nanoseconds since the Unix epoch, when the input says.
    pub timestamp_ns: Option<i64>,
    /// The ECS `event.dataset` suffix: `dns`, `http`, `proxy`, `tls`, `flow`, `file`, `log`.
    pub dataset: &'static str,
    /// `source.ip`.
    pub source_ip: Option<IpAddr>,
    /// `source.port`.
    pub source_port: Option<u16>,
    /// `destination.ip`.
    pub destination_ip: Option<IpAddr>,
    /// `destination.port`.
    pub destination_port: Option<u16>,
    /// `network.transport`: `tcp`, `udp`, `icmp`, ...
    pub transport: Option<&'static str>,
    /// `network.protocol`: `dns`, `http`, `tls`, `quic`, ...
    pub protocol: Option<&'static str>,
    /// `network.community_id` (packets: computed when rendered, see [`CommunityId`]).
    pub community_id: Option<CommunityId>,
    /// `dns.question.name`.
    pub dns_question_name: Option<Cow<'a, str>>,
    /// `dns.question.type` (`A`, `AAAA`, ...).
    pub dns_question_type: Option<Cow<'a, str>>,
    /// `dns.answers`.
    pub dns_answers: Vec<DnsAnswer<'a>>,
    /// `url.full`.
    pub url_full: Option<Cow<'a, str>>,
    /// `url.domain` (HTTP Host, without port).
    pub url_domain: Option<Cow<'a, str>>,
    /// `url.path`.
    pub url_path: Option<Cow<'a, str>>,
    /// `http.request.method`.
    pub http_method: Option<Cow<'a, str>>,
    /// `http.response.status_code`.
    pub http_status: Option<u16>,
    /// `user_agent.original`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `tls.client.server_name` (also QUIC SNI, with protocol `quic`).
    pub tls_sni: Option<Cow<'a, str>>,
    /// `tls.client.ja3`.
    pub ja3: Option<Cow<'a, str>>,
    /// `tls.client.ja4`.
    pub ja4: Option<Cow<'a, str>>,
    /// `tls.server.hash.sha1` (certificate fingerprint).
    pub tls_server_sha1: Option<Cow<'a, str>>,
    /// `tls.server.hash.sha256` (certificate fingerprint).
    pub tls_server_sha256: Option<Cow<'a, str>>,
    /// `tls.server.ja4s` (FoxIO JA4S of the ServerHello).
    pub tls_server_ja4s: Option<Cow<'a, str>>,
    /// `file.hash.md5`.
    pub file_md5: Option<Cow<'a, str>>,
    /// `file.hash.sha1`.
    pub file_sha1: Option<Cow<'a, str>>,
    /// `file.hash.sha256`.
    pub file_sha256: Option<Cow<'a, str>>,
    /// `email.from.address`.
    pub email_from: Option<Cow<'a, str>>,
    /// Where it came from.
    pub origin: Origin<'a>,
}

impl Observation<'_> {
    /// An owned copy that outlives the input buffer.
    pub fn into_owned(self) -> Observation<'static> {
        fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        Observation {
            timestamp_ns: self.timestamp_ns,
            dataset: self.dataset,
            source_ip: self.source_ip,
            source_port: self.source_port,
            destination_ip: self.destination_ip,
            destination_port: self.destination_port,
            transport: self.transport,
            protocol: self.protocol,
            community_id: self.community_id,
            dns_question_name: own(self.dns_question_name),
            dns_question_type: own(self.dns_question_type),
            dns_answers: self
                .dns_answers
                .into_iter()
                .map(|a| DnsAnswer {
                    rtype: Cow::Owned(a.rtype.into_owned()),
                    data: Cow::Owned(a.data.into_owned()),
                })
                .collect(),
            url_full: own(self.url_full),
            url_domain: own(self.url_domain),
            url_path: own(self.url_path),
            http_method: own(self.http_method),
            http_status: self.http_status,
            user_agent: own(self.user_agent),
            tls_sni: own(self.tls_sni),
            ja3: own(self.ja3),
            ja4: own(self.ja4),
            tls_server_sha1: own(self.tls_server_sha1),
            tls_server_sha256: own(self.tls_server_sha256),
            tls_server_ja4s: own(self.tls_server_ja4s),
            file_md5: own(self.file_md5),
            file_sha1: own(self.file_sha1),
            file_sha256: own(self.file_sha256),
            email_from: own(self.email_from),
            origin: match self.origin {
                Origin::None => Origin::None,
                Origin::Log { path, offset } => Origin::Log {
                    path: Cow::Owned(path.into_owned()),
                    offset,
                },
                Origin::Packet { capture, number } => Origin::Packet {
                    capture: Cow::Owned(capture.into_owned()),
                    number,
                },
            },
        }
    }

    /// Every matchable value, in [`MATCH_FIELDS`] order, with its field's ECS name: the one
    /// definition of what the correlator looks up (and so of what a log pre-screen must
    /// ask). `url.path` is searched only when there is no `url.full`; `dns.answers.data` is an
    /// address or a name by its shape (empty data is skipped); `source.ip` and
    /// `destination.ip` only with `addresses` (packet sources report them from the flow
    /// observation alone).
    #[inline]
    pub fn for_each_matchable<'s>(
        &'s self,
        addresses: bool,
        mut f: impl FnMut(&'static str, MatchValue<'s>),
    ) {
        let [question, answers, full, path, domain, sni, ua, ja3, ja4, cert, md5, sha1, sha256, email, source, destination, cert256, ja4s] =
            MATCH_FIELDS.map(|(name, _)| name);
        if let Some(name) = self.dns_question_name.as_deref() {
            f(question, MatchValue::Domain(name));
        }
        for answer in &self.dns_answers {
            let data = answer.data.as_ref();
            if let Ok(ip) = data.parse::<IpAddr>() {
                f(answers, MatchValue::Address(ip, Some(data)));
            } else if !data.is_empty() {
                f(answers, MatchValue::Domain(data));
            }
        }
        if let Some(url) = self.url_full.as_deref() {
            f(full, MatchValue::Url(url));
        } else if let Some(p) = self.url_path.as_deref() {
            f(path, MatchValue::Pattern(p));
        }
        if let Some(host) = self.url_domain.as_deref() {
            f(domain, MatchValue::Domain(host));
        }
        if let Some(name) = self.tls_sni.as_deref() {
            f(sni, MatchValue::Domain(name));
        }
        if let Some(agent) = self.user_agent.as_deref() {
            f(ua, MatchValue::Pattern(agent));
        }
        for (field, value) in [
            (ja3, &self.ja3),
            (ja4, &self.ja4),
            (cert, &self.tls_server_sha1),
            (md5, &self.file_md5),
            (sha1, &self.file_sha1),
            (sha256, &self.file_sha256),
        ] {
            if let Some(v) = value.as_deref() {
                f(field, MatchValue::Hash(v));
            }
        }
        if let Some(address) = self.email_from.as_deref() {
            f(email, MatchValue::Email(address));
        }
        if addresses {
            if let Some(ip) = self.source_ip {
                f(source, MatchValue::Address(ip, None));
            }
            if let Some(ip) = self.destination_ip {
                f(destination, MatchValue::Address(ip, None));
            }
        }
        for (field, value) in [
            (cert256, &self.tls_server_sha256),
            (ja4s, &self.tls_server_ja4s),
        ] {
            if let Some(v) = value.as_deref() {
                f(field, MatchValue::Hash(v));
            }
        }
    }

    /// The observation as a nested ECS JSON object (`{"dns":{"question":{"name":..}}}`),
    /// the form `trawl observe` prints and alerts embed. Absent fields are left out.
    pub fn to_ecs(&self) -> Map<String, Value> {
        let mut root = Map::new();
        if let Some(ns) = self.timestamp_ns {
            root.insert("@timestamp".into(), Value::String(format_timestamp(ns)));
        }
        let mut ins = |path: &str, v: Value| insert_path(&mut root, path, v);
        if let Some(ip) = self.source_ip {
            ins("source.ip", ip.to_string().into());
        }
        if let Some(p) = self.source_port {
            ins("source.port", p.into());
        }
        if let Some(ip) = self.destination_ip {
            ins("destination.ip", ip.to_string().into());
        }
        if let Some(p) = self.destination_port {
            ins("destination.port", p.into());
        }
        if let Some(t) = self.transport {
            ins("network.transport", t.into());
        }
        if let Some(p) = self.protocol {
            ins("network.protocol", p.into());
        }
        if let Some(c) = &self.community_id {
            ins("network.community_id", c.to_string().into());
        }
        let strs: [(&str, &Option<Cow<'_, str>>); 17] = [
            ("dns.question.name", &self.dns_question_name),
            ("dns.question.type", &self.dns_question_type),
            ("url.full", &self.url_full),
            ("url.domain", &self.url_domain),
            ("url.path", &self.url_path),
            ("http.request.method", &self.http_method),
            ("user_agent.original", &self.user_agent),
            ("tls.client.server_name", &self.tls_sni),
            ("tls.client.ja3", &self.ja3),
            ("tls.client.ja4", &self.ja4),
            ("tls.server.hash.sha1", &self.tls_server_sha1),
            ("tls.server.hash.sha256", &self.tls_server_sha256),
            ("tls.server.ja4s", &self.tls_server_ja4s),
            ("file.hash.md5", &self.file_md5),
            ("file.hash.sha1", &self.file_sha1),
            ("file.hash.sha256", &self.file_sha256),
            ("email.from.address", &self.email_from),
        ];
        for (path, v) in strs {
            if let Some(v) = v {
                ins(path, Value::String(v.to_string()));
            }
        }
        if let Some(s) = self.http_status {
            ins("http.response.status_code", s.into());
        }
        if !self.dns_answers.is_empty() {
            let answers = self
                .dns_answers
                .iter()
                .map(|a| {
                    let mut m = Map::new();
                    m.insert("type".into(), a.rtype.to_string().into());
                    m.insert("data".into(), a.data.to_string().into());
                    Value::Object(m)
                })
                .collect();
            ins("dns.answers", Value::Array(answers));
        }
        match &self.origin {
            Origin::None => {}
            Origin::Log { path, offset } => {
                ins("log.file.path", path.to_string().into());
                ins("log.offset", (*offset).into());
            }
            Origin::Packet { capture, number } => {
                ins("trawl.capture.file", capture.to_string().into());
                ins("trawl.capture.packet", (*number).into());
            }
        }
        if !self.dataset.is_empty() {
            ins("event.dataset", format!("trawl.{}", self.dataset).into());
        }
        root
    }
}

/// Insert `v` at a dotted `path` into nested objects, creating them as needed.
pub fn insert_path(root: &mut Map<String, Value>, path: &str, v: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), v);
            return;
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
}

/// RFC 3339 UTC with milliseconds (`2026-11-28T05:00:00.123Z`).
pub fn format_timestamp(ns: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_nesting() {
        let o = Observation {
            dataset: "dns",
            dns_question_name: Some("a.evil.example".into()),
            source_ip: Some("10.0.0.5".parse().unwrap()),
            timestamp_ns: Some(1_764_306_000_123_000_000),
            origin: Origin::Log {
                path: "q.log".into(),
                offset: 42,
            },
            ..Default::default()
        };
        let v = Value::Object(o.to_ecs());
        assert_eq!(v["dns"]["question"]["name"], "a.evil.example");
        assert_eq!(v["source"]["ip"], "10.0.0.5");
        assert_eq!(v["log"]["offset"], 42);
        assert_eq!(v["@timestamp"], "2025-11-28T05:00:00.123Z");
    }

    /// An observation with every field set. A struct literal without `..Default::default()`:
    /// a new field does not compile until it is set here, and then the tests below ask
    /// whether it is matched and rendered.
    fn every_field() -> Observation<'static> {
        Observation {
            timestamp_ns: Some(1_764_306_000_123_000_000),
            dataset: "dns",
            source_ip: Some("10.0.0.5".parse().unwrap()),
            source_port: Some(53124),
            destination_ip: Some("192.0.2.53".parse().unwrap()),
            destination_port: Some(53),
            transport: Some("udp"),
            protocol: Some("dns"),
            community_id: Some(CommunityId::Text("1:abc".into())),
            dns_question_name: Some("q.example".into()),
            dns_question_type: Some("A".into()),
            dns_answers: vec![
                DnsAnswer {
                    rtype: "A".into(),
                    data: "192.0.2.7".into(),
                },
                DnsAnswer {
                    rtype: "CNAME".into(),
                    data: "c.example".into(),
                },
            ],
            url_full: Some("http://h.example/p".into()),
            url_domain: Some("h.example".into()),
            url_path: Some("/p".into()),
            http_method: Some("GET".into()),
            http_status: Some(200),
            user_agent: Some("curl/8".into()),
            tls_sni: Some("s.example".into()),
            ja3: Some("a".repeat(32).into()),
            ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
            tls_server_sha1: Some("b".repeat(40).into()),
            tls_server_sha256: Some("f".repeat(64).into()),
            tls_server_ja4s: Some("t120400_c030_4e8089b08790".into()),
            file_md5: Some("c".repeat(32).into()),
            file_sha1: Some("d".repeat(40).into()),
            file_sha256: Some("e".repeat(64).into()),
            email_from: Some("x@m.example".into()),
            origin: Origin::Log {
                path: "q.log".into(),
                offset: 42,
            },
        }
    }

    /// Rendered fields that are deliberately not looked up, and why.
    const NOT_MATCHED: [&str; 15] = [
        "@timestamp",
        "event.dataset",
        "source.port",
        "destination.port",
        "network.transport",
        "network.protocol",
        "network.community_id",
        "dns.question.type",
        "dns.answers.type",
        "http.request.method",
        "http.response.status_code",
        "log.file.path",
        "log.offset",
        "trawl.capture.file",
        "trawl.capture.packet",
    ];

    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&p, v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| leaves(prefix, i, out)),
            _ => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn every_matchable_field_is_in_the_table_with_its_lookup() {
        let o = every_field();
        let mut seen = Vec::new();
        o.for_each_matchable(true, |field, value| {
            let (_, lookup) = MATCH_FIELDS
                .iter()
                .find(|(name, _)| *name == field)
                .unwrap_or_else(|| panic!("{field} is matched but not in MATCH_FIELDS"));
            let fits = matches!(
                (lookup, value),
                (Lookup::Domain, MatchValue::Domain(_))
                    | (Lookup::Address, MatchValue::Address(_, None))
                    | (Lookup::AddressOrDomain, MatchValue::Address(_, Some(_)))
                    | (Lookup::AddressOrDomain, MatchValue::Domain(_))
                    | (Lookup::Url, MatchValue::Url(_))
                    | (Lookup::Pattern, MatchValue::Pattern(_))
                    | (Lookup::Hash, MatchValue::Hash(_))
                    | (Lookup::Email, MatchValue::Email(_))
            );
            assert!(fits, "{field}: {value:?} is not a {lookup:?} lookup");
            seen.push(field);
        });
        // url.path is searched only without url.full.
        let mut no_full = every_field();
        no_full.url_full = None;
        no_full.for_each_matchable(true, |field, _| seen.push(field));
        for (name, _) in MATCH_FIELDS {
            assert!(
                seen.contains(&name),
                "{name} is in MATCH_FIELDS but never looked up"
            );
        }
        // In the table's order.
        let order: Vec<usize> = seen[..seen.len() / 2]
            .iter()
            .map(|f| MATCH_FIELDS.iter().position(|(n, _)| n == f).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
        let mut without = Vec::new();
        o.for_each_matchable(false, |field, _| without.push(field));
        assert!(!without.contains(&"source.ip") && !without.contains(&"destination.ip"));
    }

    #[test]
    fn every_rendered_field_is_matched_or_deliberately_not() {
        let mut rendered = Vec::new();
        leaves("", &Value::Object(every_field().to_ecs()), &mut rendered);
        let packet = Observation {
            origin: Origin::Packet {
                capture: "c.pcap".into(),
                number: 1,
            },
            ..every_field()
        };
        leaves("", &Value::Object(packet.to_ecs()), &mut rendered);
        rendered.sort();
        rendered.dedup();
        for field in &rendered {
            let matched = MATCH_FIELDS.iter().any(|(n, _)| n == field);
            assert!(
                matched || NOT_MATCHED.contains(&field.as_str()),
                "{field} is rendered but neither matched (MATCH_FIELDS) nor listed as not matched"
            );
        }
        for (name, _) in MATCH_FIELDS {
            assert!(
                rendered.iter().any(|r| r == name),
                "{name} is matched but never rendered"
            );
        }
    }
}
