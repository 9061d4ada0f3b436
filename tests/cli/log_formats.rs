//! Issue 22 through the CLI: every vendor format and a format string, detected (or given)
//! and scanned on corpus files with indicators planted from their truth files; the planted
//! alerts and no others. A custom-format Squid line is counted unparseable with a warning,
//! not read wrong; an unknown format code is an error naming it.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// A data directory with one local feed holding `indicators`.
fn snapshot(indicators: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("planted.txt");
    std::fs::write(&feed, indicators.join("\n") + "\n").unwrap();
    let config = dir.path().join("trawl.toml");
    std::fs::write(
        &config,
        format!(
            "[[feed]]\nname = \"planted\"\nsource = \"{}\"\nderive = false\n",
            p(&feed)
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    trawl_ok(&["-q", "update", "--config", p(&config), "--data", p(&data)]);
    dir
}

/// `trawl scan` of `file` (extra args first): the alerts as (1-based line, field, value),
/// and the summary on stderr.
fn scan(data: &Path, extra: &[&str], file: &Path) -> (Vec<(usize, String, String)>, String) {
    let mut args = vec!["scan", "--data", p(data)];
    args.extend_from_slice(extra);
    args.push(p(file));
    let out = trawl(&args);
    assert!(
        out.status.success(),
        "{:?}: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(file).unwrap();
    // Byte offset → 1-based line number.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let alerts = json_lines(&String::from_utf8(out.stdout).unwrap())
        .into_iter()
        .map(|a| {
            let offset = a["log"]["offset"].as_u64().unwrap() as usize;
            let line = starts.iter().position(|&s| s == offset).unwrap() + 1;
            let m = &a["trawl"]["matched"];
            (
                line,
                m["field"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (alerts, String::from_utf8(out.stderr).unwrap())
}

/// A corpus file, the format the summary must name, and its alerts (line, field, value).
type Case = (
    &'static str,
    &'static str,
    Vec<(usize, &'static str, &'static str)>,
);

#[test]
fn every_vendor_format_alerts_on_exactly_the_planted_values() {
    let Some(corpus) = corpus() else { return };
    let logs = corpus.join("logs");
    let data = snapshot(&[
        "elastic.co",
        "22.22.22.200",
        "12.121.122.82",
        "172.50.123.1",
        "test.virot.eu",
        "settings-win.data.microsoft.com",
        "pixel.tapad.com",
        "example.com.com",
    ]);
    let data = data.path().join("data");
    // (file, format the summary must name, the alerts: line, field, value). Each list is
    // read off the file's truth: the lines whose observed field holds a planted value.
    let cases: Vec<Case> = vec![
        (
            "fortigate/elastic_test-fortinet_part1.log",
            "fortigate",
            vec![
                (1, "url.domain", "elastic.co"),
                (3, "url.domain", "elastic.co"),
                (4, "url.domain", "elastic.co"),
                (8, "dns.question.name", "elastic.co"),
            ],
        ),
        (
            "umbrella/elastic_test-umbrella-dnslogs_part1.log",
            "umbrella",
            vec![
                (1, "dns.question.name", "www.elastic.co"),
                (2, "dns.question.name", "elastic.co"),
                (3, "dns.question.name", "elastic.co"),
            ],
        ),
        (
            "umbrella/elastic_test-umbrella-proxylogs_part1.log",
            "umbrella",
            vec![(1, "url.domain", "elastic.co")],
        ),
        (
            "w3c-iis/plaso_iis6.log",
            "w3c",
            // c-ip of lines 6-8 and 10-15 (5, 9 and 16 are other clients).
            [6, 7, 8, 10, 11, 12, 13, 14, 15]
                .into_iter()
                .map(|l| (l, "source.ip", "22.22.22.200"))
                .collect(),
        ),
        (
            "w3c-proxysg/elastic_proxy-onprem_part1.log",
            "w3c",
            vec![(7, "url.domain", "pixel.tapad.com")],
        ),
        (
            "cef/elastic-beats_decode_cef_samples.log",
            "cef",
            vec![(1, "destination.ip", "12.121.122.82")],
        ),
        (
            "leef/axosyslog_parse_leef_tests_part1.leef",
            "leef",
            vec![
                (1, "destination.ip", "172.50.123.1"),
                (2, "destination.ip", "172.50.123.1"),
            ],
        ),
        (
            "windows-dns/jschpp_dns-Locale-de-DE-WindowsUnknown.log",
            "windows-dns",
            vec![
                (1, "dns.question.name", "test.virot.eu"),
                (2, "dns.question.name", "test.virot.eu"),
                (3, "dns.question.name", "test.virot.eu"),
                (4, "dns.question.name", "test.virot.eu"),
            ],
        ),
        (
            "panos/metron_BasicPaloAltoFirewallParserTest_part1.csv",
            "panos",
            vec![(3, "url.domain", "settings-win.data.microsoft.com")],
        ),
        (
            "zscaler/elastic_test-web_part1.log",
            "zscaler",
            vec![
                (2, "url.domain", "www.example.com.com"),
                (4, "url.domain", "www.example.com.com"),
            ],
        ),
    ];
    for (rel, format, want) in cases {
        let file = logs.join(rel);
        let (mut got, summary) = scan(&data, &[], &file);
        got.sort();
        let mut want: Vec<(usize, String, String)> = want
            .into_iter()
            .map(|(l, f, v)| (l, f.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{rel}");
        assert!(
            summary.contains(&format!("format {format:<10} {}", p(&file))),
            "{rel}: {summary}"
        );
        assert!(summary.contains("(detected: "), "{rel}: {summary}");
    }
}

#[test]
fn a_logformat_string_is_followed_and_a_custom_squid_line_is_not_misread() {
    let Some(corpus) = corpus() else { return };
    let dir = snapshot(&["evil.example", "www.varonathe.org"]);
    let data = dir.path().join("data");
    // A Squid that logs the client port and the SNI; its lines under `--format squid`
    // alone are counted unparseable, with a warning, and nothing is read wrong.
    let log = dir.path().join("access.log");
    std::fs::write(
        &log,
        "1700000000.500 192.0.2.1:5555 TCP_TUNNEL/200 CONNECT 198.51.100.7:443 evil.example\n\
         1700000001.500 192.0.2.2:5556 TCP_TUNNEL/200 CONNECT 198.51.100.8:443 good.example\n",
    )
    .unwrap();
    let (alerts, summary) = scan(&data, &["--format", "squid"], &log);
    assert!(alerts.is_empty());
    assert!(summary.contains("2 unparseable"), "{summary}");
    assert!(summary.contains("WARNING: 2 of 2 lines"), "{summary}");
    let format = "logformat sni %ts.%03tu %>a:%>p %Ss/%03>Hs %rm %ru %ssl::>sni";
    let (alerts, summary) = scan(&data, &["--format", "squid", "--logformat", format], &log);
    assert_eq!(
        alerts,
        vec![(
            1,
            "tls.client.server_name".to_string(),
            "evil.example".to_string()
        )],
        "{summary}"
    );
    assert!(summary.contains("0 unparseable"), "{summary}");
    // An Apache vhost_combined log with its `.format`.
    let file = corpus.join("logs/apache-logformat/apachelogs_vhost_combined.log");
    let format = std::fs::read_to_string(file.with_extension("log.format")).unwrap();
    let (alerts, summary) = scan(
        &data,
        &["--format", "apache", "--logformat", format.trim()],
        &file,
    );
    let lines: BTreeMap<usize, usize> = alerts.iter().fold(BTreeMap::new(), |mut m, (l, _, _)| {
        *m.entry(*l).or_default() += 1;
        m
    });
    // Every record (its vhost is the URL's host) but apachelogs' "Bad line" (line 5).
    assert!(!lines.contains_key(&5), "{alerts:?}");
    assert!(summary.contains("1 unparseable"), "{summary}");
    assert!(lines.len() >= 5, "{alerts:?}");
    // An unknown code is an error naming it.
    let out = trawl(&[
        "scan",
        "--data",
        p(&data),
        "--format",
        "squid",
        "--logformat",
        "%ts %>a %zz",
        p(&log),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("%zz"), "{err}");
    // `trawl observe` shows what a plan extracts.
    let out = trawl_ok(&[
        "observe",
        "--format",
        "squid",
        "--logformat",
        "%ts.%03tu %>a:%>p %Ss/%03>Hs %rm %ru %ssl::>sni",
        p(&log),
    ]);
    let obs = json_lines(&out);
    assert_eq!(obs.len(), 2);
    assert_eq!(obs[0]["source"]["port"], 5555);
    assert_eq!(obs[0]["tls"]["client"]["server_name"], "evil.example");
    assert_eq!(obs[0]["destination"]["port"], 443);
}
