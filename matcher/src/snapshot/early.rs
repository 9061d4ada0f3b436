//! The FSTs of a [`super::StreamBuilder`], built on threads of their own while the
//! indicators still arrive (ARCHITECTURE.md §2.1.1): `values.fst` from batches of keys as
//! they come (its outputs are the ids, which are the push order), the two domain shards and
//! `domains.idx` once the last domain has come (the split needs their count). The same
//! bytes [`super::build::compile_lean`] writes from the same items; it builds them itself
//! when a thread could not start.

use super::build::{build_err, shard_fst, shard_split};
use super::format::DomainIdx;
use super::{type_byte, SnapshotError};
use crate::model::IndicatorType;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Value keys sent to the values thread at a time.
const BATCH: usize = 1 << 15;
/// Batches queued for it at most: past that the pushes wait (memory stays bounded).
const QUEUED: usize = 4;

/// One batch of `values.fst` keys (type byte ‖ value), where each ends, and their ids.
#[derive(Default)]
struct Batch {
    keys: Vec<u8>,
    ends: Vec<u32>,
    ids: Vec<u64>,
}

impl Batch {
    fn key(&self, k: usize) -> Option<&[u8]> {
        let start = k
            .checked_sub(1)
            .map_or(Some(0), |j| self.ends.get(j).copied())?;
        self.keys.get(start as usize..*self.ends.get(k)? as usize)
    }
}

/// The domain files: the two shards and `domains.idx`.
pub(crate) type DomainFiles = (Vec<u8>, Vec<u8>, Vec<u8>);

/// What was built early, for the compiler.
pub(crate) struct Early {
    /// The two domain shards and `domains.idx`.
    pub(crate) domains: DomainFiles,
    /// `values.fst`.
    pub(crate) values: Vec<u8>,
}

type Values = (
    SyncSender<Batch>,
    JoinHandle<Result<Vec<u8>, SnapshotError>>,
);

/// The early builds of one [`super::StreamBuilder`].
#[derive(Default)]
pub(crate) struct EarlyFsts {
    /// The id of the next item (ids are the push order).
    next_id: u64,
    /// A thread could not start: the compiler builds everything.
    off: bool,
    /// The domain keys (label-reversed) so far, where each ends, and their exact-only flags.
    dom_keys: Vec<u8>,
    dom_ends: Vec<u32>,
    dom_exact: Vec<bool>,
    /// The domain files' thread, once the domains have ended.
    domains: Option<JoinHandle<Result<DomainFiles, SnapshotError>>>,
    batch: Batch,
    values: Option<Values>,
}

impl EarlyFsts {
    /// The next item: its type, its order key (the value, or a domain's label-reversed
    /// name) and whether it is exact-only. Items come in id order.
    pub(crate) fn push(&mut self, itype: IndicatorType, key: &[u8], exact: bool) {
        if self.off {
            return;
        }
        if self.values.is_none() && !self.start_values() {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if itype == IndicatorType::Fqdn {
            self.dom_keys.extend_from_slice(key);
            match u32::try_from(self.dom_keys.len()) {
                Ok(end) => self.dom_ends.push(end),
                Err(_) => self.off = true,
            }
            self.dom_exact.push(exact);
            return;
        }
        if self.domains.is_none()
            && type_byte(itype) > type_byte(IndicatorType::Fqdn)
            && !self.start_domains()
        {
            return;
        }
        self.batch.keys.push(type_byte(itype));
        self.batch.keys.extend_from_slice(key);
        match u32::try_from(self.batch.keys.len()) {
            Ok(end) => self.batch.ends.push(end),
            Err(_) => self.off = true,
        }
        self.batch.ids.push(id);
        if self.batch.ids.len() >= BATCH {
            self.send();
        }
    }

    /// Start the values thread; false (and off) when it cannot start.
    fn start_values(&mut self) -> bool {
        let (tx, rx) = sync_channel::<Batch>(QUEUED);
        let thread = std::thread::Builder::new()
            .name("trawl-values-fst".into())
            .spawn(move || {
                let mut vb = fst::MapBuilder::memory();
                for b in rx {
                    for (k, &id) in b.ids.iter().enumerate() {
                        let key = b.key(k).ok_or_else(|| SnapshotError::Build {
                            what: "value FST",
                            reason: "a damaged key batch".into(),
                        })?;
                        vb.insert(key, id).map_err(build_err("value FST"))?;
                    }
                }
                vb.into_inner().map_err(build_err("value FST"))
            });
        match thread {
            Ok(t) => {
                self.values = Some((tx, t));
                true
            }
            Err(_) => {
                self.off = true;
                false
            }
        }
    }

    /// The domains have ended: build their files on a thread; false (and off) when it
    /// cannot start.
    fn start_domains(&mut self) -> bool {
        let keys = std::mem::take(&mut self.dom_keys);
        let ends = std::mem::take(&mut self.dom_ends);
        let exact = std::mem::take(&mut self.dom_exact);
        let thread = std::thread::Builder::new()
            .name("trawl-domain-fst".into())
            .spawn(move || domain_files(&keys, &ends, exact));
        match thread {
            Ok(t) => {
                self.domains = Some(t);
                true
            }
            Err(_) => {
                self.off = true;
                false
            }
        }
    }

    /// Queue the batch for the values thread (one that has stopped on an error says so
    /// when joined).
    fn send(&mut self) {
        if let Some((tx, _)) = &self.values {
            let _ = tx.send(std::mem::take(&mut self.batch));
        }
    }

    /// Everything built, or `None` when the compiler must build it (a thread could not
    /// start, or nothing was pushed).
    pub(crate) fn finish(mut self) -> Option<Result<Early, SnapshotError>> {
        if self.off || self.values.is_none() {
            return None;
        }
        if self.domains.is_none() && !self.start_domains() {
            return None;
        }
        self.send();
        let (tx, values) = self.values.take()?;
        drop(tx);
        let values = joined(values);
        let domains = joined(self.domains.take()?);
        Some(values.and_then(|values| {
            Ok(Early {
                domains: domains?,
                values,
            })
        }))
    }
}

/// A thread's result; its panic as an error.
fn joined<T>(t: JoinHandle<Result<T, SnapshotError>>) -> Result<T, SnapshotError> {
    t.join().unwrap_or_else(|payload| {
        Err(SnapshotError::Build {
            what: "snapshot",
            reason: format!(
                "a compiler thread panicked: {}",
                crate::panics::panic_text(payload.as_ref())
            ),
        })
    })
}

/// The two domain shards (split as the compiler splits them) and `domains.idx`, from the
/// label-reversed keys in order (`ends`: where each ends in `keys`).
fn domain_files(keys: &[u8], ends: &[u32], exact: Vec<bool>) -> Result<DomainFiles, SnapshotError> {
    let n = ends.len();
    let start = |i: usize| i.checked_sub(1).map_or(0, |j| ends[j] as usize);
    let key = |i: usize| &keys[start(i)..ends[i] as usize];
    let split = shard_split(n, |i| keys.get(start(i)).copied().filter(|_| i < n));
    let (s0, s1) = rayon::join(
        || shard_fst((0..split).map(key), 0),
        || shard_fst((split..n).map(key), split),
    );
    Ok((s0?, s1?, DomainIdx::write_identity(exact.into_iter())))
}
