//! `iptables-restore` / `ip6tables-restore` input: our own chain holding one source and one
//! destination rule per aggregated network and a block chain (LOG, then DROP or REJECT).
//! Loaded with `iptables-restore --noflush` the rest of the filter table is kept, and
//! declaring our chains flushes them, so every load replaces our rules. The jumps from
//! INPUT, FORWARD and OUTPUT are not in the file: a restore file can only add a rule, never
//! add it only when absent, so each reload would add another jump. The header's load line
//! adds each jump once (`iptables -C ... || iptables -I ...`) and is safe to repeat.

use super::{
    aggregated_nets, net_text, rfc3339, ExportError, ExportOptions, ExportStats, FirewallAction,
    Prepared,
};
use std::io::Write;

/// Write the IPv4 (`v6 == false`) or IPv6 ruleset.
pub(crate) fn write(
    v6: bool,
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let want = if v6 {
        matcher::IndicatorType::Ipv6
    } else {
        matcher::IndicatorType::Ipv4
    };
    let (nets, n) = aggregated_nets(p.items.iter().filter(|i| i.ind.itype == want), &p.allow, v6);
    stats.written += n;
    stats.skipped_unsupported += p.items.len() as u64 - n;
    let tool = if v6 { "ip6tables" } else { "iptables" };
    let chain = &opts.chain;
    let block = format!("{chain}-BLOCK");
    writeln!(
        out,
        "# trawl {tool}-restore input; snapshot {} created {}; {} networks",
        opts.snapshot_version,
        rfc3339(opts.created).unwrap_or_default(),
        nets.len()
    )?;
    if opts.jumps {
        writeln!(
            out,
            "# load with (safe to repeat: replaces the rules of {chain} and {block}, adds each jump once):\n#   {tool}-restore --noflush < FILE && for c in INPUT FORWARD OUTPUT; do {tool} -C $c -j {chain} 2>/dev/null || {tool} -I $c 1 -j {chain}; done"
        )?;
    } else {
        writeln!(
            out,
            "# load with (safe to repeat: replaces the rules of {chain} and {block}):\n#   {tool}-restore --noflush < FILE"
        )?;
    }
    writeln!(out, "*filter\n:{chain} - [0:0]\n:{block} - [0:0]")?;
    for (net, len) in &nets {
        let t = net_text(*net, *len, v6);
        writeln!(
            out,
            "-A {chain} -s {t} -j {block}\n-A {chain} -d {t} -j {block}"
        )?;
        stats.rules += 2;
    }
    if opts.log_first {
        writeln!(
            out,
            "-A {block} -m limit --limit 10/second -j LOG --log-prefix \"{}\"",
            opts.log_prefix
        )?;
        stats.rules += 1;
    }
    match opts.action {
        FirewallAction::Drop => writeln!(out, "-A {block} -j DROP")?,
        FirewallAction::Reject => {
            let with = if v6 {
                "icmp6-port-unreachable"
            } else {
                "icmp-port-unreachable"
            };
            writeln!(out, "-A {block} -j REJECT --reject-with {with}")?
        }
    }
    stats.rules += 1;
    writeln!(out, "COMMIT")?;
    Ok(())
}
