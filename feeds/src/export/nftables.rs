//! An `nft -f` file: table `inet <set_name>` recreated atomically (declare, delete, define in
//! one transaction), interval sets `block_v4` / `block_v6` (`flags interval; auto-merge`)
//! holding the aggregated networks minus allowlisted ranges, and input / forward / output
//! chains that log and drop or reject traffic from or to them.

use super::{
    aggregated_nets, net_text, rfc3339, ExportError, ExportOptions, ExportStats, FirewallAction,
    Prepared,
};
use std::io::Write;

/// Write the nftables file.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let t = &opts.set_name;
    writeln!(
        out,
        "#!/usr/sbin/nft -f\n# trawl nftables ruleset; snapshot {} created {}\n# load with: nft -f FILE\ntable inet {t}\ndelete table inet {t}\ntable inet {t} {{",
        opts.snapshot_version,
        rfc3339(opts.created).unwrap_or_default()
    )?;
    let mut total = 0u64;
    for (v6, name, ty) in [
        (false, "block_v4", "ipv4_addr"),
        (true, "block_v6", "ipv6_addr"),
    ] {
        let (nets, n) = aggregated_nets(p.items.iter(), &p.allow, v6);
        total += n;
        writeln!(
            out,
            "\tset {name} {{\n\t\ttype {ty}\n\t\tflags interval\n\t\tauto-merge"
        )?;
        if !nets.is_empty() {
            writeln!(out, "\t\telements = {{")?;
            let last = nets.len() - 1;
            for (i, (net, len)) in nets.into_iter().enumerate() {
                let sep = if i == last { "" } else { "," };
                writeln!(out, "\t\t\t{}{sep}", net_text(net, len, v6))?;
                stats.rules += 1;
            }
            writeln!(out, "\t\t}}")?;
        }
        writeln!(out, "\t}}")?;
    }
    let action = match opts.action {
        FirewallAction::Drop => "drop",
        FirewallAction::Reject => "reject",
    };
    let log = if opts.log_first {
        format!("log prefix \"{}\" ", opts.log_prefix)
    } else {
        String::new()
    };
    for (chain, dirs) in [
        ("input", &["saddr"][..]),
        ("forward", &["saddr", "daddr"][..]),
        ("output", &["daddr"][..]),
    ] {
        writeln!(
            out,
            "\tchain {chain} {{\n\t\ttype filter hook {chain} priority filter - 10; policy accept;"
        )?;
        for dir in dirs {
            writeln!(out, "\t\tip {dir} @block_v4 counter {log}{action}")?;
            writeln!(out, "\t\tip6 {dir} @block_v6 counter {log}{action}")?;
        }
        writeln!(out, "\t}}")?;
    }
    writeln!(out, "}}")?;
    stats.written += total;
    stats.skipped_unsupported += p.items.len() as u64 - total;
    Ok(())
}
