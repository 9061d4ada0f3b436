//! trawl-feeds end to end, one test binary: every corpus feed parsed and counted, fetching
//! from a real local HTTP server, the update pipeline, and the fuzz bodies run as proptests.

#[path = "../common/mod.rs"]
mod common;

#[path = "../../../tests/common/certs.rs"]
mod certs;
mod corpus;
#[path = "../../../tests/common/corpus.rs"]
mod corpus_dir;
mod default_feeds;
mod external_id;
mod fetch_http;
mod fuzz_bodies;
mod itype_counts;
#[path = "../../../tests/common/medallion.rs"]
mod medallion;
mod misp_feed;
mod stix_export;
mod taxii;
mod taxii_tls;
mod update_flow;
