//! The retro index end to end: a real Zeek DNS log recorded with `scan --record`, then
//! `trawl hunt` answers checked against what the log itself holds (every observed name under
//! a domain, every address in a CIDR, with first and last time and count), the retention
//! window, a damaged segment set aside, and `kill -9` mid-recording leaving whole segments.

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One hunt answer: first and last seen (RFC 3339), count, clients.
type Row = (String, String, u64, Vec<String>);

/// (first, last, count, clients) of one observed value.
type Seen = (i64, i64, u64, BTreeSet<String>);

fn config(dir: &Path, retention: &str) -> PathBuf {
    std::fs::write(dir.join("intel.txt"), "evil.example\n").unwrap();
    let cfg = dir.join("trawl.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\ndata = \"data\"\n\n[[feed]]\nname = \"intel\"\nsource = \"intel.txt\"\n\n\
             [retro]\nretention = \"{retention}\"\nclients = 2\n"
        ),
    )
    .unwrap();
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    cfg
}

/// What the Zeek DNS log holds, read straight from its columns: per observed value (query
/// names, answers, client and server addresses), its times, count (lines) and clients.
fn zeek_truth(log: &Path) -> BTreeMap<String, Seen> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut cols: Vec<&str> = Vec::new();
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            cols = f.split('\t').collect();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let v: Vec<&str> = line.split('\t').collect();
        let col = |n: &str| v[cols.iter().position(|c| *c == n).unwrap()];
        let t = col("ts").parse::<f64>().unwrap().floor() as i64;
        let client = col("id.orig_h").to_string();
        let mut values = BTreeSet::new();
        values.insert(col("id.orig_h").to_string());
        values.insert(col("id.resp_h").to_string());
        if col("query") != "-" {
            values.insert(col("query").to_ascii_lowercase());
        }
        if !matches!(col("answers"), "-" | "(empty)") {
            for a in col("answers").split(',') {
                values.insert(a.to_ascii_lowercase());
            }
        }
        for value in values {
            let e = out.entry(value).or_insert((t, t, 0, BTreeSet::new()));
            e.0 = e.0.min(t);
            e.1 = e.1.max(t);
            e.2 += 1;
            e.3.insert(client.clone());
        }
    }
    out
}

fn rfc3339(t: i64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&f)
        .unwrap()
}

/// `trawl hunt --format json` → (indicator, observed value) → (first, last, count, clients).
fn hunt_json(cfg: &Path, values: &[&str]) -> BTreeMap<(String, String), Row> {
    let mut args = vec!["hunt", "--config", p(cfg), "--format", "json"];
    args.extend_from_slice(values);
    let mut out = BTreeMap::new();
    for a in json_lines(&trawl_ok(&args)) {
        assert_eq!(a["trawl"]["retro"], true);
        assert_eq!(a["event"]["kind"], "alert");
        let o = &a["trawl"]["observed"];
        assert_eq!(a["event"]["start"], o["first_seen"]);
        assert_eq!(a["event"]["end"], o["last_seen"]);
        let key = (
            a["threat"]["indicator"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
            o["value"].as_str().unwrap().to_string(),
        );
        let clients = o["clients"]
            .as_array()
            .map(|c| c.iter().map(|c| c.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let row = (
            o["first_seen"].as_str().unwrap().to_string(),
            o["last_seen"].as_str().unwrap().to_string(),
            o["count"].as_u64().unwrap(),
            clients,
        );
        assert!(out.insert(key.clone(), row).is_none(), "{key:?} twice");
    }
    out
}

#[test]
fn hunt_answers_exactly_what_the_recorded_zeek_dns_log_holds() {
    let Some(corpus) = corpus() else { return };
    let log = corpus.join("logs/zeek-wrccdc/dns.log");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "10000d");
    let out = trawl(&["scan", "--config", p(&cfg), "--record", p(&log)]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3000 observations recorded, 0 rejected"),
        "{err}"
    );

    let truth = zeek_truth(&log);
    let mut want = BTreeMap::new();
    for (value, (first, last, count, clients)) in &truth {
        let under_google = value == "google.com" || value.ends_with(".google.com");
        let in_cidr = value
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_string().starts_with("10.47.2."));
        let indicator = if under_google {
            "google.com"
        } else if in_cidr {
            "10.47.2.0/24"
        } else {
            continue;
        };
        want.insert(
            (indicator.to_string(), value.clone()),
            (rfc3339(*first), rfc3339(*last), *count, clients.clone()),
        );
    }
    assert!(
        want.len() > 20,
        "the log has names under google.com and addresses in the CIDR"
    );
    let got = hunt_json(&cfg, &["google.com", "10.47.2.0/24"]);
    let got_keys: Vec<_> = got.keys().cloned().collect();
    let want_keys: Vec<_> = want.keys().cloned().collect();
    assert_eq!(got_keys, want_keys, "none missing, none extra");
    for (k, (first, last, count, clients)) in &got {
        let w = &want[k];
        assert_eq!((first, last, count), (&w.0, &w.1, &w.2), "{k:?}");
        assert_eq!(clients.len(), w.3.len().min(2), "{k:?}: {clients:?}");
        assert!(
            clients.iter().all(|c| w.3.contains(c)),
            "{k:?}: {clients:?}"
        );
    }
    // The label boundary: a hunt of `oogle.com` finds nothing under google.com.
    assert!(hunt_json(&cfg, &["oogle.com"]).is_empty());
    // The table names the same values.
    let table = trawl_ok(&["hunt", "--config", p(&cfg), "www.google.com"]);
    assert!(
        table.contains("www.google.com") && table.contains("COUNT"),
        "{table}"
    );

    // A damaged segment is set aside with a warning; the hunt still runs.
    let seg = std::fs::read_dir(dir.path().join("data/retro"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&seg, bytes).unwrap();
    let out = trawl(&["hunt", "--config", p(&cfg), "google.com"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("set aside") && err.contains("checksum"),
        "{err}"
    );
    assert!(seg.with_extension("seg.damaged").exists());
}

/// A segment damaged after a hunt checked it whole, with its length, time and inode kept
/// (what the record of verified segments, `data/retro/verified`, cannot see): the next hunts
/// check only its structure and never crash; a read that fails is said on stderr and the
/// segment is set aside by the hunt after it.
#[test]
fn a_segment_damaged_after_a_hunt_verified_it_never_crashes_the_next() {
    let Some(corpus) = corpus() else { return };
    let log = corpus.join("logs/zeek-wrccdc/dns.log");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "10000d");
    trawl_ok(&["-q", "scan", "--config", p(&cfg), "--record", p(&log)]);
    let want = hunt_json(&cfg, &["google.com"]);
    assert!(!want.is_empty());
    let index = dir.path().join("data/retro");
    let record = std::fs::read_to_string(index.join("verified")).unwrap();
    let seg = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(record.contains(&name), "{record}");
    let good = std::fs::read(&seg).unwrap();
    let mtime = std::fs::metadata(&seg).unwrap().modified().unwrap();
    // Version 3: the index starts with each block's end (u64) in the block area; a flipped
    // low byte of block k's end breaks the directory's order or its last end, which opening
    // the segment checks (or misplaces blocks k and k + 1, whose CRC-32 refuses them when a
    // lookup reads them).
    assert_eq!(good[4], 3, "a version 3 segment");
    let index_len = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
    let mut reported = 0;
    for k in (0..16).filter(|k| 16 * k < index_len) {
        let mut bad = good.clone();
        bad[48 + 16 * k] ^= 0x40;
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut &f, &bad).unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        std::fs::write(index.join("verified"), &record).unwrap();
        let out = trawl(&[
            "hunt",
            "--config",
            p(&cfg),
            "--format",
            "json",
            "google.com",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "flip {k}: {err}");
        assert!(!err.contains("panicked"), "flip {k}: {err}");
        if err.contains("damaged segment") {
            reported += 1;
            let aside = seg.with_extension("seg.damaged");
            if !aside.exists() {
                // Damage found by a read: dropped from the record, so the next hunt checks
                // it whole and sets it aside (damage found at open is set aside at once).
                let out = trawl(&["hunt", "--config", p(&cfg), "google.com"]);
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success() && err.contains("set aside"), "{err}");
            }
            std::fs::rename(aside, &seg).unwrap();
        }
    }
    assert!(reported > 0, "no flip made the read fail");
    // Whole again (the same bytes, time and record): the same answers.
    std::fs::write(&seg, &good).unwrap();
    assert_eq!(hunt_json(&cfg, &["google.com"]), want);
}

#[test]
fn events_outside_the_retention_are_counted_as_rejected() {
    let Some(corpus) = corpus() else { return };
    let log = corpus.join("logs/zeek-wrccdc/dns.log");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "30d");
    let out = trawl(&["scan", "--config", p(&cfg), "--record", p(&log)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0 observations recorded, 3000 rejected"),
        "{err}"
    );
    assert!(hunt_json(&cfg, &["google.com"]).is_empty());
    let out = trawl(&["hunt", "--config", p(&cfg)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--indicators FILE"),
        "{err}"
    );
}

#[test]
fn kill_9_mid_recording_leaves_only_whole_segments() {
    let Some(corpus) = corpus() else { return };
    // The DNS log's lines spread over 200 days: one flush writes hundreds of segments and
    // compacts as many days, so a kill lands inside the writing.
    let text = std::fs::read_to_string(corpus.join("logs/zeek-wrccdc/dns.log")).unwrap();
    let (head, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('#'));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dns.log");
    let mut out = head[..head.len() - 1].join("\n");
    out.push('\n');
    for day in 0..200i64 {
        for line in body.iter().skip(day as usize * 15).take(15) {
            let (ts, rest) = line.split_once('\t').unwrap();
            let ts: f64 = ts.parse().unwrap();
            out.push_str(&format!("{:.6}\t{rest}\n", ts - (day * 86_400) as f64));
        }
    }
    std::fs::write(&log, out).unwrap();
    let cfg = config(dir.path(), "10000d");
    let full_dir = tempfile::tempdir().unwrap();
    let full_cfg = config(full_dir.path(), "10000d");
    trawl_ok(&["-q", "scan", "--config", p(&full_cfg), "--record", p(&log)]);
    let full = hunt_json(&full_cfg, &["10.0.0.0/8"]);
    assert!(full.len() > 10);
    let mut killed_with_segments = 0;
    for delay_ms in [30u64, 60, 90, 120, 160, 200, 260, 330, 420, 550] {
        let _ = std::fs::remove_dir_all(dir.path().join("data/retro"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(["-q", "scan", "--config", p(&cfg), "--record", p(&log)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let retro = dir.path().join("data/retro");
        if retro.join(".lock").exists() || retro.is_dir() {
            let segs = std::fs::read_dir(&retro)
                .map(|d| {
                    d.filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|x| x == "seg")
                    })
                    .count()
                })
                .unwrap_or(0);
            if segs > 0 {
                killed_with_segments += 1;
            }
        }
        if !retro.is_dir() {
            continue;
        }
        let out = trawl(&[
            "hunt",
            "--config",
            p(&cfg),
            "--format",
            "json",
            "10.0.0.0/8",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !err.contains("set aside"), "{err}");
        // Nothing invented: every answer is within what the whole recording holds.
        for (k, (_, _, count, _)) in hunt_json(&cfg, &["10.0.0.0/8"]) {
            let f = full
                .get(&k)
                .unwrap_or_else(|| panic!("{k:?} not in the full recording"));
            assert!(count <= f.2, "{k:?}: {count} > {}", f.2);
        }
        // A hunt leaves a writer's temporary files alone; the next recorder removes them.
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, "").unwrap();
        trawl_ok(&["-q", "scan", "--config", p(&cfg), "--record", p(&empty)]);
        assert!(!std::fs::read_dir(&retro).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
    }
    eprintln!("kill -9 runs that had written segments: {killed_with_segments}");
}

/// What tshark says of a capture's DNS query names under `zone`: per name (lower-cased),
/// first and last time, packets, source addresses.
fn tshark_names(pcap: &Path, zone: &str) -> BTreeMap<String, Seen> {
    let out = std::process::Command::new("tshark")
        .args([
            "-r",
            p(pcap),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "ip.src",
        ])
        .args(["-e", "dns.qry.name", "-Y", "dns"])
        .output()
        .expect("tshark runs (Debian package tshark, `make deps`)");
    assert!(out.status.success());
    let mut names: BTreeMap<String, Seen> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (t, src, name) = (f[0], f[1], f[2].to_ascii_lowercase());
        if !(name == zone || name.ends_with(&format!(".{zone}"))) {
            continue;
        }
        let t = t.parse::<f64>().unwrap().floor() as i64;
        let e = names.entry(name).or_insert((t, t, 0, BTreeSet::new()));
        e.0 = e.0.min(t);
        e.1 = e.1.max(t);
        e.2 += 1;
        e.3.insert(src.to_string());
    }
    names
}

#[test]
fn replay_record_of_a_capture_then_hunt_agrees_with_tshark() {
    let Some(corpus) = corpus() else { return };
    // An iodine DNS tunnel: 164 packets, 80-odd distinct names under srv.tunnel.com.
    let pcap = corpus.join("pcaps/suricata-verify/dns_bug-1158/input.pcap");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "10000d");
    let out = trawl(&["replay", "--config", p(&cfg), "--record", p(&pcap)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("164 observations recorded, 0 rejected"),
        "{err}"
    );
    let want = tshark_names(&pcap, "srv.tunnel.com");
    assert!(want.len() > 50, "{}", want.len());
    let got = hunt_json(&cfg, &["srv.tunnel.com"]);
    let got_names: BTreeSet<&str> = got.keys().map(|(_, v)| v.as_str()).collect();
    let want_names: BTreeSet<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(got_names, want_names, "none missing, none extra");
    for ((_, name), (first, last, count, clients)) in &got {
        let w = &want[name];
        assert_eq!(
            (first.as_str(), last.as_str(), *count),
            (rfc3339(w.0).as_str(), rfc3339(w.1).as_str(), w.2),
            "{name}"
        );
        assert_eq!(clients.len(), w.3.len().min(2), "{name}: {clients:?}");
        assert!(clients.iter().all(|c| w.3.contains(c)), "{name}");
    }
}
