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

/// TLS: record-stream scan, ClientHello (+ JA3/JA4), ServerHello, Certificate.
pub fn tls(data: &[u8]) {
    if let Ok(ch) = tls::parse_client_hello(data) {
        let _ = tls::ja3(&ch);
        let _ = tls::ja4(&ch, false);
    }
    let _ = tls::scan_handshake(data, 1 << 16);
    let _ = tls::server_hello_version(data);
    let _ = tls::first_cert_sha1(data);
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
