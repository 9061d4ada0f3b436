//! A new user's first real run: `trawl init` in a fresh directory, `trawl update` (the
//! default feeds' sources pointed at their corpus copies: a test-only rewrite of the written
//! file, no network), `trawl feeds`, and a scan of a real log that alerts. Also what `update`
//! and `feeds` say without any config.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

/// The enabled default feeds with a copy in the corpus (below `feeds/`). The other enabled
/// feeds are commented out for this run (the feeds crate's `default_feeds` tests list them).
const COPIES: &[(&str, &str)] = &[
    (
        "feodotracker",
        "abusech/feodotracker_ipblocklist_2024-04-04.csv",
    ),
    (
        "threatfox-urls",
        "abusech/threatfox_full_urls_2025-12-07.csv",
    ),
    ("maltrail-emotet", "maltrail/static_malware_emotet.txt"),
    (
        "maltrail-clearfake",
        "maltrail/static_malicious_ek_clearfake.txt",
    ),
    ("openphish", "openphish/feed_2015.txt"),
    ("ipsum", "ipsum/ipsum.txt"),
    ("et-compromised", "firehol/et_compromised.ipset"),
    ("maltrail-mass-scanner", "maltrail/static_mass_scanner.txt"),
    (
        "maltrail-mass-scanner-cidr",
        "maltrail/static_mass_scanner_cidr.txt",
    ),
    (
        "maltrail-crypto-mining",
        "maltrail/static_suspicious_crypto_mining.txt",
    ),
    ("spamhaus-drop", "spamhaus/drop_2015.txt"),
    ("sslbl-certs", "abusech/sslbl_sslblacklist_2023-11-14.csv"),
];

/// `trawl` run in `dir` (no config found by accident elsewhere).
fn trawl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .current_dir(dir)
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .env("HOME", dir)
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("running trawl")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The written config with each copied feed's source replaced by its corpus path and every
/// other enabled feed commented out. An enabled feed is a `[[feed]]` line and the lines up to
/// the next blank one.
fn point_at_copies(text: &str, corpus: &Path) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line != "[[feed]]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut block = vec![line];
        while let Some(l) = lines.next_if(|l| !l.is_empty()) {
            block.push(l);
        }
        let name = block
            .iter()
            .find_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
            .expect("a feed has a name");
        let copy = COPIES.iter().find(|(f, _)| *f == name);
        for l in block {
            match copy {
                Some((_, file)) if l.starts_with("source = ") => {
                    let path = corpus.join("feeds").join(file);
                    out.push_str(&format!("source = \"{}\"\n", path.display()));
                }
                Some(_) => out.push_str(&format!("{l}\n")),
                None => out.push_str(&format!("# {l}\n")),
            }
        }
    }
    out
}

#[test]
fn without_a_config_update_and_feeds_point_at_trawl_init() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["update", "feeds"] {
        let out = trawl_in(dir.path(), &[cmd]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("no config"), "{cmd}: {err}");
        assert!(err.contains("`trawl init`"), "{cmd}: {err}");
        assert!(err.contains("nothing is fetched"), "{cmd}: {err}");
    }
    // Nothing was written: no data directory, no state.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn init_writes_the_commented_defaults_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new/sub");
    let out = trawl_in(dir.path(), &["init", "--dir", p(&target)]);
    ok(out.clone(), "init");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feeds enabled"), "{err}");
    assert!(err.contains("trawl update --config"), "{err}");
    let path = target.join("trawl.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[[feed]]\nname = \"spamhaus-drop\""),
        "{text}"
    );
    assert!(text.contains("# name = \"phishtank\""));
    assert!(text.contains("[allowlist]"));
    // A second init refuses, says why and what to do, and leaves the file alone.
    std::fs::write(&path, "# mine\n").unwrap();
    let out = trawl_in(dir.path(), &["init", "--dir", p(&target)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    ok(
        trawl_in(dir.path(), &["init", "--dir", p(&target), "--force"]),
        "init --force",
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Default directory: the working directory.
    ok(trawl_in(&target, &["-q", "init", "--force"]), "init in cwd");
    assert!(target.join("trawl.toml").is_file());
}

#[test]
fn first_real_run_init_update_feeds_scan() {
    let Some(corpus) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(trawl_in(d, &["-q", "init"]), "init");
    let cfg = d.join("trawl.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let rewritten = point_at_copies(&text, &corpus);
    assert!(
        !rewritten
            .lines()
            .any(|l| l.starts_with("source = \"https://")),
        "{rewritten}"
    );
    std::fs::write(&cfg, &rewritten).unwrap();

    // ./trawl.toml is found without --config; its data = "data" is next to it.
    let report = ok(trawl_in(d, &["update", "--format", "json"]), "update");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let feeds = report["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), COPIES.len());
    for f in feeds {
        assert_eq!(f["status"], "fetched", "{f}");
        assert!(f["accepted"].as_u64().unwrap() > 0, "{f}");
    }
    assert!(d.join("data/feeds/state.json").is_file());

    // trawl feeds: every feed, fresh, with indicators and a next due time from its refresh.
    let table = ok(trawl_in(d, &["feeds"]), "feeds");
    assert_eq!(table.lines().count(), COPIES.len() + 1, "{table}");
    for (name, _) in COPIES {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"));
        assert!(row.contains("fresh"), "{row}");
        assert!(row.contains(" new "), "{row}");
    }
    let rows: serde_json::Value =
        serde_json::from_str(&ok(trawl_in(d, &["feeds", "--format", "json"]), "json")).unwrap();
    for r in rows.as_array().unwrap() {
        assert_eq!(r["outcome"], "fresh", "{r}");
        assert!(r["indicators"].as_u64().unwrap() > 0, "{r}");
        assert!(r["last_fetch"].as_str().unwrap().ends_with('Z'), "{r}");
        assert_eq!(r["due_now"], false, "{r}");
        assert!(r["next_due"].is_string(), "{r}");
    }

    // A scan of real Zeek TLS logs (WRCCDC): a DigitalOcean scanner range from maltrail's
    // mass-scanner CIDR trail shows up as a peer.
    let log = corpus.join("logs/zeek-wrccdc/ssl.json");
    let alerts = json_lines(&ok(trawl_in(d, &["scan", "-q", p(&log)]), "scan"));
    assert!(!alerts.is_empty());
    assert!(alerts.iter().any(|a| {
        a["trawl"]["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s == "maltrail-mass-scanner-cidr"))
    }));

    // One source goes missing: --force refetches everything, that feed fails and keeps its
    // last good entries, and trawl feeds says so and why.
    let broken = rewritten.replace(
        &format!("{}", corpus.join("feeds/spamhaus/drop_2015.txt").display()),
        &format!("{}", d.join("gone.txt").display()),
    );
    std::fs::write(&cfg, broken).unwrap();
    ok(trawl_in(d, &["-q", "update", "--force"]), "update --force");
    let rows: serde_json::Value =
        serde_json::from_str(&ok(trawl_in(d, &["feeds", "--format", "json"]), "json")).unwrap();
    let drop = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "spamhaus-drop")
        .unwrap();
    assert_eq!(drop["outcome"], "failed", "{drop}");
    assert_eq!(drop["kept_last_good"], true, "{drop}");
    assert!(
        drop["reason"].as_str().unwrap().contains("gone.txt"),
        "{drop}"
    );
    assert_eq!(drop["change"], 0, "{drop}");
    let table = ok(trawl_in(d, &["feeds"]), "feeds");
    assert!(table.contains("failed, kept"), "{table}");
    assert!(table.contains("spamhaus-drop: "), "{table}");
}
