//! One segment file: the observed values of one partition (an hour or a day) and their
//! statistics, immutable once written.
//!
//! Layout (integers little-endian): `TRRS`, version (u8 = 3; 1 and 2 are still read), span
//! (u8: 0 hour, 1 day), keys per block (u16; 0 before version 3), partition start (i64, Unix
//! seconds), sequence number (u64), key count (u64), index length (u64), data length (u64);
//! the index; the data; a CRC-32 of everything before it.
//!
//! Version 3: the index is the heads of front-coded blocks of keys and stats, the data the
//! blocks ([`super::blocks`]): ~13 B a value on the benchmark log, where an FST of the same
//! keys alone took 16 (random URL tails share no FST nodes). Versions 1-2: the index is an FST
//! (key → offset of its stats in the data).
//!
//! Stats (versions 2 and 3, [`put_stats`]): a tag byte — bits 0-3 the field's index in
//! [`ingest::MATCH_FIELDS`] when the value was seen in one field, bit 4 set when in several
//! (their set follows), bit 5 set when seen more than once (count and last − first follow),
//! bits 6-7 the client count (3: a varint count follows) — then as varints first seen −
//! start, [the field set], [count, last − first], [client count], then each client as a
//! family byte (4 or 6) and its address bytes. A value seen once in one field costs the tag
//! and its time. Version 1 wrote every number: first − start, last − first, count, field set,
//! client count.

use super::blocks::{self, Blocks, Cursor, PER_BLOCK};
use super::verified::FileId;
use super::{RetroError, DAY, HOUR};
use fst::{IntoStreamer, Streamer};
use matcher::snapshot::{get_varint, put_varint};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"TRRS";
const HEADER: usize = 48;
/// The version written.
const VERSION: u8 = 3;

/// What is known of one observed value in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// First time seen (Unix seconds).
    pub first: i64,
    /// Last time seen (Unix seconds).
    pub last: i64,
    /// How many times.
    pub count: u64,
    /// The fields it was seen in ([`super::key::field_bit`]).
    pub fields: u32,
    /// A sample of the clients (`source.ip`) that produced it, at most the configured number.
    pub clients: Vec<IpAddr>,
}

impl Stats {
    /// One sighting at `t` in `field_bits`, by `client`.
    pub fn one(t: i64, fields: u32, client: Option<IpAddr>, cap: usize) -> Stats {
        Stats {
            first: t,
            last: t,
            count: 1,
            fields,
            clients: client.filter(|_| cap > 0).into_iter().collect(),
        }
    }

    /// One more sighting at `t` (what merging [`Stats::one`] does, without making one).
    pub fn add(&mut self, t: i64, fields: u32, client: Option<IpAddr>, cap: usize) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        self.count = self.count.saturating_add(1);
        self.fields |= fields;
        if let Some(c) = client {
            if self.clients.len() < cap && !self.clients.contains(&c) {
                self.clients.push(c);
            }
        }
    }

    /// Fold `other` in, keeping at most `cap` distinct clients.
    pub fn merge(&mut self, other: &Stats, cap: usize) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.count = self.count.saturating_add(other.count);
        self.fields |= other.fields;
        for c in &other.clients {
            if self.clients.len() >= cap {
                break;
            }
            if !self.clients.contains(c) {
                self.clients.push(*c);
            }
        }
    }
}

/// Append `s` in the stats encoding of versions 2 and 3 (times from `start`): a tag byte —
/// bits 0-3 the field when there is one, bit 4 a field set follows, bit 5 count and last −
/// first follow, bits 6-7 the client count (3: a varint count follows) — then the varints
/// and the clients.
pub(super) fn put_stats(data: &mut Vec<u8>, s: &Stats, start: i64) {
    let one_field = s.fields.count_ones() == 1 && s.fields.trailing_zeros() < 16;
    let many = s.count > 1;
    let mut tag = if one_field {
        s.fields.trailing_zeros() as u8
    } else {
        0x10
    };
    if many {
        tag |= 0x20;
    }
    tag |= (s.clients.len().min(3) as u8) << 6;
    data.push(tag);
    put_varint(data, u64::try_from(s.first - start).unwrap_or(0));
    if !one_field {
        put_varint(data, u64::from(s.fields));
    }
    if many {
        put_varint(data, s.count);
        put_varint(data, u64::try_from(s.last - s.first).unwrap_or(0));
    }
    if s.clients.len() >= 3 {
        put_varint(data, s.clients.len() as u64);
    }
    for c in &s.clients {
        match c {
            IpAddr::V4(a) => {
                data.push(4);
                data.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                data.push(6);
                data.extend_from_slice(&a.octets());
            }
        }
    }
}

/// Read stats of [`put_stats`] at `*pos`, advancing it; `None` for bytes that are not.
pub(super) fn read_stats(b: &[u8], pos: &mut usize, start: i64) -> Option<Stats> {
    let tag = *b.get(*pos)?;
    *pos += 1;
    let first = start.checked_add(i64::try_from(get_varint(b, pos)?).ok()?)?;
    let fields = if tag & 0x10 == 0 {
        1 << (tag & 0x0f)
    } else {
        u32::try_from(get_varint(b, pos)?).ok()?
    };
    let (count, last) = if tag & 0x20 == 0 {
        (1, first)
    } else {
        let count = get_varint(b, pos)?;
        (
            count,
            first.checked_add(i64::try_from(get_varint(b, pos)?).ok()?)?,
        )
    };
    let n = match tag >> 6 {
        3 => get_varint(b, pos)?,
        k => u64::from(k),
    };
    let clients = read_clients(b, pos, n)?;
    Some(Stats {
        first,
        last,
        count,
        fields,
        clients,
    })
}

/// `n` clients (at most [`super::config::MAX_CLIENTS`]), each a family byte and its address.
fn read_clients(b: &[u8], pos: &mut usize, n: u64) -> Option<Vec<IpAddr>> {
    let mut clients = Vec::new();
    for _ in 0..n.min(super::config::MAX_CLIENTS as u64) {
        let family = *b.get(*pos)?;
        *pos += 1;
        let ip = match family {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(b.get(*pos..*pos + 4)?).ok()?,
            )),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(b.get(*pos..*pos + 16)?).ok()?,
            )),
            _ => return None,
        };
        *pos += if family == 4 { 4 } else { 16 };
        clients.push(ip);
    }
    Some(clients)
}

/// A partition's length: an hour (as recorded) or a day (compacted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Span {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Span {
    /// Its length in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Span::Hour => HOUR,
            Span::Day => DAY,
        }
    }

    fn letter(self) -> char {
        match self {
            Span::Hour => 'h',
            Span::Day => 'd',
        }
    }
}

/// A segment file's bytes: mapped (segments are immutable: written to a temporary file and
/// renamed, never changed in place, as the snapshot's files) or, for bytes handed over,
/// owned.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// One section of a segment's bytes (its index, its data), shareable.
#[derive(Clone)]
struct Section {
    bytes: Arc<Bytes>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for Section {
    fn as_ref(&self) -> &[u8] {
        let all: &[u8] = match &*self.bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        };
        all.get(self.range.clone()).unwrap_or_default()
    }
}

/// How much of a segment is checked when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The CRC-32 of the whole file: what the recorder does (so every byte is read once).
    Full,
    /// The header and the section lengths (and for versions 1-2 the FST's own header and
    /// footer), touching only the pages a lookup needs: for a segment already checked whole
    /// ([`super::verified`]), so that `trawl hunt` over a large index reads only what it
    /// looks up. A version 3 segment damaged since is refused block by block as it is read
    /// (each block has its own CRC-32, every read is bounds-checked): an error, never a
    /// panic. For versions 1-2 the FST reader can panic (every transition leads to a lower
    /// address, so a walk cannot loop, and is at most as deep as the FST is long):
    /// [`super::hunt::hunt`] catches that and skips the segment.
    Structure,
}

/// What a segment holds its keys in.
#[derive(Clone)]
enum Body {
    /// Versions 1 and 2: an FST (key → offset of its stats in the data), the stats.
    Fst {
        map: fst::Map<Section>,
        data: Section,
    },
    /// Version 3: front-coded blocks under their heads ([`blocks`]).
    Blocks(Blocks<Section>),
}

/// An open segment (mapped and checked). A clone shares the mapping.
#[derive(Clone)]
pub struct Segment {
    /// Its partition's length.
    pub span: Span,
    /// Its partition's start (Unix seconds).
    pub start: i64,
    /// Its sequence number: a compacted day holds every hour segment of the day numbered
    /// up to its own.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The file's identity when it was opened (`None` for bytes handed over).
    pub file_id: Option<FileId>,
    version: u8,
    count: u64,
    all: Arc<Bytes>,
    body: Body,
}

/// The file name of a segment: `h<start>-<seq>.seg` or `d<start>-<seq>.seg`.
pub fn file_name(span: Span, start: i64, seq: u64) -> String {
    format!("{}{start}-{seq}.seg", span.letter())
}

/// Write a segment of `entries` (sorted by key, each key once) to `dir`, crash-safely: a temporary file,
/// fsynced, renamed, the directory fsynced. Returns its path and size.
pub fn write<K: AsRef<[u8]>>(
    dir: &Path,
    span: Span,
    start: i64,
    seq: u64,
    entries: &[(K, Stats)],
) -> Result<(PathBuf, u64), RetroError> {
    write_blocks(dir, span, start, seq, entries, PER_BLOCK)
}

/// [`write`] with `per_block` keys a block (at most [`blocks::MAX_PER_BLOCK`]).
fn write_blocks<K: AsRef<[u8]>>(
    dir: &Path,
    span: Span,
    start: i64,
    seq: u64,
    entries: &[(K, Stats)],
    per_block: usize,
) -> Result<(PathBuf, u64), RetroError> {
    let per_block = per_block.clamp(1, blocks::MAX_PER_BLOCK);
    let damaged = |reason: String| RetroError::Damaged {
        path: dir.display().to_string(),
        reason: format!("building the segment: {reason}"),
    };
    let (index, area) = blocks::encode(entries, start, per_block).map_err(damaged)?;
    let mut out = Vec::with_capacity(HEADER + index.len() + area.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(u8::from(span == Span::Day));
    out.extend_from_slice(&(per_block as u16).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&(index.len() as u64).to_le_bytes());
    out.extend_from_slice(&(area.len() as u64).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&area);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());

    let name = file_name(span, start, seq);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(RetroError::io(&path)(e));
    }
    Ok((path, out.len() as u64))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(from) = b.get(at..at + 8) {
        w.copy_from_slice(from);
    }
    u64::from_le_bytes(w)
}

impl Segment {
    /// Map and check a segment file (the whole checksum): a short, mis-sized or mis-summed
    /// file, or one whose index does not parse, is [`RetroError::Damaged`].
    pub fn open(path: &Path) -> Result<Segment, RetroError> {
        Segment::open_checked(path, Check::Full)
    }

    /// Map a segment file, checking as much as `check` says.
    pub fn open_checked(path: &Path, check: Check) -> Result<Segment, RetroError> {
        let file = std::fs::File::open(path).map_err(RetroError::io(path))?;
        let meta = file.metadata().map_err(RetroError::io(path))?;
        let len = meta.len();
        if len < (HEADER + 4) as u64 {
            return Err(RetroError::Damaged {
                path: path.display().to_string(),
                reason: "not a segment (no TRRS header)".into(),
            });
        }
        // SAFETY: segments are immutable once renamed into place (written whole to a
        // temporary file first) and only ever replaced by rename or deleted, both of which
        // leave this mapping's pages intact; the same stance as the snapshot's mapped files.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(RetroError::io(path))?;
        let mut seg = Segment::from_bytes(Arc::new(Bytes::Mapped(map)), path, check)?;
        seg.file_id = Some(FileId::of(&meta, seg.stored_crc()));
        Ok(seg)
    }

    /// [`Segment::open_checked`] of bytes already read.
    pub fn parse_checked(bytes: &[u8], path: &Path, check: Check) -> Result<Segment, RetroError> {
        Segment::from_bytes(Arc::new(Bytes::Owned(bytes.to_vec())), path, check)
    }

    fn all_bytes(&self) -> &[u8] {
        match &*self.all {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// The CRC-32 stored at the segment's end (what [`Check::Full`] compares).
    pub fn stored_crc(&self) -> u32 {
        let b = self.all_bytes();
        let mut crc = [0u8; 4];
        if let Some(end) = b.get(b.len().saturating_sub(4)..) {
            crc.copy_from_slice(end);
        }
        u32::from_le_bytes(crc)
    }

    /// Check every byte against the stored CRC-32 (what [`Check::Full`] does at open, for
    /// a segment opened with [`Check::Structure`]).
    pub fn verify(&self) -> Result<(), RetroError> {
        let b = self.all_bytes();
        let body = b.get(..b.len().saturating_sub(4)).unwrap_or_default();
        if crc32fast::hash(body) == self.stored_crc() {
            Ok(())
        } else {
            Err(self.damaged("checksum mismatch".into()))
        }
    }

    /// [`Segment::open`] of bytes already read (`path` names them in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Segment, RetroError> {
        Segment::from_bytes(Arc::new(Bytes::Owned(bytes.to_vec())), path, Check::Full)
    }

    fn damaged(&self, reason: String) -> RetroError {
        RetroError::Damaged {
            path: self.path.display().to_string(),
            reason,
        }
    }

    fn from_bytes(all: Arc<Bytes>, path: &Path, check: Check) -> Result<Segment, RetroError> {
        let bytes: &[u8] = match &*all {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        };
        let damaged = |reason: &str| RetroError::Damaged {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER + 4 || bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(damaged("not a segment (no TRRS header)"));
        }
        let version = bytes[4];
        if !(1..=VERSION).contains(&version) {
            return Err(damaged(&format!("unknown segment version {version}")));
        }
        let body = bytes.len() - 4;
        if check == Check::Full {
            let mut crc = [0u8; 4];
            crc.copy_from_slice(&bytes[body..]);
            if crc32fast::hash(&bytes[..body]) != u32::from_le_bytes(crc) {
                return Err(damaged("checksum mismatch"));
            }
        }
        let span = match bytes[5] {
            0 => Span::Hour,
            1 => Span::Day,
            _ => return Err(damaged("unknown partition span")),
        };
        let start = u64_at(bytes, 8) as i64;
        let seq = u64_at(bytes, 16);
        let count = u64_at(bytes, 24);
        let index_len = usize::try_from(u64_at(bytes, 32)).map_err(|_| damaged("index length"))?;
        let data_len = usize::try_from(u64_at(bytes, 40)).map_err(|_| damaged("data length"))?;
        if HEADER
            .checked_add(index_len)
            .and_then(|n| n.checked_add(data_len))
            != Some(body)
        {
            return Err(damaged("section lengths do not add up to the file's"));
        }
        let size = bytes.len() as u64;
        let section = |range| Section {
            bytes: all.clone(),
            range,
        };
        let (index, data) = (
            section(HEADER..HEADER + index_len),
            section(HEADER + index_len..body),
        );
        let body = if version >= 3 {
            let per_block = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
            Body::Blocks(
                Blocks::new(index, data, count, per_block, start)
                    .map_err(|e| damaged(&format!("index: {e}")))?,
            )
        } else {
            let map = fst::Map::new(index).map_err(|e| damaged(&format!("FST: {e}")))?;
            Body::Fst { map, data }
        };
        let count = match &body {
            Body::Fst { map, .. } => map.len() as u64,
            Body::Blocks(_) => count,
        };
        Ok(Segment {
            version,
            span,
            start,
            seq,
            path: path.to_path_buf(),
            bytes: size,
            file_id: None,
            count,
            all,
            body,
        })
    }

    /// The partition's end (exclusive, Unix seconds).
    pub fn end(&self) -> i64 {
        self.start.saturating_add(self.span.secs())
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Its format version (3 is written; 1 and 2 are still read).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether its keys are in blocks (version 3: read by [`Segment::under_prefixes`]'s
    /// merge, no FST).
    pub fn is_blocked(&self) -> bool {
        matches!(self.body, Body::Blocks(_))
    }

    /// Version 1-2 stats at `at` in the data.
    fn stats_at(&self, data: &Section, at: u64) -> Option<Stats> {
        let b = data.as_ref();
        let mut pos = usize::try_from(at).ok()?;
        if self.version != 1 {
            return read_stats(b, &mut pos, self.start);
        }
        let first = self
            .start
            .checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
        let last = first.checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
        let count = get_varint(b, &mut pos)?;
        let fields = u32::try_from(get_varint(b, &mut pos)?).ok()?;
        let n = get_varint(b, &mut pos)?;
        Some(Stats {
            first,
            last,
            count,
            fields,
            clients: read_clients(b, &mut pos, n)?,
        })
    }

    /// Every key and its stats within `lo..=hi` (`hi = None`: to the end), while `f` says
    /// the key still qualifies (a prefix scan stops at the first key past the prefix). A
    /// version 3 block that does not decode is [`RetroError::Damaged`].
    pub fn range(
        &self,
        lo: &[u8],
        hi: Option<&[u8]>,
        mut f: impl FnMut(&[u8], Stats) -> bool,
    ) -> Result<(), RetroError> {
        match &self.body {
            Body::Fst { map, data } => {
                let mut r = map.range().ge(lo);
                if let Some(hi) = hi {
                    r = r.le(hi);
                }
                let mut stream = r.into_stream();
                while let Some((k, at)) = stream.next() {
                    let Some(s) = self.stats_at(data, at) else {
                        continue;
                    };
                    if !f(k, s) {
                        break;
                    }
                }
                Ok(())
            }
            Body::Blocks(b) => {
                let mut c = Cursor::new(b);
                c.seek(lo).map_err(|e| self.damaged(e))?;
                while let Some((k, s)) = c.current() {
                    if hi.is_some_and(|hi| k > hi) || !f(k, s.clone()) {
                        break;
                    }
                    c.advance().map_err(|e| self.damaged(e))?;
                }
                Ok(())
            }
        }
    }

    /// Version 1-2: every key `aut` accepts and its stats, in key order (one pass over the
    /// FST's paths the automaton allows: [`super::hunt`] intersects a set of indicator probes
    /// with it). A version 3 segment has no FST: nothing ([`Segment::under_prefixes`]).
    pub fn search<A: fst::Automaton>(&self, aut: A, mut f: impl FnMut(&[u8], Stats)) {
        if let Body::Fst { map, data } = &self.body {
            let mut stream = map.search(aut).into_stream();
            while let Some((k, at)) = stream.next() {
                if let Some(s) = self.stats_at(data, at) {
                    f(k, s);
                }
            }
        }
    }

    /// Version 3: for each of `prefixes` (sorted), every key starting with it, as
    /// `f(prefix's index, key, stats)`, in one forward pass over the blocks (each block
    /// decoded at most once, a block no prefix reaches not at all, nested prefixes each
    /// given their keys). For versions 1-2: each prefix looked up alone (use
    /// [`Segment::search`] there).
    pub fn under_prefixes<P: AsRef<[u8]>>(
        &self,
        prefixes: &[P],
        mut f: impl FnMut(usize, &[u8], &Stats),
    ) -> Result<(), RetroError> {
        let Body::Blocks(b) = &self.body else {
            for (i, p) in prefixes.iter().enumerate() {
                let p = p.as_ref();
                self.range(p, None, |k, s| {
                    let inside = k.starts_with(p);
                    if inside {
                        f(i, k, &s);
                    }
                    inside
                })?;
            }
            return Ok(());
        };
        let mut c = Cursor::new(b);
        for (i, p) in prefixes.iter().enumerate() {
            let p = p.as_ref();
            c.seek(p).map_err(|e| self.damaged(e))?;
            if !c.current().is_some_and(|(k, _)| k.starts_with(p)) {
                continue;
            }
            // Keys under a prefix may also be under the next ones (nested prefixes): a
            // second cursor reads them, the first stays at the prefix's first key.
            let mut under = c.clone();
            while let Some((k, s)) = under.current() {
                if !k.starts_with(p) {
                    break;
                }
                f(i, k, s);
                under.advance().map_err(|e| self.damaged(e))?;
            }
        }
        Ok(())
    }

    /// The stats of exactly `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Stats>, RetroError> {
        match &self.body {
            Body::Fst { map, data } => Ok(map.get(key).and_then(|at| self.stats_at(data, at))),
            Body::Blocks(b) => {
                let mut c = Cursor::new(b);
                c.seek(key).map_err(|e| self.damaged(e))?;
                Ok(c.current()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, s)| s.clone()))
            }
        }
    }

    /// Every key and its stats, in key order.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Stats)>, RetroError> {
        // At most one key per byte of the file: a damaged key count cannot ask for more.
        let mut out = Vec::with_capacity(self.len().min(self.all_bytes().len()));
        self.range(&[], None, |k, s| {
            out.push((k.to_vec(), s));
            true
        })?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn sample() -> Vec<(Vec<u8>, Stats)> {
        let mut m = std::collections::BTreeMap::new();
        m.insert(b"dcom.example".to_vec(), Stats::one(7200 + 5, 1, None, 0));
        let mut s = Stats::one(7200 + 9, 3, Some("10.0.0.1".parse().unwrap()), 2);
        s.merge(
            &Stats::one(7200 + 99, 4, Some("::1".parse().unwrap()), 2),
            2,
        );
        m.insert(b"dcom.example.www".to_vec(), s);
        m.into_iter().collect()
    }

    #[test]
    fn round_trip_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let (path, len) = write(dir.path(), Span::Hour, 7200, 3, &sample()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        let seg = Segment::open(&path).unwrap();
        assert_eq!(
            (seg.span, seg.start, seg.seq, seg.len()),
            (Span::Hour, 7200, 3, 2)
        );
        let www = seg.get(b"dcom.example.www").unwrap().unwrap();
        assert_eq!(
            (www.first, www.last, www.count, www.fields),
            (7209, 7299, 2, 7)
        );
        assert_eq!(www.clients.len(), 2);
        let mut seen = Vec::new();
        seg.range(b"dcom.example", None, |k, _| {
            seen.push(k.to_vec());
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seg.entries().unwrap(), sample());
        assert_eq!(seg.version(), 3);
        assert!(!dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), Span::Day, 0, 1, &sample()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.seg");
        for cut in 0..good.len() {
            std::fs::write(&bad, &good[..cut]).unwrap();
            assert!(Segment::open(&bad).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x40;
            std::fs::write(&bad, &b).unwrap();
            assert!(Segment::open(&bad).is_err(), "flipped byte {i}");
        }
    }

    #[test]
    fn every_stats_shape_round_trips_and_version_1_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        let mut four = Stats::one(100, 1 << 15, Some(ip(1)), 8);
        for i in 2..5 {
            four.merge(&Stats::one(100 + i64::from(i), 1 << 15, Some(ip(i)), 8), 8);
        }
        let entries = vec![
            (b"a".to_vec(), Stats::one(86_399, 0, None, 0)),
            (b"b".to_vec(), four),
            (
                b"c".to_vec(),
                Stats::one(5, 1 << 3, Some("::1".parse().unwrap()), 1),
            ),
        ];
        let (path, _) = write(dir.path(), Span::Day, 0, 1, &entries).unwrap();
        assert_eq!(Segment::open(&path).unwrap().entries().unwrap(), entries);

        // A version 1 segment, as the first release wrote it: every number a varint.
        let mut data = Vec::new();
        let mut b = fst::MapBuilder::memory();
        b.insert(b"dcom.example", 0).unwrap();
        for v in [7u64, 3, 2, 1 << 4, 1] {
            put_varint(&mut data, v);
        }
        data.push(4);
        data.extend_from_slice(&[192, 0, 2, 1]);
        let f = b.into_inner().unwrap();
        let mut out = b"TRRS\x01\x01\0\0".to_vec();
        for n in [3600i64 as u64, 9, 1, f.len() as u64, data.len() as u64] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&f);
        out.extend_from_slice(&data);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let v1 = Segment::parse(&out, Path::new("v1.seg")).unwrap();
        let s = v1.get(b"dcom.example").unwrap().unwrap();
        assert_eq!(
            (s.first, s.last, s.count, s.fields, s.clients),
            (3607, 3610, 2, 1 << 4, vec![IpAddr::from([192, 0, 2, 1])])
        );
    }

    /// A version 2 segment as the second release wrote it: an FST of key → stats offset.
    pub(crate) fn v2_bytes(
        span: Span,
        start: i64,
        seq: u64,
        entries: &[(Vec<u8>, Stats)],
    ) -> Vec<u8> {
        let mut data = Vec::new();
        let mut b = fst::MapBuilder::memory();
        for (k, s) in entries {
            b.insert(k, data.len() as u64).unwrap();
            put_stats(&mut data, s, start);
        }
        let f = b.into_inner().unwrap();
        let mut out = b"TRRS\x02".to_vec();
        out.extend_from_slice(&[u8::from(span == Span::Day), 0, 0]);
        for n in [
            start as u64,
            seq,
            entries.len() as u64,
            f.len() as u64,
            data.len() as u64,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&f);
        out.extend_from_slice(&data);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn version_2_is_still_read() {
        let v2 = Segment::parse(
            &v2_bytes(Span::Hour, 7200, 3, &sample()),
            Path::new("v2.seg"),
        )
        .unwrap();
        assert_eq!((v2.version(), v2.is_blocked(), v2.len()), (2, false, 2));
        assert_eq!(v2.entries().unwrap(), sample());
        let mut seen = Vec::new();
        v2.under_prefixes(&[&b"dcom.example"[..], b"dcom.example.w"], |i, k, _| {
            seen.push((i, k.to_vec()))
        })
        .unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    /// Keys over a small alphabet (so they share prefixes and nest), each with stats.
    fn keyed(keys: std::collections::BTreeSet<Vec<u8>>) -> Vec<(Vec<u8>, Stats)> {
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| {
                let mut s = Stats::one(3600 + i as i64 % 3000, 1 << (i % 20), None, 0);
                if i % 3 == 0 {
                    s.merge(
                        &Stats::one(9000, 1, Some(IpAddr::from([10, 0, 0, i as u8])), 4),
                        4,
                    );
                }
                (k, s)
            })
            .collect()
    }

    fn key_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(vec![b'a', b'b', b'.', 0, 0xff]),
            0..12,
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Lookups, ranges and the prefix merge of a version 3 segment equal a sorted Vec's.
        #[test]
        fn blocked_queries_equal_a_sorted_vec(
            keys in proptest::collection::btree_set(key_strategy(), 0..300),
            probes in proptest::collection::vec(key_strategy(), 1..40),
            per_block in 1usize..20,
        ) {
            let entries = keyed(keys);
            let dir = tempfile::tempdir().unwrap();
            let (path, _) =
                write_blocks(dir.path(), Span::Hour, 3600, 1, &entries, per_block).unwrap();
            let seg = Segment::open(&path).unwrap();
            proptest::prop_assert_eq!(seg.entries().unwrap(), entries.clone());
            for p in &probes {
                let want = entries.iter().find(|(k, _)| k == p).map(|(_, s)| s.clone());
                proptest::prop_assert_eq!(seg.get(p).unwrap(), want);
                for hi in &probes {
                    let want: Vec<&[u8]> = entries
                        .iter()
                        .map(|(k, _)| &k[..])
                        .filter(|k| *k >= &p[..] && *k <= &hi[..])
                        .collect();
                    let mut got = Vec::new();
                    seg.range(p, Some(hi), |k, _| {
                        got.push(k.to_vec());
                        true
                    })
                    .unwrap();
                    proptest::prop_assert_eq!(got, want);
                }
            }
            let mut sorted = probes.clone();
            sorted.sort();
            sorted.dedup();
            let mut want = Vec::new();
            for (i, p) in sorted.iter().enumerate() {
                for (k, s) in &entries {
                    if k.starts_with(p) {
                        want.push((i, k.clone(), s.clone()));
                    }
                }
            }
            let mut got = Vec::new();
            seg.under_prefixes(&sorted, |i, k, s| got.push((i, k.to_vec(), s.clone())))
                .unwrap();
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// A version 3 segment damaged after it was checked whole (opened for structure only):
    /// for every byte flipped three ways, every read ends in an answer or a "damaged" error,
    /// never a panic (no `catch_unwind` here: a panic fails the test).
    #[test]
    fn a_damaged_blocked_segment_read_unchecked_never_panics() {
        let keys: std::collections::BTreeSet<Vec<u8>> = (0..200u32)
            .map(|i| format!("uhttp://h{}.example/p/{i:x}", i % 17).into_bytes())
            .collect();
        let entries = keyed(keys);
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_blocks(dir.path(), Span::Day, 0, 1, &entries, 16).unwrap();
        let good = std::fs::read(&path).unwrap();
        let (mut refused, mut errors) = (0, 0);
        for i in 0..good.len() {
            for flip in [0x01u8, 0x40, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let Ok(seg) = Segment::parse_checked(&b, Path::new("x.seg"), Check::Structure)
                else {
                    refused += 1;
                    continue;
                };
                let reads = [
                    seg.entries().map(|_| ()),
                    seg.get(b"uhttp://h3.example/p/3").map(|_| ()),
                    seg.range(b"uhttp://h1", Some(b"uhttp://h2"), |_, _| true),
                    seg.under_prefixes(&[&b"u"[..], b"uhttp://h1", b"uhttp://h9.e"], |_, _, _| {}),
                ];
                errors += reads.iter().filter(|r| r.is_err()).count();
            }
        }
        assert!(
            refused > 0 && errors > 0,
            "{refused} refused, {errors} errors"
        );
    }
}
