//! `Snapshot::iter` decodes every value in one streaming pass over the FSTs; it must yield
//! exactly what per-id `indicator(id)` yields, in id order, in memory and after publishing.

use matcher::{normalize, Indicator, Snapshot, SnapshotBuilder};

fn build() -> SnapshotBuilder {
    let mut b = SnapshotBuilder::new();
    let raw = [
        "evil.com",
        "a.evil.com",
        "zzz.example.org",
        "xn--bcher-kva.example",
        "10.0.0.0/8",
        "192.0.2.7",
        "2001:db8::/32",
        "2001:db8::1",
        "http://h.example/a/b?x=1",
        "https://evil.com/gate.php",
        "d41d8cd98f00b204e9800998ecf8427e",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "bad@evil.com",
    ];
    for (i, r) in raw.iter().enumerate() {
        let n = normalize(r, None).unwrap();
        let mut ind = Indicator::new(
            n.value,
            n.itype,
            if i % 2 == 0 { "feed-a" } else { "feed-b" },
        );
        ind.confidence = 10 * (i as u8 % 10);
        ind.tags = vec![format!("t{}", i % 3)];
        b.insert(ind);
    }
    for i in 0..500 {
        let n = normalize(&format!("host{i}.sub{}.example.net", i % 7), None).unwrap();
        b.insert(Indicator::new(n.value, n.itype, "bulk"));
    }
    b
}

fn check(s: &Snapshot) {
    let streamed: Vec<Indicator> = s.iter().collect();
    assert_eq!(streamed.len(), s.len());
    for (id, ind) in streamed.iter().enumerate() {
        assert_eq!(ind, &s.indicator(id as u32), "id {id}");
        assert!(!ind.value.is_empty());
    }
    let mut sorted = streamed.clone();
    sorted.sort_by(matcher::snapshot::id_order);
    assert_eq!(sorted, streamed, "ids follow snapshot::id_order");
    // Domains by label-reversed name (net.example.sub0.host7 < net.example.sub1.host1,
    // the reverse of their value order).
    let doms: Vec<&str> = streamed
        .iter()
        .filter(|i| i.itype == matcher::IndicatorType::Fqdn)
        .map(|i| i.value.as_str())
        .collect();
    assert!(doms.len() > 100);
    let pos = |v: &str| doms.iter().position(|d| *d == v).unwrap();
    assert!(pos("host7.sub0.example.net") < pos("host1.sub1.example.net"));
}

#[test]
fn iter_equals_per_id_records() {
    check(&build().build().unwrap());
    let dir = tempfile::tempdir().unwrap();
    build()
        .publish(dir.path(), serde_json::Value::Null)
        .unwrap();
    check(&Snapshot::open_current(dir.path()).unwrap());
}
