#![no_main]
//! Fuzz the Windows DNS debug-log log parser (the same body runs as a proptest in ingest/tests/ingest_tests/logs_bad_input.rs).
use ingest::logs::{fuzz_parse, LogFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_parse(LogFormat::WindowsDns, data);
});
