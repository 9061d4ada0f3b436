//! `trawl publish --to DIR`: the current snapshot as a signed release in a directory any
//! static web server can serve:
//!
//! ```text
//! DIR/latest.json                      the signed manifest (written last, atomically)
//! DIR/bundles/ID.jsonl.gz              the full set of the latest and the previous release
//! DIR/deltas/FROM-TO.delta.gz          a step: from each of the last `keep` releases to
//!                                      the release after it
//! ```
//!
//! A publish computes one step, from the previous release (read back from its bundle) to
//! the new one, and lists it with the previous release's steps (each written once, at its
//! own release, never rewritten): a sensor `i` releases behind applies the `i` steps in
//! order. So a publish reads one bundle and writes one delta whatever `keep` is, and the
//! stored deltas grow with `keep`, not with its square (one delta per kept release, each
//! re-composed to the latest, held `keep` times the changes at the oldest).
//!
//! Publishing an unchanged set writes nothing, so `latest.json` keeps its bytes (and a web
//! server its ETag: a sensor's conditional GET costs one 304).

use super::delta::Delta;
use super::keys::SigningKey;
use super::manifest::{DeltaRef, FileRef, Manifest, FORMAT};
use super::set::{sha256_hex, IndicatorSet};
use super::FleetError;
use matcher::Snapshot;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Deltas are written from this many previous releases (older sensors get the bundle).
    pub keep: usize,
    /// Mark the release as an intended shrink (sensors accept an empty or much smaller set).
    pub intended: bool,
    /// Now (Unix seconds).
    pub now: i64,
}

/// What `trawl publish` did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// The latest release.
    pub id: String,
    /// Nothing changed since it: nothing was written.
    pub unchanged: bool,
    /// Indicators in the set.
    pub total: usize,
    /// Bytes of the full bundle.
    pub bundle_bytes: u64,
    /// Each delta written: from which release, and its bytes.
    pub deltas: Vec<(String, u64)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FleetError + '_ {
    move |source| FleetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `bytes` to `path` through a temporary file and a rename, gzip-compressed when
/// `gzip`; returns the stored size.
fn write_atomic(path: &Path, bytes: &[u8], gzip: bool) -> Result<u64, FleetError> {
    #[cfg(test)]
    io_count::write();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let file = if gzip {
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        enc.write_all(bytes).map_err(io(&tmp))?;
        enc.finish().map_err(io(&tmp))?
    } else {
        let mut f = file;
        f.write_all(bytes).map_err(io(&tmp))?;
        f
    };
    file.sync_all().map_err(io(&tmp))?;
    let len = file.metadata().map_err(io(&tmp))?.len();
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(len)
}

fn bundle_path(id: &str) -> String {
    format!("bundles/{id}.jsonl.gz")
}

fn delta_path(from: &str, to: &str) -> String {
    format!("deltas/{from}-{to}.delta.gz")
}

/// The previous release in `to`, verified with the publisher's own key.
fn previous(to: &Path, key: &SigningKey) -> Result<Option<Manifest>, FleetError> {
    let path = to.join("latest.json");
    match std::fs::read(&path) {
        Ok(bytes) => Manifest::open(&bytes, &key.public())
            .map(Some)
            .map_err(|e| {
                FleetError::Local(format!(
                    "{}: {e}; publish with the key that signed it, or to a new directory",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// A kept release's set, read back from its bundle.
fn read_set(to: &Path, id: &str) -> Option<IndicatorSet> {
    let path = to.join(bundle_path(id));
    let name = path.display().to_string();
    #[cfg(test)]
    io_count::read();
    let bytes = crate::fetch::read_file(
        &path,
        &name,
        crate::fetch::DEFAULT_MAX_BYTES,
        &crate::NoProgress,
    )
    .ok()?;
    IndicatorSet::parse_known(&bytes, &name).ok()
}

/// Publish the data directory's current snapshot to `to` (see the module docs).
pub fn publish(
    data_dir: &Path,
    to: &Path,
    key: &SigningKey,
    opts: &PublishOptions,
) -> Result<PublishReport, FleetError> {
    let snap = Snapshot::open_current(data_dir).map_err(|e| {
        FleetError::Local(format!(
            "no snapshot to publish in {} ({e}): run `trawl update` first",
            data_dir.display()
        ))
    })?;
    let (set, counts) = IndicatorSet::from_snapshot(&snap);
    publish_set(&set, counts, snap.meta().version, to, key, opts)
}

/// Publish `set` (see [`publish`]); the part that needs no snapshot.
pub fn publish_set(
    set: &IndicatorSet,
    counts: super::set::SetCounts,
    source_version: u64,
    to: &Path,
    key: &SigningKey,
    opts: &PublishOptions,
) -> Result<PublishReport, FleetError> {
    for d in ["bundles", "deltas"] {
        let p = to.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    let prev = previous(to, key)?;
    let bytes = set.to_bytes();
    let hash = sha256_hex(&bytes);
    if let Some(p) = &prev {
        if p.content_hash == hash && p.intended == opts.intended {
            return Ok(PublishReport {
                id: p.id.clone(),
                unchanged: true,
                total: p.total,
                bundle_bytes: p.bundle.bytes,
                deltas: p
                    .deltas
                    .iter()
                    .map(|d| (d.from.clone(), d.file.bytes))
                    .collect(),
            });
        }
    }
    let serial = prev.as_ref().map_or(1, |p| p.serial + 1);
    let id = format!("{serial}-{}", &hash[..12]);
    let bundle = FileRef {
        path: bundle_path(&id),
        bytes: write_atomic(&to.join(bundle_path(&id)), &bytes, true)?,
        sha256: hash.clone(),
    };
    // The step from the previous release, from its set; then the previous release's own
    // list (its step and those before it, or, from a publisher before steps, its deltas
    // straight to it: either way a sensor there follows them to the previous release).
    let mut deltas: Vec<DeltaRef> = Vec::new();
    if let Some(p) = prev.as_ref().filter(|_| opts.keep > 0) {
        match read_set(to, &p.id) {
            Some(old) => {
                let delta = Delta::between(&old, set, &p.id, &id).to_bytes();
                let path = delta_path(&p.id, &id);
                let stored = write_atomic(&to.join(&path), &delta, true)?;
                deltas.push(DeltaRef {
                    from: p.id.clone(),
                    file: FileRef {
                        path,
                        sha256: sha256_hex(&delta),
                        bytes: stored,
                    },
                });
                for d in &p.deltas {
                    if deltas.len() < opts.keep
                        && d.from != id
                        && d.to().is_some()
                        && !deltas.iter().any(|k| k.from == d.from)
                    {
                        deltas.push(d.clone());
                    }
                }
            }
            None => {
                tracing::warn!(release = %p.id, "its bundle is gone or unreadable: no delta to this release");
            }
        }
    }
    tracing::debug!(release = %id, deltas = deltas.len(), "step written");
    let manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        serial,
        parent: prev.as_ref().map(|p| p.id.clone()),
        created: opts.now,
        source_version,
        total: set.len(),
        counts_by_itype: counts.by_itype,
        counts_by_feed: counts.by_feed,
        content_hash: hash,
        intended: opts.intended,
        bundle,
        deltas,
    };
    write_atomic(&to.join("latest.json"), &manifest.sign(key), false)?;
    prune(to, &manifest, prev.as_ref());
    Ok(PublishReport {
        id,
        unchanged: false,
        total: manifest.total,
        bundle_bytes: manifest.bundle.bytes,
        deltas: manifest
            .deltas
            .iter()
            .map(|d| (d.from.clone(), d.file.bytes))
            .collect(),
    })
}

/// Remove the files neither this nor the previous release names (a sensor that read the
/// previous `latest.json` a moment ago still finds its files; the next publish reads this
/// release's bundle).
fn prune(to: &Path, latest: &Manifest, prev: Option<&Manifest>) {
    let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
    for m in std::iter::once(latest).chain(prev) {
        keep.insert(m.bundle.path.clone());
        for d in &m.deltas {
            keep.insert(d.file.path.clone());
        }
    }
    for dir in ["bundles", "deltas"] {
        let Ok(entries) = std::fs::read_dir(to.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
            if !keep.contains(&rel) {
                if let Err(err) = std::fs::remove_file(e.path()) {
                    tracing::warn!(file = %e.path().display(), %err, "could not prune");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::set::SetCounts;
    use matcher::{Indicator, IndicatorType};

    fn set(values: &[(usize, u8)]) -> IndicatorSet {
        let lines: std::collections::BTreeMap<String, String> = values
            .iter()
            .map(|(n, c)| {
                let mut i = Indicator::new(format!("k{n:03}.example"), IndicatorType::Fqdn, "f");
                i.confidence = *c;
                (i.value.clone(), serde_json::to_string(&i).unwrap() + "\n")
            })
            .collect();
        IndicatorSet::parse(lines.values().cloned().collect::<String>().as_bytes(), "t").unwrap()
    }

    /// Files published and read back per publish (latest.json aside), in this thread.
    fn counted(f: impl FnOnce()) -> (usize, usize) {
        io_count::reset();
        f();
        io_count::get()
    }

    /// Each cycle drops two keys, adds two, changes one (and brings one back).
    fn cycle_set(cycle: usize) -> IndicatorSet {
        let values: Vec<(usize, u8)> = (2 * cycle..2 * cycle + 20)
            .map(|n| (n, if n == 3 * cycle { 90 } else { 50 }))
            .collect();
        set(&values)
    }

    /// Every delta of the latest manifest is a step, and from every release the manifest
    /// lists a sensor follows the steps to the latest set exactly; each publish reads one
    /// bundle and writes one bundle and one delta whatever `keep` is, and older bundles are
    /// pruned.
    #[test]
    fn a_publish_writes_one_step_and_sensors_follow_the_steps_to_the_latest() {
        for keep in [1usize, 4, 16] {
            let dir =
                std::env::temp_dir().join(format!("trawl-steps-{}-{keep}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let key = SigningKey::generate().unwrap();
            let opts = PublishOptions {
                keep,
                intended: false,
                now: 1_700_000_000,
            };
            let mut held: Vec<(String, IndicatorSet)> = Vec::new();
            for cycle in 0..20usize {
                let s = cycle_set(cycle);
                let (reads, writes) = counted(|| {
                    publish_set(&s, SetCounts::default(), 1, &dir, &key, &opts).unwrap();
                });
                let m = previous(&dir, &key).unwrap().unwrap();
                let first = cycle == 0;
                assert_eq!(reads, usize::from(!first), "keep {keep} cycle {cycle}");
                // The bundle, the step (none at the first), the manifest.
                assert_eq!(
                    writes,
                    if first { 2 } else { 3 },
                    "keep {keep} cycle {cycle}"
                );
                assert_eq!(m.deltas.len(), cycle.min(keep), "keep {keep} cycle {cycle}");
                for (n, d) in m.deltas.iter().enumerate() {
                    // Newest first: the step from the previous release, then the one before.
                    assert_eq!(d.from, held[held.len() - 1 - n].0);
                    assert_eq!(
                        d.to(),
                        Some(
                            held.get(held.len() - n)
                                .map_or(m.id.as_str(), |h| h.0.as_str())
                        )
                    );
                }
                for (from, old) in held.iter().rev().take(keep) {
                    let mut applied = old.clone();
                    let mut at = from.clone();
                    while at != m.id {
                        let d = m.deltas.iter().find(|d| d.from == at).unwrap();
                        let to = d.to().unwrap().to_string();
                        let path = dir.join(&d.file.path);
                        let bytes =
                            crate::fetch::read_file(&path, "d", 1 << 20, &crate::NoProgress)
                                .unwrap();
                        assert_eq!(sha256_hex(&bytes), d.file.sha256);
                        applied.apply_delta(&bytes, &at, &to).unwrap();
                        at = to;
                    }
                    assert_eq!(applied.content_hash(), m.content_hash, "from {from}");
                }
                let bundles = std::fs::read_dir(dir.join("bundles")).unwrap().count();
                assert_eq!(bundles, if first { 1 } else { 2 }, "latest and previous");
                let stored = std::fs::read_dir(dir.join("deltas")).unwrap().count();
                assert!(stored <= keep + 1, "keep {keep}: {stored} delta files");
                held.push((m.id.clone(), s));
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// A previous release published before steps (its deltas go straight to it): the new
    /// release lists them after its step, and a sensor on any of them follows two deltas.
    #[test]
    fn deltas_straight_to_the_previous_release_are_followed_by_the_step() {
        let dir = std::env::temp_dir().join(format!("trawl-straight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SigningKey::generate().unwrap();
        let opts = PublishOptions {
            keep: 4,
            intended: false,
            now: 1_700_000_000,
        };
        let sets: Vec<IndicatorSet> = (0..3).map(cycle_set).collect();
        let mut ids = Vec::new();
        for s in &sets[..2] {
            publish_set(s, SetCounts::default(), 1, &dir, &key, &opts).unwrap();
            ids.push(previous(&dir, &key).unwrap().unwrap().id);
        }
        // Rewrite release 2's manifest as an older publisher would have: a delta from
        // release 1 straight to 2 (which is its step) and one from a release 0 straight to 2.
        let mut m2 = previous(&dir, &key).unwrap().unwrap();
        let zero = "0-000000000000".to_string();
        let delta = Delta::between(&set(&[]), &sets[1], &zero, &m2.id).to_bytes();
        let path = delta_path(&zero, &m2.id);
        let bytes = write_atomic(&dir.join(&path), &delta, true).unwrap();
        m2.deltas.push(DeltaRef {
            from: zero.clone(),
            file: FileRef {
                path,
                sha256: sha256_hex(&delta),
                bytes,
            },
        });
        write_atomic(&dir.join("latest.json"), &m2.sign(&key), false).unwrap();
        publish_set(&sets[2], SetCounts::default(), 1, &dir, &key, &opts).unwrap();
        let m3 = previous(&dir, &key).unwrap().unwrap();
        let froms: Vec<&str> = m3.deltas.iter().map(|d| d.from.as_str()).collect();
        assert_eq!(froms, [ids[1].as_str(), ids[0].as_str(), zero.as_str()]);
        let mut applied = set(&[]);
        for d in [&m3.deltas[2], &m3.deltas[0]] {
            let bytes =
                crate::fetch::read_file(&dir.join(&d.file.path), "d", 1 << 20, &crate::NoProgress)
                    .unwrap();
            applied
                .apply_delta(&bytes, &d.from, d.to().unwrap())
                .unwrap();
        }
        assert_eq!(applied.content_hash(), m3.content_hash);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Files the publisher wrote and read back in this thread (tests count them).
#[cfg(test)]
mod io_count {
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    pub(super) fn read() {
        COUNT.with(|c| c.set((c.get().0 + 1, c.get().1)));
    }

    pub(super) fn write() {
        COUNT.with(|c| c.set((c.get().0, c.get().1 + 1)));
    }

    pub(super) fn reset() {
        COUNT.with(|c| c.set((0, 0)));
    }

    pub(super) fn get() -> (usize, usize) {
        COUNT.with(Cell::get)
    }
}
