//! Feed format parsers and format detection.
//!
//! Parsers turn raw bytes into [`FeedRecord`]s: a raw value (not yet normalised), an
//! optional type hint and optional per-record metadata, each with the line (or, for JSON
//! documents, the item) it came from. Malformed lines become [`Reject`]s and parsing goes
//! on. Normalisation ([`matcher::normalize`]) happens afterwards in [`crate::update`], so
//! these parsers are pure and cheap: line formats split lines with `memchr` and allocate
//! one `String` per accepted value.

mod delimited;
mod json;
pub(crate) mod json_items;
mod lines;
mod rss;
pub mod stix_pattern;
pub mod time;

use crate::config::{FeedConfig, Format};
use matcher::{IndicatorType, Severity, Tlp, UnixTime};
use serde::Serialize;

pub use lines::Lines;

/// Values longer than this are rejected before normalisation (a 10 MB "line" is not an
/// indicator).
pub const MAX_VALUE_LEN: usize = 8192;

/// How many reject reasons a [`ParsedFeed`] keeps (all are counted).
pub const MAX_KEPT_REJECTS: usize = 100;

/// Optional per-record metadata from the feed itself (overrides the feed's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// 0-100, already scaled.
    pub confidence: Option<u8>,
    /// Severity.
    pub severity: Option<Severity>,
    /// TLP marking.
    pub tlp: Option<Tlp>,
    /// Extra tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Reference (URL or id).
    pub reference: Option<String>,
    /// The record's own id at its platform: a STIX id or a MISP attribute uuid.
    pub external_id: Option<String>,
    /// Provider.
    pub provider: Option<String>,
    /// Feed-given first-seen time.
    pub first_seen: Option<UnixTime>,
    /// Feed-given last-seen time.
    pub last_seen: Option<UnixTime>,
    /// Feed-given report time.
    pub reported: Option<UnixTime>,
    /// Feed-given expiry (`valid_until`).
    pub expires: Option<UnixTime>,
}

impl RecordMeta {
    fn is_empty(&self) -> bool {
        *self == RecordMeta::default()
    }
}

/// One raw value found in a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    /// 1-based line number (JSON documents: 1-based item number).
    pub line: usize,
    /// The value as written in the feed (refanging and normalisation come later).
    pub value: String,
    /// Type hint from the feed itself (STIX object type, MISP attribute type, ...).
    pub itype: Option<IndicatorType>,
    /// Per-record metadata, when the format carries any.
    pub meta: Option<Box<RecordMeta>>,
}

impl FeedRecord {
    /// A record with only a value.
    pub fn new(line: usize, value: impl Into<String>) -> Self {
        FeedRecord {
            line,
            value: value.into(),
            itype: None,
            meta: None,
        }
    }

    fn with_meta(mut self, meta: RecordMeta) -> Self {
        if !meta.is_empty() {
            self.meta = Some(Box::new(meta));
        }
        self
    }

    fn with_itype(mut self, itype: Option<IndicatorType>) -> Self {
        self.itype = itype;
        self
    }
}

/// A line or item that was dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    /// 1-based line number (JSON documents: item number; 0 for the whole document).
    pub line: usize,
    /// Why it was dropped.
    pub reason: String,
}

/// What a parser made of a feed.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    /// The format actually parsed (the detected one under `auto`).
    pub format: Format,
    /// Values found.
    pub records: Vec<FeedRecord>,
    /// The first [`MAX_KEPT_REJECTS`] rejects.
    pub rejects: Vec<Reject>,
    /// How many lines/items were rejected in all.
    pub rejected: usize,
    /// Entries that are well-formed but carry no indicator we use (MISP `filename`
    /// attributes, STIX objects that are not indicators, ...).
    pub skipped: usize,
    /// STIX indicators marked `revoked` (dropped).
    pub revoked: usize,
}

impl ParsedFeed {
    fn new(format: Format) -> Self {
        ParsedFeed {
            format,
            ..ParsedFeed::default()
        }
    }

    /// Record a reject (counted always, kept while under the cap).
    pub fn reject(&mut self, line: usize, reason: impl Into<String>) {
        self.rejected += 1;
        if self.rejects.len() < MAX_KEPT_REJECTS {
            self.rejects.push(Reject {
                line,
                reason: reason.into(),
            });
        }
    }

    /// Push a record after the length check.
    fn push(&mut self, rec: FeedRecord) {
        if rec.value.len() > MAX_VALUE_LEN {
            let line = rec.line;
            let len = rec.value.len();
            self.reject(
                line,
                format!("value is {len} bytes long (limit {MAX_VALUE_LEN})"),
            );
        } else if rec.value.is_empty() {
            self.reject(rec.line, "empty value");
        } else {
            self.records.push(rec);
        }
    }
}

/// Strip a UTF-8 BOM (and a UTF-16 one, which we cannot read: the caller reports it).
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Parse a feed's bytes with its configured format (detecting it under `auto`).
pub fn parse_feed(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    let bytes = strip_bom(bytes);
    let format = match feed.format {
        Format::Auto => detect_format(bytes),
        f => f,
    };
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        let mut p = ParsedFeed::new(format);
        p.reject(0, "UTF-16 encoded feed; convert it to UTF-8");
        return p;
    }
    let mut out = match format {
        Format::Auto | Format::Plain | Format::Netset => parse_plain(bytes, format),
        Format::SpamhausDrop => parse_spamhaus(bytes),
        Format::Hosts => parse_hosts(bytes),
        Format::Dshield => parse_dshield(bytes),
        Format::Maltrail => parse_maltrail(bytes),
        Format::ZeekIntel => parse_zeek_intel(bytes),
        Format::Pattern => parse_pattern(bytes, feed),
        Format::Csv | Format::Tsv | Format::Delimited | Format::Csirtg => {
            delimited::parse(bytes, feed, format)
        }
        Format::Json | Format::Jsonl => json::parse_json(bytes, feed, format),
        Format::Stix2 | Format::Taxii => json::parse_stix2(bytes, feed),
        Format::Misp | Format::MispFeed => json::parse_misp(bytes, feed),
        Format::Cif => {
            if first_non_ws(bytes).is_some_and(|b| b == b'[' || b == b'{') {
                json::parse_cif(bytes, feed)
            } else {
                delimited::parse(bytes, feed, Format::Cif)
            }
        }
        Format::Rss => rss::parse(bytes, feed),
        Format::Unsupported => {
            let mut p = ParsedFeed::new(format);
            p.reject(0, unsupported_reason(bytes));
            p
        }
    };
    if feed.format == Format::Auto {
        out.format = format;
    }
    out
}

/// Formats whose lines are each parsed on their own: a body of one of them can be parsed a
/// chunk of lines at a time.
fn line_by_line(format: Format) -> bool {
    matches!(
        format,
        Format::Plain | Format::Netset | Format::SpamhausDrop | Format::Hosts
    )
}

/// [`parse_feed`], handing `each` the records of about `chunk` bytes of whole lines at a
/// time (line numbers as in the whole body) for the formats read line by line (plain lines,
/// delimited text, JSON lines), so a large list is never held as records all at once;
/// other formats are parsed whole.
pub fn parse_feed_chunks(
    bytes: &[u8],
    feed: &FeedConfig,
    chunk: usize,
    mut each: impl FnMut(ParsedFeed),
) {
    let body = strip_bom(bytes);
    let format = match feed.format {
        Format::Auto => detect_format(body),
        f => f,
    };
    let utf16 = body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF");
    if utf16 || body.len() <= chunk {
        each(parse_feed(bytes, feed));
        return;
    }
    let mut concrete = feed.clone();
    concrete.format = format;
    let not_json = first_non_ws(body).is_some_and(|b| b != b'[' && b != b'{');
    if line_by_line(format) {
        line_chunks(body, chunk, |part, before| {
            let mut parsed = parse_feed(part, &concrete);
            for r in &mut parsed.records {
                r.line += before;
            }
            for r in &mut parsed.rejects {
                r.line += before;
            }
            each(parsed);
        });
    } else if matches!(
        format,
        Format::Csv | Format::Tsv | Format::Delimited | Format::Csirtg
    ) || (matches!(format, Format::Cif | Format::Misp) && not_json)
    {
        let mut reader = delimited::Delimited::new(body, &concrete, format);
        line_chunks(body, chunk, |part, before| {
            let mut parsed = ParsedFeed::new(format);
            reader.lines(&mut parsed, part, before);
            each(parsed);
        });
    } else if format == Format::Jsonl {
        let mut field = concrete.field.clone();
        line_chunks(body, chunk, |part, before| {
            let mut parsed = ParsedFeed::new(format);
            json::jsonl_lines(&mut parsed, part, before, &concrete, &mut field);
            each(parsed);
        });
    } else if format == Format::Json {
        json::json_chunks(body, &concrete, json_batch(chunk), &mut each);
    } else if matches!(format, Format::Stix2 | Format::Taxii) {
        json::stix2_chunks(body, &concrete, json_batch(chunk), &mut each);
    } else if matches!(format, Format::Misp | Format::MispFeed) && !not_json {
        json::misp_chunks(body, &concrete, json_batch(chunk), &mut each);
    } else if format == Format::Cif && !not_json {
        json::cif_chunks(body, &concrete, json_batch(chunk), &mut each);
    } else {
        each(parse_feed(bytes, feed));
    }
}

/// Records of a JSON document handed on at a time when lines would be read `chunk` bytes
/// at a time (a record of a JSON document stands for a few hundred bytes of it).
fn json_batch(chunk: usize) -> usize {
    (chunk / 256).max(1024)
}

/// Cut `body` into parts of about `chunk` bytes of whole lines; `f` gets each part and the
/// number of lines before it.
fn line_chunks(body: &[u8], chunk: usize, mut f: impl FnMut(&[u8], usize)) {
    let mut before = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let cut = rest
            .get(chunk..)
            .and_then(|t| memchr::memchr(b'\n', t))
            .map_or(rest.len(), |i| chunk + i + 1);
        let (part, tail) = rest.split_at(cut);
        f(part, before);
        before += memchr::memchr_iter(b'\n', part).count();
        rest = tail;
    }
}

fn unsupported_reason(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(4096)];
    if memchr::memmem::find(head, b"stix").is_some()
        || memchr::memmem::find(head, b"STIX").is_some()
    {
        "STIX 1.x XML is not supported; export the feed as STIX 2 JSON".into()
    } else {
        "unrecognised XML document (not RSS or Atom)".into()
    }
}

fn first_non_ws(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Guess a format from content (what `format = "auto"` does). Looks at the first 64 KiB.
pub fn detect_format(bytes: &[u8]) -> Format {
    let bytes = strip_bom(bytes);
    let head = &bytes[..bytes.len().min(65536)];
    match first_non_ws(head) {
        Some(b'{') | Some(b'[') => return json::detect(bytes),
        Some(b'<') => {
            let has = |needle: &[u8]| memchr::memmem::find(head, needle).is_some();
            return if has(b"<rss") || has(b"<feed") || has(b"<item>") || has(b"<entry>") {
                Format::Rss
            } else {
                Format::Unsupported
            };
        }
        _ => {}
    }
    let has = |needle: &[u8]| memchr::memmem::find(head, needle).is_some();
    if has(b"#fields\tindicator\t") {
        return Format::ZeekIntel;
    }
    if has(b"Maltrail developers") {
        return Format::Maltrail;
    }
    if has(b"# ipv4 hash:") || has(b"# ipv6 hash:") {
        return Format::Netset;
    }
    if has(b"DShield.org Recommended Block List") || has(b"\nStart\tEnd\tNetblock") {
        return Format::Dshield;
    }
    // Sample the first data lines.
    let mut sample: Vec<&str> = Vec::new();
    for (_, line) in Lines::new(head) {
        let Ok(s) = std::str::from_utf8(line) else {
            continue;
        };
        let t = s.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') || t.starts_with("//") {
            continue;
        }
        sample.push(t);
        if sample.len() >= 50 {
            break;
        }
    }
    // A truncated last line in the 64 KiB window must not spoil the statistics.
    if bytes.len() > head.len() && sample.len() > 1 {
        sample.pop();
    }
    if sample.is_empty() {
        return Format::Plain;
    }
    let share = |pred: &dyn Fn(&str) -> bool| {
        sample.iter().filter(|l| pred(l)).count() * 10 >= sample.len() * 9
    };
    if head.starts_with(b"; Spamhaus") || has(b"\n; Spamhaus") {
        return Format::SpamhausDrop;
    }
    if share(&|l| {
        l.split_once(';').is_some_and(|(a, b)| {
            b.trim_start().starts_with("SBL") && guess_itype(a.trim()).is_some()
        })
    }) {
        return Format::SpamhausDrop;
    }
    if share(&|l| {
        let mut it = l.split_ascii_whitespace();
        matches!(
            it.next(),
            Some("0.0.0.0" | "127.0.0.1" | "::" | "::1" | "::0")
        ) && it.next().is_some()
    }) {
        return Format::Hosts;
    }
    if delimited::detect(&sample).is_some() {
        return Format::Delimited;
    }
    Format::Plain
}

/// A cheap, allocation-free guess at what a raw token is, used to pick a column or a
/// format. It is deliberately looser than [`matcher::normalize`], which has the last word.
pub fn guess_itype(s: &str) -> Option<IndicatorType> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_VALUE_LEN {
        return None;
    }
    let lower_prefix = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    if s.contains("://") || lower_prefix.starts_with("hxxp") {
        return Some(IndicatorType::Url);
    }
    let refanged = s
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("[:]", ":");
    let s = refanged.as_str();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (a, Some(p)),
        _ => (s, None),
    };
    if let Ok(ip) = addr.parse::<std::net::IpAddr>() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix.is_some_and(|p| p.parse::<u32>().map_or(true, |p| p > max)) {
            return None;
        }
        return Some(if ip.is_ipv4() {
            IndicatorType::Ipv4
        } else {
            IndicatorType::Ipv6
        });
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match s.len() {
            32 => Some(IndicatorType::Md5),
            40 => Some(IndicatorType::Sha1),
            64 => Some(IndicatorType::Sha256),
            128 => Some(IndicatorType::Sha512),
            _ => None,
        };
    }
    if let Some((local, domain)) = s.split_once('@') {
        return (!local.is_empty() && looks_like_domain(domain)).then_some(IndicatorType::Email);
    }
    if looks_like_domain(s) {
        return Some(IndicatorType::Fqdn);
    }
    if let Some((host, _path)) = s.split_once('/') {
        let host = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        if looks_like_domain(host) || host.parse::<std::net::Ipv4Addr>().is_ok() {
            return Some(IndicatorType::Url);
        }
    }
    None
}

fn looks_like_domain(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.len() < 3 || s.len() > 253 || !s.contains('.') {
        return false;
    }
    let mut last = "";
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return false;
        }
        if !label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return false;
        }
        last = label;
    }
    last.chars().any(|c| c.is_alphabetic())
}

/// Decode a line as UTF-8, or reject it.
fn line_str<'a>(out: &mut ParsedFeed, n: usize, line: &'a [u8]) -> Option<&'a str> {
    match std::str::from_utf8(line) {
        Ok(s) => Some(s),
        Err(e) => {
            out.reject(
                n,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
            );
            None
        }
    }
}

fn is_comment(t: &str) -> bool {
    t.starts_with('#') || t.starts_with(';') || t.starts_with("//")
}

/// The value of a plain line: the first whitespace-separated token, cut at `#`, without a
/// trailing `,`/`;`. `None` for blank and comment lines.
fn plain_value(t: &str) -> Option<&str> {
    let t = t.trim();
    if t.is_empty() || is_comment(t) {
        return None;
    }
    let tok = t.split_ascii_whitespace().next()?;
    let tok = tok.split('#').next().unwrap_or(tok);
    let tok = tok.trim_end_matches([',', ';']);
    Some(tok)
}

fn parse_plain(bytes: &[u8], format: Format) -> ParsedFeed {
    let mut out = ParsedFeed::new(if format == Format::Auto {
        Format::Plain
    } else {
        format
    });
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        if let Some(v) = plain_value(s) {
            if v.is_empty() {
                out.reject(n, "no value before the comment");
                continue;
            }
            out.push(FeedRecord::new(n, v));
        }
    }
    out
}

fn parse_spamhaus(bytes: &[u8]) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::SpamhausDrop);
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        let t = s.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            continue;
        }
        let (value, rest) = match t.split_once(';') {
            Some((v, r)) => (v.trim(), Some(r.trim())),
            None => (t, None),
        };
        // Byte slices: a multi-byte character at the start must not split a `str`.
        let vb = value.as_bytes();
        if vb.len() > 2
            && vb[..2].eq_ignore_ascii_case(b"AS")
            && vb[2..].iter().all(u8::is_ascii_digit)
        {
            out.reject(
                n,
                format!("{value} is an AS number, not an address indicator"),
            );
            continue;
        }
        let reference = rest
            .and_then(|r| r.split_ascii_whitespace().next())
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        out.push(FeedRecord::new(n, value).with_meta(RecordMeta {
            reference,
            ..RecordMeta::default()
        }));
    }
    out
}

const HOSTS_SKIP: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

fn parse_hosts(bytes: &[u8]) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::Hosts);
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        let t = s.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let mut toks = t.split_ascii_whitespace();
        let first = toks.next().unwrap_or("");
        if first.parse::<std::net::IpAddr>().is_err() {
            out.reject(
                n,
                format!("hosts line must start with an address, found {first:?}"),
            );
            continue;
        }
        let mut any = false;
        for name in toks {
            any = true;
            if HOSTS_SKIP.contains(&name.to_ascii_lowercase().as_str()) {
                out.skipped += 1;
                continue;
            }
            out.push(FeedRecord::new(n, name).with_itype(Some(IndicatorType::Fqdn)));
        }
        if !any {
            out.reject(n, "address without a host name");
        }
    }
    out
}

fn parse_dshield(bytes: &[u8]) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::Dshield);
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        let t = s.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with("Start\t") {
            continue;
        }
        let f: Vec<&str> = t.split('\t').map(str::trim).collect();
        match (f.first(), f.get(2)) {
            (Some(start), Some(prefix)) if prefix.parse::<u8>().is_ok() => {
                let description = match (f.get(4), f.get(5)) {
                    (Some(name), Some(cc)) if !name.is_empty() => Some(format!("{name} ({cc})")),
                    (Some(name), _) if !name.is_empty() => Some((*name).to_string()),
                    _ => None,
                };
                out.push(
                    FeedRecord::new(n, format!("{start}/{prefix}")).with_meta(RecordMeta {
                        description,
                        ..RecordMeta::default()
                    }),
                );
            }
            _ => out.reject(n, "expected start<TAB>end<TAB>prefix-length"),
        }
    }
    out
}

/// maltrail static trails: values with `# Reference:` / `# Aliases:` comment headers
/// carried onto the entries below them; `ip:port` → the IP, `/path` → a pattern.
fn parse_maltrail(bytes: &[u8]) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::Maltrail);
    let mut reference: Option<String> = None;
    let mut aliases: Option<String> = None;
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        let t = s.trim();
        if let Some(c) = t.strip_prefix('#') {
            let c = c.trim();
            if let Some(r) = c.strip_prefix("Reference:") {
                reference = Some(r.trim().to_string());
            } else if let Some(a) = c.strip_prefix("Aliases:") {
                aliases = Some(a.trim().to_string());
            }
            continue;
        }
        let Some(v) = plain_value(t) else {
            continue;
        };
        let comment = t
            .split_once('#')
            .map(|(_, c)| c.trim())
            .filter(|c| !c.is_empty());
        let (value, itype) = maltrail_value(v);
        let description = match (comment, &aliases) {
            (Some(c), _) => Some(c.to_string()),
            (None, Some(a)) => Some(format!("aliases: {a}")),
            _ => None,
        };
        out.push(
            FeedRecord::new(n, value)
                .with_itype(itype)
                .with_meta(RecordMeta {
                    reference: reference.clone(),
                    description,
                    ..RecordMeta::default()
                }),
        );
    }
    out
}

fn maltrail_value(v: &str) -> (&str, Option<IndicatorType>) {
    if v.starts_with('/') {
        return (v, Some(IndicatorType::Pattern));
    }
    if let Some((ip, port)) = v.rsplit_once(':') {
        if !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && ip.parse::<std::net::Ipv4Addr>().is_ok()
        {
            return (ip, Some(IndicatorType::Ipv4));
        }
    }
    (v, None)
}

/// Zeek intel type → `Some(hint)` (hint `None`: infer from the value), or `None` to skip.
fn zeek_itype(t: &str) -> Option<Option<IndicatorType>> {
    Some(match t.trim() {
        // ADDR and SUBNET may be v4 or v6; FILE_HASH may be MD5, SHA-1 or SHA-256.
        "Intel::ADDR" | "Intel::SUBNET" | "Intel::FILE_HASH" => None,
        "Intel::DOMAIN" => Some(IndicatorType::Fqdn),
        "Intel::URL" => Some(IndicatorType::Url),
        "Intel::EMAIL" => Some(IndicatorType::Email),
        "Intel::CERT_HASH" => Some(IndicatorType::X509Sha1),
        "Intel::JA3" => Some(IndicatorType::Ja3),
        _ => return None,
    })
}

fn parse_zeek_intel(bytes: &[u8]) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::ZeekIntel);
    let mut fields: Vec<String> = Vec::new();
    let mut sep = "\t".to_string();
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        if let Some(rest) = s.strip_prefix("#separator ") {
            sep = rest.trim().replace("\\x09", "\t").replace("\\t", "\t");
            if sep.is_empty() {
                sep = "\t".into();
            }
            continue;
        }
        if let Some(rest) = s.strip_prefix("#fields") {
            fields = rest
                .split(sep.as_str())
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            continue;
        }
        if s.trim().is_empty() || s.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = s.split(sep.as_str()).collect();
        let get = |name: &str| -> Option<&str> {
            let i = fields.iter().position(|f| f == name)?;
            cols.get(i)
                .copied()
                .map(str::trim)
                .filter(|v| !v.is_empty() && *v != "-" && *v != "(empty)")
        };
        let Some(value) = (if fields.is_empty() {
            cols.first().copied()
        } else {
            get("indicator")
        }) else {
            out.reject(n, "no indicator field");
            continue;
        };
        let itype = match get("indicator_type").map(zeek_itype) {
            Some(Some(hint)) => hint,
            Some(None) => {
                out.skipped += 1;
                continue;
            }
            None => None,
        };
        let meta = RecordMeta {
            provider: get("meta.source").map(str::to_string),
            description: get("meta.desc").map(str::to_string),
            reference: get("meta.url").map(str::to_string),
            ..RecordMeta::default()
        };
        out.push(FeedRecord::new(n, value).with_itype(itype).with_meta(meta));
    }
    out
}

/// Apply one named capture (or `map` target) to a record's metadata.
pub(crate) fn apply_field(
    meta: &mut RecordMeta,
    itype: &mut Option<IndicatorType>,
    target: &str,
    value: &str,
    confidence_scale: f64,
) {
    let v = value.trim();
    if v.is_empty() || v == "-" || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("null")
    {
        return;
    }
    match target {
        "description" => meta.description = Some(v.to_string()),
        "reference" => meta.reference = Some(v.to_string()),
        "provider" => meta.provider = Some(v.to_string()),
        "first_seen" => meta.first_seen = time::parse_time(v),
        "last_seen" => meta.last_seen = time::parse_time(v),
        "reported" => meta.reported = time::parse_time(v),
        "expires" => meta.expires = time::parse_time(v),
        "tags" => meta.tags.extend(
            v.split([',', ';', '|'])
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty()),
        ),
        "confidence" => meta.confidence = scale_confidence(v, confidence_scale),
        "severity" => meta.severity = v.parse().ok(),
        "tlp" => meta.tlp = v.parse().ok(),
        "itype" => {
            if let Ok(t) = v.parse() {
                *itype = Some(t);
            }
        }
        _ => {}
    }
}

/// Parse a confidence number and scale it to 0-100.
pub(crate) fn scale_confidence(v: &str, scale: f64) -> Option<u8> {
    let x: f64 = v.trim().parse().ok()?;
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    Some((x * scale).round().clamp(0.0, 100.0) as u8)
}

fn parse_pattern(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    let mut out = ParsedFeed::new(Format::Pattern);
    let Some(re) = feed
        .pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok())
    else {
        out.reject(0, "format \"pattern\" needs a valid `pattern`");
        return out;
    };
    let names: Vec<&str> = if feed.values.is_empty() {
        vec!["indicator"]
    } else {
        feed.values.iter().map(String::as_str).collect()
    };
    let scale = feed.confidence_scale.unwrap_or(1.0);
    for (n, line) in Lines::new(bytes) {
        let Some(s) = line_str(&mut out, n, line) else {
            continue;
        };
        let t = s.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some(caps) = re.captures(t) else {
            out.reject(n, "line does not match the pattern");
            continue;
        };
        let mut meta = RecordMeta::default();
        let mut itype = None;
        let mut value = None;
        for (i, name) in names.iter().enumerate() {
            let Some(m) = caps.get(i + 1) else { continue };
            if *name == "indicator" {
                value = Some(m.as_str());
            } else {
                apply_field(&mut meta, &mut itype, name, m.as_str(), scale);
            }
        }
        match value {
            Some(v) => out.push(FeedRecord::new(n, v).with_itype(itype).with_meta(meta)),
            None => out.reject(n, "the pattern captured no indicator"),
        }
    }
    out
}

#[cfg(test)]
mod tests;
