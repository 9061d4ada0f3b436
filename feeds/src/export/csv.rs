//! CSV (RFC 4180 quoting) with a header row of the `trawl query --format json` keys. Text
//! fields have control characters replaced and, when they start with `=`, `+`, `-` or `@`,
//! a leading `'` so spreadsheets do not evaluate them as formulas.

use super::{clean_text, ExportError, ExportStats, Prepared, Row, COLUMNS};
use std::io::Write;

fn cell(s: &str, guard: bool, out: &mut String) {
    let s = clean_text(s);
    let s = if guard && s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s
    };
    if s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&s);
    }
}

/// Write the CSV.
pub(crate) fn write(
    p: &Prepared,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    super::par_write_with(
        &p.items,
        out,
        stats,
        || String::with_capacity(256),
        |_, it, buf, n, line| {
            line.clear();
            let texts = Row::of(&it.ind).texts();
            for (i, t) in texts.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                // value/itype/numbers are validated; free text (tags.. reference) is guarded.
                cell(t, (4..=9).contains(&i), line);
            }
            line.push('\n');
            buf.extend_from_slice(line.as_bytes());
            n.written += 1;
            n.rules += 1;
            Ok(())
        },
    )
}
