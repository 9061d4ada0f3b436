//! csv / tsv / delimited (and csirtg, CIF CSV, MISP attribute CSV): quoted fields, `#`
//! comment headers (abuse.ch), header detection and column choice.

use super::{
    apply_field, guess_itype, is_comment, line_str, FeedRecord, Lines, ParsedFeed, RecordMeta,
};
use crate::config::{Column, FeedConfig, Format};
use matcher::IndicatorType;
use std::borrow::Cow;

/// Split one line into fields. Fields may be quoted (`"a, b"`, `""` for a quote), with
/// blanks around them (ThreatFox writes `", "`); unquoted fields are trimmed.
pub(crate) fn split_fields(line: &str, delim: u8) -> Result<Vec<Cow<'_, str>>, &'static str> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || (b[i] == b'\t' && delim != b'\t')) {
            i += 1;
        }
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let start = i;
            let mut owned: Option<String> = None;
            loop {
                match memchr::memchr(b'"', &b[i..]) {
                    None => return Err("unterminated quoted field"),
                    Some(q) => {
                        let q = i + q;
                        if b.get(q + 1) == Some(&b'"') {
                            let o = owned.get_or_insert_with(String::new);
                            o.push_str(line.get(i..=q).unwrap_or(""));
                            i = q + 2;
                        } else {
                            let field = match owned.take() {
                                Some(mut o) => {
                                    o.push_str(line.get(i..q).unwrap_or(""));
                                    Cow::Owned(o)
                                }
                                None => Cow::Borrowed(line.get(start..q).unwrap_or("")),
                            };
                            out.push(field);
                            i = q + 1;
                            break;
                        }
                    }
                }
            }
            // Skip to the delimiter.
            match memchr::memchr(delim, &b[i..]) {
                Some(d) => {
                    if !line.get(i..i + d).unwrap_or("").trim().is_empty() {
                        return Err("text after a closing quote");
                    }
                    i += d + 1;
                }
                None => {
                    if !line.get(i..).unwrap_or("").trim().is_empty() {
                        return Err("text after a closing quote");
                    }
                    return Ok(out);
                }
            }
        } else {
            match memchr::memchr(delim, &b[i..]) {
                Some(d) => {
                    out.push(Cow::Borrowed(line.get(i..i + d).unwrap_or("").trim()));
                    i += d + 1;
                }
                None => {
                    out.push(Cow::Borrowed(line.get(i..).unwrap_or("").trim()));
                    return Ok(out);
                }
            }
        }
    }
}

const CANDIDATES: [u8; 5] = [b',', b'\t', b'|', b';', b'#'];

/// Detect a delimiter from sample data lines: present in 90% of them with a constant
/// field count of at least 2, and with some column that looks like indicators.
pub(crate) fn detect(sample: &[&str]) -> Option<u8> {
    for &d in &CANDIDATES {
        let counts: Vec<usize> = sample
            .iter()
            .map(|l| split_fields(l, d).map_or(0, |f| f.len()))
            .collect();
        let Some(&mode) = counts
            .iter()
            .max_by_key(|c| counts.iter().filter(|x| x == c).count())
        else {
            continue;
        };
        if mode < 2 || counts.iter().filter(|&&c| c == mode).count() * 10 < sample.len() * 9 {
            continue;
        }
        let rows: Vec<Vec<Cow<str>>> = sample
            .iter()
            .filter_map(|l| split_fields(l, d).ok())
            .collect();
        if best_column(&rows).is_some() {
            return Some(d);
        }
    }
    None
}

/// The column (0-based) whose cells most often look like indicators; ties → leftmost.
fn best_column(rows: &[Vec<Cow<str>>]) -> Option<usize> {
    let width = rows.iter().map(Vec::len).max()?;
    let mut best: Option<(usize, usize)> = None;
    for c in 0..width {
        let hits = rows
            .iter()
            .filter(|r| r.get(c).is_some_and(|v| guess_itype(v).is_some()))
            .count();
        if hits * 2 > rows.len() && best.is_none_or(|(_, h)| hits > h) {
            best = Some((c, hits));
        }
    }
    best.map(|(c, _)| c)
}

const VALUE_HEADERS: &[&str] = &[
    "indicator",
    "ioc_value",
    "ioc",
    "value",
    "url",
    "domain",
    "fqdn",
    "hostname",
    "host",
    "dst_ip",
    "ip",
    "ip_address",
    "ipaddress",
    "ipaddr",
    "address",
    "sha256",
    "sha256_hash",
    "sha1",
    "md5",
    "md5_hash",
];

/// Auto-mapped metadata columns (used when the feed has no `map` for that target).
const AUTO_MAP: &[(&str, &[&str])] = &[
    (
        "first_seen",
        &[
            "first_seen_utc",
            "first_seen",
            "firstseen (utc)",
            "firstseen",
            "firsttime",
            "listingdate",
            "dateadded",
        ],
    ),
    (
        "last_seen",
        &[
            "last_seen_utc",
            "last_seen",
            "last_online",
            "lasttime",
            "lastseen",
        ],
    ),
    ("reference", &["reference"]),
    (
        "description",
        &["description", "listingreason", "threat", "threat_type"],
    ),
    ("tags", &["tags", "malware", "malware_printable"]),
    ("confidence", &["confidence_level", "confidence"]),
    ("itype", &["itype", "ioc_type", "indicator_type"]),
];

fn norm_header(h: &str) -> String {
    h.trim().trim_matches('"').trim().to_ascii_lowercase()
}

/// MISP attribute type → (accept, type hint).
pub(crate) fn misp_type(t: &str) -> Option<Option<IndicatorType>> {
    Some(match t {
        "ip-src" | "ip-dst" | "ip-src|port" | "ip-dst|port" => None,
        "domain" | "hostname" | "domain|ip" | "hostname|port" => Some(IndicatorType::Fqdn),
        "url" | "uri" | "link" => Some(IndicatorType::Url),
        "md5" | "filename|md5" => Some(IndicatorType::Md5),
        "sha1" | "filename|sha1" => Some(IndicatorType::Sha1),
        "sha256" | "filename|sha256" => Some(IndicatorType::Sha256),
        "sha512" | "filename|sha512" => Some(IndicatorType::Sha512),
        "email-src" | "email-dst" | "email" => Some(IndicatorType::Email),
        "x509-fingerprint-sha1" => Some(IndicatorType::X509Sha1),
        "ja3-fingerprint-md5" => Some(IndicatorType::Ja3),
        _ => return None,
    })
}

/// Split a MISP composite value (`ip|port`, `filename|hash`, `domain|ip`) into the
/// indicator parts we keep, with their hints.
pub(crate) fn misp_values<'a>(t: &str, v: &'a str) -> Vec<(&'a str, Option<IndicatorType>)> {
    let (a, b) = v.split_once('|').unwrap_or((v, ""));
    match t {
        "ip-src|port" | "ip-dst|port" => vec![(a, None)],
        "hostname|port" => vec![(a, Some(IndicatorType::Fqdn))],
        "domain|ip" => vec![(a, Some(IndicatorType::Fqdn)), (b, None)],
        t if t.starts_with("filename|") => vec![(b, misp_type(t).flatten())],
        _ => vec![(v, misp_type(t).flatten())],
    }
}

/// Parse delimited text.
pub(crate) fn parse(bytes: &[u8], feed: &FeedConfig, format: Format) -> ParsedFeed {
    let mut out = ParsedFeed::new(format);
    Delimited::new(bytes, feed, format).lines(&mut out, bytes, 0);
    out
}

/// A delimited body read a chunk of lines at a time ([`super::parse_feed_chunks`]): the
/// delimiter, header and columns decided once, on the first data line, hold for the rest.
pub(crate) struct Delimited<'f> {
    feed: &'f FeedConfig,
    format: Format,
    delim: u8,
    scale: f64,
    last_comment: Option<(usize, String)>,
    plan: Option<Plan>,
    /// No usable columns: the rest of the body is not read (one reject says why).
    stopped: bool,
}

impl<'f> Delimited<'f> {
    /// A reader of `body` (its start is sampled for the delimiter under `delimited`).
    pub(crate) fn new(body: &[u8], feed: &'f FeedConfig, format: Format) -> Self {
        let delim = feed.delimiter_byte().unwrap_or(match format {
            Format::Tsv => b'\t',
            Format::Delimited => detect_in(body).unwrap_or(b','),
            _ => b',',
        });
        let scale = feed
            .confidence_scale
            .unwrap_or(if format == Format::Cif { 10.0 } else { 1.0 });
        Delimited {
            feed,
            format,
            delim,
            scale,
            last_comment: None,
            plan: None,
            stopped: false,
        }
    }

    /// Read the whole lines of `part`, whose first line is line `before + 1` of the body.
    pub(crate) fn lines(&mut self, out: &mut ParsedFeed, part: &[u8], before: usize) {
        if self.stopped {
            return;
        }
        let delim = self.delim;
        for (n, line) in Lines::new(part) {
            let n = n + before;
            let Some(s) = line_str(out, n, line) else {
                continue;
            };
            let t = s.trim();
            if t.is_empty() {
                self.last_comment = None;
                continue;
            }
            if is_comment(t) {
                if self.plan.is_none() {
                    let c = t.trim_start_matches(['#', ';', '/']).trim();
                    self.last_comment = (!c.is_empty()).then(|| (n, c.to_string()));
                }
                continue;
            }
            if self.plan.is_none() {
                // First data line: decide on the header and the columns.
                let fields = match split_fields(t, delim) {
                    Ok(f) => f,
                    Err(e) => {
                        out.reject(n, e);
                        continue;
                    }
                };
                let is_header =
                    fields.len() >= 2 && fields.iter().all(|f| guess_itype(f).is_none());
                let mut header: Option<Vec<String>> = None;
                if is_header {
                    header = Some(fields.iter().map(|f| norm_header(f)).collect());
                } else if let Some((cn, c)) = self.last_comment.take() {
                    // abuse.ch style: the header is the comment line right above the data.
                    if cn + 1 == n {
                        if let Ok(hf) = split_fields(&c, delim) {
                            if hf.len() == fields.len() && hf.len() >= 2 {
                                header = Some(hf.iter().map(|f| norm_header(f)).collect());
                            }
                        }
                    }
                }
                let rows: Vec<Vec<Cow<str>>> = if is_header { Vec::new() } else { vec![fields] };
                match Plan::new(self.feed, header.as_deref(), &rows, self.format, self.scale) {
                    Ok(p) => self.plan = Some(p),
                    Err(e) => {
                        out.reject(n, e);
                        self.stopped = true;
                        return;
                    }
                }
                if is_header {
                    continue;
                }
            }
            if let Some(p) = &self.plan {
                p.row(out, n, t, delim);
            }
        }
    }
}

fn detect_in(bytes: &[u8]) -> Option<u8> {
    let head = &bytes[..bytes.len().min(65536)];
    let mut sample = Vec::new();
    for (_, line) in Lines::new(head) {
        if let Ok(s) = std::str::from_utf8(line) {
            let t = s.trim();
            if !t.is_empty() && !is_comment(t) {
                sample.push(t);
            }
        }
        if sample.len() >= 50 {
            break;
        }
    }
    if bytes.len() > head.len() && sample.len() > 1 {
        sample.pop();
    }
    detect(&sample)
}

/// Which columns feed which record fields.
struct Plan {
    /// Column of the indicator, or `None` when it is chosen per row (no header, not named).
    value: Option<usize>,
    itype: Option<usize>,
    meta: Vec<(String, usize)>,
    misp: Option<(usize, Option<usize>)>,
    scale: f64,
}

impl Plan {
    fn new(
        feed: &FeedConfig,
        header: Option<&[String]>,
        rows: &[Vec<Cow<str>>],
        format: Format,
        scale: f64,
    ) -> Result<Plan, String> {
        let find = |name: &str| -> Option<usize> {
            let name = name.trim().to_ascii_lowercase();
            header?.iter().position(|h| *h == name)
        };
        let resolve = |spec: &str| -> Option<usize> {
            match spec.trim().parse::<usize>() {
                Ok(i) if i >= 1 => Some(i - 1),
                _ => find(spec),
            }
        };
        // MISP attribute CSV export.
        let misp = match (find("type"), find("value"), find("to_ids")) {
            (Some(t), Some(_), to_ids) if find("category").is_some() || format == Format::Misp => {
                Some((t, to_ids))
            }
            _ => None,
        };
        let value = match &feed.column {
            Some(Column::Index(i)) => Some(i.saturating_sub(1)),
            Some(Column::Name(name)) => Some(find(name).ok_or_else(|| match header {
                Some(h) => format!("no column {name:?} in header [{}]", h.join(", ")),
                None => format!("column {name:?} named but the feed has no header line"),
            })?),
            None if misp.is_some() => find("value"),
            None => VALUE_HEADERS
                .iter()
                .find_map(|h| find(h))
                .or_else(|| best_column(rows)),
        };
        let mut meta = Vec::new();
        let mut itype = None;
        for (target, spec) in &feed.map {
            let Some(c) = resolve(spec) else {
                return Err(format!("map.{target}: no column {spec:?}"));
            };
            if target == "itype" {
                itype = Some(c);
            } else {
                meta.push((target.clone(), c));
            }
        }
        if header.is_some() {
            for (target, names) in AUTO_MAP {
                if feed.map.contains_key(*target) {
                    continue;
                }
                if let Some(c) = names.iter().find_map(|n| find(n)) {
                    if Some(c) == value {
                        continue;
                    }
                    if *target == "itype" {
                        if misp.is_none() {
                            itype = Some(c);
                        }
                    } else {
                        meta.push(((*target).to_string(), c));
                    }
                }
            }
        }
        Ok(Plan {
            value,
            itype,
            meta,
            misp,
            scale,
        })
    }

    fn row(&self, out: &mut ParsedFeed, n: usize, line: &str, delim: u8) {
        let fields = match split_fields(line, delim) {
            Ok(f) => f,
            Err(e) => {
                out.reject(n, e);
                return;
            }
        };
        let col = match self.value {
            Some(c) => c,
            None => match fields.iter().position(|f| guess_itype(f).is_some()) {
                Some(c) => c,
                None => {
                    out.reject(n, "no field looks like an indicator");
                    return;
                }
            },
        };
        let Some(raw) = fields.get(col) else {
            out.reject(
                n,
                format!(
                    "line has {} fields, the indicator is in column {}",
                    fields.len(),
                    col + 1
                ),
            );
            return;
        };
        let mut meta = RecordMeta::default();
        let mut itype = None;
        if let Some(c) = self.itype {
            if let Some(t) = fields.get(c) {
                let t = t.trim().to_ascii_lowercase();
                itype = match t.as_str() {
                    "ip:port" | "ip" => None,
                    "domain" => Some(IndicatorType::Fqdn),
                    "md5_hash" => Some(IndicatorType::Md5),
                    "sha1_hash" => Some(IndicatorType::Sha1),
                    "sha256_hash" => Some(IndicatorType::Sha256),
                    other => other.parse().ok(),
                };
            }
        }
        for (target, c) in &self.meta {
            if let Some(v) = fields.get(*c) {
                apply_field(&mut meta, &mut itype, target, v, self.scale);
            }
        }
        if let Some((tc, to_ids)) = self.misp {
            let t = fields.get(tc).map(|t| t.trim()).unwrap_or("");
            if misp_type(t).is_none() {
                out.skipped += 1;
                return;
            }
            if let Some(ic) = to_ids {
                let flag = fields.get(ic).map(|f| f.trim().to_ascii_lowercase());
                if !matches!(flag.as_deref(), Some("1" | "true")) {
                    out.skipped += 1;
                    return;
                }
            }
            for (v, hint) in misp_values(t, raw) {
                out.push(
                    FeedRecord::new(n, v.trim())
                        .with_itype(hint)
                        .with_meta(meta.clone()),
                );
            }
            return;
        }
        let mut value: &str = raw.trim();
        // `ip:port` cells (ThreatFox ip:port, maltrail-style CSVs).
        if let Some((ip, port)) = value.rsplit_once(':') {
            if port.bytes().all(|b| b.is_ascii_digit())
                && !port.is_empty()
                && ip.parse::<std::net::Ipv4Addr>().is_ok()
            {
                value = ip;
            }
        }
        out.push(FeedRecord::new(n, value).with_itype(itype).with_meta(meta));
    }
}
