//! A sensor fleet end to end: `trawl keygen`, `trawl publish` into a directory served by a
//! real static web server (`python3 -m http.server` on 127.0.0.1), and sensors running
//! `trawl update` with `[upstream]` against it: a bundle, then deltas whose result equals the
//! publisher's set, a 304 when nothing changed, the local feeds and allowlist combined; and
//! every bad release (tampered, truncated, replayed, wrong key, empty, halved) or a server
//! gone refused with the last good snapshot kept and the reason said.

use crate::common::static_server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// A publisher, its release directory and sensors, all in one temporary directory.
struct Fleet {
    dir: tempfile::TempDir,
    /// Strictly increasing modification times for `latest.json` (the static server's
    /// Last-Modified has one-second resolution; releases here come faster).
    bumps: u64,
}

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .output()
        .expect("running trawl")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn domains(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("v{i}.fleet.example")).collect()
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("intel.txt"), "").unwrap();
        ok(run(&["keygen", "--out", "fleet"], dir.path()), "keygen");
        Fleet { dir, bumps: 0 }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The publisher's feed now lists `values` (none: the publisher has no feed left);
    /// update and publish (with `extra` flags).
    fn release(&mut self, values: &[String], extra: &[&str]) -> String {
        // min_ratio = 0: the publisher takes a shrunken feed as it is (the sensors' guard is
        // what is tested here).
        let feed = "[[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\nmin_ratio = 0\n";
        let config = format!(
            "[sensor]\ndata = \"pubdata\"\n{}",
            if values.is_empty() { "" } else { feed }
        );
        std::fs::write(self.path("pub.toml"), config).unwrap();
        std::fs::write(self.path("intel.txt"), values.join("\n") + "\n").unwrap();
        ok(
            run(
                &["-q", "update", "--config", "pub.toml", "--allow-empty"],
                self.dir.path(),
            ),
            "publisher update",
        );
        let mut args = vec![
            "publish",
            "--config",
            "pub.toml",
            "--to",
            "www",
            "--key",
            "fleet.key",
        ];
        args.extend_from_slice(extra);
        let out = ok(run(&args, self.dir.path()), "publish");
        self.touch_latest();
        out
    }

    fn touch_latest(&mut self) {
        self.bumps += 10;
        let f = std::fs::File::options()
            .write(true)
            .open(self.path("www/latest.json"))
            .unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(self.bumps))
            .unwrap();
    }

    /// The signed manifest now in `www/latest.json`.
    fn manifest(&self) -> serde_json::Value {
        let outer: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.path("www/latest.json")).unwrap()).unwrap();
        serde_json::from_str(outer["manifest"].as_str().unwrap()).unwrap()
    }

    /// Write sensor `name`'s config (its own feed `local.example`, `[allowlist]` with
    /// `allow`), pulling from `url` with `key`.
    fn sensor(&self, name: &str, url: &str, key: &str, allow: &str) {
        std::fs::write(
            self.path(&format!("{name}-local.txt")),
            "local.fleet-sensor.example\n",
        )
        .unwrap();
        std::fs::write(
            self.path(&format!("{name}.toml")),
            format!(
                "[sensor]\ndata = \"{name}-data\"\n\
                 [[feed]]\nname = \"local\"\nsource = \"{name}-local.txt\"\n\
                 [upstream]\nurl = \"{url}\"\npublic_key = \"{key}\"\nrefresh = \"1h\"\n\
                 [allowlist]\ndomains = [\"{allow}\"]\n"
            ),
        )
        .unwrap();
    }

    /// `trawl update --force` on a sensor: (success, stdout + stderr).
    fn pull(&self, name: &str) -> (bool, String) {
        let cfg = format!("{name}.toml");
        let out = run(&["update", "--force", "--config", &cfg], self.dir.path());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn state(&self, name: &str) -> serde_json::Value {
        let p = self.path(&format!("{name}-data/upstream/state.json"));
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// What the sensor's snapshot says of `value` (`trawl query`).
    fn query(&self, name: &str, value: &str) -> String {
        let cfg = format!("{name}.toml");
        let out = run(&["query", "--config", &cfg, value], self.dir.path());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The SHA-256 of the sensor's held upstream set.
    fn held_hash(&self, name: &str) -> String {
        let bytes =
            std::fs::read(self.path(&format!("{name}-data/upstream/indicators.jsonl"))).unwrap();
        feeds::fleet::set::sha256_hex(&bytes)
    }
}

fn present(query: &str) -> bool {
    query.contains("sources [upstream:intel]")
}

#[test]
fn a_sensor_pulls_a_bundle_then_deltas_equal_to_the_publishers_set_then_a_304() {
    let mut f = Fleet::new();
    let r1 = f.release(&domains(0..20), &[]);
    assert!(r1.contains("20 indicators"), "{r1}");
    let log = f.path("http.log");
    let server = static_server(&f.path("www"), 0, &log);
    f.sensor("s1", &server.url, "fleet.pub", "v3.fleet.example");

    let (good, out) = f.pull("s1");
    assert!(good, "{out}");
    assert!(out.contains("applied bundle"), "{out}");
    let m1 = f.manifest();
    assert_eq!(f.held_hash("s1"), m1["content_hash"].as_str().unwrap());
    // s2 holds release 1 too, and skips release 2 (below).
    f.sensor("s2", &server.url, "fleet.pub", "v3.fleet.example");
    assert!(f.pull("s2").0);
    // Upstream and the sensor's own feed in one snapshot; the local allowlist wins.
    assert!(present(&f.query("s1", "v7.fleet.example")));
    assert!(f
        .query("s1", "local.fleet-sensor.example")
        .contains("sources [local]"));
    assert!(f
        .query("s1", "v3.fleet.example")
        .contains("ALLOWLISTED by config-allowlist"));

    // Unchanged: one conditional GET answered 304, nothing else fetched.
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    let (good, out) = f.pull("s1");
    assert!(good && out.contains("unchanged"), "{out}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    let new: Vec<&str> = log_text.lines().skip(before).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(
        new[0].contains("GET /latest.json") && new[0].contains(" 304 "),
        "{new:?}"
    );

    // Two changes in a row: each applied as a delta, each equal to the publisher's set.
    for (n, range) in [(2, 2..24), (3, 4..26)] {
        let r = f.release(&domains(range.clone()), &[]);
        assert!(r.contains("delta from"), "{r}");
        let (good, out) = f.pull("s1");
        assert!(good, "{out}");
        assert!(out.contains("applied delta"), "release {n}: {out}");
        let m = f.manifest();
        assert_eq!(m["serial"], n);
        assert_eq!(f.held_hash("s1"), m["content_hash"].as_str().unwrap());
        let bundle = f.path(&format!("www/{}", m["bundle"]["path"].as_str().unwrap()));
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap());
        let mut full = Vec::new();
        std::io::Read::read_to_end(&mut gz, &mut full).unwrap();
        assert_eq!(
            std::fs::read(f.path("s1-data/upstream/indicators.jsonl")).unwrap(),
            full
        );
    }
    assert!(!present(&f.query("s1", "v1.fleet.example")));
    assert!(present(&f.query("s1", "v25.fleet.example")));
    // A sensor that missed releases gets the bundle; one that held release 1 a delta.
    let state = f.state("s1");
    assert_eq!(state["deltas_total"], 2);
    assert_eq!(state["bundles_total"], 1);
    // s2, still on release 1, follows the publisher's steps 1 -> 2 and 2 -> 3 (format 2),
    // and holds exactly release 3.
    let m3 = f.manifest();
    let from1 = m3["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["from"] == m1["id"])
        .expect("a delta from release 1");
    let path = f.path(&format!("www/{}", from1["file"]["path"].as_str().unwrap()));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut text,
    )
    .unwrap();
    assert!(text.starts_with("trawl-delta 2 "), "{text}");
    let (good, out) = f.pull("s2");
    assert!(good && out.contains("applied delta"), "{out}");
    assert_eq!(f.held_hash("s2"), m3["content_hash"].as_str().unwrap());
}

#[test]
fn bad_releases_are_refused_and_the_last_good_snapshot_kept() {
    let mut f = Fleet::new();
    f.release(&domains(0..20), &[]);
    let log = f.path("http.log");
    let server = static_server(&f.path("www"), 0, &log);
    f.sensor("s1", &server.url, "fleet.pub", "none.example");
    assert!(f.pull("s1").0);
    let good = f.manifest();
    let good_id = good["id"].as_str().unwrap().to_string();
    let saved_latest = std::fs::read(f.path("www/latest.json")).unwrap();
    let held_is_good = |f: &Fleet, out: &str| {
        assert!(
            out.contains(&format!("kept the last good release {good_id}")),
            "{out}"
        );
        assert_eq!(f.state("s1")["held"]["id"], good_id.as_str());
        assert!(
            present(&f.query("s1", "v0.fleet.example")),
            "last good set gone"
        );
    };

    // Tampered: one byte of the bundle and the delta changed.
    f.release(&domains(0..21), &[]);
    let m = f.manifest();
    let files = [
        f.path(&format!("www/{}", m["bundle"]["path"].as_str().unwrap())),
        f.path(&format!(
            "www/{}",
            m["deltas"][0]["file"]["path"].as_str().unwrap()
        )),
    ];
    let originals: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (p, orig) in files.iter().zip(&originals) {
        let mut b = orig.clone();
        let mid = b.len() / 2;
        b[mid] ^= 0x55;
        std::fs::write(p, b).unwrap();
    }
    let (_, out) = f.pull("s1");
    assert!(out.contains("REFUSED") && out.contains("tampered"), "{out}");
    held_is_good(&f, &out);
    assert!(f.state("s1")["last_error"].is_string());

    // Truncated: both files cut in half.
    for (p, orig) in files.iter().zip(&originals) {
        std::fs::write(p, &orig[..orig.len() / 2]).unwrap();
    }
    let (_, out) = f.pull("s1");
    assert!(
        out.contains("REFUSED") && out.contains("truncated"),
        "{out}"
    );
    held_is_good(&f, &out);

    // Re-signed by nobody: valid gzip of altered content fails the manifest's SHA-256.
    for (p, orig) in files.iter().zip(&originals) {
        let mut text = Vec::new();
        let mut gz = flate2::read::GzDecoder::new(&orig[..]);
        std::io::Read::read_to_end(&mut gz, &mut text).unwrap();
        text.extend_from_slice(b"+{\"value\":\"planted.example\"}\n");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &text).unwrap();
        std::fs::write(p, enc.finish().unwrap()).unwrap();
    }
    let (_, out) = f.pull("s1");
    assert!(out.contains("REFUSED") && out.contains("SHA-256"), "{out}");
    held_is_good(&f, &out);

    // Restored: the same release now applies (as a delta).
    for (p, orig) in files.iter().zip(&originals) {
        std::fs::write(p, orig).unwrap();
    }
    let (good2, out) = f.pull("s1");
    assert!(good2 && out.contains("applied delta"), "{out}");
    assert!(f.state("s1")["last_error"].is_null());

    // Replayed: the older signed manifest served again.
    let current_latest = std::fs::read(f.path("www/latest.json")).unwrap();
    std::fs::write(f.path("www/latest.json"), &saved_latest).unwrap();
    f.touch_latest();
    let (_, out) = f.pull("s1");
    assert!(
        out.contains("REFUSED") && out.contains("older than the held"),
        "{out}"
    );
    assert_eq!(f.state("s1")["held"]["serial"], 2);
    assert!(present(&f.query("s1", "v20.fleet.example")));
    std::fs::write(f.path("www/latest.json"), &current_latest).unwrap();
    f.touch_latest();

    // Empty, then halved: refused; the halved one marked intended: accepted.
    f.release(&[], &[]);
    let (_, out) = f.pull("s1");
    assert!(out.contains("REFUSED") && out.contains("empty"), "{out}");
    assert_eq!(f.state("s1")["held"]["serial"], 2);
    f.release(&domains(0..8), &[]);
    let (_, out) = f.pull("s1");
    assert!(
        out.contains("REFUSED") && out.contains("max_shrink"),
        "{out}"
    );
    assert!(present(&f.query("s1", "v15.fleet.example")));
    let r = f.release(&domains(0..8), &["--intended-shrink"]);
    assert!(r.contains("intended"), "{r}");
    let (good3, out) = f.pull("s1");
    assert!(good3 && out.contains("applied"), "{out}");
    assert!(!present(&f.query("s1", "v15.fleet.example")));
    assert!(present(&f.query("s1", "v7.fleet.example")));
    assert_eq!(f.state("s1")["refused_total"], 6);
}

#[test]
fn a_wrong_key_or_a_server_gone_keeps_the_last_good_snapshot() {
    let mut f = Fleet::new();
    f.release(&domains(0..10), &[]);
    let server = static_server(&f.path("www"), 0, &f.path("http.log"));
    std::fs::copy(f.path("fleet.pub"), f.path("trusted.pub")).unwrap();
    f.sensor("s1", &server.url, "trusted.pub", "none.example");
    assert!(f.pull("s1").0);

    // The publisher re-keys without telling the sensor: refused, named as a key problem.
    std::fs::remove_file(f.path("fleet.key")).unwrap();
    std::fs::remove_file(f.path("fleet.pub")).unwrap();
    ok(
        run(&["keygen", "--out", "fleet"], f.dir.path()),
        "keygen again",
    );
    std::fs::remove_dir_all(f.path("www")).unwrap();
    std::fs::create_dir(f.path("www")).unwrap();
    f.release(&domains(0..12), &[]);
    let (_, out) = f.pull("s1");
    assert!(
        out.contains("REFUSED") && out.contains("wrong key"),
        "{out}"
    );
    assert!(present(&f.query("s1", "v9.fleet.example")));
    assert!(!present(&f.query("s1", "v11.fleet.example")));

    // The server goes away: the pull fails, the snapshot stays, the update still succeeds.
    drop(server);
    let (good, out) = f.pull("s1");
    assert!(good, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(present(&f.query("s1", "v9.fleet.example")));
    assert_eq!(f.state("s1")["failed_total"], 1);
}
