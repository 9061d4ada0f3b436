//! Live capture via libpcap (the `pcap` crate) feeding the same [`PacketDecoder`].
//!
//! A capture runs on two threads: the capture thread only reads the kernel ring and copies
//! packets into batches, which it hands to the decoding thread through a bounded queue of
//! [`LiveOptions::queue_batches`]. When the decoder falls behind and the queue is full, the
//! batch is dropped and counted ([`LiveStats::queue_dropped`]) rather than the ring left
//! unread, so a slow moment of matching costs counted packets, not a stalled capture.

use super::capture::{CaptureError, LinkType};
use super::decoder::{DecodeStats, DecoderLimits, PacketDecoder};
use crate::observation::{Observation, Origin};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::{Duration, Instant};

/// The kernel ring's default size in MiB (`trawl sniff --buffer`, a pcap source's `buffer`).
pub const DEFAULT_BUFFER_MIB: i32 = 64;

/// The most packets one batch from the capture thread to the decoder carries (a batch is
/// also handed over whenever the ring has nothing more to read at the moment).
pub const BATCH_PACKETS: usize = 256;

/// A batch is handed over once it holds this many bytes, so the queue's memory is bounded
/// by its depth whatever the packet sizes (offloaded packets reach 64 KiB): at most
/// `queue_batches + 4` batches of `BATCH_BYTES` plus one packet exist at once.
pub const BATCH_BYTES: usize = 1 << 20;

/// The default depth of the capture → decoder queue, in batches (up to 16,384 packets or
/// 64 MiB).
pub const DEFAULT_QUEUE_BATCHES: usize = 64;

/// How often the capture thread refreshes libpcap's counters for the decoder's reports.
const PCAP_STATS_EVERY: Duration = Duration::from_millis(100);

/// How to open the interface and when to stop.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name (`eth0`, `any`).
    pub iface: String,
    /// BPF filter expression (empty: everything).
    pub bpf: String,
    /// Snap length in bytes.
    pub snaplen: i32,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Kernel ring size in bytes (libpcap `buffer_size`; TPACKET_V3 on Linux): what absorbs
    /// bursts while the decoder is busy.
    pub buffer_size: i32,
    /// Read timeout in milliseconds (how often the stop flag is checked).
    pub timeout_ms: i32,
    /// Join this kernel fanout group (Linux `PACKET_FANOUT`, by symmetric flow hash, fragments
    /// defragmented first): the handles of one group on one interface share its packets, each
    /// flow (both directions) to one handle. `None`: this handle sees every packet.
    pub fanout: Option<u16>,
    /// Depth of the queue from the capture thread to the decoder, in batches of up to
    /// [`BATCH_PACKETS`] (at least 1). A batch that finds it full is dropped and counted.
    pub queue_batches: usize,
    /// Stop after this many packets (None: no limit).
    pub max_packets: Option<u64>,
    /// Stop after this long (None: no limit).
    pub max_duration: Option<Duration>,
    /// Decoder bounds.
    pub limits: DecoderLimits,
}

impl LiveOptions {
    /// Defaults for `iface`: no filter, 262144-byte snap length, promiscuous, a
    /// [`DEFAULT_BUFFER_MIB`] MiB kernel ring.
    pub fn new(iface: &str) -> Self {
        LiveOptions {
            iface: iface.to_string(),
            bpf: String::new(),
            snaplen: 262_144,
            promisc: true,
            buffer_size: DEFAULT_BUFFER_MIB << 20,
            timeout_ms: 100,
            fanout: None,
            queue_batches: DEFAULT_QUEUE_BATCHES,
            max_packets: None,
            max_duration: None,
            limits: DecoderLimits::default(),
        }
    }
}

/// Counters of a live capture: the decoder's and libpcap's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStats {
    /// Decoder statistics.
    pub decode: DecodeStats,
    /// Packets the kernel received (libpcap `ps_recv`).
    pub received: u64,
    /// Packets dropped because the buffer was full (`ps_drop`).
    pub kernel_dropped: u64,
    /// Packets dropped by the interface / driver (`ps_ifdrop`).
    pub if_dropped: u64,
    /// Packets read from the ring but dropped because the queue to the decoder was full.
    pub queue_dropped: u64,
}

impl LiveStats {
    /// Packets lost before decoding: the kernel's (ring full), the interface's and ours
    /// (decoder queue full).
    pub fn lost(&self) -> u64 {
        self.kernel_dropped + self.if_dropped + self.queue_dropped
    }

    /// Add another handle's counters (the workers of one fanout group).
    pub fn merge(&mut self, o: &LiveStats) {
        self.decode.merge(&o.decode);
        self.received += o.received;
        self.kernel_dropped += o.kernel_dropped;
        self.if_dropped += o.if_dropped;
        self.queue_dropped += o.queue_dropped;
    }
}

/// Packets the capture thread copied out of the ring, handed to the decoder at once.
#[derive(Default)]
struct Batch {
    /// The packets' bytes, one after another.
    data: Vec<u8>,
    /// Per packet: timestamp (ns), 1-based number on the interface, end offset in `data`.
    packets: Vec<(i64, u64, usize)>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
    }

    /// Each packet: (timestamp, number, bytes).
    fn iter(&self) -> impl Iterator<Item = (i64, u64, &[u8])> {
        let mut start = 0;
        self.packets.iter().map(move |&(ts, n, end)| {
            let d = self.data.get(start..end).unwrap_or(&[]);
            start = end;
            (ts, n, d)
        })
    }
}

/// libpcap's and the queue's counters, written by the capture thread, read by the decoder's.
#[derive(Default)]
struct SharedCounters {
    received: AtomicU64,
    kernel_dropped: AtomicU64,
    if_dropped: AtomicU64,
    queue_dropped: AtomicU64,
}

impl SharedCounters {
    fn fill(&self, st: &mut LiveStats) {
        st.received = self.received.load(Ordering::Relaxed);
        st.kernel_dropped = self.kernel_dropped.load(Ordering::Relaxed);
        st.if_dropped = self.if_dropped.load(Ordering::Relaxed);
        st.queue_dropped = self.queue_dropped.load(Ordering::Relaxed);
    }

    fn refresh_pcap(&self, cap: &mut pcap::Capture<pcap::Active>) {
        if let Ok(s) = cap.stats() {
            self.received
                .store(u64::from(s.received), Ordering::Relaxed);
            self.kernel_dropped
                .store(u64::from(s.dropped), Ordering::Relaxed);
            self.if_dropped
                .store(u64::from(s.if_dropped), Ordering::Relaxed);
        }
    }
}

/// An opened live capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    name: &'static str,
    opts: LiveOptions,
}

impl LiveCapture {
    /// Open the interface and install the BPF filter.
    pub fn open(opts: LiveOptions) -> Result<Self, CaptureError> {
        let err = |e: pcap::Error| CaptureError::Live {
            iface: opts.iface.clone(),
            reason: e.to_string(),
        };
        let mut cap = pcap::Capture::from_device(opts.iface.as_str())
            .map_err(err)?
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_size)
            .timeout(opts.timeout_ms)
            // Not immediate: the kernel hands over whole ring blocks (or what the read timeout
            // found), one wake-up per block rather than per packet.
            .immediate_mode(false)
            .open()
            .map_err(err)?;
        if let Some(group) = opts.fanout {
            join_fanout(&cap, group).map_err(|e| CaptureError::Live {
                iface: opts.iface.clone(),
                reason: format!("joining fanout group {group}: {e}"),
            })?;
        }
        if !opts.bpf.is_empty() {
            cap.filter(&opts.bpf, true)
                .map_err(|e| CaptureError::Live {
                    iface: opts.iface.clone(),
                    reason: format!("BPF filter {:?}: {e}", opts.bpf),
                })?;
        }
        // Non-blocking reads plus our own poll(2): libpcap's read timeout is not honoured
        // in every mode (an idle interface would block `next_packet` for good, so the stop
        // flag and the periodic statistics would wait for the next packet).
        let cap = cap.setnonblock().map_err(err)?;
        let link = LinkType(cap.get_datalink().0 as u32);
        let name = &*Box::leak(format!("iface:{}", opts.iface).into_boxed_str());
        Ok(LiveCapture {
            cap,
            link,
            name,
            opts,
        })
    }

    /// The interface's link type.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Capture and decode until `stop` is set or a limit in the options is reached; each
    /// packet's observations go to `sink`.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut sink: impl FnMut(Vec<Observation<'static>>),
    ) -> Result<LiveStats, CaptureError> {
        self.run_events(stop, Duration::MAX, |ev| {
            if let LiveEvent::Observations(obs) = ev {
                sink(obs);
            }
        })
    }

    /// Like [`LiveCapture::run`], but also hands `on` the running counters (libpcap's
    /// polled afresh) every `every` while capturing, even when no packet arrives (the read
    /// timeout bounds the wait), so a long-running capture reports live packet, byte and
    /// drop counts.
    pub fn run_events(
        &mut self,
        stop: &AtomicBool,
        every: Duration,
        mut on: impl FnMut(LiveEvent<'_>),
    ) -> Result<LiveStats, CaptureError> {
        let LiveCapture {
            cap,
            link,
            name,
            opts,
        } = self;
        let (link, name) = (*link, *name);
        let counters = SharedCounters::default();
        let depth = opts.queue_batches.max(1);
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(depth);
        // Emptied batches go back to the capture thread, so steady state allocates nothing.
        let (free_tx, free_rx) = mpsc::sync_channel::<Batch>(depth + 2);
        let mut dec = PacketDecoder::new(opts.limits.clone());
        let opts = &*opts;
        std::thread::scope(|scope| {
            // Owned here, so that a panic in `on` drops the queue's receiver while unwinding:
            // the capture thread then sees the queue closed and ends (the scope waits for it).
            let (full_rx, free_tx) = (full_rx, free_tx);
            let counters_ref = &counters;
            // The reader owns the queue's sender: the queue closes when it ends.
            let reader =
                scope.spawn(move || read_ring(cap, opts, stop, counters_ref, &full_tx, &free_rx));
            let mut last_tick = Instant::now();
            let mut out = Vec::new();
            loop {
                let wait = every
                    .saturating_sub(last_tick.elapsed())
                    .min(PCAP_STATS_EVERY);
                match full_rx.recv_timeout(wait) {
                    Ok(mut batch) => {
                        for (ts_ns, number, data) in batch.iter() {
                            let origin = Origin::Packet {
                                capture: Cow::Borrowed(name),
                                number,
                            };
                            dec.decode(link, ts_ns, data, origin, &mut out);
                            if !out.is_empty() {
                                on(LiveEvent::Observations(std::mem::take(&mut out)));
                            }
                        }
                        batch.clear();
                        let _ = free_tx.try_send(batch);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if last_tick.elapsed() >= every {
                    last_tick = Instant::now();
                    let mut stats = LiveStats {
                        decode: dec.stats().clone(),
                        ..Default::default()
                    };
                    counters.fill(&mut stats);
                    on(LiveEvent::Stats(&stats));
                }
            }
            // The queue is closed only when the capture thread has ended.
            let read = reader.join().unwrap_or_else(|_| {
                Err(CaptureError::Live {
                    iface: opts.iface.clone(),
                    reason: "the capture thread panicked".into(),
                })
            });
            read.map(|()| {
                let mut stats = LiveStats {
                    decode: dec.stats().clone(),
                    ..Default::default()
                };
                counters.fill(&mut stats);
                stats
            })
        })
    }
}

/// The capture thread: read the ring into batches and hand each to the decoder without
/// waiting (a full queue drops the batch, counted), until `stop` or a limit of `opts`.
fn read_ring(
    cap: &mut pcap::Capture<pcap::Active>,
    opts: &LiveOptions,
    stop: &AtomicBool,
    counters: &SharedCounters,
    full: &mpsc::SyncSender<Batch>,
    free: &mpsc::Receiver<Batch>,
) -> Result<(), CaptureError> {
    let start = Instant::now();
    let mut last_stats = start;
    let mut n: u64 = 0;
    let mut batch = Batch::default();
    // Hand the batch over; false when the decoder is gone.
    let hand_over = |batch: &mut Batch| -> bool {
        if batch.packets.is_empty() {
            return true;
        }
        let next = free.try_recv().unwrap_or_default();
        match full.try_send(std::mem::replace(batch, next)) {
            Ok(()) => true,
            Err(TrySendError::Full(mut back)) => {
                counters
                    .queue_dropped
                    .fetch_add(back.packets.len() as u64, Ordering::Relaxed);
                back.clear();
                *batch = back;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    };
    let result = loop {
        if stop.load(Ordering::Relaxed)
            || opts.max_packets.is_some_and(|m| n >= m)
            || opts.max_duration.is_some_and(|d| start.elapsed() >= d)
        {
            break Ok(());
        }
        match cap.next_packet() {
            Ok(p) => {
                n += 1;
                let ts = p.header.ts;
                // time_t / suseconds_t width differs by platform.
                #[allow(clippy::useless_conversion)]
                let ts_ns = i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_usec) * 1000;
                batch.data.extend_from_slice(p.data);
                batch.packets.push((ts_ns, n, batch.data.len()));
                let full = batch.packets.len() >= BATCH_PACKETS || batch.data.len() >= BATCH_BYTES;
                if full && !hand_over(&mut batch) {
                    break Ok(());
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing more in the ring now: what was read goes to the decoder.
                if !hand_over(&mut batch) {
                    break Ok(());
                }
                wait_readable(cap, Duration::from_millis(opts.timeout_ms.max(1) as u64));
            }
            Err(e) => {
                break Err(CaptureError::Live {
                    iface: opts.iface.clone(),
                    reason: e.to_string(),
                })
            }
        }
        if last_stats.elapsed() >= PCAP_STATS_EVERY {
            last_stats = Instant::now();
            counters.refresh_pcap(cap);
        }
    };
    hand_over(&mut batch);
    counters.refresh_pcap(cap);
    result
}

/// Join the capture's packet socket to fanout group `group`, by flow hash (symmetric: both
/// directions of a flow go to one socket) with IP fragments defragmented before hashing.
#[cfg(target_os = "linux")]
fn join_fanout(cap: &pcap::Capture<pcap::Active>, group: u16) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
    let arg = (u32::from(group) | mode << 16) as libc::c_int;
    // SAFETY: the option value is a c_int that lives for the call; the descriptor is the
    // capture's open packet socket.
    let rc = unsafe {
        libc::setsockopt(
            cap.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&arg as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn join_fanout(_: &pcap::Capture<pcap::Active>, _: u16) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "kernel fanout (PACKET_FANOUT) is Linux only",
    ))
}

/// Wait until the capture's descriptor is readable or `wait` passes (EINTR: return early).
fn wait_readable(cap: &pcap::Capture<pcap::Active>, wait: Duration) {
    use std::os::unix::io::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: cap.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call; the descriptor stays open
    // (owned by `cap`, borrowed here).
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// What [`LiveCapture::run_events`] hands its callback.
#[derive(Debug)]
pub enum LiveEvent<'a> {
    /// The observations decoded from one packet.
    Observations(Vec<Observation<'static>>),
    /// Periodic: the counters so far (cumulative since the capture was opened).
    Stats(&'a LiveStats),
}

/// Open `opts.iface` and run until `stop` (or the options' limits); see [`LiveCapture::run`].
pub fn sniff(
    opts: LiveOptions,
    stop: &AtomicBool,
    sink: impl FnMut(Vec<Observation<'static>>),
) -> Result<LiveStats, CaptureError> {
    LiveCapture::open(opts)?.run(stop, sink)
}
