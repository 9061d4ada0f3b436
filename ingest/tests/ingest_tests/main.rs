//! trawl-ingest end to end, one test binary: log parsers on the corpus and on bad input,
//! packet decoding against tshark and Zeek and on bad input, live capture, and file tailing
//! (rotation, truncation, a real SIGKILL).

#[path = "../../../tests/common/corpus.rs"]
mod corpus;
#[path = "../../../tests/common/crafted.rs"]
mod crafted;
mod logs_bad_input;
mod logs_corpus;
mod logs_vendor_corpus;
mod packet_bad_input;
mod packet_corpus;
mod packet_every_header;
mod packet_live;
mod tail_basic;
mod tail_corpus;
mod tail_kill;
mod tail_prop;
mod tail_rotation;
mod tshark;
