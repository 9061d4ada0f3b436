//! The default feed set (`trawl init`'s trawl.toml, every commented-out feed enabled) against
//! real copies of those feeds in the shared corpus: each feed's own config entry (format,
//! columns, itype, maps), only its source pointed at the copy, through the update pipeline's
//! parse and normalise step and then through `update` itself. A feed without a copy is
//! named in `UNTESTED`, so what is not checked against real data is visible.

use feeds::config::{Config, FeedConfig};
use feeds::defaults::{with_everything_enabled, TRAWL_TOML};
use feeds::update::{process_bytes, update, FeedStatus, UpdateOptions};
use matcher::IndicatorType as T;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

/// A default feed, the corpus copy of it (below `feeds/`), the itypes its provider documents,
/// and the lines it rejects on purpose (with a word of the reason).
struct Copy {
    feed: &'static str,
    file: &'static str,
    itypes: &'static [T],
    rejects: Option<(usize, &'static str)>,
}

const fn copy(feed: &'static str, file: &'static str, itypes: &'static [T]) -> Copy {
    Copy {
        feed,
        file,
        itypes,
        rejects: None,
    }
}

const COPIES: &[Copy] = &[
    copy(
        "feodotracker",
        "abusech/feodotracker_ipblocklist_2024-04-04.csv",
        &[T::Ipv4],
    ),
    // The corpus has ThreatFox's URL export only (its full dump; `recent` has the same columns).
    copy(
        "threatfox-urls",
        "abusech/threatfox_full_urls_2025-12-07.csv",
        &[T::Url],
    ),
    copy("bambenek-c2-ip", "bambenek/c2-ipmasterlist.txt", &[T::Ipv4]),
    copy(
        "bambenek-c2-domains",
        "bambenek/c2-dommasterlist.txt",
        &[T::Fqdn],
    ),
    // maltrail malware and malicious trails: IP:ports, domains, URLs and URL paths (kept as
    // patterns), e.g. ClearFake's `109.248.206.101:443` and `/lander/chrome_1695206714/_cf.php`.
    copy(
        "maltrail-emotet",
        "maltrail/static_malware_emotet.txt",
        &[T::Ipv4, T::Fqdn, T::Url, T::Pattern],
    ),
    copy(
        "maltrail-clearfake",
        "maltrail/static_malicious_ek_clearfake.txt",
        &[T::Ipv4, T::Fqdn, T::Url, T::Pattern],
    ),
    copy("openphish", "openphish/feed_2015.txt", &[T::Url]),
    copy("phishtank", "phishtank/online-valid.json", &[T::Url]),
    copy("ipsum", "ipsum/ipsum.txt", &[T::Ipv4]),
    // FireHOL's mirror of ET's list: the same addresses under FireHOL's `#` header.
    copy("et-compromised", "firehol/et_compromised.ipset", &[T::Ipv4]),
    // Addresses v4 and v6, CIDRs, and two scanner URL paths (`/w00tw00t...`), kept as
    // patterns. Three lines of this copy carry a typo, `C91.196.152.28 # probe.onyphe.net`
    // (`grep -c '^C[0-9]'` = 3): rejected as malformed, the rest kept.
    Copy {
        feed: "maltrail-mass-scanner",
        file: "maltrail/static_mass_scanner.txt",
        itypes: &[T::Ipv4, T::Ipv6, T::Pattern],
        rejects: Some((3, "malformed IP")),
    },
    copy(
        "maltrail-mass-scanner-cidr",
        "maltrail/static_mass_scanner_cidr.txt",
        &[T::Ipv4],
    ),
    // Pool domains, IP:ports and a few pool URLs (`http://185.141.25.35`).
    copy(
        "maltrail-crypto-mining",
        "maltrail/static_suspicious_crypto_mining.txt",
        &[T::Ipv4, T::Fqdn, T::Url],
    ),
    // The unauthenticated csirtg.io CSV (its `itype` column says ipv4).
    copy(
        "csirtg-port-scanners",
        "csirtg/csirtg_io_feed.csv",
        &[T::Ipv4],
    ),
    copy("dshield-block", "dshield/block.txt", &[T::Ipv4]),
    // The same format as dataplane's sshpwauth report (which has no copy).
    copy("dataplane-dnsrd", "dataplane/dnsrd.txt", &[T::Ipv4]),
    copy("spamhaus-drop", "spamhaus/drop_2015.txt", &[T::Ipv4]),
    copy("spamhaus-edrop", "spamhaus/edrop_2015.txt", &[T::Ipv4]),
    // Level1 lists 224.0.0.0/3 (multicast and reserved, a bogon): wider than /8, refused by the
    // breadth rule on purpose.
    Copy {
        feed: "firehol-level1",
        file: "firehol/firehol_level1.netset",
        itypes: &[T::Ipv4],
        rejects: Some((1, "broad")),
    },
    copy(
        "sslbl-certs",
        "abusech/sslbl_sslblacklist_2023-11-14.csv",
        &[T::X509Sha1],
    ),
];

/// Default feeds with no copy in the corpus: their entries are checked by parsing only.
const UNTESTED: &[&str] = &[
    "threatfox-ip-port",
    "threatfox-domains",
    "urlhaus",
    "blocklist-de",
    "cins-army",
    "dataplane-sshpwauth",
    "spamhaus-dropv6",
    "malwarebazaar",
    "sslbl-ja3",
];

/// Well after every corpus copy was written (no entry of theirs has an `expires`).
const NOW: i64 = 1_900_000_000;

fn corpus_feeds() -> Option<PathBuf> {
    let p = crate::corpus_dir::corpus_dir()?.join("feeds");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("CORPUS ABSENT: {} — default feeds not checked", p.display());
        None
    }
}

fn all_defaults() -> Config {
    Config::from_toml_str(&with_everything_enabled()).expect("the enabled template parses")
}

fn entry<'a>(config: &'a Config, name: &str) -> &'a FeedConfig {
    config
        .feeds
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not a default feed"))
}

#[test]
fn every_default_feed_is_either_checked_against_a_copy_or_listed_as_untested() {
    let defaults = all_defaults();
    let all: BTreeSet<&str> = defaults.feeds.iter().map(|f| f.name.as_str()).collect();
    let copied: BTreeSet<&str> = COPIES.iter().map(|c| c.feed).collect();
    let untested: BTreeSet<&str> = UNTESTED.iter().copied().collect();
    assert_eq!(copied.len(), COPIES.len(), "a feed twice in COPIES");
    assert!(copied.is_disjoint(&untested), "{copied:?} / {untested:?}");
    let listed: BTreeSet<&str> = copied.union(&untested).copied().collect();
    assert_eq!(
        listed, all,
        "COPIES + UNTESTED must be exactly the default feeds"
    );
    // The enabled ones are a real subset: the template enables most of them.
    let enabled = Config::from_toml_str(TRAWL_TOML).unwrap();
    assert!(enabled.feeds.len() > all.len() / 2);
    // Every copy named exists (a renamed corpus file must not pass silently).
    let Some(dir) = corpus_feeds() else { return };
    for c in COPIES {
        assert!(dir.join(c.file).is_file(), "{}: {}", c.feed, c.file);
    }
}

#[test]
fn each_default_feed_entry_parses_its_real_copy() {
    let Some(dir) = corpus_feeds() else { return };
    let config = all_defaults();
    let mut wrong = Vec::new();
    for c in COPIES {
        let mut feed = entry(&config, c.feed).clone();
        feed.source = dir.join(c.file).display().to_string();
        let bytes = std::fs::read(&feed.source).unwrap();
        let (summary, inds) = process_bytes(&bytes, &feed, NOW);
        assert!(summary.accepted > 0, "{}: nothing accepted", c.feed);
        let (n, why) = c.rejects.unwrap_or((0, ""));
        let reasons = &summary.reject_samples;
        if summary.rejected != n || !reasons.iter().all(|r| r.reason.contains(why)) {
            wrong.push(format!(
                "{}: {} rejected, expected {n} ({why}): {:?}",
                c.feed,
                summary.rejected,
                &reasons[..reasons.len().min(3)]
            ));
        }
        assert_eq!((summary.expired, summary.skipped), (0, 0), "{}", c.feed);
        let mix: BTreeSet<T> = inds
            .iter()
            .filter(|i| !i.derived)
            .map(|i| i.itype)
            .collect();
        let want: BTreeSet<T> = c.itypes.iter().copied().collect();
        if mix != want {
            wrong.push(format!(
                "{}: itype mix {mix:?}, documented {want:?}",
                c.feed
            ));
        }
        // The entry's defaults reach every indicator; per-record values may override them.
        for i in inds.iter().filter(|i| !i.derived) {
            assert_eq!(i.tlp, feed.tlp.unwrap(), "{}", c.feed);
            for t in &feed.tags {
                assert!(i.tags.contains(t), "{}: {:?}", c.feed, i.tags);
            }
        }
        assert!(
            feed.derive_enabled() || inds.iter().all(|i| !i.derived),
            "{}: derive = false derives nothing",
            c.feed
        );
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn default_feed_entries_carry_the_columns_they_map() {
    let Some(dir) = corpus_feeds() else { return };
    let config = all_defaults();
    let run = |name: &str, file: &str| {
        let mut feed = entry(&config, name).clone();
        feed.source = dir.join(file).display().to_string();
        let bytes = std::fs::read(&feed.source).unwrap();
        process_bytes(&bytes, &feed, NOW).1
    };
    // IPsum: the number of lists (x10) is the confidence.
    let ipsum = run("ipsum", "ipsum/ipsum.txt");
    let first = ipsum.iter().find(|i| i.value == "77.90.185.20").unwrap();
    assert_eq!(first.confidence, 100, "on 10 lists");
    let text = std::fs::read_to_string(dir.join("ipsum/ipsum.txt")).unwrap();
    // The copy is cut after the addresses on 2 lists.
    let twos: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix("\t2"))
        .take(3)
        .collect();
    assert_eq!(twos.len(), 3);
    for v in twos {
        let i = ipsum.iter().find(|i| i.value == v).unwrap();
        assert_eq!(i.confidence, 20, "{v} is on two lists");
    }
    // PhishTank: the detail page is the reference, the target brand the description.
    let pt = run("phishtank", "phishtank/online-valid.json");
    let i = pt
        .iter()
        .find(|i| i.value.contains("x-gumis.klub.chip.pl"))
        .unwrap();
    assert_eq!(
        i.reference.as_deref(),
        Some("http://www.phishtank.com/phish_detail.php?phish_id=3919226")
    );
    assert_eq!(i.description.as_deref(), Some("Other"));
    // Bambenek: description and reference columns.
    let bb = run("bambenek-c2-ip", "bambenek/c2-ipmasterlist.txt");
    let i = bb.iter().find(|i| i.value == "52.4.209.250").unwrap();
    assert_eq!(
        i.description.as_deref(),
        Some("IP used by shiotob/urlzone/bebloh C&C")
    );
    assert_eq!(
        i.reference.as_deref(),
        Some("http://osint.bambenekconsulting.com/manual/bebloh.txt")
    );
    // ThreatFox: the per-IOC confidence_level replaces the feed's default.
    let tf = run(
        "threatfox-urls",
        "abusech/threatfox_full_urls_2025-12-07.csv",
    );
    let i = tf
        .iter()
        .find(|i| i.value == "http://195.133.9.204/skare.odd")
        .unwrap();
    assert_eq!(i.confidence, 100);
    // SSLBL: certificate fingerprints, not file hashes.
    let ssl = run("sslbl-certs", "abusech/sslbl_sslblacklist_2023-11-14.csv");
    let i = ssl
        .iter()
        .find(|i| i.value == "2e3519b7cb61a3cd6167f727df993f68311085ea")
        .unwrap();
    assert_eq!(i.itype, T::X509Sha1);
    assert_eq!(i.description.as_deref(), Some("DCRat C&C"));
}

#[test]
fn the_default_entries_run_through_update_together() {
    let Some(dir) = corpus_feeds() else { return };
    let mut config = all_defaults();
    let copies: HashMap<&str, &Copy> = COPIES.iter().map(|c| (c.feed, c)).collect();
    config
        .feeds
        .retain(|f| copies.contains_key(f.name.as_str()));
    for f in &mut config.feeds {
        f.source = dir.join(copies[f.name.as_str()].file).display().to_string();
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = UpdateOptions {
        now: Some(NOW),
        ..UpdateOptions::default()
    };
    let report = update(
        &config,
        tmp.path(),
        &tmp.path().join("data"),
        &opts,
        &feeds::NoProgress,
    )
    .unwrap();
    assert_eq!(report.feeds.len(), COPIES.len());
    for s in &report.feeds {
        assert_eq!(s.status, FeedStatus::Fetched, "{}", s.name);
        assert!(s.accepted > 0, "{}", s.name);
    }
    // The state `trawl feeds` reads: every feed fresh, with its indicators counted.
    let rows = feeds::status::feed_rows(&config, &tmp.path().join("data"), NOW);
    for r in &rows {
        assert_eq!(r.outcome, feeds::status::Outcome::Fresh, "{}", r.name);
        assert!(r.indicators.is_some_and(|n| n > 0), "{}", r.name);
        assert_eq!(r.last_fetch, Some(NOW));
    }
}

/// The feeds in `UNTESTED` have no real copy; each entry's columns are at least checked on a
/// few lines written here after the provider's documented layout (header comment and column
/// order as the provider's page shows them). Not a substitute for a real copy: they stay in
/// `UNTESTED`.
#[test]
fn untested_entries_read_their_documented_layout() {
    const ABUSE_CH_HEAD: &str =
        "################################################################\n\
                                 # abuse.ch export (CSV)                                        #\n\
                                 ################################################################\n\
                                 #\n";
    let threatfox_head =
        "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\
                          \"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\
                          \"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n";
    let threatfox_row = |value: &str, itype: &str| {
        format!(
            "\"2025-12-07 10:24:02\", \"1668909\", \"{value}\", \"{itype}\", \"botnet_cc\", \
             \"win.dcrat\", \"None\", \"DCRat\", \"\", \"50\", \"\", \"c2,dcrat\", \"0\", \"x\"\n"
        )
    };
    let cases: Vec<(&str, String, &str, T)> = vec![
        (
            "threatfox-ip-port",
            format!(
                "{ABUSE_CH_HEAD}{threatfox_head}{}",
                threatfox_row("45.61.136.5:443", "ip:port")
            ),
            "45.61.136.5",
            T::Ipv4,
        ),
        (
            "threatfox-domains",
            format!(
                "{ABUSE_CH_HEAD}{threatfox_head}{}",
                threatfox_row("shilohbn.ru.com", "domain")
            ),
            "shilohbn.ru.com",
            T::Fqdn,
        ),
        (
            "urlhaus",
            format!(
                "{ABUSE_CH_HEAD}# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
                 \"3171133\",\"2024-09-04 07:31:05\",\"http://117.211.220.1:38633/i\",\"online\",\
                 \"2024-09-04 07:31:05\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\
                 \"https://urlhaus.abuse.ch/url/3171133/\",\"geenensp\"\n"
            ),
            "http://117.211.220.1:38633/i",
            T::Url,
        ),
        (
            "malwarebazaar",
            format!(
                "{ABUSE_CH_HEAD}# \"first_seen_utc\",\"sha256_hash\",\"md5_hash\",\"sha1_hash\",\
                 \"reporter\",\"file_name\",\"file_type_guess\",\"mime_type\",\"signature\",\
                 \"clamav\",\"vtpercent\",\"imphash\",\"ssdeep\",\"tlsh\"\n\
                 \"2024-09-04 07:40:23\", \"{sha256}\", \"{md5}\", \"{sha1}\", \"abuse_ch\", \
                 \"a.exe\", \"exe\", \"application/x-dosexec\", \"AgentTesla\", \"n/a\", \"n/a\", \
                 \"f34d5f2d4577ed6d9ceec516c1f5a744\", \"n/a\", \"n/a\"\n",
                sha256 = "0".repeat(63) + "1",
                md5 = "1".repeat(32),
                sha1 = "2".repeat(40),
            ),
            "0000000000000000000000000000000000000000000000000000000000000001",
            T::Sha256,
        ),
        (
            "sslbl-ja3",
            format!(
                "{ABUSE_CH_HEAD}# ja3_md5,Firstseen,Lastseen,Listingreason\n\
                 b386946a5a44d1ddcc843bc75336dfce,2017-07-14 18:08:15,2019-07-27 20:42:54,Dridex\n"
            ),
            "b386946a5a44d1ddcc843bc75336dfce",
            T::Ja3,
        ),
        (
            "spamhaus-dropv6",
            "; Spamhaus IPv6 DROP List\n2a06:5280::/29 ; SBL123\n".to_string(),
            "2a06:5280::/29",
            T::Ipv6,
        ),
        (
            "blocklist-de",
            "1.2.3.4\n2001:db8:1::5\n".to_string(),
            "1.2.3.4",
            T::Ipv4,
        ),
        ("cins-army", "1.2.3.4\n".to_string(), "1.2.3.4", T::Ipv4),
        (
            "dataplane-sshpwauth",
            "# DataPlane.org\n#\n174  |  COGENT-174  |  185.142.236.35  |  2021-08-31 10:07:10  |  sshpwauth\n"
                .to_string(),
            "185.142.236.35",
            T::Ipv4,
        ),
    ];
    let config = all_defaults();
    let named: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(named, UNTESTED.iter().copied().collect(), "one sample each");
    for (name, body, value, itype) in &cases {
        let feed = entry(&config, name);
        let (summary, inds) = process_bytes(body.as_bytes(), feed, NOW);
        assert_eq!(summary.rejected, 0, "{name}: {:?}", summary.reject_samples);
        let i = inds
            .iter()
            .find(|i| i.value == *value)
            .unwrap_or_else(|| panic!("{name}: {value} not in {inds:?}"));
        assert_eq!(i.itype, *itype, "{name}");
    }
}
