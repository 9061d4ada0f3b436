//! Line tokenising: trimming, whitespace tokens (a block tokeniser for the hot
//! pre-screens), and bytes as text borrowed from the line.

use std::borrow::Cow;

use matcher::simd;

use super::url::norm_domain;

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
    tokens_by_blocks::<N, 16>(line, |block| u64::from(simd::blank_mask16(block)))
}

/// [`first_tokens`] 32 bytes a compare.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn first_tokens_avx2<const N: usize>(line: &[u8]) -> [Option<&[u8]>; N] {
    tokens_by_blocks::<N, 32>(line, |block| match block.first_chunk::<32>() {
        // SAFETY: AVX2 per this function's contract.
        Some(b) => u64::from(unsafe { simd::blank_mask32_avx2(b) }),
        // A line shorter than a block (the caller sends none): bytes past it are blank.
        None => simd::blank_mask_scalar(block, 32),
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

/// Split a CSV record at commas into `(start, end, quoted)` spans of `line` (a quoted
/// field's span is its inside; `""` in it stands for a quote). Blanks after a comma are
/// skipped (some exports write `", "`). `None` when a quote is not closed.
pub(crate) fn split_csv(line: &[u8], out: &mut Vec<(usize, usize, bool)>) -> Option<()> {
    out.clear();
    let mut i = 0;
    loop {
        // Blanks before a quoted field are not part of it.
        let blanks = line[i..]
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        if line.get(i + blanks) == Some(&b'"') {
            i += blanks;
        }
        if line.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let end = loop {
                let q = memchr::memchr(b'"', line.get(j..)?)? + j;
                if line.get(q + 1) == Some(&b'"') {
                    j = q + 2;
                } else {
                    break q;
                }
            };
            out.push((start, end, true));
            i = end + 1;
            // Up to the next comma (nothing but blanks is expected there).
            match memchr::memchr(b',', &line[i..]) {
                Some(c) => i += c + 1,
                None => return Some(()),
            }
        } else {
            match memchr::memchr(b',', &line[i..]) {
                Some(c) => {
                    out.push((i, i + c, false));
                    i += c + 1;
                }
                None => {
                    out.push((i, line.len(), false));
                    return Some(());
                }
            }
        }
    }
}

/// A CSV field as text: borrowed unless it is quoted and holds `""`.
pub(crate) fn csv_text<'a>(
    l: &Line<'a>,
    line: &'a [u8],
    span: (usize, usize, bool),
) -> Cow<'a, str> {
    let v = &line[span.0..span.1];
    if span.2 && find(v, b"\"\"").is_some() {
        Cow::Owned(String::from_utf8_lossy(v).replace("\"\"", "\""))
    } else {
        l.text(v)
    }
}

/// The end of a double-quoted field's text, which starts after the opening quote: the index
/// of its closing `"` (backslash escapes skipped), if any.
pub(crate) fn closing_quote(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Find `needle` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // The parsers look for short markers (`CEF:`, `date=`, ` PACKET `) once a line: building
    // a `memmem` searcher each time cost more than the search. A short needle: its first byte
    // by `memchr`, then a compare (linear: the needle is at most 16 bytes).
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    if needle.len() > 16 {
        return memchr::memmem::find(hay, needle);
    }
    let mut at = 0;
    while let Some(i) = memchr::memchr(first, hay.get(at..)?) {
        let p = at + i;
        if hay.get(p + 1..).is_some_and(|h| h.starts_with(rest)) {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `find` answers what `memmem` answers.
        #[test]
        fn find_is_memmem(hay in prop::collection::vec(prop::sample::select(b"ab:CEF ".to_vec()), 0..64),
                          needle in prop::collection::vec(prop::sample::select(b"ab:CEF ".to_vec()), 0..20)) {
            prop_assert_eq!(find(&hay, &needle), memchr::memmem::find(&hay, &needle));
        }
    }

    #[test]
    fn csv() {
        let line = br#""a",b, "c ""d""",,"e,f""#;
        let mut spans = Vec::new();
        split_csv(line, &mut spans).unwrap();
        let l = Line::new(line);
        let got: Vec<String> = spans
            .iter()
            .map(|&s| csv_text(&l, line, s).into_owned())
            .collect();
        assert_eq!(got, ["a", "b", "c \"d\"", "", "e,f"]);
        assert!(split_csv(b"\"open,x", &mut spans).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

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
    }
}
