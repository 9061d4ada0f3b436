use super::*;
use crate::update::{merge_sorted, sort_merge};
use matcher::{Groups, IndicatorType, Severity, Tlp};
use proptest::prelude::*;

/// An indicator from a small space of values and metadata, so parts share keys often and
/// the order-dependent fields (provider, description, reference) differ between them.
fn arb_indicator() -> impl Strategy<Value = Indicator> {
    (
        0usize..3,
        0u8..12,
        0u8..=100,
        0u8..3,
        0u8..5,
        proptest::collection::vec(0u8..4, 0..3),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..3),
        proptest::option::of(-3i64..3),
        proptest::option::of(-3i64..3),
        proptest::option::of(0i64..3),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..3),
    )
        .prop_map(
            |(t, v, conf, sev, tlp, tags, prov, desc, first, last, exp, f)| {
                let (itype, value) = match t {
                    // Names whose label-reversed order differs from their own.
                    0 => (IndicatorType::Fqdn, format!("d{v}.ex{}", v % 3)),
                    1 => (IndicatorType::Ipv4, format!("192.0.2.{v}")),
                    _ => (IndicatorType::Url, format!("http://u{}.example/{v}", v % 3)),
                };
                let mut i = Indicator::new(value, itype, &format!("feed{}", v % 3));
                i.confidence = conf;
                i.severity = [Severity::Low, Severity::Medium, Severity::High][sev as usize];
                i.tlp = [
                    Tlp::Clear,
                    Tlp::Green,
                    Tlp::Amber,
                    Tlp::AmberStrict,
                    Tlp::Red,
                ][tlp as usize];
                i.tags = tags.iter().map(|t| format!("tag{t}")).collect();
                i.provider = prov.map(|p| format!("provider {p}"));
                i.description = desc.map(|d| format!("description {d}"));
                i.reference = desc.map(|d| format!("ref {d} {conf}"));
                i.first_seen = first;
                i.last_seen = last;
                i.expires = exp;
                (i.derived, i.exact_only, i.allowlist) = (f.0, f.1, f.2);
                if f.3 == 1 {
                    i.groups = Groups::from_names(["red"]);
                }
                i.tidy();
                i
            },
        )
}

/// The in-memory merge `trawl update` did before runs: each part merged, then the parts.
fn in_memory(parts: &[Vec<Indicator>]) -> Vec<Indicator> {
    let mut parts = parts.to_vec();
    for p in &mut parts {
        sort_merge(p);
    }
    merge_sorted(parts)
}

fn runs_of(parts: &[Vec<Indicator>], budget: usize, dir: Option<&Path>) -> Runs {
    let mut runs = Runs::default();
    for p in parts {
        let mut s = Sorter::new(budget, dir);
        for i in p {
            s.push(i).unwrap();
        }
        runs = runs.then(s.finish().unwrap());
    }
    runs
}

fn streamed(parts: &[Vec<Indicator>], budget: usize, dir: Option<&Path>) -> Vec<Indicator> {
    runs_of(parts, budget, dir)
        .merge()
        .map(|r| r.unwrap().0)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn streaming_merge_equals_the_in_memory_merge(
        parts in proptest::collection::vec(proptest::collection::vec(arb_indicator(), 0..40), 1..5),
        budget in 1usize..2000,
    ) {
        let want = in_memory(&parts);
        let dir = tempfile::tempdir().unwrap();
        prop_assert_eq!(&streamed(&parts, budget, Some(dir.path())), &want);
        prop_assert_eq!(&streamed(&parts, usize::MAX, None), &want);
        // The allowlist entries alone (as the update's first walk reads them), then the
        // same runs rewound for the whole walk.
        let mut walk = runs_of(&parts, budget, Some(dir.path())).merge_where(Some(record::is_allowlist));
        let allow: Vec<Indicator> = walk.by_ref().map(|r| r.unwrap().0).collect();
        let want_allow: Vec<Indicator> = want.iter().filter(|i| i.allowlist).cloned().collect();
        prop_assert_eq!(allow, want_allow);
        let again: Vec<Indicator> = walk.rewind().unwrap().merge().map(|r| r.unwrap().0).collect();
        prop_assert_eq!(&again, &want);
    }
}

#[test]
fn spilled_runs_live_in_the_directory_and_count_folds() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let mut s = Sorter::new(64, Some(&tmp));
    for v in [
        "c.example",
        "a.example",
        "b.example",
        "a.example",
        "c.example",
        "a.example",
    ] {
        s.push(&Indicator::new(v, IndicatorType::Fqdn, "f"))
            .unwrap();
    }
    assert_eq!(
        s.mem_bytes(),
        0,
        "a 64-byte budget spills at every record or two"
    );
    assert!(tmp.is_dir(), "runs are made in the directory given");
    let runs = s.finish().unwrap();
    assert_eq!(runs.mem_bytes(), 0);
    let got: Vec<(String, usize)> = runs
        .merge()
        .map(|r| r.map(|(i, n)| (i.value, n)).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            ("a.example".into(), 2),
            ("b.example".into(), 0),
            ("c.example".into(), 1)
        ]
    );
    // The run files are unnamed: nothing is left behind.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn a_sorter_without_a_directory_stays_in_memory_and_can_spill_later() {
    let mut s = Sorter::new(1, None);
    for v in ["b.example", "a.example"] {
        s.push(&Indicator::new(v, IndicatorType::Fqdn, "f"))
            .unwrap();
    }
    let runs = s.finish().unwrap();
    assert!(runs.mem_bytes() > 0);
    let dir = tempfile::tempdir().unwrap();
    let runs = runs.spill_to(dir.path()).unwrap();
    assert_eq!(runs.mem_bytes(), 0);
    let got: Vec<String> = runs.merge().map(|r| r.unwrap().0.value).collect();
    assert_eq!(got, ["a.example", "b.example"]);
}

#[test]
fn a_long_merge_keeps_a_bounded_set_of_key_buffers() {
    let mut runs = Runs::default();
    for part in 0..3 {
        let mut s = Sorter::new(usize::MAX, None);
        for i in 0..2000 {
            s.push(&Indicator::new(
                format!("d{i}.p{}.example", part % 2),
                IndicatorType::Fqdn,
                "f",
            ))
            .unwrap();
        }
        runs = runs.then(s.finish().unwrap());
    }
    let mut m = runs.merge();
    let n = m.by_ref().filter(|r| r.is_ok()).count();
    assert_eq!(n, 4000, "parts 0 and 2 list the same values");
    assert!(
        m.spare.len() <= m.heads.len() + 1,
        "{} spare buffers",
        m.spare.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// A presorted sorter (how an update takes a previous snapshot's entries, scanned in id
    /// order) gives what a sorting one gives: one run when the records come in order, and
    /// the same merge when some do not.
    #[test]
    fn a_presorted_run_merges_as_a_sorted_one(
        items in proptest::collection::vec(arb_indicator(), 0..60),
        in_order in 0usize..70,
        budget in 1usize..2000,
    ) {
        let mut items = items;
        let k = in_order.min(items.len());
        // The first `k` in key order (stable: equal keys keep their push order), the
        // rest as they come.
        items[..k].sort_by(matcher::snapshot::id_order);
        let dir = tempfile::tempdir().unwrap();
        let want = streamed(std::slice::from_ref(&items), budget, Some(dir.path()));
        for d in [Some(dir.path()), None] {
            let mut s = Sorter::presorted(budget, d);
            for i in &items {
                s.push(i).unwrap();
            }
            let runs = s.finish().unwrap();
            if k == items.len() {
                prop_assert_eq!(runs.sources.len(), 1, "records in order stay one run");
            }
            let got: Vec<Indicator> = runs.merge().map(|r| r.unwrap().0).collect();
            prop_assert_eq!(&got, &want);
        }
    }
}
