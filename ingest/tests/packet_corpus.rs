//! Packet decoding checked against tools no one here wrote: tshark 4.0's extraction of every
//! corpus capture (truth/tshark) and Zeek's own dns/http/ssl logs (pcaps/zeek/*).
//!
//! Every difference is either fixed or listed below with its reason; the lists are asserted
//! both ways (an exception that no longer happens fails too, so the list stays honest).

use ingest::packet::{read_capture, DecoderLimits, PacketDecoder};
use ingest::{Observation, Origin};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("CORPUS ABSENT: {}", p.display());
        None
    }
}

/// Decode a capture in one worker, in order.
fn observe(path: &Path) -> Vec<Observation<'static>> {
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    let name: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    let _ = read_capture(path, |p| {
        dec.decode(
            p.link,
            p.ts_ns,
            p.data,
            Origin::Packet {
                capture: Cow::Borrowed(name),
                number: p.number,
            },
            &mut out,
        )
    });
    out
}

fn read_tsv(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[derive(Default, Debug)]
struct Kinds {
    dns: BTreeSet<String>,
    http: BTreeSet<String>,
    tls: BTreeSet<String>,
    quic: BTreeSet<String>,
    ips: BTreeSet<String>,
}

fn pair(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{x} {y}")
}

/// tshark writes IPv6 addresses in the compressed form; normalise through std.
fn ip(s: &str) -> String {
    s.parse::<std::net::IpAddr>()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| s.to_string())
}

fn url_from(host: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        uri.to_string()
    } else if uri.starts_with('/') {
        format!("http://{host}{uri}")
    } else {
        format!("http://{host}/{uri}")
    }
}

fn tshark_kinds(truth: &Path, rel: &str) -> Kinds {
    let base = rel.replace('/', "__");
    let f = |kind: &str| truth.join(format!("{base}.{kind}.tsv"));
    let mut k = Kinds::default();
    for r in read_tsv(&f("dns_queries")) {
        if let Some(n) = r.get(5) {
            for n in n.split(',') {
                k.dns.insert(n.to_string());
            }
        }
    }
    for r in read_tsv(&f("dns_answers")) {
        if let Some(n) = r.get(1) {
            for n in n.split(',') {
                k.dns.insert(n.to_string());
            }
        }
    }
    for r in read_tsv(&f("http_requests")) {
        if let (Some(h), Some(u)) = (r.get(7), r.get(8)) {
            k.http.insert(url_from(h, u));
        }
    }
    for r in read_tsv(&f("tls_clienthello")) {
        if let Some(s) = r.last().filter(|s| !s.is_empty()) {
            k.tls.insert(s.clone());
        }
    }
    for r in read_tsv(&f("quic_sni")) {
        if let Some(s) = r.last().filter(|s| !s.is_empty()) {
            k.quic.insert(s.clone());
        }
    }
    for r in read_tsv(&f("ip_conversations")) {
        if let (Some(a), Some(b)) = (r.first(), r.get(1)) {
            k.ips.insert(pair(&ip(a), &ip(b)));
        }
    }
    // A QUIC ClientHello is also a tls_clienthello row in tshark: keep it under quic only.
    let q = k.quic.clone();
    k.tls.retain(|s| !q.contains(s));
    k
}

fn our_kinds(obs: &[Observation<'_>]) -> Kinds {
    let mut k = Kinds::default();
    for o in obs {
        if let Some(n) = &o.dns_question_name {
            k.dns.insert(n.to_string());
        }
        if o.dataset == "http" {
            if let Some(u) = &o.url_full {
                k.http.insert(u.to_string());
            }
        }
        if let Some(s) = &o.tls_sni {
            if o.protocol == Some("quic") {
                k.quic.insert(s.to_string());
            } else if o.tls_server_sha1.is_none() {
                k.tls.insert(s.to_string());
            }
        }
        if let (Some(a), Some(b)) = (o.source_ip, o.destination_ip) {
            k.ips.insert(pair(&a.to_string(), &b.to_string()));
        }
    }
    k
}

/// Differences from tshark we accept: (capture, kind, value, "+" we report it / "-" we
/// do not, reason).
const MDNS: &str = "mDNS (UDP 5353) is link-local service discovery, not internet name resolution: trawl decodes DNS on port 53 only";
const FRAG9: &str = "suricata-verify/ipv6-evasion_ipv6-malformed-fragments-9/frag-9.pcap";
const FRAG9B: &str = "suricata-verify/mdns/frag-9.pcap";
const MDNS_NA: &str = "zeek/mdns-no-assoc/mdns-no-assoc.pcap";
const EXCEPTIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("suricata-verify/dns-over-http2/dns_over_https.pcap", "dns", "nav-edge.smartscreen.microsoft.com", "-",
     "DNS over HTTPS (DNS inside HTTP/2 frames): trawl does not decode HTTP/2 bodies"),
    ("suricata-verify/dns-over-http2/dns_over_https.pcap", "dns", "www.gstatic.com", "-",
     "DNS over HTTPS (DNS inside HTTP/2 frames): trawl does not decode HTTP/2 bodies"),
    ("suricata-verify/dns-udp-junkrequest-first/input.pcap", "dns", "", "-",
     "the junk request is not DNS; tshark prints an empty name for it, trawl rejects and counts it"),
    (FRAG9, "dns", "", "-", MDNS),
    (FRAG9, "dns", "92e80812._sub._apple-mobdev2._tcp.local", "-", MDNS),
    (FRAG9, "dns", "_apple-mobdev._tcp.local", "-", MDNS),
    (FRAG9, "dns", "_apple-pairable._tcp.local", "-", MDNS),
    (FRAG9B, "dns", "", "-", MDNS),
    (FRAG9B, "dns", "92e80812._sub._apple-mobdev2._tcp.local", "-", MDNS),
    (FRAG9B, "dns", "_apple-mobdev._tcp.local", "-", MDNS),
    (FRAG9B, "dns", "_apple-pairable._tcp.local", "-", MDNS),
    (MDNS_NA, "dns", "", "-", MDNS),
    (MDNS_NA, "dns", "initial-query-a.local", "-", MDNS),
    (MDNS_NA, "dns", "initial-query-aaaa.local", "-", MDNS),
    (MDNS_NA, "dns", "v6-initial.local", "-", MDNS),
    ("tcpdump/dns-badlabel.pcap", "dns", "<Name too long>", "-",
     "tshark's placeholder for a name it could not decode; trawl rejects the message (counted)"),
    ("tcpdump/dns_fwdptr.pcap", "dns", "<Name too long>", "-",
     "tshark's placeholder for a name it could not decode; trawl rejects the message (counted)"),
    ("tcpdump/dns_udp_8053.pcap", "dns", "www.tcpdump.org", "-",
     "DNS on UDP 8053 (tshark was told decode-as); trawl decodes DNS on port 53 only"),
    ("zeek/http-09/http_09.pcap", "http", "http://127.0.0.1/zeek.html", "+",
     "HTTP/0.9 request (`GET /zeek.html`, no version, no headers): tshark waits for headers that \
      never come, Zeek's http.log reports it (version 0.9) and so does trawl"),
];

#[test]
fn tshark_truth_every_capture() {
    let Some(c) = corpus() else { return };
    let truth = c.join("truth/tshark");
    let index = read_tsv(&truth.join("INDEX.tsv"));
    assert!(index.len() > 40, "INDEX.tsv has {} rows", index.len());
    let mut unexplained = Vec::new();
    let mut seen_exceptions = BTreeSet::new();
    for row in index.iter().skip(1) {
        let rel = &row[0];
        let path = c.join("pcaps").join(rel);
        let obs = observe(&path);
        let ours = our_kinds(&obs);
        let theirs = tshark_kinds(&truth, rel);
        let mut line = format!("{rel}:");
        for (kind, a, b) in [
            ("dns", &ours.dns, &theirs.dns),
            ("http", &ours.http, &theirs.http),
            ("tls", &ours.tls, &theirs.tls),
            ("quic", &ours.quic, &theirs.quic),
            ("ip", &ours.ips, &theirs.ips),
        ] {
            line.push_str(&format!(" {kind} {}/{}", a.len(), b.len()));
            for (sign, v) in a
                .difference(b)
                .map(|v| ("+", v))
                .chain(b.difference(a).map(|v| ("-", v)))
            {
                match EXCEPTIONS
                    .iter()
                    .find(|e| e.0 == rel && e.1 == kind && e.2 == v && e.3 == sign)
                {
                    Some(e) => {
                        seen_exceptions.insert((e.0, e.1, e.2, e.3));
                    }
                    None => unexplained.push(format!("{rel} {kind} {sign}{v}")),
                }
            }
        }
        eprintln!("{line}");
    }
    for e in EXCEPTIONS {
        assert!(
            seen_exceptions.contains(&(e.0, e.1, e.2, e.3)),
            "exception no longer happens (remove it): {e:?}"
        );
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences from tshark:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
}

#[allow(dead_code)]
fn by_packet(obs: &[Observation<'_>]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for o in obs {
        if let Origin::Packet { number, .. } = o.origin {
            *m.entry(number).or_default() += 1;
        }
    }
    m
}
