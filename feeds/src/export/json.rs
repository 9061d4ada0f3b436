//! JSON lines (one object per indicator) or one JSON array, with the keys of
//! `trawl query --format json`: value, itype, confidence, severity, tags, sources, tlp,
//! provider, description, reference, first_seen, last_seen, expires (RFC 3339), derived.

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
    for (i, it) in p.items.iter().enumerate() {
        if array {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        }
        serde_json::to_writer(&mut *out, &Row::of(&it.ind)).map_err(std::io::Error::from)?;
        if !array {
            out.write_all(b"\n")?;
        }
        stats.written += 1;
        stats.rules += 1;
    }
    if array {
        out.write_all(b"\n]\n")?;
    }
    Ok(())
}
