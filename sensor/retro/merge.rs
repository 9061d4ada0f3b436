//! A flush's merge: the workers' sorted runs into the partitions the segment writer takes,
//! equal (hour, key) values folded, the days already over as whole days. The runs are cut
//! at split points into key ranges merged in parallel (both cores), then the ranges are
//! concatenated in order.

use super::segment::Stats;
use super::store::Partitions;
use super::table::{order, Item, Run};
use super::{DAY, HOUR};
use rayon::prelude::*;
use std::cmp::Ordering;

/// A flush's partitions: (days over, hours), keys borrowed from the runs.
pub type Split<'r> = (Partitions<&'r [u8]>, Partitions<&'r [u8]>);

/// Values below which one range is merged alone (splitting costs more than it saves).
const SPLIT_AT: usize = 1 << 15;

/// Whether the day starting at `day` is over at `now` (an hour of grace after it): its
/// values go into its day segment, not hour segments.
pub fn day_is_over(day: i64, now: i64) -> bool {
    day + DAY + HOUR <= now
}

/// The partitions of `runs` at `now`: (days over, as whole days with a key's hours folded;
/// the others by hour), each partition in key order with each key once, the keys borrowed
/// from the runs. `cap` bounds the client sample.
pub fn partitions(runs: &[Run], now: i64, cap: usize) -> Split<'_> {
    let total: usize = runs.iter().map(Run::len).sum();
    let pieces = if total < SPLIT_AT {
        1
    } else {
        (rayon::current_num_threads() * 4).min(total / (SPLIT_AT / 4))
    };
    // Split points: evenly spaced values of the largest run; each run is cut before the
    // first value not below each point, so equal values fall in the same range.
    let largest = runs.iter().max_by_key(|r| r.len());
    let points: Vec<(i64, &[u8], i64)> = match largest {
        Some(r) if pieces > 1 => (1..pieces)
            .filter_map(|p| r.at(r.len() * p / pieces))
            .map(|(d, k, h, _)| (d, k, h))
            .collect(),
        _ => Vec::new(),
    };
    let cuts: Vec<Vec<usize>> = runs
        .iter()
        .map(|r| {
            let mut c = vec![0];
            c.extend(points.iter().map(|&p| r.rank(p)));
            c.push(r.len());
            c
        })
        .collect();
    let ranges: Vec<Vec<(usize, usize)>> = (0..=points.len())
        .map(|p| cuts.iter().map(|c| (c[p], c[p + 1])).collect())
        .collect();
    let parts: Vec<Split<'_>> = ranges
        .par_iter()
        .map(|range| split(merge_range(runs, range, cap), now, cap))
        .collect();
    let (mut days, mut hours) = (Partitions::new(), Partitions::new());
    for (d, h) in parts {
        append(&mut days, d, cap);
        append(&mut hours, h, cap);
    }
    (days, hours)
}

/// Merge each run's values in `range` ((from, to) per run) in (day, key, hour) order,
/// equal (hour, key) values folded.
fn merge_range<'r>(runs: &'r [Run], range: &[(usize, usize)], cap: usize) -> Vec<Merged<'r>> {
    let mut heads: Vec<(usize, usize)> = range.to_vec();
    let mut out: Vec<Merged<'r>> =
        Vec::with_capacity(range.iter().map(|&(a, b)| b.saturating_sub(a)).sum());
    loop {
        // The runs are few (the workers' tables): pick the least head by a scan.
        let mut best: Option<(usize, Item<'r>)> = None;
        for (r, &(at, to)) in heads.iter().enumerate() {
            if at >= to {
                continue;
            }
            let Some(item) = runs[r].at(at) else { continue };
            let better = match &best {
                None => true,
                Some((_, b)) => order((item.0, item.1, item.2), (b.0, b.1, b.2)) == Ordering::Less,
            };
            if better {
                best = Some((r, item));
            }
        }
        let Some((r, (day, key, hour, stats))) = best else {
            break;
        };
        heads[r].0 += 1;
        match out.last_mut() {
            Some(m) if m.hour == hour && m.key == key => m.stats.merge(stats, cap),
            _ => out.push(Merged {
                day,
                key,
                hour,
                stats: stats.clone(),
            }),
        }
    }
    out
}

/// One merged value.
struct Merged<'r> {
    day: i64,
    key: &'r [u8],
    hour: i64,
    stats: Stats,
}

/// Merged values in (day, key, hour) order → (days over, hours).
fn split(merged: Vec<Merged<'_>>, now: i64, cap: usize) -> Split<'_> {
    let (mut days, mut hours) = (Partitions::new(), Partitions::new());
    for m in merged {
        let (part, start) = if day_is_over(m.day, now) {
            (&mut days, m.day)
        } else {
            (&mut hours, m.hour)
        };
        push(part.entry(start).or_default(), m.key, m.stats, cap);
    }
    (days, hours)
}

/// Append a range's partitions after the earlier ranges' (a key split across the boundary,
/// two hours of one day, folded).
fn append<'r>(into: &mut Partitions<&'r [u8]>, from: Partitions<&'r [u8]>, cap: usize) {
    for (start, entries) in from {
        let list = into.entry(start).or_default();
        if list.is_empty() {
            *list = entries;
            continue;
        }
        let mut it = entries.into_iter();
        if let Some((k, s)) = it.next() {
            push(list, k, s, cap);
        }
        list.extend(it);
    }
}

fn push<'r>(list: &mut Vec<(&'r [u8], Stats)>, key: &'r [u8], stats: Stats, cap: usize) {
    match list.last_mut() {
        Some((k, have)) if *k == key => have.merge(&stats, cap),
        _ => list.push((key, stats)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retro::store::day_of;
    use crate::retro::table::{hash_of, ValueTable};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};

    /// One sighting: worker, hour index, key index, second in the hour, field, client.
    type Sighting = (usize, i64, u8, i64, u8, Option<u8>);

    /// Partition start → key → stats.
    type Folded = BTreeMap<i64, BTreeMap<Vec<u8>, Stats>>;

    /// The naive answer: every sighting folded into a `BTreeMap` per partition.
    fn naive(sightings: &[Sighting], base: i64, now: i64, cap: usize) -> (Folded, Folded) {
        let (mut days, mut hours) = (BTreeMap::new(), BTreeMap::new());
        for &(_, h, k, s, f, c) in sightings {
            let hour = base + h * HOUR;
            let t = hour + s;
            let (part, start) = if day_is_over(day_of(hour), now) {
                (&mut days, day_of(hour))
            } else {
                (&mut hours, hour)
            };
            let client = c.map(|c| IpAddr::V4(Ipv4Addr::new(10, 0, 0, c)));
            let one = Stats::one(t, 1 << f, client, cap);
            part.entry(start)
                .or_insert_with(BTreeMap::new)
                .entry(key(k))
                .and_modify(|have: &mut Stats| have.merge(&one, cap))
                .or_insert(one);
        }
        (days, hours)
    }

    fn key(k: u8) -> Vec<u8> {
        // Keys sharing long prefixes, of several lengths, some a prefix of others.
        let mut v = b"uhttp://host.example/".to_vec();
        v.extend(std::iter::repeat_n(b'a' + k % 3, usize::from(k / 3)));
        v
    }

    fn tables(sightings: &[Sighting], workers: usize, base: i64, cap: usize) -> Vec<Run> {
        let mut tables: Vec<ValueTable> = (0..workers).map(|_| ValueTable::default()).collect();
        for &(w, h, k, s, f, c) in sightings {
            let hour = base + h * HOUR;
            let client = c.map(|c| IpAddr::V4(Ipv4Addr::new(10, 0, 0, c)));
            let key = key(k);
            let t = &mut tables[w % workers];
            assert!(t.add(
                hash_of(hour, &key),
                hour,
                &key,
                hour + s,
                1 << f,
                client,
                cap
            ));
        }
        tables.into_iter().map(ValueTable::into_run).collect()
    }

    fn owned(p: Partitions<&[u8]>) -> Folded {
        p.into_iter()
            .map(|(start, list)| {
                let keys: Vec<&[u8]> = list.iter().map(|(k, _)| *k).collect();
                assert!(
                    keys.windows(2).all(|w| w[0] < w[1]),
                    "not in key order, or twice"
                );
                let mut m = BTreeMap::new();
                for (k, mut s) in list {
                    s.clients.sort();
                    m.insert(k.to_vec(), s);
                }
                (start, m)
            })
            .collect()
    }

    fn sorted_clients(mut p: Folded) -> Folded {
        for m in p.values_mut() {
            for s in m.values_mut() {
                s.clients.sort();
            }
        }
        p
    }

    proptest! {
        /// The workers' runs merged (in one range, or cut into many) equal the naive fold of
        /// every sighting: the same partitions, keys, counts, times, fields and clients.
        #[test]
        fn merged_runs_equal_a_naive_fold(
            sightings in prop::collection::vec(
                (0usize..4, 0i64..60, 0u8..40, 0i64..3600, 0u8..18, prop::option::of(0u8..6)),
                0..400,
            ),
            workers in 1usize..5,
            open_hours in 0i64..60,
        ) {
            let base = 100 * DAY;
            // Days before `now`'s are over (with an hour of grace); `open_hours` moves it.
            let now = base + 60 * HOUR - open_hours * HOUR;
            let cap = 64; // above the 6 clients: the sample is the whole set
            let runs = tables(&sightings, workers, base, cap);
            let (want_days, want_hours) = naive(&sightings, base, now, cap);
            let (days, hours) = partitions(&runs, now, cap);
            prop_assert_eq!(owned(days), sorted_clients(want_days.clone()));
            prop_assert_eq!(owned(hours), sorted_clients(want_hours.clone()));
            // The same runs cut into many ranges: the parallel path.
            let total: usize = runs.iter().map(Run::len).sum();
            let ranges = (total / 3).max(1);
            let cuts = split_evenly(&runs, ranges);
            let parts: Vec<_> = cuts
                .iter()
                .map(|r| split(merge_range(&runs, r, cap), now, cap))
                .collect();
            let (mut d, mut h) = (Partitions::new(), Partitions::new());
            for (a, b) in parts {
                append(&mut d, a, cap);
                append(&mut h, b, cap);
            }
            prop_assert_eq!(owned(d), sorted_clients(want_days));
            prop_assert_eq!(owned(h), sorted_clients(want_hours));
        }
    }

    /// Cut every run at `n − 1` evenly spaced values of the first run.
    fn split_evenly(runs: &[Run], n: usize) -> Vec<Vec<(usize, usize)>> {
        let first = &runs[0];
        let points: Vec<_> = (1..n)
            .filter_map(|p| first.at(first.len() * p / n))
            .map(|(d, k, h, _)| (d, k, h))
            .collect();
        (0..=points.len())
            .map(|p| {
                runs.iter()
                    .map(|r| {
                        let from = if p == 0 { 0 } else { r.rank(points[p - 1]) };
                        let to = points.get(p).map_or(r.len(), |&q| r.rank(q));
                        (from, to)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_large_flush_is_cut_into_ranges_and_agrees_with_one_range() {
        // 100,000 values on two workers, half of them seen by both, over two open hours.
        let base = 100 * DAY;
        let now = base + 2 * HOUR;
        let mut a = ValueTable::default();
        let mut b = ValueTable::default();
        for i in 0..100_000u32 {
            let hour = base + i64::from(i % 2) * HOUR;
            let key = format!("uhttp://h{}.example/{i}", i % 977);
            let h = hash_of(hour, key.as_bytes());
            a.add(h, hour, key.as_bytes(), hour + 1, 4, None, 0);
            if i % 2 == 0 {
                b.add(h, hour, key.as_bytes(), hour + 2, 4, None, 0);
            }
        }
        let runs = vec![a.into_run(), b.into_run()];
        let (days, hours) = partitions(&runs, now, 0);
        assert!(days.is_empty());
        let one = split(
            merge_range(&runs, &[(0, runs[0].len()), (0, runs[1].len())], 0),
            now,
            0,
        )
        .1;
        assert_eq!(hours.len(), 2);
        assert_eq!(hours, one);
        let counts: u64 = hours.values().flatten().map(|(_, s)| s.count).sum();
        assert_eq!(counts, 150_000);
        assert_eq!(hours[&base].len(), 50_000);
        assert!(hours[&base].iter().all(|(_, s)| s.count == 2));
    }
}
