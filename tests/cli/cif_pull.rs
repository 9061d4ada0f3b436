//! One CIF pulls from another: `format = "cif"` with a `trawl serve` `/feed` as its source
//! (itype, confidence and tags in the URL, the token from the environment), the real binary
//! on both sides.

use crate::common::*;
use crate::serve::{serve, token};
use std::process::Command;

#[test]
fn a_cif_feed_pulls_from_trawl_serve() {
    let up = tempfile::tempdir().unwrap();
    let up_cfg = up.path().join("trawl.toml");
    std::fs::write(
        up.path().join("phish.txt"),
        "login-phish.example\npay-phish.example\n",
    )
    .unwrap();
    std::fs::write(up.path().join("weak.txt"), "maybe.example\n").unwrap();
    std::fs::write(
        &up_cfg,
        "[sensor]\ndata = \"state\"\n\n[server]\nrate_limit = 0\n\n\
         [[feed]]\nname = \"phish\"\nsource = \"phish.txt\"\nconfidence = 85\ntags = [\"phishing\"]\n\n\
         [[feed]]\nname = \"weak\"\nsource = \"weak.txt\"\nconfidence = 40\ntags = [\"phishing\"]\n",
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&up_cfg)]);
    let tok = token(&up_cfg, &["--user", "downstream"]);
    let s = serve(&up_cfg);

    let down = tempfile::tempdir().unwrap();
    let down_cfg = down.path().join("trawl.toml");
    std::fs::write(
        &down_cfg,
        format!(
            "[sensor]\ndata = \"state\"\n\n[[feed]]\nname = \"upstream\"\n\
             source = \"{}/feed?itype=fqdn&confidence=7.5&tags=phishing\"\nformat = \"cif\"\n\
             auth_header = \"Authorization: Token token=${{UPSTREAM_CIF_TOKEN}}\"\nretries = 0\n",
            s.url
        ),
    )
    .unwrap();
    let update = |token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trawl"));
        c.args(["update", "--config", p(&down_cfg), "--format", "json"]);
        c.env_remove("UPSTREAM_CIF_TOKEN");
        if let Some(t) = token {
            c.env("UPSTREAM_CIF_TOKEN", t);
        }
        c.output().unwrap()
    };
    // Without the token in the environment the feed fails and says which variable is missing.
    let out = update(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UPSTREAM_CIF_TOKEN"), "{err}");

    let out = update(Some(&tok));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["feeds"][0]["accepted"], 2, "{report}");

    let q = trawl_ok(&[
        "query",
        "--config",
        p(&down_cfg),
        "--format",
        "json",
        "login-phish.example",
    ]);
    let hit = json_lines(&q)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no hit: {q}"));
    let text = hit.to_string();
    assert!(text.contains("\"confidence\":85"), "{text}");
    assert!(text.contains("phishing"), "{text}");
    let miss = trawl(&[
        "query",
        "--config",
        p(&down_cfg),
        "--format",
        "json",
        "maybe.example",
    ]);
    assert!(
        !String::from_utf8_lossy(&miss.stdout).contains("maybe.example\""),
        "below the asked confidence"
    );
}
