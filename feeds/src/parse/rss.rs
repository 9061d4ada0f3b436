//! RSS 2.0 / Atom items: indicators from the description (a `pattern`, or malc0de-style
//! `Key: value, Key: value` pairs), falling back to the item link.

use super::{apply_field, FeedRecord, ParsedFeed, RecordMeta};
use crate::config::{FeedConfig, Format};
use matcher::IndicatorType;
use memchr::memmem;

/// Text of the first `<tag ...>...</tag>` inside `item` (entities decoded, CDATA unwrapped).
fn tag_text(item: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(p) = item[from..].find(&open) {
        let start = from + p;
        let after = start + open.len();
        let next = item.as_bytes().get(after).copied();
        if !matches!(next, Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')) {
            from = after;
            continue;
        }
        let gt = item[after..].find('>')? + after;
        if item.as_bytes().get(gt.wrapping_sub(1)) == Some(&b'/') {
            // <link href="..."/> (Atom)
            let attrs = &item[after..gt];
            return attr(attrs, "href");
        }
        let close = format!("</{tag}>");
        let end = item[gt + 1..].find(&close)? + gt + 1;
        let raw = item[gt + 1..end].trim();
        let raw = raw
            .strip_prefix("<![CDATA[")
            .and_then(|r| r.strip_suffix("]]>"))
            .map_or_else(|| decode_entities(raw), str::to_string);
        return Some(raw);
    }
    None
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    let p = attrs.find(&key)? + key.len();
    let rest = &attrs[p..];
    let q = rest.chars().next()?;
    if q != '"' && q != '\'' {
        return None;
    }
    let end = rest[1..].find(q)? + 1;
    Some(decode_entities(&rest[1..end]))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// malc0de-style `Key: value` pairs → (value, hint).
fn description_pairs(desc: &str) -> Vec<(String, Option<IndicatorType>)> {
    let mut out = Vec::new();
    for part in desc.split(", ") {
        let Some((k, v)) = part.split_once(':') else {
            continue;
        };
        // malc0de marks shortened values with " (...)".
        let v = v.trim().trim_end_matches("(...)").trim_end();
        if v.is_empty() {
            continue;
        }
        let hint = match k.trim().to_ascii_lowercase().as_str() {
            "url" => Some(IndicatorType::Url),
            "ip address" | "ip" => None,
            "md5" => Some(IndicatorType::Md5),
            "sha1" => Some(IndicatorType::Sha1),
            "sha256" => Some(IndicatorType::Sha256),
            "domain" | "host" | "hostname" => Some(IndicatorType::Fqdn),
            _ => continue,
        };
        out.push((v.to_string(), hint));
    }
    out
}

/// Parse RSS/Atom.
pub(crate) fn parse(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::Rss);
    let text = String::from_utf8_lossy(bytes);
    let text: &str = &text;
    let re = feed
        .pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    let names: Vec<&str> = if feed.values.is_empty() {
        vec!["indicator"]
    } else {
        feed.values.iter().map(String::as_str).collect()
    };
    let (open, close) = if memmem::find(text.as_bytes(), b"<item").is_some() {
        ("<item", "</item>")
    } else {
        ("<entry", "</entry>")
    };
    let mut pos = 0;
    let mut line = 1;
    let mut counted_to = 0;
    while let Some(p) = text[pos..].find(open) {
        let start = pos + p;
        line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted_to..start]).count();
        counted_to = start;
        let Some(e) = text[start..].find(close) else {
            out.reject(line, "item is not closed (truncated feed?)");
            break;
        };
        let end = start + e + close.len();
        let item = &text[start..end];
        pos = end;
        let title = tag_text(item, "title");
        let link = tag_text(item, "link");
        let desc = tag_text(item, "description")
            .or_else(|| tag_text(item, "summary"))
            .or_else(|| tag_text(item, "content"))
            .unwrap_or_default();
        let base = RecordMeta {
            description: title.clone(),
            reference: link.clone(),
            ..RecordMeta::default()
        };
        if let Some(re) = &re {
            let hay = format!("{} {}", title.as_deref().unwrap_or(""), desc);
            let Some(caps) = re.captures(&hay) else {
                out.reject(line, "item does not match the pattern");
                continue;
            };
            let mut meta = base.clone();
            let mut itype = None;
            let mut value = None;
            for (i, name) in names.iter().enumerate() {
                let Some(m) = caps.get(i + 1) else { continue };
                if *name == "indicator" {
                    value = Some(m.as_str().to_string());
                } else {
                    apply_field(&mut meta, &mut itype, name, m.as_str(), 1.0);
                }
            }
            match value {
                Some(v) => {
                    let mut r = FeedRecord::new(line, v).with_meta(meta);
                    r.itype = itype;
                    out.push(r);
                }
                None => out.reject(line, "the pattern captured no indicator"),
            }
            continue;
        }
        let pairs = description_pairs(&desc);
        if pairs.is_empty() {
            match link {
                Some(l) => out.push(FeedRecord::new(line, l).with_meta(RecordMeta {
                    description: title,
                    ..RecordMeta::default()
                })),
                None => out.reject(line, "item has no link and no recognisable description"),
            }
            continue;
        }
        for (v, hint) in pairs {
            let mut r = FeedRecord::new(line, v).with_meta(base.clone());
            r.itype = hint;
            out.push(r);
        }
    }
    out
}
