//! The indicator set a fleet publisher releases: one JSON indicator a line, sorted by
//! (itype, value), no allowlist entries and nothing an allowlist covers (what the publisher
//! would alert on), without `last_seen` (it changes at every fetch of a feed). Its content hash is the SHA-256 of those bytes; a delta from one set to
//! another lists removed keys and added or changed lines, so applying it reproduces the new
//! set's exact bytes (and hash) without re-serialising anything.

use super::delta::Delta;
use super::FleetError;
use matcher::{Indicator, Snapshot};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// An indicator's key in a set: its itype name and value.
pub type Key = (String, String);

/// A published indicator set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorSet {
    lines: BTreeMap<Key, String>,
}

/// Counts of a set, for the manifest.
#[derive(Debug, Clone, Default)]
pub struct SetCounts {
    /// Indicators per itype name.
    pub by_itype: BTreeMap<String, usize>,
    /// Indicators per source (feed) name.
    pub by_feed: BTreeMap<String, usize>,
}

fn key_of(ind: &Indicator) -> Key {
    (ind.itype.as_str().to_string(), ind.value.clone())
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl IndicatorSet {
    /// What `snap` would alert on (no allowlist entries, nothing allowlisted), and its
    /// counts.
    pub fn from_snapshot(snap: &Snapshot) -> (IndicatorSet, SetCounts) {
        IndicatorSet::from_snapshot_where(snap, |_| true)
    }

    /// [`IndicatorSet::from_snapshot`] keeping only the indicators `keep` accepts (a
    /// server's release for one token grant: what that token may see).
    pub fn from_snapshot_where(
        snap: &Snapshot,
        keep: impl Fn(&Indicator) -> bool,
    ) -> (IndicatorSet, SetCounts) {
        let mut set = IndicatorSet::default();
        let mut counts = SetCounts::default();
        for (id, value) in snap.all_values().into_iter().enumerate() {
            let Some(ind) = snap.record_with_value(id as matcher::IndicatorId, value) else {
                continue;
            };
            if ind.allowlist || ind.allowlisted_by.is_some() || !keep(&ind) {
                continue;
            }
            *counts
                .by_itype
                .entry(ind.itype.as_str().to_string())
                .or_default() += 1;
            for s in &ind.sources {
                *counts.by_feed.entry(s.clone()).or_default() += 1;
            }
            // `last_seen` moves on every fetch of a feed: published, it would make every
            // line a change and every delta as large as the bundle.
            let ind = Indicator {
                last_seen: None,
                ..ind
            };
            if let Ok(line) = serde_json::to_string(&ind) {
                set.lines.insert(key_of(&ind), line);
            }
        }
        (set, counts)
    }

    /// A set from its canonical bytes; every line is checked as a served indicator is
    /// (normal form, breadth, group names), and must be unique and in order.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<IndicatorSet, FleetError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| FleetError::Refused(format!("{origin}: not UTF-8: {e}")))?;
        let mut set = IndicatorSet::default();
        let mut last: Option<Key> = None;
        for (n, line) in text.lines().enumerate() {
            let ind = checked_line(line)
                .map_err(|e| FleetError::Refused(format!("{origin}:{}: {e}", n + 1)))?;
            let key = key_of(&ind);
            if last.as_ref().is_some_and(|l| *l >= key) {
                return Err(FleetError::Refused(format!(
                    "{origin}:{}: out of order or repeated",
                    n + 1
                )));
            }
            last = Some(key.clone());
            set.lines.insert(key, line.to_string());
        }
        Ok(set)
    }

    /// A set from bytes this trawl verified before (the publisher's own bundles, a
    /// sensor's held set, whose content hash is checked again after a delta): lines must be
    /// JSON with an `itype` and a `value`, unique and in order; values are not normalised
    /// again (a tenth of [`IndicatorSet::parse`]'s cost on a large set).
    pub fn parse_known(bytes: &[u8], origin: &str) -> Result<IndicatorSet, FleetError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| FleetError::Local(format!("{origin}: not UTF-8: {e}")))?;
        let mut set = IndicatorSet::default();
        let mut last: Option<Key> = None;
        for (n, line) in text.lines().enumerate() {
            let key = known_key(line)
                .map_err(|e| FleetError::Local(format!("{origin}:{}: {e}", n + 1)))?;
            if last.as_ref().is_some_and(|l| *l >= key) {
                return Err(FleetError::Local(format!(
                    "{origin}:{}: out of order or repeated",
                    n + 1
                )));
            }
            last = Some(key.clone());
            set.lines.insert(key, line.to_string());
        }
        Ok(set)
    }

    /// The canonical bytes: every line in key order, each ending in a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.values().map(|l| l.len() + 1).sum());
        for l in self.lines.values() {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// SHA-256 of [`IndicatorSet::to_bytes`].
    pub fn content_hash(&self) -> String {
        sha256_hex(&self.to_bytes())
    }

    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The delta from `self` (release `from`) to `new` (release `to`), as bytes in the
    /// format this build writes (see [`Delta`]).
    pub fn delta_to(&self, new: &IndicatorSet, from: &str, to: &str) -> Vec<u8> {
        Delta::between(self, new, from, to).to_bytes()
    }

    /// Apply delta bytes from release `from` to `to` (format 1 or 2), every added or changed
    /// line checked as a served indicator. A delta for other releases, a malformed line, or
    /// an operation that does not fit the held set is an error (the caller then fetches the
    /// full bundle).
    pub fn apply_delta(&mut self, delta: &[u8], from: &str, to: &str) -> Result<(), FleetError> {
        Delta::parse(delta, from, to, |l| checked_line(l).map(|i| key_of(&i)))?.apply(self)
    }

    /// The lines by key.
    pub(super) fn lines(&self) -> &BTreeMap<Key, String> {
        &self.lines
    }

    /// The lines by key, for applying a delta.
    pub(super) fn lines_mut(&mut self) -> &mut BTreeMap<Key, String> {
        &mut self.lines
    }

    /// The indicators, for the update pipeline.
    pub fn indicators(&self) -> impl Iterator<Item = Indicator> + '_ {
        self.lines
            .values()
            .filter_map(|l| serde_json::from_str::<Indicator>(l).ok())
    }
}

/// The key of a line this trawl verified before (only `itype` and `value` are read).
pub(super) fn known_key(line: &str) -> Result<Key, String> {
    #[derive(serde::Deserialize)]
    struct KeyOnly {
        itype: matcher::IndicatorType,
        value: String,
    }
    let k: KeyOnly = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok((k.itype.as_str().to_string(), k.value))
}

/// One line of a set or delta as an indicator, checked like a served submission.
fn checked_line(line: &str) -> Result<Indicator, String> {
    let ind = crate::update::check_served_line(line)?;
    if ind.allowlist || ind.allowlisted_by.is_some() {
        return Err("an allowlist entry or allowlisted indicator in a published set".into());
    }
    Ok(ind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::IndicatorType;

    fn set(values: &[(&str, u8)]) -> IndicatorSet {
        let mut s = IndicatorSet::default();
        for (v, c) in values {
            let mut i = Indicator::new(v.to_string(), IndicatorType::Fqdn, "f");
            i.confidence = *c;
            s.lines
                .insert(key_of(&i), serde_json::to_string(&i).unwrap());
        }
        s
    }

    #[test]
    fn a_delta_reproduces_the_new_set_byte_for_byte() {
        let old = set(&[("a.example", 50), ("b.example", 50), ("c.example", 50)]);
        let new = set(&[("b.example", 90), ("c.example", 50), ("d.example", 50)]);
        let delta = old.delta_to(&new, "1-aaaaaaaaaaaa", "2-bbbbbbbbbbbb");
        let text = String::from_utf8(delta.clone()).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}"); // header, -a, +b, +d
        let mut applied = old.clone();
        applied
            .apply_delta(&delta, "1-aaaaaaaaaaaa", "2-bbbbbbbbbbbb")
            .unwrap();
        assert_eq!(applied.content_hash(), new.content_hash());
        assert_eq!(IndicatorSet::parse(&new.to_bytes(), "t").unwrap(), new);
        assert_eq!(
            IndicatorSet::parse_known(&new.to_bytes(), "t").unwrap(),
            new
        );
        // A delta for other releases, or one removing what is not held, is refused.
        let mut other = old.clone();
        assert!(other
            .apply_delta(&delta, "9-aaaaaaaaaaaa", "2-bbbbbbbbbbbb")
            .is_err());
        let mut twice = applied.clone();
        assert!(twice
            .apply_delta(&delta, "1-aaaaaaaaaaaa", "2-bbbbbbbbbbbb")
            .is_err());
    }

    #[test]
    fn parse_refuses_disorder_duplicates_and_bad_values() {
        let s = set(&[("a.example", 50), ("b.example", 50)]);
        let text = String::from_utf8(s.to_bytes()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.reverse();
        assert!(IndicatorSet::parse(lines.join("\n").as_bytes(), "t").is_err());
        let dup = format!("{}\n{}\n", lines[0], lines[0]);
        assert!(IndicatorSet::parse(dup.as_bytes(), "t").is_err());
        let bad = text.replace("a.example", "A.EXAMPLE");
        assert!(IndicatorSet::parse(bad.as_bytes(), "t").is_err());
        assert!(IndicatorSet::parse(b"\xff\n", "t").is_err());
    }
}
