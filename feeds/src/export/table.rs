//! An aligned text table for terminals: VALUE ITYPE CONF SEVERITY TLP TAGS SOURCES
//! DESCRIPTION. Cells have control characters (escape sequences included) replaced by `?`
//! and, except the value, are cut at 60 characters with `...`.

use super::{ExportError, ExportStats, Prepared};
use std::io::Write;

const MAX: usize = 60;

/// Set `out` to `s` with controls as `?`, cut at [`MAX`] characters with `...`.
fn cell_into(s: &str, out: &mut String) {
    out.clear();
    let mut n = 0;
    for c in s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX + 1)
    {
        out.push(c);
        n += 1;
    }
    if n > MAX {
        let cut = out
            .char_indices()
            .nth(MAX - 3)
            .map_or(out.len(), |(i, _)| i);
        out.truncate(cut);
        out.push_str("...");
    }
}

/// The eight cells of an item's row, into reusable strings (`scratch` for joins).
fn cells(it: &super::Item, row: &mut [String; 8], scratch: &mut String) {
    let i = &it.ind;
    row[0].clear();
    row[0].extend(
        i.value
            .chars()
            .map(|c| if c.is_control() { '?' } else { c }),
    );
    row[1].clear();
    row[1].push_str(i.itype.as_str());
    row[2].clear();
    row[2].push_str(itoa::Buffer::new().format(i.confidence));
    row[3].clear();
    row[3].push_str(i.severity.as_str());
    row[4].clear();
    row[4].push_str(i.tlp.as_str());
    for (k, list) in [(5, &i.tags), (6, &i.sources)] {
        scratch.clear();
        for (j, t) in list.iter().enumerate() {
            if j > 0 {
                scratch.push(',');
            }
            scratch.push_str(t);
        }
        cell_into(scratch, &mut row[k]);
    }
    cell_into(i.description.as_deref().unwrap_or(""), &mut row[7]);
}

/// Write the table.
pub(crate) fn write(
    p: &Prepared,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    use rayon::prelude::*;
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
    // Column widths in a first pass (cells are rebuilt when written: cheaper than keeping
    // eight strings per row).
    let width = p
        .items
        .par_iter()
        .fold(
            || {
                (
                    header.map(str::len),
                    <[String; 8]>::default(),
                    String::new(),
                )
            },
            |(mut w, mut row, mut scratch), it| {
                cells(it, &mut row, &mut scratch);
                for (w, c) in w.iter_mut().zip(&row) {
                    *w = (*w).max(c.chars().count());
                }
                (w, row, scratch)
            },
        )
        .map(|(w, _, _)| w)
        .reduce(
            || header.map(str::len),
            |a, b| std::array::from_fn(|i| a[i].max(b[i])),
        );
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
    super::par_write_with(
        &p.items,
        out,
        stats,
        || (<[String; 8]>::default(), String::new(), String::new()),
        |_, it, buf, n, (row, scratch, line)| {
            cells(it, row, scratch);
            let r: [&str; 8] = std::array::from_fn(|i| row[i].as_str());
            emit(&r, line);
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

    /// The cut as first written: collect, count, cut and append.
    fn cell_reference(s: &str) -> String {
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

    #[test]
    fn cells_cut_like_the_reference() {
        let long = "é".repeat(70);
        let exact = "x".repeat(MAX);
        let over = "y".repeat(MAX + 1);
        for s in ["", "a\u{1b}[31mred", &long, &exact, &over, "tab\tnul\u{0}"] {
            let mut got = String::new();
            cell_into(s, &mut got);
            assert_eq!(got, cell_reference(s), "{s:?}");
        }
    }
}
