//! Packet capture reading and decoding (ARCHITECTURE.md §2.3, §5).
//!
//! * [`read_capture`]: offline pcap / pcapng, in order, with truncation handled.
//! * [`PacketDecoder`]: per-worker state (flows, fragments, stream buffers) turning packets
//!   into [`Observation`]s: DNS messages, HTTP requests, TLS ClientHellos (SNI, JA3, JA4),
//!   server certificates (TLS <= 1.2), QUIC Initial ClientHellos, and one `flow` observation
//!   per flow direction (the packet's IPs and ports, `network.community_id`).
//! * [`replay_parallel`]: one reader thread sharding packets by a symmetric flow hash to
//!   decoder threads.
//! * [`sniff`]: live capture via libpcap with the same decoder.
//!
//! [`Observation`]: crate::Observation

pub mod bpf;
pub mod capture;
mod combinators;
pub mod community;
pub mod decoder;
pub mod dns;
mod flow;
mod flowtable;
pub mod frag;
pub mod fuzzing;
pub mod http;
mod ip;
mod limits;
mod link;
pub mod live;
pub mod quic;
pub mod replay;
mod stats;
mod stream;
pub mod tls;
mod tuple;

pub use bpf::BpfFilter;
pub use capture::{
    first_timestamp, read_capture, read_capture_from, read_pcap_windows, CaptureError,
    CaptureStats, LinkType, PcapWriter, RawPacket, Window,
};
pub use community::community_id;
pub use decoder::{flow_shard, DecodeStats, DecoderLimits, PacketDecoder};
pub use live::{sniff, LiveCapture, LiveEvent, LiveOptions, LiveStats};
pub use replay::{replay_parallel, replay_parallel_filtered, ReplayStats};
