//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/pkt_*.rs`) and the
//! arbitrary-bytes property tests: each must return without panicking on any input.

use super::capture::{read_capture_from, LinkType};
use super::decoder::{DecoderLimits, PacketDecoder};
use super::{dns, http, quic, tls};
use crate::observation::Origin;

/// DNS message parser.
pub fn dns(data: &[u8]) {
    let _ = dns::parse(data);
}

/// TLS: record-stream scan, ClientHello (+ JA3/JA4), ServerHello (+ JA4S), Certificate.
pub fn tls(data: &[u8]) {
    if let Ok(ch) = tls::parse_client_hello(data) {
        let _ = tls::ja3(&ch);
        let _ = tls::ja4(&ch, false);
    }
    let _ = tls::scan_handshake(data, 1 << 16);
    if let Ok(sh) = tls::parse_server_hello(data) {
        let _ = tls::ja4s(&sh, false);
    }
    let _ = tls::first_cert_hashes(data);
}

/// QUIC: long headers, Initial decryption with keys from the packet's DCID, CRYPTO assembly.
pub fn quic(data: &[u8]) {
    if let Ok(h) = quic::long_header(data, 0) {
        if let Some(k) = quic::InitialKeys::client(h.version, h.dcid) {
            let mut c = Vec::new();
            let _ = quic::decrypt_initial(data, 0, &h, &k, &mut c);
            let _ = quic::assemble(&c, 4096);
        }
    }
}

/// HTTP request head parser.
pub fn http(data: &[u8]) {
    if let http::HttpParse::Request(r) = http::parse_request(data) {
        if let Some(h) = r.host {
            let _ = http::host_domain(h);
        }
    }
}

/// The whole decoder: the first byte picks a link type, the rest is split into packets at
/// 0xFF 0xFE markers; also the capture reader over the raw bytes.
pub fn decode(data: &[u8]) {
    let links = [
        LinkType::ETHERNET,
        LinkType::RAW,
        LinkType::NULL,
        LinkType::LINUX_SLL,
        LinkType::LINUX_SLL2,
        LinkType::NFLOG,
        LinkType::PPP,
        LinkType::LOOP,
    ];
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let link = links[usize::from(sel) % links.len()];
    let limits = DecoderLimits {
        max_flows: 64,
        max_frag_bytes: 1 << 16,
        max_frag_datagrams: 16,
        ..Default::default()
    };
    let mut dec = PacketDecoder::new(limits);
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut n = 0u64;
    while i + 1 < rest.len() {
        if rest[i] == 0xff && rest[i + 1] == 0xfe {
            n += 1;
            dec.decode(link, n as i64, &rest[start..i], Origin::None, &mut out);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    dec.decode(link, n as i64 + 1, &rest[start..], Origin::None, &mut out);
    let _ = read_capture_from(std::path::Path::new("fuzz"), &mut &data[..], &mut |_| {});
}

/// The capture file reader past its headers: the first byte picks a valid file header
/// (classic pcap in either byte order and resolution, or a pcapng section with one
/// interface, little- or big-endian), the rest follows it as records or blocks. Packets come
/// numbered 1, 2, 3... and the error, if any, counts exactly the packets delivered.
pub fn capture(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut file = match sel % 6 {
        0 => vec![0xd4, 0xc3, 0xb2, 0xa1],
        1 => vec![0xa1, 0xb2, 0xc3, 0xd4],
        2 => vec![0x4d, 0x3c, 0xb2, 0xa1],
        3 => vec![0xa1, 0xb2, 0x3c, 0x4d],
        k => {
            let le = k == 4;
            let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let mut f = Vec::new();
            f.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
            f.extend_from_slice(&w32(28));
            f.extend_from_slice(&w32(0x1a2b_3c4d));
            f.extend_from_slice(&w16(1));
            f.extend_from_slice(&w16(0));
            f.extend_from_slice(&[0xff; 8]);
            f.extend_from_slice(&w32(28));
            f.extend_from_slice(&w32(1));
            f.extend_from_slice(&w32(20));
            f.extend_from_slice(&w16(1));
            f.extend_from_slice(&w16(0));
            f.extend_from_slice(&w32(0));
            f.extend_from_slice(&w32(20));
            f.extend_from_slice(rest);
            return check(&f);
        }
    };
    // version 2.4, zone, sigfigs, snaplen 65535, Ethernet, in the magic's byte order.
    let le = sel % 6 == 0 || sel % 6 == 2;
    let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    file.extend_from_slice(&w16(2));
    file.extend_from_slice(&w16(4));
    file.extend_from_slice(&w32(0));
    file.extend_from_slice(&w32(0));
    file.extend_from_slice(&w32(65535));
    file.extend_from_slice(&w32(1));
    file.extend_from_slice(rest);
    check(&file);
}

fn check(file: &[u8]) {
    let mut n = 0u64;
    let r = read_capture_from(std::path::Path::new("fuzz"), &mut &file[..], &mut |p| {
        n += 1;
        assert_eq!(p.number, n, "packets numbered in order");
    });
    if let Err(super::capture::CaptureError::Corrupt { after_packets, .. }) = r {
        assert_eq!(after_packets, n, "the error counts the packets delivered");
    }
}
