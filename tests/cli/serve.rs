//! `trawl serve` and `trawl token` end to end: the real binary on 127.0.0.1 (port 0, the
//! address read from `--ready-file`), tokens made and revoked by another process, groups
//! from `[[feed]] group`, the snapshot reloaded when `trawl update` publishes, and `[server]`
//! typos refused with their line.

use crate::common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `trawl serve`, killed on drop.
pub(crate) struct Serve {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(cfg: &Path) -> Serve {
    let ready = cfg.with_file_name("ready");
    let _ = std::fs::remove_file(&ready);
    let child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["serve", "--config", p(cfg), "--listen", "127.0.0.1:0"])
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting trawl serve");
    // Owned at once, so a failed wait below still kills it.
    let mut s = Serve {
        child,
        url: String::new(),
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(u) = std::fs::read_to_string(&ready) {
            if u.ends_with('\n') {
                s.url = u.trim().to_string();
                return s;
            }
        }
        assert!(Instant::now() < until, "trawl serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = ureq::get(url)
        .set("Authorization", &format!("Token token={token}"))
        .call();
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

fn values(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["indicator"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(crate) fn token(cfg: &Path, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--config", p(cfg), "--format", "json"];
    all.extend_from_slice(args);
    let out = trawl_ok(&all);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("token json");
    v["token"].as_str().expect("token field").to_string()
}

#[test]
fn serve_answers_by_group_reloads_and_honours_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trawl.toml");
    std::fs::write(dir.path().join("pub.txt"), "public.example\n").unwrap();
    std::fs::write(dir.path().join("priv.txt"), "private.example\n").unwrap();
    std::fs::write(
        &cfg,
        "[sensor]\ndata = \"state\"\n\n[server]\nrate_limit = 0\n\n\
         [[feed]]\nname = \"pub\"\nsource = \"pub.txt\"\n\n\
         [[feed]]\nname = \"priv\"\nsource = \"priv.txt\"\ngroup = \"csirt\"\n",
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let public = token(&cfg, &["--user", "alice"]);
    let csirt = token(&cfg, &["--user", "bob", "--groups", "everyone,csirt"]);
    let list = trawl_ok(&["token", "list", "--config", p(&cfg)]);
    assert!(list.contains("alice") && list.contains("bob"), "{list}");
    assert!(!list.contains(&public), "a listing never shows a secret");

    let s = serve(&cfg);
    let feed = |t: &str| values(&get(&format!("{}/feed?itype=fqdn", s.url), t).1);
    assert_eq!(feed(&public), vec!["public.example"]);
    assert_eq!(feed(&csirt), vec!["private.example", "public.example"]);

    // A new snapshot is picked up without a restart.
    std::fs::write(
        dir.path().join("pub.txt"),
        "public.example\nnewer.example\n",
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let until = Instant::now() + Duration::from_secs(20);
    while !feed(&public).contains(&"newer.example".to_string()) {
        assert!(Instant::now() < until, "snapshot not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A submission answers at once, then reaches the snapshot through `trawl update`.
    let writer = token(
        &cfg,
        &[
            "--user",
            "carol",
            "--read",
            "--write",
            "--groups",
            "everyone,csirt",
        ],
    );
    let posted = ureq::post(&format!("{}/indicators", s.url))
        .set("Authorization", &format!("Token token={writer}"))
        .send_string(r#"{"indicator": "submitted.example", "group": "csirt", "confidence": 6}"#);
    assert_eq!(posted.map(|r| r.status()).unwrap_or(0), 201);
    assert_eq!(
        values(
            &get(
                &format!("{}/search?q=submitted.example&nolog=1", s.url),
                &csirt
            )
            .1
        ),
        vec!["submitted.example"]
    );
    assert!(values(&get(&format!("{}/search?q=submitted.example", s.url), &public).1).is_empty());
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let q = trawl_ok(&[
        "query",
        "-n",
        "--format",
        "json",
        "--config",
        p(&cfg),
        "submitted.example",
    ]);
    let row: serde_json::Value = serde_json::from_str(q.lines().next().unwrap_or("null")).unwrap();
    assert_eq!(row["groups"], serde_json::json!(["csirt"]), "{q}");
    assert_eq!(row["sources"], serde_json::json!(["trawl-serve"]));
    assert_eq!(row["provider"], "carol");
    assert_eq!(row["confidence"], 60);

    // `trawl query --remote` prints what `trawl query` prints locally, as the token may see it.
    let remote = |t: &str, fmt: &str, v: &str| {
        trawl(&[
            "query", "-n", "--remote", &s.url, "--token", t, "--format", fmt, v,
        ])
    };
    let local = trawl_ok(&[
        "query",
        "-n",
        "--format",
        "json",
        "--config",
        p(&cfg),
        "public.example",
    ]);
    let r = remote(&public, "json", "public.example");
    assert!(r.status.success());
    let mut remote_row: serde_json::Value =
        serde_json::from_slice(r.stdout.split(|b| *b == b'\n').next().unwrap_or_default()).unwrap();
    assert_eq!(remote_row["origin"], "snapshot");
    if let Some(o) = remote_row.as_object_mut() {
        o.remove("origin");
        o.remove("searched");
    }
    let local_row: serde_json::Value =
        serde_json::from_str(local.lines().next().unwrap_or("null")).unwrap();
    assert_eq!(remote_row, local_row);
    let table = remote(&csirt, "table", "private.example");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success() && text.contains("private.example") && text.contains("tlp:green"),
        "{text}"
    );
    assert_eq!(
        remote(&public, "table", "private.example").status.code(),
        Some(1),
        "no match for a token without the group"
    );

    // Revoked by another process: refused on the next request.
    trawl_ok(&["token", "revoke", "--config", p(&cfg), "--user", "alice"]);
    assert_eq!(get(&format!("{}/ping", s.url), &public).0, 401);
    assert_eq!(get(&format!("{}/ping", s.url), &csirt).0, 200);
    let again = trawl(&["token", "revoke", "--config", p(&cfg), "--user", "alice"]);
    assert!(!again.status.success());
}

#[test]
fn server_table_typos_name_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trawl.toml");
    std::fs::write(
        &cfg,
        "[sensor]\ndata = \"state\"\n\n[server]\nlisten = \"127.0.0.1:0\"\nmax_bdy = \"1MiB\"\n",
    )
    .unwrap();
    let out = trawl(&["serve", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 6") && err.contains("max_body"), "{err}");
    // tokens too read the config, so the same typo stops them.
    let out = trawl(&["token", "list", "--config", p(&cfg)]);
    assert!(!out.status.success());
}

#[test]
fn token_create_checks_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = p(dir.path());
    for bad in [
        vec!["--user", "x", "--groups", "Bad Group"],
        vec!["--user", "x", "--max-tlp", "purple"],
        vec!["--user", "x", "--itypes", "ftp"],
        vec!["--user", "x", "--expires", "soon"],
    ] {
        let mut args = vec!["token", "create", "--data", d];
        args.extend(bad.iter().copied());
        let out = trawl(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = trawl_ok(&[
        "token",
        "create",
        "--data",
        d,
        "--user",
        "x",
        "--expires",
        "90d",
    ]);
    assert_eq!(out.trim().len(), 64);
}

/// CIF v3's own client (`cif` from cifsdk 3.x, installed by `make deps`) against `trawl
/// serve`: ping, search, feed in its csv and json formats, submit, then the submission found.
#[test]
fn the_genuine_cif_client_pings_searches_pulls_feeds_and_submits() {
    let cif = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("cif"))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "the `cif` command of cifsdk 3.x is not installed: run `make deps` \
                 (pip install 'cifsdk~=3.0')"
            )
        });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trawl.toml");
    let samples = root().join("samples");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\ndata = \"state\"\n\n[[feed]]\nname = \"c2\"\nsource = \"{}\"\n\
             format = \"plain\"\nitype = \"fqdn\"\nconfidence = 90\ntags = [\"c2\", \"malware\"]\n",
            samples.join("feeds/c2-domains.txt").display()
        ),
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let tok = token(&cfg, &["--user", "analyst", "--read", "--write"]);
    let s = serve(&cfg);
    let yml = dir.path().join("cif.yml");
    std::fs::write(
        &yml,
        format!("client:\n  remote: \"{}\"\n  token: \"{tok}\"\n", s.url),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&cif)
            .arg("--config")
            .arg(&yml)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("running cif");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cif {args:?}: {text}");
        text
    };
    let ping = run(&["-p"]);
    assert!(ping.contains("roundtrip"), "{ping}");
    let found = run(&["-q", "a.b.bad-tracker.net", "-f", "json"]);
    let rows: serde_json::Value =
        serde_json::from_str(found.lines().find(|l| l.starts_with('[')).unwrap_or("null")).unwrap();
    assert_eq!(rows[0]["indicator"], "bad-tracker.net", "{found}");
    assert_eq!(rows[0]["confidence"], 9.0);
    let feed = run(&[
        "--feed", "--itype", "fqdn", "--tags", "malware", "-f", "csv",
    ]);
    let feed_values: Vec<&str> = feed
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('"'))
        .collect();
    let listed = std::fs::read_to_string(samples.join("feeds/c2-domains.txt")).unwrap();
    let want = listed
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    assert_eq!(feed_values.len(), want, "{feed}");
    let submitted = run(&[
        "--submit",
        "--indicator",
        "submitted-by-cif.example",
        "--tags",
        "phishing",
        "--confidence",
        "7",
    ]);
    assert!(submitted.contains("success"), "{submitted}");
    let again = run(&["-q", "submitted-by-cif.example", "-f", "csv"]);
    assert!(
        again.contains("submitted-by-cif.example") && again.contains("analyst"),
        "{again}"
    );
}

/// The samples' feeds in a temporary directory, with `[server]` rate limits `rate` (0: off).
/// The allowlist keeps its domain but not its network: the server serves no allowlist
/// entries, so a remote export cannot cut allowlisted ranges out of firewall rules.
fn sample_server_config(dir: &Path, rate: u32) -> std::path::PathBuf {
    let samples = root().join("samples");
    let allow = dir.join("allowlist.txt");
    std::fs::write(&allow, "intranet.evil.com\n").unwrap();
    let text = std::fs::read_to_string(samples.join("trawl.toml"))
        .unwrap()
        .replace(
            "source = \"feeds/allowlist.txt\"",
            &format!("source = \"{}\"", allow.display()),
        )
        .replace(
            "name = \"demo-sensor\"",
            "name = \"demo-sensor\"\ndata = \"state\"",
        )
        .replace(
            "source = \"feeds/",
            &format!("source = \"{}/", samples.join("feeds").display()),
        );
    let cfg = dir.join("trawl.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nrate_limit = {rate}\nrate_limit_per_address = 0\n\n{text}"),
    )
    .unwrap();
    cfg
}

/// `trawl export --remote` writes what `trawl export` writes from the same indicators, in
/// every format and with the local filters.
#[test]
fn remote_export_is_the_local_export() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sample_server_config(dir.path(), 0);
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let tok = token(&cfg, &["--user", "siem", "--max-tlp", "red"]);
    let s = serve(&cfg);
    for args in [
        vec!["-f", "snort"],
        vec!["-f", "snort", "--snort3", "--sid-base", "1000"],
        vec!["-f", "suricata", "-t", "fqdn", "-t", "url"],
        vec!["-f", "rpz"],
        vec!["-f", "csv", "-c", "85"],
        vec!["-f", "jsonl", "--tag", "phishing"],
        vec!["-f", "json", "-s", "high", "--tlp", "green"],
        vec!["-f", "zeek", "--feed", "demo-c2-domains"],
        vec!["-f", "html"],
        vec!["-f", "stix", "--tlp", "amber"],
        vec!["-f", "misp", "-c", "50"],
    ] {
        let mut local = vec!["-q", "export", "--config", p(&cfg)];
        local.extend(args.iter().copied());
        // The config too, for the sensor name in the headers (nothing else is read).
        let mut remote = vec![
            "-q",
            "export",
            "--remote",
            &s.url,
            "--token",
            &tok,
            "--config",
            p(&cfg),
        ];
        remote.extend(args.iter().copied());
        let (l, r) = (trawl_ok(&local), trawl_ok(&remote));
        assert!(
            l.lines().count() > 2,
            "{args:?}: too little to compare:\n{l}"
        );
        assert_eq!(l, r, "{args:?}");
    }
    // A token without the right to an itype is refused when it asks for that type.
    let fqdn_only = token(&cfg, &["--user", "dns", "--itypes", "fqdn"]);
    let out = trawl(&[
        "export", "-f", "csv", "-t", "url", "--remote", &s.url, "--token", &fqdn_only,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may not"), "{err}");
    let all = trawl_ok(&[
        "-q", "export", "-f", "csv", "--remote", &s.url, "--token", &fqdn_only,
    ]);
    assert!(all.lines().skip(1).all(|l| l.contains(",fqdn,")), "{all}");
}

/// `trawl submit`: stores, prints what was stored, and says what went wrong on 401, 422 and
/// 429; the server and token also come from `[remote]` (`token_env`).
#[test]
fn submit_stores_prints_and_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sample_server_config(dir.path(), 1);
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let writer = token(&cfg, &["--user", "carol", "--write", "--read"]);
    let reader = token(&cfg, &["--user", "dave", "--max-tlp", "amber"]);
    let s = serve(&cfg);
    let client = dir.path().join("client.toml");
    std::fs::write(
        &client,
        format!(
            "[remote]\nurl = \"{}\"\ntoken_env = \"I18_TEST_TOKEN\"\n",
            s.url
        ),
    )
    .unwrap();
    let run = |tok: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(args)
            .current_dir(root())
            .env_remove("TRAWL_REMOTE")
            .env_remove("TRAWL_TOKEN")
            .env("I18_TEST_TOKEN", tok)
            .output()
            .expect("running trawl")
    };
    let out = run(
        &writer,
        &[
            "submit",
            "--config",
            p(&client),
            "evil-submitted[.]example",
            "203.0.113.99",
            "-c",
            "70",
            "-s",
            "high",
            "--tags",
            "c2,botnet",
            "--tlp",
            "amber",
            "--expires",
            "30d",
            "--description",
            "seen in case 42",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("stored 2 indicator(s)"), "{text}");
    assert!(
        text.contains("evil-submitted.example") && text.contains("203.0.113.99"),
        "{text}"
    );
    assert!(
        text.contains("conf  70") && text.contains("tlp:amber") && text.contains("botnet,c2"),
        "{text}"
    );
    // What the server stored, asked through the same [remote] table.
    std::thread::sleep(Duration::from_millis(1100));
    let q = run(
        &reader,
        &[
            "query",
            "-n",
            "--format",
            "json",
            "--config",
            p(&client),
            "evil-submitted.example",
        ],
    );
    let row: serde_json::Value =
        serde_json::from_slice(q.stdout.split(|b| *b == b'\n').next().unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(row["provider"], "carol", "{row}");
    assert_eq!(row["confidence"], 70);
    assert_eq!(row["severity"], "high");
    assert_eq!(row["tlp"], "amber");
    assert_eq!(row["description"], "seen in case 42");
    assert!(row["expires"].as_i64().unwrap_or(0) > 0, "{row}");

    // 422: nothing stored, each refused value named.
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(
        &writer,
        &[
            "submit",
            "--config",
            p(&client),
            "fine.example",
            "not a value",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("item 1") && err.contains("nothing was stored"),
        "{err}"
    );
    // 403: a read-only token.
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(&reader, &["submit", "--config", p(&client), "x.example"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may not"), "{err}");
    // 401: a token the server does not know.
    let out = run(
        &"0".repeat(64),
        &["submit", "--config", p(&client), "x.example"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("refused the token") && err.contains("--token"),
        "{err}"
    );
    // 429: one request a second (burst two) for this token.
    let mut limited = None;
    for _ in 0..10 {
        let out = run(
            &writer,
            &["query", "-n", "--config", p(&client), "fine.example"],
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if err.contains("rate limited") {
            limited = Some(err);
            break;
        }
    }
    let err = limited.expect("no 429 within 10 rapid requests at 1/s");
    assert!(err.contains("retry after"), "{err}");
    // No server anywhere: a usage error that says where one comes from.
    let out = trawl(&["submit", "x.example"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--remote") && err.contains("[remote]"),
        "{err}"
    );
}

/// `trawl submit --external-id`: the STIX id reaches the server and comes back on the
/// stored indicator (`trawl query` against the same server); a malformed id is refused
/// before anything is sent.
#[test]
fn submit_sends_the_external_id() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sample_server_config(dir.path(), 1);
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let writer = token(&cfg, &["--user", "erin", "--write", "--read"]);
    let s = serve(&cfg);
    let id = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
    let out = trawl_ok(&[
        "submit",
        "--remote",
        &s.url,
        "--token",
        &writer,
        "--format",
        "json",
        "--external-id",
        id,
        "stix-submitted.example",
    ]);
    let row: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap_or_default();
    assert_eq!(row["external_id"], id, "{out}");
    std::thread::sleep(Duration::from_millis(1100));
    let q = trawl_ok(&[
        "query",
        "-n",
        "--format",
        "json",
        "--remote",
        &s.url,
        "--token",
        &writer,
        "stix-submitted.example",
    ]);
    let row: serde_json::Value =
        serde_json::from_str(q.lines().next().unwrap_or_default()).unwrap_or_default();
    assert_eq!(row["external_id"], id, "{q}");
    assert_eq!(row["provider"], "erin", "{q}");
    // Not an id: a usage error saying what one looks like, nothing sent.
    let out = trawl(&[
        "submit",
        "--remote",
        &s.url,
        "--token",
        &writer,
        "--external-id",
        "ticket-42",
        "other.example",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("indicator--"), "{err}");
}
