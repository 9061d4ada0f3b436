#![no_main]
//! Fuzz a feed body through the whole feed side: parse, normalise, the breadth rule, then
//! every export format. Nothing may panic, no blocking format may write a value wider than
//! the breadth limits, and every indicator read is accounted for once.
use feeds::export::{export, ExportFormat, ExportOptions, Filter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let feed = feeds::config::FeedConfig::new("fuzz", "fuzz.txt");
    let (_, inds) = feeds::update::process_bytes(data, &feed, 1_800_000_000);
    for i in &inds {
        assert!(
            feeds::breadth::too_broad(i.itype, &i.value, feeds::breadth::MinPrefix::DEFAULT)
                .is_none(),
            "too broad value accepted: {}",
            i.value
        );
    }
    for format in ExportFormat::ALL {
        let mut out = Vec::new();
        let s = export(
            format,
            &mut inds.iter().cloned(),
            &Filter::default(),
            &ExportOptions::default(),
            &mut out,
        )
        .expect("export into memory");
        assert_eq!(
            s.read,
            s.written
                + s.skipped_by_filter
                + s.skipped_allowlisted
                + s.skipped_invalid
                + s.skipped_unsupported
                + s.skipped_unexpressible
                + s.skipped_too_broad
                + s.allowlist_entries,
            "{format}: {s:?}"
        );
    }
});
