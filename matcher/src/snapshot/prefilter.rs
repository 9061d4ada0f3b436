//! `prefilter.bin`: a conservative, cache-friendly "could this value alert?" answer that lets
//! a scanner skip the FST walks (and the full parse) of the ~99.9% of log lines that touch no
//! indicator.
//!
//! * A blocked Bloom filter (one 64-byte block per key, six bits in it) over the hashes of
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
use crate::model::Indicator;
use std::path::Path;

const MAGIC: [u8; 4] = *b"TRWF";
const VERSION: u32 = 1;
const HEADER: usize = 16;
/// Bytes (and bits) of one Bloom block: one cache line.
const BLOCK_BYTES: usize = 64;
const BLOCK_BITS: u64 = 512;
/// Bloom bits per key (with six bits set per key in one block: ~1-2% false positives).
const BITS_PER_KEY: usize = 10;

/// The hash state of a label-reversed name, fed byte by byte (FNV-1a, finalised by
/// [`finish`]), so every label-boundary prefix is hashed in one pass.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    pub(crate) fn new() -> Self {
        KeyHash(0xcbf2_9ce4_8422_2325)
    }
    #[inline]
    pub(crate) fn push(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
    }
    /// The finalised hash of the bytes pushed so far.
    #[inline]
    pub(crate) fn finish(self) -> u64 {
        // murmur3's fmix64: FNV's low bits are weak.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The hash of a host name as the domain FST keys it: labels last to first, joined by dots,
/// lower-cased (`www.Example.com` → `com.example.www`).
pub(crate) fn host_hash(host: &[u8]) -> u64 {
    let mut h = KeyHash::new();
    let mut end = host.len();
    let mut first = true;
    loop {
        let start = host[..end]
            .iter()
            .rposition(|&b| b == b'.')
            .map_or(0, |p| p + 1);
        if !first {
            h.push(b'.');
        }
        first = false;
        for &b in &host[start..end] {
            h.push(b);
        }
        if start == 0 {
            break;
        }
        end = start - 1;
    }
    h.finish()
}

#[inline]
fn block_and_bits(h: u64, n_blocks: u64) -> (usize, [u64; 8]) {
    let block = ((h >> 32) * n_blocks) >> 32;
    let g = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words = [0u64; 8];
    for i in 0..6 {
        let bit = (g >> (i * 9)) & (BLOCK_BITS - 1);
        words[(bit / 64) as usize] |= 1 << (bit % 64);
    }
    (block as usize, words)
}

/// Write `prefilter.bin` for `items` (ids follow `order`, the id-ordered item indices).
pub(crate) fn write(items: &[Indicator], order: impl Iterator<Item = u32>) -> Vec<u8> {
    use crate::model::IndicatorType as T;
    let mut hashes: Vec<u64> = Vec::new();
    let mut quiet: Vec<u64> = Vec::new();
    let mut n_ids = 0u32;
    for (id, i) in order.enumerate() {
        n_ids = id as u32 + 1;
        let it = &items[i as usize];
        if it.allowlist || it.allowlisted_by.is_some() {
            if quiet.len() <= id / 64 {
                quiet.resize(id / 64 + 1, 0);
            }
            quiet[id / 64] |= 1 << (id % 64);
            continue;
        }
        match it.itype {
            T::Fqdn => hashes.push(host_hash(it.value.as_bytes())),
            T::Url => {
                if let Some(host) = crate::text::url_host(&it.value) {
                    hashes.push(host_hash(host.as_bytes()));
                }
            }
            _ => {}
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
    let mut bloom = vec![0u64; n_blocks * 8];
    for h in hashes {
        let (b, words) = block_and_bits(h, n_blocks as u64);
        for (w, bits) in bloom[b * 8..b * 8 + 8].iter_mut().zip(words) {
            *w |= bits;
        }
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
}

impl Prefilter {
    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<Prefilter, SnapshotError> {
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
            return Err(corrupt("unknown prefilter version"));
        }
        let n_blocks = word(8) as usize;
        let n_ids = word(12);
        let want = HEADER + n_blocks * BLOCK_BYTES + (n_ids as usize).div_ceil(64) * 8;
        if n_blocks == 0 || b.len() != want {
            return Err(corrupt("prefilter length mismatch"));
        }
        Ok(Prefilter {
            blob,
            n_blocks: n_blocks as u64,
            n_ids,
        })
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
        // The bits `block_and_bits` sets, tested one by one in the loaded block (the same
        // answer without building the eight masks).
        let block = ((h >> 32) * self.n_blocks) >> 32;
        let g = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let at = HEADER + block as usize * BLOCK_BYTES;
        let Some(block) = self.blob.as_ref().get(at..at + BLOCK_BYTES) else {
            return true; // unreachable for a parsed file; "maybe" is always safe
        };
        let mut all = true;
        for i in 0..6 {
            let bit = ((g >> (i * 9)) & (BLOCK_BITS - 1)) as usize;
            all &= (block[bit / 8] >> (bit % 8)) & 1 == 1;
        }
        all
    }

    /// May a name hash into the set under any of its label-boundary suffixes (the name
    /// itself and every parent, as `match_domain` reports them)? `host` is the observed
    /// name without a trailing dot; hashed right to left as the label-reversed key, no
    /// buffer.
    pub(crate) fn may_contain_name(&self, host: &[u8]) -> bool {
        let mut h = KeyHash::new();
        let mut end = host.len();
        loop {
            let mut start = end;
            while start > 0 && host[start - 1] != b'.' {
                start -= 1;
            }
            for &b in &host[start..end] {
                h.push(b);
            }
            if start == 0 {
                return self.may_contain(h.finish());
            }
            if self.may_contain(h.finish()) {
                return true;
            }
            h.push(b'.');
            end = start - 1;
        }
    }

    /// Is `id` an allowlist entry or allowlisted (its hits never alert)?
    #[inline]
    pub(crate) fn quiet(&self, id: u32) -> bool {
        if id >= self.n_ids {
            return false;
        }
        let at = self.n_blocks as usize * 8 + id as usize / 64;
        self.word(at) & (1 << (id % 64)) != 0
    }
}
