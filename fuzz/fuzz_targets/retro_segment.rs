#![no_main]
//! Fuzz the retro index's segment reader: any bytes are a segment or a "damaged" error,
//! never a panic; a segment that opens answers ranges, lookups and a full listing.
//!
//! Then the same bytes opened as `trawl hunt` opens a segment it checked whole before
//! (`Check::Structure`: the checksum not read): the FST walk over them may panic, which
//! `retro::hunt` catches (the segment is skipped), but it must end and stay within memory
//! (libFuzzer's timeout and RSS limit catch a loop or a runaway stack); the header and the
//! stats reader must not panic at all.
use libfuzzer_sys::fuzz_target;
use sensor::retro::segment::{Check, Segment};
use std::sync::Once;

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.seg");
    if let Ok(seg) = Segment::parse(data, path) {
        let _ = seg.entries();
        let _ = seg.get(b"dcom.example");
        seg.range(b"d", Some(b"e"), |_, _| true);
    }
    let Ok(seg) = Segment::parse_checked(data, path, Check::Structure) else {
        return;
    };
    // libFuzzer's hook aborts at any panic; a caught walk panic is the expected outcome
    // here, so only the walks below run under a quiet hook (a panic elsewhere still
    // reaches libFuzzer's catch and aborts).
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let _ = std::panic::catch_unwind(|| {
        let _ = seg.get(b"dcom.example");
        let mut n = 0usize;
        seg.range(b"d", None, |_, _| {
            n += 1;
            n < 10_000
        });
        let _ = seg.entries();
    });
});
