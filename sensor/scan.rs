//! `trawl scan` and `trawl observe` over log files: mmap (or stream), split at line
//! boundaries, parse and match in parallel with rayon, write in input order.

use crate::alert::{build_alert, AlertBatch, AlertContext, AlertOutput};
use crate::correlate::{Correlator, FieldHit, Scratch};
use crate::mapped::ShrinkGuardedMap;
use crate::retro::record::{Pending, Recorder};
use ingest::logs::{
    detect_format_explained, open_input, parser_for, FieldMap, FormatPlan, LineParser, LogError,
    LogFormat, PlanParser, Screened,
};
use ingest::tail::MAX_LINE_BYTES;
use ingest::{Observation, Origin};
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// Why a scan of one file stopped (or, with `--strict`, failed at its end). The alerts of
/// what was scanned before are written.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The file could not be looked at.
    #[error("{path}")]
    Stat {
        /// The input.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file could not be opened (or its first bytes read).
    #[error("opening {path}")]
    Open {
        /// The input.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A compressed file or stdin could not be opened.
    #[error("opening {path}")]
    Input {
        /// The input.
        path: String,
        /// The cause.
        source: LogError,
    },
    /// The file's first bytes could not be read.
    #[error("reading {path}")]
    Head {
        /// The input.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The format's parser refused the file's head (a Zeek file without its header, a bad
    /// field map).
    #[error("setting up the {format} parser")]
    Parser {
        /// The format's name.
        format: &'static str,
        /// The cause.
        source: LogError,
    },
    /// Reading failed part way.
    #[error("{path}: read error after {offset} bytes (the lines before were scanned): {error}")]
    Read {
        /// The input.
        path: String,
        /// Bytes read (and scanned) before.
        offset: u64,
        /// The cause.
        error: std::io::Error,
    },
    /// The file shrank under its mapping or while it was read.
    #[error(
        "{path}: the file shrank while it was read (from {len} to {now} bytes; truncated or \
         rotated by copytruncate?): the {scanned} bytes before were scanned, the rest is lost"
    )]
    Shrank {
        /// The input.
        path: String,
        /// Its length when opened.
        len: u64,
        /// Its length now.
        now: u64,
        /// Bytes scanned.
        scanned: u64,
    },
    /// `--strict` and some lines could not be parsed.
    #[error("{path}: {count} unparseable line(s) and --strict was given; first: {first}")]
    Strict {
        /// The input.
        path: String,
        /// Unparseable lines.
        count: u64,
        /// The first of them (file, byte and reason).
        first: String,
    },
    /// The output could not be written.
    #[error("writing output")]
    Write(#[source] std::io::Error),
}

/// Bytes of input handed to one rayon task.
const PIECE: usize = 1 << 20;
/// Pieces processed (and held in memory) per round before output is written.
const ROUND: usize = 64;
/// Bytes read at once: one piece per thread. Small enough that the lines are still in the
/// CPU cache when matched after the copy (64 MiB blocks ran 30% slower than a mapping, 2 MiB
/// ones as fast), large enough to keep every thread busy; the memory a scan holds.
fn block_len() -> usize {
    PIECE * rayon::current_num_threads().max(2)
}

/// Read into `buf[filled..]` until it is full or the input ends; returns the new fill and,
/// when the input ended, `Ok(())` at its end or the read error that ended it.
fn fill(
    reader: &mut (dyn Read + Send),
    buf: &mut [u8],
    mut filled: usize,
) -> (usize, Option<std::io::Result<()>>) {
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Some(Ok(()))),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(Err(e))),
        }
    }
    (filled, None)
}

/// Drop the first `n` bytes of the block (they were scanned or skipped), keeping the rest.
fn consume(buf: &mut [u8], filled: &mut usize, n: usize, offset: &mut u64, stats: &mut ScanStats) {
    buf.copy_within(n..*filled, 0);
    *filled -= n;
    *offset += n as u64;
    stats.bytes += n as u64;
}

/// What `scan`/`observe` do with each parsed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Match against the snapshot and write alerts.
    Alerts,
    /// Write the observations themselves (`trawl observe`), no matching.
    Observations,
}

/// Options of one scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Forced log format; `None` = auto-detect per file.
    pub format: Option<LogFormat>,
    /// Field map for the generic JSON-lines format.
    pub field_map: Option<FieldMap>,
    /// `--logformat`: the server's format string, compiled (used instead of `format`).
    pub logformat: Option<FormatPlan>,
    /// Unparseable lines are an error.
    pub strict: bool,
    /// Skip the prefilter pre-screen (`--no-prefilter`).
    pub no_prefilter: bool,
    /// `--record`: every observation's values also go to the retro index (the pre-screen
    /// is then off: every line is parsed).
    pub record: Option<std::sync::Arc<std::sync::Mutex<Recorder>>>,
}

/// Counters reported at the end of a scan.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanStats {
    /// Files read.
    pub files: u64,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Lines that yielded an observation.
    pub observations: u64,
    /// Blank, comment and header lines.
    pub skipped: u64,
    /// Lines longer than 1 MiB, of which only the first MiB was scanned.
    pub lines_truncated: u64,
    /// Unparseable lines by reason.
    pub parse_failures: BTreeMap<String, u64>,
    /// First unparseable lines (file:line: reason), at most 10.
    pub first_failures: Vec<String>,
    /// Alerts written.
    pub alerts: u64,
    /// Alerts by feed.
    pub alerts_by_feed: BTreeMap<String, u64>,
    /// Alerts by indicator type.
    pub alerts_by_itype: BTreeMap<String, u64>,
    /// Detected or forced format per file.
    pub formats: BTreeMap<String, String>,
    /// Why each file's format was chosen (detected from which lines, or forced).
    pub format_reasons: BTreeMap<String, String>,
    /// Files most of whose lines did not parse, with what to try instead.
    pub warnings: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl ScanStats {
    fn absorb(&mut self, other: PieceStats) {
        self.lines += other.lines;
        self.lines_truncated += other.lines_truncated;
        self.observations += other.observations;
        self.skipped += other.skipped;
        self.alerts += other.alerts;
        for (k, v) in other.failures {
            *self.parse_failures.entry(k.to_string()).or_default() += v;
        }
        for f in other.first_failures {
            if self.first_failures.len() < 10 {
                self.first_failures.push(f);
            }
        }
        for (k, v) in other.by_feed {
            *self.alerts_by_feed.entry(k).or_default() += v;
        }
        for (k, v) in other.by_itype {
            *self.alerts_by_itype.entry(k.to_string()).or_default() += v;
        }
        for e in other.record_errors {
            let w = format!("recording the retro index: {e}");
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    /// Total unparseable lines.
    pub fn failures(&self) -> u64 {
        self.parse_failures.values().sum()
    }

    /// The human summary for stderr.
    pub fn render(&self) -> String {
        let mb = self.bytes as f64 / 1e6;
        let rate = if self.seconds > 0.0 {
            mb / self.seconds
        } else {
            0.0
        };
        let mut s = format!(
            "scanned {} file(s), {} lines, {:.1} MB in {:.2} s ({:.0} MB/s, {:.0} lines/s): {} observations, {} skipped, {} unparseable, {} alerts\n",
            self.files,
            self.lines,
            mb,
            self.seconds,
            rate,
            self.lines as f64 / self.seconds.max(1e-9),
            self.observations,
            self.skipped,
            self.failures(),
            self.alerts
        );
        if self.lines_truncated > 0 {
            s.push_str(&format!(
                "  {} line(s) longer than {} bytes: only their first {} bytes were scanned\n",
                self.lines_truncated, MAX_LINE_BYTES, MAX_LINE_BYTES
            ));
        }
        for w in &self.warnings {
            s.push_str(&format!("  WARNING: {w}\n"));
        }
        for (file, fmt) in &self.formats {
            match self.format_reasons.get(file) {
                Some(why) => s.push_str(&format!("  format {fmt:<10} {file} ({why})\n")),
                None => s.push_str(&format!("  format {fmt:<10} {file}\n")),
            }
        }
        for (reason, n) in &self.parse_failures {
            s.push_str(&format!("  unparseable: {n:>8}  {reason}\n"));
        }
        for f in &self.first_failures {
            s.push_str(&format!("    e.g. {f}\n"));
        }
        for (feed, n) in &self.alerts_by_feed {
            s.push_str(&format!("  alerts from feed {feed:<24} {n}\n"));
        }
        for (t, n) in &self.alerts_by_itype {
            s.push_str(&format!("  alerts on {t:<10} {n}\n"));
        }
        s
    }
}

#[derive(Default)]
struct PieceStats {
    lines: u64,
    lines_truncated: u64,
    observations: u64,
    skipped: u64,
    alerts: u64,
    failures: BTreeMap<&'static str, u64>,
    first_failures: Vec<String>,
    by_feed: BTreeMap<String, u64>,
    by_itype: BTreeMap<&'static str, u64>,
    record_errors: Vec<String>,
}

/// Everything a piece worker needs, shared across threads.
pub(crate) struct LineJob<'a> {
    /// `log.file.path` of the lines.
    pub path: &'a str,
    /// The file's line parser.
    pub parser: &'a dyn LineParser,
    /// `--raw`: match the text of each line, not its parsed fields.
    pub raw: bool,
    /// Alerts or observations.
    pub mode: Mode,
    /// The matcher (None: observations only).
    pub correlator: Option<&'a Correlator<'a>>,
    /// observer.* of alerts.
    pub ctx: &'a AlertContext,
    /// `@timestamp` for lines without a time of their own.
    pub now_ns: i64,
    /// Keep alerts typed (the output folds repeats) instead of rendering them.
    pub typed: bool,
    /// Where observations are recorded (`--record`, the daemon's `[retro]`).
    pub record: Option<&'a std::sync::Mutex<Recorder>>,
    /// Lines that are records with offsets of their own (Kafka messages): `(byte where the
    /// record starts in the buffer, counting `base`, its offset)`, sorted by byte. `log.offset`
    /// is then the record's offset instead of the line's byte offset.
    pub records: Option<&'a [(u64, u64)]>,
}

impl LineJob<'_> {
    /// `log.offset` of the line starting at byte `at`: the byte itself, or the offset of the
    /// record holding it.
    fn log_offset(&self, at: u64) -> u64 {
        match self.records {
            None => at,
            Some(r) => match r.partition_point(|&(start, _)| start <= at).checked_sub(1) {
                Some(i) => r[i].1,
                None => at,
            },
        }
    }

    /// Where a line is, for a parse failure's message.
    fn place(&self, at: u64) -> String {
        match self.records {
            None => format!("{} at byte {at}", self.path),
            Some(_) => format!("{} at offset {}", self.path, self.log_offset(at)),
        }
    }
}

/// Scan one file (`-` = stdin), writing alerts or observations to `out` in input order.
/// When most of its lines do not parse, the summary gets a warning saying so and what
/// format to try.
pub fn scan_file(
    path: &Path,
    mode: Mode,
    correlator: Option<&Correlator<'_>>,
    ctx: &AlertContext,
    opts: &ScanOptions,
    out: &mut dyn AlertOutput,
    stats: &mut ScanStats,
) -> Result<(), ScanError> {
    let (observed, failed) = (stats.observations, stats.failures());
    let mut suggestion = None;
    let result = scan_one(
        path,
        mode,
        correlator,
        ctx,
        opts,
        out,
        stats,
        &mut suggestion,
    );
    let observed = stats.observations - observed;
    let failed = stats.failures() - failed;
    if failed > observed {
        let name = path.to_string_lossy();
        let format = stats
            .formats
            .get(name.as_ref())
            .cloned()
            .unwrap_or_default();
        let advice = match suggestion {
            Some(f) => format!("it looks like {f}: try --format {f}"),
            None => "if it is a custom format, give --logformat with the server's format string, or use --raw".to_string(),
        };
        stats.warnings.push(format!(
            "{failed} of {} lines of {name} did not parse as {format}; {advice}",
            failed + observed
        ));
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn scan_one(
    path: &Path,
    mode: Mode,
    correlator: Option<&Correlator<'_>>,
    ctx: &AlertContext,
    opts: &ScanOptions,
    out: &mut dyn AlertOutput,
    stats: &mut ScanStats,
    suggestion: &mut Option<LogFormat>,
) -> Result<(), ScanError> {
    let started = Instant::now();
    let typed = out.wants_typed();
    let name = path.to_string_lossy().into_owned();
    let now_ns = now_ns();
    let plain = name != "-" && is_plain_file(path)?;
    stats.files += 1;
    // Plain files are mapped up to the length they had when opened, with a guard that turns
    // the SIGBUS of a file shrinking under the map into zeros and a report; read into the
    // block buffer when no guarded map can be had.
    let (mut reader, expected): (Box<dyn Read + Send>, Option<u64>) = if plain {
        let file = std::fs::File::open(path).map_err(|source| ScanError::Open {
            path: name.clone(),
            source,
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            stats.formats.insert(name, "empty".into());
            return Ok(());
        }
        if let Ok(Some(map)) = ShrinkGuardedMap::map(&file, len) {
            let data = map.bytes();
            let chosen = make_parser(data, opts)?;
            chosen.record(&name, stats, suggestion);
            let (format, parser) = (chosen.format, chosen.parser);
            let job = LineJob {
                path: &name,
                parser: parser.as_ref(),
                raw: format == LogFormat::Raw,
                mode,
                correlator,
                ctx,
                now_ns,
                typed,
                record: opts.record.as_deref(),
                records: None,
            };
            let shrunk = || {
                let now = std::fs::metadata(path).map_or(0, |m| m.len());
                (map.faulted() || now < len).then_some(now)
            };
            let cut = run_rounds(&job, data, 0, out, stats, &shrunk, None)?;
            stats.bytes += cut.map_or(len, |(scanned, _)| scanned);
            stats.seconds += started.elapsed().as_secs_f64();
            if let Some((scanned, now)) = cut {
                return Err(ScanError::Shrank {
                    path: name,
                    len,
                    now,
                    scanned,
                });
            }
            return strict_check(&name, opts, stats);
        }
        (Box::new(file.take(len)), Some(len))
    } else {
        (
            Box::new(open_input(path).map_err(|source| ScanError::Input {
                path: name.clone(),
                source,
            })?),
            None,
        )
    };
    let cap = expected.map_or(block_len(), |len| block_len().min(len as usize + 1));
    let mut buf = vec![0u8; cap];
    // The next block is read into `spare` while this one is matched.
    let mut spare: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    let mut offset = 0u64;
    let mut parser: Option<(LogFormat, Box<dyn LineParser>)> = None;
    // The last directive line (W3C `#Fields:`) of the blocks already matched.
    let mut directive: Option<Vec<u8>> = None;
    let mut eof = false;
    let mut read_error = None;
    // Inside an over-long line whose first MAX_LINE_BYTES were scanned: drop up to its end.
    let mut skipping = false;
    while !eof || filled > 0 {
        if !eof {
            let (n, end) = fill(&mut *reader, &mut buf, filled);
            filled = n;
            eof = end.is_some();
            read_error = end.and_then(|e| e.err());
        }
        if skipping {
            let drop = memchr::memchr(b'\n', &buf[..filled]).map_or(filled, |i| {
                skipping = false;
                i + 1
            });
            consume(&mut buf, &mut filled, drop, &mut offset, stats);
            continue;
        }
        if filled == 0 {
            break;
        }
        if parser.is_none() {
            let chosen = make_parser(&buf[..filled], opts)?;
            chosen.record(&name, stats, suggestion);
            parser = Some((chosen.format, chosen.parser));
        }
        let Some((format, p)) = parser.as_ref() else {
            break;
        };
        let job = LineJob {
            path: &name,
            parser: p.as_ref(),
            raw: *format == LogFormat::Raw,
            mode,
            correlator,
            ctx,
            now_ns,
            typed,
            record: opts.record.as_deref(),
            records: None,
        };
        let cut = if eof {
            filled
        } else {
            match memchr::memrchr(b'\n', &buf[..filled]) {
                Some(i) => i + 1,
                None => {
                    // One line fills the whole block: scan its head, as the daemon does.
                    let head = &buf[..MAX_LINE_BYTES.min(filled)];
                    run_buffer(&job, head, offset, out, stats, directive.as_deref())?;
                    stats.lines_truncated += 1;
                    skipping = true;
                    let all = filled;
                    consume(&mut buf, &mut filled, all, &mut offset, stats);
                    continue;
                }
            }
        };
        if eof {
            run_buffer(&job, &buf[..cut], offset, out, stats, directive.as_deref())?;
            consume(&mut buf, &mut filled, cut, &mut offset, stats);
            continue;
        }
        // Carry the partial last line to the spare block and read on into it while this
        // block is matched, so reading costs no wall time (as a mapping did).
        spare.resize(cap, 0);
        let rest = filled - cut;
        spare[..rest].copy_from_slice(&buf[cut..filled]);
        let (matched, (n, end)) = std::thread::scope(|s| {
            let reading = s.spawn(|| fill(&mut *reader, &mut spare, rest));
            let matched = run_buffer(&job, &buf[..cut], offset, out, stats, directive.as_deref());
            let read = reading.join().unwrap_or_else(|_| {
                let e = std::io::Error::other("the reading thread failed");
                (rest, Some(Err(e)))
            });
            (matched, read)
        });
        offset += cut as u64;
        stats.bytes += cut as u64;
        matched?;
        if let Some(d) = last_directive(p.as_ref(), &buf[..cut]) {
            directive = Some(d.to_vec());
        }
        std::mem::swap(&mut buf, &mut spare);
        filled = n;
        eof = end.is_some();
        read_error = end.and_then(|e| e.err());
    }
    if let Some(error) = read_error {
        stats.seconds += started.elapsed().as_secs_f64();
        return Err(ScanError::Read {
            path: name,
            offset,
            error,
        });
    }
    if let Some(len) = expected.filter(|&len| offset < len) {
        stats.seconds += started.elapsed().as_secs_f64();
        let now = std::fs::metadata(path).map_or(0, |m| m.len());
        return Err(ScanError::Shrank {
            path: name,
            len,
            now,
            scanned: offset,
        });
    }
    stats.seconds += started.elapsed().as_secs_f64();
    strict_check(&name, opts, stats)
}

/// `--strict`: unparseable lines make the file an error.
fn strict_check(name: &str, opts: &ScanOptions, stats: &ScanStats) -> Result<(), ScanError> {
    if opts.strict && stats.failures() > 0 {
        return Err(ScanError::Strict {
            path: name.to_string(),
            count: stats.failures(),
            first: stats.first_failures.first().cloned().unwrap_or_default(),
        });
    }
    Ok(())
}

fn is_plain_file(path: &Path) -> Result<bool, ScanError> {
    let meta = std::fs::metadata(path).map_err(|source| ScanError::Stat {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_file() {
        return Ok(false);
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|source| ScanError::Head {
            path: path.display().to_string(),
            source,
        })?;
    let compressed =
        (n >= 2 && magic[..2] == [0x1f, 0x8b]) || (n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd]);
    Ok(!compressed)
}

/// A file's parser and how its format was chosen.
struct Chosen {
    format: LogFormat,
    parser: Box<dyn LineParser>,
    /// The summary's words for it (`squid logformat "..."`, the detection's reason).
    reason: String,
    /// The format to suggest if most lines fail this one.
    suggestion: Option<LogFormat>,
}

impl Chosen {
    fn record(&self, name: &str, stats: &mut ScanStats, suggestion: &mut Option<LogFormat>) {
        stats
            .formats
            .insert(name.to_string(), self.format.as_str().into());
        stats
            .format_reasons
            .insert(name.to_string(), self.reason.clone());
        *suggestion = self.suggestion;
    }
}

fn make_parser(head: &[u8], opts: &ScanOptions) -> Result<Chosen, ScanError> {
    let head = &head[..head.len().min(64 * 1024)];
    let detected = detect_format_explained(head);
    if let Some(plan) = &opts.logformat {
        let format = opts.format.unwrap_or(LogFormat::Combined);
        return Ok(Chosen {
            format,
            parser: Box::new(PlanParser::new(plan.clone())),
            reason: format!("{plan}"),
            suggestion: detected.map(|d| d.format),
        });
    }
    let (format, reason, suggestion) = match (opts.format, &detected) {
        (Some(f), d) => (
            f,
            "forced by --format".to_string(),
            d.as_ref().map(|d| d.format).filter(|&d| d != f),
        ),
        (None, Some(d)) => (d.format, format!("detected: {}", d.reason), d.runner_up),
        (None, None) => (
            LogFormat::Raw,
            "no line looked like a known format".to_string(),
            None,
        ),
    };
    let parser =
        parser_for(format, head, opts.field_map.as_ref()).map_err(|source| ScanError::Parser {
            format: format.as_str(),
            source,
        })?;
    Ok(Chosen {
        format,
        parser,
        reason,
        suggestion,
    })
}

/// Match (or observe) a buffer of whole lines starting at byte `base`, in parallel, returning
/// the output in input order and the counters (the daemon's batches use this).
pub(crate) fn match_lines(job: &LineJob<'_>, data: &[u8], base: u64) -> (AlertBatch, ScanStats) {
    let mut out = AlertBatch::new(job.typed);
    let mut stats = ScanStats::default();
    // Appending to a batch cannot fail.
    let _ = run_buffer(job, data, base, &mut out, &mut stats, None);
    (out, stats)
}

/// Split `data` into line-aligned pieces, process them in parallel a round at a time, and
/// write each round's output in order.
fn run_buffer(
    job: &LineJob<'_>,
    data: &[u8],
    base: u64,
    out: &mut dyn AlertOutput,
    stats: &mut ScanStats,
    directive: Option<&[u8]>,
) -> Result<(), ScanError> {
    run_rounds(job, data, base, out, stats, &|| None, directive).map(|_| ())
}

/// Where the lines opening with the parser's directive prefix start in `data`.
fn directive_starts(parser: &dyn LineParser, data: &[u8]) -> Vec<usize> {
    let Some(prefix) = parser.directive_prefix() else {
        return Vec::new();
    };
    let mut marks = Vec::new();
    if data.starts_with(prefix) {
        marks.push(0);
    }
    let needle = [b"\n", prefix].concat();
    marks.extend(memchr::memmem::find_iter(data, &needle).map(|i| i + 1));
    marks
}

/// The line starting at `at`.
fn line_at(data: &[u8], at: usize) -> &[u8] {
    let rest = &data[at..];
    &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())]
}

/// The last directive line in `data`, if any.
pub fn last_directive<'d>(parser: &dyn LineParser, data: &'d [u8]) -> Option<&'d [u8]> {
    directive_starts(parser, data)
        .last()
        .map(|&at| line_at(data, at))
}

/// [`run_buffer`] over a mapped file: after each round `shrunk` says whether the file is now
/// shorter than the map (its length then). The round's pieces that end within that length
/// are written, the rest dropped (they may have read zeros or vanished bytes), and the bytes
/// scanned before the first dropped piece are returned with the length.
fn run_rounds(
    job: &LineJob<'_>,
    data: &[u8],
    base: u64,
    out: &mut dyn AlertOutput,
    stats: &mut ScanStats,
    shrunk: &dyn Fn() -> Option<u64>,
    directive: Option<&[u8]>,
) -> Result<Option<(u64, u64)>, ScanError> {
    // Formats read by directives (W3C `#Fields:`): each piece starts with the parser of
    // the last directive before it.
    let marks = directive_starts(job.parser, data);
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + PIECE).min(data.len());
        if end < data.len() {
            end = match memchr::memchr(b'\n', &data[end..]) {
                Some(i) => end + i + 1,
                None => data.len(),
            };
        }
        pieces.push((start, end));
        start = end;
    }
    for round in pieces.chunks(ROUND) {
        let results: Vec<(AlertBatch, PieceStats)> = round
            .par_iter()
            .map(|&(s, e)| {
                let before = marks.partition_point(|&m| m < s);
                let start = match before.checked_sub(1) {
                    Some(i) => Some(line_at(data, marks[i])),
                    None => directive,
                };
                process_piece(job, &data[s..e], base + s as u64, start)
            })
            .collect();
        let limit = shrunk();
        for (&(s, e), (bytes, piece)) in round.iter().zip(results) {
            if let Some(now) = limit.filter(|&now| base + e as u64 > now) {
                return Ok(Some((base + s as u64, now)));
            }
            out.write_batch(bytes).map_err(ScanError::Write)?;
            stats.absorb(piece);
        }
        if let Some(now) = limit {
            let scanned = base + round.last().map_or(0, |&(_, e)| e as u64);
            return Ok(Some((scanned, now)));
        }
    }
    Ok(None)
}

fn process_piece(
    job: &LineJob<'_>,
    data: &[u8],
    base: u64,
    directive: Option<&[u8]>,
) -> (AlertBatch, PieceStats) {
    // The parser of the directive in force (W3C `#Fields:` changing mid-file).
    let directive_prefix = job.parser.directive_prefix();
    let mut switched: Option<Box<dyn LineParser>> =
        directive.and_then(|d| job.parser.after_directive(d));
    let mut out = AlertBatch::new(job.typed);
    let mut st = PieceStats::default();
    let mut scratch = Scratch::default();
    let mut hits: Vec<FieldHit> = Vec::new();
    // The cheap pre-screen: lines none of whose values can alert are counted and skipped
    // without building an observation (exact: see `LineParser::screen`).
    let probe = match (job.mode, job.correlator) {
        (Mode::Alerts, Some(c)) if !job.raw && job.record.is_none() => c.probe(),
        _ => None,
    };
    let mut recording: Option<Pending> = job.record.map(|r| {
        r.lock()
            .map_or_else(|p| p.into_inner().buffer(), |r| r.buffer())
    });
    let mut pos = 0usize;
    while pos < data.len() {
        let end = find_newline(&data[pos..]).map_or(data.len(), |i| pos + i);
        let mut line = &data[pos..end];
        let offset = base + pos as u64;
        pos = end + 1;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.len() > MAX_LINE_BYTES {
            line = &line[..MAX_LINE_BYTES];
            st.lines_truncated += 1;
        }
        st.lines += 1;
        if directive_prefix.is_some_and(|d| line.starts_with(d)) {
            if let Some(next) = job.parser.after_directive(line) {
                switched = Some(next);
            }
        }
        let parser: &dyn LineParser = switched.as_deref().unwrap_or(job.parser);
        if let Some(p) = probe {
            if parser.screen(line, p) == Screened::Clean {
                st.observations += 1;
                continue;
            }
        }
        match parser.parse(line) {
            Ok(None) => st.skipped += 1,
            Err(e) => {
                *st.failures.entry(e.reason).or_default() += 1;
                if st.first_failures.len() < 10 {
                    st.first_failures
                        .push(format!("{}: {}", job.place(offset), e));
                }
            }
            Ok(Some(mut obs)) => {
                st.observations += 1;
                if let Some(p) = recording.as_mut() {
                    p.observe(&obs, job.now_ns);
                }
                obs.origin = Origin::Log {
                    path: Cow::Borrowed(job.path),
                    offset: job.log_offset(offset),
                };
                match (job.mode, job.correlator) {
                    (Mode::Observations, _) | (_, None) => {
                        write_json_line(&mut out.lines, &serde_json::Value::Object(obs.to_ecs()));
                    }
                    (Mode::Alerts, Some(c)) => {
                        hits.clear();
                        if job.raw {
                            c.correlate_text(line, &mut scratch, &mut hits);
                        } else {
                            c.correlate(&obs, &mut scratch, &mut hits);
                        }
                        emit_alerts(job, &obs, &hits, Some(line), &mut out, &mut st);
                    }
                }
            }
        }
    }
    if let (Some(p), Some(r)) = (recording, job.record) {
        let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = r.absorb(p) {
            st.record_errors.push(e.to_string());
        }
    }
    (out, st)
}

/// The first `\n` in `hay`. Log lines are short, and for them an inline 16-byte compare
/// beats a library call's set-up; past 256 bytes `memchr` takes over.
#[inline]
fn find_newline(hay: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 16 <= hay.len().min(256) {
        let block: &[u8; 16] = hay[at..at + 16].try_into().ok()?;
        let hits = matcher::simd::eq_mask::<matcher::simd::Native>(block, b'\n');
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize);
        }
        at += 16;
    }
    memchr::memchr(b'\n', &hay[at..]).map(|i| at + i)
}

fn emit_alerts(
    job: &LineJob<'_>,
    obs: &Observation<'_>,
    hits: &[FieldHit],
    original: Option<&[u8]>,
    out: &mut AlertBatch,
    st: &mut PieceStats,
) {
    for hit in hits {
        out.push(build_alert(job.ctx, obs, hit, original, job.now_ns));
        st.alerts += 1;
        if let Some(feed) = hit.indicator.sources.first() {
            *st.by_feed.entry(feed.clone()).or_default() += 1;
        }
        *st.by_itype.entry(hit.indicator.itype.as_str()).or_default() += 1;
    }
}

/// Append one JSON value and a newline.
pub fn write_json_line(out: &mut Vec<u8>, v: &serde_json::Value) {
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    out.push(b'\n');
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The inline newline search finds what `memchr` finds: in the first block, past
        /// several, past the 256-byte hand-over, or nowhere.
        #[test]
        fn find_newline_agrees_with_memchr(
            len in 0usize..600,
            at in prop::option::of(0usize..600),
            noise in prop::collection::vec(prop::sample::select(vec![b'a', b'\r', 0x0b, 0x8a, 0xff]), 600),
        ) {
            let mut hay = noise[..len].to_vec();
            if let Some(i) = at.filter(|&i| i < len) {
                hay[i] = b'\n';
                if i + 40 < len {
                    hay[i + 40] = b'\n';
                }
            }
            prop_assert_eq!(find_newline(&hay), memchr::memchr(b'\n', &hay));
        }
    }
}
