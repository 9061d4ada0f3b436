//! `feeds::update::update` end to end: real files and a real local HTTP server, a real
//! snapshot published and re-opened in a temp data directory.

#[path = "update_flow/bounded.rs"]
mod bounded;
#[path = "update_flow/breadth.rs"]
mod breadth;
#[path = "update_flow/groups.rs"]
mod groups;

use crate::common::{gzip, Server};
use feeds::config::Config;
use feeds::update::{update, FeedStatus, UpdateOptions, UpdateReport};
use feeds::NoProgress;
use matcher::{Indicator, Snapshot, Tlp};
use std::path::Path;

const T0: i64 = 1_800_000_000;

fn run(cfg: &str, dir: &Path, now: i64, force: bool) -> UpdateReport {
    let config = Config::from_toml_str(cfg).unwrap();
    let opts = UpdateOptions {
        force,
        now: Some(now),
        allow_empty: false,
    };
    update(&config, dir, &dir.join("data"), &opts, &NoProgress).unwrap()
}

fn entries(dir: &Path) -> Vec<Indicator> {
    Snapshot::open_current(&dir.join("data"))
        .unwrap()
        .iter()
        .collect()
}

fn find<'a>(e: &'a [Indicator], v: &str) -> Option<&'a Indicator> {
    e.iter().find(|i| i.value == v)
}

fn blocklist_only(e: &[Indicator]) -> Vec<String> {
    let mut v: Vec<String> = e
        .iter()
        .filter(|i| !i.allowlist)
        .map(|i| i.value.clone())
        .collect();
    v.sort();
    v
}

#[test]
fn http_feed_fetch_not_modified_failure_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start("/drop.txt");
    srv.serve(
        b"; Spamhaus DROP\n1.10.16.0/20 ; SBL1\n5.34.242.0/23 ; SBL2\n",
        "\"v1\"",
    );
    let cfg = format!(
        "[[feed]]\nname = \"drop\"\nsource = \"{}\"\nretries = 0\nconfidence = 95\ntags = [\"hijacked\"]\n",
        srv.url
    );
    let r = run(&cfg, dir.path(), T0, false);
    assert_eq!(r.feeds[0].status, FeedStatus::Fetched);
    assert_eq!(r.feeds[0].accepted, 2);
    assert_eq!((r.added, r.removed), (2 + r.allowlist_entries, 0));
    let e = entries(dir.path());
    let drop = find(&e, "1.10.16.0/20").unwrap();
    assert_eq!(
        (drop.confidence, drop.reference.as_deref()),
        (95, Some("SBL1"))
    );
    assert_eq!(drop.first_seen, Some(T0));

    // Second run: conditional GET → 304, nothing parsed, entries kept.
    let r = run(&cfg, dir.path(), T0 + 60, false);
    assert_eq!(r.feeds[0].status, FeedStatus::NotModified);
    assert_eq!((r.feeds[0].accepted, r.feeds[0].kept), (0, 2));
    assert_eq!((r.added, r.removed, r.changed), (0, 0, 0));
    // Nothing new: the first snapshot stays current, nothing is rebuilt.
    assert!(r.unchanged, "{}", r.render_text());
    assert!(r.snapshot.ends_with("snapshots/1"), "{:?}", r.snapshot);
    assert!(r.render_text().contains("unchanged"));
    let reqs = srv.requests();
    assert!(reqs[1].iter().any(|h| h == "if-none-match: \"v1\""));
    assert_eq!(
        blocklist_only(&entries(dir.path())),
        vec!["1.10.16.0/20", "5.34.242.0/23"]
    );

    // The server fails: previous entries stay, the update still succeeds.
    srv.fail_with(500);
    let r = run(&cfg, dir.path(), T0 + 120, false);
    assert!(matches!(&r.feeds[0].status, FeedStatus::Failed { reason } if reason.contains("500")));
    assert_eq!(r.feeds[0].kept, 2);
    assert!(r.unchanged);
    assert!(r.render_text().contains("FAILED"));
    assert_eq!(
        blocklist_only(&entries(dir.path())),
        vec!["1.10.16.0/20", "5.34.242.0/23"]
    );

    // A changed (gzip-compressed) body replaces them.
    srv.serve(
        &gzip(b"5.34.242.0/23 ; SBL2\n14.4.0.0/14 ; SBL3\n"),
        "\"v2\"",
    );
    let r = run(&cfg, dir.path(), T0 + 180, false);
    assert_eq!(r.feeds[0].status, FeedStatus::Fetched);
    assert_eq!((r.added, r.removed), (1, 1));
    let e = entries(dir.path());
    assert_eq!(blocklist_only(&e), vec!["14.4.0.0/14", "5.34.242.0/23"]);
    let kept = find(&e, "5.34.242.0/23").unwrap();
    assert_eq!(
        (kept.first_seen, kept.last_seen),
        (Some(T0), Some(T0 + 180))
    );
}

#[test]
fn refresh_interval_and_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.txt"), "evil.example\n").unwrap();
    let cfg = "[[feed]]\nname = \"l\"\nsource = \"list.txt\"\nrefresh = \"1h\"\n";
    assert_eq!(
        run(cfg, dir.path(), T0, false).feeds[0].status,
        FeedStatus::Fetched
    );
    let r = run(cfg, dir.path(), T0 + 600, false);
    assert_eq!(r.feeds[0].status, FeedStatus::NotDue);
    assert_eq!(r.feeds[0].kept, 1);
    assert_eq!(
        run(cfg, dir.path(), T0 + 700, true).feeds[0].status,
        FeedStatus::Fetched
    );
    // Due again after the interval; an unchanged file is "not modified".
    assert_eq!(
        run(cfg, dir.path(), T0 + 7200, false).feeds[0].status,
        FeedStatus::NotModified
    );
    // Editing the config forces a re-parse even when the file is unchanged.
    let cfg2 = format!("{cfg}confidence = 90\n");
    let r = run(&cfg2, dir.path(), T0 + 7300, false);
    assert_eq!(r.feeds[0].status, FeedStatus::Fetched);
    assert_eq!(r.changed, 1);
    assert_eq!(
        find(&entries(dir.path()), "evil.example")
            .unwrap()
            .confidence,
        90
    );
}

#[test]
fn allowlists_mark_but_keep() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("block.txt"),
        "10.1.2.3\nevil.example\nwww.good.example\nhttp://cdn.good.example/x\n8.8.8.8\n9.9.9.9\n172.20.0.0/16\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("allow.txt"), "good.example\n").unwrap();
    let cfg = r#"
[[feed]]
name = "block"
source = "block.txt"
derive = false

[[feed]]
name = "allow"
source = "allow.txt"
allowlist = true

[allowlist]
cidrs = ["8.8.8.0/24"]
domains = ["corp.example"]
"#;
    let r = run(cfg, dir.path(), T0, false);
    let e = entries(dir.path());
    let by = |v: &str| find(&e, v).unwrap().allowlisted_by.clone();
    assert!(by("10.1.2.3")
        .unwrap()
        .contains("iana-special-purpose:10.0.0.0/8"));
    assert!(by("172.20.0.0/16").unwrap().contains("172.16.0.0/12"));
    assert_eq!(
        by("www.good.example").as_deref(),
        Some("allow:good.example")
    );
    assert_eq!(
        by("http://cdn.good.example/x").as_deref(),
        Some("allow:good.example")
    );
    assert_eq!(
        by("8.8.8.8").as_deref(),
        Some("config-allowlist:8.8.8.0/24")
    );
    assert_eq!(by("evil.example"), None);
    assert_eq!(by("9.9.9.9"), None);
    assert!(find(&e, "good.example").unwrap().allowlist);
    assert!(find(&e, "corp.example").unwrap().allowlist);
    assert_eq!(r.feeds[0].allowlisted, 5);
    assert_eq!(r.allowlisted, 5);
}

#[test]
fn expiry_history_and_removed_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cif = format!(
        r#"[{{"indicator":"old.example","itype":"fqdn","confidence":9,"tlp":"amber","expires":"2020-01-01T00:00:00Z"}},
           {{"indicator":"live.example","itype":"fqdn","confidence":9,"tlp":"amber","expires":"{}"}}]"#,
        "2030-01-01T00:00:00Z"
    );
    std::fs::write(dir.path().join("cif.json"), cif).unwrap();
    std::fs::write(dir.path().join("list.txt"), "a.example\nb.example\n").unwrap();
    let cfg = "[[feed]]\nname = \"cif\"\nsource = \"cif.json\"\n[[feed]]\nname = \"l\"\nsource = \"list.txt\"\n";
    let r = run(cfg, dir.path(), T0, false);
    assert_eq!(r.feeds[0].expired, 1);
    let e = entries(dir.path());
    assert!(find(&e, "old.example").is_none());
    let live = find(&e, "live.example").unwrap();
    assert_eq!((live.confidence, live.tlp), (90, Tlp::Amber));
    assert_eq!(live.expires, Some(1_893_456_000));
    // b.example leaves the list: removed at the next update; a.example keeps first_seen.
    std::fs::write(dir.path().join("list.txt"), "a.example\nc.example\n").unwrap();
    let r = run(cfg, dir.path(), T0 + 3600, false);
    assert_eq!((r.added, r.removed), (1, 1));
    let e = entries(dir.path());
    assert!(find(&e, "b.example").is_none());
    let a = find(&e, "a.example").unwrap();
    assert_eq!((a.first_seen, a.last_seen), (Some(T0), Some(T0 + 3600)));
    // Past live.example's expiry (2030) it drops out even though the feed is not re-read.
    let r = run(cfg, dir.path(), 1_900_000_000, false);
    assert!(!r.unchanged);
    assert!(find(&entries(dir.path()), "live.example").is_none());
    assert!(r.removed >= 1);
    // Before that, with both files unchanged, nothing is rebuilt...
    let r = run(cfg, dir.path(), 1_900_000_100, false);
    assert!(r.unchanged, "{}", r.render_text());
    assert_eq!(r.feeds[1].kept, 2);
    // ...but an `[allowlist]` edit is a new snapshot even though no feed changed.
    // (A bare TLD such as "example" would be refused as too broad.)
    let cfg2 = format!("{cfg}[allowlist]\ndomains = [\"a.example\"]\n");
    let r = run(&cfg2, dir.path(), 1_900_000_200, false);
    assert!(!r.unchanged, "{}", r.render_text());
    let e = entries(dir.path());
    assert!(find(&e, "a.example").is_some_and(|a| a.allowlisted_by.is_some()));
}

#[test]
fn failing_feeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.txt"), "evil.example\n").unwrap();
    let cfg = "[[feed]]\nname = \"missing\"\nsource = \"nope.txt\"\n[[feed]]\nname = \"ok\"\nsource = \"ok.txt\"\n";
    let r = run(cfg, dir.path(), T0, false);
    assert!(matches!(r.feeds[0].status, FeedStatus::Failed { .. }));
    assert_eq!(r.feeds[1].accepted, 1);
    // Nothing usable at all: an error.
    let dir2 = tempfile::tempdir().unwrap();
    let config =
        Config::from_toml_str("[[feed]]\nname = \"missing\"\nsource = \"nope.txt\"\n").unwrap();
    let err = update(
        &config,
        dir2.path(),
        &dir2.path().join("data"),
        &UpdateOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn corpus_stix_misp_cif_metadata_reach_the_snapshot() {
    let Some(corpus) = crate::corpus_dir::corpus_dir().map(|c| c.join("feeds")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[[feed]]\nname = \"apt1\"\nsource = \"{0}/stix2/apt1.json\"\n\
         [[feed]]\nname = \"sednit\"\nsource = \"{0}/misp/event_sednit_osint.json\"\n\
         [[feed]]\nname = \"drop\"\nsource = \"{0}/spamhaus/drop_2015.txt\"\n",
        corpus.display()
    );
    let r = run(&cfg, dir.path(), T0, false);
    assert_eq!(r.feeds[0].accepted, 10);
    assert_eq!(r.feeds[1].accepted, 66);
    assert_eq!(r.feeds[2].accepted, 737);
    let e = entries(dir.path());
    let sednit: Vec<&Indicator> = e
        .iter()
        .filter(|i| i.sources.contains(&"sednit".to_string()))
        .collect();
    assert_eq!(sednit.len(), 66);
    assert!(sednit
        .iter()
        .all(|i| i.tlp == Tlp::Clear && i.severity == matcher::Severity::Low));
}

#[test]
fn a_bad_redirect_fails_only_its_feed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.txt"), "evil.example\n").unwrap();
    let mut cfg = "[[feed]]\nname = \"ok\"\nsource = \"ok.txt\"\n".to_string();
    let mut servers = Vec::new();
    for (i, target) in ["file:///etc/passwd", "data:,x.example", "foo://bar/"]
        .iter()
        .enumerate()
    {
        let srv = Server::start("/feed");
        srv.redirect_to(target);
        cfg.push_str(&format!(
            "[[feed]]\nname = \"bad{i}\"\nsource = \"{}\"\nretries = 0\n",
            srv.url
        ));
        servers.push(srv);
    }
    // A loop: the server redirects to itself.
    let looping = Server::start("/loop");
    looping.redirect_to(&looping.url);
    cfg.push_str(&format!(
        "[[feed]]\nname = \"loop\"\nsource = \"{}\"\nretries = 0\n",
        looping.url
    ));
    let r = run(&cfg, dir.path(), T0, false);
    assert_eq!(r.feeds.len(), 5);
    assert_eq!(r.feeds[0].status, FeedStatus::Fetched);
    assert_eq!(r.feeds[0].accepted, 1);
    for f in &r.feeds[1..] {
        assert!(
            matches!(&f.status, FeedStatus::Failed { reason } if reason.contains("redirect")),
            "{f:?}"
        );
    }
    assert!(find(&entries(dir.path()), "evil.example").is_some());
}

#[test]
fn a_feed_that_goes_bad_keeps_its_last_good_entries() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start("/list.txt");
    srv.serve(b"a.example\nb.example\nc.example\nd.example\n", "\"good\"");
    let cfg = format!(
        "[[feed]]\nname = \"strict\"\nsource = \"{0}\"\nretries = 0\n\
         [[feed]]\nname = \"lenient\"\nsource = \"{0}\"\nretries = 0\nmin_ratio = 0.2\n",
        srv.url
    );
    let r = run(&cfg, dir.path(), T0, false);
    assert_eq!((r.feeds[0].accepted, r.feeds[1].accepted), (4, 4));
    let good = blocklist_only(&entries(dir.path()));
    let bad: [(&[u8], &str); 5] = [
        (
            b"<!DOCTYPE html>\n<html><body>Please log in</body></html>\n",
            "HTML page",
        ),
        (b"\n  <HTML>\n<p>maintenance</p>\n", "HTML page"),
        (b"Error: rate limit exceeded, try again later\n", "rejected"),
        (b"", "empty"),
        (b" \n\r\n\t\n", "empty"),
    ];
    for (i, (body, why)) in bad.iter().enumerate() {
        srv.serve(body, &format!("\"bad{i}\""));
        let r = run(&cfg, dir.path(), T0 + 60 * (i as i64 + 1), false);
        for f in &r.feeds {
            assert!(
                matches!(&f.status, FeedStatus::Failed { reason } if reason.contains(why)),
                "{why}: {f:?}"
            );
            assert_eq!(f.kept, 4, "{why}");
        }
        assert_eq!(blocklist_only(&entries(dir.path())), good, "{why}");
        assert!(
            r.render_text().contains("FAILED (the content is")
                || r.render_text().contains("FAILED (every record"),
            "{}",
            r.render_text()
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["feeds"][0]["status"], "failed");
        assert!(json["feeds"][0]["reason"].as_str().unwrap().contains(why));
        let state = &feeds::update::feed_states(&dir.path().join("data"))["strict"];
        assert!(state.last_error.as_deref().unwrap().contains(why));
        assert_eq!(state.consecutive_failures, i as u32 + 1);
    }
    // Down to 1 of 4 entries: below the default half, above the lenient feed's 20%.
    srv.serve(b"a.example\n", "\"small\"");
    let r = run(&cfg, dir.path(), T0 + 3600, false);
    assert!(
        matches!(&r.feeds[0].status, FeedStatus::Failed { reason } if reason.contains("shrank to 1 entries from 4")),
        "{:?}",
        r.feeds[0]
    );
    assert_eq!(r.feeds[1].status, FeedStatus::Fetched);
    let e = entries(dir.path());
    assert_eq!(blocklist_only(&e), good);
    assert_eq!(find(&e, "d.example").unwrap().sources, vec!["strict"]);
    assert_eq!(
        find(&e, "a.example").unwrap().sources,
        vec!["lenient", "strict"]
    );
    // Good content again: accepted, the failure count resets.
    srv.serve(b"a.example\nb.example\nc.example\n", "\"good2\"");
    let r = run(&cfg, dir.path(), T0 + 7200, false);
    assert_eq!(r.feeds[0].status, FeedStatus::Fetched);
    let state = &feeds::update::feed_states(&dir.path().join("data"))["strict"];
    assert_eq!((state.consecutive_failures, state.accepted), (0, 3));
}

#[test]
fn no_feeds_or_an_emptied_result_do_not_publish_without_allow_empty() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let go = |cfg: &str, allow_empty: bool| {
        let config = Config::from_toml_str(cfg).unwrap();
        let opts = UpdateOptions {
            force: false,
            now: Some(T0),
            allow_empty,
        };
        update(&config, dir.path(), &data, &opts, &NoProgress)
    };
    let err = go("[sensor]\nname = \"s\"\n", false).unwrap_err();
    assert!(err.to_string().contains("--allow-empty"), "{err}");
    assert!(Snapshot::open_current(&data).is_err(), "nothing published");
    std::fs::write(dir.path().join("l.txt"), "evil.example\nbad.example\n").unwrap();
    go("[[feed]]\nname = \"l\"\nsource = \"l.txt\"\n", false).unwrap();
    let before = Snapshot::open_current(&data).unwrap().meta().version;
    // Every feed removed from the config: the feeds' entries would all go.
    let err = go("[allowlist]\ndomains = [\"corp.example\"]\n", false).unwrap_err();
    assert!(err.to_string().contains("--allow-empty"), "{err}");
    // A feed renamed and now legitimately empty (comments only): same.
    std::fs::write(dir.path().join("e.txt"), "# nothing listed today\n").unwrap();
    let err = go("[[feed]]\nname = \"e\"\nsource = \"e.txt\"\n", false).unwrap_err();
    assert!(err.to_string().contains("has 2"), "{err}");
    assert_eq!(
        Snapshot::open_current(&data).unwrap().meta().version,
        before
    );
    let r = go("[[feed]]\nname = \"e\"\nsource = \"e.txt\"\n", true).unwrap();
    assert!(!r.unchanged);
    assert!(blocklist_only(&entries(dir.path())).is_empty());
}

/// Gzip members of 1 MiB of zeros each: `mib` MiB once decompressed, about 1 KiB each.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    gzip(&vec![0u8; 1 << 20]).repeat(mib)
}

/// The peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn bombs_and_devices_fail_their_feed_in_bounded_memory() {
    const CHILD: &str = "TRAWL_TEST_BOMB_CHILD";
    if std::env::var_os(CHILD).is_none() {
        // Measured in a child process of its own, so no other test's memory counts.
        // The test's name as libtest knows it: its module path without the crate's name.
        let name = match module_path!().split_once("::") {
            Some((_, module)) => {
                format!("{module}::bombs_and_devices_fail_their_feed_in_bounded_memory")
            }
            None => "bombs_and_devices_fail_their_feed_in_bounded_memory".to_string(),
        };
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name.as_str(), "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let peak: u64 = stdout
            .split("PEAK_RSS_KIB=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("the child reports no peak: {stdout}"));
        // A 1 GiB bomb against a 32 MiB cap: the peak stays near the cap.
        assert!(peak < 128 << 10, "peak RSS {peak} KiB");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.txt"), "evil.example\n").unwrap();
    let srv = Server::start("/feed.gz");
    srv.serve(&gzip_bomb(1024), "\"bomb\"");
    let cfg = format!(
        "[[feed]]\nname = \"bomb\"\nsource = \"{}\"\nretries = 0\nmax_bytes = \"32MiB\"\n\
         [[feed]]\nname = \"zero\"\nsource = \"/dev/zero\"\n\
         [[feed]]\nname = \"ok\"\nsource = \"ok.txt\"\n",
        srv.url
    );
    let t = std::time::Instant::now();
    let r = run(&cfg, dir.path(), T0, false);
    let reason = |i: usize| match &r.feeds[i].status {
        FeedStatus::Failed { reason } => reason.clone(),
        s => panic!("{s:?}"),
    };
    assert!(
        reason(0).contains("larger than max_bytes = 33554432"),
        "{}",
        reason(0)
    );
    assert!(
        reason(1).contains("/dev/zero: not a regular file (a character device)"),
        "{}",
        reason(1)
    );
    assert_eq!(r.feeds[2].accepted, 1);
    assert!(t.elapsed() < std::time::Duration::from_secs(60));
    println!("PEAK_RSS_KIB={}", peak_rss_kib());
}

/// A progress display that panics when one feed starts: a panic in the middle of that
/// feed's fetch, wherever it comes from.
struct PanicsOn(&'static str);

impl feeds::Progress for PanicsOn {
    fn feed_started(&self, name: &str, _total_bytes: Option<u64>) {
        assert_ne!(name, self.0, "boom in {name}");
    }
    fn feed_bytes(&self, _name: &str, _n: u64) {}
    fn feed_finished(&self, _name: &str, _summary: &feeds::FeedSummary) {}
}

#[test]
fn a_panic_in_one_feed_fails_only_that_feed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a.example\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b.example\n").unwrap();
    let cfg =
        "[[feed]]\nname = \"a\"\nsource = \"a.txt\"\n[[feed]]\nname = \"b\"\nsource = \"b.txt\"\n";
    run(cfg, dir.path(), T0, false);
    std::fs::write(dir.path().join("a.txt"), "a2.example\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "b2.example\n").unwrap();
    let config = Config::from_toml_str(cfg).unwrap();
    let opts = UpdateOptions {
        now: Some(T0 + 60),
        ..UpdateOptions::default()
    };
    let r = update(
        &config,
        dir.path(),
        &dir.path().join("data"),
        &opts,
        &PanicsOn("a"),
    )
    .unwrap();
    assert!(
        matches!(&r.feeds[0].status, FeedStatus::Failed { reason } if reason.contains("internal error") && reason.contains("boom in a")),
        "{:?}",
        r.feeds[0]
    );
    assert_eq!(r.feeds[1].status, FeedStatus::Fetched);
    assert_eq!(
        blocklist_only(&entries(dir.path())),
        vec!["a.example", "b2.example"]
    );
}

#[test]
fn feed_state_records_each_outcome_and_the_change_in_indicators() {
    use feeds::status::{feed_rows, Outcome};
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("l.txt");
    std::fs::write(&list, "a.example\nb.example\n").unwrap();
    let cfg = "[[feed]]\nname = \"l\"\nsource = \"l.txt\"\n";
    let config = Config::from_toml_str(cfg).unwrap();
    let row = |now: i64| feed_rows(&config, &dir.path().join("data"), now).remove(0);
    assert_eq!(row(T0).outcome, Outcome::Never);
    run(cfg, dir.path(), T0, false);
    let r = row(T0);
    assert_eq!(
        (r.outcome, r.indicators, r.change),
        (Outcome::Fresh, Some(2), None)
    );
    std::fs::write(&list, "a.example\nb.example\nc.example\n").unwrap();
    run(cfg, dir.path(), T0 + 10, false);
    let r = row(T0 + 10);
    assert_eq!(
        (r.outcome, r.indicators, r.change),
        (Outcome::Fresh, Some(3), Some(1))
    );
    run(cfg, dir.path(), T0 + 20, false);
    let r = row(T0 + 30);
    assert_eq!(
        (r.outcome, r.indicators, r.change),
        (Outcome::NotModified, Some(3), Some(0))
    );
    assert_eq!((r.last_fetch, r.data_age_secs), (Some(T0 + 20), Some(10)));
    std::fs::remove_file(&list).unwrap();
    run(cfg, dir.path(), T0 + 40, false);
    let r = row(T0 + 100);
    assert_eq!(
        (r.outcome, r.indicators),
        (Outcome::Failed, Some(3)),
        "kept"
    );
    assert!(r.reason.as_deref().unwrap_or("").contains("l.txt"), "{r:?}");
    assert_eq!((r.consecutive_failures, r.data_age_secs), (1, Some(80)));

    // Nothing usable at all: no snapshot, but the failed attempt is recorded.
    let dir2 = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str("[[feed]]\nname = \"m\"\nsource = \"nope.txt\"\n").unwrap();
    let data = dir2.path().join("data");
    let opts = UpdateOptions::default();
    assert!(update(&config, dir2.path(), &data, &opts, &NoProgress).is_err());
    let r = feed_rows(&config, &data, T0).remove(0);
    assert_eq!((r.outcome, r.indicators), (Outcome::Failed, Some(0)));
    assert!(
        r.reason.as_deref().unwrap_or("").contains("nope.txt"),
        "{r:?}"
    );
}
