//! Offline capture files: classic pcap (both byte orders, micro- and nanosecond) and pcapng
//! (every interface block with its own link type and `if_tsresol`), plus a small pcap writer
//! used by tests and the benchmark generator.

use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// A link-layer header type (the pcap `LINKTYPE_*` / DLT number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback / null (4-byte host-order address family).
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II.
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (with optional HDLC address/control).
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP (DLT_RAW as written by BSD/Linux; 12 and 14 are historical aliases).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback (network-order address family).
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Linux NFLOG.
    pub const NFLOG: LinkType = LinkType(239);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One packet as read from a capture: borrowed bytes plus where and when.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Link-layer type of the interface that captured it.
    pub link: LinkType,
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The captured bytes (possibly cut at the snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire (may exceed `data.len()`).
    pub orig_len: u32,
    /// 1-based packet number in the file.
    pub number: u64,
}

/// What reading one capture file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Packets handed to the callback.
    pub packets: u64,
    /// Captured bytes handed to the callback.
    pub bytes: u64,
    /// Packets whose captured length is less than their wire length (snap length cut).
    pub snaplen_cut: u64,
    /// pcapng blocks skipped because they were not packets (stats, names, custom).
    pub blocks_skipped: u64,
}

/// Why a capture file could not be read (fully).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Opening or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The capture path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not pcap or pcapng.
    #[error("{path}: not a pcap or pcapng file (magic {magic:08x})")]
    BadMagic {
        /// The capture path.
        path: PathBuf,
        /// The first four bytes.
        magic: u32,
    },
    /// The file ends or is corrupt after `after_packets` good packets.
    #[error("{}", corrupt_message(path, reason, *after_packets, *offset))]
    Corrupt {
        /// The capture path.
        path: PathBuf,
        /// What was wrong.
        reason: &'static str,
        /// Good packets delivered before the problem.
        after_packets: u64,
        /// Byte offset of the bad record.
        offset: u64,
        /// Statistics up to the problem.
        stats: CaptureStats,
    },
    /// A BPF filter expression libpcap refused.
    #[error("BPF filter {expr:?}: {reason}")]
    Filter {
        /// The expression.
        expr: String,
        /// libpcap's message.
        reason: String,
    },
    /// Live capture error from libpcap.
    #[error("live capture on {iface}: {reason}")]
    Live {
        /// Interface name.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
    /// A worker thread of the parallel replay panicked (a bug).
    #[error("replay worker failed")]
    Worker,
}

/// "FILE: packet N at byte offset B: REASON", with how many packets were read before it.
fn corrupt_message(path: &Path, reason: &str, after_packets: u64, offset: u64) -> String {
    let place = format!(
        "{}: packet {} at byte offset {offset}: {reason}",
        path.display(),
        after_packets + 1
    );
    match after_packets {
        0 => place,
        n => format!("{place} (the {n} packet(s) before it were read)"),
    }
}

/// Largest record we accept (256 MiB), so a bogus length cannot make us allocate wildly.
const MAX_RECORD: usize = 256 << 20;

/// Read every packet of a pcap or pcapng file in order and hand it to `f`.
///
/// On a truncated or corrupt file the packets before the problem are delivered and the error
/// ([`CaptureError::Corrupt`]) carries the statistics.
pub fn read_capture(
    path: &Path,
    mut f: impl FnMut(RawPacket<'_>),
) -> Result<CaptureStats, CaptureError> {
    let io = |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut consumed = 0u64;
    let mut r = BufReader::with_capacity(
        64 << 10,
        Counted {
            inner: &file,
            n: &mut consumed,
        },
    );
    let result = read_capture_from(path, &mut r, &mut f);
    drop(r);
    let now = file.metadata().map_err(io)?.len();
    if now < len && consumed < len {
        // Cut short by a truncation while we read: say so rather than "corrupt" or "done".
        let stats = match result {
            Ok(stats) | Err(CaptureError::Corrupt { stats, .. }) => stats,
            Err(e) => return Err(e),
        };
        return Err(shrank(path, now, stats));
    }
    result
}

/// A reader that counts the bytes it delivered.
struct Counted<'a, R> {
    inner: R,
    n: &'a mut u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        *self.n += k as u64;
        Ok(k)
    }
}

/// The error of a capture that became shorter (`now` bytes) while it was read.
fn shrank(path: &Path, now: u64, stats: CaptureStats) -> CaptureError {
    CaptureError::Corrupt {
        path: path.to_path_buf(),
        reason: "the file shrank while it was read (truncated under the reader); the rest is lost",
        after_packets: stats.packets,
        offset: now,
        stats,
    }
}

/// The timestamp of the first packet of the capture at `path` (read from its first MiB),
/// or `None` when it cannot be read or holds no packet there. Orders the files of a directory
/// for `trawl replay DIR`.
pub fn first_timestamp(path: &Path) -> Option<i64> {
    let file = File::open(path).ok()?;
    let mut first = None;
    let _ = read_capture_from(path, &mut file.take(1 << 20), &mut |p: RawPacket<'_>| {
        first.get_or_insert(p.ts_ns);
    });
    first
}

/// [`read_capture`] over any reader (stdin, memory); `path` is used in errors only.
pub fn read_capture_from(
    path: &Path,
    r: &mut impl Read,
    f: &mut impl FnMut(RawPacket<'_>),
) -> Result<CaptureStats, CaptureError> {
    let mut magic = [0u8; 4];
    match read_full(r, &mut magic) {
        Ok(4) => {}
        Ok(n) => {
            return Err(CaptureError::Corrupt {
                path: path.to_path_buf(),
                reason: if n == 0 {
                    "empty file (0 bytes): not a capture"
                } else {
                    "file shorter than a header"
                },
                after_packets: 0,
                offset: 0,
                stats: CaptureStats::default(),
            })
        }
        Err(source) => {
            return Err(CaptureError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let m = u32::from_le_bytes(magic);
    match m {
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => read_pcap(path, r, magic, f),
        0x0a0d_0d0a => read_pcapng(path, r, f),
        _ => Err(CaptureError::BadMagic {
            path: path.to_path_buf(),
            magic: u32::from_be_bytes(magic),
        }),
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn rd_u16(b: &[u8], le: bool) -> u16 {
    let a = [b[0], b[1]];
    if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    }
}

/// A classic pcap record header's timestamp in nanoseconds (`nanos`: the file's fraction is
/// nanoseconds, else microseconds), with the record counted in `stats` (packets, bytes,
/// snaplen-cut). Shared by the streaming and the mapped reader.
#[inline]
fn pcap_record(
    sec: u32,
    frac: u32,
    nanos: bool,
    incl: usize,
    orig: u32,
    stats: &mut CaptureStats,
) -> i64 {
    stats.packets += 1;
    stats.bytes += incl as u64;
    if (incl as u64) < u64::from(orig) {
        stats.snaplen_cut += 1;
    }
    i64::from(sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(if nanos {
            i64::from(frac)
        } else {
            i64::from(frac).saturating_mul(1000)
        })
}

fn rd_u32(b: &[u8], le: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

fn read_pcap(
    path: &Path,
    r: &mut impl Read,
    magic: [u8; 4],
    f: &mut impl FnMut(RawPacket<'_>),
) -> Result<CaptureStats, CaptureError> {
    let m = u32::from_le_bytes(magic);
    let le = matches!(m, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let nanos = matches!(m, 0xa1b2_3c4d | 0x4d3c_b2a1);
    let mut stats = CaptureStats::default();
    let corrupt = |reason, offset, stats: &CaptureStats| CaptureError::Corrupt {
        path: path.to_path_buf(),
        reason,
        after_packets: stats.packets,
        offset,
        stats: stats.clone(),
    };
    let mut hdr = [0u8; 20];
    let n = read_full(r, &mut hdr).map_err(|source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if n < 20 {
        return Err(corrupt("truncated pcap file header", 0, &stats));
    }
    let snaplen = rd_u32(&hdr[12..16], le);
    // The link type is the low 28 bits (upper bits: FCS info).
    let link = LinkType(normalise_link(rd_u32(&hdr[16..20], le) & 0x0fff_ffff));
    let mut offset: u64 = 24;
    // Records are parsed in place from a large chunk (no per-record copy); the unparsed tail
    // moves to the front before each refill.
    let limit = (snaplen as usize).clamp(262_144, MAX_RECORD);
    let mut chunk: Vec<u8> = vec![0u8; (4 << 20).max(limit + 16)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    loop {
        let avail = end - start;
        let need = if avail >= 16 {
            16 + rd_u32(&chunk[start + 8..start + 12], le) as usize
        } else {
            16
        };
        if avail < need.min(limit + 16) && !eof {
            chunk.copy_within(start..end, 0);
            end = avail;
            start = 0;
            while end < chunk.len() {
                let n = r
                    .read(&mut chunk[end..])
                    .map_err(|source| CaptureError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                match n {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(k) => end += k,
                    Err(CaptureError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        let avail = end - start;
        if avail == 0 {
            no_packets(&stats).map_err(|r| corrupt(r, offset, &stats))?;
            return Ok(stats);
        }
        if avail < 16 {
            return Err(corrupt("truncated record header", offset, &stats));
        }
        let rec = &chunk[start..start + 16];
        let sec = rd_u32(&rec[0..4], le);
        let frac = rd_u32(&rec[4..8], le);
        let incl = rd_u32(&rec[8..12], le) as usize;
        let orig = rd_u32(&rec[12..16], le);
        if incl > limit {
            return Err(corrupt(
                "record length exceeds snap length (bogus length)",
                offset,
                &stats,
            ));
        }
        if avail < 16 + incl {
            return Err(corrupt("truncated packet data", offset, &stats));
        }
        let ts_ns = pcap_record(sec, frac, nanos, incl, orig, &mut stats);
        f(RawPacket {
            link,
            ts_ns,
            data: &chunk[start + 16..start + 16 + incl],
            orig_len: orig,
            number: stats.packets,
        });
        start += 16 + incl;
        offset += 16 + incl as u64;
    }
}

/// A window of a capture file read into memory; packets handed out by [`read_pcap_windows`]
/// borrow from it, so a consumer that keeps an `Arc` can refer to packet bytes without a copy.
pub type Window = std::sync::Arc<Vec<u8>>;

/// Windows [`read_pcap_windows`] keeps for reuse.
const WINDOW_POOL: usize = 64;

/// How far ahead of the record walk [`read_pcap_windows`] asks for cache lines.
const PREFETCH_AHEAD: usize = 16 << 10;

pub(crate) use matcher::simd::prefetch;

/// Classic pcap read a window of about `window` bytes at a time, each read once into memory
/// and shared: `f(window, packet)` gets each packet with `packet.data` inside `window`.
///
/// Same packets, statistics and errors as [`read_capture`]. Returns `None` (nothing was
/// delivered) when the file is not a regular classic pcap file of at least one header, or
/// its first window cannot be read: the caller then uses [`read_capture`], which reports open
/// errors and reads pcapng. Only the windows still referenced stay in memory, so memory stays
/// bounded however long the file is. The windows are read, not mapped: a file truncated while
/// it is read ends the read with an error saying so (a mapping would die of SIGBUS).
pub fn read_pcap_windows(
    path: &Path,
    window: usize,
    mut f: impl FnMut(&Window, RawPacket<'_>),
) -> Option<Result<CaptureStats, CaptureError>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let file_len = meta.len();
    if !meta.is_file() || file_len < 24 {
        return None;
    }
    let mut hdr = [0u8; 24];
    read_full(&mut &file, &mut hdr).ok().filter(|&n| n == 24)?;
    let m = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    if !matches!(m, 0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1) {
        return None;
    }
    let le = matches!(m, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let nanos = matches!(m, 0xa1b2_3c4d | 0x4d3c_b2a1);
    let snaplen = rd_u32(&hdr[16..20], le);
    let link = LinkType(normalise_link(rd_u32(&hdr[20..24], le) & 0x0fff_ffff));
    let limit = (snaplen as usize).clamp(262_144, MAX_RECORD);
    // A fresh window always holds a whole record, so every window makes progress.
    let window = (window as u64).max(limit as u64 + 16);
    let mut stats = CaptureStats::default();
    let corrupt = |reason, offset, stats: &CaptureStats| CaptureError::Corrupt {
        path: path.to_path_buf(),
        reason,
        after_packets: stats.packets,
        offset,
        stats: stats.clone(),
    };
    let mut pos: u64 = 24;
    let mut first = true;
    // Windows no batch refers to any more are read into again: fresh ones would cost a page
    // fault for every 4 KiB, more than the copy itself.
    let mut pool: Vec<Window> = Vec::new();
    loop {
        if pos >= file_len {
            return Some(
                no_packets(&stats)
                    .map(|()| stats.clone())
                    .map_err(|r| corrupt(r, pos, &stats)),
            );
        }
        let wlen = window.min(file_len - pos) as usize;
        let at_eof = pos + wlen as u64 >= file_len;
        let mut map = match pool
            .iter_mut()
            .position(|w| std::sync::Arc::get_mut(w).is_some())
        {
            Some(k) => pool.swap_remove(k),
            None => std::sync::Arc::new(Vec::new()),
        };
        let Some(buf) = std::sync::Arc::get_mut(&mut map) else {
            return None; // not reachable: the window was just taken unshared
        };
        buf.resize(wlen, 0);
        let mut got = 0;
        while got < wlen {
            match file.read_at(&mut buf[got..], pos + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Nothing delivered yet: let the streaming reader try (and report).
                Err(_) if first => return None,
                Err(source) => {
                    return Some(Err(CaptureError::Io {
                        path: path.to_path_buf(),
                        source,
                    }))
                }
            }
        }
        if got < wlen {
            // Shorter than when opened: the packets up to here are kept, the rest is lost.
            buf.truncate(got);
        }
        let shrunk = got < wlen;
        first = false;
        if pool.len() < WINDOW_POOL {
            pool.push(std::sync::Arc::clone(&map));
        }
        let mut i = 0usize;
        let buf: &[u8] = &map;
        // Record headers form a dependent chain (each length gives the next position), so
        // every record would wait for memory: fetch the lines ahead of the walk instead.
        let mut ahead = i;
        loop {
            while ahead < (i + PREFETCH_AHEAD).min(buf.len()) {
                prefetch(buf.as_ptr().wrapping_add(ahead));
                ahead += 64;
            }
            let avail = buf.len() - i;
            let cut = |reason| {
                let now = file.metadata().map_or(pos, |m| m.len());
                if shrunk {
                    shrank(path, now, stats.clone())
                } else {
                    corrupt(reason, pos, &stats)
                }
            };
            if avail == 0 {
                if shrunk {
                    return Some(Err(cut("")));
                }
                if at_eof {
                    return Some(Ok(stats));
                }
                break;
            }
            if avail < 16 {
                if at_eof || shrunk {
                    return Some(Err(cut("truncated record header")));
                }
                break;
            }
            let rec = &buf[i..i + 16];
            let sec = rd_u32(&rec[0..4], le);
            let frac = rd_u32(&rec[4..8], le);
            let incl = rd_u32(&rec[8..12], le) as usize;
            let orig = rd_u32(&rec[12..16], le);
            if incl > limit {
                return Some(Err(corrupt(
                    "record length exceeds snap length (bogus length)",
                    pos,
                    &stats,
                )));
            }
            if avail < 16 + incl {
                if at_eof || shrunk {
                    return Some(Err(cut("truncated packet data")));
                }
                break;
            }
            let ts_ns = pcap_record(sec, frac, nanos, incl, orig, &mut stats);
            f(
                &map,
                RawPacket {
                    link,
                    ts_ns,
                    data: &buf[i + 16..i + 16 + incl],
                    orig_len: orig,
                    number: stats.packets,
                },
            );
            i += 16 + incl;
            pos += 16 + incl as u64;
        }
    }
}

/// The end of a capture: a file with no packet at all is reported (a capture cut right after
/// its header looks exactly like that), one with packets is done.
fn no_packets(stats: &CaptureStats) -> Result<(), &'static str> {
    if stats.packets == 0 {
        Err("no packets: the file ends after its header(s)")
    } else {
        Ok(())
    }
}

/// Map historical DLT aliases onto the canonical link types.
fn normalise_link(l: u32) -> u32 {
    match l {
        12 | 14 => LinkType::RAW.0,
        other => other,
    }
}

struct Iface {
    link: LinkType,
    /// Timestamp units per second, as (multiplier to ns) or (divisor).
    ts_mul: u64,
    ts_div: u64,
}

fn tsresol(v: u8) -> (u64, u64) {
    if v & 0x80 == 0 {
        let p = u32::from(v);
        if p <= 9 {
            (10u64.pow(9 - p), 1)
        } else if p <= 19 {
            (1, 10u64.pow(p - 9))
        } else {
            (1, 1)
        }
    } else {
        let p = u32::from(v & 0x7f);
        // units of 2^-p seconds: ns = t * 1e9 / 2^p
        if p < 63 {
            (1_000_000_000, 1u64 << p)
        } else {
            (1, 1)
        }
    }
}

fn read_pcapng(
    path: &Path,
    r: &mut impl Read,
    f: &mut impl FnMut(RawPacket<'_>),
) -> Result<CaptureStats, CaptureError> {
    let mut stats = CaptureStats::default();
    let corrupt = |reason, offset, stats: &CaptureStats| CaptureError::Corrupt {
        path: path.to_path_buf(),
        reason,
        after_packets: stats.packets,
        offset,
        stats: stats.clone(),
    };
    let io = |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut le = true;
    let mut offset: u64 = 0;
    let mut body: Vec<u8> = Vec::with_capacity(65536);
    // The first block's type was consumed as the magic.
    let mut first = true;
    loop {
        let mut h = [0u8; 8];
        let btype;
        let blen;
        if first {
            first = false;
            // type already read; read length + byte-order magic
            let mut lm = [0u8; 8];
            if read_full(r, &mut lm).map_err(io)? < 8 {
                return Err(corrupt("truncated section header", 0, &stats));
            }
            le = match u32::from_le_bytes([lm[4], lm[5], lm[6], lm[7]]) {
                0x1a2b_3c4d => true,
                0x4d3c_2b1a => false,
                _ => return Err(corrupt("bad byte-order magic", 0, &stats)),
            };
            btype = 0x0a0d_0d0a;
            blen = rd_u32(&lm[0..4], le) as usize;
            if !(28..=MAX_RECORD).contains(&blen) || blen % 4 != 0 {
                return Err(corrupt("bad block length", offset, &stats));
            }
            body.clear();
            body.extend_from_slice(&lm[4..8]);
            let rest = blen - 12;
            let old = body.len();
            body.resize(old + rest, 0);
            if read_full(r, &mut body[old..]).map_err(io)? < rest {
                return Err(corrupt("truncated block", offset, &stats));
            }
        } else {
            let n = read_full(r, &mut h).map_err(io)?;
            if n == 0 {
                no_packets(&stats).map_err(|r| corrupt(r, offset, &stats))?;
                return Ok(stats);
            }
            if n < 8 {
                return Err(corrupt("truncated block header", offset, &stats));
            }
            btype = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if btype == 0x0a0d_0d0a {
                // new section: byte order may change
                let mut bom = [0u8; 4];
                if read_full(r, &mut bom).map_err(io)? < 4 {
                    return Err(corrupt("truncated section header", offset, &stats));
                }
                le = match u32::from_le_bytes(bom) {
                    0x1a2b_3c4d => true,
                    0x4d3c_2b1a => false,
                    _ => return Err(corrupt("bad byte-order magic", offset, &stats)),
                };
                ifaces.clear();
                blen = rd_u32(&h[4..8], le) as usize;
                if !(28..=MAX_RECORD).contains(&blen) || blen % 4 != 0 {
                    return Err(corrupt("bad block length", offset, &stats));
                }
                // The rest of the block, its trailing length included (as for the first).
                body.clear();
                body.extend_from_slice(&bom);
                let rest = blen - 12;
                body.resize(4 + rest, 0);
                if read_full(r, &mut body[4..]).map_err(io)? < rest {
                    return Err(corrupt("truncated block", offset, &stats));
                }
            } else {
                blen = rd_u32(&h[4..8], le) as usize;
                if !(12..=MAX_RECORD).contains(&blen) || blen % 4 != 0 {
                    return Err(corrupt("bad block length", offset, &stats));
                }
                let rest = blen - 12;
                body.clear();
                body.resize(rest, 0);
                let mut trailer = [0u8; 4];
                if read_full(r, &mut body).map_err(io)? < rest
                    || read_full(r, &mut trailer).map_err(io)? < 4
                {
                    return Err(corrupt("truncated block", offset, &stats));
                }
            }
        }
        let btype_norm = if le { btype } else { btype.swap_bytes() };
        match btype_norm {
            0x0a0d_0d0a => {}
            1 => {
                // IDB: linktype u16, reserved u16, snaplen u32, options
                if body.len() < 8 {
                    return Err(corrupt("short interface block", offset, &stats));
                }
                let link = LinkType(normalise_link(u32::from(rd_u16(&body[0..2], le))));
                let (mut ts_mul, mut ts_div) = (1000, 1);
                let mut o = 8;
                while o + 4 <= body.len() {
                    let code = rd_u16(&body[o..o + 2], le);
                    let len = rd_u16(&body[o + 2..o + 4], le) as usize;
                    if code == 0 {
                        break;
                    }
                    let v = o + 4;
                    if code == 9 && len >= 1 && v < body.len() {
                        (ts_mul, ts_div) = tsresol(body[v]);
                    }
                    o = v + len.div_ceil(4) * 4;
                }
                ifaces.push(Iface {
                    link,
                    ts_mul,
                    ts_div,
                });
            }
            6 | 3 | 2 => {
                let (ifid, ts, caplen, origlen, data_off) = match btype_norm {
                    6 => {
                        if body.len() < 20 {
                            return Err(corrupt("short packet block", offset, &stats));
                        }
                        let hi = u64::from(rd_u32(&body[4..8], le));
                        let lo = u64::from(rd_u32(&body[8..12], le));
                        (
                            rd_u32(&body[0..4], le) as usize,
                            (hi << 32) | lo,
                            rd_u32(&body[12..16], le) as usize,
                            rd_u32(&body[16..20], le),
                            20,
                        )
                    }
                    2 => {
                        if body.len() < 20 {
                            return Err(corrupt("short packet block", offset, &stats));
                        }
                        let hi = u64::from(rd_u32(&body[4..8], le));
                        let lo = u64::from(rd_u32(&body[8..12], le));
                        (
                            usize::from(rd_u16(&body[0..2], le)),
                            (hi << 32) | lo,
                            rd_u32(&body[12..16], le) as usize,
                            rd_u32(&body[16..20], le),
                            20,
                        )
                    }
                    _ => {
                        if body.len() < 4 {
                            return Err(corrupt("short simple packet block", offset, &stats));
                        }
                        let orig = rd_u32(&body[0..4], le);
                        (0, 0, (orig as usize).min(body.len() - 4), orig, 4)
                    }
                };
                let Some(iface) = ifaces.get(ifid) else {
                    return Err(corrupt(
                        "packet for an undeclared interface",
                        offset,
                        &stats,
                    ));
                };
                let Some(data) = body.get(data_off..data_off + caplen) else {
                    return Err(corrupt(
                        "captured length exceeds block (bogus length)",
                        offset,
                        &stats,
                    ));
                };
                let ts_ns = ((u128::from(ts) * u128::from(iface.ts_mul))
                    / u128::from(iface.ts_div.max(1)))
                .min(i64::MAX as u128) as i64;
                stats.packets += 1;
                stats.bytes += caplen as u64;
                if (caplen as u64) < u64::from(origlen) {
                    stats.snaplen_cut += 1;
                }
                f(RawPacket {
                    link: iface.link,
                    ts_ns,
                    data,
                    orig_len: origlen,
                    number: stats.packets,
                });
            }
            _ => stats.blocks_skipped += 1,
        }
        offset += blen as u64;
    }
}

/// Writes a classic little-endian pcap (nanosecond timestamps); for tests and generators.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header for `link`.
    pub fn new(mut w: W, link: LinkType) -> std::io::Result<Self> {
        w.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&262_144u32.to_le_bytes())?;
        w.write_all(&link.0.to_le_bytes())?;
        Ok(PcapWriter { w })
    }

    /// Append one packet.
    pub fn write(&mut self, ts_ns: i64, data: &[u8]) -> std::io::Result<()> {
        let sec = (ts_ns.div_euclid(1_000_000_000)) as u32;
        let ns = (ts_ns.rem_euclid(1_000_000_000)) as u32;
        self.w.write_all(&sec.to_le_bytes())?;
        self.w.write_all(&ns.to_le_bytes())?;
        let len = data.len() as u32;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(data)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}
