//! HTTP/1.x request parser: request line, Host, User-Agent, Content-Length.
//!
//! Lenient the way servers and tshark are: lines may end in LF alone, the version may be
//! missing (HTTP/0.9 `GET /path`), the URI may be missing (`OPTIONS`).

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

/// Does `data` start like an HTTP request (a known method followed by space or line end)?
pub fn looks_like_request(data: &[u8]) -> bool {
    let n = data
        .iter()
        .take(20)
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n');
    match n {
        Some(n) => std::str::from_utf8(&data[..n])
            .map(|m| METHODS.contains(&m))
            .unwrap_or(false),
        None => false,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    b.get(s..e.max(s)).unwrap_or(&[])
}

/// Parse a request head at the start of `data`.
pub fn parse_request(data: &[u8]) -> HttpParse<'_> {
    if !looks_like_request(data) {
        return HttpParse::NotHttp;
    }
    let Some(lf) = memchr::memchr(b'\n', data) else {
        return if data.len() > 8192 {
            HttpParse::NotHttp
        } else {
            HttpParse::Incomplete
        };
    };
    let line = data[..lf].strip_suffix(b"\r").unwrap_or(&data[..lf]);
    let Ok(line) = std::str::from_utf8(line) else {
        return HttpParse::NotHttp;
    };
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("");
    let uri = parts.next().unwrap_or("");
    let version = parts.next();
    let mut req = HttpRequest {
        method,
        uri,
        host: None,
        user_agent: None,
        content_length: None,
        head_len: lf + 1,
    };
    // HTTP/0.9: a request line with a URI, no version, and nothing after it.
    if version.is_none() && !uri.is_empty() && lf + 1 == data.len() {
        return HttpParse::Request(req);
    }
    let mut pos = lf + 1;
    loop {
        let Some(rel) = memchr::memchr(b'\n', &data[pos..]) else {
            return if data.len() > 16384 {
                HttpParse::NotHttp
            } else {
                HttpParse::Incomplete
            };
        };
        let raw = &data[pos..pos + rel];
        let l = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += rel + 1;
        if l.is_empty() {
            req.head_len = pos;
            return HttpParse::Request(req);
        }
        let Some(colon) = memchr::memchr(b':', l) else {
            continue;
        };
        let name = &l[..colon];
        let value = trim(&l[colon + 1..]);
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
