#![no_main]
//! Fuzz `trawl.toml` loading: any text is a config or an error naming the line, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = feeds::config::Config::from_toml_str(text);
    }
});
