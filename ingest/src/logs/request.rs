//! HTTP requests as logs record them, shared by every access-log parser (the built-in
//! Squid and combined parsers, format-string plans, W3C, Umbrella, Zscaler): the method set,
//! `METHOD target HTTP/x.y` request lines, and a request target's `url.*` fields (set, and
//! screened for the pre-screen).

use super::tokens::{trim, Line};
use super::url::{path_only, split_host_port, split_url};
use super::AlertProbe;
use crate::Observation;
use matcher::text::plain_http_host;
use std::borrow::Cow;

/// Does `b` look like an HTTP request method as proxies log it (`GET`, `CONNECT`,
/// `PROPFIND`, Squid's `NONE`, extension methods): 1 to 24 upper-case letters, `_` or `-`?
pub(crate) fn is_method(b: &[u8]) -> bool {
    (1..=24).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_uppercase() || c == b'_' || c == b'-')
}

/// [`set_target`] without a vhost, for [`LineParser::screen`]: does any value it would set
/// and the correlator look up (`url.full`, `url.domain`, or `url.path` when there is no
/// full URL) maybe alert? Text that is not UTF-8 answers "maybe" (`parse` would decode it
/// lossily).
pub(crate) fn screen_target(target: &[u8], connect: bool, probe: &dyn AlertProbe) -> bool {
    let domain = |host: &[u8]| -> bool {
        // `domain()`: UTF-8 text, lower-cased (the probe does that) and one trailing dot off.
        let Ok(h) = std::str::from_utf8(host) else {
            return true;
        };
        let h = h.strip_suffix('.').unwrap_or(h);
        !h.is_empty() && probe.domain(h)
    };
    if target.is_empty() || target == b"-" {
        return false;
    }
    // Most proxy URLs: `http(s)://host/...` with a plain lower-case host, which `split_url`
    // and `domain()` would hand over unchanged.
    if let Some(host) = plain_http_host(target) {
        return probe.plain_http_url(target, host);
    }
    if let Some(u) = split_url(target) {
        // `domain()` of the host: UTF-8, one trailing dot off, none when empty.
        let host = std::str::from_utf8(u.host).map(|h| h.strip_suffix('.').unwrap_or(h));
        return match host {
            Ok("") => std::str::from_utf8(target).map_or(true, |full| probe.url(full)),
            Ok(h) => probe.url_and_domain(target, h),
            Err(_) => true,
        };
    }
    if target.first() == Some(&b'/') {
        let path = path_only(target);
        return std::str::from_utf8(path).is_err() || probe.pattern(path);
    }
    let (host, port) = split_host_port(target);
    let plausible = !host.is_empty()
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'));
    plausible && (connect || port.is_some()) && domain(host)
}

/// Fill `url.*` from a request target: absolute URL, `host:port` authority (CONNECT), or
/// origin-form path (with `vhost` giving the host when known).
pub(crate) fn set_target<'a>(
    l: &Line<'a>,
    o: &mut Observation<'a>,
    target: &'a [u8],
    vhost: Option<&'a [u8]>,
    connect: bool,
) {
    if target.is_empty() || target == b"-" {
        return;
    }
    if let Some(u) = split_url(target) {
        o.url_full = Some(l.text(target));
        o.url_domain = l.domain(u.host);
        o.url_path = Some(l.text(u.path));
        if o.destination_port.is_none() {
            o.destination_port = u.port;
        }
        return;
    }
    if target.first() == Some(&b'/') {
        o.url_path = Some(l.text(path_only(target)));
        if let Some(vh) = vhost {
            let (host, port) = split_host_port(vh);
            if let Some(d) = l.domain(host) {
                let scheme = if port == Some(443) { "https" } else { "http" };
                let hostport = match port {
                    Some(80) | Some(443) | None => Cow::Borrowed(d.as_ref()),
                    Some(p) => Cow::Owned(format!("{d}:{p}")),
                };
                o.url_full = Some(Cow::Owned(format!(
                    "{scheme}://{hostport}{}",
                    String::from_utf8_lossy(target)
                )));
                o.url_domain = Some(d);
            }
        }
        return;
    }
    // Authority form (`CONNECT host:port`), or a bare host.
    let (host, port) = split_host_port(target);
    let plausible = !host.is_empty()
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'));
    if plausible && (connect || port.is_some()) {
        o.url_domain = l.domain(host);
        o.destination_port = port;
    }
}

/// `METHOD target HTTP/x.y` → (method, target) when it looks like a request.
pub(crate) fn split_request(req: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = memchr::memchr(b' ', req)?;
    let method = &req[..sp];
    if method.is_empty() || method.len() > 24 || !method.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let mut target = trim(&req[sp + 1..]);
    if let Some(last_sp) = memchr::memrchr(b' ', target) {
        if target[last_sp + 1..].starts_with(b"HTTP/") {
            target = trim(&target[..last_sp]);
        }
    }
    Some((method, target))
}
