//! Windows DNS Server debug log (`dnscmd /config /logLevel`): one `PACKET` line per query
//! or response, `DATE TIME [AM|PM] THREAD PACKET ID PROTO Rcv|Snd REMOTE XID [R] OPCODE
//! [FLAGS CODES RCODE] QTYPE (len)label(len)label(0)`. The date follows the server's
//! locale: `M/d/yyyy h:mm:ss AM` (en-US), `dd/MM/yyyy`, `dd.MM.yyyy`, `yyyy-MM-dd`; local
//! time, read as UTC. The header block, `EVENT` and `Note:` lines carry nothing.
//! A received packet's remote address is the `source.ip`, a sent one's the
//! `destination.ip` (the server's own address is not in the line).

use super::address::parse_ip;
use super::tokens::{find, trim_eol, Tokens};
use super::{LineParser, ParseError};
use crate::Observation;
use matcher::calendar::days_from_civil;
use std::borrow::Cow;

/// Windows DNS debug-log lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsDnsParser;

/// `(4)file(5)local(0)` → `file.local` (lower-cased); `None` when it is not in that form.
fn decode_name(b: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut rest = b;
    while let Some(r) = rest.strip_prefix(b"(") {
        let close = memchr::memchr(b')', r)?;
        if close == 0 || !r[..close].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let label_end = memchr::memchr(b'(', &r[close + 1..]).map_or(r.len(), |i| i + close + 1);
        let label = &r[close + 1..label_end];
        if !label.is_empty() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        }
        rest = &r[label_end..];
    }
    rest.is_empty().then_some(out)
}

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The date and time tokens (and `AM`/`PM`) → ns.
fn timestamp(date: &[u8], time: &[u8], ampm: Option<&[u8]>) -> Option<i64> {
    let parts: Vec<&[u8]> = date
        .split(|&c| c == b'/' || c == b'.' || c == b'-')
        .collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (a, b, c) = (num(a)?, num(b)?, num(c)?);
    let (y, m, d) = if date.get(4) == Some(&b'-') {
        (a, b, c) // yyyy-MM-dd
    } else if ampm.is_some() {
        (c, a, b) // en-US M/d/yyyy
    } else {
        (c, b, a) // d/M/yyyy, d.M.yyyy
    };
    let hms: Vec<&[u8]> = time.split(|&c| c == b':').collect();
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    let (mut h, mi, s) = (num(h)?, num(mi)?, num(s)?);
    match ampm {
        Some(p) if p.eq_ignore_ascii_case(b"PM") && h < 12 => h += 12,
        Some(p) if p.eq_ignore_ascii_case(b"AM") && h == 12 => h = 0,
        _ => {}
    }
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 || y < 1970 {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s;
    secs.checked_mul(1_000_000_000)
}

impl LineParser for WindowsDnsParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        let Some(p) = find(line, b" PACKET ") else {
            return Ok(None); // header, EVENT, Note:, blank
        };
        let mut head = Tokens::new(&line[..p]);
        let (Some(date), Some(time)) = (head.next(), head.next()) else {
            return Err(ParseError::new("no date and time"));
        };
        let ampm = head
            .next()
            .filter(|t| t.eq_ignore_ascii_case(b"AM") || t.eq_ignore_ascii_case(b"PM"));
        let ts = timestamp(date, time, ampm).ok_or(ParseError::new("bad date or time"))?;
        let mut t = Tokens::new(&line[p + 8..]);
        let _id = t.next().ok_or(ParseError::new("too few fields"))?;
        let proto = t.next().ok_or(ParseError::new("too few fields"))?;
        let dir = t.next().ok_or(ParseError::new("too few fields"))?;
        let remote = t.next().ok_or(ParseError::new("too few fields"))?;
        let remote = parse_ip(remote).ok_or(ParseError::new("remote is not an address"))?;
        let rest = t.rest();
        let close = memchr::memchr(b']', rest).ok_or(ParseError::new("no [flags]"))?;
        let mut q = Tokens::new(&rest[close + 1..]);
        let qtype = q.next().ok_or(ParseError::new("no question type"))?;
        let qname = q.next().ok_or(ParseError::new("no question name"))?;
        let name =
            decode_name(qname).ok_or(ParseError::new("question name not in (len)label form"))?;
        let mut o = Observation {
            timestamp_ns: Some(ts),
            dataset: "dns",
            protocol: Some("dns"),
            transport: match proto {
                b"UDP" => Some("udp"),
                b"TCP" => Some("tcp"),
                _ => return Err(ParseError::new("protocol is not UDP or TCP")),
            },
            dns_question_type: Some(super::tokens::text(qtype)),
            ..Default::default()
        };
        match dir {
            b"Rcv" => o.source_ip = Some(remote),
            b"Snd" => o.destination_ip = Some(remote),
            _ => return Err(ParseError::new("direction is not Rcv or Snd")),
        }
        if !name.is_empty() {
            o.dns_question_name = Some(Cow::Owned(name));
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_and_directions() {
        let l = b"6/20/2017 5:36:59 PM 0E24 PACKET  0000009AC98841A0 UDP Rcv ::1             2de6   Q [0001   D   NOERROR] SOA    (4)File(5)local(0)";
        let o = WindowsDnsParser.parse(l).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("file.local"));
        assert_eq!(o.source_ip, Some("::1".parse().unwrap()));
        assert_eq!(o.timestamp_ns, Some(1_497_980_219_000_000_000));
        let l = b"06.03.2020 17:15:40 0BD4 PACKET 0000008F15AD2190 UDP Snd 10.200.1.222 9e90 R Q [8085 A DR NOERROR] A (4)test(5)virot(2)eu(0)";
        let o = WindowsDnsParser.parse(l).unwrap().unwrap();
        assert_eq!(o.destination_ip, Some("10.200.1.222".parse().unwrap()));
        assert_eq!(o.dns_question_name.as_deref(), Some("test.virot.eu"));
        assert_eq!(o.timestamp_ns, Some(1_583_514_940_000_000_000));
        assert!(WindowsDnsParser
            .parse(b"6/20/2017 5:36:59 AM 0DF4 EVENT   The DNS server has started.")
            .unwrap()
            .is_none());
        assert!(WindowsDnsParser.parse(b"6/20/2017 5:36:59 AM 0E24 PACKET  x UDP Rcv nohost 2de6 Q [0001 D NOERROR] A (1)a(0)").is_err());
    }
}
