//! Command-line definitions (the names are a contract: README "Commands").

use clap::builder::{RangedI64ValueParser, RangedU64ValueParser};
use clap::{Args, Parser, Subcommand};
use feeds::export::ExportFormat;
use ingest::logs::LogFormat;
use matcher::{IndicatorType, Severity, Tlp};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Most decoder threads `replay --threads` accepts.
pub const MAX_THREADS: u64 = 256;

/// A value parsed by its type's `FromStr`, whose error names the accepted values.
fn named<T: FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// A `--suppress` window: a positive duration (`60s`, `5m`, `1h`).
fn window(s: &str) -> Result<Duration, String> {
    match s.parse::<feeds::config::DurationSpec>().map(|d| d.0) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the window must be at least 1s".into()),
        Err(e) => Err(e),
    }
}

/// trawl — compile threat-intel feeds, match logs and packets, export rules.
///
/// Typical first steps:
///
///   trawl init                            # write trawl.toml with curated public feeds
///   trawl update                          # fetch + compile feeds into a snapshot
///   trawl feeds                           # is every feed fetched? how many indicators?
///   trawl query 203.0.113.7 evil.example  # what do we know about these?
///   trawl scan /var/log/squid/access.log  # ECS JSON alerts on stdout
///   trawl replay case42.pcapng            # the same for a packet capture
///   trawl export --format suricata -c 85  # rules for your IDS
///
/// The data directory (snapshots, fetch cache, query log) is, in order: --data, $TRAWL_DATA,
/// the config's [sensor] data, then ~/.local/share/trawl.
#[derive(Debug, Parser)]
#[command(
    name = "trawl",
    version,
    about,
    long_about,
    propagate_version = true,
    verbatim_doc_comment,
    after_help = crate::exit::HELP
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). TRAWL_LOG=... overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr (summaries too are suppressed).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the snapshot lives.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Data directory (snapshots, fetch cache, query log).
    #[arg(long, short = 'd', value_name = "DIR", env = "TRAWL_DATA")]
    pub data: Option<PathBuf>,
    /// Config file, used for its [sensor] data and name when --data is not given.
    #[arg(long, value_name = "FILE", env = "TRAWL_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Where a client command finds a `trawl serve`: --remote/--token, $TRAWL_REMOTE/$TRAWL_TOKEN,
/// else the config's `[remote]` table (`url`, `token` or `token_env`).
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Ask this `trawl serve` (http(s)://host:port) instead of the local snapshot (default:
    /// the config's [remote] url); query rows then also say how often their value was
    /// searched.
    #[arg(long, value_name = "URL", env = "TRAWL_REMOTE")]
    pub remote: Option<String>,
    /// The API token for the server (default: the config's [remote] token or token_env).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TRAWL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Which hits alert.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Minimum indicator confidence (0-100) that alerts.
    #[arg(
        short = 'c',
        long = "confidence",
        value_name = "MIN",
        default_value_t = 0,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub min_confidence: u8,
    /// Minimum indicator severity that alerts (low, medium, high).
    #[arg(short = 's', long = "severity", value_name = "MIN", value_parser = named::<Severity>)]
    pub min_severity: Option<Severity>,
    /// Write alerts to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// observer.name in alerts (default: the config's [sensor] name, else the host name).
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Print the end-of-run summary as JSON on stderr instead of text.
    #[arg(long)]
    pub summary_json: bool,
    /// Fold repeats of the same (indicator, source ip) within WINDOW of event time (`60s`,
    /// `5m`) into one alert carrying `trawl.repeat_count` (default: report every hit).
    #[arg(long, value_name = "WINDOW", value_parser = window)]
    pub suppress: Option<Duration>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on the bundled samples/: feeds -> snapshot -> scan + replay -> alerts.
    Demo {
        /// Where the demo writes its snapshot and alerts (default: a fresh temporary directory).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// The samples directory (default: samples/ next to the binary's source tree or cwd).
        #[arg(long, value_name = "DIR")]
        samples: Option<PathBuf>,
    },
    /// Write a commented trawl.toml with a curated set of free public feeds.
    ///
    /// The feeds are grouped by content (botnet C2 addresses, malware URLs, phishing,
    /// scanners and brute-forcers, hijacked netblocks, malware hashes, TLS certificate and JA3
    /// fingerprints), each with its provider, terms of use, format, confidence, severity and
    /// refresh interval. Feeds that need a key or restrict their use are there but commented
    /// out, with the reason. Nothing is fetched: run `trawl update` next.
    Init {
        /// Directory to write trawl.toml into (created if missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Replace an existing trawl.toml.
        #[arg(long)]
        force: bool,
    },
    /// Each configured feed: last fetch and outcome, indicators, change, data age, next due.
    ///
    /// Read from the data directory's feed state (written by `trawl update` and by
    /// `trawl run`'s feed scheduler); nothing is fetched. A failed feed shows why, and how
    /// many last good entries it kept.
    #[command(mut_arg("config", |a| a.help(
        "Config file whose [[feed]] tables are listed, else ./trawl.toml; its [sensor] data \
         is the data directory when --data is not given"
    )))]
    Feeds {
        #[command(flatten)]
        data: DataArgs,
        /// Output: table or json.
        #[arg(long, default_value = "table", value_name = "FMT", value_parser = ["table", "json"])]
        format: String,
    },
    /// Fetch due feeds, parse, normalise, merge, compile and publish a new snapshot.
    ///
    /// Feeds come from the [[feed]] tables of the config (trawl.toml). A feed that fails (or
    /// answers an HTML page, an empty body, only rejected lines, or shrinks below its
    /// min_ratio) keeps its previous entries; the command fails only when nothing usable was
    /// produced. A config without feeds, or a result without any feed indicator where the
    /// current snapshot has some, is not published unless --allow-empty. Without a config,
    /// `trawl init` writes one with a curated set of free public feeds; nothing is fetched
    /// that the config does not name. With an [upstream] table, a fleet publisher's signed
    /// release is pulled first and compiled with the feeds; a release that does not verify or
    /// fails a guard is refused and the last good one kept (README "A sensor fleet").
    #[command(mut_arg("config", |a| a.help(
        "Config file whose [[feed]] tables are fetched, else ./trawl.toml; its [sensor] data \
         is the data directory when --data is not given"
    )))]
    Update {
        #[command(flatten)]
        data: DataArgs,
        /// Refresh every feed now, ignoring each feed's `refresh` interval and fetch cache.
        #[arg(long)]
        force: bool,
        /// Publish even with no [[feed]] in the config, or when the new snapshot would hold no
        /// feed indicator where the current one has some.
        #[arg(long)]
        allow_empty: bool,
        /// Summary format: text or json.
        #[arg(long, default_value = "text", value_name = "FMT", value_parser = ["text", "json"])]
        format: String,
    },
    /// Match log files (or - for stdin; .gz/.zst read as is) and write ECS JSON alerts.
    ///
    /// The format of each file is detected from its first lines (squid, combined, zeek,
    /// zeek-json, bind, infoblox, dnsmasq, eve, json, w3c, cef, leef, fortigate, umbrella,
    /// windows-dns, panos, zscaler); --format forces one; --raw (or --format raw) finds indicators
    /// anywhere in lines of unknown format. A proxy or web server writing its own format
    /// is read with its format string (--logformat), for a Squid logging the TLS SNI:
    ///
    /// trawl scan --format squid --logformat '%ts.%03tu %>a %Ss/%03>Hs %rm %ru %ssl::>sni' access.log
    Scan {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        alert: AlertArgs,
        /// Force the log format instead of detecting it.
        #[arg(long, short = 'f', value_name = "FORMAT", value_parser = named::<LogFormat>)]
        format: Option<LogFormat>,
        /// The server's own format string, copied from its config: Squid's `logformat`
        /// line, nginx's `log_format`, Apache's `LogFormat` (with --format squid, nginx or
        /// apache). Lines that do not fit it are counted unparseable.
        #[arg(long, value_name = "STRING")]
        logformat: Option<String>,
        /// Scan lines as free text (same as --format raw).
        #[arg(long)]
        raw: bool,
        /// Fail on the first file with unparseable lines (default: count and go on).
        #[arg(long)]
        strict: bool,
        /// Parse and look up every line in full instead of first asking the snapshot's
        /// prefilter whether any of its values can alert. Same alerts, slower; for
        /// checking that claim and for measuring.
        #[arg(long)]
        no_prefilter: bool,
        /// Also record every observed value (names, addresses, URLs, hashes) in the data
        /// directory's retro index (DATA/retro), to backfill it from archived logs; the
        /// config's [retro] gives the retention and client sample. Then ask it with
        /// `trawl hunt`.
        #[arg(long)]
        record: bool,
        /// Also write a self-contained HTML report of the alerts written (FILE.html): a
        /// timeline per hour by severity, the top indicators, clients and feeds, and the
        /// alert table. Opens in any browser, offline; nothing in it runs.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Log files; - reads stdin.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Match packet captures (pcap or pcapng) offline, in order, at disk speed.
    Replay {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        alert: AlertArgs,
        /// Decoder threads, 1-256 (default: all cores).
        #[arg(long, value_name = "N",
              value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS))]
        threads: Option<usize>,
        /// BPF filter, as for sniff (libpcap syntax), e.g. "not port 22": only the packets it
        /// passes are decoded.
        #[arg(long, value_name = "EXPR")]
        bpf: Option<String>,
        /// Also record every observed value in the retro index (see `trawl scan --record`).
        #[arg(long)]
        record: bool,
        /// Also write a self-contained HTML report of the alerts written (FILE.html): a
        /// timeline per hour by severity, the top indicators, clients and feeds, and the
        /// alert table. Opens in any browser, offline; nothing in it runs.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Capture files, or directories of them (replayed in the order of their first
        /// packet's timestamp; flows continue from one file to the next).
        #[arg(required = true, value_name = "FILE|DIR")]
        files: Vec<PathBuf>,
    },
    /// Capture live from an interface and alert as packets arrive.
    Sniff {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        alert: AlertArgs,
        /// Interface to capture on.
        #[arg(short = 'i', long, value_name = "IFACE")]
        interface: String,
        /// BPF capture filter, e.g. "not port 22".
        #[arg(long, value_name = "EXPR")]
        bpf: Option<String>,
        /// Bytes captured per packet (1-262144).
        #[arg(long, default_value_t = 65535,
              value_parser = RangedI64ValueParser::<i32>::new().range(1..=262_144))]
        snaplen: i32,
        /// Do not put the interface in promiscuous mode.
        #[arg(long)]
        no_promisc: bool,
        /// Kernel capture ring in MiB (1-2047): what absorbs bursts while packets are
        /// decoded. Raise it when the summary shows kernel drops.
        #[arg(long, value_name = "MIB", default_value_t = ingest::packet::live::DEFAULT_BUFFER_MIB,
              value_parser = RangedI64ValueParser::<i32>::new().range(1..=2047))]
        buffer: i32,
        /// After opening the capture, drop root privileges to this user (and its groups),
        /// e.g. "trawl" or "nobody"; the output file is opened before. Default: keep the
        /// user trawl was started as.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Capture threads (1-64), each with its own kernel ring, sharing the interface by
        /// flow (Linux PACKET_FANOUT hash: both directions of a flow to one thread), for
        /// traffic one thread cannot keep up with.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
        workers: usize,
        /// Depth of each worker's queue from its capture thread to its decoder, in batches
        /// of up to 256 packets (1-4096); a batch that finds it full is dropped and counted
        /// as a queue drop. Hidden: for tests and benchmarks.
        #[arg(long, value_name = "N", hide = true,
              default_value_t = ingest::packet::live::DEFAULT_QUEUE_BATCHES,
              value_parser = RangedU64ValueParser::<usize>::new().range(1..=4096))]
        queue_batches: usize,
        /// Stop after this many packets (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Stop after this many seconds (at least 1).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
        duration: Option<u64>,
    },
    /// Print the observations trawl extracts from logs or captures, as ECS JSON lines (no matching).
    Observe {
        /// Force the log format instead of detecting it.
        #[arg(long, short = 'f', value_name = "FORMAT", value_parser = named::<LogFormat>)]
        format: Option<LogFormat>,
        /// The server's own format string (see `trawl scan --help`).
        #[arg(long, value_name = "STRING")]
        logformat: Option<String>,
        /// Log files or captures (.pcap/.pcapng detected by their magic bytes).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// What we know about an IP, CIDR, domain, URL or hash: every covering indicator.
    Query {
        #[command(flatten)]
        data: DataArgs,
        /// Output: table or json (one object per line).
        #[arg(long, default_value = "table", value_name = "FMT", value_parser = ["table", "json"])]
        format: String,
        /// Do not record the query in the data directory's query log (with --remote: in the
        /// server's search log).
        #[arg(short = 'n', long)]
        nolog: bool,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Values to look up (defanged spellings accepted).
        #[arg(required = true, value_name = "VALUE")]
        values: Vec<String>,
    },
    /// Did anything here already see these indicators? Asked of the retro index (what
    /// `scan --record`, `replay --record` and `trawl run` with [retro] recorded), with the
    /// snapshot's matching semantics: a domain finds every observed name below it, a CIDR
    /// every observed address in it, a URL every observed URL under it. No log is re-read.
    ///
    ///   trawl hunt evil.example 203.0.113.0/24       # these values
    ///   trawl hunt --indicators iocs.txt --since 7d  # one value a line (# comments)
    ///   trawl hunt --feed abuse-ch-feodo --format json
    ///
    /// Table or JSON lines (one per indicator and observed value, with trawl.observed.value,
    /// first_seen, last_seen, count, clients and threat.indicator.* as a retro alert has).
    #[command(verbatim_doc_comment)]
    Hunt {
        #[command(flatten)]
        data: DataArgs,
        /// Only partitions of this recent period (`30d`, `12h`; default: all retained).
        #[arg(long, value_name = "DURATION", value_parser = window)]
        since: Option<Duration>,
        /// Output: table or json (one object per line).
        #[arg(long, default_value = "table", value_name = "FMT", value_parser = ["table", "json"])]
        format: String,
        /// A file of values to hunt, one a line (blank lines and # comments skipped).
        #[arg(long, value_name = "FILE", conflicts_with = "feed")]
        indicators: Option<PathBuf>,
        /// Hunt every indicator of this feed in the current snapshot.
        #[arg(long, value_name = "NAME", conflicts_with = "values")]
        feed: Option<String>,
        /// Also write a self-contained HTML report of what was found (FILE.html), each
        /// sighting as the retro alert it would be (see `trawl scan --report`).
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Values to hunt (defanged spellings accepted).
        #[arg(value_name = "VALUE")]
        values: Vec<String>,
    },
    /// Export the snapshot's indicators as rules or lists (allowlisted entries never export).
    Export {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        args: ExportArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Submit indicators to a `trawl serve` (POST /v1/indicators; the token needs the write
    /// right). The provider is the token's user; values are normalised as feeds' are.
    ///
    ///   trawl submit --remote https://cif.example:5000 evil.example 203.0.113.7 \
    ///       -c 80 -s high --tags c2,phishing --tlp amber --group csirt --expires 30d \
    ///       --external-id indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f
    #[command(verbatim_doc_comment)]
    Submit {
        /// Config file, for its [remote] table.
        #[arg(long, value_name = "FILE", env = "TRAWL_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Confidence (0-100; default 50, the server's).
        #[arg(short = 'c', long, value_name = "N",
              value_parser = clap::value_parser!(u8).range(0..=100))]
        confidence: Option<u8>,
        /// Severity (low, medium, high).
        #[arg(short = 's', long, value_name = "SEV", value_parser = named::<Severity>)]
        severity: Option<Severity>,
        /// Tags, comma-separated (`c2,phishing`).
        #[arg(long, value_name = "TAGS", value_delimiter = ',')]
        tags: Vec<String>,
        /// TLP marking (clear, green, amber, amber+strict, red).
        #[arg(long, value_name = "TLP", value_parser = named::<Tlp>)]
        tlp: Option<Tlp>,
        /// The group that may see them (one of the token's; default everyone).
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// The type, when a value alone is ambiguous (ipv4, fqdn, url, sha256, ...).
        #[arg(long = "type", short = 't', value_name = "T", value_parser = named::<IndicatorType>)]
        itype: Option<IndicatorType>,
        /// When they stop counting: a duration from now (`30d`, `12h`) or a time
        /// (`2027-01-31T00:00:00Z`).
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// A description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// A reference (a URL, a ticket).
        #[arg(long, value_name = "TEXT")]
        reference: Option<String>,
        /// The id the indicator has in your intel platform, kept beside it (and in STIX
        /// exports and sightings): a STIX id (`indicator--<uuid>`) or a MISP uuid.
        #[arg(long, value_name = "ID")]
        external_id: Option<String>,
        /// Output: table or json (one object per line).
        #[arg(long, default_value = "table", value_name = "FMT", value_parser = ["table", "json"])]
        format: String,
        /// Values to submit (defanged spellings accepted).
        #[arg(required = true, value_name = "VALUE")]
        values: Vec<String>,
    },
    /// The daemon: tail logs, sniff, consume Kafka topics as a consumer group, refresh feeds,
    /// hot-reload, ship alerts to files, syslog, HTTP, TAXII or Kafka (see [[source]]/[[sink]]).
    Run {
        /// Config file.
        #[arg(long, value_name = "FILE", env = "TRAWL_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The CIF v3-compatible server: searches, feeds and submissions over HTTP(S), with tokens,
    /// groups and TLP ceilings (README "Server").
    ///
    ///   trawl token create --user alice --groups everyone,csirt --max-tlp amber
    ///   trawl serve --config trawl.toml --listen 127.0.0.1:5000
    ///   curl -H 'Authorization: Token token=...' 'http://127.0.0.1:5000/search?q=evil.example'
    #[command(verbatim_doc_comment)]
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Address to listen on (default: [server] listen, else 127.0.0.1:5000; port 0 picks
        /// a free port, printed on stderr).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Write the server's URL (scheme://address:port) into FILE once it listens.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
    /// Create, list and revoke the API tokens of `trawl serve` (kept in DATA/server.db).
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Make an Ed25519 key pair for signing fleet releases (`trawl publish`).
    ///
    /// Writes PREFIX.key (the private key, mode 0600; never overwritten) and PREFIX.pub (the
    /// public key, one base64 line: give it to sensors as [upstream] public_key).
    ///
    ///   trawl keygen --out /etc/trawl/fleet
    #[command(verbatim_doc_comment)]
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Publish the current snapshot as a signed release (and deltas) for a sensor fleet.
    ///
    /// Writes DIR/latest.json (the signed manifest), DIR/bundles/ID.jsonl.gz (the full set)
    /// and DIR/deltas/FROM-TO.delta.gz (a step from each of the last K releases): serve DIR with any
    /// static web server and point sensors' [upstream] url at it. Publishing an unchanged
    /// snapshot writes nothing (sensors then get a 304). Run it after each `trawl update`.
    ///
    ///   trawl update && trawl publish --to /var/www/fleet --key /etc/trawl/fleet.key
    #[command(verbatim_doc_comment)]
    Publish {
        #[command(flatten)]
        data: DataArgs,
        /// The release directory.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// The signing key (default: the config's [server] signing_key).
        #[arg(long, value_name = "PREFIX.key")]
        key: Option<PathBuf>,
        /// Keep deltas from this many previous releases (older sensors fetch the bundle).
        #[arg(long, default_value_t = 24, value_name = "K")]
        keep: usize,
        /// Mark this release as an intended shrink: sensors accept it even when it is empty
        /// or smaller than their max_shrink allows.
        #[arg(long)]
        intended_shrink: bool,
        /// Summary format: text or json.
        #[arg(long, default_value = "text", value_name = "FMT", value_parser = ["text", "json"])]
        format: String,
    },
    /// List the sensors pulling fleet releases from a `trawl serve` (admin token).
    ///
    /// One row per sensor (its [upstream] name and token user): the release it runs, the
    /// latest release of its token's grant, its state (stale: no pull for [server]
    /// fleet_stale; behind: not on the latest release), last pull, trawl version, last
    /// sighting batch. Exits 1 when a sensor is stale or behind (for monitoring).
    ///
    ///   trawl fleet --remote https://intel.example:5000 --token "$ADMIN_TOKEN"
    ///   trawl fleet --config trawl.toml --format json     # [remote] url and token
    #[command(verbatim_doc_comment)]
    Fleet {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Output: table or json.
        #[arg(long, default_value = "table", value_name = "FMT", value_parser = ["table", "json"])]
        format: String,
    },
    /// Write man pages or a shell completion script, generated from these very definitions.
    ///
    ///   trawl generate man --out /usr/local/share/man/man1
    ///   trawl generate bash > /etc/bash_completion.d/trawl
    ///   trawl generate zsh > "${fpath[1]}/_trawl"
    ///   trawl generate fish > ~/.config/fish/completions/trawl.fish
    #[command(verbatim_doc_comment)]
    Generate {
        /// What to write.
        #[arg(value_enum)]
        what: GenerateWhat,
        /// man: the directory the pages are written into (trawl.1, trawl-scan.1, ...).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

/// `trawl token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it, once (only its SHA-256 is stored).
    ///
    ///   trawl token create --user alice --groups everyone,csirt --write --max-tlp amber
    ///   trawl token create --user elastic --itypes ipv4,fqdn --expires 90d --format json
    #[command(verbatim_doc_comment)]
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Who it is for; the provider of everything it submits.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Groups whose indicators it sees (default: everyone).
        #[arg(long, value_name = "A,B", value_delimiter = ',')]
        groups: Vec<String>,
        /// May search and pull feeds (the default when no right is given).
        #[arg(long)]
        read: bool,
        /// May submit indicators, and post sightings (a sensor with `[upstream] sightings`).
        #[arg(long)]
        write: bool,
        /// Sees every group; may delete indicators and manage tokens over the API.
        #[arg(long)]
        admin: bool,
        /// The most restricted TLP it sees (clear, green, amber, amber+strict, red).
        #[arg(long, value_name = "LEVEL", default_value = "green", value_parser = named::<Tlp>)]
        max_tlp: Tlp,
        /// The only indicator types it may search and see (default: all).
        #[arg(long, value_name = "T,U", value_delimiter = ',', value_parser = named::<IndicatorType>)]
        itypes: Vec<IndicatorType>,
        /// Refuse it after this long (`90d`, `12h`, `4w`).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Output: text or json (`{"token": ...}` plus the grant).
        #[arg(long, default_value = "text", value_name = "FMT", value_parser = ["text", "json"])]
        format: String,
    },
    /// List the tokens (never their secrets).
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Output: text or json.
        #[arg(long, default_value = "text", value_name = "FMT", value_parser = ["text", "json"])]
        format: String,
    },
    /// Revoke one token, or every token of a user; takes effect on the next request.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// The token to revoke.
        #[arg(
            long,
            value_name = "TOKEN",
            required_unless_present = "user",
            conflicts_with = "user"
        )]
        token: Option<String>,
        /// Revoke every token of this user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

/// What `trawl generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateWhat {
    /// Man pages (roff), one per command, into --out.
    Man,
    /// Bash completion script, on stdout.
    Bash,
    /// Zsh completion script, on stdout.
    Zsh,
    /// Fish completion script, on stdout.
    Fish,
}

/// What `trawl export` writes and which indicators it takes.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// snort, suricata, iptables, ip6tables, ipset, nftables, zeek, rpz, csv, jsonl, json, table,
    /// html, stix (a STIX 2.1 bundle for TAXII servers, MISP and OpenCTI; ids kept), misp (a
    /// MISP event, a MISP feed's event file; uuids kept).
    #[arg(long, short = 'f', value_name = "FORMAT", value_parser = named::<ExportFormat>)]
    pub format: ExportFormat,
    /// Only these indicator types (repeatable: ipv4, ipv6, fqdn, url, sha256, ...).
    #[arg(long = "type", short = 't', value_name = "T", value_parser = named::<IndicatorType>)]
    pub types: Vec<IndicatorType>,
    /// Minimum confidence (0-100).
    #[arg(
        short = 'c',
        long = "confidence",
        value_name = "MIN",
        default_value_t = 0,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub min_confidence: u8,
    /// Minimum severity (low, medium, high).
    #[arg(short = 's', long = "severity", value_name = "MIN", value_parser = named::<Severity>)]
    pub min_severity: Option<Severity>,
    /// Only indicators with this tag (repeatable; any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only indicators at most this restricted (clear, green, amber, amber+strict, red).
    #[arg(long, value_name = "MAX", value_parser = named::<Tlp>)]
    pub tlp: Option<Tlp>,
    /// Only indicators listed by this feed (repeatable).
    #[arg(long = "feed", value_name = "NAME")]
    pub feeds: Vec<String>,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// misp: write a whole MISP feed into DIR, a new directory (the event, `manifest.json`
    /// and `hashes.csv`, as PyMISP writes them; a MISP instance or a trawl `misp-feed` pulls
    /// it) instead of the one event.
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    pub feed_dir: Option<PathBuf>,
    /// Snort: first sid of the range trawl's stable sids are drawn from (its 10,000,000 sids
    /// must fit in 32 bits: 1-4284967295).
    #[arg(long, default_value_t = 9_000_000,
          value_parser = RangedU64ValueParser::<u32>::new().range(1..=u64::from(u32::MAX - 10_000_000)))]
    pub sid_base: u32,
    /// Snort: write Snort 3 rules instead of 2.9.
    #[arg(long)]
    pub snort3: bool,
    /// Suricata: write dataset files into DIR and emit `dataset:isset` rules.
    #[arg(long, value_name = "DIR")]
    pub dataset_dir: Option<PathBuf>,
    /// Firewall formats: REJECT instead of DROP.
    #[arg(long)]
    pub reject: bool,
}
