//! TLS: ClientHello (SNI, JA3, JA4) and the server certificate (SHA1) for TLS <= 1.2,
//! from record-layer byte streams that may span several records and TCP segments. The
//! record, handshake and hello structures are zero-copy `nom` combinators.

use super::combinators::{error_of, or_fail};
use md5::{Digest, Md5};
use nom::bytes::complete::take;
use nom::combinator::{map, map_parser};
use nom::multi::length_data;
use nom::number::complete::{be_u16, be_u24, be_u8};
use nom::sequence::{pair, preceded, terminated, tuple};
use nom::IResult;
use sha2::Sha256;

/// The ClientHello fields fingerprints and indicators need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// `legacy_version` of the hello.
    pub version: u16,
    /// Cipher suites in order (GREASE included).
    pub ciphers: Vec<u16>,
    /// Extension types in order (GREASE included).
    pub extensions: Vec<u16>,
    /// server_name (host_name) if present.
    pub sni: Option<String>,
    /// supported_groups.
    pub groups: Vec<u16>,
    /// ec_point_formats.
    pub point_formats: Vec<u8>,
    /// signature_algorithms in order.
    pub sig_algs: Vec<u16>,
    /// First ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// supported_versions.
    pub supported_versions: Vec<u16>,
}

/// Why a TLS message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A length field runs past the data.
    #[error("truncated")]
    Truncated,
    /// Not a ClientHello.
    #[error("not a client hello")]
    NotClientHello,
    /// Record layer is not TLS.
    #[error("not TLS")]
    NotTls,
    /// A handshake message longer than we buffer.
    #[error("handshake message too large")]
    TooLarge,
}

impl TlsError {
    /// Static reason for the drop counters.
    pub fn reason(self) -> &'static str {
        match self {
            TlsError::Truncated => "tls: truncated",
            TlsError::NotClientHello => "tls: not a client hello",
            TlsError::NotTls => "tls: not tls",
            TlsError::TooLarge => "tls: handshake too large",
        }
    }
}

/// Is this a GREASE value (RFC 8701)?
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

type PResult<'a, T> = IResult<&'a [u8], T, TlsError>;

/// A vector of 16-bit values (cipher suites, groups, ...); an odd last byte is ignored.
fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from(c[0]) << 8 | u16::from(c[1]))
        .collect()
}

/// `opaque x<0..2^8-1>`.
fn vec8(i: &[u8]) -> IResult<&[u8], &[u8], ()> {
    length_data(be_u8)(i)
}

/// `opaque x<0..2^16-1>`.
fn vec16(i: &[u8]) -> IResult<&[u8], &[u8], ()> {
    length_data(be_u16)(i)
}

/// `opaque x<0..2^24-1>`.
fn vec24(i: &[u8]) -> IResult<&[u8], &[u8], ()> {
    length_data(be_u24)(i)
}

/// One extension: `(type, data)`.
fn extension(i: &[u8]) -> PResult<'_, (u16, &[u8])> {
    or_fail(TlsError::Truncated, pair(be_u16, vec16))(i)
}

/// The fixed part of a ClientHello or ServerHello: legacy version, random, session id.
fn hello_prefix(i: &[u8]) -> PResult<'_, u16> {
    or_fail(
        TlsError::Truncated,
        terminated(be_u16, pair(take(32usize), vec8)),
    )(i)
}

/// The extensions block, which may be absent (the hello ends before it).
fn extensions_block(i: &[u8]) -> PResult<'_, &[u8]> {
    if i.is_empty() {
        return Ok((i, i));
    }
    or_fail(TlsError::Truncated, vec16)(i)
}

/// The first host_name of a server_name extension (lossy UTF-8).
fn server_name(d: &[u8]) -> Option<String> {
    let (_, mut list) = vec16(d).ok()?;
    while !list.is_empty() {
        let (rest, (kind, name)) = pair(be_u8, vec16)(list).ok()?;
        if kind == 0 {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        list = rest;
    }
    None
}

/// The first protocol of an ALPN extension.
fn first_alpn(d: &[u8]) -> Option<&[u8]> {
    preceded(be_u16::<_, ()>, vec8)(d).ok().map(|(_, p)| p)
}

/// Parse a ClientHello handshake *body* (after the 4-byte handshake header).
///
/// The extensions that fingerprints read are decoded leniently: a malformed one is left out,
/// while the framing of the hello and of the extension list must be whole.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let parsed = (|| -> PResult<'_, ClientHello> {
        let (i, version) = hello_prefix(body)?;
        let (i, (ciphers, _compression)) = or_fail(TlsError::Truncated, pair(vec16, vec8))(i)?;
        let (i, mut exts) = extensions_block(i)?;
        let mut ch = ClientHello {
            version,
            ciphers: u16s(ciphers),
            ..Default::default()
        };
        while !exts.is_empty() {
            let (rest, (t, d)) = extension(exts)?;
            exts = rest;
            ch.extensions.push(t);
            match t {
                0 if ch.sni.is_none() => ch.sni = server_name(d),
                10 => ch.groups = vec16(d).map_or(ch.groups, |(_, v)| u16s(v)),
                11 => ch.point_formats = vec8(d).map_or(ch.point_formats, |(_, v)| v.to_vec()),
                13 => ch.sig_algs = vec16(d).map_or(ch.sig_algs, |(_, v)| u16s(v)),
                16 => ch.alpn = first_alpn(d).map(<[u8]>::to_vec).or(ch.alpn),
                43 => {
                    ch.supported_versions = vec8(d).map_or(ch.supported_versions, |(_, v)| u16s(v))
                }
                _ => {}
            }
        }
        Ok((i, ch))
    })();
    parsed
        .map(|(_, ch)| ch)
        .map_err(|e| error_of(e, TlsError::Truncated))
}

fn join_dec<T: Into<u16>>(out: &mut String, v: impl Iterator<Item = T>) {
    for (i, x) in v.enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_dec(out, x.into());
    }
}

/// `x` in decimal, as `write!(out, "{x}")` would, without the formatting machinery (it
/// runs for every cipher and extension of every ClientHello).
fn push_dec(out: &mut String, x: u16) {
    let mut digits = [0u8; 5];
    let mut n = x;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

/// The JA3 string (`version,ciphers,extensions,groups,point_formats`, GREASE removed).
pub fn ja3_string(ch: &ClientHello) -> String {
    let mut s = String::with_capacity(256);
    push_dec(&mut s, ch.version);
    s.push(',');
    join_dec(
        &mut s,
        ch.ciphers.iter().copied().filter(|c| !is_grease(*c)),
    );
    s.push(',');
    join_dec(
        &mut s,
        ch.extensions.iter().copied().filter(|c| !is_grease(*c)),
    );
    s.push(',');
    join_dec(&mut s, ch.groups.iter().copied().filter(|c| !is_grease(*c)));
    s.push(',');
    join_dec(&mut s, ch.point_formats.iter().copied());
    s
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// JA3 hash: MD5 of [`ja3_string`], lower-case hex.
pub fn ja3(ch: &ClientHello) -> String {
    hex(&Md5::digest(ja3_string(ch).as_bytes()))
}

/// The first 12 hex digits of the SHA-256 of `s` (`000000000000` for an empty `s`).
fn sha12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let h = Sha256::digest(s.as_bytes());
    hex(h.get(..6).unwrap_or(&[]))
}

fn hex_list(v: impl ExactSizeIterator<Item = u16>) -> String {
    let mut s = String::with_capacity(v.len() * 5);
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push(',');
        }
        for shift in [12, 8, 4, 0] {
            s.push(char::from(HEX[usize::from((x >> shift) & 15)]));
        }
    }
    s
}

/// JA4 fingerprint (FoxIO JA4 TLS client), `quic` selects the `q` prefix.
pub fn ja4(ch: &ClientHello, quic: bool) -> String {
    let ver = ch
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.version);
    let ver = match ver {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let mut ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let alpn = match &ch.alpn {
        Some(a) if !a.is_empty() => {
            let f = a[0];
            let l = a[a.len() - 1];
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                [char::from(f), char::from(l)].iter().collect::<String>()
            } else {
                let h = hex(a);
                let hb = h.as_bytes();
                [char::from(hb[0]), char::from(hb[hb.len() - 1])]
                    .iter()
                    .collect()
            }
        }
        _ => "00".into(),
    };
    // `{q|t}{ver}{d|i}{ciphers:02}{extensions:02}{alpn}_{b}_{c}`, built without format!.
    let mut out = String::with_capacity(36);
    out.push(if quic { 'q' } else { 't' });
    out.push_str(ver);
    out.push(if ch.sni.is_some() { 'd' } else { 'i' });
    for n in [ciphers.len().min(99), exts.len().min(99)] {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    }
    out.push_str(&alpn);
    ciphers.sort_unstable();
    let b = sha12(&hex_list(ciphers.into_iter()));
    let mut sorted: Vec<u16> = exts.into_iter().filter(|e| *e != 0 && *e != 16).collect();
    sorted.sort_unstable();
    let mut cs = hex_list(sorted.into_iter());
    let sigs: Vec<u16> = ch
        .sig_algs
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    if !sigs.is_empty() {
        cs.push('_');
        cs.push_str(&hex_list(sigs.into_iter()));
    }
    out.push('_');
    out.push_str(&b);
    out.push('_');
    out.push_str(&sha12(&cs));
    out
}

/// Result of scanning a record-layer stream for handshake messages.
#[derive(Debug, Default)]
pub struct HandshakeScan {
    /// Complete handshake messages: (type, body).
    pub messages: Vec<(u8, Vec<u8>)>,
    /// The stream left the plaintext handshake (ChangeCipherSpec, alert, application data).
    pub ended: bool,
}

/// Collect the plaintext handshake messages from the start of a TLS record stream.
/// Messages that are not complete yet are not returned; call again with more data.
pub fn scan_handshake(stream: &[u8], max: usize) -> Result<HandshakeScan, TlsError> {
    let mut hs: Vec<u8> = Vec::new();
    let mut out = HandshakeScan::default();
    let mut i = stream;
    while let Ok((after, h)) = record_header(i) {
        if !(20..=24).contains(&h.content_type) || h.major != 3 || h.len > MAX_RECORD {
            if i.len() == stream.len() {
                return Err(TlsError::NotTls);
            }
            out.ended = true;
            break;
        }
        if h.content_type != 22 {
            out.ended = true;
            break;
        }
        let Ok((next, fragment)) = take::<_, _, ()>(h.len)(after) else {
            break;
        };
        hs.extend_from_slice(fragment);
        if hs.len() > max {
            return Err(TlsError::TooLarge);
        }
        i = next;
    }
    let mut m = hs.as_slice();
    while let Ok((rest, (t, body))) = pair(be_u8::<_, ()>, vec24)(m) {
        out.messages.push((t, body.to_vec()));
        m = rest;
    }
    Ok(out)
}

/// Longest record fragment accepted (2^14 plus the expansion TLS allows).
const MAX_RECORD: usize = 18432;

/// A TLS record header.
struct RecordHeader {
    content_type: u8,
    major: u8,
    len: usize,
}

fn record_header(i: &[u8]) -> IResult<&[u8], RecordHeader, ()> {
    map(
        tuple((be_u8, be_u8, be_u8, be_u16)),
        |(content_type, major, _minor, len)| RecordHeader {
            content_type,
            major,
            len: usize::from(len),
        },
    )(i)
}

/// From a ServerHello body: the negotiated version (supported_versions wins).
pub fn server_hello_version(body: &[u8]) -> Result<u16, TlsError> {
    let parsed = (|| -> PResult<'_, u16> {
        let (i, mut ver) = hello_prefix(body)?;
        let (i, _cipher_and_compression) = or_fail(TlsError::Truncated, pair(be_u16, be_u8))(i)?;
        let (i, mut exts) = extensions_block(i)?;
        while !exts.is_empty() {
            let (rest, (t, d)) = extension(exts)?;
            exts = rest;
            if let (43, &[hi, lo]) = (t, d) {
                ver = u16::from_be_bytes([hi, lo]);
            }
        }
        Ok((i, ver))
    })();
    parsed
        .map(|(_, v)| v)
        .map_err(|e| error_of(e, TlsError::Truncated))
}

/// SHA1 (lower-case hex) of the first certificate of a Certificate message body.
pub fn first_cert_sha1(body: &[u8]) -> Result<String, TlsError> {
    let (_, der) = or_fail(TlsError::Truncated, map_parser(vec24, vec24))(body)
        .map_err(|e| error_of(e, TlsError::Truncated))?;
    Ok(hex(&sha1::Sha1::digest(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexes(s: &str) -> Vec<u16> {
        s.split(',')
            .map(|h| u16::from_str_radix(h, 16).unwrap())
            .collect()
    }

    /// [`push_dec`] writes what `{}` does, for every value.
    #[test]
    fn push_dec_is_display() {
        for x in 0..=u16::MAX {
            let mut s = String::from("-");
            push_dec(&mut s, x);
            assert_eq!(s, format!("-{x}"));
        }
    }

    /// A Chrome 143 ClientHello as fingerprinted by browserleaks.com (its ja4_ro gives the
    /// original cipher/extension/signature order, its ja3_text the groups and point formats)
    /// with its published JA4 and JA3 results.
    #[test]
    fn ja4_and_ja3_against_published_vector() {
        let ch = ClientHello {
            version: 0x0303,
            ciphers: hexes(
                "1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035",
            ),
            extensions: hexes(
                "002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b",
            ),
            sni: Some("tls.browserleaks.com".into()),
            groups: vec![4588, 29, 23, 24],
            point_formats: vec![0],
            sig_algs: hexes("0403,0804,0401,0503,0805,0501,0806,0601"),
            alpn: Some(b"h2".to_vec()),
            supported_versions: vec![0x0304, 0x0303],
        };
        assert_eq!(ja4(&ch, false), "t13d1516h2_8daaf6152771_d8a2da3f94cd");
        assert_eq!(ja3(&ch), "98487aa16281980e7d1120d399efb6a4");
        // GREASE values anywhere change nothing.
        let mut g = ch.clone();
        g.ciphers.insert(0, 0x1a1a);
        g.extensions.insert(0, 0x2a2a);
        g.groups.insert(0, 0x3a3a);
        g.supported_versions.insert(0, 0x4a4a);
        assert_eq!(ja4(&g, false), ja4(&ch, false));
        assert_eq!(ja3(&g), ja3(&ch));
        assert!(ja4(&ch, true).starts_with("q13d"));
    }

    /// Frame 4 of the corpus capture suricata-verify/tls_tls-certs-alert/input.pcap (TCP
    /// payload): one record holding the ClientHello.
    const CLIENT_HELLO_RECORD: [u8; 214] = [
        0x16, 0x03, 0x01, 0x00, 0xd1, 0x01, 0x00, 0x00, 0xcd, 0x03, 0x03, 0xac, 0x0c, 0x69, 0x15,
        0x80, 0xd8, 0xa6, 0xb3, 0x5c, 0xdd, 0x78, 0xf5, 0x99, 0xc8, 0x8d, 0xc8, 0x0e, 0xf2, 0xb3,
        0x1f, 0xc4, 0xb5, 0xc1, 0x7a, 0x6d, 0xab, 0x8d, 0xfe, 0x7b, 0x37, 0x1f, 0x1d, 0x00, 0x00,
        0x38, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b,
        0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00,
        0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
        0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00,
        0x6c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70,
        0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00,
        0x0a, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x19, 0x00, 0x18, 0x33, 0x74,
        0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74,
        0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
        0x00, 0x20, 0x00, 0x1e, 0x06, 0x01, 0x06, 0x02, 0x06, 0x03, 0x05, 0x01, 0x05, 0x02, 0x05,
        0x03, 0x04, 0x01, 0x04, 0x02, 0x04, 0x03, 0x03, 0x01, 0x03, 0x02, 0x03, 0x03, 0x02, 0x01,
        0x02, 0x02, 0x02, 0x03,
    ];

    /// The start of frame 6 of the same capture: the ServerHello record, then the first bytes
    /// of the record carrying the Certificate.
    const SERVER_HELLO_RECORDS: [u8; 151] = [
        0x16, 0x03, 0x03, 0x00, 0x6a, 0x02, 0x00, 0x00, 0x66, 0x03, 0x03, 0xa7, 0x0b, 0x39, 0x95,
        0x95, 0x99, 0x72, 0xc8, 0x5d, 0x33, 0x7e, 0xf3, 0xe3, 0x5e, 0x20, 0x00, 0xbb, 0xa7, 0x19,
        0x48, 0x7a, 0x7e, 0x8d, 0x16, 0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01, 0x20, 0x8f,
        0x78, 0xc6, 0xfd, 0xf0, 0x3f, 0x37, 0x76, 0x09, 0x5b, 0x67, 0xa9, 0x8d, 0x62, 0x74, 0x31,
        0xcb, 0x0f, 0xc5, 0x0a, 0x0c, 0x85, 0x51, 0xdd, 0x2c, 0xc9, 0xc7, 0x29, 0xe7, 0x34, 0x8c,
        0x2c, 0xc0, 0x2f, 0x00, 0x00, 0x1e, 0xff, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02,
        0x68, 0x32, 0x00, 0x17, 0x00, 0x00, 0x16, 0x03, 0x03, 0x0f, 0x9f, 0x0b, 0x00, 0x0f, 0x9b,
        0x00, 0x0f, 0x98, 0x00, 0x07, 0x44, 0x30, 0x82, 0x07, 0x40, 0x30, 0x82, 0x06, 0x28, 0xa0,
        0x03, 0x02, 0x01, 0x02, 0x02, 0x10, 0x0f, 0xd0, 0x78, 0xdd, 0x48, 0xf1, 0xa2, 0xbd, 0x4d,
        0x0f,
    ];

    #[test]
    fn captured_hellos_yield_tsharks_fields() {
        let scan = scan_handshake(&CLIENT_HELLO_RECORD, 1 << 16).unwrap();
        assert!(!scan.ended);
        let [(1, body)] = scan.messages.as_slice() else {
            panic!("{:?}", scan.messages)
        };
        let ch = parse_client_hello(body).unwrap();
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpn.as_deref(), Some(&b"h2"[..]));
        // tshark 4.0's tls.handshake.ja3_full and tls.handshake.ja3.
        assert_eq!(
            ja3_string(&ch),
            "771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-\
             49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,\
             0-11-10-13172-16-22-23-13,29-23-25-24,0-1-2"
        );
        assert_eq!(ja3(&ch), "1fe4c7a3544eb27afec2adfb3a3dbf60");
        // A cut of the hello body is truncated, except right before the extensions: a hello
        // without them is whole.
        let no_extensions = body.len() - 2 - 0x6c;
        for cut in 0..body.len() {
            let r = parse_client_hello(&body[..cut]);
            if cut == no_extensions {
                assert_eq!(
                    r.map(|c| (c.ciphers, c.extensions)),
                    Ok((ch.ciphers.clone(), vec![]))
                );
            } else {
                assert_eq!(r, Err(TlsError::Truncated), "{cut}");
            }
        }

        let scan = scan_handshake(&SERVER_HELLO_RECORDS, 1 << 16).unwrap();
        let [(2, body)] = scan.messages.as_slice() else {
            panic!("{:?}", scan.messages)
        };
        assert_eq!(server_hello_version(body), Ok(0x0303));
        assert_eq!(
            scan_handshake(&SERVER_HELLO_RECORDS[5..], 1 << 16).unwrap_err(),
            TlsError::NotTls
        );
        assert_eq!(
            scan_handshake(&CLIENT_HELLO_RECORD, 100).unwrap_err(),
            TlsError::TooLarge
        );
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }
}
