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
    let groups = |v: &str| find(&e, v).map(|i| i.groups.to_vec()).unwrap_or_default();
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

/// `trawl serve`'s submissions file joins the next update, each line checked again like a
/// feed value: lines that are not normal, too broad or badly grouped are warnings.
#[test]
fn server_submissions_join_the_update_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pub.txt"), "public.example\n").unwrap();
    let cfg = "[[feed]]\nname = \"pub\"\nsource = \"pub.txt\"\n";
    run(cfg, dir.path(), T0, false);
    let sub_dir = dir.path().join("data/server");
    std::fs::create_dir_all(&sub_dir).unwrap();
    let mut good = matcher::Indicator::new("submitted.example", matcher::IndicatorType::Fqdn, "x");
    good.groups = matcher::Groups::one("csirt");
    good.provider = Some("alice".into());
    let mut upper = good.clone();
    upper.value = "UPPER.example".into();
    let mut broad = good.clone();
    broad.value = "com".into();
    let mut bad_group = good.clone();
    bad_group.value = "grouped.example".into();
    bad_group.groups = matcher::Groups::one("Not A Group");
    let lines: Vec<String> = [&good, &upper, &broad, &bad_group]
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    std::fs::write(
        sub_dir.join("submissions.jsonl"),
        lines.join("\n") + "\n{oops\n",
    )
    .unwrap();
    let (subs, warnings, hash) = feeds::update::served_submissions(&dir.path().join("data"));
    assert_eq!(subs.len(), 1, "{warnings:?}");
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(hash.is_some());
    let r = run(cfg, dir.path(), T0 + 60, false);
    assert!(!r.unchanged, "a new submissions file is a change");
    let e = entries(dir.path());
    let s = find(&e, "submitted.example").expect("submission in the snapshot");
    assert_eq!(s.sources, vec![feeds::update::SUBMISSIONS_SOURCE]);
    assert_eq!(s.groups.to_vec(), vec!["csirt"]);
    assert_eq!(s.provider.as_deref(), Some("alice"));
    assert!(find(&e, "upper.example").is_none() && find(&e, "com").is_none());
}
