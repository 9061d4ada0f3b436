#![no_main]
//! Fuzz what a sensor reads from a fleet publisher: any bytes as a signed manifest (refused
//! unless signed, never a panic), as a set (`IndicatorSet::parse`) and as a delta applied to
//! a small held set (format 1 or 2); a set that parses has a content hash its own bytes
//! reproduce.
use feeds::fleet::{keys::SigningKey, manifest::Manifest, set::IndicatorSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = SigningKey::generate() {
        assert!(Manifest::open(data, &key.public()).is_err(), "unsigned bytes opened");
    }
    if let Ok(set) = IndicatorSet::parse(data, "fuzz") {
        let again = IndicatorSet::parse(&set.to_bytes(), "again").expect("own bytes parse");
        assert_eq!(again.content_hash(), set.content_hash());
    }
    let _ = IndicatorSet::parse_known(data, "fuzz");
    let ind = matcher::Indicator::new("evil.example", matcher::IndicatorType::Fqdn, "f");
    let line = serde_json::to_string(&ind).unwrap_or_default() + "\n";
    let held = IndicatorSet::parse(line.as_bytes(), "held").unwrap_or_default();
    let mut s = held.clone();
    let _ = s.apply_delta(data, "1-aaaaaaaaaaaa", "2-bbbbbbbbbbbb");
});
