//! The workspace's one fast hasher: rustc's Fx multiply-rotate with a final avalanche, for
//! maps whose keys are not attacker-chosen hash-flooding targets (the snapshot builder's
//! interning maps, the packet decoder's bounded flow table). SipHash was a third of the
//! builder's insert time.

use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x517c_c1b7_2722_0a95;

/// Fx hasher state. `FxHasher::default()` starts from zero, so equal keys hash equally in
/// every run (the flow table relies on it); [`FxBuild`] starts each from a random seed.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    /// A hasher starting from `seed`.
    #[inline]
    pub fn with_seed(seed: u64) -> Self {
        FxHasher(seed)
    }

    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // Zero-padded; byte by byte, because a variable-length copy is a memcpy call
            // (the flow shard hashes 4-byte addresses).
            let mut a = [0u8; 8];
            for (x, y) in a.iter_mut().zip(tail) {
                *x = *y;
            }
            self.add(u64::from_le_bytes(a));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche: the multiply-only state leaves the low bits (a bucket index)
        // dependent on the last few words only; the multiply mixes the top bits
        // (hashbrown's tags).
        let x = self.0;
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
}

/// Builds [`FxHasher`]s from a seed drawn once per builder, so equal inputs do not collide
/// the same way every run.
#[derive(Clone, Copy)]
pub struct FxBuild(u64);

impl Default for FxBuild {
    fn default() -> Self {
        FxBuild(std::hash::RandomState::new().hash_one(0x0074_7261_776c_u64))
    }
}

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    #[inline]
    fn build_hasher(&self) -> FxHasher {
        FxHasher::with_seed(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasherDefault;

    /// The unseeded hash is a pure function of the key (the flow table's slot order and
    /// the decoder's flow shards depend on it): pinned values.
    #[test]
    fn unseeded_hash_is_stable() {
        let h = |parts: &[&[u8]]| {
            let mut s = FxHasher::default();
            for p in parts {
                s.write(p);
            }
            s.finish()
        };
        assert_eq!(h(&[]), 0);
        // The two addresses of an IPv4 flow, as the decoder's flow shard hashes them.
        assert_eq!(
            h(&[&[10, 0, 0, 1], &[192, 168, 1, 1]]),
            0xf87d_58f6_a6f7_d43b
        );
        assert_eq!(h(&[b"0123456789abcdef_x"]), 0x560b_37ee_2399_d20b);
        let b = BuildHasherDefault::<FxHasher>::default();
        assert_eq!(b.hash_one(7u64), b.hash_one(7u64));
    }

    /// Seeds change the hash; a seeded builder is consistent with itself.
    #[test]
    fn seeds_change_the_hash() {
        let (a, b) = (FxBuild(1), FxBuild(2));
        assert_ne!(a.hash_one("example.com"), b.hash_one("example.com"));
        assert_eq!(a.hash_one("example.com"), a.hash_one("example.com"));
    }
}
