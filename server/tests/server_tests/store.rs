//! The SQLite store: migrations (an old store upgraded in place), tokens, submissions and
//! the search log.

use matcher::{Indicator, IndicatorType, Tlp};
use server::store::sqlite::SqliteStore;
use server::store::{LoggedSearch, Store, MIGRATIONS};
use server::token::{Grant, Secret};

fn grant(user: &str) -> Grant {
    Grant {
        user: user.into(),
        groups: vec!["csirt".into(), "everyone".into()],
        read: true,
        write: true,
        admin: false,
        max_tlp: Tlp::Amber,
        itypes: vec![IndicatorType::Fqdn, IndicatorType::Ipv4],
        expires: Some(2_000_000_000),
    }
}

#[test]
fn a_version_one_store_is_upgraded_in_place_keeping_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let secret = Secret::generate().unwrap();
    {
        // A store as the first release wrote it: schema version 1, one token.
        let old = SqliteStore::open_with(&path, &MIGRATIONS[..1]).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);
        old.create_token(&secret.hash(), &grant("alice"), 100)
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    let t = s.token(&secret.hash()).unwrap().expect("token kept");
    assert_eq!(t.grant, grant("alice"));
    // The new tables work.
    let ind = Indicator::new("evil.example", IndicatorType::Fqdn, "trawl-serve");
    s.add_submissions(&[ind], 5).unwrap();
    assert_eq!(s.submissions(5).unwrap().len(), 1);
    // Opening again changes nothing.
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    assert_eq!(s.tokens().unwrap().len(), 1);
}

#[test]
fn a_store_from_a_newer_trawl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    drop(store_at_version_99(&path));
    let e = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("newer"), "{e}");
}

/// A store whose schema_version says 99, written through the store's own migration path.
fn store_at_version_99(path: &std::path::Path) -> SqliteStore {
    let mut steps: Vec<&str> = MIGRATIONS.to_vec();
    while steps.len() < 99 {
        steps.push("SELECT 1;");
    }
    SqliteStore::open_with(path, &steps).unwrap()
}

#[test]
fn tokens_are_stored_as_hashes_and_revoked_by_token_or_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let s = SqliteStore::open(&path).unwrap();
    let a = Secret::generate().unwrap();
    let b = Secret::generate().unwrap();
    let c = Secret::generate().unwrap();
    s.create_token(&a.hash(), &grant("alice"), 1).unwrap();
    s.create_token(&b.hash(), &grant("alice"), 2).unwrap();
    s.create_token(&c.hash(), &grant("bob"), 3).unwrap();
    assert!(s
        .token(&Secret::presented("nope").hash())
        .unwrap()
        .is_none());
    // The secret itself is nowhere in the file.
    drop(s);
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("server.db-wal")).unwrap_or_default();
    for secret in [&a, &b, &c] {
        let needle = secret.expose().as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        assert!(!wal.windows(needle.len()).any(|w| w == needle));
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.revoke_hash(&c.hash()).unwrap(), 1);
    assert_eq!(s.revoke_hash(&c.hash()).unwrap(), 0);
    assert_eq!(s.revoke_user("alice").unwrap(), 2);
    assert!(s.tokens().unwrap().iter().all(|t| t.revoked));
    assert!(s.token(&a.hash()).unwrap().unwrap().revoked);
}

#[test]
fn submissions_expire_and_delete_and_searches_count_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("server.db")).unwrap();
    let (g0, h0) = s.generations().unwrap();
    let mut a = Indicator::new("a.example", IndicatorType::Fqdn, "trawl-serve");
    a.expires = Some(100);
    let b = Indicator::new("198.51.100.7", IndicatorType::Ipv4, "trawl-serve");
    s.add_submissions(&[a, b], 10).unwrap();
    assert_eq!(s.submissions(50).unwrap().len(), 2);
    assert_eq!(s.submissions(100).unwrap().len(), 1);
    assert_eq!(
        s.delete_submissions(Some(IndicatorType::Fqdn), "198.51.100.7")
            .unwrap(),
        0
    );
    assert_eq!(s.delete_submissions(None, "198.51.100.7").unwrap(), 1);
    let (g1, h1) = s.generations().unwrap();
    assert!(g1 > g0);
    assert_eq!(h1, h0);
    let search = |user: &str, t: i64| LoggedSearch {
        value: "evil.example".into(),
        itype: IndicatorType::Fqdn,
        user: user.into(),
        groups: vec!["everyone".into()],
        tlp: Tlp::Green,
        count: 1,
        first_seen: t,
        last_seen: t,
    };
    s.log_search(&search("alice", 5)).unwrap();
    s.log_search(&search("alice", 9)).unwrap();
    s.log_search(&search("bob", 7)).unwrap();
    let logged = s.searches().unwrap();
    assert_eq!(logged.len(), 2);
    let alice = logged.iter().find(|l| l.user == "alice").unwrap();
    assert_eq!((alice.count, alice.first_seen, alice.last_seen), (2, 5, 9));
    assert!(s.generations().unwrap().1 > h1);
}
