//! The directory of segments, `DATA/retro/`: opened with damaged segments set aside,
//! written one segment per hour partition, compacted into days once a day is over, pruned
//! by retention and size, oldest first.

use super::segment::{self, Check, Segment, Span, Stats};
use super::verified::Verified;
use super::{RetroError, DAY, HOUR};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Values by partition start, each partition's sorted by key, each key once: what one
/// flush writes (keys owned, or borrowed from the recorder's run).
pub type Partitions<K = Vec<u8>> = BTreeMap<i64, Vec<(K, Stats)>>;

/// One segment's keys and stats, in key order.
type Entries = Vec<(Vec<u8>, Stats)>;

/// The open index.
pub struct RetroStore {
    dir: PathBuf,
    segments: Vec<Segment>,
    next_seq: u64,
    /// Damaged segments renamed `*.damaged` at open, each with why.
    pub set_aside: Vec<String>,
}

impl std::fmt::Debug for RetroStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetroStore")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// The start of the UTC day holding `t`.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

impl RetroStore {
    /// The index directory of a data directory.
    pub fn dir_of(data_dir: &Path) -> PathBuf {
        data_dir.join("retro")
    }

    /// Open (creating) the index in `dir`: temporary files of an interrupted write are
    /// removed, damaged segments renamed `<name>.damaged` with a warning, and segments
    /// already folded into a compacted day (a compaction interrupted before it deleted
    /// them) removed. Every segment is checked whole, and remembered as such
    /// ([`super::verified`]) for the readers.
    pub fn open(dir: &Path) -> Result<RetroStore, RetroError> {
        std::fs::create_dir_all(dir).map_err(RetroError::io(dir))?;
        let mut store = RetroStore::list(dir, Check::Full, true)?;
        store.drop_folded();
        store.next_seq = store.segments.iter().map(|s| s.seq).max().unwrap_or(0) + 1;
        store.segments.sort_by_key(|s| (s.start, s.span, s.seq));
        store.remember();
        Ok(store)
    }

    /// Write the record of verified segments as this writer's segments are (each checked
    /// whole when opened or written).
    fn remember(&self) {
        let mut v = Verified::load(&self.dir);
        let name = |s: &Segment| s.path.file_name().map(|n| n.to_string_lossy().into_owned());
        let names: std::collections::HashSet<String> =
            self.segments.iter().filter_map(name).collect();
        v.retain(|n| names.contains(n));
        for s in &self.segments {
            if let (Some(n), Some(id)) = (name(s), s.file_id) {
                v.insert(&n, id);
            }
        }
        v.save();
    }

    /// Open the index in `dir` to read it (`trawl hunt`) while a recorder may be writing:
    /// segments are mapped and checked as `check` says ([`Check::Structure`]: only for the
    /// segments the record of [`super::verified`] holds unchanged; any other is checked
    /// whole and added to the record); a damaged one is renamed
    /// `<name>.damaged` and said in [`RetroStore::set_aside`] as at [`RetroStore::open`],
    /// but a writer's temporary files and the segments a compacted day already holds are
    /// left alone (the latter left out of the answers).
    pub fn open_read_only(dir: &Path, check: Check) -> Result<RetroStore, RetroError> {
        let mut store = RetroStore::list(dir, check, false)?;
        let folded = store.folded();
        store.segments.retain(|s| !folded.contains(&s.path));
        store.segments.sort_by_key(|s| (s.start, s.span, s.seq));
        Ok(store)
    }

    /// The segments of `dir`, opened and checked as `check` says; damaged ones renamed
    /// `<name>.damaged` and named in `set_aside`. The `writer` (the one recorder) also removes
    /// temporary files an interrupted write left; a reader leaves them to it.
    fn list(dir: &Path, check: Check, writer: bool) -> Result<RetroStore, RetroError> {
        let mut store = RetroStore {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            next_seq: 1,
            set_aside: Vec::new(),
        };
        let mut verified = (check == Check::Structure).then(|| Verified::load(dir));
        let mut listed = std::collections::HashSet::new();
        for entry in std::fs::read_dir(dir).map_err(RetroError::io(dir))? {
            let entry = entry.map_err(RetroError::io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if writer && name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".seg") || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            listed.insert(name.clone());
            let opened = Segment::open_checked(&path, check).and_then(|seg| {
                if let (Some(v), Some(id)) = (verified.as_mut(), seg.file_id) {
                    if !v.holds(&name, &id) {
                        seg.verify()?;
                        v.insert(&name, id);
                    }
                }
                Ok(seg)
            });
            match opened {
                Ok(seg) => store.segments.push(seg),
                Err(e @ RetroError::Damaged { .. }) => {
                    tracing::warn!("retro index: {e}; set aside as {name}.damaged");
                    let _ = std::fs::rename(&path, dir.join(format!("{name}.damaged")));
                    store.set_aside.push(e.to_string());
                }
                // A reader: a segment compacted away between the listing and the open.
                Err(RetroError::Io { source, .. })
                    if !writer && source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("retro index: {e}; skipped"),
            }
        }
        if let Some(mut v) = verified {
            v.retain(|n| listed.contains(n));
            v.save();
        }
        Ok(store)
    }

    /// The segments a newer compacted day already holds.
    fn folded(&self) -> std::collections::HashSet<PathBuf> {
        let mut newest_day: BTreeMap<i64, u64> = BTreeMap::new();
        for s in self.segments.iter().filter(|s| s.span == Span::Day) {
            let e = newest_day.entry(s.start).or_insert(s.seq);
            *e = (*e).max(s.seq);
        }
        self.segments
            .iter()
            .filter(|s| match s.span {
                Span::Day => newest_day.get(&s.start).is_some_and(|&n| n > s.seq),
                Span::Hour => newest_day
                    .get(&day_of(s.start))
                    .is_some_and(|&n| n >= s.seq),
            })
            .map(|s| s.path.clone())
            .collect()
    }

    /// Remove the segments a newer compacted day already holds.
    fn drop_folded(&mut self) {
        let folded = self.folded();
        self.segments.retain(|s| {
            let gone = folded.contains(&s.path);
            if gone {
                let _ = std::fs::remove_file(&s.path);
            }
            !gone
        });
    }

    /// The index as it is now, to read without holding the recorder: the segments share
    /// their mappings (one deleted by a later compaction or prune stays readable here).
    pub fn view(&self) -> RetroStore {
        RetroStore {
            dir: self.dir.clone(),
            segments: self.segments.clone(),
            next_seq: self.next_seq,
            set_aside: Vec::new(),
        }
    }

    /// The open segments, oldest partition first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The index's size on disk.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Write one hour segment per partition.
    pub fn write_hours<K: AsRef<[u8]>>(&mut self, parts: Partitions<K>) -> Result<(), RetroError> {
        for (start, entries) in parts {
            if entries.is_empty() {
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let (path, _) = segment::write(&self.dir, Span::Hour, start, seq, &entries)?;
            self.segments.push(Segment::open(&path)?);
        }
        self.segments.sort_by_key(|s| (s.start, s.span, s.seq));
        self.remember();
        Ok(())
    }

    /// Write what was observed in days already over straight into their day segments
    /// (merged with what the index holds for those days), skipping the hour segments a
    /// backfill would only write to compact at once.
    pub fn write_days<K: AsRef<[u8]>>(
        &mut self,
        days: Partitions<K>,
        clients: usize,
    ) -> Result<(), RetroError> {
        for (day, entries) in days {
            if entries.is_empty() {
                continue;
            }
            self.fold_day(day, entries, clients)?;
        }
        Ok(())
    }

    /// Merge every segment of `day` and `extra` into one new day segment, then delete the
    /// inputs. Its sequence number is above every input's, so an interrupted fold is
    /// finished at the next open ([`RetroStore::open`]).
    fn fold_day<K: AsRef<[u8]>>(
        &mut self,
        day: i64,
        extra: Vec<(K, Stats)>,
        clients: usize,
    ) -> Result<(), RetroError> {
        let (inputs, rest): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut self.segments)
            .into_iter()
            .partition(|s| day_of(s.start) == day);
        self.segments = rest;
        let seq = self.next_seq;
        self.next_seq += 1;
        let written = if inputs.is_empty() {
            segment::write(&self.dir, Span::Day, day, seq, &extra)
        } else {
            let lists: Result<Vec<Entries>, RetroError> =
                inputs.iter().map(Segment::entries).collect();
            lists.and_then(|mut lists| {
                lists.push(
                    extra
                        .into_iter()
                        .map(|(k, s)| (k.as_ref().to_vec(), s))
                        .collect(),
                );
                segment::write(
                    &self.dir,
                    Span::Day,
                    day,
                    seq,
                    &merge_sorted(lists, clients),
                )
            })
        }
        .and_then(|(path, _)| Segment::open(&path));
        let result = match written {
            Ok(seg) => {
                for old in &inputs {
                    let _ = std::fs::remove_file(&old.path);
                }
                self.segments.push(seg);
                Ok(())
            }
            Err(e) => {
                self.segments.extend(inputs);
                Err(e)
            }
        };
        self.segments.sort_by_key(|s| (s.start, s.span, s.seq));
        self.remember();
        result
    }

    /// Fold the hour segments of every day over (its end an hour or more before `now`) and
    /// that day's earlier compaction into one day segment; returns how many days.
    pub fn compact(&mut self, now: i64, clients: usize) -> Result<usize, RetroError> {
        let days: std::collections::BTreeSet<i64> = self
            .segments
            .iter()
            .filter(|s| s.span == Span::Hour)
            .map(|s| day_of(s.start))
            .filter(|&d| d + DAY + HOUR <= now)
            .collect();
        for &day in &days {
            self.fold_day(day, Vec::<(Vec<u8>, Stats)>::new(), clients)?;
        }
        self.segments.sort_by_key(|s| (s.start, s.span, s.seq));
        Ok(days.len())
    }

    /// Delete the partitions that ended `retention` seconds or more before `now`, then the
    /// oldest while the index is over `max_bytes`; returns how many segments went.
    pub fn prune(&mut self, now: i64, retention: i64, max_bytes: Option<u64>) -> usize {
        let horizon = now.saturating_sub(retention);
        let before = self.segments.len();
        self.segments.retain(|s| {
            let keep = s.end() > horizon;
            if !keep {
                let _ = std::fs::remove_file(&s.path);
            }
            keep
        });
        if let Some(max) = max_bytes {
            let mut total = self.total_bytes();
            while total > max && !self.segments.is_empty() {
                let old = self.segments.remove(0);
                total -= old.bytes;
                let _ = std::fs::remove_file(&old.path);
            }
        }
        before - self.segments.len()
    }
}

/// Lists each sorted by key (each key once in a list) merged into one, a key's stats
/// folded: a k-way merge, each list read front to back.
fn merge_sorted(lists: Vec<Vec<(Vec<u8>, Stats)>>, clients: usize) -> Vec<(Vec<u8>, Stats)> {
    let mut out: Vec<(Vec<u8>, Stats)> = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    let mut iters: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    // The heap orders (key, list); each list's head stats wait in `heads`.
    let mut heads: Vec<Stats> = vec![Stats::default(); iters.len()];
    let mut heap = std::collections::BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some((k, s)) = it.next() {
            heads[i] = s;
            heap.push(std::cmp::Reverse((k, i)));
        }
    }
    while let Some(std::cmp::Reverse((k, i))) = heap.pop() {
        let s = match iters[i].next() {
            Some((nk, ns)) => {
                heap.push(std::cmp::Reverse((nk, i)));
                std::mem::replace(&mut heads[i], ns)
            }
            None => std::mem::take(&mut heads[i]),
        };
        match out.last_mut() {
            Some((have_k, have)) if *have_k == k => have.merge(&s, clients),
            _ => out.push((k, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: i64, keys: &[(&str, i64)]) -> Partitions {
        let mut m: BTreeMap<Vec<u8>, Stats> = BTreeMap::new();
        for (k, t) in keys {
            m.insert(k.as_bytes().to_vec(), Stats::one(*t, 1, None, 0));
        }
        let mut p = Partitions::new();
        p.insert(start, m.into_iter().collect());
        p
    }

    #[test]
    fn compaction_folds_a_day_once_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = RetroStore::open(dir.path()).unwrap();
        st.write_hours(part(0, &[("da", 10), ("db", 20)])).unwrap();
        st.write_hours(part(3600, &[("da", 3700)])).unwrap();
        st.write_hours(part(DAY, &[("da", DAY + 1)])).unwrap();
        assert_eq!(st.compact(DAY + 2 * HOUR, 0).unwrap(), 1);
        let spans: Vec<_> = st.segments().iter().map(|s| (s.span, s.start)).collect();
        assert_eq!(spans, vec![(Span::Day, 0), (Span::Hour, DAY)]);
        let da = st.segments()[0].get(b"da").unwrap().unwrap();
        assert_eq!((da.first, da.last, da.count), (10, 3700, 2));
        // A late event for the compacted day, then compaction again.
        st.write_hours(part(7200, &[("da", 7300)])).unwrap();
        st.compact(DAY + 2 * HOUR, 0).unwrap();
        let st = RetroStore::open(dir.path()).unwrap();
        let days: Vec<_> = st
            .segments()
            .iter()
            .filter(|s| s.span == Span::Day)
            .collect();
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].get(b"da").unwrap().unwrap().count, 3);
        // The day, the hour of the next day and the record of verified segments.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[2], super::super::verified::FILE);
        let record = std::fs::read_to_string(dir.path().join(&names[2])).unwrap();
        assert!(names[..2].iter().all(|n| record.contains(n.as_str())));
        assert_eq!(record.lines().count(), 3, "{record}");
    }

    #[test]
    fn an_interrupted_compaction_is_finished_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = RetroStore::open(dir.path()).unwrap();
        st.write_hours(part(0, &[("da", 10)])).unwrap();
        let hour = st.segments()[0].path.clone();
        let kept = std::fs::read(&hour).unwrap();
        st.compact(DAY + HOUR, 0).unwrap();
        // As if the process died after writing the day but before deleting the hour.
        std::fs::write(&hour, kept).unwrap();
        let st = RetroStore::open(dir.path()).unwrap();
        assert_eq!(st.segments().len(), 1);
        assert_eq!(st.segments()[0].get(b"da").unwrap().unwrap().count, 1);
        assert!(!hour.exists());
    }

    #[test]
    fn damaged_segments_are_set_aside_and_the_rest_answers() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = RetroStore::open(dir.path()).unwrap();
        st.write_hours(part(0, &[("da", 10)])).unwrap();
        st.write_hours(part(HOUR, &[("db", HOUR + 1)])).unwrap();
        let victim = st.segments()[1].path.clone();
        let mut b = std::fs::read(&victim).unwrap();
        let n = b.len();
        b[n / 2] ^= 1;
        std::fs::write(&victim, b).unwrap();
        std::fs::write(dir.path().join(".h5-9.seg.tmp"), b"half").unwrap();
        let st = RetroStore::open(dir.path()).unwrap();
        assert_eq!(st.segments().len(), 1);
        assert_eq!(st.set_aside.len(), 1);
        assert!(st.set_aside[0].contains("checksum"), "{:?}", st.set_aside);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(".seg.damaged")));
        assert!(!names.iter().any(|n| n.ends_with(".tmp")));
    }

    #[test]
    fn retention_and_size_prune_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = RetroStore::open(dir.path()).unwrap();
        for h in 0..4 {
            st.write_hours(part(h * HOUR, &[("dx", h * HOUR)])).unwrap();
        }
        // Retention: partitions ending at or before now - retention go.
        assert_eq!(st.prune(4 * HOUR, 3 * HOUR, None), 1);
        let one = st.segments()[0].bytes;
        assert_eq!(st.prune(4 * HOUR, 100 * HOUR, Some(2 * one)), 1);
        let starts: Vec<i64> = st.segments().iter().map(|s| s.start).collect();
        assert_eq!(starts, vec![2 * HOUR, 3 * HOUR]);
    }

    #[test]
    fn sorted_lists_merge_with_each_key_once() {
        let list = |keys: &[(&str, i64)]| -> Vec<(Vec<u8>, Stats)> {
            keys.iter()
                .map(|(k, t)| (k.as_bytes().to_vec(), Stats::one(*t, 1, None, 0)))
                .collect()
        };
        let merged = merge_sorted(
            vec![
                list(&[("a", 5), ("c", 7)]),
                list(&[]),
                list(&[("a", 1), ("b", 2), ("c", 9)]),
                list(&[("d", 3)]),
            ],
            0,
        );
        let got: Vec<(&[u8], i64, i64, u64)> = merged
            .iter()
            .map(|(k, s)| (&k[..], s.first, s.last, s.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], 1, 5, 2),
                (&b"b"[..], 2, 2, 1),
                (&b"c"[..], 7, 9, 2),
                (&b"d"[..], 3, 3, 1)
            ]
        );
    }
}
