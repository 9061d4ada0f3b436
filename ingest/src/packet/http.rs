//! HTTP/1.x request-head parser (zero-copy `nom` combinators): request line, Host,
//! User-Agent, Content-Length.
//!
//! Lenient the way servers and tshark are: lines may end in LF alone, the version may be
//! missing (HTTP/0.9 `GET /path`), the URI may be missing (`OPTIONS`).

use nom::bytes::complete::{tag, take_till, take_till1, take_until};
use nom::character::complete::{char, one_of};
use nom::combinator::{map, opt, peek, rest, verify};
use nom::sequence::{preceded, separated_pair, terminated, tuple};
use nom::IResult;

/// One parsed request head, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    /// Request method (`GET`, `CCM_POST`, ...).
    pub method: &'a str,
    /// Request target as sent (may be empty, `*`, absolute, or odd).
    pub uri: &'a str,
    /// `Host` header value (trimmed), if present.
    pub host: Option<&'a str>,
    /// `User-Agent` header value, if present.
    pub user_agent: Option<&'a str>,
    /// `Content-Length`, if present and numeric.
    pub content_length: Option<u64>,
    /// Bytes of the request head (request line and headers, terminator included).
    pub head_len: usize,
}

/// Outcome of looking at the start of a client byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpParse<'a> {
    /// A complete request head.
    Request(HttpRequest<'a>),
    /// Looks like a request but the head is not complete yet.
    Incomplete,
    /// Not an HTTP request.
    NotHttp,
}

/// Methods recognised at the start of a stream (RFC 9110, WebDAV, tshark's list).
const METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "CONNECT",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
    "CHECKOUT",
    "CHECKIN",
    "UNCHECKOUT",
    "MERGE",
    "MKACTIVITY",
    "MKWORKSPACE",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
    "UPDATE",
    "LABEL",
    "ACL",
    "MKCALENDAR",
    "BIND",
    "UNBIND",
    "REBIND",
    "ORDERPATCH",
    "CCM_POST",
    "RPC_CONNECT",
    "RPC_IN_DATA",
    "RPC_OUT_DATA",
    "POLL",
    "BCOPY",
    "BDELETE",
    "BMOVE",
    "BPROPFIND",
    "BPROPPATCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
];

/// Longest method token recognised (`VERSION-CONTROL` and `BASELINE-CONTROL` fit).
const MAX_METHOD: usize = 19;
/// Without a line end within this many bytes the stream is not HTTP.
const MAX_REQUEST_LINE: usize = 8192;
/// Without the end of the head within this many bytes the stream is not HTTP.
const MAX_HEAD: usize = 16384;

/// A request method: a known token followed by a space or a line end (not consumed).
///
/// This runs on the first payload of every TCP flow, so it looks at no more than the longest
/// method and its delimiter (nom's `take_while_m_n` would scan the whole payload).
fn method(i: &[u8]) -> IResult<&[u8], &[u8], ()> {
    let window = &i[..i.len().min(MAX_METHOD + 1)];
    let (_, m) = terminated(
        verify(
            take_till1(|b| matches!(b, b' ' | b'\r' | b'\n')),
            |m: &[u8]| METHODS.iter().any(|k| k.as_bytes() == m),
        ),
        peek(one_of(" \r\n")),
    )(window)?;
    Ok((&i[m.len()..], m))
}

/// A line ending in LF; the CR before it, if any, is not part of the line.
fn line(i: &[u8]) -> IResult<&[u8], &[u8], ()> {
    map(terminated(take_until("\n"), tag("\n")), |l: &[u8]| {
        l.strip_suffix(b"\r").unwrap_or(l)
    })(i)
}

/// `METHOD [URI [VERSION]]`, split at the first two spaces (the version keeps any others).
fn request_line(l: &str) -> IResult<&str, (&str, &str, Option<&str>), ()> {
    let not_space = || take_till(|c| c == ' ');
    tuple((
        not_space(),
        map(
            opt(preceded(char(' '), not_space())),
            Option::unwrap_or_default,
        ),
        opt(preceded(char(' '), rest)),
    ))(l)
}

/// A header line `name: value`, the value trimmed of ASCII whitespace.
fn header_field(l: &[u8]) -> IResult<&[u8], (&[u8], &[u8]), ()> {
    separated_pair(take_until(":"), tag(":"), map(rest, <[u8]>::trim_ascii))(l)
}

/// Does `data` start like an HTTP request (a known method followed by space or line end)?
pub fn looks_like_request(data: &[u8]) -> bool {
    method(data).is_ok()
}

/// Parse a request head at the start of `data`.
pub fn parse_request(data: &[u8]) -> HttpParse<'_> {
    let incomplete_or_not = |limit: usize| {
        if data.len() > limit {
            HttpParse::NotHttp
        } else {
            HttpParse::Incomplete
        }
    };
    if !looks_like_request(data) {
        return HttpParse::NotHttp;
    }
    let Ok((mut i, first)) = line(data) else {
        return incomplete_or_not(MAX_REQUEST_LINE);
    };
    let Ok((_, (method, uri, version))) = std::str::from_utf8(first)
        .map_err(|_| ())
        .and_then(|l| request_line(l).map_err(|_| ()))
    else {
        return HttpParse::NotHttp;
    };
    let mut req = HttpRequest {
        method,
        uri,
        host: None,
        user_agent: None,
        content_length: None,
        head_len: data.len() - i.len(),
    };
    // HTTP/0.9: a request line with a URI, no version, and nothing after it.
    if version.is_none() && !uri.is_empty() && i.is_empty() {
        return HttpParse::Request(req);
    }
    loop {
        let Ok((after, l)) = line(i) else {
            return incomplete_or_not(MAX_HEAD);
        };
        i = after;
        if l.is_empty() {
            req.head_len = data.len() - i.len();
            return HttpParse::Request(req);
        }
        let Ok((_, (name, value))) = header_field(l) else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"host") {
            req.host = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            req.user_agent = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case(b"content-length") {
            req.content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
}

/// `url.domain` from a Host value: without port, IPv6 brackets removed.
pub fn host_domain(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request head of the corpus capture zeek/teredo/Teredo.pcap (the TCP payload of the
    /// segment carrying `POST /cgi-bin/iavs4stats.cgi`); its 589-byte body follows separately.
    const TEREDO_POST: [u8; 201] = [
        0x50, 0x4f, 0x53, 0x54, 0x20, 0x2f, 0x63, 0x67, 0x69, 0x2d, 0x62, 0x69, 0x6e, 0x2f, 0x69,
        0x61, 0x76, 0x73, 0x34, 0x73, 0x74, 0x61, 0x74, 0x73, 0x2e, 0x63, 0x67, 0x69, 0x20, 0x48,
        0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x30, 0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e,
        0x74, 0x2d, 0x54, 0x79, 0x70, 0x65, 0x3a, 0x20, 0x69, 0x61, 0x76, 0x73, 0x34, 0x2f, 0x73,
        0x74, 0x61, 0x74, 0x73, 0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x4c,
        0x65, 0x6e, 0x67, 0x74, 0x68, 0x3a, 0x20, 0x35, 0x38, 0x39, 0x0d, 0x0a, 0x55, 0x73, 0x65,
        0x72, 0x2d, 0x41, 0x67, 0x65, 0x6e, 0x74, 0x3a, 0x20, 0x53, 0x79, 0x6e, 0x63, 0x65, 0x72,
        0x2f, 0x34, 0x2e, 0x38, 0x30, 0x20, 0x28, 0x61, 0x76, 0x5f, 0x70, 0x72, 0x6f, 0x2d, 0x31,
        0x31, 0x36, 0x39, 0x3b, 0x66, 0x29, 0x0d, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x64,
        0x6f, 0x77, 0x6e, 0x6c, 0x6f, 0x61, 0x64, 0x39, 0x31, 0x33, 0x2e, 0x61, 0x76, 0x61, 0x73,
        0x74, 0x2e, 0x63, 0x6f, 0x6d, 0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69,
        0x6f, 0x6e, 0x3a, 0x20, 0x4b, 0x65, 0x65, 0x70, 0x2d, 0x41, 0x6c, 0x69, 0x76, 0x65, 0x0d,
        0x0a, 0x50, 0x72, 0x61, 0x67, 0x6d, 0x61, 0x3a, 0x20, 0x6e, 0x6f, 0x2d, 0x63, 0x61, 0x63,
        0x68, 0x65, 0x0d, 0x0a, 0x0d, 0x0a,
    ];

    /// `CCM_POST` from zeek/http-methods/methods.pcap: LF line ends, a cut version.
    const CCM_POST: [u8; 41] = [
        0x43, 0x43, 0x4d, 0x5f, 0x50, 0x4f, 0x53, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50,
        0x2f, 0x31, 0x2e, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x77, 0x77, 0x77, 0x2e, 0x67,
        0x6f, 0x6f, 0x67, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x0a, 0x0a,
    ];

    /// The HTTP/0.9 request of zeek/http-09/http_09.pcap.
    const HTTP09_GET: [u8; 15] = [
        0x47, 0x45, 0x54, 0x20, 0x2f, 0x7a, 0x65, 0x65, 0x6b, 0x2e, 0x68, 0x74, 0x6d, 0x6c, 0x0a,
    ];

    #[test]
    fn captured_heads_yield_tsharks_fields() {
        let HttpParse::Request(q) = parse_request(&TEREDO_POST) else {
            panic!()
        };
        assert_eq!((q.method, q.uri), ("POST", "/cgi-bin/iavs4stats.cgi"));
        assert_eq!(q.host, Some("download913.avast.com"));
        assert_eq!(q.user_agent, Some("Syncer/4.80 (av_pro-1169;f)"));
        assert_eq!(
            (q.content_length, q.head_len),
            (Some(589), TEREDO_POST.len())
        );
        let HttpParse::Request(q) = parse_request(&CCM_POST) else {
            panic!()
        };
        assert_eq!(
            (q.method, q.uri, q.host),
            ("CCM_POST", "/", Some("www.google.com"))
        );
        assert_eq!((q.user_agent, q.content_length), (None, None));
        let HttpParse::Request(q) = parse_request(&HTTP09_GET) else {
            panic!()
        };
        assert_eq!((q.method, q.uri, q.head_len), ("GET", "/zeek.html", 15));
        // Every proper prefix past the method is incomplete, none is an error.
        for cut in 5..TEREDO_POST.len() {
            assert_eq!(
                parse_request(&TEREDO_POST[..cut]),
                HttpParse::Incomplete,
                "{cut}"
            );
        }
    }

    #[test]
    fn full_request() {
        let r = b"GET /a?b=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: curl/8\r\nContent-Length: 3\r\n\r\nabcGET";
        let HttpParse::Request(q) = parse_request(r) else {
            panic!()
        };
        assert_eq!(q.method, "GET");
        assert_eq!(q.uri, "/a?b=1");
        assert_eq!(q.host, Some("Example.com:8080"));
        assert_eq!(host_domain(q.host.unwrap()), "Example.com");
        assert_eq!(q.user_agent, Some("curl/8"));
        assert_eq!(q.content_length, Some(3));
        assert_eq!(&r[q.head_len..q.head_len + 3], b"abc");
    }

    #[test]
    fn odd_request_lines() {
        let HttpParse::Request(q) = parse_request(b"OPTIONS HTTP/1.1\nHost: h\n\n") else {
            panic!()
        };
        assert_eq!((q.uri, q.host), ("HTTP/1.1", Some("h")));
        let HttpParse::Request(q) = parse_request(b"OPTIONS\nHost: h\n\n") else {
            panic!()
        };
        assert_eq!(q.uri, "");
        let HttpParse::Request(q) = parse_request(b"GET /zeek.html\n") else {
            panic!()
        };
        assert_eq!((q.uri, q.host), ("/zeek.html", None));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x"),
            HttpParse::Incomplete
        );
        assert_eq!(
            parse_request(b"HTTP/1.1 200 OK\r\n\r\n"),
            HttpParse::NotHttp
        );
        assert_eq!(
            parse_request(b"GETX / HTTP/1.1\r\n\r\n"),
            HttpParse::NotHttp
        );
    }

    #[test]
    fn host_forms() {
        assert_eq!(host_domain("[::1]:8000"), "::1");
        assert_eq!(host_domain("a.b"), "a.b");
        assert_eq!(host_domain("a.b:80"), "a.b");
    }
}
