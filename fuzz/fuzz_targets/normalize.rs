#![no_main]
//! Fuzz indicator normalisation (the same body runs as a proptest in feeds/tests/feeds_tests/fuzz_bodies.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = matcher::normalize(s, None) {
            // Normal form is a fixed point.
            let again = matcher::normalize(&n.value, Some(n.itype)).expect("normal form re-normalises");
            assert_eq!(again.value, n.value);
        }
    }
});
