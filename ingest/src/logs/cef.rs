//! ArcSight CEF and IBM QRadar LEEF, with or without a syslog (or ISO time) prefix.
//!
//! CEF: `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|key=value key=value`;
//! `\|` and `\\` are escapes in the header, `\=`, `\\`, `\n`, `\r` in extension values; a
//! value runs to the blank before the next `key=` (an `=` with no blank before it since the
//! last key stays in the value, as lenient parsers read `msg=status=ok`).
//! LEEF: `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v`; LEEF 2.0 may add a delimiter
//! field after the event ID (`^|`, `x40|`, `0x40|`), else the delimiter is a tab.

use super::keyvalue::{fill, slot, Pair, Slot};
use super::timestamps::parse_iso8601;
use super::tokens::{find, trim_eol, Line};
use super::{LineParser, ParseError};
use crate::Observation;
use std::borrow::Cow;

/// CEF extension keys (full and short names, ArcSight's dictionary) that trawl observes.
const CEF_KEYS: &[(&str, Slot)] = &[
    ("src", Slot::SourceIp),
    ("sourceAddress", Slot::SourceIp),
    ("c6a2", Slot::SourceIp),
    ("dst", Slot::DestinationIp),
    ("destinationAddress", Slot::DestinationIp),
    ("c6a3", Slot::DestinationIp),
    ("spt", Slot::SourcePort),
    ("sourcePort", Slot::SourcePort),
    ("dpt", Slot::DestinationPort),
    ("destinationPort", Slot::DestinationPort),
    ("request", Slot::Url),
    ("requestUrl", Slot::Url),
    ("requestMethod", Slot::Method),
    ("method", Slot::Method),
    ("requestClientApplication", Slot::UserAgent),
    ("dhost", Slot::Host),
    ("destinationHostName", Slot::Host),
    ("destinationDnsDomain", Slot::Host),
    ("fileHash", Slot::Hash),
    ("oldFileHash", Slot::Hash),
    ("proto", Slot::Transport),
    ("transportProtocol", Slot::Transport),
    ("rt", Slot::Time),
    ("receiptTime", Slot::Time),
    ("deviceReceiptTime", Slot::Time),
    ("start", Slot::Time),
];

/// LEEF attribute keys (IBM's predefined list) that trawl observes.
const LEEF_KEYS: &[(&str, Slot)] = &[
    ("src", Slot::SourceIp),
    ("srcIP", Slot::SourceIp),
    ("dst", Slot::DestinationIp),
    ("dstIP", Slot::DestinationIp),
    ("srcPort", Slot::SourcePort),
    ("spt", Slot::SourcePort),
    ("dstPort", Slot::DestinationPort),
    ("dpt", Slot::DestinationPort),
    ("url", Slot::Url),
    ("request", Slot::Url),
    ("requestMethod", Slot::Method),
    ("userAgent", Slot::UserAgent),
    ("dhost", Slot::Host),
    ("fileHash", Slot::Hash),
    ("proto", Slot::Transport),
    ("devTime", Slot::Time),
];

/// A vendor key naming a file hash (`TrendMicroDsFileMD5`, ...), or a `csN` whose label
/// names one (`cs2Label=sha1`).
fn is_hash_key(key: &[u8], labels: &[(&[u8], Cow<'_, str>)]) -> bool {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with(b"filemd5") || lower.ends_with(b"filesha1") || lower.ends_with(b"filesha256")
    {
        return true;
    }
    if key.len() == 3 && key.starts_with(b"cs") && key[2].is_ascii_digit() {
        return labels.iter().any(|(k, v)| {
            k.len() == 8
                && k.starts_with(key)
                && k.ends_with(b"Label")
                && matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "md5" | "sha1" | "sha256"
                )
        });
    }
    false
}

/// The timestamp of a prefix before `CEF:`/`LEEF:`: an ISO 8601 first token.
fn prefix_time(prefix: &[u8]) -> Option<i64> {
    let first = prefix.split(|&c| c == b' ').find(|t| !t.is_empty())?;
    let first = first.strip_prefix(b"<").map_or(first, |r| {
        r.iter().position(|&c| c == b'>').map_or(r, |i| &r[i + 1..])
    });
    parse_iso8601(first)
}

/// Split a header into `n` `|`-separated fields (`\|` and `\\` escaped); returns the fields
/// and the rest after the `n`-th `|`.
fn header(b: &[u8], n: usize) -> Option<(Vec<&[u8]>, &[u8])> {
    let mut fields = Vec::with_capacity(n);
    let mut start = 0;
    let mut i = 0;
    while fields.len() < n {
        match b.get(i)? {
            b'\\' => i += 2,
            b'|' => {
                fields.push(&b[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    Some((fields, b.get(start..)?))
}

/// CEF extension value unescaping (`\=`, `\\`, `\n`, `\r`, `\|`); borrowed when there is
/// nothing to unescape.
fn cef_unescape<'a>(l: &Line<'a>, v: &'a [u8]) -> Cow<'a, str> {
    if memchr::memchr(b'\\', v).is_none() {
        return l.text(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match (v[i], v.get(i + 1)) {
            (b'\\', Some(&c @ (b'=' | b'\\' | b'|'))) => {
                out.push(c);
                i += 2;
            }
            (b'\\', Some(b'n')) => {
                out.push(b'\n');
                i += 2;
            }
            (b'\\', Some(b'r')) => {
                out.push(b'\r');
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// CEF extension pairs: each `=` that has a blank between it and the previous key's `=`
/// starts a new key (the text after that blank).
fn cef_pairs(ext: &[u8]) -> Result<Vec<Pair<'_>>, ParseError> {
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    let key_start = 0;
    let mut value_start: Option<usize> = None;
    let mut current_key: &[u8] = &[];
    let mut i = 0;
    while i < ext.len() {
        match ext[i] {
            b'\\' => i += 2,
            b'=' => {
                let start = match value_start {
                    None => Some(key_start),
                    // The last blank between the previous key's value start and here.
                    Some(vs) => ext[vs..i]
                        .iter()
                        .rposition(|&c| c == b' ')
                        .map(|p| vs + p + 1),
                };
                if let Some(ks) = start {
                    if let Some(vs) = value_start {
                        let end = ks.saturating_sub(1).max(vs);
                        pairs.push((current_key, trim_value(&ext[vs..end])));
                    }
                    let key = trim_key(&ext[ks..i]);
                    if key.is_empty() {
                        return Err(ParseError::new("extension value without a key"));
                    }
                    current_key = key;
                    value_start = Some(i + 1);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    match value_start {
        Some(vs) => pairs.push((current_key, trim_value(ext.get(vs..).unwrap_or_default()))),
        None if ext.iter().all(u8::is_ascii_whitespace) => {}
        None => return Err(ParseError::new("extension without key=value")),
    }
    Ok(pairs)
}

fn trim_key(k: &[u8]) -> &[u8] {
    let s = k
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(k.len());
    &k[s..]
}

fn trim_value(v: &[u8]) -> &[u8] {
    let e = v
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(0, |p| p + 1);
    &v[..e]
}

/// Fill `o` from `pairs` by `table`, plus hash-named vendor keys.
fn apply<'a>(
    o: &mut Observation<'a>,
    l: &Line<'a>,
    pairs: &[Pair<'a>],
    table: &[(&str, Slot)],
    unescape: fn(&Line<'a>, &'a [u8]) -> Cow<'a, str>,
) -> Result<(), ParseError> {
    let labels: Vec<(&[u8], Cow<'_, str>)> = pairs
        .iter()
        .filter(|(k, _)| k.ends_with(b"Label"))
        .map(|&(k, v)| (k, l.text(v)))
        .collect();
    for &(k, v) in pairs {
        let s = match slot(table, k) {
            Some(s) => s,
            None if is_hash_key(k, &labels) => Slot::Hash,
            None => continue,
        };
        fill(o, s, unescape(l, v))?;
    }
    Ok(())
}

/// CEF lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct CefParser;

impl LineParser for CefParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return Ok(None);
        }
        let (prefix, body) = match find(line, b"CEF:") {
            Some(i) => (&line[..i], &line[i + 4..]),
            // crowdsec's sample without the `CEF:` tag: a version digit and a `|`.
            None if line.first().is_some_and(u8::is_ascii_digit) && line.get(1) == Some(&b'|') => {
                (&line[..0], line)
            }
            None => return Err(ParseError::new("no CEF: header")),
        };
        let (head, ext) = header(body, 7).ok_or(ParseError::new("incomplete CEF header"))?;
        let version = head.first().map(|v| v.trim_ascii()).unwrap_or_default();
        if version.is_empty() || !version.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::new("CEF version is not a number"));
        }
        let l = Line::new(line);
        let mut o = Observation {
            dataset: "cef",
            timestamp_ns: prefix_time(prefix),
            ..Default::default()
        };
        let pairs = cef_pairs(ext)?;
        apply(&mut o, &l, &pairs, CEF_KEYS, cef_unescape)?;
        Ok(Some(o))
    }
}

/// LEEF lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeefParser;

/// A LEEF 2.0 delimiter field: one character, or its hex code (`x40`, `0x40`).
fn leef_delimiter(f: &[u8]) -> Option<u8> {
    match f {
        [c] => Some(*c),
        _ => {
            let hex = f.strip_prefix(b"0x").or_else(|| f.strip_prefix(b"x"))?;
            let s = std::str::from_utf8(hex).ok()?;
            u8::from_str_radix(s, 16).ok()
        }
    }
}

fn leef_text<'a>(l: &Line<'a>, v: &'a [u8]) -> Cow<'a, str> {
    l.text(v)
}

impl LineParser for LeefParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return Ok(None);
        }
        let i = find(line, b"LEEF:").ok_or(ParseError::new("no LEEF: header"))?;
        let (prefix, body) = (&line[..i], &line[i + 5..]);
        let (head, mut ext) = header(body, 5).ok_or(ParseError::new("incomplete LEEF header"))?;
        let version = head.first().copied().unwrap_or_default();
        let mut delim = b'\t';
        if version.starts_with(b"2") {
            // An optional delimiter field: the text up to the next `|` when it has no `=`.
            if let Some(bar) = memchr::memchr(b'|', ext) {
                let field = &ext[..bar];
                if memchr::memchr(b'=', field).is_none() {
                    if let Some(d) = leef_delimiter(field) {
                        delim = d;
                    }
                    ext = &ext[bar + 1..];
                }
            }
        } else if !version.starts_with(b"1") {
            return Err(ParseError::new("unknown LEEF version"));
        }
        let l = Line::new(line);
        let mut o = Observation {
            dataset: "leef",
            timestamp_ns: prefix_time(prefix),
            ..Default::default()
        };
        let mut pairs = Vec::new();
        for pair in ext.split(|&c| c == delim) {
            let pair = trim_value(pair);
            if pair.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let eq = memchr::memchr(b'=', pair).ok_or(ParseError::new("attribute without ="))?;
            let key = trim_key(&pair[..eq]);
            if key.is_empty() {
                return Err(ParseError::new("attribute value without a key"));
            }
            pairs.push((key, &pair[eq + 1..]));
        }
        // `devTime` is read by its `devTimeFormat` when one is given; trawl reads the
        // common forms (epoch ms, ISO 8601, `Mon dd yyyy HH:mm:ss[.SSS] [zone]`).
        apply(&mut o, &l, &pairs, LEEF_KEYS, leef_text)?;
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_with_syslog_header_and_escapes() {
        let l = br"<14>Apr  7 10:10:10 host CEF: 0|Palo Alto Networks|PAN-OS|6.1.3|url|THREAT|1|rt=Apr 07 2017 00:10:10 GMT src=10.10.10.10 dst=20.20.20.20 spt=18371 dpt=443 request=www.example.com/x?y msg=a\=b c\\d requestClientApplication=Mozilla/5.0 (X11) fileHash=3395856CE81F2B7382DEE72602F798B642F14140";
        let o = CefParser.parse(l).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("10.10.10.10".parse().unwrap()));
        assert_eq!(o.destination_port, Some(443));
        assert_eq!(o.url_full.as_deref(), Some("http://www.example.com/x?y"));
        assert_eq!(o.url_domain.as_deref(), Some("www.example.com"));
        assert_eq!(o.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
        assert_eq!(
            o.file_sha1.as_deref(),
            Some("3395856ce81f2b7382dee72602f798b642f14140")
        );
        assert_eq!(o.timestamp_ns, Some(1_491_523_810_000_000_000));
        let pairs = cef_pairs(br"msg=status=ok reason=none a\=b=c").unwrap();
        assert_eq!(pairs[0], (&b"msg"[..], &b"status=ok"[..]));
        assert_eq!(pairs[1], (&b"reason"[..], &b"none"[..]));
        assert_eq!(pairs[2], (&br"a\=b"[..], &b"c"[..]));
        assert!(CefParser.parse(b"CEF:0|a|b|c|d|e|").is_err());
        assert!(CefParser
            .parse(b"CEF:0|a|b|c|d|e|f|act=Accept =0.0.0.0")
            .is_err());
        assert!(CefParser.parse(b"CEF:0|a|b|c|d|e|f|src=not-an-ip").is_err());
    }

    #[test]
    fn leef_delimiters() {
        let o = LeefParser
            .parse(b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1\tsrcPort=81\tdstPort=21")
            .unwrap()
            .unwrap();
        assert_eq!(o.source_ip, Some("192.0.2.0".parse().unwrap()));
        assert_eq!(o.destination_port, Some(21));
        let o = LeefParser
            .parse(b"LEEF:2.0|V|P|1|41|x40|src=10.0.0.1@url=http://evil.example/a@devTime=May 1 2016 09:29:11.356 -0400")
            .unwrap()
            .unwrap();
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(o.timestamp_ns, Some(1_462_109_351_356_000_000));
        assert!(LeefParser
            .parse(b"INVALID|Microsoft|x|y|z|src=1.2.3.4")
            .is_err());
    }
}
