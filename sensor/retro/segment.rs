//! One segment file: the observed values of one partition (an hour or a day) and their
//! statistics, immutable once written.
//!
//! Layout (integers little-endian): `TRRS`, version (u8 = 2; 1 is still read), span (u8: 0
//! hour, 1 day), two zero bytes, partition start (i64, Unix seconds), sequence number (u64),
//! key count (u64), FST length (u64), data length (u64); the FST (key → offset of its stats
//! in the data); the data; a CRC-32 of everything before it.
//!
//! Stats (version 2): a tag byte — bits 0-3 the field's index in [`ingest::MATCH_FIELDS`]
//! when the value was seen in one field, bit 4 set when in several (their set follows), bit 5
//! set when seen more than once (count and last − first follow), bits 6-7 the client count
//! (3: a varint count follows) — then as varints first seen − start, [the field set], [count,
//! last − first], [client count], then each client as a family byte (4 or 6) and its address
//! bytes. A value seen once in one field costs the tag and its time. Version 1 wrote every
//! number: first − start, last − first, count, field set, client count.

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
const VERSION: u8 = 2;

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

/// One section of a segment's bytes (its FST, its data), shareable.
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
    /// The header, the section lengths and the FST's own header and footer, touching only
    /// the pages a lookup needs: for a segment already checked whole
    /// ([`super::verified`]), so that `trawl hunt` over a large index reads only what it
    /// looks up. A segment damaged since can make the FST reader panic (every transition
    /// leads to a lower address, so a walk cannot loop, and is at most as deep as the FST
    /// is long): [`super::hunt::hunt`] catches that and skips the segment.
    Structure,
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
    map: fst::Map<Section>,
    data: Section,
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
    let mut data = Vec::new();
    let mut builder = fst::MapBuilder::memory();
    for (key, s) in entries {
        let at = data.len() as u64;
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
        put_varint(&mut data, u64::try_from(s.first - start).unwrap_or(0));
        if !one_field {
            put_varint(&mut data, u64::from(s.fields));
        }
        if many {
            put_varint(&mut data, s.count);
            put_varint(&mut data, u64::try_from(s.last - s.first).unwrap_or(0));
        }
        if s.clients.len() >= 3 {
            put_varint(&mut data, s.clients.len() as u64);
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
        builder
            .insert(key.as_ref(), at)
            .map_err(|e| RetroError::Damaged {
                path: dir.display().to_string(),
                reason: format!("building the segment: {e}"),
            })?;
    }
    let fst_bytes = builder.into_inner().map_err(|e| RetroError::Damaged {
        path: dir.display().to_string(),
        reason: format!("building the segment: {e}"),
    })?;
    let mut out = Vec::with_capacity(HEADER + fst_bytes.len() + data.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(u8::from(span == Span::Day));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&(fst_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&fst_bytes);
    out.extend_from_slice(&data);
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
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Segment {
    /// Map and check a segment file (the whole checksum): a short, mis-sized or mis-summed
    /// file, or one whose FST does not parse, is [`RetroError::Damaged`].
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
        match &*self.data.bytes {
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
        let body = b.len().saturating_sub(4);
        if crc32fast::hash(&b[..body]) == self.stored_crc() {
            Ok(())
        } else {
            Err(RetroError::Damaged {
                path: self.path.display().to_string(),
                reason: "checksum mismatch".into(),
            })
        }
    }

    /// [`Segment::open`] of bytes already read (`path` names them in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Segment, RetroError> {
        Segment::from_bytes(Arc::new(Bytes::Owned(bytes.to_vec())), path, Check::Full)
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
        if bytes.len() < HEADER + 4 || &bytes[..4] != MAGIC {
            return Err(damaged("not a segment (no TRRS header)"));
        }
        let version = bytes[4];
        if version != 1 && version != VERSION {
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
        let fst_len = usize::try_from(u64_at(bytes, 32)).map_err(|_| damaged("FST length"))?;
        let data_len = usize::try_from(u64_at(bytes, 40)).map_err(|_| damaged("data length"))?;
        if HEADER
            .checked_add(fst_len)
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
        let map = fst::Map::new(section(HEADER..HEADER + fst_len))
            .map_err(|e| damaged(&format!("FST: {e}")))?;
        Ok(Segment {
            version,
            span,
            start,
            seq,
            path: path.to_path_buf(),
            bytes: size,
            file_id: None,
            map,
            data: section(HEADER + fst_len..body),
        })
    }

    /// The partition's end (exclusive, Unix seconds).
    pub fn end(&self) -> i64 {
        self.start.saturating_add(self.span.secs())
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn stats_at(&self, at: u64) -> Option<Stats> {
        let b = self.data.as_ref();
        let mut pos = usize::try_from(at).ok()?;
        let (first, last, count, fields, n);
        if self.version == 1 {
            first = self
                .start
                .checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
            last = first.checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
            count = get_varint(b, &mut pos)?;
            fields = u32::try_from(get_varint(b, &mut pos)?).ok()?;
            n = get_varint(b, &mut pos)?;
        } else {
            let tag = *b.get(pos)?;
            pos += 1;
            first = self
                .start
                .checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
            fields = if tag & 0x10 == 0 {
                1 << (tag & 0x0f)
            } else {
                u32::try_from(get_varint(b, &mut pos)?).ok()?
            };
            if tag & 0x20 == 0 {
                (count, last) = (1, first);
            } else {
                count = get_varint(b, &mut pos)?;
                last = first.checked_add(i64::try_from(get_varint(b, &mut pos)?).ok()?)?;
            }
            n = match tag >> 6 {
                3 => get_varint(b, &mut pos)?,
                k => u64::from(k),
            };
        }
        let mut clients = Vec::new();
        for _ in 0..n.min(super::config::MAX_CLIENTS as u64) {
            let family = *b.get(pos)?;
            pos += 1;
            let ip = match family {
                4 => IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(b.get(pos..pos + 4)?).ok()?,
                )),
                6 => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(b.get(pos..pos + 16)?).ok()?,
                )),
                _ => return None,
            };
            pos += if family == 4 { 4 } else { 16 };
            clients.push(ip);
        }
        Some(Stats {
            first,
            last,
            count,
            fields,
            clients,
        })
    }

    /// Every key and its stats within `lo..=hi` (`hi = None`: to the end), while `keep`
    /// says the key still qualifies (a prefix scan stops at the first key past the prefix).
    pub fn range(&self, lo: &[u8], hi: Option<&[u8]>, mut f: impl FnMut(&[u8], Stats) -> bool) {
        let mut r = self.map.range().ge(lo);
        if let Some(hi) = hi {
            r = r.le(hi);
        }
        let mut stream = r.into_stream();
        while let Some((k, at)) = stream.next() {
            let Some(s) = self.stats_at(at) else { continue };
            if !f(k, s) {
                break;
            }
        }
    }

    /// Every key `aut` accepts and its stats, in key order (one pass over the FST's paths the
    /// automaton allows: [`super::hunt`] intersects a set of indicator probes with it).
    pub fn search<A: fst::Automaton>(&self, aut: A, mut f: impl FnMut(&[u8], Stats)) {
        let mut stream = self.map.search(aut).into_stream();
        while let Some((k, at)) = stream.next() {
            if let Some(s) = self.stats_at(at) {
                f(k, s);
            }
        }
    }

    /// The stats of exactly `key`.
    pub fn get(&self, key: &[u8]) -> Option<Stats> {
        self.map.get(key).and_then(|at| self.stats_at(at))
    }

    /// Every key and its stats, in key order.
    pub fn entries(&self) -> Vec<(Vec<u8>, Stats)> {
        // At most one key per byte of stats: a damaged key count cannot ask for more.
        let mut out = Vec::with_capacity(self.len().min(self.data.as_ref().len()));
        self.range(&[], None, |k, s| {
            out.push((k.to_vec(), s));
            true
        });
        out
    }
}

#[cfg(test)]
mod tests {
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
        let www = seg.get(b"dcom.example.www").unwrap();
        assert_eq!(
            (www.first, www.last, www.count, www.fields),
            (7209, 7299, 2, 7)
        );
        assert_eq!(www.clients.len(), 2);
        let mut seen = Vec::new();
        seg.range(b"dcom.example", None, |k, _| {
            seen.push(k.to_vec());
            true
        });
        assert_eq!(seen.len(), 2);
        assert_eq!(seg.entries(), sample());
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
        assert_eq!(Segment::open(&path).unwrap().entries(), entries);

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
        let s = v1.get(b"dcom.example").unwrap();
        assert_eq!(
            (s.first, s.last, s.count, s.fields, s.clients),
            (3607, 3610, 2, 1 << 4, vec![IpAddr::from([192, 0, 2, 1])])
        );
    }
}
