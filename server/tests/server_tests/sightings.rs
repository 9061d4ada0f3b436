//! Sightings pushed by sensors (`POST /v1/sightings`) on both stores: checked item by item,
//! stored once per batch id (replays and concurrent copies change nothing), aggregated per
//! indicator and shown in searches, CIF searches, feeds (`seen_within`) and the web page only
//! to tokens that may see both the indicator and the sending token's groups.

use crate::harness::{get, grant, on_both_stores, send, Backend, Server};
use crate::web::Browser;
use matcher::Tlp;
use serde_json::{json, Value};
use server::config::ServerConfig;

fn server(backend: Backend) -> Server {
    Server::start_on(backend, ServerConfig::default())
}

/// A token that may post sightings (the write right) for a sensor in `groups`.
fn sensor_token(s: &Server, user: &str, groups: &[&str]) -> String {
    let mut g = grant(user, groups, Tlp::Green);
    g.write = true;
    g.read = true;
    s.token(g)
}

fn batch(id: &str, sensor: &str, items: Value) -> Vec<u8> {
    json!({"batch_id": id, "sensor": sensor, "sightings": items})
        .to_string()
        .into_bytes()
}

fn post(s: &Server, token: &str, body: &[u8]) -> crate::harness::Answer {
    send("POST", &format!("{}/v1/sightings", s.url), token, body)
}

fn iso(t: i64) -> String {
    server::query::format_time(t).unwrap()
}

/// The `sightings` object of `value`'s row in a `/v1/search` by `token` (Null: none shown;
/// panics when the row itself is not visible).
fn sightings_of(s: &Server, token: &str, value: &str) -> Value {
    let a = get(
        &format!("{}/v1/search?q={value}&nolog=1", s.url),
        Some(token),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let rows = a.json["data"].as_array().cloned().unwrap_or_default();
    let row = rows
        .iter()
        .find(|r| r["value"] == value)
        .unwrap_or_else(|| panic!("{value} not visible: {}", a.text));
    row["sightings"].clone()
}

const ID1: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const ID2: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const ID3: &str = "a3bb189e8bf9388899912ace4e6543002";
const ID4: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

on_both_stores! {
    fn a_batch_is_stored_once_and_bad_items_are_named(backend) {
        let s = server(backend);
        let sensor = sensor_token(&s, "ids-1", &["everyone"]);
        let reader = s.reader(&["everyone"], Tlp::Green);
        let now = server::http::now();
        let body = batch(ID1, "ids-1", json!([
            {"itype": "fqdn", "value": "Public.Example.", "count": 3,
             "first_seen": iso(now - 600), "last_seen": iso(now - 60),
             "clients": ["10.0.0.7", "10.0.0.8"]},
            {"itype": "ipv4", "value": "198.51.100.0/24", "count": 2, "last_seen": now - 30},
            {"itype": "ipv4", "value": "999.1.1.1", "count": 1, "last_seen": now},
            {"itype": "fqdn", "value": "x.example", "count": -1, "last_seen": now},
            {"itype": "fqdn", "value": "com", "count": 1, "last_seen": now},
        ]));
        let first = post(&s, &sensor, &body);
        assert_eq!(first.status, 200, "{}", first.text);
        let d = &first.json["data"];
        assert_eq!((d["items"].as_u64(), d["accepted"].as_u64(), d["refused"].as_u64()),
            (Some(5), Some(2), Some(3)), "{}", first.text);
        let errors: Vec<&str> = d["errors"].as_array().unwrap().iter()
            .map(|e| e.as_str().unwrap()).collect();
        assert!(errors[0].starts_with("item 2: ") && errors[1].starts_with("item 3: count"),
            "{errors:?}");
        assert!(errors[2].starts_with("item 4: "), "{errors:?}");
        let seen = sightings_of(&s, &reader, "public.example");
        assert_eq!(seen["count"], 3, "{seen}");
        assert_eq!(seen["sensors"], 1);
        assert_eq!(seen["first_seen"], iso(now - 600));
        assert_eq!(seen["last_seen"], iso(now - 60));
        assert_eq!(sightings_of(&s, &reader, "198.51.100.0/24")["count"], 2);
        // The same batch again (a sensor that never got the answer): the same answer, marked,
        // and nothing counted twice.
        let again = post(&s, &sensor, &body);
        assert_eq!(again.status, 200);
        assert_eq!(again.text, first.text);
        assert_eq!(again.retry_after, None);
        assert_eq!(sightings_of(&s, &reader, "public.example")["count"], 3);
        // The id written another way is the same batch.
        let upper = batch(&ID1.to_uppercase().replace('-', ""), "ids-1", json!([
            {"itype": "fqdn", "value": "public.example", "count": 100, "last_seen": now},
        ]));
        assert_eq!(post(&s, &sensor, &upper).text, first.text);
        assert_eq!(sightings_of(&s, &reader, "public.example")["count"], 3);
        // A new batch adds up; a second sensor counts as a second sensor.
        let other = sensor_token(&s, "ids-2", &["everyone"]);
        let b2 = batch(ID2, "ids-2", json!([
            {"itype": "fqdn", "value": "public.example", "count": 4,
             "first_seen": now - 7200, "last_seen": now - 3600},
        ]));
        assert_eq!(post(&s, &other, &b2).status, 200);
        let seen = sightings_of(&s, &reader, "public.example");
        assert_eq!((seen["count"].as_u64(), seen["sensors"].as_u64()), (Some(7), Some(2)));
        assert_eq!(seen["first_seen"], iso(now - 7200));
        assert_eq!(seen["last_seen"], iso(now - 60));
        // An indicator nobody sighted carries no sightings object.
        assert_eq!(sightings_of(&s, &reader, "44d88612fea8a8f36de82e1278abb02f"), Value::Null);
        // The fleet view: a sensor's row (made by its pulls) notes its last batch's arrival;
        // a sensor that never pulled has no row to note it on.
        let pulled = |name: &str, user: &str| server::store::FleetSensor {
            name: name.into(),
            user: user.into(),
            grant_key: "0123456789abcdef".into(),
            release: String::new(),
            version: "0.1.0".into(),
            first_pull: now,
            last_pull: now,
            pulls: 1,
            last_sighting_batch: None,
        };
        s.store.record_pull(&pulled("ids-2", "ids-2")).unwrap();
        let b3 = batch(ID4, "ids-2", json!([
            {"itype": "fqdn", "value": "public.example", "count": 1, "last_seen": now},
        ]));
        assert_eq!(post(&s, &other, &b3).status, 200);
        let rows = s.store.fleet_sensors().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let noted = rows[0].last_sighting_batch.expect("the batch noted on the fleet row");
        assert!((now - 5..=now + 5).contains(&noted), "{noted} vs {now}");
    }

    fn bad_batches_and_tokens_are_refused_whole_and_never_500(backend) {
        let s = server(backend);
        let sensor = sensor_token(&s, "ids-1", &["everyone"]);
        let reader = s.reader(&["everyone"], Tlp::Green);
        let now = server::http::now();
        let one = json!([{"itype": "fqdn", "value": "public.example", "last_seen": now}]);
        let url = format!("{}/v1/sightings", s.url);
        // No token, a read-only token, the CIF path: refused.
        assert_eq!(crate::harness::answer_of(ureq::post(&url).send_bytes(&batch(ID1, "a", one.clone()))).status, 401);
        assert_eq!(post(&s, &reader, &batch(ID1, "a", one.clone())).status, 401);
        assert_eq!(send("POST", &format!("{}/sightings", s.url), &sensor,
            &batch(ID1, "a", one.clone())).status, 404);
        for (body, status, says) in [
            (b"not json".to_vec(), 400, "body"),
            (b"[]".to_vec(), 400, "body"),
            (batch("123", "a", one.clone()), 400, "batch_id"),
            (batch(ID3, "a", one.clone()), 400, "batch_id"),
            (batch(ID1, "bad name!", one.clone()), 400, "sensor"),
            (batch(ID1, "", one.clone()), 400, "sensor"),
            (json!({"batch_id": ID1, "sensor": "a", "sightings": {}}).to_string().into_bytes(),
                400, "sightings"),
            (batch(ID1, "a", Value::Array(vec![json!(1); 10_001])), 413, "at most 10000"),
        ] {
            let a = post(&s, &sensor, &body);
            assert_eq!(a.status, status, "{}", a.text);
            assert!(a.json["message"].as_str().unwrap().contains(says), "{}", a.text);
        }
        // Nothing of those was stored: the id is still free.
        let a = post(&s, &sensor, &batch(ID1, "a", one));
        assert_eq!(a.json["data"]["accepted"], 1, "{}", a.text);
        // Hostile items: each refused with a reason, never a 500.
        let hostile = json!([
            {"itype": "fqdn", "value": "' OR 1=1 --", "last_seen": now},
            {"itype": "nonsense", "value": "x.example", "last_seen": now},
            {"itype": "fqdn", "value": "x.example", "last_seen": "yesterday"},
            {"itype": "fqdn", "value": "x.example", "last_seen": now + 90 * 86_400},
            {"itype": "fqdn", "value": "x.example", "last_seen": now, "clients": "10.0.0.1"},
            {"itype": "fqdn", "value": "x.example", "last_seen": now, "count": 1e30},
            {"itype": "fqdn", "value": "x.example"},
            {"itype": "fqdn", "value": "a".repeat(5000), "last_seen": now},
            {"value": ["x"]},
            null,
        ]);
        let a = post(&s, &sensor, &batch(ID2, "a", hostile));
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!((a.json["data"]["accepted"].as_u64(), a.json["data"]["refused"].as_u64()),
            (Some(0), Some(10)), "{}", a.text);
    }

    fn sightings_follow_the_senders_groups_and_the_indicators_rules(backend) {
        let s = server(backend);
        let csirt_sensor = sensor_token(&s, "ids-csirt", &["csirt"]);
        let public_sensor = sensor_token(&s, "ids-pub", &["everyone"]);
        let everyone = s.reader(&["everyone"], Tlp::Green);
        let both = s.reader(&["csirt", "everyone"], Tlp::Green);
        let now = server::http::now();
        let items = json!([
            {"itype": "fqdn", "value": "public.example", "count": 5, "last_seen": now},
            {"itype": "fqdn", "value": "csirt-only.example", "count": 1, "last_seen": now},
        ]);
        assert_eq!(post(&s, &csirt_sensor, &batch(ID1, "ids-csirt", items)).status, 200);
        // A csirt sensor's sighting of a public indicator: only csirt members see it.
        assert_eq!(sightings_of(&s, &everyone, "public.example"), Value::Null);
        assert_eq!(sightings_of(&s, &both, "public.example")["count"], 5);
        // The csirt indicator's row stays hidden, sightings or not.
        let a = get(&format!("{}/v1/search?q=csirt-only.example&nolog=1", s.url), Some(&everyone));
        assert!(a.values().is_empty(), "{}", a.text);
        assert_eq!(sightings_of(&s, &both, "csirt-only.example")["count"], 1);
        // A public sensor's sighting is public; csirt members see the sum.
        let items = json!([{"itype": "fqdn", "value": "public.example", "count": 2, "last_seen": now}]);
        assert_eq!(post(&s, &public_sensor, &batch(ID2, "ids-pub", items)).status, 200);
        assert_eq!(sightings_of(&s, &everyone, "public.example")["count"], 2);
        let seen = sightings_of(&s, &both, "public.example");
        assert_eq!((seen["count"].as_u64(), seen["sensors"].as_u64()), (Some(7), Some(2)));
        // CIF's search carries the same object, by the same rule.
        let cif = get(&format!("{}/search?q=public.example&nolog=1", s.url), Some(&everyone));
        assert_eq!(cif.json["data"][0]["sightings"]["count"], 2, "{}", cif.text);
        // Feeds: seen_within keeps only what this token saw sighted in the window.
        let feed = |t: &str, q: &str| {
            let a = get(&format!("{}/v1/feed?itype=fqdn&{q}", s.url), Some(t));
            assert_eq!(a.status, 200, "{}", a.text);
            a.values()
        };
        assert_eq!(feed(&everyone, "seen_within=7d"), vec!["public.example"]);
        assert_eq!(feed(&both, "seen_within=7"), vec!["csirt-only.example", "public.example"]);
        // Without it, the unsighted mixed.example too.
        assert_eq!(feed(&both, "").len(), 3);
        let rows = get(&format!("{}/v1/feed?itype=fqdn&seen_within=1d", s.url), Some(&both));
        assert_eq!(rows.json["data"][0]["sightings"]["sensors"].as_u64().unwrap()
            + rows.json["data"][1]["sightings"]["sensors"].as_u64().unwrap(), 3, "{}", rows.text);
        assert_eq!(get(&format!("{}/v1/feed?itype=fqdn&seen_within=soon", s.url),
            Some(&everyone)).status, 400);
        // An old sighting falls out of a short window but not a long one.
        let old = json!([{"itype": "ipv4", "value": "198.51.100.0/24", "count": 1,
            "last_seen": now - 30 * 86_400}]);
        assert_eq!(post(&s, &public_sensor, &batch(ID3.get(1..).unwrap(), "ids-pub", old)).status, 200);
        let ips = |q: &str| get(&format!("{}/v1/feed?itype=ipv4&{q}", s.url), Some(&everyone)).values();
        assert!(ips("seen_within=7d").is_empty());
        assert_eq!(ips("seen_within=60d"), vec!["198.51.100.0/24"]);
        // The web page shows them.
        let mut b = Browser::new(&s);
        b.sign_in(&both);
        let p = b.search("public.example", true);
        assert!(p.text.contains("<th>Sightings</th>"), "{}", p.text);
        assert!(p.text.contains("7 by 2 sensor(s), last "), "{}", p.text);
    }

    fn concurrent_copies_of_a_batch_count_once(backend) {
        let s = server(backend);
        let sensor = sensor_token(&s, "ids-1", &["everyone"]);
        let reader = s.reader(&["everyone"], Tlp::Green);
        let now = server::http::now();
        let body = batch(ID1, "ids-1", json!([
            {"itype": "fqdn", "value": "public.example", "count": 9, "last_seen": now},
        ]));
        let answers: Vec<String> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..6).map(|_| sc.spawn(|| post(&s, &sensor, &body))).collect();
            hs.into_iter().map(|h| {
                let a = h.join().unwrap();
                assert_eq!(a.status, 200, "{}", a.text);
                a.text
            }).collect()
        });
        assert!(answers.iter().all(|a| *a == answers[0]));
        assert_eq!(sightings_of(&s, &reader, "public.example")["count"], 9);
    }
}
