//! Exports checked by the real tools that load them: idstools (Snort/Suricata rule parser),
//! iptables-restore / ip6tables-restore / ipset / nft loading inside a throw-away network
//! namespace, named-checkzone for the RPZ zone, headless Chromium for the HTML page. Inputs:
//! the fixture of the golden tests and real feeds from the shared corpus. A missing tool or
//! corpus prints a loud `... ABSENT` line and skips that check.

use crate::export_support::{corpus, fixture, have, ind, options, run, Netns};
use feeds::export::{ExportFormat, ExportOptions, ExportStats, Filter};
use matcher::{Indicator, IndicatorType, Severity};
use std::collections::BTreeSet;
use std::process::Command;

/// Parse every rule line with idstools; returns (rules parsed, distinct sids) or panics with
/// the first line idstools refused.
fn idstools(rules: &str) -> Option<(usize, usize)> {
    if !have("python3") {
        return None;
    }
    let probe = Command::new("python3")
        .args(["-c", "import idstools.rule"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !probe {
        eprintln!("TOOL ABSENT: python3 module idstools (pip install idstools)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.rules");
    std::fs::write(&path, rules).expect("write rules");
    let script = r#"
import sys, idstools.rule
n = 0; sids = set()
for no, line in enumerate(open(sys.argv[1], encoding='utf-8'), 1):
    line = line.rstrip('\n')
    if not line or line.startswith('#'):
        continue
    r = idstools.rule.parse(line)
    if r is None or not r.msg.startswith('TRAWL ') or not r.sid:
        print('REFUSED line %d: %s' % (no, line)); sys.exit(1)
    n += 1; sids.add(r.sid)
print(n, len(sids))
"#;
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().expect("utf-8 path")])
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "idstools: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut it = text
        .split_whitespace()
        .map(|x| x.parse::<usize>().expect("count"));
    Some((it.next().expect("n"), it.next().expect("sids")))
}

fn rule_lines(s: &str) -> usize {
    s.lines().filter(|l| l.starts_with("alert ")).count()
}

#[test]
fn ids_rules_parse_with_idstools() {
    let inds = fixture();
    // Eligible in the fixture, counted by hand: IPs form one rule per severity present
    // (high, medium, low) = 3; fqdn: evil.example, login.phish.example,
    // hostile-meta.example = 3 (x4 buffers for Suricata); http URLs: 2 (the https one is
    // not expressible).
    for (name, format, snort3, want) in [
        ("snort", ExportFormat::Snort, false, 3 + 3 + 2),
        ("snort3", ExportFormat::Snort, true, 3 + 3 + 2),
        ("suricata", ExportFormat::Suricata, false, 3 + 3 * 4 + 2),
    ] {
        let opts = ExportOptions {
            snort3,
            ..options()
        };
        let (out, stats) = run(format, &inds, &Filter::default(), &opts);
        assert_eq!(rule_lines(&out), want, "{name}:\n{out}");
        assert_eq!(stats.rules, want as u64);
        if let Some((n, sids)) = idstools(&out) {
            assert_eq!(
                (n, sids),
                (want, want),
                "{name}: parsed rules / distinct sids"
            );
        }
    }
}

#[test]
fn suricata_dataset_mode_writes_base64_datasets_and_iprep() {
    let inds = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ExportOptions {
        dataset_dir: Some(dir.path().to_path_buf()),
        ..options()
    };
    let (out, stats) = run(ExportFormat::Suricata, &inds, &Filter::default(), &opts);
    // 4 dataset rules (dns, tls, http, quic) + 2 iprep rules (dst, src) + 2 http URL rules.
    assert_eq!(rule_lines(&out), 8, "{out}");
    assert_eq!(stats.files.len(), 3, "{:?}", stats.files);
    let ds = std::fs::read_to_string(dir.path().join("trawl-domains.lst")).expect("dataset");
    // Decoded independently with base64(1) from coreutils.
    let decoded = Command::new("sh")
        .arg("-c")
        .arg("while read -r l; do printf %s \"$l\" | base64 -d; echo; done")
        .stdin(std::fs::File::open(dir.path().join("trawl-domains.lst")).expect("open"))
        .output()
        .expect("base64");
    assert_eq!(
        String::from_utf8_lossy(&decoded.stdout),
        "evil.example\nhostile-meta.example\nlogin.phish.example\n",
        "{ds}"
    );
    let rep = std::fs::read_to_string(dir.path().join("trawl-iprep.list")).expect("iprep");
    // high: 198.51.100.7 + 203.0.113.0/24 minus the allowlisted /26 + 2001:db8:bad::/48;
    // medium: the two /25 merged; low: the /128 inside the /48.
    assert_eq!(
        rep,
        "198.51.100.7,1,100\n203.0.113.0/26,1,100\n203.0.113.128/25,1,100\n2001:db8:bad::/48,1,100\n198.51.100.0/24,1,60\n2001:db8:bad:1::5,1,30\n"
    );
    if let Some((n, _)) = idstools(&out) {
        assert_eq!(n, 8);
    }
    assert!(out.contains(&format!(
        "dataset:isset,trawl-domains,type string,load {}/trawl-domains.lst;",
        dir.path().display()
    )));
}

/// Load `text` with `script` in a fresh namespace; panics with the tool's words on refusal.
fn load(ns: &Netns, script: &str, text: &str, what: &str) -> String {
    let (ok, out) = ns.run(script, text);
    assert!(
        ok,
        "{what} refused:\n{out}\n--- input (first 40 lines) ---\n{}",
        text.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    out
}

fn check_firewalls(inds: &[Indicator], tag: &str) -> Option<()> {
    for t in [
        "iptables-restore",
        "ip6tables-restore",
        "ipset",
        "nft",
        "ip",
    ] {
        if !have(t) {
            return None;
        }
    }
    let ns = Netns::new(tag)?;
    let opts = options();
    let f = Filter::default();
    let (v4, s4) = run(ExportFormat::Iptables, inds, &f, &opts);
    load(
        &ns,
        "iptables-restore --test --noflush",
        &v4,
        "iptables-restore --test",
    );
    let out = load(
        &ns,
        "iptables-restore --noflush && iptables -S TRAWL | grep -c -- '^-A TRAWL ' || true",
        &v4,
        "iptables-restore",
    );
    assert_eq!(
        out.trim(),
        count_prefix(&v4, "-A TRAWL ").to_string(),
        "rules loaded in chain TRAWL"
    );
    let (v6, _) = run(ExportFormat::Ip6tables, inds, &f, &opts);
    load(
        &ns,
        "ip6tables-restore --test --noflush",
        &v6,
        "ip6tables-restore --test",
    );
    let out = load(
        &ns,
        "ip6tables-restore --noflush && ip6tables -S TRAWL | grep -c -- '^-A TRAWL ' || true",
        &v6,
        "ip6tables-restore",
    );
    assert_eq!(out.trim(), count_prefix(&v6, "-A TRAWL ").to_string());

    let (set, sset) = run(ExportFormat::Ipset, inds, &f, &opts);
    // Loaded twice: the second run exercises the swap over an existing set.
    load(&ns, "ipset restore", &set, "ipset restore");
    load(&ns, "ipset restore", &set, "ipset restore (reload)");
    let members = load(
        &ns,
        "ipset list trawl-v4 | sed '1,/^Members:/d'; ipset list trawl-v6 | sed '1,/^Members:/d'",
        "",
        "ipset list",
    );
    let loaded: BTreeSet<String> = members
        .lines()
        .filter(|l| !l.is_empty())
        .map(normalise_member)
        .collect();
    let written: BTreeSet<String> = set
        .lines()
        .filter_map(|l| {
            l.strip_prefix("add trawl-v4-tmp ")
                .or_else(|| l.strip_prefix("add trawl-v6-tmp "))
        })
        .map(normalise_member)
        .collect();
    assert_eq!(loaded, written, "ipset members");
    assert_eq!(written.len() as u64, sset.rules);
    assert!(
        load(&ns, "ipset list -n", "", "ipset list -n")
            .lines()
            .all(|l| !l.ends_with("-tmp")),
        "tmp sets destroyed"
    );

    let (nft, _) = run(ExportFormat::Nftables, inds, &f, &opts);
    load(&ns, "nft -c -f -", &nft, "nft -c -f");
    load(&ns, "nft -f -", &nft, "nft -f");
    load(&ns, "nft -f -", &nft, "nft -f (reload)");
    let rules = load(
        &ns,
        "nft list table inet trawl | grep -c '@block_v'",
        "",
        "nft list table",
    );
    assert_eq!(
        rules.trim(),
        nft.lines()
            .filter(|l| l.contains("@block_v"))
            .count()
            .to_string(),
        "a reload keeps one copy of each nft rule"
    );
    let listed = load(&ns, "nft list set inet trawl block_v4", "", "nft list");
    assert!(listed.contains("flags interval"), "{listed}");

    // The other knobs: REJECT, no LOG, no jumps, other names.
    let other = ExportOptions {
        action: feeds::export::FirewallAction::Reject,
        log_first: false,
        jumps: false,
        chain: "BLOCKLIST".into(),
        set_name: "bad_hosts".into(),
        ..options()
    };
    let (v4, _) = run(ExportFormat::Iptables, inds, &f, &other);
    load(
        &ns,
        "iptables-restore --test --noflush",
        &v4,
        "iptables-restore --test (reject)",
    );
    let (v6, _) = run(ExportFormat::Ip6tables, inds, &f, &other);
    load(
        &ns,
        "ip6tables-restore --test --noflush",
        &v6,
        "ip6tables-restore --test (reject)",
    );
    let (nft, _) = run(ExportFormat::Nftables, inds, &f, &other);
    load(&ns, "nft -c -f -", &nft, "nft -c -f (reject)");
    let (set, _) = run(ExportFormat::Ipset, inds, &f, &other);
    load(&ns, "ipset restore", &set, "ipset restore (other name)");
    let _ = s4;
    Some(())
}

/// The shell command the export's header says to load it with, reading the file from stdin.
fn header_load_command(text: &str) -> String {
    let mut lines = text.lines();
    let at = lines
        .find(|l| l.starts_with("# load with"))
        .expect("a load line in the header");
    let cmd = match at.strip_prefix("# load with: ") {
        Some(cmd) => cmd.to_string(),
        None => lines
            .next()
            .and_then(|l| l.strip_prefix('#'))
            .expect("the command on the next line")
            .trim()
            .to_string(),
    };
    cmd.replace("FILE", "/dev/stdin")
}

/// Load an iptables/ip6tables export twice, each time exactly as its header says, next to a
/// rule of the operator's: the jumps into our chain exist once each, our chain holds the
/// file's rules once, and the operator's rule is still there.
fn reload_is_idempotent(ns: &Netns, tool: &str, text: &str) {
    let own = if tool == "iptables" {
        "-s 192.0.2.1 -j ACCEPT"
    } else {
        "-s 2001:db8::1 -j ACCEPT"
    };
    load(ns, &format!("{tool} -A INPUT {own}"), "", "operator rule");
    let cmd = header_load_command(text);
    for round in ["first load", "reload"] {
        load(ns, &cmd, text, &format!("{tool} {round}"));
    }
    let counts = load(
        ns,
        &format!(
            "for c in INPUT FORWARD OUTPUT; do {tool} -S $c | grep -c -- '-j TRAWL$' || true; done; \
             {tool} -S TRAWL | grep -c -- '^-A TRAWL ' || true; {tool} -S INPUT | grep -c -- '-j ACCEPT$' || true"
        ),
        "",
        "count rules",
    );
    let counts: Vec<&str> = counts.lines().collect();
    let want_chain = count_prefix(text, "-A TRAWL ").to_string();
    assert_eq!(
        counts,
        ["1", "1", "1", want_chain.as_str(), "1"],
        "{tool}: jumps from INPUT, FORWARD, OUTPUT; rules in TRAWL; the operator's rule"
    );
}

#[test]
fn iptables_reloads_as_its_header_says_are_idempotent() {
    for t in ["iptables-restore", "ip6tables-restore", "ip"] {
        if !have(t) {
            return;
        }
    }
    let Some(ns) = Netns::new("reload") else {
        return;
    };
    let inds = fixture();
    for (format, tool) in [
        (ExportFormat::Iptables, "iptables"),
        (ExportFormat::Ip6tables, "ip6tables"),
    ] {
        let (text, _) = run(format, &inds, &Filter::default(), &options());
        reload_is_idempotent(&ns, tool, &text);
    }
}

fn count_prefix(s: &str, p: &str) -> usize {
    s.lines().filter(|l| l.starts_with(p)).count()
}

/// ipset prints `/32` and `/128` members without the prefix, as we write them.
fn normalise_member(s: &str) -> String {
    s.trim().to_string()
}

#[test]
fn firewall_outputs_load_in_a_network_namespace() {
    check_firewalls(&fixture(), "fx");
}

/// Real feeds from the corpus, parsed here with the simplest rules (first field of every
/// non-comment line) into indicators.
fn corpus_indicators() -> Option<(Vec<Indicator>, Vec<String>)> {
    let c = corpus()?;
    let read = |p: &str| std::fs::read_to_string(c.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut v = Vec::new();
    let level1 = read("feeds/firehol/firehol_level1.netset");
    let mut level1_nets = Vec::new();
    for l in level1
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let t = l.trim();
        level1_nets.push(t.to_string());
        v.push(ind(
            t,
            IndicatorType::Ipv4,
            Severity::High,
            90,
            &["attacks"],
            "firehol_level1",
        ));
    }
    for l in read("feeds/spamhaus/drop_2015.txt")
        .lines()
        .filter(|l| !l.starts_with(';'))
    {
        if let Some(net) = l.split(';').next().map(str::trim).filter(|s| !s.is_empty()) {
            v.push(ind(
                net,
                IndicatorType::Ipv4,
                Severity::High,
                95,
                &["hijacked"],
                "spamhaus-drop",
            ));
        }
    }
    for l in read("feeds/bambenek/c2-dommasterlist.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        if let Some(d) = l.split(',').next().map(str::trim).filter(|s| !s.is_empty()) {
            v.push(ind(
                d,
                IndicatorType::Fqdn,
                Severity::High,
                85,
                &["c2"],
                "bambenek",
            ));
        }
    }
    for l in read("feeds/bambenek/c2-ipmasterlist.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        if let Some(d) = l.split(',').next().map(str::trim).filter(|s| !s.is_empty()) {
            v.push(ind(
                d,
                IndicatorType::Ipv4,
                Severity::Medium,
                85,
                &["c2"],
                "bambenek",
            ));
        }
    }
    for l in read("feeds/openphish/feed_2015.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        v.push(ind(
            l.trim(),
            IndicatorType::Url,
            Severity::Medium,
            75,
            &["phishing"],
            "openphish",
        ));
    }
    Some((v, level1_nets))
}

#[test]
fn corpus_feeds_export_valid_rules_and_firewalls() {
    let Some((inds, level1)) = corpus_indicators() else {
        return;
    };
    assert!(inds.len() > 1000, "corpus feeds parsed: {}", inds.len());
    for (format, snort3) in [
        (ExportFormat::Snort, false),
        (ExportFormat::Snort, true),
        (ExportFormat::Suricata, false),
    ] {
        let opts = ExportOptions {
            snort3,
            ..options()
        };
        let (out, stats): (String, ExportStats) = run(format, &inds, &Filter::default(), &opts);
        assert!(stats.rules > 50, "{format}: {stats:?}");
        assert_eq!(rule_lines(&out) as u64, stats.rules);
        if let Some((n, sids)) = idstools(&out) {
            assert_eq!(n as u64, stats.rules, "{format} snort3={snort3}");
            assert_eq!(sids, n, "sids unique");
        }
    }
    check_firewalls(&inds, "corpus");

    // FireHOL's level1 netset is already aggregated by iprange: exporting it alone must give
    // back exactly its networks (an independent implementation of the same aggregation).
    let only: Vec<Indicator> = inds
        .iter()
        .filter(|i| i.sources == ["firehol_level1"])
        .cloned()
        .collect();
    let (set, stats) = run(ExportFormat::Ipset, &only, &Filter::default(), &options());
    let ours: BTreeSet<&str> = set
        .lines()
        .filter_map(|l| l.strip_prefix("add trawl-v4-tmp "))
        .collect();
    // iprange writes single addresses without /32, as we do. Level1 also lists the bogon
    // block 224.0.0.0/3, wider than the /8 a blocking export accepts: refused and counted.
    let (theirs, wide): (BTreeSet<&str>, BTreeSet<&str>) =
        level1.iter().map(String::as_str).partition(|n| {
            n.split_once('/')
                .is_none_or(|(_, l)| l.parse::<u8>().unwrap_or(0) >= 8)
        });
    assert_eq!(ours, theirs, "aggregation differs from FireHOL iprange");
    assert!(wide.contains("224.0.0.0/3"), "{wide:?}");
    assert_eq!(stats.skipped_too_broad, wide.len() as u64);
}

#[test]
fn rpz_zone_passes_named_checkzone() {
    if !have("named-checkzone") {
        return;
    }
    let mut sets = vec![("fixture", fixture())];
    if let Some((c, _)) = corpus_indicators() {
        sets.push(("corpus", c));
    }
    for (name, inds) in sets {
        let (zone, stats) = run(ExportFormat::Rpz, &inds, &Filter::default(), &options());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rpz.zone");
        std::fs::write(&path, &zone).expect("write");
        let out = Command::new("named-checkzone")
            .args(["-i", "full", "rpz.trawl"])
            .arg(&path)
            .output()
            .expect("named-checkzone");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("serial 42"), "{text}");
        assert!(text.trim_end().ends_with("OK"), "{text}");
        assert!(stats.rules > 0);
    }
}

#[test]
fn html_page_renders_every_row_in_chromium() {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
    let Some(bin) = bin else {
        eprintln!("TOOL ABSENT: chromium");
        return;
    };
    let inds = fixture();
    let (html, stats) = run(ExportFormat::Html, &inds, &Filter::default(), &options());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.html");
    std::fs::write(&path, &html).expect("write");
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    assert!(!log.contains("Uncaught"), "console errors: {log}");
    let tbody = dom
        .split("id=\"rows\"")
        .nth(1)
        .expect("rows table in DOM")
        .split("<tbody>")
        .nth(1)
        .and_then(|s| s.split("</tbody>").next())
        .expect("tbody in DOM");
    assert_eq!(
        tbody.matches("<tr").count() as u64,
        stats.written,
        "rows rendered"
    );
    // The script ran: it wrote the number of rows shown into #shown.
    assert!(
        dom.contains(&format!("<span id=\"shown\">{}</span>", stats.written)),
        "filter script ran"
    );
    // The hostile description is text, not markup.
    assert!(
        !dom.contains("<script>alert(1)"),
        "description injected markup"
    );
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}
