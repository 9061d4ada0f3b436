//! Real feeds from the shared corpus: every listed value normalises (counts checked against
//! independent `grep` counts stated per feed), normalisation is idempotent on them, and the
//! compiled snapshot finds every indicator exactly like the naive matcher.

use matcher::{
    normalize, Indicator, IndicatorType, MatchKind, Matcher, NaiveMatcher, SnapshotBuilder,
};
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    let p = crate::corpus_dir::corpus_dir()?.join("feeds");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("CORPUS ABSENT: {}", p.display());
        None
    }
}

/// (feed file, hint, how to take the value from a line, lines to skip, expected count and the
/// independent command that gives it).
struct Feed {
    path: &'static str,
    hint: IndicatorType,
    take: fn(&str) -> Option<&str>,
    expected: usize,
}

fn first_field(sep: char) -> fn(&str) -> Option<&str> {
    match sep {
        ',' => |l: &str| l.split(',').next(),
        _ => |l: &str| l.split_whitespace().next(),
    }
}

#[test]
fn real_feeds_normalise_and_match() {
    let Some(root) = corpus() else {
        return;
    };
    let feeds = [
        // grep -c . openphish/feed_2015.txt
        Feed {
            path: "openphish/feed_2015.txt",
            hint: IndicatorType::Url,
            take: |l| Some(l),
            expected: 42,
        },
        // grep -vc '^;' spamhaus/drop_2015.txt  (lines "cidr ; SBLnnn")
        Feed {
            path: "spamhaus/drop_2015.txt",
            hint: IndicatorType::Ipv4,
            take: first_field(' '),
            expected: 737,
        },
        // grep -v '^#' bambenek/c2-dommasterlist.txt | grep -c .
        Feed {
            path: "bambenek/c2-dommasterlist.txt",
            hint: IndicatorType::Fqdn,
            take: first_field(','),
            expected: 15,
        },
        // grep -v '^#' ipsum/ipsum.txt | grep -c .
        Feed {
            path: "ipsum/ipsum.txt",
            hint: IndicatorType::Ipv4,
            take: first_field(' '),
            expected: 30706,
        },
    ];
    let mut all = Vec::new();
    for f in &feeds {
        let text = std::fs::read_to_string(root.join(f.path)).unwrap_or_default();
        let mut ok = 0;
        let mut bad = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some(v) = (f.take)(line) else { continue };
            match normalize(v, Some(f.hint)) {
                Ok(n) => {
                    ok += 1;
                    let again = normalize(&n.value, Some(f.hint));
                    assert_eq!(
                        again.as_ref(),
                        Ok(&n),
                        "{}: not idempotent on {v:?}",
                        f.path
                    );
                    all.push(Indicator::new(n.value, n.itype, f.path));
                }
                Err(e) => bad.push(format!("{v:?}: {e}")),
            }
        }
        eprintln!(
            "{}: {ok} normalised, {} rejected {:?}",
            f.path,
            bad.len(),
            bad.iter().take(3).collect::<Vec<_>>()
        );
        if f.expected > 0 {
            assert_eq!(ok, f.expected, "{}: rejected {bad:?}", f.path);
        }
        assert!(bad.is_empty(), "{}: rejected {bad:?}", f.path);
    }
    let naive = NaiveMatcher::new(all.clone());
    let mut b = SnapshotBuilder::new();
    for i in all {
        b.insert(i);
    }
    let snap = b.build().expect("build");
    assert_eq!(snap.len(), naive.indicators.len());
    for (id, ind) in naive.indicators.iter().enumerate() {
        // The naive matcher scans everything: compare it on every 37th indicator only.
        let compare = id % 37 == 0;
        let mut h = Vec::new();
        let mut n = Vec::new();
        match ind.itype {
            IndicatorType::Fqdn => {
                snap.match_domain(&ind.value, &mut h);
                if compare {
                    naive.match_domain(&ind.value, &mut n);
                }
            }
            IndicatorType::Url => {
                snap.match_url(&ind.value, &mut h);
                if compare {
                    naive.match_url(&ind.value, &mut n);
                }
            }
            _ => {
                let (net, _) = matcher::normalize::parse_cidr(&ind.value).expect("cidr");
                snap.match_ip(net, &mut h);
                if compare {
                    naive.match_ip(net, &mut n);
                }
            }
        }
        // Ids differ (the snapshot numbers domains in label-reversed order): compare by
        // what the ids name.
        if compare {
            let mut hs: Vec<_> = h
                .iter()
                .map(|x| (snap.indicator(x.id).value, x.kind))
                .collect();
            let mut ns: Vec<_> = n
                .iter()
                .map(|x| (naive.indicators[x.id as usize].value.clone(), x.kind))
                .collect();
            hs.sort();
            ns.sort();
            assert_eq!(hs, ns, "{}", ind.value);
        }
        let own = snap.find(ind.itype, &ind.value);
        assert!(
            h.iter().any(|x| Some(x.id) == own
                && matches!(x.kind, MatchKind::Exact | MatchKind::EnclosingCidr)),
            "{} does not find itself",
            ind.value
        );
    }
}
