//! Hostile feeds: quotes, semicolons, pipes, newlines, NUL, `$(…)`, backticks, rule keywords
//! and markup in values, descriptions, tags, sources, providers and references can never
//! change the structure of an export. Checked per format with a line grammar and record
//! counts, for a fixed hostile list and for random hostile strings (proptest).

use super::{export, ExportFormat, ExportOptions, ExportStats, Filter};
use matcher::{Indicator, IndicatorType, Severity, Tlp};
use proptest::prelude::*;
use regex::Regex;

fn ind(
    value: &str,
    itype: IndicatorType,
    sev: Severity,
    conf: u8,
    tags: &[&str],
    src: &str,
) -> Indicator {
    let mut i = Indicator::new(value, itype, src);
    i.severity = sev;
    i.confidence = conf;
    i.tags = tags.iter().map(|s| s.to_string()).collect();
    i.first_seen = Some(1_700_000_000);
    i
}

fn options() -> ExportOptions {
    ExportOptions {
        snapshot_version: 7,
        created: 1_764_306_000,
        ..ExportOptions::default()
    }
}

fn run(
    f: ExportFormat,
    inds: &[Indicator],
    filter: &Filter,
    opts: &ExportOptions,
) -> (String, ExportStats) {
    let mut out = Vec::new();
    let stats = export(f, &mut inds.iter().cloned(), filter, opts, &mut out).expect("export");
    (String::from_utf8(out).expect("utf-8"), stats)
}

const NASTY: &[&str] = &[
    "\"",
    ";",
    "|",
    "\\",
    "\n",
    "\r",
    "\0",
    "\t",
    "$(reboot)",
    "`id`",
    "'",
    ",",
    "<script>",
    "</td>",
    "sid:1;",
    ")",
    "(",
    "content:\"x\";",
    "\n-A INPUT -j ACCEPT\n",
    "\nCOMMIT\n",
    "\u{1b}[2J",
    "}",
    "{",
    "#",
    "*.",
    " CNAME . ",
    "\u{202e}",
    "=cmd|' /C calc'!A0",
    "&amp;",
    "%0a",
    "é",
];

/// Grammar of every line of each format (comments included).
fn grammar(f: ExportFormat) -> Regex {
    let opt = r#"[a-z_.]+(?::(?:"[^"\\;]*"|[^";()]*))?(?:,[a-z_]+(?: [0-9]+)?)*; "#;
    let re = match f {
        ExportFormat::Snort | ExportFormat::Suricata => format!(
            r#"^(?:#[ -~]*|alert (?:ip|udp|tcp|dns|tls|http|quic) \$HOME_NET any -> (?:any|\$EXTERNAL_NET|\[[0-9a-f.:/,]+\]) (?:any|53|\$HTTP_PORTS|[0-9]+) \(msg:"TRAWL [A-Z:+]+ [A-Za-z0-9._+,-]+ [ -!#-:<-\[\]-~]*"; (?:{opt})*priority:[123]; sid:[0-9]+; rev:1;\))$"#
        ),
        ExportFormat::Iptables | ExportFormat::Ip6tables => r#"^(?:#[ -~]*|\*filter|:[A-Z_-]+ - \[0:0\]|-A [A-Z_-]+ -[sd] [0-9a-f.:/]+ -j [A-Z_-]+|-A [A-Z_-]+ (?:-m limit --limit 10/second -j LOG --log-prefix "[A-Za-z0-9 _:-]*"|-j DROP|-j REJECT --reject-with [a-z0-9-]+)|-I (?:INPUT|FORWARD|OUTPUT) 1 -j [A-Z_-]+|COMMIT)$"#.to_string(),
        ExportFormat::Ipset => r#"^(?:#[ -~]*|create [a-z0-9_-]+ hash:net family inet6? hashsize 1024 maxelem [0-9]+ -exist|flush [a-z0-9_-]+|add [a-z0-9_-]+ [0-9a-f.:/]+|swap [a-z0-9_-]+ [a-z0-9_-]+|destroy [a-z0-9_-]+)$"#.to_string(),
        ExportFormat::Nftables => r#"^(?:#[ -~]*|table inet [a-z0-9_-]+(?: \{)?|delete table inet [a-z0-9_-]+|\t+(?:set block_v[46] \{|type ipv[46]_addr|flags interval|auto-merge|elements = \{|[0-9a-f.:/]+,?|\}|chain (?:input|forward|output) \{|type filter hook [a-z]+ priority filter - 10; policy accept;|ip6? [sd]addr @block_v[46] counter (?:log prefix "[A-Za-z0-9 _:-]*" )?(?:drop|reject))|\})$"#.to_string(),
        ExportFormat::Zeek => r#"^(?:#fields\t.*|[!-~]+\tIntel::[A-Z_]+\t[ -~]+\t[ -~]+\t[!-~]+\t[TF])$"#.to_string(),
        ExportFormat::Rpz => r#"^(?:;[ -~]*|\$TTL [0-9]+|@\tIN\tSOA\tlocalhost\. hostmaster\.localhost\. \( [0-9]+ 3600 600 604800 [0-9]+ \)|@\tIN\tNS\tlocalhost\.|(?:\*\.)?[a-z0-9_.-]+\tCNAME\t\.)$"#.to_string(),
        ExportFormat::Table => r#"^[^\x00-\x1f\x7f]*$"#.to_string(),
        _ => r#"^[^\x00-\x09\x0b-\x1f]*$"#.to_string(),
    };
    Regex::new(&re).expect("grammar regex")
}

/// Check the structure of `out`: grammar per line and record count equal to what stats say.
fn check_structure(f: ExportFormat, out: &str, stats: &ExportStats) {
    let g = grammar(f);
    for (no, line) in out.lines().enumerate() {
        assert!(
            g.is_match(line),
            "{f} line {} breaks the grammar: {line:?}",
            no + 1
        );
    }
    let records = match f {
        ExportFormat::Snort | ExportFormat::Suricata => {
            out.lines().filter(|l| l.starts_with("alert ")).count()
        }
        ExportFormat::Iptables | ExportFormat::Ip6tables => out
            .lines()
            .filter(|l| l.starts_with("-A ") || l.starts_with("-I "))
            .count(),
        ExportFormat::Ipset => out.lines().filter(|l| l.starts_with("add ")).count(),
        ExportFormat::Nftables => out.lines().filter(|l| l.starts_with("\t\t\t")).count(),
        ExportFormat::Zeek => out.lines().filter(|l| !l.starts_with('#')).count(),
        ExportFormat::Rpz => out.lines().filter(|l| l.contains("\tCNAME\t")).count(),
        ExportFormat::Csv => csv_records(out).len() - 1,
        ExportFormat::Jsonl => {
            for l in out.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect("jsonl line");
                assert_eq!(v.as_object().map(|o| o.len()), Some(14), "{l}");
            }
            out.lines().count()
        }
        ExportFormat::Json => serde_json::from_str::<Vec<serde_json::Value>>(out)
            .expect("json array")
            .len(),
        ExportFormat::Table => out.lines().count() - 1,
        ExportFormat::Stix => {
            // One valid bundle whatever the values; every pattern reads back with trawl's
            // own parser, each of its comparisons an indicator written.
            let bundle: serde_json::Value = serde_json::from_str(out).expect("stix bundle");
            let objects = bundle["objects"].as_array().expect("objects");
            let mut comparisons = 0;
            let indicators = objects
                .iter()
                .filter(|o| o["type"] == "indicator")
                .inspect(|o| {
                    let p = o["pattern"].as_str().expect("pattern");
                    let parsed = crate::parse::stix_pattern::parse(p).expect("pattern parses");
                    assert!(parsed.dropped.is_empty(), "{p}");
                    comparisons += parsed.comparisons.len();
                })
                .count();
            assert_eq!(comparisons as u64, stats.written, "{out}");
            indicators
        }
        ExportFormat::Misp => {
            // One valid event whatever the values, an attribute per indicator written.
            let event: serde_json::Value = serde_json::from_str(out).expect("misp event");
            event["Event"]["Attribute"]
                .as_array()
                .expect("attributes")
                .len()
        }
        ExportFormat::Html => {
            assert_eq!(out.matches("<script").count(), 1, "one static script");
            assert_eq!(
                out.matches("</tr>").count() as u64,
                stats.written + 1 + count_rows_of_counts(out)
            );
            stats.written as usize
        }
    };
    assert_eq!(
        records as u64, stats.rules,
        "{f}: records vs stats {stats:?}"
    );
    if f == ExportFormat::Csv {
        for r in csv_records(out) {
            assert_eq!(r.len(), 14, "csv record {r:?}");
        }
    }
    // Every indicator read is accounted for exactly once.
    let s = stats;
    assert_eq!(s.read, s.accounted(), "{f}: {s:?}");
}

/// Formats that carry any value as quoted or escaped text.
fn tabular(f: ExportFormat) -> bool {
    matches!(
        f,
        ExportFormat::Csv
            | ExportFormat::Jsonl
            | ExportFormat::Json
            | ExportFormat::Table
            | ExportFormat::Html
            | ExportFormat::Stix
            | ExportFormat::Misp
    )
}

fn count_rows_of_counts(out: &str) -> u64 {
    let counts = out.split("<table id=\"rows\">").next().unwrap_or("");
    counts.matches("</tr>").count() as u64
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes), independent of the writer.
fn csv_records(s: &str) -> Vec<Vec<String>> {
    let mut recs = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.is_empty() {
            quoted = true;
        } else if c == ',' {
            rec.push(std::mem::take(&mut field));
        } else if c == '\n' {
            rec.push(std::mem::take(&mut field));
            recs.push(std::mem::take(&mut rec));
        } else {
            field.push(c);
        }
    }
    assert!(
        !quoted && field.is_empty() && rec.is_empty(),
        "csv ends mid-record"
    );
    recs
}

fn hostile_list() -> Vec<Indicator> {
    let all = NASTY.concat();
    let mut v = Vec::new();
    let good = [
        ("198.51.100.1", IndicatorType::Ipv4),
        ("2001:db8::7", IndicatorType::Ipv6),
        ("evil.example", IndicatorType::Fqdn),
        ("http://evil.example/x.php?a=1;b=2", IndicatorType::Url),
        ("a@evil.example", IndicatorType::Email),
        ("44d88612fea8a8f36de82e1278abb02f", IndicatorType::Md5),
        ("/gate.php", IndicatorType::Pattern),
    ];
    for (i, (val, t)) in good.iter().enumerate() {
        let mut x = ind(
            val,
            *t,
            Severity::High,
            90,
            &[NASTY[i % NASTY.len()], &all],
            &all,
        );
        x.description = Some(all.clone());
        x.provider = Some(all.clone());
        x.reference = Some(format!("http://ref.example/{all}"));
        x.tlp = Tlp::Red;
        v.push(x);
    }
    for (i, n) in NASTY.iter().enumerate() {
        for t in IndicatorType::ALL {
            for val in [
                format!("evil{n}.example"),
                format!("198.51.100.{i}{n}"),
                format!("http://evil.example/{n}"),
                n.to_string(),
            ] {
                v.push(ind(&val, t, Severity::Low, 10, &[n], n));
            }
        }
    }
    v
}

#[test]
fn hostile_feed_cannot_change_structure() {
    let inds = hostile_list();
    for f in ExportFormat::ALL {
        let (out, stats) = run(f, &inds, &Filter::default(), &options());
        check_structure(f, &out, &stats);
        assert!(!out.contains('\0'), "{f}: NUL written");
    }
    // URLs with quotes, brackets, pipes... are carried as text, never as rules.
    for f in ExportFormat::ALL {
        let (_, stats) = run(f, &inds, &Filter::default(), &options());
        let says_urls = matches!(
            f,
            ExportFormat::Snort | ExportFormat::Suricata | ExportFormat::Zeek
        );
        assert_eq!(stats.skipped_unexpressible > 0, says_urls, "{f}: {stats:?}");
    }
    // Nothing but the 7 good values (and the few hostile ones that happen to be valid, e.g.
    // "evil%0a.example" is not) survives: count the survivors from jsonl.
    let (out, _) = run(ExportFormat::Jsonl, &inds, &Filter::default(), &options());
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let val = v["value"].as_str().expect("value");
        assert!(
            !val.contains(['"', ';', '|', '\\', '\n', '\0', '`', '$', ' ', '<'])
                || v["itype"] == "pattern"
                || v["itype"] == "url",
            "suspicious value exported: {val:?}"
        );
    }
}

/// URLs normalisation keeps but no rule grammar can say: quotes, angle brackets, a scheme
/// other than http(s).
const TEXT_URLS: &[&str] = &[
    "http://evil.example/q?x=\"<b>\"",
    "https://evil.example/a>b",
    "ftp://files.evil.example/payload.exe",
    "javascript://evil.example/%0Aalert(1)",
    "http://user@evil.example/\"|x",
];

#[test]
fn text_urls_reach_tabular_formats_and_are_counted_out_of_rules() {
    let inds: Vec<Indicator> = TEXT_URLS
        .iter()
        .map(|u| {
            let n = matcher::normalize(u, None).expect("normalises");
            assert_eq!(n.value, *u, "already canonical");
            ind(&n.value, n.itype, Severity::High, 90, &["c2"], "f")
        })
        .collect();
    let n = TEXT_URLS.len() as u64;
    for f in ExportFormat::ALL {
        let (out, stats) = run(f, &inds, &Filter::default(), &options());
        check_structure(f, &out, &stats);
        assert_eq!(stats.skipped_invalid, 0, "{f}");
        if tabular(f) {
            assert_eq!(stats.written, n, "{f}: {stats:?}");
        } else if matches!(
            f,
            ExportFormat::Snort | ExportFormat::Suricata | ExportFormat::Zeek
        ) {
            assert_eq!((stats.written, stats.skipped_unexpressible), (0, n), "{f}");
        } else {
            assert_eq!((stats.written, stats.skipped_unsupported), (0, n), "{f}");
        }
    }
    // Read back: each URL comes out exactly as it went in.
    let (csv, _) = run(ExportFormat::Csv, &inds, &Filter::default(), &options());
    let mut got: Vec<String> = csv_records(&csv)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    let mut want: Vec<String> = TEXT_URLS.iter().map(|s| s.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    for array in [false, true] {
        let f = if array {
            ExportFormat::Json
        } else {
            ExportFormat::Jsonl
        };
        let (out, _) = run(f, &inds, &Filter::default(), &options());
        let rows: Vec<serde_json::Value> = if array {
            serde_json::from_str(&out).expect("json")
        } else {
            out.lines()
                .map(|l| serde_json::from_str(l).expect("jsonl"))
                .collect()
        };
        let mut got: Vec<String> = rows
            .iter()
            .map(|v| v["value"].as_str().expect("value").to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "{f}");
    }
    let (html, _) = run(ExportFormat::Html, &inds, &Filter::default(), &options());
    assert!(html.contains("<td>http://evil.example/q?x=&quot;&lt;b&gt;&quot;</td>"));
    assert!(!html.contains("<b>"));
}

#[test]
fn blocking_formats_refuse_what_is_too_broad() {
    use IndicatorType as T;
    let wide = [
        ("0.0.0.0/0", T::Ipv4),
        ("128.0.0.0/1", T::Ipv4),
        ("10.0.0.0/7", T::Ipv4),
        ("::/0", T::Ipv6),
        ("2000::/3", T::Ipv6),
        ("co.uk", T::Fqdn),
        ("github.io", T::Fqdn),
    ];
    let narrow = [
        ("45.0.0.0/8", T::Ipv4),
        ("2a00::/16", T::Ipv6),
        ("evil.co.uk", T::Fqdn),
        ("user.github.io", T::Fqdn),
    ];
    let inds: Vec<Indicator> = wide
        .iter()
        .chain(&narrow)
        .map(|(v, t)| {
            ind(
                v,
                *t,
                Severity::High,
                90,
                &["c2"],
                "snapshot-from-elsewhere",
            )
        })
        .collect();
    for (f, refused, kept) in [
        (ExportFormat::Iptables, 3, &["45.0.0.0/8"][..]),
        (ExportFormat::Ip6tables, 2, &["2a00::/16"][..]),
        (ExportFormat::Ipset, 5, &["45.0.0.0/8", "2a00::/16"][..]),
        (ExportFormat::Nftables, 5, &["45.0.0.0/8", "2a00::/16"][..]),
        (ExportFormat::Rpz, 2, &["evil.co.uk", "user.github.io"][..]),
    ] {
        let (out, stats) = run(f, &inds, &Filter::default(), &options());
        check_structure(f, &out, &stats);
        assert_eq!(stats.skipped_too_broad, refused, "{f}: {stats:?}");
        for k in kept {
            assert!(out.contains(k), "{f} lost {k}:\n{out}");
        }
        for (w, _) in wide {
            let needle = match f {
                ExportFormat::Rpz => format!("\n{w}\t"),
                _ => format!(" {w}"),
            };
            assert!(!out.contains(&needle), "{f} wrote {w}:\n{out}");
        }
    }
    // The limits are an option; what is not blocking (alerts, lists) is not refused.
    let loose = ExportOptions {
        min_prefix: crate::breadth::MinPrefix { ipv4: 0, ipv6: 0 },
        ..options()
    };
    let (_, stats) = run(ExportFormat::Ipset, &inds, &Filter::default(), &loose);
    assert_eq!(stats.skipped_too_broad, 0);
    for f in [
        ExportFormat::Suricata,
        ExportFormat::Csv,
        ExportFormat::Zeek,
    ] {
        let (_, stats) = run(f, &inds, &Filter::default(), &options());
        assert_eq!(stats.skipped_too_broad, 0, "{f}");
    }
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(proptest::sample::select(NASTY), 0..6).prop_map(|v| v.concat()),
        (any::<String>(), proptest::sample::select(NASTY)).prop_map(|(a, b)| format!("{a}{b}{a}")),
    ]
}

fn any_itype() -> impl Strategy<Value = IndicatorType> {
    proptest::sample::select(IndicatorType::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_hostile_strings_keep_structure(
        rows in proptest::collection::vec(
            (hostile_string(), any_itype(), hostile_string(), hostile_string(), hostile_string(), any::<bool>()),
            1..12)
    ) {
        let mut inds = Vec::new();
        for (i, (val, t, desc, tag, src, prefix_good)) in rows.into_iter().enumerate() {
            // Half the values start from a valid one so metadata is exercised on written rows.
            let val = if prefix_good {
                match t {
                    IndicatorType::Ipv4 => format!("198.51.100.{i}"),
                    IndicatorType::Fqdn => format!("h{i}.evil.example"),
                    IndicatorType::Url => format!("http://evil.example/{i}"),
                    _ => val,
                }
            } else { val };
            let mut x = ind(&val, t, Severity::Medium, 60, &[&tag], &src);
            x.description = Some(desc.clone());
            x.provider = Some(desc.clone());
            x.reference = Some(desc);
            inds.push(x);
        }
        for f in ExportFormat::ALL {
            let (out, stats) = run(f, &inds, &Filter::default(), &options());
            check_structure(f, &out, &stats);
        }
    }
}
