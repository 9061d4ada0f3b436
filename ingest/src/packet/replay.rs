//! Parallel offline replay: one reader thread, packets batched and sharded by a symmetric
//! flow hash ([`flow_shard`]) to decoder threads over bounded channels, so all per-flow
//! state stays on one worker.

use super::capture::{read_capture, CaptureError, CaptureStats, LinkType};
use super::decoder::{flow_shard, DecodeStats, DecoderLimits, PacketDecoder};
use crate::observation::{Observation, Origin};
use serde::Serialize;
use std::borrow::Cow;
use std::path::PathBuf;

/// What a parallel replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayStats {
    /// Reader statistics per file (in order).
    pub files: Vec<(String, CaptureStats)>,
    /// Decoder statistics, merged over workers.
    pub decode: DecodeStats,
    /// Errors of files that were cut short (the packets before the error were decoded).
    pub errors: Vec<String>,
}

/// Packets per batch sent to a worker.
const BATCH: usize = 512;

struct Batch {
    data: Vec<u8>,
    /// (offset, len, ts_ns, number, link, file index)
    pkts: Vec<(u32, u32, i64, u64, LinkType, u32)>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            data: Vec::with_capacity(BATCH * 256),
            pkts: Vec::with_capacity(BATCH),
        }
    }
}

/// Replay `paths` in order with `workers` decoder threads; each worker hands its
/// observations (in its packet order) to `sink(worker, batch)`.
///
/// Files that cannot be opened fail the call; a truncated or corrupt file is decoded up to
/// the problem and reported in [`ReplayStats::errors`].
pub fn replay_parallel(
    paths: &[PathBuf],
    workers: usize,
    limits: DecoderLimits,
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
                for b in rx {
                    for &(off, len, ts, num, link, file) in &b.pkts {
                        let (o, l) = (off as usize, len as usize);
                        let Some(data) = b.data.get(o..o + l) else {
                            continue;
                        };
                        let origin = Origin::Packet {
                            capture: Cow::Borrowed(names.get(file as usize).copied().unwrap_or("")),
                            number: num,
                        };
                        dec.decode(link, ts, data, origin, &mut out);
                    }
                    if !out.is_empty() {
                        sink(w, std::mem::take(&mut out));
                    }
                    let _ = ret_tx.try_send(b);
                }
                dec.stats().clone()
            }));
        }
        drop(ret_tx);
        let mut stats = ReplayStats::default();
        let mut cur: Vec<Batch> = (0..workers).map(|_| Batch::new()).collect();
        let mut fatal = None;
        for (fi, path) in paths.iter().enumerate() {
            let r = read_capture(path, |p| {
                let w = if workers == 1 {
                    0
                } else {
                    (flow_shard(p.link, p.data) % workers as u64) as usize
                };
                let b = &mut cur[w];
                let off = b.data.len();
                b.data.extend_from_slice(p.data);
                b.pkts.push((
                    off as u32,
                    p.data.len() as u32,
                    p.ts_ns,
                    p.number,
                    p.link,
                    fi as u32,
                ));
                if b.pkts.len() >= BATCH || b.data.len() >= (8 << 20) {
                    let mut fresh = ret_rx.try_recv().unwrap_or_else(|_| Batch::new());
                    fresh.data.clear();
                    fresh.pkts.clear();
                    let full = std::mem::replace(b, fresh);
                    let _ = txs[w].send(full);
                }
            });
            match r {
                Ok(cs) => stats.files.push((path.display().to_string(), cs)),
                Err(e @ CaptureError::Corrupt { .. }) => {
                    if let CaptureError::Corrupt { stats: cs, .. } = &e {
                        stats.files.push((path.display().to_string(), cs.clone()));
                    }
                    stats.errors.push(e.to_string());
                }
                Err(e) => {
                    fatal = Some(e);
                    break;
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
        if let Some(e) = fatal {
            return Err(e);
        }
        if failed {
            return Err(CaptureError::Worker);
        }
        Ok(stats)
    })
}
