//! Zscaler Internet Access NSS web logs as JSON lines, in the layout Zscaler documents for
//! SIEM feeds (`{"sourcetype":"zscalernss-web","event":{"time":..,"cip":..,"sip":..,
//! "eurl":..,"proto":..,"reqmethod":..,"respcode":..,"eua":..}}`; the `event` object alone
//! is read too). `eurl` has no scheme: it is `proto`'s (`HTTPS` → `https`, an `HTTP_PROXY`
//! URL on port 443 → `https`, else `http`). `cip` is the location's public address
//! (Elastic: `source.nat.ip`), not observed; `sip` is the server (`destination.ip`).

use super::keyvalue::{fill, Slot};
use super::serde_helpers::json_from_line;
use super::timestamps::month_abbr;
use super::tokens::trim_eol;
use super::{LineParser, ParseError};
use crate::Observation;
use matcher::calendar::days_from_civil;
use serde_json::Value;
use std::borrow::Cow;

/// Zscaler NSS web JSON lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZscalerParser;

/// `Fri Dec 31 07:07:07 2021` (NSS `%s{time}`, UTC) → ns.
fn nss_time(s: &str) -> Option<i64> {
    let mut t = s.split_ascii_whitespace();
    let (_wd, mon, day, time, year) = (t.next()?, t.next()?, t.next()?, t.next()?, t.next()?);
    let m = month_abbr(mon.as_bytes())?;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 || t.next().is_some() {
        return None;
    }
    (days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec).checked_mul(1_000_000_000)
}

/// URL-decode `%XX` (NSS encodes the user agent); invalid escapes are kept.
fn url_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

impl LineParser for ZscalerParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let v: Value = json_from_line(line).map_err(|_| ParseError::new("invalid json"))?;
        let e = v.get("event").unwrap_or(&v);
        let text = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && *s != "NA" && *s != "None")
        };
        let (Some(eurl), Some(proto)) = (text("eurl"), text("proto")) else {
            return Err(ParseError::new(
                "no eurl or proto: not a Zscaler web record",
            ));
        };
        let mut o = Observation {
            dataset: "proxy",
            protocol: Some("http"),
            timestamp_ns: text("time").and_then(nss_time),
            ..Default::default()
        };
        if text("time").is_some() && o.timestamp_ns.is_none() {
            return Err(ParseError::new("bad time"));
        }
        fill(
            &mut o,
            Slot::DestinationIp,
            Cow::Owned(text("sip").unwrap_or_default().to_string()),
        )?;
        let https = proto.eq_ignore_ascii_case("HTTPS")
            || (proto.eq_ignore_ascii_case("HTTP_PROXY") && eurl.ends_with(":443"));
        let scheme = if https { "https" } else { "http" };
        fill(&mut o, Slot::Url, Cow::Owned(format!("{scheme}://{eurl}")))?;
        if let Some(m) = text("reqmethod") {
            if !super::request::is_method(m.as_bytes()) {
                return Err(ParseError::new("not a request method"));
            }
            o.http_method = Some(Cow::Owned(m.to_string()));
        }
        if let Some(code) = text("respcode") {
            fill(&mut o, Slot::Status, Cow::Owned(code.to_string()))?;
        }
        if let Some(ua) = text("eua") {
            o.user_agent = Some(Cow::Owned(url_decode(ua).into_owned()));
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_web_record() {
        let l = br#"{"sourcetype":"zscalernss-web","event":{"time":"Thu Aug 29 09:20:35 2022","cip":"81.2.69.193","sip":"89.160.20.112","eurl":"www.Example.com:443","proto":"HTTP_PROXY","reqmethod":"CONNECT","respcode":"200","eua":"Windows%20ZTunnel/1.0"}}"#;
        let o = ZscalerParser.parse(l).unwrap().unwrap();
        assert_eq!(o.url_full.as_deref(), Some("https://www.Example.com:443"));
        assert_eq!(o.url_domain.as_deref(), Some("www.example.com"));
        assert_eq!(o.destination_port, Some(443));
        assert_eq!(o.destination_ip, Some("89.160.20.112".parse().unwrap()));
        assert_eq!(o.user_agent.as_deref(), Some("Windows ZTunnel/1.0"));
        assert_eq!(o.http_status, Some(200));
        assert!(o.source_ip.is_none());
        assert_eq!(o.timestamp_ns, Some(1_661_764_835_000_000_000));
        assert!(ZscalerParser.parse(br#"{"event":{"time":"x"}}"#).is_err());
        assert!(ZscalerParser
            .parse(br#"{"event":{"eurl":"a.example","proto":"HTTP","sip":"host"}}"#)
            .is_err());
    }
}
