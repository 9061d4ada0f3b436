//! The external id (STIX id, MISP uuid) in the fleet's published set: carried on the
//! indicator's line, checked when a sensor parses the set, absent (not null) when none, so
//! the lines and content hash of a set without ids are what they were before the field.

use feeds::fleet::set::IndicatorSet;
use matcher::{Indicator, IndicatorType, SnapshotBuilder};

#[test]
fn a_fleet_set_carries_the_external_id_and_checks_it() {
    let id = "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d";
    let mut with = Indicator::new("evil.example", IndicatorType::Fqdn, "taxii");
    with.external_id = Some(id.into());
    let without = Indicator::new("plain.example", IndicatorType::Fqdn, "list");
    let mut b = SnapshotBuilder::new();
    b.insert(with);
    b.insert(without);
    let snap = b.build().unwrap();
    let (set, _) = IndicatorSet::from_snapshot(&snap);
    let bytes = set.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let evil = text.lines().find(|l| l.contains("evil.example")).unwrap();
    assert!(
        evil.contains(&format!("\"external_id\":\"{id}\"")),
        "{evil}"
    );
    let plain = text.lines().find(|l| l.contains("plain.example")).unwrap();
    assert!(!plain.contains("external_id"), "{plain}");

    // A sensor parses it back, id and all.
    let again = IndicatorSet::parse(&bytes, "bundle").unwrap();
    assert_eq!(again.content_hash(), set.content_hash());
    let got: Vec<Indicator> = again.indicators().collect();
    let e = got.iter().find(|i| i.value == "evil.example").unwrap();
    assert_eq!(e.external_id.as_deref(), Some(id));

    // A line whose id is not an id is refused, naming the line.
    let bad = text.replace(id, "indicator--../../etc/passwd");
    let err = IndicatorSet::parse(bad.as_bytes(), "bundle")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bundle:1") && err.contains("external_id"),
        "{err}"
    );
}
