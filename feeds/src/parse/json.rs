//! JSON formats: generic json/jsonl with a dotted `field`, STIX 2.0/2.1 bundles, MISP
//! events, CIF v3/v4 indicators. serde_json's recursion limit (128) bounds nesting, so a
//! deeply nested document is one clean reject, never a stack overflow.

use super::delimited::{misp_type, misp_values};
use super::time::parse_time;
use super::{apply_field, scale_confidence, FeedRecord, Lines, ParsedFeed, RecordMeta};
use crate::config::{FeedConfig, Format};
use matcher::{IndicatorType, Severity, Tlp};
use serde_json::Value;
use std::collections::HashMap;

/// Which JSON flavour `bytes` is (called when the first byte is `{` or `[`).
pub(crate) fn detect(bytes: &[u8]) -> Format {
    let head = &bytes[..bytes.len().min(65536)];
    // JSON lines: the first non-empty line is a whole object and another object follows.
    let mut lines = Lines::new(head).filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    if let (Some((_, first)), Some((_, second))) = (lines.next(), lines.next()) {
        if first.trim_ascii_start().starts_with(b"{")
            && second.trim_ascii_start().starts_with(b"{")
            && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
        {
            return Format::Jsonl;
        }
    }
    let has = |n: &[u8]| memchr::memmem::find(head, n).is_some();
    if has(b"\"spec_version\"") || (has(b"\"bundle\"") && has(b"\"objects\"")) {
        Format::Stix2
    } else if has(b"\"to_ids\"") || has(b"\"Attribute\"") || has(b"\"threat_level_id\"") {
        Format::Misp
    } else if has(b"\"itype\"") && has(b"\"indicator\"") {
        Format::Cif
    } else {
        Format::Json
    }
}

/// The members a generic JSON object (or CIF JSON) may hold its list in, by priority.
const LIST_KEYS: [&str; 6] = [
    "data",
    "results",
    "indicators",
    "items",
    "objects",
    "response",
];

/// Where the items of a generic JSON document (or CIF JSON) are, as a first walk found:
/// a top-level array's elements; else, in an object that has no member named like the
/// field's first step, the first of [`LIST_KEYS`] that is an array (of objects, when the
/// field is given); else the object itself; a scalar document has none.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Listed {
    Elements,
    Member(usize),
    Whole,
    Nothing,
}

/// The first walk over a generic document: where its items are, and each candidate item
/// shown to `sample` with the place it is in (`None`: a top-level array's).
struct ListScan<'a, 's> {
    first_key: Option<&'a str>,
    sample: &'s mut dyn FnMut(Option<usize>, &Value),
    depth: usize,
    array: Option<bool>,
    /// The object has a member named `first_key`.
    has_first: bool,
    /// Per [`LIST_KEYS`]: an array of it was walked, and it held an object.
    lists: [(bool, bool); 6],
    current: Option<usize>,
}

impl ListScan<'_, '_> {
    fn listed(&self) -> Listed {
        match self.array {
            None => Listed::Nothing,
            Some(true) => Listed::Elements,
            Some(false) if self.has_first => Listed::Whole,
            Some(false) => self
                .lists
                .iter()
                .position(|&(array, objects)| array && (self.first_key.is_none() || objects))
                .map_or(Listed::Whole, Listed::Member),
        }
    }
}

impl super::json_items::Visit for ListScan<'_, '_> {
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool {
        if self.depth == 1 && key.is_some() && key == self.first_key {
            self.has_first = true;
        }
        let walk = match self.depth {
            0 => {
                self.array = Some(array);
                true
            }
            1 if array => {
                self.current = key.and_then(|k| LIST_KEYS.iter().position(|l| *l == k));
                if let Some(i) = self.current {
                    self.lists[i].0 = true;
                }
                self.current.is_some()
            }
            _ => false,
        };
        self.depth += usize::from(walk);
        walk
    }

    fn value(&mut self, key: Option<&str>, v: Value) {
        match self.depth {
            1 if key.is_none() => (self.sample)(None, &v),
            1 => self.has_first |= key == self.first_key,
            2 => {
                if let Some(i) = self.current {
                    self.lists[i].1 |= v.is_object();
                    (self.sample)(Some(i), &v);
                }
            }
            _ => {}
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// The second walk over a generic document: each item where the first found them.
struct ListItems<'f> {
    listed: Listed,
    depth: usize,
    f: &'f mut dyn FnMut(Value),
}

impl super::json_items::Visit for ListItems<'_> {
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool {
        let walk = match (self.depth, self.listed) {
            (0, Listed::Elements) => array,
            (0, Listed::Member(_)) => !array,
            (1, Listed::Member(i)) => array && key == Some(LIST_KEYS[i]),
            _ => false,
        };
        self.depth += usize::from(walk);
        walk
    }

    fn value(&mut self, key: Option<&str>, v: Value) {
        match (self.depth, self.listed) {
            (0, Listed::Whole) if v.is_object() => (self.f)(v),
            (1, Listed::Elements) | (2, Listed::Member(_)) if key.is_none() => (self.f)(v),
            _ => {}
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// The first walk over a generic JSON document or CIF JSON: checks it (a syntax error is
/// the `Err`, a rejection with its line) and shows `sample` every candidate item; where
/// the items are is the answer, for [`each_listed`].
fn scan_list(
    bytes: &[u8],
    first_key: Option<&str>,
    format: Format,
    sample: &mut dyn FnMut(Option<usize>, &Value),
) -> Result<Listed, ParsedFeed> {
    let mut scan = ListScan {
        first_key,
        sample,
        depth: 0,
        array: None,
        has_first: false,
        lists: [(false, false); 6],
        current: None,
    };
    checked(super::json_items::walk(bytes, &mut scan), format)?;
    Ok(scan.listed())
}

/// The second walk: `f` gets each item where [`scan_list`] found them, as the whole
/// document's `Value` tree would give them, never holding it (unless the document is its
/// own single item).
fn each_listed(bytes: &[u8], listed: Listed, f: &mut dyn FnMut(Value)) {
    let mut items = ListItems {
        listed,
        depth: 0,
        f,
    };
    // The first walk read the whole document: this one cannot fail.
    let _ = super::json_items::walk(bytes, &mut items);
}

/// Walk a dotted path, descending into arrays; collect `(container, value)` pairs.
fn walk<'a>(
    v: &'a Value,
    path: &[&str],
    container: &'a Value,
    out: &mut Vec<(&'a Value, &'a Value)>,
) {
    match v {
        Value::Array(a) => {
            for x in a {
                walk(x, path, container, out);
            }
        }
        _ => match path.split_first() {
            None => out.push((container, v)),
            Some((k, rest)) => {
                if let Some(next) = v.get(*k) {
                    walk(next, rest, v, out);
                }
            }
        },
    }
}

const VALUE_KEYS: &[&str] = &[
    "indicator",
    "ioc",
    "ioc_value",
    "url",
    "domain",
    "hostname",
    "fqdn",
    "ip",
    "ip_address",
    "ipaddress",
    "value",
    "sha256",
    "sha1",
    "md5",
];

/// Find a path to the indicator in a sample item: breadth-first over keys (into arrays of
/// objects) up to depth 3.
fn auto_field(item: &Value) -> Option<String> {
    let mut level: Vec<(String, &Value)> = vec![(String::new(), item)];
    for _ in 0..3 {
        let mut next = Vec::new();
        for (prefix, v) in &level {
            let obj = match v {
                Value::Array(a) => match a.iter().find(|x| x.is_object()) {
                    Some(o) => o,
                    None => continue,
                },
                o => o,
            };
            let Some(map) = obj.as_object() else { continue };
            for k in VALUE_KEYS {
                if map.get(*k).is_some_and(Value::is_string) {
                    return Some(format!("{prefix}{k}"));
                }
            }
            for (k, child) in map {
                if child.is_object()
                    || child
                        .as_array()
                        .is_some_and(|a| a.iter().any(Value::is_object))
                {
                    next.push((format!("{prefix}{k}."), child));
                }
            }
        }
        level = next;
    }
    None
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().filter_map(as_text).collect();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        _ => None,
    }
}

/// OTX / generic `type` strings: `Some(hint)`, or `None` to skip the entry.
fn json_type(t: &str) -> Option<Option<IndicatorType>> {
    let l = t.to_ascii_lowercase();
    Some(match l.as_str() {
        "ipv4" | "ip" | "cidr" | "ipv6" => None,
        "domain" | "hostname" | "fqdn" => Some(IndicatorType::Fqdn),
        "url" | "uri" => Some(IndicatorType::Url),
        "email" => Some(IndicatorType::Email),
        "filehash-md5" | "md5" => Some(IndicatorType::Md5),
        "filehash-sha1" | "sha1" => Some(IndicatorType::Sha1),
        "filehash-sha256" | "sha256" => Some(IndicatorType::Sha256),
        "filehash-sha512" | "sha512" => Some(IndicatorType::Sha512),
        "sslcertfingerprint" => Some(IndicatorType::X509Sha1),
        "ja3" => Some(IndicatorType::Ja3),
        "cve" | "yara" | "mutex" | "filepath" | "filehash-pehash" | "filehash-imphash"
        | "bitcoinaddress" => return None,
        _ => None,
    })
}

/// Generic `json` and `jsonl`.
pub(crate) fn parse_json(bytes: &[u8], feed: &FeedConfig, format: Format) -> ParsedFeed {
    let mut out = ParsedFeed::new(format);
    if format == Format::Jsonl {
        let mut field = feed.field.clone();
        jsonl_lines(&mut out, bytes, 0, feed, &mut field);
        return out;
    }
    let mut whole = None;
    json_chunks(bytes, feed, usize::MAX, &mut |p| whole = Some(p));
    whole.unwrap_or(out)
}

/// The JSON lines of `part`, whose first line is line `before + 1` of the body; `field`
/// (the configured one, else found on the first item that has one) carries over chunks.
pub(crate) fn jsonl_lines(
    out: &mut ParsedFeed,
    part: &[u8],
    before: usize,
    feed: &FeedConfig,
    field: &mut Option<String>,
) {
    let scale = feed.confidence_scale.unwrap_or(1.0);
    for (n, line) in Lines::new(part) {
        let n = n + before;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => {
                if field.is_none() {
                    *field = auto_field(&v);
                }
                json_item(out, n, &v, field.as_deref(), feed, scale);
            }
            Err(e) => out.reject(n, format!("invalid JSON: {e}")),
        }
    }
}

/// The first walk over a document read it whole, or its syntax error as a rejection with
/// its line: the second walk, which converts, never starts on a broken document.
fn checked(read: Result<(), serde_json::Error>, format: Format) -> Result<(), ParsedFeed> {
    read.map_err(|e| {
        let mut out = ParsedFeed::new(format);
        out.reject(e.line(), format!("invalid JSON: {e}"));
        out
    })
}

/// A generic JSON document (not JSON lines), an item at a time ([`each_listed`]): the
/// first walk also finds the indicator field (unless configured) on the first item of the
/// list that has one; each item is converted and dropped, `each` getting the records about
/// every `batch` of them, and the rest at the end (at least one call).
pub(crate) fn json_chunks(
    bytes: &[u8],
    feed: &FeedConfig,
    batch: usize,
    each: &mut dyn FnMut(ParsedFeed),
) {
    let first_key = feed.field.as_deref().and_then(|f| f.split('.').next());
    // The field found on each candidate list's first item that has one.
    let mut found: [Option<String>; 7] = Default::default();
    let mut out = ParsedFeed::new(Format::Json);
    let scale = feed.confidence_scale.unwrap_or(1.0);
    let mut n = 0;
    let mut field = feed.field.clone();
    let sample = &mut |at: Option<usize>, item: &Value| {
        let slot = &mut found[at.unwrap_or(6)];
        if feed.field.is_none() && slot.is_none() {
            *slot = auto_field(item);
        }
    };
    let listed = match scan_list(bytes, first_key, Format::Json, sample) {
        Ok(listed) => listed,
        Err(rejected) => return each(rejected),
    };
    if field.is_none() {
        field = match listed {
            Listed::Elements => found[6].take(),
            Listed::Member(i) => found[i].take(),
            Listed::Whole | Listed::Nothing => None,
        };
    }
    each_listed(bytes, listed, &mut |item| {
        if listed == Listed::Whole && field.is_none() {
            field = auto_field(&item);
        }
        if out.records.len() >= batch {
            each(std::mem::replace(&mut out, ParsedFeed::new(Format::Json)));
        }
        n += 1;
        json_item(&mut out, n, &item, field.as_deref(), feed, scale);
    });
    each(out);
}

fn json_item(
    out: &mut ParsedFeed,
    n: usize,
    item: &Value,
    field: Option<&str>,
    feed: &FeedConfig,
    scale: f64,
) {
    let Some(field) = field else {
        out.reject(n, "no indicator field found; set `field`");
        return;
    };
    let path: Vec<&str> = field.split('.').collect();
    let mut found = Vec::new();
    walk(item, &path, item, &mut found);
    if found.is_empty() {
        out.reject(n, format!("item has no field {field:?}"));
        return;
    }
    for (container, v) in found {
        let Some(value) = v.as_str() else {
            out.reject(n, format!("{field:?} is not a string"));
            continue;
        };
        let mut itype = None;
        if let Some(t) = container
            .get("type")
            .or_else(|| container.get("itype"))
            .or_else(|| container.get("indicator_type"))
            .and_then(Value::as_str)
        {
            match json_type(t) {
                Some(h) => itype = h,
                None => {
                    out.skipped += 1;
                    continue;
                }
            }
        }
        if itype == Some(IndicatorType::Url) && value.starts_with('/') {
            // OTX "URI" entries are often bare paths: match them as substrings.
            itype = Some(IndicatorType::Pattern);
        }
        let mut meta = RecordMeta::default();
        for (target, spec) in &feed.map {
            let p: Vec<&str> = spec.split('.').collect();
            let mut got = Vec::new();
            walk(container, &p, container, &mut got);
            if got.is_empty() {
                walk(item, &p, item, &mut got);
            }
            if let Some(text) = got.first().and_then(|(_, v)| as_text(v)) {
                apply_field(&mut meta, &mut itype, target, &text, scale);
            }
        }
        out.push(FeedRecord::new(n, value).with_itype(itype).with_meta(meta));
    }
}

// ---------------------------------------------------------------- STIX 2

/// Well-known TLP 1.0 marking-definition ids (STIX 2.0/2.1 spec, section 7.2.1.4).
fn tlp_marking(id: &str) -> Option<Tlp> {
    Some(match id {
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9" => Tlp::Clear,
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da" => Tlp::Green,
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" => Tlp::Amber,
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Tlp::Red,
        // TLP 2.0 extension definitions (OASIS stix2 TLP 2.0 marking definitions)
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487" => Tlp::Clear,
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb" => Tlp::Green,
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421" => Tlp::Amber,
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" => Tlp::AmberStrict,
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1" => Tlp::Red,
        _ => return None,
    })
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn get_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// STIX 2.0 / 2.1 bundles, whole.
pub(crate) fn parse_stix2(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    let mut whole = None;
    stix2_chunks(bytes, feed, usize::MAX, &mut |p| whole = Some(p));
    whole.unwrap_or_default()
}

/// STIX 2.0 / 2.1 bundles, an object at a time ([`super::json_items`]): a first walk keeps
/// the TLP markings and identities (which may follow the objects marked with them), a
/// second converts each object and drops it, handing `each` the records about every
/// `batch` of them, and the rest at the end (at least one call).
pub(crate) fn stix2_chunks(
    bytes: &[u8],
    feed: &FeedConfig,
    batch: usize,
    each: &mut dyn FnMut(ParsedFeed),
) {
    let taxii = feed.format == Format::Taxii;
    let format = if taxii { Format::Taxii } else { Format::Stix2 };
    let mut markings: HashMap<String, Tlp> = HashMap::new();
    let mut identities: HashMap<String, String> = HashMap::new();
    let read = super::json_items::each_item(bytes, "objects", &mut |o| {
        stix_context(&o, &mut markings, &mut identities)
    });
    if let Err(rejected) = checked(read, format) {
        each(rejected);
        return;
    }
    let mut out = ParsedFeed::new(format);
    let scale = feed.confidence_scale.unwrap_or(1.0);
    let mut n = 0;
    // The first walk read the whole document: this one cannot fail.
    let _ = super::json_items::each_item(bytes, "objects", &mut |o| {
        if out.records.len() >= batch {
            each(std::mem::replace(&mut out, ParsedFeed::new(format)));
        }
        let o = &o;
        n += 1;
        let mut meta = RecordMeta::default();
        if let Some(Value::Array(refs)) = o.get("object_marking_refs") {
            meta.tlp = refs
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|r| markings.get(r).copied().or_else(|| tlp_marking(r)))
                .max();
        }
        meta.provider = get_str(o, "created_by_ref")
            .and_then(|r| identities.get(r))
            .map(|s| (*s).to_string());
        match get_str(o, "type") {
            Some("indicator") if o.get("revoked").and_then(Value::as_bool) == Some(true) => {
                out.revoked += 1;
            }
            Some("indicator") => {
                let pattern_type = get_str(o, "pattern_type").unwrap_or("stix");
                if pattern_type != "stix" {
                    out.reject(n, format!("pattern_type {pattern_type:?} is not supported"));
                    return;
                }
                let Some(pattern) = get_str(o, "pattern") else {
                    out.reject(n, "indicator without a pattern");
                    return;
                };
                let comparisons = match super::stix_pattern::parse(pattern) {
                    Ok(p) => {
                        if let Some(why) = p.dropped.first() {
                            // Counted as a reject, although the rest of the pattern is kept.
                            out.reject(
                                n,
                                format!(
                                    "{}: {} of its OR terms left out, first: {why}",
                                    get_str(o, "id").unwrap_or("indicator"),
                                    p.dropped.len()
                                ),
                            );
                        }
                        p.comparisons
                    }
                    Err(e) => {
                        out.reject(
                            n,
                            format!("{}: {e}", get_str(o, "id").unwrap_or("indicator")),
                        );
                        return;
                    }
                };
                if let Some(c) = o.get("confidence").and_then(as_text) {
                    meta.confidence = scale_confidence(&c, scale);
                }
                meta.reported = get_str(o, "valid_from").and_then(parse_time);
                meta.expires = get_str(o, "valid_until").and_then(parse_time);
                meta.tags = str_list(o.get("labels"));
                meta.tags.extend(str_list(o.get("indicator_types")));
                meta.description = get_str(o, "name")
                    .or_else(|| get_str(o, "description"))
                    .map(str::to_string);
                meta.reference = o
                    .get("external_references")
                    .and_then(Value::as_array)
                    .and_then(|a| {
                        a.iter()
                            .find_map(|r| get_str(r, "url").or_else(|| get_str(r, "external_id")))
                    })
                    .map(str::to_string);
                // The STIX id: what a sighting refers to (ARCHITECTURE.md §3).
                meta.external_id = get_str(o, "id").map(str::to_string);
                for (hint, value) in comparisons {
                    out.push(
                        FeedRecord::new(n, value)
                            .with_itype(hint)
                            .with_meta(meta.clone()),
                    );
                }
            }
            Some("observed-data") => match o.get("objects") {
                Some(Value::Object(scos)) => {
                    let before = out.records.len();
                    for sco in scos.values() {
                        push_sco(&mut out, n, sco, &meta);
                    }
                    if out.records.len() == before {
                        out.skipped += 1;
                    }
                }
                _ => out.skipped += 1,
            },
            Some(_) => {
                if !push_sco(&mut out, n, o, &meta) {
                    out.skipped += 1;
                }
            }
            None => out.reject(n, "object without a type"),
        }
    });
    each(out);
}

/// Keep `o` if it is a TLP marking definition or an identity.
fn stix_context(
    o: &Value,
    markings: &mut HashMap<String, Tlp>,
    identities: &mut HashMap<String, String>,
) {
    match get_str(o, "type") {
        Some("marking-definition") => {
            let id = get_str(o, "id").unwrap_or("");
            let tlp = tlp_marking(id)
                .or_else(|| {
                    o.get("definition")
                        .and_then(|d| d.get("tlp"))
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse().ok())
                })
                .or_else(|| get_str(o, "name").and_then(|n| n.parse().ok()));
            if let Some(t) = tlp {
                markings.insert(id.to_string(), t);
            }
        }
        Some("identity") => {
            if let (Some(id), Some(name)) = (get_str(o, "id"), get_str(o, "name")) {
                identities.insert(id.to_string(), name.to_string());
            }
        }
        _ => {}
    }
}

/// Push a STIX cyber-observable; false when it is not one we use.
fn push_sco(out: &mut ParsedFeed, n: usize, o: &Value, meta: &RecordMeta) -> bool {
    let t = get_str(o, "type").unwrap_or("");
    let hint = match t {
        "ipv4-addr" => IndicatorType::Ipv4,
        "ipv6-addr" => IndicatorType::Ipv6,
        "domain-name" => IndicatorType::Fqdn,
        "url" => IndicatorType::Url,
        "email-addr" => IndicatorType::Email,
        "file" | "artifact" | "x509-certificate" => {
            let Some(Value::Object(h)) = o.get("hashes") else {
                return false;
            };
            let mut any = false;
            for (k, v) in h {
                let (Some(ht), Some(v)) = (super::stix_pattern::hash_type(k), v.as_str()) else {
                    continue;
                };
                let ht = match (t, super::stix_pattern::x509_hash_type(k)) {
                    ("x509-certificate", Some(x)) => x,
                    ("x509-certificate", None) => continue,
                    _ => ht,
                };
                out.push(
                    FeedRecord::new(n, v)
                        .with_itype(Some(ht))
                        .with_meta(meta.clone()),
                );
                any = true;
            }
            return any;
        }
        _ => return false,
    };
    match get_str(o, "value") {
        Some(v) => {
            out.push(
                FeedRecord::new(n, v)
                    .with_itype(Some(hint))
                    .with_meta(meta.clone()),
            );
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------- MISP

/// `tlp:*` → TLP; plain tags, and galaxy/ecsirt values, → tags; other taxonomies
/// (`type:OSINT`, `source:...`) → tags too when `taxonomies` (MISP feeds).
fn misp_tags(tags: Option<&Value>, meta: &mut RecordMeta, taxonomies: bool) {
    let Some(Value::Array(tags)) = tags else {
        return;
    };
    for t in tags {
        let Some(name) = get_str(t, "name") else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if let Some(tlp) = lower.strip_prefix("tlp:") {
            if let Ok(t) = tlp.parse::<Tlp>() {
                meta.tlp = Some(meta.tlp.map_or(t, |old| old.max(t)));
            }
        } else if let Some((_, v)) = lower.split_once("=\"") {
            // machine tags: keep the value of galaxies and ecsirt/malware classifications
            if lower.starts_with("misp-galaxy:") || lower.starts_with("ecsirt:") {
                meta.tags.push(v.trim_end_matches('"').to_string());
            }
        } else if taxonomies || !lower.contains(':') {
            meta.tags.push(lower);
        }
    }
}

/// Where a MISP walk is (the stack of [`MispWalk`]): which containers it walked into.
#[derive(Clone, Copy)]
enum MispAt {
    /// An array whose elements may be events or wrap them (the document, `response`).
    List,
    /// An object that may be an event or wrap them (`{"response": [...]}`, `{"Event":
    /// ...}`): candidate `usize`.
    Wrapper(usize),
    /// The object of an `Event` member: candidate `usize`.
    Event(usize),
    /// The `Attribute` array of candidate `usize`.
    Attributes(usize),
    /// The `Object` array of candidate `usize` (each object's own `Attribute` array).
    Objects(usize),
}

/// An object that may be a MISP event, in the order the walk meets them.
#[derive(Default)]
struct Candidate {
    /// The wrapper whose `Event` member it is.
    parent: Option<usize>,
    /// A wrapper: it has a `response` array, or an `Event` member (so is not an event).
    response: bool,
    event: bool,
    /// Its event-level members (`threat_level_id`, `info`, `Orgc`, `Tag`), which may come
    /// after its attributes.
    fields: serde_json::Map<String, Value>,
}

/// The [`super::json_items::Visit`] of MISP event JSON: a single event, `{"Event": ...}`,
/// `{"response": [...]}` and arrays of them, nested. The first walk (`events` empty)
/// gathers the candidates; the second hands each attribute to `attribute` with the
/// event's metadata (`None` for one of an object that turned out not to be an event).
struct MispWalk<'a, 'f> {
    stack: Vec<MispAt>,
    candidates: Vec<Candidate>,
    /// The second walk: each candidate's event metadata, if it is an event.
    events: &'a [Option<RecordMeta>],
    next: usize,
    attribute: &'f mut dyn FnMut(&Value, &RecordMeta),
}

impl MispWalk<'_, '_> {
    fn candidate(&mut self, parent: Option<usize>) -> usize {
        let c = self.next;
        self.next += 1;
        if self.events.is_empty() {
            self.candidates.push(Candidate {
                parent,
                ..Candidate::default()
            });
        }
        c
    }

    fn attributes_of(&mut self, c: usize, attrs: &[Value]) {
        if let Some(Some(meta)) = self.events.get(c) {
            for a in attrs {
                (self.attribute)(a, meta);
            }
        }
    }
}

impl super::json_items::Visit for MispWalk<'_, '_> {
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool {
        let at = match (self.stack.last().copied(), key, array) {
            (None | Some(MispAt::List), None, true) => MispAt::List,
            (None | Some(MispAt::List), None, false) => MispAt::Wrapper(self.candidate(None)),
            (Some(MispAt::Wrapper(c)), Some("response"), true) => {
                if let Some(w) = self.candidates.get_mut(c) {
                    w.response = true;
                }
                MispAt::List
            }
            (Some(MispAt::Wrapper(c)), Some("Event"), false) => {
                if let Some(w) = self.candidates.get_mut(c) {
                    w.event = true;
                }
                MispAt::Event(self.candidate(Some(c)))
            }
            (Some(MispAt::Wrapper(c) | MispAt::Event(c)), Some("Attribute"), true) => {
                MispAt::Attributes(c)
            }
            (Some(MispAt::Wrapper(c) | MispAt::Event(c)), Some("Object"), true) => {
                MispAt::Objects(c)
            }
            _ => return false,
        };
        self.stack.push(at);
        true
    }

    fn value(&mut self, key: Option<&str>, v: Value) {
        match (self.stack.last().copied(), key) {
            (Some(MispAt::Wrapper(c) | MispAt::Event(c)), Some(k)) => {
                let Some(cand) = self.candidates.get_mut(c) else {
                    return;
                };
                match k {
                    "Event" => cand.event = true,
                    "threat_level_id" | "info" | "Orgc" | "Tag" => {
                        cand.fields.insert(k.to_string(), v);
                    }
                    _ => {}
                }
            }
            (Some(MispAt::Attributes(c)), None) => self.attributes_of(c, &[v]),
            (Some(MispAt::Objects(c)), None) => {
                if let Some(Value::Array(attrs)) = v.get("Attribute") {
                    self.attributes_of(c, attrs);
                }
            }
            _ => {}
        }
    }

    fn leave(&mut self) {
        self.stack.pop();
    }
}

/// An event's own metadata (`ev` holds its event-level members).
fn misp_event_meta(ev: &Value, misp_feed: bool) -> RecordMeta {
    let mut ev_meta = RecordMeta {
        severity: ev
            .get("threat_level_id")
            .and_then(as_text)
            .and_then(|t| match t.trim() {
                "1" => Some(Severity::High),
                "2" => Some(Severity::Medium),
                "3" | "4" => Some(Severity::Low),
                _ => None,
            }),
        description: get_str(ev, "info").map(str::to_string),
        provider: ev
            .get("Orgc")
            .and_then(|o| get_str(o, "name"))
            .map(str::to_string),
        ..RecordMeta::default()
    };
    misp_tags(ev.get("Tag"), &mut ev_meta, misp_feed);
    ev_meta
}

/// One MISP attribute `a` (number `n`) of an event with `ev_meta`.
fn misp_attribute(
    out: &mut ParsedFeed,
    n: usize,
    a: &Value,
    ev_meta: &RecordMeta,
    to_ids_only: bool,
    misp_feed: bool,
) {
    if a.get("deleted").and_then(Value::as_bool) == Some(true) {
        out.skipped += 1;
        return;
    }
    let t = get_str(a, "type").unwrap_or("");
    let Some(v) = get_str(a, "value") else {
        out.reject(n, "attribute without a value");
        return;
    };
    if misp_type(t).is_none() {
        out.skipped += 1;
        return;
    }
    let to_ids = match a.get("to_ids") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
        Some(Value::Number(x)) => x.as_u64() == Some(1),
        _ => false,
    };
    if to_ids_only && !to_ids {
        out.skipped += 1;
        return;
    }
    let mut meta = ev_meta.clone();
    misp_tags(a.get("Tag"), &mut meta, misp_feed);
    // The attribute's uuid (ARCHITECTURE.md §3).
    meta.external_id = get_str(a, "uuid").map(str::to_string);
    if let Some(c) = get_str(a, "comment") {
        meta.description = Some(c.to_string());
    }
    meta.reported = a
        .get("timestamp")
        .and_then(as_text)
        .and_then(|t| parse_time(&t));
    meta.first_seen = get_str(a, "first_seen").and_then(parse_time);
    meta.last_seen = get_str(a, "last_seen").and_then(parse_time);
    for (value, hint) in misp_values(t, v) {
        out.push(
            FeedRecord::new(n, value.trim())
                .with_itype(hint)
                .with_meta(meta.clone()),
        );
    }
}

/// MISP event JSON (single event, `{"Event": ...}`, `{"response": [...]}`, arrays), whole.
pub(crate) fn parse_misp(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    if super::first_non_ws(bytes).is_some_and(|b| b != b'{' && b != b'[') {
        return super::delimited::parse(bytes, feed, Format::Misp);
    }
    let mut whole = None;
    misp_chunks(bytes, feed, usize::MAX, &mut |p| whole = Some(p));
    whole.unwrap_or_default()
}

/// MISP event JSON an attribute at a time ([`super::json_items`]): a first walk finds the
/// events and keeps their own fields (MISP writes an event's `Tag` after its attributes),
/// a second converts each attribute (of the event's `Attribute` array and of its objects',
/// in document order) and drops it, handing `each` the records about every `batch` of
/// them, and the rest at the end (at least one call).
pub(crate) fn misp_chunks(
    bytes: &[u8],
    feed: &FeedConfig,
    batch: usize,
    each: &mut dyn FnMut(ParsedFeed),
) {
    let misp_feed = feed.format == Format::MispFeed;
    let format = if misp_feed {
        Format::MispFeed
    } else {
        Format::Misp
    };
    let mut first = MispWalk {
        stack: Vec::new(),
        candidates: Vec::new(),
        events: &[],
        next: 0,
        attribute: &mut |_, _| {},
    };
    if let Err(rejected) = checked(super::json_items::walk(bytes, &mut first), format) {
        return each(rejected);
    }
    let candidates = first.candidates;
    let events: Vec<Option<RecordMeta>> = candidates
        .iter()
        .map(|c| {
            let is_event = match c.parent {
                None => !c.response && !c.event,
                Some(p) => candidates.get(p).is_some_and(|w| !w.response),
            };
            is_event.then(|| misp_event_meta(&Value::Object(c.fields.clone()), misp_feed))
        })
        .collect();
    drop(candidates);
    let to_ids_only = feed.to_ids_only.unwrap_or(true);
    let mut out = ParsedFeed::new(format);
    let mut n = 0;
    let mut second = MispWalk {
        stack: Vec::new(),
        candidates: Vec::new(),
        events: &events,
        next: 0,
        attribute: &mut |a, ev_meta| {
            if out.records.len() >= batch {
                each(std::mem::replace(&mut out, ParsedFeed::new(format)));
            }
            n += 1;
            misp_attribute(&mut out, n, a, ev_meta, to_ids_only, misp_feed);
        },
    };
    // The first walk read the whole document: this one cannot fail.
    let _ = super::json_items::walk(bytes, &mut second);
    each(out);
}

// ---------------------------------------------------------------- CIF

/// CIF v3/v4 JSON indicators (confidence × `confidence_scale`, default 10), whole.
pub(crate) fn parse_cif(bytes: &[u8], feed: &FeedConfig) -> ParsedFeed {
    let mut whole = None;
    cif_chunks(bytes, feed, usize::MAX, &mut |p| whole = Some(p));
    whole.unwrap_or_default()
}

/// CIF JSON an indicator at a time ([`scan_list`], [`each_listed`]), handing `each` the
/// records about every `batch` of them, and the rest at the end (at least one call).
pub(crate) fn cif_chunks(
    bytes: &[u8],
    feed: &FeedConfig,
    batch: usize,
    each: &mut dyn FnMut(ParsedFeed),
) {
    let listed = match scan_list(bytes, Some("indicator"), Format::Cif, &mut |_, _| {}) {
        Ok(listed) => listed,
        Err(rejected) => return each(rejected),
    };
    let mut out = ParsedFeed::new(Format::Cif);
    let scale = feed.confidence_scale.unwrap_or(10.0);
    let mut n = 0;
    each_listed(bytes, listed, &mut |item| {
        if out.records.len() >= batch {
            each(std::mem::replace(&mut out, ParsedFeed::new(Format::Cif)));
        }
        n += 1;
        cif_item(&mut out, n, &item, scale);
    });
    each(out);
}

/// One CIF indicator.
fn cif_item(out: &mut ParsedFeed, n: usize, item: &Value, scale: f64) {
    let Some(value) = get_str(item, "indicator") else {
        out.reject(n, "CIF record without an indicator");
        return;
    };
    let itype = get_str(item, "itype").and_then(|t| t.parse::<IndicatorType>().ok());
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| get_str(item, k))
            .and_then(parse_time)
    };
    let meta = RecordMeta {
        confidence: item
            .get("confidence")
            .and_then(as_text)
            .and_then(|c| scale_confidence(&c, scale)),
        severity: get_str(item, "severity").and_then(|s| s.parse().ok()),
        tlp: get_str(item, "tlp").and_then(|s| s.parse().ok()),
        tags: str_list(item.get("tags")),
        description: get_str(item, "description").map(str::to_string),
        reference: get_str(item, "reference")
            .or_else(|| get_str(item, "altid"))
            .map(str::to_string),
        external_id: get_str(item, "external_id").map(str::to_string),
        provider: get_str(item, "provider").map(str::to_string),
        first_seen: first(&["firsttime", "first_at"]),
        last_seen: first(&["lasttime", "last_at"]),
        reported: first(&["reporttime", "reported_at"]),
        expires: first(&["expires", "expire_at", "valid_until"]),
    };
    out.push(FeedRecord::new(n, value).with_itype(itype).with_meta(meta));
}
