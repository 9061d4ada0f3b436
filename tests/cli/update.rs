//! `trawl update` on the command line: paths relative to the config file, configs and
//! results without feeds (`--allow-empty`), config typos, and the help text.

use crate::common::*;

#[test]
fn update_resolves_data_against_the_config_and_refuses_to_empty_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trawl.toml");
    std::fs::write(dir.path().join("l.txt"), "evil.example\n").unwrap();
    let feed = "[[feed]]\nname = \"l\"\nsource = \"l.txt\"\n";
    std::fs::write(&cfg, format!("[sensor]\ndata = \"state\"\n{feed}")).unwrap();
    // Run from the repository root: `state` is next to the config, not in the cwd.
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    assert!(dir.path().join("state/snapshots").is_dir());
    assert!(!root().join("state").exists());
    let query = |v: &str| trawl(&["query", "--config", p(&cfg), v]);
    assert!(query("evil.example").status.success());

    // The feed is removed: publishing would drop every feed indicator.
    std::fs::write(&cfg, "[sensor]\ndata = \"state\"\n").unwrap();
    let out = trawl(&["-q", "update", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--allow-empty"),
        "{err}"
    );
    assert!(query("evil.example").status.success(), "still published");
    trawl_ok(&["-q", "update", "--config", p(&cfg), "--allow-empty"]);
    assert!(!query("evil.example").status.success());

    // A typo in a table name is an error naming the line and the valid name.
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\ndata = \"state\"\n{}",
            feed.replace("feed]", "feeds]")
        ),
    )
    .unwrap();
    let out = trawl(&["-q", "update", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown table `feeds` at line 3, did you mean `feed`?"),
        "{err}"
    );
}

#[test]
fn update_help_describes_config_and_allow_empty() {
    let help = trawl_ok(&["update", "--help"]);
    assert!(help.contains("whose [[feed]] tables are fetched"), "{help}");
    assert!(help.contains("--allow-empty"), "{help}");
}
