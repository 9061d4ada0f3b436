//! The command line end to end, one test binary: the real `trawl` on samples/ and on the
//! shared corpus, bad input and careless use, `trawl update`, and every export format against
//! golden files and the real tools that load them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../export_support/mod.rs"]
mod export_support;
#[path = "../common/webdriver.rs"]
mod webdriver;

mod bad_input;
mod cif_pull;
mod corpus;
mod evasion;
mod export_golden;
mod export_tools;
mod external_id;
mod first_run;
mod fleet;
mod fleet_serve;
mod log_formats;
mod replay_filter;
mod report;
mod retro;
mod samples;
mod serve;
mod sniff;
mod tls_server;
mod update;
