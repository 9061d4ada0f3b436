//! The `trawl` binary. (being implemented)
fn main() {}
