//! IP addresses and ports as log lines write them: a one-pass dotted-quad parser with a
//! vector fast path, brackets and IPv6 through the standard library.

use std::net::IpAddr;

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
    #[cfg(target_arch = "x86_64")]
    {
        parse_ipv4_sse2(b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    match parse_ipv4(b) {
        Dotted::Ip(a) => Some(a),
        _ => None,
    }
}

/// Exactly `s.parse::<IpAddr>().ok()` (no brackets), with the dotted-quad fast path.
#[inline]
pub(crate) fn parse_ip_str(s: &str) -> Option<IpAddr> {
    #[cfg(target_arch = "x86_64")]
    if let Some(a) = parse_ipv4_sse2(s.as_bytes()) {
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
/// shape of [`QUAD_SHAPES`], and one byte shuffle and two multiply-adds read all four (a
/// table walk where the CPU lacks SSSE3). `None` for anything that is not a plain valid dotted quad (the caller falls back
/// to the full parser, which gives the answer for those).
#[cfg(target_arch = "x86_64")]
#[inline]
fn parse_ipv4_sse2(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    use core::arch::x86_64::*;
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
    // SAFETY: SSE2 is part of the x86_64 baseline; no memory is read.
    let v = unsafe { _mm_set_epi64x(hi as i64, lo as i64) };
    let (dots, digits) = {
        // SAFETY: as above.
        unsafe {
            let dots = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8))) as u32;
            let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let le9 = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
            (dots, _mm_movemask_epi8(le9) as u32)
        }
    };
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
    let lens = [p1, p2 - p1 - 1, p3 - p2 - 1, n - p3 - 1];
    if lens.iter().any(|l| !(1..=3).contains(l)) {
        return None; // an empty octet, or one of four digits or more
    }
    let shape = lens.iter().fold(0, |i, l| i * 3 + l - 1);
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above); `shape` is below 81.
        return unsafe { octets_ssse3(v, shape) };
    }
    octets_scalar(u128::from(lo) | u128::from(hi) << 64, shape)
}

/// [`octets_ssse3`] without SSSE3: the same table, a byte at a time (`text` holds the
/// quad's bytes, lowest first).
#[cfg(target_arch = "x86_64")]
fn octets_scalar(text: u128, shape: usize) -> Option<std::net::Ipv4Addr> {
    let s = QUAD_SHAPES.get(shape)?;
    let bytes = text.to_le_bytes();
    let mut a = [0u8; 4];
    for (k, octet) in a.iter_mut().enumerate() {
        let mut v = 0i32;
        for (d, weight) in [100, 10, 1].into_iter().enumerate() {
            let at = s.shuffle[4 * k + d];
            if let Some(&c) = bytes.get(usize::from(at)) {
                v += i32::from(c.wrapping_sub(b'0')) * weight;
            }
        }
        if v > 255 || v < s.least[k] {
            return None;
        }
        *octet = v as u8;
    }
    Some(std::net::Ipv4Addr::from(a))
}

/// For each of the 81 shapes of a dotted quad (octet lengths 1-3 each; shape index
/// `((l1-1)*3 + l2-1)*3 + l3-1)*3 + l4-1`): the byte shuffle that puts octet `k`'s digits
/// right-aligned in bytes `4k..4k+3` (`[hundreds, tens, ones, 0]`, zeros in front of short
/// octets), and each octet's smallest value without a leading zero (0, 10, 100).
#[cfg(target_arch = "x86_64")]
struct QuadShape {
    shuffle: [u8; 16],
    least: [i32; 4],
}

#[cfg(target_arch = "x86_64")]
const QUAD_SHAPES: [QuadShape; 81] = {
    const ZERO: u8 = 0x80; // a shuffle index with the high bit set yields 0
    let mut shapes = [const {
        QuadShape {
            shuffle: [ZERO; 16],
            least: [0; 4],
        }
    }; 81];
    let mut shape = 0;
    while shape < 81 {
        let lens = [
            shape / 27 + 1,
            shape / 9 % 3 + 1,
            shape / 3 % 3 + 1,
            shape % 3 + 1,
        ];
        let mut start = 0;
        let mut k = 0;
        while k < 4 {
            let len = lens[k];
            let mut d = 0;
            while d < len {
                shapes[shape].shuffle[4 * k + 3 - len + d] = (start + d) as u8;
                d += 1;
            }
            shapes[shape].least[k] = [0, 0, 10, 100][len];
            start += len + 1;
            k += 1;
        }
        shape += 1;
    }
    shapes
};

/// The four octets of the dotted quad in `v` (text in the low bytes, shape `shape` as
/// [`QUAD_SHAPES`] numbers them, every non-dot byte a digit): one shuffle aligns the
/// digits, two multiply-adds weigh them. `None` for an octet above 255 or with a leading
/// zero.
///
/// # Safety
/// The CPU must support SSSE3, and `shape` must be below 81.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn octets_ssse3(v: core::arch::x86_64::__m128i, shape: usize) -> Option<std::net::Ipv4Addr> {
    use core::arch::x86_64::*;
    // SAFETY: the caller guarantees `shape < 81` and SSSE3; the loads read the 16 bytes of
    // `s.shuffle` and of `s.least`.
    unsafe {
        let s = QUAD_SHAPES.get_unchecked(shape);
        let digits = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let aligned = _mm_shuffle_epi8(digits, _mm_loadu_si128(s.shuffle.as_ptr().cast()));
        // [h, t, o, 0] · [100, 10, 1, 0]: pairs summed to 16 bits, then to 32.
        let weights = _mm_set1_epi32(i32::from_le_bytes([100, 10, 1, 0]));
        let values = _mm_madd_epi16(_mm_maddubs_epi16(aligned, weights), _mm_set1_epi16(1));
        let least = _mm_loadu_si128(s.least.as_ptr().cast());
        let bad = _mm_or_si128(
            _mm_cmpgt_epi32(values, _mm_set1_epi32(255)),
            _mm_cmpgt_epi32(least, values),
        );
        if _mm_movemask_epi8(bad) != 0 {
            return None;
        }
        let bytes = _mm_packus_epi16(_mm_packs_epi32(values, values), values);
        Some(std::net::Ipv4Addr::from(
            _mm_cvtsi128_si32(bytes).to_le_bytes(),
        ))
    }
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

        /// Without SSSE3 the octets come out the same: the byte-at-a-time reading of the
        /// shape table agrees with the shuffle for every dotted quad of one to three digits.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn scalar_octets_agree_with_the_shuffle(s in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}") {
            let b = s.as_bytes();
            let mut text = [0u8; 16];
            text[..b.len()].copy_from_slice(b);
            let dots: Vec<usize> = b.iter().enumerate().filter(|(_, &c)| c == b'.').map(|(i, _)| i).collect();
            let lens = [dots[0], dots[1] - dots[0] - 1, dots[2] - dots[1] - 1, b.len() - dots[2] - 1];
            let shape = lens.iter().fold(0, |i, l| i * 3 + l - 1);
            let scalar = octets_scalar(u128::from_le_bytes(text), shape);
            prop_assert_eq!(scalar, s.parse::<std::net::Ipv4Addr>().ok(), "{:?}", s);
            if std::arch::is_x86_feature_detected!("ssse3") {
                use core::arch::x86_64::*;
                // SAFETY: SSSE3 checked; the load reads the 16 bytes of `text`.
                let fast = unsafe { octets_ssse3(_mm_loadu_si128(text.as_ptr().cast()), shape) };
                prop_assert_eq!(fast, scalar, "{:?}", s);
            }
        }

        /// The vector fast path never answers differently from the one-pass parser: it
        /// either agrees or declines.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn sse2_ipv4_agrees_or_declines(s in "[0-9]{0,4}(\\.[0-9]{0,4}){0,4}|[0-9./:x ]{0,16}") {
            let fast = parse_ipv4_sse2(s.as_bytes());
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
