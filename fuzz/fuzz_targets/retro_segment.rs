#![no_main]
//! Fuzz the retro index's segment reader: any bytes are a segment or a "damaged" error,
//! never a panic; a segment that opens answers ranges, lookups and a full listing.
use libfuzzer_sys::fuzz_target;
use sensor::retro::segment::Segment;

fuzz_target!(|data: &[u8]| {
    let Ok(seg) = Segment::parse(data, std::path::Path::new("fuzz.seg")) else {
        return;
    };
    let _ = seg.entries();
    let _ = seg.get(b"dcom.example");
    seg.range(b"d", Some(b"e"), |_, _| true);
});
