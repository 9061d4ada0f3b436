//! `group = "..."` on a feed reaches the snapshot; a value listed by feeds of different
//! groups carries all of them (ARCHITECTURE.md §3).

use super::{entries, find, run, T0};

#[test]
fn feed_groups_reach_the_snapshot_and_merge_as_a_union() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pub.txt"),
        "evil.example\npublic-only.example\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("csirt.txt"),
        "evil.example\nprivate-only.example\n",
    )
    .unwrap();
    let cfg = "[[feed]]\nname = \"pub\"\nsource = \"pub.txt\"\n\n\
               [[feed]]\nname = \"csirt\"\nsource = \"csirt.txt\"\ngroup = \"csirt\"\n";
    run(cfg, dir.path(), T0, false);
    let e = entries(dir.path());
    let groups = |v: &str| find(&e, v).map(|i| i.groups.clone()).unwrap_or_default();
    assert_eq!(groups("public-only.example"), vec!["everyone"]);
    assert_eq!(groups("private-only.example"), vec!["csirt"]);
    assert_eq!(groups("evil.example"), vec!["csirt", "everyone"]);

    // A group that is not a name is refused with the feed and the key.
    let bad = "[[feed]]\nname = \"x\"\nsource = \"pub.txt\"\ngroup = \"Bad Group\"\n";
    let err = feeds::config::Config::from_toml_str(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("group") && err.contains("Bad Group"), "{err}");
}
