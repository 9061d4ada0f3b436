//! An aligned text table for terminals: VALUE ITYPE CONF SEVERITY TLP TAGS SOURCES
//! DESCRIPTION. Cells have control characters (escape sequences included) replaced by `?`
//! and, except the value, are cut at 60 characters with `...`.

use super::{ExportError, ExportStats, Prepared};
use std::io::Write;

const MAX: usize = 60;

fn cell(s: &str) -> String {
    let mut v: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX + 1)
        .collect();
    if v.chars().count() > MAX {
        v = v.chars().take(MAX - 3).collect::<String>() + "...";
    }
    v
}

/// Write the table.
pub(crate) fn write(
    p: &Prepared,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let header = [
        "VALUE",
        "ITYPE",
        "CONF",
        "SEVERITY",
        "TLP",
        "TAGS",
        "SOURCES",
        "DESCRIPTION",
    ];
    use rayon::prelude::*;
    let rows: Vec<[String; 8]> = p
        .items
        .par_iter()
        .map(|it| {
            let i = &it.ind;
            [
                i.value
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
                i.itype.as_str().to_string(),
                i.confidence.to_string(),
                i.severity.as_str().to_string(),
                i.tlp.as_str().to_string(),
                cell(&i.tags.join(",")),
                cell(&i.sources.join(",")),
                cell(i.description.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let emit = |cells: &[&str], line: &mut String| {
        line.clear();
        for (i, c) in cells.iter().enumerate() {
            line.push_str(c);
            if i + 1 < cells.len() {
                let pad = width[i] + 2 - c.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = line.trim_end().len();
        line.truncate(trimmed);
        line.push('\n');
    };
    let mut line = String::new();
    emit(&header, &mut line);
    out.write_all(line.as_bytes())?;
    super::par_write_with(&rows, out, stats, String::new, |_, r, buf, n, line| {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        emit(&cells, line);
        buf.extend_from_slice(line.as_bytes());
        n.written += 1;
        n.rules += 1;
        Ok(())
    })
}
