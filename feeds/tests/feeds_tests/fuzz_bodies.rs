//! The bodies of the `feed_auto`, `normalize` and `feed_export` fuzz targets as proptests,
//! so every `cargo test` runs them on arbitrary input.

#[path = "fuzz_bodies/feed_export.rs"]
mod feed_export;

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

    #[test]
    fn normal_form_is_a_fixed_point(s in "\\PC{0,80}") {
        if let Ok(n) = matcher::normalize(&s, None) {
            let again = matcher::normalize(&n.value, Some(n.itype));
            prop_assert!(again.is_ok(), "{:?} -> {:?} fails to re-normalise", s, n);
            prop_assert_eq!(again.unwrap().value, n.value);
        }
    }
}
