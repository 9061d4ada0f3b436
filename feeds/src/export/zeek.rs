//! Zeek intel framework TSV (`Intel::read_files`): `Intel::ADDR` / `SUBNET` / `DOMAIN` /
//! `URL` (without scheme, as Zeek builds `host/path` for matching) / `EMAIL` / `FILE_HASH` /
//! `CERT_HASH`, with `meta.source`, `meta.desc`, `meta.url` and `meta.do_notice` (load
//! `frameworks/intel/do_notice` in Zeek). Fields never contain tabs, newlines or controls;
//! empty fields are `-`.

use super::validate::Checked;
use super::{ExportError, ExportOptions, ExportStats, Prepared};
use matcher::IndicatorType;
use std::io::Write;

/// Printable ASCII only (tab, controls, `\` and non-ASCII replaced), capped, `-` when empty.
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
    super::par_write(&p.items, out, stats, |_, it, out, stats| {
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
        let source = field(&format!("trawl:{}", ind.sources.join(",")), 200);
        let desc = match &ind.description {
            Some(d) => format!("{} [{}]", d, ind.tags.join(",")),
            None => ind.tags.join(","),
        };
        let desc = field(
            &format!("{desc} c={} {}", ind.confidence, ind.severity),
            300,
        );
        let url = ind
            .reference
            .as_deref()
            .filter(|r| super::validate::parse_url(r).is_some())
            .unwrap_or("-");
        writeln!(out, "{value}\t{kind}\t{source}\t{desc}\t{url}\t{notice}")?;
        stats.written += 1;
        stats.rules += 1;
        Ok(())
    })
}
