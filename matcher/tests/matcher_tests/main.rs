//! trawl-matcher end to end, one test binary: snapshots built from the corpus feeds and the
//! streaming iteration over a published snapshot.

mod corpus;
#[path = "../../../tests/common/corpus.rs"]
mod corpus_dir;
mod iter;
