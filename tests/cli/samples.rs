//! End-to-end tests of the real binary on samples/: every planted hit is reported exactly once,
//! nothing else is, and the full alert documents match golden files.

use crate::common::*;
use std::collections::BTreeSet;

/// (file, log.offset, matched field, indicator, match kind) of every alert.
fn alert_keys(alerts: &[serde_json::Value]) -> BTreeSet<(String, u64, String, String, String)> {
    alerts
        .iter()
        .map(|a| {
            let place = a["log"]["file"]["path"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    a["trawl"]["capture"]["file"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                });
            let offset = a["log"]["offset"]
                .as_u64()
                .or_else(|| a["trawl"]["capture"]["packet"].as_u64())
                .expect("offset or packet number");
            (
                place,
                offset,
                a["trawl"]["matched"]["field"].as_str().unwrap().to_string(),
                a["trawl"]["matched"]["indicator"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                a["trawl"]["matched"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The alerts as JSON lines with the update-time fields (first/last seen: when `trawl update`
/// ran) masked, so the golden file pins everything else byte for byte.
fn masked(alerts: &[serde_json::Value]) -> String {
    let mut out = String::new();
    for a in alerts {
        let mut a = a.clone();
        for k in ["first_seen", "last_seen"] {
            if a["threat"]["indicator"].get(k).is_some() {
                a["threat"]["indicator"][k] = "<update time>".into();
            }
        }
        out.push_str(&serde_json::to_string(&a).unwrap());
        out.push('\n');
    }
    out
}

fn key(
    f: &str,
    off: u64,
    field: &str,
    ind: &str,
    kind: &str,
) -> (String, u64, String, String, String) {
    (f.into(), off, field.into(), ind.into(), kind.into())
}

#[test]
fn scan_reports_exactly_the_planted_log_hits() {
    let data = sample_snapshot();
    let out = trawl_ok(&[
        "-q",
        "scan",
        "--data",
        p(data.path()),
        "--sensor-name",
        "test-sensor",
        "samples/logs/access.log",
        "samples/logs/query.log",
        "samples/logs/eve.json",
    ]);
    let alerts = json_lines(&out);
    let got = alert_keys(&alerts);
    let a = "samples/logs/access.log";
    let q = "samples/logs/query.log";
    let e = "samples/logs/eve.json";
    // Written by hand from samples/ (byte offsets of the lines: `grep -bn '' FILE`).
    let want: BTreeSet<_> = [
        key(a, 0, "url.domain", "update-checker.top", "parent-domain"),
        key(
            a,
            251,
            "url.full",
            "http://secure-login-paypa1.com/verify/account.php?id=7",
            "exact",
        ),
        key(a, 251, "url.domain", "secure-login-paypa1.com", "exact"),
        key(
            a,
            397,
            "url.full",
            "https://docs-share.info/invoice/",
            "url-prefix",
        ),
        key(a, 397, "url.domain", "docs-share.info", "exact"),
        key(a, 539, "url.domain", "cdn-telemetry.xyz", "exact"),
        key(a, 772, "url.full", "/gate.php", "substring"),
        key(
            a,
            896,
            "destination.ip",
            "45.142.212.0/24",
            "enclosing-cidr",
        ),
        key(a, 1082, "url.domain", "mail.evil-relay.org", "exact"),
        key(a, 1442, "url.domain", "185.220.100.0/22", "enclosing-cidr"),
        key(
            q,
            0,
            "dns.question.name",
            "bad-tracker.net",
            "parent-domain",
        ),
        key(
            q,
            318,
            "dns.question.name",
            "update-checker.top",
            "parent-domain",
        ),
        key(
            e,
            0,
            "tls.client.server_name",
            "cdn-telemetry.xyz",
            "parent-domain",
        ),
        key(
            e,
            281,
            "file.hash.md5",
            "d41d8cd98f00b204e9800998ecf8427e",
            "exact",
        ),
        key(
            e,
            281,
            "file.hash.sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "exact",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "alerts differ from the planted hits");
    assert_eq!(
        alerts.len(),
        want.len(),
        "one alert per (observation, indicator)"
    );
    // Nothing on the look-alikes and the allowlisted entries.
    for a in &alerts {
        let orig = a["event"]["original"].as_str().unwrap();
        assert!(
            !orig.contains("notevil.com"),
            "notevil.com must not match evil.com"
        );
        assert!(!orig.contains("evil.community"));
        assert!(
            !orig.contains("intranet.evil.com"),
            "allowlisted name alerted"
        );
        assert!(
            !orig.contains("185.220.101.17"),
            "allowlisted /24 inside a DROP /22 alerted"
        );
        assert_eq!(a["event"]["kind"], "alert");
        assert_eq!(a["observer"]["name"], "test-sensor");
    }
    // Enrichment: the indicator's confidence, severity, tags and sources.
    let c2 = alerts
        .iter()
        .find(|a| a["trawl"]["matched"]["indicator"] == "update-checker.top")
        .unwrap();
    assert_eq!(c2["trawl"]["confidence"], 90);
    assert_eq!(c2["trawl"]["severity"], "high");
    assert_eq!(c2["trawl"]["tags"], serde_json::json!(["c2", "malware"]));
    assert_eq!(
        c2["trawl"]["sources"],
        serde_json::json!(["demo-c2-domains"])
    );
    assert_eq!(c2["threat"]["indicator"]["type"], "domain-name");
    assert_eq!(c2["threat"]["indicator"]["confidence"], "High");
    assert_eq!(c2["threat"]["indicator"]["marking"]["tlp"], "GREEN");
    assert_eq!(c2["threat"]["feed"]["name"], "demo-c2-domains");
    assert_eq!(c2["@timestamp"], "2025-11-28T06:00:00.101Z");
    let derived = alerts
        .iter()
        .find(|a| a["trawl"]["matched"]["indicator"] == "docs-share.info")
        .unwrap();
    assert_eq!(derived["trawl"]["derived"], true);
    assert_eq!(derived["trawl"]["confidence"], 40, "derived domain at c/2");
    golden("scan-samples.jsonl", &masked(&alerts));
}

#[test]
fn replay_reports_exactly_the_planted_packet_hits() {
    let data = sample_snapshot();
    let out = trawl_ok(&[
        "-q",
        "replay",
        "--data",
        p(data.path()),
        "--sensor-name",
        "test-sensor",
        "samples/pcaps/demo.pcap",
    ]);
    let alerts = json_lines(&out);
    let got = alert_keys(&alerts);
    let f = "samples/pcaps/demo.pcap";
    // Packet numbers as `tshark -r samples/pcaps/demo.pcap` lists them.
    let want: BTreeSet<_> = [
        key(
            f,
            1,
            "dns.question.name",
            "update-checker.top",
            "parent-domain",
        ),
        key(
            f,
            2,
            "dns.question.name",
            "update-checker.top",
            "parent-domain",
        ),
        key(
            f,
            2,
            "dns.answers.data",
            "45.142.212.0/24",
            "enclosing-cidr",
        ),
        key(
            f,
            6,
            "url.full",
            "http://secure-login-paypa1.com/verify/account.php?id=7",
            "exact",
        ),
        key(f, 6, "url.domain", "secure-login-paypa1.com", "exact"),
        key(f, 10, "tls.client.server_name", "docs-share.info", "exact"),
        // IP hits once per flow and direction: the SYN and the SYN-ACK, not the ACK.
        key(
            f,
            11,
            "destination.ip",
            "185.220.100.0/22",
            "enclosing-cidr",
        ),
        key(f, 12, "source.ip", "185.220.100.0/22", "enclosing-cidr"),
        key(f, 14, "dns.question.name", "mail.evil-relay.org", "exact"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_eq!(alerts.len(), want.len());
    for a in &alerts {
        assert!(a["network"]["community_id"]
            .as_str()
            .unwrap()
            .starts_with("1:"));
        assert!(a["source"]["ip"].is_string() && a["destination"]["ip"].is_string());
    }
    golden("replay-samples.jsonl", &masked(&alerts));
}

#[test]
fn replay_with_one_or_two_workers_is_identical() {
    let data = sample_snapshot();
    let one = trawl_ok(&[
        "-q",
        "replay",
        "--threads",
        "1",
        "--data",
        p(data.path()),
        "samples/pcaps/demo.pcap",
    ]);
    let two = trawl_ok(&[
        "-q",
        "replay",
        "--threads",
        "2",
        "--data",
        p(data.path()),
        "samples/pcaps/demo.pcap",
    ]);
    assert_eq!(one, two);
}

#[test]
fn scan_reads_stdin_and_gzip_like_files() {
    use std::io::Write;
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("access.log.gz");
    let plain = std::fs::read(root().join("samples/logs/access.log")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();
    let from_gz = json_lines(&trawl_ok(&["-q", "scan", "--data", p(data.path()), p(&gz)]));
    let from_plain = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "--data",
        p(data.path()),
        "samples/logs/access.log",
    ]));
    assert_eq!(from_gz.len(), from_plain.len());
    for (a, b) in from_gz.iter().zip(&from_plain) {
        assert_eq!(
            a["log"]["offset"], b["log"]["offset"],
            "offsets are of the decompressed stream"
        );
        assert_eq!(a["trawl"]["matched"], b["trawl"]["matched"]);
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["-q", "scan", "--data", p(data.path()), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&plain).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_stdin.len(), from_plain.len());
    assert_eq!(from_stdin[0]["log"]["file"]["path"], "-");
}

#[test]
fn filters_by_confidence_and_severity() {
    let data = sample_snapshot();
    let all = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "--data",
        p(data.path()),
        "samples/logs/access.log",
    ]));
    let high = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "-c",
        "85",
        "-s",
        "high",
        "--data",
        p(data.path()),
        "samples/logs/access.log",
    ]));
    assert!(high.len() < all.len());
    let expected = all
        .iter()
        .filter(|a| {
            a["trawl"]["confidence"].as_u64().unwrap() >= 85 && a["trawl"]["severity"] == "high"
        })
        .count();
    assert_eq!(high.len(), expected);
}

#[test]
fn invalid_utf8_lines_keep_their_bytes() {
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad.log");
    let mut line = b"1764309600.101    145 10.0.0.5 TCP_MISS/200 5120 GET http://www.update-checker.top/\xff\xfe - HIER_DIRECT/93.184.216.34 text/html\n".to_vec();
    line.extend_from_slice(b"\x00\x01garbage\xff\n");
    std::fs::write(&log, &line).unwrap();
    let out = trawl(&[
        "scan",
        "--format",
        "squid",
        "--data",
        p(data.path()),
        p(&log),
    ]);
    assert!(out.status.success());
    let alerts = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(alerts.len(), 1);
    let b64 = alerts[0]["trawl"]["original_base64"]
        .as_str()
        .expect("lossless bytes");
    assert!(b64.starts_with("MTc2NDMwOTYwMC4xMDEg"), "{b64}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 unparseable"), "{stderr}");
}

#[test]
fn strict_makes_unparseable_lines_an_error() {
    let data = sample_snapshot();
    let out = trawl(&[
        "scan",
        "--strict",
        "--data",
        p(data.path()),
        "samples/logs/access.log",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--strict"));
}

#[test]
fn query_json_has_the_contract_keys() {
    let data = sample_snapshot();
    let out = trawl_ok(&[
        "query",
        "--format",
        "json",
        "--data",
        p(data.path()),
        "a.b.bad-tracker.net",
        "45.142.212.77",
        "notevil.com",
    ]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for key in [
        "value",
        "itype",
        "confidence",
        "severity",
        "tags",
        "sources",
        "tlp",
        "matched",
        "groups",
    ] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "missing {key}");
    }
    // samples/trawl.toml names no group: everything is `everyone`'s.
    assert!(rows
        .iter()
        .all(|r| r["groups"] == serde_json::json!(["everyone"])));
    assert_eq!(rows[0]["value"], "bad-tracker.net");
    assert_eq!(rows[0]["matched"], "parent-domain");
    assert_eq!(rows[1]["value"], "45.142.212.0/24");
    assert_eq!(rows[1]["matched"], "enclosing-cidr");
    // Queries are logged unless -n.
    let log = std::fs::read_to_string(data.path().join("query.log")).unwrap();
    assert!(log.contains("a.b.bad-tracker.net"));
    let before = log.len();
    trawl_ok(&["query", "-n", "--data", p(data.path()), "evil.com"]);
    assert_eq!(
        std::fs::read_to_string(data.path().join("query.log"))
            .unwrap()
            .len(),
        before
    );
}

#[test]
fn query_shows_allowlisted_entries_marked() {
    let data = sample_snapshot();
    let out = trawl_ok(&["query", "-n", "--data", p(data.path()), "intranet.evil.com"]);
    assert!(out.contains("ALLOWLIST ENTRY"), "{out}");
    let missing = trawl(&["query", "-n", "--data", p(data.path()), "www.wikipedia.org"]);
    assert_eq!(missing.status.code(), Some(1), "no hit exits 1 like grep");
}

#[test]
fn missing_snapshot_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = trawl(&["scan", "--data", p(dir.path()), "samples/logs/access.log"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trawl update"));
}

#[test]
fn demo_runs_the_whole_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = trawl_ok(&["-q", "demo", "--workdir", p(dir.path())]);
    assert!(
        out.contains("15 alerts from logs, 9 from captures"),
        "{out}"
    );
    for f in [
        "trawl.rules",
        "iptables.rules",
        "trawl.nft",
        "intel.dat",
        "rpz.zone",
        "indicators.html",
    ] {
        let len = std::fs::metadata(dir.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{f} missing or empty");
    }
}

#[test]
fn suppress_folds_repeats_by_event_time_without_dropping_them() {
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut text = String::new();
    for t in [0, 1, 2, 3, 4, 200] {
        text.push_str(&format!(
            "{}.000     10 10.0.0.5 TCP_MISS/200 100 GET http://www.update-checker.top/t{t} - HIER_DIRECT/93.184.216.34 text/html\n",
            1764309600 + t
        ));
    }
    std::fs::write(&log, text).unwrap();
    let all = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "--data",
        p(data.path()),
        p(&log),
    ]));
    assert_eq!(all.len(), 6, "without --suppress every hit is reported");
    let folded = json_lines(&trawl_ok(&[
        "-q",
        "scan",
        "--suppress",
        "60s",
        "--data",
        p(data.path()),
        p(&log),
    ]));
    let urls: Vec<&str> = folded
        .iter()
        .map(|a| a["url"]["full"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "http://www.update-checker.top/t0",
            "http://www.update-checker.top/t4",
            "http://www.update-checker.top/t200"
        ]
    );
    assert!(folded[0]["trawl"].get("repeat_count").is_none());
    assert_eq!(
        folded[1]["trawl"]["repeat_count"], 4,
        "t1..t4 folded into the window's last"
    );
    assert!(folded[2]["trawl"].get("repeat_count").is_none());
}

/// A Squid log of every shape the pre-screen meets, around the samples' indicators: exact and
/// parent domains in any case, with a trailing dot, CONNECT authorities, URL exact and prefix
/// hits, URL hosts that are addresses, addresses in DROP ranges (client and server side),
/// allowlisted ones, IPv6, a path that is not UTF-8, near misses (`notevil.com`), and plain
/// traffic between them.
fn screen_shapes_log() -> Vec<u8> {
    let hosts = [
        "www.update-checker.top",
        "UPDATE-CHECKER.TOP",
        "cdn-telemetry.xyz.",
        "a.b.bad-tracker.net",
        "mail.evil-relay.org",
        "intranet.evil.com",
        "evil.com",
        "notevil.com",
        "evil.com.example",
        "secure-login-paypa1.com",
        "docs-share.info",
        "45.142.212.9",
        "185.220.101.7",
        "ok.example",
        "cdn.ok.example",
    ];
    let paths = [
        "/",
        "/verify/account.php?id=7",
        "/invoice/",
        "/invoice/2026.pdf",
        "/gate.php",
        "/x/\u{e9}t\u{e9}",
        "/",
    ];
    let ips = [
        "10.0.0.5",
        "45.142.212.77",
        "185.220.100.3",
        "185.220.101.3",
        "2a0e:1c80::5",
        "2001:db8::1",
        "93.184.216.34",
    ];
    let mut out = Vec::new();
    let mut n = 0u64;
    for (i, h) in hosts.iter().enumerate() {
        for (j, p) in paths.iter().enumerate() {
            for (k, ip) in ips.iter().enumerate() {
                n += 1;
                let scheme = if (i + j) % 3 == 0 { "https" } else { "http" };
                let (method, target) = if (i + j + k) % 11 == 0 {
                    ("CONNECT", format!("{h}:443"))
                } else {
                    ("GET", format!("{scheme}://{h}{p}"))
                };
                let server = ips[(k + j) % ips.len()];
                out.extend_from_slice(
                    format!(
                        "1764309600.{n:03} 12 {ip} TCP_MISS/200 100 {method} {target} - HIER_DIRECT/{server} text/html\n"
                    )
                    .as_bytes(),
                );
            }
        }
    }
    // A path byte that is not UTF-8 after a listed host, and one after a plain host.
    out.extend_from_slice(b"1764309700.000 1 10.0.0.9 TCP_MISS/200 1 GET http://docs-share.info/invoice/\xff - HIER_DIRECT/93.184.216.34 -\n");
    out.extend_from_slice(b"1764309700.001 1 10.0.0.9 TCP_MISS/200 1 GET http://ok.example/\xff - HIER_DIRECT/93.184.216.34 -\n");
    out
}

/// The shapes of [`screen_shapes_log`] as Apache/nginx combined lines (origin-form paths and
/// absolute URLs, user agents that do and do not name a pattern, odd request lines).
fn combined_shapes_log() -> Vec<u8> {
    let agents = [
        "Mozilla/5.0",
        "-",
        "",
        "bot (+http://x.example/gate.php)",
        "curl/8.0",
    ];
    let mut out = Vec::new();
    let squid = screen_shapes_log();
    for (n, line) in squid.split(|&b| b == b'\n').enumerate() {
        let f: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        if f.len() < 7 {
            continue;
        }
        let (client, method, target) = (f[2], f[5], f[6]);
        let path_form = target
            .iter()
            .position(|&b| b == b'/')
            .filter(|&i| n % 3 == 0 && target.get(i + 1) == Some(&b'/'))
            .and_then(|i| {
                target[i + 2..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map(|j| &target[i + 2 + j..])
            });
        out.extend_from_slice(client);
        out.extend_from_slice(b" - - [04/Jan/2020:07:25:02 +0000] \"");
        out.extend_from_slice(method);
        out.push(b' ');
        out.extend_from_slice(path_form.unwrap_or(target));
        out.extend_from_slice(b" HTTP/1.1\" 200 512 \"-\" \"");
        out.extend_from_slice(agents[n % agents.len()].as_bytes());
        out.extend_from_slice(b"\"\n");
    }
    out.extend_from_slice(b"10.0.0.9 - - [04/Jan/2020:07:25:02 +0000] \"-\" 400 0 \"-\" \"-\"\n");
    out.extend_from_slice(b"www.example.org 10.0.0.9 - - [04/Jan/2020:07:25:02 +0000] \"GET /gate.php HTTP/1.1\" 200 1 \"-\" \"-\"\n");
    out
}

/// The hosts and addresses of [`screen_shapes_log`] as Zeek TSV: a dns.log (queries in any
/// case, with a trailing dot or a `\x` escape; answers that are addresses, names, TXT text,
/// `(empty)` or unset; PTR and CNAME query types), a conn.log, an http.log (host and
/// origin-form URI, absolute URIs, CONNECT authorities, user agents) and an ssl.log (SNI,
/// SHA-256 and SHA-1 certificate fingerprints), each with its header.
fn zeek_shapes_logs() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let squid = screen_shapes_log();
    let head = |path: &str, fields: &str, types: &str| {
        format!(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#fields\t{fields}\n#types\t{types}\n"
        )
        .into_bytes()
    };
    let mut dns = head(
        "dns",
        "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tqtype_name\trcode_name\tanswers\tTTLs",
        "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tstring\tstring\tvector[string]\tvector[interval]",
    );
    let mut http = head(
        "http",
        "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\tstatus_code",
        "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tcount",
    );
    let mut ssl = head(
        "ssl",
        "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tserver_name\testablished\tcert_chain_fps",
        "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tbool\tvector[string]",
    );
    let mut conn = head(
        "conn",
        "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration",
        "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval",
    );
    for (n, line) in squid.split(|&b| b == b'\n').enumerate() {
        let f: Vec<String> = String::from_utf8_lossy(line)
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        if f.len() < 9 {
            continue;
        }
        let (client, target) = (&f[2], &f[6]);
        let server = f[8].rsplit('/').next().unwrap_or("-");
        let host = target
            .split("://")
            .nth(1)
            .unwrap_or(target)
            .split(['/', ':'])
            .next()
            .unwrap_or("-");
        let query = match n % 7 {
            0 => host.to_ascii_uppercase(),
            1 => format!("{host}."),
            2 => host.replacen('.', "\\x2e", 1),
            _ => host.to_string(),
        };
        let (qtype, answers) = match n % 9 {
            0 => ("A", server.to_string()),
            1 => ("A", format!("cdn.ok.example,{server}")),
            2 => ("CNAME", "mail.evil-relay.org".to_string()),
            3 => ("TXT", "TXT 12 v=spf1 -all".to_string()),
            4 => ("A", "(empty)".to_string()),
            5 => ("-", "-".to_string()),
            6 => ("PTR", "Intranet.Evil.com.".to_string()),
            7 => ("AAAA", "2a0e:1c80::5,cdn-telemetry.xyz".to_string()),
            _ => ("A", format!("{server},{client}")),
        };
        dns.extend_from_slice(
            format!(
                "1764309600.{n:06}\tC{n}\t{client}\t5353\t{server}\t53\tudp\t{query}\t{qtype}\tNOERROR\t{answers}\t60.0\n"
            )
            .as_bytes(),
        );
        // The request as Zeek logs it: `host` and an origin-form `uri`, an absolute `uri`
        // (proxy requests, sometimes without `host`), or a CONNECT authority.
        let method = &f[5];
        let (host_col, uri_col) = match (target.split_once("://"), n % 4) {
            (Some((_, rest)), 0) => ("-".to_string(), format!("http://{rest}")),
            (Some(_), 1) => (host.to_string(), target.to_string()),
            (Some((_, rest)), _) => {
                let (h, path) = rest.split_once('/').unwrap_or((rest, ""));
                (h.to_string(), format!("/{path}"))
            }
            (None, _) => (target.to_string(), target.to_string()),
        };
        let agent = [
            "Mozilla/5.0",
            "-",
            "bot (+http://x.example/gate.php)",
            "curl/8.0",
        ][n % 4];
        http.extend_from_slice(
            format!(
                "1764309600.{n:06}\tC{n}\t{client}\t40000\t{server}\t80\t{method}\t{host_col}\t{uri_col}\t{agent}\t200\n"
            )
            .as_bytes(),
        );
        let fps = [
            "3f2a0c5e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29,0c5e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2913",
            "-",
            "0C:5E:9B:8D:7A:6F:5E:4D:3C:2B:1A:0F:9E:8D:7C:6B:5A:4F:3E:2D",
        ][n % 3];
        ssl.extend_from_slice(
            format!(
                "1764309600.{n:06}\tC{n}\t{client}\t40000\t{server}\t443\tTLSv13\t{query}\tT\t{fps}\n"
            )
            .as_bytes(),
        );
        let service = ["http", "ssl", "-", "dns"][n % 4];
        conn.extend_from_slice(
            format!(
                "1764309600.{n:06}\tC{n}\t{client}\t40000\t{server}\t443\ttcp\t{service}\t1.5\n"
            )
            .as_bytes(),
        );
    }
    (dns, conn, http, ssl)
}

#[test]
fn the_prefilter_changes_nothing_but_speed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("shapes.log");
    std::fs::write(&log, screen_shapes_log()).expect("write log");
    let combined = tmp.path().join("combined.log");
    std::fs::write(&combined, combined_shapes_log()).expect("write log");
    let (zeek_dns, zeek_conn, zeek_http, zeek_ssl) = zeek_shapes_logs();
    let zeek_ssl_log = tmp.path().join("ssl.log");
    std::fs::write(&zeek_ssl_log, zeek_ssl).expect("write log");
    let zeek_http_log = tmp.path().join("http.log");
    std::fs::write(&zeek_http_log, zeek_http).expect("write log");
    let zeek_dns_log = tmp.path().join("dns.log");
    std::fs::write(&zeek_dns_log, zeek_dns).expect("write log");
    let zeek_conn_log = tmp.path().join("conn.log");
    std::fs::write(&zeek_conn_log, zeek_conn).expect("write log");
    // The samples' snapshot has a pattern feed (every URL takes the full path); one without
    // it lets plain http(s) hosts take the one-probe path.
    let full = sample_snapshot();
    let config = std::fs::read_to_string(root().join("samples/trawl.toml")).expect("config");
    let feeds = root().join("samples/feeds");
    let no_patterns: String = config
        .split("[[feed]]")
        .filter(|block| !block.contains("itype = \"pattern\""))
        .collect::<Vec<_>>()
        .join("[[feed]]")
        .replace(
            "source = \"feeds/",
            &format!("source = \"{}/", feeds.display()),
        );
    assert!(!no_patterns.contains("itype = \"pattern\""));
    let cfg = tmp.path().join("trawl.toml");
    std::fs::write(&cfg, no_patterns).expect("write config");
    let plain = tmp.path().join("data");
    trawl_ok(&["-q", "update", "--config", p(&cfg), "--data", p(&plain)]);
    // Squid, combined and Zeek TSV lines are pre-screened; every other format's lookups
    // are prefiltered one by one.
    let mut files = vec![
        p(&log).to_string(),
        p(&combined).to_string(),
        p(&zeek_dns_log).to_string(),
        p(&zeek_conn_log).to_string(),
        p(&zeek_http_log).to_string(),
        p(&zeek_ssl_log).to_string(),
        "samples/logs/access.log".to_string(),
        "samples/logs/query.log".to_string(),
        "samples/logs/eve.json".to_string(),
    ];
    if let Some(c) = corpus() {
        for f in [
            "logs/squid/elastic_test-access.log",
            "logs/bind/elastic_infoblox_nios_test-dns.log",
            "logs/suricata/elastic_test-eve-small.log",
            "logs/zeek-wrccdc/dns.log",
            "logs/zeek-misc/elastic_test-http.json.log",
            "logs/crowdsec/apache2-logs/apache2-logs.log",
            "logs/crowdsec/nginx_http-logs/nginx_http-logs.log",
            "logs/fail2ban/apache-botsearch.log",
            "logs/fail2ban/nginx-botsearch.log",
        ] {
            files.push(c.join(f).display().to_string());
        }
    }
    for data in [full.path(), plain.as_path()] {
        let scan = |extra: &[&str]| {
            let mut args = vec!["-q", "scan", "--data", p(data), "--sensor-name", "t"];
            args.extend_from_slice(extra);
            args.extend(files.iter().map(String::as_str));
            trawl_ok(&args)
        };
        let screened = scan(&[]);
        let exhaustive = scan(&["--no-prefilter"]);
        assert_eq!(screened, exhaustive, "snapshot {}", data.display());
        let alerts = json_lines(&screened);
        // Every kind of hit is among them (so the comparison is not of two empty outputs).
        let fields: BTreeSet<&str> = alerts
            .iter()
            .filter_map(|a| a["trawl"]["matched"]["field"].as_str())
            .collect();
        for f in [
            "url.domain",
            "url.full",
            "source.ip",
            "destination.ip",
            "dns.question.name",
            "dns.answers.data",
        ] {
            assert!(fields.contains(f), "no {f} alert in {fields:?}");
        }
        // The pattern feed reaches paths and user agents (only with the full samples).
        if data == full.path() {
            for f in ["url.path", "user_agent.original"] {
                assert!(fields.contains(f), "no {f} alert in {fields:?}");
            }
        }
        assert!(alerts.len() > 500, "{} alerts", alerts.len());
        // The Zeek shapes hit too: questions, answers and addresses of both logs.
        for (file, want) in [
            (
                &zeek_dns_log,
                &["dns.question.name", "dns.answers.data", "source.ip"][..],
            ),
            (&zeek_conn_log, &["source.ip", "destination.ip"][..]),
            (&zeek_http_log, &["url.full", "url.domain", "source.ip"][..]),
            (
                &zeek_ssl_log,
                &["tls.client.server_name", "destination.ip"][..],
            ),
        ] {
            let hit: BTreeSet<&str> = alerts
                .iter()
                .filter(|a| a["log"]["file"]["path"].as_str() == Some(p(file)))
                .filter_map(|a| a["trawl"]["matched"]["field"].as_str())
                .collect();
            for f in want {
                assert!(
                    hit.contains(f),
                    "no {f} alert from {}: {hit:?}",
                    file.display()
                );
            }
        }
    }
    // A `prefilter.bin` an older trawl wrote (another hash: version 1) is set aside with a
    // warning, and the scan still writes exactly the same alerts.
    let mut args = vec!["-q", "scan", "--data", p(&plain), "--sensor-name", "t"];
    args.extend(files.iter().map(String::as_str));
    let before = trawl_ok(&args);
    let current = std::fs::read_to_string(plain.join("current")).expect("current");
    let snap = plain.join("snapshots").join(current.trim());
    let pf = snap.join("prefilter.bin");
    let mut bytes = std::fs::read(&pf).expect("prefilter.bin");
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&pf, &bytes).expect("write prefilter.bin");
    matcher::snapshot::reseal_manifest(&snap, "prefilter.bin", Some(&bytes)).expect("manifest");
    args.remove(0); // not quiet: the warning is wanted
    let out = trawl(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pre-screen written by another trawl version")
            && stderr.contains("trawl update --force"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), before);
}
