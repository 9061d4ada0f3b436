//! TCP streams and the application-layer dispatch: per-direction stream state (sequence
//! tracking, buffers across segments), the stream's [`Mode`] decided on its first payload,
//! DNS over TCP, HTTP request heads, TLS ClientHellos, ServerHellos and server certificates; and for UDP,
//! DNS messages and QUIC Initials (CRYPTO data gathered across packets). Each function takes
//! the flow entry and the bounds it needs and reports into an [`Emit`].

use super::flow::{Flow, Mode};
use super::ip::Segment;
use super::limits::DecoderLimits;
use super::link::be16;
use super::stats::DecodeStats;
use super::tuple::{PacketMeta, Tuple};
use super::{dns, http, quic, tls};
use crate::observation::{DnsAnswer, Observation};
use std::borrow::Cow;
use std::net::IpAddr;

/// What a stream direction carries, judged on its first payload.
#[inline]
fn mode_of_first_payload(payload: &[u8], sport: u16, dport: u16) -> Mode {
    let tls_handshake =
        |typ: u8| payload.len() >= 6 && payload[0] == 22 && payload[1] == 3 && payload[5] == typ;
    if tls_handshake(1) {
        Mode::TlsClient
    } else if tls_handshake(2) {
        Mode::TlsServer
    } else if sport == 53 || dport == 53 {
        Mode::Dns
    } else if http::looks_like_request(payload) {
        Mode::Http
    } else {
        Mode::Off
    }
}

/// The parsing state of one TCP stream direction (its [`Mode`] is kept in [`Flow::modes`]).
#[derive(Debug, Default)]
struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    skip: u64,
}

/// Where a segment falls in its stream direction (see [`Stream::sequence`]).
enum Seq {
    /// New bytes start at this offset of the payload (before it: retransmitted bytes).
    From(usize),
    /// Only bytes already seen.
    Retransmitted,
    /// Bytes are missing before this segment; the buffered ones were dropped.
    Gap,
}

impl Stream {
    /// Place a segment of `len` bytes starting at `seq` in the stream and advance the next
    /// expected sequence number past it.
    #[inline]
    fn sequence(&mut self, seq: u32, len: usize) -> Seq {
        let next = Some(seq.wrapping_add(len as u32));
        let Some(n) = self.next_seq else {
            self.next_seq = next;
            return Seq::From(0);
        };
        let diff = seq.wrapping_sub(n) as i32;
        if diff < 0 {
            let skip = diff.unsigned_abs() as usize;
            if skip >= len {
                return Seq::Retransmitted;
            }
            self.next_seq = next;
            Seq::From(skip)
        } else if diff > 0 {
            self.buf.clear();
            self.skip = 0;
            self.next_seq = next;
            Seq::Gap
        } else {
            self.next_seq = next;
            Seq::From(0)
        }
    }
}

#[derive(Debug, Default)]
struct QuicState {
    orig_dcid: Vec<u8>,
    version: u32,
    crypto: Vec<(u64, Vec<u8>)>,
    bytes: usize,
    done: bool,
}

/// Application-layer state of a flow, allocated only when a direction has something to
/// parse (a TCP stream in a mode other than `Off`, QUIC Initials).
#[derive(Debug, Default)]
pub(super) struct App {
    dirs: [Stream; 2],
    quic: Option<QuicState>,
    sni: Option<String>,
}

/// Where the stream functions' results go: observations of the packet being decoded
/// (`pkt`) into `out`, messages that do not parse counted in `stats`.
pub(super) struct Emit<'a> {
    pub(super) pkt: &'a PacketMeta,
    pub(super) stats: &'a mut DecodeStats,
    pub(super) out: &'a mut Vec<Observation<'static>>,
}

/// A DNS message in a UDP datagram of packet `t`.
pub(super) fn dns_datagram(t: &Tuple, msg: &[u8], emit: &mut Emit) {
    match dns::parse(msg) {
        Ok(m) => {
            let o = dns_obs(emit.pkt, t, m);
            emit.out.push(o);
        }
        Err(err) => emit.stats.drop(err.reason()),
    }
}

/// A QUIC long-header datagram `d` of packet `t`, direction `dir` of `flow`: the client's
/// Initials are decrypted and their CRYPTO data gathered (up to `max` bytes) until the
/// ClientHello is whole.
pub(super) fn quic_initial(
    t: &Tuple,
    d: &[u8],
    flow: &mut Flow<App>,
    dir: u8,
    max: usize,
    emit: &mut Emit,
) {
    if flow.done() || flow.initiator() != dir {
        return;
    }
    let app = flow.app.get_or_insert_with(Box::default);
    let mut st = app.quic.take().unwrap_or_default();
    if st.done {
        app.quic = Some(st);
        return;
    }
    let mut start = 0;
    let mut err: Option<&'static str> = None;
    while start < d.len() {
        let h = match quic::long_header(d, start) {
            Ok(h) => h,
            Err(e) => {
                if start == 0 {
                    err = Some(e.reason());
                }
                break;
            }
        };
        if h.initial {
            if st.orig_dcid.is_empty() {
                st.orig_dcid = h.dcid.to_vec();
                st.version = h.version;
            }
            let mut ok = false;
            for dc in [st.orig_dcid.clone(), h.dcid.to_vec()] {
                let Some(keys) = quic::InitialKeys::client(h.version, &dc) else {
                    continue;
                };
                let mut frames = Vec::new();
                match quic::decrypt_initial(d, start, &h, &keys, &mut frames) {
                    Ok(()) => {
                        for f in frames {
                            st.bytes += f.1.len();
                            st.crypto.push(f);
                        }
                        ok = true;
                        break;
                    }
                    Err(e) => err = Some(e.reason()),
                }
                if dc == h.dcid {
                    break;
                }
            }
            if ok {
                err = None;
            }
        }
        if h.end <= start {
            break;
        }
        start = h.end;
    }
    if let Some(r) = err {
        emit.stats.drop(r);
    }
    if st.bytes > max {
        emit.stats.drop("quic: crypto buffer overflow");
        st.done = true;
        st.crypto = Vec::new();
    }
    let data = quic::assemble(&st.crypto, max);
    let mut result = None;
    if data.len() >= 4 {
        if data[0] != 1 {
            emit.stats.drop("quic: crypto is not a client hello");
            st.done = true;
        } else {
            let l = usize::from(data[1]) << 16 | usize::from(data[2]) << 8 | usize::from(data[3]);
            if let Some(body) = data.get(4..4 + l) {
                st.done = true;
                result = Some(tls::parse_client_hello(body));
            }
        }
    }
    if st.done {
        st.crypto = Vec::new();
    }
    app.quic = Some(st);
    match result {
        Some(Ok(ch)) => {
            let mut o = emit.pkt.app_obs(t, "tls", "quic");
            o.ja3 = Some(tls::ja3(&ch).into());
            o.ja4 = Some(tls::ja4(&ch, true).into());
            o.tls_sni = ch.sni.map(Cow::Owned);
            emit.out.push(o);
        }
        Some(Err(err)) => emit.stats.drop(err.reason()),
        None => {}
    }
}

/// A TCP segment with a payload, direction `dir` of `flow`: the stream direction's
/// reassembly and parsing, and the observations of what it yields.
pub(super) fn tcp_payload(
    seg: &Segment,
    flow: &mut Flow<App>,
    dir: u8,
    limits: &DecoderLimits,
    emit: &mut Emit,
) {
    let Some((events, sni)) = stream_advance(seg, flow, dir, limits, emit.stats) else {
        return;
    };
    let new_sni = stream_events(&seg.t, events, sni, emit);
    // Keep a ClientHello's SNI on the flow, and drop the flow's state when both directions
    // have nothing more to parse.
    if let Some(s) = new_sni {
        if let Some(app) = flow.app.as_mut() {
            app.sni = Some(s);
        }
    }
    if flow.app.is_some() {
        flow.finish_if_off();
    }
}

/// Add a segment's payload to its stream direction (mode decided on the first payload,
/// in sequence order, bounded buffering) and parse what has accumulated. Returns the
/// events and the flow's SNI as it was before them, or `None` when the segment gives
/// the stream nothing to parse.
fn stream_advance(
    seg: &Segment,
    flow: &mut Flow<App>,
    dir: u8,
    limits: &DecoderLimits,
    stats: &mut DecodeStats,
) -> Option<(Vec<StreamEvent>, Option<String>)> {
    let (t, seq, payload) = (&seg.t, seg.seq, seg.payload);
    let lim = limits.tls_buffer_per_flow;
    let dns_lim = limits.dns_tcp_buffer;
    if flow.done() {
        return None;
    }
    let d = usize::from(dir & 1);
    let mut mode = flow.modes[d];
    if mode == Mode::Off {
        return None;
    }
    if mode == Mode::Unknown {
        mode = mode_of_first_payload(payload, t.sport, t.dport);
        flow.modes[d] = mode;
        if mode == Mode::Off {
            // Both directions decided and nothing to parse: stop looking at this flow.
            flow.finish_if_off();
            return None;
        }
    }
    let app = flow.app.get_or_insert_with(Box::default);
    let st = &mut app.dirs[d];
    let mut seg = match st.sequence(seq, payload.len()) {
        Seq::Retransmitted => return None,
        Seq::From(start) => &payload[start..],
        // A gap ends the stream for length-framed protocols (HTTP resynchronises on
        // the next request line).
        Seq::Gap if mode == Mode::Http => payload,
        Seq::Gap => {
            flow.modes[d] = Mode::Off;
            stats.drop("tcp: gap in stream");
            return None;
        }
    };
    // HTTP body skipping without buffering.
    if mode == Mode::Http && st.skip > 0 && st.buf.is_empty() {
        let n = (st.skip as usize).min(seg.len());
        st.skip -= n as u64;
        seg = &seg[n..];
        if seg.is_empty() {
            return None;
        }
    }
    let mut buf = std::mem::take(&mut st.buf);
    let work: &[u8] = if buf.is_empty() {
        seg
    } else {
        buf.extend_from_slice(seg);
        &buf
    };
    let sni = app.sni.clone();
    let (consumed, new_mode, skip, events) = parse_stream(mode, work, st.skip, lim);
    let rest = work.get(consumed..).unwrap_or(&[]);
    let cap = if mode == Mode::Dns { dns_lim } else { lim };
    let (final_mode, keep) = if new_mode == Mode::Off || rest.is_empty() {
        (new_mode, Vec::new())
    } else if rest.len() > cap {
        stats.drop(if mode == Mode::Dns {
            "dns: tcp buffer overflow"
        } else {
            "tls: buffer overflow"
        });
        (Mode::Off, Vec::new())
    } else {
        (new_mode, rest.to_vec())
    };
    flow.modes[d] = final_mode;
    st.buf = keep;
    st.skip = skip;
    Some((events, sni))
}

/// Turn a stream's events into observations (`sni`: the flow's SNI before them, for a
/// server certificate). Returns the SNI of a ClientHello among them.
fn stream_events(
    t: &Tuple,
    events: Vec<StreamEvent>,
    sni: Option<String>,
    emit: &mut Emit,
) -> Option<String> {
    let mut new_sni = None;
    for ev in events {
        match ev {
            StreamEvent::Dns(m) => emit.out.push(dns_obs(emit.pkt, t, m)),
            StreamEvent::Http(h) => emit.out.push(http_obs(emit.pkt, t, h)),
            StreamEvent::ClientHello(ch) => {
                let mut o = emit.pkt.app_obs(t, "tls", "tls");
                o.ja3 = Some(tls::ja3(&ch).into());
                o.ja4 = Some(tls::ja4(&ch, false).into());
                new_sni = ch.sni.clone();
                o.tls_sni = ch.sni.map(Cow::Owned);
                emit.out.push(o);
            }
            StreamEvent::ServerHello(ja4s) => {
                let mut o = emit.pkt.app_obs(t, "tls", "tls");
                o.tls_server_ja4s = Some(ja4s.into());
                o.tls_sni = sni.clone().map(Cow::Owned);
                emit.out.push(o);
            }
            StreamEvent::ServerCert(h) => {
                let mut o = emit.pkt.app_obs(t, "tls", "tls");
                o.tls_server_sha1 = Some(h.sha1.into());
                o.tls_server_sha256 = Some(h.sha256.into());
                o.tls_sni = sni.clone().map(Cow::Owned);
                emit.out.push(o);
            }
            StreamEvent::Error(r) => emit.stats.drop(r),
        }
    }
    new_sni
}

/// The observation of a DNS message (UDP datagram or TCP stream).
fn dns_obs(pkt: &PacketMeta, t: &Tuple, m: dns::DnsMessage) -> Observation<'static> {
    let mut o = pkt.app_obs(t, "dns", "dns");
    o.dns_question_type = m.qname.as_ref().map(|_| dns::type_name(m.qtype));
    o.dns_question_name = m.qname.map(Cow::Owned);
    o.dns_answers = m
        .answers
        .into_iter()
        .map(|(t, data)| DnsAnswer {
            rtype: dns::type_name(t),
            data: Cow::Owned(data),
        })
        .collect();
    o
}

/// The observation of an HTTP request head: the full URL rebuilt from the request
/// target and `Host` (the destination address when there is none).
fn http_obs(pkt: &PacketMeta, t: &Tuple, h: OwnedHttp) -> Observation<'static> {
    let mut o = pkt.app_obs(t, "http", "http");
    let host = h.host.clone().unwrap_or_else(|| {
        let ip = match t.dst {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        if t.dport == 80 {
            ip
        } else {
            format!("{ip}:{}", t.dport)
        }
    });
    let domain = http::host_domain(&host).to_string();
    let full = if h.uri.starts_with("http://") || h.uri.starts_with("https://") {
        h.uri.clone()
    } else if h.method == "CONNECT" && !h.uri.starts_with('/') {
        format!("https://{}", h.uri)
    } else if h.uri.starts_with('/') {
        format!("http://{host}{}", h.uri)
    } else {
        format!("http://{host}/{}", h.uri)
    };
    let path = full
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
        .map(|p| p.split(['?', '#']).next().unwrap_or(p).to_string());
    o.url_full = Some(full.into());
    o.url_domain = Some(domain.into());
    o.url_path = path.map(Cow::Owned);
    o.http_method = Some(h.method.into());
    o.user_agent = h.user_agent.map(Cow::Owned);
    o
}

/// An owned HTTP request head (the stream buffer does not outlive parsing).
#[derive(Debug)]
struct OwnedHttp {
    method: String,
    uri: String,
    host: Option<String>,
    user_agent: Option<String>,
}

#[derive(Debug)]
enum StreamEvent {
    Dns(dns::DnsMessage),
    Http(OwnedHttp),
    ClientHello(tls::ClientHello),
    /// The JA4S of a ServerHello.
    ServerHello(String),
    ServerCert(tls::CertHashes),
    Error(&'static str),
}

/// Parse what a stream direction has accumulated. Returns (bytes consumed, next mode,
/// HTTP body bytes still to skip, events).
fn parse_stream(
    mode: Mode,
    data: &[u8],
    mut skip: u64,
    max: usize,
) -> (usize, Mode, u64, Vec<StreamEvent>) {
    let mut ev = Vec::new();
    match mode {
        Mode::Dns => {
            let mut p = 0;
            while let Some(l) = be16(data, p) {
                let l = usize::from(l);
                let Some(msg) = data.get(p + 2..p + 2 + l) else {
                    break;
                };
                match dns::parse(msg) {
                    Ok(m) => ev.push(StreamEvent::Dns(m)),
                    Err(e) => ev.push(StreamEvent::Error(e.reason())),
                }
                p += 2 + l;
            }
            (p, Mode::Dns, 0, ev)
        }
        Mode::Http => {
            let mut p = 0;
            loop {
                if skip > 0 {
                    let n = (skip as usize).min(data.len() - p);
                    skip -= n as u64;
                    p += n;
                }
                if p >= data.len() {
                    return (p, Mode::Http, skip, ev);
                }
                match http::parse_request(&data[p..]) {
                    http::HttpParse::Request(r) => {
                        ev.push(StreamEvent::Http(OwnedHttp {
                            method: r.method.to_string(),
                            uri: r.uri.to_string(),
                            host: r.host.map(str::to_string),
                            user_agent: r.user_agent.map(str::to_string),
                        }));
                        p += r.head_len;
                        skip = r.content_length.unwrap_or(0);
                    }
                    http::HttpParse::Incomplete => return (p, Mode::Http, skip, ev),
                    http::HttpParse::NotHttp => return (data.len(), Mode::Http, 0, ev),
                }
            }
        }
        Mode::TlsClient => match tls::scan_handshake(data, max) {
            Ok(scan) => {
                if let Some((_, body)) = scan.messages.iter().find(|m| m.0 == 1) {
                    match tls::parse_client_hello(body) {
                        Ok(ch) => ev.push(StreamEvent::ClientHello(ch)),
                        Err(e) => ev.push(StreamEvent::Error(e.reason())),
                    }
                    (data.len(), Mode::Off, 0, ev)
                } else if scan.ended || !scan.messages.is_empty() {
                    ev.push(StreamEvent::Error("tls: no client hello"));
                    (data.len(), Mode::Off, 0, ev)
                } else {
                    (0, Mode::TlsClient, 0, ev)
                }
            }
            Err(e) => {
                ev.push(StreamEvent::Error(e.reason()));
                (data.len(), Mode::Off, 0, ev)
            }
        },
        Mode::TlsServer | Mode::TlsCertificate => {
            let (consumed, next) = server_handshake(mode, data, max, &mut ev);
            (consumed, next, 0, ev)
        }
        Mode::Unknown | Mode::Off => (data.len(), Mode::Off, 0, ev),
    }
}

/// The server side of a TLS handshake: the ServerHello (reported once, then the stream is
/// in [`Mode::TlsCertificate`]) and, for TLS <= 1.2, the leaf certificate of the Certificate
/// message. The stream is rescanned from its start until the Certificate is whole (bounded
/// by `max`); it ends at the Certificate, a ServerHelloDone without one, TLS 1.3 (the
/// certificate is encrypted) or anything that is not a plaintext handshake record.
/// Returns (bytes consumed, next mode).
fn server_handshake(
    mode: Mode,
    data: &[u8],
    max: usize,
    ev: &mut Vec<StreamEvent>,
) -> (usize, Mode) {
    let scan = match tls::scan_handshake(data, max) {
        Ok(scan) => scan,
        Err(e) => {
            ev.push(StreamEvent::Error(e.reason()));
            return (data.len(), Mode::Off);
        }
    };
    let mut hello_seen = mode == Mode::TlsCertificate;
    for (t, body) in &scan.messages {
        match *t {
            2 if !hello_seen => match tls::parse_server_hello(body) {
                Ok(sh) => {
                    hello_seen = true;
                    let clear_certificate = sh.version <= 0x0303;
                    ev.push(StreamEvent::ServerHello(tls::ja4s(&sh, false)));
                    if !clear_certificate {
                        return (data.len(), Mode::Off);
                    }
                }
                Err(e) => {
                    ev.push(StreamEvent::Error(e.reason()));
                    return (data.len(), Mode::Off);
                }
            },
            11 if hello_seen => {
                match tls::first_cert_hashes(body) {
                    Ok(h) => ev.push(StreamEvent::ServerCert(h)),
                    Err(e) => ev.push(StreamEvent::Error(e.reason())),
                }
                return (data.len(), Mode::Off);
            }
            14 => return (data.len(), Mode::Off),
            _ => {}
        }
    }
    if scan.ended {
        (data.len(), Mode::Off)
    } else if hello_seen {
        (0, Mode::TlsCertificate)
    } else {
        (0, Mode::TlsServer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS record of `content_type` holding `body`.
    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A handshake message of type `t`.
    fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    /// A TLS 1.2 server flight: ServerHello (cipher c030, extensions 0005,0017,ff01,0000 as
    /// in FoxIO's JA4S example), then a Certificate of one `leaf` certificate.
    fn server_flight(leaf: &[u8]) -> Vec<u8> {
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[9; 32]);
        hello.extend_from_slice(&[0, 0xc0, 0x30, 0]);
        hello.extend_from_slice(&[
            0, 17, 0, 5, 0, 0, 0, 0x17, 0, 0, 0xff, 1, 0, 1, 0, 0, 0, 0, 0,
        ]);
        let mut cert = (leaf.len() as u32 + 3).to_be_bytes()[1..].to_vec();
        cert.extend_from_slice(&(leaf.len() as u32).to_be_bytes()[1..]);
        cert.extend_from_slice(leaf);
        let mut flight = record(22, &handshake(2, &hello));
        flight.extend(record(22, &handshake(11, &cert)));
        flight
    }

    /// The ServerHello is reported once, as soon as it is whole; the Certificate when the
    /// rest of the flight has arrived; and a flight longer than the bound is counted, with the
    /// ServerHello already reported.
    #[test]
    fn server_hello_once_then_the_certificate() {
        let leaf = vec![0x30; 3000];
        let flight = server_flight(&leaf);
        let hello_end = 5 + 4 + 38 + 2 + 17;
        let mut ev = Vec::new();
        // Part of the hello: nothing yet.
        let (n, mode) = server_handshake(Mode::TlsServer, &flight[..20], 1 << 15, &mut ev);
        assert_eq!((n, mode, ev.len()), (0, Mode::TlsServer, 0));
        // The hello and part of the certificate.
        let (n, mode) = server_handshake(
            Mode::TlsServer,
            &flight[..hello_end + 100],
            1 << 15,
            &mut ev,
        );
        assert_eq!((n, mode), (0, Mode::TlsCertificate));
        let [StreamEvent::ServerHello(ja4s)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(ja4s, "t120400_c030_4e8089b08790");
        // Rescanned with more data: the hello is not reported again.
        ev.clear();
        let (_, mode) = server_handshake(mode, &flight[..flight.len() - 1], 1 << 15, &mut ev);
        assert_eq!((mode, ev.len()), (Mode::TlsCertificate, 0));
        let (n, mode) = server_handshake(mode, &flight, 1 << 15, &mut ev);
        assert_eq!((n, mode), (flight.len(), Mode::Off));
        let [StreamEvent::ServerCert(h)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        // Python's hashlib over 3000 bytes of 0x30.
        assert_eq!(h.sha1, "d311444b465b4fbc3fda3dc3a2985ae25ea598a1");
        assert_eq!(
            h.sha256,
            "d17fa6df5d48f90ad1e0eb2aa69a44df6a883aa298f4e3e6db97d5ca65221bf5"
        );
        // Over the bound: the scan refuses it (counted by the caller), the hello was reported.
        ev.clear();
        let (n, mode) = server_handshake(Mode::TlsCertificate, &flight, 1000, &mut ev);
        assert_eq!((n, mode), (flight.len(), Mode::Off));
        assert!(
            matches!(
                ev.as_slice(),
                [StreamEvent::Error("tls: handshake too large")]
            ),
            "{ev:?}"
        );
    }

    /// A stream direction places segments by sequence number: the first one starts it,
    /// an overlapping one yields only its new bytes, a retransmission nothing, and a gap
    /// drops what was buffered.
    #[test]
    fn segments_are_placed_by_sequence_number() {
        let mut st = Stream::default();
        assert!(matches!(st.sequence(u32::MAX - 1, 4), Seq::From(0)));
        // Wraps around: next expected is 2.
        assert!(matches!(st.sequence(0, 6), Seq::From(2)));
        assert!(matches!(st.sequence(2, 4), Seq::Retransmitted));
        st.buf.extend_from_slice(b"held");
        st.skip = 7;
        assert!(matches!(st.sequence(9, 1), Seq::Gap));
        assert!(st.buf.is_empty() && st.skip == 0);
        assert!(matches!(st.sequence(10, 3), Seq::From(0)));
    }
}
