//! TLS: ClientHello (SNI, JA3, JA4) and the server certificate (SHA1) for TLS <= 1.2,
//! from record-layer byte streams that may span several records and TCP segments.

use md5::{Digest, Md5};
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

struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Result<u8, TlsError> {
        let v = *self.b.get(self.p).ok_or(TlsError::Truncated)?;
        self.p += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        let s = self.b.get(self.p..self.p + n).ok_or(TlsError::Truncated)?;
        self.p += n;
        Ok(s)
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from(c[0]) << 8 | u16::from(c[1]))
        .collect()
}

/// Parse a ClientHello handshake *body* (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let mut r = Rd { b: body, p: 0 };
    let mut ch = ClientHello {
        version: r.u16()?,
        ..Default::default()
    };
    r.take(32)?;
    let sid = r.u8()? as usize;
    r.take(sid)?;
    let cl = r.u16()? as usize;
    ch.ciphers = u16s(r.take(cl)?);
    let comp = r.u8()? as usize;
    r.take(comp)?;
    if r.p == body.len() {
        return Ok(ch);
    }
    let el = r.u16()? as usize;
    let ext = r.take(el)?;
    let mut e = Rd { b: ext, p: 0 };
    while e.p < ext.len() {
        let t = e.u16()?;
        let l = e.u16()? as usize;
        let d = e.take(l)?;
        ch.extensions.push(t);
        let mut x = Rd { b: d, p: 0 };
        match t {
            0 => {
                // server_name_list
                let Ok(ll) = x.u16() else { continue };
                let Ok(list) = x.take(ll as usize) else {
                    continue;
                };
                let mut s = Rd { b: list, p: 0 };
                while s.p < list.len() {
                    let Ok(kind) = s.u8() else { break };
                    let Ok(nl) = s.u16() else { break };
                    let Ok(name) = s.take(nl as usize) else { break };
                    if kind == 0 && ch.sni.is_none() {
                        ch.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            10 => {
                if let Ok(ll) = x.u16() {
                    if let Ok(v) = x.take(ll as usize) {
                        ch.groups = u16s(v);
                    }
                }
            }
            11 => {
                if let Ok(ll) = x.u8() {
                    if let Ok(v) = x.take(ll as usize) {
                        ch.point_formats = v.to_vec();
                    }
                }
            }
            13 => {
                if let Ok(ll) = x.u16() {
                    if let Ok(v) = x.take(ll as usize) {
                        ch.sig_algs = u16s(v);
                    }
                }
            }
            16 => {
                if let (Ok(_), Ok(pl)) = (x.u16(), x.u8()) {
                    if let Ok(p) = x.take(pl as usize) {
                        ch.alpn = Some(p.to_vec());
                    }
                }
            }
            43 => {
                if let Ok(ll) = x.u8() {
                    if let Ok(v) = x.take(ll as usize) {
                        ch.supported_versions = u16s(v);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ch)
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
    let mut p = 0;
    while p + 5 <= stream.len() {
        let ct = stream[p];
        let major = stream[p + 1];
        let len = usize::from(stream[p + 3]) << 8 | usize::from(stream[p + 4]);
        if !(20..=24).contains(&ct) || major != 3 || len > 18432 {
            if p == 0 {
                return Err(TlsError::NotTls);
            }
            out.ended = true;
            break;
        }
        if ct != 22 {
            out.ended = true;
            break;
        }
        let Some(frag) = stream.get(p + 5..p + 5 + len) else {
            break;
        };
        hs.extend_from_slice(frag);
        if hs.len() > max {
            return Err(TlsError::TooLarge);
        }
        p += 5 + len;
    }
    let mut q = 0;
    while q + 4 <= hs.len() {
        let t = hs[q];
        let l = usize::from(hs[q + 1]) << 16 | usize::from(hs[q + 2]) << 8 | usize::from(hs[q + 3]);
        let Some(body) = hs.get(q + 4..q + 4 + l) else {
            break;
        };
        out.messages.push((t, body.to_vec()));
        q += 4 + l;
    }
    Ok(out)
}

/// From a ServerHello body: the negotiated version (supported_versions wins).
pub fn server_hello_version(body: &[u8]) -> Result<u16, TlsError> {
    let mut r = Rd { b: body, p: 0 };
    let mut ver = r.u16()?;
    r.take(32)?;
    let sid = r.u8()? as usize;
    r.take(sid)?;
    r.u16()?; // cipher
    r.u8()?; // compression
    if r.p == body.len() {
        return Ok(ver);
    }
    let el = r.u16()? as usize;
    let ext = r.take(el)?;
    let mut e = Rd { b: ext, p: 0 };
    while e.p < ext.len() {
        let t = e.u16()?;
        let l = e.u16()? as usize;
        let d = e.take(l)?;
        if t == 43 && d.len() == 2 {
            ver = u16::from(d[0]) << 8 | u16::from(d[1]);
        }
    }
    Ok(ver)
}

/// SHA1 (lower-case hex) of the first certificate of a Certificate message body.
pub fn first_cert_sha1(body: &[u8]) -> Result<String, TlsError> {
    let mut r = Rd { b: body, p: 0 };
    let total = (usize::from(r.u8()?) << 16) | usize::from(r.u16()?);
    let list = r.take(total)?;
    let mut c = Rd { b: list, p: 0 };
    let l = (usize::from(c.u8()?) << 16) | usize::from(c.u16()?);
    let der = c.take(l)?;
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

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }
}
