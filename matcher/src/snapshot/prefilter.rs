//! `prefilter.bin`: a conservative, cache-friendly "could this value alert?" answer that lets
//! a scanner skip the FST walks (and the full parse) of the ~99.9% of log lines that touch no
//! indicator.
//!
//! * A blocked Bloom filter (one 64-bit block per key, five bits in it) over the hashes of
//!   the label-reversed names of every domain indicator and of the host of every URL
//!   indicator. A domain lookup hashes each label-boundary prefix of the reversed name (the
//!   parents `match_domain` would report), a URL lookup the host of the normalised URL.
//! * A bitset of the "quiet" ids: allowlist entries and allowlisted indicators, whose hits
//!   never alert. An IP whose covering ranges are all quiet (the built-in private-range
//!   allowlist on nearly every proxy line) cannot alert.
//!
//! "No" is exact (no false negatives, by construction and by property test against the real
//! lookups); "maybe" is followed by the real lookup.

use super::format::Blob;
use super::SnapshotError;
use std::path::Path;

const MAGIC: [u8; 4] = *b"TRWF";
/// 3: the header records the fewest labels of a key. 2: names hashed a label and eight
/// bytes at a time, one 64-bit Bloom block per key. 1: byte by byte, 512-bit blocks.
const VERSION: u32 = 3;
/// Magic, version, block count, id count, fewest labels of a key, reserved (0).
const HEADER: usize = 24;
/// Bytes (and bits) of one Bloom block: one word, so a probe is one load and one compare.
const BLOCK_BYTES: usize = 8;
const BLOCK_BITS: u64 = 64;
/// Bloom bits per key: with five of them set per key in its block, ~0.4% false positives
/// (a Poisson model of keys per block; 10 bits and 512-bit blocks gave ~1%).
const BITS_PER_KEY: usize = 16;
/// Bits set per key, all in its one 64-bit block.
const BITS_SET: u32 = 5;

/// The multiplier of the name hash (the 64-bit golden ratio: odd, bits spread evenly).
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash state of a label-reversed name, fed a label at a time, eight bytes to a step:
/// every label-boundary suffix of a name is hashed in one right-to-left pass.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    pub(crate) fn new() -> Self {
        KeyHash(0xcbf2_9ce4_8422_2325)
    }

    /// Feed the label `name[start..end]` (ASCII lower-cased): its length, then its bytes
    /// eight at a time, the last word zero-filled. Reads only `name`, but whole words of it
    /// where they fit, so a label costs a step per eight bytes, not per byte.
    /// `LOWER = false` skips the lower-casing, for names known to be lower-case already.
    #[inline]
    pub(crate) fn push_label<const LOWER: bool>(&mut self, name: &[u8], start: usize, end: usize) {
        let mut h = (self.0 ^ (end - start) as u64 ^ 0x100).wrapping_mul(MIX);
        let mut at = start;
        while end - at >= 8 {
            h = (h ^ lower8::<LOWER>(word_at(name, at))).wrapping_mul(MIX);
            at += 8;
        }
        let rest = end - at;
        if rest > 0 {
            let w = if at + 8 <= name.len() {
                word_at(name, at) & (u64::MAX >> (64 - 8 * rest))
            } else if end >= 8 {
                word_at(name, end - 8) >> (64 - 8 * rest)
            } else {
                name[at..end]
                    .iter()
                    .rev()
                    .fold(0u64, |w, &b| w << 8 | u64::from(b))
            };
            h = (h ^ lower8::<LOWER>(w)).wrapping_mul(MIX);
        }
        self.0 = h;
    }

    /// The finalised hash of the labels pushed so far.
    #[inline]
    pub(crate) fn finish(self) -> u64 {
        // murmur3's fmix64: the multiply steps leave the low bits weak.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The eight bytes of `b` at `at` (the caller checks they exist), little-endian.
#[inline]
fn word_at(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
        None => 0,
    }
}

/// The eight bytes of `w` with ASCII `A`-`Z` lower-cased and every other byte unchanged,
/// without a branch per byte (`w` itself when not `LOWER`).
#[inline]
fn lower8<const LOWER: bool>(w: u64) -> u64 {
    if !LOWER {
        return w;
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & (0x7f * ONES);
    // Per byte, the high bit of: low7 >= 'A', low7 > 'Z' (no carry crosses a byte).
    let ge_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let gt_z = low7 + (0x7f - u64::from(b'Z')) * ONES;
    let upper = ge_a & !gt_z & !w & (0x80 * ONES);
    w | upper >> 2
}

/// The hash of a host name as the domain FST keys it: labels last to first, joined by dots,
/// lower-cased (`www.Example.com` → `com.example.www`).
pub(crate) fn host_hash(host: &[u8]) -> u64 {
    walk_suffixes::<true>(host, host.len(), |end| label_start(host, end), |_, _| false)
        .1
        .finish()
}

/// Where the label of `name` ending at `end` starts: after the last dot before `end`.
#[inline]
fn label_start(name: &[u8], end: usize) -> usize {
    name[..end]
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(0, |p| p + 1)
}

/// Hash the label-boundary suffixes of the name `text[..len]` right to left, as the
/// label-reversed keys (`com`, `com.example`, `com.example.www`), handing each suffix's label
/// count and hash state to `found` until it says yes. `start_of(end)` is where the label
/// ending at `end` starts. Returns whether `found` said yes, and the last hash state.
#[inline(always)]
fn walk_suffixes<const LOWER: bool>(
    text: &[u8],
    len: usize,
    mut start_of: impl FnMut(usize) -> usize,
    mut found: impl FnMut(u32, KeyHash) -> bool,
) -> (bool, KeyHash) {
    let mut h = KeyHash::new();
    let mut end = len;
    let mut labels = 0;
    loop {
        let start = start_of(end);
        h.push_label::<LOWER>(text, start, end);
        labels += 1;
        if found(labels, h) {
            return (true, h);
        }
        if start == 0 {
            return (false, h);
        }
        end = start - 1;
    }
}

/// The block (one 64-bit word) of a key's hash and the bits the key sets in it.
#[inline]
fn block_and_mask(h: u64, n_blocks: u64) -> (usize, u64) {
    let block = ((h >> 32) * n_blocks) >> 32;
    let g = h.wrapping_mul(MIX);
    let mut mask = 0u64;
    for i in 0..BITS_SET {
        mask |= 1 << ((g >> (64 - 6 * (i + 1))) & (BLOCK_BITS - 1));
    }
    (block as usize, mask)
}

/// Write `prefilter.bin` from each indicator in id order: whether it is quiet (an
/// allowlist entry or allowlisted) and its host (a domain's name, a URL's host).
pub(crate) fn write<'a>(order: impl Iterator<Item = (bool, Option<&'a str>)>) -> Vec<u8> {
    let mut hashes: Vec<u64> = Vec::new();
    let mut quiet: Vec<u64> = Vec::new();
    let mut n_ids = 0u32;
    // No key has fewer labels: shorter suffixes of an observed name need no probe.
    let mut min_labels = u32::MAX;
    for (id, (is_quiet, host)) in order.enumerate() {
        n_ids = id as u32 + 1;
        if is_quiet {
            if quiet.len() <= id / 64 {
                quiet.resize(id / 64 + 1, 0);
            }
            quiet[id / 64] |= 1 << (id % 64);
            continue;
        }
        if let Some(host) = host {
            hashes.push(host_hash(host.as_bytes()));
            let labels = host.bytes().filter(|&b| b == b'.').count() as u32 + 1;
            min_labels = min_labels.min(labels);
        }
    }
    quiet.resize((n_ids as usize).div_ceil(64), 0);
    let n_blocks = (hashes.len() * BITS_PER_KEY)
        .div_ceil(BLOCK_BITS as usize)
        .max(1);
    let mut out = Vec::with_capacity(HEADER + n_blocks * BLOCK_BYTES + quiet.len() * 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(n_blocks as u32).to_le_bytes());
    out.extend_from_slice(&n_ids.to_le_bytes());
    out.extend_from_slice(&min_labels.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut bloom = vec![0u64; n_blocks];
    for h in hashes {
        let (b, mask) = block_and_mask(h, n_blocks as u64);
        bloom[b] |= mask;
    }
    for w in bloom.iter().chain(&quiet) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// A loaded `prefilter.bin`.
pub(crate) struct Prefilter {
    blob: Blob,
    n_blocks: u64,
    n_ids: u32,
    /// The fewest labels of any key (`u32::MAX` when there is none).
    min_labels: u32,
}

impl Prefilter {
    /// Read `prefilter.bin`. One written by another version of trawl (another hash) is
    /// `Ok(None)`: the snapshot is used without it (exact, only slower) until rebuilt.
    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<Option<Prefilter>, SnapshotError> {
        let corrupt = |reason: &str| SnapshotError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let b = blob.as_ref();
        if b.len() < HEADER || b[..4] != MAGIC {
            return Err(corrupt("bad prefilter header"));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if word(4) != VERSION {
            return Ok(None);
        }
        let n_blocks = word(8) as usize;
        let n_ids = word(12);
        let min_labels = word(16);
        let want = HEADER + n_blocks * BLOCK_BYTES + (n_ids as usize).div_ceil(64) * 8;
        if n_blocks == 0 || b.len() != want {
            return Err(corrupt("prefilter length mismatch"));
        }
        Ok(Some(Prefilter {
            blob,
            n_blocks: n_blocks as u64,
            n_ids,
            min_labels,
        }))
    }

    #[inline]
    fn word(&self, index: usize) -> u64 {
        let b = self.blob.as_ref();
        let at = HEADER + index * 8;
        match b.get(at..at + 8) {
            Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
            None => u64::MAX, // unreachable for a parsed file; "maybe" is always safe
        }
    }

    /// May a key with this hash be in the set?
    #[inline]
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        let (block, mask) = block_and_mask(h, self.n_blocks);
        self.word(block) & mask == mask
    }

    /// May a name hash into the set under any of its label-boundary suffixes (the name
    /// itself and every parent, as `match_domain` reports them)? `host` is the observed
    /// name without a trailing dot; hashed right to left as the label-reversed key, no
    /// buffer.
    pub(crate) fn may_contain_name(&self, host: &[u8]) -> bool {
        self.any_suffix::<true>(host, host.len(), |end| label_start(host, end))
    }

    /// [`Prefilter::may_contain_name`] of the lower-case name `text[..len]` (a plain URL
    /// host: `text` is the rest of its URL), with its dots found 16 bytes at a time and its
    /// labels read as words from `text`.
    pub(crate) fn may_contain_lower_name(&self, text: &[u8], len: usize) -> bool {
        let Some(mut dots) = crate::text::dot_mask(text, len) else {
            return self.may_contain_name(&text[..len.min(text.len())]);
        };
        // The labels right to left: each starts after the highest dot left.
        self.any_suffix::<false>(text, len, |_| match dots {
            0 => 0,
            _ => {
                let dot = 63 - dots.leading_zeros() as usize;
                dots ^= 1 << dot;
                dot + 1
            }
        })
    }

    /// May any label-boundary suffix of `text[..len]` be a key? Suffixes with fewer labels
    /// than every key need no probe.
    #[inline(always)]
    fn any_suffix<const LOWER: bool>(
        &self,
        text: &[u8],
        len: usize,
        start_of: impl FnMut(usize) -> usize,
    ) -> bool {
        walk_suffixes::<LOWER>(text, len, start_of, |labels, h| {
            labels >= self.min_labels && self.may_contain(h.finish())
        })
        .0
    }

    /// Is `id` an allowlist entry or allowlisted (its hits never alert)?
    #[inline]
    pub(crate) fn quiet(&self, id: u32) -> bool {
        if id >= self.n_ids {
            return false;
        }
        let at = self.n_blocks as usize + id as usize / 64;
        self.word(at) & (1 << (id % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise lower-casing is `to_ascii_lowercase` in every byte lane, for every
    /// byte value, whatever its neighbours.
    #[test]
    fn lower8_is_ascii_lowercase_per_byte() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut bytes = [b'Z', 0xc1, b'a', b'@', b'[', 0x80, b'A', 0xff];
                bytes[lane] = b;
                let want: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
                let got = lower8::<true>(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got.to_vec(), want, "byte {b:#04x} in lane {lane}");
                assert_eq!(
                    lower8::<false>(u64::from_le_bytes(bytes)),
                    u64::from_le_bytes(bytes)
                );
            }
        }
    }

    /// A label hashes the same whichever way its last word is read (ahead within the name,
    /// back from its end, or byte by byte when the name is shorter than a word).
    #[test]
    fn a_label_hashes_the_same_from_every_read() {
        let hash = |name: &[u8], start: usize, end: usize| {
            let mut h = KeyHash::new();
            h.push_label::<true>(name, start, end);
            h.finish()
        };
        let label = b"Mail";
        let alone = hash(label, 0, 4);
        assert_eq!(hash(b"mail.example.org", 0, 4), alone, "read ahead");
        assert_eq!(
            hash(b"www.example.MAIL", 12, 16),
            alone,
            "read back from the end"
        );
        assert_ne!(hash(b"mails", 0, 5), alone);
        assert_ne!(hash(b"mai", 0, 3), alone);
    }
}
