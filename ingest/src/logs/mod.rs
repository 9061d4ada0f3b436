//! Log formats and line parsers (ARCHITECTURE.md §2.2, §5).
//!
//! Every format has a [`LineParser`] that turns one line into an [`Observation`] whose
//! text fields borrow from the line (`Cow::Borrowed`), so the common path does not allocate.
//! Use [`detect_format`] on the first bytes of a file (or `--format`), then [`parser_for`].
//! [`open_input`] reads plain, gzip (multi-member) and zstd files, and stdin (`-`).
//!
//! ```
//! use ingest::logs::{detect_format, parser_for, LogFormat};
//! let data = b"1157689312.049 5006 10.105.21.199 TCP_MISS/200 19763 GET http://evil.example/x - DIRECT/192.0.2.1 -\n";
//! let format = detect_format(data).unwrap_or(LogFormat::Raw);
//! let parser = parser_for(format, data, None).unwrap();
//! for line in data.split(|&b| b == b'\n') {
//!     if let Ok(Some(obs)) = parser.parse(line) {
//!         assert_eq!(obs.url_domain.as_deref(), Some("evil.example"));
//!     }
//! }
//! ```
//!
//! What each format yields (ECS names; see the format's parser for details):
//! * Squid: `@timestamp`, `source.ip`, `http.request.method`, `http.response.status_code`,
//!   `url.full`/`url.domain`/`url.path` (CONNECT `host:port` → `url.domain`,
//!   `destination.port`), `destination.ip` from `DIRECT/1.2.3.4`. Dataset `proxy`.
//! * Combined: `source.ip`, `@timestamp`, method, `url.path`, status, `user_agent.original`,
//!   plus `url.full`/`url.domain` from a vhost prefix or an absolute target; Apache and nginx
//!   error-log lines give `source.ip` (and the request when nginx logs it). Dataset `http`.
//! * Zeek (TSV and JSON alike): `id.*` → source/destination ip/port, `proto` → transport;
//!   dns: `query`, `qtype_name`, `answers` (A/AAAA by shape, names as CNAME, or PTR/NS/MX
//!   for those query types); http: `host`+`uri` → `url.*`, method, user agent, status;
//!   ssl: `server_name`, `ja3`/`ja4`, first `cert_chain_fps` (a SHA-1 or SHA-256, as
//!   `tls.server.hash.sha1`/`sha256`); files: hashes, `tx_hosts` → destination, `rx_hosts` →
//!   source; x509: `fingerprint` (SHA-1 or SHA-256). Other logs (notice, ...): `src`/`dst`. A TSV parser reads the header in
//!   `head` once; a second header block with other `#fields` later in the file is not
//!   followed (its lines are checked against the first header's column count).
//! * BIND / Infoblox: `dns.question.name`/`type`, `source.ip`/`port`, the server in
//!   `(...)` as `destination.ip`, Infoblox response records as `dns.answers`.
//! * dnsmasq: question name/type, client, forwarder (`destination.ip`), reply answers.
//! * EVE: endpoints, transport, app protocol; dns (v1/v2/v3, `grouped` too), http, tls
//!   (sni, ja3.hash, ja4, colon-free fingerprint), fileinfo hashes; alerts carry whichever
//!   of these objects the event has.
//!
//! Conventions shared by every parser:
//! * `Ok(None)` is a line without an observation: blank, `#` comment, a Zeek header, or a
//!   known line of the format that carries nothing to match (a BIND zone-transfer summary,
//!   a dnsmasq start-up line). `Err` is a line that does not have the format's shape; its
//!   [`ParseError::reason`] is a short stable category for counting.
//! * Invalid UTF-8 does not reject a line: each field is decoded on its own, borrowed when it
//!   is valid and replaced lossily (U+FFFD, `Cow::Owned`) when it is not. The caller keeps
//!   the raw line bytes for `event.original` (like ripgrep's JSON `bytes`).
//! * Host names (`url.domain`, `dns.question.name`, `tls.client.server_name`, CNAME answers)
//!   are lower-cased with one trailing dot removed. `url.path` is the path without query
//!   (ECS); `url.full` keeps the query. Hashes are lower-case hex without colons.
//! * Timestamps with no time zone (BIND, nginx error log) are taken as UTC; syslog headers
//!   have no year, so a line whose only date is a syslog header has no `@timestamp`.
//! * `origin` is left [`Origin::None`](crate::Origin::None): the caller sets it.

mod address;
mod cef;
mod contract;
mod detect;
mod dns;
mod ecs_values;
mod eve;
mod flat_json;
mod format_plan;
mod fortigate;
mod http;
mod input;
mod json;
mod keyvalue;
mod panos;
mod request;
mod serde_helpers;
mod timestamps;
mod tokens;
mod umbrella;
mod url;
mod w3c;
mod windows_dns;
mod zeek;
mod zscaler;

use crate::Observation;
use std::fmt;
use std::str::FromStr;

#[doc(hidden)]
pub use contract::check_screen;
pub use detect::{detect_format, detect_format_explained, Detection};
pub use format_plan::{Dialect, FormatPlan, PlanError, PlanParser};
pub use input::open_input;
pub use json::{EcsField, FieldMap};

/// A log format trawl can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Squid native `access.log`.
    Squid,
    /// Apache/nginx/Traefik common and combined (CLF), with optional vhost prefix; also
    /// nginx error-log lines that carry `client:`/`request:`/`host:`.
    Combined,
    /// Zeek TSV logs (`#separator`, `#fields`, `#types` header).
    ZeekTsv,
    /// Zeek JSON logs (one object per line).
    ZeekJson,
    /// BIND 9 query log (file or syslog form).
    Bind,
    /// Infoblox NIOS named query/response logs (parsed like BIND).
    Infoblox,
    /// dnsmasq `log-queries` lines.
    Dnsmasq,
    /// Suricata EVE JSON.
    SuricataEve,
    /// Any JSON lines, fields picked by a [`FieldMap`].
    JsonLines,
    /// W3C extended log files (IIS, ProxySG): `#Fields:` directives, possibly changing.
    W3c,
    /// ArcSight CEF, with or without a syslog header.
    Cef,
    /// IBM QRadar LEEF 1.0 and 2.0.
    Leef,
    /// FortiGate (FortiOS) `key=value` logs.
    Fortigate,
    /// Cisco Umbrella DNS and proxy CSV exports.
    Umbrella,
    /// Windows DNS Server debug log.
    WindowsDns,
    /// Palo Alto Networks PAN-OS syslog CSV (TRAFFIC, THREAT).
    Panos,
    /// Zscaler ZIA NSS web logs as JSON lines.
    Zscaler,
    /// Unknown text: no fields, the caller scans the raw line.
    Raw,
}

impl LogFormat {
    /// Every format, in a stable order.
    pub const ALL: [LogFormat; 18] = [
        LogFormat::Squid,
        LogFormat::Combined,
        LogFormat::ZeekTsv,
        LogFormat::ZeekJson,
        LogFormat::Bind,
        LogFormat::Infoblox,
        LogFormat::Dnsmasq,
        LogFormat::SuricataEve,
        LogFormat::JsonLines,
        LogFormat::W3c,
        LogFormat::Cef,
        LogFormat::Leef,
        LogFormat::Fortigate,
        LogFormat::Umbrella,
        LogFormat::WindowsDns,
        LogFormat::Panos,
        LogFormat::Zscaler,
        LogFormat::Raw,
    ];

    /// The `--format` name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Squid => "squid",
            LogFormat::Combined => "combined",
            LogFormat::ZeekTsv => "zeek",
            LogFormat::ZeekJson => "zeek-json",
            LogFormat::Bind => "bind",
            LogFormat::Infoblox => "infoblox",
            LogFormat::Dnsmasq => "dnsmasq",
            LogFormat::SuricataEve => "eve",
            LogFormat::JsonLines => "json",
            LogFormat::W3c => "w3c",
            LogFormat::Cef => "cef",
            LogFormat::Leef => "leef",
            LogFormat::Fortigate => "fortigate",
            LogFormat::Umbrella => "umbrella",
            LogFormat::WindowsDns => "windows-dns",
            LogFormat::Panos => "panos",
            LogFormat::Zscaler => "zscaler",
            LogFormat::Raw => "raw",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = LogError;
    /// Parse a `--format` name (`auto` is not a format: handle it with [`detect_format`]).
    fn from_str(s: &str) -> Result<Self, LogError> {
        let f = match s.to_ascii_lowercase().as_str() {
            "squid" => LogFormat::Squid,
            "combined" | "common" | "clf" | "apache" | "nginx" | "traefik" => LogFormat::Combined,
            "zeek" | "zeek-tsv" | "bro" => LogFormat::ZeekTsv,
            "zeek-json" => LogFormat::ZeekJson,
            "bind" | "named" => LogFormat::Bind,
            "infoblox" => LogFormat::Infoblox,
            "dnsmasq" => LogFormat::Dnsmasq,
            "eve" | "suricata" => LogFormat::SuricataEve,
            "json" | "jsonl" | "ndjson" => LogFormat::JsonLines,
            "w3c" | "iis" | "proxysg" | "bluecoat" => LogFormat::W3c,
            "cef" => LogFormat::Cef,
            "leef" => LogFormat::Leef,
            "fortigate" | "fortinet" | "fortios" => LogFormat::Fortigate,
            "umbrella" => LogFormat::Umbrella,
            "windows-dns" | "windns" => LogFormat::WindowsDns,
            "panos" | "pan-os" | "paloalto" => LogFormat::Panos,
            "zscaler" | "zia" | "nss" => LogFormat::Zscaler,
            "raw" => LogFormat::Raw,
            _ => return Err(LogError::UnknownFormat(s.to_string())),
        };
        Ok(f)
    }
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Short stable category for counting (`"bad timestamp"`, `"too few fields"`,
    /// `"invalid json"`, ...).
    pub reason: &'static str,
    /// Extra detail, only when it is cheap to produce (JSON errors).
    pub detail: Option<String>,
}

impl ParseError {
    /// An error with only a reason (no allocation).
    pub const fn new(reason: &'static str) -> Self {
        ParseError {
            reason,
            detail: None,
        }
    }
}

/// Errors setting up a parser or opening an input.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        /// The input path (`-` for stdin).
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A `--format` name we do not know.
    #[error("unknown log format {0:?} (try squid, combined, nginx, apache, zeek, zeek-json, bind, infoblox, dnsmasq, eve, json, w3c, cef, leef, fortigate, umbrella, windows-dns, panos, zscaler, raw)")]
    UnknownFormat(String),
    /// A Zeek TSV file without a usable header.
    #[error("zeek header: {0}")]
    ZeekHeader(String),
    /// A `[log.field_map]` entry we cannot use.
    #[error("field map: {0}")]
    FieldMap(String),
}

/// Parses one line of a log format into an observation.
pub trait LineParser: Send + Sync {
    /// `Ok(None)`: blank/comment/header line (or a line carrying nothing to match).
    /// `Err`: unparseable, with a stable reason. The line may still end in `\n`/`\r\n`.
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError>;

    /// A cheap pre-screen for matching, without building an observation:
    /// [`Screened::Clean`] only when [`LineParser::parse`] would return an observation and
    /// `probe` answers "cannot alert" for every value of it that the correlator looks up
    /// (the same values, normalised the same way). Anything else, including lines this
    /// parser does not screen, is [`Screened::Unsure`]: parse and match the line fully.
    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        let _ = (line, probe);
        Screened::Unsure
    }

    /// For formats whose records are read by a directive earlier in the file (W3C's
    /// `#Fields:`): the text that opens such a directive line. `None` (the default): the
    /// format has none, and the file's lines are independent.
    fn directive_prefix(&self) -> Option<&'static [u8]> {
        None
    }

    /// The parser for the lines after the directive `line` (a line opening with
    /// [`LineParser::directive_prefix`]); `None` when `line` is not one.
    fn after_directive(&self, line: &[u8]) -> Option<Box<dyn LineParser>> {
        let _ = line;
        None
    }
}

/// The outcome of [`LineParser::screen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// A well-formed line none of whose values can alert: count it as an observation, done.
    Clean,
    /// Parse and match the line fully.
    Unsure,
}

impl Screened {
    /// `Unsure` when some value of the line may alert, else `Clean`.
    pub fn unless(may_alert: bool) -> Screened {
        if may_alert {
            Screened::Unsure
        } else {
            Screened::Clean
        }
    }
}

/// Could any of a line's addresses (`source.ip`, `destination.ip`) alert?
pub(crate) fn any_ip_may_alert(ips: [Option<std::net::IpAddr>; 2], probe: &dyn AlertProbe) -> bool {
    ips.into_iter()
        .any(|ip| ScreenAddr::from(ip).may_alert(probe))
}

/// An address field as a screen reads it: a plain dotted quad straight into a register,
/// anything else through [`address::parse_ip`] (`parse`'s reading either way).
#[derive(Clone, Copy)]
pub(crate) enum ScreenAddr {
    /// No address (`parse` sets none).
    Absent,
    /// An IPv4 address.
    V4(std::net::Ipv4Addr),
    /// An IPv6 address.
    V6(std::net::Ipv6Addr),
}

impl From<Option<std::net::IpAddr>> for ScreenAddr {
    fn from(ip: Option<std::net::IpAddr>) -> Self {
        match ip {
            None => ScreenAddr::Absent,
            Some(std::net::IpAddr::V4(a)) => ScreenAddr::V4(a),
            Some(std::net::IpAddr::V6(a)) => ScreenAddr::V6(a),
        }
    }
}

impl ScreenAddr {
    /// Read `text` exactly as `address::parse_ip` does.
    #[inline]
    pub(crate) fn read(text: &[u8]) -> ScreenAddr {
        match address::parse_ipv4_fast(text) {
            Some(a) => ScreenAddr::V4(a),
            None => address::parse_ip_unless_plain_v4(text).into(),
        }
    }

    /// Hint the probe that this address will be asked about.
    #[inline]
    pub(crate) fn prefetch(self, probe: &dyn AlertProbe) {
        if let ScreenAddr::V4(a) = self {
            probe.prefetch_ipv4(a);
        }
    }

    /// Could this address alert? (`false` when absent: nothing is looked up.)
    #[inline]
    pub(crate) fn may_alert(self, probe: &dyn AlertProbe) -> bool {
        match self {
            ScreenAddr::Absent => false,
            ScreenAddr::V4(a) => probe.ipv4(a),
            ScreenAddr::V6(a) => probe.ip(std::net::IpAddr::V6(a)),
        }
    }
}

/// "Could this observed value alert?", asked by [`LineParser::screen`]. `false` must be
/// exact (no hit that would alert); `true` means "maybe". Each method receives the value
/// exactly as the correlator would pass it to the matcher for that field.
pub trait AlertProbe {
    /// `source.ip` / `destination.ip` (the matcher's `match_ip`).
    fn ip(&self, ip: std::net::IpAddr) -> bool;
    /// `url.domain`, `dns.question.name`, ... (`match_domain`).
    fn domain(&self, host: &str) -> bool;
    /// `url.full` (`match_url`, which includes the pattern set).
    fn url(&self, url: &str) -> bool;
    /// `url.full` (as bytes: "maybe" when it is not UTF-8, as `parse` would decode it
    /// lossily) and its `url.domain` together: `url(url) || domain(host)`, which an
    /// implementation may answer with one lookup.
    fn url_and_domain(&self, url: &[u8], host: &str) -> bool {
        match std::str::from_utf8(url) {
            Ok(u) => self.url(u) || self.domain(host),
            Err(_) => true,
        }
    }
    /// [`AlertProbe::url_and_domain`] for a URL whose host
    /// [`matcher::text::plain_http_host`] found (`http(s)://host/...` with a plain
    /// lower-case ASCII host: `host` is its `url.domain` as is), which an implementation
    /// may answer without looking at the URL again.
    fn plain_http_url(&self, url: &[u8], host: &[u8]) -> bool {
        std::str::from_utf8(host).map_or(true, |h| self.url_and_domain(url, h))
    }
    /// A hint that `ip(ip)` will be asked soon (lets an implementation start a memory
    /// load early). Does nothing by default.
    fn prefetch_ip(&self, ip: std::net::IpAddr) {
        let _ = ip;
    }
    /// `ip` of an IPv4 address (passed in a register, not as an `IpAddr` in memory).
    fn ipv4(&self, ip: std::net::Ipv4Addr) -> bool {
        self.ip(std::net::IpAddr::V4(ip))
    }
    /// `prefetch_ip` of an IPv4 address.
    fn prefetch_ipv4(&self, ip: std::net::Ipv4Addr) {
        self.prefetch_ip(std::net::IpAddr::V4(ip));
    }
    /// `url.path` without a full URL, `user_agent.original` (`match_pattern`).
    fn pattern(&self, text: &[u8]) -> bool;
}

/// The parser for `format`. `head` is the start of the file (Zeek TSV reads its header
/// from it); `field_map` is used by [`LogFormat::JsonLines`] (ECS names when `None`).
pub fn parser_for(
    format: LogFormat,
    head: &[u8],
    field_map: Option<&FieldMap>,
) -> Result<Box<dyn LineParser>, LogError> {
    Ok(match format {
        LogFormat::Squid => Box::new(http::SquidParser),
        LogFormat::Combined => Box::new(http::CombinedParser),
        LogFormat::ZeekTsv => Box::new(zeek::ZeekTsvParser::from_head(head)?),
        LogFormat::ZeekJson => Box::new(zeek::ZeekJsonParser),
        LogFormat::Bind | LogFormat::Infoblox => Box::new(dns::BindParser),
        LogFormat::Dnsmasq => Box::new(dns::DnsmasqParser),
        LogFormat::SuricataEve => Box::new(eve::EveParser),
        LogFormat::JsonLines => Box::new(json::JsonParser::new(
            field_map.cloned().unwrap_or_else(FieldMap::ecs),
        )),
        LogFormat::W3c => Box::new(w3c::W3cParser::from_head(head)),
        LogFormat::Cef => Box::new(cef::CefParser),
        LogFormat::Leef => Box::new(cef::LeefParser),
        LogFormat::Fortigate => Box::new(fortigate::FortigateParser),
        LogFormat::Umbrella => Box::new(umbrella::UmbrellaParser),
        LogFormat::WindowsDns => Box::new(windows_dns::WindowsDnsParser),
        LogFormat::Panos => Box::new(panos::PanosParser),
        LogFormat::Zscaler => Box::new(zscaler::ZscalerParser),
        LogFormat::Raw => Box::new(RawParser),
    })
}

/// `--raw`: every non-empty line is an observation with dataset `log` and no fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawParser;

impl LineParser for RawParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        if tokens::trim_eol(line).is_empty() {
            return Ok(None);
        }
        Ok(Some(Observation {
            dataset: "log",
            ..Default::default()
        }))
    }
}

/// Compile the first line of `data` as a format string in each dialect and run the plans
/// that compile, and the predefined Squid ones, over the other lines, checking the screen's
/// contract: the body of the `log_logformat` fuzz target. It must never panic.
#[doc(hidden)]
pub fn fuzz_logformat(data: &[u8]) {
    let mut parts = data.splitn(2, |&b| b == b'\n');
    let first = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let rest = parts.next().unwrap_or_default();
    let mut plans: Vec<FormatPlan> = [Dialect::Squid, Dialect::Nginx, Dialect::Apache]
        .into_iter()
        .filter_map(|d| FormatPlan::compile(d, &first).ok())
        .collect();
    plans.extend(
        ["squid", "common", "combined", "referrer", "useragent"]
            .into_iter()
            .filter_map(FormatPlan::squid_predefined),
    );
    for plan in plans {
        let p = PlanParser::new(plan);
        for line in rest.split(|&b| b == b'\n') {
            if let Err(e) = check_screen(&p, line) {
                panic!("{e}");
            }
            if let Ok(Some(o)) = p.parse(line) {
                let _ = o.to_ecs();
            }
        }
    }
}

/// Parse every line of `data` with a parser for `format` built from `data` itself, and drop
/// the results. This is the body of the `log_*` fuzz targets (and of the proptests that
/// cover them in CI); it must never panic.
#[doc(hidden)]
pub fn fuzz_parse(format: LogFormat, data: &[u8]) {
    let _ = detect_format(data);
    /// Answers the same to every question.
    struct Always(bool);
    impl AlertProbe for Always {
        fn ip(&self, _: std::net::IpAddr) -> bool {
            self.0
        }
        fn domain(&self, _: &str) -> bool {
            self.0
        }
        fn url(&self, _: &str) -> bool {
            self.0
        }
        fn pattern(&self, _: &[u8]) -> bool {
            self.0
        }
    }
    if let Ok(first) = parser_for(format, data, None) {
        let mut switched: Option<Box<dyn LineParser>> = None;
        for line in data.split(|&b| b == b'\n') {
            if let Some(next) = first.after_directive(line) {
                switched = Some(next);
            }
            let p: &dyn LineParser = switched.as_deref().unwrap_or(first.as_ref());
            let parsed = p.parse(line);
            // Zeek JSON's field scanner reads a line exactly as serde does.
            assert!(
                format != LogFormat::ZeekJson || zeek::fast_json_agrees(line),
                "the Zeek JSON field scanner and serde disagree on {:?}",
                String::from_utf8_lossy(line)
            );
            // The pre-screen never calls a line clean that `parse` rejects, and asks
            // exactly what the correlator would look up.
            if let Err(e) = check_screen(p, line) {
                panic!("{e}");
            }
            let _ = p.screen(line, &Always(true));
            if let Ok(Some(o)) = parsed {
                let _ = o.to_ecs();
            }
        }
    }
}
