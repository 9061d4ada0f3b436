//! The commands under bad input and careless use: absurd option values, outputs naming
//! inputs, files that shrink while read, corrupt captures, endless lines. Each case ends with
//! a clear message, the documented exit code, and nothing good lost.

use crate::common::*;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn absurd_option_values_are_refused_before_any_work() {
    let data = sample_snapshot();
    let d = p(data.path());
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.json");
    let o = p(&out_file);
    let log = "samples/logs/access.log";
    let pcap = "samples/pcaps/demo.pcap";
    // (arguments, what the message must name)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["replay", "--threads", "100000", "-d", d, "-o", o, pcap],
            "1..=256",
        ),
        (
            vec!["replay", "--threads", "0", "-d", d, "-o", o, pcap],
            "1..=256",
        ),
        (vec!["scan", "-c", "150", "-d", d, "-o", o, log], "0..=100"),
        (
            vec!["replay", "-c", "101", "-d", d, "-o", o, pcap],
            "0..=100",
        ),
        (
            vec!["scan", "-s", "extreme", "-d", d, "-o", o, log],
            "low medium high",
        ),
        (
            vec!["scan", "--format", "xml", "-d", d, "-o", o, log],
            "squid",
        ),
        (
            vec!["scan", "--suppress", "0s", "-d", d, "-o", o, log],
            "at least 1s",
        ),
        (
            vec!["scan", "--suppress", "5y", "-d", d, "-o", o, log],
            "s, m, h, d or w",
        ),
        (vec!["observe", "--format", "xml", log], "zeek-json"),
        (
            vec!["query", "--format", "xml", "-d", d, "1.2.3.4"],
            "table, json",
        ),
        (vec!["update", "--format", "xml", "-d", d], "text, json"),
        (
            vec!["export", "--format", "xml", "-d", d, "-o", o],
            "suricata",
        ),
        (
            vec!["export", "-f", "csv", "-c", "150", "-d", d, "-o", o],
            "0..=100",
        ),
        (
            vec!["export", "-f", "csv", "-t", "ipv5", "-d", d, "-o", o],
            "sha256",
        ),
        (
            vec!["export", "-f", "csv", "--tlp", "purple", "-d", d, "-o", o],
            "amber+strict",
        ),
        (
            vec!["export", "-f", "snort", "--sid-base", "0", "-d", d, "-o", o],
            "4284967295",
        ),
        (
            vec!["export", "-f", "csv", "--feed", "nosuch", "-d", d, "-o", o],
            "demo-drop",
        ),
        (
            vec!["sniff", "-i", "lo", "--snaplen", "0", "-d", d, "-o", o],
            "262144",
        ),
        (
            vec!["sniff", "-i", "lo", "--count", "0", "-d", d, "-o", o],
            "1..",
        ),
    ];
    for (args, names) in cases {
        let out = trawl(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: usage error expected\n{err}"
        );
        assert!(
            err.contains(names),
            "{args:?}: message must name {names:?}: {err}"
        );
        assert!(
            !out_file.exists(),
            "{args:?}: created its output before refusing"
        );
        assert!(out.stdout.is_empty(), "{args:?}: wrote output");
    }
}

#[test]
fn an_output_naming_an_input_is_refused_before_it_is_truncated() {
    let data = sample_snapshot();
    let d = p(data.path());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::copy(root().join("samples/logs/access.log"), &log).unwrap();
    let pcap = dir.path().join("demo.pcap");
    std::fs::copy(root().join("samples/pcaps/demo.pcap"), &pcap).unwrap();
    let want_log = std::fs::read(&log).unwrap();
    let want_pcap = std::fs::read(&pcap).unwrap();
    let sym = dir.path().join("sym");
    std::os::unix::fs::symlink(&log, &sym).unwrap();
    let hard = dir.path().join("hard");
    std::fs::hard_link(&pcap, &hard).unwrap();
    let current = std::fs::read_to_string(data.path().join("current")).unwrap();
    let snap_file = data
        .path()
        .join("snapshots")
        .join(current.trim())
        .join("records.bin");
    let want_snap = std::fs::read(&snap_file).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["scan", "-d", d, "-o", p(&log), p(&log)],
        vec![
            "scan",
            "-d",
            d,
            "-o",
            p(&sym),
            "samples/logs/query.log",
            p(&log),
        ],
        vec!["replay", "-d", d, "-o", p(&hard), p(&pcap)],
        vec!["replay", "-d", d, "-o", p(&pcap), p(&hard)],
        vec!["scan", "-d", d, "-o", p(&snap_file), p(&log)],
        vec!["export", "-f", "csv", "-d", d, "-o", p(&snap_file)],
        vec![
            "sniff",
            "-i",
            "lo",
            "--count",
            "1",
            "-d",
            d,
            "-o",
            p(&snap_file),
        ],
    ];
    for args in cases {
        let out = trawl(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("refusing to overwrite an input"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(&log).unwrap(), want_log, "{args:?}");
        assert_eq!(std::fs::read(&pcap).unwrap(), want_pcap, "{args:?}");
        assert_eq!(std::fs::read(&snap_file).unwrap(), want_snap, "{args:?}");
    }
    // A new file, or an existing one that is no input, is written as before.
    let fresh = dir.path().join("alerts.json");
    trawl_ok(&["-q", "scan", "-d", d, "-o", p(&fresh), p(&log)]);
    assert!(!std::fs::read(&fresh).unwrap().is_empty());
    trawl_ok(&["-q", "scan", "-d", d, "-o", p(&fresh), p(&log)]);
}

#[test]
fn query_answers_when_the_query_log_cannot_be_written() {
    let data = sample_snapshot();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"keep\n").unwrap();
    // A symlink planted as the query log is never followed, and the answer still comes.
    std::os::unix::fs::symlink(&victim, data.path().join("query.log")).unwrap();
    let out = trawl(&["query", "-d", p(data.path()), "45.142.212.9"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("45.142.212.9"));
    assert!(err.contains("not recorded in the query log"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour escapes written to a pipe: {err:?}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep\n");
    // A read-only data directory (effective unless the tests run as root).
    std::fs::remove_file(data.path().join("query.log")).unwrap();
    let mut perm = std::fs::metadata(data.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o555);
    std::fs::set_permissions(data.path(), perm.clone()).unwrap();
    let out = trawl(&["query", "-d", p(data.path()), "45.142.212.9"]);
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(data.path(), perm).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn raw_scan_reports_the_observed_text() {
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("free.txt");
    std::fs::write(
        &log,
        "beacon to Sub.WWW.Update-Checker.TOP now\nplain line\nfrom 45.142.212.9 again\n",
    )
    .unwrap();
    let alerts = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "--raw",
        "-d",
        p(data.path()),
        p(&log),
    ]));
    let matched: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let m = &a["trawl"]["matched"];
            (
                m["value"].as_str().unwrap().to_string(),
                m["indicator"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        matched.contains(&(
            "Sub.WWW.Update-Checker.TOP".into(),
            "update-checker.top".into()
        )),
        "{matched:?}"
    );
    assert!(
        matched.iter().any(|(v, _)| v == "45.142.212.9"),
        "{matched:?}"
    );
}

#[test]
fn errors_say_each_cause_once_and_exit_codes_are_documented() {
    let data = sample_snapshot();
    let out = trawl(&["replay", "-d", p(data.path()), "/nonexistent/x.pcap"]);
    let err = stderr(&out);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    let out = trawl(&["scan", "--config", "/nonexistent/trawl.toml", "x"]);
    let err = stderr(&out);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.matches("/nonexistent/trawl.toml").count(), 1, "{err}");
    assert_eq!(out.status.code(), Some(4), "{err}");
    let out = trawl(&["scan", "--data", "/nonexistent/data", "x.log"]);
    let err = stderr(&out);
    assert_eq!(err.matches("trawl update").count(), 1, "{err}");
    assert_eq!(out.status.code(), Some(4), "{err}");
    let out = trawl(&["scan", "--data", p(data.path()), "/nonexistent/x.log"]);
    let err = stderr(&out);
    assert_eq!(err.matches("/nonexistent/x.log").count(), 1, "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    let help = trawl_ok(&["--help"]);
    for code in [
        "0  success",
        "1  query",
        "2  usage",
        "3  partial",
        "4  error",
    ] {
        assert!(help.contains(code), "--help lacks {code:?}:\n{help}");
    }
}

/// (packet number, matched indicator) of the alerts on one capture.
fn packet_hits(alerts: &[serde_json::Value], capture: &str) -> Vec<(u64, String)> {
    alerts
        .iter()
        .filter(|a| a["trawl"]["capture"]["file"] == capture)
        .map(|a| {
            (
                a["trawl"]["capture"]["packet"].as_u64().unwrap(),
                a["trawl"]["matched"]["indicator"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn replay_reports_each_bad_capture_and_keeps_the_alerts_of_the_rest() {
    let data = sample_snapshot();
    let d = p(data.path());
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read(root().join("samples/pcaps/demo.pcap")).unwrap();
    let good = dir.path().join("good.pcap");
    std::fs::write(&good, &demo).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &demo[..demo.len() - 10]).unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let header = dir.path().join("header.pcap");
    std::fs::write(&header, &demo[..24]).unwrap();
    let clean = json_lines(&trawl_ok(&["-q", "replay", "-d", d, p(&good)]));
    let want_good = packet_hits(&clean, p(&good));
    assert!(!want_good.is_empty());
    // The bad files first: none of them stops the good one after them.
    let out = trawl(&[
        "-q",
        "replay",
        "-d",
        d,
        p(&empty),
        "/nonexistent/gone.pcap",
        p(&header),
        p(&good),
    ]);
    let mut err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let alerts = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        packet_hits(&alerts, p(&good)),
        want_good,
        "the good capture lost alerts"
    );
    // The cut capture keeps every alert of the packets before the cut.
    let out = trawl(&["-q", "replay", "-d", d, p(&cut)]);
    err.push_str(&stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{err}");
    let alerts = json_lines(&String::from_utf8(out.stdout).unwrap());
    let last = (demo.len() - 10) as u64;
    let got_cut = packet_hits(&alerts, p(&cut));
    let n_packets = {
        let mut n = 0;
        let mut off = 24usize;
        while off + 16 <= demo.len() {
            let incl = u32::from_le_bytes(demo[off + 8..off + 12].try_into().unwrap()) as usize;
            if (off + 16 + incl) as u64 > last {
                break;
            }
            off += 16 + incl;
            n += 1;
        }
        n
    };
    let want_cut: Vec<_> = want_good
        .iter()
        .filter(|(n, _)| *n <= n_packets)
        .cloned()
        .collect();
    assert_eq!(got_cut, want_cut);
    for (file, what) in [
        (p(&cut), format!("packet {} at byte offset", n_packets + 1)),
        (p(&empty), "empty file".to_string()),
        ("/nonexistent/gone.pcap", "No such file".to_string()),
        (p(&header), "no packets".to_string()),
    ] {
        assert!(
            err.lines().any(|l| l.contains(file) && l.contains(&what)),
            "{file}: {what} not reported:\n{err}"
        );
    }
    // `observe` too: each bad file reported, the good one read.
    let out = trawl(&["observe", p(&header), p(&cut), p(&good)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("header.pcap") && err.contains("cut.pcap"),
        "{err}"
    );
    let observed = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert!(observed
        .iter()
        .any(|o| o["trawl"]["capture"]["file"] == p(&good)));
}

/// A log truncated while `trawl scan` reads it (logrotate's copytruncate): the scan keeps
/// the alerts of what it read, says the file shrank, exits 3, and never dies of a signal
/// (it did: SIGBUS, reading a mapped file past its new end).
#[test]
fn scan_of_a_log_truncated_while_read_keeps_what_was_read() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    // 160 MiB: many blocks (the mapped scan of old: several 64 MiB rounds, alerts written
    // after each); a planted hit every 4000 lines.
    let planted = "from 45.142.212.9 seen\n";
    let filler = format!("{:<99}\n", "nothing to see here, just some filler text");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        let mut written = 0usize;
        let mut i = 0usize;
        while written < 160 << 20 {
            let line = if i % 4000 == 0 {
                planted
            } else {
                filler.as_str()
            };
            f.write_all(line.as_bytes()).unwrap();
            written += line.len();
            i += 1;
        }
    }
    let out_path = dir.path().join("alerts.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args([
            "-q",
            "scan",
            "--raw",
            "--summary-json",
            "-d",
            p(data.path()),
            "-o",
        ])
        .arg(&out_path)
        .arg(&log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first alerts are out, cut the file to 1 MiB under the reader.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let written = std::fs::metadata(&out_path).map_or(0, |m| m.len());
        if written > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be cut"
        );
        assert!(std::time::Instant::now() < deadline, "no output in 120 s");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.signal(), None, "killed by a signal: {err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("shrank") && err.contains("big.log"), "{err}");
    let alerts = json_lines(&std::fs::read_to_string(&out_path).unwrap());
    // Every planted hit before the point the scan reached, each once, none after.
    let reached: u64 = err
        .split_once("): the ")
        .and_then(|(_, rest)| rest.split_once(" bytes before were scanned"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no scanned byte count in {err}"));
    let line_len = filler.len() as u64;
    let mut want = Vec::new();
    let (mut off, mut i) = (0u64, 0u64);
    while off < reached {
        let planted_here = i % 4000 == 0;
        if planted_here {
            want.push(off);
        }
        off += if planted_here {
            planted.len() as u64
        } else {
            line_len
        };
        i += 1;
    }
    let got: Vec<u64> = alerts
        .iter()
        .map(|a| a["log"]["offset"].as_u64().unwrap())
        .collect();
    assert!(!got.is_empty());
    assert_eq!(got, want);
}

/// `scan -` caps a line as the daemon does: an endless line (`head -c 2G /dev/zero | trawl
/// scan -`) is cut to its first MiB, the rest skipped, and memory stays bounded; the lines
/// after it are scanned.
#[test]
fn scan_of_stdin_bounds_an_endless_line() {
    use std::io::Write;
    let data = sample_snapshot();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["scan", "--raw", "--summary-json", "-d", p(data.path()), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let block = vec![b'a'; 1 << 20];
    let total = 320u64 << 20;
    for _ in 0..(total >> 20) {
        stdin.write_all(&block).unwrap();
    }
    // Wait until the child has read it all, then ask how much memory it ever held.
    let rchar = || {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("rchar: "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while rchar() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "stdin not read in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    stdin.write_all(b"\nfrom 45.142.212.9 seen\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        hwm_kib < 128 << 10,
        "peak memory {hwm_kib} KiB after {total} bytes of one line"
    );
    let alerts = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(alerts.len(), 1, "the line after the endless one is scanned");
    assert_eq!(alerts[0]["log"]["offset"], total + 1);
    let summary: serde_json::Value =
        serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["lines_truncated"], 1);
    assert_eq!(summary["lines"], 2);
}

/// A capture truncated while `trawl replay` reads it: reported (`shrank`), exit 3, the
/// alerts of what was read are written, and no death by SIGBUS (the mapped reader of old).
#[test]
fn replay_of_a_capture_truncated_while_read_is_reported() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read(root().join("samples/pcaps/demo.pcap")).unwrap();
    let cap = dir.path().join("big.pcap");
    {
        // The demo's packets (hits among them) again and again: ~150 MB.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&cap).unwrap());
        f.write_all(&demo[..24]).unwrap();
        for _ in 0..100_000 {
            f.write_all(&demo[24..]).unwrap();
        }
    }
    let out_path = dir.path().join("alerts.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["-q", "replay", "--threads", "1", "-d", p(data.path()), "-o"])
        .arg(&out_path)
        .arg(&cap)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let rchar = || {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("rchar: "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    // Cut it to 1 MiB once the reader is well into it (a mapping reads without read(2):
    // then after half a second).
    let started = std::time::Instant::now();
    while rchar() < 16 << 20 && started.elapsed() < std::time::Duration::from_millis(500) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be cut"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cap)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.signal(), None, "killed by a signal: {err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("big.pcap") && err.contains("shrank"), "{err}");
    let alerts = json_lines(&std::fs::read_to_string(&out_path).unwrap());
    assert!(!alerts.is_empty(), "the alerts of what was read are kept");
}
