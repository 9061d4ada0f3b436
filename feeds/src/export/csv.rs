//! CSV (RFC 4180 quoting) with a header row of the `trawl query --format json` keys. Text
//! fields have control characters replaced and, when they start with `=`, `+`, `-` or `@`,
//! a leading `'` so spreadsheets do not evaluate them as formulas.

use super::{clean_text, ExportError, ExportStats, Prepared, Row, COLUMNS};
use std::io::Write;

fn cell(s: &str, guard: bool, out: &mut String) {
    if s.chars().any(char::is_control) {
        return cell_slow(s, guard, out);
    }
    let guarded = guard && s.starts_with(['=', '+', '-', '@']);
    // With the guard, the text starts with `'` (never a space).
    let quote = s.contains([',', '"']) || (!guarded && s.starts_with(' ')) || s.ends_with(' ');
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    if quote {
        for (i, part) in s.split('"').enumerate() {
            if i > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// [`cell`] for text with control characters (replaced by spaces first).
fn cell_slow(s: &str, guard: bool, out: &mut String) {
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
        || (String::with_capacity(256), String::new()),
        |_, it, buf, n, (line, scratch)| {
            line.clear();
            Row::of(&it.ind).each_text(scratch, |i, t| {
                if i > 0 {
                    line.push(',');
                }
                // value/itype/numbers are validated; free text (tags.. reference) is guarded.
                cell(t, (4..=9).contains(&i), line);
            });
            line.push('\n');
            buf.extend_from_slice(line.as_bytes());
            n.written += 1;
            n.rules += 1;
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_cells_equal_the_plain_rule() {
        for s in [
            "",
            "a",
            " a",
            "a ",
            "=1+2",
            "-x",
            "@x, y",
            "+\"q\"",
            "a,b",
            "x\"y",
            "= lead",
            "' x",
            "tab\there",
            "nul\u{0}",
            "\u{85}next",
            "=\u{7f}",
            " ",
            ",",
            "\"",
        ] {
            for guard in [false, true] {
                let (mut fast, mut slow) = (String::new(), String::new());
                cell(s, guard, &mut fast);
                cell_slow(s, guard, &mut slow);
                assert_eq!(fast, slow, "{s:?} guard {guard}");
            }
        }
    }
}
