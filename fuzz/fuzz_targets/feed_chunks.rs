#![no_main]
//! Fuzz the chunked parse `trawl update` uses (`parse_feed_chunks`, tiny chunks: every
//! format's state carried across pieces) against the whole parse: the same records and
//! counts, never a panic. The first byte picks the format.
use feeds::config::{FeedConfig, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let formats = [
        Format::Auto,
        Format::Csv,
        Format::Tsv,
        Format::Delimited,
        Format::Jsonl,
        Format::Json,
        Format::Stix2,
        Format::Plain,
        Format::Misp,
        Format::MispFeed,
        Format::Cif,
    ];
    let mut feed = FeedConfig::new("fuzz", "fuzz.txt");
    feed.format = formats[usize::from(pick) % formats.len()];
    let whole = feeds::parse::parse_feed(body, &feed);
    let mut records = Vec::new();
    let (mut rejected, mut skipped) = (0, 0);
    feeds::parse::parse_feed_chunks(body, &feed, 16, |p| {
        records.extend(p.records);
        rejected += p.rejected;
        skipped += p.skipped;
    });
    assert!(records == whole.records, "chunked records differ");
    assert_eq!((rejected, skipped), (whole.rejected, whole.skipped));
});
