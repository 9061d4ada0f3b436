//! Zeek intel framework TSV (`Intel::read_files`): `Intel::ADDR` / `SUBNET` / `DOMAIN` /
//! `URL` (without scheme, as Zeek builds `host/path` for matching) / `EMAIL` / `FILE_HASH` /
//! `CERT_HASH`, with `meta.source`, `meta.desc` (ending in `id=` the STIX id or MISP uuid
//! when there is one), `meta.url` and `meta.do_notice` (load
//! `frameworks/intel/do_notice` in Zeek). Fields never contain tabs, newlines or controls;
//! empty fields are `-`.

use super::validate::Checked;
use super::{ExportError, ExportOptions, ExportStats, Prepared};
use matcher::IndicatorType;
use std::io::Write;

/// Printable ASCII only (tab, controls, `\\` and non-ASCII replaced), capped, `-` when empty.
#[cfg(test)]
fn field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .take(max)
        .map(|c| match c {
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => ' ',
        })
        .collect();
    let v = v.trim();
    if v.is_empty() || v == "-" || v == "(empty)" {
        "-".to_string()
    } else {
        v.to_string()
    }
}

/// Append `field(s, max)` to `out` without allocating.
fn push_field(out: &mut Vec<u8>, s: &str, max: usize) {
    let start = out.len();
    out.extend(s.chars().take(max).map(|c| match c {
        '\\' => b'/',
        c if (' '..='~').contains(&c) => c as u8,
        _ => b' ',
    }));
    // Only spaces can be leading or trailing whitespace now.
    let (lead, trail) = {
        let v = out.get(start..).unwrap_or(&[]);
        let lead = v.iter().take_while(|&&b| b == b' ').count();
        let trail = v[lead..].iter().rev().take_while(|&&b| b == b' ').count();
        (lead, trail)
    };
    out.truncate(out.len() - trail);
    out.drain(start..start + lead);
    let v = out.get(start..).unwrap_or(&[]);
    if v.is_empty() || v == b"-" || v == b"(empty)" {
        out.truncate(start);
        out.push(b'-');
    }
}

/// Write the intel file.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    writeln!(
        out,
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.do_notice"
    )?;
    let notice = if opts.zeek_do_notice { "T" } else { "F" };
    super::par_write_with(
        &p.items,
        out,
        stats,
        String::new,
        |_, it, out, stats, scratch| {
            let ind = &it.ind;
            let (value, kind): (&str, &str) = match (&it.checked, ind.itype) {
                (Checked::V4(_, 32), _) | (Checked::V6(_, 128), _) => (&ind.value, "Intel::ADDR"),
                (Checked::V4(..), _) | (Checked::V6(..), _) => (&ind.value, "Intel::SUBNET"),
                (Checked::Domain, _) => (&ind.value, "Intel::DOMAIN"),
                (Checked::Url(_), _) => {
                    let v = ind
                        .value
                        .strip_prefix("http://")
                        .or_else(|| ind.value.strip_prefix("https://"))
                        .unwrap_or(&ind.value);
                    (v, "Intel::URL")
                }
                (Checked::Plain, IndicatorType::Email) => (&ind.value, "Intel::EMAIL"),
                (Checked::Plain, t) if t.is_file_hash() => (&ind.value, "Intel::FILE_HASH"),
                (Checked::Plain, IndicatorType::X509Sha1) => (&ind.value, "Intel::CERT_HASH"),
                _ => {
                    stats.unsupported += 1;
                    return Ok(());
                }
            };
            let text = &mut *scratch;
            text.clear();
            text.push_str("trawl:");
            for (i, s) in ind.sources.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(s);
            }
            out.extend_from_slice(value.as_bytes());
            out.push(b'\t');
            out.extend_from_slice(kind.as_bytes());
            out.push(b'\t');
            push_field(out, text, 200);
            out.push(b'\t');
            text.clear();
            if let Some(d) = &ind.description {
                text.push_str(d);
                text.push_str(" [");
            }
            for (i, t) in ind.tags.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(t);
            }
            if ind.description.is_some() {
                text.push(']');
            }
            text.push_str(" c=");
            text.push_str(itoa::Buffer::new().format(ind.confidence));
            text.push(' ');
            text.push_str(ind.severity.as_str());
            // The STIX id or MISP uuid last, kept whole when a long description is cut.
            if let Some(id) = ind
                .external_id
                .as_deref()
                .filter(|id| matcher::model::is_external_id(id))
            {
                let room = 300 - " id=".len() - id.len();
                if let Some((cut, _)) = text.char_indices().nth(room) {
                    text.truncate(cut);
                }
                text.push_str(" id=");
                text.push_str(id);
            }
            push_field(out, text, 300);
            out.push(b'\t');
            let url = ind
                .reference
                .as_deref()
                .filter(|r| super::validate::parse_url(r).is_some())
                .unwrap_or("-");
            out.extend_from_slice(url.as_bytes());
            out.push(b'\t');
            out.extend_from_slice(notice.as_bytes());
            out.push(b'\n');
            stats.written += 1;
            stats.rules += 1;
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_fields_equal_the_plain_rule() {
        let long = "é".repeat(250);
        for s in [
            "",
            " ",
            "-",
            " - ",
            "(empty)",
            "  (empty)  ",
            "a\\b",
            "tab\tx",
            "  pad  ",
            "é x ",
            "\u{0}\u{0}",
            &long,
            "trawl:feed-a,feed-b",
        ] {
            for max in [1, 5, 200] {
                let mut got = b"x\t".to_vec();
                push_field(&mut got, s, max);
                assert_eq!(got, format!("x\t{}", field(s, max)).into_bytes(), "{s:?}");
            }
        }
    }
}
