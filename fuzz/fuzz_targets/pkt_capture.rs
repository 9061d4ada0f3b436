#![no_main]
//! Fuzz target: ingest::packet::fuzzing::capture (also exercised by ingest/tests/ingest_tests/packet_bad_input.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ingest::packet::fuzzing::capture(data);
});
