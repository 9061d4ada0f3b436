//! The body of the `feed_export` fuzz target, shared with the proptest in `fuzz_bodies.rs`:
//! a feed body through parse, normalisation and the breadth rule, then one export format
//! picked by the first byte. Nothing may panic, no accepted indicator may be too broad, and
//! every indicator the export reads is accounted for once.

use feeds::export::{export, ExportFormat, ExportOptions, Filter};

/// Run one input; panics on a broken invariant.
pub fn feed_export(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let format = ExportFormat::ALL[usize::from(pick) % ExportFormat::ALL.len()];
    let feed = feeds::config::FeedConfig::new("fuzz", "fuzz.txt");
    let (_, inds) = feeds::update::process_bytes(body, &feed, 1_800_000_000);
    for i in &inds {
        assert!(
            feeds::breadth::too_broad(i.itype, &i.value, feeds::breadth::MinPrefix::DEFAULT)
                .is_none(),
            "too broad value accepted: {}",
            i.value
        );
    }
    let mut out = Vec::new();
    let s = export(
        format,
        &mut inds.iter().cloned(),
        &Filter::default(),
        &ExportOptions::default(),
        &mut out,
    )
    .expect("export into memory");
    assert_eq!(s.read, s.accounted(), "{format}: {s:?}");
}
