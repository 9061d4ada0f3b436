//! `--report FILE.html` of scan, replay and hunt, opened in a real headless Chromium: the page
//! renders from the file alone, the counts it shows are the alerts written, each top
//! indicator links to its rows, and a `<script>` (or an `onerror`) carried in an observed URL
//! stays text. A screenshot is kept in the test's target temporary directory.

use crate::common::*;
use crate::webdriver::{call, Driver};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::Path;

/// A Squid log of the last hours: URLs under the samples' phishing URL prefix carrying
/// markup, and names under a sample C2 domain.
fn hostile_log(dir: &Path) -> std::path::PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 4 * 3600;
    let lines = [
        (
            0,
            "10.0.0.5",
            "https://docs-share.info/invoice/<script>document.title='pwned'</script>.pdf",
        ),
        (
            1,
            "10.0.0.6",
            "https://docs-share.info/invoice/\"><img/src=x/onerror=document.title='img'>",
        ),
        (3600, "10.0.0.5", "http://www.update-checker.top/a"),
        (3601, "10.0.0.7", "http://api.update-checker.top/b"),
        (7200, "10.0.0.5", "http://www.update-checker.top/c"),
        (7300, "10.0.0.9", "http://harmless.example/"),
    ];
    let mut text = String::new();
    for (dt, client, url) in lines {
        text.push_str(&format!(
            "{}.100    145 {client} TCP_MISS/200 5120 GET {url} - HIER_DIRECT/93.184.216.34 text/html\n",
            now + dt
        ));
    }
    let log = dir.join("hostile.log");
    std::fs::write(&log, text).unwrap();
    log
}

/// The `data-count` of every timeline bar in the page the browser holds.
fn bar_counts(html: &str) -> Vec<u64> {
    html.split("data-count=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

fn check_page(d: &Driver, page: &Path, alerts: &[serde_json::Value], title: &str) {
    d.open(&format!("file://{}", page.display()));
    let n = alerts.len();
    assert_eq!(d.text("#total"), n.to_string());
    let sev: usize = ["high", "medium", "low"]
        .iter()
        .map(|s| d.text(&format!("#sev-{s}")).parse::<usize>().unwrap())
        .sum();
    assert_eq!(sev, n, "severities add up to the alerts written");
    assert_eq!(d.count("#alerts tr.row"), n, "one table row per alert");
    let html = d.source();
    assert_eq!(bar_counts(&html).iter().sum::<u64>() as usize, n);
    // Nothing the alerts carried became markup or ran.
    let page_title = call("GET", &d.at("/title"), None);
    assert!(
        page_title.as_str().unwrap().starts_with(title),
        "{page_title}"
    );
    // (Read from the DOM the browser built: counting absent elements would wait out the
    // session's implicit wait.)
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    // Every top indicator with rows links to them, and its rows are its alerts.
    let mut per_indicator: BTreeMap<String, usize> = BTreeMap::new();
    for a in alerts {
        let ind = a["trawl"]["matched"]["indicator"].as_str().unwrap();
        *per_indicator.entry(ind.to_string()).or_default() += 1;
    }
    for (ind, want) in &per_indicator {
        let links = call(
            "POST",
            &d.at("/elements"),
            Some(serde_json::json!({"using": "css selector", "value": "#top-indicators a"})),
        );
        let mut target = None;
        for l in links.as_array().unwrap() {
            let e = l[crate::webdriver::ELEMENT].as_str().unwrap();
            let text = call("GET", &d.at(&format!("/element/{e}/text")), None);
            if text.as_str() == Some(ind.as_str()) {
                let href = call("GET", &d.at(&format!("/element/{e}/attribute/href")), None);
                target = href
                    .as_str()
                    .and_then(|h| h.split('#').nth(1))
                    .map(String::from);
            }
        }
        let anchor = target.unwrap_or_else(|| panic!("no link to {ind}'s rows"));
        assert_eq!(d.count(&format!("tbody#{anchor} tr.row")), *want, "{ind}");
        assert!(d
            .text(&format!("tbody#{anchor} tr.group"))
            .starts_with(ind.as_str()));
    }
}

#[test]
fn reports_render_in_chromium_with_the_counts_written_and_inert_markup() {
    let data = sample_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let log = hostile_log(dir.path());
    let (alerts, page) = (dir.path().join("alerts.json"), dir.path().join("scan.html"));
    let d = p(data.path());
    let out = trawl(&[
        "scan",
        "--data",
        d,
        "--record",
        "-o",
        p(&alerts),
        "--report",
        p(&page),
        p(&log),
        "samples/logs/access.log",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scan_alerts = json_lines(&std::fs::read_to_string(&alerts).unwrap());
    // The report never replaces the alert file.
    let same = trawl(&[
        "scan",
        "--data",
        d,
        "-o",
        p(&alerts),
        "--report",
        p(&alerts),
        p(&log),
    ]);
    assert_eq!(same.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&same.stderr).contains("give the report its own name"));
    assert_eq!(
        json_lines(&std::fs::read_to_string(&alerts).unwrap()),
        scan_alerts
    );
    assert!(scan_alerts.len() >= 8, "{}", scan_alerts.len());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "report of {} alert(s) written to",
        scan_alerts.len()
    )));
    let markup = scan_alerts
        .iter()
        .filter(|a| {
            a["trawl"]["matched"]["value"]
                .as_str()
                .unwrap()
                .contains("<script>")
        })
        .count();
    assert_eq!(markup, 1, "the hostile URL alerted");

    // replay with --suppress: the report counts what was written, after folding.
    let (palerts, ppage) = (dir.path().join("p.json"), dir.path().join("replay.html"));
    trawl_ok(&[
        "-q",
        "replay",
        "--data",
        d,
        "--suppress",
        "1h",
        "-o",
        p(&palerts),
        "--report",
        p(&ppage),
        "samples/pcaps/demo.pcap",
    ]);
    let replay_alerts = json_lines(&std::fs::read_to_string(&palerts).unwrap());
    assert!(!replay_alerts.is_empty());

    // hunt over what the scan recorded: the report of its retro sightings.
    let hpage = dir.path().join("hunt.html");
    let hunted = trawl_ok(&[
        "hunt",
        "--data",
        d,
        "--format",
        "json",
        "--report",
        p(&hpage),
        "update-checker.top",
        "https://docs-share.info/invoice/",
    ]);
    let hunt_alerts = json_lines(&hunted);
    // www. and api. under the domain, the two hostile URLs under the prefix (the
    // samples' own lines are older than the retention and were not recorded).
    assert_eq!(hunt_alerts.len(), 4, "{hunted}");

    let driver = Driver::start();
    check_page(&driver, &page, &scan_alerts, "trawl report: trawl scan of");
    assert!(driver
        .text("#alerts")
        .contains("<script>document.title='pwned'</script>"));
    assert!(driver
        .text("#alerts")
        .contains("onerror=document.title='img'"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(driver.screenshot_png_base64())
        .unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{}",
        png.len()
    );
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-scan.png"),
        &png,
    )
    .unwrap();

    check_page(
        &driver,
        &ppage,
        &replay_alerts,
        "trawl report: trawl replay of",
    );
    check_page(&driver, &hpage, &hunt_alerts, "trawl report: trawl hunt of");
    assert!(driver.text("#alerts").contains("(retro)"));
}
