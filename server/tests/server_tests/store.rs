//! The store on SQLite and on PostgreSQL: migrations (an old store upgraded in place, a newer
//! one refused), tokens, submissions and the search log, two handles sharing one store.

use crate::harness::{on_both_stores, Backend, Db};
use matcher::{Indicator, IndicatorType, Tlp};
use server::store::{FleetSensor, LoggedSearch, MIGRATIONS};
use server::token::{Grant, Secret};
use std::path::Path;

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

/// Whether `needle` occurs in any file under `dir`.
fn found_in_files(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            found_in_files(&p, needle)
        } else {
            let bytes = std::fs::read(&p).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

on_both_stores! {
    fn a_version_one_store_is_upgraded_in_place_keeping_its_tokens(backend) {
        let db = Db::new(backend);
        let secret = Secret::generate().unwrap();
        {
            // A store as the first release wrote it: schema version 1, one token.
            let old = db.open_with(&MIGRATIONS[..1]).unwrap();
            assert_eq!(old.schema_version().unwrap(), 1);
            old.create_token(&secret.hash(), &grant("alice"), 100).unwrap();
        }
        let s = db.open();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
        let t = s.token(&secret.hash()).unwrap().expect("token kept");
        assert_eq!(t.grant, grant("alice"));
        // The new tables work.
        let ind = Indicator::new("evil.example", IndicatorType::Fqdn, "trawl-serve");
        s.add_submissions(&[ind], 5).unwrap();
        assert_eq!(s.submissions(5).unwrap().len(), 1);
        // Opening again changes nothing.
        drop(s);
        let s = db.open();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
        assert_eq!(s.tokens().unwrap().len(), 1);
    }

    fn a_store_from_a_newer_trawl_is_refused(backend) {
        let db = Db::new(backend);
        // A store whose schema_version says 99, written through the store's own migrations.
        let mut steps: Vec<&str> = MIGRATIONS.to_vec();
        while steps.len() < 99 {
            steps.push("SELECT 1;");
        }
        drop(db.open_with(&steps).unwrap());
        let Err(e) = db.open_with(MIGRATIONS) else {
            panic!("a store of version 99 was opened");
        };
        let e = e.to_string();
        assert!(e.contains("newer") && e.contains("99"), "{e}");
    }

    fn tokens_are_stored_as_hashes_and_revoked_by_token_or_user(backend) {
        let db = Db::new(backend);
        let s = db.open();
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        let c = Secret::generate().unwrap();
        let ta = s.create_token(&a.hash(), &grant("alice"), 1).unwrap();
        let tb = s.create_token(&b.hash(), &grant("alice"), 2).unwrap();
        s.create_token(&c.hash(), &grant("bob"), 3).unwrap();
        assert!(tb.id > ta.id, "ids number tokens in order");
        assert!(s.token(&Secret::presented("nope").hash()).unwrap().is_none());
        // The secret itself is nowhere in what the database wrote.
        drop(s);
        let written: &Path = match &db.cluster {
            Some(cluster) => {
                let mut c = postgres::Client::connect(&db.location, postgres::NoTls).unwrap();
                c.batch_execute("CHECKPOINT").unwrap();
                cluster.data_dir()
            }
            None => db.dir.path(),
        };
        for secret in [&a, &b, &c] {
            assert!(!found_in_files(written, secret.expose().as_bytes()));
        }
        // ... but its hash is (the test can find what it looks for).
        assert!(found_in_files(written, a.hash().to_hex().as_bytes()));
        let s = db.open();
        assert_eq!(s.revoke_hash(&c.hash()).unwrap(), 1);
        assert_eq!(s.revoke_hash(&c.hash()).unwrap(), 0);
        assert_eq!(s.revoke_user("alice").unwrap(), 2);
        assert!(s.tokens().unwrap().iter().all(|t| t.revoked));
        let got = s.token(&a.hash()).unwrap().unwrap();
        assert!(got.revoked);
        assert_eq!(got.grant, grant("alice"));
    }

    fn submissions_expire_and_delete_and_searches_count_up(backend) {
        // The Db holds the PostgreSQL cluster: kept alive for the whole test.
        let db = Db::new(backend);
        let s = db.open();
        let (g0, h0) = s.generations().unwrap();
        let mut a = Indicator::new("a.example", IndicatorType::Fqdn, "trawl-serve");
        a.expires = Some(100);
        let b = Indicator::new("198.51.100.7", IndicatorType::Ipv4, "trawl-serve");
        let ids = s.add_submissions(&[a, b], 10).unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids[1] > ids[0]);
        assert_eq!(s.submissions(50).unwrap().len(), 2);
        assert_eq!(s.submissions(100).unwrap().len(), 1);
        assert_eq!(
            s.delete_submissions(Some(IndicatorType::Fqdn), "198.51.100.7").unwrap(),
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
        s.log_searches(&[search("alice", 5), search("alice", 9)])
            .unwrap();
        let h2 = s.generations().unwrap().1;
        assert_eq!(h2, h1 + 1, "one batch, one generation");
        s.log_searches(&[search("alice", 7), search("bob", 7)])
            .unwrap();
        s.log_searches(&[]).unwrap();
        let logged = s.searches().unwrap();
        assert_eq!(logged.len(), 2);
        let alice = logged.iter().find(|l| l.user == "alice").unwrap();
        assert_eq!((alice.count, alice.first_seen, alice.last_seen), (3, 5, 9));
        assert!(s.generations().unwrap().1 > h1);
    }

    fn two_handles_on_one_store_see_each_others_writes(backend) {
        // What two replicas (or the server and `trawl token`) sharing one database rely on.
        let db = Db::new(backend);
        let (one, two) = (db.open(), db.open());
        let secret = Secret::generate().unwrap();
        one.create_token(&secret.hash(), &grant("alice"), 1).unwrap();
        assert!(two.token(&secret.hash()).unwrap().is_some());
        let (g0, _) = one.generations().unwrap();
        two.add_submissions(&[Indicator::new("x.example", IndicatorType::Fqdn, "w")], 1)
            .unwrap();
        assert!(one.generations().unwrap().0 > g0);
        assert_eq!(one.submissions(1).unwrap().len(), 1);
        assert_eq!(two.revoke_user("alice").unwrap(), 1);
        assert!(one.token(&secret.hash()).unwrap().unwrap().revoked);
        assert_eq!(backend == Backend::Postgres, db.cluster.is_some());
    }

    fn fleet_pulls_upsert_one_row_per_sensor_and_user(backend) {
        let db = Db::new(backend);
        let (one, two) = (db.open(), db.open());
        let pull = |name: &str, user: &str, release: &str, t: i64| FleetSensor {
            name: name.into(),
            user: user.into(),
            grant_key: "0123456789abcdef".into(),
            release: release.into(),
            version: "0.1.0".into(),
            first_pull: t,
            last_pull: t,
            pulls: 1,
            last_sighting_batch: None,
        };
        one.record_pull(&pull("ids-1", "branch", "", 10)).unwrap();
        two.record_pull(&pull("ids-1", "branch", "1-0123456789ab", 20)).unwrap();
        one.record_pull(&pull("ids-1", "hq", "", 30)).unwrap();
        let rows = two.fleet_sensors().unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let first = &rows[0];
        assert_eq!((first.name.as_str(), first.user.as_str()), ("ids-1", "branch"));
        assert_eq!(first.release, "1-0123456789ab");
        assert_eq!((first.first_pull, first.last_pull, first.pulls), (10, 20, 2));
        assert_eq!(first.last_sighting_batch, None);
        assert_eq!(rows[1].user, "hq");
    }
}

#[test]
fn the_database_key_picks_the_store() {
    use server::store::Location;
    let data = Path::new("/var/lib/trawl");
    assert_eq!(
        Location::new(data, None),
        Location::Sqlite(data.join("server.db"))
    );
    assert_eq!(
        Location::new(data, Some(Path::new("other.db"))),
        Location::Sqlite(data.join("other.db"))
    );
    for url in [
        "postgres://trawl@db:5432/trawl",
        "postgresql://trawl@db/trawl?sslmode=disable",
    ] {
        assert_eq!(
            Location::new(data, Some(Path::new(url))),
            Location::Postgres(url.into())
        );
    }
}
