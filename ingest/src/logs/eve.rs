//! Suricata EVE JSON: dns (v1 per-answer, v2 `answers`/`grouped`, v3 `queries`), http, tls,
//! fileinfo, flow, alert (with whatever app-layer object it carries), anything else as `log`.

use super::address::parse_ip_str;
use super::ecs_values::{answer_type, norm_hash};
use super::serde_helpers::{json_from_line, opt_str, BorrowedStr};
use super::timestamps::parse_iso8601;
use super::tokens::{trim, trim_eol};
use super::url::{domain, norm_domain};
use super::{LineParser, ParseError};
use crate::{DnsAnswer, Observation};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Eve<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    src_ip: Option<Cow<'a, str>>,
    src_port: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    dest_ip: Option<Cow<'a, str>>,
    dest_port: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    app_proto: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dns: Option<EveDns<'a>>,
    #[serde(borrow)]
    http: Option<EveHttp<'a>>,
    #[serde(borrow)]
    tls: Option<EveTls<'a>>,
    #[serde(borrow)]
    fileinfo: Option<EveFile<'a>>,
}

#[derive(Deserialize)]
struct EveRr<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    rrname: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    rrtype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rdata: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EveDns<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    rrname: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    rrtype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rdata: Option<&'a RawValue>,
    #[serde(borrow)]
    answers: Option<Vec<EveRr<'a>>>,
    #[serde(borrow)]
    grouped: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
    #[serde(borrow)]
    queries: Option<Vec<EveRr<'a>>>,
    /// Alerts with DNS metadata (Suricata 6/7).
    #[serde(borrow)]
    query: Option<Vec<EveRr<'a>>>,
}

#[derive(Deserialize)]
struct EveHttp<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    hostname: Option<Cow<'a, str>>,
    http_port: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    http_method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    http_user_agent: Option<Cow<'a, str>>,
    status: Option<u16>,
}

#[derive(Deserialize)]
struct EveJa3<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    hash: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EveTls<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    sni: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ja3: Option<EveJa3<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    ja4: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EveFile<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    md5: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    sha1: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    sha256: Option<Cow<'a, str>>,
}

/// Suricata EVE JSON lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveParser;

fn some<'a>(c: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    c.filter(|s| !s.is_empty())
}

/// An `rdata` that is a JSON string, as a borrowed/owned str.
fn rdata_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<BorrowedStr<'_>>(raw.get())
        .ok()
        .map(|s| s.0)
}

fn push_answer<'a>(o: &mut Observation<'a>, rtype: Option<Cow<'a, str>>, data: Cow<'a, str>) {
    if data.is_empty() {
        return;
    }
    let rtype = rtype.unwrap_or_else(|| Cow::Borrowed(answer_type(&data, "CNAME")));
    let data = match rtype.as_ref() {
        "A" | "AAAA" => data,
        "CNAME" | "PTR" | "NS" | "MX" | "DNAME" => norm_domain(data),
        _ => return,
    };
    o.dns_answers.push(DnsAnswer { rtype, data });
}

impl LineParser for EveParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() {
            return Ok(None);
        }
        let e: Eve<'a> = json_from_line(line).map_err(|err| ParseError {
            reason: "invalid json",
            detail: Some(err.to_string()),
        })?;
        let ts = match &e.timestamp {
            Some(t) => Some(parse_iso8601(t.as_bytes()).ok_or(ParseError::new("bad timestamp"))?),
            None => None,
        };
        let et = e.event_type.as_deref().unwrap_or("");
        let mut o = Observation {
            timestamp_ns: ts,
            source_ip: e.src_ip.as_deref().and_then(parse_ip_str),
            source_port: e.src_port,
            destination_ip: e.dest_ip.as_deref().and_then(parse_ip_str),
            destination_port: e.dest_port,
            transport: e
                .proto
                .as_deref()
                .and_then(|p| super::ecs_values::transport(p.as_bytes())),
            ..Default::default()
        };
        o.protocol = match e.app_proto.as_deref() {
            Some("dns") => Some("dns"),
            Some("http") | Some("http1") | Some("http2") => Some("http"),
            Some("tls") => Some("tls"),
            Some("quic") => Some("quic"),
            _ => None,
        };
        o.dataset = match et {
            "dns" => "dns",
            "http" => "http",
            "tls" => "tls",
            "quic" => "tls",
            "fileinfo" => "file",
            "flow" | "netflow" => "flow",
            _ => {
                if e.dns.is_some() {
                    "dns"
                } else if e.http.is_some() {
                    "http"
                } else if e.tls.is_some() {
                    "tls"
                } else if e.fileinfo.is_some() {
                    "file"
                } else {
                    "log"
                }
            }
        };
        if let Some(d) = e.dns {
            o.protocol = Some("dns");
            let q = d
                .queries
                .and_then(|v| v.into_iter().next())
                .or_else(|| d.query.and_then(|v| v.into_iter().next()));
            let (qname, qtype) = match q {
                Some(q) => (q.rrname, q.rrtype),
                None => (d.rrname.clone(), d.rrtype.clone()),
            };
            o.dns_question_name = some(qname).map(norm_domain).filter(|s| !s.is_empty());
            o.dns_question_type = some(qtype.clone());
            if let Some(answers) = d.answers {
                for a in answers {
                    if let Some(data) = a.rdata.and_then(rdata_str) {
                        push_answer(&mut o, a.rrtype, data);
                    }
                }
            } else if let Some(grouped) = d.grouped {
                for (ty, raw) in grouped {
                    if !matches!(ty.as_ref(), "A" | "AAAA" | "CNAME" | "PTR" | "NS") {
                        continue;
                    }
                    if let Ok(list) = serde_json::from_str::<Vec<BorrowedStr<'a>>>(raw.get()) {
                        for data in list {
                            push_answer(&mut o, Some(ty.clone()), data.0);
                        }
                    }
                }
            } else if let Some(data) = d.rdata.and_then(rdata_str) {
                // v1: one record per event; rrname/rrtype describe the record.
                push_answer(&mut o, qtype, data);
            }
        }
        if let Some(h) = e.http {
            o.protocol = Some("http");
            let host = some(h.hostname).map(norm_domain);
            if let Some(url) = some(h.url) {
                if let Some(u) = super::url::split_url(url.as_bytes()) {
                    o.url_path = Some(Cow::Owned(String::from_utf8_lossy(u.path).into_owned()));
                    if host.is_none() {
                        o.url_domain = domain(u.host).map(|d| Cow::Owned(d.into_owned()));
                    }
                    o.url_full = Some(url);
                } else if url.starts_with('/') {
                    if let Some(hn) = &host {
                        let port = match h.http_port {
                            Some(p) if p != 80 => format!(":{p}"),
                            _ => String::new(),
                        };
                        o.url_full = Some(Cow::Owned(format!("http://{hn}{port}{url}")));
                    }
                    let p = super::url::path_only(url.as_bytes()).len();
                    o.url_path = Some(match url {
                        Cow::Borrowed(s) => Cow::Borrowed(&s[..p]),
                        Cow::Owned(mut s) => {
                            s.truncate(p);
                            Cow::Owned(s)
                        }
                    });
                }
            }
            if host.is_some() {
                o.url_domain = host;
            }
            o.http_method = some(h.http_method);
            o.user_agent = some(h.http_user_agent);
            o.http_status = h.status;
        }
        if let Some(t) = e.tls {
            if o.protocol.is_none() || o.dataset == "tls" {
                o.protocol = Some(if et == "quic" { "quic" } else { "tls" });
            }
            o.tls_sni = some(t.sni).map(norm_domain).filter(|s| !s.is_empty());
            o.tls_server_sha1 = some(t.fingerprint).map(norm_hash);
            o.ja3 = t.ja3.and_then(|j| some(j.hash));
            o.ja4 = some(t.ja4);
        }
        if let Some(f) = e.fileinfo {
            o.file_md5 = some(f.md5).map(norm_hash);
            o.file_sha1 = some(f.sha1).map(norm_hash);
            o.file_sha256 = some(f.sha256).map(norm_hash);
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_v2_grouped_and_answers() {
        let l = br#"{"timestamp":"2020-01-01T00:00:00.000000+0000","event_type":"dns","src_ip":"10.0.0.1","src_port":53,"dest_ip":"10.0.0.2","dest_port":5353,"proto":"UDP","dns":{"version":2,"type":"answer","rrname":"Www.Example.com","rrtype":"A","grouped":{"CNAME":["e.example.net"],"A":["192.0.2.1","192.0.2.2"]}}}"#;
        let o = EveParser.parse(l).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("www.example.com"));
        assert_eq!(o.dns_answers.len(), 3);
        assert_eq!(o.transport, Some("udp"));
        let l = br#"{"event_type":"dns","dns":{"type":"answer","rrname":"a.b","rrtype":"A","answers":[{"rrname":"a.b","rrtype":"CNAME","rdata":"C.d."},{"rrname":"c.d","rrtype":"A","rdata":"192.0.2.9"},{"rrname":"c.d","rrtype":"MX","rdata":{"x":1}}]}}"#;
        let o = EveParser.parse(l).unwrap().unwrap();
        assert_eq!(o.dns_answers.len(), 2);
        assert_eq!(o.dns_answers[0].data, "c.d");
        assert_eq!(EveParser.parse(b"{").unwrap_err().reason, "invalid json");
    }
}
