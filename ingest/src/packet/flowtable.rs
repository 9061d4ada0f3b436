//! The decoder's flow table: open addressing with linear probing and the hash stored per
//! slot, so that the slot a packet's flow lives in can be prefetched ([`FlowTable::prefetch`])
//! a few packets before that packet is decoded. With hundreds of thousands of flows the
//! table does not fit in cache, and a lookup that waits for memory on every packet was the
//! largest cost of decoding bulk traffic.

use std::hash::{BuildHasher, BuildHasherDefault, Hash};

use super::capture::prefetch;
use matcher::fxhash::FxHasher;

/// A hash map from `K` to `V` with linear probing (load factor at most 1/2) and
/// backward-shift deletion; capacity only grows (cleared tables keep it).
pub(crate) struct FlowTable<K, V> {
    slots: Vec<Slot<K, V>>,
    len: usize,
}

/// One slot, aligned to a cache line: the decoder's (hash, key, flow) is 64 bytes, and a
/// slot that straddled two lines (a large allocation starts 16 bytes past a page) cost a
/// second cache miss on every lookup, one the prefetch of its first line does not cover.
#[repr(align(64))]
struct Slot<K, V>(Option<(u64, K, V)>);

impl<K: Hash + Eq, V> Default for FlowTable<K, V> {
    fn default() -> Self {
        FlowTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, V> FlowTable<K, V> {
    /// The hash of a key (also the slot order).
    pub(crate) fn hash(key: &K) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(key)
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Home slot of a hash: Fibonacci hashing (the top bits of a multiply), because linear
    /// probing needs the index bits well mixed.
    fn home(&self, h: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        if bits == 0 {
            return 0;
        }
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn find(&self, h: u64, key: &K) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            match &self.slots.get(i)?.0 {
                None => return None,
                Some((hh, k, _)) if *hh == h && k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// The value of `key` (the decoder only needs [`FlowTable::get_mut`]).
    #[cfg(test)]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.find(Self::hash(key), key)?;
        self.slots.get(i)?.0.as_ref().map(|s| &s.2)
    }

    /// The value of `key`, mutable.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(Self::hash(key), key)?;
        self.slots.get_mut(i)?.0.as_mut().map(|s| &mut s.2)
    }

    /// Ask the CPU for the cache line where `key`'s probe starts.
    pub(crate) fn prefetch(&self, key: &K) {
        if let Some(s) = self.slots.get(self.home(Self::hash(key))) {
            prefetch((s as *const Slot<K, V>).cast::<u8>());
        }
    }

    /// Insert (or replace) `key`.
    #[inline]
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let h = Self::hash(&key);
        if let Some(i) = self.find(h, &key) {
            if let Some(s) = self.slots.get_mut(i) {
                s.0 = Some((h, key, value));
            }
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(h);
        while let Some(Slot(Some(_))) = self.slots.get(i) {
            i = (i + 1) & mask;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.0 = Some((h, key, value));
            self.len += 1;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, (0..cap).map(|_| Slot(None)).collect());
        let mask = cap - 1;
        for (h, k, v) in old.into_iter().filter_map(|s| s.0) {
            let mut i = self.home(h);
            while let Some(Slot(Some(_))) = self.slots.get(i) {
                i = (i + 1) & mask;
            }
            if let Some(s) = self.slots.get_mut(i) {
                s.0 = Some((h, k, v));
            }
        }
    }

    /// Remove `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(Self::hash(key), key)?;
        let (_, _, v) = self.slots.get_mut(i)?.0.take()?;
        self.len -= 1;
        // Backward shift: later entries of the probe run move up into the hole unless their
        // home slot lies (cyclically) after the hole.
        let mask = self.mask();
        let (mut hole, mut j) = (i, (i + 1) & mask);
        while let Some(Slot(Some((h, _, _)))) = self.slots.get(j) {
            let home = self.home(*h);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                let moved = self.slots.get_mut(j).and_then(|s| s.0.take());
                if let Some(s) = self.slots.get_mut(hole) {
                    s.0 = moved;
                }
                hole = j;
            }
            j = (j + 1) & mask;
        }
        Some(v)
    }

    /// Drop every entry, keeping the capacity.
    pub(crate) fn clear(&mut self) {
        if self.len > 0 {
            self.slots.iter_mut().for_each(|s| s.0 = None);
            self.len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FlowTable;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Any sequence of inserts, removes, lookups and clears agrees with std's HashMap
        /// (small key space, so probe runs collide, wrap and shift).
        #[test]
        fn agrees_with_hashmap(ops in proptest::collection::vec((0u8..4, 0u16..300, any::<u32>()), 1..3000)) {
            let mut t: FlowTable<u16, u32> = FlowTable::default();
            let mut m: HashMap<u16, u32> = HashMap::new();
            for (op, k, v) in ops {
                match op {
                    0 => { t.insert(k, v); m.insert(k, v); }
                    1 => prop_assert_eq!(t.remove(&k), m.remove(&k)),
                    2 => {
                        prop_assert_eq!(t.get(&k), m.get(&k));
                        if let Some(x) = t.get_mut(&k) { *x = x.wrapping_add(1); }
                        if let Some(x) = m.get_mut(&k) { *x = x.wrapping_add(1); }
                    }
                    _ => if v % 64 == 0 { t.clear(); m.clear(); },
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for k in 0..300u16 {
                prop_assert_eq!(t.get(&k), m.get(&k));
            }
        }
    }
}
