//! The analyst web page over a real socket, as a browser speaks to it (forms, a cookie):
//! sign-in, the CSP and the other headers, escaping of hostile submitted values, CSRF and
//! Origin checks, privilege (a token without the group gets no row), the "don't log" box, and
//! feed downloads.

use crate::harness::{grant, send, Server};
use matcher::Tlp;
use server::config::ServerConfig;

/// A browser-like client: no redirects followed, the session cookie kept by hand.
pub struct Browser {
    agent: ureq::Agent,
    base: String,
    pub cookie: Option<String>,
}

/// One page as received.
pub struct Page {
    pub status: u16,
    pub text: String,
    pub header: std::collections::HashMap<String, String>,
}

impl Page {
    /// The CSRF token in the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .expect("a form with a csrf field")
            + "name=\"csrf\" value=\"".len();
        self.text[at..].chars().take_while(|c| *c != '"').collect()
    }
}

fn page(r: Result<ureq::Response, ureq::Error>) -> Page {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let header = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.all(&n).join("\n");
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    Page {
        status: resp.status(),
        header,
        text: resp.into_string().unwrap_or_default(),
    }
}

impl Browser {
    pub fn new(s: &Server) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: s.url.clone(),
            cookie: None,
        }
    }

    fn req(&self, method: &str, path: &str) -> ureq::Request {
        let mut r = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.set("Cookie", c);
        }
        r
    }

    pub fn get(&self, path: &str) -> Page {
        page(self.req("GET", path).call())
    }

    /// A form POST as the page sends it (with this server's Origin).
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        page(
            self.req("POST", path)
                .set("Origin", &self.base)
                .send_form(fields),
        )
    }

    /// Sign in with `token`; the cookie is kept when the server sets one.
    pub fn sign_in(&mut self, token: &str) -> Page {
        let p = self.post("/web/login", &[("token", token)]);
        if let Some(c) = p.header.get("set-cookie") {
            self.cookie = c.split(';').next().map(str::to_string);
        }
        p
    }

    /// Search `q` from the signed-in page.
    pub fn search(&self, q: &str, nolog: bool) -> Page {
        let csrf = self.get("/").csrf();
        let mut f = vec![("csrf", csrf.as_str()), ("q", q)];
        if nolog {
            f.push(("nolog", "1"));
        }
        self.post("/web/search", &f)
    }
}

fn server() -> Server {
    Server::start(ServerConfig::default())
}

#[test]
fn sign_in_sets_a_strict_cookie_and_every_page_a_strict_csp() {
    let s = server();
    let t = s.reader(&["everyone"], Tlp::Green);
    let mut b = Browser::new(&s);
    let home = b.get("/");
    assert_eq!(home.status, 200);
    assert!(home.text.contains("action=\"/web/login\""), "{}", home.text);
    let csp = &home.header["content-security-policy"];
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!home.text.contains("<script"), "no script on the page");
    assert!(!home.text.contains("http://") && !home.text.contains("https://"));
    let css = b.get("/web/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header["content-type"].starts_with("text/css"));
    // A wrong token: 401, no cookie.
    let bad = b.sign_in("0123abcd");
    assert_eq!(bad.status, 401);
    assert!(!bad.header.contains_key("set-cookie"));
    assert!(bad.text.contains("unauthorized"), "{}", bad.text);
    // The right one: a redirect home and an HttpOnly, SameSite=Strict cookie (no Secure on
    // plain HTTP).
    let ok = b.sign_in(&t);
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header["location"], "/");
    let c = &ok.header["set-cookie"];
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
        "{c}"
    );
    assert!(!c.contains("Secure"), "{c}");
    let home = b.get("/");
    assert_eq!(home.status, 200);
    assert!(
        home.text.contains("Signed in as <b>reader</b>"),
        "{}",
        home.text
    );
    assert!(
        !home.text.contains(&t),
        "the token never appears in the page"
    );
    // Every format of /v1/feed is offered.
    for f in [
        "snort", "suricata", "nftables", "rpz", "csv", "jsonl", "html",
    ] {
        assert!(home.text.contains(&format!("<option>{f}</option>")), "{f}");
    }
    // Signing out clears the cookie.
    let csrf = home.csrf();
    let out = b.post("/web/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 200);
    assert!(out.header["set-cookie"].contains("Max-Age=0"));
}

#[test]
fn submitted_markup_is_escaped_in_every_cell() {
    let s = server();
    let mut w = grant("writer<i>", &["everyone"], Tlp::Green);
    w.write = true;
    let writer = s.token(w);
    let body = br#"[{"indicator": "hostile.example", "tags": "<script>tag</script>,ok",
        "description": "<script>alert(1)</script> & \"quoted\" 'single'"}]"#;
    let r = send("POST", &format!("{}/v1/indicators", s.url), &writer, body);
    assert_eq!(r.status, 201, "{}", r.text);
    let mut b = Browser::new(&s);
    b.sign_in(&s.reader(&["everyone"], Tlp::Green));
    let p = b.search("hostile.example\n<script>alert(2)</script>", true);
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.header["content-security-policy"].contains("default-src 'none'"));
    assert!(
        p.text.contains("<td class=\"v\">hostile.example</td>"),
        "{}",
        p.text
    );
    assert!(
        p.text.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;single&#39;"
        ),
        "{}",
        p.text
    );
    assert!(p.text.contains("&lt;script&gt;tag&lt;/script&gt;"));
    assert!(p.text.contains("writer&lt;i&gt;"), "the provider escaped");
    // The bad value is named (escaped) and the page still renders.
    assert!(p.text.contains("&lt;script&gt;alert(2)"), "{}", p.text);
    assert!(!p.text.contains("<script"), "{}", p.text);
    assert!(!p.text.contains("<i>"));
}

#[test]
fn a_token_without_the_group_gets_no_row() {
    let s = server();
    let mut outsider = Browser::new(&s);
    outsider.sign_in(&s.reader(&["everyone"], Tlp::Red));
    let p = outsider.search("csirt-only.example, 203.0.113.9", true);
    assert_eq!(p.status, 200);
    assert!(!p.text.contains("<table id=\"results\""), "{}", p.text);
    assert!(p.text.contains("id=\"missed\""));
    assert!(
        p.text.contains("2 value(s) searched, 0 match(es)"),
        "{}",
        p.text
    );
    let mut member = Browser::new(&s);
    member.sign_in(&s.reader(&["csirt"], Tlp::Green));
    let p = member.search("csirt-only.example\r\n203.0.113.9", true);
    assert!(p.text.contains("<table id=\"results\""), "{}", p.text);
    assert!(p.text.contains("<td class=\"v\">csirt-only.example</td>"));
    assert!(p.text.contains("<td class=\"v\">203.0.113.9</td>"));
    assert!(
        p.text.contains("2 value(s) searched, 2 match(es)"),
        "{}",
        p.text
    );
    // TLP too: a green token sees no amber row.
    let p = member.search("amber-only.example", true);
    assert!(!p.text.contains("<table id=\"results\""));
}

#[test]
fn posts_need_the_session_csrf_token_and_this_origin() {
    let s = server();
    let mut b = Browser::new(&s);
    b.sign_in(&s.reader(&["everyone"], Tlp::Green));
    let csrf = b.get("/").csrf();
    assert_eq!(
        b.post("/web/search", &[("q", "public.example")]).status,
        403
    );
    assert_eq!(
        b.post("/web/search", &[("q", "public.example"), ("csrf", "0")])
            .status,
        403
    );
    // Another session's token does not fit.
    let mut other = Browser::new(&s);
    other.sign_in(&s.reader(&["everyone"], Tlp::Green));
    let theirs = other.get("/").csrf();
    assert_ne!(theirs, csrf);
    assert_eq!(
        b.post("/web/search", &[("q", "public.example"), ("csrf", &theirs)])
            .status,
        403
    );
    // The right token from another site's form.
    let r = page(
        b.req("POST", "/web/search")
            .set("Origin", "https://evil.example")
            .send_form(&[("q", "public.example"), ("csrf", &csrf)]),
    );
    assert_eq!(r.status, 403);
    // No session at all: the sign-in page.
    let anon = Browser::new(&s);
    let r = anon.post("/web/search", &[("q", "public.example"), ("csrf", &csrf)]);
    assert_eq!(r.status, 401);
    assert!(r.text.contains("/web/login"));
    assert_eq!(anon.get("/web/feed?itype=fqdn").status, 401);
    // A revoked token's cookie ends the session.
    let ok = b.post("/web/search", &[("q", "public.example"), ("csrf", &csrf)]);
    assert_eq!(ok.status, 200);
    s.store.revoke_user("reader").unwrap();
    let r = b.get("/");
    assert_eq!(r.status, 401);
    assert!(r.text.contains("revoked"), "{}", r.text);
    assert!(r.header["set-cookie"].contains("Max-Age=0"));
}

#[test]
fn searches_are_logged_unless_the_box_is_ticked() {
    let s = server();
    let mut b = Browser::new(&s);
    b.sign_in(&s.reader(&["everyone"], Tlp::Green));
    let p = b.search("public.example", true);
    assert!(p.text.contains("not logged"));
    // Searches are buffered and written at each refresh: flush before reading the store.
    s.app.intel.flush_searches().unwrap();
    assert!(s.store.searches().unwrap().is_empty());
    let p = b.search("public.example\nnever-listed.example", false);
    assert_eq!(p.status, 200);
    s.app.intel.flush_searches().unwrap();
    let mut logged: Vec<String> = s
        .store
        .searches()
        .unwrap()
        .into_iter()
        .map(|l| l.value)
        .collect();
    logged.sort();
    assert_eq!(logged, vec!["never-listed.example", "public.example"]);
    // The page shows how often a value was searched (once the server refreshed from the
    // store, as `trawl serve` does every few seconds).
    s.app.intel.refresh(server::http::now()).unwrap();
    let p = b.search("public.example", true);
    let row = p
        .text
        .split("<tr>")
        .find(|r| r.contains("<td>test-feed</td>"))
        .unwrap_or_else(|| panic!("{}", p.text));
    // Times searched, then the (empty) sightings cell.
    assert!(
        row.contains("<td>1</td><td></td></tr>"),
        "searched once: {row}"
    );
}

#[test]
fn feeds_download_in_the_chosen_format_within_the_tokens_view() {
    let s = server();
    let mut b = Browser::new(&s);
    b.sign_in(&s.reader(&["everyone"], Tlp::Green));
    let csv = b.get("/web/feed?itype=fqdn&format=csv&confidence=");
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header["content-type"].starts_with("text/csv"));
    assert!(csv.header["content-disposition"].contains("trawl-fqdn.csv"));
    assert!(csv.text.contains("public.example"));
    assert!(!csv.text.contains("csirt-only.example"));
    assert!(!csv.text.contains("amber-only.example"));
    let rpz = b.get("/web/feed?itype=fqdn&format=rpz");
    assert_eq!(rpz.status, 200);
    assert!(
        rpz.text.contains("public.example\tCNAME\t."),
        "{}",
        rpz.text
    );
    let bad = b.get("/web/feed?itype=fqdn&format=pdf");
    assert_eq!(bad.status, 400);
    assert!(bad.header["content-type"].starts_with("text/html"));
    assert!(bad.text.contains("pdf"));
    assert_eq!(b.get("/web/feed?itype=fqdn&token=x").status, 400);
}
