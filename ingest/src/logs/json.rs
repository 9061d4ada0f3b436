//! Generic JSON lines: each observation field is read from a dotted key chosen by a
//! [`FieldMap`] (`[log.field_map]` in the config), ECS names by default.

use super::address::parse_ip;
use super::ecs_values::{answer_type, norm_hash};
use super::serde_helpers::json_from_line;
use super::timestamps::{parse_epoch, parse_iso8601};
use super::tokens::{trim, trim_eol};
use super::url::{domain, norm_domain, path_only, split_url};
use super::{LineParser, LogError, ParseError};
use crate::{DnsAnswer, Observation};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An observation field a [`FieldMap`] can fill, by its ECS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EcsField {
    /// `@timestamp` (RFC 3339 text or epoch seconds).
    Timestamp,
    /// `source.ip`.
    SourceIp,
    /// `source.port`.
    SourcePort,
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `network.transport`.
    Transport,
    /// `dns.question.name`.
    DnsQuestionName,
    /// `dns.question.type`.
    DnsQuestionType,
    /// `dns.answers` (array of strings, or of `{type,data}` objects).
    DnsAnswers,
    /// `url.full`.
    UrlFull,
    /// `url.domain`.
    UrlDomain,
    /// `url.path`.
    UrlPath,
    /// `http.request.method`.
    HttpMethod,
    /// `http.response.status_code`.
    HttpStatus,
    /// `user_agent.original`.
    UserAgent,
    /// `tls.client.server_name`.
    TlsSni,
    /// `tls.client.ja3`.
    Ja3,
    /// `tls.client.ja4`.
    Ja4,
    /// `tls.server.hash.sha1`.
    TlsServerSha1,
    /// `tls.server.hash.sha256`.
    TlsServerSha256,
    /// `tls.server.ja4s`.
    TlsServerJa4s,
    /// `file.hash.md5`.
    FileMd5,
    /// `file.hash.sha1`.
    FileSha1,
    /// `file.hash.sha256`.
    FileSha256,
    /// `email.from.address`.
    EmailFrom,
}

impl EcsField {
    /// Every field.
    pub const ALL: [EcsField; 25] = [
        EcsField::Timestamp,
        EcsField::SourceIp,
        EcsField::SourcePort,
        EcsField::DestinationIp,
        EcsField::DestinationPort,
        EcsField::Transport,
        EcsField::DnsQuestionName,
        EcsField::DnsQuestionType,
        EcsField::DnsAnswers,
        EcsField::UrlFull,
        EcsField::UrlDomain,
        EcsField::UrlPath,
        EcsField::HttpMethod,
        EcsField::HttpStatus,
        EcsField::UserAgent,
        EcsField::TlsSni,
        EcsField::Ja3,
        EcsField::Ja4,
        EcsField::TlsServerSha1,
        EcsField::TlsServerSha256,
        EcsField::TlsServerJa4s,
        EcsField::FileMd5,
        EcsField::FileSha1,
        EcsField::FileSha256,
        EcsField::EmailFrom,
    ];

    /// The ECS name (`url.full`).
    pub fn as_str(self) -> &'static str {
        match self {
            EcsField::Timestamp => "@timestamp",
            EcsField::SourceIp => "source.ip",
            EcsField::SourcePort => "source.port",
            EcsField::DestinationIp => "destination.ip",
            EcsField::DestinationPort => "destination.port",
            EcsField::Transport => "network.transport",
            EcsField::DnsQuestionName => "dns.question.name",
            EcsField::DnsQuestionType => "dns.question.type",
            EcsField::DnsAnswers => "dns.answers",
            EcsField::UrlFull => "url.full",
            EcsField::UrlDomain => "url.domain",
            EcsField::UrlPath => "url.path",
            EcsField::HttpMethod => "http.request.method",
            EcsField::HttpStatus => "http.response.status_code",
            EcsField::UserAgent => "user_agent.original",
            EcsField::TlsSni => "tls.client.server_name",
            EcsField::Ja3 => "tls.client.ja3",
            EcsField::Ja4 => "tls.client.ja4",
            EcsField::TlsServerSha1 => "tls.server.hash.sha1",
            EcsField::TlsServerSha256 => "tls.server.hash.sha256",
            EcsField::TlsServerJa4s => "tls.server.ja4s",
            EcsField::FileMd5 => "file.hash.md5",
            EcsField::FileSha1 => "file.hash.sha1",
            EcsField::FileSha256 => "file.hash.sha256",
            EcsField::EmailFrom => "email.from.address",
        }
    }

    /// The field with ECS name `s`.
    pub fn parse(s: &str) -> Option<EcsField> {
        EcsField::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// ECS field name → dotted JSON key (`{"url.full":"request.url","source.ip":"client"}`).
/// A key is looked up as a literal top-level key first, then through nested objects
/// (and any mix: `a.b.c` finds `{"a":{"b.c":..}}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMap {
    entries: BTreeMap<EcsField, String>,
}

impl FieldMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every ECS field read from its own name (the JSON trawl itself writes).
    pub fn ecs() -> Self {
        FieldMap {
            entries: EcsField::ALL
                .into_iter()
                .map(|f| (f, f.as_str().to_string()))
                .collect(),
        }
    }

    /// Map `ecs` (an ECS name) to `key`; an unknown ECS name is an error.
    pub fn insert(&mut self, ecs: &str, key: &str) -> Result<(), LogError> {
        let f = EcsField::parse(ecs).ok_or_else(|| {
            LogError::FieldMap(format!("{ecs:?} is not an observation field we know"))
        })?;
        if key.is_empty() {
            return Err(LogError::FieldMap(format!("empty key for {ecs}")));
        }
        self.entries.insert(f, key.to_string());
        Ok(())
    }

    /// Build from `(ecs name, key)` pairs (a parsed `[log.field_map]` table).
    pub fn from_pairs<'k, I>(pairs: I) -> Result<Self, LogError>
    where
        I: IntoIterator<Item = (&'k str, &'k str)>,
    {
        let mut m = FieldMap::new();
        for (e, k) in pairs {
            m.insert(e, k)?;
        }
        Ok(m)
    }

    /// The key for `f`.
    pub fn get(&self, f: EcsField) -> Option<&str> {
        self.entries.get(&f).map(String::as_str)
    }
}

/// Find a dotted key in nested objects.
fn lookup<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(key) {
        return Some(x);
    }
    for (i, _) in key.match_indices('.') {
        if let Some(inner) = obj.get(&key[..i]) {
            if let Some(x) = lookup(inner, &key[i + 1..]) {
                return Some(x);
            }
        }
    }
    None
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => a.first().and_then(as_text),
        _ => None,
    }
}

/// JSON lines read through a [`FieldMap`]. Values are owned (the line is parsed into a
/// `serde_json::Value`), so this path allocates; the fixed formats do not.
#[derive(Debug, Clone)]
pub struct JsonParser {
    map: Vec<(EcsField, String)>,
}

impl JsonParser {
    /// A parser reading the fields `map` names.
    pub fn new(map: FieldMap) -> Self {
        JsonParser {
            map: map.entries.into_iter().collect(),
        }
    }
}

impl LineParser for JsonParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() {
            return Ok(None);
        }
        let v: Value = json_from_line(line).map_err(|e| ParseError {
            reason: "invalid json",
            detail: Some(e.to_string()),
        })?;
        if !v.is_object() {
            return Err(ParseError::new("not a json object"));
        }
        let mut o = Observation {
            dataset: "log",
            ..Default::default()
        };
        if let Some(ds) = lookup(&v, "event.dataset").and_then(Value::as_str) {
            o.dataset = match ds.strip_prefix("trawl.").unwrap_or(ds) {
                "dns" => "dns",
                "http" => "http",
                "proxy" => "proxy",
                "tls" => "tls",
                "flow" => "flow",
                "file" => "file",
                _ => "log",
            };
        }
        for (field, key) in &self.map {
            let Some(val) = lookup(&v, key) else {
                continue;
            };
            if *field == EcsField::DnsAnswers {
                if let Value::Array(items) = val {
                    for it in items {
                        let (ty, data) = match it {
                            Value::String(s) => (None, s.clone()),
                            Value::Object(m) => match m.get("data").and_then(as_text) {
                                Some(d) => (m.get("type").and_then(as_text), d),
                                None => continue,
                            },
                            _ => continue,
                        };
                        let ty = ty.unwrap_or_else(|| answer_type(&data, "CNAME").to_string());
                        o.dns_answers.push(DnsAnswer {
                            rtype: Cow::Owned(ty),
                            data: Cow::Owned(data),
                        });
                    }
                }
                continue;
            }
            let Some(s) = as_text(val) else {
                continue;
            };
            let ip = |s: &str| s.parse::<IpAddr>().ok().or_else(|| parse_ip(s.as_bytes()));
            let dom = |s: String| Some(norm_domain(Cow::Owned(s)).into_owned().into());
            match field {
                EcsField::Timestamp => {
                    o.timestamp_ns =
                        parse_iso8601(s.as_bytes()).or_else(|| parse_epoch(s.as_bytes()));
                    if o.timestamp_ns.is_none() {
                        return Err(ParseError::new("bad timestamp"));
                    }
                }
                EcsField::SourceIp => o.source_ip = ip(&s),
                EcsField::SourcePort => o.source_port = s.parse().ok(),
                EcsField::DestinationIp => o.destination_ip = ip(&s),
                EcsField::DestinationPort => o.destination_port = s.parse().ok(),
                EcsField::Transport => o.transport = super::ecs_values::transport(s.as_bytes()),
                EcsField::DnsQuestionName => o.dns_question_name = dom(s),
                EcsField::DnsQuestionType => o.dns_question_type = Some(s.into()),
                EcsField::DnsAnswers => {}
                EcsField::UrlFull => o.url_full = Some(s.into()),
                EcsField::UrlDomain => o.url_domain = dom(s),
                EcsField::UrlPath => o.url_path = Some(s.into()),
                EcsField::HttpMethod => o.http_method = Some(s.into()),
                EcsField::HttpStatus => o.http_status = s.parse().ok(),
                EcsField::UserAgent => o.user_agent = Some(s.into()),
                EcsField::TlsSni => o.tls_sni = dom(s),
                EcsField::Ja3 => o.ja3 = Some(s.into()),
                EcsField::Ja4 => o.ja4 = Some(s.into()),
                EcsField::TlsServerSha1 => {
                    o.tls_server_sha1 = Some(norm_hash(s.into()).into_owned().into())
                }
                EcsField::TlsServerSha256 => {
                    o.tls_server_sha256 = Some(norm_hash(s.into()).into_owned().into())
                }
                EcsField::TlsServerJa4s => o.tls_server_ja4s = Some(s.into()),
                EcsField::FileMd5 => o.file_md5 = Some(norm_hash(s.into()).into_owned().into()),
                EcsField::FileSha1 => o.file_sha1 = Some(norm_hash(s.into()).into_owned().into()),
                EcsField::FileSha256 => {
                    o.file_sha256 = Some(norm_hash(s.into()).into_owned().into())
                }
                EcsField::EmailFrom => o.email_from = Some(s.into()),
            }
        }
        // Derive url.domain / url.path from url.full when the map did not name them.
        if let Some(full) = o.url_full.clone() {
            if let Some(u) = split_url(full.as_bytes()) {
                if o.url_domain.is_none() {
                    o.url_domain = domain(u.host).map(|d| Cow::Owned(d.into_owned()));
                }
                if o.url_path.is_none() {
                    o.url_path = Some(Cow::Owned(
                        String::from_utf8_lossy(path_only(u.path)).into_owned(),
                    ));
                }
            }
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_map_nested_and_flat() {
        let m =
            FieldMap::from_pairs([("url.full", "request.url"), ("source.ip", "client")]).unwrap();
        let p = JsonParser::new(m);
        let o = p
            .parse(br#"{"client":"10.0.0.1","request":{"url":"https://Evil.example/x?y"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(o.source_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(o.url_full.as_deref(), Some("https://Evil.example/x?y"));
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(o.url_path.as_deref(), Some("/x"));
        assert!(FieldMap::from_pairs([("url.nope", "x")]).is_err());
        assert_eq!(p.parse(b"[1]").unwrap_err().reason, "not a json object");
    }

    /// The server side of a TLS observation, as `trawl observe` prints it, reads back.
    #[test]
    fn ecs_tls_server_fields_read_back() {
        let p = JsonParser::new(FieldMap::ecs());
        let o = p
            .parse(
                br#"{"tls":{"server":{"ja4s":"t120400_c030_4e8089b08790","hash":{"sha1":"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709","sha256":"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}}}"#,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            o.tls_server_ja4s.as_deref(),
            Some("t120400_c030_4e8089b08790")
        );
        assert_eq!(
            o.tls_server_sha1.as_deref(),
            Some("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert_eq!(
            o.tls_server_sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }
}
