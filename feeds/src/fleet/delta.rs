//! Deltas between two releases of a set (ARCHITECTURE.md §11, "the delta format").
//!
//! ```text
//! trawl-delta 2 FROM TO
//! -["itype","value"]      removed: the key was in FROM, is not in TO
//! +LINE                   added: the key was not in FROM
//! ~LINE                   changed: the key was in FROM with another line
//! ```
//!
//! One line per key, in key order (itype, value). Because additions and changes are told
//! apart, deltas compose without the sets: `delta(k→n) = delta(k→n-1).then(delta(n-1→n))`,
//! so a publisher writes its deltas from every kept release at the cost of the changes, not
//! of re-reading each kept release's bundle. Format 1 (`trawl-delta 1`: `-KEY`, and `+LINE`
//! for an addition or a change) is still read (older publishers write it) but not composed.

use super::set::{IndicatorSet, Key};
use super::FleetError;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// The format this build writes.
pub const FORMAT: u32 = 2;

const MAGIC: &str = "trawl-delta";

/// What a delta does to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The key is removed (it must be held).
    Remove,
    /// The line is added (its key must not be held).
    Add(String),
    /// The key's line is replaced (it must be held).
    Change(String),
    /// Format 1's `+`: added or replaced, the delta does not say which.
    Upsert(String),
}

/// A delta from release `from` to release `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The release it applies to.
    pub from: String,
    /// The release it makes.
    pub to: String,
    format: u32,
    ops: BTreeMap<Key, Op>,
}

fn bad(n: usize, why: impl std::fmt::Display) -> FleetError {
    FleetError::Refused(format!("delta line {n}: {why}"))
}

fn key_text(k: &Key) -> String {
    serde_json::to_string(&[&k.0, &k.1]).unwrap_or_default()
}

impl Delta {
    /// The delta from `old` (release `from`) to `new` (release `to`), in the format this
    /// build writes.
    pub fn between(old: &IndicatorSet, new: &IndicatorSet, from: &str, to: &str) -> Delta {
        let (old, new) = (old.lines(), new.lines());
        let mut ops = BTreeMap::new();
        for (k, _) in old.iter().filter(|(k, _)| !new.contains_key(*k)) {
            ops.insert(k.clone(), Op::Remove);
        }
        for (k, l) in new {
            match old.get(k) {
                None => ops.insert(k.clone(), Op::Add(l.clone())),
                Some(o) if o != l => ops.insert(k.clone(), Op::Change(l.clone())),
                Some(_) => None,
            };
        }
        Delta {
            from: from.to_string(),
            to: to.to_string(),
            format: FORMAT,
            ops,
        }
    }

    /// Keys the delta touches.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The delta's bytes (see the module docs; a delta read in format 1 is written back in
    /// format 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{MAGIC} {} {} {}\n", self.format, self.from, self.to).into_bytes();
        let legacy = self.format == 1;
        for (k, op) in &self.ops {
            let (mark, text) = match op {
                Op::Remove => ('-', key_text(k)),
                Op::Add(l) => ('+', l.clone()),
                Op::Change(l) if legacy => ('+', l.clone()),
                Op::Change(l) => ('~', l.clone()),
                Op::Upsert(l) => ('+', l.clone()),
            };
            out.push(mark as u8);
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Read a delta that must go from release `from` to `to`; `key_of` checks each added or
    /// changed line and gives its key (a sensor checks lines as served submissions, the
    /// publisher re-reading its own files only reads the key). Format 2 must list each key
    /// once and in order; format 1 each key once.
    pub fn parse(
        bytes: &[u8],
        from: &str,
        to: &str,
        key_of: impl Fn(&str) -> Result<Key, String>,
    ) -> Result<Delta, FleetError> {
        let text = std::str::from_utf8(bytes).map_err(|e| bad(1, format!("not UTF-8: {e}")))?;
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l).unwrap_or_default();
        let mut words = header.split(' ');
        let format = match (words.next(), words.next()) {
            (Some(MAGIC), Some("1")) => 1,
            (Some(MAGIC), Some("2")) => 2,
            (Some(MAGIC), Some(v)) => {
                return Err(bad(
                    1,
                    format!(
                        "delta format {:?} (this trawl reads 1 and {FORMAT}): upgrade trawl",
                        v.chars().take(20).collect::<String>()
                    ),
                ))
            }
            _ => return Err(bad(1, "not a trawl delta")),
        };
        if header != format!("{MAGIC} {format} {from} {to}") {
            return Err(bad(
                1,
                format!("header {header:?} is not a delta from {from} to {to}"),
            ));
        }
        let mut ops = BTreeMap::new();
        let mut last: Option<Key> = None;
        for (n, line) in lines {
            let n = n + 1;
            let (key, op) = match (line.as_bytes().first(), line.get(1..)) {
                (Some(b'-'), Some(k)) => {
                    let (itype, value): (String, String) =
                        serde_json::from_str(k).map_err(|e| bad(n, format!("removal: {e}")))?;
                    ((itype, value), Op::Remove)
                }
                (Some(b'+'), Some(l)) => {
                    let key = key_of(l).map_err(|e| bad(n, e))?;
                    let op = if format == 1 {
                        Op::Upsert(l.to_string())
                    } else {
                        Op::Add(l.to_string())
                    };
                    (key, op)
                }
                (Some(b'~'), Some(l)) if format == 2 => {
                    (key_of(l).map_err(|e| bad(n, e))?, Op::Change(l.to_string()))
                }
                _ => {
                    let ops = if format == 1 { "-, +" } else { "-, +, ~" };
                    return Err(bad(n, format!("not one of the operations {ops}")));
                }
            };
            if format == 2 && last.as_ref().is_some_and(|l| *l >= key) {
                return Err(bad(n, "out of key order or a key repeated"));
            }
            last = Some(key.clone());
            match ops.entry(key) {
                Entry::Occupied(_) => return Err(bad(n, "a key repeated")),
                Entry::Vacant(v) => {
                    v.insert(op);
                }
            }
        }
        Ok(Delta {
            from: from.to_string(),
            to: to.to_string(),
            format,
            ops,
        })
    }

    /// This delta followed by `next` (from this delta's `to`): one delta from `self.from` to
    /// `next.to`, whose result is the same. Per key the later operation wins, except that an
    /// addition stays an addition, a removal then an addition becomes a change, and an
    /// addition then a removal cancels out. Both must be in format 2 (format 1 does not tell
    /// additions from changes); an impossible pair (adding a held key) is an error.
    pub fn then(mut self, next: &Delta) -> Result<Delta, FleetError> {
        let local = |why: String| FleetError::Local(format!("composing deltas: {why}"));
        if next.from != self.to {
            return Err(local(format!(
                "a delta to {} cannot be followed by one from {}",
                self.to, next.from
            )));
        }
        if self.format != 2 || next.format != 2 {
            return Err(local("format 1 deltas do not compose".into()));
        }
        for (k, op) in &next.ops {
            match self.ops.entry(k.clone()) {
                Entry::Vacant(v) => {
                    v.insert(op.clone());
                }
                Entry::Occupied(mut o) => {
                    let merged = match (o.get(), op) {
                        (Op::Add(_), Op::Change(l)) => Some(Op::Add(l.clone())),
                        (Op::Add(_), Op::Remove) => None,
                        (Op::Change(_), Op::Change(l)) => Some(Op::Change(l.clone())),
                        (Op::Change(_), Op::Remove) => Some(Op::Remove),
                        (Op::Remove, Op::Add(l)) => Some(Op::Change(l.clone())),
                        (a, b) => {
                            return Err(local(format!(
                                "{} after {} of {}",
                                op_name(b),
                                op_name(a),
                                key_text(k)
                            )))
                        }
                    };
                    match merged {
                        Some(m) => {
                            o.insert(m);
                        }
                        None => {
                            o.remove();
                        }
                    }
                }
            }
        }
        self.to.clone_from(&next.to);
        Ok(self)
    }

    /// Apply to `set` (the set of release `from`). A removal or change of a key the set does
    /// not hold, or an addition of one it holds, is an error (the caller then fetches the
    /// bundle); `set` is left partly changed then.
    pub fn apply(&self, set: &mut IndicatorSet) -> Result<(), FleetError> {
        let refuse =
            |k: &Key, why: &str| FleetError::Refused(format!("delta: {why} {}", key_text(k)));
        let lines = set.lines_mut();
        for (k, op) in &self.ops {
            match op {
                Op::Remove => {
                    if lines.remove(k).is_none() {
                        return Err(refuse(
                            k,
                            "removes an indicator the held set does not have:",
                        ));
                    }
                }
                Op::Add(l) => {
                    if lines.insert(k.clone(), l.clone()).is_some() {
                        return Err(refuse(k, "adds an indicator the held set already has:"));
                    }
                }
                Op::Change(l) => match lines.get_mut(k) {
                    Some(held) => held.clone_from(l),
                    None => {
                        return Err(refuse(
                            k,
                            "changes an indicator the held set does not have:",
                        ))
                    }
                },
                Op::Upsert(l) => {
                    lines.insert(k.clone(), l.clone());
                }
            }
        }
        Ok(())
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Remove => "removal",
        Op::Add(_) => "addition",
        Op::Change(_) => "change",
        Op::Upsert(_) => "format-1 addition",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::set::known_key;
    use matcher::{Indicator, IndicatorType};
    use proptest::prelude::*;

    const KEYS: usize = 8;

    /// A set from one optional confidence level per key (`None`: the key is absent).
    fn set(levels: &[Option<u8>]) -> IndicatorSet {
        let mut s = IndicatorSet::default();
        for (n, level) in levels.iter().enumerate() {
            if let Some(c) = level {
                let mut i = Indicator::new(format!("k{n}.example"), IndicatorType::Fqdn, "f");
                i.confidence = 10 + 40 * c;
                let line = serde_json::to_string(&i).unwrap();
                s.lines_mut().insert(known_key(&line).unwrap(), line);
            }
        }
        s
    }

    fn id(n: usize) -> String {
        format!("{}-{:012x}", n + 1, n)
    }

    /// What the publisher does: the stored delta read back, then followed by the next step.
    fn reread(d: &Delta) -> Delta {
        Delta::parse(&d.to_bytes(), &d.from, &d.to, known_key).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// For every kept release k, the composed delta(k→n) applied to release k gives
        /// release n exactly (same content hash), and its bytes read back as a sensor reads
        /// them give the same; it never touches more keys than the steps did.
        #[test]
        fn composed_deltas_reproduce_every_later_release(
            seq in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0u8..3), KEYS), 2..8)
        ) {
            let sets: Vec<IndicatorSet> = seq.iter().map(|l| set(l)).collect();
            let steps: Vec<Delta> = (1..sets.len())
                .map(|n| Delta::between(&sets[n - 1], &sets[n], &id(n - 1), &id(n)))
                .collect();
            for k in 0..sets.len() - 1 {
                let mut composed = reread(&steps[k]);
                for (n, step) in steps.iter().enumerate().skip(k + 1) {
                    composed = reread(&composed).then(step).unwrap();
                    let target = &sets[n + 1];
                    prop_assert_eq!(&composed.from, &id(k));
                    prop_assert_eq!(&composed.to, &id(n + 1));
                    let mut applied = sets[k].clone();
                    composed.apply(&mut applied).unwrap();
                    prop_assert_eq!(applied.content_hash(), target.content_hash());
                    let mut by_bytes = sets[k].clone();
                    by_bytes.apply_delta(&composed.to_bytes(), &id(k), &id(n + 1)).unwrap();
                    prop_assert_eq!(&by_bytes, target);
                    let direct = Delta::between(&sets[k], target, &id(k), &id(n + 1));
                    prop_assert!(direct.ops.keys().all(|key| composed.ops.contains_key(key)));
                    prop_assert!(composed.len() <= steps[k..=n].iter().map(Delta::len).sum::<usize>());
                }
            }
        }

        /// A composed delta with one line dropped or altered does not give release n: the
        /// sensor's apply refuses it or the result fails the content hash.
        #[test]
        fn a_tampered_composed_delta_never_passes(
            seq in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0u8..3), KEYS), 3..6),
            pick in any::<prop::sample::Index>(),
            drop_it in any::<bool>(),
        ) {
            let sets: Vec<IndicatorSet> = seq.iter().map(|l| set(l)).collect();
            let last = sets.len() - 1;
            let mut composed = Delta::between(&sets[0], &sets[1], &id(0), &id(1));
            for n in 2..=last {
                composed = composed
                    .then(&Delta::between(&sets[n - 1], &sets[n], &id(n - 1), &id(n)))
                    .unwrap();
            }
            let text = String::from_utf8(composed.to_bytes()).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            // Lines the direct delta also has (a composed change may be a no-op: a key
            // removed then added back with its old line; dropping that changes nothing).
            let direct = Delta::between(&sets[0], &sets[last], &id(0), &id(last));
            let key_of_line = |l: &str| match l.as_bytes()[0] {
                b'-' => serde_json::from_str::<Key>(&l[1..]).unwrap(),
                _ => known_key(&l[1..]).unwrap(),
            };
            let essential: Vec<usize> = (1..lines.len())
                .filter(|&n| direct.ops.contains_key(&key_of_line(&lines[n])))
                .collect();
            prop_assume!(!essential.is_empty());
            let at = essential[pick.index(essential.len())];
            if drop_it {
                lines.remove(at);
            } else if lines[at].contains("\"confidence\":10") {
                lines[at] = lines[at].replace("\"confidence\":10", "\"confidence\":11");
            } else {
                // A removal becomes a change of the same key, a change an addition.
                let swapped = match lines[at].as_bytes()[0] {
                    b'~' => lines[at].replacen('~', "+", 1),
                    b'+' => lines[at].replacen('+', "~", 1),
                    _ => lines[at].replacen('-', "~", 1),
                };
                lines[at] = swapped;
            }
            let tampered = lines.join("\n") + "\n";
            let mut held = sets[0].clone();
            let result = held.apply_delta(tampered.as_bytes(), &id(0), &id(last));
            prop_assert!(result.is_err() || held.content_hash() != sets[last].content_hash(),
                "tampered delta passed:\n{}", tampered);
        }
    }

    #[test]
    fn format_1_is_still_read_but_not_composed_and_unknown_formats_say_upgrade() {
        let old = set(&[Some(0), Some(0), None]);
        let new = set(&[None, Some(1), Some(0)]);
        let v2 = Delta::between(&old, &new, &id(0), &id(1));
        // What a publisher before format 2 wrote: `+` for additions and changes alike.
        let v1 = String::from_utf8(v2.to_bytes())
            .unwrap()
            .replace("trawl-delta 2", "trawl-delta 1")
            .replace('~', "+");
        let mut held = old.clone();
        held.apply_delta(v1.as_bytes(), &id(0), &id(1)).unwrap();
        assert_eq!(held, new);
        let parsed = Delta::parse(v1.as_bytes(), &id(0), &id(1), known_key).unwrap();
        assert_eq!(
            parsed.to_bytes(),
            v1.as_bytes(),
            "format 1 written back as read"
        );
        let next = Delta::between(&new, &old, &id(1), &id(2));
        let err = parsed.then(&next).unwrap_err().to_string();
        assert!(err.contains("format 1"), "{err}");
        // Composition needs consecutive releases.
        let err = v2.clone().then(&v2).unwrap_err().to_string();
        assert!(err.contains("cannot be followed"), "{err}");
        let v3 = String::from_utf8(v2.to_bytes())
            .unwrap()
            .replace("trawl-delta 2", "trawl-delta 3");
        let err = held
            .clone()
            .apply_delta(v3.as_bytes(), &id(0), &id(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("upgrade trawl"), "{err}");
        // Format 2 lists each key once, in order; `~` is not a format 1 operation.
        let text = String::from_utf8(v2.to_bytes()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1..].reverse();
        let disordered = lines.join("\n");
        assert!(old
            .clone()
            .apply_delta(disordered.as_bytes(), &id(0), &id(1))
            .unwrap_err()
            .to_string()
            .contains("order"));
        let tilde_in_v1 = text.replace("trawl-delta 2", "trawl-delta 1");
        assert!(old
            .clone()
            .apply_delta(tilde_in_v1.as_bytes(), &id(0), &id(1))
            .is_err());
    }
}
