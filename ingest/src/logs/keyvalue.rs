//! What the key=value formats (CEF and LEEF extensions, FortiGate) share: a table from a
//! format's keys to observation fields, and filling an observation from a line's pairs
//! with the shape of every observed value checked.

use super::address::{parse_ip_str, parse_u16};
use super::ecs_values::{is_hex, transport};
use super::timestamps::{parse_epoch, parse_iso8601, parse_month_day_year};
use super::url::{domain, split_url};
use super::ParseError;
use crate::Observation;
use std::borrow::Cow;

/// One `key=value` pair of a line, both borrowed from it.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

/// The observation field a key fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// `source.ip` (must be an address).
    SourceIp,
    /// `destination.ip` (must be an address).
    DestinationIp,
    /// `source.port` (must be a number).
    SourcePort,
    /// `destination.port` (must be a number).
    DestinationPort,
    /// A URL: `url.full` (a scheme-less `host/path` taken as `http://`), `url.domain`,
    /// `url.path`; a bare path gives `url.path`.
    Url,
    /// A host name for `url.domain` when no URL gave one.
    Host,
    /// `http.request.method`.
    Method,
    /// `user_agent.original`.
    UserAgent,
    /// `http.response.status_code` (a number).
    Status,
    /// `dns.question.name`.
    DnsQuestion,
    /// `dns.question.type`.
    DnsType,
    /// A file hash of any kind: MD5, SHA-1 or SHA-256 by its length.
    Hash,
    /// `network.transport` (`tcp`, `6`, ...).
    Transport,
    /// `@timestamp`: epoch milliseconds, ISO 8601, or `Mon dd yyyy HH:MM:SS zone`.
    Time,
}

/// Find the slot of `key` in `table` (exact, case-sensitive, as the formats define them).
pub(crate) fn slot(table: &[(&str, Slot)], key: &[u8]) -> Option<Slot> {
    table
        .iter()
        .find(|(k, _)| k.as_bytes() == key)
        .map(|&(_, s)| s)
}

fn hash_kind(v: &str) -> Option<usize> {
    let n = v.len();
    (matches!(n, 32 | 40 | 64) && is_hex(v, n)).then_some(n)
}

/// Put `value` in `slot` of `o`. Shapes are checked: an address, port or status that is not
/// one is an error; `-` and empty values are absent.
pub(crate) fn fill<'a>(
    o: &mut Observation<'a>,
    slot: Slot,
    value: Cow<'a, str>,
) -> Result<(), ParseError> {
    let v = value.trim();
    if v.is_empty() || v == "-" {
        return Ok(());
    }
    match slot {
        Slot::SourceIp => {
            o.source_ip =
                Some(parse_ip_str(v).ok_or(ParseError::new("source address is not an address"))?);
        }
        Slot::DestinationIp => {
            o.destination_ip = Some(
                parse_ip_str(v).ok_or(ParseError::new("destination address is not an address"))?,
            );
        }
        Slot::SourcePort => {
            o.source_port =
                Some(parse_u16(v.as_bytes()).ok_or(ParseError::new("port is not a number"))?);
        }
        Slot::DestinationPort => {
            o.destination_port =
                Some(parse_u16(v.as_bytes()).ok_or(ParseError::new("port is not a number"))?);
        }
        Slot::Status => {
            if v.len() > 3 || !v.bytes().all(|c| c.is_ascii_digit()) {
                return Err(ParseError::new("status is not a number"));
            }
            o.http_status = parse_u16(v.as_bytes()).filter(|&s| s != 0);
        }
        Slot::Url => set_url(o, value),
        Slot::Host => {
            if o.url_domain.is_none() {
                o.url_domain = value_domain(&value);
            }
        }
        Slot::Method => o.http_method = Some(trimmed(value)),
        Slot::UserAgent => o.user_agent = Some(trimmed(value)),
        Slot::DnsQuestion => o.dns_question_name = value_domain(&value),
        Slot::DnsType => o.dns_question_type = Some(trimmed(value)),
        Slot::Hash => {
            let h = || {
                if v.bytes().any(|c| c.is_ascii_uppercase()) {
                    Cow::Owned(v.to_ascii_lowercase())
                } else {
                    trimmed(value.clone())
                }
            };
            match hash_kind(v) {
                Some(32) => o.file_md5 = Some(h()),
                Some(40) => o.file_sha1 = Some(h()),
                Some(64) => o.file_sha256 = Some(h()),
                _ => {}
            }
        }
        Slot::Transport => o.transport = transport(v.as_bytes()),
        Slot::Time => {
            let b = v.as_bytes();
            let ns = if b.iter().all(u8::is_ascii_digit) && b.len() >= 12 {
                // Epoch milliseconds.
                v.parse::<i64>()
                    .ok()
                    .and_then(|ms| ms.checked_mul(1_000_000))
            } else if b.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
                parse_epoch(b)
            } else {
                parse_iso8601(b).or_else(|| parse_month_day_year(b))
            };
            if ns.is_some() {
                o.timestamp_ns = ns;
            }
        }
    }
    Ok(())
}

/// `value` without surrounding blanks, still borrowed when it was.
fn trimmed(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// The normalised host name of a value, borrowed from the line when the value is and
/// normalising changes nothing.
fn value_domain<'a>(value: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    match value {
        Cow::Borrowed(s) => domain(s.trim().as_bytes()),
        Cow::Owned(s) => domain(s.trim().as_bytes()).map(|d| Cow::Owned(d.into_owned())),
    }
}

/// `url.*` from a URL value: absolute, scheme-less `host/path` (taken as `http://`), or a
/// bare path. An absolute URL borrowed from the line is not copied.
fn set_url<'a>(o: &mut Observation<'a>, value: Cow<'a, str>) {
    if let Cow::Borrowed(s) = value {
        let v = s.trim();
        if let Some(u) = split_url(v.as_bytes()) {
            o.url_domain = domain(u.host);
            o.url_path = Some(super::tokens::text(u.path));
            if o.destination_port.is_none() {
                o.destination_port = u.port;
            }
            o.url_full = Some(Cow::Borrowed(v));
            return;
        }
    }
    let v = value.trim();
    if v.starts_with('/') {
        let end = v.find(['?', '#']).unwrap_or(v.len());
        o.url_path = Some(Cow::Owned(v[..end].to_string()));
        return;
    }
    let full = if split_url(v.as_bytes()).is_some() {
        v.to_string()
    } else {
        // `www.example.com/path`: a host must come first.
        let host_end = v.find(['/', '?', '#']).unwrap_or(v.len());
        let host = &v[..host_end];
        let plausible = !host.is_empty()
            && host.bytes().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']')
            });
        if !plausible {
            return;
        }
        format!("http://{v}")
    };
    if let Some(u) = split_url(full.as_bytes()) {
        o.url_domain = domain(u.host).map(|d| Cow::Owned(d.into_owned()));
        o.url_path = Some(Cow::Owned(String::from_utf8_lossy(u.path).into_owned()));
        if o.destination_port.is_none() {
            o.destination_port = u.port;
        }
    }
    o.url_full = Some(Cow::Owned(full));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hashes() {
        let mut o = Observation::default();
        fill(&mut o, Slot::Url, "www.Example.com/a?b".into()).unwrap();
        assert_eq!(o.url_full.as_deref(), Some("http://www.Example.com/a?b"));
        assert_eq!(o.url_domain.as_deref(), Some("www.example.com"));
        assert_eq!(o.url_path.as_deref(), Some("/a"));
        fill(
            &mut o,
            Slot::Hash,
            "44D88612FEA8A8F36DE82E1278ABB02F".into(),
        )
        .unwrap();
        assert_eq!(
            o.file_md5.as_deref(),
            Some("44d88612fea8a8f36de82e1278abb02f")
        );
        assert!(fill(&mut o, Slot::SourceIp, "host.example".into()).is_err());
        fill(&mut o, Slot::Time, "1543270652000".into()).unwrap();
        assert_eq!(o.timestamp_ns, Some(1_543_270_652_000_000_000));
    }
}
