//! Every feed file of the shared corpus: `auto` detects the right format and the parser
//! finds exactly the entries an independent, simpler count finds (computed in the test from
//! the raw file with line filters like `grep -v '^#' | grep -c .`, or stated where fixed).

use feeds::config::{FeedConfig, Format};
use feeds::parse::{detect_format, parse_feed, ParsedFeed};
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    let p = crate::corpus_dir::corpus_dir()?.join("feeds");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("CORPUS ABSENT: {}", p.display());
        None
    }
}

fn read(rel: &str) -> Option<Vec<u8>> {
    let p = corpus()?.join(rel);
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn auto(rel: &str) -> Option<(Vec<u8>, ParsedFeed)> {
    let bytes = read(rel)?;
    let feed = FeedConfig::new(rel, rel);
    let parsed = parse_feed(&bytes, &feed);
    Some((bytes, parsed))
}

/// Lines that are neither blank nor start (after blanks) with one of `comments`.
fn data_lines<'a>(bytes: &'a [u8], comments: &[&str]) -> Vec<&'a str> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !comments.iter().any(|c| l.starts_with(c)))
        .collect()
}

fn values(p: &ParsedFeed) -> Vec<&str> {
    p.records.iter().map(|r| r.value.as_str()).collect()
}

#[test]
fn line_lists_detect_and_count() {
    // (file, expected format, comment prefixes for the independent count)
    let cases: &[(&str, Format, &[&str])] = &[
        ("spamhaus/drop_2015.txt", Format::SpamhausDrop, &[";"]),
        ("spamhaus/edrop_2015.txt", Format::SpamhausDrop, &[";"]),
        ("firehol/dshield.netset", Format::Netset, &["#"]),
        ("firehol/et_compromised.ipset", Format::Netset, &["#"]),
        ("firehol/feodo.ipset", Format::Netset, &["#"]),
        ("firehol/firehol_level1.netset", Format::Netset, &["#"]),
        ("firehol/spamhaus_drop.netset", Format::Netset, &["#"]),
        ("firehol/spamhaus_edrop.netset", Format::Netset, &["#"]),
        ("openphish/feed_2015.txt", Format::Plain, &["#"]),
        ("bambenek/c2-dommasterlist.txt", Format::Delimited, &["#"]),
        ("bambenek/c2-ipmasterlist.txt", Format::Delimited, &["#"]),
        ("ipsum/ipsum.txt", Format::Delimited, &["#"]),
        (
            "alienvault/reputation_generic.txt",
            Format::Delimited,
            &["#"],
        ),
        ("packetmail/iprep.txt", Format::Delimited, &["#"]),
        ("dataplane/dnsrd.txt", Format::Delimited, &["#"]),
        (
            "maltrail/static_malware_emotet.txt",
            Format::Maltrail,
            &["#"],
        ),
        ("maltrail/static_mass_scanner.txt", Format::Maltrail, &["#"]),
        (
            "maltrail/static_mass_scanner_cidr.txt",
            Format::Maltrail,
            &["#"],
        ),
        (
            "maltrail/static_malicious_bad_script.txt",
            Format::Maltrail,
            &["#"],
        ),
        (
            "maltrail/static_malicious_ek_clearfake.txt",
            Format::Maltrail,
            &["#"],
        ),
        (
            "maltrail/static_suspicious_crypto_mining.txt",
            Format::Maltrail,
            &["#"],
        ),
        (
            "maltrail/static_suspicious_dynamic_domain.txt",
            Format::Maltrail,
            &["#"],
        ),
        ("maltrail/data_whitelist.txt", Format::Maltrail, &["#"]),
        ("maltrail/data_bogon_ranges.txt", Format::Maltrail, &["#"]),
    ];
    for (rel, format, comments) in cases {
        let Some((bytes, p)) = auto(rel) else { return };
        assert_eq!(detect_format(&bytes), *format, "{rel}");
        assert_eq!(p.format, *format, "{rel}");
        let expected = data_lines(&bytes, comments).len();
        assert_eq!(
            p.records.len(),
            expected,
            "{rel}: rejects {:?}",
            &p.rejects[..p.rejects.len().min(3)]
        );
        assert_eq!(p.rejected, 0, "{rel}: {:?}", p.rejects.first());
        // Every record's value is the line's first token (before any delimiter / comment).
        for r in &p.records {
            assert!(
                !r.value.is_empty() && !r.value.contains(char::is_whitespace),
                "{rel}: {:?}",
                r.value
            );
        }
    }
}

#[test]
fn spamhaus_drop_values_and_references() {
    let Some((bytes, p)) = auto("spamhaus/drop_2015.txt") else {
        return;
    };
    let first = &p.records[0];
    assert_eq!((first.value.as_str(), first.line), ("1.4.0.0/17", 5));
    assert_eq!(
        first.meta.as_ref().unwrap().reference.as_deref(),
        Some("SBL256893")
    );
    let last_line = data_lines(&bytes, &[";"])
        .last()
        .copied()
        .unwrap()
        .to_string();
    assert!(last_line.starts_with(&p.records.last().unwrap().value));
    // ASN-DROP has no address indicators: every entry is rejected with a reason and line.
    let Some((_, asn)) = auto("spamhaus/asndrop_sample.txt") else {
        return;
    };
    assert_eq!(asn.format, Format::SpamhausDrop);
    assert!(asn.records.is_empty());
    assert_eq!(asn.rejected, 2);
    assert_eq!(asn.rejects[0].line, 5);
    assert!(asn.rejects[0].reason.contains("AS number"));
}

#[test]
fn dshield_block_list() {
    let Some((bytes, p)) = auto("dshield/block.txt") else {
        return;
    };
    assert_eq!(p.format, Format::Dshield);
    // Independent: lines whose first tab field is an IPv4 address.
    let expected: Vec<String> = std::str::from_utf8(&bytes)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f[0].parse::<std::net::Ipv4Addr>().ok()?;
            Some(format!("{}/{}", f[0], f[2]))
        })
        .collect();
    // `grep -cP '^\d+\.\d+\.\d+\.\d+\t' block.txt` = 15 (the sample is shorter than 20).
    assert_eq!(expected.len(), 15);
    assert_eq!(
        values(&p),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn maltrail_ports_paths_and_references() {
    let Some((_, p)) = auto("maltrail/static_malware_emotet.txt") else {
        return;
    };
    let r = &p.records[0];
    assert_eq!(r.value, "66.210.228.178");
    assert_eq!(r.itype, Some(matcher::IndicatorType::Ipv4));
    assert_eq!(
        r.meta.as_ref().unwrap().reference.as_deref(),
        Some("https://twitter.com/_lockhum/status/1221213324525867008")
    );
    let Some((_, p)) = auto("maltrail/static_malicious_bad_script.txt") else {
        return;
    };
    assert_eq!(p.records[0].value, "/ChromSrch.egg");
    assert_eq!(p.records[0].itype, Some(matcher::IndicatorType::Pattern));
    let Some((_, p)) = auto("maltrail/static_mass_scanner.txt") else {
        return;
    };
    assert_eq!(p.records[0].value, "129.82.138.12");
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().description.as_deref(),
        Some("pinger1a.netsec.colostate.edu")
    );
}

#[test]
fn plain_vxvault_reports_its_header_lines() {
    let Some((bytes, p)) = auto("vxvault/urllist.txt") else {
        return;
    };
    assert_eq!(p.format, Format::Plain);
    // Independent: lines starting with http.
    let urls = data_lines(&bytes, &[])
        .iter()
        .filter(|l| l.starts_with("http"))
        .count();
    assert_eq!(urls, 12);
    // The two header lines ("VX Vault last 100 Links", the date) become records whose
    // first token normalisation rejects later; the URLs are all there.
    let got: Vec<&str> = values(&p)
        .into_iter()
        .filter(|v| v.starts_with("http"))
        .collect();
    assert_eq!(got.len(), urls);
}

#[test]
fn abuse_ch_csvs() {
    // (file, expected column values taken by an independent field split)
    let Some((bytes, p)) = auto("abusech/feodotracker_ipblocklist_2024-04-04.csv") else {
        return;
    };
    assert_eq!(p.format, Format::Delimited);
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .skip(1) // header
        .map(|l| l.split(',').nth(1).unwrap().trim_matches('"'))
        .collect();
    assert_eq!(expected.len(), 28, "file says '# END 28 entries'");
    assert_eq!(values(&p), expected);
    let meta = p.records[0].meta.as_ref().unwrap();
    assert_eq!(meta.first_seen, Some(1_684_864_304)); // 2023-05-23 17:51:44 UTC
    assert!(meta.tags.contains(&"pikabot".to_string()));

    let Some((bytes, p)) = auto("abusech/sslbl_sslblacklist_2023-11-14.csv") else {
        return;
    };
    assert_eq!(p.format, Format::Delimited);
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(expected.len(), 5522, "file says '# END (5522) entries'");
    assert_eq!(values(&p), expected);
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().description.as_deref(),
        Some("DCRat C&C")
    );

    let Some((bytes, p)) = auto("abusech/threatfox_full_urls_2025-12-07.csv") else {
        return;
    };
    assert_eq!(p.format, Format::Delimited);
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .map(|l| l.split("\", \"").nth(2).unwrap())
        .collect();
    assert_eq!(values(&p), expected);
    let m = p.records[0].meta.as_ref().unwrap();
    assert_eq!(m.confidence, Some(100));
    assert!(m.tags.contains(&"clickfix".to_string()), "{:?}", m.tags);

    let Some((bytes, p)) = auto("abusech/ransomwaretracker_2016.csv") else {
        return;
    };
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .map(|l| l.split("\",\"").nth(4).unwrap())
        .collect();
    assert_eq!(
        values(&p),
        expected,
        "the URL column is preferred over Host"
    );
}

#[test]
fn csirtg_and_other_delimited() {
    let Some((bytes, p)) = auto("csirtg/csirtg_io_feed.csv") else {
        return;
    };
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(values(&p), expected);
    assert_eq!(
        p.records[0].itype,
        Some(matcher::IndicatorType::Ipv4),
        "itype column used"
    );

    let Some((bytes, p)) = auto("dataplane/dnsrd.txt") else {
        return;
    };
    let expected: Vec<&str> = data_lines(&bytes, &["#"])
        .iter()
        .map(|l| l.split('|').nth(2).unwrap().trim())
        .collect();
    assert_eq!(values(&p), expected);

    let Some((bytes, p)) = auto("alienvault/reputation_generic.txt") else {
        return;
    };
    let expected: Vec<&str> = data_lines(&bytes, &[])
        .iter()
        .map(|l| l.split('#').next().unwrap())
        .collect();
    assert_eq!(values(&p), expected);
}

#[test]
fn json_feeds() {
    let Some((bytes, p)) = auto("phishtank/online-valid.json") else {
        return;
    };
    assert_eq!(p.format, Format::Json);
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let urls: Vec<&str> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["url"].as_str().unwrap())
        .collect();
    assert_eq!(values(&p), urls);

    let Some((bytes, p)) = auto("alienvault/otx_pulses.json") else {
        return;
    };
    assert_eq!(p.format, Format::Json);
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let all: Vec<&serde_json::Value> = doc
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|pulse| pulse["indicators"].as_array().unwrap())
        .collect();
    let non_ioc = [
        "CVE",
        "YARA",
        "Mutex",
        "FilePath",
        "FileHash-PEHASH",
        "FileHash-IMPHASH",
        "BitcoinAddress",
    ];
    let expected: Vec<&str> = all
        .iter()
        .filter(|i| !non_ioc.contains(&i["type"].as_str().unwrap()))
        .map(|i| i["indicator"].as_str().unwrap())
        .collect();
    assert_eq!(values(&p), expected);
    assert_eq!(p.skipped, all.len() - expected.len());
}

#[test]
fn stix2_bundles() {
    let Some((bytes, p)) = auto("stix2/apt1.json") else {
        return;
    };
    assert_eq!(detect_format(&bytes), Format::Stix2);
    // Independent: `grep -o '"pattern": "[^"]*"'` shows 12 patterns: 4 ipv4-addr, 3
    // domain-name, 3 file:hashes.md5 and 2 x509 issuer AND serial_number (not expressible).
    let n = |t: matcher::IndicatorType| p.records.iter().filter(|r| r.itype == Some(t)).count();
    assert_eq!(n(matcher::IndicatorType::Ipv4), 4);
    assert_eq!(n(matcher::IndicatorType::Fqdn), 3);
    assert_eq!(n(matcher::IndicatorType::Md5), 3);
    assert_eq!(p.records.len(), 10);
    assert_eq!(p.rejected, 2);
    assert!(
        p.rejects
            .iter()
            .all(|r| r.reason.contains("x509-certificate:issuer")),
        "{:?}",
        p.rejects
    );

    let Some((_, p)) = auto("stix2/indicator-for-c2-ip-address.json") else {
        return;
    };
    assert_eq!(values(&p), vec!["10.0.0.0"]);
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().reported,
        Some(1_399_539_600)
    );

    let Some((_, p)) = auto("stix2/malicious-email-indicator-with-attachment.json") else {
        return;
    };
    // Two indicators, both MATCHES on email-message fields: reported, not guessed.
    assert!(p.records.is_empty());
    assert_eq!(p.rejected, 2);
    assert!(p.rejects[0].reason.contains("MATCHES"), "{:?}", p.rejects);

    let Some((_, p)) = auto("stix2/indicators-for-C2-with-COA.json") else {
        return;
    };
    assert_eq!(
        values(&p),
        vec![
            "10.0.0.0",
            "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
        ]
    );
    assert_eq!(p.records[1].itype, Some(matcher::IndicatorType::Sha256));

    // MISP's STIX 2.0 export: an observed-data SCO.
    let Some((_, p)) = auto("misp/misp_export_stix2.0.json") else {
        return;
    };
    assert_eq!(p.format, Format::Stix2);
    assert_eq!(values(&p), vec!["8.8.8.8"]);
}

#[test]
fn misp_events() {
    let Some((bytes, p)) = auto("misp/event_sednit_osint.json") else {
        return;
    };
    assert_eq!(p.format, Format::Misp);
    // Independent count (python json walk over Event.Attribute + Object[].Attribute):
    // to_ids attributes of indicator types: 7 + 12 domain, 12 ip-dst, 37 sha1 = 68;
    // 15 to_ids `filename` attributes and 39 non-to_ids ones are skipped.
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let ev = doc.get("Event").unwrap_or(&doc);
    let mut attrs: Vec<&serde_json::Value> = ev["Attribute"].as_array().unwrap().iter().collect();
    for o in ev["Object"].as_array().unwrap() {
        attrs.extend(o["Attribute"].as_array().unwrap());
    }
    let keep = ["domain", "ip-dst", "sha1"];
    let expected = attrs
        .iter()
        .filter(|a| {
            a["to_ids"].as_bool() == Some(true) && keep.contains(&a["type"].as_str().unwrap())
        })
        .count();
    assert_eq!(expected, 68);
    assert_eq!(p.records.len(), expected);
    assert_eq!(p.skipped, attrs.len() - expected);
    let m = p.records[0].meta.as_ref().unwrap();
    assert_eq!(m.tlp, Some(matcher::Tlp::Clear), "tlp:white event tag");
    assert_eq!(
        m.severity,
        Some(matcher::Severity::Low),
        "threat_level_id 3"
    );
    assert!(m.tags.contains(&"sofacy".to_string()), "{:?}", m.tags);

    let Some((_, p)) = auto("misp/intelmq_misp_event.json") else {
        return;
    };
    assert_eq!(p.format, Format::Misp);
    // Its url attribute has to_ids=false: skipped by default, kept with to_ids_only=false.
    assert!(p.records.is_empty());
    let bytes = read("misp/intelmq_misp_event.json").unwrap();
    let mut f = FeedConfig::new("m", "m");
    f.to_ids_only = Some(false);
    let p = parse_feed(&bytes, &f);
    assert_eq!(values(&p), vec!["http://fake.example.com/malware/is/here"]);
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().severity,
        Some(matcher::Severity::High)
    );
}

#[test]
fn malc0de_rss() {
    let Some((bytes, p)) = auto("malc0de/rss.xml") else {
        return;
    };
    assert_eq!(p.format, Format::Rss);
    let text = String::from_utf8_lossy(&bytes);
    let items = text.matches("<item>").count();
    // Each description carries URL, IP Address and MD5.
    assert_eq!(p.records.len(), items * 3);
    assert_eq!(p.records[1].value, "220.243.237.153");
    assert_eq!(p.records[2].value, "5101b4e7c1d6b31e2aae30e040d8fe6d");
    assert_eq!(p.records[2].itype, Some(matcher::IndicatorType::Md5));
}

#[test]
fn stix1_xml_is_reported_not_guessed() {
    let Some((bytes, p)) = auto("stix/stix1_feed.xml") else {
        return;
    };
    assert_eq!(detect_format(&bytes), Format::Unsupported);
    assert!(p.records.is_empty());
    assert!(p.rejects[0].reason.contains("STIX 1"));
}
