//! Corpus feeds through parse + normalise (`process_bytes`): distinct indicators per itype
//! equal an independent count computed here with std parsers and plain string handling.

use feeds::config::FeedConfig;
use feeds::update::process_bytes;
use matcher::{Indicator, IndicatorType as T};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

fn read(rel: &str) -> Option<Vec<u8>> {
    let p = crate::corpus_dir::corpus_dir()?.join("feeds").join(rel);
    if !p.exists() {
        eprintln!("CORPUS ABSENT: {}", p.display());
        return None;
    }
    Some(std::fs::read(p).unwrap())
}

fn run(rel: &str) -> Option<(String, Vec<Indicator>)> {
    let bytes = read(rel)?;
    let mut f = FeedConfig::new(rel, rel);
    f.derive = Some(false);
    let (_, inds) = process_bytes(&bytes, &f, 1_800_000_000);
    Some((String::from_utf8(bytes).unwrap(), inds))
}

fn counts(inds: &[Indicator]) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in inds {
        *m.entry(i.itype).or_default() += 1;
    }
    m
}

/// Independent CIDR canonicalisation with std: (masked address, prefix).
fn v4_net(s: &str) -> Option<(u32, u8)> {
    let (a, p) = s.split_once('/').unwrap_or((s, "32"));
    let a: Ipv4Addr = a.trim().parse().ok()?;
    let p: u8 = p.trim().parse().ok()?;
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    Some((u32::from(a) & mask, p))
}

fn data<'a>(text: &'a str, comment: &[char]) -> impl Iterator<Item = &'a str> {
    let comment = comment.to_vec();
    text.lines()
        .map(str::trim)
        .filter(move |l| !l.is_empty() && !l.starts_with(comment.as_slice()))
}

#[test]
fn ip_lists() {
    // (file, comment chars, how to cut the value from a line)
    type Cut = fn(&str) -> &str;
    let cases: &[(&str, &[char], Cut)] = &[
        ("spamhaus/drop_2015.txt", &[';'], |l| {
            l.split(';').next().unwrap()
        }),
        ("spamhaus/edrop_2015.txt", &[';'], |l| {
            l.split(';').next().unwrap()
        }),
        ("firehol/firehol_level1.netset", &['#'], |l| l),
        ("firehol/spamhaus_drop.netset", &['#'], |l| l),
        ("firehol/spamhaus_edrop.netset", &['#'], |l| l),
        ("firehol/et_compromised.ipset", &['#'], |l| l),
        ("firehol/dshield.netset", &['#'], |l| l),
        ("ipsum/ipsum.txt", &['#'], |l| l.split('\t').next().unwrap()),
        ("bambenek/c2-ipmasterlist.txt", &['#'], |l| {
            l.split(',').next().unwrap()
        }),
        ("maltrail/static_mass_scanner_cidr.txt", &['#'], |l| {
            l.split('#').next().unwrap()
        }),
    ];
    for (rel, comment, cut) in cases {
        let Some((text, inds)) = run(rel) else { return };
        // Networks wider than /8 are refused as too broad (FireHOL level1 lists 224.0.0.0/3).
        let expected: HashSet<(u32, u8)> = data(&text, comment)
            .filter_map(|l| v4_net(cut(l)))
            .filter(|&(_, len)| len >= 8)
            .collect();
        assert!(
            data(&text, comment).all(|l| v4_net(cut(l)).is_some()),
            "{rel}: every line parses with std"
        );
        assert_eq!(
            counts(&inds),
            BTreeMap::from([(T::Ipv4, expected.len())]),
            "{rel}"
        );
        // Same values: rebuild canonical strings independently.
        let got: HashSet<(u32, u8)> = inds.iter().map(|i| v4_net(&i.value).unwrap()).collect();
        assert_eq!(got, expected, "{rel}");
    }
}

#[test]
fn dshield_block_list_as_cidrs() {
    let Some((text, inds)) = run("dshield/block.txt") else {
        return;
    };
    let expected: HashSet<(u32, u8)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            v4_net(&format!("{}/{}", f.first()?, f.get(2)?))
        })
        .collect();
    assert_eq!(expected.len(), 15);
    assert_eq!(counts(&inds), BTreeMap::from([(T::Ipv4, 15)]));
    assert!(inds.iter().any(|i| i.value == "207.150.177.0/24"));
}

#[test]
fn bambenek_domains_and_openphish_urls() {
    let Some((text, inds)) = run("bambenek/c2-dommasterlist.txt") else {
        return;
    };
    let expected: HashSet<String> = data(&text, &['#'])
        .map(|l| l.split(',').next().unwrap().to_ascii_lowercase())
        .collect();
    assert_eq!(counts(&inds), BTreeMap::from([(T::Fqdn, expected.len())]));
    let got: HashSet<String> = inds.iter().map(|i| i.value.clone()).collect();
    assert_eq!(got, expected);

    let Some((text, inds)) = run("openphish/feed_2015.txt") else {
        return;
    };
    let expected: HashSet<&str> = data(&text, &['#']).collect();
    assert_eq!(counts(&inds), BTreeMap::from([(T::Url, expected.len())]));
    // Scheme and host lower-case; every URL here has a lower-case scheme and host already,
    // and no default port or fragment, so values survive unchanged except percent-decoding.
    assert!(inds
        .iter()
        .any(|i| i.value == "http://www.kerjakayu.my/.http/"));
}

#[test]
fn mass_scanner_v4_v6() {
    let Some((text, inds)) = run("maltrail/static_mass_scanner.txt") else {
        return;
    };
    let vals: Vec<&str> = data(&text, &['#'])
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let v4: HashSet<Ipv4Addr> = vals.iter().filter_map(|v| v.parse().ok()).collect();
    let v6: HashSet<Ipv6Addr> = vals.iter().filter_map(|v| v.parse().ok()).collect();
    let c = counts(&inds);
    // v4 CIDRs (`a.b.c.d/nn`) exist too; count them independently.
    let v4nets: HashSet<(u32, u8)> = vals
        .iter()
        .filter(|v| v.contains('/') && !v.contains(':'))
        .filter_map(|v| v4_net(v))
        .collect();
    assert_eq!(c.get(&T::Ipv4).copied(), Some(v4.len() + v4nets.len()));
    let v6nets = vals
        .iter()
        .filter(|v| {
            v.split_once('/')
                .is_some_and(|(a, _)| a.parse::<Ipv6Addr>().is_ok())
        })
        .count();
    // The two `/w00tw00t...` lines are URL paths, kept as patterns.
    assert_eq!(c.get(&T::Pattern).copied(), Some(2));
    assert_eq!(c.get(&T::Ipv6).copied(), Some(v6.len() + v6nets));
}

#[test]
fn sslbl_sha1_and_feodo() {
    let Some((text, inds)) = run("abusech/sslbl_sslblacklist_2023-11-14.csv") else {
        return;
    };
    let expected: HashSet<&str> = data(&text, &['#'])
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(counts(&inds), BTreeMap::from([(T::Sha1, expected.len())]));
    let Some((_, inds)) = run("abusech/feodotracker_ipblocklist_2024-04-04.csv") else {
        return;
    };
    assert_eq!(counts(&inds), BTreeMap::from([(T::Ipv4, 28)]));
    assert!(inds.iter().all(|i| i.tags == vec!["pikabot".to_string()]));
}

#[test]
fn misp_and_stix_carry_metadata() {
    let Some((_, inds)) = run("misp/event_sednit_osint.json") else {
        return;
    };
    // 68 to_ids attributes (see corpus.rs) of which 2 repeat a value: 66 distinct.
    assert_eq!(inds.len(), 66);
    assert!(inds
        .iter()
        .all(|i| i.tlp == matcher::Tlp::Clear && i.severity == matcher::Severity::Low));
    let Some((_, inds)) = run("stix2/apt1.json") else {
        return;
    };
    assert_eq!(
        counts(&inds),
        BTreeMap::from([(T::Ipv4, 4), (T::Fqdn, 3), (T::Md5, 3)])
    );
    assert!(inds.iter().any(|i| i.value == "223.166.0.0/15"));
}
