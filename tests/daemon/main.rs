//! `trawl run` end to end, one test binary: file sources (rotation, `kill -9`, hot reload),
//! live capture, every sink, and the daemon under bad conditions.

#[path = "../common/certs.rs"]
mod certs;
#[path = "../common/mod.rs"]
mod common;
#[path = "../daemon_support/mod.rs"]
mod daemon_support;
#[path = "../common/medallion.rs"]
mod medallion;

mod files;
mod fleet;
#[cfg(feature = "kafka")]
mod kafka;
mod log_formats;
mod pcap;
mod retro;
mod sightings;
mod sinks;
