//! Normalisation (ARCHITECTURE.md §3, a contract): one canonical spelling per observable.
//!
//! * Domains: lower-case ASCII, IDN → punycode, no trailing dot, a leading `*.` or `.`
//!   stripped (it means "this domain and below", which is the default anyway). Labels are
//!   letters, digits, `-` and `_`, 1–63 bytes, the name at most 253 bytes, at least two labels
//!   unless the value was hinted `fqdn`, and the last label (TLD) is not all digits (that
//!   would be a malformed IP). A hyphen may start or end a label other than the TLD: such
//!   names resolve in practice (old Blogger sub-domains) and phishing feeds list them.
//! * IPs: IPv4 dotted quad, IPv6 in RFC 5952 form; CIDRs masked to their network address;
//!   `/32` and `/128` stored as plain addresses; `1.2.3.4:443` and `[::1]:443` read as the
//!   address (maltrail writes IP:port). **IPv4 octets with a leading zero (`010.1.1.1`) are
//!   rejected**: `inet_aton` reads them as octal, other tools as decimal, so the value is
//!   ambiguous and we refuse to guess.
//! * URLs: scheme and host lower-cased, host IDN → punycode and trailing dot dropped, default
//!   port dropped (http 80, https 443, ftp 21, ws 80, wss 443), fragment dropped, empty path
//!   → `/`, percent-escapes of unreserved characters decoded and the hex of the remaining ones
//!   upper-cased, bytes that must be escaped (controls, space, non-ASCII) escaped; a
//!   scheme-less URL is taken as `http://`. User info and the query are kept.
//! * E-mail: `local@domain`, the domain normalised as above; the whole address is
//!   lower-cased, because every real mail system and the matcher treat local parts
//!   case-insensitively (so `match_email` can compare case-insensitively).
//! * Hashes: lower-case hex; the type follows the length (32 md5, 40 sha1, 64 sha256, 128
//!   sha512) unless hinted (`ja3` is md5-length, `x509-sha1` is 40 and may be written with
//!   colons). `ja4` is checked against the JA4 `a_b_c` format, or JA4S's (the server's
//!   fingerprint of the same family, matched the same way).
//! * `pattern` keeps the value verbatim (non-empty, at most 1024 bytes), no refanging.
//!
//! Defanged spellings are refanged first (see [`refang`]).
//!
//! Inference without a hint: a value with a scheme is a URL; then IP/CIDR (so `10.0.0.0/8`
//! is a CIDR, not a scheme-less URL); then a value with `/` after a host is a URL; then
//! e-mail, hash, domain.

use crate::model::IndicatorType;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A value in normal form and the type it was recognised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The type of the value.
    pub itype: IndicatorType,
    /// The canonical spelling.
    pub value: String,
    /// Domains only: false when written as `*.x` / `.x` or plain (this domain and below);
    /// feeds may still force exact-only matching.
    pub exact_only: bool,
}

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The value could not be read as any indicator type (or as the hinted one).
    #[error("not a valid {expected}: {reason}")]
    Invalid {
        /// The type that was expected ("indicator" when none was hinted).
        expected: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(expected: &'static str, reason: impl Into<String>) -> NormalizeError {
    NormalizeError::Invalid {
        expected,
        reason: reason.into(),
    }
}

/// Longest `pattern` value accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Normalise one raw value, refanging first. With `hint`, the value must be of that type
/// (an ipv4 or ipv6 hint accepts an address or CIDR of either family and reports the real
/// family; a feed's "ip" column often mixes them); without, the type is inferred.
pub fn normalize(raw: &str, hint: Option<IndicatorType>) -> Result<Normalized, NormalizeError> {
    if hint == Some(IndicatorType::Pattern) {
        return normalize_pattern(raw).map(|value| Normalized {
            itype: IndicatorType::Pattern,
            value,
            exact_only: false,
        });
    }
    let refanged = refang(raw);
    let s = refanged.trim();
    if s.is_empty() {
        return Err(invalid(
            hint.map_or("indicator", |h| h.as_str()),
            "empty value",
        ));
    }
    let plain = |itype, value| Normalized {
        itype,
        value,
        exact_only: false,
    };
    match hint {
        Some(IndicatorType::Ipv4 | IndicatorType::Ipv6) => {
            let (itype, value) = normalize_ip(s)?;
            Ok(plain(itype, value))
        }
        Some(IndicatorType::Fqdn) => {
            Ok(plain(IndicatorType::Fqdn, normalize_domain_with(s, true)?))
        }
        Some(IndicatorType::Url) => Ok(plain(IndicatorType::Url, normalize_url(s)?)),
        Some(IndicatorType::Email) => Ok(plain(IndicatorType::Email, normalize_email(s)?)),
        Some(IndicatorType::Ja4) => Ok(plain(IndicatorType::Ja4, normalize_ja4(s)?)),
        Some(
            h @ (IndicatorType::Md5
            | IndicatorType::Sha1
            | IndicatorType::Sha256
            | IndicatorType::Sha512
            | IndicatorType::Ja3
            | IndicatorType::X509Sha1),
        ) => {
            let (itype, value) = normalize_hash(s, Some(h))?;
            Ok(plain(itype, value))
        }
        Some(IndicatorType::Pattern) => unreachable_pattern(),
        None => infer(s),
    }
}

// Patterns return before refanging; kept as a function so the match above stays total
// without a panic path.
fn unreachable_pattern() -> Result<Normalized, NormalizeError> {
    Err(invalid("pattern", "internal: pattern handled earlier"))
}

fn infer(s: &str) -> Result<Normalized, NormalizeError> {
    let plain = |itype, value| Normalized {
        itype,
        value,
        exact_only: false,
    };
    if split_scheme(s).is_some() {
        return normalize_url(s).map(|v| plain(IndicatorType::Url, v));
    }
    match normalize_ip(s) {
        Ok((itype, value)) => return Ok(plain(itype, value)),
        Err(e) => {
            // `1.2.3.4/33` is a broken CIDR, not the URL `http://1.2.3.4/33`.
            if let Some((head, tail)) = s.split_once('/') {
                if !tail.is_empty()
                    && tail.len() <= 3
                    && tail.bytes().all(|b| b.is_ascii_digit())
                    && parse_ip_maybe_port(head, false).is_some()
                {
                    return Err(e);
                }
            }
        }
    }
    if let Some(slash) = s.find('/') {
        let head = &s[..slash];
        if !head.is_empty() && !head.contains('@') {
            return normalize_url(s).map(|v| plain(IndicatorType::Url, v));
        }
    }
    if s.contains('@') {
        return normalize_email(s).map(|v| plain(IndicatorType::Email, v));
    }
    if matches!(s.len(), 32 | 40 | 64 | 128) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let (itype, value) = normalize_hash(s, None)?;
        return Ok(plain(itype, value));
    }
    if looks_like_ja4(s) {
        if let Ok(v) = normalize_ja4(s) {
            return Ok(plain(IndicatorType::Ja4, v));
        }
    }
    match normalize_domain_with(s, false) {
        Ok(v) => Ok(plain(IndicatorType::Fqdn, v)),
        Err(NormalizeError::Invalid { reason, .. }) => Err(invalid(
            "indicator",
            format!("not a URL, IP, CIDR, e-mail or hash, and as a domain: {reason}"),
        )),
    }
}

/// Undo common defanging: `hxxp`/`hXXp`/`hxxps`/`meow`/`fxp` schemes, `[.]` `(.)` `{.}`
/// `[dot]` `(dot)` `{dot}`, `[:]`, `[://]`, `[@]` `[at]`, and surrounding whitespace.
/// Returns the input unchanged (borrowed) when there is nothing to undo.
pub fn refang(raw: &str) -> Cow<'_, str> {
    // Repeat to a fixpoint so `[[.]]` cannot turn into a new `[.]` later (idempotence).
    // Every substitution shrinks the text or fixes the scheme once, so this terminates.
    let mut cur = refang_once(raw);
    loop {
        let next = match refang_once(&cur) {
            n if *n == *cur => None,
            n => Some(n.into_owned()),
        };
        match next {
            None => return cur,
            Some(n) => cur = Cow::Owned(n),
        }
    }
}

fn refang_once(raw: &str) -> Cow<'_, str> {
    let s = raw.trim();
    let scheme_fix: Option<(&str, usize)> = {
        let lower_prefix = |p: &str| {
            s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        };
        if lower_prefix("hxxps") {
            Some(("https", 5))
        } else if lower_prefix("hxxp") {
            Some(("http", 4))
        } else if lower_prefix("meows") {
            Some(("https", 5))
        } else if lower_prefix("meow") {
            Some(("http", 4))
        } else if lower_prefix("fxp") {
            Some(("ftp", 3))
        } else {
            None
        }
    };
    // A defanged scheme only counts when followed by `:` or `[:` (not `hxxpfoo.com`).
    let scheme_fix = scheme_fix.filter(|(_, n)| {
        let rest = &s[*n..];
        rest.starts_with(':') || rest.starts_with("[:")
    });
    let needs_brackets = s.bytes().any(|b| matches!(b, b'[' | b'(' | b'{'));
    if scheme_fix.is_none() && !needs_brackets {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    if let Some((scheme, n)) = scheme_fix {
        out.push_str(scheme);
        rest = &s[n..];
    }
    const SUBS: [(&str, &str); 12] = [
        ("[://]", "://"),
        ("[:]", ":"),
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("{dot}", "."),
        ("[@]", "@"),
        ("[at]", "@"),
        ("(@)", "@"),
        ("[/]", "/"),
    ];
    'outer: while !rest.is_empty() {
        let b = rest.as_bytes()[0];
        if matches!(b, b'[' | b'(' | b'{') {
            for (from, to) in SUBS {
                if rest.len() >= from.len()
                    && rest.as_bytes()[..from.len()].eq_ignore_ascii_case(from.as_bytes())
                {
                    out.push_str(to);
                    rest = &rest[from.len()..];
                    continue 'outer;
                }
            }
        }
        // Copy one char (rest is valid UTF-8; find the next char boundary).
        let len = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    Cow::Owned(out)
}

/// Normalise a domain name (after refanging): see the module docs. At least two labels.
pub fn normalize_domain(raw: &str) -> Result<String, NormalizeError> {
    let r = refang(raw);
    normalize_domain_with(r.trim(), false)
}

/// Domain normalisation; `single_label_ok` when the value was hinted `fqdn` (e.g. `localhost`).
fn normalize_domain_with(s: &str, single_label_ok: bool) -> Result<String, NormalizeError> {
    const WHAT: &str = "domain";
    let mut s = s;
    if let Some(r) = s.strip_prefix("*.") {
        s = r;
    } else if let Some(r) = s.strip_prefix('.') {
        s = r;
    }
    if let Some(r) = s.strip_suffix('.') {
        s = r;
    }
    if s.is_empty() {
        return Err(invalid(WHAT, "empty name"));
    }
    let lowered: String = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        let a = idna::domain_to_ascii(s)
            .map_err(|e| invalid(WHAT, format!("IDN conversion failed: {e:?}")))?;
        a.strip_suffix('.').map(str::to_string).unwrap_or(a)
    };
    check_domain_syntax(&lowered, single_label_ok).map_err(|r| invalid(WHAT, r))?;
    Ok(lowered)
}

/// Checks a lower-case ASCII name; returns the reason it is not a valid domain.
fn check_domain_syntax(name: &str, single_label_ok: bool) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!("name is {} bytes, more than 253", name.len()));
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is more than 63 bytes"));
        }
        if let Some(bad) = label
            .bytes()
            .find(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_'))
        {
            return Err(format!(
                "character {:?} not allowed in a label",
                char::from(bad)
            ));
        }
        last = label;
    }
    if labels < 2 && !single_label_ok {
        return Err("a single label is not a domain (hint fqdn to allow it)".into());
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("top-level label is all digits (a malformed IP address?)".into());
    }
    if last.starts_with('-') || last.ends_with('-') {
        return Err("top-level label starts or ends with '-'".into());
    }
    Ok(())
}

/// Parse an IPv4 address strictly: four decimal octets, no leading zeros (octal ambiguity).
fn parse_ipv4_strict(s: &str) -> Option<Ipv4Addr> {
    // Ipv4Addr::from_str already rejects leading zeros and anything but four octets.
    s.parse().ok()
}

/// Normalise an IP address or CIDR (after refanging); returns the family and canonical text.
/// CIDRs are masked to their network address; `/32` and `/128` become plain addresses;
/// `a.b.c.d:port`, `[v6]:port` and `[v6]` read as the address.
pub fn normalize_ip(raw: &str) -> Result<(IndicatorType, String), NormalizeError> {
    const WHAT: &str = "IP address or CIDR";
    let r = refang(raw);
    let s = r.trim();
    if s.is_empty() {
        return Err(invalid(WHAT, "empty value"));
    }
    let (addr_part, prefix) = match s.split_once('/') {
        Some((a, p)) => {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(WHAT, format!("bad prefix length {p:?}")));
            }
            let n: u8 = p
                .parse()
                .map_err(|_| invalid(WHAT, format!("bad prefix length {p:?}")))?;
            (a, Some(n))
        }
        None => (s, None),
    };
    let ip = parse_ip_maybe_port(addr_part, prefix.is_none())
        .ok_or_else(|| invalid(WHAT, format!("{addr_part:?} is not an IP address")))?;
    match (ip, prefix) {
        (IpAddr::V4(a), p) => {
            let p = p.unwrap_or(32);
            if p > 32 {
                return Err(invalid(WHAT, format!("IPv4 prefix /{p} is more than 32")));
            }
            let net = mask_v4(u32::from(a), p);
            let text = Ipv4Addr::from(net).to_string();
            Ok((
                IndicatorType::Ipv4,
                if p == 32 { text } else { format!("{text}/{p}") },
            ))
        }
        (IpAddr::V6(a), p) => {
            let p = p.unwrap_or(128);
            if p > 128 {
                return Err(invalid(WHAT, format!("IPv6 prefix /{p} is more than 128")));
            }
            let net = mask_v6(u128::from(a), p);
            let text = Ipv6Addr::from(net).to_string();
            Ok((
                IndicatorType::Ipv6,
                if p == 128 {
                    text
                } else {
                    format!("{text}/{p}")
                },
            ))
        }
    }
}

/// `a.b.c.d`, `a.b.c.d:port` (when `port_ok`), IPv6, `[v6]`, `[v6]:port`.
fn parse_ip_maybe_port(s: &str, port_ok: bool) -> Option<IpAddr> {
    if let Some(a) = parse_ipv4_strict(s) {
        return Some(IpAddr::V4(a));
    }
    if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner.split_once(']')?;
        if !after.is_empty() {
            let port = after.strip_prefix(':')?;
            if !port_ok || !is_port(port) {
                return None;
            }
        }
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if s.contains(':') && s.bytes().filter(|b| *b == b':').count() >= 2 {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if port_ok {
        if let Some((a, port)) = s.split_once(':') {
            if is_port(port) {
                return parse_ipv4_strict(a).map(IpAddr::V4);
            }
        }
    }
    None
}

fn is_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// `addr` with the host bits beyond `prefix` cleared.
pub fn mask_v4(addr: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else if prefix >= 32 {
        addr
    } else {
        addr & (u32::MAX << (32 - u32::from(prefix)))
    }
}

/// `addr` with the host bits beyond `prefix` cleared.
pub fn mask_v6(addr: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else if prefix >= 128 {
        addr
    } else {
        addr & (u128::MAX << (128 - u32::from(prefix)))
    }
}

/// The inclusive range `(network address, last address)` of `addr/prefix`, the host bits of
/// `addr` ignored. With `v4` the address is IPv4 in the low 32 bits (the result too) and a
/// prefix above 32 counts as 32; otherwise IPv6, a prefix above 128 counting as 128.
pub fn prefix_range(addr: u128, prefix: u8, v4: bool) -> (u128, u128) {
    if v4 {
        let net = mask_v4(addr as u32, prefix);
        (
            u128::from(net),
            u128::from(net | !mask_v4(u32::MAX, prefix)),
        )
    } else {
        let net = mask_v6(addr, prefix);
        (net, net | !mask_v6(u128::MAX, prefix))
    }
}

/// Parse a normalised (or any) IP/CIDR text into its network address and prefix length.
/// A plain address has the full prefix (32 or 128).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    match s.split_once('/') {
        Some((a, p)) => {
            let p: u8 = p.parse().ok()?;
            match a.parse::<IpAddr>().ok()? {
                IpAddr::V4(v) if p <= 32 => {
                    Some((IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(v), p))), p))
                }
                IpAddr::V6(v) if p <= 128 => {
                    Some((IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(v), p))), p))
                }
                _ => None,
            }
        }
        None => match s.parse::<IpAddr>().ok()? {
            a @ IpAddr::V4(_) => Some((a, 32)),
            a @ IpAddr::V6(_) => Some((a, 128)),
        },
    }
}

/// Split `scheme://rest` when `scheme` is a syntactically valid URL scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let idx = s.find("://")?;
    let scheme = &s[..idx];
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    if !first.is_ascii_alphabetic()
        || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    Some((scheme, &s[idx + 3..]))
}

/// The port a scheme uses when none is written (lower-case scheme).
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// Normalise a URL (after refanging): see the module docs.
pub fn normalize_url(raw: &str) -> Result<String, NormalizeError> {
    const WHAT: &str = "URL";
    let r = refang(raw);
    let s = r.trim();
    if s.is_empty() {
        return Err(invalid(WHAT, "empty value"));
    }
    if s.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(invalid(WHAT, "contains whitespace or control characters"));
    }
    let (scheme, rest) = match split_scheme(s) {
        Some((sc, rest)) => (sc.to_ascii_lowercase(), rest),
        None => {
            if s.contains("://") {
                return Err(invalid(WHAT, "bad scheme"));
            }
            ("http".to_string(), s.strip_prefix("//").unwrap_or(s))
        }
    };
    // Drop the fragment.
    let rest = match rest.find('#') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(auth_end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host_raw, port_raw) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => {
                let after = &hostport[i + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => return Err(invalid(WHAT, "junk after IPv6 host")),
                };
                (&hostport[..=i], port)
            }
            None => return Err(invalid(WHAT, "unterminated IPv6 host")),
        }
    } else {
        match hostport.rfind(':') {
            Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
            None => (hostport, None),
        }
    };
    if host_raw.is_empty() {
        return Err(invalid(WHAT, "no host"));
    }
    let host = normalize_url_host(host_raw).map_err(|r| invalid(WHAT, r))?;
    let port = match port_raw {
        None | Some("") => None,
        Some(p) => {
            if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(WHAT, format!("bad port {p:?}")));
            }
            let n: u16 = p
                .parse()
                .map_err(|_| invalid(WHAT, format!("port {p} out of range")))?;
            if default_port(&scheme) == Some(n) {
                None
            } else {
                Some(n)
            }
        }
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&scheme);
    out.push_str("://");
    if let Some(u) = userinfo {
        push_percent_normalized(&mut out, u);
        out.push('@');
    }
    out.push_str(&host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p.to_string());
    }
    if !path_query.starts_with('/') {
        out.push('/');
    }
    push_percent_normalized(&mut out, path_query);
    Ok(out)
}

/// A URL host: `[v6]`, IPv4, or a domain (one label allowed, e.g. `localhost`).
fn normalize_url_host(h: &str) -> Result<String, String> {
    if let Some(inner) = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let a: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
        return Ok(format!("[{a}]"));
    }
    if let Some(a) = parse_ipv4_strict(h) {
        return Ok(a.to_string());
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    let lowered = if h.is_ascii() {
        h.to_ascii_lowercase()
    } else {
        let a =
            idna::domain_to_ascii(h).map_err(|e| format!("IDN host conversion failed: {e:?}"))?;
        a.strip_suffix('.').map(str::to_string).unwrap_or(a)
    };
    check_domain_syntax(&lowered, true).map_err(|r| format!("host {h:?}: {r}"))?;
    Ok(lowered)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Append `s` with percent-escapes normalised: escapes of unreserved characters decoded,
/// other escapes' hex upper-cased, controls/space/non-ASCII bytes escaped, and a `%` that
/// starts no valid escape written `%25` (so normalising twice changes nothing).
fn push_percent_normalized(out: &mut String, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                let v = h * 16 + l;
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else {
                    out.push('%');
                    out.push(char::from(HEX_UPPER[usize::from(h)]));
                    out.push(char::from(HEX_UPPER[usize::from(l)]));
                }
                i += 3;
                continue;
            }
        }
        if c <= 0x20 || c >= 0x7f || c == b'%' {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(c >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(c & 15)]));
        } else {
            out.push(char::from(c));
        }
        i += 1;
    }
}

/// Normalise an e-mail address (after refanging): `local@domain`, lower-cased, the domain
/// normalised like any domain (IDN → punycode).
pub fn normalize_email(raw: &str) -> Result<String, NormalizeError> {
    const WHAT: &str = "e-mail address";
    let r = refang(raw);
    let s = r.trim();
    let s = s.strip_prefix("mailto:").unwrap_or(s);
    let (local, domain) = s.rsplit_once('@').ok_or_else(|| invalid(WHAT, "no '@'"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid(WHAT, "local part empty or longer than 64 bytes"));
    }
    if let Some(c) = local.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '@' | '<' | '>' | '(' | ')' | '[' | ']' | '\\' | ',' | ';' | ':' | '"'
            )
    }) {
        return Err(invalid(
            WHAT,
            format!("character {c:?} not allowed in the local part"),
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid(WHAT, "misplaced '.' in the local part"));
    }
    let domain = normalize_domain_with(domain, false).map_err(
        |NormalizeError::Invalid { reason, .. }| invalid(WHAT, format!("domain: {reason}")),
    )?;
    Ok(format!("{}@{}", local.to_lowercase(), domain))
}

/// Normalise a hex digest: lower-case; the type follows the length unless `hint` is given
/// (`ja3` = 32 hex, `x509-sha1` = 40 hex, colons allowed). Returns the type and the value.
pub fn normalize_hash(
    raw: &str,
    hint: Option<IndicatorType>,
) -> Result<(IndicatorType, String), NormalizeError> {
    let what = hint.map_or("hash", |h| h.as_str());
    let s = raw.trim();
    let cleaned: Cow<'_, str> = if hint == Some(IndicatorType::X509Sha1) && s.contains(':') {
        Cow::Owned(s.replace(':', ""))
    } else {
        Cow::Borrowed(s)
    };
    if let Some(c) = cleaned.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(invalid(what, format!("character {c:?} is not hex")));
    }
    let len = cleaned.len();
    let by_len = match len {
        32 => Some(IndicatorType::Md5),
        40 => Some(IndicatorType::Sha1),
        64 => Some(IndicatorType::Sha256),
        128 => Some(IndicatorType::Sha512),
        _ => None,
    };
    let itype = match hint {
        None => by_len
            .ok_or_else(|| invalid(what, format!("{len} hex digits is no known hash length")))?,
        Some(h) => {
            let want = match h {
                IndicatorType::Md5 | IndicatorType::Ja3 => 32,
                IndicatorType::Sha1 | IndicatorType::X509Sha1 => 40,
                IndicatorType::Sha256 => 64,
                IndicatorType::Sha512 => 128,
                _ => return Err(invalid(what, "not a hash type")),
            };
            if len != want {
                return Err(invalid(what, format!("{len} hex digits, expected {want}")));
            }
            h
        }
    };
    Ok((itype, cleaned.to_ascii_lowercase()))
}

fn looks_like_ja4(s: &str) -> bool {
    let b = s.as_bytes();
    (s.len() == 36 && b.get(10) == Some(&b'_') && b.get(23) == Some(&b'_'))
        || (s.len() == 25 && b.get(7) == Some(&b'_') && b.get(12) == Some(&b'_'))
}

/// Normalise a JA4 fingerprint `a_b_c`: `a` is 10 characters (protocol `t`/`q`/`d`, a
/// two-character TLS version, `d`/`i` for SNI, two digits of cipher count, two digits of
/// extension count, two alphanumerics of ALPN), `b` and `c` are 12 hex each. Or a JA4S
/// (FoxIO's server fingerprint, also `ja4`): `a` is 7 characters (protocol, version, two
/// digits of extension count, ALPN), `b` the chosen cipher (4 hex), `c` 12 hex.
/// Lower-cased.
pub fn normalize_ja4(raw: &str) -> Result<String, NormalizeError> {
    const WHAT: &str = "ja4";
    let s = raw.trim().to_ascii_lowercase();
    let parts: Vec<&str> = s.split('_').collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(invalid(WHAT, "expected three '_'-separated parts"));
    };
    let ab = a.as_bytes();
    // JA4 has the SNI flag and a cipher count that JA4S has not.
    let (counts, b_len) = match ab.len() {
        10 => {
            if !matches!(ab[3], b'd' | b'i') {
                return Err(invalid(WHAT, "SNI flag must be d or i"));
            }
            (&ab[4..8], 12)
        }
        7 => (&ab[3..5], 4),
        _ => {
            return Err(invalid(
                WHAT,
                "first part must be 10 characters (JA4) or 7 (JA4S)",
            ))
        }
    };
    if !matches!(ab[0], b't' | b'q' | b'd') {
        return Err(invalid(WHAT, "protocol must be t, q or d"));
    }
    if !ab[1..3].iter().all(u8::is_ascii_alphanumeric) {
        return Err(invalid(WHAT, "bad TLS version"));
    }
    if !counts.iter().all(u8::is_ascii_digit) {
        return Err(invalid(WHAT, "cipher and extension counts must be digits"));
    }
    if !ab[ab.len() - 2..].iter().all(u8::is_ascii_alphanumeric) {
        return Err(invalid(WHAT, "bad ALPN characters"));
    }
    for (p, len) in [(b, b_len), (c, 12)] {
        if p.len() != len || !p.bytes().all(|x| x.is_ascii_hexdigit()) {
            return Err(invalid(
                WHAT,
                if b_len == 12 {
                    "second and third parts must be 12 hex digits"
                } else {
                    "JA4S: second part must be 4 hex digits (the cipher), third 12"
                },
            ));
        }
    }
    Ok(s)
}

/// A `pattern` value: kept verbatim (no refanging, no trimming), non-empty, ≤ 1024 bytes.
pub fn normalize_pattern(raw: &str) -> Result<String, NormalizeError> {
    if raw.is_empty() {
        return Err(invalid("pattern", "empty pattern"));
    }
    if raw.len() > MAX_PATTERN_LEN {
        return Err(invalid(
            "pattern",
            format!("{} bytes, more than {MAX_PATTERN_LEN}", raw.len()),
        ));
    }
    Ok(raw.to_string())
}

/// The form in which the matcher compares an observed URL with URL indicators: the URL
/// itself when it is already canonical (the common case, no allocation), else its
/// [`normalize_url`] form, else the trimmed input when it cannot be normalised. A URL
/// indicator's value maps to itself, so indicator and observation meet in the same form.
pub fn normalize_observed_url(url: &str) -> Cow<'_, str> {
    if is_canonical_url_fast(url) {
        return Cow::Borrowed(url);
    }
    match normalize_url(url) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(url.trim()),
    }
}

/// Cheap check that `url` is already in [`normalize_url`] form (conservative: false means
/// "maybe not").
fn is_canonical_url_fast(url: &str) -> bool {
    let Some((scheme, rest)) = split_scheme(url) else {
        return false;
    };
    if !scheme
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        || scheme.starts_with("hxxp")
        || scheme.starts_with("meow")
        || scheme.starts_with("fxp")
    {
        return false;
    }
    let Some(slash) = rest.find('/') else {
        return false;
    };
    let authority = &rest[..slash];
    if authority.is_empty()
        || authority.ends_with('.')
        || authority.ends_with(':')
        || authority.contains(".:")
        || !authority.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_' | b':')
        })
    {
        return false;
    }
    if let Some((host, port)) = authority.rsplit_once(':') {
        if host.contains(':') || !is_port(port) || port.starts_with('0') {
            return false;
        }
        if port.parse::<u16>().ok() == default_port(scheme) {
            return false;
        }
    }
    if authority.split(':').next().is_some_and(|h| {
        h.bytes().all(|b| b.is_ascii_digit() || b == b'.') && parse_ipv4_strict(h).is_none()
    }) {
        return false;
    }
    rest.bytes()
        .all(|b| b > 0x20 && b < 0x7f && !matches!(b, b'%' | b'#' | b'[' | b'(' | b'{'))
}

#[cfg(test)]
mod tests;
