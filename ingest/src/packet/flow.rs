//! Flows: the flow-table entry [`Flow`] (directions seen, per-direction stream [`Mode`]s,
//! the app state of `packet::stream`), the two-generation table [`Flows`] that finds or
//! creates a packet's flow and says when a direction is new (with the Community ID its `flow`
//! observation carries), and the symmetric [`flow_shard`] hash.

use super::capture::LinkType;
use super::community::FlowTuple;
use super::flowtable::FlowTable;
use super::link::{ether_walk, link_layer, L3};
use super::tuple::{FlowKey, Tuple};
use matcher::fxhash::FxHasher;
use std::hash::Hasher;

/// What one TCP stream direction carries, decided on its first payload (by
/// `packet::stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Unknown,
    TlsClient,
    TlsServer,
    /// The ServerHello (TLS <= 1.2) was reported; the Certificate is awaited.
    TlsCertificate,
    Dns,
    Http,
    Off,
}

/// One flow-table entry, 16 bytes (a slot with its hash and key is 64). `A` is the
/// application-layer state the layer above keeps per flow (`packet::stream::App`).
#[derive(Debug)]
pub(super) struct Flow<A> {
    /// bit 0: a→b seen, bit 1: b→a seen, bit 2: the first packet was b→a
    /// ([`Flow::initiator`]), bit 3: nothing more to parse ([`Flow::done`]).
    bits: u8,
    /// Per direction (a→b, b→a): what its TCP stream carries, decided on its first payload.
    /// Kept here rather than in the app state, so that the bulk of flows, whose streams
    /// carry nothing to parse, never allocate one.
    pub(super) modes: [Mode; 2],
    pub(super) app: Option<Box<A>>,
    /// ICMP flows only: the packet direction and (type, code) the flow's Community ID was
    /// first taken from. An ICMP flow's ID depends on its first packet's type (and, for a
    /// type without a reply type, on that packet's direction), and every direction of the
    /// flow reports that same ID. TCP/UDP IDs are symmetric in the tuple: nothing is kept.
    icmp_cid: Option<(u8, Option<(u8, u8)>)>,
}

impl<A> Flow<A> {
    const DONE: u8 = 8;

    /// A flow whose first packet went in direction `dir`.
    #[inline]
    fn new(dir: u8) -> Self {
        Flow {
            bits: (dir & 1) << 2,
            modes: [Mode::Unknown; 2],
            app: None,
            icmp_cid: None,
        }
    }

    /// Direction of the first packet (0: a→b).
    #[inline]
    pub(super) fn initiator(&self) -> u8 {
        (self.bits >> 2) & 1
    }

    /// Nothing more to parse in this flow.
    #[inline]
    pub(super) fn done(&self) -> bool {
        self.bits & Self::DONE != 0
    }

    /// Mark direction `dir` seen; whether it was new.
    #[inline]
    fn see(&mut self, dir: u8) -> bool {
        let bit = 1u8 << (dir & 1);
        let new = self.bits & bit == 0;
        self.bits |= bit;
        new
    }

    /// Stop parsing the flow when both directions are `Off` (its state is dropped).
    #[inline]
    pub(super) fn finish_if_off(&mut self) {
        if self.modes == [Mode::Off; 2] {
            self.bits |= Self::DONE;
            self.app = None;
        }
    }

    /// What the Community ID of packet `t` (direction `dir` of this flow) is computed from
    /// when it is rendered. The same for every packet of a flow: TCP/UDP/SCTP and
    /// port-less tuples hash the same either way round; an ICMP flow keeps the tuple of
    /// the packet it was first taken from (`icmp_cid`).
    fn cid(&mut self, t: &Tuple, dir: u8, icmp: Option<(u8, u8)>) -> FlowTuple {
        if t.proto == 1 || t.proto == 58 {
            let (first, tc) = *self.icmp_cid.get_or_insert((dir, icmp));
            let (src, dst) = if first == dir {
                (t.src, t.dst)
            } else {
                (t.dst, t.src)
            };
            return FlowTuple {
                src,
                dst,
                proto: t.proto,
                ports: tc.map(|(ty, code)| (u16::from(ty), u16::from(code))),
            };
        }
        t.port_cid()
    }
}

/// A packet's flow as [`Flows::see`] found it.
pub(super) struct Seen {
    /// The flow's key (for [`Flows::get_mut`]).
    pub(super) key: FlowKey,
    /// The packet's direction in the flow (0: a→b).
    pub(super) dir: u8,
    /// Nothing more to parse in the flow.
    pub(super) done: bool,
    /// Nothing more to parse in the packet's direction of the flow: its stream [`Mode`] is
    /// `Off` (what `packet::stream` would do with a segment of it is nothing).
    pub(super) direction_off: bool,
    /// The direction is new (and flow observations are wanted): the Community ID tuple of
    /// its `flow` observation.
    pub(super) new_direction: Option<FlowTuple>,
}

/// The flow table, bounded by evicting in bulk: flows live in the current generation; when
/// it reaches half the bound, the old generation is dropped and the current one becomes
/// old (a flow seen again moves back to the current one).
pub(super) struct Flows<A> {
    cur: FlowTable<FlowKey, Flow<A>>,
    old: FlowTable<FlowKey, Flow<A>>,
    /// Flows dropped with an old generation, so far.
    pub(super) evicted: u64,
}

impl<A> Default for Flows<A> {
    fn default() -> Self {
        Flows {
            cur: FlowTable::default(),
            old: FlowTable::default(),
            evicted: 0,
        }
    }
}

impl<A> Flows<A> {
    /// Flows tracked.
    pub(super) fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    /// Ask the CPU for the cache line where `key`'s lookup starts (see
    /// `PacketDecoder::prefetch_flow`).
    pub(super) fn prefetch(&self, key: &FlowKey) {
        self.cur.prefetch(key);
    }

    /// The flow of `key` just returned by [`Flows::see`].
    #[inline]
    pub(super) fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow<A>> {
        self.cur.get_mut(key)
    }

    /// Find or create the flow of packet `t` (ICMP: its type and code) and mark its
    /// direction seen, keeping at most about `max_flows`; `emit`: whether a new direction
    /// wants its `flow` observation.
    #[inline]
    pub(super) fn see(
        &mut self,
        t: &Tuple,
        icmp: Option<(u8, u8)>,
        max_flows: usize,
        emit: bool,
    ) -> Seen {
        let (key, dir) = FlowKey::of(t);
        let mut done = false;
        let mut cid = None;
        let off = |f: &Flow<A>| f.modes[usize::from(dir & 1)] == Mode::Off;
        let direction_off;
        if let Some(f) = self.cur.get_mut(&key) {
            if f.see(dir) && emit {
                cid = Some(f.cid(t, dir, icmp));
            }
            done = f.done();
            direction_off = off(f);
        } else {
            let mut f = self.old.remove(&key).unwrap_or_else(|| Flow::new(dir));
            if f.see(dir) && emit {
                cid = Some(f.cid(t, dir, icmp));
            }
            direction_off = off(&f);
            if self.cur.len() >= max_flows / 2 {
                self.evicted += self.old.len() as u64;
                // The evicted generation's table is reused (cleared, capacity kept): no
                // regrowth and no fresh pages for every generation.
                self.old.clear();
                std::mem::swap(&mut self.old, &mut self.cur);
            }
            self.cur.insert(key, f);
        }
        Seen {
            key,
            dir,
            done,
            direction_off,
            new_direction: cid,
        }
    }
}

/// Symmetric shard hash of the outermost IP pair of a packet.
///
/// The outermost pair is the same for every fragment of a datagram and for every packet of
/// a tunnelled flow, so all per-flow state (streams, QUIC CRYPTO data, reassembly) stays on
/// one worker. (Hashing inner 5-tuples would balance tunnel-heavy captures better but splits
/// state whenever only some packets of a flow are outer-fragmented.)
pub fn flow_shard(link: LinkType, data: &[u8]) -> u64 {
    let Ok((mut l3, mut off)) = link_layer(link, data) else {
        return 0;
    };
    if l3 == L3::Ether {
        match ether_walk(data, off, None) {
            Ok((l, o)) => {
                l3 = l;
                off = o;
            }
            Err(_) => return 0,
        }
    }
    let Some(d) = data.get(off..) else { return 0 };
    let (a, b) = match l3 {
        L3::Ipv4 if d.len() >= 20 => (&d[12..16], &d[16..20]),
        L3::Ipv6 if d.len() >= 40 => (&d[8..24], &d[24..40]),
        _ => return 0,
    };
    // As big-endian integers the addresses order as the slices do (no memcmp call).
    let le = match (<[u8; 4]>::try_from(a), <[u8; 4]>::try_from(b)) {
        (Ok(x), Ok(y)) => u32::from_be_bytes(x) <= u32::from_be_bytes(y),
        _ => match (<[u8; 16]>::try_from(a), <[u8; 16]>::try_from(b)) {
            (Ok(x), Ok(y)) => u128::from_be_bytes(x) <= u128::from_be_bytes(y),
            _ => a <= b,
        },
    };
    let (x, y) = if le { (a, b) } else { (b, a) };
    let mut h = FxHasher::default();
    h.write(x);
    h.write(y);
    let v = h.finish();
    v ^ (v >> 32)
}
