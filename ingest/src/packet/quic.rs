//! QUIC v1 (RFC 9000/9001) and v2 (RFC 9369) client Initial packets: derive the Initial
//! keys from the Destination Connection ID, remove header protection, decrypt, and collect
//! the CRYPTO frames (which carry the TLS ClientHello).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

/// QUIC version 1.
pub const V1: u32 = 0x0000_0001;
/// QUIC version 2.
pub const V2: u32 = 0x6b33_43cf;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// Why a QUIC packet was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// Not a long-header Initial of a version we know.
    #[error("not a QUIC v1/v2 Initial")]
    NotInitial,
    /// A length runs past the datagram.
    #[error("truncated")]
    Truncated,
    /// AEAD authentication failed (not a client Initial, or corrupt).
    #[error("decryption failed")]
    Decrypt,
    /// A frame type not allowed in Initial packets, or a bad frame.
    #[error("bad frame")]
    BadFrame,
}

impl QuicError {
    /// Static reason for the drop counters.
    pub fn reason(self) -> &'static str {
        match self {
            QuicError::NotInitial => "quic: not initial",
            QuicError::Truncated => "quic: truncated",
            QuicError::Decrypt => "quic: decrypt failed",
            QuicError::BadFrame => "quic: bad frame",
        }
    }
}

/// Client Initial keys.
pub struct InitialKeys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

fn expand_label(hk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) -> bool {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    hk.expand(&info, out).is_ok()
}

impl InitialKeys {
    /// Derive the client Initial keys for `version` from the client's first DCID.
    pub fn client(version: u32, dcid: &[u8]) -> Option<InitialKeys> {
        let (salt, kl, il, hl) = match version {
            V1 => (&SALT_V1, "quic key", "quic iv", "quic hp"),
            V2 => (&SALT_V2, "quicv2 key", "quicv2 iv", "quicv2 hp"),
            _ => return None,
        };
        let (_, initial) = Hkdf::<Sha256>::extract(Some(salt), dcid);
        let mut client = [0u8; 32];
        if !expand_label(&initial, "client in", &mut client) {
            return None;
        }
        let c = Hkdf::<Sha256>::from_prk(&client).ok()?;
        let mut k = InitialKeys {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        if expand_label(&c, kl, &mut k.key)
            && expand_label(&c, il, &mut k.iv)
            && expand_label(&c, hl, &mut k.hp)
        {
            Some(k)
        } else {
            None
        }
    }
}

/// Read a QUIC variable-length integer.
pub fn varint(b: &[u8], p: &mut usize) -> Option<u64> {
    let first = *b.get(*p)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*p..*p + len)?;
    let mut v = u64::from(first & 0x3f);
    for x in &bytes[1..] {
        v = (v << 8) | u64::from(*x);
    }
    *p += len;
    Some(v)
}

/// The header of one long-header packet inside a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// Version.
    pub version: u32,
    /// Destination Connection ID.
    pub dcid: &'a [u8],
    /// Is it an Initial packet?
    pub initial: bool,
    /// Offset of the packet number (Initial only; 0 otherwise).
    pub pn_offset: usize,
    /// End of this packet in the datagram (coalesced packets follow).
    pub end: usize,
}

/// Parse the long header at `start` of a datagram.
pub fn long_header(d: &[u8], start: usize) -> Result<LongHeader<'_>, QuicError> {
    let b0 = *d.get(start).ok_or(QuicError::Truncated)?;
    if b0 & 0x80 == 0 {
        return Err(QuicError::NotInitial);
    }
    let v = d.get(start + 1..start + 5).ok_or(QuicError::Truncated)?;
    let version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let ptype = (b0 >> 4) & 3;
    let initial = match version {
        V1 => ptype == 0,
        V2 => ptype == 1,
        _ => return Err(QuicError::NotInitial),
    };
    let mut p = start + 5;
    let dl = *d.get(p).ok_or(QuicError::Truncated)? as usize;
    if dl > 20 {
        return Err(QuicError::NotInitial);
    }
    let dcid = d.get(p + 1..p + 1 + dl).ok_or(QuicError::Truncated)?;
    p += 1 + dl;
    let sl = *d.get(p).ok_or(QuicError::Truncated)? as usize;
    if sl > 20 {
        return Err(QuicError::NotInitial);
    }
    p += 1 + sl;
    let retry = match version {
        V1 => ptype == 3,
        _ => ptype == 0,
    };
    if retry {
        return Ok(LongHeader {
            version,
            dcid,
            initial: false,
            pn_offset: 0,
            end: d.len(),
        });
    }
    if initial {
        let tl = varint(d, &mut p).ok_or(QuicError::Truncated)? as usize;
        p = p.checked_add(tl).ok_or(QuicError::Truncated)?;
    }
    let len = varint(d, &mut p).ok_or(QuicError::Truncated)? as usize;
    let end = p.checked_add(len).ok_or(QuicError::Truncated)?;
    if end > d.len() {
        return Err(QuicError::Truncated);
    }
    Ok(LongHeader {
        version,
        dcid,
        initial,
        pn_offset: p,
        end,
    })
}

/// Decrypt one Initial packet (header already parsed) and append its CRYPTO frames
/// `(offset, data)` to `crypto`.
pub fn decrypt_initial(
    d: &[u8],
    start: usize,
    h: &LongHeader<'_>,
    keys: &InitialKeys,
    crypto: &mut Vec<(u64, Vec<u8>)>,
) -> Result<(), QuicError> {
    let pn_off = h.pn_offset;
    let sample = d.get(pn_off + 4..pn_off + 20).ok_or(QuicError::Truncated)?;
    let hp = aes::Aes128::new(&keys.hp.into());
    let mut mask = aes::Block::clone_from_slice(sample);
    hp.encrypt_block(&mut mask);
    let mut pkt = d.get(start..h.end).ok_or(QuicError::Truncated)?.to_vec();
    let rel_pn = pn_off - start;
    pkt[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(pkt[0] & 3) + 1;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        let b = pkt.get_mut(rel_pn + i).ok_or(QuicError::Truncated)?;
        *b ^= mask[1 + i];
        pn = (pn << 8) | u64::from(*b);
    }
    let hdr_len = rel_pn + pn_len;
    if pkt.len() < hdr_len + 16 {
        return Err(QuicError::Truncated);
    }
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let (hdr, rest) = pkt.split_at_mut(hdr_len);
    let (ct, tag) = rest.split_at_mut(rest.len() - 16);
    let cipher = Aes128Gcm::new(&keys.key.into());
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(&nonce), hdr, ct, Tag::from_slice(tag))
        .map_err(|_| QuicError::Decrypt)?;
    let pt: &[u8] = ct;
    let mut p = 0;
    while p < pt.len() {
        let t = varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
        match t {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                let n = varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                for _ in 0..n.min(1024) {
                    varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                    varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                }
                if t == 0x03 {
                    for _ in 0..3 {
                        varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                    }
                }
            }
            0x06 => {
                let off = varint(pt, &mut p).ok_or(QuicError::BadFrame)?;
                let len = varint(pt, &mut p).ok_or(QuicError::BadFrame)? as usize;
                let data = pt.get(p..p + len).ok_or(QuicError::BadFrame)?;
                crypto.push((off, data.to_vec()));
                p += len;
            }
            0x1c | 0x1d => break,
            _ => return Err(QuicError::BadFrame),
        }
    }
    Ok(())
}

/// Assemble contiguous CRYPTO data from offset 0. Returns `None` while there is a gap at 0.
pub fn assemble(crypto: &[(u64, Vec<u8>)], max: usize) -> Vec<u8> {
    let mut v: Vec<&(u64, Vec<u8>)> = crypto.iter().collect();
    v.sort_by_key(|x| x.0);
    let mut out: Vec<u8> = Vec::new();
    for (off, data) in v {
        let off = *off as usize;
        if off > out.len() || out.len() >= max {
            break;
        }
        let skip = out.len() - off;
        if skip < data.len() {
            out.extend_from_slice(&data[skip..]);
        }
    }
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 Appendix A.1 key derivation for DCID 0x8394c8f03e515708.
    #[test]
    fn rfc9001_keys() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let k = InitialKeys::client(V1, &dcid).unwrap();
        assert_eq!(
            k.key,
            [
                0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1,
                0xa2, 0x2d
            ]
        );
        assert_eq!(
            k.iv,
            [0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c]
        );
        assert_eq!(
            k.hp,
            [
                0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10, 0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad,
                0xed, 0xd2
            ]
        );
    }

    /// RFC 9369 Appendix A.1 (QUIC v2) client keys for the same DCID.
    #[test]
    fn rfc9369_keys() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let k = InitialKeys::client(V2, &dcid).unwrap();
        assert_eq!(
            k.key,
            [
                0x8b, 0x1a, 0x0b, 0xc1, 0x21, 0x28, 0x42, 0x90, 0xa2, 0x9e, 0x09, 0x71, 0xb5, 0xcd,
                0x04, 0x5d
            ]
        );
    }

    #[test]
    fn assemble_out_of_order() {
        let c = vec![
            (3u64, b"def".to_vec()),
            (0, b"abc".to_vec()),
            (2, b"cd".to_vec()),
        ];
        assert_eq!(assemble(&c, 100), b"abcdef");
        assert_eq!(assemble(&[(1, b"x".to_vec())], 100), b"");
    }
}
