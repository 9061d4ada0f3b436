//! W3C extended log files (<https://www.w3.org/TR/WD-logfile>) as IIS and Blue Coat /
//! Symantec ProxySG write them: `#Software:`, `#Fields:` directives, then one record per
//! line, blank-separated, a field in double quotes when it holds blanks (`""` inside is a
//! quote). The `#Fields:` list may change mid-file: [`LineParser::after_directive`] gives
//! the parser for the lines after a new one.

use super::address::{parse_ip, parse_u16};
use super::request::set_target;
use super::timestamps::parse_iso8601;
use super::tokens::{find, trim, trim_eol, Line};
use super::{LineParser, ParseError};
use crate::Observation;
use std::borrow::Cow;

/// What one `#Fields:` entry gives the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Skip,
    Date,
    Time,
    ClientIp,
    ClientPort,
    ServerIp,
    ServerPort,
    RemoteIp,
    UriPort,
    Method,
    UriStem,
    UriQuery,
    Uri,
    Scheme,
    Host,
    Status,
    UserAgent,
}

fn field(name: &[u8]) -> Field {
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"date" | b"date-local" => Field::Date,
        b"time" | b"time-local" => Field::Time,
        b"c-ip" => Field::ClientIp,
        b"c-port" => Field::ClientPort,
        b"s-ip" => Field::ServerIp,
        b"s-port" => Field::ServerPort,
        b"r-ip" => Field::RemoteIp,
        b"cs-uri-port" => Field::UriPort,
        b"cs-method" => Field::Method,
        b"cs-uri-stem" | b"cs-uri-path" => Field::UriStem,
        b"cs-uri-query" => Field::UriQuery,
        b"cs-uri" => Field::Uri,
        b"cs-uri-scheme" => Field::Scheme,
        b"cs-host" | b"cs(host)" => Field::Host,
        b"sc-status" => Field::Status,
        b"cs(user-agent)" => Field::UserAgent,
        _ => Field::Skip,
    }
}

/// ProxySG's default `main` access-log layout (its documentation's `bcreportermain_v1`),
/// which ProxySG exports follow even where their `#Fields:` line leaves out
/// `cs(User-Agent)` (Elastic's ProxySG integration reads them by this layout too).
const PROXYSG_MAIN: &[u8] = b"date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme cs-host cs-uri-port cs-uri-path cs-uri-query cs-username cs-auth-group s-supplier-name rs(Content-Type) cs(Referer) cs(User-Agent) sc-filter-result cs-categories x-virus-id s-ip";

/// The W3C parser for one `#Fields:` list.
#[derive(Debug, Clone)]
pub struct W3cParser {
    fields: Vec<Field>,
    /// ProxySG (`#Software: SGOS`, or an `s-action` field): `s-ip` is the proxy itself,
    /// not the destination.
    proxy: bool,
}

/// Cut a W3C record into fields: blank-separated, `"..."` quoting with `""` for a quote.
/// Returns `None` when a quote is not closed.
fn split_record(line: &[u8], out: &mut Vec<(usize, usize, bool)>) -> Option<()> {
    out.clear();
    let mut i = 0;
    let n = line.len();
    while i < n {
        while i < n && matches!(line[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= n {
            break;
        }
        if line[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            loop {
                let q = memchr::memchr(b'"', line.get(j..)?)? + j;
                if line.get(q + 1) == Some(&b'"') {
                    j = q + 2;
                    continue;
                }
                out.push((start, q, true));
                i = q + 1;
                break;
            }
        } else {
            let end = memchr::memchr2(b' ', b'\t', &line[i..]).map_or(n, |e| e + i);
            out.push((i, end, false));
            i = end;
        }
    }
    Some(())
}

impl W3cParser {
    /// A parser from the file's head: its first `#Fields:` directive (and `#Software:`).
    /// Without one, every record is unparseable until a `#Fields:` line comes.
    pub fn from_head(head: &[u8]) -> W3cParser {
        let proxy = head
            .split(|&b| b == b'\n')
            .take_while(|l| l.first() == Some(&b'#') || trim(l).is_empty())
            .any(|l| l.starts_with(b"#Software: SGOS"));
        match head
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"#Fields:"))
        {
            Some(fields) => W3cParser::with_fields(fields, proxy),
            None => W3cParser {
                fields: Vec::new(),
                proxy,
            },
        }
    }

    fn with_fields(directive: &[u8], proxy: bool) -> W3cParser {
        let list = trim(trim_eol(
            directive.strip_prefix(b"#Fields:").unwrap_or(directive),
        ));
        let names: Vec<&[u8]> = list
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|s| !s.is_empty())
            .collect();
        let proxy = proxy || names.iter().any(|n| n.eq_ignore_ascii_case(b"s-action"));
        W3cParser {
            fields: names.into_iter().map(field).collect(),
            proxy,
        }
    }

    fn proxysg_main() -> W3cParser {
        let mut p = W3cParser::with_fields(PROXYSG_MAIN, true);
        p.proxy = true;
        p
    }
}

/// `-` is W3C's "no value".
fn value(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

impl LineParser for W3cParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() || line[0] == b'#' {
            return Ok(None);
        }
        if self.fields.is_empty() {
            return Err(ParseError::new("no #Fields: directive before this line"));
        }
        SPANS.with(|spans| {
            let mut spans = spans.borrow_mut();
            self.parse_record(line, &mut spans)
        })
    }

    fn directive_prefix(&self) -> Option<&'static [u8]> {
        Some(b"#Fields:")
    }

    fn after_directive(&self, line: &[u8]) -> Option<Box<dyn LineParser>> {
        line.starts_with(b"#Fields:")
            .then(|| Box::new(W3cParser::with_fields(line, self.proxy)) as Box<dyn LineParser>)
    }
}

thread_local! {
    /// The field spans of the record being parsed, reused from line to line.
    static SPANS: std::cell::RefCell<Vec<(usize, usize, bool)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl W3cParser {
    /// [`LineParser::parse`] of a record line (not blank, not a directive).
    fn parse_record<'a>(
        &self,
        line: &'a [u8],
        spans: &mut Vec<(usize, usize, bool)>,
    ) -> Result<Option<Observation<'a>>, ParseError> {
        split_record(line, spans).ok_or(ParseError::new("unclosed quote"))?;
        let main;
        let fields: &[Field] = if spans.len() == self.fields.len() {
            &self.fields
        } else if self.proxy && spans.len() >= 24 && self.fields.len() + 1 == 24 {
            // A ProxySG export whose `#Fields:` omits `cs(User-Agent)` (see PROXYSG_MAIN).
            main = W3cParser::proxysg_main();
            &main.fields
        } else {
            return Err(ParseError::new("field count differs from #Fields"));
        };
        let l = Line::new(line);
        let mut o = Observation {
            dataset: if self.proxy { "proxy" } else { "http" },
            protocol: Some("http"),
            ..Default::default()
        };
        let (mut date, mut time) = (None, None);
        let (mut stem, mut query, mut uri, mut scheme, mut host) = (None, None, None, None, None);
        let (mut server_ip, mut remote_ip, mut uri_port) = (None, None, None);
        for (&f, &(s, e, quoted)) in fields.iter().zip(spans.iter()) {
            let raw = &line[s..e];
            let Some(v) = value(raw) else { continue };
            match f {
                Field::Skip => {}
                Field::Date => date = Some(v),
                Field::Time => time = Some(v),
                Field::ClientIp => {
                    o.source_ip =
                        Some(parse_ip(v).ok_or(ParseError::new("c-ip is not an address"))?);
                }
                Field::ClientPort => {
                    o.source_port =
                        Some(parse_u16(v).ok_or(ParseError::new("port is not a number"))?);
                }
                Field::ServerIp => server_ip = Some(v),
                Field::RemoteIp => remote_ip = Some(v),
                Field::ServerPort => {
                    let p = parse_u16(v).ok_or(ParseError::new("port is not a number"))?;
                    if !self.proxy {
                        o.destination_port = Some(p);
                    }
                }
                Field::UriPort => {
                    uri_port = Some(parse_u16(v).ok_or(ParseError::new("port is not a number"))?);
                }
                Field::Method => {
                    let ok = v.len() <= 32
                        && v.iter()
                            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
                    if !ok {
                        return Err(ParseError::new("not a request method"));
                    }
                    o.http_method = Some(l.text(v));
                }
                Field::UriStem => stem = Some(v),
                Field::UriQuery => query = Some(v),
                Field::Uri => uri = Some(v),
                Field::Scheme => scheme = Some(v),
                Field::Host => host = Some(v),
                Field::Status => {
                    if !v.iter().all(u8::is_ascii_digit) || v.len() > 3 {
                        return Err(ParseError::new("sc-status is not a number"));
                    }
                    o.http_status = parse_u16(v).filter(|&s| s != 0);
                }
                Field::UserAgent => o.user_agent = Some(unquote(&l, v, quoted)),
            }
        }
        if let (Some(d), Some(t)) = (date, time) {
            let mut buf = [0u8; 48];
            let n = d.len() + 1 + t.len();
            if n <= buf.len() {
                buf[..d.len()].copy_from_slice(d);
                buf[d.len()] = b'T';
                buf[d.len() + 1..n].copy_from_slice(t);
                o.timestamp_ns =
                    Some(parse_iso8601(&buf[..n]).ok_or(ParseError::new("bad date or time"))?);
            } else {
                return Err(ParseError::new("bad date or time"));
            }
        }
        // The destination: the origin server (`r-ip`), else the server for IIS (`s-ip`);
        // ProxySG's `s-ip` is the proxy itself.
        let dest = remote_ip.or(if self.proxy { None } else { server_ip });
        if let Some(d) = dest {
            o.destination_ip =
                Some(parse_ip(d).ok_or(ParseError::new("server ip is not an address"))?);
        }
        if uri_port.is_some() {
            o.destination_port = uri_port;
        }
        let connect = o.http_method.as_deref() == Some("CONNECT");
        let tunnel = connect || matches!(scheme, Some(b"tcp" | b"ssl"));
        if let Some(u) = uri {
            set_target(&l, &mut o, u, host, connect);
        } else if let Some(h) = host {
            o.url_domain = l.domain(super::url::split_host_port(h).0);
            if !tunnel {
                let scheme = scheme.map_or(
                    if uri_port == Some(443) || o.destination_port == Some(443) {
                        "https"
                    } else {
                        "http"
                    },
                    |s| std::str::from_utf8(s).unwrap_or("http"),
                );
                let path = stem.unwrap_or(b"/");
                let domain = o.url_domain.as_deref().unwrap_or_default();
                let (path_text, query_text) = (l.text(path), query.map(|q| l.text(q)));
                let mut full = String::with_capacity(
                    scheme.len()
                        + domain.len()
                        + path_text.len()
                        + query_text.as_ref().map_or(0, |q| q.len() + 1)
                        + 12,
                );
                full.push_str(scheme);
                full.push_str("://");
                full.push_str(domain);
                match (scheme, uri_port) {
                    ("http", Some(80)) | ("https", Some(443)) | (_, None) => {}
                    (_, Some(p)) => {
                        use std::fmt::Write;
                        let _ = write!(full, ":{p}");
                    }
                }
                full.push_str(&path_text);
                if let Some(q) = query_text {
                    if !q.starts_with('?') {
                        full.push('?');
                    }
                    full.push_str(&q);
                }
                o.url_full = Some(Cow::Owned(full));
                o.url_path = Some(l.text(super::url::path_only(path)));
            }
        } else if let Some(s) = stem {
            o.url_path = Some(l.text(s));
        }
        Ok(Some(o))
    }
}

/// A quoted W3C value with `""` turned into `"`.
fn unquote<'a>(l: &Line<'a>, v: &'a [u8], quoted: bool) -> Cow<'a, str> {
    if quoted && find(v, b"\"\"").is_some() {
        Cow::Owned(String::from_utf8_lossy(v).replace("\"\"", "\""))
    } else {
        l.text(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IIS: &[u8] = b"#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n";

    #[test]
    fn iis_record() {
        let p = W3cParser::from_head(IIS);
        let l = b"2021-04-01 00:00:21 111.111.111.111 GET /foo/bar/baz.asp a=1 80 - 222.222.222.222 Mozilla/5.0+(Windows+NT+5.1) http://111.111.111.111/ 200 0 0 65";
        let o = p.parse(l).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("222.222.222.222".parse().unwrap()));
        assert_eq!(o.destination_ip, Some("111.111.111.111".parse().unwrap()));
        assert_eq!(o.destination_port, Some(80));
        assert_eq!(o.url_path.as_deref(), Some("/foo/bar/baz.asp"));
        assert_eq!(
            o.user_agent.as_deref(),
            Some("Mozilla/5.0+(Windows+NT+5.1)")
        );
        assert_eq!(o.http_status, Some(200));
        assert_eq!(o.timestamp_ns, Some(1_617_235_221_000_000_000));
        assert!(p.parse(b"#Fields: date").unwrap().is_none());
        assert_eq!(
            p.parse(b"2021-04-01 00:00:21 1.1.1.1 GET")
                .unwrap_err()
                .reason,
            "field count differs from #Fields"
        );
        let bad = b"2021-04-01 00:00:21 111.111.111.111 GET /x - 80 - host.example ua - 200 0 0 65";
        assert_eq!(p.parse(bad).unwrap_err().reason, "c-ip is not an address");
    }

    #[test]
    fn quoted_fields_and_new_fields_mid_file() {
        let p = W3cParser::from_head(IIS);
        let next = p
            .after_directive(
                b"#Fields: date time c-ip cs(User-Agent) cs(Host) cs-uri-stem cs-uri-query",
            )
            .unwrap();
        let l = br#"2012-08-15 17:00:00.363 70.95.0.1 "Mozilla/5.0 (X; ""q"")" "Evil.Example" /a/b x=1"#;
        let o = next.parse(l).unwrap().unwrap();
        assert_eq!(o.user_agent.as_deref(), Some("Mozilla/5.0 (X; \"q\")"));
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(o.url_full.as_deref(), Some("http://evil.example/a/b?x=1"));
        assert_eq!(o.timestamp_ns, Some(1_345_050_000_363_000_000));
        assert!(next.parse(b"2012-08-15 17:00:00 1.2.3.4 \"open").is_err());
    }
}
