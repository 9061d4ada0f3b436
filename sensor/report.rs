//! The incident report of `scan`, `replay`, `sniff` and `hunt --report FILE.html`: one
//! self-contained HTML page of the alerts a run wrote (ARCHITECTURE.md §12). A timeline of
//! alerts per hour by severity as inline SVG, the top indicators, clients and feeds, and the
//! alert table, each indicator's rows under an anchor the top list links to. No script, no
//! external asset (a Content-Security-Policy forbids both), every alert value HTML-escaped:
//! alert values are attacker-controlled.
//!
//! Memory is bounded whatever the run: counts are exact, but the table keeps the first
//! [`MAX_ROWS`] alerts, each list the first [`MAX_KEYS`] distinct values (later ones counted
//! as "others"), the timeline [`MAX_HOURS`] distinct hours; the page says when a cap was hit.

use feeds::export::html_escape as esc;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Alerts shown in the table (the first written); counts stay exact.
pub const MAX_ROWS: usize = 2000;
/// Distinct indicators, clients and feeds counted each; later ones go to "others".
pub const MAX_KEYS: usize = 50_000;
/// Distinct hours on the timeline; alerts of later-seen hours are counted as off it.
pub const MAX_HOURS: usize = 100_000;
/// Entries of each top list.
pub const TOP: usize = 20;
/// Bars drawn at most: longer runs are drawn per several hours.
pub const MAX_BARS: i64 = 720;
/// Characters kept of each value shown in the table.
const MAX_TEXT: usize = 300;
/// An alert line longer than this is not read into the report (counted as unreadable).
const MAX_LINE: usize = 8 << 20;

/// The severities, most severe first, with their bar colours.
const SEVERITIES: [(&str, &str); 4] = [
    ("high", "#c62828"),
    ("medium", "#ef8f00"),
    ("low", "#4a7fc1"),
    ("other", "#888888"),
];

fn severity_index(s: Option<&str>) -> usize {
    match s {
        Some("high") => 0,
        Some("medium") => 1,
        Some("low") => 2,
        _ => 3,
    }
}

/// Counts per distinct value, at most [`MAX_KEYS`] of them.
#[derive(Debug, Default)]
struct Counter {
    counts: HashMap<String, u64>,
    /// Occurrences of values not counted individually (the cap was reached).
    others: u64,
}

impl Counter {
    fn add(&mut self, key: &str) {
        let key = clip(key);
        if let Some(n) = self.counts.get_mut(&key) {
            *n += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(key, 1);
        } else {
            self.others += 1;
        }
    }

    /// The `n` largest, ties by value.
    fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// One row of the alert table.
#[derive(Debug)]
struct Row {
    time: String,
    severity: usize,
    indicator: String,
    field: String,
    value: String,
    client: String,
    feed: String,
    /// Hits it stands for: `trawl.repeat_count` or `trawl.observed.count`, else 1.
    hits: u64,
    retro: bool,
}

/// The report's numbers, fed one alert document at a time.
#[derive(Debug, Default)]
pub struct Report {
    /// Alerts fed.
    pub alerts: u64,
    /// Alerts per severity (high, medium, low, other).
    pub by_severity: [u64; 4],
    /// Alerts per hour start (Unix seconds) and severity.
    hours: BTreeMap<i64, [u64; 4]>,
    /// Alerts without a readable `@timestamp`, or of an hour past [`MAX_HOURS`].
    pub off_timeline: u64,
    first: Option<i64>,
    last: Option<i64>,
    indicators: Counter,
    clients: Counter,
    feeds: Counter,
    rows: Vec<Row>,
    /// Lines of the alert stream that were not an alert document.
    pub unreadable: u64,
}

/// Text at `path` (dotted) of a document, when it is a string.
fn str_at<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    value_at(doc, path).and_then(Value::as_str)
}

fn value_at<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = doc.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// At most [`MAX_TEXT`] characters of `s`, marked when cut.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

fn time_text(t: i64) -> String {
    let s = ingest::observation::format_timestamp(t.saturating_mul(1_000_000_000));
    s.replacen(".000Z", "Z", 1)
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Count one alert document.
    pub fn add(&mut self, doc: &Map<String, Value>) {
        self.alerts += 1;
        let sev = severity_index(str_at(doc, "trawl.severity"));
        self.by_severity[sev] += 1;
        let time = str_at(doc, "@timestamp")
            .and_then(feeds::parse::time::parse_time)
            .filter(|t| (0..253_402_300_800).contains(t));
        match time {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                let hour = t.div_euclid(3600) * 3600;
                if let Some(h) = self.hours.get_mut(&hour) {
                    h[sev] += 1;
                } else if self.hours.len() < MAX_HOURS {
                    let mut h = [0; 4];
                    h[sev] = 1;
                    self.hours.insert(hour, h);
                } else {
                    self.off_timeline += 1;
                }
            }
            None => self.off_timeline += 1,
        }
        let indicator = str_at(doc, "trawl.matched.indicator")
            .or_else(|| str_at(doc, "threat.indicator.name"))
            .unwrap_or("");
        self.indicators.add(indicator);
        let mut clients: Vec<&str> = Vec::new();
        if let Some(ip) = str_at(doc, "source.ip") {
            clients.push(ip);
        } else if let Some(Value::Array(a)) = value_at(doc, "trawl.observed.clients") {
            clients.extend(a.iter().filter_map(Value::as_str));
        }
        for c in &clients {
            self.clients.add(c);
        }
        let mut feeds: Vec<&str> = match value_at(doc, "trawl.sources") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if feeds.is_empty() {
            feeds.extend(str_at(doc, "threat.feed.name"));
        }
        for f in &feeds {
            self.feeds.add(f);
        }
        if self.rows.len() < MAX_ROWS {
            let retro = value_at(doc, "trawl.retro").and_then(Value::as_bool) == Some(true);
            let hits = value_at(doc, "trawl.repeat_count")
                .or_else(|| value_at(doc, "trawl.observed.count"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            self.rows.push(Row {
                time: time.map(time_text).unwrap_or_default(),
                severity: sev,
                indicator: clip(indicator),
                field: clip(str_at(doc, "trawl.matched.field").unwrap_or("")),
                value: clip(str_at(doc, "trawl.matched.value").unwrap_or("")),
                client: clip(&clients.join(", ")),
                feed: clip(&feeds.join(", ")),
                hits,
                retro,
            });
        }
    }

    /// Count one line of an alert stream (a JSON object); anything else is counted
    /// [`Report::unreadable`].
    pub fn add_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<Map<String, Value>>(line) {
            Ok(doc) => self.add(&doc),
            Err(_) => self.unreadable += 1,
        }
    }

    /// Hours per bar of the timeline: 1, or more when the alerts span over [`MAX_BARS`]
    /// hours.
    pub fn hours_per_bar(&self) -> i64 {
        match (self.hours.keys().next(), self.hours.keys().next_back()) {
            (Some(a), Some(b)) => ((b - a) / 3600 + MAX_BARS) / MAX_BARS,
            _ => 1,
        }
    }

    /// The timeline's bars: (start, alerts per severity), one per [`Report::hours_per_bar`]
    /// hours from the first alert's hour to the last's, empty ones included.
    pub fn bars(&self) -> Vec<(i64, [u64; 4])> {
        let (Some(&a), Some(&b)) = (self.hours.keys().next(), self.hours.keys().next_back()) else {
            return Vec::new();
        };
        let width = self.hours_per_bar() * 3600;
        let n = usize::try_from((b - a) / width + 1).unwrap_or(0);
        let mut bars: Vec<(i64, [u64; 4])> =
            (0..n).map(|i| (a + i as i64 * width, [0; 4])).collect();
        for (h, c) in &self.hours {
            if let Some(bar) = usize::try_from((h - a) / width)
                .ok()
                .and_then(|i| bars.get_mut(i))
            {
                for (b, n) in bar.1.iter_mut().zip(c) {
                    *b += n;
                }
            }
        }
        bars
    }

    /// Write the page: `title` says what was run over what.
    pub fn write_html(&self, title: &str, out: &mut dyn Write) -> io::Result<()> {
        let mut h = String::with_capacity(64 * 1024 + self.rows.len() * 400);
        h.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'\">\n",
        );
        h.push_str(&format!(
            "<title>trawl report: {t}</title><style>{STYLE}</style></head><body>\n\
             <h1>trawl report: {t}</h1>\n",
            t = esc(title)
        ));
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) => format!(" from {} to {}", time_text(f), time_text(l)),
            _ => String::new(),
        };
        h.push_str(&format!(
            "<p class=\"meta\">written {}{span}</p>\n<p id=\"summary\"><strong id=\"total\">{}</strong> \
             alert(s):",
            time_text(crate::scan::now_ns().div_euclid(1_000_000_000)),
            self.alerts
        ));
        for (i, (name, colour)) in SEVERITIES.iter().enumerate() {
            if i == 3 && self.by_severity[3] == 0 {
                continue;
            }
            h.push_str(&format!(
                " <span class=\"sev\" style=\"background:{colour}\"></span>\
                 <span id=\"sev-{name}\">{}</span> {name}",
                self.by_severity[i]
            ));
        }
        h.push_str("</p>\n");
        if self.unreadable > 0 {
            h.push_str(&format!(
                "<p class=\"note\">{} line(s) of the alert stream were not alert documents and \
                 are not counted.</p>\n",
                self.unreadable
            ));
        }
        self.timeline(&mut h);
        h.push_str("<div class=\"tops\">\n");
        let anchors = self.anchors();
        self.top_list(
            &mut h,
            "indicators",
            "Top indicators",
            &self.indicators,
            Some(&anchors),
        );
        self.top_list(&mut h, "clients", "Top clients", &self.clients, None);
        self.top_list(&mut h, "feeds", "Top feeds", &self.feeds, None);
        h.push_str("</div>\n");
        self.table(&mut h, &anchors);
        h.push_str("</body></html>\n");
        out.write_all(h.as_bytes())
    }

    /// Indicator → its anchor number, for those with rows in the table (in first-row order).
    fn anchors(&self) -> HashMap<&str, usize> {
        let mut m = HashMap::new();
        for r in &self.rows {
            let n = m.len();
            m.entry(r.indicator.as_str()).or_insert(n);
        }
        m
    }

    fn timeline(&self, h: &mut String) {
        let bars = self.bars();
        let per = self.hours_per_bar();
        let unit = if per == 1 {
            "hour".to_string()
        } else {
            format!("{per} hours")
        };
        h.push_str(&format!("<h2>Alerts per {unit}, by severity</h2>\n"));
        if bars.is_empty() {
            h.push_str("<p id=\"timeline-empty\">No alert with a time.</p>\n");
        } else {
            let max = bars
                .iter()
                .map(|(_, c)| c.iter().sum::<u64>())
                .max()
                .unwrap_or(1)
                .max(1);
            let (w, ht, left, bottom) = (960.0_f64, 200.0_f64, 48.0_f64, 36.0_f64);
            let bw = (w - left) / bars.len() as f64;
            h.push_str(&format!(
                "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
                 height=\"{}\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"alerts per \
                 {unit}\">\n",
                ht + bottom,
                ht + bottom
            ));
            h.push_str(&format!(
                "<line x1=\"{left}\" y1=\"{ht}\" x2=\"{w}\" y2=\"{ht}\" stroke=\"#444\"/>\
                 <text x=\"{}\" y=\"12\" text-anchor=\"end\" class=\"axis\">{max}</text>\
                 <text x=\"{}\" y=\"{ht}\" text-anchor=\"end\" class=\"axis\">0</text>\n",
                left - 4.0,
                left - 4.0
            ));
            for (i, (start, counts)) in bars.iter().enumerate() {
                let total: u64 = counts.iter().sum();
                if total == 0 {
                    continue;
                }
                let x = left + i as f64 * bw;
                let mut y = ht;
                h.push_str(&format!(
                    "<g class=\"bar\" data-count=\"{total}\"><title>{}: {total} alert(s)</title>",
                    time_text(*start)
                ));
                for s in (0..4).rev() {
                    if counts[s] == 0 {
                        continue;
                    }
                    let bh = counts[s] as f64 / max as f64 * (ht - 16.0);
                    y -= bh;
                    h.push_str(&format!(
                        "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" \
                         fill=\"{}\"/>",
                        (bw - (bw * 0.2).min(1.0)).max(1.0),
                        SEVERITIES[s].1
                    ));
                }
                h.push_str("</g>\n");
            }
            let last = bars.last().map_or(0, |b| b.0);
            h.push_str(&format!(
                "<text x=\"{left}\" y=\"{}\" class=\"axis\">{}</text>\
                 <text x=\"{w}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">{}</text>\n</svg>\n",
                ht + 16.0,
                time_text(bars[0].0),
                ht + 16.0,
                time_text(last)
            ));
        }
        if self.off_timeline > 0 {
            h.push_str(&format!(
                "<p class=\"note\" id=\"off-timeline\">{} alert(s) without a readable time{} \
                 are not on the timeline.</p>\n",
                self.off_timeline,
                if self.hours.len() >= MAX_HOURS {
                    format!(", or past the first {MAX_HOURS} distinct hours,")
                } else {
                    String::new()
                }
            ));
        }
    }

    fn top_list(
        &self,
        h: &mut String,
        id: &str,
        heading: &str,
        counter: &Counter,
        anchors: Option<&HashMap<&str, usize>>,
    ) {
        h.push_str(&format!(
            "<section><h2>{heading}</h2>\n<table id=\"top-{id}\"><tbody>\n"
        ));
        for (k, n) in counter.top(TOP) {
            let label = if k.is_empty() { "(none)" } else { k };
            let cell = match anchors.and_then(|a| a.get(k)) {
                Some(i) => format!("<a href=\"#i{i}\">{}</a>", esc(label)),
                None => esc(label),
            };
            h.push_str(&format!(
                "<tr><td class=\"v\">{cell}</td><td class=\"n\">{n}</td></tr>\n"
            ));
        }
        let shown: u64 = counter.top(TOP).iter().map(|(_, n)| n).sum();
        let rest = counter.counts.values().sum::<u64>() - shown + counter.others;
        h.push_str("</tbody></table>\n");
        if counter.counts.len() > TOP || counter.others > 0 {
            h.push_str(&format!(
                "<p class=\"note\">{} distinct{}; {rest} more not in this list.</p>\n",
                counter.counts.len(),
                if counter.others > 0 {
                    format!(" counted (then the first {MAX_KEYS}'s cap)")
                } else {
                    String::new()
                }
            ));
        }
        h.push_str("</section>\n");
    }

    fn table(&self, h: &mut String, anchors: &HashMap<&str, usize>) {
        h.push_str("<h2>Alerts</h2>\n");
        if self.alerts as usize > self.rows.len() {
            h.push_str(&format!(
                "<p class=\"note\" id=\"rows-capped\">The table shows the first {} of {} alerts \
                 written; the counts above are of all of them.</p>\n",
                self.rows.len(),
                self.alerts
            ));
        }
        // Rows grouped by indicator (in order of first row), each group under its anchor.
        let mut groups: Vec<Vec<&Row>> = vec![Vec::new(); anchors.len()];
        for r in &self.rows {
            if let Some(g) = anchors
                .get(r.indicator.as_str())
                .and_then(|&i| groups.get_mut(i))
            {
                g.push(r);
            }
        }
        h.push_str(
            "<table id=\"alerts\"><thead><tr><th>time</th><th>severity</th><th>field</th>\
             <th>observed value</th><th>client</th><th>feed</th><th>hits</th></tr></thead>\n",
        );
        for (i, rows) in groups.iter().enumerate() {
            let Some(first) = rows.first() else { continue };
            let total = self.indicators.counts.get(&first.indicator).copied();
            h.push_str(&format!(
                "<tbody id=\"i{i}\"><tr class=\"group\"><th colspan=\"7\">{}{}</th></tr>\n",
                esc(&first.indicator),
                match total {
                    Some(n) => format!(" &middot; {n} alert(s)"),
                    None => String::new(),
                }
            ));
            for r in rows {
                h.push_str(&format!(
                    "<tr class=\"row\"><td>{}</td><td class=\"s{}\">{}</td><td>{}</td>\
                     <td class=\"v\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}{}</td></tr>\n",
                    esc(&r.time),
                    r.severity,
                    SEVERITIES[r.severity].0,
                    esc(&r.field),
                    esc(&r.value),
                    esc(&r.client),
                    esc(&r.feed),
                    r.hits,
                    if r.retro { " (retro)" } else { "" }
                ));
            }
            h.push_str("</tbody>\n");
        }
        h.push_str("</table>\n");
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.4em}\
.meta,.note{color:#555;font-size:.9em}\
.sev{display:inline-block;width:.8em;height:.8em;margin:0 .2em 0 .6em}\
.axis{font-size:11px;fill:#444}#alerts td:first-child{white-space:nowrap}\
.tops{display:flex;flex-wrap:wrap;gap:2em}\
table{border-collapse:collapse;font-size:.9em}td,th{padding:.15em .5em;text-align:left}\
#alerts td,#alerts th{border-bottom:1px solid #ddd}\
tr.group th{background:#eef;padding-top:.5em}\
td.v{word-break:break-all;max-width:40em}td.n{text-align:right}\
.s0{color:#c62828;font-weight:bold}.s1{color:#b36b00}.s2{color:#4a7fc1}";

/// The report file being made beside an alert stream: the numbers, shared with the
/// [`ReportTee`] that feeds them.
#[derive(Debug, Clone, Default)]
pub struct SharedReport(Arc<Mutex<Report>>);

impl SharedReport {
    /// A new, empty report.
    pub fn new() -> SharedReport {
        SharedReport::default()
    }

    /// Run `f` on the report.
    pub fn with<T>(&self, f: impl FnOnce(&mut Report) -> T) -> T {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut r)
    }
}

/// A writer that passes an alert stream (JSON lines) through to `inner` and counts each
/// line written into a report: exactly the alerts written, after any folding of repeats.
pub struct ReportTee<W: Write> {
    inner: W,
    report: SharedReport,
    partial: Vec<u8>,
    overlong: bool,
}

impl<W: Write> ReportTee<W> {
    /// Tee `inner` into `report`.
    pub fn new(inner: W, report: SharedReport) -> Self {
        ReportTee {
            inner,
            report,
            partial: Vec::new(),
            overlong: false,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = bytes.split_at(nl);
            bytes = &rest[1..];
            if self.overlong {
                self.report.with(|r| r.unreadable += 1);
            } else if self.partial.is_empty() {
                self.report.with(|r| r.add_line(line));
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                self.report.with(|r| r.add_line(&whole));
            }
            self.overlong = false;
        }
        if !self.overlong {
            if self.partial.len() + bytes.len() > MAX_LINE {
                self.partial = Vec::new();
                self.overlong = true;
            } else {
                self.partial.extend_from_slice(bytes);
            }
        }
    }
}

impl<W: Write> Write for ReportTee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write `report` to `path` (a temporary beside it, renamed: never half a page).
pub fn write_report_file(report: &Report, title: &str, path: &std::path::Path) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
        report.write_html(title, &mut f)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(t: &str, sev: &str, ind: &str, ip: &str, feeds: &[&str]) -> Vec<u8> {
        let doc = json!({"@timestamp": t, "source": {"ip": ip},
            "trawl": {"severity": sev, "sources": feeds,
                      "matched": {"indicator": ind, "value": ind, "field": "url.domain"}}});
        let mut v = serde_json::to_vec(&doc).unwrap();
        v.push(b'\n');
        v
    }

    #[test]
    fn the_numbers_are_the_alerts_written_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend(alert(
            "2026-03-01T10:05:00.000Z",
            "high",
            "evil.example",
            "10.0.0.1",
            &["a"],
        ));
        stream.extend(alert(
            "2026-03-01T10:59:59Z",
            "low",
            "evil.example",
            "10.0.0.2",
            &["a", "b"],
        ));
        stream.extend(alert(
            "2026-03-01T13:00:00Z",
            "medium",
            "bad.example",
            "10.0.0.1",
            &["b"],
        ));
        stream.extend(b"not json\n");
        stream.extend(alert("garbage", "weird", "bad.example", "10.0.0.1", &[]));
        // Written in odd-sized pieces, as a BufWriter or a partial write would.
        let shared = SharedReport::new();
        let mut tee = ReportTee::new(Vec::new(), shared.clone());
        for chunk in stream.chunks(7) {
            tee.write_all(chunk).unwrap();
        }
        assert_eq!(tee.inner, stream, "the stream passes through unchanged");
        shared.with(|r| {
            assert_eq!(r.alerts, 4);
            assert_eq!(r.unreadable, 1);
            assert_eq!(r.by_severity, [1, 1, 1, 1]);
            assert_eq!(r.off_timeline, 1);
            assert_eq!(r.hours_per_bar(), 1);
            let bars = r.bars();
            let t0 = feeds::parse::time::parse_time("2026-03-01T10:00:00Z").unwrap();
            assert_eq!(bars.len(), 4, "10:00 to 13:00, empty hours included");
            assert_eq!(bars[0], (t0, [1, 0, 1, 0]));
            assert_eq!(bars[1].1, [0; 4]);
            assert_eq!(bars[3], (t0 + 3 * 3600, [0, 1, 0, 0]));
            assert_eq!(r.indicators.top(1), vec![("bad.example", 2)]);
            assert_eq!(r.clients.top(5), vec![("10.0.0.1", 3), ("10.0.0.2", 1)]);
            assert_eq!(r.feeds.top(5), vec![("a", 2), ("b", 2)]);
            let mut html = Vec::new();
            r.write_html("scan of <x>", &mut html).unwrap();
            let html = String::from_utf8(html).unwrap();
            assert!(html.contains("<strong id=\"total\">4</strong>"), "{html}");
            assert!(html.contains("scan of &lt;x&gt;"));
            assert_eq!(html.matches("<tr class=\"row\">").count(), 4);
            assert_eq!(html.matches("<g class=\"bar\"").count(), 2);
        });
    }

    #[test]
    fn memory_is_bounded_and_the_page_says_so() {
        let mut r = Report::new();
        for i in 0..(MAX_ROWS + 10) {
            let doc = json!({"@timestamp": "2026-03-01T10:00:00Z", "trawl": {"severity": "high",
                "matched": {"indicator": format!("x{i}.example")}}});
            r.add(doc.as_object().unwrap());
        }
        assert_eq!(r.alerts as usize, MAX_ROWS + 10);
        assert_eq!(r.rows.len(), MAX_ROWS);
        let mut html = Vec::new();
        r.write_html("t", &mut html).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains(&format!("the first {MAX_ROWS} of {} alerts", MAX_ROWS + 10)));
        // Spread over two years: drawn per several hours, within the bar budget.
        let mut r = Report::new();
        for t in ["2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z"] {
            let doc = json!({"@timestamp": t, "trawl": {"severity": "low"}});
            r.add(doc.as_object().unwrap());
        }
        assert!(r.hours_per_bar() > 1);
        assert!(r.bars().len() as i64 <= MAX_BARS);
        assert_eq!(r.bars().iter().map(|b| b.1[2]).sum::<u64>(), 2);
    }
}
