//! Strict per-type re-validation of indicator values before they reach any export.
//!
//! Values arrive normalised, but exports treat them as hostile: a value is written only when
//! it parses as its itype under rules strict enough that no character with a meaning in any
//! output grammar (quotes, `;`, `|`, whitespace, control bytes, backticks, `$`, ...) survives
//! where it could change structure.

use super::net_text;
use matcher::normalize::{mask_v4, mask_v6};
use matcher::IndicatorType;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest URL we export.
const MAX_URL: usize = 4096;
/// Longest pattern we export.
const MAX_PATTERN: usize = 1024;

/// A re-validated value with what the exporters need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// An IPv4 network (address = prefix 32).
    V4(Ipv4Addr, u8),
    /// An IPv6 network (address = prefix 128).
    V6(Ipv6Addr, u8),
    /// A domain name of LDH (and `_`) labels.
    Domain,
    /// An http(s) URL split into parts.
    Url(UrlParts),
    /// A URL that is safe as quoted or escaped text (printable ASCII, no space) but that no
    /// rule grammar can carry: a scheme other than http(s), or `"`, `<`, `>`, `\`, `|`,
    /// `{`, ... in it. Only the tabular formats write it.
    TextUrl,
    /// Any other type whose canonical value is safe as plain text (emails, hashes, ja4,
    /// patterns).
    Plain,
}

/// Where the parts of a validated URL are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// `https://` rather than `http://`.
    pub https: bool,
    /// The host as written (domain, dotted IPv4 or bracketed IPv6).
    pub host: String,
    /// Host kind.
    pub host_kind: HostKind,
    /// An explicit, non-default port.
    pub port: Option<u16>,
    /// Path and query (starts with `/`).
    pub path_query: String,
}

/// What a URL's host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// A domain name.
    Domain,
    /// An IPv4 literal.
    V4,
    /// An IPv6 literal (written in brackets).
    V6,
}

/// Re-validate `value` as `itype`; returns the canonical spelling and what was found, or
/// `None` when the value must not be exported.
pub(crate) fn check(itype: IndicatorType, value: &str) -> Option<(String, Checked)> {
    match itype {
        IndicatorType::Ipv4 => {
            let (addr, len) = split_prefix(value, 32)?;
            let a: Ipv4Addr = addr.parse().ok()?;
            let net = mask_v4(u32::from(a), len);
            Some((
                net_text(net.into(), len, false),
                Checked::V4(net.into(), len),
            ))
        }
        IndicatorType::Ipv6 => {
            let (addr, len) = split_prefix(value, 128)?;
            let a: Ipv6Addr = addr.parse().ok()?;
            let net = mask_v6(u128::from(a), len);
            Some((net_text(net, len, true), Checked::V6(net.into(), len)))
        }
        IndicatorType::Fqdn => {
            let v = value.to_ascii_lowercase();
            is_domain(&v).then_some((v, Checked::Domain))
        }
        IndicatorType::Url => match parse_url(value) {
            Some(parts) => Some((value.to_string(), Checked::Url(parts))),
            None => is_text_url(value).then(|| (value.to_string(), Checked::TextUrl)),
        },
        IndicatorType::Email => {
            let (local, domain) = value.rsplit_once('@')?;
            let ok_local = !local.is_empty()
                && local.len() <= 64
                && local
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._%+-=".contains(&b))
                && !local.starts_with(['-', '=', '+']);
            let domain = domain.to_ascii_lowercase();
            (ok_local && is_domain(&domain)).then(|| (format!("{local}@{domain}"), Checked::Plain))
        }
        IndicatorType::Md5 | IndicatorType::Ja3 => hex(value, 32),
        IndicatorType::Sha1 | IndicatorType::X509Sha1 => hex(value, 40),
        IndicatorType::Sha256 => hex(value, 64),
        IndicatorType::Sha512 => hex(value, 128),
        IndicatorType::Ja4 => {
            let ok = !value.is_empty()
                && value.len() <= 128
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            ok.then(|| (value.to_string(), Checked::Plain))
        }
        IndicatorType::Pattern => {
            let ok = !value.is_empty()
                && value.len() <= MAX_PATTERN
                && value.bytes().all(|b| (0x20..0x7f).contains(&b));
            ok.then(|| (value.to_string(), Checked::Plain))
        }
    }
}

fn hex(value: &str, len: usize) -> Option<(String, Checked)> {
    (value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (value.to_ascii_lowercase(), Checked::Plain))
}

/// Split `a/len` (or a bare address) into the address and a checked prefix length.
fn split_prefix(value: &str, max: u8) -> Option<(&str, u8)> {
    match value.split_once('/') {
        None => Some((value, max)),
        Some((a, l)) => {
            if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let len: u8 = l.parse().ok()?;
            (len <= max).then_some((a, len))
        }
    }
}

/// A domain name: 2+ labels of `[a-z0-9_-]` (1-63 bytes, no leading/trailing `-`), at most
/// 253 bytes, the last label not all digits. Lower-case only.
pub(crate) fn is_domain(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last = "";
    for label in s.split('.') {
        let b = label.as_bytes();
        if b.is_empty() || b.len() > 63 {
            return false;
        }
        if !b
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
        {
            return false;
        }
        if b.first() == Some(&b'-') || b.last() == Some(&b'-') {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.bytes().all(|c| c.is_ascii_digit())
}

/// A URL writable as quoted text: `scheme://rest`, the scheme `[a-z][a-z0-9+.-]*`, every
/// byte printable ASCII other than space (what normalisation leaves), at most [`MAX_URL`].
fn is_text_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    s.len() <= MAX_URL
        && scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
        && !rest.is_empty()
        && rest.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// Bytes allowed in a URL path or query (RFC 3986 unreserved, sub-delims, `:@/?` and `%`
/// escapes checked separately). Excludes `"`, `\`, `|`, `<`, `>`, `` ` ``, `{`, `}`, `^`,
/// space and controls.
fn url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b)
}

/// Parse an `http://` or `https://` URL strictly (no userinfo, no fragment).
pub(crate) fn parse_url(s: &str) -> Option<UrlParts> {
    if s.len() > MAX_URL {
        return None;
    }
    let (https, rest) = if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else {
        return None;
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(end);
    let (host, port_str) = if let Some(after) = authority.strip_prefix('[') {
        let (h, tail) = after.split_once(']')?;
        let _: Ipv6Addr = h.parse().ok()?;
        if !h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?),
        };
        (&authority[..h.len() + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_kind = if host.starts_with('[') {
        HostKind::V6
    } else if host.parse::<Ipv4Addr>().is_ok() {
        HostKind::V4
    } else if is_domain(host) {
        HostKind::Domain
    } else {
        return None;
    };
    let port = match port_str {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u16 = p.parse().ok()?;
            if n == 0 {
                return None;
            }
            let default = if https { 443 } else { 80 };
            (n != default).then_some(n)
        }
    };
    let pb = path_query.as_bytes();
    let mut i = 0;
    while i < pb.len() {
        let b = pb[i];
        if b == b'%' {
            let ok = pb.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && pb.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return None;
            }
            i += 3;
            continue;
        }
        if !url_byte(b) {
            return None;
        }
        i += 1;
    }
    let path_query = if path_query.is_empty() {
        "/".to_string()
    } else if path_query.starts_with('?') {
        format!("/{path_query}")
    } else {
        path_query.to_string()
    };
    Some(UrlParts {
        https,
        host: host.to_string(),
        host_kind,
        port,
        path_query,
    })
}

/// Decode `%XX` escapes into bytes (input already checked by [`parse_url`]).
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_canonical_and_masked() {
        assert_eq!(
            check(IndicatorType::Ipv4, "10.1.2.3/8").map(|x| x.0),
            Some("10.0.0.0/8".into())
        );
        assert_eq!(
            check(IndicatorType::Ipv4, "10.1.2.3/32").map(|x| x.0),
            Some("10.1.2.3".into())
        );
        assert!(check(IndicatorType::Ipv4, "10.1.2.3/33").is_none());
        assert!(check(IndicatorType::Ipv4, "10.1.2.3/+8").is_none());
        assert!(check(IndicatorType::Ipv4, "10.1.2.3\n").is_none());
        assert!(check(IndicatorType::Ipv4, "::1").is_none());
        assert_eq!(
            check(IndicatorType::Ipv6, "2001:DB8:0:0::1/32").map(|x| x.0),
            Some("2001:db8::/32".into())
        );
    }

    #[test]
    fn domains_are_strict() {
        for ok in ["evil.com", "a-b.c_d.example", "xn--bcher-kva.example"] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "com",
            "evil..com",
            "-a.com",
            "a-.com",
            "evil.com;",
            "ev\"il.com",
            "evil.com\n",
            "1.2.3.4",
            "EVIL.com",
            "a b.com",
            "$(id).com",
            "`x`.com",
            "evil.com.",
        ] {
            assert!(!is_domain(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_strict() {
        let p = parse_url("http://evil.com:8080/a;b?x=1").expect("valid");
        assert_eq!(p.host, "evil.com");
        assert_eq!(p.port, Some(8080));
        assert_eq!(p.path_query, "/a;b?x=1");
        assert_eq!(
            parse_url("https://evil.com:443").map(|p| p.port),
            Some(None)
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]/x").map(|p| p.host_kind),
            Some(HostKind::V6)
        );
        for bad in [
            "ftp://evil.com/",
            "http://evil.com/a\"b",
            "http://evil.com/a b",
            "http://evil.com/a|b",
            "http://evil.com/a\\b",
            "http://evil.com/%zz",
            "http://u@evil.com/",
            "http://evil.com/#frag",
            "http://evil.com:0/",
            "http://evil.com:99999/",
            "http://evil.com/`id`",
            "http://evil.com/\u{0}",
        ] {
            assert!(parse_url(bad).is_none(), "{bad:?}");
        }
        assert_eq!(percent_decode("/a%3Bb%2"), b"/a;b%2".to_vec());
    }

    #[test]
    fn urls_rules_cannot_say_are_text_only() {
        for text in [
            "ftp://evil.com/x",
            "http://evil.com/a\"b",
            "http://evil.com/<script>",
            "http://u@evil.com/",
            "javascript://evil.com/%0Aalert(1)",
        ] {
            assert_eq!(
                check(IndicatorType::Url, text),
                Some((text.to_string(), Checked::TextUrl)),
                "{text:?}"
            );
        }
        for bad in [
            "http://evil.com/a b",
            "http://evil.com/\n",
            "http://evil.com/\u{0}",
            "http://evil.com/é",
            "HTTP://evil.com/",
            "://evil.com/",
            "1http://evil.com/",
            "http://",
            "evil.com/x",
        ] {
            assert_eq!(check(IndicatorType::Url, bad), None, "{bad:?}");
        }
        let long = format!("ftp://evil.com/{}", "a".repeat(MAX_URL));
        assert_eq!(check(IndicatorType::Url, &long), None);
    }

    #[test]
    fn others() {
        assert!(check(IndicatorType::Email, "a.b+c@evil.com").is_some());
        assert!(check(IndicatorType::Email, "a\"b@evil.com").is_none());
        assert!(check(IndicatorType::Md5, &"A".repeat(32)).is_some());
        assert!(check(IndicatorType::Md5, &"g".repeat(32)).is_none());
        assert!(check(IndicatorType::Sha256, &"a".repeat(63)).is_none());
        assert!(check(IndicatorType::Pattern, "/gate.php").is_some());
        assert!(check(IndicatorType::Pattern, "a\tb").is_none());
    }
}
