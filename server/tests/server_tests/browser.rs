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
}
