//! The bodies of the `feed_auto`, `normalize`, `feed_export`, `feed_misp_hashes` and
//! `feed_pull_envelope` fuzz targets as proptests, so every `cargo test` runs them on
//! arbitrary input.

#[path = "fuzz_bodies/feed_export.rs"]
mod feed_export;
#[path = "fuzz_bodies/pull_envelope.rs"]
mod pull_envelope;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn feed_auto_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let feed = feeds::config::FeedConfig::new("fuzz", "fuzz.txt");
        let parsed = feeds::parse::parse_feed(&data, &feed);
        let _ = parsed;
    }

    #[test]
    fn feed_auto_never_panics_on_feed_like_text(data in "([#;]?[ -~]{0,40}[\r]?\n){0,30}") {
        let feed = feeds::config::FeedConfig::new("fuzz", "fuzz.txt");
        let _ = feeds::parse::parse_feed(data.as_bytes(), &feed);
    }

    #[test]
    fn feed_export_holds_on_feed_like_text(
        pick in any::<u8>(),
        text in "([0-9a-z.:/\"<>\\[\\]-]{0,40}\n){0,20}",
    ) {
        let mut data = vec![pick];
        data.extend_from_slice(text.as_bytes());
        feed_export::feed_export(&data);
    }

    /// The body of the `feed_misp_hashes` fuzz target, on hashes.csv-like text.
    #[test]
    fn misp_hashes_csv_never_panics(data in "([0-9a-fA-F]{0,33},?[0-9a-f-]{0,37}[\r]?\n){0,20}") {
        let (hashes, bad) = feeds::misp_feed::parse_hashes(data.as_bytes());
        let lines = data.as_bytes().split(|&b| b == b'\n').count();
        let kept: usize = hashes.values().map(Vec::len).sum();
        prop_assert!(kept + bad <= lines);
        for list in hashes.values() {
            prop_assert!(!list.is_empty() && list.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn normal_form_is_a_fixed_point(s in "\\PC{0,80}") {
        if let Ok(n) = matcher::normalize(&s, None) {
            let again = matcher::normalize(&n.value, Some(n.itype));
            prop_assert!(again.is_ok(), "{:?} -> {:?} fails to re-normalise", s, n);
            prop_assert_eq!(again.unwrap().value, n.value);
        }
    }
}

/// The body of the `fleet_release` fuzz target.
fn fleet_release(data: &[u8]) {
    use feeds::fleet::{keys::SigningKey, manifest::Manifest, set::IndicatorSet};
    if let Ok(key) = SigningKey::generate() {
        assert!(
            Manifest::open(data, &key.public()).is_err(),
            "unsigned bytes opened"
        );
    }
    if let Ok(set) = IndicatorSet::parse(data, "fuzz") {
        let again = IndicatorSet::parse(&set.to_bytes(), "again").expect("own bytes parse");
        assert_eq!(again.content_hash(), set.content_hash());
    }
    let _ = IndicatorSet::parse_known(data, "fuzz");
    let ind = matcher::Indicator::new("evil.example", matcher::IndicatorType::Fqdn, "f");
    let line = serde_json::to_string(&ind).unwrap() + "\n";
    let mut held = IndicatorSet::parse(line.as_bytes(), "held").unwrap();
    let _ = held.apply_delta(data, "1-aaaaaaaaaaaa", "2-bbbbbbbbbbbb");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn fleet_release_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        fleet_release(&data);
    }

    #[test]
    fn fleet_delta_like_text_never_panics(
        data in "trawl-delta 1 1-aaaaaaaaaaaa 2-bbbbbbbbbbbb\n([-+][ -~]{0,60}\n){0,10}"
    ) {
        fleet_release(data.as_bytes());
    }

    #[test]
    fn fleet_delta_2_like_text_never_panics(
        data in "trawl-delta 2 1-aaaaaaaaaaaa 2-bbbbbbbbbbbb\n([-+~][ -~]{0,60}\n){0,10}"
    ) {
        fleet_release(data.as_bytes());
    }
}

/// JSON documents of a few levels, with `objects` and `id` among their keys: envelopes,
/// and things that are almost envelopes.
fn json_doc() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z\\\\\"é]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("(objects|id|[a-c])", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The body of the `feed_pull_envelope` fuzz target, on JSON documents whole and cut.
    #[test]
    fn pull_envelope_walk_is_the_tree(doc in json_doc(), cut in any::<prop::sample::Index>()) {
        let text = doc.to_string();
        pull_envelope::pull_envelope(text.as_bytes());
        pull_envelope::pull_envelope(&text.as_bytes()[..cut.index(text.len() + 1)]);
    }

    #[test]
    fn pull_envelope_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        pull_envelope::pull_envelope(&data);
    }
}
