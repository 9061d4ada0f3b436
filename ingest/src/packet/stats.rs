//! A packet decoder's counters: [`DecodeStats`], which every layer adds to.

use serde::Serialize;
use std::collections::BTreeMap;

/// Counters of one decoder; [`DecodeStats::merge`] adds several workers up.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets given to `decode`.
    pub packets: u64,
    /// Captured bytes given to `decode`.
    pub bytes: u64,
    /// Observations produced.
    pub observations: u64,
    /// Packets (or layers) not decoded, by reason.
    pub dropped_by_reason: BTreeMap<&'static str, u64>,
    /// Packets that carry no IP (ARP, LLDP, STP, ...), not an error.
    pub non_ip: u64,
    /// Packets decoded through at least one tunnel.
    pub tunnelled: u64,
    /// Flow table entries evicted to keep within `max_flows`.
    pub flows_evicted: u64,
    /// Flows currently tracked (gauge; summed over workers).
    pub flows_active: u64,
    /// Fragments received.
    pub frag_fragments: u64,
    /// Datagrams reassembled.
    pub frag_reassembled: u64,
    /// Datagrams abandoned on timeout.
    pub frag_timeouts: u64,
    /// Fragment bytes currently held (gauge).
    pub frag_bytes_held: u64,
    /// Observations by dataset.
    pub observations_by_dataset: BTreeMap<&'static str, u64>,
}

impl DecodeStats {
    /// Add another worker's counters to these.
    pub fn merge(&mut self, o: &DecodeStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.observations += o.observations;
        for (k, v) in &o.dropped_by_reason {
            *self.dropped_by_reason.entry(k).or_default() += v;
        }
        for (k, v) in &o.observations_by_dataset {
            *self.observations_by_dataset.entry(k).or_default() += v;
        }
        self.non_ip += o.non_ip;
        self.tunnelled += o.tunnelled;
        self.flows_evicted += o.flows_evicted;
        self.flows_active += o.flows_active;
        self.frag_fragments += o.frag_fragments;
        self.frag_reassembled += o.frag_reassembled;
        self.frag_timeouts += o.frag_timeouts;
        self.frag_bytes_held += o.frag_bytes_held;
    }

    /// Count one packet (or layer) not decoded, for `reason`.
    pub(super) fn drop(&mut self, reason: &'static str) {
        *self.dropped_by_reason.entry(reason).or_default() += 1;
    }
}
