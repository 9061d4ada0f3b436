//! The trawl engine as a library: correlation of observations with a snapshot
//! ([`correlate`]), the ECS alert document ([`alert`]), the log scan pipeline ([`scan`]), the
//! packet alert step of replay, sniff and the daemon ([`packets`]), the retro-hunt
//! observation index ([`retro`]), and
//! the daemon (`trawl run`: sources, supervised workers, per-sink spools, suppression,
//! reload, the admin endpoint) with the data-directory files it owns ([`daemon`],
//! [`data_files`]). The `trawl` binary (`sensor/main.rs`) parses the command line and calls
//! in here; ARCHITECTURE.md §1 says what each part owns.

pub mod alert;
pub mod correlate;
pub mod daemon;
pub mod data_files;
pub mod error_chain;
pub mod mapped;
pub mod packets;
pub mod privilege;
pub mod report;
pub mod retro;
pub mod scan;
