//! The keys and stats of a version 3 segment: front-coded blocks under a sorted array of
//! their first keys (the heads), so a lookup is a binary search over the heads and one block
//! decoded, and a sorted set of probes meets a segment in one forward pass ([`Cursor`]).
//!
//! Keys are cut into blocks of `per_block` (the last may hold fewer). A block's first key,
//! its head, is stored whole in the index only; the block holds that key's stats, then for
//! each further key the length of the prefix it shares with the key before (varint), the
//! length of the rest (varint), the rest, and its stats ([`super::segment`]'s encoding). A
//! block is stored as a method byte (0 raw, 1 deflate: used only when smaller), the raw
//! length (varint), the payload and a CRC-32 of its head and those, so a block (or its head)
//! damaged after its segment was checked whole is refused when it is read, not misread.
//! Opening checks the directory whole (ends in order, heads in order and within bounds, the
//! last ends where the areas end), so a damaged directory or key count is refused at open.
//!
//! Index: per block, the end of the block in the block area and the end of its head in the
//! head area (u64 little-endian each); then the heads end to end.
//!
//! Every read is bounds-checked: damaged bytes are an error, never a panic, and what a block
//! can make the reader allocate is bounded (a block's raw length, its keys' lengths).

use super::segment::{put_stats, read_stats, Stats};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use matcher::snapshot::{get_varint, put_varint};
use std::cell::RefCell;

/// Keys per block written: 64 keys of the benchmark log's URLs are ~1 KB raw.
pub const PER_BLOCK: usize = 64;
/// The most keys per block read (a damaged header cannot ask for more).
pub const MAX_PER_BLOCK: usize = 1024;
/// The longest key read back (the longest written is a URL of [`super::key::MAX_URL`]).
const MAX_KEY: usize = 4096;
/// The largest raw block read: [`MAX_PER_BLOCK`] keys and their stats, with room.
const MAX_RAW: usize = 16 << 20;
/// Bytes of one directory entry.
const DIR_ENTRY: usize = 16;

const RAW: u8 = 0;
const DEFLATE: u8 = 1;

/// The index and block area of `entries` (sorted by key, each key once), `per_block` keys a
/// block; an error names what is wrong with the entries.
pub fn encode<K: AsRef<[u8]>>(
    entries: &[(K, Stats)],
    start: i64,
    per_block: usize,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let per_block = per_block.clamp(1, MAX_PER_BLOCK);
    let mut dir = Vec::with_capacity(entries.len().div_ceil(per_block) * DIR_ENTRY);
    let mut heads = Vec::new();
    let mut area = Vec::new();
    let mut raw = Vec::new();
    let mut packed = Vec::new();
    let mut z = Compress::new(Compression::fast(), false);
    let mut prev: Option<&[u8]> = None;
    for chunk in entries.chunks(per_block) {
        raw.clear();
        for (i, (k, s)) in chunk.iter().enumerate() {
            let k = k.as_ref();
            if k.len() > MAX_KEY {
                return Err(format!("a key of {} bytes (at most {MAX_KEY})", k.len()));
            }
            if prev.is_some_and(|p| p >= k) {
                return Err("keys out of order or repeated".into());
            }
            if i == 0 {
                heads.extend_from_slice(k);
            } else {
                let p = prev.unwrap_or_default();
                let shared = p.iter().zip(k).take_while(|(a, b)| a == b).count();
                put_varint(&mut raw, shared as u64);
                put_varint(&mut raw, (k.len() - shared) as u64);
                raw.extend_from_slice(&k[shared..]);
            }
            put_stats(&mut raw, s, start);
            prev = Some(k);
        }
        if raw.len() > MAX_RAW {
            return Err(format!(
                "a block of {} bytes (at most {MAX_RAW})",
                raw.len()
            ));
        }
        packed.clear();
        packed.reserve(raw.len() + 64);
        z.reset();
        let deflated = matches!(
            z.compress_vec(&raw, &mut packed, FlushCompress::Finish),
            Ok(Status::StreamEnd)
        ) && packed.len() < raw.len();
        let at = area.len();
        area.push(if deflated { DEFLATE } else { RAW });
        put_varint(&mut area, raw.len() as u64);
        area.extend_from_slice(if deflated { &packed } else { &raw });
        let crc = block_crc(chunk[0].0.as_ref(), &area[at..]);
        area.extend_from_slice(&crc.to_le_bytes());
        dir.extend_from_slice(&(area.len() as u64).to_le_bytes());
        dir.extend_from_slice(&(heads.len() as u64).to_le_bytes());
    }
    dir.extend_from_slice(&heads);
    Ok((dir, area))
}

/// The checksum of a stored block: its head (kept in the index) and its bytes.
fn block_crc(head: &[u8], stored: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(stored);
    h.finalize()
}

/// A version 3 segment's index and block area, read in place.
#[derive(Clone)]
pub struct Blocks<S> {
    index: S,
    area: S,
    count: u64,
    per_block: usize,
    n: usize,
    start: i64,
}

/// One decoded block: its keys end to end, each key's end, each key's stats.
#[derive(Debug, Clone, Default)]
pub struct Block {
    keys: Vec<u8>,
    ends: Vec<usize>,
    stats: Vec<Stats>,
}

impl Block {
    /// How many keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th key and its stats.
    pub fn get(&self, i: usize) -> Option<(&[u8], &Stats)> {
        let end = *self.ends.get(i)?;
        let from = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        Some((self.keys.get(from..end)?, self.stats.get(i)?))
    }
}

thread_local! {
    /// A reader's inflater, reused (its state is tens of kilobytes).
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

impl<S: AsRef<[u8]>> Blocks<S> {
    /// The blocks of a segment of `count` keys, `per_block` a block, whose stats count from
    /// `start`; an error when the index cannot hold their directory.
    pub fn new(
        index: S,
        area: S,
        count: u64,
        per_block: usize,
        start: i64,
    ) -> Result<Blocks<S>, String> {
        if per_block == 0 || per_block > MAX_PER_BLOCK {
            return Err(format!("{per_block} keys a block"));
        }
        let n = usize::try_from(count.div_ceil(per_block as u64))
            .map_err(|_| "key count".to_string())?;
        if n.checked_mul(DIR_ENTRY)
            .is_none_or(|d| d > index.as_ref().len())
        {
            return Err("the index is shorter than its directory".into());
        }
        let blocks = Blocks {
            index,
            area,
            count,
            per_block,
            n,
            start,
        };
        blocks.check_directory()?;
        Ok(blocks)
    }

    /// The directory whole: block ends and head ends in order, each head at most [`MAX_KEY`]
    /// bytes and above the one before, and the last ends exactly where the block area and
    /// the heads end (so a damaged key count, which changes the number of blocks, is caught
    /// too). One pass over the directory, a few microseconds per thousand blocks.
    fn check_directory(&self) -> Result<(), String> {
        let heads_len = self.index.as_ref().len() - self.n * DIR_ENTRY;
        let (mut block_end, mut head_end) = (0, 0);
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.n {
            let (b, h) = self
                .entry(i)
                .ok_or_else(|| format!("block {i}: no directory entry"))?;
            if b < block_end || h < head_end || h - head_end > MAX_KEY {
                return Err(format!("block {i}: directory entry out of order"));
            }
            let head = self
                .head(i)
                .ok_or_else(|| format!("block {i}: head out of the index"))?;
            if prev.is_some_and(|p| p >= head) {
                return Err(format!("block {i}: heads out of order"));
            }
            (block_end, head_end, prev) = (b, h, Some(head));
        }
        if block_end != self.area.as_ref().len() || head_end != heads_len {
            return Err("the directory does not end where the blocks and heads end".into());
        }
        Ok(())
    }

    /// How many blocks.
    pub fn blocks(&self) -> usize {
        self.n
    }

    /// Block `i`'s directory entry: its end in the block area, its head's end.
    fn entry(&self, i: usize) -> Option<(usize, usize)> {
        let b = self
            .index
            .as_ref()
            .get(i * DIR_ENTRY..(i + 1) * DIR_ENTRY)?;
        let word = |at: usize| -> Option<usize> {
            let w: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
            usize::try_from(u64::from_le_bytes(w)).ok()
        };
        Some((word(0)?, word(8)?))
    }

    /// Block `i`'s first key (`None` for a block past the end or a damaged directory).
    pub fn head(&self, i: usize) -> Option<&[u8]> {
        let from = match i {
            0 => 0,
            _ => self.entry(i - 1)?.1,
        };
        let to = self.entry(i)?.1;
        let heads = self.index.as_ref().get(self.n * DIR_ENTRY..)?;
        heads.get(from..to).filter(|h| h.len() <= MAX_KEY)
    }

    /// The last block from `from` on whose head is at most `key` (`from` when none is): a
    /// galloping search, so a forward pass over nearby keys costs a comparison or two.
    pub fn find(&self, key: &[u8], from: usize) -> usize {
        let at_most = |j: usize| self.head(j).is_some_and(|h| h <= key);
        if from + 1 >= self.n || !at_most(from + 1) {
            return from;
        }
        // at_most(lo) holds; hi is past the end or fails.
        let (mut lo, mut step) = (from + 1, 1usize);
        let mut hi = lo.saturating_add(step);
        while hi < self.n && at_most(hi) {
            lo = hi;
            step = step.saturating_mul(2);
            hi = lo.saturating_add(step);
        }
        let mut hi = hi.min(self.n);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if at_most(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Decode block `i` into `out`.
    pub fn decode(&self, i: usize, out: &mut Block) -> Result<(), String> {
        out.keys.clear();
        out.ends.clear();
        out.stats.clear();
        let damaged = |what: &str| format!("block {i}: {what}");
        let (end, _) = self.entry(i).ok_or_else(|| damaged("no directory entry"))?;
        let from = match i {
            0 => 0,
            _ => {
                self.entry(i - 1)
                    .ok_or_else(|| damaged("no directory entry"))?
                    .0
            }
        };
        let stored = self
            .area
            .as_ref()
            .get(from..end)
            .filter(|b| b.len() >= 6)
            .ok_or_else(|| damaged("out of the block area"))?;
        let (body, crc) = stored.split_at(stored.len() - 4);
        let crc: [u8; 4] = crc.try_into().map_err(|_| damaged("no checksum"))?;
        let head = self.head(i).ok_or_else(|| damaged("no head"))?;
        if block_crc(head, body) != u32::from_le_bytes(crc) {
            return Err(damaged("checksum mismatch"));
        }
        let mut pos = 1;
        let raw_len = get_varint(body, &mut pos)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= MAX_RAW)
            .ok_or_else(|| damaged("raw length"))?;
        let payload = body.get(pos..).unwrap_or_default();
        let inflated;
        let raw: &[u8] = match body.first() {
            Some(&RAW) if payload.len() == raw_len => payload,
            Some(&DEFLATE) => {
                let mut buf = vec![0u8; raw_len];
                let done = INFLATE.with(|z| {
                    let mut z = z.borrow_mut();
                    z.reset(false);
                    let status = z.decompress(payload, &mut buf, FlushDecompress::Finish);
                    matches!(status, Ok(Status::StreamEnd)) && z.total_out() == raw_len as u64
                });
                if !done {
                    return Err(damaged("does not inflate to its length"));
                }
                inflated = buf;
                &inflated
            }
            _ => return Err(damaged("unknown method or length")),
        };
        let keys = usize::try_from(self.count.saturating_sub((i * self.per_block) as u64))
            .unwrap_or(usize::MAX)
            .min(self.per_block);
        out.keys.extend_from_slice(head);
        out.ends.push(head.len());
        let mut pos = 0;
        let stats =
            |pos: &mut usize| read_stats(raw, pos, self.start).ok_or_else(|| damaged("stats"));
        out.stats.push(stats(&mut pos)?);
        let mut prev = 0..head.len();
        for _ in 1..keys {
            let shared = get_varint(raw, &mut pos)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= prev.len())
                .ok_or_else(|| damaged("shared length"))?;
            let rest = get_varint(raw, &mut pos)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= MAX_KEY - shared)
                .ok_or_else(|| damaged("key length"))?;
            let suffix = pos
                .checked_add(rest)
                .and_then(|to| raw.get(pos..to))
                .ok_or_else(|| damaged("key cut short"))?;
            pos += rest;
            let at = out.keys.len();
            out.keys.extend_from_within(prev.start..prev.start + shared);
            out.keys.extend_from_slice(suffix);
            prev = at..out.keys.len();
            out.ends.push(out.keys.len());
            out.stats.push(stats(&mut pos)?);
        }
        if pos != raw.len() {
            return Err(damaged("bytes after its keys"));
        }
        Ok(())
    }
}

/// A position in a segment's keys that moves forward only: [`Cursor::seek`] to the first key
/// at or after a given one (each block decoded once per pass), then [`Cursor::current`] and
/// [`Cursor::advance`].
#[derive(Clone)]
pub struct Cursor<'a, S> {
    blocks: &'a Blocks<S>,
    /// The block decoded (`None`: none yet).
    at: Option<usize>,
    block: Block,
    pos: usize,
}

impl<'a, S: AsRef<[u8]>> Cursor<'a, S> {
    /// A cursor before the first key.
    pub fn new(blocks: &'a Blocks<S>) -> Cursor<'a, S> {
        Cursor {
            blocks,
            at: None,
            block: Block::default(),
            pos: 0,
        }
    }

    fn load(&mut self, i: usize) -> Result<(), String> {
        self.blocks.decode(i, &mut self.block)?;
        self.at = Some(i);
        self.pos = 0;
        Ok(())
    }

    /// Move to the first key at or after `key`, or after it if the cursor is already past it
    /// (it never moves back).
    pub fn seek(&mut self, key: &[u8]) -> Result<(), String> {
        if self.blocks.n == 0 {
            return Ok(());
        }
        match self.at {
            None => self.load(self.blocks.find(key, 0))?,
            Some(i) => {
                let j = self.blocks.find(key, i);
                if j != i {
                    self.load(j)?;
                }
            }
        }
        while self.block.get(self.pos).is_some_and(|(k, _)| k < key) {
            self.pos += 1;
        }
        if self.pos >= self.block.len() {
            self.next_block()?;
        }
        Ok(())
    }

    fn next_block(&mut self) -> Result<(), String> {
        match self.at {
            Some(i) if i + 1 < self.blocks.n => self.load(i + 1),
            _ => {
                self.pos = self.block.len();
                Ok(())
            }
        }
    }

    /// The key and stats at the cursor (`None` past the last key).
    pub fn current(&self) -> Option<(&[u8], &Stats)> {
        self.block.get(self.pos)
    }

    /// Move to the next key.
    pub fn advance(&mut self) -> Result<(), String> {
        self.pos += 1;
        if self.pos >= self.block.len() {
            self.next_block()?;
        }
        Ok(())
    }
}
