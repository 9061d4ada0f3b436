//! trawl's feed side: `trawl.toml` feed config, fetching, format parsers, normalisation,
//! derivation, allowlists, compiling into a snapshot, and exporters. (being implemented)
pub mod export;
