//! DNS message parser (RFC 1035): zero-copy `nom` combinators with compression-pointer loop
//! and bounds protection.

use super::combinators::{error_of, or_fail, reject};
use nom::bytes::complete::take;
use nom::combinator::map;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::sequence::tuple;
use nom::IResult;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

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

/// Result of one step of the DNS combinators: the rest of the input, or why it failed.
type PResult<'a, T> = IResult<&'a [u8], T, DnsError>;

/// Longest name in wire form (RFC 1035 §3.1), and the most compression pointers followed.
const MAX_NAME: usize = 255;
const MAX_JUMPS: usize = 64;

/// One label of a name in wire form.
enum Label<'a> {
    /// A normal label (1..=63 bytes).
    Text(&'a [u8]),
    /// A compression pointer: offset from the start of the message.
    Pointer(usize),
    /// The zero-length root label ending the name.
    End,
}

fn label(i: &[u8]) -> PResult<'_, Label<'_>> {
    let (i, len) = or_fail(DnsError::NameTruncated, be_u8)(i)?;
    match len & 0xc0 {
        0x00 if len == 0 => Ok((i, Label::End)),
        0x00 => map(or_fail(DnsError::NameTruncated, take(len)), Label::Text)(i),
        0xc0 => {
            let (i, low) = or_fail(DnsError::NameTruncated, be_u8)(i)?;
            Ok((
                i,
                Label::Pointer(usize::from(len & 0x3f) << 8 | usize::from(low)),
            ))
        }
        _ => reject(DnsError::BadLabel),
    }
}

/// A (possibly compressed) name starting at `i`, a suffix of `msg`; its text is appended to
/// `out`. The rest is what follows the name where it started (after its first pointer).
fn name<'a>(msg: &'a [u8], i: &'a [u8], out: &mut String) -> PResult<'a, ()> {
    let mut input = i;
    let mut rest: Option<&'a [u8]> = None;
    let mut jumps = 0;
    let mut total = 0usize;
    loop {
        let at = msg.len() - input.len();
        let (after, l) = label(input)?;
        match l {
            Label::End => return Ok((rest.unwrap_or(after), ())),
            Label::Text(text) => {
                total += text.len() + 1;
                if total > MAX_NAME {
                    return reject(DnsError::BadLabel);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(text, out);
                input = after;
            }
            Label::Pointer(target) => {
                rest.get_or_insert(after);
                jumps += 1;
                // Forward pointers are legal (tcpdump's dns_fwdptr); loops are caught by the
                // jump cap and the 255-byte name limit, which also bound the work.
                if target == at || jumps > MAX_JUMPS {
                    return reject(DnsError::PointerLoop);
                }
                input = msg.get(target..).unwrap_or(&[]);
            }
        }
    }
}

/// Read a (possibly compressed) name at `pos`; append it as text to `out`.
/// Returns the offset just after the name in the original position.
pub fn read_name(msg: &[u8], pos: usize, out: &mut String) -> Result<usize, DnsError> {
    let i = msg.get(pos..).ok_or(DnsError::NameTruncated)?;
    match name(msg, i, out) {
        Ok((rest, ())) => Ok(msg.len() - rest.len()),
        Err(e) => Err(error_of(e, DnsError::NameTruncated)),
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

/// The header counts the parser uses.
struct Header {
    id: u16,
    flags: u16,
    questions: u16,
    answers: u16,
}

fn header(i: &[u8]) -> PResult<'_, Header> {
    let (i, (id, flags, questions, answers, _ns, _ar)) = or_fail(
        DnsError::Short,
        tuple((be_u16, be_u16, be_u16, be_u16, be_u16, be_u16)),
    )(i)?;
    Ok((
        i,
        Header {
            id,
            flags,
            questions,
            answers,
        },
    ))
}

/// One question: its name (appended to `out`) and type; the class is skipped.
fn question<'a>(msg: &'a [u8], i: &'a [u8], out: &mut String) -> PResult<'a, u16> {
    let (i, ()) = name(msg, i, out)?;
    let (i, (qtype, _class)) = or_fail(DnsError::RecordTruncated, tuple((be_u16, be_u16)))(i)?;
    Ok((i, qtype))
}

/// One resource record, as `(type, data as text)` when it is an A, AAAA or CNAME record
/// whose data decodes.
fn answer<'a>(msg: &'a [u8], i: &'a [u8]) -> PResult<'a, Option<(u16, String)>> {
    let mut owner = String::new();
    let (i, ()) = name(msg, i, &mut owner)?;
    let (rdata_at, (rtype, _class, _ttl, rdlen)) = or_fail(
        DnsError::RecordTruncated,
        tuple((be_u16, be_u16, be_u32, be_u16)),
    )(i)?;
    let (rest, rd) = or_fail(DnsError::RecordTruncated, take(rdlen))(rdata_at)?;
    let data = match (rtype, rd) {
        (1, &[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d).to_string()),
        (28, _) => <[u8; 16]>::try_from(rd)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string()),
        // The target name is read from the whole message, as tshark does for a CNAME whose
        // rdlength is too short for it.
        (5, _) => {
            let mut n = String::new();
            name(msg, rdata_at, &mut n).ok().map(|_| n)
        }
        _ => None,
    };
    Ok((rest, data.map(|d| (rtype, d))))
}

/// Parse one DNS message. Answers after a malformed record are dropped, but the question
/// and the answers before it are kept (what tshark shows for corrupt additionals).
///
/// Every question and record consumes at least five bytes, so the header's counts are bounded
/// by the message length.
pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    let (mut i, h) = header(msg).map_err(|e| error_of(e, DnsError::Short))?;
    let mut m = DnsMessage {
        id: h.id,
        is_response: h.flags & 0x8000 != 0,
        rcode: (h.flags & 0x000f) as u8,
        ..Default::default()
    };
    for n in 0..h.questions {
        let mut qname = String::new();
        let (rest, qtype) =
            question(msg, i, &mut qname).map_err(|e| error_of(e, DnsError::RecordTruncated))?;
        i = rest;
        if n == 0 {
            m.qname = Some(qname);
            m.qtype = qtype;
        }
    }
    if m.qname.is_none() && h.answers == 0 {
        return Err(DnsError::NoQuestion);
    }
    for _ in 0..h.answers {
        let Ok((rest, a)) = answer(msg, i) else {
            break;
        };
        m.answers.extend(a);
        i = rest;
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

    /// Frame 2 of the corpus capture suricata-verify/dns_dns-udp-eve-dig/input.pcap (UDP
    /// payload): a `dig` response with a compressed CNAME and two A records.
    const DIG_RESPONSE: [u8; 100] = [
        0x8d, 0x32, 0x81, 0xa0, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77,
        0x77, 0x0c, 0x73, 0x75, 0x72, 0x69, 0x63, 0x61, 0x74, 0x61, 0x2d, 0x69, 0x64, 0x73, 0x03,
        0x6f, 0x72, 0x67, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00,
        0x00, 0x0d, 0xd8, 0x00, 0x12, 0x0c, 0x73, 0x75, 0x72, 0x69, 0x63, 0x61, 0x74, 0x61, 0x2d,
        0x69, 0x64, 0x73, 0x03, 0x6f, 0x72, 0x67, 0x00, 0xc0, 0x32, 0x00, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x00, 0xf4, 0x00, 0x04, 0xc0, 0x00, 0x4e, 0x18, 0xc0, 0x32, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x00, 0x00, 0xf4, 0x00, 0x04, 0xc0, 0x00, 0x4e, 0x19,
    ];

    /// Frame 2 of the corpus capture tcpdump/dns_udp.pcap: two A answers, then authority and
    /// additional records (AAAA, OPT) that are not answers.
    const TCPDUMP_RESPONSE: [u8; 224] = [
        0x59, 0x34, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x05, 0x03, 0x77, 0x77,
        0x77, 0x07, 0x74, 0x63, 0x70, 0x64, 0x75, 0x6d, 0x70, 0x03, 0x6f, 0x72, 0x67, 0x00, 0x00,
        0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04,
        0xc0, 0x8b, 0x2e, 0x42, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00,
        0x04, 0xc6, 0xc7, 0x58, 0x68, 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x01, 0x51, 0x80,
        0x00, 0x12, 0x03, 0x73, 0x6e, 0x73, 0x08, 0x63, 0x6f, 0x6f, 0x70, 0x65, 0x72, 0x69, 0x78,
        0x03, 0x6e, 0x65, 0x74, 0x00, 0xc0, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x01, 0x51, 0x80,
        0x00, 0x12, 0x03, 0x6e, 0x69, 0x63, 0x09, 0x73, 0x61, 0x6e, 0x64, 0x65, 0x6c, 0x6d, 0x61,
        0x6e, 0x02, 0x63, 0x61, 0x00, 0xc0, 0x6b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c,
        0x00, 0x04, 0xd1, 0x57, 0xf9, 0x12, 0xc0, 0x6b, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x01,
        0x2c, 0x00, 0x10, 0x26, 0x07, 0xf0, 0xb0, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xba, 0xbe, 0xf0, 0x0d, 0xc0, 0x4d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x1c, 0x20, 0x00,
        0x04, 0x61, 0x6b, 0x85, 0x0f, 0xc0, 0x4d, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x1c, 0x20,
        0x00, 0x10, 0x26, 0x00, 0x3c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3c, 0x91, 0xff, 0xfe,
        0x96, 0xe8, 0xef, 0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn captured_responses_yield_tsharks_fields() {
        let m = parse(&DIG_RESPONSE).unwrap();
        assert_eq!((m.id, m.is_response, m.rcode), (0x8d32, true, 0));
        assert_eq!(
            (m.qname.as_deref(), m.qtype),
            (Some("www.suricata-ids.org"), 1)
        );
        assert_eq!(
            m.answers,
            vec![
                (5, "suricata-ids.org".into()),
                (1, "192.0.78.24".into()),
                (1, "192.0.78.25".into()),
            ]
        );
        let m = parse(&TCPDUMP_RESPONSE).unwrap();
        assert_eq!((m.id, m.is_response, m.rcode), (0x5934, true, 0));
        assert_eq!((m.qname.as_deref(), m.qtype), (Some("www.tcpdump.org"), 1));
        assert_eq!(
            m.answers,
            vec![(1, "192.139.46.66".into()), (1, "198.199.88.104".into())]
        );
        // Cut anywhere inside the answers: the question and the whole answers before the cut
        // are kept.
        for cut in 38..DIG_RESPONSE.len() {
            let m = parse(&DIG_RESPONSE[..cut]).unwrap();
            assert_eq!(m.qname.as_deref(), Some("www.suricata-ids.org"));
            let whole = [68, 84, 100].iter().filter(|&&end| end <= cut).count();
            assert_eq!(m.answers.len(), whole, "cut at {cut}");
        }
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
