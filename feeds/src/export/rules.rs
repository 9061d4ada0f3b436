//! Snort 2.9 / Snort 3 and Suricata rules.
//!
//! * IPs: `alert ip $HOME_NET any -> [list] any`, one list per severity, aggregated (with
//!   allowlisted ranges cut out) and split every `ip_list_max` networks.
//! * Domains: Snort matches the DNS query name as length-prefixed labels
//!   (`|04|evil|03|com|00|`) after checking the DNS header (QR = 0, standard query,
//!   QDCOUNT = 1); the label prefix keeps `notevil.com` from matching. Suricata uses the
//!   `dns.query`, `tls.sni`, `http.host` and `quic.sni` sticky buffers with
//!   `dotprefix; content:".evil.com"; endswith;` (the domain and every name below it), or, with
//!   a dataset directory, `dataset:isset` rules over a base64 string dataset (exact names).
//! * `http://` URLs: Host header and URI prefix. `https://` URLs, hashes, e-mails and
//!   patterns are not expressible and are counted as unsupported.
//!
//! Sids are FNV-1a hashes of `(itype, value, buffer)` mapped into
//! `sid_base .. sid_base + sid_range`; a collision probes the next hash in a fixed sequence,
//! and rules are allocated in sorted order, so the same input always yields the same sids and
//! an indicator keeps its sid across exports unless it collides with a new one.

use super::validate::{percent_decode, Checked, HostKind, UrlParts};
use super::{
    aggregated_nets, defang, net_text, push_restricted, restrict, rfc3339, ExportError,
    ExportFormat, ExportOptions, ExportStats, Item, Prepared,
};
use matcher::{Indicator, IndicatorType, Severity, Tlp};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;

/// The rule language written. The dialects share one writer; what differs between them
/// (option syntax, threshold, service) is answered here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Snort2,
    Snort3,
    Suricata,
}

impl Dialect {
    /// What goes before a content modifier, and between its name and value: Snort 3 writes
    /// `content:"x",depth 4`, the others `content:"x"; depth:4`.
    fn modifier_syntax(self) -> (&'static [u8], u8) {
        match self {
            Dialect::Snort3 => (b",", b' '),
            Dialect::Snort2 | Dialect::Suricata => (b"; ", b':'),
        }
    }

    /// Whether a rule carries `threshold:` (Snort 3 rate-limits with `event_filter` instead).
    fn has_threshold(self) -> bool {
        self != Dialect::Snort3
    }

    /// Append the `service:` option (Snort 3 only).
    fn push_service(self, out: &mut Vec<u8>, service: &str) {
        if self == Dialect::Snort3 {
            out.extend_from_slice(b"service:");
            out.extend_from_slice(service.as_bytes());
            out.extend_from_slice(b"; ");
        }
    }
}

/// FNV-1a 64 over `parts`, each followed by a 0 byte.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    fnv_from(0xcbf2_9ce4_8422_2325, parts)
}

/// [`fnv`] continued from the state `h` (the hash of the parts before).
fn fnv_from(mut h: u64, parts: &[&[u8]]) -> u64 {
    for p in parts {
        for &b in p.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Deterministic sid allocation with collision probing.
struct Sids {
    base: u32,
    range: u32,
    used: Used,
}

/// The sids handed out: a bitmap over the range (1.25 MB for the default 10M sids), or a
/// hash set when the range is too large for a bitmap.
enum Used {
    Bits { bits: Vec<u64>, count: usize },
    Set(HashSet<u32>),
}

/// Largest range tracked with a bitmap (32 MiB of bits).
const MAX_BITMAP_RANGE: u32 = 1 << 28;

impl Sids {
    fn new(base: u32, range: u32) -> Sids {
        let used = if range <= MAX_BITMAP_RANGE {
            Used::Bits {
                bits: vec![0; (range as usize).div_ceil(64)],
                count: 0,
            }
        } else {
            Used::Set(HashSet::new())
        };
        Sids { base, range, used }
    }

    fn len(&self) -> usize {
        match &self.used {
            Used::Bits { count, .. } => *count,
            Used::Set(s) => s.len(),
        }
    }

    /// Mark `off` (an offset in the range) used; false when it already was.
    fn insert(&mut self, off: u32) -> bool {
        match &mut self.used {
            Used::Bits { bits, count } => {
                let Some(word) = bits.get_mut((off / 64) as usize) else {
                    return false;
                };
                let bit = 1u64 << (off % 64);
                if *word & bit != 0 {
                    return false;
                }
                *word |= bit;
                *count += 1;
                true
            }
            Used::Set(s) => s.insert(off),
        }
    }

    fn next(&mut self, key: &[&[u8]]) -> Result<u32, ExportError> {
        self.next_hashed(fnv(key))
    }

    /// The sid for a key whose [`fnv`] hash is `h`.
    fn next_hashed(&mut self, mut h: u64) -> Result<u32, ExportError> {
        if self.len() >= self.range as usize {
            return Err(ExportError::SidSpace {
                base: self.base,
                range: self.range,
                needed: self.len() + 1,
            });
        }
        loop {
            let off = (h % u64::from(self.range)) as u32;
            if self.insert(off) {
                return Ok(self.base + off);
            }
            h = fnv(&[&h.to_le_bytes()]);
        }
    }
}

/// Escape bytes for a rule `content:"..."`: printable ASCII stays, except `"` `;` `\` `|`
/// `:` which, like every other byte, become `|XX|` hex.
pub(crate) fn content(bytes: &[u8]) -> String {
    let mut v = Vec::with_capacity(bytes.len() + 8);
    push_content(&mut v, bytes);
    // Only ASCII is pushed.
    String::from_utf8(v).unwrap_or_default()
}

/// Append [`content`]`(bytes)` to `out`.
fn push_content(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut in_hex = false;
    for &b in bytes {
        let plain = (0x20..0x7f).contains(&b) && !b"\";\\|:".contains(&b);
        if plain {
            if in_hex {
                out.push(b'|');
                in_hex = false;
            }
            out.push(b);
        } else {
            if in_hex {
                out.push(b' ');
            } else {
                out.push(b'|');
                in_hex = true;
            }
            out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    if in_hex {
        out.push(b'|');
    }
}

const MSG_CHARS: &[u8] = b" ._:/?=&%+@[]~,#*!-";

/// Append a rule's `msg` text: `TRAWL TLP:<TLP> <tags or -> ` followed by `what`, restricted
/// to [`MSG_CHARS`] and at most 200 bytes.
fn push_msg(out: &mut Vec<u8>, tlp: Tlp, tags: &[String], what: &[u8]) {
    push_msg_head(out, tlp, tags);
    push_restricted(out, what, MSG_CHARS, 200);
}

/// Append `TRAWL TLP:<TLP> <tags or -> `, the part of a `msg` before what it names.
fn push_msg_head(out: &mut Vec<u8>, tlp: Tlp, tags: &[String]) {
    out.extend_from_slice(b"TRAWL TLP:");
    out.extend(tlp.as_str().bytes().map(|b| b.to_ascii_uppercase()));
    out.push(b' ');
    let mut any = false;
    for t in tags.iter().filter(|t| !t.is_empty()).take(4) {
        if any {
            out.push(b',');
        }
        push_restricted(out, t.as_bytes(), b"._+-", 24);
        any = true;
    }
    if !any {
        out.push(b'-');
    }
    out.push(b' ');
}

fn classtype(tags: &[String]) -> &'static str {
    let has = |names: &[&str]| tags.iter().any(|t| names.contains(&t.as_str()));
    if has(&[
        "malware",
        "c2",
        "cnc",
        "botnet",
        "ransomware",
        "trojan",
        "rat",
        "stealer",
        "loader",
        "backdoor",
    ]) {
        "trojan-activity"
    } else if has(&["scanner", "scan", "bruteforce", "recon"]) {
        "attempted-recon"
    } else {
        "bad-unknown"
    }
}

fn priority(s: Severity) -> u8 {
    match s {
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
    }
}

/// One rule at a time, written into `buf` and flushed to the output.
struct Writer<'o> {
    d: Dialect,
    opts: &'o ExportOptions,
    buf: Vec<u8>,
    msg: Vec<u8>,
    rules: u64,
}

impl<'o> Writer<'o> {
    fn new(d: Dialect, opts: &'o ExportOptions) -> Writer<'o> {
        Writer {
            d,
            opts,
            buf: Vec::with_capacity(512),
            msg: Vec::with_capacity(256),
            rules: 0,
        }
    }

    /// Start a rule: `alert <header> (msg:"..."; ` naming `what`.
    fn open(&mut self, header: &str, tlp: Tlp, tags: &[String], what: &str) {
        self.msg.clear();
        push_msg(&mut self.msg, tlp, tags, what.as_bytes());
        self.buf.clear();
        push_open(&mut self.buf, header, &self.msg);
    }

    /// Append options written as they are.
    fn raw(&mut self, options: &str) {
        self.buf.extend_from_slice(options.as_bytes());
    }

    /// `content` (already escaped) with modifiers, in the dialect's syntax.
    fn content(&mut self, c: &str, mods: &[(&str, Option<usize>)]) {
        push_content_option(&mut self.buf, self.d, c.as_bytes(), mods);
    }

    /// The common tail: classtype, reference, metadata, threshold, priority, sid, rev.
    fn tail(&mut self, ind: Option<&Indicator>, tags: &[String], severity: Severity, sid: u32) {
        push_tail_head(&mut self.buf, self.d, self.opts, ind, tags, severity);
        push_close(&mut self.buf, &[], sid);
    }

    fn flush(&mut self, w: &mut dyn Write) -> Result<(), ExportError> {
        w.write_all(&self.buf)?;
        self.buf.clear();
        self.rules += 1;
        Ok(())
    }
}

/// Append `alert <header> (msg:"<msg>"; `.
fn push_open(out: &mut Vec<u8>, header: &str, msg: &[u8]) {
    out.extend_from_slice(b"alert ");
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(b" (msg:\"");
    out.extend_from_slice(msg);
    out.extend_from_slice(b"\"; ");
}

/// Append `tail_head` (from [`push_tail_head`]), the sid and the rule's end `; rev:1;)` and
/// newline.
fn push_close(out: &mut Vec<u8>, tail_head: &[u8], sid: u32) {
    out.extend_from_slice(tail_head);
    push_num(out, sid);
    out.extend_from_slice(b"; rev:1;)\n");
}

/// Append `content:"<c>"` (already escaped) and its modifiers.
fn push_content_option(out: &mut Vec<u8>, d: Dialect, c: &[u8], mods: &[(&str, Option<usize>)]) {
    out.extend_from_slice(b"content:\"");
    out.extend_from_slice(c);
    out.push(b'"');
    push_mods(out, d, mods);
}

/// `host/path` of an `http(s)://` reference safe inside `reference:url,...;`.
fn reference(r: &str) -> Option<String> {
    let rest = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))?;
    let ok = !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/?=&%+@#!*".contains(&b));
    ok.then(|| rest.to_string())
}

/// Write Snort or Suricata rules.
pub(crate) fn write(
    format: ExportFormat,
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    use rayon::prelude::*;
    let d = match (format, opts.snort3) {
        (ExportFormat::Suricata, _) => Dialect::Suricata,
        (_, true) => Dialect::Snort3,
        _ => Dialect::Snort2,
    };
    let name = match d {
        Dialect::Snort2 => "Snort 2.9",
        Dialect::Snort3 => "Snort 3",
        Dialect::Suricata => "Suricata",
    };
    writeln!(
        out,
        "# trawl {name} rules; snapshot {} created {}; sensor {}; sids {}..{}",
        opts.snapshot_version,
        rfc3339(opts.created).unwrap_or_default(),
        restrict(&opts.sensor_name, b"._-", 64),
        opts.sid_base,
        u64::from(opts.sid_base) + u64::from(opts.sid_range) - 1
    )?;
    if d == Dialect::Snort3 && opts.threshold_seconds > 0 {
        writeln!(
            out,
            "# Snort 3 has no rule threshold; rate-limit with event_filter = {{ {{ gid = 1, sid = 0, type = 'limit', track = 'by_src', count = 1, seconds = {} }} }}",
            opts.threshold_seconds
        )?;
    }
    let mut w = Writer::new(d, opts);
    let mut sids = Sids::new(opts.sid_base, opts.sid_range);
    let dataset = if d == Dialect::Suricata {
        opts.dataset_dir.as_deref()
    } else {
        None
    };

    // IPs.
    if let Some(dir) = dataset {
        iprep(&mut w, &mut sids, p, dir, out, stats)?;
    } else {
        ip_rules(&mut w, &mut sids, p, out, stats)?;
    }

    // Domains and URLs: sids are allocated in item order first (hashed in parallel, probed
    // in order, as a sequential writer would), then the rules are formatted in parallel.
    let per_item: Vec<([u64; 4], u8)> = p
        .items
        .par_iter()
        .map(|it| item_hashes(d, dataset.is_some(), it))
        .collect();
    let mut offsets: Vec<usize> = Vec::with_capacity(per_item.len() + 1);
    let mut item_sids: Vec<u32> = Vec::new();
    for (h, k) in &per_item {
        offsets.push(item_sids.len());
        for x in h.iter().take(usize::from(*k)) {
            item_sids.push(sids.next_hashed(*x)?);
        }
    }
    offsets.push(item_sids.len());
    drop(per_item);
    let init = || Scratch {
        w: Writer::new(d, opts),
        tail: Vec::with_capacity(256),
        content: Vec::with_capacity(256),
    };
    super::par_write_with(&p.items, out, stats, init, |i, it, buf, n, sc| {
        let mine = offsets
            .get(i)
            .zip(offsets.get(i + 1))
            .and_then(|(&a, &b)| item_sids.get(a..b))
            .unwrap_or(&[]);
        match kind(it) {
            Kind::Ip => {}
            Kind::Domain => {
                if dataset.is_none() {
                    domain_rules(d, opts, &it.ind, mine, sc, buf);
                    n.rules += mine.len() as u64;
                }
                n.written += 1;
            }
            Kind::Url(u) => {
                if let Some(&sid) = mine.first() {
                    url_rule(&mut sc.w, it, u, sid, buf)?;
                    n.rules += 1;
                }
                n.written += 1;
            }
            Kind::Unsupported => n.unsupported += 1,
        }
        Ok(())
    })?;

    if let Some(dir) = dataset {
        let mut dataset_domains: Vec<&str> = Vec::new();
        let mut domain_tags: Vec<String> = Vec::new();
        let mut domain_sev = Severity::Low;
        let mut domain_tlp = Tlp::Clear;
        for it in p.items.iter().filter(|it| matches!(kind(it), Kind::Domain)) {
            dataset_domains.push(&it.ind.value);
            for t in &it.ind.tags {
                if !domain_tags.contains(t) && domain_tags.len() < 4 {
                    domain_tags.push(t.clone());
                }
            }
            domain_sev = domain_sev.max(it.ind.severity);
            domain_tlp = domain_tlp.max(it.ind.tlp);
        }
        if !dataset_domains.is_empty() {
            domain_dataset(
                &mut w,
                &mut sids,
                &dataset_domains,
                (&domain_tags, domain_sev, domain_tlp),
                dir,
                out,
                stats,
            )?;
        }
    }
    stats.rules += w.rules;
    Ok(())
}

/// What rules an item gets.
enum Kind<'a> {
    /// Part of the IP list rules (written before the items).
    Ip,
    /// DNS (Snort) or four sticky-buffer rules (Suricata), or a dataset entry.
    Domain,
    /// One HTTP rule.
    Url(&'a UrlParts),
    /// Not expressible.
    Unsupported,
}

fn kind(it: &Item) -> Kind<'_> {
    match (&it.checked, it.ind.itype) {
        (Checked::V4(..) | Checked::V6(..), _) => Kind::Ip,
        (Checked::Domain, IndicatorType::Fqdn) => Kind::Domain,
        (Checked::Url(u), IndicatorType::Url) if !u.https && u.host_kind != HostKind::V6 => {
            Kind::Url(u)
        }
        _ => Kind::Unsupported,
    }
}

/// The Suricata sticky buffers a domain gets a rule for, with their rule header and
/// whether the match ignores case.
const SURICATA_BUFFERS: [(&str, &str, bool); 4] = [
    ("dns $HOME_NET any -> any any", "dns.query", true),
    ("tls $HOME_NET any -> any any", "tls.sni", true),
    ("http $HOME_NET any -> any any", "http.host", false),
    ("quic $HOME_NET any -> any any", "quic.sni", true),
];

/// The sid key hashes of an item's rules, in rule order, and how many there are.
fn item_hashes(d: Dialect, dataset: bool, it: &Item) -> ([u64; 4], u8) {
    let v = it.ind.value.as_bytes();
    match kind(it) {
        Kind::Domain if dataset => ([0; 4], 0),
        Kind::Domain => match d {
            Dialect::Snort2 | Dialect::Snort3 => ([fnv(&[b"fqdn", v, b"dns"]), 0, 0, 0], 1),
            Dialect::Suricata => {
                // The four keys share `fqdn`, value: hash that prefix once.
                let prefix = fnv(&[b"fqdn", v]);
                (
                    SURICATA_BUFFERS.map(|(_, buffer, _)| fnv_from(prefix, &[buffer.as_bytes()])),
                    4,
                )
            }
        },
        Kind::Url(_) => ([fnv(&[b"url", v]), 0, 0, 0], 1),
        Kind::Ip | Kind::Unsupported => ([0; 4], 0),
    }
}

/// Per-chunk reusable buffers of the parallel rule writer.
struct Scratch<'o> {
    w: Writer<'o>,
    tail: Vec<u8>,
    content: Vec<u8>,
}

/// Append `n` in decimal.
fn push_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Append [`push_msg`]`(tlp, tags, defang(Fqdn, domain))` without building the defanged name.
fn push_domain_msg(out: &mut Vec<u8>, tlp: Tlp, tags: &[String], domain: &str) {
    push_msg_head(out, tlp, tags);
    // The defanged name (`.` as `[.]`), cut at 200 bytes, restricted.
    let start = out.len();
    for &b in domain.as_bytes() {
        if b == b'.' {
            out.extend_from_slice(b"[.]");
        } else {
            out.push(b);
        }
        if out.len() - start >= 200 {
            break;
        }
    }
    out.truncate(start + 200.min(out.len() - start));
    for b in out.iter_mut().skip(start) {
        if !(b.is_ascii_alphanumeric() || MSG_CHARS.contains(b)) {
            *b = b'_';
        }
    }
}

/// Append the common rule tail up to and including `sid:`: classtype (from `tags`), the
/// indicator's reference, feeds and confidence (when the rule is for one indicator),
/// severity, threshold and priority.
fn push_tail_head(
    out: &mut Vec<u8>,
    d: Dialect,
    opts: &ExportOptions,
    ind: Option<&Indicator>,
    tags: &[String],
    severity: Severity,
) {
    out.extend_from_slice(b"classtype:");
    out.extend_from_slice(classtype(tags).as_bytes());
    out.extend_from_slice(b"; ");
    if let Some(r) = ind.and_then(|i| i.reference.as_deref()).and_then(reference) {
        out.extend_from_slice(b"reference:url,");
        out.extend_from_slice(r.as_bytes());
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(b"metadata:");
    if let Some(ind) = ind {
        for s in ind.sources.iter().filter(|s| !s.is_empty()).take(4) {
            out.extend_from_slice(b"trawl_feed ");
            push_restricted(out, s.as_bytes(), b"._-", 48);
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"trawl_confidence ");
        push_num(out, ind.confidence);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"trawl_severity ");
    out.extend_from_slice(severity.as_str().as_bytes());
    out.extend_from_slice(b"; ");
    if opts.threshold_seconds > 0 && d.has_threshold() {
        out.extend_from_slice(b"threshold:type limit, track by_src, count 1, seconds ");
        push_num(out, opts.threshold_seconds);
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(b"priority:");
    push_num(out, priority(severity));
    out.extend_from_slice(b"; sid:");
}

/// Append content modifiers in the dialect's syntax, and the closing `; `.
fn push_mods(out: &mut Vec<u8>, d: Dialect, mods: &[(&str, Option<usize>)]) {
    let (before, between) = d.modifier_syntax();
    for (name, val) in mods {
        out.extend_from_slice(before);
        out.extend_from_slice(name.as_bytes());
        if let Some(v) = val {
            out.push(between);
            push_num(out, *v);
        }
    }
    out.extend_from_slice(b"; ");
}

/// Append `|XX|` for a label length as `{:02X}` would.
fn push_len_hex(out: &mut Vec<u8>, n: usize) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'|');
    if n < 256 {
        out.extend_from_slice(&[HEX[n >> 4], HEX[n & 15]]);
    } else {
        out.extend_from_slice(format!("{n:02X}").as_bytes());
    }
    out.push(b'|');
}

/// The rules of one domain (one per sid in `sids`: one for Snort, four for Suricata),
/// written into `out` without per-rule allocation.
fn domain_rules(
    d: Dialect,
    opts: &ExportOptions,
    ind: &Indicator,
    sids: &[u32],
    sc: &mut Scratch,
    out: &mut Vec<u8>,
) {
    let msg = &mut sc.w.msg;
    msg.clear();
    push_domain_msg(msg, ind.tlp, &ind.tags, &ind.value);
    sc.tail.clear();
    push_tail_head(&mut sc.tail, d, opts, Some(ind), &ind.tags, ind.severity);
    match d {
        Dialect::Snort2 | Dialect::Snort3 => {
            let Some(&sid) = sids.first() else {
                return;
            };
            // |04|evil|03|com|00| : label lengths always as hex.
            let q = &mut sc.content;
            q.clear();
            let mut qlen = 1;
            for label in ind.value.split('.') {
                push_len_hex(q, label.len());
                push_content(q, label.as_bytes());
                qlen += label.len() + 1;
            }
            q.extend_from_slice(b"|00|");
            push_open(out, "udp $HOME_NET any -> any 53", msg);
            out.extend_from_slice(b"byte_test:1,!&,0xF8,2; ");
            push_content_option(
                out,
                d,
                b"|00 01|",
                &[("offset", Some(4)), ("depth", Some(2))],
            );
            let mods: &[(&str, Option<usize>)] = if ind.exact_only {
                &[
                    ("distance", Some(6)),
                    ("within", Some(qlen)),
                    ("nocase", None),
                ]
            } else {
                &[("distance", Some(6)), ("nocase", None)]
            };
            push_content_option(out, d, q, mods);
            d.push_service(out, "dns");
            push_close(out, &sc.tail, sid);
        }
        Dialect::Suricata => {
            let c = &mut sc.content;
            c.clear();
            if !ind.exact_only {
                push_content(c, b".");
            }
            push_content(c, ind.value.as_bytes());
            for ((header, buffer, nocase), &sid) in SURICATA_BUFFERS.iter().zip(sids) {
                push_open(out, header, msg);
                out.extend_from_slice(buffer.as_bytes());
                out.extend_from_slice(b"; ");
                let mods: &[(&str, Option<usize>)] = match (ind.exact_only, nocase) {
                    (true, true) => &[("startswith", None), ("endswith", None), ("nocase", None)],
                    (true, false) => &[("startswith", None), ("endswith", None)],
                    (false, true) => &[("endswith", None), ("nocase", None)],
                    (false, false) => &[("endswith", None)],
                };
                if !ind.exact_only {
                    out.extend_from_slice(b"dotprefix; ");
                }
                push_content_option(out, d, c, mods);
                push_close(out, &sc.tail, sid);
            }
        }
    }
}

fn ip_rules(
    w: &mut Writer,
    sids: &mut Sids,
    p: &Prepared,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    for sev in [Severity::High, Severity::Medium, Severity::Low] {
        let group: Vec<&Item> = p
            .items
            .iter()
            .filter(|i| i.ind.itype.is_ip() && i.ind.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        stats.written += group.len() as u64;
        let (tags, tlp) = group_meta(&group);
        let mut nets: Vec<String> = Vec::new();
        for v6 in [false, true] {
            let (agg, _) = aggregated_nets(group.iter().copied(), &p.allow, v6);
            nets.extend(agg.into_iter().map(|(n, l)| net_text(n, l, v6)));
        }
        let parts = nets.len().div_ceil(w.opts.ip_list_max);
        for (i, chunk) in nets.chunks(w.opts.ip_list_max).enumerate() {
            w.open(
                &format!("ip $HOME_NET any -> [{}] any", chunk.join(",")),
                tlp,
                &tags,
                &format!("ip-list {} {}/{}", sev.as_str(), i + 1, parts),
            );
            let idx = (i as u64).to_le_bytes();
            let sid = sids.next(&[b"ip-list", sev.as_str().as_bytes(), &idx])?;
            w.tail(None, &tags, sev, sid);
            w.flush(out)?;
        }
    }
    Ok(())
}

/// Union of the first tags and the most restrictive TLP of a group.
fn group_meta(group: &[&Item]) -> (Vec<String>, Tlp) {
    let mut tags: Vec<String> = group
        .iter()
        .flat_map(|i| i.ind.tags.iter())
        .cloned()
        .collect();
    tags.sort();
    tags.dedup();
    tags.truncate(4);
    let tlp = group.iter().map(|i| i.ind.tlp).max().unwrap_or_default();
    (tags, tlp)
}

fn url_rule(
    w: &mut Writer,
    it: &Item,
    u: &UrlParts,
    sid: u32,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let ind = &it.ind;
    let what = defang(ind.itype, &ind.value);
    let path = percent_decode(&u.path_query);
    let pc = content(&path);
    let host_header = match u.port {
        Some(p) => format!("{}:{p}", u.host),
        None => u.host.clone(),
    };
    // Snort matches TCP to the HTTP ports, Suricata its `http` protocol on any port.
    let header = match (w.d, u.port) {
        (Dialect::Suricata, Some(p)) => format!("http $HOME_NET any -> any {p}"),
        (Dialect::Suricata, None) => "http $HOME_NET any -> any any".to_string(),
        (_, Some(p)) => format!("tcp $HOME_NET any -> $EXTERNAL_NET {p}"),
        (_, None) => "tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS".to_string(),
    };
    w.open(&header, ind.tlp, &ind.tags, &what);
    w.raw("flow:established,to_server; ");
    // The Host and the URI prefix, in each dialect's buffers.
    match w.d {
        Dialect::Snort2 => {
            let h = format!("Host|3A| {}|0D 0A|", content(host_header.as_bytes()));
            w.content(&h, &[("http_header", None), ("nocase", None)]);
            w.content(&pc, &[("http_uri", None), ("depth", Some(path.len()))]);
        }
        Dialect::Snort3 => {
            w.raw("http_header:field host; ");
            w.content(&content(host_header.as_bytes()), &[("nocase", None)]);
            w.raw(&format!("bufferlen:{}; http_uri; ", host_header.len()));
            w.content(&pc, &[("depth", Some(path.len()))]);
        }
        Dialect::Suricata => {
            w.raw("http.host; ");
            w.content(
                &content(u.host.as_bytes()),
                &[("startswith", None), ("endswith", None)],
            );
            w.raw("http.uri; ");
            w.content(&pc, &[("startswith", None)]);
        }
    }
    w.d.push_service(&mut w.buf, "http");
    w.tail(Some(ind), &ind.tags, ind.severity, sid);
    w.flush(out)
}

/// Standard base64 (RFC 4648, padded), as Suricata's string datasets expect.
pub(crate) fn base64(data: &[u8]) -> String {
    ::base64::Engine::encode(&::base64::engine::general_purpose::STANDARD, data)
}

fn write_file(path: &Path, data: &[u8], stats: &mut ExportStats) -> Result<(), ExportError> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|source| {
        ExportError::File {
            path: path.to_path_buf(),
            source,
        }
    })?;
    fs::write(path, data).map_err(|source| ExportError::File {
        path: path.to_path_buf(),
        source,
    })?;
    stats.files.push(path.to_path_buf());
    Ok(())
}

fn domain_dataset(
    w: &mut Writer,
    sids: &mut Sids,
    domains: &[&str],
    meta: (&[String], Severity, Tlp),
    dir: &Path,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let (tags, sev, tlp) = meta;
    let set = format!("{}-domains", w.opts.set_name);
    let path = dir.join(format!("{set}.lst"));
    let mut data = String::with_capacity(domains.len() * 24);
    for d in domains {
        data.push_str(&base64(d.as_bytes()));
        data.push('\n');
    }
    write_file(&path, data.as_bytes(), stats)?;
    let path_s = path.to_string_lossy().into_owned();
    for (header, buffer, _) in SURICATA_BUFFERS {
        w.open(header, tlp, tags, &format!("dataset {set} {buffer}"));
        w.raw(&format!(
            "{buffer}; dataset:isset,{set},type string,load {path_s}; "
        ));
        let sid = sids.next(&[b"dataset", set.as_bytes(), buffer.as_bytes()])?;
        w.tail(None, tags, sev, sid);
        w.flush(out)?;
    }
    Ok(())
}

fn iprep(
    w: &mut Writer,
    sids: &mut Sids,
    p: &Prepared,
    dir: &Path,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let ips: Vec<&Item> = p.items.iter().filter(|i| i.ind.itype.is_ip()).collect();
    if ips.is_empty() {
        return Ok(());
    }
    stats.written += ips.len() as u64;
    let cat = &w.opts.set_name;
    let cats_path = dir.join(format!("{cat}-iprep-categories.txt"));
    write_file(
        &cats_path,
        format!(
            "1,{cat},trawl blocklist snapshot {}\n",
            w.opts.snapshot_version
        )
        .as_bytes(),
        stats,
    )?;
    let mut data = String::new();
    for sev in [Severity::High, Severity::Medium, Severity::Low] {
        let score = match sev {
            Severity::High => 100,
            Severity::Medium => 60,
            Severity::Low => 30,
        };
        for v6 in [false, true] {
            let group = ips.iter().copied().filter(|i| i.ind.severity == sev);
            let (agg, _) = aggregated_nets(group, &p.allow, v6);
            for (n, l) in agg {
                let _ = writeln!(data, "{},1,{score}", net_text(n, l, v6));
            }
        }
    }
    let rep_path = dir.join(format!("{cat}-iprep.list"));
    write_file(&rep_path, data.as_bytes(), stats)?;
    let (tags, tlp) = group_meta(&ips);
    let sev = ips.iter().map(|i| i.ind.severity).max().unwrap_or_default();
    for side in ["dst", "src"] {
        w.open(
            "ip $HOME_NET any -> any any",
            tlp,
            &tags,
            &format!("iprep {cat} {side}"),
        );
        w.raw(&format!("iprep:{side},{cat},>,0; "));
        let sid = sids.next(&[b"iprep", cat.as_bytes(), side.as_bytes()])?;
        w.tail(None, &tags, sev, sid);
        w.flush(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_escapes_structure() {
        assert_eq!(content(b"a;b\"c|d\\e:f"), "a|3B|b|22|c|7C|d|5C|e|3A|f");
        assert_eq!(content(b"\x00\x01x"), "|00 01|x");
    }

    #[test]
    fn fnv_continues_over_parts() {
        let whole = fnv(&[b"fqdn", b"evil.example", b"tls.sni"]);
        let prefix = fnv(&[b"fqdn", b"evil.example"]);
        assert_eq!(fnv_from(prefix, &[b"tls.sni"]), whole);
        assert_ne!(fnv(&[b"fqdn", b"evil.example", b"dns.query"]), whole);
    }

    #[test]
    fn base64_matches_rfc4648() {
        // RFC 4648 §10 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn sids_are_deterministic_and_unique() {
        let mut a = Sids::new(100, 3);
        let got: Vec<u32> = (0..3u8).map(|i| a.next(&[&[i]]).expect("room")).collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, vec![100, 101, 102]);
        assert!(a.next(&[b"x"]).is_err());
    }
}
