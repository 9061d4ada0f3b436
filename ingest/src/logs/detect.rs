//! Format auto-detection from the first lines of a file.

use super::address::parse_ip;
use super::panos::PanosParser;
use super::timestamps::parse_epoch;
use super::tokens::{find, first_tokens, trim, trim_eol, Tokens};
use super::umbrella::UmbrellaParser;
use super::{LineParser, LogFormat};

/// How many lines of the head are looked at.
const MAX_LINES: usize = 50;

/// Guess the format of a file from its first bytes (the first ~32 KiB is plenty).
///
/// Each non-empty, non-comment line votes for the format it looks like; the format with
/// most votes wins. A Zeek header or a W3C `#Fields:` directive decides at once. `None`
/// when no line looks like a format we know (the caller then falls back to
/// [`LogFormat::Raw`]).
pub fn detect_format(head: &[u8]) -> Option<LogFormat> {
    detect_format_explained(head).map(|d| d.format)
}

/// What [`detect_format_explained`] found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The format chosen.
    pub format: LogFormat,
    /// Why, in words for the scan summary.
    pub reason: String,
    /// The format with the next most votes, if any line voted for another.
    pub runner_up: Option<LogFormat>,
}

/// [`detect_format`], saying why the format was chosen (for the scan summary).
pub fn detect_format_explained(head: &[u8]) -> Option<Detection> {
    let mut votes = [0usize; LogFormat::ALL.len()];
    let mut seen = 0;
    for line in head.split(|&b| b == b'\n') {
        let line = trim(trim_eol(line));
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b"#separator") || line.starts_with(b"#fields") {
            return Some(Detection {
                format: LogFormat::ZeekTsv,
                reason: "a Zeek #fields header".into(),
                runner_up: None,
            });
        }
        if line.starts_with(b"#Fields:") {
            return Some(Detection {
                format: LogFormat::W3c,
                reason: "a W3C #Fields: directive".into(),
                runner_up: None,
            });
        }
        if line[0] == b'#' {
            continue;
        }
        seen += 1;
        if seen > MAX_LINES {
            break;
        }
        if let Some(f) = classify(line) {
            let i = LogFormat::ALL.iter().position(|&x| x == f).unwrap_or(0);
            votes[i] += 1;
        }
    }
    let mut ranked: Vec<(usize, usize)> = votes
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .collect();
    // Most votes first; ties go to the earlier format in `ALL`.
    ranked.sort_by_key(|&(i, n)| (usize::MAX - n, i));
    let &(best, n) = ranked.first()?;
    let sampled = seen.min(MAX_LINES);
    Some(Detection {
        format: LogFormat::ALL[best],
        reason: format!(
            "{n} of {sampled} sampled line(s) look like {}",
            LogFormat::ALL[best]
        ),
        runner_up: ranked.get(1).map(|&(i, _)| LogFormat::ALL[i]),
    })
}

/// What one line looks like.
fn classify(line: &[u8]) -> Option<LogFormat> {
    if line[0] == b'{' {
        return Some(classify_json(line));
    }
    // Vendor formats with a tag or a strict shape first.
    if let Some(i) = find(line, b"CEF:") {
        let v = trim(&line[i + 4..]);
        if v.first().is_some_and(u8::is_ascii_digit) && v.get(1) == Some(&b'|') {
            return Some(LogFormat::Cef);
        }
    }
    if line.first().is_some_and(u8::is_ascii_digit)
        && line.get(1) == Some(&b'|')
        && line.iter().filter(|&&c| c == b'|').count() >= 7
    {
        return Some(LogFormat::Cef);
    }
    if find(line, b"LEEF:1.").is_some() || find(line, b"LEEF:2.").is_some() {
        return Some(LogFormat::Leef);
    }
    if find(line, b" PACKET ").is_some() && find(line, b"(0)").is_some() {
        return Some(LogFormat::WindowsDns);
    }
    if find(line, b"date=").is_some()
        && find(line, b" time=").is_some()
        && (find(line, b"logid=").is_some() || find(line, b"devname=").is_some())
    {
        return Some(LogFormat::Fortigate);
    }
    if memchr::memchr(b',', line).is_some() {
        if line[0] == b'"' && UmbrellaParser.parse(line).is_ok() {
            return Some(LogFormat::Umbrella);
        }
        if PanosParser.parse(line).is_ok() {
            return Some(LogFormat::Panos);
        }
    }
    // Squid's predefined `referrer` format: `time client referer url`.
    if let [Some(a), Some(b), Some(_), Some(_), None] = first_tokens::<5>(line) {
        if memchr::memchr(b'.', a).is_some() && parse_epoch(a).is_some() && parse_ip(b).is_some() {
            return Some(LogFormat::Squid);
        }
    }
    // Squid's predefined `useragent` format: `client [time] "agent"`, nothing after.
    let before_quote = line.split(|&c| c == b'"').next().unwrap_or_default();
    if let [Some(client), Some(_), Some(_), None] = first_tokens::<4>(before_quote) {
        if parse_ip(client).is_some()
            && line.ends_with(b"\"")
            && memchr::memchr(b'[', line).is_some()
            && line.iter().filter(|&&c| c == b'"').count() == 2
        {
            return Some(LogFormat::Squid);
        }
    }
    // Squid native: epoch.millis elapsed client action/code ...
    let mut t = Tokens::new(line);
    if let (Some(a), Some(b), Some(_c), Some(d)) = (t.next(), t.next(), t.next(), t.next()) {
        if memchr::memchr(b'.', a).is_some()
            && parse_epoch(a).is_some()
            && b.iter().all(u8::is_ascii_digit)
            && memchr::memchr(b'/', d).is_some()
        {
            return Some(LogFormat::Squid);
        }
    }
    if find(line, b"dnsmasq[").is_some() || find(line, b"dnsmasq: ").is_some() {
        return Some(LogFormat::Dnsmasq);
    }
    let lower_has = |needle: &[u8]| {
        line.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    // Apache error log with a client
    if line[0] == b'[' && find(line, b"] [client ").is_some() {
        return Some(LogFormat::Combined);
    }
    if find(line, b"client ").is_some() || find(line, b"named[").is_some() {
        if lower_has(b"infoblox") || find(line, b" response: ").is_some() {
            return Some(LogFormat::Infoblox);
        }
        if find(line, b"client ").is_some() {
            return Some(LogFormat::Bind);
        }
    }
    // CLF: `[dd/Mon/yyyy:hh:mm:ss zone] "`
    if let Some(lb) = memchr::memchr(b'[', line) {
        let d = &line[lb + 1..];
        if d.len() > 21 && d[2] == b'/' && d[6] == b'/' && d[11] == b':' {
            if let Some(rb) = memchr::memchr(b']', d) {
                if trim(&d[rb + 1..]).first() == Some(&b'"') {
                    return Some(LogFormat::Combined);
                }
            }
        }
    }
    // nginx error log with a client
    if line.len() > 20
        && line[4] == b'/'
        && line[7] == b'/'
        && find(line, b", client: ").is_some()
        && find(line, b"request: ").is_some()
    {
        return Some(LogFormat::Combined);
    }
    // A BIND file-form line without a client (`28-Sep-2015 11:35:12.123 queries: ...`).
    let mut t = Tokens::new(line);
    if let (Some(d), Some(tm)) = (t.next(), t.next()) {
        if super::timestamps::parse_bind_time(d, tm).is_some() {
            return Some(LogFormat::Bind);
        }
    }
    None
}

fn classify_json(line: &[u8]) -> LogFormat {
    let has = |k: &[u8]| find(line, k).is_some();
    if has(b"\"zscalernss-web\"") || (has(b"\"eurl\"") && has(b"\"reqmethod\"")) {
        LogFormat::Zscaler
    } else if has(b"\"event_type\"") && (has(b"\"timestamp\"") || has(b"\"src_ip\"")) {
        LogFormat::SuricataEve
    } else if has(b"\"_path\"")
        || has(b"\"id.orig_h\"")
        || (has(b"\"uid\"") && has(b"\"ts\""))
        || (has(b"\"_raw\"") && has(b"id.orig_h"))
    {
        LogFormat::ZeekJson
    } else {
        LogFormat::JsonLines
    }
}
