//! DNS server logs: BIND 9 query log (file and syslog forms), Infoblox NIOS, dnsmasq.

use super::address::{parse_ip, parse_u16};
use super::ecs_values::answer_type;
use super::timestamps::{parse_bind_time, syslog_date_len};
use super::tokens::{find, text, trim, trim_eol, Tokens};
use super::url::domain;
use super::{LineParser, ParseError};
use crate::{DnsAnswer, Observation};
use std::borrow::Cow;

/// BIND 9 / Infoblox NIOS named lines.
///
/// Understood messages after `client [@0x..] IP#PORT [(name)]: [view V: ] [UDP: |TCP: ]`:
/// `query: NAME CLASS TYPE FLAGS (SERVER)`, Infoblox `query: NAME CLASS TYPE response: RCODE
/// FLAGS RR; RR;` (answers), `query (cache) 'NAME/TYPE/CLASS' denied`, `zone transfer
/// 'NAME/AXFR/IN' denied`, `query failed (RCODE) for NAME/CLASS/TYPE`, and any other client
/// line (source and the parenthesised name). Named lines without a client give `Ok(None)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindParser;

/// Skip a `<PRI>` syslog priority.
pub(crate) fn skip_pri(b: &[u8]) -> &[u8] {
    if let [b'<', rest @ ..] = b {
        if let Some(end) = memchr::memchr(b'>', rest) {
            if end <= 3 && rest[..end].iter().all(u8::is_ascii_digit) {
                return &rest[end + 1..];
            }
        }
    }
    b
}

/// The first BIND date (`DD-Mon-YYYY HH:MM:SS.mmm`) among the tokens of `prefix`.
fn bind_time_in(prefix: &[u8]) -> Option<i64> {
    let mut t = Tokens::new(prefix);
    let mut prev: Option<&[u8]> = None;
    for tok in t.by_ref() {
        if let Some(p) = prev {
            if let Some(ts) = parse_bind_time(p, tok) {
                return Some(ts);
            }
        }
        prev = Some(tok);
    }
    None
}

fn set_qname<'a>(o: &mut Observation<'a>, name: &'a [u8]) {
    if o.dns_question_name.is_none() {
        o.dns_question_name = domain(name);
    }
}

fn set_qtype<'a>(o: &mut Observation<'a>, t: &'a [u8]) {
    if !t.is_empty() && t.iter().all(|c| c.is_ascii_alphanumeric()) {
        o.dns_question_type = Some(text(t));
    }
}

impl LineParser for BindParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() || line[0] == b'#' {
            return Ok(None);
        }
        let body = skip_pri(line);
        let Some(ci) = find(body, b"client ") else {
            let named = syslog_date_len(body).is_some()
                || find(body, b"named[").is_some()
                || bind_time_in(body.get(..body.len().min(40)).unwrap_or(body)).is_some();
            return if named {
                Ok(None)
            } else {
                Err(ParseError::new("unrecognised line"))
            };
        };
        let prefix = &body[..ci];
        let mut o = Observation {
            timestamp_ns: bind_time_in(prefix),
            dataset: "dns",
            protocol: Some("dns"),
            ..Default::default()
        };
        let mut rest = &body[ci + 7..];
        if rest.starts_with(b"@0x") {
            let sp = memchr::memchr(b' ', rest).unwrap_or(rest.len());
            rest = trim(&rest[sp..]);
        }
        // IP#PORT, ended by ' ' or ':'
        let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let mut addr = &rest[..end];
        if let [a @ .., b':'] = addr {
            addr = a;
        }
        let hash = memchr::memrchr(b'#', addr).ok_or(ParseError::new("bad client address"))?;
        o.source_ip = Some(parse_ip(&addr[..hash]).ok_or(ParseError::new("bad client address"))?);
        o.source_port = parse_u16(&addr[hash + 1..]);
        rest = trim(&rest[end..]);
        if let [b'(', inner @ ..] = rest {
            if let Some(close) = memchr::memchr(b')', inner) {
                set_qname(&mut o, &inner[..close]);
                rest = &inner[close + 1..];
            }
        }
        rest = trim(rest.strip_prefix(b":").unwrap_or(rest));
        loop {
            if rest.starts_with(b"view ") {
                match find(rest, b": ") {
                    Some(i) => rest = trim(&rest[i + 2..]),
                    None => break,
                }
            } else if rest.starts_with(b"UDP: ") || rest.starts_with(b"TCP: ") {
                o.transport = Some(if rest[0] == b'U' { "udp" } else { "tcp" });
                rest = trim(&rest[5..]);
            } else {
                break;
            }
        }
        if let Some(q) = rest.strip_prefix(b"query: ") {
            // The name here is the query's own; prefer it over the parenthesised one.
            let mut t = Tokens::new(q);
            if let Some(name) = t.next() {
                o.dns_question_name = domain(name);
            }
            let _class = t.next();
            if let Some(ty) = t.next() {
                set_qtype(&mut o, ty);
            }
            let tail = t.rest();
            if let Some(r) = tail.strip_prefix(b"response: ") {
                infoblox_answers(&mut o, r);
            } else {
                for tok in Tokens::new(tail) {
                    if let [b'(', ip @ .., b')'] = tok {
                        o.destination_ip = parse_ip(ip);
                    }
                }
            }
        } else if rest.starts_with(b"query")
            || rest.starts_with(b"zone transfer")
            || rest.starts_with(b"bad zone transfer")
        {
            if let Some(i) = memchr::memchr(b'\'', rest) {
                let inner = &rest[i + 1..];
                if let Some(close) = memchr::memchr(b'\'', inner) {
                    let mut parts = inner[..close].split(|&c| c == b'/');
                    let name = parts.next().unwrap_or_default();
                    let second = parts.next();
                    let third = parts.next();
                    o.dns_question_name = domain(name);
                    if let (Some(ty), Some(_class)) = (second, third) {
                        set_qtype(&mut o, ty);
                    }
                }
            } else if let Some(i) = find(rest, b" for ") {
                // query failed (REFUSED) for NAME/CLASS/TYPE at ...
                let tail = &rest[i + 5..];
                let end = memchr::memchr(b' ', tail).unwrap_or(tail.len());
                let mut parts = tail[..end].split(|&c| c == b'/');
                let name = parts.next().unwrap_or_default();
                let _class = parts.next();
                o.dns_question_name = domain(name);
                if let Some(ty) = parts.next() {
                    set_qtype(&mut o, ty);
                }
            }
        } else if let Some(r) = rest.strip_prefix(b"rewriting query name '") {
            if let Some(close) = memchr::memchr(b'\'', r) {
                o.dns_question_name = domain(&r[..close]);
            }
            if let Some(i) = find(r, b", type ") {
                set_qtype(&mut o, trim(&r[i + 7..]));
            }
        }
        Ok(Some(o))
    }
}

/// `RCODE FLAGS name ttl IN TYPE data; name ttl IN TYPE data;` → answers.
fn infoblox_answers<'a>(o: &mut Observation<'a>, r: &'a [u8]) {
    let mut t = Tokens::new(r);
    let _rcode = t.next();
    let _flags = t.next();
    for rr in t.rest().split(|&c| c == b';') {
        let mut f = Tokens::new(rr);
        let (Some(_name), Some(_ttl), Some(_class), Some(ty), Some(data)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let data = match ty {
            b"MX" => f.next().unwrap_or(data),
            b"A" | b"AAAA" | b"CNAME" | b"PTR" | b"NS" | b"DNAME" => data,
            _ => continue,
        };
        let data = match ty {
            b"A" | b"AAAA" => text(data),
            _ => match domain(data) {
                Some(d) => d,
                None => continue,
            },
        };
        o.dns_answers.push(DnsAnswer {
            rtype: text(ty),
            data,
        });
    }
}

/// dnsmasq `log-queries` lines (`query[A] name from ip`, `forwarded name to ip`,
/// `reply|cached|config|/etc/hosts name is data`), with or without `log-queries=extra`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsmasqParser;

impl LineParser for DnsmasqParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() || line[0] == b'#' {
            return Ok(None);
        }
        let di = find(line, b"dnsmasq").ok_or(ParseError::new("not a dnsmasq line"))?;
        let after = &line[di..];
        let colon = find(after, b": ").ok_or(ParseError::new("not a dnsmasq line"))?;
        let mut msg = &after[colon + 2..];
        let mut o = Observation {
            dataset: "dns",
            protocol: Some("dns"),
            ..Default::default()
        };
        // log-queries=extra: `<serial> <ip>/<port> `
        let mut t = Tokens::new(msg);
        if let (Some(serial), Some(ipport)) = (t.next(), t.next()) {
            if serial.iter().all(u8::is_ascii_digit) {
                if let Some(slash) = memchr::memrchr(b'/', ipport) {
                    if let Some(ip) = parse_ip(&ipport[..slash]) {
                        o.source_ip = Some(ip);
                        o.source_port = parse_u16(&ipport[slash + 1..]);
                        msg = t.rest();
                    }
                }
            }
        }
        let mut t = Tokens::new(msg);
        let (Some(verb), Some(name)) = (t.next(), t.next()) else {
            return Ok(None);
        };
        let (Some(link), Some(data)) = (t.next(), t.next()) else {
            return Ok(None);
        };
        if let Some(ty) = verb.strip_prefix(b"query[") {
            let ty = ty.strip_suffix(b"]").unwrap_or(ty);
            o.dns_question_name = domain(name);
            set_qtype(&mut o, ty);
            if link == b"from" {
                o.source_ip = parse_ip(data).or(o.source_ip);
            }
        } else if verb == b"forwarded" && link == b"to" {
            o.dns_question_name = domain(name);
            o.destination_ip = parse_ip(data);
        } else if link == b"is" {
            o.dns_question_name = domain(name);
            let d = text(data);
            if parse_ip(data).is_some() {
                let rtype = answer_type(&d, "A");
                o.dns_answers.push(DnsAnswer {
                    rtype: Cow::Borrowed(rtype),
                    data: d,
                });
            } else if !data.starts_with(b"<")
                && !data.starts_with(b"NXDOMAIN")
                && !data.starts_with(b"NODATA")
            {
                if let Some(dn) = domain(data) {
                    let rtype = if name.ends_with(b".arpa") {
                        "PTR"
                    } else {
                        "CNAME"
                    };
                    o.dns_answers.push(DnsAnswer {
                        rtype: Cow::Borrowed(rtype),
                        data: dn,
                    });
                }
            }
        } else {
            return Ok(None);
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_file_form() {
        let l = b"28-Sep-2015 11:35:12.123 queries: info: client @0x7f12 1.2.3.4#5353 (Evil.Example.): view v: query: Evil.Example. IN A +E(0)K (5.6.7.8)";
        let o = BindParser.parse(l).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("evil.example"));
        assert_eq!(o.dns_question_type.as_deref(), Some("A"));
        assert_eq!(o.source_ip, Some("1.2.3.4".parse().unwrap()));
        assert_eq!(o.source_port, Some(5353));
        assert_eq!(o.destination_ip, Some("5.6.7.8".parse().unwrap()));
        // date -u -d '2015-09-28 11:35:12' +%s = 1443440112
        assert_eq!(o.timestamp_ns, Some(1_443_440_112_123_000_000));
    }

    #[test]
    fn dnsmasq_forms() {
        let o = DnsmasqParser
            .parse(
                b"Jul 17 14:49:57 dnsmasq[15210]: query[AAAA] Server.example.com from 10.10.10.33",
            )
            .unwrap()
            .unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("server.example.com"));
        assert_eq!(o.dns_question_type.as_deref(), Some("AAAA"));
        assert_eq!(o.source_ip, Some("10.10.10.33".parse().unwrap()));
        let o = DnsmasqParser
            .parse(b"Jul 17 14:49:57 dnsmasq[1]: reply a.example is 2001:db8::1")
            .unwrap()
            .unwrap();
        assert_eq!(o.dns_answers[0].rtype, "AAAA");
        assert_eq!(
            DnsmasqParser.parse(b"garbage").unwrap_err().reason,
            "not a dnsmasq line"
        );
    }
}
