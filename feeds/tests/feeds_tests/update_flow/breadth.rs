//! Over-broad indicators and allowlist entries (the breadth rule) through a real update:
//! rejected with feed, line and reason, counted, and never in the published snapshot.

use super::{blocklist_only, entries, run, T0};
use feeds::config::{Config, ConfigError};

const FEED: &str = "\
# an over-broad feed: every second line would blind or block far too much
evil.example
0.0.0.0/0
45.142.0.0/16
com
co.uk
github.io
user.github.io
::/0
2a00:1450::/32
10.0.0.0/7
http://github.io/kit.zip
";

fn write_feed(dir: &std::path::Path, body: &str) {
    std::fs::write(dir.join("wide.txt"), body).unwrap();
}

#[test]
fn broad_feed_entries_are_rejected_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    write_feed(dir.path(), FEED);
    let r = run(
        "[[feed]]\nname = \"wide\"\nsource = \"wide.txt\"\n",
        dir.path(),
        T0,
        false,
    );
    let f = &r.feeds[0];
    assert_eq!(f.rejected, 6, "{}", r.render_text());
    let lines: Vec<usize> = f.reject_samples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [3, 5, 6, 7, 9, 11], "{:?}", f.reject_samples);
    let reason = |line: usize| {
        f.reject_samples
            .iter()
            .find(|s| s.line == line)
            .map(|s| s.reason.clone())
            .unwrap()
    };
    assert!(reason(3).contains("\"0.0.0.0/0\": too broad: /0 is wider than the /8 limit for IPv4"));
    // A single label is not even a domain without an itype hint.
    assert!(reason(5).contains("\"com\""), "{}", reason(5));
    assert!(reason(6).contains("public suffix (ICANN"), "{}", reason(6));
    assert!(
        reason(7).contains("public suffix (private"),
        "{}",
        reason(7)
    );
    assert!(reason(9).contains("IPv6"), "{}", reason(9));
    let text = r.render_text();
    assert!(
        text.contains("wide [plain]: fetched: 5 accepted, 6 rejected"),
        "{text}"
    );
    assert!(text.contains("line 3: \"0.0.0.0/0\": too broad"), "{text}");
    // The URL on a public suffix is narrow and kept; its host is not derived.
    assert_eq!(
        blocklist_only(&entries(dir.path())),
        [
            "2a00:1450::/32",
            "45.142.0.0/16",
            "evil.example",
            "http://github.io/kit.zip",
            "user.github.io",
        ]
    );
}

#[test]
fn bare_tld_is_rejected_when_the_feed_says_fqdn() {
    let dir = tempfile::tempdir().unwrap();
    write_feed(dir.path(), "com\nevil.example\nlocalhost\n");
    let r = run(
        "[[feed]]\nname = \"d\"\nsource = \"wide.txt\"\nitype = \"fqdn\"\n",
        dir.path(),
        T0,
        false,
    );
    let f = &r.feeds[0];
    assert_eq!((f.accepted, f.rejected), (1, 2), "{}", r.render_text());
    for s in &f.reject_samples {
        assert!(s.reason.contains("too broad: a top-level domain"), "{s:?}");
    }
}

#[test]
fn min_prefix_moves_the_limits_per_feed() {
    let dir = tempfile::tempdir().unwrap();
    write_feed(
        dir.path(),
        "10.0.0.0/7\n198.51.0.0/16\n2001:db8::/32\n2001:db8:1::/48\n",
    );
    let cfg = "[[feed]]\nname = \"loose\"\nsource = \"wide.txt\"\nmin_prefix = { ipv4 = 4 }\n\
               [[feed]]\nname = \"strict\"\nsource = \"wide.txt\"\nmin_prefix = { ipv4 = 24, ipv6 = 48 }\n";
    let r = run(cfg, dir.path(), T0, false);
    // loose: /7 allowed, IPv6 keeps the default /16; strict: /16 and /32 refused.
    assert_eq!((r.feeds[0].accepted, r.feeds[0].rejected), (4, 0));
    assert_eq!((r.feeds[1].accepted, r.feeds[1].rejected), (1, 3));
    assert!(r.feeds[1].reject_samples[0]
        .reason
        .contains("/7 is wider than the /24 limit for IPv4 (min_prefix)"));
    let bad = Config::from_toml_str(
        "[[feed]]\nname = \"x\"\nsource = \"x\"\nmin_prefix = { ipv4 = 40 }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("min_prefix.ipv4 = 40: must be 0-32"), "{bad}");
}

#[test]
fn broad_allowlist_feed_entries_are_rejected_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    write_feed(dir.path(), "a.evil.example\n45.142.212.9\nbad.evil.co.uk\n");
    std::fs::write(
        dir.path().join("allow.txt"),
        "::/0\n0.0.0.0/0\nco.uk\nevil.example\n",
    )
    .unwrap();
    let cfg = "[[feed]]\nname = \"block\"\nsource = \"wide.txt\"\n\
               [[feed]]\nname = \"allow\"\nsource = \"allow.txt\"\nallowlist = true\n";
    let r = run(cfg, dir.path(), T0, false);
    let allow = &r.feeds[1];
    assert_eq!(
        (allow.accepted, allow.rejected),
        (1, 3),
        "{}",
        r.render_text()
    );
    let lines: Vec<usize> = allow.reject_samples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 2, 3]);
    // Only evil.example is silenced: the /0s and co.uk would have silenced the other two.
    assert_eq!(r.allowlisted, 1, "{}", r.render_text());
    let e = entries(dir.path());
    let alerting: Vec<&str> = e
        .iter()
        .filter(|i| !i.allowlist && i.allowlisted_by.is_none())
        .map(|i| i.value.as_str())
        .collect();
    assert_eq!(alerting, ["45.142.212.9", "bad.evil.co.uk"]);
}

#[test]
fn broad_allowlist_table_is_a_config_error() {
    for (table, word) in [
        (
            "cidrs = [\"10.0.0.0/8\", \"0.0.0.0/0\"]",
            "cidrs entry \"0.0.0.0/0\" is too broad",
        ),
        ("cidrs = [\"::/0\"]", "cidrs entry \"::/0\" is too broad"),
        (
            "domains = [\"example.org\", \"COM\"]",
            "domains entry \"COM\" is too broad: a top-level",
        ),
        ("domains = [\"github.io\"]", "private section"),
    ] {
        let text = format!("[[feed]]\nname = \"a\"\nsource = \"a\"\n[allowlist]\n{table}\n");
        let err = Config::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, ConfigError::BroadAllowlist { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("[allowlist]") && msg.contains(word), "{msg}");
        assert!(msg.contains("would silence everything"), "{msg}");
        // Said once: the entry is part of the message, not a cause repeated after it.
        assert!(std::error::Error::source(&err).is_none(), "{msg}");
    }
    // The usual operator entries are fine.
    Config::from_toml_str(
        "[allowlist]\ndomains = [\"example.org\", \"corp.example.co.uk\"]\ncidrs = [\"10.0.0.0/8\", \"fd00::/16\", \"192.0.2.1\"]\n",
    )
    .unwrap();
}

#[test]
fn broad_entries_of_the_previous_snapshot_are_not_carried_over() {
    // A snapshot an older build (or a looser min_prefix) published with a /4 in it; then the
    // limit tightens and the feed's next fetch fails: its narrow entries are kept, the /4
    // is not.
    let dir = tempfile::tempdir().unwrap();
    write_feed(dir.path(), "16.0.0.0/4\nevil.example\n45.142.0.0/16\n");
    let loose = "[[feed]]\nname = \"f\"\nsource = \"wide.txt\"\nmin_prefix = { ipv4 = 4 }\n";
    let r = run(loose, dir.path(), T0, false);
    assert_eq!(r.feeds[0].accepted, 3, "{}", r.render_text());
    assert!(blocklist_only(&entries(dir.path())).contains(&"16.0.0.0/4".to_string()));
    std::fs::remove_file(dir.path().join("wide.txt")).unwrap();
    let strict = "[[feed]]\nname = \"f\"\nsource = \"wide.txt\"\n";
    let r = run(strict, dir.path(), T0 + 10, true);
    assert!(
        matches!(r.feeds[0].status, feeds::FeedStatus::Failed { .. }),
        "{}",
        r.render_text()
    );
    assert_eq!(r.feeds[0].kept, 2, "{}", r.render_text());
    assert_eq!(
        blocklist_only(&entries(dir.path())),
        ["45.142.0.0/16", "evil.example"]
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("1 entries of the previous snapshot are too broad")),
        "{:?}",
        r.warnings
    );
}
