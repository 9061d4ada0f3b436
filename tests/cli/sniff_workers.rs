//! `trawl sniff --workers 2` on `lo`: two capture threads in one kernel fanout group, every
//! planted DNS query alerted once (not once per worker), with the summary adding both up.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    let child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .current_dir(root())
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .args(["sniff", "-i", "lo", "--workers", "2", "--duration", "3"])
        .args(["--bpf", "udp and dst port 53 and src host 127.0.0.1"])
        .args(["--no-promisc", "-d", p(data.path()), "-o", p(&out_file)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let captured: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("captured "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {err}"));
    assert!(captured >= 16, "{err}");
}
