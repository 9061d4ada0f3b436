//! Helpers shared by every [`crate::Matcher`]: observed-host handling and the `--raw` text
//! tokeniser behind `match_text`. They decide *what* is looked up, never *what matches*, so
//! the naive and the compiled matcher share them and property tests still compare the two
//! lookups independently.

use crate::matcher::{Hit, Matcher};
use crate::simd;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest observed host name (after one trailing dot is stripped) that can match: longer
/// names are not DNS names and yield no hits.
pub const MAX_HOST_LEN: usize = 253;

/// The host as matched: one trailing dot stripped; `None` when empty or too long.
pub fn trim_host(host: &str) -> Option<&str> {
    let h = host.strip_suffix('.').unwrap_or(host);
    if h.is_empty() || h.len() > MAX_HOST_LEN {
        None
    } else {
        Some(h)
    }
}

/// An IP literal host (`1.2.3.4`, `::1`, `[::1]`) as an address.
pub fn host_as_ip(host: &str) -> Option<IpAddr> {
    let first = *host.as_bytes().first()?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if first.is_ascii_digit() {
        if let Ok(a) = host.parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(a));
        }
    }
    if host.contains(':') {
        return host.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    None
}

/// The host of an `http`/`https` URL whose authority is a plain lower-case name (letters,
/// digits, dots, hyphens; not all digits and dots; no port or userinfo) followed by `/`:
/// normalising never changes such a host, so `url_host(normalize_observed_url(url))` is
/// exactly this. `None` means "not that simple", not "invalid". One pass over the host.
pub fn plain_http_host(url: &[u8]) -> Option<&[u8]> {
    let rest = plain_http_rest(url)?;
    // Whole 16-byte blocks classified at once; the last few bytes one by one.
    let mut base = 0;
    let mut named = false; // a letter or hyphen seen: not all digits and dots
    while let Some(Ok(block)) = rest.get(base..base + 16).map(<&[u8; 16]>::try_from) {
        let (host_bytes, name_bytes) = simd::host_masks::<simd::Native>(block);
        let stop = !host_bytes & 0xffff;
        if stop != 0 {
            let i = stop.trailing_zeros() as usize;
            named |= name_bytes & ((1 << i) - 1) != 0;
            return plain_host_end(rest, base + i, named);
        }
        named |= name_bytes != 0;
        base += 16;
    }
    for (i, &b) in rest.iter().enumerate().skip(base) {
        match b {
            b'a'..=b'z' | b'-' => named = true,
            b'0'..=b'9' | b'.' => {}
            _ => return plain_host_end(rest, i, named),
        }
    }
    None
}

/// What follows `http://` or `https://` in `url`.
#[inline]
pub fn plain_http_rest(url: &[u8]) -> Option<&[u8]> {
    match url {
        [b'h', b't', b't', b'p', b':', b'/', b'/', rest @ ..] => Some(rest),
        [b'h', b't', b't', b'p', b's', b':', b'/', b'/', rest @ ..] => Some(rest),
        _ => None,
    }
}

/// [`plain_http_host`]'s verdict at the first byte (`rest[end]`) that is not a host byte.
#[inline]
fn plain_host_end(rest: &[u8], end: usize, named: bool) -> Option<&[u8]> {
    let host = &rest[..end];
    // Dotted numbers need the strict IPv4 reading: leave them to the full path.
    (rest.get(end) == Some(&b'/') && !host.is_empty() && !host.ends_with(b".") && named)
        .then_some(host)
}

/// Bit `i` set when byte `i` of `b[..len]` is a dot, for `len` up to 64; `None` when `len`
/// is longer or the 16-byte blocks covering it run past `b` (the caller then finds the
/// dots itself).
#[inline]
pub fn dot_mask(b: &[u8], len: usize) -> Option<u64> {
    if len > 64 {
        return None;
    }
    let mut dots = 0u64;
    let mut base = 0;
    while base < len {
        let block = <&[u8; 16]>::try_from(b.get(base..base + 16)?).ok()?;
        dots |= u64::from(simd::eq_mask::<simd::Native>(block, b'.')) << base;
        base += 16;
    }
    Some(if len == 64 {
        dots
    } else {
        dots & ((1 << len) - 1)
    })
}

/// The host of a normalised-or-observed URL (`scheme://[userinfo@]host[:port]/...`), without
/// port; IPv6 literals keep their brackets.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let hostport = match auth.rfind('@') {
        Some(i) => &auth[i + 1..],
        None => auth,
    };
    let host = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => &hostport[..=i],
            None => hostport,
        }
    } else {
        match hostport.rfind(':') {
            Some(i) => &hostport[..i],
            None => hostport,
        }
    };
    if host.is_empty() {
        None
    } else {
        Some(host)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'-'
                | b'_'
                | b':'
                | b'/'
                | b'@'
                | b'%'
                | b'?'
                | b'='
                | b'&'
                | b'~'
                | b'+'
                | b'#'
                | b'['
                | b']'
        )
}

/// Split `text` into tokens of token bytes (ASCII alphanumerics and `.-_:/@%?=&~+#[]`), with
/// surrounding punctuation stripped: leading bytes that are not alphanumeric (a `[` is kept
/// when the token holds a `]`, for `[v6]:port`), and trailing `.:?#&=+@%~-_` (and `[`, and a
/// `]` when the token holds no `[`). Empty results are skipped.
pub fn tokens(text: &[u8]) -> impl Iterator<Item = &str> + '_ {
    text.split(|b| !is_token_byte(*b)).filter_map(|raw| {
        let mut t = raw;
        while let Some((&b, rest)) = t.split_first() {
            if b.is_ascii_alphanumeric() || (b == b'[' && rest.contains(&b']')) {
                break;
            }
            t = rest;
        }
        while let Some((&b, rest)) = t.split_last() {
            let strip = matches!(
                b,
                b'.' | b':'
                    | b'?'
                    | b'#'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'@'
                    | b'%'
                    | b'~'
                    | b'-'
                    | b'_'
                    | b'['
            ) || (b == b']' && !rest.contains(&b'['));
            if !strip {
                break;
            }
            t = rest;
        }
        // Token bytes are ASCII, so this never fails.
        std::str::from_utf8(t).ok().filter(|s| !s.is_empty())
    })
}

/// What a token is looked up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind<'a> {
    /// A URL (with scheme, or `host.tld/path`): URL lookup plus a domain lookup of its host.
    Url(&'a str),
    /// An IP address (also `ip:port`, `[v6]:port`).
    Ip(IpAddr),
    /// An e-mail address.
    Email(&'a str),
    /// A hex digest of a hash length or a JA4 fingerprint.
    Hash(&'a str),
    /// A name with a dot (a trailing `:port` removed).
    Domain(&'a str),
}

/// Classify one token (see [`TokenKind`]); `None` when it looks like nothing we index.
pub fn classify(t: &str) -> Option<TokenKind<'_>> {
    if t.contains("://") {
        return Some(TokenKind::Url(t));
    }
    if let Some(ip) = token_ip(t) {
        return Some(TokenKind::Ip(ip));
    }
    if let Some(slash) = t.find('/') {
        let head = &t[..slash];
        if head.contains('.') && !head.contains('@') && head.as_bytes()[0].is_ascii_alphanumeric() {
            return Some(TokenKind::Url(t));
        }
    }
    if let Some((local, domain)) = t.split_once('@') {
        if !local.is_empty() && domain.contains('.') && !t.contains('/') {
            return Some(TokenKind::Email(t));
        }
    }
    let hexlen = matches!(t.len(), 32 | 40 | 64 | 128) && t.bytes().all(|b| b.is_ascii_hexdigit());
    if hexlen
        || (t.len() == 36
            && t.as_bytes().get(10) == Some(&b'_')
            && t.as_bytes().get(23) == Some(&b'_'))
    {
        return Some(TokenKind::Hash(t));
    }
    if t.contains('.') {
        let name = match t.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => t,
        };
        if !name.is_empty() && !name.contains(['/', '@', '?', '=', '&', '#', ':', '[', ']', '%']) {
            return Some(TokenKind::Domain(name));
        }
    }
    None
}

fn token_ip(t: &str) -> Option<IpAddr> {
    if let Some(ip) = host_as_ip(t) {
        return Some(ip);
    }
    if let Some(inner) = t.strip_prefix('[') {
        let (a, port) = inner.split_once("]:")?;
        if port.parse::<u16>().is_ok() {
            return a.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
        }
        return None;
    }
    let (a, port) = t.rsplit_once(':')?;
    if port.parse::<u16>().is_ok() {
        return a.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    None
}

/// `match_text` for any matcher: look up every classified token with the matching method,
/// run the patterns over the whole text, then keep each id once (its smallest kind).
pub fn match_text_with<M: Matcher + ?Sized>(m: &M, text: &[u8], hits: &mut Vec<Hit>) {
    let start = hits.len();
    for t in tokens(text) {
        match_token(m, t, hits);
    }
    m.match_pattern(text, hits);
    dedup_hits(hits, start);
}

/// Look up one token of [`tokens`] the way [`match_text_with`] does (as its [`classify`]
/// kind); also tells which token of a text produced a hit.
pub fn match_token<M: Matcher + ?Sized>(m: &M, t: &str, hits: &mut Vec<Hit>) {
    match classify(t) {
        Some(TokenKind::Url(u)) => {
            m.match_url(u, hits);
            if let Some(h) = url_host(u) {
                m.match_domain(h, hits);
            }
        }
        Some(TokenKind::Ip(ip)) => m.match_ip(ip, hits),
        Some(TokenKind::Email(e)) => m.match_email(e, hits),
        Some(TokenKind::Hash(h)) => m.match_hash(h, hits),
        Some(TokenKind::Domain(d)) => m.match_domain(d, hits),
        None => {}
    }
}

/// Keep each id of `hits[start..]` once, with its smallest kind; ordered by id.
pub fn dedup_hits(hits: &mut Vec<Hit>, start: usize) {
    if hits.len() - start > 1 {
        hits[start..].sort_unstable();
        let mut w = start;
        for r in start..hits.len() {
            if w == start || hits[w - 1].id != hits[r].id {
                hits[w] = hits[r];
                w += 1;
            }
        }
        hits.truncate(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_and_strips() {
        let toks: Vec<&str> =
            tokens(b"GET http://evil.example/a?b=1. (see notevil.example), [2001:db8::1]:443 \"x@y.example\"").collect();
        assert_eq!(
            toks,
            vec![
                "GET",
                "http://evil.example/a?b=1",
                "see",
                "notevil.example",
                "[2001:db8::1]:443",
                "x@y.example"
            ]
        );
        assert_eq!(
            classify("notevil.example"),
            Some(TokenKind::Domain("notevil.example"))
        );
        assert_eq!(
            classify("evil.example:443"),
            Some(TokenKind::Domain("evil.example"))
        );
        assert!(matches!(
            classify("[2001:db8::1]:443"),
            Some(TokenKind::Ip(_))
        ));
        assert!(matches!(classify("192.0.2.1:80"), Some(TokenKind::Ip(_))));
        assert_eq!(
            classify("evil.example/gate.php"),
            Some(TokenKind::Url("evil.example/gate.php"))
        );
        assert_eq!(classify("/var/log/x.log"), None);
        assert_eq!(classify("12:34:56"), None);
        assert_eq!(url_host("http://u@[::1]:80/x"), Some("[::1]"));
        assert_eq!(url_host("evil.example:8080/x"), Some("evil.example"));
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;
    use crate::normalize::normalize_observed_url;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// When the one-pass check answers, it answers what normalising and then taking the
        /// host does, whatever the path holds.
        #[test]
        fn plain_http_host_agrees_with_normalise_then_host(
            url in "(https?|HTTP|ftp|hxxp)://[a-zA-Z0-9._:@%\\[\\]-]{0,12}(/[a-zA-Z0-9/._?#%=&( \\\\@:\\[\\]\t\u{e9}\u{3002}-]{0,16})?"
        ) {
            if let Some(h) = plain_http_host(url.as_bytes()) {
                let n = normalize_observed_url(&url);
                prop_assert_eq!(url_host(&n).map(str::as_bytes), Some(h), "{:?} -> {:?}", url, n);
            }
        }
    }

    /// The byte-at-a-time reading the block classifier of [`plain_http_host`] replaced.
    fn plain_http_host_by_bytes(url: &[u8]) -> Option<&[u8]> {
        let rest = url
            .strip_prefix(b"http://")
            .or_else(|| url.strip_prefix(b"https://"))?;
        let mut digits_only = true;
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'a'..=b'z' | b'-' => digits_only = false,
                b'0'..=b'9' | b'.' => {}
                b'/' => {
                    let host = &rest[..i];
                    return (!host.is_empty() && !host.ends_with(b".") && !digits_only)
                        .then_some(host);
                }
                _ => return None,
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The 16-byte block reading answers exactly like the byte-at-a-time one, for hosts
        /// shorter and longer than a block and any byte where the host may stop.
        #[test]
        fn plain_http_host_agrees_with_the_bytewise_reading(
            scheme in prop::sample::select(vec!["http://", "https://", "HTTP://", "http:/"]),
            host in prop::collection::vec(prop::sample::select(b"ab9-.0.z".to_vec()), 0..70),
            stop in prop::sample::select(b"/ :@?A_\xe9".to_vec()),
            tail in "[a-z/.]{0,20}",
        ) {
            let mut url = scheme.as_bytes().to_vec();
            url.extend_from_slice(&host);
            url.push(stop);
            url.extend_from_slice(tail.as_bytes());
            prop_assert_eq!(plain_http_host(&url), plain_http_host_by_bytes(&url));
            let cut = &url[..url.len() - tail.len() - 1];
            prop_assert_eq!(plain_http_host(cut), plain_http_host_by_bytes(cut));
        }

        /// The dot mask marks exactly the dots of the first `len` bytes, or declines.
        #[test]
        fn dot_mask_marks_the_dots(b in prop::collection::vec(prop::sample::select(b"a.-/".to_vec()), 0..90), len in 0usize..80) {
            let len = len.min(b.len());
            let want = b[..len].iter().take(64).enumerate().filter(|(_, &c)| c == b'.').fold(0u64, |m, (i, _)| m | 1 << i);
            match dot_mask(&b, len) {
                Some(m) => prop_assert_eq!(m, want),
                None => prop_assert!(len > 64 || len.div_ceil(16) * 16 > b.len()),
            }
        }
    }

    #[test]
    fn plain_http_host_takes_the_plain_case_only() {
        assert_eq!(
            plain_http_host(b"http://a.example/x?y=1"),
            Some(&b"a.example"[..])
        );
        assert_eq!(
            plain_http_host(b"https://a-b.example/"),
            Some(&b"a-b.example"[..])
        );
        assert_eq!(
            plain_http_host(b"http://a.example/%41 x"),
            Some(&b"a.example"[..])
        );
        for other in [
            &b"http://A.example/"[..],
            b"http://a.example",
            b"http://a.example:8080/",
            b"http://u@a.example/",
            b"http://1.2.3.4/",
            b"http://a.example./",
            b"ftp://a.example/",
        ] {
            assert_eq!(
                plain_http_host(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
