//! Zeek logs, TSV (with its `#` header) and JSON, for conn, dns, http, ssl, files, x509
//! (and the id/src/dst of any other log). Both forms fill one [`ZRec`], so the same record
//! gives the same observation in either form.

use super::address::{parse_ip, parse_ip_str, parse_u16};
use super::ecs_values::{answer_type_of, is_hex, norm_hash};
use super::flat_json;
use super::serde_helpers::{json_from_line, opt_str, opt_str_vec};
use super::timestamps::{is_epoch, parse_epoch, parse_iso8601};
use super::tokens::{text, trim_eol};
use super::url::{domain, norm_domain, path_only, split_host_port, split_url};
use super::{any_ip_may_alert, AlertProbe, LineParser, LogError, ParseError, Screened};
use crate::{DnsAnswer, Observation};
use matcher::simd::byte_mask16;
use matcher::text::plain_http_host;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::net::IpAddr;

/// The Zeek fields trawl reads, whichever log they come from.
#[derive(Debug, Default)]
struct ZRec<'a> {
    /// `#path`/`_path`, as one of the known names, `other`, or `` when absent.
    path: &'static str,
    ts: Option<i64>,
    orig_h: Option<IpAddr>,
    orig_p: Option<u16>,
    resp_h: Option<IpAddr>,
    resp_p: Option<u16>,
    proto: Option<&'static str>,
    service: Option<Cow<'a, str>>,
    query: Option<Cow<'a, str>>,
    qtype_name: Option<Cow<'a, str>>,
    answers: Vec<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    status: Option<u16>,
    server_name: Option<Cow<'a, str>>,
    ja3: Option<Cow<'a, str>>,
    ja4: Option<Cow<'a, str>>,
    cert_fp: Option<Cow<'a, str>>,
    md5: Option<Cow<'a, str>>,
    sha1: Option<Cow<'a, str>>,
    sha256: Option<Cow<'a, str>>,
    tx_host: Option<IpAddr>,
    rx_host: Option<IpAddr>,
    fingerprint: Option<Cow<'a, str>>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
}

/// A log path as a static name.
fn path_kind(p: &str) -> &'static str {
    match p {
        "dns" => "dns",
        "http" => "http",
        "ssl" => "ssl",
        "x509" => "x509",
        "files" => "files",
        "conn" => "conn",
        "" => "",
        _ => "other",
    }
}

fn nonempty(c: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    c.filter(|s| !s.is_empty() && s != "-")
}

impl<'a> ZRec<'a> {
    fn into_observation(self) -> Observation<'a> {
        let dataset = match self.path {
            "dns" => "dns",
            "http" => "http",
            "ssl" | "x509" => "tls",
            "files" => "file",
            "conn" => "flow",
            "" => {
                if self.query.is_some() {
                    "dns"
                } else if self.method.is_some() || self.host.is_some() || self.uri.is_some() {
                    "http"
                } else if self.server_name.is_some()
                    || self.ja3.is_some()
                    || self.cert_fp.is_some()
                    || self.fingerprint.is_some()
                {
                    "tls"
                } else if self.md5.is_some() || self.sha1.is_some() || self.sha256.is_some() {
                    "file"
                } else if self.proto.is_some() {
                    "flow"
                } else {
                    "log"
                }
            }
            _ => "log",
        };
        let protocol = match dataset {
            "dns" => Some("dns"),
            "http" => Some("http"),
            "tls" => Some("tls"),
            _ => self.service.as_deref().and_then(|s| {
                let first = s.split(',').next().unwrap_or("");
                match first {
                    "dns" => Some("dns"),
                    "http" => Some("http"),
                    "ssl" => Some("tls"),
                    "quic" => Some("quic"),
                    _ => None,
                }
            }),
        };
        let mut o = Observation {
            timestamp_ns: self.ts,
            dataset,
            source_ip: endpoint(self.orig_h, self.src, self.rx_host),
            source_port: self.orig_p,
            destination_ip: endpoint(self.resp_h, self.dst, self.tx_host),
            destination_port: self.resp_p,
            transport: self.proto,
            protocol,
            dns_question_name: self.query.map(norm_domain).filter(|q| !q.is_empty()),
            dns_question_type: self.qtype_name,
            http_method: self.method,
            http_status: self.status,
            user_agent: self.user_agent,
            tls_sni: self.server_name.map(norm_domain).filter(|n| !n.is_empty()),
            ja3: self.ja3,
            ja4: self.ja4,
            file_md5: self.md5.map(norm_hash),
            file_sha1: self.sha1.map(norm_hash),
            file_sha256: self.sha256.map(norm_hash),
            ..Default::default()
        };
        let name_type = answer_name_type(o.dns_question_type.as_deref().unwrap_or(""));
        for a in self.answers {
            if let Some((rtype, data, _)) = zeek_answer(a, name_type) {
                o.dns_answers.push(DnsAnswer {
                    rtype: Cow::Borrowed(rtype),
                    data,
                });
            }
        }
        // The leaf's fingerprint: SHA-1 (older Zeek) or SHA-256 (Zeek's default since 4.0).
        for fp in [self.cert_fp, self.fingerprint].into_iter().flatten() {
            let fp = norm_hash(fp);
            if o.tls_server_sha1.is_none() && is_hex(&fp, 40) {
                o.tls_server_sha1 = Some(fp);
            } else if o.tls_server_sha256.is_none() && is_hex(&fp, 64) {
                o.tls_server_sha256 = Some(fp);
            }
        }
        if let Some(host) = self.host {
            let (h, _port) = split_host_port(host.as_bytes());
            let dom = domain(h).map(|d| Cow::Owned(d.into_owned()));
            if let Some(uri) = &self.uri {
                if split_url(uri.as_bytes()).is_some() {
                    o.url_full = Some(uri.clone());
                } else if uri.starts_with('/') {
                    o.url_full = Some(Cow::Owned(format!("http://{host}{uri}")));
                }
            }
            o.url_domain = dom;
        }
        if let Some(uri) = self.uri {
            if let Some(u) = split_url(uri.as_bytes()) {
                o.url_path = Some(Cow::Owned(String::from_utf8_lossy(u.path).into_owned()));
                if o.url_domain.is_none() {
                    o.url_domain = domain(u.host).map(|d| Cow::Owned(d.into_owned()));
                }
                if o.url_full.is_none() {
                    o.url_full = Some(uri);
                }
            } else {
                let p = path_only(uri.as_bytes()).len();
                o.url_path = Some(match uri {
                    Cow::Borrowed(s) => Cow::Borrowed(&s[..p]),
                    Cow::Owned(mut s) => {
                        s.truncate(p);
                        Cow::Owned(s)
                    }
                });
            }
        }
        o
    }
}

/// `source.ip` / `destination.ip` of a record: the connection's `id.*` address, else the
/// log's own `src`/`dst`, else the first of `rx_hosts`/`tx_hosts` (files.log).
fn endpoint(id: Option<IpAddr>, own: Option<IpAddr>, hosts: Option<IpAddr>) -> Option<IpAddr> {
    id.or(own).or(hosts)
}

/// The record type of an answer that is no address, from the query type.
fn answer_name_type(qtype: &str) -> &'static str {
    match qtype {
        "PTR" => "PTR",
        "NS" => "NS",
        "MX" => "MX",
        _ => "CNAME",
    }
}

/// One Zeek `answers` entry as a `dns.answers` record type and value: an address as it is,
/// a name normalised; `None` for TXT records and other text with spaces. The third part is
/// the address when the entry is one (so the screen need not parse it again).
fn zeek_answer<'a>(
    a: Cow<'a, str>,
    name_type: &'static str,
) -> Option<(&'static str, Cow<'a, str>, Option<IpAddr>)> {
    if a.starts_with("TXT ") || a.contains(' ') {
        return None;
    }
    let ip = parse_ip_str(&a);
    let rtype = answer_type_of(ip, name_type);
    let data = if ip.is_some() { a } else { norm_domain(a) };
    Some((rtype, data, ip))
}

// ---------------------------------------------------------------- TSV

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ts,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Service,
    Query,
    QtypeName,
    Answers,
    Host,
    Uri,
    Method,
    UserAgent,
    Status,
    ServerName,
    Ja3,
    Ja4,
    CertFps,
    Md5,
    Sha1,
    Sha256,
    TxHosts,
    RxHosts,
    Fingerprint,
    Src,
    Dst,
}

const N_SLOTS: usize = 27;

fn slot_of(name: &[u8]) -> Option<Slot> {
    Some(match name {
        b"ts" => Slot::Ts,
        b"id.orig_h" => Slot::OrigH,
        b"id.orig_p" => Slot::OrigP,
        b"id.resp_h" => Slot::RespH,
        b"id.resp_p" => Slot::RespP,
        b"proto" => Slot::Proto,
        b"service" => Slot::Service,
        b"query" => Slot::Query,
        b"qtype_name" => Slot::QtypeName,
        b"answers" => Slot::Answers,
        b"host" => Slot::Host,
        b"uri" => Slot::Uri,
        b"method" => Slot::Method,
        b"user_agent" => Slot::UserAgent,
        b"status_code" => Slot::Status,
        b"server_name" => Slot::ServerName,
        b"ja3" => Slot::Ja3,
        b"ja4" => Slot::Ja4,
        b"cert_chain_fps" => Slot::CertFps,
        b"md5" => Slot::Md5,
        b"sha1" => Slot::Sha1,
        b"sha256" => Slot::Sha256,
        b"tx_hosts" => Slot::TxHosts,
        b"rx_hosts" => Slot::RxHosts,
        b"fingerprint" => Slot::Fingerprint,
        b"src" => Slot::Src,
        b"dst" => Slot::Dst,
        _ => return None,
    })
}

/// Zeek TSV, configured from the file's `#` header.
#[derive(Debug, Clone)]
pub struct ZeekTsvParser {
    sep: u8,
    set_sep: u8,
    empty: Vec<u8>,
    unset: Vec<u8>,
    path: &'static str,
    cols: Vec<Option<Slot>>,
    last_col: usize,
}

/// Decode Zeek's `\xHH` escapes; borrows when there are none.
fn unescape(b: &[u8]) -> Cow<'_, str> {
    if memchr::memmem::find(b, b"\\x").is_none() {
        return text(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(h) = b.get(i + 2..i + 4) {
                if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(h), 16) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn single_byte(v: &[u8]) -> Option<u8> {
    match unescape(v).as_bytes() {
        [c] => Some(*c),
        _ => None,
    }
}

impl ZeekTsvParser {
    /// Read `#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#path` and
    /// `#fields` from the start of the file.
    pub fn from_head(head: &[u8]) -> Result<Self, LogError> {
        let mut p = ZeekTsvParser {
            sep: b'\t',
            set_sep: b',',
            empty: b"(empty)".to_vec(),
            unset: b"-".to_vec(),
            path: "",
            cols: Vec::new(),
            last_col: 0,
        };
        let mut have_fields = false;
        for line in head.split(|&b| b == b'\n') {
            let line = trim_eol(line);
            if line.is_empty() {
                continue;
            }
            if line[0] != b'#' {
                break;
            }
            if let Some(v) = line.strip_prefix(b"#separator ") {
                p.sep =
                    single_byte(v).ok_or_else(|| LogError::ZeekHeader("bad #separator".into()))?;
                continue;
            }
            let mut parts = line.splitn(2, |&b| b == p.sep);
            let key = parts.next().unwrap_or_default();
            let val = parts.next().unwrap_or_default();
            match key {
                b"#set_separator" => {
                    p.set_sep = single_byte(val)
                        .ok_or_else(|| LogError::ZeekHeader("bad #set_separator".into()))?;
                }
                b"#empty_field" => p.empty = val.to_vec(),
                b"#unset_field" => p.unset = val.to_vec(),
                b"#path" => p.path = path_kind(&String::from_utf8_lossy(val)),
                b"#fields" => {
                    p.cols = val.split(|&b| b == p.sep).map(slot_of).collect();
                    have_fields = true;
                }
                _ => {}
            }
        }
        if !have_fields {
            return Err(LogError::ZeekHeader(
                "no #fields line in the file's header".into(),
            ));
        }
        p.last_col = p.cols.iter().rposition(Option::is_some).unwrap_or(0);
        Ok(p)
    }

    fn value<'a>(&self, v: &'a [u8]) -> Option<&'a [u8]> {
        (v != self.unset.as_slice() && v != self.empty.as_slice() && !v.is_empty()).then_some(v)
    }

    /// The values of the columns trawl reads, by slot (unset and empty ones `None`); an
    /// error when the line ends before the last of them.
    fn fields<'a>(&self, line: &'a [u8]) -> Result<Row<'a>, ParseError> {
        let mut vals: [Option<&'a [u8]>; N_SLOTS] = [None; N_SLOTS];
        let mut col = 0;
        let mut start = 0;
        let mut keep = |col: usize, field: &'a [u8]| {
            if let Some(Some(slot)) = self.cols.get(col) {
                vals[*slot as usize] = self.value(field);
            }
        };
        // Separators found 16 bytes at a time (fields are short: a call per field costs
        // more than the search).
        let mut base = 0;
        while base < line.len() {
            let mut seps = byte_mask16(&line[base..], self.sep);
            while seps != 0 {
                let end = base + seps.trailing_zeros() as usize;
                seps &= seps - 1;
                keep(col, &line[start..end]);
                if col == self.last_col {
                    return Ok(Row {
                        vals,
                        set_sep: self.set_sep,
                    });
                }
                col += 1;
                start = end + 1;
            }
            base += 16;
        }
        if col < self.last_col {
            return Err(ParseError::new("too few fields"));
        }
        keep(col, &line[start..]);
        Ok(Row {
            vals,
            set_sep: self.set_sep,
        })
    }
}

/// One TSV line's values by slot, as `parse` and `screen` both read them.
struct Row<'a> {
    vals: [Option<&'a [u8]>; N_SLOTS],
    set_sep: u8,
}

impl<'a> Row<'a> {
    /// The column's value (unset and empty ones `None`).
    fn get(&self, s: Slot) -> Option<&'a [u8]> {
        self.vals[s as usize]
    }
    /// The elements of a set or vector column.
    fn elements(&self, s: Slot) -> impl Iterator<Item = &'a [u8]> {
        let sep = self.set_sep;
        self.get(s)
            .into_iter()
            .flat_map(move |v| v.split(move |&b| b == sep))
    }
    /// An address column.
    fn ip(&self, s: Slot) -> Option<IpAddr> {
        self.get(s).and_then(parse_ip)
    }
    /// The first element of a set column, as an address.
    fn first_ip(&self, s: Slot) -> Option<IpAddr> {
        self.elements(s).next().and_then(parse_ip)
    }
}

/// Could a name column (`query`, `server_name`) alert, read as `parse` reads it (unescaped,
/// normalised, none when empty)? `None` when it has escapes or is not UTF-8: the full path
/// decides.
fn name_may_alert(v: &[u8], probe: &dyn AlertProbe) -> Option<bool> {
    let name = norm_domain(Cow::Borrowed(plain_text(v)?));
    Some(!name.is_empty() && probe.domain(&name))
}

/// `unescape(v)` when that borrows `v` unchanged (no backslash, valid UTF-8); `None` otherwise.
fn plain_text(v: &[u8]) -> Option<&str> {
    if memchr::memchr(b'\\', v).is_some() {
        return None;
    }
    std::str::from_utf8(v).ok()
}

/// Columns whose values the Zeek TSV screen does not read (hashes, which the prefilter
/// cannot answer for): a line with any of them set takes the full path.
const UNSCREENED: [Slot; 5] = [Slot::Ja3, Slot::Ja4, Slot::Md5, Slot::Sha1, Slot::Sha256];

impl LineParser for ZeekTsvParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.is_empty() || line[0] == b'#' {
            return Ok(None);
        }
        let row = self.fields(line)?;
        let get = |s: Slot| row.get(s);
        let s = |s: Slot| get(s).map(unescape);
        let ip = |s: Slot| row.ip(s);
        let first_ip = |s: Slot| row.first_ip(s);
        let ts = match get(Slot::Ts) {
            Some(t) => Some(parse_epoch(t).ok_or(ParseError::new("bad timestamp"))?),
            None => None,
        };
        let rec = ZRec {
            path: self.path,
            ts,
            orig_h: ip(Slot::OrigH),
            orig_p: get(Slot::OrigP).and_then(parse_u16),
            resp_h: ip(Slot::RespH),
            resp_p: get(Slot::RespP).and_then(parse_u16),
            proto: get(Slot::Proto).and_then(super::ecs_values::transport),
            service: s(Slot::Service),
            query: s(Slot::Query),
            qtype_name: s(Slot::QtypeName),
            answers: row.elements(Slot::Answers).map(unescape).collect(),
            host: s(Slot::Host),
            uri: s(Slot::Uri),
            method: s(Slot::Method),
            user_agent: s(Slot::UserAgent),
            status: get(Slot::Status).and_then(parse_u16),
            server_name: s(Slot::ServerName),
            ja3: s(Slot::Ja3),
            ja4: s(Slot::Ja4),
            cert_fp: row.elements(Slot::CertFps).next().map(unescape),
            md5: s(Slot::Md5),
            sha1: s(Slot::Sha1),
            sha256: s(Slot::Sha256),
            tx_host: first_ip(Slot::TxHosts),
            rx_host: first_ip(Slot::RxHosts),
            fingerprint: s(Slot::Fingerprint),
            src: ip(Slot::Src),
            dst: ip(Slot::Dst),
        };
        Ok(Some(rec.into_observation()))
    }

    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        // The values `parse` would put in `source.ip`, `destination.ip`, `dns.question.name`,
        // `dns.answers`, `tls.client.server_name`, `tls.server.hash.sha1` and `url.*`, read
        // as `parse` reads them; a value with escapes or bad UTF-8 takes the full path.
        let line = trim_eol(line);
        if line.is_empty() || line[0] == b'#' {
            return Screened::Unsure;
        }
        let Ok(row) = self.fields(line) else {
            return Screened::Unsure;
        };
        let get = |s: Slot| row.get(s);
        if UNSCREENED.iter().any(|&s| get(s).is_some()) {
            return Screened::Unsure;
        }
        if get(Slot::Ts).is_some_and(|t| !is_epoch(t)) {
            return Screened::Unsure; // `parse` fails
        }
        let source = endpoint(
            row.ip(Slot::OrigH),
            row.ip(Slot::Src),
            row.first_ip(Slot::RxHosts),
        );
        let destination = endpoint(
            row.ip(Slot::RespH),
            row.ip(Slot::Dst),
            row.first_ip(Slot::TxHosts),
        );
        for ip in [source, destination].into_iter().flatten() {
            probe.prefetch_ip(ip);
        }
        for name in [Slot::Query, Slot::ServerName] {
            if get(name).is_some_and(|v| name_may_alert(v, probe) != Some(false)) {
                return Screened::Unsure;
            }
        }
        if get(Slot::Answers).is_some() {
            let qtype = match get(Slot::QtypeName).map(plain_text) {
                None => "",
                Some(Some(q)) => q,
                Some(None) => return Screened::Unsure,
            };
            let name_type = answer_name_type(qtype);
            for a in row.elements(Slot::Answers) {
                let Some(a) = plain_text(a) else {
                    return Screened::Unsure;
                };
                // As the correlator looks a `dns.answers.data` value up (a normalised name
                // may read as an address: `1.2.3.4.`).
                if let Some((_, data, ip)) = zeek_answer(Cow::Borrowed(a), name_type) {
                    let may_alert = match ip.or_else(|| parse_ip_str(&data)) {
                        Some(ip) => probe.ip(ip),
                        None => !data.is_empty() && probe.domain(&data),
                    };
                    if may_alert {
                        return Screened::Unsure;
                    }
                }
            }
        }
        // A certificate fingerprint `parse` keeps as `tls.server.hash.sha1` (40 hex digits)
        // or `sha256` (64) is a hash lookup: full path.
        let first_fp = row.elements(Slot::CertFps).next();
        for fp in [first_fp, get(Slot::Fingerprint)].into_iter().flatten() {
            match plain_text(fp) {
                Some(fp) if !is_fingerprint(&norm_hash(Cow::Borrowed(fp))) => {}
                _ => return Screened::Unsure,
            }
        }
        let (host, uri, agent) = match (
            get(Slot::Host).map(plain_text),
            get(Slot::Uri).map(plain_text),
            get(Slot::UserAgent).map(plain_text),
        ) {
            (Some(None), _, _) | (_, Some(None), _) | (_, _, Some(None)) => {
                return Screened::Unsure
            }
            (h, u, a) => (h.flatten(), u.flatten(), a.flatten()),
        };
        if (host.is_some() || uri.is_some()) && http_may_alert(host, uri, probe) {
            return Screened::Unsure;
        }
        Screened::unless(
            agent.is_some_and(|ua| probe.pattern(ua.as_bytes()))
                || any_ip_may_alert([source, destination], probe),
        )
    }
}

/// Could the `url.full`, `url.path` or `url.domain` that [`ZRec::into_observation`] makes of
/// an http.log `host` and `uri` alert? The same values, asked of the probe as the
/// correlator looks them up; an assembled URL too long for the stack buffer answers "maybe".
fn http_may_alert(host: Option<&str>, uri: Option<&str>, probe: &dyn AlertProbe) -> bool {
    let absolute = uri.and_then(|u| split_url(u.as_bytes()));
    let mut buf = [0u8; 2048];
    let url_full: Option<&str> = match (host, uri) {
        (_, Some(u)) if absolute.is_some() => Some(u),
        (Some(h), Some(u)) if u.starts_with('/') => {
            let n = "http://".len() + h.len() + u.len();
            let Some(out) = buf.get_mut(..n) else {
                return true;
            };
            out[..7].copy_from_slice(b"http://");
            out[7..7 + h.len()].copy_from_slice(h.as_bytes());
            out[7 + h.len()..].copy_from_slice(u.as_bytes());
            // Two `str`s joined: always UTF-8.
            let Ok(full) = std::str::from_utf8(out) else {
                return true;
            };
            Some(full)
        }
        _ => None,
    };
    // The host column's name; when it has none, an absolute URI's host.
    let url_domain = host
        .and_then(|h| domain(split_host_port(h.as_bytes()).0))
        .or_else(|| absolute.and_then(|u| domain(u.host)));
    if let (Some(full), Some(d)) = (url_full, url_domain.as_deref()) {
        // The common request: one probe answers for the URL and its plain host.
        // (The host handed over is the URL's own slice: the probe reads on past it.)
        if let Some(h) = plain_http_host(full.as_bytes()).filter(|h| *h == d.as_bytes()) {
            return probe.plain_http_url(full.as_bytes(), h);
        }
    }
    let target = match (url_full, uri) {
        (Some(full), _) => probe.url(full),
        (None, Some(u)) => probe.pattern(path_only(u.as_bytes())),
        (None, None) => false,
    };
    target || url_domain.is_some_and(|d| probe.domain(&d))
}

// ---------------------------------------------------------------- JSON

#[derive(Deserialize, Default)]
struct ZJson<'a> {
    #[serde(rename = "_path", borrow, default, deserialize_with = "opt_str")]
    path: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(rename = "id.orig_h", borrow, default, deserialize_with = "opt_str")]
    orig_h: Option<Cow<'a, str>>,
    #[serde(rename = "id.orig_p")]
    orig_p: Option<u16>,
    #[serde(rename = "id.resp_h", borrow, default, deserialize_with = "opt_str")]
    resp_h: Option<Cow<'a, str>>,
    #[serde(rename = "id.resp_p")]
    resp_p: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    query: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    qtype_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str_vec")]
    answers: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    user_agent: Option<Cow<'a, str>>,
    status_code: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    server_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    ja3: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    ja4: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str_vec")]
    cert_chain_fps: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    md5: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    sha1: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    sha256: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str_vec")]
    tx_hosts: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "opt_str_vec")]
    rx_hosts: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    src: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    dst: Option<Cow<'a, str>>,
    /// Splunk export wrapper: `{"result":{"_raw":"<zeek json>"}}`.
    #[serde(borrow)]
    result: Option<SplunkResult<'a>>,
}

#[derive(Deserialize, Default)]
struct SplunkResult<'a> {
    #[serde(rename = "_raw", borrow, default, deserialize_with = "opt_str")]
    raw: Option<Cow<'a, str>>,
}

/// A `ts` value as written: a string's text (`true`), or a number or other JSON (`false`).
type TsText<'a> = (bool, &'a str);

fn raw_ts(raw: &RawValue) -> TsText<'_> {
    let s = raw.get();
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => (true, inner),
        None => (false, s),
    }
}

fn json_ts((quoted, s): TsText<'_>) -> Result<i64, ParseError> {
    let s = s.as_bytes();
    let r = if quoted {
        parse_iso8601(s).or_else(|| parse_epoch(s))
    } else {
        parse_epoch(s)
    };
    r.ok_or(ParseError::new("bad timestamp"))
}

/// The fields of a flat Zeek JSON record read by [`flat_json::scan`], without serde; `None`
/// for anything serde would read differently or refuse (a known field twice, of another
/// type, a Splunk wrapper, ...): the caller then takes the full parser.
fn fast_fields(line: &[u8]) -> Option<(ZJson<'_>, Option<TsText<'_>>)> {
    use flat_json::Value;
    fn set<'a>(slot: &mut Option<Cow<'a, str>>, v: Value<'a>) -> bool {
        match v {
            Value::Str(s) => *slot = Some(Cow::Borrowed(s)),
            Value::Null => {}
            _ => return false,
        }
        true
    }
    fn set_vec<'a>(slot: &mut Option<Vec<Cow<'a, str>>>, v: Value<'a>) -> bool {
        if v == Value::Null {
            return true;
        }
        match v.strings() {
            Some(it) => *slot = Some(it.map(Cow::Borrowed).collect()),
            None => return false,
        }
        true
    }
    fn set_u16(slot: &mut Option<u16>, v: Value<'_>) -> bool {
        match v {
            Value::Token(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
                *slot = t.parse().ok();
                slot.is_some()
            }
            Value::Null => true,
            _ => false,
        }
    }
    let mut z = ZJson::default();
    let mut ts: Option<TsText<'_>> = None;
    // The known fields seen (serde refuses one given twice).
    let mut seen = 0u32;
    flat_json::scan(line, |key, v| {
        let (bit, ok) = match key {
            "_path" => (0, set(&mut z.path, v)),
            "ts" => (
                1,
                match v {
                    Value::Str(s) => {
                        ts = Some((true, s));
                        true
                    }
                    Value::Token(t) => {
                        ts = Some((false, t));
                        true
                    }
                    _ => false,
                },
            ),
            "id.orig_h" => (2, set(&mut z.orig_h, v)),
            "id.orig_p" => (3, set_u16(&mut z.orig_p, v)),
            "id.resp_h" => (4, set(&mut z.resp_h, v)),
            "id.resp_p" => (5, set_u16(&mut z.resp_p, v)),
            "proto" => (6, set(&mut z.proto, v)),
            "service" => (7, set(&mut z.service, v)),
            "query" => (8, set(&mut z.query, v)),
            "qtype_name" => (9, set(&mut z.qtype_name, v)),
            "answers" => (10, set_vec(&mut z.answers, v)),
            "host" => (11, set(&mut z.host, v)),
            "uri" => (12, set(&mut z.uri, v)),
            "method" => (13, set(&mut z.method, v)),
            "user_agent" => (14, set(&mut z.user_agent, v)),
            "status_code" => (15, set_u16(&mut z.status_code, v)),
            "server_name" => (16, set(&mut z.server_name, v)),
            "ja3" => (17, set(&mut z.ja3, v)),
            "ja4" => (18, set(&mut z.ja4, v)),
            "cert_chain_fps" => (19, set_vec(&mut z.cert_chain_fps, v)),
            "md5" => (20, set(&mut z.md5, v)),
            "sha1" => (21, set(&mut z.sha1, v)),
            "sha256" => (22, set(&mut z.sha256, v)),
            "tx_hosts" => (23, set_vec(&mut z.tx_hosts, v)),
            "rx_hosts" => (24, set_vec(&mut z.rx_hosts, v)),
            "fingerprint" => (25, set(&mut z.fingerprint, v)),
            "src" => (26, set(&mut z.src, v)),
            "dst" => (27, set(&mut z.dst, v)),
            "result" => return false, // Splunk's wrapper: the full parser
            _ => return true,
        };
        let first = seen & (1 << bit) == 0;
        seen |= 1 << bit;
        ok && first
    })?;
    Some((z, ts))
}

fn ip_of(c: &Option<Cow<'_, str>>) -> Option<IpAddr> {
    c.as_deref().and_then(parse_ip_str)
}

/// Zeek's Kafka writer with `tag_json`: the record wrapped in an object named for its log,
/// `{"dns": {...}}`; the log's name and the record. (`result` is Splunk's wrapper.)
fn untag(line: &[u8]) -> Option<(&str, &[u8])> {
    let rest = line.strip_prefix(b"{")?;
    let rest = super::tokens::trim(rest).strip_prefix(b"\"")?;
    let q = memchr::memchr(b'"', rest)?;
    let key = &rest[..q];
    if key.is_empty()
        || key == b"result"
        || !key
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    {
        return None;
    }
    let rest = super::tokens::trim(&rest[q + 1..]).strip_prefix(b":")?;
    let inner = super::tokens::trim(super::tokens::trim(rest).strip_suffix(b"}")?);
    if inner.first() != Some(&b'{') || inner.last() != Some(&b'}') {
        return None;
    }
    Some((std::str::from_utf8(key).ok()?, inner))
}

/// A Zeek JSON line without its line end, surrounding blanks and Kafka tag: the log's name
/// (from the tag) and the record; `None` for a blank or comment line.
fn zeek_json_record(line: &[u8]) -> Option<(Option<&str>, &[u8])> {
    let line = super::tokens::trim(trim_eol(line));
    if line.is_empty() || line[0] == b'#' {
        return None;
    }
    Some(match untag(line) {
        Some((tag, inner)) => (Some(tag), inner),
        None => (None, line),
    })
}

/// Parse one JSON object as a Zeek record.
/// `fast`: try [`fast_fields`] first (the parser always does; the tests compare both ways).
fn parse_zeek_json(line: &[u8], fast: bool) -> Result<Option<Observation<'_>>, ParseError> {
    let Some((tag, line)) = zeek_json_record(line) else {
        return Ok(None);
    };
    let (z, ts) = match fast.then(|| fast_fields(line)).flatten() {
        Some(read) => read,
        None => {
            let z: ZJson<'_> = json_from_line(line).map_err(|e| ParseError {
                reason: "invalid json",
                detail: Some(e.to_string()),
            })?;
            if z.ts.is_none() && z.orig_h.is_none() {
                if let Some(raw) = z.result.as_ref().and_then(|r| r.raw.as_deref()) {
                    return Ok(parse_zeek_json(raw.as_bytes(), fast)?.map(Observation::into_owned));
                }
            }
            let ts = z.ts.map(raw_ts);
            (z, ts)
        }
    };
    Ok(Some(json_record(z, ts, tag)?.into_observation()))
}

/// The [`ZRec`] of a Zeek JSON record's fields (`tag`: the Kafka tag, the log's name when
/// the record has no `_path`).
fn json_record<'a>(
    z: ZJson<'a>,
    ts: Option<TsText<'a>>,
    tag: Option<&str>,
) -> Result<ZRec<'a>, ParseError> {
    let ts = match ts {
        Some(t) => Some(json_ts(t)?),
        None => None,
    };
    Ok(ZRec {
        path: z.path.as_deref().or(tag).map_or("", path_kind),
        ts,
        orig_h: ip_of(&z.orig_h),
        orig_p: z.orig_p,
        resp_h: ip_of(&z.resp_h),
        resp_p: z.resp_p,
        proto: z
            .proto
            .as_deref()
            .and_then(|p| super::ecs_values::transport(p.as_bytes())),
        service: nonempty(z.service),
        query: nonempty(z.query),
        qtype_name: nonempty(z.qtype_name),
        answers: z.answers.unwrap_or_default(),
        host: nonempty(z.host),
        uri: nonempty(z.uri),
        method: nonempty(z.method),
        user_agent: nonempty(z.user_agent),
        status: z.status_code,
        server_name: nonempty(z.server_name),
        ja3: nonempty(z.ja3),
        ja4: nonempty(z.ja4),
        cert_fp: z.cert_chain_fps.and_then(|v| v.into_iter().next()),
        md5: nonempty(z.md5),
        sha1: nonempty(z.sha1),
        sha256: nonempty(z.sha256),
        tx_host: z
            .tx_hosts
            .as_ref()
            .and_then(|v| v.first())
            .and_then(|s| s.parse().ok()),
        rx_host: z
            .rx_hosts
            .as_ref()
            .and_then(|v| v.first())
            .and_then(|s| s.parse().ok()),
        fingerprint: nonempty(z.fingerprint),
        src: ip_of(&z.src),
        dst: ip_of(&z.dst),
    })
}

impl ZRec<'_> {
    /// [`LineParser::screen`] of a record read into a `ZRec`: the values
    /// [`ZRec::into_observation`] would make `source.ip`, `destination.ip`,
    /// `dns.question.name`, `dns.answers`, `tls.client.server_name`, the certificate hashes,
    /// `url.*` and `user_agent.original` of, asked of the probe as the correlator looks them
    /// up, without building the observation.
    fn screen(&self, probe: &dyn AlertProbe) -> Screened {
        // Hashes, which the prefilter cannot answer for: full path.
        if [&self.ja3, &self.ja4, &self.md5, &self.sha1, &self.sha256]
            .iter()
            .any(|h| h.is_some())
        {
            return Screened::Unsure;
        }
        let source = endpoint(self.orig_h, self.src, self.rx_host);
        let destination = endpoint(self.resp_h, self.dst, self.tx_host);
        for ip in [source, destination].into_iter().flatten() {
            probe.prefetch_ip(ip);
        }
        for name in [&self.query, &self.server_name].into_iter().flatten() {
            let name = norm_domain(Cow::Borrowed(name.as_ref()));
            if !name.is_empty() && probe.domain(&name) {
                return Screened::Unsure;
            }
        }
        let name_type = answer_name_type(self.qtype_name.as_deref().unwrap_or(""));
        for a in &self.answers {
            // As the correlator looks a `dns.answers.data` value up (a normalised name may
            // read as an address: `1.2.3.4.`).
            if let Some((_, data, ip)) = zeek_answer(Cow::Borrowed(a.as_ref()), name_type) {
                let may_alert = match ip.or_else(|| parse_ip_str(&data)) {
                    Some(ip) => probe.ip(ip),
                    None => !data.is_empty() && probe.domain(&data),
                };
                if may_alert {
                    return Screened::Unsure;
                }
            }
        }
        // A fingerprint kept as `tls.server.hash.*` is a hash lookup: full path.
        for fp in [&self.cert_fp, &self.fingerprint].into_iter().flatten() {
            if is_fingerprint(&norm_hash(Cow::Borrowed(fp.as_ref()))) {
                return Screened::Unsure;
            }
        }
        let (host, uri) = (self.host.as_deref(), self.uri.as_deref());
        if (host.is_some() || uri.is_some()) && http_may_alert(host, uri, probe) {
            return Screened::Unsure;
        }
        Screened::unless(
            self.user_agent
                .as_deref()
                .is_some_and(|ua| probe.pattern(ua.as_bytes()))
                || any_ip_may_alert([source, destination], probe),
        )
    }
}

/// Zeek JSON logs (Zeek's `LogAscii::use_json`, epoch or ISO `ts`, optional `_path`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeekJsonParser;

impl LineParser for ZeekJsonParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        parse_zeek_json(line, true)
    }

    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        // Only what the field scanner reads (as `parse` does); the rest takes the full path.
        let Some((tag, line)) = zeek_json_record(line) else {
            return Screened::Unsure;
        };
        let Some((z, ts)) = fast_fields(line) else {
            return Screened::Unsure;
        };
        match json_record(z, ts, tag) {
            Ok(rec) => rec.screen(probe),
            Err(_) => Screened::Unsure, // `parse` fails
        }
    }
}

/// Whether the field scanner and serde read `line` the same (the fuzz target and the
/// proptests assert it).
pub(crate) fn fast_json_agrees(line: &[u8]) -> bool {
    let show = |r: Result<Option<Observation<'_>>, ParseError>| format!("{r:?}");
    show(parse_zeek_json(line, true)) == show(parse_zeek_json(line, false))
}

/// A certificate fingerprint `parse` keeps: SHA-1 or SHA-256, lower-case hex.
fn is_fingerprint(fp: &str) -> bool {
    is_hex(fp, 40) || is_hex(fp, 64)
}

#[cfg(test)]
mod tests {
    use super::super::check_screen;
    use super::*;
    use proptest::prelude::*;

    /// A TSV parser for `fields` (tab-separated names) with Zeek's usual header.
    fn tsv_parser(path: &str, fields: &str) -> ZeekTsvParser {
        let head = format!(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#fields\t{fields}\n"
        );
        ZeekTsvParser::from_head(head.as_bytes()).unwrap()
    }

    const DNS_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tqtype_name\tanswers\tTTLs";

    /// Values of every shape a column may hold, plain and hostile.
    fn zeek_value() -> impl Strategy<Value = Vec<u8>> {
        let pick =
            |v: Vec<&'static str>| prop::sample::select(v).prop_map(|s| s.as_bytes().to_vec());
        prop_oneof![
            pick(vec![
                "1521911720.865716",
                "1521911720",
                "12x",
                "-",
                "(empty)",
                ""
            ]),
            pick(vec![
                "10.47.1.100",
                "2001:db8::1",
                "[2001:db8::2]",
                "010.1.1.1",
                "host",
                "-"
            ]),
            pick(vec![
                "evil.example",
                "Evil.Example.",
                "a\\x2eb.example",
                "a\\b.example",
                ".",
                "x y",
                "\u{e9}.example"
            ]),
            pick(vec![
                "A", "AAAA", "PTR", "NS", "MX", "CNAME", "TXT", "-", "P\\x54R"
            ]),
            pick(vec![
                "ise.wrccdc.cpp.edu,134.71.3.16",
                "134.71.3.16",
                "1.2.3.4.",
                "TXT 12 v=spf1 -all",
                "Mail.Example.,2001:db8::5",
                ",",
                "(empty)",
                "-",
                "a\\x2cb",
            ]),
            pick(vec!["udp", "tcp", "53", "0.00087"]),
            pick(vec![
                "0123456789abcdef0123456789abcdef01234567",
                "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67",
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,0123456789abcdef0123456789abcdef01234567",
                "0123456789abcdef0123456789abcdef",
                "xyz",
            ]),
            pick(vec![
                "/x/y.php?q=1",
                "/",
                "http://Evil.Example:8080/a?b",
                "https://[2001:db8::1]/p",
                "*",
                "login.example:443",
                "http:///nohost",
                "a.example:80",
                ":80",
                "[2001:db8::9]:8443",
                "Mozilla/5.0 (X11)",
            ]),
            prop::collection::vec(any::<u8>(), 0..5),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The Zeek TSV screen keeps the contract of `LineParser::screen` for dns, conn,
        /// http and ssl logs (SNI and certificate fingerprints, SHA-1 or not; a `ja3` column
        /// sends the line to `parse`), on lines with any values, too few or too many columns.
        #[test]
        fn zeek_tsv_screen_keeps_its_contract(
            values in prop::collection::vec(zeek_value(), 0..14),
            log in 0usize..4,
        ) {
            let parser = match log {
                0 => tsv_parser("dns", DNS_FIELDS),
                1 => tsv_parser("conn", "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice"),
                2 => tsv_parser("http", "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\thost\turi\tuser_agent"),
                _ => tsv_parser("ssl", "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tserver_name\tcert_chain_fps\tfingerprint\tja3"),
            };
            let line = values.join(&b'\t');
            check_screen(&parser, &line).map_err(TestCaseError::fail)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// http.log lines column by column: every way `parse` builds `url.full`,
        /// `url.path` and `url.domain` from `host` and `uri` (assembled, absolute, path only,
        /// a host without a name, escapes), asked exactly as the correlator looks them up.
        #[test]
        fn zeek_http_screen_keeps_its_contract(
            ts in prop::sample::select(vec!["1521911720.5", "-", "x"]),
            orig in prop::sample::select(vec!["10.0.0.1", "45.142.212.7", "-", "2001:db8::1"]),
            host in prop::sample::select(vec![
                "a.example", "Evil.Example.", "a.example:8080", ":80", "[2001:db8::1]:443",
                "192.0.2.1", "-", "(empty)", "a\\x2eexample", "\u{e9}t\u{e9}.example",
            ]),
            uri in prop::sample::select(vec![
                "/x/y.php?q=1#f", "/", "http://Evil.Example:8080/a?b", "https://[2001:db8::1]/p",
                "http://b.example/c", "*", "login.example:443", "http:///nohost", "-",
                "/p\\x3fq", "/caf\u{e9}",
            ]),
            agent in prop::sample::select(vec!["curl/8.0", "-", "(empty)", "a\\x20b", "Mozilla/5.0 (X11)"]),
            long in any::<bool>(),
        ) {
            let parser = tsv_parser("http", "ts\tuid\tid.orig_h\thost\turi\tuser_agent");
            let uri = if long && uri.starts_with('/') { format!("{uri}{}", "a".repeat(2100)) } else { uri.to_string() };
            let line = format!("{ts}\tC1\t{orig}\t{host}\t{uri}\t{agent}");
            check_screen(&parser, line.as_bytes()).map_err(TestCaseError::fail)?;
        }
    }

    /// Plain dns, conn, http and ssl lines are settled by the screen; escapes, hashes the
    /// correlator looks up (a SHA-1 or SHA-256 certificate, a JA3) are not.
    #[test]
    fn zeek_tsv_screen_settles_plain_lines() {
        let dns = tsv_parser("dns", DNS_FIELDS);
        let line = b"1521911720.865716\tC1\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\tise.wrccdc.org\tA\tise.wrccdc.cpp.edu,134.71.3.16\t2230.0,41830.0";
        assert_eq!(check_screen(&dns, line), Ok(true));
        let escaped = b"1521911720.865716\tC1\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\tise\\x2ewrccdc.org\tA\t-\t-";
        assert_eq!(check_screen(&dns, escaped), Ok(false));
        let conn = tsv_parser(
            "conn",
            "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto",
        );
        assert_eq!(
            check_screen(&conn, b"1.5\tC2\t10.0.0.1\t1\t192.0.2.9\t443\ttcp"),
            Ok(true)
        );
        let http = tsv_parser("http", "ts\tid.orig_h\thost\turi\tuser_agent");
        assert_eq!(
            check_screen(&http, b"1.5\t10.0.0.1\ta.example\t/x\tcurl/8"),
            Ok(true)
        );
        assert_eq!(
            check_screen(&http, b"1.5\t10.0.0.1\ta.example\t/x\tcurl\\x2f8"),
            Ok(false)
        );
        let ssl = tsv_parser("ssl", "ts\tid.orig_h\tserver_name\tcert_chain_fps\tja3");
        let sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let ssl_line = |fps: &str, ja3: &str| format!("1.5\t10.0.0.1\tA.Example\t{fps}\t{ja3}");
        assert_eq!(check_screen(&ssl, ssl_line("-", "-").as_bytes()), Ok(true));
        assert_eq!(
            check_screen(&ssl, ssl_line(sha256, "-").as_bytes()),
            Ok(false)
        );
        assert_eq!(
            check_screen(&ssl, ssl_line(sha1, "-").as_bytes()),
            Ok(false)
        );
        assert_eq!(
            check_screen(
                &ssl,
                ssl_line(sha256, "e7d705a3286e19ea42f587b344ee6865").as_bytes()
            ),
            Ok(false)
        );
    }

    /// One record per log kind, in TSV (with its header) and in the JSON Zeek writes for it;
    /// both must give the same observation, with the fields we expect.
    fn pair(path: &str, fields: &str, types: &str, row: &str, json: &str) -> Observation<'static> {
        let head = format!(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#fields\t{fields}\n#types\t{types}\n"
        );
        let tsv = ZeekTsvParser::from_head(head.as_bytes()).unwrap();
        let a = tsv.parse(row.as_bytes()).unwrap().unwrap().into_owned();
        let b = ZeekJsonParser
            .parse(json.as_bytes())
            .unwrap()
            .unwrap()
            .into_owned();
        assert_eq!(a, b, "{path}");
        a
    }

    #[test]
    fn kafka_tagged_records_are_read_as_their_log() {
        // Zeek's Kafka writer with tag_json: no _path, the log's name around the record.
        let tagged = br#"{"dns": {"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5000,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"Evil.Example","qtype_name":"A"}}"#;
        let plain = br#"{"_path":"dns","ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5000,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"Evil.Example","qtype_name":"A"}"#;
        let a = ZeekJsonParser.parse(tagged).unwrap().unwrap().into_owned();
        let b = ZeekJsonParser.parse(plain).unwrap().unwrap().into_owned();
        assert_eq!(a, b);
        assert_eq!(a.dataset, "dns");
        assert_eq!(
            crate::logs::detect_format(tagged),
            Some(crate::logs::LogFormat::ZeekJson)
        );
        // Not a tag: a field whose value is an object, Splunk's wrapper, broken ones.
        assert!(untag(br#"{"ts": 1.5}"#).is_none());
        assert!(untag(br#"{"result": {"_raw": "x"}}"#).is_none());
        assert!(untag(br#"{"dns": {"ts": 1}"#).is_none());
        assert!(ZeekJsonParser.parse(br#"{"dns": {"ts": "#).is_err());
    }

    #[test]
    fn conn_http_ssl_files_x509() {
        let o = pair(
            "conn",
            "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice",
            "time\tstring\taddr\tport\taddr\tport\tenum\tstring",
            "1.5\tC1\t10.0.0.1\t5000\t2001:db8::1\t443\ttcp\tssl",
            r#"{"_path":"conn","ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5000,"id.resp_h":"2001:db8::1","id.resp_p":443,"proto":"tcp","service":"ssl"}"#,
        );
        assert_eq!(o.dataset, "flow");
        assert_eq!(o.transport, Some("tcp"));
        assert_eq!(o.protocol, Some("tls"));
        assert_eq!(o.destination_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(o.timestamp_ns, Some(1_500_000_000));

        let o = pair(
            "http",
            "ts\tid.orig_h\thost\turi\tmethod\tuser_agent\tstatus_code",
            "time\taddr\tstring\tstring\tstring\tstring\tcount",
            "2.0\t10.0.0.1\tEvil.example:8080\t/a/b?c=1\tPOST\tcurl/8\t404",
            r#"{"_path":"http","ts":2.0,"id.orig_h":"10.0.0.1","host":"Evil.example:8080","uri":"/a/b?c=1","method":"POST","user_agent":"curl/8","status_code":404}"#,
        );
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(
            o.url_full.as_deref(),
            Some("http://Evil.example:8080/a/b?c=1")
        );
        assert_eq!(o.url_path.as_deref(), Some("/a/b"));
        assert_eq!(o.http_status, Some(404));

        let o = pair(
            "ssl",
            "ts\tserver_name\tja3\tcert_chain_fps",
            "time\tstring\tstring\tvector[string]",
            "3\tWWW.Bad.example\te7d705a3286e19ea42f587b344ee6865\tAB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01,ffff",
            r#"{"_path":"ssl","ts":3,"server_name":"WWW.Bad.example","ja3":"e7d705a3286e19ea42f587b344ee6865","cert_chain_fps":["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01","ffff"]}"#,
        );
        assert_eq!(o.dataset, "tls");
        assert_eq!(o.tls_sni.as_deref(), Some("www.bad.example"));
        assert_eq!(o.ja3.as_deref(), Some("e7d705a3286e19ea42f587b344ee6865"));
        assert_eq!(
            o.tls_server_sha1.as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef01")
        );

        let o = pair(
            "files",
            "ts\ttx_hosts\trx_hosts\tmd5\tsha1\tsha256",
            "time\tset[addr]\tset[addr]\tstring\tstring\tstring",
            "4\t192.0.2.1\t10.0.0.9\td41d8cd98f00b204e9800998ecf8427e\tda39a3ee5e6b4b0d3255bfef95601890afd80709\t-",
            r#"{"_path":"files","ts":4,"tx_hosts":["192.0.2.1"],"rx_hosts":["10.0.0.9"],"md5":"d41d8cd98f00b204e9800998ecf8427e","sha1":"da39a3ee5e6b4b0d3255bfef95601890afd80709"}"#,
        );
        assert_eq!(o.dataset, "file");
        assert_eq!(
            o.destination_ip,
            Some("192.0.2.1".parse().unwrap()),
            "tx = sender"
        );
        assert_eq!(o.source_ip, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(
            o.file_md5.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert!(o.file_sha256.is_none());

        let o = pair(
            "x509",
            "ts\tid\tfingerprint",
            "time\tstring\tstring",
            "5\tFx\tda39a3ee5e6b4b0d3255bfef95601890afd80709",
            r#"{"_path":"x509","ts":5,"id":"Fx","fingerprint":"da39a3ee5e6b4b0d3255bfef95601890afd80709"}"#,
        );
        assert_eq!(o.dataset, "tls");
        assert_eq!(
            o.tls_server_sha1.as_deref(),
            Some("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let o = pair(
            "x509",
            "ts\tid\tfingerprint",
            "time\tstring\tstring",
            &format!("5\tFx\t{sha256}"),
            &format!(r#"{{"_path":"x509","ts":5,"id":"Fx","fingerprint":"{sha256}"}}"#),
        );
        assert_eq!(o.tls_server_sha1, None);
        assert_eq!(
            o.tls_server_sha256.as_deref(),
            Some(sha256.to_ascii_lowercase().as_str())
        );
    }

    /// A JSON value for the field-scanner property: plain and escaped strings, unicode,
    /// control characters, numbers valid and not, literals, arrays, nesting.
    fn json_value() -> impl Strategy<Value = String> {
        let scalar = prop::sample::select(vec![
            r#""evil.example""#,
            r#""10.0.0.1""#,
            r#""2001:db8::1""#,
            r#""a\u002eb.example""#,
            r#""x\"y""#,
            r#""\ud800""#,
            "\"tab\there\"",
            r#""ünï.example""#,
            r#""-""#,
            r#""""#,
            r#""2024-01-02T03:04:05Z""#,
            r#""1700000000.5""#,
            "1700000000.123456",
            "53",
            "65536",
            "053",
            "-1",
            "1e3",
            "1.",
            "0",
            "true",
            "false",
            "null",
            "nul",
            "[]",
            r#"["a.example", "10.0.0.2"]"#,
            r#"[300.0, 1]"#,
            r#"["x\"y"]"#,
            r#"["a", null]"#,
            r#"{"a": 1}"#,
            r#"[["a"]]"#,
        ]);
        scalar.prop_map(str::to_string)
    }

    fn json_key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "ts",
            "_path",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "query",
            "qtype_name",
            "answers",
            "host",
            "uri",
            "status_code",
            "server_name",
            "cert_chain_fps",
            "tx_hosts",
            "fingerprint",
            "result",
            "uid",
            "TTLs",
            "qu\\u0065ry",
        ])
    }

    proptest! {
        /// The field scanner reads every record as serde does: the same observation or the
        /// same error, whatever the escapes, unicode, duplicates, types and missing fields.
        #[test]
        fn zeek_json_fast_path_equals_serde(
            fields in prop::collection::vec((json_key(), json_value(), prop::sample::select(vec!["", " ", "\t"])), 0..12),
            tag in prop::sample::select(vec!["", "dns", "http"]),
            tail in prop::sample::select(vec!["", " ", ",", "}", "x", "\n"]),
        ) {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v, ws)| format!("\"{k}\"{ws}:{ws}{v}"))
                .collect();
            let mut line = format!("{{{}}}{tail}", body.join(","));
            if !tag.is_empty() {
                line = format!("{{\"{tag}\": {line}}}");
            }
            prop_assert!(fast_json_agrees(line.as_bytes()), "{}", line);
            check_screen(&ZeekJsonParser, line.as_bytes()).map_err(TestCaseError::fail)?;
        }
    }

    /// Plain dns, http and ssl records, tagged or not, are settled by the screen; hashes,
    /// fingerprints, escapes, a bad time and the Splunk wrapper take the full path.
    #[test]
    fn zeek_json_screen_settles_plain_records() {
        for clean in [
            &br#"{"dns":{"ts":1765065600.000772,"id.orig_h":"10.1.2.3","id.orig_p":1024,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"Serviceopen86.NET.","qtype_name":"A","answers":["203.0.113.1","cname.example","TXT a b"],"TTLs":[300.0]}}"#[..],
            br#"{"_path":"http","ts":"2024-01-02T03:04:05Z","id.orig_h":"10.1.2.3","host":"a.example:8080","uri":"/x?y=1","user_agent":"curl/8","method":"GET","status_code":200}"#,
            br#"{"ts":1.5,"uri":"http://b.example/p","user_agent":"-"}"#,
            br#"{"_path":"ssl","ts":1.5,"server_name":"c.example","cert_chain_fps":["not-a-hash"]}"#,
            &b"  {\"ts\":1.5,\"tx_hosts\":[\"10.0.0.9\"],\"rx_hosts\":[\"10.0.0.8\"]}\r\n"[..],
        ] {
            let text = String::from_utf8_lossy(clean);
            assert_eq!(check_screen(&ZeekJsonParser, clean), Ok(true), "{text}");
        }
        let sha1 = "a".repeat(40);
        for unsure in [
            format!(r#"{{"ts":1.5,"server_name":"c.example","cert_chain_fps":["{sha1}"]}}"#),
            format!(r#"{{"ts":1.5,"fingerprint":"{}"}}"#, "B".repeat(64)),
            r#"{"ts":1.5,"md5":"d41d8cd98f00b204e9800998ecf8427e"}"#.into(),
            r#"{"ts":1.5,"ja3":"x"}"#.into(),
            r#"{"ts":1.5,"query":"a\u002eexample"}"#.into(),
            r#"{"ts":"yesterday","query":"a.example"}"#.into(),
            r#"{"result":{"_raw":"{\"ts\":1.5}"}}"#.into(),
            "# a comment".into(),
            "".into(),
        ] {
            assert_eq!(
                check_screen(&ZeekJsonParser, unsure.as_bytes()),
                Ok(false),
                "{unsure}"
            );
        }
    }

    /// Plain records take the scanner (not the serde fallback) and read as serde reads them.
    #[test]
    fn plain_zeek_json_takes_the_field_scanner() {
        let rec = br#"{"ts":1765065600.000772,"uid":"C0","id.orig_h":"10.110.28.232","id.orig_p":1024,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":0,"rtt":0.00087,"query":"serviceopen86.net","qtype_name":"A","AA":false,"answers":["203.0.113.1"],"TTLs":[300.0],"rejected":false}"#;
        let (z, ts) = fast_fields(rec).unwrap();
        assert_eq!(ts, Some((false, "1765065600.000772")));
        assert_eq!(z.query.as_deref(), Some("serviceopen86.net"));
        assert_eq!(z.resp_p, Some(53));
        assert!(fast_json_agrees(rec));
        let o = parse_zeek_json(rec, true).unwrap().unwrap();
        assert_eq!(o.dns_question_name.as_deref(), Some("serviceopen86.net"));
        for refused in [
            &br#"{"query":"a\u002eb"}"#[..],
            br#"{"query":"a","query":"b"}"#,
            br#"{"query":null,"query":"b"}"#,
            br#"{"id.orig_p":"53"}"#,
            br#"{"result":{"_raw":"{}"}}"#,
        ] {
            assert!(fast_fields(refused).is_none());
            assert!(fast_json_agrees(refused));
        }
    }
}
