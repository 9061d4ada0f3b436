//! Golden files for every export format over a small fixed indicator list (hostile entries
//! included), plus determinism. `TRAWL_BLESS=1 cargo test --test cli export_golden` rewrites
//! the files in tests/golden/export/; review the diff before committing.

use crate::export_support::{self, fixture, options, run, INVALID};
use feeds::export::{ExportFormat, ExportOptions, Filter};
use std::path::Path;

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/export")
        .join(name);
    if std::env::var_os("TRAWL_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TRAWL_BLESS=1 to create)", path.display()));
    if want != actual {
        let first = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n want: {:?}\n got:  {:?}",
            first + 1,
            want.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

fn ext(f: ExportFormat) -> &'static str {
    match f {
        ExportFormat::Snort | ExportFormat::Suricata => "rules",
        ExportFormat::Iptables | ExportFormat::Ip6tables => "restore",
        ExportFormat::Ipset => "ipset",
        ExportFormat::Nftables => "nft",
        ExportFormat::Zeek => "intel",
        ExportFormat::Rpz => "zone",
        ExportFormat::Csv => "csv",
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Json => "json",
        ExportFormat::Table => "txt",
        ExportFormat::Html => "html",
        ExportFormat::Stix | ExportFormat::Misp => "json",
    }
}

#[test]
fn every_format_matches_its_golden_file() {
    let inds = fixture();
    let opts = options();
    for f in ExportFormat::ALL {
        let (out, stats) = run(f, &inds, &Filter::default(), &opts);
        golden(&format!("{}.{}", f.as_str(), ext(f)), &out);
        assert_eq!(stats.skipped_invalid, INVALID as u64, "{f}: invalid values");
        assert_eq!(stats.skipped_allowlisted, 1, "{f}");
        assert_eq!(stats.allowlist_entries, 1, "{f}");
        assert_eq!(stats.read, inds.len() as u64, "{f}");
        // Every valid, non-allowlisted indicator is either written or unsupported.
        let valid = inds.len() as u64 - INVALID as u64 - 2;
        assert_eq!(
            stats.written + stats.skipped_unsupported,
            valid,
            "{f}: {stats:?}"
        );
    }
    let snort3 = ExportOptions {
        snort3: true,
        ..options()
    };
    let (out, _) = run(ExportFormat::Snort, &inds, &Filter::default(), &snort3);
    golden("snort3.rules", &out);
}

#[test]
fn output_does_not_depend_on_input_order() {
    let inds = fixture();
    let mut rev = inds.clone();
    rev.reverse();
    let opts = options();
    for f in ExportFormat::ALL {
        let (a, _) = run(f, &inds, &Filter::default(), &opts);
        let (b, _) = run(f, &rev, &Filter::default(), &opts);
        assert_eq!(a, b, "{f} depends on input order");
    }
}

#[test]
fn filters_apply_before_export() {
    let inds = fixture();
    let filter = Filter {
        min_confidence: 85,
        min_severity: Some(matcher::Severity::High),
        ..Filter::default()
    };
    let (out, stats) = run(ExportFormat::Jsonl, &inds, &filter, &options());
    // High and >= 85 in the fixture (by hand): 198.51.100.7, 203.0.113.0/24, evil.example,
    // http://evil.example/gate.php..., the x509 fingerprint; the 5 invalid values are also
    // high/90 but fail validation after the filter.
    assert_eq!(out.lines().count(), 5, "{out}");
    assert_eq!(stats.written, 5);
    assert_eq!(stats.skipped_invalid, INVALID as u64);
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["severity"], "high");
        assert!(v["confidence"].as_u64().expect("num") >= 85);
    }
}

#[test]
fn reexport_with_one_more_indicator_changes_only_that_rule() {
    let inds = fixture();
    let mut more = inds.clone();
    more.push(export_support::ind(
        "new.evil.example",
        matcher::IndicatorType::Fqdn,
        matcher::Severity::High,
        90,
        &["c2"],
        "urlhaus",
    ));
    for (format, per_domain) in [(ExportFormat::Snort, 1), (ExportFormat::Suricata, 4)] {
        let (a, _) = run(format, &inds, &Filter::default(), &options());
        let (b, _) = run(format, &more, &Filter::default(), &options());
        let old: Vec<&str> = a.lines().filter(|l| l.starts_with("alert")).collect();
        let new: Vec<&str> = b.lines().filter(|l| l.starts_with("alert")).collect();
        for l in &old {
            assert!(new.contains(l), "{format}: rule changed on re-export: {l}");
        }
        let added: Vec<&&str> = new.iter().filter(|l| !old.contains(l)).collect();
        assert_eq!(added.len(), per_domain, "{format}: {added:?}");
        assert!(added.iter().all(|l| l.contains("new[.]evil[.]example")));
        for l in new {
            let sid: u32 = l
                .split("sid:")
                .nth(1)
                .and_then(|s| s.split(';').next())
                .and_then(|s| s.parse().ok())
                .expect("sid");
            assert!((9_000_000..19_000_000).contains(&sid), "{sid}");
        }
    }
}

/// One row's cells by header name, for each tabular format, read back independently of the
/// writers (the table by the header's column offsets, HTML by its `<th>` and `<td>` cells).
fn cells_by_name(format: ExportFormat, out: &str) -> Vec<(String, String)> {
    fn json_text(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join("|"),
            other => other.to_string(),
        }
    }
    fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
        s.split(open)
            .skip(1)
            .filter(|p| p.starts_with(['>', ' ']))
            .filter_map(|p| p.split_once('>').map(|(_, rest)| rest))
            .filter_map(|p| p.split(close).next())
            .collect()
    }
    match format {
        ExportFormat::Csv => {
            let mut lines = out.lines();
            let head = lines.next().expect("header").split(',');
            let row = lines.next().expect("row").split(',');
            head.zip(row)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        }
        ExportFormat::Jsonl | ExportFormat::Json => {
            let v: serde_json::Value = if format == ExportFormat::Json {
                serde_json::from_str::<Vec<serde_json::Value>>(out).expect("json")[0].clone()
            } else {
                serde_json::from_str(out.lines().next().expect("line")).expect("jsonl")
            };
            v.as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.clone(), json_text(v)))
                .collect()
        }
        ExportFormat::Table => {
            let mut lines = out.lines();
            let head = lines.next().expect("header");
            let row = lines.next().expect("row");
            let starts: Vec<usize> = head
                .char_indices()
                .filter(|&(i, c)| c != ' ' && (i == 0 || head.as_bytes()[i - 1] == b' '))
                .map(|(i, _)| i)
                .collect();
            starts
                .iter()
                .enumerate()
                .map(|(k, &s)| {
                    let end = starts.get(k + 1).copied().unwrap_or(usize::MAX);
                    let name = head[s..end.min(head.len())].trim().to_ascii_lowercase();
                    let cell = row.get(s..end.min(row.len())).unwrap_or("").trim();
                    let name = if name == "conf" {
                        "confidence".into()
                    } else {
                        name
                    };
                    (name, cell.replace(',', "|"))
                })
                .collect()
        }
        ExportFormat::Html => {
            let table = out.split("<table id=\"rows\">").nth(1).expect("rows table");
            let (head, body) = table.split_once("<tbody>").expect("tbody");
            let row = body.split("</tr>").next().expect("a row");
            between(head, "<th", "</th>")
                .into_iter()
                .zip(between(row, "<td", "</td>"))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        }
        other => panic!("{other} is not tabular"),
    }
}

#[test]
fn every_tabular_header_names_its_cells() {
    use matcher::{IndicatorType, Severity, Tlp};
    let mut i = export_support::ind(
        "cells.evil.example",
        IndicatorType::Fqdn,
        Severity::Medium,
        77,
        &["tag-one", "tag-two"],
        "feed-src",
    );
    i.tlp = Tlp::Amber;
    i.provider = Some("prov-name".into());
    i.description = Some("desc-text".into());
    i.reference = Some("ref-text".into());
    i.expires = Some(1_770_000_000);
    i.derived = true;
    let want: std::collections::BTreeMap<&str, &str> = [
        ("value", "cells.evil.example"),
        ("itype", "fqdn"),
        ("confidence", "77"),
        ("severity", "medium"),
        ("tags", "tag-one|tag-two"),
        ("sources", "feed-src"),
        ("tlp", "amber"),
        ("provider", "prov-name"),
        ("description", "desc-text"),
        ("reference", "ref-text"),
        ("first_seen", "2023-11-14T22:13:20Z"),
        ("last_seen", "2025-11-24T16:00:00Z"),
        ("expires", "2026-02-02T02:40:00Z"),
        ("derived", "true"),
    ]
    .into_iter()
    .collect();
    for (format, columns) in [
        (ExportFormat::Csv, 14),
        (ExportFormat::Jsonl, 14),
        (ExportFormat::Json, 14),
        (ExportFormat::Table, 8),
        (ExportFormat::Html, 14),
    ] {
        let (out, _) = run(
            format,
            std::slice::from_ref(&i),
            &Filter::default(),
            &options(),
        );
        let cells = cells_by_name(format, &out);
        assert_eq!(cells.len(), columns, "{format}: {cells:?}");
        for (name, cell) in &cells {
            let expected = want
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{format}: unknown column {name:?}"));
            assert_eq!(
                cell, expected,
                "{format}: column {name:?} shows another field"
            );
        }
    }
}

#[test]
fn urls_rules_cannot_say_survive_update_into_csv_and_json() {
    use feeds::update::{update, UpdateOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let urls = [
        "http://evil.example/q?x=\"<b>\"",
        "ftp://files.evil.example/payload.exe",
        "https://evil.example/a>b",
    ];
    std::fs::write(dir.path().join("u.txt"), urls.join("\n")).expect("write feed");
    let config = feeds::Config::from_toml_str(
        "[[feed]]\nname = \"u\"\nsource = \"u.txt\"\nitype = \"url\"\nderive = false\n",
    )
    .expect("config");
    let data = dir.path().join("data");
    let report = update(
        &config,
        dir.path(),
        &data,
        &UpdateOptions::default(),
        &feeds::NoProgress,
    )
    .expect("update");
    assert_eq!(
        report.feeds[0].accepted,
        urls.len(),
        "{}",
        report.render_text()
    );
    let snap = matcher::Snapshot::open_current(&data).expect("snapshot");
    let inds: Vec<matcher::Indicator> = snap.iter().filter(|i| !i.allowlist).collect();
    let (csv, stats) = run(ExportFormat::Csv, &inds, &Filter::default(), &options());
    assert_eq!(stats.written, urls.len() as u64, "{stats:?}");
    assert!(
        csv.contains("\"http://evil.example/q?x=\"\"<b>\"\"\","),
        "{csv}"
    );
    assert!(
        csv.contains("\nftp://files.evil.example/payload.exe,"),
        "{csv}"
    );
    let (jsonl, _) = run(ExportFormat::Jsonl, &inds, &Filter::default(), &options());
    let mut got: Vec<String> = jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl");
            v["value"].as_str().expect("value").to_string()
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    let (_, stats) = run(
        ExportFormat::Suricata,
        &inds,
        &Filter::default(),
        &options(),
    );
    assert_eq!(
        (stats.written, stats.skipped_unexpressible),
        (0, urls.len() as u64)
    );
}
