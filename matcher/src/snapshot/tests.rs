use super::*;
use crate::model::{Severity, Tlp};
use crate::naive::NaiveMatcher;
use crate::normalize::normalize;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

fn ind(raw: &str) -> Indicator {
    let n = normalize(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
    let mut i = Indicator::new(n.value, n.itype, "test");
    i.exact_only = n.exact_only;
    i
}

fn pattern(p: &str) -> Indicator {
    Indicator::new(p, IndicatorType::Pattern, "test")
}

fn build(list: &[Indicator]) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    for i in list {
        b.insert(i.clone());
    }
    match b.build() {
        Ok(s) => s,
        Err(e) => panic!("build: {e}"),
    }
}

/// The naive matcher's (itype, value)-sorted list in snapshot id order.
fn in_id_order(v: &[Indicator]) -> Vec<Indicator> {
    let mut v = v.to_vec();
    v.sort_by(super::id_order);
    v
}

type HitSet = BTreeSet<(String, IndicatorType, MatchKind)>;

fn hits_of(list: &[Indicator], f: impl Fn(&mut Vec<Hit>)) -> Vec<Hit> {
    let _ = list;
    let mut h = Vec::new();
    f(&mut h);
    h
}

fn named_snap(s: &Snapshot, hits: &[Hit]) -> HitSet {
    let ids: BTreeSet<u32> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), hits.len(), "duplicate ids in {hits:?}");
    hits.iter()
        .map(|h| {
            let i = s.indicator(h.id);
            (i.value, i.itype, h.kind)
        })
        .collect()
}

fn named_naive(n: &NaiveMatcher, hits: &[Hit]) -> HitSet {
    hits.iter()
        .map(|h| {
            let i = &n.indicators[h.id as usize];
            (i.value.clone(), i.itype, h.kind)
        })
        .collect()
}

fn set(items: &[(&str, IndicatorType, MatchKind)]) -> HitSet {
    items
        .iter()
        .map(|(v, t, k)| (v.to_string(), *t, *k))
        .collect()
}

use IndicatorType as T;
use MatchKind as K;

#[test]
fn domain_matching_at_label_boundaries() {
    let mut exact = ind("exact.example");
    exact.exact_only = true;
    let list = vec![
        ind("evil.com"),
        ind("b.evil.com"),
        exact,
        ind("com.evil.org"),
    ];
    let s = build(&list);
    let q = |h: &str| named_snap(&s, &hits_of(&list, |v| s.match_domain(h, v)));
    assert_eq!(q("evil.com"), set(&[("evil.com", T::Fqdn, K::Exact)]));
    assert_eq!(q("EVIL.com."), set(&[("evil.com", T::Fqdn, K::Exact)]));
    assert_eq!(
        q("a.b.evil.com"),
        set(&[
            ("evil.com", T::Fqdn, K::ParentDomain),
            ("b.evil.com", T::Fqdn, K::ParentDomain)
        ])
    );
    assert_eq!(q("notevil.com"), set(&[]));
    assert_eq!(q("evil.com.au"), set(&[]));
    assert_eq!(
        q("exact.example"),
        set(&[("exact.example", T::Fqdn, K::Exact)])
    );
    assert_eq!(q("www.exact.example"), set(&[]));
    assert_eq!(q(&format!("{}.evil.com", "a".repeat(250))), set(&[]));
    assert_eq!(q(""), set(&[]));
}

#[test]
fn ip_ranges_report_every_enclosing_cidr() {
    let list = vec![
        ind("10.0.0.0/8"),
        ind("10.1.0.0/16"),
        ind("10.1.2.3"),
        ind("0.0.0.0/0"),
        ind("2001:db8::/32"),
        ind("2001:db8::1"),
        ind("255.255.255.255"),
    ];
    let s = build(&list);
    let q = |ip: &str| {
        let ip: IpAddr = ip.parse().unwrap_or_else(|_| panic!("{ip}"));
        named_snap(&s, &hits_of(&list, |v| s.match_ip(ip, v)))
    };
    assert_eq!(
        q("10.1.2.3"),
        set(&[
            ("0.0.0.0/0", T::Ipv4, K::EnclosingCidr),
            ("10.0.0.0/8", T::Ipv4, K::EnclosingCidr),
            ("10.1.0.0/16", T::Ipv4, K::EnclosingCidr),
            ("10.1.2.3", T::Ipv4, K::Exact),
        ])
    );
    assert_eq!(
        q("10.2.0.0"),
        set(&[
            ("0.0.0.0/0", T::Ipv4, K::EnclosingCidr),
            ("10.0.0.0/8", T::Ipv4, K::EnclosingCidr)
        ])
    );
    assert_eq!(
        q("11.0.0.0"),
        set(&[("0.0.0.0/0", T::Ipv4, K::EnclosingCidr)])
    );
    assert_eq!(
        q("255.255.255.255"),
        set(&[
            ("0.0.0.0/0", T::Ipv4, K::EnclosingCidr),
            ("255.255.255.255", T::Ipv4, K::Exact)
        ])
    );
    assert_eq!(
        q("2001:db8::1"),
        set(&[
            ("2001:db8::/32", T::Ipv6, K::EnclosingCidr),
            ("2001:db8::1", T::Ipv6, K::Exact)
        ])
    );
    assert_eq!(q("2001:db9::1"), set(&[]));
    // An IP literal host goes to the IP tables.
    let mut h = Vec::new();
    s.match_domain("[2001:db8::1]", &mut h);
    assert_eq!(h.len(), 2);

    // Lookups go through a /16 directory: ranges spanning many /16s, /16s where no range
    // starts, and the ends of the address space.
    let list = vec![
        ind("10.0.0.0/8"),
        ind("10.200.0.0/16"),
        ind("10.200.255.255"),
        ind("0.0.0.0"),
    ];
    let s = build(&list);
    let q = |ip: &str| {
        let ip: IpAddr = ip.parse().unwrap_or_else(|_| panic!("{ip}"));
        named_snap(&s, &hits_of(&list, |v| s.match_ip(ip, v)))
    };
    let eight = ("10.0.0.0/8", T::Ipv4, K::EnclosingCidr);
    let sixteen = ("10.200.0.0/16", T::Ipv4, K::EnclosingCidr);
    assert_eq!(q("10.100.5.5"), set(&[eight]));
    assert_eq!(q("10.199.255.255"), set(&[eight]));
    assert_eq!(q("10.200.0.0"), set(&[eight, sixteen]));
    assert_eq!(
        q("10.200.255.255"),
        set(&[eight, sixteen, ("10.200.255.255", T::Ipv4, K::Exact)])
    );
    assert_eq!(q("10.201.0.0"), set(&[eight]));
    assert_eq!(q("10.255.255.255"), set(&[eight]));
    assert_eq!(q("11.0.0.0"), set(&[]));
    assert_eq!(q("9.255.255.255"), set(&[]));
    assert_eq!(q("0.0.0.0"), set(&[("0.0.0.0", T::Ipv4, K::Exact)]));
    assert_eq!(q("0.0.0.1"), set(&[]));
    assert_eq!(q("255.255.255.255"), set(&[]));
}

#[test]
fn url_exact_and_prefix() {
    let list = vec![
        ind("http://h.example/a"),
        ind("http://h.example/dir/"),
        ind("http://h.example/q?x=1"),
        pattern("/gate.php"),
    ];
    let s = build(&list);
    let q = |u: &str| named_snap(&s, &hits_of(&list, |v| s.match_url(u, v)));
    assert_eq!(
        q("HTTP://H.example:80/a#f"),
        set(&[("http://h.example/a", T::Url, K::Exact)])
    );
    assert_eq!(
        q("http://h.example/a/b"),
        set(&[("http://h.example/a", T::Url, K::UrlPrefix)])
    );
    assert_eq!(
        q("http://h.example/a?x"),
        set(&[("http://h.example/a", T::Url, K::UrlPrefix)])
    );
    assert_eq!(q("http://h.example/ab"), set(&[]));
    assert_eq!(
        q("h.example/dir/x/y"),
        set(&[("http://h.example/dir/", T::Url, K::UrlPrefix)])
    );
    assert_eq!(
        q("http://h.example/q?x=1"),
        set(&[("http://h.example/q?x=1", T::Url, K::Exact)])
    );
    assert_eq!(q("http://h.example/q?x=12"), set(&[]));
    assert_eq!(
        q("http://o.example/x/GATE.php?id=1"),
        set(&[("/gate.php", T::Pattern, K::Substring)])
    );
    assert_eq!(
        s.find(T::Url, "http://h.example/dir/"),
        Some(1 + s.find(T::Url, "http://h.example/a").unwrap_or(99))
    );
}

#[test]
fn hashes_emails_patterns_text() {
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let mut ja3 = Indicator::new(md5, T::Ja3, "ja3feed");
    ja3.confidence = 90;
    let list = vec![
        ind(md5),
        ja3,
        ind("bad@evil.example"),
        ind("evil.example"),
        ind("203.0.113.7"),
        ind("http://x.example/p"),
        pattern("EvilBot/1.0"),
    ];
    let s = build(&list);
    let q = |f: &dyn Fn(&mut Vec<Hit>)| named_snap(&s, &hits_of(&list, f));
    assert_eq!(
        q(&|v| s.match_hash(&md5.to_ascii_uppercase(), v)),
        set(&[(md5, T::Md5, K::Exact), (md5, T::Ja3, K::Exact)])
    );
    assert_eq!(
        q(&|v| s.match_email("Bad@Evil.Example", v)),
        set(&[("bad@evil.example", T::Email, K::Exact)])
    );
    assert_eq!(
        q(&|v| s.match_pattern(b"Mozilla evilbot/1.0 evilbot/1.0", v)),
        set(&[("EvilBot/1.0", T::Pattern, K::Substring)])
    );
    let text = format!(
        "x notevil.example y evil.example, a.evil.example 203.0.113.7:443 {md5} bad@evil.example \
         http://x.example/p/q <EvilBot/1.0>"
    );
    assert_eq!(
        q(&|v| s.match_text(text.as_bytes(), v)),
        set(&[
            ("evil.example", T::Fqdn, K::Exact),
            ("203.0.113.7", T::Ipv4, K::Exact),
            (md5, T::Md5, K::Exact),
            (md5, T::Ja3, K::Exact),
            ("bad@evil.example", T::Email, K::Exact),
            ("http://x.example/p", T::Url, K::UrlPrefix),
            ("EvilBot/1.0", T::Pattern, K::Substring),
        ])
    );
    assert_eq!(q(&|v| s.match_text(b"notevil.example", v)), set(&[]));
}

#[test]
fn metadata_round_trips_and_merges() {
    let mut a = ind("evil.example");
    a.confidence = 60;
    a.tags = vec!["Malware".into()];
    a.first_seen = Some(1_700_000_000);
    a.last_seen = Some(1_700_000_100);
    a.provider = Some("abuse.ch".into());
    let mut b = ind("evil.example");
    b.sources = vec!["other".into()];
    b.confidence = 90;
    b.severity = Severity::High;
    b.tlp = Tlp::Amber;
    b.tags = vec!["c2".into()];
    b.first_seen = Some(1_600_000_000);
    b.expires = Some(-5);
    b.description = Some("bad".into());
    b.reference = Some("SBL1".into());
    let mut c = ind("198.51.100.0/24");
    c.derived = true;
    c.allowlist = true;
    c.allowlisted_by = Some("iana".into());
    c.reported = Some(0);
    let list = vec![a.clone(), b.clone(), c.clone()];
    let s = build(&list);
    let naive = NaiveMatcher::new(list);
    let got: Vec<Indicator> = s.iter().collect();
    assert_eq!(got, in_id_order(&naive.indicators));
    assert_eq!(got.len(), 2);
    let e = &got[1];
    assert_eq!(e.value, "evil.example");
    assert_eq!(
        (e.confidence, e.severity, e.tlp),
        (90, Severity::High, Tlp::Amber)
    );
    assert_eq!(e.tags, vec!["c2", "malware"]);
    assert_eq!(e.sources, vec!["other", "test"]);
    assert_eq!(e.first_seen, Some(1_600_000_000));
    assert_eq!(e.expires, None);
    assert_eq!(s.find(T::Fqdn, "evil.example"), Some(1));
    assert_eq!(s.find(T::Ipv4, "198.51.100.0/24"), Some(0));
    assert_eq!(s.find(T::Ipv4, "198.51.100.1"), None);
    assert_eq!(s.itype(2), None);
    assert_eq!(s.meta().counts.get("fqdn"), Some(&1));
}

#[test]
fn from_indicators_takes_merged_input_and_merges_the_rest() {
    let mut a = ind("evil.example");
    a.tags = vec!["Malware".into(), "c2".into(), "c2".into()];
    let b = ind("www.evil.example");
    let c = ind("198.51.100.7");
    // Sorted by (itype, value) and unique: taken as is (tidied), ids as with insert.
    let mut sorted = vec![a.clone(), b.clone(), c.clone()];
    sorted.sort_by(|x, y| (x.itype, &x.value).cmp(&(y.itype, &y.value)));
    let fast = SnapshotBuilder::from_indicators(sorted.clone());
    assert_eq!(fast.len(), 3);
    let slow = build(&sorted);
    let fast_snap = fast.build().unwrap_or_else(|e| panic!("build: {e}"));
    let got: Vec<Indicator> = fast_snap.iter().collect();
    assert_eq!(got, slow.iter().collect::<Vec<_>>());
    let evil = got.iter().find(|i| i.value == "evil.example");
    assert_eq!(
        evil.map(|i| i.tags.clone()),
        Some(vec!["c2".into(), "malware".into()])
    );
    // Unsorted with a duplicate: merged like insert does.
    let mut dup = a.clone();
    dup.confidence = 99;
    let mut fb = SnapshotBuilder::from_indicators(vec![c.clone(), a.clone(), dup, b.clone()]);
    assert_eq!(fb.len(), 3);
    // An insert after from_indicators still finds the existing entries.
    let mut fast = SnapshotBuilder::from_indicators(sorted);
    let mut again = ind("www.evil.example");
    again.confidence = 1;
    fast.insert(again);
    fb.insert(ind("198.51.100.7"));
    assert_eq!((fast.len(), fb.len()), (3, 3));
    let snap = fb.build().unwrap_or_else(|e| panic!("build: {e}"));
    let id = snap.find(T::Fqdn, "evil.example");
    assert_eq!(id.map(|id| snap.indicator(id).confidence), Some(99));
}

#[test]
fn publish_versions_current_and_pruning() -> Result<(), SnapshotError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let d = dir.path();
    assert!(matches!(
        Snapshot::open_current(d),
        Err(SnapshotError::NoSnapshot(_))
    ));
    let mut dirs = Vec::new();
    for n in 1..=5u64 {
        let mut b = SnapshotBuilder::new();
        b.insert(ind(&format!("v{n}.example")));
        b.insert(ind("10.0.0.0/8"));
        dirs.push(b.publish(d, serde_json::json!({ "n": n }))?);
        let s = Snapshot::open_current(d)?;
        assert_eq!(s.meta().version, n);
        assert_eq!(s.meta().extra["n"], n);
        assert_eq!(s.find(T::Fqdn, &format!("v{n}.example")), Some(1));
    }
    assert_eq!(dirs[4], d.join("snapshots").join("5"));
    assert_eq!(versions(&d.join("snapshots")), vec![3, 4, 5]);
    let leftovers: Vec<_> = fs::read_dir(d.join("snapshots"))
        .map_err(io_err(d))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    fs::write(d.join("current"), "garbage").map_err(io_err(d))?;
    assert!(matches!(
        Snapshot::open_current(d),
        Err(SnapshotError::Corrupt { .. })
    ));
    Ok(())
}

#[test]
fn damaged_files_are_refused_without_panic() -> Result<(), SnapshotError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let d = dir.path();
    let mut b = SnapshotBuilder::new();
    for v in [
        "evil.example",
        "a.b.example",
        "10.0.0.0/8",
        "10.1.1.1",
        "2001:db8::/48",
        "http://h.example/x",
    ] {
        b.insert(ind(v));
    }
    b.insert(pattern("/gate.php"));
    let snap_dir = b.publish(d, serde_json::Value::Null)?;
    let mut names: Vec<&str> = FILES.to_vec();
    names.extend(OPTIONAL_FILES);
    names.push("manifest");
    for name in names {
        let p = snap_dir.join(name);
        let orig = fs::read(&p).map_err(io_err(&p))?;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in [0, 1, orig.len() / 2, orig.len().saturating_sub(1)] {
            cases.push(orig[..cut.min(orig.len())].to_vec());
        }
        for i in (0..orig.len()).step_by((orig.len() / 40).max(1)) {
            let mut f = orig.clone();
            f[i] ^= 0x55;
            cases.push(f);
        }
        for case in cases {
            if case == orig {
                continue;
            }
            fs::write(&p, &case).map_err(io_err(&p))?;
            let r = std::panic::catch_unwind(|| Snapshot::open(&snap_dir).map(|_| ()));
            match r {
                Ok(Err(_)) => {}
                Ok(Ok(())) => panic!("{name}: damaged file accepted ({} bytes)", case.len()),
                Err(_) => panic!("{name}: panic on damaged file"),
            }
        }
        fs::write(&p, &orig).map_err(io_err(&p))?;
        assert!(Snapshot::open(&snap_dir).is_ok());
    }
    fs::remove_file(snap_dir.join("ip.bin")).map_err(io_err(d))?;
    assert!(matches!(
        Snapshot::open(&snap_dir),
        Err(SnapshotError::Io { .. })
    ));
    Ok(())
}

#[test]
fn empty_snapshot_works() -> Result<(), SnapshotError> {
    let s = SnapshotBuilder::new().build()?;
    assert!(s.is_empty());
    let mut h = Vec::new();
    s.match_domain("a.example", &mut h);
    s.match_ip(
        "1.2.3.4"
            .parse()
            .map_err(|_| corrupt(Path::new("x"), "ip"))?,
        &mut h,
    );
    s.match_url("http://a/", &mut h);
    s.match_text(b"a.example 1.2.3.4", &mut h);
    assert!(h.is_empty());
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    SnapshotBuilder::new().publish(dir.path(), serde_json::Value::Null)?;
    assert!(Snapshot::open_current(dir.path())?.is_empty());
    Ok(())
}

// ---- equivalence with the naive matcher ----

#[derive(Debug, Clone)]
struct Case {
    indicators: Vec<Indicator>,
    domains: Vec<String>,
    urls: Vec<String>,
    ips: Vec<IpAddr>,
    hashes: Vec<String>,
    texts: Vec<String>,
}

fn base_domain() -> impl Strategy<Value = String> {
    (
        "[a-e]{1,3}",
        prop::sample::select(vec!["com", "org", "example", "co.uk"]),
    )
        .prop_map(|(a, t)| format!("{a}.{t}"))
}

fn sub(d: String) -> impl Strategy<Value = String> {
    prop::collection::vec("[a-c]{1,2}", 0..3).prop_map(move |ls| {
        let mut s = ls.join(".");
        if !s.is_empty() {
            s.push('.');
        }
        s + &d
    })
}

fn v4() -> impl Strategy<Value = (u32, u8)> {
    // A small address space so CIDRs nest and queries land inside.
    (
        0u32..4096,
        prop::sample::select(vec![20u8, 22, 24, 26, 28, 30, 31, 32, 32, 32]),
    )
        .prop_map(|(a, p)| (0x0a00_0000 | (a << 8) >> 4, p))
}

fn v6() -> impl Strategy<Value = (u128, u8)> {
    (
        0u128..4096,
        prop::sample::select(vec![112u8, 116, 120, 124, 126, 128, 128]),
    )
        .prop_map(|(a, p)| ((0x2001_0db8u128 << 96) | a << 4, p))
}

fn url_of() -> impl Strategy<Value = String> {
    (
        base_domain(),
        prop::collection::vec(prop::sample::select(vec!["a", "ab", "b", "x.php"]), 0..3),
        any::<bool>(),
        prop::option::of("[a-b]=[0-1]"),
    )
        .prop_map(|(h, segs, slash, q)| {
            let mut u = format!("http://{h}/{}", segs.join("/"));
            if slash && !u.ends_with('/') {
                u.push('/');
            }
            if let Some(q) = q {
                u.push('?');
                u.push_str(&q);
            }
            u
        })
}

fn case() -> impl Strategy<Value = Case> {
    let doms = prop::collection::vec(
        (
            base_domain().prop_flat_map(sub),
            any::<bool>(),
            any::<bool>(),
        ),
        0..12,
    );
    let ips4 = prop::collection::vec(v4(), 0..10);
    let ips6 = prop::collection::vec(v6(), 0..6);
    let urls = prop::collection::vec(url_of(), 0..8);
    let hashes = prop::collection::vec(("[0-9a-f]{4}", any::<bool>()), 0..4);
    let pats = prop::collection::vec(
        prop::sample::select(vec!["/gate.php", "ab", "x.PHP", "bot/1", "a.c"]),
        0..3,
    );
    let qd = prop::collection::vec(base_domain().prop_flat_map(sub), 0..12);
    let qsuffix = prop::collection::vec(
        prop::sample::select(vec!["", "/", "/b", "b", "?x=1", "/x.php?a=1", "#f", "a/"]),
        0..12,
    );
    let q4 = prop::collection::vec(0u32..(1 << 20), 0..10);
    (doms, ips4, ips6, urls, hashes, pats, qd, qsuffix, q4).prop_map(
        |(doms, ips4, ips6, urls, hashes, pats, qd, qsuffix, q4)| {
            let mut indicators = Vec::new();
            let mut qdom = qd;
            for (d, exact, upper) in &doms {
                let mut i = ind(d);
                i.exact_only = *exact;
                indicators.push(i);
                qdom.push(d.clone());
                qdom.push(format!("x.{d}"));
                qdom.push(format!("not{d}"));
                qdom.push(if *upper {
                    format!("{}.", d.to_uppercase())
                } else {
                    format!("a.b.{d}")
                });
            }
            let mut ips: Vec<IpAddr> = Vec::new();
            for (a, p) in &ips4 {
                indicators.push(ind(&format!("{}/{p}", Ipv4Addr::from(*a))));
                ips.push(IpAddr::V4(Ipv4Addr::from(*a)));
                ips.push(IpAddr::V4(Ipv4Addr::from(a.wrapping_add(1))));
                ips.push(IpAddr::V4(Ipv4Addr::from(a.wrapping_sub(1))));
                ips.push(IpAddr::V4(Ipv4Addr::from(a | 0xff)));
            }
            for q in q4 {
                ips.push(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | q)));
            }
            for (a, p) in &ips6 {
                indicators.push(ind(&format!("{}/{p}", Ipv6Addr::from(*a))));
                ips.push(IpAddr::V6(Ipv6Addr::from(*a)));
                ips.push(IpAddr::V6(Ipv6Addr::from(a.wrapping_add(3))));
                ips.push(IpAddr::V6(Ipv6Addr::from(a | 0xffff)));
            }
            let mut qurls = Vec::new();
            for (i, u) in urls.iter().enumerate() {
                indicators.push(ind(u));
                for s in &qsuffix {
                    qurls.push(format!("{u}{s}"));
                }
                qurls.push(u.to_uppercase());
                qurls.push(u.replacen("http://", "", 1));
                qurls.push(format!("{}{}", u, if i % 2 == 0 { "" } else { "x" }));
            }
            let mut qhash = Vec::new();
            for (h, upper) in &hashes {
                let md5 = h.repeat(8);
                indicators.push(ind(&md5));
                if *upper {
                    indicators.push(Indicator::new(md5.clone(), IndicatorType::Ja3, "j"));
                }
                let sha1 = h.repeat(10);
                indicators.push(ind(&sha1));
                qhash.push(md5.to_uppercase());
                qhash.push(sha1.clone());
                qhash.push(h.repeat(16));
            }
            for p in &pats {
                indicators.push(pattern(p));
            }
            let texts = vec![
                format!(
                    "{} {} see {}",
                    qdom.join(" "),
                    qurls.join(", "),
                    qhash.join(";")
                ),
                ips.iter()
                    .map(|i| format!("{i}:80"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ];
            Case {
                indicators,
                domains: qdom,
                urls: qurls,
                ips,
                hashes: qhash,
                texts,
            }
        },
    )
}

fn compare(s: &Snapshot, n: &NaiveMatcher, c: &Case) -> Result<(), TestCaseError> {
    let got: Vec<Indicator> = s.iter().collect();
    prop_assert_eq!(&got, &in_id_order(&n.indicators));
    macro_rules! same {
        ($q:expr, $call:ident, $arg:expr) => {{
            let mut a = Vec::new();
            s.$call($arg, &mut a);
            let mut b = Vec::new();
            n.$call($arg, &mut b);
            prop_assert_eq!(
                named_snap(s, &a),
                named_naive(n, &b),
                "{} {:?}",
                stringify!($call),
                $q
            );
        }};
    }
    for d in &c.domains {
        same!(d, match_domain, d);
    }
    for u in &c.urls {
        same!(u, match_url, u);
        same!(u, match_pattern, u.as_bytes());
    }
    for ip in &c.ips {
        same!(ip, match_ip, *ip);
    }
    for h in &c.hashes {
        same!(h, match_hash, h);
    }
    for t in &c.texts {
        same!(t, match_text, t.as_bytes());
    }
    for i in &n.indicators {
        let id = s.find(i.itype, &i.value);
        prop_assert!(id.is_some());
        prop_assert_eq!(&s.indicator(id.unwrap_or(u32::MAX)), i);
    }
    Ok(())
}

/// The prefilter never says "no" where the real lookup has a hit that would alert (one not
/// from an allowlist entry or an allowlisted indicator).
fn prefilter_is_sound(s: &Snapshot, c: &Case) -> Result<(), TestCaseError> {
    prop_assert!(s.has_prefilter());
    let loud = |hits: &[Hit]| {
        hits.iter().any(|h| {
            let i = s.indicator(h.id);
            !i.allowlist && i.allowlisted_by.is_none()
        })
    };
    for d in &c.domains {
        let mut h = Vec::new();
        s.match_domain(d, &mut h);
        prop_assert!(s.may_alert_domain(d) || !loud(&h), "domain {:?}", d);
    }
    for u in &c.urls {
        let mut h = Vec::new();
        s.match_url(u, &mut h);
        prop_assert!(s.may_alert_url(u) || !loud(&h), "url {:?}", u);
        let mut h = Vec::new();
        s.match_pattern(u.as_bytes(), &mut h);
        prop_assert_eq!(s.may_alert_pattern(u.as_bytes()), !h.is_empty());
        if let Some(host) = crate::text::url_host(u) {
            let mut h = Vec::new();
            s.match_url(u, &mut h);
            s.match_domain(host, &mut h);
            prop_assert!(
                s.may_alert_url_and_domain(u.as_bytes(), host) || !loud(&h),
                "url+host {:?}",
                u
            );
            // The scanner's shortcut for plain `http(s)://host/` URLs answers the same.
            if let Some(plain) = crate::text::plain_http_host(u.as_bytes()) {
                prop_assert_eq!(plain, host.as_bytes());
                prop_assert_eq!(
                    s.may_alert_plain_http_url(u.as_bytes(), plain),
                    s.may_alert_url_and_domain(u.as_bytes(), host),
                    "plain url {:?}",
                    u
                );
            }
        }
    }
    for ip in &c.ips {
        let mut h = Vec::new();
        s.match_ip(*ip, &mut h);
        prop_assert_eq!(s.may_alert_ip(*ip), loud(&h), "ip {:?}", ip);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prefilter_never_drops_a_hit(c in case(), quiet_every in 2usize..5) {
        // Some indicators allowlist entries, some allowlisted: their hits must not count.
        let mut list = c.indicators.clone();
        for (i, ind) in list.iter_mut().enumerate() {
            if i % quiet_every == 0 {
                ind.allowlist = true;
            } else if i % quiet_every == 1 && i % 2 == 0 {
                ind.allowlisted_by = Some("allow".into());
            }
        }
        prefilter_is_sound(&build(&list), &c)?;
        prefilter_is_sound(&build(&c.indicators), &c)?;
    }

    #[test]
    fn snapshot_answers_like_naive(c in case()) {
        let naive = NaiveMatcher::new(c.indicators.clone());
        let mut b = SnapshotBuilder::new();
        for i in &c.indicators {
            b.insert(i.clone());
        }
        prop_assert_eq!(b.len(), naive.indicators.len());
        let mem = b.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        compare(&mem, &naive, &c)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn published_snapshot_answers_like_naive(c in case()) {
        let naive = NaiveMatcher::new(c.indicators.clone());
        let mut b = SnapshotBuilder::new();
        for i in &c.indicators {
            b.insert(i.clone());
        }
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        b.publish(dir.path(), serde_json::Value::Null).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = Snapshot::open_current(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        compare(&s, &naive, &c)?;
    }

    #[test]
    fn published_prefilter_never_drops_a_hit(c in case()) {
        let mut b = SnapshotBuilder::new();
        for (i, ind) in c.indicators.iter().enumerate() {
            let mut ind = ind.clone();
            ind.allowlist = i % 3 == 0;
            b.insert(ind);
        }
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        b.publish(dir.path(), serde_json::Value::Null).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = Snapshot::open_current(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prefilter_is_sound(&s, &c)?;
    }

    #[test]
    fn match_text_never_panics(b in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = build(&[ind("evil.example"), ind("10.0.0.0/8"), pattern("ab")]);
        let mut h = Vec::new();
        s.match_text(&b, &mut h);
        let txt = String::from_utf8_lossy(&b);
        s.match_domain(&txt, &mut h);
        s.match_url(&txt, &mut h);
        s.match_hash(&txt, &mut h);
        s.match_email(&txt, &mut h);
    }
}

#[test]
fn domain_index_inverts_large_permutations() {
    use super::format::{Blob, DomainIdx};
    for n in [0usize, 1, 2, 15, 16, 17, 100, 5000] {
        // A permutation with one long cycle, fixed points and short cycles.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            perm.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let r2i: Vec<(u32, bool)> = perm.iter().map(|&p| (p, p % 3 == 0)).collect();
        let bytes = DomainIdx::write(&r2i);
        let idx = match DomainIdx::parse(Blob::Mem(bytes), Path::new("t")) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        };
        for (r, &(id, exact)) in r2i.iter().enumerate() {
            assert_eq!(idx.id_of(r as u32), Some((id, exact)));
            assert_eq!(idx.rank_of(id), Some(r as u32), "n={n} id={id}");
        }
        assert_eq!(idx.rank_of(n as u32), None);
    }
}

/// Domains numbered in key order store only their exact-only bits (`TRWE`); the permuted
/// layout (`TRWD`) of older snapshots still reads, and both answer alike for the identity.
#[test]
fn domain_index_identity_layout_is_one_bit_per_domain() {
    use super::format::{Blob, DomainIdx};
    for n in [0usize, 1, 7, 8, 9, 1000] {
        let exact: Vec<bool> = (0..n).map(|i| i % 5 == 2).collect();
        let bytes = DomainIdx::write_identity(exact.iter().copied());
        assert_eq!(bytes.len(), 8 + n.div_ceil(8));
        let ident = DomainIdx::parse(Blob::Mem(bytes.clone()), Path::new("t")).unwrap();
        let r2i: Vec<(u32, bool)> = (0..n as u32).zip(exact.iter().copied()).collect();
        let old = DomainIdx::parse(Blob::Mem(DomainIdx::write(&r2i)), Path::new("t")).unwrap();
        for (r, &e) in exact.iter().enumerate() {
            let r = r as u32;
            assert_eq!(ident.id_of(r), Some((r, e)));
            assert_eq!(ident.rank_of(r), Some(r));
            assert_eq!(old.id_of(r), ident.id_of(r));
            assert_eq!(old.rank_of(r), ident.rank_of(r));
        }
        assert_eq!(ident.id_of(n as u32), None);
        assert_eq!(ident.rank_of(n as u32), None);
        // A truncated or padded file is refused.
        let mut long = bytes.clone();
        long.push(0);
        assert!(DomainIdx::parse(Blob::Mem(long), Path::new("t")).is_err());
        if n > 0 {
            let short = bytes[..bytes.len() - 1].to_vec();
            assert!(DomainIdx::parse(Blob::Mem(short), Path::new("t")).is_err());
        }
    }
}

/// More indicators than one decode block (65 536), so `iter` streams the FSTs on threads and
/// decodes blocks split over threads; the result must equal the naive matcher's sorted list
/// and the per-id reader's.
#[test]
fn iter_over_several_blocks_equals_per_id_reads() {
    let mut list = Vec::new();
    for i in 0..60_000u32 {
        let mut d = ind(&format!("h{i}.d{}.example", i % 977));
        d.confidence = (i % 101) as u8;
        d.tags = vec![format!("t{}", i % 7)];
        list.push(d);
    }
    for i in 0..12_000u32 {
        list.push(ind(&format!("http://u{}.example/p/{i}", i % 313)));
        list.push(ind(&Ipv4Addr::from(0x0a00_0000 + i * 3).to_string()));
    }
    let s = build(&list);
    let naive = NaiveMatcher::new(list);
    let got: Vec<Indicator> = s.iter().collect();
    assert_eq!(got.len(), 84_000);
    assert_eq!(got, in_id_order(&naive.indicators));
    for id in [0u32, 1, 11_999, 12_000, 65_535, 65_536, 70_001, 83_999] {
        assert_eq!(got[id as usize], s.indicator(id), "id {id}");
    }
}

#[test]
fn prefilter_says_no_to_what_cannot_alert() {
    let mut private = ind("10.0.0.0/8");
    private.allowlist = true;
    let list = vec![
        ind("evil.example"),
        ind("http://phish.example/login"),
        ind("198.51.100.0/24"),
        private,
        pattern("/gate.php"),
    ];
    let s = build(&list);
    assert!(s.has_prefilter());
    for yes in ["evil.example", "a.b.EVIL.example.", "198.51.100.7"] {
        assert!(s.may_alert_domain(yes), "{yes}");
    }
    for no in [
        "notevil.example",
        "example",
        "evil.example.com",
        "10.1.2.3",
        "198.51.101.1",
    ] {
        assert!(!s.may_alert_domain(no), "{no}");
    }
    assert!(s.may_alert_url("http://phish.example/login/x"));
    assert!(
        s.may_alert_url("HTTP://Phish.Example/other"),
        "same host: look it up"
    );
    assert!(s.may_alert_url("http://ok.example/gate.php?x=1"), "pattern");
    assert!(!s.may_alert_url("http://ok.example/login"));
    assert!(s.may_alert_ip("198.51.100.200".parse().unwrap()));
    assert!(
        !s.may_alert_ip("10.9.9.9".parse().unwrap()),
        "allowlisted range only"
    );
    assert!(!s.may_alert_ip("192.0.2.1".parse().unwrap()));
    assert!(s.may_alert_pattern(b"/x/GATE.php"));
    assert!(!s.may_alert_pattern(b"/x/gate.asp"));
}

#[test]
fn the_prefilter_probes_only_suffixes_as_long_as_a_key() {
    // Keys of three labels: two-label parents need no probe, and still answer "no".
    let s = build(&[ind("a.evil.example"), ind("http://b.phish.example/x")]);
    assert!(s.may_alert_domain("x.a.evil.example"));
    assert!(s.may_alert_plain_http_url(b"http://b.phish.example/y", b"b.phish.example"));
    assert!(!s.may_alert_domain("evil.example"));
    assert!(!s.may_alert_domain("example"));
    // A one-label key (a TLD, allowed with the fqdn hint): every name under it may alert.
    let tld = Indicator::new("zip", IndicatorType::Fqdn, "test");
    let s = build(&[ind("a.evil.example"), tld]);
    assert!(s.may_alert_domain("anything.zip"));
    let url = b"http://files.anything.zip/a";
    assert!(s.may_alert_plain_http_url(url, &url[7..25]));
    assert!(!s.may_alert_domain("anything.example"));
}

#[test]
fn a_resealed_manifest_vouches_for_exactly_the_new_bytes() -> Result<(), SnapshotError> {
    // What a publish that renumbers its version does to meta.json, and what the
    // older-prefilter tests do: the manifest records the new bytes, and only them.
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let mut b = SnapshotBuilder::new();
    b.insert(ind("evil.example"));
    let snap_dir = b.publish(dir.path(), serde_json::Value::Null)?;
    let meta = snap_dir.join("meta.json");
    let mut bytes = fs::read(&meta).map_err(io_err(&meta))?;
    bytes.extend_from_slice(b"\n");
    fs::write(&meta, &bytes).map_err(io_err(&meta))?;
    assert!(
        Snapshot::open(&snap_dir).is_err(),
        "the old entry no longer matches"
    );
    reseal_manifest(&snap_dir, "meta.json", Some(&bytes))?;
    assert_eq!(Snapshot::open(&snap_dir)?.len(), 1);
    reseal_manifest(&snap_dir, "meta.json", Some(b"{}"))?;
    assert!(
        Snapshot::open(&snap_dir).is_err(),
        "an entry for other bytes"
    );
    Ok(())
}

#[test]
fn a_snapshot_without_a_prefilter_still_opens_and_answers() -> Result<(), SnapshotError> {
    // As written before prefilter.bin existed: not in the manifest, not on disk.
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let mut b = SnapshotBuilder::new();
    b.insert(ind("evil.example"));
    b.insert(ind("198.51.100.0/24"));
    let snap_dir = b.publish(dir.path(), serde_json::Value::Null)?;
    reseal_manifest(&snap_dir, "prefilter.bin", None)?;
    fs::remove_file(snap_dir.join("prefilter.bin")).map_err(io_err(&snap_dir))?;
    let s = Snapshot::open(&snap_dir)?;
    assert!(!s.has_prefilter());
    // Without a prefilter every answer is "maybe": the full lookup decides.
    assert!(s.may_alert_domain("ok.example"));
    assert!(s.may_alert_ip("192.0.2.1".parse().unwrap()));
    let mut h = Vec::new();
    s.match_domain("a.evil.example", &mut h);
    assert_eq!(h.len(), 1);
    Ok(())
}

#[test]
fn a_prefilter_of_another_version_is_set_aside() -> Result<(), SnapshotError> {
    // Written by a trawl whose prefilter hashed differently (version 1): the snapshot opens,
    // reports it, and answers every "could it alert?" with "maybe", so scans stay exact.
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let mut b = SnapshotBuilder::new();
    b.insert(ind("evil.example"));
    let snap_dir = b.publish(dir.path(), serde_json::Value::Null)?;
    assert!(!Snapshot::open(&snap_dir)?.prefilter_outdated());
    let pf = snap_dir.join("prefilter.bin");
    let mut bytes = fs::read(&pf).map_err(io_err(&pf))?;
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    fs::write(&pf, &bytes).map_err(io_err(&pf))?;
    reseal_manifest(&snap_dir, "prefilter.bin", Some(&bytes))?;
    let s = Snapshot::open(&snap_dir)?;
    assert!(s.prefilter_outdated());
    assert!(!s.has_prefilter());
    assert!(s.may_alert_domain("ok.example"));
    let mut h = Vec::new();
    s.match_domain("a.evil.example", &mut h);
    assert_eq!(h.len(), 1);
    Ok(())
}

/// `from_indicators` on merged input tells the compiler the items are sorted, which skips
/// its order checks: the files must be exactly those of the checked path, except
/// `meta.json`'s creation time; an insert clears the flag.
#[test]
fn sorted_input_compiles_to_the_same_files() {
    let mut items: Vec<Indicator> = [
        "evil.example",
        "www.evil.example",
        "a.b.c.example.org",
        "c.example.org",
        "xn--bcher-kva.example",
        "zz.top",
        "198.51.100.7",
        "198.51.100.0/24",
        "10.0.0.0/8",
        "2001:db8::1",
        "2001:db8::/32",
        "http://evil.example/a/b.php",
        "https://evil.example/",
        "d41d8cd98f00b204e9800998ecf8427e",
    ]
    .iter()
    .enumerate()
    .map(|(n, v)| {
        let mut i = ind(v);
        i.tags = vec![["malware", "c2", "phishing"][n % 3].to_string()];
        i.confidence = 50 + n as u8;
        i.reference = (n % 2 == 0).then(|| format!("https://ref.example/{n}"));
        i.external_id = (n % 3 == 0).then(|| format!("indicator--{n:08}"));
        i
    })
    .collect();
    items.sort_by(|x, y| (x.itype, &x.value).cmp(&(y.itype, &y.value)));
    let fast = SnapshotBuilder::from_indicators(items.clone());
    assert!(fast.sorted);
    // The same items through the checked path (a builder that does not know the order).
    let mut slow = SnapshotBuilder::from_indicators(items.clone());
    slow.sorted = false;
    let compile = |b: SnapshotBuilder| {
        build::compile(b.items, b.sorted, 1, serde_json::Value::Null)
            .unwrap_or_else(|e| panic!("compile: {e}"))
    };
    let mut inserted = SnapshotBuilder::from_indicators(items.clone());
    inserted.insert(ind("new.example"));
    assert!(!inserted.sorted);
    let (f, s) = (compile(fast), compile(slow));
    assert_eq!(f.len(), s.len());
    for ((fname, fbytes), (sname, sbytes)) in f.iter().zip(&s) {
        assert_eq!(fname, sname);
        if *fname != "meta.json" {
            assert_eq!(fbytes, sbytes, "{fname} differs");
        }
    }
}

/// External ids (STIX ids, MISP uuids) survive the published snapshot in `ids.bin`; a
/// snapshot written before `ids.bin` existed opens and reads every id as none.
#[test]
fn external_ids_round_trip_and_older_snapshots_have_none() -> Result<(), SnapshotError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let mut list = Vec::new();
    for (n, v) in [
        "evil.example",
        "b.evil.example",
        "198.51.100.0/24",
        "2001:db8::1",
        "http://evil.example/gate.php",
        "d41d8cd98f00b204e9800998ecf8427e",
        "quiet.example",
    ]
    .iter()
    .enumerate()
    {
        let mut i = ind(v);
        i.reference = Some(format!("https://ref.example/{n}"));
        if n != 1 && n != 6 {
            i.external_id = Some(format!(
                "indicator--{n}c1f7b4e-0000-4000-8000-00000000000{n}"
            ));
        }
        list.push(i);
    }
    list[3].external_id = Some("5f0c8a3e-1111-4000-8000-000000000003".into());
    let mut b = SnapshotBuilder::new();
    for i in &list {
        b.insert(i.clone());
    }
    let snap_dir = b.publish(dir.path(), serde_json::Value::Null)?;
    let s = Snapshot::open(&snap_dir)?;
    let by_value = |s: &Snapshot| -> BTreeMap<String, Indicator> {
        s.iter().map(|i| (i.value.clone(), i)).collect()
    };
    let got = by_value(&s);
    for want in &list {
        let g = &got[&want.value];
        assert_eq!(g.external_id, want.external_id, "{}", want.value);
        assert_eq!(g.reference, want.reference, "{}", want.value);
    }
    // As written before external ids: no `ids.bin` in the manifest or on disk.
    drop(s);
    reseal_manifest(&snap_dir, "ids.bin", None)?;
    fs::remove_file(snap_dir.join("ids.bin")).map_err(io_err(&snap_dir))?;
    let old = Snapshot::open(&snap_dir)?;
    let got = by_value(&old);
    for want in &list {
        let g = &got[&want.value];
        assert_eq!(g.external_id, None, "{}", want.value);
        assert_eq!(g.reference, want.reference, "{}", want.value);
    }
    Ok(())
}

/// Groups survive the published snapshot; the default group costs nothing in the profile.
#[test]
fn groups_round_trip_and_merge() -> Result<(), SnapshotError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
    let public = ind("evil.example");
    let mut private = ind("evil.example");
    private.sources = vec!["private".into()];
    private.groups = crate::Groups::one("csirt");
    let mut only_private = ind("198.51.100.7");
    only_private.groups = crate::Groups::from_names(["csirt", "ops"]);
    let plain = ind("203.0.113.9");
    let list = vec![public, private, only_private.clone(), plain];
    let mut b = SnapshotBuilder::new();
    for i in &list {
        b.insert(i.clone());
    }
    let snap_dir = b.publish(dir.path(), serde_json::Value::Null)?;
    let s = Snapshot::open(&snap_dir)?;
    let got: Vec<Indicator> = s.iter().collect();
    assert_eq!(got, in_id_order(&NaiveMatcher::new(list).indicators));
    let groups = |v: &str| {
        got.iter()
            .find(|i| i.value == v)
            .map(|i| i.groups.to_vec())
            .unwrap_or_default()
    };
    assert_eq!(groups("evil.example"), vec!["csirt", "everyone"]);
    assert_eq!(groups("198.51.100.7"), only_private.groups.to_vec());
    assert_eq!(groups("203.0.113.9"), vec!["everyone"]);
    Ok(())
}

/// `profiles.bin` written before groups existed (11 columns) reads back with the groups
/// column 0, i.e. `everyone`, and a 12-column writer emits the same bytes for such rows: old
/// snapshots open unchanged, no format version bump needed.
#[test]
fn profiles_without_the_groups_column_read_as_everyone() {
    let old_rows: Vec<[u64; 11]> = (0..70u64)
        .map(|i| [i % 7, 5, i / 3, 1, 0, i % 2, 0, 9 + i, 10 + i, 0, 0])
        .collect();
    let new_rows: Vec<[u64; build::NPROFILE]> = old_rows
        .iter()
        .map(|r| {
            let mut n = [0u64; build::NPROFILE];
            n[..11].copy_from_slice(r);
            n
        })
        .collect();
    let old = Rows::<11>::write(*b"TRWP", &[], &old_rows, true);
    assert_eq!(
        old,
        Rows::<{ build::NPROFILE }>::write(*b"TRWP", &[], &new_rows, true)
    );
    let parsed = match Rows::<{ build::NPROFILE }>::parse(
        Blob::Mem(old),
        Path::new("profiles.bin"),
        *b"TRWP",
        0,
        true,
    ) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    for (i, want) in new_rows.iter().enumerate() {
        assert_eq!(parsed.row(i as u32).as_ref(), Some(want));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `trawl update`'s path (merged indicators streamed in order into a [`StreamBuilder`])
    /// writes the same bytes as a [`SnapshotBuilder`] of the same indicators, allowlist
    /// entries and allowlisted ones included.
    #[test]
    fn stream_builder_writes_the_snapshot_builders_bytes(c in case(), quiet_every in 2usize..5) {
        let mut b = SnapshotBuilder::new();
        for (i, ind) in c.indicators.iter().enumerate() {
            let mut ind = ind.clone();
            ind.allowlist = i % quiet_every == 0;
            if i % quiet_every == 1 {
                ind.allowlisted_by = Some(format!("allow {}", i % 2));
            }
            ind.reference = (i % 3 == 0).then(|| format!("ref {}", i % 4));
            ind.external_id = (i % 4 == 1).then(|| format!("indicator--{i}"));
            b.insert(ind);
        }
        let mut items = b.items;
        // Id order: what `trawl update`'s merge streams (domains by label-reversed name).
        items.sort_by(id_order);
        let b = SnapshotBuilder::from_indicators(items.clone());
        let want = build::compile(b.items, b.sorted, 1, serde_json::Value::Null)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut s = StreamBuilder::new();
        for it in &items {
            s.push(it.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        if let Some(first) = items.first() {
            prop_assert!(s.push(first.clone()).is_err(), "an out-of-order push is refused");
        }
        let got = s.compile(1, serde_json::Value::Null)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let names = |f: &[(&str, Vec<u8>)]| f.iter().map(|x| x.0.to_string()).collect::<Vec<_>>();
        prop_assert_eq!(names(&got), names(&want));
        for ((name, g), (_, w)) in got.iter().zip(&want) {
            if *name != "meta.json" {
                prop_assert!(g == w, "{} differs", name);
            }
        }
        // `scan` (how an update reads the previous snapshot) sees what `iter` sees, in the
        // same order: id order, which an update takes as one sorted run.
        let snap = from_files(got).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut scanned = Vec::new();
        snap.scan(|i| scanned.push(i));
        let all: Vec<Indicator> = snap.iter().collect();
        prop_assert!(scanned.windows(2).all(|w| id_order(&w[0], &w[1]).is_lt()));
        prop_assert_eq!(&scanned, &all);
        // `scan_keys` (how an update reads the history) sees the same entries: each key,
        // reference and external id, and a profile holding the rest.
        let mut keyed = Vec::new();
        prop_assert!(snap.scan_keys(|| false, |e| keyed.push((
            e.itype,
            e.key.to_vec(),
            e.profile,
            e.reference,
            e.external_id
        ))));
        prop_assert_eq!(keyed.len(), all.len());
        for ((itype, key, pid, reference, external_id), want) in keyed.into_iter().zip(&all) {
            let mut want_key = Vec::new();
            if want.itype == T::Fqdn {
                reverse_labels_into(want.value.as_bytes(), &mut want_key);
            } else {
                want_key.extend_from_slice(want.value.as_bytes());
            }
            prop_assert_eq!((itype, key), (want.itype, want_key));
            let mut got = snap.profile(pid).ok_or_else(|| TestCaseError::fail("no profile"))?;
            got.value.clone_from(&want.value);
            got.itype = itype;
            got.reference = reference;
            got.external_id = external_id;
            prop_assert_eq!(&got, want);
        }
    }
}

/// `scan_where` makes only the entries whose profile passes its filter, in `scan`'s order,
/// and both it and `scan_keys` end when told to stop (checked each 65,536 entries).
#[test]
fn scan_where_filters_by_profile_and_scans_stop_when_told() {
    let mut b = SnapshotBuilder::new();
    let n = 70_000u32;
    for i in 0..n {
        let mut ind = Indicator::new(format!("h{i}.example"), T::Fqdn, &format!("feed{}", i % 3));
        ind.reference = (i % 5 == 0).then(|| format!("ref {i}"));
        b.insert(ind);
    }
    b.insert(Indicator::new("http://a.example/x", T::Url, "feed1"));
    let snap = b.build().unwrap();
    let mut all = Vec::new();
    snap.scan(|i| all.push(i));
    let mut some = Vec::new();
    let whole = snap.scan_where(|p| p.sources == ["feed1"], || false, |i| some.push(i));
    assert!(whole);
    let want: Vec<Indicator> = all.into_iter().filter(|i| i.sources == ["feed1"]).collect();
    assert_eq!(want.len(), n as usize / 3 + 1);
    assert_eq!(some, want);
    let mut seen = 0;
    assert!(!snap.scan_where(|_| true, || true, |_| seen += 1));
    assert!(seen < n as usize);
    let mut keys = 0;
    assert!(!snap.scan_keys(|| true, |_| keys += 1));
    assert!(keys < n as usize);
}

/// `scan` decodes each profile once while its cache slot holds it: with more profiles than
/// slots, interleaved, every indicator still reads back as `iter` (no cache) reads it.
#[test]
fn scan_with_more_profiles_than_cache_slots_reads_every_record() {
    let mut b = SnapshotBuilder::new();
    for i in 0..600u32 {
        let mut ind = Indicator::new(format!("h{i}.example"), T::Fqdn, &format!("feed{}", i % 7));
        ind.confidence = (i % 101) as u8;
        ind.tags = vec![format!("t{}", i % 13)];
        ind.reference = (i % 3 == 0).then(|| format!("ref {i}"));
        ind.external_id = (i % 5 == 0).then(|| format!("indicator--{i}"));
        b.insert(ind);
    }
    let snap = b.build().unwrap();
    let mut scanned = Vec::new();
    snap.scan(|i| scanned.push(i));
    let all: Vec<Indicator> = snap.iter().collect();
    assert_eq!(scanned.len(), 600);
    assert_eq!(scanned, all);
}
