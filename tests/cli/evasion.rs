//! `trawl replay` of the crafted evasion capture (tests/common/crafted.rs): a listed address
//! reached through fragments that never reassemble, cut transport headers, tunnels and ICMP
//! errors alerts once per flow and direction, on the packet that first shows it.

use crate::common::crafted::evasion_frames;
use crate::common::*;
use ingest::packet::{LinkType, PcapWriter};

#[test]
fn replay_alerts_on_every_ip_header_once_per_flow_direction() {
    let data = sample_snapshot();
    let frames = evasion_frames();
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(1_764_309_600_000_000_000 + i as i64, &f.bytes)
            .unwrap();
    }
    let pcap = data.path().join("evasion.pcap");
    std::fs::write(&pcap, w.into_inner()).unwrap();
    let out = trawl_ok(&["-q", "replay", "--data", p(data.path()), p(&pcap)]);
    let got: Vec<(u64, String, String)> = json_lines(&out)
        .iter()
        .map(|a| {
            (
                a["trawl"]["capture"]["packet"].as_u64().unwrap(),
                a["trawl"]["matched"]["field"].as_str().unwrap().to_string(),
                a["trawl"]["matched"]["indicator"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String, String)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.new_flow_to_listed)
        .map(|(i, f)| {
            let cidr = if f.listed_v6 {
                "2a0e:1c80::/29"
            } else {
                "185.220.100.0/22"
            };
            (i as u64 + 1, "destination.ip".to_string(), cidr.to_string())
        })
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want, "alerts: {got:?}");
}
