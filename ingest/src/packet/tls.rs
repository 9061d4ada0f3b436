//! TLS: ClientHello (SNI, JA3, JA4), ServerHello (JA4S) and the server's leaf certificate
//! (SHA-1, SHA-256) for TLS <= 1.2, from record-layer byte streams that may span several
//! records and TCP segments. The record, handshake and hello structures are zero-copy `nom`
//! combinators.

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

/// The ServerHello fields JA4S needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHello {
    /// The negotiated version: `supported_versions` when present, else `legacy_version`.
    pub version: u16,
    /// The cipher suite the server chose.
    pub cipher: u16,
    /// Extension types in the order the server sent them.
    pub extensions: Vec<u16>,
    /// The ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
}

/// The fingerprints of a certificate: hashes of its DER bytes, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertHashes {
    /// SHA-1 (`tls.server.hash.sha1`).
    pub sha1: String,
    /// SHA-256 (`tls.server.hash.sha256`).
    pub sha256: String,
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

/// `v` with its GREASE values left out, in order.
fn without_grease(v: &[u16]) -> Vec<u16> {
    v.iter().copied().filter(|x| !is_grease(*x)).collect()
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

/// The two-character TLS version of JA4 and JA4S (`13`, `12`, ..., `00` when unknown).
fn version_code(v: u16) -> &'static str {
    match v {
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
    }
}

/// The ALPN part of JA4 and JA4S: first and last character of the protocol when both are
/// alphanumeric, else the first and last hex digit of its bytes; `00` without one.
fn alpn_code(alpn: Option<&[u8]>) -> String {
    let Some(a @ [f, ..]) = alpn else {
        return "00".into();
    };
    let l = a[a.len() - 1];
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        return [char::from(*f), char::from(l)].iter().collect();
    }
    let h = hex(a);
    let hb = h.as_bytes();
    [char::from(hb[0]), char::from(hb[hb.len() - 1])]
        .iter()
        .collect()
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
    let ver = version_code(ver);
    let mut ciphers = without_grease(&ch.ciphers);
    let exts = without_grease(&ch.extensions);
    let alpn = alpn_code(ch.alpn.as_deref());
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
    let sigs = without_grease(&ch.sig_algs);
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

/// Parse a ServerHello handshake *body* (after the 4-byte handshake header). The framing
/// of the hello and of its extension list must be whole; a malformed `supported_versions`
/// or ALPN extension is left out.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let parsed = (|| -> PResult<'_, ServerHello> {
        let (i, version) = hello_prefix(body)?;
        let (i, (cipher, _compression)) = or_fail(TlsError::Truncated, pair(be_u16, be_u8))(i)?;
        let (i, mut exts) = extensions_block(i)?;
        let mut sh = ServerHello {
            version,
            cipher,
            ..Default::default()
        };
        while !exts.is_empty() {
            let (rest, (t, d)) = extension(exts)?;
            exts = rest;
            sh.extensions.push(t);
            match (t, d) {
                (43, &[hi, lo]) => sh.version = u16::from_be_bytes([hi, lo]),
                (16, _) => sh.alpn = first_alpn(d).map(<[u8]>::to_vec).or(sh.alpn),
                _ => {}
            }
        }
        Ok((i, sh))
    })();
    parsed
        .map(|(_, sh)| sh)
        .map_err(|e| error_of(e, TlsError::Truncated))
}

/// JA4S (FoxIO): `{t|q}{version}{extension count:02}{alpn}_{cipher:04x}_{c}` where `c` is
/// the first 12 hex digits of the SHA-256 of the extension types in the order sent
/// (`000000000000` for none). GREASE values are left out, as JA4 does.
pub fn ja4s(sh: &ServerHello, quic: bool) -> String {
    let exts = without_grease(&sh.extensions);
    let mut out = String::with_capacity(25);
    out.push(if quic { 'q' } else { 't' });
    out.push_str(version_code(sh.version));
    let n = exts.len().min(99);
    out.push(char::from(b'0' + (n / 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
    out.push_str(&alpn_code(sh.alpn.as_deref()));
    out.push('_');
    out.push_str(&hex_list(std::iter::once(sh.cipher)));
    out.push('_');
    out.push_str(&sha12(&hex_list(exts.into_iter())));
    out
}

/// SHA-1 and SHA-256 of the first (leaf) certificate of a Certificate message body (TLS
/// <= 1.2: `certificate_list<0..2^24-1>` of `ASN.1Cert<1..2^24-1>`).
pub fn first_cert_hashes(body: &[u8]) -> Result<CertHashes, TlsError> {
    let (_, der) = or_fail(TlsError::Truncated, map_parser(vec24, vec24))(body)
        .map_err(|e| error_of(e, TlsError::Truncated))?;
    Ok(CertHashes {
        sha1: hex(&sha1::Sha1::digest(der)),
        sha256: hex(&Sha256::digest(der)),
    })
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
        // tshark 4.0: version 0x0303, cipher 0xc02f, extensions ff01,0000,000b,0010,0017 in
        // that order, ALPN h2.
        let sh = parse_server_hello(body).unwrap();
        assert_eq!(
            sh,
            ServerHello {
                version: 0x0303,
                cipher: 0xc02f,
                extensions: vec![0xff01, 0, 0x0b, 0x10, 0x17],
                alpn: Some(b"h2".to_vec()),
            }
        );
        // c = SHA-256("ff01,0000,000b,0010,0017") = 8763c20bf469… (sha256sum).
        assert_eq!(ja4s(&sh, false), "t1205h2_c02f_8763c20bf469");
        for cut in 0..body.len() {
            let no_extensions = 32 + 2 + 1 + body[34] as usize + 3;
            let r = parse_server_hello(&body[..cut]);
            if cut == no_extensions {
                assert_eq!(r.map(|s| s.extensions), Ok(vec![]));
            } else {
                assert_eq!(r, Err(TlsError::Truncated), "{cut}");
            }
        }
        assert_eq!(
            scan_handshake(&SERVER_HELLO_RECORDS[5..], 1 << 16).unwrap_err(),
            TlsError::NotTls
        );
        assert_eq!(
            scan_handshake(&CLIENT_HELLO_RECORD, 100).unwrap_err(),
            TlsError::TooLarge
        );
    }

    /// FoxIO's example in JA4S.md: TLS 1.2, cipher c030, extensions 0005,0017,ff01,0000, no
    /// ALPN. supported_versions decides the version; GREASE is left out.
    #[test]
    fn ja4s_against_published_vector() {
        let mut sh = ServerHello {
            version: 0x0303,
            cipher: 0xc030,
            extensions: vec![0x0005, 0x0017, 0xff01, 0x0000],
            alpn: None,
        };
        assert_eq!(ja4s(&sh, false), "t120400_c030_4e8089b08790");
        sh.extensions.insert(1, 0x3a3a);
        assert_eq!(ja4s(&sh, false), "t120400_c030_4e8089b08790");
        sh.extensions.clear();
        assert_eq!(ja4s(&sh, true), "q120000_c030_000000000000");
        // A ServerHello body: legacy 0x0303, random, empty session id, TLS_AES_128_GCM_SHA256,
        // null compression, supported_versions = 0x0304, ALPN "h2".
        let mut body = vec![3, 3];
        body.extend([7; 32]);
        body.extend([0, 0x13, 0x01, 0]);
        body.extend([0, 15, 0, 43, 0, 2, 3, 4, 0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
        let sh = parse_server_hello(&body).unwrap();
        assert_eq!((sh.version, sh.cipher), (0x0304, 0x1301));
        assert!(ja4s(&sh, false).starts_with("t1302h2_1301_"));
    }

    /// The leaf certificate's hashes, from a Certificate body of two certificates.
    #[test]
    fn first_certificate_hashes() {
        let leaf = b"leaf certificate DER";
        let mut body = Vec::new();
        let list_len = 3 + leaf.len() + 3 + 2;
        body.extend(&u32::to_be_bytes(list_len as u32)[1..]);
        body.extend(&u32::to_be_bytes(leaf.len() as u32)[1..]);
        body.extend(leaf);
        body.extend([0, 0, 2, 0xaa, 0xbb]);
        let h = first_cert_hashes(&body).unwrap();
        // sha1sum / sha256sum of the same bytes.
        assert_eq!(h.sha1, "4a56a4aa87ff84b073d42b8b785a7ea056286331");
        assert_eq!(
            h.sha256,
            "5908f84ad44474a4e344a6e376786ee8cf041ef7acc3ca9e3242f7d8c041b579"
        );
        for cut in 0..3 + 3 + leaf.len() {
            assert_eq!(first_cert_hashes(&body[..cut]), Err(TlsError::Truncated));
        }
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }
}
