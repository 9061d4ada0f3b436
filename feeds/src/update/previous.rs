//! What an update reads of the previous snapshot (ARCHITECTURE.md §2.1.1): every entry's
//! history record (key, first and last seen, a fingerprint of its metadata), read beside
//! the fetch and parse on a thread of its own, and the entries of the feeds that keep
//! theirs, read after the fetch has said which those are.

use super::{from_a_feed, Spill};
use crate::breadth::MinPrefix;
use crate::runs::record::{self, Prev};
use crate::runs::{RunError, Runs};
use matcher::{Indicator, Snapshot, UnixTime};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};

/// Fingerprint of the metadata that counts as "changed" (not the seen times): of the part
/// a snapshot keeps in the entry's profile, and of the entry's own reference and external
/// id, so that [`read_history`] makes it of a profile once.
pub(super) fn fingerprint(i: &Indicator) -> u64 {
    entry_fingerprint(
        profile_fingerprint(i),
        i.reference.as_deref(),
        i.external_id.as_deref(),
    )
}

/// [`fingerprint`] of the fields a snapshot's profile holds.
fn profile_fingerprint(i: &Indicator) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        i.confidence,
        i.severity,
        i.tlp,
        &i.tags,
        &i.sources,
        i.expires,
    )
        .hash(&mut h);
    (&i.allowlisted_by, i.allowlist, i.derived, i.exact_only).hash(&mut h);
    (&i.description, &i.provider, &i.groups).hash(&mut h);
    h.finish()
}

/// [`fingerprint`] from the profile's part and the entry's own strings (most entries have
/// neither: the profile's part is theirs).
fn entry_fingerprint(profile: u64, reference: Option<&str>, external_id: Option<&str>) -> u64 {
    if reference.is_none() && external_id.is_none() {
        return profile;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (profile, reference, external_id).hash(&mut h);
    h.finish()
}

/// The previous snapshot's history: a record per entry ([`record::encode_prev`]), in key
/// order.
pub(super) struct History {
    /// The records, one presorted run.
    pub(super) runs: Runs,
    /// Entries read.
    pub(super) len: usize,
    /// Of which listed by a `[[feed]]`.
    pub(super) from_feeds: usize,
}

/// Profiles whose part of the history [`read_history`] keeps at once (direct-mapped by id).
const PROFILE_SLOTS: usize = 4096;

/// What [`read_history`] keeps of one profile: its id, first and last seen, the
/// fingerprint of its part, and whether a `[[feed]]` lists its entries.
type ProfilePart = (u32, Option<UnixTime>, Option<UnixTime>, u64, bool);

/// Read `snap`'s history ([`Snapshot::scan_keys`]: no value made, each profile decoded
/// once while its slot holds it), on the calling thread alone; `None` when `stop` was set
/// before the end.
pub(super) fn read_history(
    snap: &Snapshot,
    spill: Spill<'_>,
    stop: &AtomicBool,
) -> Result<Option<History>, RunError> {
    let mut sorter = spill.presorted();
    let (mut len, mut from_feeds) = (0usize, 0usize);
    let mut slots: Vec<Option<ProfilePart>> = vec![None; PROFILE_SLOTS];
    let mut rec = Vec::new();
    let mut failed = None;
    // Set with `failed`, so the walk stops at the first error instead of running to the end.
    let broken = Cell::new(false);
    let done = snap.scan_keys(
        || stop.load(Ordering::Relaxed) || broken.get(),
        |e| {
            if failed.is_some() {
                return;
            }
            let Some(slot) = slots.get_mut(e.profile as usize % PROFILE_SLOTS) else {
                return;
            };
            let part = match slot {
                Some(p) if p.0 == e.profile => *p,
                _ => {
                    // A profile that does not decode: its entries are skipped, as a scan
                    // skips them.
                    let Some(p) = snap.profile(e.profile) else {
                        return;
                    };
                    *slot.insert((
                        e.profile,
                        p.first_seen,
                        p.last_seen,
                        profile_fingerprint(&p),
                        from_a_feed(&p),
                    ))
                }
            };
            len += 1;
            from_feeds += usize::from(part.4);
            let prev = Prev {
                first_seen: part.1,
                last_seen: part.2,
                fp: entry_fingerprint(part.3, e.reference.as_deref(), e.external_id.as_deref()),
            };
            rec.clear();
            record::encode_prev(e.itype, e.key, &prev, &mut rec);
            if let Err(err) = sorter.push_record(&rec) {
                failed = Some(err);
                broken.set(true);
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if !done {
        return Ok(None);
    }
    Ok(Some(History {
        runs: sorter.finish()?,
        len,
        from_feeds,
    }))
}

/// Which of the previous snapshot's entries are carried over, and how.
pub(super) struct Keep<'a> {
    /// The feeds that keep their previous entries (not due, not modified, failed).
    pub(super) feeds: &'a HashSet<&'a str>,
    /// The feeds that are allowlists.
    pub(super) allowlist_feeds: &'a HashSet<&'a str>,
    /// Each feed's breadth limits.
    pub(super) min_prefix: HashMap<&'a str, MinPrefix>,
    /// Entries that expire by now are not carried.
    pub(super) now: UnixTime,
}

/// The kept feeds' entries of the previous snapshot.
#[derive(Default)]
pub(super) struct Carried {
    /// Their records, one presorted run, merged first.
    pub(super) runs: Runs,
    /// Entries carried (the expired among them included).
    pub(super) len: usize,
    /// Entries carried per feed.
    pub(super) counts: HashMap<String, usize>,
    /// Entries no longer carried because their value is now too broad for every feed
    /// listing it.
    pub(super) too_broad: usize,
}

/// Read the entries of `keep.feeds` from `snap` ([`Snapshot::scan_where`]: the others are
/// never made), listed by those feeds alone, their allowlist marks made again.
pub(super) fn read_carried(
    snap: &Snapshot,
    keep: &Keep<'_>,
    spill: Spill<'_>,
) -> Result<Carried, RunError> {
    let mut carried = Carried::default();
    let mut sorter = spill.presorted();
    let mut failed = None;
    let broken = Cell::new(false);
    let kept = |s: &String| keep.feeds.contains(s.as_str());
    snap.scan_where(
        |p| p.sources.iter().any(kept),
        || broken.get(),
        |mut ind| {
            if failed.is_some() {
                return;
            }
            ind.sources.retain(kept);
            let broad_for = |s: &String| {
                let min = keep.min_prefix.get(s.as_str()).copied().unwrap_or_default();
                crate::breadth::too_broad(ind.itype, &ind.value, min).is_some()
            };
            if ind.sources.iter().all(broad_for) {
                carried.too_broad += 1;
                return;
            }
            for s in &ind.sources {
                *carried.counts.entry(s.clone()).or_default() += 1;
            }
            ind.allowlisted_by = None;
            ind.allowlist = ind
                .sources
                .iter()
                .any(|s| keep.allowlist_feeds.contains(s.as_str()));
            carried.len += 1;
            // Expired entries are not carried.
            if ind.expires.is_none_or(|e| e > keep.now) {
                if let Err(e) = sorter.push(&ind) {
                    failed = Some(e);
                    broken.set(true);
                }
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    carried.runs = sorter.finish()?;
    Ok(carried)
}
