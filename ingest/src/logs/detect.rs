//! Format auto-detection from the first lines of a file.

use super::address::parse_ip;
use super::timestamps::parse_epoch;
use super::tokens::{find, trim, trim_eol, Tokens};
use super::LogFormat;

/// How many lines of the head are looked at.
const MAX_LINES: usize = 50;

/// Guess the format of a file from its first bytes (the first ~32 KiB is plenty).
///
/// Each non-empty, non-comment line votes for the format it looks like; the format with
/// most votes wins. A Zeek header decides at once. `None` when no line looks like a
/// format we know (the caller then falls back to [`LogFormat::Raw`]).
pub fn detect_format(head: &[u8]) -> Option<LogFormat> {
    let mut votes = [0usize; LogFormat::ALL.len()];
    let mut seen = 0;
    for line in head.split(|&b| b == b'\n') {
        let line = trim(trim_eol(line));
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b"#separator") || line.starts_with(b"#fields") {
            return Some(LogFormat::ZeekTsv);
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
    let (best, &n) = votes
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, usize::MAX - i))?;
    (n > 0).then(|| LogFormat::ALL[best])
}

/// What one line looks like.
fn classify(line: &[u8]) -> Option<LogFormat> {
    if line[0] == b'{' {
        return Some(classify_json(line));
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
    let _ = parse_ip;
    None
}

fn classify_json(line: &[u8]) -> LogFormat {
    let has = |k: &[u8]| find(line, k).is_some();
    if has(b"\"event_type\"") && (has(b"\"timestamp\"") || has(b"\"src_ip\"")) {
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
