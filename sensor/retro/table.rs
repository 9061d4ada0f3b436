//! A worker's pending values: (hour, key) → stats in a compact open-addressing table over
//! one key arena. A value is hashed once per observation; one already held costs that hash
//! and a probe, no allocation; a new one appends its key to the arena.

use super::segment::Stats;
use super::store::day_of;
use rayon::slice::ParallelSliceMut;
use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::OnceLock;

/// The hash of `key` in `hour`. Keys are hostile (observed values), so the hasher is keyed
/// per process (aHash's random state), not Fx; one state for every table of the process.
pub fn hash_of(hour: i64, key: &[u8]) -> u64 {
    static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
    STATE
        .get_or_init(ahash::RandomState::new)
        .hash_one((hour, key))
}

/// One held value: its hour, hash, where its key is in the arena, its stats.
#[derive(Debug)]
struct Slot {
    hour: i64,
    hash: u64,
    start: u32,
    len: u32,
    stats: Stats,
}

/// (hour, key) → [`Stats`]: the index is a power-of-two array of `tag << 32 | entry + 1`
/// (0: empty; the tag is the hash's high half, so most probes of another key stop without
/// reading it), probed linearly and kept at most half full.
#[derive(Debug, Default)]
pub struct ValueTable {
    index: Vec<u64>,
    keys: Vec<u8>,
    slots: Vec<Slot>,
}

/// Bytes of memory one held value costs besides its key (its slot and two index words).
pub const BYTES_PER_VALUE: usize = std::mem::size_of::<Slot>() + 16;

impl ValueTable {
    /// Distinct (hour, key) pairs held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Memory held, roughly: the keys and [`BYTES_PER_VALUE`] each.
    pub fn bytes(&self) -> usize {
        self.keys.len() + self.slots.len() * BYTES_PER_VALUE
    }

    fn key(&self, s: &Slot) -> &[u8] {
        let start = s.start as usize;
        self.keys
            .get(start..start + s.len as usize)
            .unwrap_or_default()
    }

    /// Count one sighting of `key` (its [`hash_of`] `hash`) in `hour` at `t`; false when the
    /// table cannot hold it (4 GiB of keys or 2³² values: the recorder flushes long before).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        hash: u64,
        hour: i64,
        key: &[u8],
        t: i64,
        fields: u32,
        client: Option<IpAddr>,
        cap: usize,
    ) -> bool {
        if (self.slots.len() + 1) * 2 > self.index.len() {
            self.grow();
        }
        let mask = self.index.len() - 1;
        let tag = hash >> 32;
        let mut at = hash as usize & mask;
        loop {
            let word = self.index[at];
            if word == 0 {
                break;
            }
            if word >> 32 == tag {
                let i = (word & 0xffff_ffff) as usize - 1;
                let s = &self.slots[i];
                if s.hash == hash && s.hour == hour && self.key(s) == key {
                    self.slots[i].stats.add(t, fields, client, cap);
                    return true;
                }
            }
            at = (at + 1) & mask;
        }
        let (Ok(start), Ok(len), Ok(n)) = (
            u32::try_from(self.keys.len()),
            u32::try_from(key.len()),
            u32::try_from(self.slots.len() + 1),
        ) else {
            return false;
        };
        if start.checked_add(len).is_none() || n == u32::MAX {
            return false;
        }
        self.keys.extend_from_slice(key);
        self.slots.push(Slot {
            hour,
            hash,
            start,
            len,
            stats: Stats::one(t, fields, client, cap),
        });
        self.index[at] = tag << 32 | u64::from(n);
        true
    }

    /// Double the index (at least 1,024 words) and place every value again.
    fn grow(&mut self) {
        let size = (self.index.len() * 2).max(1024);
        let mask = size - 1;
        let mut index = vec![0u64; size];
        for (i, s) in self.slots.iter().enumerate() {
            let mut at = s.hash as usize & mask;
            while index[at] != 0 {
                at = (at + 1) & mask;
            }
            index[at] = (s.hash >> 32) << 32 | (i as u64 + 1);
        }
        self.index = index;
    }

    /// Everything held, sorted by (day, key, hour) (both cores sort): the flush's input.
    pub fn into_run(self) -> Run {
        // Each value's day and the first 32 bytes of its key (zero-padded) in the sorted
        // array itself, so most comparisons touch neither the arena nor the slots (URLs
        // share `uhttp://` and often their host's first bytes: with 16 bytes, the ties'
        // reads of the arena were 29% of a recording scan).
        let mut order: Vec<(i64, u128, u128, u32)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let k = self.key(s);
                (
                    day_of(s.hour),
                    prefix(k),
                    prefix(k.get(16..).unwrap_or_default()),
                    i as u32,
                )
            })
            .collect();
        let cmp = |a: &(i64, u128, u128, u32), b: &(i64, u128, u128, u32)| {
            (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)).then_with(|| {
                let (x, y) = (&self.slots[a.3 as usize], &self.slots[b.3 as usize]);
                self.key(x).cmp(self.key(y)).then(x.hour.cmp(&y.hour))
            })
        };
        order.par_sort_unstable_by(cmp);
        // The keys copied end to end in that order, the stats moved beside them: the
        // merge then reads each run front to back instead of the arena at random.
        let mut slots = self.slots;
        let mut run = Run {
            keys: Vec::with_capacity(self.keys.len()),
            entries: Vec::with_capacity(order.len()),
        };
        for &(_, _, _, i) in &order {
            let s = &mut slots[i as usize];
            let start = s.start as usize;
            run.keys.extend_from_slice(
                self.keys
                    .get(start..start + s.len as usize)
                    .unwrap_or_default(),
            );
            run.entries
                .push((s.hour, run.keys.len(), std::mem::take(&mut s.stats)));
        }
        run
    }
}

/// The first 16 bytes of `key`, big-endian, zero-padded: ordered as the keys are, except
/// that a tie needs the whole keys.
fn prefix(key: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = key.len().min(16);
    b[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(b)
}

/// A table's values in (day, key, hour) order: one of the runs a flush merges. The keys
/// end to end; each entry is (hour, its key's end, stats).
#[derive(Debug, Default)]
pub struct Run {
    keys: Vec<u8>,
    entries: Vec<(i64, usize, Stats)>,
}

/// One value of a run: (day, key, hour) and its stats.
pub type Item<'r> = (i64, &'r [u8], i64, &'r Stats);

impl Run {
    /// Values held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the run is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`th value in order.
    pub fn at(&self, i: usize) -> Option<Item<'_>> {
        let (hour, end, stats) = self.entries.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => self.entries.get(p)?.1,
            None => 0,
        };
        Some((day_of(*hour), self.keys.get(start..*end)?, *hour, stats))
    }

    /// How many values come before (day, key, hour) `probe`.
    pub fn rank(&self, probe: (i64, &[u8], i64)) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at(mid).map(|(d, k, h, _)| order((d, k, h), probe)) {
                Some(Ordering::Less) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }
}

/// The order of runs: day, then key, then hour, so that a closed day's values of one key
/// are adjacent (folded into its day segment) and an open day's split into hours stays in
/// key order.
pub fn order(a: (i64, &[u8], i64), b: (i64, &[u8], i64)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)).then(a.2.cmp(&b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_hour_and_key_once_across_growth_and_sorts_them() {
        let mut t = ValueTable::default();
        // 5,000 keys in two hours, each seen three times: the index grows several times.
        for round in 0..3 {
            for i in 0..5000u32 {
                for hour in [7200i64, 3600] {
                    let key = format!("k{}", i * 7919 % 5000);
                    let h = hash_of(hour, key.as_bytes());
                    assert!(t.add(h, hour, key.as_bytes(), hour + round, 1, None, 0));
                }
            }
        }
        assert_eq!(t.len(), 10_000);
        let run = t.into_run();
        let items: Vec<(i64, Vec<u8>, i64, u64, i64)> = (0..run.len())
            .map(|i| {
                let (d, k, h, s) = run.at(i).unwrap();
                (d, k.to_vec(), h, s.count, s.last - s.first)
            })
            .collect();
        assert!(items.iter().all(|i| i.3 == 3 && i.4 == 2));
        let mut sorted = items.clone();
        sorted.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        assert_eq!(items, sorted);
        // Hours of one day are adjacent per key.
        assert_eq!(items[0].1, items[1].1);
        assert_eq!((items[0].2, items[1].2), (3600, 7200));
        assert_eq!(run.rank((0, b"k1", 0)), 2);
        assert_eq!(run.rank((0, b"k1", 7200)), 3);
        assert_eq!(run.rank((1, b"", 0)), 10_000);
    }

    #[test]
    fn keys_sharing_sixteen_bytes_or_a_zero_tail_sort_by_their_whole_bytes() {
        let mut t = ValueTable::default();
        let keys: [&[u8]; 5] = [
            b"uhttp://example.com/b",
            b"uhttp://example.com/a",
            b"ab\0",
            b"ab",
            b"uhttp://example.co",
        ];
        for k in keys {
            assert!(t.add(hash_of(0, k), 0, k, 1, 1, None, 0));
        }
        let run = t.into_run();
        let got: Vec<&[u8]> = (0..run.len()).map(|i| run.at(i).unwrap().1).collect();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(got, want);
    }
}
