#![no_main]
//! Fuzz the retro index's segment reader: any bytes are a segment or a "damaged" error,
//! never a panic; a segment that opens answers ranges, lookups, the prefix merge and a full
//! listing (each an answer or a "damaged" error).
//!
//! Then the same bytes opened as `trawl hunt` opens a segment it checked whole before
//! (`Check::Structure`: the checksum not read). A version 3 segment (blocks under their
//! heads) must not panic there either: its reads run unguarded, so any panic is a finding.
//! A version 1-2 segment's FST walk may panic, which `retro::hunt` catches (the segment is
//! skipped), but it must end and stay within memory (libFuzzer's timeout and RSS limit catch
//! a loop or a runaway stack); the header and the stats reader must not panic at all.
use libfuzzer_sys::fuzz_target;
use sensor::retro::segment::{Check, Segment};
use std::sync::Once;

static QUIET: Once = Once::new();

const PREFIXES: [&[u8]; 4] = [b"d", b"dcom.example", b"dcom.example.www", b"u"];

fn read_all(seg: &Segment) {
    let _ = seg.get(b"dcom.example");
    let mut n = 0usize;
    let _ = seg.range(b"d", None, |_, _| {
        n += 1;
        n < 10_000
    });
    let _ = seg.range(b"d", Some(b"e"), |_, _| true);
    let _ = seg.under_prefixes(&PREFIXES[..], |_, _, _| {});
    let _ = seg.entries();
}

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.seg");
    if let Ok(seg) = Segment::parse(data, path) {
        read_all(&seg);
    }
    let Ok(seg) = Segment::parse_checked(data, path, Check::Structure) else {
        return;
    };
    if seg.is_blocked() {
        read_all(&seg);
        return;
    }
    // libFuzzer's hook aborts at any panic; a caught FST walk panic is the expected outcome
    // here, so only the walks below run under a quiet hook (a panic elsewhere still
    // reaches libFuzzer's catch and aborts).
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let _ = std::panic::catch_unwind(|| read_all(&seg));
});
