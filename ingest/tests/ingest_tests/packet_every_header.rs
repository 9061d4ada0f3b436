//! Every IP header the decoder sees is reported (issue 23): fragments before reassembly, cut
//! transport headers, both ends of tunnels and the header an ICMP error quotes, each frame of
//! the crafted evasion capture (tests/common/crafted.rs) compared with the addresses tshark
//! decodes in it, and each flow reported once per direction.

use crate::crafted::{evasion_frames, nested_ip_in_ip, LISTED4, LISTED6};
use ingest::packet::{DecoderLimits, LinkType, PacketDecoder, PcapWriter};
use ingest::{Observation, Origin};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The `flow` observations of one frame decoded by a fresh decoder.
fn flows_of(frame: &[u8]) -> Vec<Observation<'static>> {
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    dec.decode(LinkType::ETHERNET, 0, frame, Origin::None, &mut out);
    out.retain(|o| o.dataset == "flow");
    out
}

fn addresses(obs: &[Observation<'_>]) -> BTreeSet<String> {
    obs.iter()
        .flat_map(|o| [o.source_ip, o.destination_ip])
        .flatten()
        .map(|a| a.to_string())
        .collect()
}

/// Every IPv4/IPv6 source and destination address tshark decodes in each frame of `pcap`
/// (outer, inner and quoted headers alike).
fn tshark_addresses(pcap: &std::path::Path) -> Vec<BTreeSet<String>> {
    let pcap = pcap.to_str().expect("a UTF-8 temporary path");
    // No reassembly: a first fragment's payload is dissected as far as it goes.
    #[rustfmt::skip]
    let out = crate::tshark::output(&[
        "-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE", "-r", pcap,
        "-T", "fields", "-E", "separator=,", "-E", "occurrence=a", "-E", "aggregator=,",
        "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
    ]);
    out.lines()
        .map(|l| {
            l.split(',')
                .filter(|a| !a.is_empty())
                .map(|a| a.parse::<IpAddr>().expect("tshark address").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_ip_header_of_each_evasion_is_reported_as_tshark_decodes_it() {
    let frames = evasion_frames();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("evasion.pcap");
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as i64, &f.bytes)
            .unwrap();
    }
    std::fs::write(&pcap, w.into_inner()).unwrap();
    let theirs = tshark_addresses(&pcap);
    assert_eq!(theirs.len(), frames.len());
    let listed: BTreeSet<String> = [IpAddr::from(LISTED4), IpAddr::from(LISTED6)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    for (f, theirs) in frames.iter().zip(&theirs) {
        let ours = flows_of(&f.bytes);
        assert_eq!(&addresses(&ours), theirs, "{}", f.case);
        assert!(
            ours.iter().any(|o| o
                .destination_ip
                .is_some_and(|d| listed.contains(&d.to_string()))),
            "{}: no flow to the listed address",
            f.case
        );
        // No made-up port 0: a flow whose ports are unknown has none.
        for o in &ours {
            assert_ne!(o.source_port, Some(0), "{}", f.case);
            if matches!(o.transport, Some("tcp" | "udp")) {
                assert_eq!(
                    o.source_port.is_some(),
                    o.community_id.is_some(),
                    "{}",
                    f.case
                );
            }
        }
    }
}

/// Decoded in order by one decoder, a frame adds a flow to the listed address only when it
/// is a new flow direction: the cut SYN is the first fragment's flow, a second later
/// fragment the first one's addresses.
#[test]
fn evasions_in_one_capture_report_each_flow_direction_once() {
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    for f in evasion_frames() {
        let mut out = Vec::new();
        dec.decode(LinkType::ETHERNET, 0, &f.bytes, Origin::None, &mut out);
        let to_listed = out
            .iter()
            .filter(|o| o.dataset == "flow")
            .filter(|o| {
                o.destination_ip == Some(IpAddr::from(LISTED4))
                    || o.destination_ip == Some(IpAddr::from(LISTED6))
            })
            .count();
        assert_eq!(to_listed, usize::from(f.new_flow_to_listed), "{}", f.case);
    }
    let st = dec.stats();
    assert_eq!(st.frag_reassembled, 0);
    assert!(st.dropped_by_reason.contains_key("tcp: truncated header"));
    assert!(st.dropped_by_reason.contains_key("udp: truncated header"));
}

/// Tunnels are followed to the decoder's depth bound and no further (counted).
#[test]
fn tunnel_nesting_is_bounded() {
    let max = usize::from(DecoderLimits::default().max_depth);
    let inner = |o: &Observation<'_>| o.destination_ip == Some(IpAddr::from(LISTED4));
    assert!(flows_of(&nested_ip_in_ip(max)).iter().any(inner));
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut out = Vec::new();
    dec.decode(
        LinkType::ETHERNET,
        0,
        &nested_ip_in_ip(max + 1),
        Origin::None,
        &mut out,
    );
    assert!(!out.iter().any(inner));
    // Every tunnel's own header still counts.
    assert_eq!(out.iter().filter(|o| o.dataset == "flow").count(), max + 1);
    assert_eq!(
        dec.stats().dropped_by_reason.get("tunnel: too deep"),
        Some(&1)
    );
}

/// A GRE packet whose outer IPv4 packet is fragmented: the first fragment already reports
/// the inner flow to the listed address (with its ports, read from the inner headers it
/// carries); once the second fragment completes the datagram, the inner DNS query is parsed
/// (as tshark, reassembling, decodes it) and the flow is not reported again.
#[test]
fn a_fragmented_gre_packet_reports_its_inner_flow_then_parses_it_reassembled() {
    let frames = crate::crafted::gre_dns_in_fragments("tunnelled.example");
    let mut dec = PacketDecoder::new(DecoderLimits::default());
    let mut first = Vec::new();
    dec.decode(LinkType::ETHERNET, 0, &frames[0], Origin::None, &mut first);
    let inner: Vec<_> = first
        .iter()
        .filter(|o| o.destination_ip == Some(IpAddr::from(LISTED4)))
        .collect();
    assert_eq!(inner.len(), 1, "{first:?}");
    assert_eq!(
        (
            inner[0].dataset,
            inner[0].source_port,
            inner[0].destination_port
        ),
        ("flow", Some(40018), Some(53))
    );
    assert!(first.iter().all(|o| o.dns_question_name.is_none()));
    let mut second = Vec::new();
    dec.decode(LinkType::ETHERNET, 1, &frames[1], Origin::None, &mut second);
    assert_eq!(dec.stats().frag_reassembled, 1);
    let names: Vec<_> = second
        .iter()
        .filter_map(|o| o.dns_question_name.as_deref())
        .collect();
    assert_eq!(names, ["tunnelled.example"], "{second:?}");
    assert!(
        !second
            .iter()
            .any(|o| o.dataset == "flow" && o.destination_ip == Some(IpAddr::from(LISTED4))),
        "the inner flow reported again: {second:?}"
    );

    // tshark, reassembling (its default), finds the same query in the second frame.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("gre-fragments.pcap");
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as i64, f).unwrap();
    }
    std::fs::write(&pcap, w.into_inner()).unwrap();
    let pcap = pcap.to_str().expect("a UTF-8 temporary path");
    #[rustfmt::skip]
    let out = crate::tshark::output(&[
        "-n", "-r", pcap, "-T", "fields", "-e", "frame.number", "-e", "dns.qry.name",
    ]);
    assert_eq!(out, "1\t\n2\ttunnelled.example\n");
}
