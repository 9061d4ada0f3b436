//! Live capture via libpcap (the `pcap` crate) feeding the same [`PacketDecoder`].

use super::capture::{CaptureError, LinkType};
use super::decoder::{DecodeStats, DecoderLimits, PacketDecoder};
use crate::observation::{Observation, Origin};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The kernel ring's default size in MiB (`trawl sniff --buffer`, a pcap source's `buffer`).
pub const DEFAULT_BUFFER_MIB: i32 = 64;

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
}

impl LiveStats {
    /// Packets lost before decoding: the kernel's (ring full) and the interface's.
    pub fn lost(&self) -> u64 {
        self.kernel_dropped + self.if_dropped
    }

    /// Add another handle's counters (the workers of one fanout group).
    pub fn merge(&mut self, o: &LiveStats) {
        self.decode.merge(&o.decode);
        self.received += o.received;
        self.kernel_dropped += o.kernel_dropped;
        self.if_dropped += o.if_dropped;
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
        let mut dec = PacketDecoder::new(self.opts.limits.clone());
        let start = Instant::now();
        let mut last_tick = start;
        let mut n: u64 = 0;
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if self.opts.max_packets.is_some_and(|m| n >= m)
                || self.opts.max_duration.is_some_and(|d| start.elapsed() >= d)
            {
                break;
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    n += 1;
                    let ts = p.header.ts;
                    // time_t / suseconds_t width differs by platform.
                    #[allow(clippy::useless_conversion)]
                    let ts_ns = i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_usec) * 1000;
                    let origin = Origin::Packet {
                        capture: Cow::Borrowed(self.name),
                        number: n,
                    };
                    dec.decode(self.link, ts_ns, p.data, origin, &mut out);
                    if !out.is_empty() {
                        on(LiveEvent::Observations(std::mem::take(&mut out)));
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    let wait = every
                        .saturating_sub(last_tick.elapsed())
                        .min(Duration::from_millis(self.opts.timeout_ms.max(1) as u64));
                    wait_readable(&self.cap, wait);
                }
                Err(e) => {
                    return Err(CaptureError::Live {
                        iface: self.opts.iface.clone(),
                        reason: e.to_string(),
                    })
                }
            }
            if last_tick.elapsed() >= every {
                last_tick = Instant::now();
                let stats = self.stats(&mut dec);
                on(LiveEvent::Stats(&stats));
            }
        }
        Ok(self.stats(&mut dec))
    }

    /// The decoder's counters with libpcap's (cumulative since open).
    fn stats(&mut self, dec: &mut PacketDecoder) -> LiveStats {
        let mut stats = LiveStats {
            decode: dec.stats().clone(),
            ..Default::default()
        };
        if let Ok(s) = self.cap.stats() {
            stats.received = u64::from(s.received);
            stats.kernel_dropped = u64::from(s.dropped);
            stats.if_dropped = u64::from(s.if_dropped);
        }
        stats
    }
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
