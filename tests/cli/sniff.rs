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
    let start = Instant::now();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(3) {
        let _ = sock.send_to(b"trawl privilege test", "127.0.0.1:9");
        seen = status_of(child.id());
        if seen.as_ref() == Some(&want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
