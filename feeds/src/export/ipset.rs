//! `ipset restore` input: one `hash:net` set per family (`<name>-v4` inet, `<name>-v6`
//! inet6), filled through a temporary set and swapped in atomically, then the temporary set
//! destroyed. Networks are aggregated first and allowlisted ranges cut out; a `/0` (which
//! `hash:net` refuses) is written as two `/1` halves.

use super::{
    aggregated_nets, net_text, rfc3339, ExportError, ExportOptions, ExportStats, Prepared,
};
use std::io::Write;

/// Write the restore script for both families.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    writeln!(
        out,
        "# trawl ipset restore input; snapshot {} created {}\n# load with: ipset restore -exist < FILE",
        opts.snapshot_version,
        rfc3339(opts.created).unwrap_or_default()
    )?;
    let mut total = 0u64;
    for v6 in [false, true] {
        let (nets, n) = aggregated_nets(p.items.iter(), &p.allow, v6);
        total += n;
        let (suffix, family, half) = if v6 {
            ("v6", "inet6", 1u128 << 127)
        } else {
            ("v4", "inet", 1u128 << 31)
        };
        let set = format!("{}-{suffix}", opts.set_name);
        let tmp = format!("{set}-tmp");
        let maxelem = (nets.len() + 2).next_power_of_two().max(1 << 20);
        for s in [&set, &tmp] {
            writeln!(
                out,
                "create {s} hash:net family {family} hashsize 1024 maxelem {maxelem} -exist"
            )?;
        }
        writeln!(out, "flush {tmp}")?;
        for (net, len) in nets {
            if len == 0 {
                writeln!(out, "add {tmp} {}", net_text(0, 1, v6))?;
                writeln!(out, "add {tmp} {}", net_text(half, 1, v6))?;
                stats.rules += 2;
            } else {
                writeln!(out, "add {tmp} {}", net_text(net, len, v6))?;
                stats.rules += 1;
            }
        }
        writeln!(out, "swap {tmp} {set}\ndestroy {tmp}")?;
    }
    stats.written += total;
    stats.skipped_unsupported += p.items.len() as u64 - total;
    Ok(())
}
