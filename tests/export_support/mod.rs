//! Shared fixtures and tool helpers for the export integration tests.
#![allow(dead_code)]

use feeds::export::{export, ExportFormat, ExportOptions, ExportStats, Filter};
use matcher::{Indicator, IndicatorType, Severity, Tlp};
use std::process::Command;

/// An indicator with the fields the fixtures vary.
pub fn ind(
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
    i.last_seen = Some(1_764_000_000);
    i
}

/// Values that fail the strict re-check (each is rejected, never written).
pub const INVALID: usize = 5;

/// The small fixed indicator list of the golden files, hostile entries included.
pub fn fixture() -> Vec<Indicator> {
    use IndicatorType as T;
    use Severity::*;
    let mut v = Vec::new();
    let mut a = ind("198.51.100.7", T::Ipv4, High, 90, &["c2"], "feodo");
    a.reference = Some("https://feodotracker.abuse.ch/browse/host/198.51.100.7/".into());
    v.push(a);
    v.push(ind(
        "198.51.100.0/25",
        T::Ipv4,
        Medium,
        70,
        &["scanner"],
        "dshield",
    ));
    v.push(ind(
        "198.51.100.128/25",
        T::Ipv4,
        Medium,
        70,
        &["scanner"],
        "dshield",
    ));
    let mut d = ind(
        "203.0.113.0/24",
        T::Ipv4,
        High,
        95,
        &["botnet"],
        "spamhaus-drop",
    );
    d.reference = Some("SBL256893".into());
    v.push(d);
    let mut allow = ind("203.0.113.64/26", T::Ipv4, Low, 100, &[], "operator");
    allow.allowlist = true;
    v.push(allow);
    v.push(ind(
        "2001:db8:bad::/48",
        T::Ipv6,
        High,
        80,
        &["c2"],
        "feed-v6",
    ));
    v.push(ind("2001:db8:bad:1::5", T::Ipv6, Low, 60, &[], "feed-v6"));
    let mut e = ind("evil.example", T::Fqdn, High, 90, &["malware"], "urlhaus");
    e.description = Some(
        "Emotet \"loader\"; see |pipe| $(id) `id`\nnext line\t<script>alert(1)</script>".into(),
    );
    e.provider = Some("abuse.ch".into());
    e.tlp = Tlp::Amber;
    e.expires = Some(1_770_000_000);
    // Its STIX id: in the JSON exports and Zeek's meta.desc, nowhere else.
    e.external_id = Some("indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d".into());
    v.push(e);
    let mut p = ind(
        "login.phish.example",
        T::Fqdn,
        Medium,
        75,
        &["phishing"],
        "openphish",
    );
    p.exact_only = true;
    p.derived = true;
    v.push(p);
    let mut al = ind(
        "cdn.allowed.example",
        T::Fqdn,
        High,
        90,
        &["malware"],
        "urlhaus",
    );
    al.allowlisted_by = Some("tranco".into());
    v.push(al);
    v.push(ind(
        "http://evil.example/gate.php?id=1;drop",
        T::Url,
        High,
        90,
        &["c2"],
        "urlhaus",
    ));
    v.push(ind(
        "http://198.51.100.9:8080/a%20b/x.exe",
        T::Url,
        Medium,
        80,
        &["malware"],
        "urlhaus",
    ));
    v.push(ind(
        "https://secure.phish.example/login",
        T::Url,
        Medium,
        75,
        &["phishing"],
        "openphish",
    ));
    v.push(ind(
        "bad@phish.example",
        T::Email,
        Low,
        50,
        &["spam"],
        "spamtrap",
    ));
    v.push(ind(
        "44d88612fea8a8f36de82e1278abb02f",
        T::Md5,
        Medium,
        100,
        &["malware"],
        "eicar",
    ));
    v.push(ind(
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        T::Sha256,
        Medium,
        100,
        &["malware"],
        "eicar",
    ));
    v.push(ind(
        "d5b2a5e5a4f3c2b1a0f9e8d7c6b5a4f3e2d1c0b9",
        T::X509Sha1,
        High,
        90,
        &["c2"],
        "sslbl",
    ));
    v.push(ind("/gate.php", T::Pattern, Low, 40, &[], "patterns"));
    // Hostile tags, sources and provider on a valid value.
    let mut h = ind(
        "hostile-meta.example",
        T::Fqdn,
        Low,
        55,
        &["c2\"; sid:1; )", "x|y;z"],
        "feed;\"x\n",
    );
    h.provider = Some("=cmd|' /C calc'!A0".into());
    h.reference = Some("http://ref.example/\"; pcre:\"/x/\"".into());
    v.push(h);
    // Invalid values (INVALID of them): never written anywhere.
    v.push(ind(
        "evil.example\"; sid:1; )",
        T::Fqdn,
        High,
        90,
        &[],
        "hostile",
    ));
    v.push(ind("1.2.3.4; rm -rf /", T::Ipv4, High, 90, &[], "hostile"));
    v.push(ind(
        "http://x.example/\"|00|\n",
        T::Url,
        High,
        90,
        &[],
        "hostile",
    ));
    v.push(ind("$(reboot).example", T::Fqdn, High, 90, &[], "hostile"));
    v.push(ind(
        "2001:db8::1\n-A INPUT -j ACCEPT",
        T::Ipv6,
        High,
        90,
        &[],
        "hostile",
    ));
    v
}

/// The fixed options of the golden files.
pub fn options() -> ExportOptions {
    ExportOptions {
        snapshot_version: 42,
        created: 1_764_306_000,
        sensor_name: "sensor-1".into(),
        ..ExportOptions::default()
    }
}

/// Run one export into a string.
pub fn run(
    format: ExportFormat,
    inds: &[Indicator],
    filter: &Filter,
    opts: &ExportOptions,
) -> (String, ExportStats) {
    let mut out = Vec::new();
    let stats = export(format, &mut inds.iter().cloned(), filter, opts, &mut out)
        .unwrap_or_else(|e| panic!("export {format}: {e}"));
    (String::from_utf8(out).expect("utf-8 output"), stats)
}

/// True when `tool` is on PATH; prints a loud line when it is not.
pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("TOOL ABSENT: {tool} (install it to run this check)");
    }
    ok
}

/// The shared corpus (`$TRAWL_CORPUS`, else `../shared/corpus`), the CLI tests' helper.
pub use crate::common::corpus;

/// A network namespace for the life of the value (deleted on drop).
pub struct Netns(pub String);

impl Netns {
    /// Create `trawl-test-<pid>-<tag>`; `None` (with a loud line) when not permitted.
    pub fn new(tag: &str) -> Option<Netns> {
        let name = format!("trawl-test-{}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            Some(Netns(name))
        } else {
            eprintln!("NETNS ABSENT: cannot create network namespace {name} (needs root)");
            None
        }
    }

    /// Run `sh -c script` inside the namespace with `input` on stdin.
    pub fn run(&self, script: &str, input: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_string();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().expect("wait");
        let _ = feeder.join();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
