//! trawl-matcher end to end, one test binary: snapshots built from the corpus feeds and the
//! streaming iteration over a published snapshot.

mod corpus;
mod iter;
