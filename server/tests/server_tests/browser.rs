//! The web page in a real headless Chromium (`tests/common/webdriver.rs`, shared with the
//! CLI's report test): sign in, type a search, submit, read the table.

use crate::harness::Server;
use matcher::Tlp;
use server::config::ServerConfig;

#[path = "../../../tests/common/webdriver.rs"]
mod webdriver;
use webdriver::{call, Driver};

/// Sign in with `token` and search `values` from the page, as an analyst would.
fn sign_in_and_search(d: &Driver, base: &str, token: &str, values: &str) {
    // A fresh session: no cookie of an earlier sign-in.
    call("DELETE", &d.at("/cookie"), None);
    d.open(base);
    d.type_into("input[name=token]", token);
    d.click("form[action='/web/login'] button");
    d.type_into("textarea[name=q]", values);
    d.click("input[name=nolog]");
    d.click("#search");
}

#[test]
fn headless_chromium_signs_in_searches_and_sees_only_its_groups_rows() {
    let s = Server::start(ServerConfig::default());
    let csirt = s.reader(&["csirt"], Tlp::Green);
    let outsider = s.reader(&["everyone"], Tlp::Red);
    let d = Driver::start();

    sign_in_and_search(
        &d,
        &s.url,
        &csirt,
        "csirt-only.example\nnothing-here.example",
    );
    let summary = d.text("#summary");
    assert!(
        summary.contains("2 value(s) searched, 1 match(es)"),
        "{summary}"
    );
    let table = d.text("#results");
    assert!(table.contains("csirt-only.example"), "{table}");
    assert!(table.contains("csirt"), "{table}");
    assert_eq!(d.count("#results tbody tr"), 1);
    assert!(d.text("#missed").contains("nothing-here.example"));
    // The search box keeps what was searched; the token is in no URL.
    let url = call("GET", &d.at("/url"), None);
    assert!(!url.to_string().contains(&csirt), "{url}");

    // Another analyst in the same browser: the outsider sees no row for the same value.
    sign_in_and_search(&d, &s.url, &outsider, "csirt-only.example");
    assert!(d
        .text("#summary")
        .contains("1 value(s) searched, 0 match(es)"));
    assert!(!d.source().contains("id=\"results\""));
    assert!(d.text("#missed").contains("csirt-only.example"));
    s.app.intel.flush_searches().unwrap();
    assert!(
        s.store.searches().unwrap().is_empty(),
        "the ticked box kept both searches out of the log"
    );

    // The Fleet page: linked for an admin only, every value escaped, a silent sensor stale.
    assert_eq!(d.count("#fleet-link"), 0, "a reader gets no Fleet link");
    d.open(&format!("{}/web/fleet", s.url));
    assert!(d.source().contains("admin tokens only"));
    s.store
        .record_pull(&server::store::FleetSensor {
            name: "ids<b>1</b>".into(),
            user: "branch".into(),
            grant_key: "0123456789abcdef".into(),
            release: "3-0123456789ab".into(),
            version: "0.1.0".into(),
            first_pull: 1_000,
            last_pull: 1_000,
            pulls: 1,
            last_sighting_batch: None,
        })
        .unwrap();
    let mut g = crate::harness::grant("ops", &[], Tlp::Red);
    g.admin = true;
    let admin = s.token(g);
    sign_in_and_search(&d, &s.url, &admin, "csirt-only.example");
    assert!(d.text("#summary").contains("1 value(s) searched"));
    d.click("#fleet-link");
    let summary = d.text("#fleet-summary");
    assert!(summary.contains("1 sensor(s), 1 stale"), "{summary}");
    let table = d.text("#fleet");
    for cell in [
        "ids<b>1</b>",
        "branch",
        "3-0123456789ab",
        "stale",
        "0.1.0",
        "never",
    ] {
        assert!(table.contains(cell), "{cell} not in {table}");
    }
    assert_eq!(
        d.count("#fleet b"),
        0,
        "a sensor name is text, never markup"
    );
    assert_eq!(d.count("#fleet tbody tr"), 1);
}
