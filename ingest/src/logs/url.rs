//! Host names, `host:port`, and absolute URLs split into borrowed parts.

use std::borrow::Cow;

use super::address::parse_u16;
use super::tokens::text;

/// Lower-case a host name and drop one trailing dot; borrows unless a change is needed.
pub(crate) fn norm_domain(c: Cow<'_, str>) -> Cow<'_, str> {
    let trimmed_len = c.strip_suffix('.').map_or(c.len(), str::len);
    let needs_lower = c.bytes().any(|b| b.is_ascii_uppercase());
    match c {
        Cow::Borrowed(s) if !needs_lower => Cow::Borrowed(&s[..trimmed_len]),
        other => {
            let mut s = other.into_owned();
            s.truncate(trimmed_len);
            s.make_ascii_lowercase();
            Cow::Owned(s)
        }
    }
}

/// A host as text from bytes, normalised (see [`norm_domain`]); `None` when empty.
pub(crate) fn domain(b: &[u8]) -> Option<Cow<'_, str>> {
    if b.is_empty() {
        return None;
    }
    let d = norm_domain(text(b));
    (!d.is_empty()).then_some(d)
}

/// Split `host[:port]` / `[v6]:port` / bare IPv6 into host and port.
pub(crate) fn split_host_port(b: &[u8]) -> (&[u8], Option<u16>) {
    if let [b'[', rest @ ..] = b {
        if let Some(end) = memchr::memchr(b']', rest) {
            let host = &rest[..end];
            let port = rest
                .get(end + 1..)
                .and_then(|p| p.strip_prefix(b":"))
                .and_then(parse_u16);
            return (host, port);
        }
        return (b, None);
    }
    match memchr::memrchr(b':', b) {
        // More than one colon and no brackets: a bare IPv6 address.
        Some(i) if memchr::memchr(b':', &b[..i]).is_none() => (&b[..i], parse_u16(&b[i + 1..])),
        _ => (b, None),
    }
}

/// The pieces of an absolute URL, all borrowed from it.
#[derive(Debug, Default)]
pub(crate) struct UrlParts<'a> {
    /// Host without port or userinfo.
    pub host: &'a [u8],
    /// Explicit port.
    pub port: Option<u16>,
    /// Path without query or fragment (`/` when the URL has none).
    pub path: &'a [u8],
}

/// Split `scheme://[userinfo@]host[:port][/path][?query][#frag]`; `None` if not absolute.
pub(crate) fn split_url(u: &[u8]) -> Option<UrlParts<'_>> {
    let sep = memchr::memchr(b':', u)?;
    if u.get(sep + 1..sep + 3) != Some(&b"//"[..]) {
        return None;
    }
    let scheme = &u[..sep];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let after = &u[sep + 3..];
    let auth_end = after
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    let mut authority = &after[..auth_end];
    if let Some(at) = memchr::memrchr(b'@', authority) {
        authority = &authority[at + 1..];
    }
    let (host, port) = split_host_port(authority);
    let rest = &after[auth_end..];
    let path = if rest.first() == Some(&b'/') {
        path_only(rest)
    } else {
        &b"/"[..]
    };
    Some(UrlParts { host, port, path })
}

/// An origin-form request target without its query and fragment.
pub(crate) fn path_only(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .unwrap_or(target.len());
    &target[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = split_url(b"http://User@WWW.Example.com:8080/a/b?c=d#e").unwrap();
        assert_eq!(u.host, b"WWW.Example.com");
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, b"/a/b");
        let u = split_url(b"https://[2001:db8::1]:443").unwrap();
        assert_eq!(u.host, b"2001:db8::1");
        assert_eq!(u.path, b"/");
        assert!(split_url(b"error:method-not-allowed").is_none());
        assert_eq!(
            split_host_port(b"login.yahoo.com:443"),
            (&b"login.yahoo.com"[..], Some(443))
        );
        assert_eq!(split_host_port(b"::1"), (&b"::1"[..], None));
        assert_eq!(norm_domain("P33.icloud.com.".into()), "p33.icloud.com");
    }
}
