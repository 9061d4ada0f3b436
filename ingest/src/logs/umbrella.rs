//! Cisco Umbrella log exports (CSV, one record per line, every field quoted): DNS logs
//! (`Timestamp, MostGranularIdentity, Identities, InternalIp, ExternalIp, Action,
//! QueryType, ResponseCode, Domain, Categories[, ...]`) and proxy logs (`Timestamp,
//! Identities, InternalIp, ExternalIp, DestinationIp, ContentType, Verdict, URL, Referer,
//! UserAgent, StatusCode, RequestSize, ResponseSize, ResponseBodySize, SHA-SHA256, ...,
//! RequestMethod (26th) ...`), told apart by their shape.

use super::keyvalue::{fill, Slot};
use super::timestamps::parse_iso8601;
use super::tokens::{csv_text, split_csv, trim_eol, Line};
use super::{LineParser, ParseError};
use crate::Observation;
use std::borrow::Cow;

/// Umbrella CSV lines (DNS and proxy).
#[derive(Debug, Clone, Copy, Default)]
pub struct UmbrellaParser;

/// `1 (A)` → `A`.
fn query_type(v: &str) -> Option<&str> {
    let (num, rest) = v.split_once(' ')?;
    let name = rest.strip_prefix('(')?.strip_suffix(')')?;
    (num.bytes().all(|c| c.is_ascii_digit()) && !num.is_empty() && !name.is_empty()).then_some(name)
}

impl LineParser for UmbrellaParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return Ok(None);
        }
        let mut spans = Vec::with_capacity(40);
        split_csv(line, &mut spans).ok_or(ParseError::new("unclosed quote"))?;
        let l = Line::new(line);
        let f = |i: usize| spans.get(i).map(|&s| csv_text(&l, line, s));
        let ts = f(0).ok_or(ParseError::new("too few fields"))?;
        let ts = parse_iso8601(ts.as_bytes()).ok_or(ParseError::new("bad timestamp"))?;
        let mut o = Observation {
            timestamp_ns: Some(ts),
            ..Default::default()
        };
        let qtype = f(6).and_then(|t| query_type(&t).map(str::to_string));
        if (10..=14).contains(&spans.len()) && qtype.is_some() {
            o.dataset = "dns";
            o.protocol = Some("dns");
            fill(&mut o, Slot::SourceIp, f(3).unwrap_or_default())?;
            fill(&mut o, Slot::DnsQuestion, f(8).unwrap_or_default())?;
            o.dns_question_type = qtype.map(Cow::Owned);
            return Ok(Some(o));
        }
        if spans.len() >= 21 {
            o.dataset = "proxy";
            o.protocol = Some("http");
            fill(&mut o, Slot::SourceIp, f(2).unwrap_or_default())?;
            fill(&mut o, Slot::DestinationIp, f(4).unwrap_or_default())?;
            fill(&mut o, Slot::Url, f(7).unwrap_or_default())?;
            fill(&mut o, Slot::UserAgent, f(9).unwrap_or_default())?;
            fill(&mut o, Slot::Status, f(10).unwrap_or_default())?;
            fill(&mut o, Slot::Hash, f(14).unwrap_or_default())?;
            if spans.len() > 25 {
                let m = f(25).unwrap_or_default();
                if !m.is_empty() {
                    if !super::request::is_method(m.as_bytes()) {
                        return Err(ParseError::new("not a request method"));
                    }
                    o.http_method = Some(m);
                }
            }
            return Ok(Some(o));
        }
        Err(ParseError::new(
            "neither an Umbrella DNS nor a proxy record",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_and_proxy() {
        let d = br#""2020-07-23 23:49:54","elasticuser","elasticuser,Elastic Machine","192.168.1.1","81.2.69.144","Allowed","1 (A)","NOERROR","www.elastic.co.","Software/Technology","Test Policy Name","AD Users, Roaming Computers","""#;
        let o = UmbrellaParser.parse(d).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("www.elastic.co"));
        assert_eq!(o.dns_question_type.as_deref(), Some("A"));
        assert_eq!(o.source_ip, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(o.timestamp_ns, Some(1_595_548_194_000_000_000));
        let p = br#""2020-07-23 23:48:56","Elastic Machine","192.168.1.1","67.43.156.12","81.2.69.144","","ALLOWED","https://elastic.co/blog/x","https://google.com/elastic","Mozilla/5.0 (X)","200","850","","","","Business Services","","","","","","Roaming Computers","""#;
        let o = UmbrellaParser.parse(p).unwrap().unwrap();
        assert_eq!(o.url_domain.as_deref(), Some("elastic.co"));
        assert_eq!(o.destination_ip, Some("81.2.69.144".parse().unwrap()));
        assert_eq!(o.http_status, Some(200));
        assert_eq!(o.user_agent.as_deref(), Some("Mozilla/5.0 (X)"));
        assert!(UmbrellaParser
            .parse(br#""2020-07-23 23:48:56","a","b""#)
            .is_err());
        assert!(UmbrellaParser.parse(br#""yesterday","a","b""#).is_err());
    }
}
