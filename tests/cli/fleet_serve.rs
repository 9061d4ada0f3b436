//! `trawl serve` as a fleet's upstream: the real server (`[server] signing_key`) and real
//! sensors running `trawl update` with `[upstream] url = ".../v1/snapshot/"`. Each token's
//! release holds what that token may see (group and TLP), a feed change reaches a sensor as
//! a delta whose result has the server's content hash, an unchanged release costs a 304, a
//! wrong public key is refused, and a server without a key says how to set one.

use crate::common::*;
use crate::serve::{serve, token};
use std::path::Path;
use std::time::{Duration, Instant};

/// `trawl fleet --format json` against `url` with `token`: (exit code, sensors by name).
fn fleet(url: &str, token: &str) -> (i32, std::collections::BTreeMap<String, serde_json::Value>) {
    let out = trawl(&[
        "fleet", "--remote", url, "--token", token, "--format", "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let by_name = rows
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r))
        .collect();
    (out.status.code().unwrap_or(-1), by_name)
}

/// The value of metric `name` on the server's `/metrics`.
fn metric(url: &str, name: &str) -> Option<i64> {
    let text = ureq::get(&format!("{url}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// GET `url` with `token` (and `If-None-Match`): status, ETag, body.
fn get(url: &str, token: &str, etag: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = ureq::get(url).set("Authorization", &format!("Bearer {token}"));
    if let Some(e) = etag {
        req = req.set("If-None-Match", e);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let tag = resp.header("etag").map(str::to_string);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, tag, body)
}

/// The manifest inside a served `latest.json`.
fn manifest(base: &str, token: &str) -> serde_json::Value {
    let (status, _, body) = get(&format!("{base}latest.json"), token, None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let outer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    serde_json::from_str(outer["manifest"].as_str().unwrap()).unwrap()
}

/// Sensor `name`'s config: pulls `base` with `token`, checks with `key`.
fn sensor(dir: &Path, name: &str, base: &str, token: &str, key: &str) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[sensor]\ndata = \"{name}-data\"\n\
             [upstream]\nurl = \"{base}\"\ntoken = \"{token}\"\npublic_key = \"{key}\"\n\
             name = \"{name}\"\n"
        ),
    )
    .unwrap();
}

/// `trawl update --force` on sensor `name`: (success, stdout + stderr).
fn pull(dir: &Path, name: &str) -> (bool, String) {
    let out = trawl(&[
        "update",
        "--force",
        "--config",
        p(&dir.join(format!("{name}.toml"))),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Whether sensor `name`'s snapshot holds `value` from upstream.
fn holds(dir: &Path, name: &str, value: &str) -> bool {
    let cfg = dir.join(format!("{name}.toml"));
    let out = trawl(&["query", "--config", p(&cfg), value]);
    String::from_utf8_lossy(&out.stdout).contains("sources [upstream:")
}

fn held_hash(dir: &Path, name: &str) -> String {
    let bytes = std::fs::read(dir.join(format!("{name}-data/upstream/indicators.jsonl"))).unwrap();
    feeds::fleet::set::sha256_hex(&bytes)
}

#[test]
fn serve_releases_per_grant_as_deltas_with_304_and_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pub.txt"), "public.example\nshared.example\n").unwrap();
    std::fs::write(d.join("priv.txt"), "private.example\n").unwrap();
    std::fs::write(d.join("red.txt"), "red.example\n").unwrap();
    let cfg = d.join("trawl.toml");
    std::fs::write(
        &cfg,
        "[sensor]\ndata = \"state\"\n\n[server]\nrate_limit = 0\nsigning_key = \"fleet.key\"\n\n\
         [[feed]]\nname = \"pub\"\nsource = \"pub.txt\"\n\n\
         [[feed]]\nname = \"priv\"\nsource = \"priv.txt\"\ngroup = \"csirt\"\n\n\
         [[feed]]\nname = \"red\"\nsource = \"red.txt\"\ntlp = \"red\"\n",
    )
    .unwrap();
    trawl_ok(&["keygen", "--out", p(&d.join("fleet"))]);
    trawl_ok(&["keygen", "--out", p(&d.join("other"))]);
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let low = token(&cfg, &["--user", "branch"]);
    let high = token(
        &cfg,
        &[
            "--user",
            "hq",
            "--groups",
            "everyone,csirt",
            "--max-tlp",
            "red",
        ],
    );
    let admin = token(&cfg, &["--user", "ops", "--admin"]);
    let s = serve(&cfg);
    let base = format!("{}/v1/snapshot/", s.url);
    let key = p(&d.join("fleet.pub")).to_string();
    sensor(d, "low", &base, &low, &key);
    sensor(d, "high", &base, &high, &key);

    // Each sensor gets its token's set: the group's and the TLP:RED indicator only to `high`.
    for name in ["low", "high"] {
        let (good, out) = pull(d, name);
        assert!(good && out.contains("applied bundle"), "{name}: {out}");
    }
    assert!(holds(d, "low", "public.example") && holds(d, "high", "public.example"));
    for secret in ["private.example", "red.example"] {
        assert!(!holds(d, "low", secret), "{secret} leaked to the low grant");
        assert!(
            holds(d, "high", secret),
            "{secret} missing from the high grant"
        );
    }
    let (m_low, m_high) = (manifest(&base, &low), manifest(&base, &high));
    assert_eq!(m_low["total"], 2);
    assert_eq!(m_high["total"], 4);
    assert_eq!(held_hash(d, "low"), m_low["content_hash"].as_str().unwrap());
    assert_eq!(
        held_hash(d, "high"),
        m_high["content_hash"].as_str().unwrap()
    );
    let grants: Vec<_> = std::fs::read_dir(d.join("state/releases"))
        .unwrap()
        .collect();
    assert_eq!(grants.len(), 2, "one release directory per distinct grant");

    // The fleet registry: both sensors, their users, the release each runs, their version.
    let (code, sensors) = fleet(&s.url, &admin);
    assert_eq!(code, 0, "{sensors:?}");
    assert_eq!(sensors.len(), 2, "{sensors:?}");
    assert_eq!(sensors["low"]["user"], "branch");
    assert_eq!(sensors["high"]["user"], "hq");
    assert_eq!(sensors["low"]["release"], m_low["id"]);
    assert_eq!(sensors["high"]["release"], m_high["id"]);
    assert_eq!(sensors["low"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(sensors["low"]["last_sighting_batch"].is_null());
    assert_eq!(sensors["low"]["behind"], false);
    let table = trawl_ok(&["fleet", "--remote", &s.url, "--token", &admin]);
    let low_row = table
        .lines()
        .find(|l| l.starts_with("low "))
        .unwrap_or_default();
    assert!(
        table.starts_with("SENSOR") && low_row.contains(" ok "),
        "{table}"
    );
    assert!(low_row.contains(m_low["id"].as_str().unwrap()), "{table}");
    // Only an admin sees the fleet.
    let out = trawl(&["fleet", "--remote", &s.url, "--token", &low]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not"));

    // Unchanged: the sensor's conditional GET is a 304 (and so is ours with its ETag).
    let (good, out) = pull(d, "low");
    assert!(good && out.contains("unchanged"), "{out}");
    let (status, tag, _) = get(&format!("{base}latest.json"), &low, None);
    assert_eq!(status, 200);
    let (status, _, body) = get(&format!("{base}latest.json"), &low, tag.as_deref());
    assert_eq!((status, body.len()), (304, 0));

    // The feed changes: once the server has the new snapshot, each sensor applies a delta
    // and holds exactly the server's set for its grant.
    std::fs::write(d.join("pub.txt"), "public.example\nnewer.example\n").unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    let until = Instant::now() + Duration::from_secs(20);
    while manifest(&base, &low)["serial"] != 2 {
        assert!(
            Instant::now() < until,
            "the server did not release serial 2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Before the sensor pulls it, `low` is behind its grant's new release.
    let (code, sensors) = fleet(&s.url, &admin);
    assert_eq!(
        (code, &sensors["low"]["behind"]),
        (1, &serde_json::json!(true))
    );
    assert_eq!(metric(&s.url, "trawl_fleet_sensors_behind"), Some(1));
    for name in ["low", "high"] {
        let (good, out) = pull(d, name);
        assert!(good && out.contains("applied delta"), "{name}: {out}");
    }
    // Having applied it, each sensor told the server: nobody is behind.
    let (code, sensors) = fleet(&s.url, &admin);
    assert_eq!(code, 0, "{sensors:?}");
    assert_eq!(metric(&s.url, "trawl_fleet_sensors"), Some(2));
    assert_eq!(metric(&s.url, "trawl_fleet_sensors_behind"), Some(0));
    let (m_low, m_high) = (manifest(&base, &low), manifest(&base, &high));
    assert_eq!(m_high["serial"], 2);
    assert_eq!(held_hash(d, "low"), m_low["content_hash"].as_str().unwrap());
    assert_eq!(
        held_hash(d, "high"),
        m_high["content_hash"].as_str().unwrap()
    );
    assert!(holds(d, "low", "newer.example") && !holds(d, "low", "shared.example"));
    assert!(!holds(d, "low", "private.example"));

    // A sensor with the wrong public key refuses the release and holds nothing from it.
    sensor(d, "wrong", &base, &low, p(&d.join("other.pub")));
    let (_, out) = pull(d, "wrong");
    assert!(
        out.contains("REFUSED") && out.contains("wrong key"),
        "{out}"
    );
    assert!(!holds(d, "wrong", "public.example"));
    assert_eq!(metric(&s.url, "trawl_fleet_sensors"), Some(3));
    assert_eq!(metric(&s.url, "trawl_fleet_sensors_behind"), Some(1));
    // A bad sensor name is refused with what to fix.
    let (status, _, body) = {
        let r = ureq::get(&format!("{base}latest.json"))
            .set("Authorization", &format!("Bearer {low}"))
            .set("X-Trawl-Sensor", "no spaces/please")
            .call();
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (r.status(), (), r.into_string().unwrap_or_default())
    };
    assert_eq!(status, 400);
    assert!(body.contains("[upstream] name"), "{body}");

    // Another token's path is no way around the grant: a file name is checked, and without
    // a token there is nothing.
    let (status, _, _) = get(&format!("{base}bundles/..%2f..%2fserver.db"), &low, None);
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}latest.json"), "nope", None);
    assert_eq!(status, 401);
    drop(s);

    // Without [server] signing_key: 404 saying what to set.
    std::fs::write(
        &cfg,
        "[sensor]\ndata = \"state\"\n\n[server]\nrate_limit = 0\n\n\
         fleet_stale = \"1s\"\n\
         [[feed]]\nname = \"pub\"\nsource = \"pub.txt\"\n",
    )
    .unwrap();
    let s = serve(&cfg);
    // The registry is the store's: the same sensors, now stale (no pull for fleet_stale).
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(metric(&s.url, "trawl_fleet_sensors_stale"), Some(3));
    let (code, sensors) = fleet(&s.url, &admin);
    assert_eq!(
        (code, &sensors["high"]["stale"]),
        (1, &serde_json::json!(true))
    );
    let (status, _, body) = get(&format!("{}/v1/snapshot/latest.json", s.url), &low, None);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("signing_key"));
}
