#![no_main]
//! Fuzz target: ingest::packet::fuzzing::decode (also exercised by ingest/tests/ingest_tests/packet_bad_input.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ingest::packet::fuzzing::decode(data);
});
