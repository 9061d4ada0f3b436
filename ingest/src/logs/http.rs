//! HTTP-ish access logs: Squid native, Apache/nginx/Traefik common & combined, nginx error log.

use super::address::{parse_ip, parse_u16};
use super::format_plan::{FormatPlan, PlanParser};
use super::request::{is_method, screen_target, set_target, split_request};
use super::timestamps::{
    is_epoch, is_epoch_at_start, parse_clf_time, parse_epoch, parse_slash_datetime,
};
use super::tokens::{closing_quote, find, first_tokens, trim, trim_eol, Line, Tokens};
use super::url::split_host_port;
use super::{AlertProbe, LineParser, ParseError, ScreenAddr, Screened};
use crate::Observation;
use matcher::simd::byte_mask16;
use std::sync::OnceLock;

/// Squid native access.log:
/// `time elapsed client action/code size method URL ident hierarchy/from type`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SquidParser;

const TOO_FEW: ParseError = ParseError::new("too few fields");

impl LineParser for SquidParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        let l = Line::new(line);
        let mut t = Tokens::new(line);
        let Some(ts) = t.next() else {
            return Ok(None);
        };
        if ts.first() == Some(&b'#') {
            return Ok(None);
        }
        let Some(ts) = parse_epoch(ts) else {
            if memchr::memchr(b'[', line).is_some() {
                // Squid's predefined `logformat useragent`: `client [time] "agent"`.
                if let Some(Ok(o)) = squid_predefined(&SQUID_USERAGENT).map(|p| p.parse(line)) {
                    return Ok(o);
                }
                // Squid configured with `logformat combined` or `common`: a CLF line with
                // absolute URLs.
                if let Ok(Some(mut o)) = CombinedParser.parse(line) {
                    o.dataset = "proxy";
                    return Ok(Some(o));
                }
            }
            return Err(ParseError::new("bad timestamp"));
        };
        if let [Some(_), Some(_), Some(_), Some(_), None] = first_tokens::<5>(line) {
            // Squid's predefined `logformat referrer`: `time client referer url`.
            if let Some(Ok(o)) = squid_predefined(&SQUID_REFERRER).map(|p| p.parse(line)) {
                return Ok(o);
            }
        }
        let elapsed = t.next().ok_or(TOO_FEW)?;
        let client = t.next().ok_or(TOO_FEW)?;
        let action = t.next().ok_or(TOO_FEW)?;
        let size = t.next().ok_or(TOO_FEW)?;
        let method = t.next().ok_or(TOO_FEW)?;
        let url = t.next().ok_or(TOO_FEW)?;
        let _ident = t.next();
        let hier = t.next();
        let code = squid_shape(elapsed, action, size, method)?;
        let client = parse_ip(client).ok_or(ParseError::new("client is not an address"))?;
        let mut o = Observation {
            timestamp_ns: Some(ts),
            dataset: "proxy",
            protocol: Some("http"),
            source_ip: Some(client),
            http_method: Some(l.text(method)),
            ..Default::default()
        };
        o.http_status = parse_u16(code).filter(|&s| s != 0);
        o.destination_ip = hier.and_then(after_slash).and_then(parse_ip);
        set_target(&l, &mut o, url, None, method == b"CONNECT");
        Ok(Some(o))
    }

    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        // The same tokens and checks as `parse`, handing the probe what `parse` would put
        // in `source.ip`, `destination.ip` and `url.*`.
        let line = trim_eol(line);
        let [ts, elapsed, client, action, size, method, url, _ident, hier] =
            first_tokens::<9>(line);
        // The timestamp usually opens the line: read from the line's first 16 bytes.
        let epoch = |ts: &[u8]| match ts.as_ptr() == line.as_ptr() {
            true => is_epoch_at_start(line, ts.len()),
            false => is_epoch(ts),
        };
        if !ts.is_some_and(epoch) {
            return Screened::Unsure; // comments, `logformat combined`, errors
        }
        let (Some(elapsed), Some(client), Some(action), Some(size), Some(method), Some(url)) =
            (elapsed, client, action, size, method, url)
        else {
            return Screened::Unsure; // too few fields
        };
        if squid_shape(elapsed, action, size, method).is_err() {
            return Screened::Unsure; // `parse` rejects it
        }
        let client = ScreenAddr::read(client);
        if matches!(client, ScreenAddr::Absent) {
            return Screened::Unsure; // `parse` rejects it
        }
        let server = hier
            .and_then(after_slash)
            .map_or(ScreenAddr::Absent, ScreenAddr::read);
        // Start both addresses' memory loads, then work on the URL while they arrive.
        client.prefetch(probe);
        server.prefetch(probe);
        Screened::unless(
            screen_target(url, method == b"CONNECT", probe)
                || client.may_alert(probe)
                || server.may_alert(probe),
        )
    }
}

/// The plans of Squid's predefined `useragent` and `referrer` formats, compiled on first use.
static SQUID_USERAGENT: (&str, OnceLock<Option<PlanParser>>) = ("useragent", OnceLock::new());
static SQUID_REFERRER: (&str, OnceLock<Option<PlanParser>>) = ("referrer", OnceLock::new());

fn squid_predefined(
    (name, plan): &'static (&'static str, OnceLock<Option<PlanParser>>),
) -> Option<&'static PlanParser> {
    plan.get_or_init(|| FormatPlan::squid_predefined(name).map(PlanParser::new))
        .as_ref()
}

/// The shape of a native Squid line's fixed fields, which a line written with another
/// `logformat` does not have (ARCHITECTURE.md §2.2: no silent misparse): `elapsed` and
/// `size` are numbers, `action` is `CODE/status` with a numeric status, `method` is a
/// request method. Returns the status digits.
fn squid_shape<'a>(
    elapsed: &[u8],
    action: &'a [u8],
    size: &[u8],
    method: &[u8],
) -> Result<&'a [u8], ParseError> {
    let digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    if !digits(elapsed) {
        return Err(ParseError::new("elapsed time is not a number"));
    }
    let code = memchr::memchr(b'/', action)
        .map(|slash| &action[slash + 1..])
        .filter(|code| digits(code))
        .ok_or(ParseError::new("result code is not ACTION/status"))?;
    if !digits(size) {
        return Err(ParseError::new("size is not a number"));
    }
    if !is_method(method) {
        return Err(ParseError::new("not a request method"));
    }
    Ok(code)
}

/// What follows the first `/` of `b` (`HIER_DIRECT/192.0.2.1` → `192.0.2.1`).
#[inline]
fn after_slash(b: &[u8]) -> Option<&[u8]> {
    let slash = match b.len() {
        16.. => match byte_mask16(b, b'/') {
            0 => memchr::memchr(b'/', &b[16..]).map(|i| i + 16),
            m => Some(m.trailing_zeros() as usize),
        },
        _ => memchr::memchr(b'/', b),
    }?;
    b.get(slash + 1..)
}

/// Apache/nginx/Traefik CLF and combined, optionally prefixed by `vhost[:port]`; nginx
/// error-log lines are understood too.
#[derive(Debug, Clone, Copy, Default)]
pub struct CombinedParser;

/// A quoted field at the start of `b` (after whitespace): its content and the rest.
fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let b = trim(b);
    let inner = b.strip_prefix(b"\"")?;
    let end = closing_quote(inner)?;
    Some((&inner[..end], &inner[end + 1..]))
}

impl LineParser for CombinedParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim(trim_eol(line));
        if line.is_empty() || line[0] == b'#' {
            return Ok(None);
        }
        let l = Line::new(line);
        if is_slash_date(line) {
            return nginx_error(line);
        }
        if line[0] == b'[' {
            return apache_error(line);
        }
        if find(line, b", client: ").is_some() {
            // nginx error log behind a syslog prefix (`host nginx[1]: 2015/01/21 ...`)
            if let Some(i) = (0..line.len().saturating_sub(19)).find(|&i| is_slash_date(&line[i..]))
            {
                return nginx_error(&line[i..]);
            }
        }
        let lb = memchr::memchr(b'[', line).ok_or(ParseError::new("no timestamp"))?;
        let mut toks = [&b""[..]; 4];
        let mut n = 0;
        for tok in Tokens::new(&line[..lb]) {
            if n == toks.len() {
                return Err(ParseError::new("bad prefix"));
            }
            toks[n] = tok;
            n += 1;
        }
        if n == 0 {
            return Err(ParseError::new("too few fields"));
        }
        let (vhost, client) =
            if parse_ip(toks[0]).is_none() && n >= 2 && parse_ip(toks[1]).is_some() {
                (Some(toks[0]), toks[1])
            } else {
                (None, toks[0])
            };
        let after = &line[lb + 1..];
        let rb = memchr::memchr(b']', after).ok_or(ParseError::new("bad timestamp"))?;
        let ts = parse_clf_time(&after[..rb]).ok_or(ParseError::new("bad timestamp"))?;
        let mut o = Observation {
            timestamp_ns: Some(ts),
            dataset: "http",
            protocol: Some("http"),
            source_ip: parse_ip(client),
            ..Default::default()
        };
        let (req, rest) = quoted(&after[rb + 1..]).ok_or(ParseError::new("no request"))?;
        let mut toks = Tokens::new(rest);
        o.http_status = toks.next().and_then(parse_u16);
        let _size = toks.next();
        // referrer, then user agent
        if let Some((_, rest)) = quoted(toks.rest()) {
            if let Some((ua, _)) = quoted(rest) {
                if !ua.is_empty() && ua != b"-" {
                    o.user_agent = Some(l.text(ua));
                }
            }
        }
        if let Some((method, target)) = split_request(req) {
            o.http_method = Some(l.text(method));
            set_target(&l, &mut o, target, vhost, method == b"CONNECT");
        }
        if o.url_domain.is_none() {
            if let Some(vh) = vhost {
                o.url_domain = l.domain(split_host_port(vh).0);
            }
        }
        Ok(Some(o))
    }

    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        // The same steps as `parse` for a plain access-log line; error logs, vhost-prefixed
        // lines (whose URL `parse` assembles) and text that is not UTF-8 are left to it.
        let line = trim(trim_eol(line));
        if line.is_empty() || line[0] == b'#' || line[0] == b'[' || is_slash_date(line) {
            return Screened::Unsure;
        }
        if find(line, b", client: ").is_some() {
            return Screened::Unsure;
        }
        let Some(lb) = memchr::memchr(b'[', line) else {
            return Screened::Unsure;
        };
        let [client, second, _, _, fifth] = first_tokens::<5>(&line[..lb]);
        let (Some(client), None) = (client, fifth) else {
            return Screened::Unsure; // no field, or a bad prefix
        };
        let client = ScreenAddr::read(client);
        if matches!(client, ScreenAddr::Absent) && second.is_some_and(|t| parse_ip(t).is_some()) {
            return Screened::Unsure; // `vhost client ...`
        }
        let after = &line[lb + 1..];
        let Some(rb) = memchr::memchr(b']', after) else {
            return Screened::Unsure;
        };
        if parse_clf_time(&after[..rb]).is_none() {
            return Screened::Unsure;
        }
        let Some((req, rest)) = quoted(&after[rb + 1..]) else {
            return Screened::Unsure;
        };
        client.prefetch(probe);
        let mut toks = Tokens::new(rest);
        let _status = toks.next();
        let _size = toks.next();
        let user_agent = quoted(toks.rest())
            .and_then(|(_, rest)| quoted(rest))
            .map(|(ua, _)| ua)
            .filter(|ua| !ua.is_empty() && *ua != b"-");
        let ua_may_alert =
            user_agent.is_some_and(|ua| std::str::from_utf8(ua).is_err() || probe.pattern(ua));
        let target_may_alert = split_request(req)
            .is_some_and(|(method, target)| screen_target(target, method == b"CONNECT", probe));
        Screened::unless(ua_may_alert || target_may_alert || client.may_alert(probe))
    }
}

/// Does `b` start with `YYYY/MM/DD HH:MM:SS`?
fn is_slash_date(b: &[u8]) -> bool {
    b.len() >= 19
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[13] == b':'
        && b[..4].iter().all(u8::is_ascii_digit)
}

/// Apache error log: `[Thu Oct 13 12:24:49.880562 2022] [mod:level] [pid N] [client IP:PORT] msg`.
fn apache_error(line: &[u8]) -> Result<Option<Observation<'_>>, ParseError> {
    let rb = memchr::memchr(b']', line).ok_or(ParseError::new("bad timestamp"))?;
    let mut t = Tokens::new(&line[1..rb]);
    let (Some(_wd), Some(mon), Some(day), Some(time), Some(year)) =
        (t.next(), t.next(), t.next(), t.next(), t.next())
    else {
        return Err(ParseError::new("bad timestamp"));
    };
    // Re-use the BIND parser's `DD-Mon-YYYY HH:MM:SS.ffffff` form.
    let mut date = [b'0'; 11];
    let day = match day {
        [d] => [b'0', *d],
        [a, b] => [*a, *b],
        _ => return Err(ParseError::new("bad timestamp")),
    };
    date[..2].copy_from_slice(&day);
    date[2] = b'-';
    date[3..6].copy_from_slice(mon.get(..3).ok_or(ParseError::new("bad timestamp"))?);
    date[6] = b'-';
    date[7..11].copy_from_slice(year.get(..4).ok_or(ParseError::new("bad timestamp"))?);
    let ts =
        super::timestamps::parse_bind_time(&date, time).ok_or(ParseError::new("bad timestamp"))?;
    let mut o = Observation {
        timestamp_ns: Some(ts),
        dataset: "http",
        protocol: Some("http"),
        ..Default::default()
    };
    if let Some(i) = find(line, b"[client ") {
        let rest = &line[i + 8..];
        let end = memchr::memchr(b']', rest).unwrap_or(rest.len());
        let addr = &rest[..end];
        o.source_ip = parse_ip(addr).or_else(|| {
            let (h, p) = split_host_port(addr);
            o.source_port = p;
            parse_ip(h)
        });
    }
    Ok(Some(o))
}

/// `2021/12/01 13:53:33 [error] 31#31: *46 ..., client: 1.2.3.4, server: s, request: "GET /x HTTP/1.1", host: "h"`
fn nginx_error(line: &[u8]) -> Result<Option<Observation<'_>>, ParseError> {
    let l = Line::new(line);
    let mut t = Tokens::new(line);
    let (Some(date), Some(time)) = (t.next(), t.next()) else {
        return Err(ParseError::new("too few fields"));
    };
    let ts = parse_slash_datetime(date, time).ok_or(ParseError::new("bad timestamp"))?;
    let mut o = Observation {
        timestamp_ns: Some(ts),
        dataset: "http",
        protocol: Some("http"),
        ..Default::default()
    };
    // The client is the last `, client: IP, server: ` (a user name in the message may
    // carry an injected copy earlier on the line; request targets cannot hold spaces).
    for i in memchr::memmem::rfind_iter(line, b", client: ") {
        let rest = &line[i + 10..];
        let end = memchr::memchr(b',', rest).unwrap_or(rest.len());
        if let Some(ip) = parse_ip(&rest[..end]) {
            if rest[end..].starts_with(b", server: ") || o.source_ip.is_none() {
                o.source_ip = Some(ip);
            }
            if rest[end..].starts_with(b", server: ") {
                break;
            }
        }
    }
    let mut vhost = None;
    if let Some(i) = find(line, b", host: ") {
        if let Some((h, _)) = quoted(&line[i + 8..]) {
            vhost = Some(h);
        }
    }
    if let Some(i) = find(line, b", request: ") {
        if let Some((req, _)) = quoted(&line[i + 11..]) {
            if let Some((method, target)) = split_request(req) {
                o.http_method = Some(l.text(method));
                set_target(&l, &mut o, target, vhost, method == b"CONNECT");
            }
        }
    }
    if o.url_domain.is_none() {
        if let Some(vh) = vhost {
            o.url_domain = l.domain(split_host_port(vh).0);
        }
    }
    Ok(Some(o))
}

#[cfg(test)]
mod tests {
    use super::super::check_screen;
    use super::*;
    use proptest::prelude::*;

    fn squidish() -> impl Strategy<Value = Vec<u8>> {
        let pick =
            |v: Vec<&'static str>| prop::sample::select(v).prop_map(|s| s.as_bytes().to_vec());
        let field = prop_oneof![
            pick(vec![
                "1157689312.049",
                "1157689312",
                "12x.5",
                "#Fields",
                "-1.0",
                ""
            ]),
            pick(vec!["5006", "0", "-"]),
            pick(vec![
                "10.0.0.1",
                "::1",
                "[2001:db8::2]",
                "010.1.1.1",
                "host",
                "-"
            ]),
            pick(vec!["TCP_MISS/200", "NONE/000", "TCP_DENIED/403"]),
            pick(vec!["GET", "CONNECT", "POST", "get"]),
            pick(vec![
                "http://Evil.Example./a?b=1",
                "http://evil.example/a?b=1",
                "https://a-b.example/",
                "http://x1.example",
                "http://user@evil.example:8080/x#f",
                "https://[2001:db8::1]:443/p",
                "http://203.0.113.9/",
                "http://",
                "ftp://x.example",
                "login.example:443",
                "Login.Example.",
                "[2001:db8::3]:443",
                "/only/path?q",
                "evil..example:80",
                "a b",
                "-",
                "http://\u{e9}x.example/\u{fc}",
            ]),
            pick(vec![
                "DIRECT/198.51.100.1",
                "HIER_NONE/-",
                "FIRST_UP_PARENT/proxy.example",
                "DIRECT/::2",
                "-"
            ]),
            prop::collection::vec(any::<u8>(), 0..6),
        ];
        let sep = pick(vec![" ", "  ", "\t", " \t "]);
        prop::collection::vec((field, sep), 0..12).prop_map(|parts| {
            let mut line = Vec::new();
            for (f, s) in parts {
                line.extend_from_slice(&f);
                line.extend_from_slice(&s);
            }
            line
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// `screen` asks exactly what the correlator would look up after `parse`, and is
        /// `Clean` only for lines `parse` turns into an observation.
        #[test]
        fn squid_screen_asks_what_parse_yields(line in squidish(), well_formed in any::<bool>()) {
            let line = if well_formed {
                let mut l = b"1157689312.049 5 10.1.2.3 TCP_MISS/200 9 GET ".to_vec();
                l.extend_from_slice(&line);
                l
            } else {
                line
            };
            let parsed = SquidParser.parse(&line);
            match check_screen(&SquidParser, &line).map_err(TestCaseError::fail)? {
                true => {}
                false => {
                    // Only for lines `parse` does not turn into an observation, or whose
                    // fields are not UTF-8 / use `logformat combined` / are four tokens
                    // (`logformat referrer`, parsed by its plan, not screened).
                    let ok = matches!(parsed, Ok(Some(_)));
                    let referrer = matches!(
                        first_tokens::<5>(trim_eol(&line)),
                        [Some(_), Some(_), Some(_), Some(_), None]
                    );
                    prop_assert!(
                        !ok || referrer || std::str::from_utf8(&line).is_err()
                            || parse_epoch(Tokens::new(&line).next().unwrap_or_default()).is_none(),
                        "needlessly unsure: {:?}", String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }

    fn combinedish() -> impl Strategy<Value = Vec<u8>> {
        let pick = |v: Vec<&'static str>| prop::sample::select(v).prop_map(String::from);
        (
            pick(vec![
                "",
                "",
                "www.example.org ",
                "www.example.org:8080 ",
                "2001:db8::5 ",
            ]),
            pick(vec![
                "10.0.0.1",
                "::1",
                "host",
                "-",
                "203.0.113.7",
                "010.1.1.1",
            ]),
            pick(vec![" - - ", " - frank ", " ", " a b c d "]),
            pick(vec![
                "[10/Oct/2000:13:55:36 -0700]",
                "[10/Oct/2000:13:55:36 +0000]",
                "[10/Foo/2000:13:55:36 -0700]",
                "[bad]",
                "",
            ]),
            pick(vec![
                " \"GET http://evil.example/a?b=1 HTTP/1.1\"",
                " \"GET http://Evil.Example./x HTTP/1.0\"",
                " \"GET /only/path?q HTTP/1.1\"",
                " \"CONNECT login.example:443 HTTP/1.1\"",
                " \"get /x HTTP/1.1\"",
                " \"-\"",
                " \"GET https://[2001:db8::1]:443/p HTTP/2.0\"",
                " \"POST http://\u{e9}x.example/\u{fc} HTTP/1.1\"",
                " \"GET /a\\\"b HTTP/1.1\"",
                " \"GET http://a.example",
            ]),
            pick(vec![" 200 2326", " 404 -", " - -", ""]),
            pick(vec![
                " \"-\" \"Mozilla/5.0\"",
                " \"http://ref.example/\" \"curl/8.0\"",
                " \"-\" \"-\"",
                " \"-\" \"\"",
                " \"-\"",
                "",
            ]),
            prop::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(vhost, client, mid, time, req, status, tail, junk)| {
                let mut line =
                    format!("{vhost}{client}{mid}{time}{req}{status}{tail}").into_bytes();
                line.extend_from_slice(&junk);
                line
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The combined-log screen, like the Squid one: it asks exactly what the correlator
        /// would look up after `parse`, and is `Clean` only for lines `parse` turns into an
        /// observation.
        #[test]
        fn combined_screen_asks_what_parse_yields(line in combinedish()) {
            check_screen(&CombinedParser, &line).map_err(TestCaseError::fail)?;
        }
    }

    /// The common combined line is screened (not merely passed on to `parse`).
    #[test]
    fn combined_screen_settles_plain_lines() {
        let line = b"203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] \"GET http://evil.example/a?b=1 HTTP/1.1\" 200 2326 \"-\" \"Mozilla/5.0\"\n";
        // Clean when every lookup answers "no", and (checked inside) unsure when they may hit.
        assert_eq!(check_screen(&CombinedParser, line), Ok(true));
        // A vhost-prefixed line is left to `parse`, which builds its URL.
        let vhost = b"www.example.org 203.0.113.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 200 1 \"-\" \"-\"";
        assert_eq!(check_screen(&CombinedParser, vhost), Ok(false));
    }

    #[test]
    fn squid_line() {
        let l = b"1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/175.16.199.115 -\n";
        let o = SquidParser.parse(l).unwrap().unwrap();
        assert_eq!(o.url_domain.as_deref(), Some("login.yahoo.com"));
        assert_eq!(o.destination_port, Some(443));
        assert_eq!(o.destination_ip, Some("175.16.199.115".parse().unwrap()));
        assert_eq!(o.http_status, Some(200));
        assert!(o.url_full.is_none());
        let l = b"1157689320.327   2864 10.105.21.199 TCP_MISS/200 10182 GET http://www.goonernews.com/a?b=1 badeyek DIRECT/175.16.199.61 text/html";
        let o = SquidParser.parse(l).unwrap().unwrap();
        assert!(matches!(o.url_full, Some(std::borrow::Cow::Borrowed(_))));
        assert_eq!(
            o.url_full.as_deref(),
            Some("http://www.goonernews.com/a?b=1")
        );
        assert_eq!(o.url_path.as_deref(), Some("/a"));
        assert_eq!(o.http_method.as_deref(), Some("GET"));
        assert_eq!(
            SquidParser.parse(b"x y").unwrap_err().reason,
            "bad timestamp"
        );
        // A path that is not a slice of the line ("/" for a bare authority) is still right.
        let l = b"1157689320.327 1 10.0.0.1 TCP_MISS/200 1 GET http://a.example - DIRECT/- -";
        let o = SquidParser.parse(l).unwrap().unwrap();
        assert_eq!(o.url_path.as_deref(), Some("/"));
        assert_eq!(o.url_full.as_deref(), Some("http://a.example"));
        // Squid `logformat combined`
        let l = br#"192.0.2.7 - - [08/Jun/2020:08:04:43 +0000] "GET http://Evil.example/x?y HTTP/1.1" 200 3 "-" "ua" TCP_MISS:HIER_DIRECT"#;
        let o = SquidParser.parse(l).unwrap().unwrap();
        assert_eq!(o.dataset, "proxy");
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(o.url_full.as_deref(), Some("http://Evil.example/x?y"));
        assert_eq!(o.source_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(
            SquidParser.parse(b"1.5 2").unwrap_err().reason,
            "too few fields"
        );
    }

    #[test]
    fn combined_vhost_variants() {
        let l = br#"www.crowdsec11.net:8080 192.168.1.1 - - [08/Jun/2020:08:04:43 +0000] "GET /t/x.JPG?q HTTP/1.1" 301 0 "-" "curl/7""#;
        let o = CombinedParser.parse(l).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(o.url_domain.as_deref(), Some("www.crowdsec11.net"));
        assert_eq!(
            o.url_full.as_deref(),
            Some("http://www.crowdsec11.net:8080/t/x.JPG?q")
        );
        assert_eq!(o.url_path.as_deref(), Some("/t/x.JPG"));
        assert_eq!(o.user_agent.as_deref(), Some("curl/7"));
        let l = br#"1.2.3.4 - - [08/Jun/2020:08:04:43 +0000] "\x16\x03\x01" 400 0 "-" "-""#;
        let o = CombinedParser.parse(l).unwrap().unwrap();
        assert_eq!(o.http_status, Some(400));
        assert!(o.http_method.is_none());
        assert_eq!(
            CombinedParser
                .parse(b"1.2.3.4 - - [bad] \"GET / HTTP/1.1\" 200 1")
                .unwrap_err()
                .reason,
            "bad timestamp"
        );
    }
}
