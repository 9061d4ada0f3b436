//! trawl's inputs: everything that turns logs and packets into [`Observation`]s.
//!
//! * [`observation`]: the one event type every source produces, with ECS field names.
//! * [`logs`]: log formats (Squid, Apache/nginx, Zeek, BIND, Infoblox, dnsmasq, Suricata EVE,
//!   generic JSON, raw), auto-detection, and line parsers.
//! * [`packet`]: pcap/pcapng reading, link layers, tunnels, IP reassembly and the
//!   application parsers (DNS, HTTP, TLS ClientHello, QUIC Initial).

pub mod logs;
pub mod observation;
pub mod packet;
pub mod tail;

pub use observation::{
    CommunityId, DnsAnswer, Lookup, MatchValue, Observation, Origin, MATCH_FIELDS,
};
