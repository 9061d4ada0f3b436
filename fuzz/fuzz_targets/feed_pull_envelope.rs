#![no_main]
//! Fuzz the item-at-a-time walk of TAXII pages and pulled stores against one `Value` tree
//! of the document (the body lives in feeds/tests/feeds_tests/fuzz_bodies/pull_envelope.rs
//! and also runs as a proptest).
use libfuzzer_sys::fuzz_target;

#[path = "../../feeds/tests/feeds_tests/fuzz_bodies/pull_envelope.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::pull_envelope(data));
