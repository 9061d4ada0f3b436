//! Issue 2's acceptance check, through the CLI on real corpus feeds: `trawl update` with a
//! config listing Spamhaus DROP, ipsum, bambenek C2 domains, openphish URLs and DShield, then
//! `trawl export --format jsonl` holds exactly the valid entries of each file (counted here by
//! an independent, deliberately simple parse), and `trawl query` answers correctly.

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn lines(path: &Path) -> Vec<String> {
    String::from_utf8_lossy(&std::fs::read(path).unwrap())
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn corpus_feeds_export_exactly_their_entries_and_query_answers() {
    let Some(corpus) = corpus() else { return };
    let f = corpus.join("feeds");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trawl.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[feed]]
name = "drop"
source = "{f}/spamhaus/drop_2015.txt"
derive = false

[[feed]]
name = "ipsum"
source = "{f}/ipsum/ipsum.txt"
derive = false

[[feed]]
name = "bambenek"
source = "{f}/bambenek/c2-dommasterlist.txt"
derive = false

[[feed]]
name = "openphish"
source = "{f}/openphish/feed_2015.txt"
derive = false

[[feed]]
name = "dshield"
source = "{f}/dshield/block.txt"
derive = false
"#,
            f = p(&f)
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    trawl_ok(&["-q", "update", "--config", p(&config), "--data", p(&data)]);

    // Independent parses: comments off, first field, distinct values.
    let mut want: BTreeMap<&str, (String, BTreeSet<String>)> = BTreeMap::new();
    let drop: BTreeSet<String> = lines(&f.join("spamhaus/drop_2015.txt"))
        .into_iter()
        .filter(|l| !l.starts_with(';'))
        .map(|l| l.split(" ;").next().unwrap().trim().to_string())
        .collect();
    want.insert("drop", ("ipv4".into(), drop));
    let ipsum: BTreeSet<String> = lines(&f.join("ipsum/ipsum.txt"))
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    want.insert("ipsum", ("ipv4".into(), ipsum));
    let bambenek: BTreeSet<String> = lines(&f.join("bambenek/c2-dommasterlist.txt"))
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').next().unwrap().to_ascii_lowercase())
        .collect();
    want.insert("bambenek", ("fqdn".into(), bambenek));
    let openphish: BTreeSet<String> = lines(&f.join("openphish/feed_2015.txt"))
        .into_iter()
        .collect();
    want.insert("openphish", ("url".into(), openphish));
    let dshield: BTreeSet<String> = lines(&f.join("dshield/block.txt"))
        .into_iter()
        .filter(|l| !l.starts_with('#') && !l.starts_with("Start"))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            format!("{}/{}", cols[0], cols[2])
        })
        .collect();
    want.insert("dshield", ("ipv4".into(), dshield));

    for (feed, (itype, values)) in &want {
        let out = trawl_ok(&[
            "-q",
            "export",
            "--data",
            p(&data),
            "--format",
            "jsonl",
            "--feed",
            feed,
        ]);
        let rows = json_lines(&out);
        let got: BTreeSet<String> = rows
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_string())
            .collect();
        assert!(
            rows.iter().all(|r| r["itype"] == itype.as_str()),
            "{feed}: itypes"
        );
        assert_eq!(rows.len(), got.len(), "{feed}: one row per indicator");
        assert_eq!(
            got.len(),
            values.len(),
            "{feed}: exported {} but the file has {} distinct entries",
            got.len(),
            values.len()
        );
    }

    // An address inside a DROP CIDR, a subdomain of a listed domain, a listed URL.
    let some_cidr = want["drop"].1.iter().next().unwrap().clone();
    let (net, _) = some_cidr.split_once('/').unwrap();
    let mut octets: Vec<u8> = net.split('.').map(|o| o.parse().unwrap()).collect();
    octets[3] = octets[3].wrapping_add(1);
    let inside = format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
    let domain = want["bambenek"].1.iter().next().unwrap().clone();
    let url = want["openphish"].1.iter().next().unwrap().clone();
    let sub = format!("deep.sub.{domain}");
    let look_alike = format!("not{domain}");
    let out = trawl_ok(&[
        "query",
        "-n",
        "--format",
        "json",
        "--data",
        p(&data),
        &inside,
        &sub,
        &url,
    ]);
    let rows = json_lines(&out);
    assert!(
        rows.iter().any(|r| r["query"] == inside.as_str()
            && r["value"] == some_cidr.as_str()
            && r["matched"] == "enclosing-cidr"),
        "{out}"
    );
    assert!(
        rows.iter().any(|r| r["query"] == sub.as_str()
            && r["value"] == domain.as_str()
            && r["matched"] == "parent-domain"),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r["query"] == url.as_str() && r["itype"] == "url" && r["matched"] == "exact"),
        "{out}"
    );
    let miss = trawl(&[
        "query",
        "-n",
        "--format",
        "json",
        "--data",
        p(&data),
        &look_alike,
    ]);
    assert_eq!(
        miss.status.code(),
        Some(1),
        "{look_alike} must not match {domain}"
    );
    assert!(miss.stdout.is_empty());
}
