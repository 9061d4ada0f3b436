//! The packet alert step, one for `trawl replay`, `trawl sniff` and the daemon's pcap
//! sources: an observation decoded from a capture, matched and made into alerts.

use crate::alert::{build_alert, AlertBatch, AlertContext};
use crate::correlate::{Correlator, FieldHit, Scratch};
use ingest::packet::LiveStats;
use ingest::Observation;
use std::collections::BTreeMap;

/// Reusable buffers of [`alerts_for_packet`], one per thread.
#[derive(Default)]
pub struct PacketScratch {
    scratch: Scratch,
    hits: Vec<FieldHit>,
}

/// Match one captured observation and append its alerts to `out`; count the
/// hits by feed (the first feed of each indicator) in `by_feed`. IP hits come once per flow
/// and direction: from the flow observation only. Returns how many alerts were written.
pub fn alerts_for_packet(
    correlator: &Correlator<'_>,
    ctx: &AlertContext,
    obs: &Observation<'_>,
    now_ns: i64,
    buffers: &mut PacketScratch,
    out: &mut AlertBatch,
    by_feed: &mut BTreeMap<String, u64>,
) -> usize {
    buffers.hits.clear();
    correlator.correlate_with(
        obs,
        obs.dataset == "flow",
        &mut buffers.scratch,
        &mut buffers.hits,
    );
    for hit in &buffers.hits {
        out.push(build_alert(ctx, obs, hit, None, now_ns));
        if let Some(feed) = hit.indicator.sources.first() {
            *by_feed.entry(feed.clone()).or_default() += 1;
        }
    }
    buffers.hits.len()
}

/// Warn when a live capture on `iface` has lost packets since the last call (`lost`: the
/// count then, updated): the kernel's ring was full, the interface dropped them, or the
/// decoder fell behind and its queue was full.
pub fn warn_new_drops(iface: &str, now: &LiveStats, lost: &mut u64) {
    let total = now.lost();
    if total > *lost {
        tracing::warn!(
            "capture on {iface}: {} packets lost since the last report ({} by the kernel, ring \
             full; {} by the interface; {} by trawl, decoder queue full; in all): raise the \
             ring (sniff --buffer, a pcap source's buffer), add workers (sniff --workers, a \
             pcap source's workers) or narrow the BPF filter",
            total - *lost,
            now.kernel_dropped,
            now.if_dropped,
            now.queue_dropped
        );
    }
    *lost = total;
}
