//! Live capture for real: a veth pair with one end in a fresh network namespace, tcpreplay
//! sending a corpus capture into it, `sniff` listening on the other end. The observations
//! must equal the offline decode of the same file (timestamps and origin aside).

use ingest::packet::{read_capture, DecoderLimits, LiveOptions, PacketDecoder};
use ingest::{Observation, Origin};
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
    fn new() -> Option<Veth> {
        let id = std::process::id();
        let v = Veth {
            ns: format!("trawl-t{id}"),
            host: format!("trwa{id}"),
        };
        let peer = format!("trwb{id}");
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
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let have = run(&[
        "sh",
        "-c",
        "command -v tcpreplay >/dev/null && command -v ip >/dev/null",
    ]);
    if !root || !have {
        eprintln!("LIVE CAPTURE SKIPPED: needs root, iproute2 and tcpreplay (root={root})");
        return;
    }
    let Some(veth) = Veth::new() else {
        panic!("could not create netns/veth (ip netns / ip link failed)");
    };
    let peer = format!("trwb{}", std::process::id());
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
            let ok = run(&[
                "ip",
                "netns",
                "exec",
                &veth.ns,
                "tcpreplay",
                "-q",
                "--pps=3000",
                "-i",
                &peer,
                file.to_str().unwrap(),
            ]);
            assert!(ok, "tcpreplay failed");
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
