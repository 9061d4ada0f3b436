//! Live capture for real: a veth pair with one end in a fresh network namespace, tcpreplay
//! sending a corpus capture into it, `sniff` listening on the other end. The observations
//! must equal the offline decode of the same file (timestamps and origin aside).

use ingest::packet::{
    read_capture, DecoderLimits, LinkType, LiveCapture, LiveOptions, PacketDecoder, PcapWriter,
};
use ingest::{Observation, Origin};
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A network namespace plus veth pair, removed on drop.
struct Veth {
    ns: String,
    host: String,
}

fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Veth {
    /// A pair named after the process and `tag` (tests of one process run side by side).
    fn new(tag: &str) -> Option<Veth> {
        let id = std::process::id();
        let v = Veth {
            ns: format!("trawl-t{id}{tag}"),
            host: format!("trwa{id}{tag}"),
        };
        let peer = v.peer();
        let ok = run(&["ip", "netns", "add", &v.ns])
            && run(&[
                "ip", "link", "add", &v.host, "type", "veth", "peer", "name", &peer, "netns", &v.ns,
            ])
            && run(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{}.disable_ipv6=1", v.host),
            ])
            && run(&[
                "ip",
                "netns",
                "exec",
                &v.ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{peer}.disable_ipv6=1"),
            ])
            && run(&["ip", "link", "set", &v.host, "up"])
            && run(&[
                "ip", "netns", "exec", &v.ns, "ip", "link", "set", &peer, "up",
            ]);
        if ok {
            Some(v)
        } else {
            None
        }
    }
}

/// Whether the tests run as root (capture and network namespaces need it).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

impl Veth {
    /// The pair for a test that replays into it, or `None` (said on stderr, `what` naming
    /// the test) when this is not root or tcpreplay or iproute2 is missing; creating the pair
    /// failing otherwise fails the test.
    fn for_replay(tag: &str, what: &str) -> Option<Veth> {
        let root = is_root();
        let have = run(&[
            "sh",
            "-c",
            "command -v tcpreplay >/dev/null && command -v ip >/dev/null",
        ]);
        if !root || !have {
            eprintln!("{what} SKIPPED: needs root, iproute2 and tcpreplay (root={root})");
            return None;
        }
        match Veth::new(tag) {
            Some(v) => Some(v),
            None => panic!("could not create netns/veth (ip netns / ip link failed)"),
        }
    }

    /// Send `file` from the namespace's end with tcpreplay at `speed` (`--pps=N`,
    /// `--topspeed`); fails the test if tcpreplay does.
    fn replay(&self, file: &std::path::Path, speed: &str) {
        let file = file.to_str().expect("a UTF-8 capture path");
        let peer = self.peer();
        let args = [
            "ip",
            "netns",
            "exec",
            &self.ns,
            "tcpreplay",
            "-q",
            speed,
            "-i",
            &peer,
            file,
        ];
        assert!(run(&args), "tcpreplay failed");
    }

    /// The end inside the namespace.
    fn peer(&self) -> String {
        self.host.replacen("trwa", "trwb", 1)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

fn norm(o: &Observation<'_>) -> String {
    let mut m = o.to_ecs();
    m.remove("@timestamp");
    m.remove("trawl");
    serde_json::Value::Object(m).to_string()
}

#[test]
fn live_capture_equals_offline_decode() {
    let Some(corpus) = crate::corpus::corpus_dir() else {
        return;
    };
    let Some(veth) = Veth::for_replay("", "LIVE CAPTURE") else {
        return;
    };
    for rel in [
        "pcaps/suricata-verify/dns_bug-1158/input.pcap",
        "pcaps/zeek/tls1.2/tls1.2.pcap",
        "pcaps/zeek/http-methods/methods.pcap",
    ] {
        let file = corpus.join(rel);
        let mut offline = Vec::new();
        let mut dec = PacketDecoder::new(DecoderLimits::default());
        let mut n = 0u64;
        read_capture(&file, |p| {
            n += 1;
            dec.decode(p.link, p.ts_ns, p.data, Origin::None, &mut offline)
        })
        .unwrap();
        let mut opts = LiveOptions::new(&veth.host);
        opts.promisc = true;
        opts.max_packets = Some(n);
        opts.max_duration = Some(Duration::from_secs(30));
        opts.timeout_ms = 50;
        let stop = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        let live = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut got = Vec::new();
                let cap = ingest::packet::LiveCapture::open(opts).expect("open veth");
                tx.send(()).unwrap();
                let mut cap = cap;
                let st = cap.run(&stop, |v| got.extend(v)).expect("capture");
                (got, st)
            });
            rx.recv().unwrap();
            veth.replay(&file, "--pps=3000");
            h.join().unwrap()
        });
        let (got, st) = live;
        let mut a: Vec<String> = offline.iter().map(norm).collect();
        let mut b: Vec<String> = got.iter().map(norm).collect();
        a.sort();
        b.sort();
        eprintln!(
            "{rel}: {} packets, offline {} obs, live {} obs, kernel drops {}",
            n,
            a.len(),
            b.len(),
            st.kernel_dropped
        );
        assert_eq!(st.decode.packets, n, "{rel}: packets captured");
        assert_eq!(a, b, "{rel}");
    }
}

/// Two handles in one kernel fanout group share the interface by flow: every packet is
/// captured once, both directions of each flow by the same handle, and each handle gets some.
#[test]
fn fanout_workers_split_the_interface_by_flow() {
    let Some(veth) = Veth::for_replay("f", "FANOUT") else {
        return;
    };
    // 64 UDP flows, a query and a reply each.
    let (a, b) = (
        std::net::Ipv4Addr::new(10, 9, 0, 1),
        std::net::Ipv4Addr::new(10, 9, 0, 2),
    );
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    let mut n = 0u64;
    for port in 40_000..40_064u16 {
        let q = crate::crafted::udp(port, 7777, b"fanout query");
        let r = crate::crafted::udp(7777, port, b"fanout reply");
        for frame in [
            crate::crafted::ipv4(a, b, 17, port, 0, &q),
            crate::crafted::ipv4(b, a, 17, port, 0, &r),
        ] {
            w.write(i64::from(port), &crate::crafted::eth(0x0800, &frame))
                .unwrap();
            n += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows.pcap");
    std::fs::write(&file, w.into_inner()).unwrap();
    let mut opts = LiveOptions::new(&veth.host);
    opts.fanout = Some((std::process::id() & 0xffff) as u16);
    opts.timeout_ms = 50;
    opts.max_duration = Some(Duration::from_secs(20));
    let caps: Vec<LiveCapture> = (0..2)
        .map(|_| LiveCapture::open(opts.clone()).expect("open veth in the fanout group"))
        .collect();
    let stop = AtomicBool::new(false);
    let per_worker = std::thread::scope(|s| {
        let handles: Vec<_> = caps
            .into_iter()
            .map(|mut cap| {
                let stop = &stop;
                s.spawn(move || {
                    let mut got = Vec::new();
                    let st = cap.run(stop, |v| got.extend(v)).expect("capture");
                    (got, st)
                })
            })
            .collect();
        veth.replay(&file, "--pps=2000");
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let flows = |obs: &[Observation<'_>]| -> BTreeSet<String> {
        obs.iter()
            .filter(|o| o.dataset == "flow")
            .filter_map(|o| Some(o.community_id.as_ref()?.to_string()))
            .collect()
    };
    let packets: Vec<u64> = per_worker.iter().map(|(_, st)| st.decode.packets).collect();
    assert_eq!(
        packets.iter().sum::<u64>(),
        n,
        "every packet once: {packets:?}"
    );
    assert!(
        packets.iter().all(|&p| p > 0),
        "both workers busy: {packets:?}"
    );
    let (f0, f1) = (flows(&per_worker[0].0), flows(&per_worker[1].0));
    assert!(f0.is_disjoint(&f1), "a flow on both workers");
    assert_eq!(f0.len() + f1.len(), 64);
    // Both directions of each flow on one worker: two flow observations per flow there.
    for (obs, _) in &per_worker {
        let dirs = obs.iter().filter(|o| o.dataset == "flow").count();
        assert_eq!(dirs, 2 * flows(obs).len());
    }
}

/// A decoder that falls behind does not stall the capture: with a queue of one batch and a
/// consumer that sleeps on every observation, the capture thread keeps reading the ring and
/// drops whole batches, counted as queue drops; every packet sent is either decoded or
/// counted (none is lost to the kernel: the ring is read on), and the capture still ends on
/// its duration.
#[test]
fn a_slow_decoder_costs_counted_queue_drops_not_the_ring() {
    let Some(veth) = Veth::for_replay("q", "QUEUE") else {
        return;
    };
    // 2,000 UDP packets of 200 flows: each flow's first packet gives an observation.
    let (a, b) = (
        std::net::Ipv4Addr::new(10, 9, 1, 1),
        std::net::Ipv4Addr::new(10, 9, 1, 2),
    );
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET).unwrap();
    let mut sent = 0u64;
    for round in 0..10u16 {
        for port in 30_000..30_200u16 {
            let u = crate::crafted::udp(port, 9999, b"slow decoder");
            let frame = crate::crafted::ipv4(a, b, 17, port + round, 0, &u);
            w.write(i64::from(port), &crate::crafted::eth(0x0800, &frame))
                .unwrap();
            sent += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("burst.pcap");
    std::fs::write(&file, w.into_inner()).unwrap();
    let mut opts = LiveOptions::new(&veth.host);
    opts.timeout_ms = 20;
    opts.queue_batches = 1;
    opts.max_duration = Some(Duration::from_secs(3));
    let mut cap = LiveCapture::open(opts).expect("open veth");
    let stop = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let st = std::thread::scope(|s| {
        let h = s.spawn(|| {
            cap.run(&stop, |_| std::thread::sleep(Duration::from_millis(5)))
                .expect("capture")
        });
        veth.replay(&file, "--topspeed");
        h.join().unwrap()
    });
    let took = started.elapsed();
    eprintln!(
        "sent {sent}: decoded {}, queue drops {}, kernel drops {}, received {} in {took:?}",
        st.decode.packets, st.queue_dropped, st.kernel_dropped, st.received
    );
    assert!(
        st.queue_dropped > 0,
        "the slow decoder caused no queue drop"
    );
    assert_eq!(st.kernel_dropped, 0, "the ring was left unread");
    // Every packet read was decoded or counted (IPv6 is off on the pair: nothing else on it).
    assert_eq!(st.decode.packets + st.queue_dropped, st.received, "{st:?}");
    assert_eq!(st.received, sent, "{st:?}");
    assert_eq!(st.lost(), st.queue_dropped + st.if_dropped);
    assert!(
        took < Duration::from_secs(8),
        "capture overran its duration: {took:?}"
    );
}

/// A panic in the consumer ends the capture at once: the capture thread sees its queue
/// closed instead of reading on until its duration.
#[test]
fn a_panicking_consumer_ends_the_capture_thread() {
    if !is_root() {
        eprintln!("PANIC TEST SKIPPED: needs root to capture on lo");
        return;
    }
    let mut opts = LiveOptions::new("lo");
    opts.bpf = "udp port 9".into();
    opts.timeout_ms = 20;
    opts.max_duration = Some(Duration::from_secs(30));
    let mut cap = LiveCapture::open(opts).expect("open lo");
    let stop = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let sender = std::thread::spawn(|| {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..50 {
            let _ = sock.send_to(b"trawl panic test", "127.0.0.1:9");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cap.run(&stop, |_| panic!("consumer failed"))
    }));
    assert!(r.is_err(), "the consumer's panic is not passed on");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the capture ran on after its consumer panicked: {:?}",
        started.elapsed()
    );
    sender.join().unwrap();
}
