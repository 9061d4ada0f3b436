//! Least privilege: `trawl sniff --user` opens the capture as root, then runs as the named
//! user with no capability left, and keeps capturing (the tests run as root).

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .current_dir(root())
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .args(["sniff", "-i", "lo", "--user", "nobody", "--duration", "3"])
        .args(["--buffer", "8", "-d", p(data.path()), "-o", p(&out_file)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let captured: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("captured "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {err}"));
    assert!(captured >= 5, "{err}");
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
