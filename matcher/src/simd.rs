//! Every SIMD primitive of the workspace, each beside its scalar twin: 16-byte byte-class
//! masks (separators, blanks, digits and dots, host bytes), the 32-byte AVX2 blank mask and
//! the dotted-quad octet shuffle. The log parsers (`ingest`) and the matcher's URL and
//! domain helpers use them; nothing else in the workspace holds an intrinsic.
//!
//! [`Bytes16`] is a small trait over a 16-byte vector (aho-corasick's `Vector` is the
//! model): [`Sse2`] on x86_64, where SSE2 is baseline, and [`Scalar`] on every target.
//! Callers use [`Native`], the best of the two for the target. Both implementations are
//! compiled on x86_64 and property tests check them against each other, so the scalar
//! reading of every primitive is the tested definition of what the vector one computes.

use std::net::Ipv4Addr;

/// A 16-byte vector: lane `i` holds byte `i`, comparisons set a lane to all ones.
pub trait Bytes16: Copy {
    /// The 16 bytes of `b`.
    fn load(b: &[u8; 16]) -> Self;
    /// The bytes of `le`, lowest first (a vector built in registers, no memory load).
    fn from_u128(le: u128) -> Self;
    /// Every lane `b`.
    fn splat(b: u8) -> Self;
    /// Lanes equal in `self` and `other`.
    fn eq(self, other: Self) -> Self;
    /// Lanes set in either.
    fn or(self, other: Self) -> Self;
    /// Lanes whose byte is in `lo..=lo + span` (unsigned).
    fn in_range(self, lo: u8, span: u8) -> Self;
    /// Bit `i` set when lane `i` is set.
    fn movemask(self) -> u32;
    /// The 16 bytes, lowest first.
    fn to_bytes(self) -> [u8; 16];
}

/// [`Bytes16`] one byte at a time: compiled on every target, the twin every vector
/// implementation is tested against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scalar([u8; 16]);

impl Scalar {
    #[inline(always)]
    fn map(self, f: impl Fn(u8) -> bool) -> Self {
        Scalar(self.0.map(|b| if f(b) { 0xff } else { 0 }))
    }
}

impl Bytes16 for Scalar {
    #[inline(always)]
    fn load(b: &[u8; 16]) -> Self {
        Scalar(*b)
    }
    #[inline(always)]
    fn from_u128(le: u128) -> Self {
        Scalar(le.to_le_bytes())
    }
    #[inline(always)]
    fn splat(b: u8) -> Self {
        Scalar([b; 16])
    }
    #[inline(always)]
    fn eq(self, other: Self) -> Self {
        let mut out = [0; 16];
        for ((o, a), b) in out.iter_mut().zip(self.0).zip(other.0) {
            *o = if a == b { 0xff } else { 0 };
        }
        Scalar(out)
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        let mut out = self.0;
        for (o, b) in out.iter_mut().zip(other.0) {
            *o |= b;
        }
        Scalar(out)
    }
    #[inline(always)]
    fn in_range(self, lo: u8, span: u8) -> Self {
        self.map(|b| b.wrapping_sub(lo) <= span)
    }
    #[inline(always)]
    fn movemask(self) -> u32 {
        self.0
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | u32::from(b >> 7) << i)
    }
    #[inline(always)]
    fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

/// [`Bytes16`] in an SSE2 register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub struct Sse2(core::arch::x86_64::__m128i);

// SAFETY (every block below): SSE2 is part of the x86_64 baseline, and the only memory
// access, `load`'s, reads the 16 bytes of its array.
#[cfg(target_arch = "x86_64")]
impl Bytes16 for Sse2 {
    #[inline(always)]
    fn load(b: &[u8; 16]) -> Self {
        // SAFETY: see above.
        Sse2(unsafe { core::arch::x86_64::_mm_loadu_si128(b.as_ptr().cast()) })
    }
    #[inline(always)]
    fn from_u128(le: u128) -> Self {
        // SAFETY: see above.
        Sse2(unsafe { core::arch::x86_64::_mm_set_epi64x((le >> 64) as i64, le as i64) })
    }
    #[inline(always)]
    fn splat(b: u8) -> Self {
        // SAFETY: see above.
        Sse2(unsafe { core::arch::x86_64::_mm_set1_epi8(b as i8) })
    }
    #[inline(always)]
    fn eq(self, other: Self) -> Self {
        // SAFETY: see above.
        Sse2(unsafe { core::arch::x86_64::_mm_cmpeq_epi8(self.0, other.0) })
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        // SAFETY: see above.
        Sse2(unsafe { core::arch::x86_64::_mm_or_si128(self.0, other.0) })
    }
    #[inline(always)]
    fn in_range(self, lo: u8, span: u8) -> Self {
        use core::arch::x86_64::*;
        // SAFETY: see above.
        unsafe {
            let d = _mm_sub_epi8(self.0, _mm_set1_epi8(lo as i8));
            Sse2(_mm_cmpeq_epi8(
                _mm_min_epu8(d, _mm_set1_epi8(span as i8)),
                d,
            ))
        }
    }
    #[inline(always)]
    fn movemask(self) -> u32 {
        // SAFETY: see above.
        unsafe { core::arch::x86_64::_mm_movemask_epi8(self.0) as u32 }
    }
    #[inline(always)]
    fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: see above; the store writes the 16 bytes of `out`.
        unsafe { core::arch::x86_64::_mm_storeu_si128(out.as_mut_ptr().cast(), self.0) };
        out
    }
}

/// The fastest [`Bytes16`] of the target.
#[cfg(target_arch = "x86_64")]
pub type Native = Sse2;
/// The fastest [`Bytes16`] of the target.
#[cfg(not(target_arch = "x86_64"))]
pub type Native = Scalar;

/// Bit `i` set when byte `i` of `block` is `byte`.
#[inline(always)]
pub fn eq_mask<V: Bytes16>(block: &[u8; 16], byte: u8) -> u32 {
    V::load(block).eq(V::splat(byte)).movemask()
}

/// Bit `i` set when byte `i` of `block` is a space or a tab.
#[inline(always)]
pub fn blank_mask<V: Bytes16>(block: &[u8; 16]) -> u32 {
    let v = V::load(block);
    v.eq(V::splat(b' ')).or(v.eq(V::splat(b'\t'))).movemask()
}

/// For `v`: bit `i` of the first mask set when byte `i` is an ASCII digit, of the second
/// when it is a dot.
#[inline(always)]
pub fn digit_dot_masks<V: Bytes16>(v: V) -> (u32, u32) {
    (
        v.in_range(b'0', 9).movemask(),
        v.eq(V::splat(b'.')).movemask(),
    )
}

/// For `block`: bit `i` set in the first mask when byte `i` may be in a plain host
/// (`a`-`z`, `0`-`9`, `-`, `.`), in the second when it is a letter or hyphen.
#[inline(always)]
pub fn host_masks<V: Bytes16>(block: &[u8; 16]) -> (u32, u32) {
    let v = V::load(block);
    let name = v.in_range(b'a', b'z' - b'a').or(v.eq(V::splat(b'-')));
    let host = name.or(v.in_range(b'0', 9)).or(v.eq(V::splat(b'.')));
    (host.movemask(), name.movemask())
}

/// The first 16 bytes of `b`, or all of it followed by the filler already in `pad`.
#[inline(always)]
fn first16<'b>(b: &'b [u8], pad: &'b mut [u8; 16]) -> &'b [u8; 16] {
    match b.first_chunk::<16>() {
        Some(block) => block,
        None => {
            pad[..b.len()].copy_from_slice(b);
            pad
        }
    }
}

/// Bit `i` set when byte `i` of `b` (the first 16; none past its end) is `sep`.
#[inline]
pub fn byte_mask16(b: &[u8], sep: u8) -> u32 {
    eq_mask::<Native>(first16(b, &mut [!sep; 16]), sep)
}

/// Bit `i` set when byte `i` of `b` (the first 16; bytes past its end count as blank) is a
/// space or a tab.
#[inline]
pub fn blank_mask16(b: &[u8]) -> u32 {
    blank_mask::<Native>(first16(b, &mut [b' '; 16]))
}

/// Bit `i` (below `width`, at most 64) set when byte `i` of `b` is a space or a tab, or
/// lies past its end: the scalar twin of [`blank_mask16`] and [`blank_mask32_avx2`].
#[inline]
pub fn blank_mask_scalar(b: &[u8], width: usize) -> u64 {
    (0..width).fold(0, |m, i| match b.get(i) {
        Some(b' ' | b'\t') | None => m | 1 << i,
        Some(_) => m,
    })
}

/// Bit `i` set when byte `i` of `block` is a space or a tab, 32 bytes a compare.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn blank_mask32_avx2(block: &[u8; 32]) -> u32 {
    use core::arch::x86_64::*;
    // SAFETY: AVX2 per this function's contract; the load reads the 32 bytes of `block`.
    unsafe {
        let v = _mm256_loadu_si256(block.as_ptr().cast());
        let blank = _mm256_or_si256(
            _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b' ' as i8)),
            _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\t' as i8)),
        );
        _mm256_movemask_epi8(blank) as u32
    }
}

/// The shape of a dotted quad by its octets' lengths (1-3 each): the byte shuffle that
/// puts octet `k`'s digits right-aligned in bytes `4k..4k+3` (`[hundreds, tens, ones, 0]`,
/// zeros in front of short octets), and each octet's smallest value without a leading
/// zero (0, 10, 100). See [`quad_shape`] and [`quad_octets`].
pub struct QuadShape {
    shuffle: [u8; 16],
    least: [i32; 4],
}

/// The 81 shapes, numbered `((l1-1)*3 + l2-1)*3 + l3-1)*3 + l4-1`.
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

/// The shape of a dotted quad whose octets are `lens` bytes long; `None` when one is
/// empty or longer than three digits.
#[inline]
pub fn quad_shape(lens: [usize; 4]) -> Option<&'static QuadShape> {
    if lens.iter().any(|l| !(1..=3).contains(l)) {
        return None;
    }
    QUAD_SHAPES.get(lens.iter().fold(0, |i, l| i * 3 + l - 1))
}

/// The four octets of the dotted quad in `text` (its bytes lowest first, of shape `shape`,
/// every non-dot byte a digit): one byte shuffle aligns the digits and two multiply-adds
/// weigh them where the CPU has SSSE3, [`quad_octets_scalar`] elsewhere. `None` for an
/// octet above 255 or with a leading zero.
#[inline]
pub fn quad_octets(text: Native, shape: &QuadShape) -> Option<Ipv4Addr> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above).
        return unsafe { quad_octets_ssse3(text, shape) };
    }
    quad_octets_scalar(text.to_bytes(), shape)
}

/// [`quad_octets`] a byte at a time (`text` holds the quad's bytes, lowest first).
pub fn quad_octets_scalar(text: [u8; 16], shape: &QuadShape) -> Option<Ipv4Addr> {
    let mut a = [0u8; 4];
    for (k, octet) in a.iter_mut().enumerate() {
        let mut v = 0i32;
        for (d, weight) in [100, 10, 1].into_iter().enumerate() {
            let at = shape.shuffle[4 * k + d];
            if let Some(&c) = text.get(usize::from(at)) {
                v += i32::from(c.wrapping_sub(b'0')) * weight;
            }
        }
        if v > 255 || v < shape.least[k] {
            return None;
        }
        *octet = v as u8;
    }
    Some(Ipv4Addr::from(a))
}

/// [`quad_octets`] with SSSE3.
///
/// # Safety
/// The CPU must support SSSE3.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn quad_octets_ssse3(text: Sse2, shape: &QuadShape) -> Option<Ipv4Addr> {
    use core::arch::x86_64::*;
    // SAFETY: SSSE3 per this function's contract; the loads read the 16 bytes of
    // `shape.shuffle` and of `shape.least`.
    unsafe {
        let digits = _mm_sub_epi8(text.0, _mm_set1_epi8(b'0' as i8));
        let aligned = _mm_shuffle_epi8(digits, _mm_loadu_si128(shape.shuffle.as_ptr().cast()));
        // [h, t, o, 0] · [100, 10, 1, 0]: pairs summed to 16 bits, then to 32.
        let weights = _mm_set1_epi32(i32::from_le_bytes([100, 10, 1, 0]));
        let values = _mm_madd_epi16(_mm_maddubs_epi16(aligned, weights), _mm_set1_epi16(1));
        let least = _mm_loadu_si128(shape.least.as_ptr().cast());
        let bad = _mm_or_si128(
            _mm_cmpgt_epi32(values, _mm_set1_epi32(255)),
            _mm_cmpgt_epi32(least, values),
        );
        if _mm_movemask_epi8(bad) != 0 {
            return None;
        }
        let bytes = _mm_packus_epi16(_mm_packs_epi32(values, values), values);
        Some(Ipv4Addr::from(_mm_cvtsi128_si32(bytes).to_le_bytes()))
    }
}

/// Ask the CPU to pull the cache line holding `p` into every cache level (a no-op where
/// there is no such instruction).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes that hit every class the masks tell apart, and their edges.
    fn class_bytes() -> impl Strategy<Value = u8> {
        prop_oneof![
            prop::sample::select(b" \t./-09azAZ`{@:\0\x7f\x80\xff".to_vec()),
            any::<u8>(),
        ]
    }

    fn block() -> impl Strategy<Value = [u8; 16]> {
        prop::array::uniform16(class_bytes())
    }

    /// Every primitive's scalar twin, written once more lane by lane from its definition.
    fn by_lanes(b: &[u8; 16], f: impl Fn(u8) -> bool) -> u32 {
        b.iter()
            .enumerate()
            .fold(0, |m, (i, &c)| if f(c) { m | 1 << i } else { m })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Every trait operation of the native vector agrees with the scalar one.
        #[test]
        fn native_ops_agree_with_scalar(a in block(), b in block(), lo in class_bytes(), span in class_bytes()) {
            let (va, vb) = (Native::load(&a), Native::load(&b));
            let (sa, sb) = (Scalar::load(&a), Scalar::load(&b));
            prop_assert_eq!(va.eq(vb).movemask(), sa.eq(sb).movemask());
            prop_assert_eq!(va.in_range(lo, span).movemask(), sa.in_range(lo, span).movemask());
            prop_assert_eq!(va.eq(vb).or(va.in_range(lo, span)).to_bytes(), sa.eq(sb).or(sa.in_range(lo, span)).to_bytes());
            prop_assert_eq!(va.to_bytes(), a);
            prop_assert_eq!(Native::from_u128(u128::from_le_bytes(a)).to_bytes(), a);
            prop_assert_eq!(Native::splat(lo).to_bytes(), Scalar::splat(lo).to_bytes());
            prop_assert_eq!(va.movemask(), by_lanes(&a, |c| c >= 0x80));
        }

        /// The derived masks: native == scalar == their definition, byte by byte.
        #[test]
        fn masks_agree_with_scalar(a in block(), sep in class_bytes()) {
            prop_assert_eq!(eq_mask::<Native>(&a, sep), eq_mask::<Scalar>(&a, sep));
            prop_assert_eq!(eq_mask::<Scalar>(&a, sep), by_lanes(&a, |c| c == sep));
            prop_assert_eq!(blank_mask::<Native>(&a), blank_mask::<Scalar>(&a));
            prop_assert_eq!(u64::from(blank_mask::<Scalar>(&a)), blank_mask_scalar(&a, 16));
            let v = u128::from_le_bytes(a);
            prop_assert_eq!(digit_dot_masks(Native::from_u128(v)), digit_dot_masks(Scalar::from_u128(v)));
            prop_assert_eq!(digit_dot_masks(Scalar::load(&a)), (by_lanes(&a, |c| c.is_ascii_digit()), by_lanes(&a, |c| c == b'.')));
            prop_assert_eq!(host_masks::<Native>(&a), host_masks::<Scalar>(&a));
            prop_assert_eq!(host_masks::<Scalar>(&a), (
                by_lanes(&a, |c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.')),
                by_lanes(&a, |c| matches!(c, b'a'..=b'z' | b'-')),
            ));
        }

        /// The padded slice forms mark nothing past the end (separator) or everything
        /// (blank), for slices shorter and longer than a block.
        #[test]
        fn padded_masks_agree_with_scalar(b in prop::collection::vec(class_bytes(), 0..20), sep in class_bytes()) {
            let want = b.iter().take(16).enumerate().filter(|(_, &c)| c == sep).fold(0u32, |m, (i, _)| m | 1 << i);
            prop_assert_eq!(byte_mask16(&b, sep), want);
            prop_assert_eq!(u64::from(blank_mask16(&b)), blank_mask_scalar(&b, 16));
        }

        /// The AVX2 blank mask agrees with the scalar one, where the CPU has AVX2.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn avx2_blank_mask_agrees_with_scalar(a in prop::array::uniform32(class_bytes())) {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 checked just above.
                prop_assert_eq!(u64::from(unsafe { blank_mask32_avx2(&a) }), blank_mask_scalar(&a, 32));
            }
        }

        /// The octet shuffle agrees with the byte-at-a-time reading of the shape table, and
        /// both with the standard library, for every dotted quad of one to three digits.
        #[test]
        fn quad_octets_agree_with_scalar_and_std(s in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}") {
            let b = s.as_bytes();
            let mut text = [0u8; 16];
            text[..b.len()].copy_from_slice(b);
            let dots: Vec<usize> = b.iter().enumerate().filter(|(_, &c)| c == b'.').map(|(i, _)| i).collect();
            let lens = [dots[0], dots[1] - dots[0] - 1, dots[2] - dots[1] - 1, b.len() - dots[2] - 1];
            let shape = quad_shape(lens).unwrap();
            let scalar = quad_octets_scalar(text, shape);
            prop_assert_eq!(scalar, s.parse::<Ipv4Addr>().ok(), "{:?}", s);
            prop_assert_eq!(quad_octets(Native::load(&text), shape), scalar, "{:?}", s);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("ssse3") {
                // SAFETY: SSSE3 checked just above.
                let fast = unsafe { quad_octets_ssse3(Sse2::load(&text), shape) };
                prop_assert_eq!(fast, scalar, "{:?}", s);
            }
        }
    }

    #[test]
    fn quad_shapes_reject_empty_and_long_octets() {
        assert!(quad_shape([1, 2, 3, 1]).is_some());
        assert!(quad_shape([0, 1, 1, 1]).is_none());
        assert!(quad_shape([1, 1, 4, 1]).is_none());
    }
}
