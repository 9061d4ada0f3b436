//! Binary layouts of the snapshot files and their bounds-checked readers. Every offset read
//! from a file is checked; a damaged file yields `None`/`Corrupt`, never a panic.

use super::{corrupt, SnapshotError, BLOCK};
use std::path::Path;

/// File bytes: mmapped from disk, or in memory for `SnapshotBuilder::build`.
pub(crate) enum Blob {
    /// A read-only memory map.
    Map(memmap2::Mmap),
    /// Owned bytes.
    Mem(Vec<u8>),
}

impl Blob {
    /// Map `path` read-only (an empty file becomes an empty in-memory blob: zero-length maps
    /// are refused by some systems).
    pub(crate) fn open(path: &Path) -> std::io::Result<Blob> {
        let f = std::fs::File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(Blob::Mem(Vec::new()));
        }
        // SAFETY: snapshot directories are immutable once published (written to a temp dir
        // and renamed); nothing writes to these files while they are mapped.
        let m = unsafe { memmap2::Mmap::map(&f)? };
        Ok(Blob::Map(m))
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        match self {
            Blob::Map(m) => m,
            Blob::Mem(v) => v,
        }
    }
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u128_at(b: &[u8], off: usize) -> Option<u128> {
    let s = b.get(off..off.checked_add(16)?)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Some(u128::from_le_bytes(a))
}

fn header(b: &[u8], magic: [u8; 4], path: &Path) -> Result<(), SnapshotError> {
    if b.get(..4) != Some(&magic[..]) {
        return Err(corrupt(path, "bad magic"));
    }
    Ok(())
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Append `v` as an LEB128 varint (7 bits a byte, low first).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read an LEB128 varint at `*pos`, advancing it; `None` when cut short or longer than 64 bits.
pub fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The key whose output is `target`, in an FST whose outputs increase with key order (each
/// transition's output is then the smallest output below it, so the descent is greedy).
pub(crate) fn key_for_output<D: AsRef<[u8]>>(
    fst: &fst::raw::Fst<D>,
    target: u64,
) -> Option<Vec<u8>> {
    let mut node = fst.root();
    let mut acc = 0u64;
    let mut key = Vec::new();
    loop {
        if node.is_final() && acc.checked_add(node.final_output().value())? == target {
            return Some(key);
        }
        let mut chosen = None;
        for t in node.transitions() {
            if acc.checked_add(t.out.value())? <= target {
                chosen = Some(t);
            } else {
                break;
            }
        }
        let t = chosen?;
        acc += t.out.value();
        key.push(t.inp);
        node = fst.node(t.addr);
        if key.len() > 4096 {
            return None;
        }
    }
}

/// Read `width` (≤ 57) bits at bit position `bit` of `b`; bytes past the end read as 0.
fn get_bits(b: &[u8], bit: u64, width: u32) -> Option<u64> {
    let byte = usize::try_from(bit / 8).ok()?;
    let shift = (bit % 8) as u32;
    let mut w = [0u8; 8];
    let avail = b.get(byte..)?;
    let n = avail.len().min(8);
    w[..n].copy_from_slice(&avail[..n]);
    Some((u64::from_le_bytes(w) >> shift) & ((1u64 << width) - 1))
}

#[cfg(test)]
fn put_bits(out: &mut [u8], bit: u64, width: u32, v: u64) {
    for i in 0..u64::from(width) {
        if v >> i & 1 == 1 {
            let p = bit + i;
            out[(p / 8) as usize] |= 1 << (p % 8);
        }
    }
}

/// Spacing of the inverse-permutation shortcuts in `domains.idx`.
const STEP: usize = 16;

/// `domains.idx` maps an FST output (the rank of a domain's label-reversed key) to the
/// domain's index among the domain ids and its exact-only flag, and back.
///
/// Snapshots written by this version number domains in key order, so the map is the
/// identity and the file (`TRWE`, n, then n exact-only bits) is 1 bit per domain.
/// Snapshots written before that numbered domains by value; they still open: `TRWD`, n, width w,
/// nshort; then bit-packed: n × (w+1) bits rank →
/// (domain index, exact-only bit w) (the permutation π); a bitmap of n bits marking every
/// [`STEP`]-th element along each cycle of π longer than STEP; per 64-bit word of the bitmap
/// a u32 count of marks before it; nshort × w bits of shortcuts π^-STEP(m) for the marked m in
/// order. id → rank (π⁻¹) walks at most 2·STEP steps (Munro et al.'s succinct permutations),
/// so the inverse costs ~n/8 bytes instead of a second n-entry table.
pub(crate) struct DomainIdx {
    blob: Blob,
    pub(crate) len: u32,
    width: u32,
    nshort: u32,
    /// `TRWE`: rank = domain index; only the exact-only bits are stored.
    identity: bool,
}

/// Header bytes of the identity layout (`TRWE`, n).
const IDENTITY_HEADER: usize = 8;

impl DomainIdx {
    fn width_for(n: usize) -> u32 {
        (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
    }

    /// Byte offsets of (bitmap, directory, shortcuts) and the total length.
    fn layout(n: u64, w: u32, nshort: u64) -> (u64, u64, u64, u64) {
        let perm = (n * u64::from(w + 1)).div_ceil(8);
        let words = n.div_ceil(64);
        let bitmap = 16 + perm;
        let dir = bitmap + words * 8;
        let short = dir + words * 4;
        let total = short + (nshort * u64::from(w)).div_ceil(8) + 8;
        (bitmap, dir, short, total)
    }

    /// The identity layout: the exact-only flag of each domain, in key (= id) order.
    pub(crate) fn write_identity(exact: impl ExactSizeIterator<Item = bool>) -> Vec<u8> {
        let n = exact.len();
        let mut out = vec![0u8; IDENTITY_HEADER + n.div_ceil(8)];
        out[..4].copy_from_slice(b"TRWE");
        out[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        for (i, e) in exact.enumerate() {
            if e {
                out[IDENTITY_HEADER + i / 8] |= 1 << (i % 8);
            }
        }
        out
    }

    /// The permuted layout of snapshots written before domains were numbered in key order
    /// (kept so tests can write one and check that such snapshots still open).
    #[cfg(test)]
    pub(crate) fn write(r2i: &[(u32, bool)]) -> Vec<u8> {
        let n = r2i.len();
        let w = Self::width_for(n);
        let pi = |r: usize| r2i[r].0 as usize;
        // Marks and shortcuts along every cycle longer than STEP.
        let mut marks = vec![0u64; n.div_ceil(64)];
        let mut short_of: Vec<(u32, u32)> = Vec::new();
        let mut seen = vec![false; n];
        let mut cycle = Vec::new();
        for s in 0..n {
            if seen[s] {
                continue;
            }
            cycle.clear();
            let mut x = s;
            while !seen[x] {
                seen[x] = true;
                cycle.push(x as u32);
                x = pi(x);
            }
            let len = cycle.len();
            if len > STEP {
                for k in (0..len).step_by(STEP) {
                    let m = cycle[k];
                    let b = cycle[(k + len - STEP % len) % len];
                    marks[m as usize / 64] |= 1 << (m % 64);
                    short_of.push((m, b));
                }
            }
        }
        short_of.sort_unstable();
        let nshort = short_of.len() as u64;
        let (bitmap, dir, short, total) = Self::layout(n as u64, w, nshort);
        let mut out = vec![0u8; total as usize];
        out[..4].copy_from_slice(b"TRWD");
        out[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        out[8..12].copy_from_slice(&w.to_le_bytes());
        out[12..16].copy_from_slice(&(nshort as u32).to_le_bytes());
        for (r, &(id, exact)) in r2i.iter().enumerate() {
            let v = u64::from(id) | u64::from(exact) << w;
            put_bits(&mut out[16..], r as u64 * u64::from(w + 1), w + 1, v);
        }
        let mut count = 0u32;
        for (i, word) in marks.iter().enumerate() {
            let o = bitmap as usize + 8 * i;
            out[o..o + 8].copy_from_slice(&word.to_le_bytes());
            let d = dir as usize + 4 * i;
            out[d..d + 4].copy_from_slice(&count.to_le_bytes());
            count += word.count_ones();
        }
        for (j, &(_, b)) in short_of.iter().enumerate() {
            put_bits(
                &mut out[short as usize..],
                j as u64 * u64::from(w),
                w,
                u64::from(b),
            );
        }
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<DomainIdx, SnapshotError> {
        let b = blob.as_ref();
        if b.get(..4) == Some(b"TRWE") {
            let len = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))?;
            if b.len() as u64 != IDENTITY_HEADER as u64 + u64::from(len).div_ceil(8) {
                return Err(corrupt(path, "length does not match count"));
            }
            return Ok(DomainIdx {
                blob,
                len,
                width: 0,
                nshort: 0,
                identity: true,
            });
        }
        header(b, *b"TRWD", path)?;
        let len = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))?;
        let width = u32_at(b, 8).ok_or_else(|| corrupt(path, "truncated header"))?;
        let nshort = u32_at(b, 12).ok_or_else(|| corrupt(path, "truncated header"))?;
        if width != Self::width_for(len as usize) {
            return Err(corrupt(path, "bad bit width"));
        }
        let (.., total) = Self::layout(u64::from(len), width, u64::from(nshort));
        if b.len() as u64 != total {
            return Err(corrupt(path, "length does not match count"));
        }
        Ok(DomainIdx {
            blob,
            len,
            width,
            nshort,
            identity: false,
        })
    }

    /// (domain index, exact_only) of the name of `rank`.
    #[inline]
    pub(crate) fn id_of(&self, rank: u32) -> Option<(u32, bool)> {
        if rank >= self.len {
            return None;
        }
        if self.identity {
            let byte = self
                .blob
                .as_ref()
                .get(IDENTITY_HEADER + rank as usize / 8)?;
            return Some((rank, byte >> (rank % 8) & 1 == 1));
        }
        let b = self.blob.as_ref().get(16..)?;
        let v = get_bits(
            b,
            u64::from(rank) * u64::from(self.width + 1),
            self.width + 1,
        )?;
        let id = u32::try_from(v & ((1u64 << self.width) - 1)).ok()?;
        Some((id, v >> self.width & 1 == 1))
    }

    fn pi(&self, r: u32) -> Option<u32> {
        self.id_of(r).map(|(i, _)| i)
    }

    /// The shortcut π^-STEP(m) when `m` is marked.
    fn shortcut(&self, m: u32) -> Option<Option<u32>> {
        let b = self.blob.as_ref();
        let (bitmap, dir, short, _) =
            Self::layout(u64::from(self.len), self.width, u64::from(self.nshort));
        let word_i = m as usize / 64;
        let word = b
            .get(bitmap as usize + 8 * word_i..bitmap as usize + 8 * word_i + 8)
            .map(|s| {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_le_bytes(a)
            })?;
        if word >> (m % 64) & 1 == 0 {
            return Some(None);
        }
        let before =
            u32_at(b, dir as usize + 4 * word_i)? + (word & ((1u64 << (m % 64)) - 1)).count_ones();
        if before >= self.nshort {
            return None;
        }
        let v = get_bits(
            b.get(short as usize..)?,
            u64::from(before) * u64::from(self.width),
            self.width,
        )?;
        Some(Some(u32::try_from(v).ok()?))
    }

    /// Rank of the domain with index `i` (id minus the first domain id): π⁻¹(i).
    pub(crate) fn rank_of(&self, i: u32) -> Option<u32> {
        if i >= self.len {
            return None;
        }
        if self.identity {
            return Some(i);
        }
        let mut x = i;
        let mut jumped = false;
        for _ in 0..(2 * STEP + 2) {
            let next = self.pi(x)?;
            if next == i {
                return Some(x);
            }
            if !jumped {
                if let Some(b) = self.shortcut(x)? {
                    jumped = true;
                    x = b;
                    continue;
                }
            }
            x = next;
        }
        None
    }
}

/// `ip.bin`: `TRWI`, n4, n6, nlist; n4 × (start u32, end u32, ref u32);
/// n6 × (start u128, end u128, ref u32); nlist × u32. A `ref` with bit 31 set holds the only
/// covering id inline (bit 30: CIDR); otherwise it is the offset of a list `len, ids...` in
/// the list area (each id with bit 31 set for a CIDR).
pub(crate) struct IpTables {
    blob: Blob,
    n4: usize,
    n6: usize,
    nlist: usize,
    /// For each /16 prefix `p` (and one past the last), the index of the first IPv4 range
    /// starting at or after `p << 16`: a lookup binary-searches only its /16's few ranges
    /// instead of the whole table (built at open: one pass over the starts, 256 KiB).
    dir4: Vec<u32>,
}

const V4_REC: usize = 12;
const V6_REC: usize = 36;

impl IpTables {
    /// `v4`/`v6` are (start, end, offset, length) into `lists`.
    pub(crate) fn write(
        v4: &[(u32, u32, u32, u32)],
        v6: &[(u128, u128, u32, u32)],
        lists: &[u32],
    ) -> Vec<u8> {
        let mut packed: Vec<u32> = Vec::new();
        let mut enc = |off: u32, len: u32| -> u32 {
            let (o, l) = (off as usize, len as usize);
            if l == 1 {
                let v = lists[o];
                0x8000_0000 | (v >> 31) << 30 | (v & 0x3fff_ffff)
            } else {
                let at = packed.len() as u32;
                packed.push(len);
                packed.extend_from_slice(&lists[o..o + l]);
                at
            }
        };
        let mut body = Vec::with_capacity(v4.len() * V4_REC + v6.len() * V6_REC);
        for &(s, e, o, l) in v4 {
            for x in [s, e, enc(o, l)] {
                body.extend_from_slice(&x.to_le_bytes());
            }
        }
        for &(s, e, o, l) in v6 {
            body.extend_from_slice(&s.to_le_bytes());
            body.extend_from_slice(&e.to_le_bytes());
            body.extend_from_slice(&enc(o, l).to_le_bytes());
        }
        let mut out = Vec::with_capacity(16 + body.len() + packed.len() * 4);
        out.extend_from_slice(b"TRWI");
        for n in [v4.len(), v6.len(), packed.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        out.extend_from_slice(&body);
        for x in &packed {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<IpTables, SnapshotError> {
        let b = blob.as_ref();
        header(b, *b"TRWI", path)?;
        let get = |o| {
            u32_at(b, o)
                .map(|v| v as usize)
                .ok_or_else(|| corrupt(path, "truncated header"))
        };
        let (n4, n6, nlist) = (get(4)?, get(8)?, get(12)?);
        let want =
            16u64 + (n4 as u64) * V4_REC as u64 + (n6 as u64) * V6_REC as u64 + (nlist as u64) * 4;
        if b.len() as u64 != want {
            return Err(corrupt(path, "length does not match counts"));
        }
        let mut dir4 = Vec::with_capacity(65537);
        let mut i = 0usize;
        for p in 0..=65536u64 {
            while i < n4 && u32_at(b, 16 + i * V4_REC).is_some_and(|s| u64::from(s) < p << 16) {
                i += 1;
            }
            dir4.push(i as u32);
        }
        Ok(IpTables {
            blob,
            n4,
            n6,
            nlist,
            dir4,
        })
    }

    fn list(&self, r: u32) -> IdList<'_> {
        if r & 0x8000_0000 != 0 {
            return IdList {
                b: &[],
                pos: 0,
                end: 0,
                single: Some((r >> 30 & 1) << 31 | (r & 0x3fff_ffff)),
            };
        }
        let b = self.blob.as_ref();
        let base = 16 + self.n4 * V4_REC + self.n6 * V6_REC;
        let off = r as usize;
        let len = if off < self.nlist {
            u32_at(b, base + 4 * off).map_or(0, |l| l as usize)
        } else {
            0
        };
        let ok = off
            .checked_add(1)
            .and_then(|s| s.checked_add(len))
            .is_some_and(|e| e <= self.nlist);
        let (pos, end) = if ok && len > 0 {
            (base + 4 * (off + 1), base + 4 * (off + 1 + len))
        } else {
            (0, 0)
        };
        IdList {
            b,
            pos,
            end,
            single: None,
        }
    }

    /// The id list of the range covering `ip`, searching records `lo..hi` (sorted by start,
    /// disjoint) for the last one starting at or before `ip`; `rec(i)` = (start, end, list).
    fn covering<T: Ord + Copy>(
        &self,
        mut lo: usize,
        mut hi: usize,
        ip: T,
        rec: impl Fn(usize) -> Option<(T, T, u32)>,
    ) -> IdList<'_> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match rec(mid) {
                Some((s, ..)) if s <= ip => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(rec) {
            Some((_, e, r)) if ip <= e => self.list(r),
            _ => IdList::EMPTY,
        }
    }

    pub(crate) fn lookup_v4(&self, ip: u32) -> IdList<'_> {
        let b = self.blob.as_ref();
        let rec = |i: usize| -> Option<(u32, u32, u32)> {
            let o = 16 + i * V4_REC;
            Some((u32_at(b, o)?, u32_at(b, o + 4)?, u32_at(b, o + 8)?))
        };
        // Last range with start <= ip: it starts in ip's /16 or is the last one before it.
        let p = (ip >> 16) as usize;
        let (lo, hi) = match (self.dir4.get(p), self.dir4.get(p + 1)) {
            (Some(&a), Some(&b)) if a <= b => (a as usize, (b as usize).min(self.n4)),
            _ => (0, self.n4),
        };
        self.covering(lo, hi, ip, rec)
    }

    /// One bit per IPv4 /24 (2^24 bits): set when a range whose list holds an id that is
    /// not `quiet` overlaps that /24.
    pub(crate) fn loud_v4_blocks(&self, quiet: impl Fn(u32) -> bool) -> Vec<u64> {
        let b = self.blob.as_ref();
        let mut bits = vec![0u64; (1 << 24) / 64];
        for i in 0..self.n4 {
            let o = 16 + i * V4_REC;
            let (Some(s), Some(e), Some(r)) = (u32_at(b, o), u32_at(b, o + 4), u32_at(b, o + 8))
            else {
                continue;
            };
            if !self.list(r).any(|raw| !quiet(raw & 0x7fff_ffff)) {
                continue;
            }
            for blk in (s >> 8) as usize..=(e >> 8) as usize {
                bits[blk / 64] |= 1 << (blk % 64);
            }
        }
        bits
    }

    pub(crate) fn lookup_v6(&self, ip: u128) -> IdList<'_> {
        let b = self.blob.as_ref();
        let base = 16 + self.n4 * V4_REC;
        let rec = |i: usize| -> Option<(u128, u128, u32)> {
            let o = base + i * V6_REC;
            Some((u128_at(b, o)?, u128_at(b, o + 16)?, u32_at(b, o + 32)?))
        };
        let (lo, hi) = (0usize, self.n6);
        self.covering(lo, hi, ip, rec)
    }
}

/// The covering ids of one IP range (bit 31 set for a CIDR).
pub(crate) struct IdList<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
    single: Option<u32>,
}

impl IdList<'_> {
    const EMPTY: IdList<'static> = IdList {
        b: &[],
        pos: 0,
        end: 0,
        single: None,
    };
}

impl Iterator for IdList<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if let Some(v) = self.single.take() {
            return Some(v);
        }
        if self.pos >= self.end {
            return None;
        }
        let v = u32_at(self.b, self.pos);
        self.pos += 4;
        if v.is_none() {
            self.pos = self.end;
        }
        v
    }
}

/// `ids.bin`: the indicators that carry an external id (ARCHITECTURE.md §3), sparse:
/// `TRWI`, n, then n × (u32 indicator id, u32 string id) sorted by indicator id, looked up
/// by binary search. Optional (snapshots written before it read as "no ids").
pub(crate) struct ExternalIds {
    blob: Blob,
    n: usize,
}

impl ExternalIds {
    pub(crate) fn write(pairs: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 8 * pairs.len());
        out.extend_from_slice(b"TRWI");
        out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
        for (id, sid) in pairs {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&sid.to_le_bytes());
        }
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<ExternalIds, SnapshotError> {
        let b = blob.as_ref();
        header(b, *b"TRWI", path)?;
        let n = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))? as usize;
        if b.len() as u64 != 8 + 8 * n as u64 {
            return Err(corrupt(path, "length does not match the count"));
        }
        let ids = ExternalIds { blob, n };
        for i in 1..n {
            if ids.id_at(i - 1) >= ids.id_at(i) {
                return Err(corrupt(path, "ids out of order"));
            }
        }
        Ok(ids)
    }

    fn id_at(&self, i: usize) -> Option<u32> {
        u32_at(self.blob.as_ref(), 8 + 8 * i)
    }

    /// The string id of indicator `id`'s external id, if it has one.
    pub(crate) fn get(&self, id: u32) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.id_at(mid)?.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return u32_at(self.blob.as_ref(), 12 + 8 * mid),
            }
        }
        None
    }
}

/// A table of byte strings (`strings.bin` `TRWS`, `sets.bin` `TRWT`): magic, n,
/// (n+1) × u32 offsets into the data that follows.
pub(crate) struct Table {
    blob: Blob,
    n: usize,
}

impl Table {
    pub(crate) fn write<'a>(
        magic: [u8; 4],
        items: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    ) -> Vec<u8> {
        let n = items.len();
        let mut out = Vec::new();
        out.extend_from_slice(&magic);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let mut off = 0u32;
        out.extend_from_slice(&off.to_le_bytes());
        for it in items.clone() {
            off += it.len() as u32;
            out.extend_from_slice(&off.to_le_bytes());
        }
        for it in items {
            out.extend_from_slice(it);
        }
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path, magic: [u8; 4]) -> Result<Table, SnapshotError> {
        let b = blob.as_ref();
        header(b, magic, path)?;
        let n = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))? as usize;
        let data = 8 + 4 * (n as u64 + 1);
        let last = u32_at(b, 8 + 4 * n).ok_or_else(|| corrupt(path, "truncated offsets"))?;
        if b.len() as u64 != data + u64::from(last) {
            return Err(corrupt(path, "length does not match offsets"));
        }
        Ok(Table { blob, n })
    }

    pub(crate) fn get(&self, i: u32) -> Option<&[u8]> {
        let i = i as usize;
        if i >= self.n {
            return None;
        }
        let b = self.blob.as_ref();
        let s = u32_at(b, 8 + 4 * i)? as usize;
        let e = u32_at(b, 8 + 4 * (i + 1))? as usize;
        let data = 8 + 4 * (self.n + 1);
        b.get(data.checked_add(s)?..data.checked_add(e)?)
    }
}

/// Rows of `N` u64 fields in blocks of [`BLOCK`]: `magic`, n, `extra` header u32s,
/// (nblocks+1) × u32 block offsets, data. Delta-coded rows are a varint bitmask of the fields
/// that differ from the previous row of its block (zeros before the first), then for each
/// such field the zigzag varint of the wrapping difference. Plain rows (for fields that
/// change on every row) are varint(field 0 << 1 | any other field non-zero), then the other
/// fields as varints only when one is non-zero (most indicators have no reference).
pub(crate) struct Rows<const N: usize> {
    blob: Blob,
    pub(crate) len: u32,
    extra: usize,
    nblocks: usize,
    delta: bool,
}

impl<const N: usize> Rows<N> {
    fn header_len(extra: usize, nblocks: usize) -> usize {
        8 + 4 * extra + (nblocks + 1) * 4
    }

    pub(crate) fn write(magic: [u8; 4], extra: &[u32], rows: &[[u64; N]], delta: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let mut offsets = Vec::with_capacity(rows.len() / BLOCK + 2);
        let mut prev = [0u64; N];
        for (i, f) in rows.iter().enumerate() {
            if i % BLOCK == 0 {
                offsets.push(data.len() as u32);
                prev = [0; N];
            }
            if !delta {
                let rest = f[1..].iter().any(|&v| v != 0);
                put_varint(&mut data, f[0] << 1 | u64::from(rest));
                if rest {
                    for v in &f[1..] {
                        put_varint(&mut data, *v);
                    }
                }
                continue;
            }
            let mut mask = 0u64;
            for j in 0..N {
                if f[j] != prev[j] {
                    mask |= 1 << j;
                }
            }
            put_varint(&mut data, mask);
            for j in 0..N {
                if mask >> j & 1 == 1 {
                    put_varint(&mut data, zigzag(f[j].wrapping_sub(prev[j]) as i64));
                }
            }
            prev = *f;
        }
        offsets.push(data.len() as u32);
        let mut out = Vec::with_capacity(Self::header_len(extra.len(), offsets.len()) + data.len());
        out.extend_from_slice(&magic);
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for x in extra.iter().chain(&offsets) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&data);
        out
    }

    pub(crate) fn parse(
        blob: Blob,
        path: &Path,
        magic: [u8; 4],
        extra: usize,
        delta: bool,
    ) -> Result<Self, SnapshotError> {
        let b = blob.as_ref();
        header(b, magic, path)?;
        let len = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))?;
        let nblocks = (len as usize).div_ceil(BLOCK);
        let hl = Self::header_len(extra, nblocks);
        let last = u32_at(b, hl - 4).ok_or_else(|| corrupt(path, "truncated block index"))?;
        if b.len() as u64 != hl as u64 + u64::from(last) {
            return Err(corrupt(path, "length does not match block index"));
        }
        Ok(Rows {
            blob,
            len,
            extra,
            nblocks,
            delta,
        })
    }

    /// Extra header word `i`.
    pub(crate) fn extra(&self, i: usize) -> Option<u32> {
        if i >= self.extra {
            return None;
        }
        u32_at(self.blob.as_ref(), 8 + 4 * i)
    }

    /// The fields of row `i`.
    pub(crate) fn row(&self, i: u32) -> Option<[u64; N]> {
        if i >= self.len {
            return None;
        }
        let b = self.blob.as_ref();
        let blk = i as usize / BLOCK;
        let hl = Self::header_len(self.extra, self.nblocks);
        let ob = 8 + 4 * self.extra;
        let s = u32_at(b, ob + 4 * blk)? as usize;
        let e = u32_at(b, ob + 4 * (blk + 1))? as usize;
        let data = b.get(hl.checked_add(s)?..hl.checked_add(e)?)?;
        let mut pos = 0;
        let mut f = [0u64; N];
        if !self.delta {
            for _ in 0..=(i as usize % BLOCK) {
                let v0 = get_varint(data, &mut pos)?;
                f = [0; N];
                f[0] = v0 >> 1;
                if v0 & 1 == 1 {
                    for v in f.iter_mut().skip(1) {
                        *v = get_varint(data, &mut pos)?;
                    }
                }
            }
            return Some(f);
        }
        for _ in 0..=(i as usize % BLOCK) {
            let mask = get_varint(data, &mut pos)?;
            for (j, v) in f.iter_mut().enumerate() {
                if mask >> j & 1 == 1 {
                    let d = unzigzag(get_varint(data, &mut pos)?);
                    *v = v.wrapping_add(d as u64);
                }
            }
        }
        Some(f)
    }
}

/// Strings per front-coded block of `strings.bin`.
const SBLOCK: usize = 16;

/// `strings.bin`: `TRWS`, n, (nblocks+1) × u32 block offsets, data; each string is
/// varint(bytes shared with the previous string of its block), varint(suffix length), suffix.
/// Interned references (`https://urlhaus.abuse.ch/url/123/`) share long prefixes.
pub(crate) struct Strings {
    blob: Blob,
    n: usize,
}

impl Strings {
    pub(crate) fn write(items: &[&str]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        let mut prev: &[u8] = &[];
        for (i, s) in items.iter().enumerate() {
            let s = s.as_bytes();
            if i % SBLOCK == 0 {
                offsets.push(data.len() as u32);
                prev = &[];
            }
            let shared = prev.iter().zip(s).take_while(|(a, b)| a == b).count();
            put_varint(&mut data, shared as u64);
            put_varint(&mut data, (s.len() - shared) as u64);
            data.extend_from_slice(&s[shared..]);
            prev = s;
        }
        offsets.push(data.len() as u32);
        let mut out = Vec::with_capacity(8 + 4 * offsets.len() + data.len());
        out.extend_from_slice(b"TRWS");
        out.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for o in &offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&data);
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<Strings, SnapshotError> {
        let b = blob.as_ref();
        header(b, *b"TRWS", path)?;
        let n = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))? as usize;
        let nblocks = n.div_ceil(SBLOCK);
        let hl = 8 + 4 * (nblocks + 1);
        let last = u32_at(b, hl - 4).ok_or_else(|| corrupt(path, "truncated offsets"))?;
        if b.len() as u64 != hl as u64 + u64::from(last) {
            return Err(corrupt(path, "length does not match offsets"));
        }
        Ok(Strings { blob, n })
    }

    /// String `i`.
    pub(crate) fn get(&self, i: u32) -> Option<Vec<u8>> {
        let i = i as usize;
        if i >= self.n {
            return None;
        }
        let b = self.blob.as_ref();
        let blk = i / SBLOCK;
        let hl = 8 + 4 * (self.n.div_ceil(SBLOCK) + 1);
        let s = u32_at(b, 8 + 4 * blk)? as usize;
        let e = u32_at(b, 8 + 4 * (blk + 1))? as usize;
        let data = b.get(hl.checked_add(s)?..hl.checked_add(e)?)?;
        let mut pos = 0;
        let mut cur: Vec<u8> = Vec::new();
        for _ in 0..=(i % SBLOCK) {
            let shared = usize::try_from(get_varint(data, &mut pos)?).ok()?;
            let len = usize::try_from(get_varint(data, &mut pos)?).ok()?;
            if shared > cur.len() {
                return None;
            }
            cur.truncate(shared);
            let end = pos.checked_add(len)?;
            cur.extend_from_slice(data.get(pos..end)?);
            pos = end;
        }
        Some(cur)
    }
}
