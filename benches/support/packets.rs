//! Packet builders shared by the replay bench (`benches/replay.rs`) and the capture
//! generator (`ingest/examples/gen_capture.rs`): a seeded xorshift, Ethernet, IPv4/IPv6,
//! TCP, UDP, a TLS ClientHello with SNI and a DNS query. Included with `#[path]`; not every
//! includer uses every builder.
#![allow(dead_code)]

/// Seeded xorshift64.
pub struct Rng(pub u64);
impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// An Ethernet header (zero MACs) for IPv4 or IPv6, replacing `p`'s contents.
pub fn eth(p: &mut Vec<u8>, v6: bool) {
    p.clear();
    p.extend_from_slice(&[0u8; 12]);
    p.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
}

/// An IPv4 or IPv6 header (`2001:db8::` addresses for v6) for an L4 part of `l4len` bytes.
pub fn ip(p: &mut Vec<u8>, v6: bool, a: u32, b: u32, proto: u8, l4len: usize) {
    if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(l4len as u16).to_be_bytes());
        p.extend_from_slice(&[proto, 64]);
        for x in [a, b] {
            p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0]);
            p.extend_from_slice(&x.to_be_bytes());
        }
    } else {
        let t = (20 + l4len) as u16;
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&a.to_be_bytes());
        p.extend_from_slice(&b.to_be_bytes());
    }
}

/// A TCP header (PSH+ACK) and payload.
pub fn tcp(sp: u16, dp: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sp.to_be_bytes());
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// A UDP header and payload.
pub fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(8 + payload.len());
    t.extend_from_slice(&sp.to_be_bytes());
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(payload);
    t
}

/// A TLS 1.2-framed ClientHello record carrying `sni`.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let n = sni.len() as u16;
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(sni.as_bytes());
    ext.extend_from_slice(&[0, 10, 0, 6, 0, 4, 0, 29, 0, 23, 0, 11, 0, 2, 1, 0]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0xc0, 0x2f, 0x00, 0x9c, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A DNS query for `name` (type A).
pub fn dns(name: &str, id: u16) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.extend_from_slice(&[0, 0, 1, 0, 1]);
    v
}
