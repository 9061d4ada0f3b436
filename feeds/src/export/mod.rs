//! Exporters (ARCHITECTURE.md §2.1, §7): the same indicator sets as IDS rules (Snort 2.9/3, Suricata),
//! firewall input (`iptables-restore`, `ipset restore`, `nft -f`), Zeek intel, a BIND RPZ zone
//! and CSV / JSON lines / JSON / aligned table / self-contained HTML / a STIX 2.1 bundle / a
//! MISP event.
//!
//! Every export goes through [`export`]: indicators are filtered ([`Filter`]), every value is
//! re-validated for its itype (a value that fails is counted in
//! [`ExportStats::skipped_invalid`] and never written), records are sorted by
//! `(itype, value)`, and the writer for the format runs. Output is deterministic: the same
//! indicators and options give the same bytes; the only times written are those in
//! [`ExportOptions`] and in the indicators.

mod cidr;
mod csv;
#[cfg(test)]
mod hostile_tests;
mod html;
/// HTML-escape text for element content and quoted attributes (the export's own escaper).
pub use html::esc as html_escape;
mod ipset;
mod iptables;
mod json;
mod misp;
mod nftables;
mod rpz;
mod rules;
mod stix;
/// The deterministic STIX ids of the STIX export (uuid5 in the STIX 2.1 namespace).
pub use stix::uuid5_id;
mod table;
mod validate;
mod zeek;

use matcher::normalize::prefix_range;
use matcher::{Indicator, IndicatorType, Severity, Tlp};
use serde::Serialize;
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::str::FromStr;

use crate::breadth::{self, MinPrefix};
use validate::Checked;

/// An output format (the `--format` names of `trawl export`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportFormat {
    /// Snort 2.9 rules (Snort 3 with [`ExportOptions::snort3`]).
    Snort,
    /// Suricata rules (plus dataset / iprep files with [`ExportOptions::dataset_dir`]).
    Suricata,
    /// `iptables-restore` input for IPv4.
    Iptables,
    /// `ip6tables-restore` input for IPv6.
    Ip6tables,
    /// `ipset restore` input (`hash:net`, v4 and v6 sets, atomic swap).
    Ipset,
    /// An `nft -f` file with interval sets and rules.
    Nftables,
    /// Zeek intel framework TSV.
    Zeek,
    /// BIND Response Policy Zone.
    Rpz,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// An aligned text table for terminals.
    Table,
    /// One self-contained HTML page.
    Html,
    /// A STIX 2.1 bundle of indicators (ids kept, else stable uuid5s).
    Stix,
    /// A MISP event (a MISP feed's event file), attribute uuids kept, else stable uuid5s.
    Misp,
}

impl ExportFormat {
    /// Every format, in a stable order.
    pub const ALL: [ExportFormat; 15] = [
        ExportFormat::Snort,
        ExportFormat::Suricata,
        ExportFormat::Iptables,
        ExportFormat::Ip6tables,
        ExportFormat::Ipset,
        ExportFormat::Nftables,
        ExportFormat::Zeek,
        ExportFormat::Rpz,
        ExportFormat::Csv,
        ExportFormat::Jsonl,
        ExportFormat::Json,
        ExportFormat::Table,
        ExportFormat::Html,
        ExportFormat::Stix,
        ExportFormat::Misp,
    ];

    /// The CLI name (`snort`, `ip6tables`, `nftables`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Snort => "snort",
            ExportFormat::Suricata => "suricata",
            ExportFormat::Iptables => "iptables",
            ExportFormat::Ip6tables => "ip6tables",
            ExportFormat::Ipset => "ipset",
            ExportFormat::Nftables => "nftables",
            ExportFormat::Zeek => "zeek",
            ExportFormat::Rpz => "rpz",
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Json => "json",
            ExportFormat::Table => "table",
            ExportFormat::Html => "html",
            ExportFormat::Stix => "stix",
            ExportFormat::Misp => "misp",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let f = match lower.as_str() {
            "nft" => ExportFormat::Nftables,
            "bind" | "rpz" => ExportFormat::Rpz,
            "zeek" | "bro" => ExportFormat::Zeek,
            "ndjson" | "jsonl" => ExportFormat::Jsonl,
            "stix2" | "stix21" => ExportFormat::Stix,
            other => ExportFormat::ALL
                .into_iter()
                .find(|f| f.as_str() == other)
                .ok_or_else(|| ExportError::UnknownFormat(s.to_string()))?,
        };
        Ok(f)
    }
}

/// Which indicators an export includes. The default accepts every exportable indicator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these types (empty: all).
    pub types: Vec<IndicatorType>,
    /// Minimum confidence (0-100).
    pub min_confidence: u8,
    /// Minimum severity.
    pub min_severity: Option<Severity>,
    /// At least one of these tags (empty: any).
    pub tags: Vec<String>,
    /// Most restrictive TLP allowed (e.g. `green` drops amber and red).
    pub max_tlp: Option<Tlp>,
    /// Listed by at least one of these feeds (empty: any).
    pub feeds: Vec<String>,
}

impl Filter {
    /// True when `ind` passes every criterion. Allowlist entries and allowlisted indicators
    /// are never accepted.
    pub fn accepts(&self, ind: &Indicator) -> bool {
        if ind.allowlist || ind.allowlisted_by.is_some() {
            return false;
        }
        if !self.types.is_empty() && !self.types.contains(&ind.itype) {
            return false;
        }
        if ind.confidence < self.min_confidence {
            return false;
        }
        if self.min_severity.is_some_and(|s| ind.severity < s) {
            return false;
        }
        if self.max_tlp.is_some_and(|t| ind.tlp > t) {
            return false;
        }
        if !self.tags.is_empty()
            && !ind
                .tags
                .iter()
                .any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t)))
        {
            return false;
        }
        if !self.feeds.is_empty() && !ind.sources.iter().any(|s| self.feeds.contains(s)) {
            return false;
        }
        true
    }
}

/// What firewall exports do with a matching packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallAction {
    /// Silently drop.
    #[default]
    Drop,
    /// Reject (ICMP port unreachable / TCP reset).
    Reject,
}

/// Knobs of the exporters. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// First sid of the range rule sids are hashed into (default 9 000 000).
    pub sid_base: u32,
    /// Size of the sid range (default 10 000 000); `sid_base + sid_range` must fit in u32.
    pub sid_range: u32,
    /// Write Snort 3 syntax instead of Snort 2.9.
    pub snort3: bool,
    /// Most addresses in one IDS IP rule before the list is split (default 200).
    pub ip_list_max: usize,
    /// `threshold ... track by_src ... seconds N` on IDS rules (0: none; default 60).
    pub threshold_seconds: u32,
    /// Firewall action (DROP or REJECT).
    pub action: FirewallAction,
    /// LOG (iptables) / `log` (nftables) before the action.
    pub log_first: bool,
    /// Log prefix for firewall LOG rules (`[A-Za-z0-9 _:-]`, up to 28 bytes).
    pub log_prefix: String,
    /// Our own iptables chain (default `TRAWL`).
    pub chain: String,
    /// iptables: the header's load line also hooks our chain into INPUT, FORWARD and OUTPUT,
    /// each jump added only when absent (default true).
    pub jumps: bool,
    /// ipset set name and nftables table name (default `trawl`).
    pub set_name: String,
    /// Suricata: write `dataset:isset` rules and dataset + iprep files into this directory.
    pub dataset_dir: Option<PathBuf>,
    /// The snapshot version (RPZ serial, headers).
    pub snapshot_version: u64,
    /// Creation time of the snapshot, seconds since the epoch (headers only).
    pub created: i64,
    /// Sensor name (headers).
    pub sensor_name: String,
    /// RPZ zone origin (default `rpz.trawl`).
    pub rpz_zone: String,
    /// RPZ TTL in seconds (default 300).
    pub rpz_ttl: u32,
    /// Zeek: `meta.do_notice` value (`T`/`F`) (default true).
    pub zeek_do_notice: bool,
    /// Blocking formats (iptables, ip6tables, ipset, nftables, RPZ) refuse networks wider
    /// than this and domains that are public suffixes (default `/8` and `/16`).
    pub min_prefix: MinPrefix,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            sid_base: 9_000_000,
            sid_range: 10_000_000,
            snort3: false,
            ip_list_max: 200,
            threshold_seconds: 60,
            action: FirewallAction::Drop,
            log_first: true,
            log_prefix: "TRAWL ".to_string(),
            chain: "TRAWL".to_string(),
            jumps: true,
            set_name: "trawl".to_string(),
            dataset_dir: None,
            snapshot_version: 0,
            created: 0,
            sensor_name: "trawl".to_string(),
            rpz_zone: "rpz.trawl".to_string(),
            rpz_ttl: 300,
            zeek_do_notice: true,
            min_prefix: MinPrefix::DEFAULT,
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportStats {
    /// The format written.
    pub format: String,
    /// Indicators read from the iterator (allowlist entries included).
    pub read: u64,
    /// Indicators written (each counted once even when it yields several rules).
    pub written: u64,
    /// Rejected by the [`Filter`].
    pub skipped_by_filter: u64,
    /// Allowlisted indicators (never exported).
    pub skipped_allowlisted: u64,
    /// Values that failed the strict re-check for their itype.
    pub skipped_invalid: u64,
    /// Valid indicators of a type the format cannot express (e.g. hashes in iptables).
    pub skipped_unsupported: u64,
    /// URLs the rule formats (Snort, Suricata, Zeek) cannot say safely (a scheme other than
    /// http(s), quotes, angle brackets, ...): written only by the tabular formats.
    pub skipped_unexpressible: u64,
    /// Networks and domains wider than the breadth limits, refused by the blocking formats
    /// (a snapshot built by an older trawl, or crafted, may hold them).
    pub skipped_too_broad: u64,
    /// Allowlist entries seen (their IP ranges are cut out of firewall exports).
    pub allowlist_entries: u64,
    /// Records written: rules (IDS), set elements / rules (firewall), zone records, lines.
    pub rules: u64,
    /// Extra files written (Suricata dataset and iprep files).
    pub files: Vec<PathBuf>,
}

impl ExportStats {
    /// Every indicator read, by what became of it: written, or skipped for one reason, or an
    /// allowlist entry. Equals [`ExportStats::read`] when nothing went uncounted.
    pub fn accounted(&self) -> u64 {
        self.written
            + self.skipped_by_filter
            + self.skipped_allowlisted
            + self.skipped_invalid
            + self.skipped_unsupported
            + self.skipped_unexpressible
            + self.skipped_too_broad
            + self.allowlist_entries
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the output failed.
    #[error("writing export: {0}")]
    Io(#[from] std::io::Error),
    /// Writing an extra file (dataset, iprep) failed.
    #[error("writing {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An option has a value the format cannot carry safely.
    #[error("invalid export option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// More rules than sids in the configured range.
    #[error("sid range of {range} from {base} is too small for {needed} rules")]
    SidSpace {
        /// `sid_base`.
        base: u32,
        /// `sid_range`.
        range: u32,
        /// Rules needing a sid.
        needed: usize,
    },
    /// `--format` named no format.
    #[error("unknown export format {0:?}; expected one of: snort suricata iptables ip6tables ipset nftables zeek rpz csv jsonl json table html stix misp")]
    UnknownFormat(String),
}

/// A filtered, re-validated indicator.
pub(crate) struct Item {
    pub ind: Indicator,
    pub checked: Checked,
}

/// The filtered, validated and sorted input of every writer.
pub(crate) struct Prepared {
    /// Exportable indicators sorted by `(itype, value)`.
    pub items: Vec<Item>,
    /// Valid IP allowlist entries.
    pub allow: Vec<Item>,
}

/// Export `indicators` that pass `filter` as `format` into `out`.
///
/// Allowlist entries (`allowlist == true`) in the same iterator are never written; firewall
/// formats subtract their IP ranges from enclosing blocklisted CIDRs. Deterministic: the
/// output depends only on the set of indicators and on `opts`, not on iteration order.
pub fn export(
    format: ExportFormat,
    indicators: &mut dyn Iterator<Item = Indicator>,
    filter: &Filter,
    opts: &ExportOptions,
    out: &mut dyn Write,
) -> Result<ExportStats, ExportError> {
    check_options(format, opts)?;
    let mut stats = ExportStats {
        format: format.as_str().to_string(),
        ..ExportStats::default()
    };
    let mut prepared = prepare(indicators, filter, &mut stats);
    withhold(format, &mut prepared, opts, &mut stats);
    let mut w = BufWriter::with_capacity(1 << 20, out);
    match format {
        ExportFormat::Snort | ExportFormat::Suricata => {
            rules::write(format, &prepared, opts, &mut w, &mut stats)?
        }
        ExportFormat::Iptables => iptables::write(false, &prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Ip6tables => iptables::write(true, &prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Ipset => ipset::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Nftables => nftables::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Zeek => zeek::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Rpz => rpz::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Csv => csv::write(&prepared, &mut w, &mut stats)?,
        ExportFormat::Jsonl => json::write(false, &prepared, &mut w, &mut stats)?,
        ExportFormat::Json => json::write(true, &prepared, &mut w, &mut stats)?,
        ExportFormat::Table => table::write(&prepared, &mut w, &mut stats)?,
        ExportFormat::Html => html::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Stix => stix::write(&prepared, opts, &mut w, &mut stats)?,
        ExportFormat::Misp => misp::write(&prepared, opts, &mut w, &mut stats)?,
    }
    w.flush()?;
    Ok(stats)
}

/// Export `indicators` that pass `filter` as a MISP feed directory at `dir` (which must not
/// exist): the event of [`ExportFormat::Misp`], `manifest.json` and `hashes.csv`, as PyMISP's
/// feed generator writes them. Crash-safe: written into a temporary directory beside `dir`
/// and renamed, so `dir` is either absent or whole.
pub fn export_misp_feed(
    indicators: &mut dyn Iterator<Item = Indicator>,
    filter: &Filter,
    opts: &ExportOptions,
    dir: &std::path::Path,
) -> Result<ExportStats, ExportError> {
    if dir.exists() {
        return Err(ExportError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists: a MISP feed is written to a new directory (remove it, or name another)",
                dir.display()
            ),
        )));
    }
    let format = ExportFormat::Misp;
    check_options(format, opts)?;
    let mut stats = ExportStats {
        format: "misp-feed".to_string(),
        ..ExportStats::default()
    };
    let mut prepared = prepare(indicators, filter, &mut stats);
    withhold(format, &mut prepared, opts, &mut stats);
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".misp-feed-")
        .tempdir_in(parent)?;
    misp::write_feed(&prepared, opts, tmp.path(), &mut stats)?;
    // A feed is served: readable like the files in it, not the temporary directory's 0700.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(tmp.path(), dir)?;
    // Renamed away: nothing left for the guard to remove.
    let _ = tmp.keep();
    Ok(stats)
}

/// Take out of `p` what `format` must not write, counted: URLs only text can carry (rule
/// formats) and entries wider than the breadth limits (blocking formats).
fn withhold(format: ExportFormat, p: &mut Prepared, opts: &ExportOptions, stats: &mut ExportStats) {
    use rayon::prelude::*;
    use ExportFormat as F;
    let says_urls = matches!(format, F::Snort | F::Suricata | F::Zeek);
    // The types each blocking format writes.
    let blocks = |t: IndicatorType| match format {
        F::Iptables => t == IndicatorType::Ipv4,
        F::Ip6tables => t == IndicatorType::Ipv6,
        F::Ipset | F::Nftables => t.is_ip(),
        F::Rpz => t == IndicatorType::Fqdn,
        _ => false,
    };
    let blocking = matches!(
        format,
        F::Iptables | F::Ip6tables | F::Ipset | F::Nftables | F::Rpz
    );
    if !says_urls && !blocking {
        return;
    }
    // 0: keep, 1: unexpressible, 2: too broad.
    let verdicts: Vec<u8> = p
        .items
        .par_iter()
        .with_min_len(4096)
        .map(|it| {
            if says_urls && it.checked == Checked::TextUrl {
                1
            } else if blocks(it.ind.itype)
                && breadth::too_broad(it.ind.itype, &it.ind.value, opts.min_prefix).is_some()
            {
                2
            } else {
                0
            }
        })
        .collect();
    if verdicts.iter().all(|&v| v == 0) {
        return;
    }
    let mut v = verdicts.into_iter();
    p.items.retain(|_| match v.next() {
        Some(1) => {
            stats.skipped_unexpressible += 1;
            false
        }
        Some(2) => {
            stats.skipped_too_broad += 1;
            false
        }
        _ => true,
    });
}

/// Indicators sent from the iterating thread to the validating one at a time.
const PREPARE_BATCH: usize = 8192;

/// What [`classify`] decided for one indicator.
enum Class {
    Item(Checked),
    Allow(Checked),
    AllowEntry,
    Allowlisted,
    Filtered,
    Invalid,
}

/// Filter and re-validate `ind` in place (its value becomes the canonical spelling).
fn classify(ind: &mut Indicator, filter: &Filter) -> Class {
    if ind.allowlist {
        if ind.itype.is_ip() {
            if let Some((v, checked)) = validate::check(ind.itype, &ind.value) {
                ind.value = v;
                return Class::Allow(checked);
            }
        }
        return Class::AllowEntry;
    }
    if ind.allowlisted_by.is_some() {
        return Class::Allowlisted;
    }
    if !filter.accepts(ind) {
        return Class::Filtered;
    }
    match validate::check(ind.itype, &ind.value) {
        Some((v, checked)) => {
            ind.value = v;
            Class::Item(checked)
        }
        None => Class::Invalid,
    }
}

fn prepare(
    indicators: &mut dyn Iterator<Item = Indicator>,
    filter: &Filter,
    stats: &mut ExportStats,
) -> Prepared {
    use rayon::prelude::*;
    // The iterator (not `Send`) is drained on this thread in batches while another thread
    // filters and re-validates the previous batches (in parallel within a batch); batches
    // are appended in order, so `allow` keeps the input order.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Indicator>>(4);
    let (mut items, allow, counts) = std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut items = Vec::new();
            let mut allow = Vec::new();
            let mut counts = ExportStats::default();
            for mut batch in rx {
                let classes: Vec<Class> = batch
                    .par_iter_mut()
                    .map(|ind| classify(ind, filter))
                    .collect();
                for (ind, c) in batch.into_iter().zip(classes) {
                    counts.read += 1;
                    match c {
                        Class::Item(checked) => items.push(Item { ind, checked }),
                        Class::Allow(checked) => {
                            counts.allowlist_entries += 1;
                            allow.push(Item { ind, checked });
                        }
                        Class::AllowEntry => counts.allowlist_entries += 1,
                        Class::Allowlisted => counts.skipped_allowlisted += 1,
                        Class::Filtered => counts.skipped_by_filter += 1,
                        Class::Invalid => counts.skipped_invalid += 1,
                    }
                }
            }
            (items, allow, counts)
        });
        let mut batch = Vec::with_capacity(PREPARE_BATCH);
        for ind in indicators {
            batch.push(ind);
            if batch.len() == PREPARE_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(PREPARE_BATCH));
                if tx.send(full).is_err() {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    stats.read += counts.read;
    stats.allowlist_entries += counts.allowlist_entries;
    stats.skipped_allowlisted += counts.skipped_allowlisted;
    stats.skipped_by_filter += counts.skipped_by_filter;
    stats.skipped_invalid += counts.skipped_invalid;
    // Sort a permutation (items are a few hundred bytes; moving them n log n times costs
    // more than the whole export). Keys carry the value's first 16 bytes inline so most
    // comparisons never touch the heap; ties break on every field, so input order never
    // matters.
    let prefix = |v: &str| {
        let mut b = [0u8; 16];
        for (d, s) in b.iter_mut().zip(v.bytes()) {
            *d = s;
        }
        u128::from_be_bytes(b)
    };
    let mut order: Vec<(IndicatorType, u128, usize)> = items
        .par_iter()
        .enumerate()
        .map(|(i, it)| (it.ind.itype, prefix(&it.ind.value), i))
        .collect();
    order.par_sort_unstable_by(|x, y| {
        (x.0, x.1).cmp(&(y.0, y.1)).then_with(|| {
            let (a, b) = (&items[x.2].ind, &items[y.2].ind);
            (
                &a.value,
                &a.sources,
                a.confidence,
                a.severity,
                a.tlp,
                &a.tags,
            )
                .cmp(&(
                    &b.value,
                    &b.sources,
                    b.confidence,
                    b.severity,
                    b.tlp,
                    &b.tags,
                ))
                .then_with(|| {
                    (
                        &a.provider,
                        &a.description,
                        &a.reference,
                        a.first_seen,
                        a.last_seen,
                    )
                        .cmp(&(
                            &b.provider,
                            &b.description,
                            &b.reference,
                            b.first_seen,
                            b.last_seen,
                        ))
                })
        })
    });
    let n = items.len();
    // Already in order (a snapshot iterates sorted): merge in place, no moves unless there
    // are duplicates.
    if order.iter().enumerate().all(|(i, k)| k.2 == i) {
        items.dedup_by(|later, kept| {
            let same = later.ind.itype == kept.ind.itype && later.ind.value == kept.ind.value;
            if same {
                kept.ind.merge(&later.ind);
            }
            same
        });
        return Prepared { items, allow };
    }
    let order = order.into_iter().map(|k| k.2);
    let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let sorted = order.filter_map(|i| slots.get_mut(i).and_then(Option::take));
    let mut merged: Vec<Item> = Vec::with_capacity(n);
    for it in sorted {
        push_merged(&mut merged, it);
    }
    Prepared {
        items: merged,
        allow,
    }
}

/// Append `it`, merging it into the last item when both have the same `(itype, value)`
/// (e.g. two spellings of one CIDR; `merged` is sorted).
fn push_merged(merged: &mut Vec<Item>, it: Item) {
    match merged.last_mut() {
        Some(last) if last.ind.itype == it.ind.itype && last.ind.value == it.ind.value => {
            last.ind.merge(&it.ind)
        }
        _ => merged.push(it),
    }
}

/// Per-chunk counters of a parallel writer, added to [`ExportStats`] in order.
#[derive(Default)]
pub(crate) struct Counts {
    /// Indicators written.
    pub written: u64,
    /// Records written.
    pub rules: u64,
    /// Valid but not expressible in the format.
    pub unsupported: u64,
    /// Failed a format-specific check.
    pub invalid: u64,
}

/// Items formatted per parallel task.
const CHUNK: usize = 1024;

/// Format `items` in parallel chunks (each into its own buffer with `f(index, item, buf,
/// counts)`) and write the buffers in item order, so the output is the same as a
/// sequential loop's. A group of chunks is formatted at a time to bound memory.
pub(crate) fn par_write<T: Sync>(
    items: &[T],
    out: &mut dyn Write,
    stats: &mut ExportStats,
    f: impl Fn(usize, &T, &mut Vec<u8>, &mut Counts) -> Result<(), ExportError> + Sync,
) -> Result<(), ExportError> {
    par_write_with(
        items,
        out,
        stats,
        || (),
        |i, it, buf, n, _| f(i, it, buf, n),
    )
}

/// [`par_write`] with per-chunk state made by `init` (reusable scratch buffers).
///
/// Outside a rayon pool the next group is formatted by the pool while this thread writes
/// the previous one.
pub(crate) fn par_write_with<T: Sync, S>(
    items: &[T],
    out: &mut dyn Write,
    stats: &mut ExportStats,
    init: impl Fn() -> S + Sync,
    f: impl Fn(usize, &T, &mut Vec<u8>, &mut Counts, &mut S) -> Result<(), ExportError> + Sync,
) -> Result<(), ExportError> {
    use rayon::prelude::*;
    type Done = Vec<Result<(Vec<u8>, Counts), ExportError>>;
    // Two groups are in flight (one formatting, one writing): a few MB each.
    let group = CHUNK * 4 * rayon::current_num_threads().clamp(1, 16);
    let format = |g: usize, items: &[T]| -> Done {
        let base = g * group;
        items
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut buf = Vec::with_capacity(chunk.len() * 128);
                let mut n = Counts::default();
                let mut state = init();
                for (i, it) in chunk.iter().enumerate() {
                    f(base + c * CHUNK + i, it, &mut buf, &mut n, &mut state)?;
                }
                Ok((buf, n))
            })
            .collect()
    };
    let mut emit = |done: Done| -> Result<(), ExportError> {
        for r in done {
            let (buf, n) = r?;
            out.write_all(&buf)?;
            stats.written += n.written;
            stats.rules += n.rules;
            stats.skipped_unsupported += n.unsupported;
            stats.skipped_invalid += n.invalid;
        }
        Ok(())
    };
    if rayon::current_thread_index().is_some() {
        // On a pool thread: waiting on a channel could starve the pool; no overlap.
        for (g, items) in items.chunks(group).enumerate() {
            emit(format(g, items))?;
        }
        return Ok(());
    }
    rayon::in_place_scope(|s| {
        let format = &format;
        let mut pending: Option<std::sync::mpsc::Receiver<Done>> = None;
        for (g, items) in items.chunks(group).enumerate() {
            let (tx, rx) = std::sync::mpsc::channel();
            s.spawn(move |_| {
                let _ = tx.send(format(g, items));
            });
            if let Some(prev) = pending.replace(rx) {
                emit(prev.recv().map_err(|_| lost())?)?;
            }
        }
        if let Some(prev) = pending {
            emit(prev.recv().map_err(|_| lost())?)?;
        }
        Ok(())
    })
}

/// A formatting task ended without a result (it panicked).
fn lost() -> ExportError {
    ExportError::Io(std::io::Error::other("export formatting task failed"))
}

fn check_options(format: ExportFormat, opts: &ExportOptions) -> Result<(), ExportError> {
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
    };
    if !name_ok(&opts.chain, 20) {
        return Err(ExportError::InvalidOption {
            option: "chain",
            reason: "must be 1-20 of [A-Za-z0-9_-], starting with a letter".into(),
        });
    }
    if !name_ok(&opts.set_name, 24) {
        return Err(ExportError::InvalidOption {
            option: "set_name",
            reason: "must be 1-24 of [A-Za-z0-9_-], starting with a letter".into(),
        });
    }
    if opts.log_prefix.len() > 28
        || !opts
            .log_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _:-".contains(&b))
    {
        return Err(ExportError::InvalidOption {
            option: "log_prefix",
            reason: "must be up to 28 of [A-Za-z0-9 _:-]".into(),
        });
    }
    if opts.sid_base == 0
        || opts.sid_range == 0
        || opts.sid_base.checked_add(opts.sid_range).is_none()
    {
        return Err(ExportError::InvalidOption {
            option: "sid_base",
            reason:
                "sid_base and sid_range must be non-zero and sid_base + sid_range fit in 32 bits"
                    .into(),
        });
    }
    if opts.ip_list_max == 0 {
        return Err(ExportError::InvalidOption {
            option: "ip_list_max",
            reason: "must be at least 1".into(),
        });
    }
    if format == ExportFormat::Rpz && !rpz::zone_name_ok(&opts.rpz_zone) {
        return Err(ExportError::InvalidOption {
            option: "rpz_zone",
            reason: "must be a domain name".into(),
        });
    }
    if let Some(dir) = &opts.dataset_dir {
        let ok = dir.to_str().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
        });
        if !ok {
            return Err(ExportError::InvalidOption {
                option: "dataset_dir",
                reason: "path must be of [A-Za-z0-9/._+-] so rules can reference it".into(),
            });
        }
    }
    Ok(())
}

// ---- helpers shared by the writers ----

/// RFC 3339 UTC for a Unix time, `None` when out of range.
pub(crate) fn rfc3339(t: i64) -> Option<String> {
    Stamp::new(t).map(|s| s.as_str().to_string())
}

/// A Unix time as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`, formatted without allocating
/// (the same text as the `time` crate's `Rfc3339` for whole seconds).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp([u8; 20]);

impl Stamp {
    /// `None` outside years 0000-9999 (which RFC 3339 cannot write).
    pub(crate) fn new(t: i64) -> Option<Stamp> {
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (year, month, day) = matcher::calendar::civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, v: i64, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                if let Some(d) = b.get_mut(at + i) {
                    *d = b'0' + (v % 10) as u8;
                }
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, secs / 3600, 2);
        put(14, secs / 60 % 60, 2);
        put(17, secs % 60, 2);
        Some(Stamp(b))
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A value made non-clickable for messages: `evil[.]com`, `hxxp://evil[.]com/x`, `1.2.3[.]4`.
pub(crate) fn defang(itype: IndicatorType, value: &str) -> String {
    match itype {
        IndicatorType::Fqdn | IndicatorType::Email => value.replace('.', "[.]"),
        IndicatorType::Ipv4 => match value.rfind('.') {
            Some(i) => format!("{}[.]{}", &value[..i], &value[i + 1..]),
            None => value.to_string(),
        },
        IndicatorType::Url => {
            let (scheme, rest) = if let Some(r) = value.strip_prefix("https://") {
                ("hxxps://", r)
            } else if let Some(r) = value.strip_prefix("http://") {
                ("hxxp://", r)
            } else {
                ("", value)
            };
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            format!(
                "{scheme}{}{}",
                rest[..end].replace('.', "[.]"),
                &rest[end..]
            )
        }
        _ => value.to_string(),
    }
}

/// Keep bytes of `allowed` (plus ASCII alphanumerics), replace others with `_`, cap length.
pub(crate) fn restrict(s: &str, allowed: &[u8], max: usize) -> String {
    let mut out = Vec::with_capacity(s.len().min(max));
    push_restricted(&mut out, s.as_bytes(), allowed, max);
    // Only ASCII is pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Append [`restrict`]`(s, allowed, max)` to `out`.
pub(crate) fn push_restricted(out: &mut Vec<u8>, s: &[u8], allowed: &[u8], max: usize) {
    out.extend(s.iter().take(max).map(|&b| {
        if b.is_ascii_alphanumeric() || allowed.contains(&b) {
            b
        } else {
            b'_'
        }
    }));
}

/// Free text with every control character (and DEL) replaced by a space.
pub(crate) fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The plain fields every tabular format (csv, jsonl, json, table, html) shows for a row,
/// with the same keys as `trawl query --format json`.
#[derive(Serialize)]
pub(crate) struct Row<'a> {
    pub value: &'a str,
    pub itype: IndicatorType,
    pub confidence: u8,
    pub severity: Severity,
    pub tags: &'a [String],
    pub sources: &'a [String],
    pub tlp: Tlp,
    pub provider: Option<&'a str>,
    pub description: Option<&'a str>,
    pub reference: Option<&'a str>,
    /// JSON formats only, and only when there is one (not a column of the tabular ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<&'a str>,
    pub first_seen: Option<Stamp>,
    pub last_seen: Option<Stamp>,
    pub expires: Option<Stamp>,
    pub derived: bool,
}

impl<'a> Row<'a> {
    pub(crate) fn of(ind: &'a Indicator) -> Row<'a> {
        Row {
            value: &ind.value,
            itype: ind.itype,
            confidence: ind.confidence,
            severity: ind.severity,
            tags: &ind.tags,
            sources: &ind.sources,
            tlp: ind.tlp,
            provider: ind.provider.as_deref(),
            description: ind.description.as_deref(),
            reference: ind.reference.as_deref(),
            external_id: ind.external_id.as_deref(),
            first_seen: ind.first_seen.and_then(Stamp::new),
            last_seen: ind.last_seen.and_then(Stamp::new),
            expires: ind.expires.and_then(Stamp::new),
            derived: ind.derived,
        }
    }
}

/// Column names of the tabular formats, in order.
pub(crate) const COLUMNS: [&str; 14] = [
    "value",
    "itype",
    "confidence",
    "severity",
    "tags",
    "sources",
    "tlp",
    "provider",
    "description",
    "reference",
    "first_seen",
    "last_seen",
    "expires",
    "derived",
];

impl Row<'_> {
    /// Call `f(column, text)` for every column in [`COLUMNS`] order (tags and sources
    /// joined by `|` in `scratch`), without allocating per row.
    pub(crate) fn each_text(&self, scratch: &mut String, mut f: impl FnMut(usize, &str)) {
        let mut num = itoa::Buffer::new();
        f(0, self.value);
        f(1, self.itype.as_str());
        f(2, num.format(self.confidence));
        f(3, self.severity.as_str());
        for (col, list) in [(4, self.tags), (5, self.sources)] {
            scratch.clear();
            for (i, t) in list.iter().enumerate() {
                if i > 0 {
                    scratch.push('|');
                }
                scratch.push_str(t);
            }
            f(col, scratch);
        }
        f(6, self.tlp.as_str());
        f(7, self.provider.unwrap_or(""));
        f(8, self.description.unwrap_or(""));
        f(9, self.reference.unwrap_or(""));
        for (col, t) in [
            (10, self.first_seen),
            (11, self.last_seen),
            (12, self.expires),
        ] {
            f(col, t.as_ref().map_or("", |s| s.as_str()));
        }
        f(13, if self.derived { "true" } else { "false" });
    }
}

/// The IP networks of `items` (of one family) and of the allowlist, aggregated: merged and
/// with allowlisted ranges cut out. `v6` picks the family.
pub(crate) fn aggregated_nets<'a>(
    items: impl Iterator<Item = &'a Item>,
    allow: &[Item],
    v6: bool,
) -> (Vec<(u128, u8)>, u64) {
    let bits = if v6 { 128 } else { 32 };
    let range = |c: &Checked| match (c, v6) {
        (Checked::V4(a, l), false) => Some(prefix_range(u128::from(u32::from(*a)), *l, true)),
        (Checked::V6(a, l), true) => Some(prefix_range(u128::from(*a), *l, false)),
        _ => None,
    };
    let mut n = 0u64;
    let block: Vec<_> = items
        .filter_map(|i| range(&i.checked))
        .inspect(|_| n += 1)
        .collect();
    let allow: Vec<_> = allow.iter().filter_map(|i| range(&i.checked)).collect();
    (cidr::aggregate(block, allow, bits), n)
}

/// Text of an aggregated network (`/32` and `/128` as bare addresses).
pub(crate) fn net_text(net: u128, len: u8, v6: bool) -> String {
    if v6 {
        let a = std::net::Ipv6Addr::from(net);
        if len == 128 {
            a.to_string()
        } else {
            format!("{a}/{len}")
        }
    } else {
        let a = std::net::Ipv4Addr::from(net as u32);
        if len == 32 {
            a.to_string()
        } else {
            format!("{a}/{len}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in ExportFormat::ALL {
            assert_eq!(f.as_str().parse::<ExportFormat>().ok(), Some(f));
        }
        assert!("yaml".parse::<ExportFormat>().is_err());
    }

    #[test]
    fn filter_rules() {
        let mut i = Indicator::new("evil.com", IndicatorType::Fqdn, "feed-a");
        i.confidence = 80;
        i.tags = vec!["c2".into()];
        let mut f = Filter::default();
        assert!(f.accepts(&i));
        f.min_confidence = 85;
        assert!(!f.accepts(&i));
        f.min_confidence = 0;
        f.max_tlp = Some(Tlp::Clear);
        assert!(!f.accepts(&i));
        f.max_tlp = None;
        f.tags = vec!["malware".into()];
        assert!(!f.accepts(&i));
        f.tags = vec!["C2".into()];
        f.feeds = vec!["feed-a".into()];
        f.types = vec![IndicatorType::Fqdn];
        f.min_severity = Some(Severity::Medium);
        assert!(f.accepts(&i));
        i.allowlisted_by = Some("top".into());
        assert!(!f.accepts(&i));
        i.allowlisted_by = None;
        i.allowlist = true;
        assert!(!f.accepts(&i));
    }

    #[test]
    fn stamps_match_the_time_crate() {
        let reference = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut ts: Vec<i64> = vec![
            0,
            -1,
            1,
            86_399,
            86_400,
            951_782_400, // 2000-02-29
            1_700_000_000,
            -62_167_219_200, // 0000-01-01T00:00:00Z
            -62_167_219_201,
            253_402_300_799, // 9999-12-31T23:59:59Z
            253_402_300_800,
            i64::MIN,
            i64::MAX,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ts.push((x % 316_000_000_000) as i64 - 62_200_000_000);
        }
        for t in ts {
            assert_eq!(rfc3339(t), reference(t), "{t}");
        }
    }

    #[test]
    fn defanging() {
        assert_eq!(defang(IndicatorType::Fqdn, "a.evil.com"), "a[.]evil[.]com");
        assert_eq!(defang(IndicatorType::Ipv4, "1.2.3.4"), "1.2.3[.]4");
        assert_eq!(
            defang(IndicatorType::Url, "https://e.com/a.php?x=1.2"),
            "hxxps://e[.]com/a.php?x=1.2"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let o = ExportOptions {
            chain: "X;rm".into(),
            ..ExportOptions::default()
        };
        let mut out = Vec::new();
        let r = export(
            ExportFormat::Iptables,
            &mut std::iter::empty(),
            &Filter::default(),
            &o,
            &mut out,
        );
        assert!(matches!(
            r,
            Err(ExportError::InvalidOption {
                option: "chain",
                ..
            })
        ));
    }
}
