//! Small zero-copy helpers shared by the log parsers: tokenising, numbers, timestamps, URLs.

use std::borrow::Cow;
use std::net::IpAddr;

/// Strip a trailing `\n`, `\r\n` or `\r` (any number of them).
pub(crate) fn trim_eol(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Strip ASCII whitespace on both ends.
pub(crate) fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Bytes as text: borrowed when valid UTF-8, lossy (`U+FFFD`) owned copy otherwise.
#[inline]
pub(crate) fn text(b: &[u8]) -> Cow<'_, str> {
    // `from_utf8` has an ASCII fast path; the lossy decoder is only for bad bytes.
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// A line whose UTF-8 is checked once, so fields sliced from it borrow without a second
/// check (parts that are not sub-slices of the line, or of invalid lines, go through
/// [`text`]).
#[derive(Clone, Copy)]
pub(crate) struct Line<'a> {
    bytes: &'a [u8],
    s: Option<&'a str>,
}

impl<'a> Line<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Line {
            bytes,
            s: std::str::from_utf8(bytes).ok(),
        }
    }

    /// `part` (a sub-slice of the line) as text.
    #[inline]
    pub(crate) fn text(&self, part: &'a [u8]) -> Cow<'a, str> {
        if let Some(s) = self.s {
            let base = self.bytes.as_ptr() as usize;
            let start = part.as_ptr() as usize;
            if start >= base && start + part.len() <= base + self.bytes.len() {
                if let Some(t) = s.get(start - base..start - base + part.len()) {
                    return Cow::Borrowed(t);
                }
            }
        }
        text(part)
    }

    /// `part` as a normalised host name (see [`norm_domain`]); `None` when empty.
    #[inline]
    pub(crate) fn domain(&self, part: &'a [u8]) -> Option<Cow<'a, str>> {
        if part.is_empty() {
            return None;
        }
        let d = norm_domain(self.text(part));
        (!d.is_empty()).then_some(d)
    }
}

/// Whitespace-separated tokens (runs of spaces/tabs count as one separator).
pub(crate) struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Tokens { rest: b }
    }
    /// What has not been consumed yet, leading whitespace removed.
    pub(crate) fn rest(&self) -> &'a [u8] {
        let mut r = self.rest;
        while let [first, tail @ ..] = r {
            if *first == b' ' || *first == b'\t' {
                r = tail;
            } else {
                break;
            }
        }
        r
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let r = self.rest();
        if r.is_empty() {
            self.rest = r;
            return None;
        }
        let end = memchr::memchr2(b' ', b'\t', r).unwrap_or(r.len());
        let (tok, tail) = r.split_at(end);
        self.rest = tail;
        Some(tok)
    }
}

/// The first `N` blank-separated tokens of `line`, exactly as [`Tokens`] yields them
/// (`None` past the last one), found 16 bytes at a time (32 where the CPU has AVX2): see
/// [`tokens_by_blocks`]. The hot-path tokeniser of the Squid and CLF pre-screens (no call
/// per token).
#[inline]
pub(crate) fn first_tokens<const N: usize>(line: &[u8]) -> [Option<&[u8]>; N] {
    #[cfg(target_arch = "x86_64")]
    if line.len() >= 32 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { first_tokens_avx2(line) };
    }
    first_tokens_sse2(line)
}

/// [`first_tokens`] 16 bytes a compare.
#[inline]
fn first_tokens_sse2<const N: usize>(line: &[u8]) -> [Option<&[u8]>; N] {
    tokens_by_blocks::<N, 16>(line, |block| u64::from(blank_mask16(block)))
}

/// [`first_tokens`] 32 bytes a compare.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn first_tokens_avx2<const N: usize>(line: &[u8]) -> [Option<&[u8]>; N] {
    use core::arch::x86_64::*;
    tokens_by_blocks::<N, 32>(line, |block| match block.get(..32) {
        // SAFETY: AVX2 per this function's contract; the load reads the 32 bytes of `b`.
        Some(b) => unsafe {
            let v = _mm256_loadu_si256(b.as_ptr().cast());
            let blank = _mm256_or_si256(
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b' ' as i8)),
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\t' as i8)),
            );
            u64::from(_mm256_movemask_epi8(blank) as u32)
        },
        // A line shorter than a block (the caller sends none): bytes past it are blank.
        None => (0..32).fold(0, |m, i| match block.get(i) {
            Some(b' ' | b'\t') | None => m | 1 << i,
            Some(_) => m,
        }),
    })
}

/// The block loop behind [`first_tokens`], `W` bytes a step (16 or 32): `blank_mask` marks
/// the blanks of a block (bit `i`: byte `i` is a space or tab; bytes past a short block's
/// end count as blank). Whole blocks are read straight from the line, the last partial
/// one as the line's last block shifted down; every token edge is a bit of a block's
/// blank/non-blank transitions.
#[inline(always)]
fn tokens_by_blocks<const N: usize, const W: usize>(
    line: &[u8],
    blank_mask: impl Fn(&[u8]) -> u64,
) -> [Option<&[u8]>; N] {
    const { assert!(W == 16 || W == 32) };
    let lanes = (1u64 << W) - 1;
    let mut out = [None; N];
    let mut count = 0;
    // Start of the token being read; `usize::MAX` between tokens.
    let mut start = usize::MAX;
    // The byte before the block was not blank (there is nothing before the line: blank).
    let mut carry = 0u64;
    let mut base = 0;
    let len = line.len();
    while base < len {
        let blank = match line.get(base..base + W) {
            Some(block) => blank_mask(block),
            None if len >= W => {
                let shift = base + W - len;
                (blank_mask(&line[len - W..]) >> shift) | (lanes << (W - shift))
            }
            None => blank_mask(&line[base..]),
        };
        let non_blank = !blank & lanes;
        // A bit per byte whose blankness differs from the byte before it: token edges.
        let mut edges = (non_blank ^ ((non_blank << 1) | carry)) & lanes;
        carry = non_blank >> (W - 1);
        while edges != 0 {
            let pos = base + edges.trailing_zeros() as usize;
            edges &= edges - 1;
            if start == usize::MAX {
                start = pos;
            } else {
                // Blank padding past the line's end closes its last token at `len`.
                out[count] = line.get(start..pos.min(len));
                count += 1;
                if count == N {
                    return out;
                }
                start = usize::MAX;
            }
        }
        base += W;
    }
    if start != usize::MAX {
        out[count] = line.get(start..);
    }
    out
}

/// The first 16 bytes of `b`, or all of it followed by the filler already in `pad`.
#[inline]
fn first16<'b>(b: &'b [u8], pad: &'b mut [u8; 16]) -> &'b [u8] {
    if b.len() >= 16 {
        &b[..16]
    } else {
        pad[..b.len()].copy_from_slice(b);
        pad
    }
}

/// Bit `i` set when byte `i` of `b` (the first 16; bytes past its end count as blank) is a
/// space or a tab.
#[inline]
fn blank_mask16(b: &[u8]) -> u32 {
    let mut pad = [b' '; 16];
    let block = first16(b, &mut pad);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; `block` is 16 bytes long.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let blank = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\t' as i8)),
            );
            _mm_movemask_epi8(blank) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == b' ' || c == b'\t')
            .fold(0u32, |m, (i, _)| m | 1 << i)
    }
}

/// Find `needle` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

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

/// `serde_json::from_slice(line)`, the line's UTF-8 checked once up front so that
/// serde_json skips its check of every string (a tenth of an EVE line's parse); the same
/// answer for every input.
pub(crate) fn json_from_line<'a, T: serde::Deserialize<'a>>(
    line: &'a [u8],
) -> serde_json::Result<T> {
    match std::str::from_utf8(line) {
        Ok(s) => serde_json::from_str(s),
        Err(_) => serde_json::from_slice(line),
    }
}

/// A JSON string borrowed from the line when it has no escapes. serde borrows a field of
/// type `Cow<'a, str>` marked `#[serde(borrow)]`, but not one inside an `Option`, `Vec` or
/// map, whose every string it copies (serde-rs/serde#1497): these helpers borrow there too.
#[derive(serde::Deserialize)]
pub(crate) struct BorrowedStr<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// `Option<Cow<str>>` borrowed where it can be (`#[serde(borrow, default, deserialize_with =
/// "opt_str")]`).
pub(crate) fn opt_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<BorrowedStr<'a>>::deserialize(d)?.map(|s| s.0))
}

/// `Option<Vec<Cow<str>>>` borrowed where it can be (`#[serde(borrow, default,
/// deserialize_with = "opt_str_vec")]`).
pub(crate) fn opt_str_vec<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Cow<'a, str>>>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<Vec<BorrowedStr<'a>>>::deserialize(d)?
        .map(|v| v.into_iter().map(|s| s.0).collect()))
}

/// Bit `i` set when byte `i` of `b` (the first 16; none past its end) is `sep`.
#[inline]
pub(crate) fn byte_mask16(b: &[u8], sep: u8) -> u32 {
    let mut pad = [!sep; 16];
    let block = first16(b, &mut pad);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; `block` is 16 bytes long.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(sep as i8))) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == sep)
            .fold(0u32, |m, (i, _)| m | 1 << i)
    }
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

/// `parse_epoch(b).is_some()` without computing the value or calling out for the dot (the
/// Squid pre-screen's timestamp check); only an integer part past 9,223,372,035 s, where
/// the nanosecond value may overflow, goes to [`parse_epoch`] itself.
#[inline]
pub(crate) fn is_epoch(b: &[u8]) -> bool {
    let int_len = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    let fraction_ok = match &b[int_len..] {
        [] => true,
        [b'.', fraction @ ..] => fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if int_len == 0 || !fraction_ok {
        return false;
    }
    // Equal-length digit strings compare like their values.
    if int_len <= 9 || (int_len == 10 && b[..10] < b"9223372036"[..]) {
        return true;
    }
    parse_epoch(b).is_some()
}

/// [`is_epoch`] of `line[..len]` (the first token of a line), read from one 16-byte block
/// when the token and the line allow: digits, at most one dot, not first.
#[inline]
pub(crate) fn is_epoch_at_start(line: &[u8], len: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let (1..=16, Some(block)) = (len, line.get(..16)) {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; `block` is 16 bytes long.
        let (digits, dots) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let le9 = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
            let dot = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
            (_mm_movemask_epi8(le9) as u32, _mm_movemask_epi8(dot) as u32)
        };
        let live = (1u32 << len) - 1;
        let (digits, dots) = (digits & live, dots & live);
        // Only digits and dots; at most one dot, and not the first byte.
        if digits | dots != live || dots & dots.wrapping_sub(1) != 0 || dots & 1 != 0 {
            return false;
        }
        let int_len = if dots == 0 {
            len
        } else {
            dots.trailing_zeros() as usize
        };
        // Ten digits starting below 9 are below 9,223,372,036 (see `is_epoch`).
        if int_len <= 9 || (int_len == 10 && block[0] < b'9') {
            return true;
        }
    }
    is_epoch(line.get(..len).unwrap_or(line))
}

/// Parse up to `n` leading ASCII digits exactly (`n` digits required).
fn digits(b: &[u8], n: usize) -> Option<i64> {
    let d = b.get(..n)?;
    let mut v = 0i64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// A fraction of a second (`.123456`): digits after the dot → nanoseconds, and how many bytes.
fn fraction(b: &[u8]) -> (i64, usize) {
    let mut ns = 0i64;
    let mut scale = 100_000_000i64;
    let mut n = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        ns += i64::from(c - b'0') * scale;
        scale /= 10;
        n += 1;
    }
    (ns, n)
}

/// Unix epoch seconds with an optional decimal fraction (`1157689312.049`) → ns.
pub(crate) fn parse_epoch(b: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b""[..]),
    };
    if int.is_empty() || int.len() > 11 {
        return None;
    }
    let secs = digits(int, int.len())?;
    let (ns, n) = fraction(frac);
    if n != frac.len() {
        return None;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Jan`..`Dec` → 1..12.
pub(crate) fn month_abbr(b: &[u8]) -> Option<i64> {
    let m: &[u8; 3] = b.get(..3)?.try_into().ok()?;
    let lower = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    let n = match &lower {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn civil_ns(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ns: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// `HH:MM:SS` at the start of `b`.
fn hms(b: &[u8]) -> Option<(i64, i64, i64)> {
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return None;
    }
    Some((
        digits(b, 2)?,
        digits(b.get(3..)?, 2)?,
        digits(b.get(6..)?, 2)?,
    ))
}

/// A numeric UTC offset `+0000`, `-04:00`, or `Z` → seconds east, and bytes used.
fn utc_offset(b: &[u8]) -> Option<(i64, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let h = digits(b.get(1..)?, 2)?;
            let (m, used) = if b.get(3) == Some(&b':') {
                (digits(b.get(4..)?, 2)?, 6)
            } else {
                (digits(b.get(3..)?, 2)?, 5)
            };
            Some((sign * (h * 3600 + m * 60), used))
        }
        _ => None,
    }
}

/// Apache/nginx `%t`: `04/Jan/2020:07:25:02 +0000` → ns.
pub(crate) fn parse_clf_time(b: &[u8]) -> Option<i64> {
    let d = digits(b, 2)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let mo = month_abbr(b.get(3..)?)?;
    let y = digits(b.get(7..)?, 4)?;
    let (h, mi, s) = hms(b.get(12..)?)?;
    let rest = trim(b.get(20..).unwrap_or_default());
    let off = if rest.is_empty() {
        0
    } else {
        utc_offset(rest)?.0
    };
    civil_ns(y, mo, d, h, mi, s, 0)?.checked_sub(off * 1_000_000_000)
}

/// BIND: `19-Oct-2022 05:34:02.425` (two tokens, local time taken as UTC) → ns.
pub(crate) fn parse_bind_time(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 11 || date.get(2) != Some(&b'-') || date.get(6) != Some(&b'-') {
        return None;
    }
    let d = digits(date, 2)?;
    let mo = month_abbr(date.get(3..)?)?;
    let y = digits(date.get(7..)?, 4)?;
    let (h, mi, s) = hms(time)?;
    let (ns, n) = match time.get(8) {
        Some(b'.') => fraction(&time[9..]),
        _ => (0, 0),
    };
    let used = if n > 0 { 9 + n } else { 8 };
    if used != time.len() {
        return None;
    }
    civil_ns(y, mo, d, h, mi, s, ns)
}

/// ISO 8601 / RFC 3339: `2018-07-05T15:01:09.820360-0400`, `...Z`, space separator allowed,
/// offset optional (then UTC) → ns.
pub(crate) fn parse_iso8601(b: &[u8]) -> Option<i64> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let y = digits(b, 4)?;
    let mo = digits(b.get(5..)?, 2)?;
    let d = digits(b.get(8..)?, 2)?;
    match b.get(10) {
        Some(b'T' | b't' | b' ') => {}
        _ => return None,
    }
    let (h, mi, s) = hms(b.get(11..)?)?;
    let mut i = 19;
    let mut ns = 0;
    if b.get(i) == Some(&b'.') {
        let (f, n) = fraction(b.get(i + 1..)?);
        ns = f;
        i += 1 + n;
    }
    let rest = b.get(i..).unwrap_or_default();
    let off = if rest.is_empty() {
        0
    } else {
        let (off, used) = utc_offset(rest)?;
        if used != rest.len() {
            return None;
        }
        off
    };
    civil_ns(y, mo, d, h, mi, s, ns)?.checked_sub(off * 1_000_000_000)
}

/// nginx error log: `2021/12/01 13:53:33` → ns (local time taken as UTC).
pub(crate) fn parse_slash_datetime(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || date.get(4) != Some(&b'/') || date.get(7) != Some(&b'/') {
        return None;
    }
    let (h, mi, s) = hms(time)?;
    civil_ns(
        digits(date, 4)?,
        digits(date.get(5..)?, 2)?,
        digits(date.get(8..)?, 2)?,
        h,
        mi,
        s,
        0,
    )
}

/// Lower-case a host name and drop one trailing dot; borrows unless a change is needed.
pub(crate) fn norm_domain(c: Cow<'_, str>) -> Cow<'_, str> {
    let trimmed_len = c.strip_suffix('.').map_or(c.len(), str::len);
    let needs_lower = c.bytes().any(|b| b.is_ascii_uppercase());
    match c {
        Cow::Borrowed(s) if !needs_lower => Cow::Borrowed(&s[..trimmed_len]),
        other => {
            let mut s = other.into_owned();
            s.truncate(trimmed_len);
            s.make_ascii_lowercase();
            Cow::Owned(s)
        }
    }
}

/// A host as text from bytes, normalised (see [`norm_domain`]); `None` when empty.
pub(crate) fn domain(b: &[u8]) -> Option<Cow<'_, str>> {
    if b.is_empty() {
        return None;
    }
    let d = norm_domain(text(b));
    (!d.is_empty()).then_some(d)
}

/// Split `host[:port]` / `[v6]:port` / bare IPv6 into host and port.
pub(crate) fn split_host_port(b: &[u8]) -> (&[u8], Option<u16>) {
    if let [b'[', rest @ ..] = b {
        if let Some(end) = memchr::memchr(b']', rest) {
            let host = &rest[..end];
            let port = rest
                .get(end + 1..)
                .and_then(|p| p.strip_prefix(b":"))
                .and_then(parse_u16);
            return (host, port);
        }
        return (b, None);
    }
    match memchr::memrchr(b':', b) {
        // More than one colon and no brackets: a bare IPv6 address.
        Some(i) if memchr::memchr(b':', &b[..i]).is_none() => (&b[..i], parse_u16(&b[i + 1..])),
        _ => (b, None),
    }
}

/// The pieces of an absolute URL, all borrowed from it.
#[derive(Debug, Default)]
pub(crate) struct UrlParts<'a> {
    /// Host without port or userinfo.
    pub host: &'a [u8],
    /// Explicit port.
    pub port: Option<u16>,
    /// Path without query or fragment (`/` when the URL has none).
    pub path: &'a [u8],
}

/// Split `scheme://[userinfo@]host[:port][/path][?query][#frag]`; `None` if not absolute.
pub(crate) fn split_url(u: &[u8]) -> Option<UrlParts<'_>> {
    let sep = memchr::memchr(b':', u)?;
    if u.get(sep + 1..sep + 3) != Some(&b"//"[..]) {
        return None;
    }
    let scheme = &u[..sep];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let after = &u[sep + 3..];
    let auth_end = after
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    let mut authority = &after[..auth_end];
    if let Some(at) = memchr::memrchr(b'@', authority) {
        authority = &authority[at + 1..];
    }
    let (host, port) = split_host_port(authority);
    let rest = &after[auth_end..];
    let path = if rest.first() == Some(&b'/') {
        path_only(rest)
    } else {
        &b"/"[..]
    };
    Some(UrlParts { host, port, path })
}

/// An origin-form request target without its query and fragment.
pub(crate) fn path_only(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .unwrap_or(target.len());
    &target[..end]
}

/// Is `s` 40 (SHA-1) hex digits? (`n` = wanted length)
pub(crate) fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A hash normalised to lower-case hex, colons removed (`6a:ff:..` → `6aff..`).
pub(crate) fn norm_hash(c: Cow<'_, str>) -> Cow<'_, str> {
    if c.bytes().any(|b| b == b':' || b.is_ascii_uppercase()) {
        let mut s: String = c.chars().filter(|&ch| ch != ':').collect();
        s.make_ascii_lowercase();
        Cow::Owned(s)
    } else {
        c
    }
}

/// `tcp`/`udp`/... as a static ECS `network.transport` value.
pub(crate) fn transport(b: &[u8]) -> Option<&'static str> {
    let t = match b.len() {
        3 if b.eq_ignore_ascii_case(b"tcp") => "tcp",
        3 if b.eq_ignore_ascii_case(b"udp") => "udp",
        4 if b.eq_ignore_ascii_case(b"icmp") => "icmp",
        4 if b.eq_ignore_ascii_case(b"sctp") => "sctp",
        9 if b.eq_ignore_ascii_case(b"ipv6-icmp") => "ipv6-icmp",
        6 if b.eq_ignore_ascii_case(b"icmpv6") => "ipv6-icmp",
        _ => return None,
    };
    Some(t)
}

/// DNS answer type from the shape of its data: `A`, `AAAA`, else `fallback`.
pub(crate) fn answer_type(data: &str, fallback: &'static str) -> &'static str {
    answer_type_of(parse_ip_str(data), fallback)
}

/// [`answer_type`] of data already parsed (`ip` is `parse_ip_str` of it).
pub(crate) fn answer_type_of(ip: Option<IpAddr>, fallback: &'static str) -> &'static str {
    match ip {
        Some(IpAddr::V4(_)) => "A",
        Some(IpAddr::V6(_)) => "AAAA",
        None => fallback,
    }
}

/// Does a syslog header (`Mon DD HH:MM:SS `) start `b`? Returns the bytes it spans.
pub(crate) fn syslog_date_len(b: &[u8]) -> Option<usize> {
    month_abbr(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == day_start || i - day_start > 2 || b.get(i) != Some(&b' ') {
        return None;
    }
    hms(b.get(i + 1..)?)?;
    Some(i + 9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The screen's timestamp check answers exactly like the parser.
        #[test]
        fn is_epoch_agrees_with_parse_epoch(s in "[0-9]{0,12}(\\.[0-9]{0,12})?[.x0-9]{0,2}|92233720[0-9]{2,3}(\\.[0-9]{0,10})?") {
            prop_assert_eq!(is_epoch(s.as_bytes()), parse_epoch(s.as_bytes()).is_some(), "{:?}", s);
        }

        /// The block tokeniser yields exactly the first tokens `Tokens` does.
        #[test]
        fn first_tokens_agree_with_tokens(s in prop::collection::vec(prop::sample::select(vec![b' ', b'\t', b'a', b'.', b'\n', 0xff]), 0..220)) {
            let want: Vec<Option<&[u8]>> = Tokens::new(&s).map(Some).chain(std::iter::repeat(None)).take(9).collect();
            prop_assert_eq!(first_tokens::<9>(&s).to_vec(), want.clone());
            prop_assert_eq!(first_tokens::<3>(&s).to_vec(), want[..3].to_vec());
            // Both block widths, whichever the CPU picks above.
            prop_assert_eq!(first_tokens_sse2::<9>(&s).to_vec(), want.clone());
            #[cfg(target_arch = "x86_64")]
            if s.len() >= 32 && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 checked just above.
                prop_assert_eq!(unsafe { first_tokens_avx2::<9>(&s) }.to_vec(), want.clone());
            }
        }

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

        /// Checking the line's UTF-8 first changes nothing: the same value or the same error
        /// as `from_slice`, for JSON-ish text with escapes and bytes that are not UTF-8.
        #[test]
        fn json_from_line_agrees_with_from_slice(b in prop::collection::vec(prop::sample::select(vec![b'{', b'}', b'"', b':', b',', b'a', b'1', b'\\', b'u', b'[', b']', 0xc3, 0xa9, 0xff]), 0..40)) {
            let fast = json_from_line::<serde_json::Value>(&b).map_err(|e| e.to_string());
            let slow = serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string());
            prop_assert_eq!(fast, slow);
        }

        /// The separator mask marks exactly the bytes equal to the separator, none past
        /// the end.
        #[test]
        fn byte_mask16_marks_the_separator(b in prop::collection::vec(prop::sample::select(vec![b'\t', b'a', 0xf6, 0x09 ^ 0xff]), 0..20)) {
            let want = b.iter().take(16).enumerate().filter(|(_, &c)| c == b'\t').fold(0u32, |m, (i, _)| m | 1 << i);
            prop_assert_eq!(byte_mask16(&b, b'\t'), want);
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The block read of a line's first token answers exactly like `is_epoch`.
        #[test]
        fn is_epoch_at_start_agrees_with_is_epoch(s in "[0-9]{0,12}(\\.[0-9]{0,12})?[.x0-9]{0,2}|9?22337[0-9]{3,5}(\\.[0-9]{0,10})?|[.0-9 ]{0,20}", tail in "[ .0-9a]{0,20}") {
            let line = format!("{s}{tail}");
            prop_assert_eq!(is_epoch_at_start(line.as_bytes(), s.len()), is_epoch(s.as_bytes()), "{:?} in {:?}", s, line);
        }
    }

    #[test]
    fn timestamps() {
        // Values checked with `date -u -d '2020-01-04 07:25:02' +%s` = 1578122702.
        assert_eq!(
            parse_clf_time(b"04/Jan/2020:07:25:02 +0000"),
            Some(1_578_122_702_000_000_000)
        );
        assert_eq!(
            parse_clf_time(b"04/Jan/2020:09:25:02 +0200"),
            Some(1_578_122_702_000_000_000)
        );
        assert_eq!(
            parse_epoch(b"1157689312.049"),
            Some(1_157_689_312_049_000_000)
        );
        assert_eq!(
            parse_epoch(b"1521911720.865716"),
            Some(1_521_911_720_865_716_000)
        );
        assert_eq!(parse_epoch(b"12a"), None);
        // date -u -d '2018-07-05 19:01:09' +%s = 1530817269
        assert_eq!(
            parse_iso8601(b"2018-07-05T15:01:09.820360-0400"),
            Some(1_530_817_269_820_360_000)
        );
        assert_eq!(
            parse_iso8601(b"2018-07-05T19:01:09.820360Z"),
            Some(1_530_817_269_820_360_000)
        );
        // date -u -d '2022-10-19 05:34:02' +%s = 1666157642
        assert_eq!(
            parse_bind_time(b"19-Oct-2022", b"05:34:02.425"),
            Some(1_666_157_642_425_000_000)
        );
        assert_eq!(syslog_date_len(b"Mar  9 23:59:59 host"), Some(15));
        assert_eq!(syslog_date_len(b"Oct 4 10:18:07 a"), Some(14));
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

    /// Strings without escapes are borrowed from the line, inside `Option` and `Vec` too;
    /// escaped ones are decoded; absent and `null` fields are `None`.
    #[test]
    fn optional_strings_borrow_from_the_line() {
        #[derive(serde::Deserialize)]
        struct Rec<'a> {
            #[serde(borrow, default, deserialize_with = "opt_str")]
            a: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            b: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str_vec")]
            v: Option<Vec<Cow<'a, str>>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            n: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            missing: Option<Cow<'a, str>>,
        }
        let line = br#"{"a":"plain.example","b":"a\u002eb","v":["x","y\"z"],"n":null}"#;
        let r: Rec<'_> = json_from_line(line).unwrap();
        assert!(matches!(r.a, Some(Cow::Borrowed("plain.example"))));
        assert!(matches!(r.b.as_ref(), Some(Cow::Owned(s)) if s == "a.b"));
        let v = r.v.unwrap();
        assert!(matches!(v[0], Cow::Borrowed("x")));
        assert_eq!(v[1], "y\"z");
        assert!(r.n.is_none() && r.missing.is_none());
    }

    #[test]
    fn urls() {
        let u = split_url(b"http://User@WWW.Example.com:8080/a/b?c=d#e").unwrap();
        assert_eq!(u.host, b"WWW.Example.com");
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, b"/a/b");
        let u = split_url(b"https://[2001:db8::1]:443").unwrap();
        assert_eq!(u.host, b"2001:db8::1");
        assert_eq!(u.path, b"/");
        assert!(split_url(b"error:method-not-allowed").is_none());
        assert_eq!(
            split_host_port(b"login.yahoo.com:443"),
            (&b"login.yahoo.com"[..], Some(443))
        );
        assert_eq!(split_host_port(b"::1"), (&b"::1"[..], None));
        assert_eq!(norm_domain("P33.icloud.com.".into()), "p33.icloud.com");
    }
}
