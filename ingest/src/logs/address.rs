//! IP addresses and ports as log lines write them: a one-pass dotted-quad parser with a
//! vector fast path, brackets and IPv6 through the standard library.

use std::net::IpAddr;

use matcher::simd::{self, Bytes16};

/// An IP address, optionally in `[v6]` brackets.
pub(crate) fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    match parse_ipv4_fast(b) {
        Some(a) => Some(IpAddr::V4(a)),
        None => parse_ip_unless_plain_v4(b),
    }
}

/// [`parse_ip`] of text [`parse_ipv4_fast`] declined: brackets, IPv6, or no address.
pub(crate) fn parse_ip_unless_plain_v4(b: &[u8]) -> Option<IpAddr> {
    let b = match b {
        [b'[', inner @ .., b']'] => inner,
        _ => b,
    };
    if b.is_empty() || b.len() > 45 {
        return None;
    }
    if b.len() <= 15 {
        match parse_ipv4(b) {
            Dotted::Ip(a) => return Some(IpAddr::V4(a)),
            Dotted::Invalid => return None,
            Dotted::Other => {}
        }
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// A plain dotted quad (what `parse_ip` reads as IPv4 without brackets), or `None` when
/// `b` is anything else: then ask [`parse_ip`].
#[inline]
pub(crate) fn parse_ipv4_fast(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    parse_ipv4_block(b)
}

/// Exactly `s.parse::<IpAddr>().ok()` (no brackets), with the dotted-quad fast path.
#[inline]
pub(crate) fn parse_ip_str(s: &str) -> Option<IpAddr> {
    if let Some(a) = parse_ipv4_block(s.as_bytes()) {
        return Some(IpAddr::V4(a));
    }
    s.parse().ok()
}

/// What [`parse_ipv4`] made of its input.
enum Dotted {
    /// A valid dotted quad.
    Ip(std::net::Ipv4Addr),
    /// Only digits and dots, but not a valid dotted quad.
    Invalid,
    /// Holds some other byte: not a dotted quad at all (maybe IPv6).
    Other,
}

/// Dotted-quad IPv4 (no leading `+`, each octet 1-3 digits, 0-255), in one pass.
fn parse_ipv4(b: &[u8]) -> Dotted {
    let mut oct = [0u8; 4];
    let mut i = 0;
    let mut val: u16 = 0;
    let mut ndig = 0;
    let mut bad = false;
    for &c in b {
        if c == b'.' {
            if ndig == 0 || i == 3 || val > 255 {
                bad = true;
            } else {
                oct[i] = val as u8;
                i += 1;
            }
            val = 0;
            ndig = 0;
        } else if c.is_ascii_digit() {
            if ndig == 3 || (ndig == 1 && val == 0) {
                bad = true; // too long, or a leading zero (std rejects those too)
            }
            val = (val * 10 + u16::from(c - b'0')).min(1000);
            ndig += 1;
        } else {
            return Dotted::Other;
        }
    }
    if bad || i != 3 || ndig == 0 || val > 255 {
        return Dotted::Invalid;
    }
    oct[3] = val as u8;
    Dotted::Ip(std::net::Ipv4Addr::from(oct))
}

/// The common case of [`parse_ipv4`] without a branch per byte: one 16-byte compare finds
/// the dots and checks that every other byte is a digit, then the octets' lengths pick a
/// [`simd::quad_shape`], and [`simd::quad_octets`] reads all four at once. `None` for
/// anything that is not a plain valid dotted quad (the caller falls back to the full
/// parser, which gives the answer for those).
#[inline]
fn parse_ipv4_block(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let n = b.len();
    if !(7..=15).contains(&n) {
        return None;
    }
    // The text in the low `n` bytes of a vector and zeros above it, from two overlapping
    // loads straight from the slice (a copy into a buffer would stall the vector load).
    let le64 = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (lo, hi) = if n == 7 {
        let le32 =
            |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
        (le32(0) | le32(3) << 24, 0)
    } else if n == 8 {
        (le64(0), 0)
    } else {
        (le64(0), le64(n - 8) >> ((16 - n) * 8))
    };
    let v = simd::Native::from_u128(u128::from(lo) | u128::from(hi) << 64);
    let (digits, dots) = simd::digit_dot_masks(v);
    let live = (1u32 << n) - 1;
    // The zero bytes past the text are neither dots nor digits, so `dots` lies within it.
    // Exactly three dots: clearing the lowest two leaves one bit.
    let two_off = {
        let one_off = dots & dots.wrapping_sub(1);
        one_off & one_off.wrapping_sub(1)
    };
    if (dots | digits) & live != live || two_off == 0 || two_off & (two_off - 1) != 0 {
        return None;
    }
    let p1 = dots.trailing_zeros() as usize;
    let p2 = (dots & (dots - 1)).trailing_zeros() as usize;
    let p3 = two_off.trailing_zeros() as usize;
    // `None` for an empty octet, or one of four digits or more.
    let shape = simd::quad_shape([p1, p2 - p1 - 1, p3 - p2 - 1, n - p3 - 1])?;
    simd::quad_octets(v, shape)
}

/// A decimal `u16`.
pub(crate) fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The one-pass parser answers exactly like the standard library.
        #[test]
        fn parse_ip_agrees_with_std(s in "[0-9.:a-fA-Fx ]{0,20}|[0-9]{1,3}(\\.[0-9]{1,4}){0,4}") {
            prop_assert_eq!(parse_ip(s.as_bytes()), s.parse::<IpAddr>().ok(), "{:?}", s);
        }

        /// The text form answers exactly like the standard library, brackets and all.
        #[test]
        fn parse_ip_str_agrees_with_std(s in "\\[?[0-9.:a-fA-F]{0,50}\\]?|[0-9]{1,3}(\\.[0-9]{1,4}){0,4}\\.?") {
            prop_assert_eq!(parse_ip_str(&s), s.parse::<IpAddr>().ok(), "{:?}", s);
        }

        /// The vector fast path never answers differently from the one-pass parser: it
        /// either agrees or declines.
        #[test]
        fn block_ipv4_agrees_or_declines(s in "[0-9]{0,4}(\\.[0-9]{0,4}){0,4}|[0-9./:x ]{0,16}") {
            let fast = parse_ipv4_block(s.as_bytes());
            let full = match parse_ipv4(s.as_bytes()) {
                Dotted::Ip(a) => Some(a),
                _ => None,
            };
            if let Some(a) = fast {
                prop_assert_eq!(Some(a), full, "{:?}", s);
            }
            if s.len() >= 7 && s.len() <= 15 {
                prop_assert_eq!(fast, full, "{:?}", s);
            }
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            ".1.2.3",
            "1.2.3.",
            "10.105.21.199",
            "1.2.3.0",
            "0.10.0.100",
        ] {
            assert_eq!(parse_ip(s.as_bytes()), s.parse().ok(), "{s}");
        }
        // Every octet text of one to three digits (leading zeros included), in every slot.
        for v in 0..1000 {
            for octet in [format!("{v}"), format!("{v:02}"), format!("{v:03}")] {
                for s in [
                    format!("{octet}.1.22.3"),
                    format!("1.{octet}.2.33"),
                    format!("11.2.{octet}.3"),
                    format!("1.2.3.{octet}"),
                ] {
                    assert_eq!(parse_ip(s.as_bytes()), s.parse().ok(), "{s}");
                }
            }
        }
    }
}
