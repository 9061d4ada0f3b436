#![no_main]
//! Fuzz auto-detection, then whatever parser it picks (Infoblox and Raw included).
use ingest::logs::{detect_format, fuzz_parse, LogFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = detect_format(data).unwrap_or(LogFormat::Raw);
    fuzz_parse(f, data);
    fuzz_parse(LogFormat::Infoblox, data);
});
