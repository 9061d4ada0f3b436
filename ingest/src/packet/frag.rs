//! IPv4/IPv6 fragment reassembly with bounded memory, timeouts and safe overlap handling.
//!
//! Policy: identical overlapping bytes are accepted (retransmitted fragments); overlapping
//! fragments that *disagree* poison the whole datagram, which is then dropped and counted —
//! an evasion attempt must not let us see different bytes than the receiver.

use std::collections::HashMap;
use std::net::IpAddr;

/// Identity of one datagram being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP identification (IPv4: 16 bits; IPv6: 32 bits).
    pub id: u32,
    /// Protocol (IPv4) or 0 (IPv6; the next header travels with offset 0).
    pub proto: u8,
}

#[derive(Debug, Default)]
struct Entry {
    first_ts: i64,
    parts: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    bytes: usize,
    next_header: Option<u8>,
    poisoned: bool,
}

/// What adding one fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome {
    /// Stored; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: (upper-layer protocol, payload).
    Complete(u8, Vec<u8>),
    /// The fragment was dropped for this reason.
    Dropped(&'static str),
}

/// Reassembly state of one decoder.
#[derive(Debug)]
pub struct Reassembler {
    map: HashMap<FragKey, Entry>,
    bytes: usize,
    max_bytes: usize,
    max_datagrams: usize,
    timeout_ns: i64,
    last_sweep: i64,
    /// Datagrams expired by the timeout.
    pub timeouts: u64,
    /// Datagrams completed.
    pub reassembled: u64,
}

/// Largest reassembled datagram payload (IPv4 total length is 16 bits).
const MAX_DATAGRAM: usize = 65_535;

impl Reassembler {
    /// New reassembler holding at most `max_bytes` of fragment data in `max_datagrams`.
    pub fn new(max_bytes: usize, max_datagrams: usize, timeout_ns: i64) -> Self {
        Reassembler {
            map: HashMap::new(),
            bytes: 0,
            max_bytes,
            max_datagrams,
            timeout_ns,
            last_sweep: i64::MIN,
            timeouts: 0,
            reassembled: 0,
        }
    }

    /// Bytes of fragment data currently held.
    pub fn bytes_held(&self) -> usize {
        self.bytes
    }

    /// Datagrams currently pending.
    pub fn pending(&self) -> usize {
        self.map.len()
    }

    /// Whether the pending datagram `key` holds its first fragment (offset 0).
    pub fn has_first(&self, key: &FragKey) -> bool {
        self.map
            .get(key)
            .is_some_and(|e| e.parts.iter().any(|p| p.0 == 0))
    }

    fn sweep(&mut self, now: i64) {
        let timeout = self.timeout_ns;
        let mut freed = 0;
        let mut expired = 0;
        self.map.retain(|_, e| {
            let keep = now.saturating_sub(e.first_ts) < timeout;
            if !keep {
                freed += e.bytes;
                expired += 1;
            }
            keep
        });
        self.bytes -= freed;
        self.timeouts += expired;
        self.last_sweep = now;
    }

    /// Add one fragment: `offset` in bytes, `more` = more-fragments flag, `next_header`
    /// the upper protocol (known for IPv4 always, for IPv6 from the fragment header).
    pub fn add(
        &mut self,
        key: FragKey,
        now: i64,
        offset: usize,
        more: bool,
        next_header: u8,
        data: &[u8],
    ) -> FragOutcome {
        if now.saturating_sub(self.last_sweep) > self.timeout_ns / 4 {
            self.sweep(now);
        }
        let end = offset + data.len();
        if end > MAX_DATAGRAM {
            return FragOutcome::Dropped("frag: datagram too large");
        }
        if more && !data.len().is_multiple_of(8) {
            return FragOutcome::Dropped("frag: bad length");
        }
        if !self.map.contains_key(&key) && self.map.len() >= self.max_datagrams {
            self.sweep(now);
            if self.map.len() >= self.max_datagrams {
                return FragOutcome::Dropped("frag: too many datagrams");
            }
        }
        if self.bytes + data.len() > self.max_bytes {
            self.sweep(now);
            if self.bytes + data.len() > self.max_bytes {
                return FragOutcome::Dropped("frag: memory limit");
            }
        }
        let e = self.map.entry(key).or_insert_with(|| Entry {
            first_ts: now,
            ..Default::default()
        });
        if e.poisoned {
            return FragOutcome::Dropped("frag: overlap conflict");
        }
        // Overlap check against what we hold.
        for (o, d) in &e.parts {
            let (a0, a1) = (*o, *o + d.len());
            let lo = a0.max(offset);
            let hi = a1.min(end);
            if lo < hi && d[lo - a0..hi - a0] != data[lo - offset..hi - offset] {
                e.poisoned = true;
                let freed: usize = e.parts.iter().map(|p| p.1.len()).sum();
                e.parts = Vec::new();
                e.bytes = 0;
                self.bytes -= freed;
                return FragOutcome::Dropped("frag: overlap conflict");
            }
        }
        if !more {
            match e.total {
                Some(t) if t != end => {
                    e.poisoned = true;
                    return FragOutcome::Dropped("frag: conflicting end");
                }
                _ => e.total = Some(end),
            }
        }
        if offset == 0 {
            e.next_header = Some(next_header);
        }
        e.parts.push((offset, data.to_vec()));
        e.bytes += data.len();
        self.bytes += data.len();
        let Some(total) = e.total else {
            return FragOutcome::Pending;
        };
        // Complete when [0, total) is covered.
        e.parts.sort_by_key(|p| p.0);
        let mut covered = 0;
        for (o, d) in &e.parts {
            if *o > covered {
                return FragOutcome::Pending;
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return FragOutcome::Pending;
        }
        let Some(e) = self.map.remove(&key) else {
            return FragOutcome::Pending;
        };
        self.bytes -= e.bytes;
        let mut out = vec![0u8; total];
        for (o, d) in &e.parts {
            let n = d.len().min(total.saturating_sub(*o));
            out[*o..*o + n].copy_from_slice(&d[..n]);
        }
        self.reassembled += 1;
        FragOutcome::Complete(e.next_header.unwrap_or(next_header), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            id: 7,
            proto: 17,
        }
    }

    #[test]
    fn in_and_out_of_order() {
        let mut r = Reassembler::new(1 << 20, 16, 30_000_000_000);
        assert_eq!(r.add(key(), 0, 8, false, 17, b"ijkl"), FragOutcome::Pending);
        assert_eq!(
            r.add(key(), 1, 0, true, 17, b"abcdefgh"),
            FragOutcome::Complete(17, b"abcdefghijkl".to_vec())
        );
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn conflicting_overlap_dropped() {
        let mut r = Reassembler::new(1 << 20, 16, 30_000_000_000);
        assert_eq!(
            r.add(key(), 0, 0, true, 17, b"abcdefgh"),
            FragOutcome::Pending
        );
        assert_eq!(
            r.add(key(), 0, 0, true, 17, b"abcdXfgh"),
            FragOutcome::Dropped("frag: overlap conflict")
        );
        assert_eq!(
            r.add(key(), 0, 8, false, 17, b"ijkl"),
            FragOutcome::Dropped("frag: overlap conflict")
        );
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn flood_is_bounded_and_times_out() {
        let mut r = Reassembler::new(64 * 1024, 100, 1_000);
        let mut dropped = 0;
        for i in 0..10_000u32 {
            let k = FragKey { id: i, ..key() };
            if let FragOutcome::Dropped(_) = r.add(k, 0, 0, true, 17, &[0u8; 1024]) {
                dropped += 1;
            }
            assert!(r.bytes_held() <= 64 * 1024);
            assert!(r.pending() <= 100);
        }
        assert!(dropped >= 9_900);
        r.add(
            FragKey {
                id: 99_999,
                ..key()
            },
            10_000,
            0,
            true,
            17,
            &[0u8; 8],
        );
        assert_eq!(r.pending(), 1);
        assert!(r.timeouts >= 60);
    }
}
