//! `trawl replay --bpf`: libpcap's filter syntax, as for `trawl sniff`, selects the packets
//! decoded from a file.

use crate::common::*;
use std::collections::BTreeSet;

/// (packet number, matched field) of every alert.
fn hits(out: &str) -> BTreeSet<(u64, String)> {
    json_lines(out)
        .iter()
        .map(|a| {
            (
                a["trawl"]["capture"]["packet"].as_u64().unwrap(),
                a["trawl"]["matched"]["field"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn replay_bpf_decodes_only_the_packets_the_filter_passes() {
    let data = sample_snapshot();
    let d = p(data.path());
    let all = hits(&trawl_ok(&[
        "-q",
        "replay",
        "-d",
        d,
        "samples/pcaps/demo.pcap",
    ]));
    // The connection to the listed 185.220.100.5 (packets 11 and 12) left out, the rest kept.
    let not_listed = hits(&trawl_ok(&[
        "-q",
        "replay",
        "-d",
        d,
        "--bpf",
        "not host 185.220.100.5",
        "samples/pcaps/demo.pcap",
    ]));
    let want: BTreeSet<_> = all
        .iter()
        .filter(|(n, _)| *n != 11 && *n != 12)
        .cloned()
        .collect();
    assert!(all.len() > want.len());
    assert_eq!(not_listed, want);
    // DNS only.
    let dns = hits(&trawl_ok(&[
        "-q",
        "replay",
        "-d",
        d,
        "--bpf",
        "udp port 53",
        "samples/pcaps/demo.pcap",
    ]));
    assert!(!dns.is_empty());
    assert!(dns.iter().all(|(_, f)| f.starts_with("dns.")), "{dns:?}");
    // The summary counts what the filter left out: 16 packets, 5 of them UDP port 53
    // (`tshark -r samples/pcaps/demo.pcap -Y udp.port==53`).
    let out = trawl(&[
        "replay",
        "-d",
        d,
        "--bpf",
        "udp port 53",
        "samples/pcaps/demo.pcap",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BPF filter: 11 packets left out"), "{err}");
}

#[test]
fn replay_bpf_syntax_error_names_the_expression() {
    let data = sample_snapshot();
    let out = trawl(&[
        "replay",
        "-d",
        p(data.path()),
        "--bpf",
        "port banana",
        "samples/pcaps/demo.pcap",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("BPF filter \"port banana\""), "{err}");
}

/// `trawl replay DIR`: the directory's captures in the order of their first packet (not of
/// their names), one flow table across them: the demo capture cut in two, the later half in
/// the file whose name sorts first, gives the same alerts as the whole file, none twice.
#[test]
fn replay_dir_orders_files_by_first_packet_and_keeps_flows_across_them() {
    use ingest::packet::{read_capture, LinkType, PcapWriter};
    let data = sample_snapshot();
    let d = p(data.path());
    let dir = tempfile::tempdir().unwrap();
    let mut halves = [
        PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap(),
        PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap(),
    ];
    // Packets 1-11 (up to the SYN to the listed address) first, 12-16 (its SYN-ACK on) after.
    read_capture(&root().join("samples/pcaps/demo.pcap"), |pkt| {
        let half = usize::from(pkt.number > 11);
        halves[half].write(pkt.ts_ns, pkt.data).unwrap();
    })
    .unwrap();
    let [early, late] = halves;
    std::fs::write(dir.path().join("b-early.pcap"), early.into_inner()).unwrap();
    std::fs::write(dir.path().join("a-late.pcap"), late.into_inner()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a capture\n").unwrap();
    let whole = json_lines(&trawl_ok(&[
        "-q",
        "replay",
        "-d",
        d,
        "samples/pcaps/demo.pcap",
    ]));
    let out = trawl(&["replay", "-d", d, p(dir.path())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("notes.txt: no packet in its first MiB"),
        "{err}"
    );
    let split = json_lines(&String::from_utf8(out.stdout).unwrap());
    let what = |alerts: &[serde_json::Value]| -> Vec<(String, String)> {
        alerts
            .iter()
            .map(|a| {
                (
                    a["trawl"]["matched"]["field"].as_str().unwrap().to_string(),
                    a["trawl"]["matched"]["indicator"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    // Same alerts in the same order: the early file first, the SYN-ACK's direction once.
    assert_eq!(what(&split), what(&whole));
    let first = split[0]["trawl"]["capture"]["file"].as_str().unwrap();
    assert!(first.ends_with("b-early.pcap"), "{first}");
}
