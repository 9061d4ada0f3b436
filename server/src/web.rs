//! The analyst web page at `/`: sign in with a token, search one or many values, see the
//! matches, download a feed in any `/v1/feed` format. Plain server-rendered HTML (forms, no
//! script), a strict Content-Security-Policy, one small stylesheet served from here, every
//! value HTML-escaped.
//!
//! The token lives in a cookie (HttpOnly, SameSite=Strict, Secure under TLS), never in a URL.
//! POSTs need the session's CSRF token (derived from the secret, so bound to the session) and,
//! when the browser sends one, an `Origin` of this server. Searches and feeds go through the
//! API's own [`search_rows`] and [`feed_rows`]: the same privilege rule, the same search log
//! (unless "don't log" is ticked).

use crate::http::{
    authenticate_secret, export_feed, feed_rows, search_rows, App, Reply, SEARCH_LIMIT,
};
use crate::intel::Row;
use crate::query::{format_time, Filters, Scale, MAX_PARAM_LEN};
use crate::token::{hex, Right, Secret, Token};
use axum::http::{header, HeaderMap, Method, StatusCode};
use feeds::export::{html_escape as esc, ExportFormat};
use matcher::IndicatorType;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "trawl_session";
/// The page's Content-Security-Policy: nothing but this server's stylesheet and forms.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'none'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Most values one search from the page may hold.
pub const MAX_VALUES: usize = 1000;
/// The stylesheet's path.
pub const STYLE_PATH: &str = "/web/style.css";

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;max-width:110em}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;\
text-align:left;vertical-align:top}th{background:#eee}td.v{font-family:monospace;\
word-break:break-all}textarea{width:40em;max-width:100%;height:8em;font-family:monospace}\
.err{color:#a00}.note{color:#555}.sev-high,.sev-critical{color:#a00;font-weight:bold}\
.sev-medium{color:#a60}form.inline{display:inline}fieldset{border:1px solid #ccc;margin:.8em 0}";

/// The page's routes: `GET /`, `GET /web/style.css`, `POST /web/login`, `POST /web/logout`,
/// `POST /web/search`, `GET /web/feed`, `GET /web/fleet`. `None` for every other request (the API's).
pub(crate) fn handle(
    app: &App,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Reply> {
    let web = path == "/web" || path.starts_with("/web/");
    if !(web || path == "/" && method == Method::GET) {
        return None;
    }
    let mut reply = match (method, path) {
        (&Method::GET, "/") => home(app, headers),
        (&Method::GET, STYLE_PATH) => Reply {
            content_type: "text/css; charset=utf-8",
            ..html(StatusCode::OK, STYLE.to_string())
        },
        (&Method::POST, "/web/login") => login(app, headers, body),
        (&Method::POST, "/web/logout") => logout(app, headers, body),
        (&Method::POST, "/web/search") => search(app, headers, body),
        (&Method::GET, "/web/feed") => feed(app, headers, query),
        (&Method::GET, "/web/fleet") => fleet(app, headers),
        (_, "/web/login" | "/web/logout" | "/web/search") => html(
            StatusCode::METHOD_NOT_ALLOWED,
            page(
                "Not allowed",
                "<p>Use the forms on <a href=\"/\">the page</a>.</p>",
            ),
        ),
        _ => html(
            StatusCode::NOT_FOUND,
            page("Not found", "<p>No such page: <a href=\"/\">back</a>.</p>"),
        ),
    };
    reply.headers.extend([
        ("content-security-policy", CSP.to_string()),
        ("x-frame-options", "DENY".to_string()),
        // `no-referrer` would make browsers send `Origin: null` on the page's own POSTs.
        ("referrer-policy", "same-origin".to_string()),
    ]);
    Some(reply)
}

fn html(status: StatusCode, body: String) -> Reply {
    Reply {
        status,
        body: body.into_bytes(),
        content_type: "text/html; charset=utf-8",
        results: 0,
        retry_after: None,
        user: None,
        headers: Vec::new(),
    }
}

/// A whole page around `main` (already escaped).
fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} - trawl</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head>\
         <body><h1>trawl: {t}</h1>\n{main}\n</body></html>\n",
        t = esc(title)
    )
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
        .filter(|v| !v.is_empty())
}

/// The session's CSRF token: bound to the secret, useless without it.
fn csrf_of(secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(b"trawl-web-csrf\0");
    h.update(secret.expose().as_bytes());
    hex(&h.finalize())
}

/// The cookie that holds `value` (empty and expired: sign out).
fn set_cookie(app: &App, value: &str) -> String {
    let secure = if app.config.tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    };
    let expire = if value.is_empty() { "; Max-Age=0" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{expire}")
}

/// A POST from another site: its `Origin` (when sent) is not this server's, or the browser
/// says it is cross-site.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site").is_some_and(|s| s == "cross-site") {
        return true;
    }
    let Some(origin) = get("origin") else {
        return false;
    };
    let host = get("host").unwrap_or_default();
    let bare = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    bare != Some(host) || host.is_empty()
}

fn forbidden(why: &str) -> Reply {
    html(
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            &format!(
                "<p class=\"err\">{}</p><p><a href=\"/\">Back to the page</a>, reload it and \
                 try again.</p>",
                esc(why)
            ),
        ),
    )
}

/// The signed-in session: its token and secret, or the reply to send instead (the sign-in
/// page with why).
fn session(app: &App, headers: &HeaderMap) -> Result<(Token, Secret), Reply> {
    let Some(value) = cookie(headers, COOKIE) else {
        return Err(sign_in(app, StatusCode::UNAUTHORIZED, None));
    };
    let secret = Secret::presented(value);
    match authenticate_secret(app, Some(secret.clone()), Right::Read) {
        Ok(t) => Ok((t, secret)),
        Err(r) if r.status == StatusCode::UNAUTHORIZED => {
            let mut page = sign_in(app, r.status, Some(&message(&r)));
            page.user = r.user;
            page.headers.push(("set-cookie", set_cookie(app, "")));
            Err(page)
        }
        Err(r) => Err(error_page(r)),
    }
}

/// The message of an API error reply (its envelope's `message`).
fn message(r: &Reply) -> String {
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| r.status.to_string())
}

/// An API error as a page, same status.
fn error_page(r: Reply) -> Reply {
    let mut p = html(
        r.status,
        page(
            "Error",
            &format!(
                "<p class=\"err\">{}</p><p><a href=\"/\">Back</a></p>",
                esc(&message(&r))
            ),
        ),
    );
    p.retry_after = r.retry_after;
    p.user = r.user;
    p
}

fn sign_in(app: &App, status: StatusCode, why: Option<&str>) -> Reply {
    let why = why
        .map(|w| format!("<p class=\"err\">{}</p>", esc(w)))
        .unwrap_or_default();
    let tls = if app.config.tls_cert.is_some() {
        ""
    } else {
        "<p class=\"note\">This server speaks plain HTTP: use it on a trusted network or \
         behind TLS.</p>"
    };
    html(
        status,
        page(
            "sign in",
            &format!(
                "{why}<form method=\"post\" action=\"/web/login\">\
                 <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" \
                 required size=\"70\"></label> <button type=\"submit\">Sign in</button></form>\
                 <p class=\"note\">A token with the read right (<code>trawl token create \
                 USER</code> makes one). It is kept in a cookie for this site only until you \
                 sign out or close the browser.</p>{tls}"
            ),
        ),
    )
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn redirect_home() -> Reply {
    let mut r = html(
        StatusCode::SEE_OTHER,
        page("signed in", "<p><a href=\"/\">Continue</a></p>"),
    );
    r.headers.push(("location", "/".to_string()));
    r
}

fn login(app: &App, headers: &HeaderMap, body: &[u8]) -> Reply {
    if foreign_origin(headers) {
        return forbidden("a sign-in from another site");
    }
    let f = form(body);
    let raw = field(&f, "token").unwrap_or_default().trim();
    // Only a secret's alphabet reaches the Set-Cookie header.
    if raw.is_empty()
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return sign_in(
            app,
            StatusCode::UNAUTHORIZED,
            Some("unauthorized: paste the token you were given"),
        );
    }
    let secret = Secret::presented(raw);
    match authenticate_secret(app, Some(secret.clone()), Right::Read) {
        Ok(t) => {
            let mut r = redirect_home();
            r.headers
                .push(("set-cookie", set_cookie(app, secret.expose())));
            r.user = Some(t.grant.user);
            r
        }
        Err(r) if r.status == StatusCode::UNAUTHORIZED => {
            let mut p = sign_in(app, r.status, Some(&message(&r)));
            p.user = r.user;
            p
        }
        Err(r) => error_page(r),
    }
}

/// The session of a POST that carries its CSRF token, else the reply to send.
fn checked_post(
    app: &App,
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<(Token, Secret), Reply> {
    if foreign_origin(headers) {
        return Err(forbidden("a request from another site"));
    }
    let (token, secret) = session(app, headers)?;
    let sent = field(f, "csrf").unwrap_or_default();
    if !bool::from(sent.as_bytes().ct_eq(csrf_of(&secret).as_bytes())) {
        let mut r = forbidden("this form is stale or not from this page");
        r.user = Some(token.grant.user);
        return Err(r);
    }
    Ok((token, secret))
}

fn logout(app: &App, headers: &HeaderMap, body: &[u8]) -> Reply {
    let f = form(body);
    match checked_post(app, headers, &f) {
        Ok((token, _)) => {
            let mut r = sign_in(app, StatusCode::OK, Some("Signed out."));
            r.headers.push(("set-cookie", set_cookie(app, "")));
            r.user = Some(token.grant.user);
            r
        }
        Err(r) => r,
    }
}

fn home(app: &App, headers: &HeaderMap) -> Reply {
    if cookie(headers, COOKIE).is_none() {
        return sign_in(app, StatusCode::OK, None);
    }
    match session(app, headers) {
        Ok((token, secret)) => signed_in(&token, &secret, "", ""),
        Err(r) => r,
    }
}

/// The page of a signed-in analyst: who, the search form (with `searched` in the box), the
/// feed form, and `results` (already escaped).
fn signed_in(token: &Token, secret: &Secret, searched: &str, results: &str) -> Reply {
    let csrf = csrf_of(secret);
    let g = &token.grant;
    let groups = if g.groups.is_empty() {
        "all (admin)".to_string()
    } else {
        g.groups.join(", ")
    };
    let itypes: String = IndicatorType::ALL
        .iter()
        .filter(|t| token.may_use_itype(**t))
        .map(|t| format!("<option>{}</option>", t.as_str()))
        .collect();
    let formats: String = ExportFormat::ALL
        .iter()
        .map(|f| format!("<option>{}</option>", f.as_str()))
        .collect();
    let main = format!(
        "<p>Signed in as <b>{user}</b>; groups {groups}; TLP up to {tlp}. \
         <form class=\"inline\" method=\"post\" action=\"/web/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Sign out</button></form>{fleet}</p>\n\
         <h2>Search</h2><form method=\"post\" action=\"/web/search\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <p><label for=\"q\">Values (IP, CIDR, domain, URL, e-mail, hash), one per line or \
         comma separated, up to {MAX_VALUES}:</label><br>\
         <textarea id=\"q\" name=\"q\" required>{searched}</textarea></p>\
         <p><label><input type=\"checkbox\" name=\"nolog\" value=\"1\"> Don't log these \
         searches (otherwise they are kept as intel, seen by your groups)</label></p>\
         <p><button type=\"submit\" id=\"search\">Search</button></p></form>\n\
         {results}\n\
         <h2>Download a feed</h2><form method=\"get\" action=\"/web/feed\"><fieldset>\
         <label>Type <select name=\"itype\">{itypes}</select></label> \
         <label>Format <select name=\"format\">{formats}</select></label> \
         <label>Min. confidence (0-100) <input type=\"number\" name=\"confidence\" min=\"0\" \
         max=\"100\" value=\"\" size=\"4\"></label> \
         <button type=\"submit\">Download</button></fieldset></form>\
         <p class=\"note\">The same as <code>GET /v1/feed?itype=...&amp;format=...</code> \
         with your token: what your groups and TLP may see, allowlist applied.</p>",
        user = esc(&g.user),
        groups = esc(&groups),
        tlp = esc(g.max_tlp.as_str()),
        searched = esc(searched),
        fleet = if g.admin {
            " <a id=\"fleet-link\" href=\"/web/fleet\">Fleet</a>"
        } else {
            ""
        },
    );
    let mut r = html(StatusCode::OK, page("intelligence search", &main));
    r.user = Some(g.user.clone());
    r
}

/// The values of the search box: split on lines and commas, trimmed, first occurrence of each.
pub fn split_values(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for v in text.split(['\n', '\r', ',']).map(str::trim) {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn search(app: &App, headers: &HeaderMap, body: &[u8]) -> Reply {
    let f = form(body);
    let (token, secret) = match checked_post(app, headers, &f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let text = field(&f, "q").unwrap_or_default();
    let nolog = field(&f, "nolog").is_some_and(|v| !v.is_empty() && v != "0");
    let values = split_values(text);
    let mut total = 0usize;
    let results = if values.len() > MAX_VALUES {
        format!(
            "<p class=\"err\">{} values: search at most {MAX_VALUES} at once.</p>",
            values.len()
        )
    } else {
        let cap = app.config.max_results();
        let mut table = String::new();
        let mut missed = Vec::new();
        let mut errors = Vec::new();
        for v in &values {
            if v.len() > MAX_PARAM_LEN {
                errors.push(format!("{}: longer than {MAX_PARAM_LEN} bytes", short(v)));
                continue;
            }
            let filters = Filters {
                q: Some((*v).to_string()),
                nolog,
                limit: Some(SEARCH_LIMIT.min(cap.saturating_sub(total))),
                ..Filters::default()
            };
            match search_rows(app, &token, &filters) {
                Ok((_, rows)) if rows.is_empty() => missed.push(*v),
                Ok((_, rows)) => {
                    total += rows.len();
                    for r in &rows {
                        table.push_str(&row_html(v, r));
                    }
                }
                Err(r) if r.status == StatusCode::TOO_MANY_REQUESTS => return error_page(r),
                Err(r) => errors.push(message(&r)),
            }
            if total >= cap {
                errors.push(format!(
                    "stopped at {cap} rows ([server] max_results): search fewer values"
                ));
                break;
            }
        }
        results_html(values.len(), total, &table, &missed, &errors, nolog)
    };
    let mut r = signed_in(&token, &secret, &values.join("\n"), &results);
    r.results = total;
    r
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

const COLUMNS: [&str; 15] = [
    "Searched",
    "Indicator",
    "Type",
    "Match",
    "Confidence",
    "Severity",
    "TLP",
    "Tags",
    "Sources",
    "Group",
    "Description",
    "First seen",
    "Last seen",
    "Times searched",
    "Sightings",
];

fn results_html(
    n: usize,
    rows: usize,
    table: &str,
    missed: &[&str],
    errors: &[String],
    nolog: bool,
) -> String {
    let mut o = format!(
        "<h2>Results</h2><p id=\"summary\">{n} value(s) searched, {rows} match(es){}.</p>",
        if nolog { ", not logged" } else { "" }
    );
    if !table.is_empty() {
        o.push_str("<table id=\"results\"><thead><tr>");
        for c in COLUMNS {
            o.push_str(&format!("<th>{c}</th>"));
        }
        o.push_str("</tr></thead><tbody>");
        o.push_str(table);
        o.push_str("</tbody></table>");
    }
    if !missed.is_empty() {
        o.push_str("<p id=\"missed\">No match: ");
        let list: Vec<String> = missed
            .iter()
            .map(|m| format!("<code>{}</code>", esc(m)))
            .collect();
        o.push_str(&list.join(", "));
        o.push_str("</p>");
    }
    for e in errors {
        o.push_str(&format!("<p class=\"err\">{}</p>", esc(e)));
    }
    o
}

/// One result row, every value escaped.
fn row_html(searched: &str, r: &Row) -> String {
    let i = &r.ind;
    let time = |t: Option<i64>| t.and_then(format_time).unwrap_or_default();
    let mut sources = i.sources.clone();
    if let Some(p) = &i.provider {
        if !sources.contains(p) {
            sources.insert(0, p.clone());
        }
    }
    let sev = i.severity.as_str();
    let cells = [
        esc(searched),
        esc(&i.value),
        esc(i.itype.as_str()),
        esc(r.kind.as_str()),
        i.confidence.to_string(),
        format!("<span class=\"sev-{s}\">{s}</span>", s = esc(sev)),
        esc(i.tlp.as_str()),
        esc(&i.tags.join(", ")),
        esc(&sources.join(", ")),
        esc(&i.groups.join(", ")),
        esc(i.description.as_deref().unwrap_or_default()),
        esc(&time(i.first_seen)),
        esc(&time(i.last_seen.or(i.reported))),
        r.searched.to_string(),
        r.sightings.map_or_else(String::new, |s| {
            esc(&format!(
                "{} by {} sensor(s), last {}",
                s.count,
                s.sensors,
                time(Some(s.last_seen))
            ))
        }),
    ];
    let mut o = String::from("<tr>");
    for (n, c) in cells.iter().enumerate() {
        if n < 2 {
            o.push_str(&format!("<td class=\"v\">{c}</td>"));
        } else {
            o.push_str(&format!("<td>{c}</td>"));
        }
    }
    o.push_str("</tr>");
    o
}

/// `GET /web/fleet` (admin tokens): the sensors pulling releases, as `trawl fleet` lists them.
fn fleet(app: &App, headers: &HeaderMap) -> Reply {
    let (token, _) = match session(app, headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !token.grant.admin {
        let mut r = html(
            StatusCode::FORBIDDEN,
            page(
                "Fleet",
                "<p class=\"err\">The fleet is shown to admin tokens only. \
                 <a href=\"/\">Back</a>.</p>",
            ),
        );
        r.user = Some(token.grant.user);
        return r;
    }
    let t = crate::http::now();
    let entries = match crate::fleet::view(app, t) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("fleet view: {e}");
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                page("Fleet", "<p class=\"err\">The store is unavailable.</p>"),
            );
        }
    };
    let time = |t: Option<i64>| t.and_then(format_time).unwrap_or_else(|| "never".into());
    let mut rows = String::new();
    for e in &entries {
        let s = &e.sensor;
        let state = match (e.stale, e.behind) {
            (true, true) => "stale, behind",
            (true, false) => "stale",
            (false, true) => "behind",
            (false, false) => "ok",
        };
        let cells = [
            esc(&s.name),
            esc(&s.user),
            esc(if s.release.is_empty() {
                "none"
            } else {
                &s.release
            }),
            esc(e.latest.as_deref().unwrap_or("-")),
            format!(
                "<span class=\"fleet-{}\">{state}</span>",
                state.replace(", ", "-")
            ),
            esc(&time(Some(s.last_pull))),
            esc(&s.version),
            esc(&time(s.last_sighting_batch)),
        ];
        rows.push_str("<tr>");
        for c in cells {
            rows.push_str(&format!("<td>{c}</td>"));
        }
        rows.push_str("</tr>");
    }
    let stale = entries.iter().filter(|e| e.stale).count();
    let behind = entries.iter().filter(|e| e.behind).count();
    let main = format!(
        "<p><a href=\"/\">Back to search</a></p>\
         <p id=\"fleet-summary\">{n} sensor(s), {stale} stale (no pull for {after}s), \
         {behind} behind their grant's latest release.</p>\
         <table id=\"fleet\"><thead><tr><th>Sensor</th><th>User</th><th>Runs</th>\
         <th>Latest</th><th>State</th><th>Last pull</th><th>Version</th>\
         <th>Last sighting batch</th></tr></thead><tbody>{rows}</tbody></table>",
        n = entries.len(),
        after = app.config.fleet_stale().as_secs(),
    );
    let mut r = html(StatusCode::OK, page("Fleet", &main));
    r.user = Some(token.grant.user);
    r
}

fn feed(app: &App, headers: &HeaderMap, query: &str) -> Reply {
    let (token, _) = match session(app, headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let user = token.grant.user.clone();
    let f = match Filters::parse(query, Scale::Native, crate::http::now()) {
        Ok(f) => f,
        Err(e) => {
            let mut r = error_page(Reply::error(StatusCode::BAD_REQUEST, &e.to_string()));
            r.user = Some(user);
            return r;
        }
    };
    let format = f.format.clone().unwrap_or_else(|| "csv".to_string());
    let mut r = match feed_rows(app, &token, &f) {
        Ok(rows) => export_feed(&format, rows),
        Err(r) => r,
    };
    if r.status.is_success() {
        let ext = match format.parse::<ExportFormat>() {
            Ok(ExportFormat::Csv) => "csv",
            Ok(ExportFormat::Json | ExportFormat::Stix | ExportFormat::Misp) => "json",
            Ok(ExportFormat::Jsonl) => "jsonl",
            Ok(ExportFormat::Html) => "html",
            Ok(ExportFormat::Snort | ExportFormat::Suricata) => "rules",
            _ => "txt",
        };
        let itype = f.itype.map_or("all", IndicatorType::as_str);
        r.headers.push((
            "content-disposition",
            format!("attachment; filename=\"trawl-{itype}.{ext}\""),
        ));
    } else {
        r = error_page(r);
    }
    r.user = Some(user);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_lines_and_commas_once_each() {
        assert_eq!(
            split_values(" a.example\r\n\nb.example, a.example ,,c.example"),
            vec!["a.example", "b.example", "c.example"]
        );
        assert!(split_values(" \n, ").is_empty());
    }

    #[test]
    fn cookies_are_found_by_name_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "x_trawl_session=no; trawl_session=abc; y=1"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn foreign_origins_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:5000".parse().unwrap());
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:5000".parse().unwrap());
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(foreign_origin(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(foreign_origin(&h));
    }

    #[test]
    fn the_csrf_token_depends_on_the_secret() {
        let a = csrf_of(&Secret::presented("a"));
        assert_ne!(a, csrf_of(&Secret::presented("b")));
        assert_eq!(a.len(), 64);
    }
}
