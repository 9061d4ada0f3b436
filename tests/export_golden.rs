//! Golden files for every export format over a small fixed indicator list (hostile entries
//! included), plus determinism. `TRAWL_BLESS=1 cargo test --test export_golden` rewrites
//! the files in tests/golden/export/; review the diff before committing.

mod export_support;

use export_support::{fixture, options, run, INVALID};
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
