//! DNS message parser (RFC 1035) with compression-pointer loop and bounds protection.

use std::fmt::Write as _;

/// A decoded DNS message: the first question and the A/AAAA/CNAME answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsMessage {
    /// Transaction id.
    pub id: u16,
    /// QR bit: this is a response.
    pub is_response: bool,
    /// Response code.
    pub rcode: u8,
    /// First question's name (no trailing dot; `<Root>` names are empty).
    pub qname: Option<String>,
    /// First question's type.
    pub qtype: u16,
    /// Answers of type A, AAAA and CNAME: (type, data as text).
    pub answers: Vec<(u16, String)>,
}

/// Why a DNS message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the 12-byte header.
    #[error("shorter than a DNS header")]
    Short,
    /// A name ran past the end of the message.
    #[error("name runs past the end")]
    NameTruncated,
    /// Compression pointers loop or chain too long.
    #[error("compression pointer loop")]
    PointerLoop,
    /// Label type 0x40/0x80 (reserved/extended) or a name longer than 255 bytes.
    #[error("bad label")]
    BadLabel,
    /// A record ran past the end.
    #[error("record runs past the end")]
    RecordTruncated,
    /// No question and no answer: nothing to observe.
    #[error("no question")]
    NoQuestion,
}

impl DnsError {
    /// Static reason for the drop counters.
    pub fn reason(self) -> &'static str {
        match self {
            DnsError::Short => "dns: short",
            DnsError::NameTruncated => "dns: name truncated",
            DnsError::PointerLoop => "dns: pointer loop",
            DnsError::BadLabel => "dns: bad label",
            DnsError::RecordTruncated => "dns: record truncated",
            DnsError::NoQuestion => "dns: no question",
        }
    }
}

/// Read a (possibly compressed) name at `pos`; append it as text to `out`.
/// Returns the offset just after the name in the original position.
pub fn read_name(msg: &[u8], mut pos: usize, out: &mut String) -> Result<usize, DnsError> {
    let mut end: Option<usize> = None;
    let mut jumps = 0;
    let mut total = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::NameTruncated)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end.unwrap_or(pos + 1));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(DnsError::NameTruncated)?;
                total += len + 1;
                if total > 255 {
                    return Err(DnsError::BadLabel);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(label, out);
                pos += 1 + len;
            }
            0xc0 => {
                let b2 = *msg.get(pos + 1).ok_or(DnsError::NameTruncated)? as usize;
                let target = ((len & 0x3f) << 8) | b2;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                // Forward pointers are legal (tcpdump's dns_fwdptr); loops are caught by the
                // jump cap and the 255-byte name limit, which also bound the work.
                if target == pos || jumps > 64 {
                    return Err(DnsError::PointerLoop);
                }
                pos = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

/// Printable ASCII as is; other bytes as `\DDD` decimal escapes (BIND/dig style).
fn push_label(label: &[u8], out: &mut String) {
    for &b in label {
        if (0x21..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\{b:03}");
        }
    }
}

/// Name of a DNS record type (`A`, `AAAA`, ...; `TYPE123` for others).
pub fn type_name(t: u16) -> std::borrow::Cow<'static, str> {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        _ => return format!("TYPE{t}").into(),
    };
    s.into()
}

fn be16(m: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(p)?, *m.get(p + 1)?]))
}

/// Parse one DNS message. Answers after a malformed record are dropped, but the question
/// and the answers before it are kept (what tshark shows for corrupt additionals).
pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Short);
    }
    let id = be16(msg, 0).ok_or(DnsError::Short)?;
    let flags = be16(msg, 2).ok_or(DnsError::Short)?;
    let qd = be16(msg, 4).ok_or(DnsError::Short)?;
    let an = be16(msg, 6).ok_or(DnsError::Short)?;
    let mut m = DnsMessage {
        id,
        is_response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        ..Default::default()
    };
    let mut pos = 12;
    for i in 0..qd {
        let mut name = String::new();
        pos = read_name(msg, pos, &mut name)?;
        let t = be16(msg, pos).ok_or(DnsError::RecordTruncated)?;
        if msg.len() < pos + 4 {
            return Err(DnsError::RecordTruncated);
        }
        pos += 4;
        if i == 0 {
            m.qname = Some(name);
            m.qtype = t;
        }
    }
    if m.qname.is_none() && an == 0 {
        return Err(DnsError::NoQuestion);
    }
    for _ in 0..an {
        let mut owner = String::new();
        let Ok(p) = read_name(msg, pos, &mut owner) else {
            break;
        };
        let (Some(t), Some(rdlen)) = (be16(msg, p), be16(msg, p + 8)) else {
            break;
        };
        let rd_start = p + 10;
        let rd_end = rd_start + rdlen as usize;
        let Some(rd) = msg.get(rd_start..rd_end) else {
            break;
        };
        match (t, rd.len()) {
            (1, 4) => {
                let ip = std::net::Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]);
                m.answers.push((1, ip.to_string()));
            }
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rd);
                m.answers
                    .push((28, std::net::Ipv6Addr::from(a).to_string()));
            }
            (5, _) => {
                let mut n = String::new();
                if read_name(msg, rd_start, &mut n).is_ok() {
                    m.answers.push((5, n));
                }
            }
            _ => {}
        }
        pos = rd_end;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut v = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.extend_from_slice(&[0, 0, 1, 0, 1]);
        v
    }

    #[test]
    fn simple_query() {
        let m = parse(&query("www.example.com")).unwrap();
        assert_eq!(m.qname.as_deref(), Some("www.example.com"));
        assert_eq!(m.qtype, 1);
        assert!(!m.is_response);
    }

    #[test]
    fn response_with_cname_and_a() {
        let mut v = query("www.example.com");
        v[2] = 0x81;
        v[7] = 2; // ancount
                  // CNAME: ptr to 12, type 5, class 1, ttl, rdlen, rdata = "cdn" + ptr to 16 (example.com)
        v.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'c', b'd', b'n']);
        v.extend_from_slice(&[0xc0, 16]);
        let cname_at = v.len() - 8;
        v.extend_from_slice(&[
            0xc0,
            cname_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            60,
            0,
            4,
            192,
            0,
            2,
            7,
        ]);
        let m = parse(&v).unwrap();
        assert!(m.is_response);
        assert_eq!(
            m.answers,
            vec![(5, "cdn.example.com".into()), (1, "192.0.2.7".into())]
        );
    }

    #[test]
    fn pointer_loop_rejected() {
        let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points at itself
        assert_eq!(parse(&v), Err(DnsError::PointerLoop));
        let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]); // two pointers, a cycle
        assert_eq!(parse(&v), Err(DnsError::PointerLoop));
        let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[1, b'a', 0xc0, 20, 0, 1, 0, 1, 1, b'b', 0]); // forward pointer
        assert_eq!(parse(&v).unwrap().qname.as_deref(), Some("a.b"));
    }

    #[test]
    fn truncated_and_bad_labels() {
        let q = query("www.example.com");
        for cut in 0..q.len() - 4 {
            assert!(parse(&q[..cut]).is_err(), "cut at {cut}");
        }
        let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&v), Err(DnsError::BadLabel));
    }

    #[test]
    fn unprintable_bytes_escaped() {
        let mut v = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[3, b'a', b' ', 0xff, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&v).unwrap().qname.as_deref(), Some("a\\032\\255"));
    }
}
