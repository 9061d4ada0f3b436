//! A BIND Response Policy Zone: SOA and NS records, then `evil.com CNAME .` (NXDOMAIN for
//! the name) and `*.evil.com CNAME .` (and every name below it; omitted for exact-only
//! entries). Owner names are relative to the zone's origin; the serial is the snapshot
//! version (mod 2^32).

use super::validate::Checked;
use super::{rfc3339, ExportError, ExportOptions, ExportStats, Prepared};
use std::io::Write;

/// A zone name we can put in a comment and size names against: 1+ LDH labels.
pub(crate) fn zone_name_ok(z: &str) -> bool {
    !z.is_empty()
        && z.len() <= 200
        && z.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Write the zone.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let serial = (opts.snapshot_version % (1u64 << 32)) as u32;
    writeln!(
        out,
        "; trawl response policy zone {}; snapshot {} created {}\n$TTL {}\n@\tIN\tSOA\tlocalhost. hostmaster.localhost. ( {serial} 3600 600 604800 {} )\n@\tIN\tNS\tlocalhost.",
        opts.rpz_zone,
        opts.snapshot_version,
        rfc3339(opts.created).unwrap_or_default(),
        opts.rpz_ttl,
        opts.rpz_ttl
    )?;
    // Owner name wire length: value + 2 ("*." ) + zone + 2 (length bytes / root) <= 255.
    let room = 255usize.saturating_sub(opts.rpz_zone.len() + 4);
    super::par_write(&p.items, out, stats, |_, it, out, stats| {
        if it.checked != Checked::Domain {
            stats.unsupported += 1;
            return Ok(());
        }
        let v = &it.ind.value;
        if v.len() > room {
            stats.invalid += 1;
            return Ok(());
        }
        writeln!(out, "{v}\tCNAME\t.")?;
        stats.rules += 1;
        if !it.ind.exact_only {
            writeln!(out, "*.{v}\tCNAME\t.")?;
            stats.rules += 1;
        }
        stats.written += 1;
        Ok(())
    })
}
