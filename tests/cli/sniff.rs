//! `trawl sniff` on `lo`, the real binary: least privilege (`--user` opens the capture as
//! root, then runs as the named user with no capability left, and keeps capturing; the tests
//! run as root) and `--workers` (two capture threads in one kernel fanout group, every
//! planted DNS query alerted once, not once per worker).

use crate::common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `trawl sniff` with `args`, from the repository root, its stderr piped.
fn spawn_sniff(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .current_dir(root())
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .arg("sniff")
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The packet count of sniff's closing summary ("captured N packets on IFACE: ...").
fn captured(err: &str) -> u64 {
    err.lines()
        .find_map(|l| l.strip_prefix("captured "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {err}"))
}

/// The `Uid:` / `Gid:` / `CapEff:` lines of a running process.
fn status_of(pid: u32) -> Option<(String, String, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    Some((field("Uid:")?, field("Gid:")?, field("CapEff:")?))
}

fn id(flag: &str) -> String {
    let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn sniff_drops_to_the_named_user_after_opening_the_capture() {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (make test runs as root): it checks the drop from root");
    }
    let data = sample_snapshot();
    let out_file = data.path().join("alerts.jsonl");
    let child = spawn_sniff(&[
        "-i",
        "lo",
        "--user",
        "nobody",
        "--duration",
        "3",
        "--buffer",
        "8",
        "--queue-batches",
        "2",
        "-d",
        p(data.path()),
        "-o",
        p(&out_file),
    ]);
    let (uid, gid) = (id("-u"), id("-g"));
    let want = (
        format!("{uid} {uid} {uid} {uid}"),
        format!("{gid} {gid} {gid} {gid}"),
        "0000000000000000".to_string(),
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let seen = status_until(child.id(), &want, || {
        let _ = sock.send_to(b"trawl privilege test", "127.0.0.1:9");
    });
    assert_eq!(
        seen,
        Some(want),
        "uid, gid and effective capabilities after start"
    );
    // Still capturing as nobody.
    for _ in 0..5 {
        let _ = sock.send_to(b"trawl privilege test", "127.0.0.1:9");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(captured(&err) >= 5, "{err}");
    // The summary counts the capture → decoder queue's drops beside the kernel's.
    assert!(err.contains("by trawl (decoder queue full)"), "{err}");
    assert!(err.contains("\"queue_dropped\":0"), "{err}");
    assert!(out_file.exists());
}

#[test]
fn sniff_with_an_unknown_user_says_how_to_create_it() {
    let data = sample_snapshot();
    let out = trawl(&[
        "sniff",
        "-i",
        "lo",
        "--user",
        "no-such-user-trawl",
        "--count",
        "1",
        "-d",
        p(data.path()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no user \"no-such-user-trawl\"") && err.contains("useradd"),
        "{err}"
    );
}

/// A DNS query for `name` (type A).
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[test]
fn sniff_workers_alert_each_planted_query_once() {
    let data = sample_snapshot();
    let out_file = data.path().join("alerts.jsonl");
    let child = spawn_sniff(&[
        "-i",
        "lo",
        "--workers",
        "2",
        "--duration",
        "3",
        "--bpf",
        "udp and dst port 53 and src host 127.0.0.1",
        "--no-promisc",
        "-d",
        p(data.path()),
        "-o",
        p(&out_file),
    ]);
    std::thread::sleep(Duration::from_millis(1200));
    // 16 queries from 16 sockets: 16 flows, spread over the workers by the kernel.
    for i in 0..16u16 {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let q = dns_query(0x7000 + i, &format!("w{i}.update-checker.top"));
        sock.send_to(&q, "127.0.0.1:53").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let alerts = std::fs::read_to_string(&out_file).unwrap();
    let mut names: Vec<String> = json_lines(&alerts)
        .iter()
        .filter(|a| a["trawl"]["matched"]["field"] == "dns.question.name")
        .map(|a| a["dns"]["question"]["name"].as_str().unwrap().to_string())
        // Other tests may query 127.0.0.1:53 meanwhile: only this test's names.
        .filter(|n| n.starts_with('w') && n.ends_with(".update-checker.top"))
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..16)
        .map(|i| format!("w{i}.update-checker.top"))
        .collect();
    want.sort();
    assert_eq!(names, want, "{err}");
    assert!(captured(&err) >= 16, "{err}");
}

/// The `/proc` status fields (uid, gid, effective capabilities) of a running sniff, polled
/// while `poke` runs, until they equal `want` or three seconds pass (`None`: never trawl).
fn status_until(
    pid: u32,
    want: &(String, String, String),
    poke: impl Fn(),
) -> Option<(String, String, String)> {
    let start = Instant::now();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(3) {
        poke();
        // Only trawl's own status counts (not a launcher's before it execs trawl).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "trawl" {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        seen = status_of(pid);
        if seen.as_ref() == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

/// Root without --user keeps its uid but no capability once the capture is open; a non-root
/// user given CAP_NET_RAW as an ambient capability (systemd's AmbientCapabilities, here
/// setpriv) captures, then holds no capability either.
#[test]
fn sniff_gives_up_every_capability_once_the_capture_is_open() {
    let data = sample_snapshot();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let poke = || {
        let _ = sock.send_to(b"trawl capability test", "127.0.0.1:9");
    };
    let no_caps = "0000000000000000".to_string();
    // As root.
    let child = spawn_sniff(&[
        "-i",
        "lo",
        "--duration",
        "2",
        "-d",
        p(data.path()),
        "-o",
        "/dev/null",
    ]);
    let want = (
        "0 0 0 0".to_string(),
        "0 0 0 0".to_string(),
        no_caps.clone(),
    );
    assert_eq!(status_until(child.id(), &want, poke), Some(want));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As nobody with CAP_NET_RAW ambient.
    let (uid, gid) = (id("-u"), id("-g"));
    let child = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
        ])
        .args(["--inh-caps=+net_raw", "--ambient-caps=+net_raw"])
        .arg(env!("CARGO_BIN_EXE_trawl"))
        .args([
            "sniff",
            "-i",
            "lo",
            "--duration",
            "2",
            "-d",
            p(data.path()),
            "-o",
            "/dev/null",
        ])
        .current_dir(root())
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let want = (
        format!("{uid} {uid} {uid} {uid}"),
        format!("{gid} {gid} {gid} {gid}"),
        no_caps,
    );
    assert_eq!(status_until(child.id(), &want, poke), Some(want));
    for _ in 0..5 {
        poke();
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(captured(&err) >= 5, "{err}");
}
