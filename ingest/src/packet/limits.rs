//! The bounds on a packet decoder's per-worker state: [`DecoderLimits`].

use serde::Serialize;

/// Bounds on the decoder's per-worker state.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderLimits {
    /// Flows tracked at once (per worker); older flows are evicted in bulk (two generations).
    pub max_flows: usize,
    /// Fragment bytes held for reassembly (per worker).
    pub max_frag_bytes: usize,
    /// Datagrams being reassembled at once (per worker).
    pub max_frag_datagrams: usize,
    /// Give up on an incomplete datagram after this long (capture time), nanoseconds.
    pub frag_timeout_ns: i64,
    /// Bytes buffered per flow direction for a ClientHello / server Certificate / HTTP head /
    /// QUIC CRYPTO data that spans segments or packets.
    pub tls_buffer_per_flow: usize,
    /// Bytes buffered per flow direction for DNS over TCP (a message is up to 64 KiB).
    pub dns_tcp_buffer: usize,
    /// Nested tunnels / encapsulations followed.
    pub max_depth: u8,
    /// Emit a `flow` observation for the first packet of each flow direction.
    pub flow_observations: bool,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_flows: 262_144,
            max_frag_bytes: 16 << 20,
            max_frag_datagrams: 8192,
            frag_timeout_ns: 30_000_000_000,
            tls_buffer_per_flow: 32 * 1024,
            dns_tcp_buffer: 65_537,
            max_depth: 6,
            flow_observations: true,
        }
    }
}
