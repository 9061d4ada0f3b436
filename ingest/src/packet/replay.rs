//! Parallel offline replay: one reader thread, packets batched and sharded by a symmetric
//! flow hash ([`flow_shard`]) to decoder threads over bounded channels, so all per-flow
//! state stays on one worker.

use super::bpf::BpfFilter;
use super::capture::{
    prefetch, read_capture, read_pcap_windows, CaptureError, CaptureStats, LinkType, RawPacket,
    Window,
};
use super::decoder::{flow_shard, DecodeStats, DecoderLimits, PacketDecoder};
use crate::observation::{Observation, Origin};
use serde::Serialize;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

/// What a parallel replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayStats {
    /// Reader statistics per file (in order).
    pub files: Vec<(String, CaptureStats)>,
    /// Decoder statistics, merged over workers.
    pub decode: DecodeStats,
    /// Errors of files that could not be read, or only in part (the packets before the
    /// error were decoded): one per file, naming it, the packet number and byte offset.
    pub errors: Vec<String>,
    /// Packets the BPF filter left out (not decoded).
    pub filtered_out: u64,
}

/// Packets per batch sent to a worker.
const BATCH: usize = 1024;

/// Packets ahead of the one being decoded whose headers a worker prefetches.
const PREFETCH_PACKETS: usize = 6;

/// Packets ahead of the one being decoded whose flow-table slot a worker prefetches.
const PREFETCH_FLOW: usize = 3;

/// Bytes of a capture file read at once: batches keep their window alive until their
/// worker is done, so a few windows per worker bound the memory held. Small, so the
/// packets are still in the CPU cache when a worker decodes them after the copy (2 MiB
/// windows replay as fast as the mapped 32 MiB ones did; 32 MiB read ones 30% slower).
const WINDOW: usize = 2 << 20;

/// One packet of a batch: where its bytes are (in the batch's window, or in `data` for
/// captures read by copy) and its metadata.
#[derive(Clone, Copy)]
struct Pkt {
    off: u32,
    len: u32,
    ts: i64,
    number: u64,
    link: LinkType,
    file: u32,
}

impl Pkt {
    /// Packet `p` of file number `file`, its bytes at `off` in the batch's window or buffer.
    fn of(p: &RawPacket<'_>, off: usize, file: usize) -> Pkt {
        Pkt {
            off: off as u32,
            len: p.data.len() as u32,
            ts: p.ts_ns,
            number: p.number,
            link: p.link,
            file: file as u32,
        }
    }
}

/// Packets for one worker: either slices of a mapped window of the capture (no copy) or,
/// for pcapng / non-regular files, bytes copied into `data`.
struct Batch {
    window: Option<Window>,
    data: Vec<u8>,
    pkts: Vec<Pkt>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            window: None,
            data: Vec::new(),
            pkts: Vec::with_capacity(BATCH),
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.window {
            Some(w) => w,
            None => &self.data,
        }
    }
}

/// Replay `paths` in order with `workers` decoder threads; each worker hands its
/// observations (in its packet order) to `sink(worker, batch)`.
///
/// A file that cannot be opened or read, is no capture, or is truncated or corrupt is
/// decoded up to the problem (maybe not at all) and reported in [`ReplayStats::errors`]; the
/// other files are read all the same. Only a worker's failure fails the call.
pub fn replay_parallel(
    paths: &[PathBuf],
    workers: usize,
    limits: DecoderLimits,
    sink: &(dyn Fn(usize, Vec<Observation<'static>>) + Sync),
) -> Result<ReplayStats, CaptureError> {
    replay_parallel_filtered(paths, workers, limits, None, sink)
}

/// [`replay_parallel`] of the packets `filter` passes (the reader thread runs it; the
/// others are counted in [`ReplayStats::filtered_out`] and never decoded).
pub fn replay_parallel_filtered(
    paths: &[PathBuf],
    workers: usize,
    limits: DecoderLimits,
    mut filter: Option<BpfFilter>,
    sink: &(dyn Fn(usize, Vec<Observation<'static>>) + Sync),
) -> Result<ReplayStats, CaptureError> {
    let workers = workers.max(1);
    // Capture names live as long as the observations that cite them: one leak per file.
    let names: Vec<&'static str> = paths
        .iter()
        .map(|p| &*Box::leak(p.display().to_string().into_boxed_str()))
        .collect();
    std::thread::scope(|s| {
        let mut txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        let (ret_tx, ret_rx) = crossbeam_channel::bounded::<Batch>(workers * 8);
        for w in 0..workers {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(4);
            txs.push(tx);
            let limits = limits.clone();
            let names = &names;
            let ret_tx = ret_tx.clone();
            handles.push(s.spawn(move || {
                let mut dec = PacketDecoder::new(limits);
                let mut out = Vec::new();
                for mut b in rx {
                    let bytes = b.bytes();
                    for (k, p) in b.pkts.iter().enumerate() {
                        // Packet bytes are cold here (read by another core, or never): ask for
                        // the headers of a packet a few ahead while this one is decoded.
                        if let Some(n) = b.pkts.get(k + PREFETCH_PACKETS) {
                            let at = bytes.as_ptr().wrapping_add(n.off as usize);
                            prefetch(at);
                            prefetch(at.wrapping_add(64));
                        }
                        // ... and, its headers having arrived meanwhile, the flow-table slot
                        // of a nearer one.
                        if let Some(n) = b.pkts.get(k + PREFETCH_FLOW) {
                            let (o, l) = (n.off as usize, n.len as usize);
                            if let Some(data) = bytes.get(o..o + l) {
                                dec.prefetch_flow(n.link, data);
                            }
                        }
                        let (o, l) = (p.off as usize, p.len as usize);
                        let Some(data) = bytes.get(o..o + l) else {
                            continue;
                        };
                        let origin = Origin::Packet {
                            capture: Cow::Borrowed(
                                names.get(p.file as usize).copied().unwrap_or(""),
                            ),
                            number: p.number,
                        };
                        dec.decode(p.link, p.ts, data, origin, &mut out);
                    }
                    if !out.is_empty() {
                        // The sink takes the batch's observations; the next batch's vector
                        // starts at the capacity this one grew to instead of growing (and
                        // moving its observations) from empty.
                        let fresh = Vec::with_capacity(out.capacity());
                        sink(w, std::mem::replace(&mut out, fresh));
                    }
                    // Unmap as soon as no batch needs the window any more.
                    b.window = None;
                    let _ = ret_tx.try_send(b);
                }
                dec.stats().clone()
            }));
        }
        drop(ret_tx);
        let mut stats = ReplayStats::default();
        let mut filtered_out = 0;
        let mut cur: Vec<Batch> = (0..workers).map(|_| Batch::new()).collect();
        let shard = |p: &RawPacket<'_>| {
            if workers == 1 {
                0
            } else {
                (flow_shard(p.link, p.data) % workers as u64) as usize
            }
        };
        let fresh = |ret_rx: &crossbeam_channel::Receiver<Batch>| {
            let mut b = ret_rx.try_recv().unwrap_or_else(|_| Batch::new());
            b.window = None;
            b.data.clear();
            b.pkts.clear();
            b
        };
        let send = |w: usize, b: &mut Batch| {
            let full = std::mem::replace(b, fresh(&ret_rx));
            let _ = txs[w].send(full);
        };
        for (fi, path) in paths.iter().enumerate() {
            // Mapped: batches carry offsets into a shared window; a batch refers to one window,
            // so a worker's pending batch goes out when its next packet is in another one.
            let mapped = read_pcap_windows(path, WINDOW, |win, p| {
                if let Some(f) = &mut filter {
                    if !f.matches(p.link, p.data) {
                        filtered_out += 1;
                        return;
                    }
                }
                let w = shard(&p);
                let b = &mut cur[w];
                if !b.pkts.is_empty() && !b.window.as_ref().is_some_and(|x| Arc::ptr_eq(x, win)) {
                    send(w, b);
                }
                if b.window.is_none() {
                    b.window = Some(Arc::clone(win));
                }
                let off = (p.data.as_ptr() as usize).wrapping_sub(win.as_ptr() as usize);
                b.pkts.push(Pkt::of(&p, off, fi));
                if b.pkts.len() >= BATCH {
                    send(w, b);
                }
            });
            // Before a file read by copy, pending mapped batches go out.
            if mapped.is_none() {
                for (i, b) in cur.iter_mut().enumerate() {
                    if b.window.is_some() && !b.pkts.is_empty() {
                        send(i, b);
                    }
                }
            }
            let r = match mapped {
                Some(r) => r,
                None => read_capture(path, |p| {
                    if let Some(f) = &mut filter {
                        if !f.matches(p.link, p.data) {
                            filtered_out += 1;
                            return;
                        }
                    }
                    let w = shard(&p);
                    let b = &mut cur[w];
                    let off = b.data.len();
                    b.data.extend_from_slice(p.data);
                    b.pkts.push(Pkt::of(&p, off, fi));
                    if b.pkts.len() >= BATCH || b.data.len() >= (8 << 20) {
                        send(w, b);
                    }
                }),
            };
            match r {
                Ok(cs) => stats.files.push((path.display().to_string(), cs)),
                Err(e) => {
                    let cs = match &e {
                        CaptureError::Corrupt { stats: cs, .. } => cs.clone(),
                        _ => CaptureStats::default(),
                    };
                    stats.files.push((path.display().to_string(), cs));
                    stats.errors.push(e.to_string());
                }
            }
        }
        for (w, b) in cur.into_iter().enumerate() {
            if !b.pkts.is_empty() {
                let _ = txs[w].send(b);
            }
        }
        drop(txs);
        let mut failed = false;
        for h in handles {
            match h.join() {
                Ok(ds) => stats.decode.merge(&ds),
                Err(_) => failed = true,
            }
        }
        if failed {
            return Err(CaptureError::Worker);
        }
        stats.filtered_out = filtered_out;
        Ok(stats)
    })
}
