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
    aggregated_nets, defang, net_text, restrict, rfc3339, ExportError, ExportFormat, ExportOptions,
    ExportStats, Item, Prepared,
};
use matcher::{Indicator, IndicatorType, Severity, Tlp};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Snort2,
    Snort3,
    Suricata,
}

/// FNV-1a 64 over `parts`, each followed by a 0 byte.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
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
    used: HashSet<u32>,
}

impl Sids {
    fn next(&mut self, key: &[&[u8]]) -> Result<u32, ExportError> {
        if self.used.len() >= self.range as usize {
            return Err(ExportError::SidSpace {
                base: self.base,
                range: self.range,
                needed: self.used.len() + 1,
            });
        }
        let mut h = fnv(key);
        loop {
            let sid = self.base + (h % u64::from(self.range)) as u32;
            if self.used.insert(sid) {
                return Ok(sid);
            }
            h = fnv(&[&h.to_le_bytes()]);
        }
    }
}

/// Escape bytes for a rule `content:"..."`: printable ASCII stays, except `"` `;` `\` `|`
/// `:` which, like every other byte, become `|XX|` hex.
pub(crate) fn content(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 8);
    let mut in_hex = false;
    for &b in bytes {
        let plain = (0x20..0x7f).contains(&b) && !b"\";\\|:".contains(&b);
        if plain {
            if in_hex {
                s.push('|');
                in_hex = false;
            }
            s.push(b as char);
        } else {
            if in_hex {
                s.push(' ');
            } else {
                s.push('|');
                in_hex = true;
            }
            let _ = write!(s, "{b:02X}");
        }
    }
    if in_hex {
        s.push('|');
    }
    s
}

const MSG_CHARS: &[u8] = b" ._:/?=&%+@[]~,#*!-";

fn msg(tlp: Tlp, tags: &[String], what: &str) -> String {
    let tags: Vec<String> = tags
        .iter()
        .filter(|t| !t.is_empty())
        .take(4)
        .map(|t| restrict(t, b"._+-", 24))
        .collect();
    let tags = if tags.is_empty() {
        "-".to_string()
    } else {
        tags.join(",")
    };
    format!(
        "TRAWL TLP:{} {} {}",
        tlp.as_str().to_ascii_uppercase(),
        tags,
        restrict(what, MSG_CHARS, 200)
    )
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

struct Writer<'o> {
    d: Dialect,
    opts: &'o ExportOptions,
    sids: Sids,
    buf: String,
    rules: u64,
}

impl Writer<'_> {
    /// `content` with modifiers, in the dialect's syntax.
    fn content(&mut self, c: &str, mods: &[(&str, Option<usize>)]) {
        let b = &mut self.buf;
        let _ = write!(b, "content:\"{c}\"");
        for (name, val) in mods {
            match (self.d, val) {
                (Dialect::Snort3, None) => {
                    let _ = write!(b, ",{name}");
                }
                (Dialect::Snort3, Some(v)) => {
                    let _ = write!(b, ",{name} {v}");
                }
                (_, None) => {
                    let _ = write!(b, "; {name}");
                }
                (_, Some(v)) => {
                    let _ = write!(b, "; {name}:{v}");
                }
            }
        }
        b.push_str("; ");
    }

    /// The common tail: classtype, reference, metadata, threshold, priority, sid, rev.
    fn tail(
        &mut self,
        ind: Option<&Indicator>,
        tags: &[String],
        severity: Severity,
        key: &[&[u8]],
    ) -> Result<(), ExportError> {
        let _ = write!(self.buf, "classtype:{}; ", classtype(tags));
        if let Some(r) = ind.and_then(|i| i.reference.as_deref()).and_then(reference) {
            let _ = write!(self.buf, "reference:url,{r}; ");
        }
        self.buf.push_str("metadata:");
        if let Some(i) = ind {
            for s in i.sources.iter().filter(|s| !s.is_empty()).take(4) {
                self.buf.push_str("trawl_feed ");
                push_restricted(&mut self.buf, s, b"._-", 48);
                self.buf.push_str(", ");
            }
            let _ = write!(self.buf, "trawl_confidence {}, ", i.confidence);
        }
        let _ = write!(self.buf, "trawl_severity {}; ", severity.as_str());
        if self.opts.threshold_seconds > 0 && self.d != Dialect::Snort3 {
            let _ = write!(
                self.buf,
                "threshold:type limit, track by_src, count 1, seconds {}; ",
                self.opts.threshold_seconds
            );
        }
        let sid = self.sids.next(key)?;
        let _ = write!(
            self.buf,
            "priority:{}; sid:{sid}; rev:1;)",
            priority(severity)
        );
        Ok(())
    }

    fn flush(&mut self, w: &mut dyn Write) -> Result<(), ExportError> {
        self.buf.push('\n');
        w.write_all(self.buf.as_bytes())?;
        self.buf.clear();
        self.rules += 1;
        Ok(())
    }

    fn open(&mut self, header: &str, m: &str) {
        self.buf.clear();
        let _ = write!(self.buf, "alert {header} (msg:\"{m}\"; ");
    }
}

/// Append `s` to `buf` as [`restrict`] would return it.
fn push_restricted(buf: &mut String, s: &str, allowed: &[u8], max: usize) {
    for b in s.bytes().take(max) {
        if b.is_ascii_alphanumeric() || allowed.contains(&b) {
            buf.push(b as char);
        } else {
            buf.push('_');
        }
    }
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
    let mut w = Writer {
        d,
        opts,
        sids: Sids {
            base: opts.sid_base,
            range: opts.sid_range,
            used: HashSet::new(),
        },
        buf: String::with_capacity(512),
        rules: 0,
    };
    let dataset = if d == Dialect::Suricata {
        opts.dataset_dir.as_deref()
    } else {
        None
    };

    // IPs.
    if let Some(dir) = dataset {
        iprep(&mut w, p, dir, out, stats)?;
    } else {
        ip_rules(&mut w, p, out, stats)?;
    }

    // Domains and URLs.
    let mut dataset_domains: Vec<&str> = Vec::new();
    let mut domain_tags: Vec<String> = Vec::new();
    let mut domain_sev = Severity::Low;
    let mut domain_tlp = Tlp::Clear;
    for it in &p.items {
        match (&it.checked, it.ind.itype) {
            (Checked::V4(..) | Checked::V6(..), _) => {}
            (Checked::Domain, IndicatorType::Fqdn) => {
                if dataset.is_some() {
                    dataset_domains.push(&it.ind.value);
                    for t in &it.ind.tags {
                        if !domain_tags.contains(t) && domain_tags.len() < 4 {
                            domain_tags.push(t.clone());
                        }
                    }
                    domain_sev = domain_sev.max(it.ind.severity);
                    domain_tlp = domain_tlp.max(it.ind.tlp);
                } else {
                    domain_rules(&mut w, it, out)?;
                }
                stats.written += 1;
            }
            (Checked::Url(u), IndicatorType::Url) if !u.https && u.host_kind != HostKind::V6 => {
                url_rule(&mut w, it, u, out)?;
                stats.written += 1;
            }
            _ => stats.skipped_unsupported += 1,
        }
    }
    if let Some(dir) = dataset {
        if !dataset_domains.is_empty() {
            domain_dataset(
                &mut w,
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

fn ip_rules(
    w: &mut Writer,
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
            let m = msg(
                tlp,
                &tags,
                &format!("ip-list {} {}/{}", sev.as_str(), i + 1, parts),
            );
            w.open(
                &format!("ip $HOME_NET any -> [{}] any", chunk.join(",")),
                &m,
            );
            let idx = (i as u64).to_le_bytes();
            w.tail(
                None,
                &tags,
                sev,
                &[b"ip-list", sev.as_str().as_bytes(), &idx],
            )?;
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

fn domain_rules(w: &mut Writer, it: &Item, out: &mut dyn Write) -> Result<(), ExportError> {
    let ind = &it.ind;
    let m = msg(ind.tlp, &ind.tags, &defang(ind.itype, &ind.value));
    let v = ind.value.as_bytes();
    match w.d {
        Dialect::Snort2 | Dialect::Snort3 => {
            // |04|evil|03|com|00| : label lengths always as hex.
            let mut q = String::with_capacity(ind.value.len() + 16);
            let mut qlen = 1;
            for label in ind.value.split('.') {
                let _ = write!(q, "|{:02X}|{}", label.len(), content(label.as_bytes()));
                qlen += label.len() + 1;
            }
            q.push_str("|00|");
            w.open("udp $HOME_NET any -> any 53", &m);
            w.buf.push_str("byte_test:1,!&,0xF8,2; ");
            w.content("|00 01|", &[("offset", Some(4)), ("depth", Some(2))]);
            if ind.exact_only {
                w.content(
                    &q,
                    &[
                        ("distance", Some(6)),
                        ("within", Some(qlen)),
                        ("nocase", None),
                    ],
                );
            } else {
                w.content(&q, &[("distance", Some(6)), ("nocase", None)]);
            }
            if w.d == Dialect::Snort3 {
                w.buf.push_str("service:dns; ");
            }
            w.tail(Some(ind), &ind.tags, ind.severity, &[b"fqdn", v, b"dns"])?;
            w.flush(out)?;
        }
        Dialect::Suricata => {
            let c = if ind.exact_only {
                content(v)
            } else {
                content(format!(".{}", ind.value).as_bytes())
            };
            for (header, buffer, nocase) in [
                ("dns $HOME_NET any -> any any", "dns.query", true),
                ("tls $HOME_NET any -> any any", "tls.sni", true),
                ("http $HOME_NET any -> any any", "http.host", false),
                ("quic $HOME_NET any -> any any", "quic.sni", true),
            ] {
                w.open(header, &m);
                w.buf.push_str(buffer);
                w.buf.push_str("; ");
                let mods: &[(&str, Option<usize>)] = match (ind.exact_only, nocase) {
                    (true, true) => &[("startswith", None), ("endswith", None), ("nocase", None)],
                    (true, false) => &[("startswith", None), ("endswith", None)],
                    (false, true) => &[("endswith", None), ("nocase", None)],
                    (false, false) => &[("endswith", None)],
                };
                if !ind.exact_only {
                    w.buf.push_str("dotprefix; ");
                }
                w.content(&c, mods);
                w.tail(
                    Some(ind),
                    &ind.tags,
                    ind.severity,
                    &[b"fqdn", v, buffer.as_bytes()],
                )?;
                w.flush(out)?;
            }
        }
    }
    Ok(())
}

fn url_rule(
    w: &mut Writer,
    it: &Item,
    u: &UrlParts,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let ind = &it.ind;
    let m = msg(ind.tlp, &ind.tags, &defang(ind.itype, &ind.value));
    let path = percent_decode(&u.path_query);
    let pc = content(&path);
    let host_header = match u.port {
        Some(p) => format!("{}:{p}", u.host),
        None => u.host.clone(),
    };
    match w.d {
        Dialect::Snort2 => {
            let port = u
                .port
                .map_or_else(|| "$HTTP_PORTS".to_string(), |p| p.to_string());
            w.open(&format!("tcp $HOME_NET any -> $EXTERNAL_NET {port}"), &m);
            w.buf.push_str("flow:established,to_server; ");
            let h = format!("Host|3A| {}|0D 0A|", content(host_header.as_bytes()));
            w.content(&h, &[("http_header", None), ("nocase", None)]);
            w.content(&pc, &[("http_uri", None), ("depth", Some(path.len()))]);
        }
        Dialect::Snort3 => {
            let port = u
                .port
                .map_or_else(|| "$HTTP_PORTS".to_string(), |p| p.to_string());
            w.open(&format!("tcp $HOME_NET any -> $EXTERNAL_NET {port}"), &m);
            w.buf
                .push_str("flow:established,to_server; http_header:field host; ");
            w.content(&content(host_header.as_bytes()), &[("nocase", None)]);
            let _ = write!(w.buf, "bufferlen:{}; http_uri; ", host_header.len());
            w.content(&pc, &[("depth", Some(path.len()))]);
            w.buf.push_str("service:http; ");
        }
        Dialect::Suricata => {
            let port = u.port.map_or_else(|| "any".to_string(), |p| p.to_string());
            w.open(&format!("http $HOME_NET any -> any {port}"), &m);
            w.buf.push_str("flow:established,to_server; http.host; ");
            w.content(
                &content(u.host.as_bytes()),
                &[("startswith", None), ("endswith", None)],
            );
            w.buf.push_str("http.uri; ");
            w.content(&pc, &[("startswith", None)]);
        }
    }
    w.tail(
        Some(ind),
        &ind.tags,
        ind.severity,
        &[b"url", ind.value.as_bytes()],
    )?;
    w.flush(out)
}

/// Standard base64 (RFC 4648, padded), as Suricata's string datasets expect.
pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                s.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
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
    for (proto, buffer) in [
        ("dns", "dns.query"),
        ("tls", "tls.sni"),
        ("http", "http.host"),
        ("quic", "quic.sni"),
    ] {
        let m = msg(tlp, tags, &format!("dataset {set} {buffer}"));
        w.open(&format!("{proto} $HOME_NET any -> any any"), &m);
        let _ = write!(
            w.buf,
            "{buffer}; dataset:isset,{set},type string,load {path_s}; "
        );
        w.tail(
            None,
            tags,
            sev,
            &[b"dataset", set.as_bytes(), buffer.as_bytes()],
        )?;
        w.flush(out)?;
    }
    Ok(())
}

fn iprep(
    w: &mut Writer,
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
        let m = msg(tlp, &tags, &format!("iprep {cat} {side}"));
        w.open("ip $HOME_NET any -> any any", &m);
        let _ = write!(w.buf, "iprep:{side},{cat},>,0; ");
        w.tail(
            None,
            &tags,
            sev,
            &[b"iprep", cat.as_bytes(), side.as_bytes()],
        )?;
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
        let mut a = Sids {
            base: 100,
            range: 3,
            used: HashSet::new(),
        };
        let got: Vec<u32> = (0..3u8).map(|i| a.next(&[&[i]]).expect("room")).collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, vec![100, 101, 102]);
        assert!(a.next(&[b"x"]).is_err());
    }
}
