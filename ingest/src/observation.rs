//! [`Observation`]: what a log line or a packet-level event says, under ECS names (DESIGN §5).

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
        let strs: [(&str, &Option<Cow<'_, str>>); 15] = [
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
}
