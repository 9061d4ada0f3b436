//! CIDR aggregation (adjacent and nested blocks merged, as FireHOL's `iprange` does) and
//! subtraction of allowlisted ranges, on inclusive `u128` ranges (IPv4 uses the low 32 bits).

/// An inclusive address range.
pub(crate) type Range = (u128, u128);

/// Sort and merge overlapping and adjacent ranges.
pub(crate) fn merge(mut v: Vec<Range>) -> Vec<Range> {
    v.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for (s, e) in v {
        if let Some(last) = out.last_mut() {
            if s <= last.1.saturating_add(1) {
                last.1 = last.1.max(e);
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

/// `block` minus `allow`; both must be merged (sorted, disjoint).
pub(crate) fn subtract(block: &[Range], allow: &[Range]) -> Vec<Range> {
    let mut out = Vec::with_capacity(block.len());
    let mut j = 0;
    for &(s, e) in block {
        while j < allow.len() && allow[j].1 < s {
            j += 1;
        }
        let mut cur = s;
        let mut k = j;
        let mut done = false;
        while k < allow.len() && allow[k].0 <= e {
            let (as_, ae) = allow[k];
            if as_ > cur {
                out.push((cur, as_ - 1));
            }
            if ae >= e {
                done = true;
                break;
            }
            cur = cur.max(ae + 1);
            k += 1;
        }
        if !done && cur <= e {
            out.push((cur, e));
        }
    }
    out
}

/// The minimal list of CIDRs `(network, prefix length)` covering the range exactly.
pub(crate) fn to_cidrs(range: Range, bits: u32, out: &mut Vec<(u128, u8)>) {
    let (mut s, e) = range;
    loop {
        // Largest k such that s is aligned to 2^k and s + 2^k - 1 <= e.
        let mut k = if s == 0 {
            bits
        } else {
            s.trailing_zeros().min(bits)
        };
        loop {
            let last = if k >= 128 {
                Some(u128::MAX)
            } else {
                s.checked_add((1u128 << k) - 1)
            };
            match last {
                Some(l) if l <= e => break,
                _ => k -= 1,
            }
        }
        out.push((s, (bits - k) as u8));
        let last = if k >= 128 {
            u128::MAX
        } else {
            s + ((1u128 << k) - 1)
        };
        if last >= e {
            return;
        }
        s = last + 1;
    }
}

/// Merge `block`, subtract merged `allow`, and return the resulting CIDRs in address order.
pub(crate) fn aggregate(block: Vec<Range>, allow: Vec<Range>, bits: u32) -> Vec<(u128, u8)> {
    let block = merge(block);
    let allow = merge(allow);
    let ranges = subtract(&block, &allow);
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        to_cidrs(r, bits, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::normalize::prefix_range;
    use proptest::prelude::*;

    fn net_range(addr: u128, len: u8) -> Range {
        prefix_range(addr, len, true)
    }

    fn v4(s: &str) -> u128 {
        u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().expect("ip")))
    }

    #[test]
    fn adjacent_and_nested_merge() {
        let b = vec![
            net_range(v4("10.0.0.0"), 25),
            net_range(v4("10.0.0.128"), 25),
            net_range(v4("10.0.0.7"), 32),
            net_range(v4("10.0.1.0"), 24),
        ];
        assert_eq!(aggregate(b, vec![], 32), vec![(v4("10.0.0.0"), 23)]);
    }

    #[test]
    fn allow_is_cut_out() {
        let b = vec![net_range(v4("10.0.0.0"), 24)];
        let a = vec![
            net_range(v4("10.0.0.0"), 25),
            net_range(v4("10.0.0.255"), 32),
        ];
        assert_eq!(
            aggregate(b, a, 32),
            vec![
                (v4("10.0.0.128"), 26),
                (v4("10.0.0.192"), 27),
                (v4("10.0.0.224"), 28),
                (v4("10.0.0.240"), 29),
                (v4("10.0.0.248"), 30),
                (v4("10.0.0.252"), 31),
                (v4("10.0.0.254"), 32)
            ]
        );
    }

    #[test]
    fn whole_spaces() {
        assert_eq!(aggregate(vec![(0, u128::MAX)], vec![], 128), vec![(0, 0)]);
        assert_eq!(
            aggregate(vec![(0, u128::from(u32::MAX))], vec![], 32),
            vec![(0, 0)]
        );
    }

    proptest! {
        #[test]
        fn cover_is_exact(nets in proptest::collection::vec((0u32..4096, 20u8..=32), 0..20),
                          allow in proptest::collection::vec((0u32..4096, 22u8..=32), 0..5)) {
            let r = |(a, l): (u32, u8)| {
                net_range(u128::from(a) << 20, l)
            };
            let b: Vec<Range> = nets.iter().copied().map(r).collect();
            let al: Vec<Range> = allow.iter().copied().map(r).collect();
            let cidrs = aggregate(b.clone(), al.clone(), 32);
            // Membership of sampled addresses equals (in block) && !(in allow).
            for probe in (0u128..(1u128 << 32)).step_by(1 << 18) {
                for off in [0u128, 1, 255, 1 << 12] {
                    let x = probe + off;
                    let want = b.iter().any(|&(s, e)| s <= x && x <= e)
                        && !al.iter().any(|&(s, e)| s <= x && x <= e);
                    let got = cidrs.iter().any(|&(n, l)| { let (s, e) = net_range(n, l); s <= x && x <= e });
                    prop_assert_eq!(want, got);
                }
            }
            // Output sorted, disjoint, non-adjacent mergeable blocks are fine but no overlap.
            for w in cidrs.windows(2) {
                prop_assert!(net_range(w[0].0, w[0].1).1 < w[1].0);
            }
        }
    }
}
