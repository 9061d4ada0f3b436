//! Access logs written with a server's own format string: Squid `logformat`, nginx
//! `log_format`, Apache `LogFormat`. The string is compiled once into a [`FormatPlan`]: the
//! literal text between fields and, for every field, the role it plays in an observation
//! (client address, method, URL, ...) or [`Role::Skip`]. Each line is then cut at the
//! literals and every field that maps to an observation is checked for its shape (an
//! address where one must be, a number, a method), so a line written with another format is
//! counted unparseable with a reason instead of being read wrong.

use super::address::{parse_ip, parse_u16};
use super::request::{screen_target, set_target, split_request};
use super::timestamps::{parse_clf_time, parse_epoch, parse_iso8601};
use super::tokens::{closing_quote, trim_eol, Line};
use super::{AlertProbe, LineParser, LogFormat, ParseError, ScreenAddr, Screened};
use crate::Observation;
use std::fmt;
use std::net::IpAddr;

/// Whose format-string language a plan was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Squid `logformat` (`%ts.%03tu %6tr %>a ...`).
    Squid,
    /// nginx `log_format` (`$remote_addr - $remote_user [$time_local] ...`).
    Nginx,
    /// Apache `LogFormat` (`%h %l %u %t "%r" %>s %b`).
    Apache,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Squid => "squid",
            Dialect::Nginx => "nginx",
            Dialect::Apache => "apache",
        }
    }
}

/// What a field of the format gives the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not observed (sizes, times taken, cache codes, referer, user, ...).
    Skip,
    /// The client address (`%>a`, `$remote_addr`, `%a`): must be an address.
    ClientIp,
    /// A client that may be a host name (`%h`, `%>A`): an address when it is one.
    ClientHost,
    /// The client port.
    ClientPort,
    /// The server address (`%<a`, `%A`, `$server_addr`): an address when it is one.
    ServerHost,
    /// The server port.
    ServerPort,
    /// The request method.
    Method,
    /// The request target: absolute URL, authority, or path with query.
    Target,
    /// The request line `METHOD target HTTP/x.y`.
    Request,
    /// The HTTP status.
    Status,
    /// The `User-Agent` header.
    UserAgent,
    /// The `Host` header or the virtual host: the URL's host for an origin-form target.
    Host,
    /// The TLS SNI (`%ssl::>sni`, `$ssl_server_name`).
    Sni,
    /// Whole seconds since the epoch (`%ts`) or seconds with a fraction (`$msec`).
    EpochSeconds,
    /// The milliseconds after `%ts.` (`%03tu`).
    EpochMillis,
    /// `dd/Mon/yyyy:hh:mm:ss zone` (`%tl`, `$time_local`, inside Apache's `%t`).
    ClfTime,
    /// ISO 8601 (`$time_iso8601`).
    IsoTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Text the format writes as is.
    Lit(Vec<u8>),
    /// A field; `quoted` when it sits between `"` literals (it may hold `\"`).
    Field { role: Role, quoted: bool },
}

/// An [`Item`] as `split` runs it, with what each line would otherwise recompute (a
/// literal's blanks, where a field ends) worked out once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A literal: one or more blanks first when `lead`, then `core` exactly, then one or more
    /// blanks when `trail`.
    Lit {
        lead: bool,
        core: Vec<u8>,
        trail: bool,
    },
    /// A field and how its end is found.
    Field { role: Role, quoted: bool, end: End },
}

/// How an unquoted field's end is found: by the literal that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Nothing follows: the rest of the line.
    Rest,
    /// Blanks follow: the first blank.
    Blank,
    /// A one-byte literal (after trailing blanks are dropped).
    Byte(u8),
    /// A longer literal (after trailing blanks are dropped).
    Seq(Vec<u8>),
}

fn steps_of(items: &[Item]) -> Vec<Step> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(match item {
            Item::Lit(lit) => {
                let lead = lit.iter().take_while(|&&c| is_blank(c)).count();
                let body = &lit[lead..];
                let trail = body.iter().rev().take_while(|&&c| is_blank(c)).count();
                Step::Lit {
                    lead: lead > 0,
                    core: body[..body.len() - trail].to_vec(),
                    trail: trail > 0 && body.len() > trail,
                }
            }
            Item::Field { role, quoted } => {
                let next: &[u8] = match items.get(i + 1) {
                    Some(Item::Lit(l)) => l,
                    _ => &[],
                };
                let core_len = next.len() - next.iter().rev().take_while(|&&c| is_blank(c)).count();
                let end = match &next[..core_len] {
                    [] if next.is_empty() => End::Rest,
                    [] => End::Blank,
                    [c] => End::Byte(*c),
                    core => End::Seq(core.to_vec()),
                };
                Step::Field {
                    role: *role,
                    quoted: *quoted,
                    end,
                }
            }
        });
    }
    out
}

/// A compiled format string (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatPlan {
    dialect: Dialect,
    items: Vec<Item>,
    /// `items` as `split` runs them.
    steps: Vec<Step>,
    /// The format string as given (for messages).
    source: String,
    /// Has the plan a Host field? (`parse` builds URLs from it; the screen leaves those
    /// lines to `parse`.)
    has_host: bool,
}

/// Errors compiling a format string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Codes the dialect does not have.
    #[error("unknown {dialect} log format code(s): {codes} (check the spelling against the server's documentation)")]
    UnknownCodes {
        /// The dialect.
        dialect: &'static str,
        /// The codes, comma-separated.
        codes: String,
    },
    /// Something else about the string.
    #[error("{0}")]
    Bad(String),
}

impl fmt::Display for FormatPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} logformat {:?}", self.dialect.name(), self.source)
    }
}

/// The format string of a configuration line: Squid `logformat NAME fmt`, nginx
/// `log_format NAME [escape=..] 'a' 'b';` (quoted parts joined), Apache
/// `LogFormat "fmt" [nickname]` (`\"` unescaped); anything else is the format itself.
fn strip_directive(s: &str) -> String {
    let t = s.trim();
    let mut words = t.splitn(3, char::is_whitespace);
    let first = words.next().unwrap_or("");
    if first == "logformat" {
        let rest = t["logformat".len()..].trim_start();
        let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        return rest[name_end..].trim().to_string();
    }
    if first == "log_format" {
        let rest = t["log_format".len()..].trim_start();
        let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let mut body = rest[name_end..].trim();
        if let Some(r) = body.strip_prefix("escape=") {
            body = r.find(char::is_whitespace).map_or("", |i| r[i..].trim());
        }
        return join_quoted(body.trim_end_matches(';'));
    }
    if first.eq_ignore_ascii_case("LogFormat") || first.eq_ignore_ascii_case("CustomLog") {
        let rest = t[first.len()..].trim_start();
        if let Some(inner) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('"') => out.push('"'),
                        Some(o) => {
                            out.push('\\');
                            out.push(o);
                        }
                        None => out.push('\\'),
                    },
                    '"' => break,
                    c => out.push(c),
                }
            }
            return out;
        }
    }
    t.to_string()
}

/// nginx's `'part one ' 'part two'` → `part one part two`; unquoted text is kept.
fn join_quoted(body: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in body.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => out.push(c),
            (None, c) if c.is_whitespace() => {}
            (None, c) => out.push(c),
        }
    }
    out
}

/// Squid's format codes, longest first within a shared prefix; every code not listed
/// here (or under a `::` namespace below) is unknown.
const SQUID_CODES: &[&str] = &[
    ">handshake",
    ">nfmark",
    "<nfmark",
    ">eui",
    ">qos",
    "<qos",
    ">la",
    ">lp",
    "<la",
    "<lp",
    ">a",
    ">A",
    ">p",
    "<a",
    "<A",
    "<p",
    "la",
    "lp",
    "busy_time",
    "ts",
    "tu",
    "tl",
    "tg",
    "tr",
    "tt",
    "tS",
    "dt",
    "credentials",
    "un",
    "ul",
    "ue",
    "ui",
    "us",
    "Ss",
    "Sh",
    ">Hs",
    "<Hs",
    "Hs",
    "mt",
    ">rm",
    ">ru",
    ">rs",
    ">rd",
    ">rP",
    ">rp",
    ">rv",
    "<rm",
    "<ru",
    "<rs",
    "<rd",
    "<rP",
    "<rp",
    "<rv",
    "rm",
    "ru",
    "rs",
    "rd",
    "rP",
    "rp",
    "rv",
    ">st",
    "<st",
    ">sh",
    "<sh",
    "st",
    "<sH",
    "<sS",
    "<tt",
    "<pt",
    "<bs",
    ">bs",
    "<lh",
    ">ha",
    ">h",
    "<h",
    "err_code",
    "err_detail",
    "master_xaction",
    "note",
    "ea",
    "sn",
    "et",
];

/// Squid code namespaces (`%ssl::bump_mode`, `%icap::tt`, ...): any code under them is
/// known; only `ssl::>sni` is observed.
const SQUID_NAMESPACES: &[&str] = &[
    "ssl::",
    "icap::",
    "adapt::",
    "proxy_protocol::",
    "transport::",
    "ext_acl",
];

fn squid_role(code: &str, arg: Option<&str>) -> Role {
    let header = |h: Option<&str>| match h.map(|h| h.split(':').next().unwrap_or(h)) {
        Some(h) if h.eq_ignore_ascii_case("User-Agent") => Role::UserAgent,
        Some(h) if h.eq_ignore_ascii_case("Host") => Role::Host,
        _ => Role::Skip,
    };
    match code {
        ">a" => Role::ClientIp,
        ">A" => Role::ClientHost,
        ">p" => Role::ClientPort,
        "<a" => Role::ServerHost,
        "<p" => Role::ServerPort,
        "ts" => Role::EpochSeconds,
        "tu" => Role::EpochMillis,
        "tl" | "tg" => Role::ClfTime,
        "rm" | ">rm" => Role::Method,
        "ru" | ">ru" => Role::Target,
        ">Hs" | "Hs" => Role::Status,
        ">h" => header(arg),
        "ssl::>sni" => Role::Sni,
        _ => Role::Skip,
    }
}

fn nginx_role(var: &str) -> Option<Role> {
    const SKIP: &[&str] = &[
        "remote_user",
        "body_bytes_sent",
        "bytes_sent",
        "request_length",
        "request_time",
        "connection",
        "connection_requests",
        "pipe",
        "gzip_ratio",
        "server_protocol",
        "scheme",
        "https",
        "hostname",
        "pid",
        "msec_frac",
        "time_local_frac",
        "request_id",
        "req_id",
        "document_root",
        "realpath_root",
        "request_filename",
        "request_completion",
        "request_body",
        "nginx_version",
        "binary_remote_addr",
        "realip_remote_addr",
        "realip_remote_port",
        "proxy_protocol_addr",
        "proxy_protocol_port",
        "proxy_add_x_forwarded_for",
        "proxy_host",
        "proxy_port",
        "proxy_upstream_name",
        "proxy_alternative_upstream_name",
        "ssl_protocol",
        "ssl_cipher",
        "ssl_session_id",
        "ssl_session_reused",
        "ssl_client_verify",
        "ssl_client_s_dn",
        "ssl_client_i_dn",
        "ssl_client_fingerprint",
        "ssl_client_serial",
        "ssl_early_data",
        "ssl_curves",
        "ssl_ciphers",
        "content_type",
        "content_length",
        "limit_rate",
        "status_text",
        "args",
        "query_string",
        "is_args",
        "uri",
        "document_uri",
        "tcpinfo_rtt",
        "tcpinfo_rttvar",
        "tcpinfo_snd_cwnd",
        "tcpinfo_rcv_space",
        "namespace",
        "ingress_name",
        "service_name",
        "service_port",
    ];
    const SKIP_PREFIXES: &[&str] = &[
        "upstream_",
        "sent_http_",
        "sent_trailer_",
        "cookie_",
        "arg_",
        "geoip_",
        "geoip2_",
        "jwt_",
        "http_",
    ];
    Some(match var {
        "remote_addr" => Role::ClientIp,
        "remote_port" => Role::ClientPort,
        "server_addr" => Role::ServerHost,
        "server_port" => Role::ServerPort,
        "request" => Role::Request,
        "request_method" => Role::Method,
        "request_uri" => Role::Target,
        "status" => Role::Status,
        "http_user_agent" => Role::UserAgent,
        "http_host" | "host" | "server_name" => Role::Host,
        "ssl_server_name" => Role::Sni,
        "time_local" => Role::ClfTime,
        "time_iso8601" => Role::IsoTime,
        "msec" => Role::EpochSeconds,
        v if SKIP.contains(&v) || SKIP_PREFIXES.iter().any(|p| v.starts_with(p)) => Role::Skip,
        _ => return None,
    })
}

/// Apache's codes and what each gives; `arg` is the `{...}` before the code.
fn apache_role(code: char, arg: Option<&str>) -> Option<Role> {
    Some(match code {
        'a' => Role::ClientIp,
        'h' => Role::ClientHost,
        'A' => Role::ServerHost,
        'p' => match arg {
            Some("remote") => Role::ClientPort,
            _ => Role::ServerPort,
        },
        'm' => Role::Method,
        'U' => Role::Target,
        'r' => Role::Request,
        's' => Role::Status,
        'i' => match arg {
            Some(h) if h.eq_ignore_ascii_case("User-Agent") => Role::UserAgent,
            Some(h) if h.eq_ignore_ascii_case("Host") => Role::Host,
            Some(_) => Role::Skip,
            None => return None,
        },
        'v' | 'V' => Role::Host,
        // `%t` is written by `compile_apache` as `[` time `]`; `%{format}t` is skipped.
        't' => match arg {
            None => Role::ClfTime,
            Some(_) => Role::Skip,
        },
        'B' | 'b' | 'C' | 'D' | 'e' | 'f' | 'H' | 'k' | 'l' | 'L' | 'n' | 'o' | 'P' | 'q' | 'R'
        | 'T' | 'u' | 'X' | 'I' | 'O' | 'S' | 'M' => Role::Skip,
        _ => return None,
    })
}

impl FormatPlan {
    /// Compile `format` (a format string, or the whole configuration line that defines it)
    /// for `dialect`.
    pub fn compile(dialect: Dialect, format: &str) -> Result<FormatPlan, PlanError> {
        let source = strip_directive(format);
        if source.trim().is_empty() {
            return Err(PlanError::Bad("the log format string is empty".into()));
        }
        let mut b = Builder::default();
        match dialect {
            Dialect::Squid => compile_squid(&source, &mut b),
            Dialect::Nginx => compile_nginx(&source, &mut b),
            Dialect::Apache => compile_apache(&source, &mut b),
        }
        if !b.unknown.is_empty() {
            return Err(PlanError::UnknownCodes {
                dialect: dialect.name(),
                codes: b.unknown.join(", "),
            });
        }
        let items = b.finish()?;
        let has_host = items.iter().any(|i| {
            matches!(
                i,
                Item::Field {
                    role: Role::Host,
                    ..
                }
            )
        });
        Ok(FormatPlan {
            dialect,
            steps: steps_of(&items),
            items,
            source,
            has_host,
        })
    }

    /// Compile `format` for the dialect `--format` names: `squid` is Squid's; `combined`
    /// (also spelled `nginx`, `apache`) is nginx's when the string uses `$variables`, else
    /// Apache's; no `--format` reads the dialect from the directive (`logformat`,
    /// `log_format`, `LogFormat`) or the `$`.
    pub fn for_format(format: Option<LogFormat>, text: &str) -> Result<FormatPlan, PlanError> {
        let t = text.trim_start();
        let nginx = t.starts_with("log_format") || text.contains('$');
        let dialect = match format {
            Some(LogFormat::Squid) => Dialect::Squid,
            Some(LogFormat::Combined) if nginx => Dialect::Nginx,
            Some(LogFormat::Combined) => Dialect::Apache,
            Some(other) => {
                return Err(PlanError::Bad(format!(
                    "--logformat is for --format squid, nginx or apache, not {other}"
                )))
            }
            None if t.starts_with("logformat") => Dialect::Squid,
            None if nginx => Dialect::Nginx,
            None if t.starts_with("LogFormat") => Dialect::Apache,
            None => {
                return Err(PlanError::Bad(
                    "say whose format string this is: --format squid, nginx or apache".into(),
                ))
            }
        };
        FormatPlan::compile(dialect, text)
    }

    /// The plan of one of Squid's predefined formats (`squid`, `common`, `combined`,
    /// `referrer`, `useragent`), as `squid.conf` documents them.
    pub fn squid_predefined(name: &str) -> Option<FormatPlan> {
        let f = match name {
            "squid" => "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt",
            "common" => "%>a %[ui %[un [%tl] \"%rm %ru HTTP/%rv\" %>Hs %<st %Ss:%Sh",
            "combined" => "%>a %[ui %[un [%tl] \"%rm %ru HTTP/%rv\" %>Hs %<st \"%{Referer}>h\" \"%{User-Agent}>h\" %Ss:%Sh",
            "referrer" => "%ts.%03tu %>a %{Referer}>h %ru",
            "useragent" => "%>a [%tl] \"%{User-Agent}>h\"",
            _ => return None,
        };
        FormatPlan::compile(Dialect::Squid, f).ok()
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

#[derive(Default)]
struct Builder {
    items: Vec<Item>,
    unknown: Vec<String>,
    /// Two fields with no text between them (other than `%U%q`).
    adjacent: bool,
}

impl Builder {
    fn lit(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Item::Lit(l)) = self.items.last_mut() {
            l.extend_from_slice(s.as_bytes());
        } else {
            self.items.push(Item::Lit(s.as_bytes().to_vec()));
        }
    }

    fn field(&mut self, role: Role) {
        // Two fields without text between them: only a path followed by its query
        // (`%U%q`) can be told apart, and it is one target.
        if let Some(Item::Field { role: prev, .. }) = self.items.last_mut() {
            if *prev == Role::Target && role == Role::Skip {
                return; // `%q` after `%U`: part of the target
            }
            if *prev == Role::Skip && role == Role::Skip {
                return;
            }
            self.adjacent = true;
            return;
        }
        self.items.push(Item::Field {
            role,
            quoted: false,
        });
    }

    fn finish(mut self) -> Result<Vec<Item>, PlanError> {
        if self.adjacent {
            return Err(PlanError::Bad(
                "two fields follow each other with no text between them, so a line cannot be cut between them (only %U%q can)".into(),
            ));
        }
        let n = self.items.len();
        for i in 0..n {
            let before = match i.checked_sub(1).map(|j| &self.items[j]) {
                Some(Item::Lit(l)) => l.last() == Some(&b'"'),
                _ => false,
            };
            let after = match self.items.get(i + 1) {
                Some(Item::Lit(l)) => l.first() == Some(&b'"'),
                _ => false,
            };
            if let Item::Field { quoted, .. } = &mut self.items[i] {
                *quoted = before && after;
            }
        }
        if !self.items.iter().any(|i| matches!(i, Item::Field { .. })) {
            return Err(PlanError::Bad("the log format has no fields".into()));
        }
        Ok(self.items)
    }
}

fn compile_squid(s: &str, b: &mut Builder) {
    let mut rest = s;
    while let Some(p) = rest.find('%') {
        b.lit(&rest[..p]);
        rest = &rest[p + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            b.lit("%");
            rest = r;
            continue;
        }
        // % ["|[|'|#|/] [-] [[0]width] [{arg}] formatcode [{arg}]
        rest = rest.trim_start_matches(['"', '[', '\'', '#', '/']);
        rest = rest.strip_prefix('-').unwrap_or(rest);
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let mut arg = None;
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap_or(r.len());
            arg = Some(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
        }
        let code = if let Some(ns) = SQUID_NAMESPACES.iter().find(|ns| rest.starts_with(**ns)) {
            let end = rest[ns.len()..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '>' | '<' | ':')))
                .map_or(rest.len(), |i| i + ns.len());
            Some(&rest[..end])
        } else {
            SQUID_CODES
                .iter()
                .filter(|c| rest.starts_with(**c))
                .max_by_key(|c| c.len())
                .copied()
        };
        let Some(code) = code else {
            let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            b.unknown.push(format!("%{}", &rest[..end]));
            rest = &rest[end..];
            continue;
        };
        rest = &rest[code.len()..];
        if arg.is_none() {
            if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').unwrap_or(r.len());
                arg = Some(&r[..end]);
                rest = r.get(end + 1..).unwrap_or("");
            }
        }
        b.field(squid_role(code, arg));
    }
    b.lit(rest);
}

fn compile_nginx(s: &str, b: &mut Builder) {
    let mut rest = s;
    while let Some(p) = rest.find('$') {
        b.lit(&rest[..p]);
        rest = &rest[p + 1..];
        let (var, after) = if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap_or(r.len());
            (&r[..end], r.get(end + 1..).unwrap_or(""))
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        rest = after;
        match nginx_role(&var.to_ascii_lowercase()) {
            Some(role) => b.field(role),
            None => b.unknown.push(format!("${var}")),
        }
    }
    b.lit(rest);
}

fn compile_apache(s: &str, b: &mut Builder) {
    let mut rest = s;
    while let Some(p) = rest.find('%') {
        b.lit(&rest[..p]);
        rest = &rest[p + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            b.lit("%");
            rest = r;
            continue;
        }
        // % [<>] [!]status,list [{arg}] [<>] code
        rest = rest.trim_start_matches([
            '<', '>', '!', ',', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
        ]);
        let mut arg = None;
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap_or(r.len());
            arg = Some(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
        }
        rest = rest.trim_start_matches(['<', '>']);
        // `%{VAR}^ti` / `%{VAR}^to`: trailers.
        if let Some(r) = rest
            .strip_prefix("^ti")
            .or_else(|| rest.strip_prefix("^to"))
        {
            rest = r;
            b.field(Role::Skip);
            continue;
        }
        let Some(code) = rest.chars().next() else {
            b.unknown.push("%".into());
            break;
        };
        rest = &rest[code.len_utf8()..];
        match apache_role(code, arg) {
            Some(Role::ClfTime) => {
                b.lit("[");
                b.field(Role::ClfTime);
                b.lit("]");
            }
            Some(role) => b.field(role),
            None => b.unknown.push(match arg {
                Some(a) => format!("%{{{a}}}{code}"),
                None => format!("%{code}"),
            }),
        }
    }
    b.lit(rest);
}

/// The fields of one line, borrowed from it, after the shape checks.
#[derive(Default)]
struct Parts<'a> {
    /// The client address, read once (`None` for a host name or `-`).
    client: Option<IpAddr>,
    client_port: Option<u16>,
    /// The server address, read once (`None` for a host name or `-`).
    server: Option<IpAddr>,
    server_port: Option<u16>,
    method: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    status: Option<u16>,
    user_agent: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    sni: Option<&'a [u8]>,
    timestamp: Option<i64>,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// `-` (and empty) is how every dialect writes "no value".
fn value(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

/// Match a compiled literal at the start of `rest`: a run of blanks matches one or more
/// blanks (Squid pads fields with spaces); other text must match exactly.
fn eat_lit<'a>(rest: &'a [u8], lead: bool, core: &[u8], trail: bool) -> Option<&'a [u8]> {
    let mut r = rest;
    if lead {
        r = skip_blanks(r)?;
    }
    // Most literals are one byte (`.`, `:`, `/`) or only blanks: compare them without a
    // call to `memcmp` (a tenth of a plan's screen time before).
    r = match core {
        [] => r,
        [c] => match r.split_first() {
            Some((b, tail)) if b == c => tail,
            _ => return None,
        },
        _ => r.strip_prefix(core)?,
    };
    if trail {
        r = skip_blanks(r)?;
    }
    Some(r)
}

/// `r` after its leading blanks, of which there must be at least one.
fn skip_blanks(r: &[u8]) -> Option<&[u8]> {
    let n = r.iter().take_while(|&&c| is_blank(c)).count();
    (n > 0).then(|| &r[n..])
}

/// Where an unquoted field ends in `rest`.
fn field_end(rest: &[u8], end: &End) -> Option<usize> {
    match end {
        End::Rest => Some(rest.len()),
        End::Blank => memchr::memchr2(b' ', b'\t', rest),
        End::Byte(c) => memchr::memchr(*c, rest),
        End::Seq(core) => memchr::memmem::find(rest, core),
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

impl FormatPlan {
    /// Cut `line` at the plan's literals and check every observed field's shape.
    fn split<'a>(&self, line: &'a [u8]) -> Result<Parts<'a>, ParseError> {
        let mut p = Parts::default();
        let mut rest = line;
        let mut secs: Option<i64> = None;
        let mut millis: Option<&[u8]> = None;
        for step in &self.steps {
            let (role, quoted, end) = match step {
                Step::Lit { lead, core, trail } => {
                    rest = eat_lit(rest, *lead, core, *trail)
                        .ok_or(ParseError::new("does not match the log format"))?;
                    continue;
                }
                Step::Field { role, quoted, end } => (*role, *quoted, end),
            };
            let end = if quoted {
                closing_quote(rest)
            } else {
                field_end(rest, end)
            }
            .ok_or(ParseError::new("does not match the log format"))?;
            let v = &rest[..end];
            rest = &rest[end..];
            match role {
                Role::Skip => {}
                Role::ClientIp => {
                    p.client =
                        Some(parse_ip(v).ok_or(ParseError::new("client is not an address"))?);
                }
                Role::ClientHost => p.client = value(v).and_then(parse_ip),
                Role::ServerHost => p.server = value(v).and_then(parse_ip),
                Role::ClientPort | Role::ServerPort => {
                    let port = match value(v) {
                        None => None,
                        Some(v) => {
                            Some(parse_u16(v).ok_or(ParseError::new("port is not a number"))?)
                        }
                    };
                    match role {
                        Role::ClientPort => p.client_port = port,
                        _ => p.server_port = port,
                    }
                }
                Role::Method => {
                    if let Some(m) = value(v) {
                        let ok = m.len() <= 32
                            && m.iter()
                                .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
                        if !ok {
                            return Err(ParseError::new("not a request method"));
                        }
                        p.method = Some(m);
                    }
                }
                Role::Target => p.target = value(v),
                Role::Request => {
                    if let Some((m, t)) = split_request(v) {
                        p.method = Some(m);
                        p.target = Some(t);
                    }
                }
                Role::Status => {
                    if let Some(s) = value(v) {
                        if !digits(s) || s.len() > 3 {
                            return Err(ParseError::new("status is not a number"));
                        }
                        p.status = parse_u16(s).filter(|&s| s != 0);
                    }
                }
                Role::UserAgent => p.user_agent = value(v),
                Role::Host => p.host = value(v),
                Role::Sni => p.sni = value(v),
                Role::EpochSeconds => {
                    let s = v.iter().position(|&c| !is_blank(c)).map_or(v, |i| &v[i..]);
                    secs = Some(parse_epoch(s).ok_or(ParseError::new("bad timestamp"))?);
                }
                Role::EpochMillis => {
                    if !digits(v) {
                        return Err(ParseError::new("bad timestamp"));
                    }
                    millis = Some(v);
                }
                Role::ClfTime => {
                    if value(v).is_some() {
                        p.timestamp =
                            Some(parse_clf_time(v).ok_or(ParseError::new("bad timestamp"))?);
                    }
                }
                Role::IsoTime => {
                    if value(v).is_some() {
                        p.timestamp =
                            Some(parse_iso8601(v).ok_or(ParseError::new("bad timestamp"))?);
                    }
                }
            }
        }
        if let Some(base) = secs {
            let ms = match millis {
                // `%03tu`: milliseconds, at most three digits.
                Some(m) if m.len() <= 3 => parse_u16(m).map_or(0, i64::from) * 1_000_000,
                Some(_) => return Err(ParseError::new("bad timestamp")),
                None => 0,
            };
            p.timestamp = base.checked_add(ms);
        }
        Ok(p)
    }
}

/// A [`LineParser`] running a [`FormatPlan`].
#[derive(Debug, Clone)]
pub struct PlanParser {
    plan: FormatPlan,
}

impl PlanParser {
    /// A parser for `plan`.
    pub fn new(plan: FormatPlan) -> Self {
        PlanParser { plan }
    }

    fn dataset(&self) -> &'static str {
        match self.plan.dialect {
            Dialect::Squid => "proxy",
            _ => "http",
        }
    }
}

fn skip_line(line: &[u8]) -> bool {
    line.iter().all(|&c| c.is_ascii_whitespace()) || line.first() == Some(&b'#')
}

impl LineParser for PlanParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if skip_line(line) {
            return Ok(None);
        }
        let p = self.plan.split(line)?;
        let l = Line::new(line);
        let mut o = Observation {
            timestamp_ns: p.timestamp,
            dataset: self.dataset(),
            protocol: Some("http"),
            source_ip: p.client,
            source_port: p.client_port,
            destination_ip: p.server,
            destination_port: p.server_port,
            http_method: p.method.map(|m| l.text(m)),
            http_status: p.status,
            user_agent: p.user_agent.map(|u| l.text(u)),
            tls_sni: p.sni.and_then(|s| l.domain(s)),
            ..Default::default()
        };
        if let Some(t) = p.target {
            set_target(&l, &mut o, t, p.host, p.method == Some(b"CONNECT"));
        }
        if o.url_domain.is_none() {
            if let Some(h) = p.host {
                o.url_domain = l.domain(super::url::split_host_port(h).0);
            }
        }
        Ok(Some(o))
    }

    fn screen(&self, line: &[u8], probe: &dyn AlertProbe) -> Screened {
        let line = trim_eol(line);
        if skip_line(line) || self.plan.has_host {
            return Screened::Unsure; // `parse` builds the URL from the Host
        }
        let Ok(p) = self.plan.split(line) else {
            return Screened::Unsure;
        };
        let client = ScreenAddr::from(p.client);
        let server = ScreenAddr::from(p.server);
        client.prefetch(probe);
        server.prefetch(probe);
        let sni = p.sni.is_some_and(|s| match std::str::from_utf8(s) {
            Ok(s) => {
                let s = s.strip_suffix('.').unwrap_or(s);
                !s.is_empty() && probe.domain(s)
            }
            Err(_) => true,
        });
        let ua = p
            .user_agent
            .is_some_and(|u| std::str::from_utf8(u).is_err() || probe.pattern(u));
        let target = p
            .target
            .is_some_and(|t| screen_target(t, p.method == Some(b"CONNECT"), probe));
        Screened::unless(target || sni || ua || client.may_alert(probe) || server.may_alert(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::super::check_screen;
    use super::*;

    fn squid(f: &str) -> PlanParser {
        PlanParser::new(FormatPlan::compile(Dialect::Squid, f).unwrap())
    }

    #[test]
    fn squid_native_plan_reads_what_the_native_parser_reads() {
        let p =
            squid("logformat squid %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt");
        let line = b"1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/175.16.199.115 -";
        let o = p.parse(line).unwrap().unwrap();
        let n = super::super::http::SquidParser
            .parse(line)
            .unwrap()
            .unwrap();
        assert_eq!(o, n);
        assert_eq!(o.timestamp_ns, Some(1_157_689_312_049_000_000));
        assert_eq!(check_screen(&p, line), Ok(true));
    }

    #[test]
    fn custom_squid_format_with_sni_and_user_agent() {
        let p = squid("%ts.%03tu %>a:%>p %Ss/%03>Hs %rm %ru \"%{User-Agent}>h\" %ssl::>sni %<a");
        let line = br#"1700000000.5 192.0.2.1:5555 TCP_TUNNEL/200 CONNECT evil.example:443 "curl/8 (x)" Evil.Example. 198.51.100.7"#;
        let o = p.parse(line).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(o.source_port, Some(5555));
        assert_eq!(o.url_domain.as_deref(), Some("evil.example"));
        assert_eq!(o.destination_port, Some(443));
        assert_eq!(o.user_agent.as_deref(), Some("curl/8 (x)"));
        assert_eq!(o.tls_sni.as_deref(), Some("evil.example"));
        assert_eq!(o.destination_ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(o.http_status, Some(200));
        assert_eq!(check_screen(&p, line), Ok(true));
        // A native line under this plan: the shape does not fit.
        let native = b"1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 GET http://a.example/ - DIRECT/1.2.3.4 -";
        assert!(p.parse(native).is_err());
        assert_eq!(check_screen(&p, native), Ok(false));
    }

    #[test]
    fn unknown_codes_are_named() {
        let e = FormatPlan::compile(Dialect::Squid, "%ts %>a %zz %rm %qq").unwrap_err();
        assert!(e.to_string().contains("%zz, %qq"), "{e}");
        let e = FormatPlan::compile(Dialect::Nginx, "$remote_adr $status").unwrap_err();
        assert!(e.to_string().contains("$remote_adr"), "{e}");
        let e = FormatPlan::compile(Dialect::Apache, "%h %J").unwrap_err();
        assert!(e.to_string().contains("%J"), "{e}");
        assert!(FormatPlan::compile(Dialect::Apache, "%h%l").is_err());
    }

    #[test]
    fn nginx_directive_and_apache_vhost() {
        let p = PlanParser::new(
            FormatPlan::compile(
                Dialect::Nginx,
                r#"log_format  main  '$remote_addr - $remote_user [$time_local] "$request" ' '$status $body_bytes_sent "$http_referer" ' '"$http_user_agent" "$http_x_forwarded_for"';"#,
            )
            .unwrap(),
        );
        let line = br#"172.24.0.3 - - [31/Dec/2024:17:32:06 +0000] "GET /x?y HTTP/1.1" 200 615 "-" "curl/8.11.1" "1.2.3.4, 10.10.1.1""#;
        let o = p.parse(line).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("172.24.0.3".parse().unwrap()));
        assert_eq!(o.url_path.as_deref(), Some("/x"));
        assert_eq!(o.user_agent.as_deref(), Some("curl/8.11.1"));
        assert_eq!(o.http_status, Some(200));
        assert_eq!(check_screen(&p, line), Ok(true));
        let err = b"2025/01/03 16:41:26 [error] 31#31: *3 open() failed, client: 172.24.0.2";
        assert!(p.parse(err).is_err());
        let a = PlanParser::new(
            FormatPlan::compile(
                Dialect::Apache,
                r#"LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined"#,
            )
            .unwrap(),
        );
        let line = br#"www.varonathe.org:80 203.62.1.80 - - [06/May/2019:06:28:20 +0000] "GET /robots.txt HTTP/1.1" 301 596 "-" "Mozilla/5.0""#;
        let o = a.parse(line).unwrap().unwrap();
        assert_eq!(
            o.url_full.as_deref(),
            Some("http://www.varonathe.org/robots.txt")
        );
        assert_eq!(o.destination_port, Some(80));
        assert_eq!(o.http_status, Some(301));
        assert_eq!(check_screen(&a, line), Ok(false));
    }
}
