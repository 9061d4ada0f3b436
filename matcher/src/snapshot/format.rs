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

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
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

/// `domains.idx`: `TRWD`, n, then n × u32 rank→id (bit 31: exact-only), n × u32 id→rank.
pub(crate) struct DomainIdx {
    blob: Blob,
    pub(crate) len: u32,
}

impl DomainIdx {
    pub(crate) fn write(r2i: &[u32], i2r: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 8 * r2i.len());
        out.extend_from_slice(b"TRWD");
        out.extend_from_slice(&(r2i.len() as u32).to_le_bytes());
        for v in r2i.iter().chain(i2r) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<DomainIdx, SnapshotError> {
        let b = blob.as_ref();
        header(b, *b"TRWD", path)?;
        let len = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))?;
        if b.len() as u64 != 8 + 8 * u64::from(len) {
            return Err(corrupt(path, "length does not match count"));
        }
        Ok(DomainIdx { blob, len })
    }

    /// (domain index, exact_only) of the name of `rank`.
    pub(crate) fn id_of(&self, rank: u32) -> Option<(u32, bool)> {
        if rank >= self.len {
            return None;
        }
        let v = u32_at(self.blob.as_ref(), 8 + 4 * rank as usize)?;
        Some((v & 0x7fff_ffff, v & 0x8000_0000 != 0))
    }

    /// Rank of the domain with index `i` (id minus the first domain id).
    pub(crate) fn rank_of(&self, i: u32) -> Option<u32> {
        if i >= self.len {
            return None;
        }
        u32_at(self.blob.as_ref(), 8 + 4 * (self.len as usize + i as usize))
    }
}

/// `ip.bin`: `TRWI`, n4, n6, nlist; n4 × (start u32, end u32, off u32, len u32);
/// n6 × (start u128, end u128, off u32, len u32); nlist × u32 (id, bit 31: CIDR).
pub(crate) struct IpTables {
    blob: Blob,
    n4: usize,
    n6: usize,
    nlist: usize,
}

const V4_REC: usize = 16;
const V6_REC: usize = 40;

impl IpTables {
    pub(crate) fn write(
        v4: &[(u32, u32, u32, u32)],
        v6: &[(u128, u128, u32, u32)],
        lists: &[u32],
    ) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + v4.len() * V4_REC + v6.len() * V6_REC + lists.len() * 4);
        out.extend_from_slice(b"TRWI");
        for n in [v4.len(), v6.len(), lists.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for &(s, e, o, l) in v4 {
            for x in [s, e, o, l] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        for &(s, e, o, l) in v6 {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
            out.extend_from_slice(&o.to_le_bytes());
            out.extend_from_slice(&l.to_le_bytes());
        }
        for x in lists {
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
        Ok(IpTables {
            blob,
            n4,
            n6,
            nlist,
        })
    }

    fn list(&self, off: u32, len: u32) -> IdList<'_> {
        let base = 16 + self.n4 * V4_REC + self.n6 * V6_REC;
        let (off, len) = (off as usize, len as usize);
        let ok = off.checked_add(len).is_some_and(|e| e <= self.nlist);
        let (pos, end) = if ok {
            (base + 4 * off, base + 4 * (off + len))
        } else {
            (0, 0)
        };
        IdList {
            b: self.blob.as_ref(),
            pos,
            end,
        }
    }

    pub(crate) fn lookup_v4(&self, ip: u32) -> IdList<'_> {
        let b = self.blob.as_ref();
        let rec = |i: usize| -> Option<(u32, u32, u32, u32)> {
            let o = 16 + i * V4_REC;
            Some((
                u32_at(b, o)?,
                u32_at(b, o + 4)?,
                u32_at(b, o + 8)?,
                u32_at(b, o + 12)?,
            ))
        };
        // Last range with start <= ip.
        let (mut lo, mut hi) = (0usize, self.n4);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match rec(mid) {
                Some((s, ..)) if s <= ip => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(rec) {
            Some((_, e, off, len)) if ip <= e => self.list(off, len),
            _ => IdList::EMPTY,
        }
    }

    pub(crate) fn lookup_v6(&self, ip: u128) -> IdList<'_> {
        let b = self.blob.as_ref();
        let base = 16 + self.n4 * V4_REC;
        let rec = |i: usize| -> Option<(u128, u128, u32, u32)> {
            let o = base + i * V6_REC;
            Some((
                u128_at(b, o)?,
                u128_at(b, o + 16)?,
                u32_at(b, o + 32)?,
                u32_at(b, o + 36)?,
            ))
        };
        let (mut lo, mut hi) = (0usize, self.n6);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match rec(mid) {
                Some((s, ..)) if s <= ip => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(rec) {
            Some((_, e, off, len)) if ip <= e => self.list(off, len),
            _ => IdList::EMPTY,
        }
    }
}

/// The covering ids of one IP range (bit 31 set for a CIDR).
pub(crate) struct IdList<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
}

impl IdList<'_> {
    const EMPTY: IdList<'static> = IdList {
        b: &[],
        pos: 0,
        end: 0,
    };
}

impl Iterator for IdList<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
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

/// Number of metadata fields per record (see `build::fields`).
pub(crate) const NFIELDS: usize = 12;

/// `records.bin`: `TRWR`, n, 13 × u32 counts per type, nblocks+1 × u32 block offsets, data.
/// A block holds up to [`BLOCK`] records; each record is a varint bitmask of the fields that
/// differ from the previous record (zeros before the first), then for each such field the
/// zigzag varint of the wrapping difference.
pub(crate) struct Records {
    blob: Blob,
    pub(crate) len: u32,
    pub(crate) type_counts: [u32; 13],
    nblocks: usize,
}

impl Records {
    pub(crate) fn header_len(nblocks: usize) -> usize {
        8 + 13 * 4 + (nblocks + 1) * 4
    }

    pub(crate) fn parse(blob: Blob, path: &Path) -> Result<Records, SnapshotError> {
        let b = blob.as_ref();
        header(b, *b"TRWR", path)?;
        let len = u32_at(b, 4).ok_or_else(|| corrupt(path, "truncated header"))?;
        let mut type_counts = [0u32; 13];
        for (i, c) in type_counts.iter_mut().enumerate() {
            *c = u32_at(b, 8 + 4 * i).ok_or_else(|| corrupt(path, "truncated header"))?;
        }
        let nblocks = (len as usize).div_ceil(BLOCK);
        let hl = Records::header_len(nblocks);
        let last = u32_at(b, hl - 4).ok_or_else(|| corrupt(path, "truncated block index"))?;
        if b.len() as u64 != hl as u64 + u64::from(last) {
            return Err(corrupt(path, "length does not match block index"));
        }
        Ok(Records {
            blob,
            len,
            type_counts,
            nblocks,
        })
    }

    /// The raw field values of record `id`.
    pub(crate) fn fields(&self, id: u32) -> Option<[u64; NFIELDS]> {
        if id >= self.len {
            return None;
        }
        let b = self.blob.as_ref();
        let blk = id as usize / BLOCK;
        let hl = Records::header_len(self.nblocks);
        let s = u32_at(b, 8 + 13 * 4 + 4 * blk)? as usize;
        let e = u32_at(b, 8 + 13 * 4 + 4 * (blk + 1))? as usize;
        let data = b.get(hl.checked_add(s)?..hl.checked_add(e)?)?;
        let mut pos = 0;
        let mut f = [0u64; NFIELDS];
        for _ in 0..=(id as usize % BLOCK) {
            let mask = get_varint(data, &mut pos)?;
            for (i, v) in f.iter_mut().enumerate() {
                if mask >> i & 1 == 1 {
                    let d = unzigzag(get_varint(data, &mut pos)?);
                    *v = v.wrapping_add(d as u64);
                }
            }
        }
        Some(f)
    }
}
