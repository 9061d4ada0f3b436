//! Packet capture reading and decoding. (being implemented)
