//! `trawl run` with `[retro]`: lines recorded live, then an indicator published days after
//! the traffic it describes; the retro alert arrives once, with the observed times and
//! count, and never again after a restart or a later rise of the indicator's confidence.

use crate::daemon_support::{json_lines, p, trawl_ok, wait_for, Daemon};
use std::path::Path;
use std::time::Duration;

fn config(d: &Path, confidence: u8, feed: &str) {
    std::fs::write(d.join("bad.txt"), feed).unwrap();
    // Through a rename: a daemon starting as the test rewrites the config must never read
    // a half-written file (it did, under load: "no [[source]]").
    std::fs::write(
        d.join("trawl.toml.tmp"),
        format!(
            r#"[sensor]
data = "{data}"

[[feed]]
name = "bad"
source = "bad.txt"
format = "plain"
itype = "fqdn"
confidence = {confidence}

[[source]]
kind = "file"
paths = ["{logs}/access.log"]
format = "squid"

[[sink]]
kind = "jsonl"
path = "{alerts}"

[retro]
retention = "30d"
flush = "1s"
clients = 2
"#,
            data = p(&d.join("data")),
            logs = p(&d.join("logs")),
            alerts = p(&d.join("alerts.jsonl")),
        ),
    )
    .unwrap();
    std::fs::rename(d.join("trawl.toml.tmp"), d.join("trawl.toml")).unwrap();
}

fn retro_alerts(d: &Path) -> Vec<serde_json::Value> {
    json_lines(&d.join("alerts.jsonl"))
        .into_iter()
        .filter(|a| a["trawl"]["retro"] == true)
        .collect()
}

#[test]
fn an_indicator_published_later_alerts_once_on_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    config(d, 60, "bad.example\n");
    let cfg = d.join("trawl.toml");
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    // Three days ago, 01:00 UTC onwards: 40 requests to c2.late.example from two clients,
    // and noise.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = (now - 3 * 86_400).div_euclid(86_400) * 86_400 + 3600;
    let mut log = String::new();
    for n in 0..80i64 {
        let (host, client) = if n % 2 == 0 {
            (
                "c2.late.example",
                if n % 4 == 0 { "10.0.0.5" } else { "10.0.0.6" },
            )
        } else {
            ("www.good.example", "10.0.0.7")
        };
        log.push_str(&format!(
            "{}.000 10 {client} TCP_MISS/200 100 GET http://{host}/n/{n} - HIER_DIRECT/93.184.216.34 text/html\n",
            start + n * 10
        ));
    }
    std::fs::write(d.join("logs/access.log"), log).unwrap();

    let daemon = Daemon::start(&cfg);
    let retro_dir = d.join("data/retro");
    wait_for("the lines recorded", Duration::from_secs(30), || {
        std::fs::read_dir(&retro_dir).is_ok_and(|r| {
            r.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
    });
    assert!(retro_alerts(d).is_empty(), "nothing known yet");

    // The indicator is published: one retro alert, with what the index holds.
    config(d, 60, "bad.example\nlate.example\n");
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    wait_for("the retro alert", Duration::from_secs(30), || {
        !retro_alerts(d).is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let alerts = retro_alerts(d);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    let o = &a["trawl"]["observed"];
    assert_eq!(o["value"], "c2.late.example");
    assert_eq!(o["count"], 40);
    assert_eq!(a["threat"]["indicator"]["name"], "late.example");
    assert_eq!(a["trawl"]["matched"]["field"], "url.domain");
    let ts = |t: i64| ingest::observation::format_timestamp(t * 1_000_000_000);
    assert_eq!(a["event"]["start"], ts(start).as_str());
    assert_eq!(a["event"]["end"], ts(start + 78 * 10).as_str());
    let mut clients: Vec<&str> = o["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    clients.sort();
    assert_eq!(clients, ["10.0.0.5", "10.0.0.6"]);
    assert!(daemon.term().success());

    // A restart, then a rise in the indicator's confidence: checked again, not re-alerted.
    let daemon = Daemon::start(&cfg);
    config(d, 90, "bad.example\nlate.example\n");
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    wait_for("the new snapshot checked", Duration::from_secs(30), || {
        std::fs::read_to_string(retro_dir.join("checked")).is_ok_and(|v| v.trim() == "3")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.term().success());
    assert_eq!(retro_alerts(d).len(), 1, "alerted once across restarts");
    let log = Daemon::stderr(&cfg);
    assert!(!log.contains("set aside"), "{log}");
}

/// A tmpfs of `kib` KiB mounted on `dir` (root only), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u32) -> SmallDisk {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "this test needs root (make test runs as root): it mounts a small tmpfs"
        );
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k"),
                "tmpfs",
                p(dir),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs on {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_recording_with_a_warning_and_never_stops_alerting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    config(d, 60, "bad.example\n");
    let cfg = d.join("trawl.toml");
    trawl_ok(&["-q", "update", "--config", p(&cfg)]);
    // The index's directory is a 200 KiB disk; the alerts go to the ordinary one.
    let _disk = SmallDisk::mount(&d.join("data/retro"), 200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lines = |from: i64, n: i64| {
        let mut log = String::new();
        for i in from..from + n {
            // 20,000 distinct long URLs: megabytes of index, far more than the disk holds.
            let host = if i % 1000 == 0 {
                "c2.bad.example"
            } else {
                "www.good.example"
            };
            let tail = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            log.push_str(&format!(
                "{}.000 10 10.0.0.5 TCP_MISS/200 100 GET http://{host}/{i}/{tail:016x}{:016x} - HIER_DIRECT/93.184.216.34 text/html\n",
                now - 600 + i / 100,
                tail.rotate_left(17)
            ));
        }
        log
    };
    std::fs::write(d.join("logs/access.log"), lines(0, 20_000)).unwrap();
    let daemon = Daemon::start(&cfg);
    let live = || {
        json_lines(&d.join("alerts.jsonl"))
            .into_iter()
            .filter(|a| a["trawl"]["retro"] != true)
            .count()
    };
    wait_for("the first alerts", Duration::from_secs(60), || live() == 20);
    wait_for(
        "the recording failure said",
        Duration::from_secs(30),
        || Daemon::stderr(&cfg).contains("recording failed"),
    );
    // The disk is still full; new lines still alert.
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("logs/access.log"))
        .unwrap();
    std::io::Write::write_all(&mut more, lines(20_000, 5_000).as_bytes()).unwrap();
    wait_for(
        "the alerts after the failure",
        Duration::from_secs(60),
        || live() == 25,
    );
    assert!(daemon.term().success());
    let log = Daemon::stderr(&cfg);
    assert!(log.contains("No space left on device"), "{log}");
    // Nothing half-written left on the full disk.
    assert!(!std::fs::read_dir(d.join("data/retro")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}
