//! FortiGate (FortiOS) logs: `key=value` pairs, values quoted when they hold blanks,
//! with or without a `<PRI>` / syslog header (`date=2020-04-23 time=12:17:48 ... srcip=...`).
//! Traffic, UTM (webfilter `hostname=`/`url=`, app-ctrl, ips) and DNS (`qname=`) logs.

use super::address::parse_ip_str;
use super::dns::skip_pri;
use super::keyvalue::{fill, slot, Pair, Slot};
use super::timestamps::parse_iso8601;
use super::tokens::{find, trim_eol, Line};
use super::{LineParser, ParseError};
use crate::{DnsAnswer, Observation};
use std::borrow::Cow;

/// The FortiOS keys trawl observes (FortiOS log reference).
const KEYS: &[(&str, Slot)] = &[
    ("srcip", Slot::SourceIp),
    ("dstip", Slot::DestinationIp),
    ("srcport", Slot::SourcePort),
    ("dstport", Slot::DestinationPort),
    ("hostname", Slot::Host),
    ("qname", Slot::DnsQuestion),
    ("qtype", Slot::DnsType),
    ("agent", Slot::UserAgent),
    ("filehash", Slot::Hash),
    ("analyticscksum", Slot::Hash),
];

/// `key=value` pairs of a FortiOS line: `(key, value, quoted)`.
fn pairs(b: &[u8]) -> Result<Vec<Pair<'_>>, ParseError> {
    let mut out = Vec::with_capacity(48);
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let eq = memchr::memchr(b'=', &b[i..]).ok_or(ParseError::new("text without key="))? + i;
        let key = &b[i..eq];
        if key.is_empty() || key.iter().any(|&c| c == b' ' || c == b'"') {
            return Err(ParseError::new("text without key="));
        }
        let v = eq + 1;
        if b.get(v) == Some(&b'"') {
            let mut j = v + 1;
            let end = loop {
                let q = memchr::memchr(b'"', b.get(j..).unwrap_or_default())
                    .ok_or(ParseError::new("unclosed quote"))?
                    + j;
                if b[q - 1] == b'\\' && q > v + 1 {
                    j = q + 1;
                } else {
                    break q;
                }
            };
            out.push((key, &b[v + 1..end]));
            i = end + 1;
        } else {
            let end = memchr::memchr(b' ', &b[v..]).map_or(b.len(), |e| e + v);
            out.push((key, &b[v..end]));
            i = end;
        }
    }
    Ok(out)
}

/// Where the first `key=` token (a key of letters, digits and `_`) starts in `b`.
fn first_pair(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let token = &b[at..];
        let key_len = token
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        if key_len > 0 && token.get(key_len) == Some(&b'=') {
            return Some(at);
        }
        at += memchr::memchr(b' ', token)? + 1;
    }
}

/// FortiGate lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct FortigateParser;

impl LineParser for FortigateParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return Ok(None);
        }
        let body = skip_pri(line);
        // After an optional syslog header (`Apr 23 12:17:48 fw1 `), the pairs start at the
        // first `key=` token (FortiOS writes `date=` first; forwarders may put `logver=` or
        // `itime=` before it).
        let start = first_pair(body).ok_or(ParseError::new("no key=value pairs"))?;
        if find(&body[start..], b"date=").is_none() {
            return Err(ParseError::new("no date= field"));
        }
        let kv = pairs(&body[start..])?;
        let get = |k: &[u8]| kv.iter().find(|(key, _)| *key == k).map(|&(_, v)| v);
        if get(b"logid").is_none() && get(b"type").is_none() {
            return Err(ParseError::new("no logid= or type= field"));
        }
        let l = Line::new(line);
        let mut o = Observation {
            dataset: "fortigate",
            ..Default::default()
        };
        if let (Some(d), Some(t)) = (get(b"date"), get(b"time")) {
            let tz = get(b"tz").unwrap_or(b"Z");
            let stamp = [d, b"T", t, tz].concat();
            o.timestamp_ns =
                Some(parse_iso8601(&stamp).ok_or(ParseError::new("bad date or time"))?);
        }
        for &(k, v) in &kv {
            if let Some(s) = slot(KEYS, k) {
                fill(&mut o, s, l.text(v))?;
            }
        }
        if let Some(p) = get(b"proto") {
            o.transport = match p {
                b"6" => Some("tcp"),
                b"17" => Some("udp"),
                b"1" => Some("icmp"),
                b"58" => Some("ipv6-icmp"),
                _ => None,
            };
        }
        // Web filter: `hostname=` plus `url=` (a path) make the URL.
        if let (Some(host), Some(url)) = (o.url_domain.clone(), get(b"url")) {
            if url.first() == Some(&b'/') {
                let https = get(b"service") == Some(b"HTTPS") || o.destination_port == Some(443);
                let scheme = if https { "https" } else { "http" };
                o.url_full = Some(Cow::Owned(format!(
                    "{scheme}://{host}{}",
                    String::from_utf8_lossy(url)
                )));
                o.url_path = Some(l.text(super::url::path_only(url)));
            } else {
                fill(&mut o, Slot::Url, l.text(url))?;
            }
        }
        // DNS logs: the resolved addresses.
        if let Some(ips) = get(b"ipaddr") {
            for ip in ips.split(|&c| c == b',') {
                let text = l.text(ip.trim_ascii());
                if let Some(addr) = parse_ip_str(&text) {
                    let rtype = if addr.is_ipv4() { "A" } else { "AAAA" };
                    o.dns_answers.push(DnsAnswer {
                        rtype: Cow::Borrowed(rtype),
                        data: text,
                    });
                }
            }
        }
        if o.dns_question_name.is_some() {
            o.protocol = Some("dns");
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webfilter_and_dns() {
        let l = br#"<188>date=2020-04-23 time=12:17:48 devname="testswitch1" logid="0316013056" type="utm" subtype="webfilter" tz="-0500" srcip=192.168.2.1 srcport=61930 dstip=67.43.156.13 dstport=443 proto=6 service="HTTPS" hostname="Elastic.co" url="/config/?a" method="domain" msg="URL belongs to a denied category""#;
        let o = FortigateParser.parse(l).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("192.168.2.1".parse().unwrap()));
        assert_eq!(o.url_domain.as_deref(), Some("elastic.co"));
        assert_eq!(o.url_full.as_deref(), Some("https://elastic.co/config/?a"));
        assert_eq!(o.url_path.as_deref(), Some("/config/"));
        assert_eq!(o.transport, Some("tcp"));
        assert!(
            o.http_method.is_none(),
            "method= is the rating method, not HTTP's"
        );
        assert_eq!(o.timestamp_ns, Some(1_587_662_268_000_000_000));
        let d = br#"date=2019-05-15 time=18:03:36 logid="1501054802" type="utm" subtype="dns" srcip=10.1.100.11 dstip=8.8.8.8 qname="Www.Example.com" qtype="A" ipaddr="93.184.216.34, 2606:2800::1""#;
        let o = FortigateParser.parse(d).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("www.example.com"));
        assert_eq!(o.dns_answers.len(), 2);
        assert!(FortigateParser
            .parse(b"date=2019-05-15 time=18:03:36 srcip=1.2.3.4")
            .is_err());
        assert!(FortigateParser
            .parse(b"date=2019-05-15 time=18:03:36 type=\"x\" srcip=host")
            .is_err());
        // Behind a syslog header, `date=` not first.
        let h = br#"<189>Apr 23 01:16:08 fw1 logver=700 date=2020-04-23 time=01:16:08 logid="0000000013" type="traffic" srcip=10.10.10.10 dstip=67.43.156.13"#;
        let o = FortigateParser.parse(h).unwrap().unwrap();
        assert_eq!(o.destination_ip, Some("67.43.156.13".parse().unwrap()));
        assert_eq!(o.timestamp_ns, Some(1_587_604_568_000_000_000));
    }
}
