#![no_main]
//! Fuzz the decoding of a fetched feed body (gzip while streaming, zip, the size cap): any
//! input ends in bytes or an error, never a panic, and never more than the cap.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    const CAP: u64 = 1 << 20;
    if let Ok(out) = feeds::fetch::decode_body(data, CAP) {
        assert!(out.len() as u64 <= CAP);
    }
});
