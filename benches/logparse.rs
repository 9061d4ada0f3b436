//! Log parsing throughput (filled in below).
fn main() {}
