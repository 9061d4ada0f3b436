#![no_main]
//! Fuzz a feed body through parse, the breadth rule and an export format (the body lives in
//! feeds/tests/feeds_tests/fuzz_bodies/feed_export.rs and also runs as a proptest).
use libfuzzer_sys::fuzz_target;

#[path = "../../feeds/tests/feeds_tests/fuzz_bodies/feed_export.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::feed_export(data));
