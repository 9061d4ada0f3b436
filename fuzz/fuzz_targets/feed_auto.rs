#![no_main]
//! Fuzz feed format detection and every feed parser through `auto` (the same body runs as a
//! proptest in feeds/tests/feeds_tests/fuzz_bodies.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let feed = feeds::config::FeedConfig::new("fuzz", "fuzz.txt");
    let _ = feeds::parse::parse_feed(data, &feed);
});
