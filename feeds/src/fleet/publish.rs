//! `trawl publish --to DIR`: the current snapshot as a signed release in a directory any
//! static web server can serve:
//!
//! ```text
//! DIR/latest.json                      the signed manifest (written last, atomically)
//! DIR/bundles/ID.jsonl.gz              the full set of each kept release
//! DIR/deltas/FROM-ID.delta.gz          from each of the last `keep` releases to the latest
//! ```
//!
//! The delta from the previous release is computed from its bundle; the older ones are the
//! previous release's deltas composed with it ([`Delta::then`]), so a publish reads one
//! earlier bundle whatever `keep` is.
//!
//! Publishing an unchanged set writes nothing, so `latest.json` keeps its bytes (and a web
//! server its ETag: a sensor's conditional GET costs one 304).

use super::delta::Delta;
use super::keys::SigningKey;
use super::manifest::{DeltaRef, FileRef, Manifest, FORMAT};
use super::set::{known_key, sha256_hex, IndicatorSet};
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
    let bytes = crate::fetch::read_file(
        &path,
        &name,
        crate::fetch::DEFAULT_MAX_BYTES,
        &crate::NoProgress,
    )
    .ok()?;
    IndicatorSet::parse_known(&bytes, &name).ok()
}

/// The delta from `from` to the new release: `prev`'s delta from `from` (read back and
/// checked against `prev`'s manifest) followed by `step` (from `prev` to the new release).
fn compose(to: &Path, prev: &Manifest, from: &str, step: &Delta) -> Result<Delta, FleetError> {
    let d = prev
        .deltas
        .iter()
        .find(|d| d.from == from)
        .ok_or_else(|| FleetError::Local(format!("{} has no delta from {from}", prev.id)))?;
    let path = to.join(&d.file.path);
    let name = path.display().to_string();
    let bytes = crate::fetch::read_file(
        &path,
        &name,
        crate::fetch::DEFAULT_MAX_BYTES,
        &crate::NoProgress,
    )?;
    if sha256_hex(&bytes) != d.file.sha256 {
        return Err(FleetError::Local(format!(
            "{name}: not the content its manifest names"
        )));
    }
    Delta::parse(&bytes, from, &prev.id, known_key)?.then(step)
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
    // The releases deltas start from: the previous one, then those it had deltas from.
    let mut history: Vec<String> = Vec::new();
    if let Some(p) = &prev {
        for from in std::iter::once(&p.id).chain(p.deltas.iter().map(|d| &d.from)) {
            if history.len() < opts.keep && !history.contains(from) && *from != id {
                history.push(from.clone());
            }
        }
    }
    // The delta from the previous release, from its set; those from older releases by
    // composing the previous release's deltas with it (their cost is the changes, not the
    // set), and only when that fails (a format 1 delta, a missing file) from their bundles.
    let step = prev.as_ref().and_then(|p| match read_set(to, &p.id) {
        Some(old) => Some(Delta::between(&old, set, &p.id, &id)),
        None => {
            tracing::warn!(release = %p.id, "its bundle is gone or unreadable: no delta from it");
            None
        }
    });
    let mut deltas = Vec::new();
    let mut composed = 0;
    for from in &history {
        let delta = match (&step, &prev) {
            (Some(step), Some(p)) if *from == p.id => Some(step.clone()),
            (Some(step), Some(p)) => match compose(to, p, from, step) {
                Ok(d) => {
                    composed += 1;
                    Some(d)
                }
                Err(e) => {
                    tracing::info!(release = %from, reason = %e, "delta not composed: reading its bundle");
                    None
                }
            },
            _ => None,
        };
        let delta = match delta {
            Some(d) => d,
            None => match read_set(to, from) {
                Some(old) => Delta::between(&old, set, from, &id),
                None => {
                    tracing::warn!(release = %from, "its bundle is gone or unreadable: no delta from it");
                    continue;
                }
            },
        }
        .to_bytes();
        let path = delta_path(from, &id);
        let stored = write_atomic(&to.join(&path), &delta, true)?;
        deltas.push(DeltaRef {
            from: from.clone(),
            file: FileRef {
                path,
                sha256: sha256_hex(&delta),
                bytes: stored,
            },
        });
    }
    tracing::debug!(release = %id, deltas = deltas.len(), composed, "deltas written");
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

/// Remove bundles no delta starts from and deltas of neither this nor the previous release
/// (a sensor that read the previous `latest.json` a moment ago still finds its files).
fn prune(to: &Path, latest: &Manifest, prev: Option<&Manifest>) {
    let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
    for m in std::iter::once(latest).chain(prev) {
        keep.insert(m.bundle.path.clone());
        for d in &m.deltas {
            keep.insert(d.file.path.clone());
            keep.insert(bundle_path(&d.from));
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

    /// Releases 2.. write their older deltas by composing the previous release's: with every
    /// bundle but the previous one deleted before each publish, every delta in the manifest
    /// still takes its release's set to the latest one exactly.
    #[test]
    fn older_deltas_are_composed_without_their_bundles() {
        let dir = std::env::temp_dir().join(format!("trawl-compose-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SigningKey::generate().unwrap();
        let opts = PublishOptions {
            keep: 4,
            intended: false,
            now: 1_700_000_000,
        };
        let mut held: Vec<(String, IndicatorSet)> = Vec::new();
        for cycle in 0..7usize {
            // Each cycle drops two keys, adds two, changes one (and brings one back).
            let values: Vec<(usize, u8)> = (2 * cycle..2 * cycle + 20)
                .map(|n| (n, if n == 3 * cycle { 90 } else { 50 }))
                .collect();
            let s = set(&values);
            if let Some((prev, _)) = held.last() {
                for e in std::fs::read_dir(dir.join("bundles")).unwrap().flatten() {
                    if !e.file_name().to_string_lossy().starts_with(prev.as_str()) {
                        std::fs::remove_file(e.path()).unwrap();
                    }
                }
            }
            let r = publish_set(&s, SetCounts::default(), 1, &dir, &key, &opts).unwrap();
            let m = previous(&dir, &key).unwrap().unwrap();
            assert_eq!(m.deltas.len(), cycle.min(4), "cycle {cycle}: {r:?}");
            for d in &m.deltas {
                let (_, old) = held.iter().find(|(id, _)| *id == d.from).unwrap();
                let path = dir.join(&d.file.path);
                let bytes =
                    crate::fetch::read_file(&path, "d", 1 << 20, &crate::NoProgress).unwrap();
                assert_eq!(sha256_hex(&bytes), d.file.sha256);
                let mut applied = old.clone();
                applied.apply_delta(&bytes, &d.from, &m.id).unwrap();
                assert_eq!(applied.content_hash(), m.content_hash, "from {}", d.from);
            }
            held.push((m.id.clone(), s));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
