#![no_main]
//! Fuzz format-string plans (Squid `logformat`, nginx `log_format`, Apache `LogFormat`): the
//! first line is compiled in each dialect, the rest parsed and screened with every plan
//! (the same body runs as a proptest in ingest/tests/ingest_tests/logs_bad_input.rs).
use ingest::logs::fuzz_logformat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_logformat(data);
});
