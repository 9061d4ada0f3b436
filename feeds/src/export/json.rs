//! JSON lines (one object per indicator) or one JSON array, with the keys of
//! `trawl query --format json`: value, itype, confidence, severity, tags, sources, tlp,
//! provider, description, reference, external_id (only when set), first_seen, last_seen,
//! expires (RFC 3339), derived.

use super::{ExportError, ExportStats, Prepared, Row};
use std::io::Write;

/// Write JSON lines (`array == false`) or a JSON array.
pub(crate) fn write(
    array: bool,
    p: &Prepared,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    if array {
        out.write_all(b"[")?;
    }
    super::par_write(&p.items, out, stats, |i, it, buf, n| {
        if array {
            buf.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        }
        serde_json::to_writer(&mut *buf, &Row::of(&it.ind)).map_err(std::io::Error::from)?;
        if !array {
            buf.push(b'\n');
        }
        n.written += 1;
        n.rules += 1;
        Ok(())
    })?;
    if array {
        out.write_all(b"\n]\n")?;
    }
    Ok(())
}
