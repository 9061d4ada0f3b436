#![no_main]
//! Fuzz the STIX pattern parser (TAXII and STIX feeds): any text ends in comparisons or an
//! error naming what the pattern uses, never a panic or a stack overflow; every comparison
//! carries the value it compares with, never more text than the pattern holds.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pattern) = feeds::parse::stix_pattern::parse(text) {
        assert!(!pattern.comparisons.is_empty());
        for (_, value) in pattern.comparisons {
            assert!(value.len() <= text.len());
        }
    }
});
