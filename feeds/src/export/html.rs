//! One self-contained HTML page: counts by itype, feed and severity, and a table of every
//! indicator that sorts when a header is clicked and filters as you type. No external
//! resources (a Content-Security-Policy forbids them), static inline script and style, and
//! every value HTML-escaped: data never enters the script.

use super::{rfc3339, ExportError, ExportOptions, ExportStats, Prepared, Row, COLUMNS};
use std::collections::BTreeMap;
use std::io::Write;

/// Escape text for HTML element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    esc_into(s, &mut o);
    o
}

/// Append [`esc`]`(s)` to `o`.
fn esc_into(s: &str, o: &mut String) {
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
th{background:#eee;cursor:pointer;user-select:none}#rows td:first-child{font-family:monospace;word-break:break-all}\
.counts{display:flex;gap:2em;flex-wrap:wrap}.sev-high{color:#a00;font-weight:bold}.sev-medium{color:#a60}\
input{font-size:14px;padding:.3em;width:30em}";

const SCRIPT: &str = r#"(function(){
var tbody=document.querySelector('#rows tbody');
var q=document.getElementById('q');var shown=document.getElementById('shown');
function filter(){var t=q.value.toLowerCase();var n=0;
for(var i=0;i<tbody.rows.length;i++){var r=tbody.rows[i];var ok=t===''||r.textContent.toLowerCase().indexOf(t)>=0;r.style.display=ok?'':'none';if(ok)n++;}
shown.textContent=String(n);}
q.addEventListener('input',filter);
var dir={};
document.querySelectorAll('#rows th').forEach(function(th,col){th.addEventListener('click',function(){
var rows=Array.prototype.slice.call(tbody.rows);var d=dir[col]=-(dir[col]||-1);var num=th.dataset.num==='1';
rows.sort(function(a,b){var x=a.cells[col].textContent,y=b.cells[col].textContent;
if(num){return d*((parseFloat(x)||0)-(parseFloat(y)||0));}return d*x.localeCompare(y);});
rows.forEach(function(r){tbody.appendChild(r);});});});
filter();})();"#;

fn counts(out: &mut dyn Write, title: &str, m: &BTreeMap<String, u64>) -> std::io::Result<()> {
    writeln!(
        out,
        "<table class=\"count\"><caption>{}</caption>",
        esc(title)
    )?;
    for (k, v) in m {
        writeln!(out, "<tr><td>{}</td><td>{v}</td></tr>", esc(k))?;
    }
    writeln!(out, "</table>")
}

/// Write the page.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let mut by_type = BTreeMap::new();
    let mut by_feed = BTreeMap::new();
    let mut by_sev = BTreeMap::new();
    for it in &p.items {
        *by_type
            .entry(it.ind.itype.as_str().to_string())
            .or_insert(0u64) += 1;
        *by_sev
            .entry(it.ind.severity.as_str().to_string())
            .or_insert(0u64) += 1;
        for s in &it.ind.sources {
            *by_feed.entry(s.clone()).or_insert(0u64) += 1;
        }
    }
    let title = format!(
        "trawl indicators - {} - snapshot {}",
        opts.sensor_name, opts.snapshot_version
    );
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
<title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p>created {} &middot; {} indicators</p>",
        esc(&title),
        esc(&title),
        esc(&rfc3339(opts.created).unwrap_or_default()),
        p.items.len()
    )?;
    writeln!(out, "<div class=\"counts\">")?;
    counts(out, "by itype", &by_type)?;
    counts(out, "by feed", &by_feed)?;
    counts(out, "by severity", &by_sev)?;
    writeln!(
        out,
        "</div>\n<p><label>Filter: <input id=\"q\" type=\"search\" placeholder=\"type to filter rows\"></label> <span id=\"shown\">{}</span> shown</p>",
        p.items.len()
    )?;
    // The header comes from the same list, in the same order, as the cells of each row.
    let mut head = String::from("<table id=\"rows\"><thead><tr>");
    for name in COLUMNS {
        head.push_str(if name == "confidence" {
            "<th data-num=\"1\">"
        } else {
            "<th>"
        });
        esc_into(name, &mut head);
        head.push_str("</th>");
    }
    writeln!(out, "{head}</tr></thead>\n<tbody>")?;
    super::par_write_with(
        &p.items,
        out,
        stats,
        || (String::with_capacity(512), String::new()),
        |_, it, out, stats, (line, scratch)| {
            line.clear();
            line.push_str("<tr>");
            Row::of(&it.ind).each_text(scratch, |i, c| {
                if i == 3 {
                    line.push_str("<td class=\"sev-");
                    esc_into(c, line);
                    line.push_str("\">");
                } else {
                    line.push_str("<td>");
                }
                esc_into(c, line);
                line.push_str("</td>");
            });
            line.push_str("</tr>\n");
            out.extend_from_slice(line.as_bytes());
            stats.written += 1;
            stats.rules += 1;
            Ok(())
        },
    )?;
    writeln!(
        out,
        "</tbody></table>\n<script>{SCRIPT}</script>\n</body></html>"
    )?;
    Ok(())
}
