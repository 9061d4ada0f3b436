//! `[update] memory` (ARCHITECTURE.md §2.1): an update whose every record spills to a
//! sorted run on disk publishes exactly what an update held in memory publishes, on random
//! feeds listing the same values (duplicates inside and across feeds, URLs deriving hosts
//! other feeds list, allowlist hits), first and over a previous snapshot whose failing
//! feed's entries are carried.

use super::{entries, run, T0};
use proptest::prelude::*;
use std::path::Path;

/// A value from a small pool, so feeds share keys; `a.dN.example` sits below an
/// allowlisted `dN.example`.
fn value(k: u8) -> String {
    match k % 5 {
        0 => format!("d{}.example", k % 7),
        1 => format!("a.d{}.example", k % 7),
        2 => format!("192.0.2.{}", k % 9),
        3 => format!("http://d{}.example/p{}", k % 7, k % 2),
        _ => format!("198.51.100.0/{}", 24 + k % 3),
    }
}

/// One feed's config table and body.
fn feed(i: usize, conf: u8, values: &[u8], allow: bool) -> (String, String) {
    let name = format!("f{i}");
    let body: String = values.iter().map(|&k| value(k) + "\n").collect();
    let table = format!(
        "[[feed]]\nname = \"{name}\"\nsource = \"{name}.txt\"\nformat = \"plain\"\n\
         confidence = {conf}\nseverity = \"{}\"\ntags = [\"t{}\"]\n\
         allowlist = {allow}\nmin_ratio = 0.0\n\n",
        ["low", "medium", "high"][i % 3],
        i % 2,
    );
    (table, body)
}

fn write_feeds(
    dir: &Path,
    feeds: &[(String, String)],
    memory: &str,
    skip: Option<usize>,
) -> String {
    let mut cfg = format!("[update]\nmemory = {memory}\n\n");
    for (i, (table, body)) in feeds.iter().enumerate() {
        cfg.push_str(table);
        let path = dir.join(format!("f{i}.txt"));
        if Some(i) == skip {
            // A feed that fails keeps its previous entries (carried over).
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, body).unwrap();
        }
    }
    cfg
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn spilled_updates_publish_what_in_memory_updates_publish(
        lists in proptest::collection::vec(
            (0u8..=100, proptest::collection::vec(any::<u8>(), 1..30)), 2..5),
        allow in proptest::collection::vec(0u8..7, 0..3),
    ) {
        let mut feeds: Vec<(String, String)> = lists
            .iter()
            .enumerate()
            .map(|(i, (conf, vals))| feed(i, *conf, vals, false))
            .collect();
        if !allow.is_empty() {
            // Allowlist the parents of some listed names (k % 5 == 0 gives dN.example).
            let vals: Vec<u8> = allow.iter().map(|k| k * 5).collect();
            feeds.push(feed(feeds.len(), 100, &vals, true));
        }
        let spilled = tempfile::tempdir().unwrap();
        let held = tempfile::tempdir().unwrap();
        for (step, skip) in [(0, None), (1, Some(0))] {
            let now = T0 + step * 3600;
            // 1 byte: every record is a run of its own on disk.
            let cfg = write_feeds(spilled.path(), &feeds, "1", skip);
            run(&cfg, spilled.path(), now, true);
            let cfg = write_feeds(held.path(), &feeds, "\"4GiB\"", skip);
            run(&cfg, held.path(), now, true);
            let (a, b) = (entries(spilled.path()), entries(held.path()));
            prop_assert!(!a.is_empty());
            prop_assert_eq!(a, b, "step {}", step);
            // The runs went to DATA/tmp (made for them), as unnamed files: none is left.
            let tmp = spilled.path().join("data/tmp");
            prop_assert_eq!(std::fs::read_dir(&tmp).map(Iterator::count).ok(), Some(0));
            prop_assert!(!held.path().join("data/tmp").exists());
        }
    }
}

#[test]
fn a_zero_memory_is_refused_with_what_to_write() {
    let err = feeds::config::Config::from_toml_str("[update]\nmemory = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[update]") && err.contains("512MiB"), "{err}");
    let c = feeds::config::Config::from_toml_str("[update]\nmemory = \"1GiB\"\n").unwrap();
    assert_eq!(c.update.memory(), 1 << 30);
    let d = feeds::config::Config::from_toml_str("").unwrap();
    assert_eq!(d.update.memory(), feeds::config::DEFAULT_UPDATE_MEMORY);
}
