//! BPF capture filters on offline packets (`trawl replay --bpf`): the expression libpcap
//! compiles for live capture, compiled once per link type met and run on each packet with
//! `pcap_offline_filter`, so an expression selects the same packets in a file as on the wire.

use super::capture::{CaptureError, LinkType};

/// A filter expression and its programs, one per link type.
pub struct BpfFilter {
    expr: String,
    progs: Vec<(LinkType, Option<pcap::BpfProgram>)>,
}

impl std::fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expr", &self.expr)
            .finish()
    }
}

fn compile(expr: &str, link: LinkType) -> Result<pcap::BpfProgram, String> {
    // Files name LINKTYPE_ values, libpcap's compiler DLT_ ones: the same numbers but for
    // raw IP (LINKTYPE_RAW 101, DLT_RAW 12 on Linux).
    let dlt = if link == LinkType::RAW {
        12
    } else {
        link.0 as i32
    };
    let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| e.to_string())?;
    dead.compile(expr, true).map_err(|e| e.to_string())
}

impl BpfFilter {
    /// Compile `expr` (checked against Ethernet, the link type most captures have).
    pub fn new(expr: &str) -> Result<Self, CaptureError> {
        let prog = compile(expr, LinkType::ETHERNET).map_err(|reason| CaptureError::Filter {
            expr: expr.to_string(),
            reason,
        })?;
        Ok(BpfFilter {
            expr: expr.to_string(),
            progs: vec![(LinkType::ETHERNET, Some(prog))],
        })
    }

    /// Whether the packet `data` of link type `link` passes. A link type the expression
    /// cannot be compiled for (e.g. `ether host` on raw IP) passes nothing.
    pub fn matches(&mut self, link: LinkType, data: &[u8]) -> bool {
        let i = match self.progs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                self.progs.push((link, compile(&self.expr, link).ok()));
                self.progs.len() - 1
            }
        };
        self.progs[i].1.as_ref().is_some_and(|p| p.filter(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_expression_is_refused_with_libpcap_reason() {
        let e = BpfFilter::new("port nonsense-word")
            .unwrap_err()
            .to_string();
        assert!(e.contains("port nonsense-word"), "{e}");
    }

    #[test]
    fn filters_per_link_type() {
        // A UDP/53 packet on raw IP and behind Ethernet.
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[8, 0]);
        eth.extend_from_slice(&ip);
        let mut f = BpfFilter::new("udp port 53").unwrap();
        assert!(f.matches(LinkType::ETHERNET, &eth));
        assert!(f.matches(LinkType::RAW, &ip));
        let mut g = BpfFilter::new("tcp").unwrap();
        assert!(!g.matches(LinkType::ETHERNET, &eth));
        assert!(!g.matches(LinkType::RAW, &ip));
    }
}
