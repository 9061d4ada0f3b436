//! The HTTP side of `trawl serve`: CIF v3's endpoints (`/ping`, `/health`, `/help`,
//! `/indicators`, `/search`, `/feed`, `/tokens`) and the native `/v1/...` ones, behind one
//! dispatcher that applies, in order: the per-address rate limit, the body cap, the token
//! (401), its right, its rate limit (429 with `Retry-After`), and logs one audit line per
//! request (user, endpoint, status, result count; never the token).

use crate::cif::{cif_row, native_row, parse_submission};
use crate::config::ServerConfig;
use crate::intel::{search_record, Intel, Row};
use crate::limit::RateLimiter;
use crate::query::{Filters, Scale};
use crate::releases::{Releases, GZIP_TYPE};
use crate::token::{Grant, Refused, Right, Secret, Token};
use crate::token_cache::TokenCache;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use matcher::{Indicator, IndicatorType, UnixTime};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// CIF's search limit when the client gives none.
pub const SEARCH_LIMIT: usize = 500;
/// CIF's feed limit when the client gives none.
pub const FEED_LIMIT: usize = 50_000;

/// Everything a request handler needs.
pub struct App {
    /// The searchable state.
    pub intel: Intel,
    /// `[server]`.
    pub config: ServerConfig,
    /// Fleet releases per token grant.
    pub releases: Releases,
    per_token: RateLimiter<i64>,
    per_address: RateLimiter<IpAddr>,
    tokens: TokenCache,
}

impl App {
    /// The application over `intel` with `config`'s limits.
    pub fn new(intel: Intel, config: ServerConfig) -> App {
        App {
            per_token: RateLimiter::new(config.token_rate()),
            per_address: RateLimiter::new(config.address_rate()),
            tokens: TokenCache::default(),
            releases: Releases::new(intel.data_dir(), &config),
            intel,
            config,
        }
    }
}

/// The router: every path through [`dispatch`], the body capped, every request timed out.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.config.max_body();
    let timeout = app.config.timeout();
    Router::new()
        .fallback(dispatch)
        .with_state(app)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
}

/// Seconds since the epoch.
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a handler answers.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    pub(crate) content_type: &'static str,
    pub(crate) results: usize,
    pub(crate) retry_after: Option<u64>,
    pub(crate) user: Option<String>,
    /// Further headers (the web page's CSP, cookies, redirects).
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// CIF's envelope: `{"message": ..., "data": ...}`.
    fn envelope(status: StatusCode, message: &str, data: Value) -> Reply {
        let results = data.as_array().map_or(0, Vec::len);
        let mut text = json!({"message": message, "data": data}).to_string();
        // Echoed input can never be markup, whatever a client does with the body.
        if text.contains(['<', '>']) {
            text = text.replace('<', "\\u003c").replace('>', "\\u003e");
        }
        Reply {
            status,
            body: text.into_bytes(),
            content_type: "application/json",
            results,
            retry_after: None,
            user: None,
            headers: Vec::new(),
        }
    }

    fn ok(data: Value) -> Reply {
        Reply::envelope(StatusCode::OK, "success", data)
    }

    pub(crate) fn error(status: StatusCode, message: &str) -> Reply {
        Reply::envelope(status, message, Value::Null)
    }
}

async fn dispatch(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let accept = parts
        .headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let reply = if let Err(wait) = app.per_address.take(&peer.ip(), Instant::now()) {
        let mut r = Reply::error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        r.retry_after = Some(wait);
        r
    } else {
        match axum::body::to_bytes(body, app.config.max_body()).await {
            Err(_) => Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body larger than {} bytes ([server] max_body)",
                    app.config.max_body()
                ),
            ),
            Ok(bytes) => {
                let app2 = app.clone();
                let query = parts.uri.query().unwrap_or_default().to_string();
                let headers = parts.headers;
                let m = method.clone();
                let p = path.clone();
                if is_lookup(&method, &path, &query) && !app.intel.store().needs_blocking_pool() {
                    // A search for one value takes microseconds: answered on this worker, as
                    // a hand-off to the blocking pool and back costs more than the search
                    // (not with PostgreSQL: its sync client blocks on a runtime of its own).
                    handle(&app2, &m, &p, &query, &headers, &bytes)
                } else {
                    tokio::task::spawn_blocking(move || {
                        handle(&app2, &m, &p, &query, &headers, &bytes)
                    })
                    .await
                    .unwrap_or_else(|_| {
                        Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                    })
                }
            }
        }
    };
    tracing::info!(
        target: "trawl::audit",
        user = reply.user.as_deref().unwrap_or("-"),
        peer = %peer.ip(),
        method = %method,
        endpoint = %path,
        status = reply.status.as_u16(),
        results = reply.results,
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    respond(reply, &accept)
}

/// A `GET /search` or `/indicators` for one value (not a listing, which may be long).
fn is_lookup(method: &Method, path: &str, query: &str) -> bool {
    let path = path.trim_end_matches('/');
    let path = path.strip_prefix("/v1").unwrap_or(path);
    method == Method::GET
        && matches!(path, "/search" | "/indicators")
        && form_urlencoded::parse(query.as_bytes()).any(|(k, v)| {
            (k == "q" || k == "indicator") && !v.trim().is_empty() && !v.contains('*')
        })
}

/// The response, deflate- or gzip-compressed when the client asks, always with a
/// Content-Length (CIF's client reads it).
fn respond(reply: Reply, accept: &str) -> Response {
    let wants = |enc: &str| {
        accept
            .split(',')
            .any(|p| p.split(';').next().is_some_and(|e| e.trim() == enc))
    };
    // Stored gzip files (fleet bundles and deltas) go as they are.
    let compressible = reply.body.len() > 256 && reply.content_type != GZIP_TYPE;
    let (body, encoding) = if compressible && wants("gzip") {
        (gzip(&reply.body), Some("gzip"))
    } else if compressible && wants("deflate") {
        (deflate(&reply.body), Some("deflate"))
    } else {
        (reply.body, None)
    };
    let mut b = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff");
    if let Some(e) = encoding {
        b = b.header(header::CONTENT_ENCODING, e);
    }
    if let Some(s) = reply.retry_after {
        b = b.header(header::RETRY_AFTER, s);
    }
    for (k, v) in reply.headers {
        b = b.header(k, v);
    }
    b.body(Body::from(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

/// The request body, inflated per Content-Encoding (`deflate`: zlib or raw, `gzip`),
/// capped at `max` bytes after inflation.
fn inflate(headers: &HeaderMap, body: &[u8], max: usize) -> Result<Vec<u8>, Reply> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let too_big = || {
        Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body inflates past {max} bytes ([server] max_body)"),
        )
    };
    let read = |r: &mut dyn Read| -> Result<Vec<u8>, Reply> {
        let mut out = Vec::new();
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Reply::error(StatusCode::BAD_REQUEST, &format!("body: {e}")))?;
        if out.len() > max {
            return Err(too_big());
        }
        Ok(out)
    };
    match enc.as_str() {
        "" | "identity" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => read(&mut flate2::read::GzDecoder::new(body)),
        "deflate" => {
            let zlib = body.first().is_some_and(|b| b & 0x0f == 8)
                && body.len() >= 2
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            if zlib {
                read(&mut flate2::read::ZlibDecoder::new(body))
            } else {
                read(&mut flate2::read::DeflateDecoder::new(body))
            }
        }
        other => Err(Reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Encoding {other:?}: send identity, deflate or gzip"),
        )),
    }
}

/// The secret of `Authorization: Token token=...` (CIF) or `Bearer ...`.
fn presented_secret(headers: &HeaderMap) -> Option<Secret> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let s = if let Some(rest) = v.strip_prefix("Token ") {
        let rest = rest.trim();
        rest.strip_prefix("token=")
            .unwrap_or(rest)
            .trim_matches('"')
    } else {
        v.strip_prefix("Bearer ")?.trim()
    };
    (!s.is_empty()).then(|| Secret::presented(s))
}

fn authenticate(app: &App, headers: &HeaderMap, right: Right) -> Result<Token, Reply> {
    authenticate_secret(app, presented_secret(headers), right)
}

/// The token of `secret` if it holds `right` and is within its rate limit (the one check
/// of the API and the web page).
pub(crate) fn authenticate_secret(
    app: &App,
    secret: Option<Secret>,
    right: Right,
) -> Result<Token, Reply> {
    let Some(secret) = secret else {
        return Err(Reply::error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send Authorization: Token token=YOUR_TOKEN",
        ));
    };
    let token = match app.tokens.get(app.intel.store().as_ref(), &secret.hash()) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(Reply::error(StatusCode::UNAUTHORIZED, "unauthorized")),
        Err(e) => {
            tracing::error!("token lookup: {e}");
            return Err(Reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token store is unavailable",
            ));
        }
    };
    let user = Some(token.grant.user.clone());
    let refuse = |r: Refused| {
        let mut reply = Reply::error(StatusCode::UNAUTHORIZED, &format!("unauthorized: {r}"));
        reply.user.clone_from(&user);
        reply
    };
    token.check(right, now()).map_err(refuse)?;
    if let Err(wait) = app.per_token.take(&token.id, Instant::now()) {
        let mut r = Reply::error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        r.retry_after = Some(wait);
        r.user = user;
        return Err(r);
    }
    Ok(token)
}

fn handle(
    app: &App,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Some(r) = crate::web::handle(app, method, path, query, headers, body) {
        return r;
    }
    let path = path.trim_end_matches('/');
    let (native, endpoint) = match path.strip_prefix("/v1") {
        Some(rest) => (true, rest),
        None => (false, path),
    };
    let scale = if native { Scale::Native } else { Scale::Cif };
    let right = match (method, endpoint) {
        (&Method::GET, "/health") => return health(app),
        (&Method::GET, "/metrics") if !native => return metrics(app),
        (&Method::GET, "" | "/help") => return help(),
        (&Method::GET, "/ping") => {
            if query.contains("write=1") {
                Right::Write
            } else {
                Right::Read
            }
        }
        (&Method::GET, "/indicators" | "/search" | "/feed") => Right::Read,
        (&Method::GET, e) if native && e.starts_with("/snapshot/") => Right::Read,
        (&Method::POST, "/indicators") => Right::Write,
        (&Method::POST, "/sightings") if native => Right::Write,
        (&Method::DELETE, "/indicators") => Right::Admin,
        (_, "/tokens") => Right::Admin,
        (&Method::GET, "/fleet") if native => Right::Admin,
        _ => {
            return Reply::error(
                StatusCode::NOT_FOUND,
                "no such endpoint; GET /help lists them",
            )
        }
    };
    let token = match authenticate(app, headers, right) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut reply = match (method, endpoint) {
        (&Method::GET, "/ping") => Reply::ok(json!(now())),
        (&Method::GET, "/indicators" | "/search") => search(app, &token, query, scale, native),
        (&Method::GET, "/feed") => feed(app, &token, query, scale, native),
        (&Method::GET, e) if e.starts_with("/snapshot/") => {
            let rest = e.trim_start_matches("/snapshot/");
            app.releases.serve(&app.intel, &token, rest, headers)
        }
        (&Method::POST, "/indicators") => match inflate(headers, body, app.config.max_body()) {
            Ok(b) => submit(app, &token, &b, scale),
            Err(r) => r,
        },
        (&Method::POST, "/sightings") => match inflate(headers, body, app.config.max_body()) {
            Ok(b) => sightings(app, &token, &b),
            Err(r) => r,
        },
        (&Method::DELETE, "/indicators") => match inflate(headers, body, app.config.max_body()) {
            Ok(b) => delete(app, query, &b),
            Err(r) => r,
        },
        (&Method::GET, "/tokens") => list_tokens(app),
        (&Method::GET, "/fleet") => fleet(app),
        (&Method::POST, "/tokens") => match inflate(headers, body, app.config.max_body()) {
            Ok(b) => create_token(app, &b),
            Err(r) => r,
        },
        (&Method::DELETE, "/tokens") => match inflate(headers, body, app.config.max_body()) {
            Ok(b) => revoke_token(app, query, &b),
            Err(r) => r,
        },
        _ => Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
    };
    reply.user = Some(token.grant.user);
    reply
}

/// `GET /metrics` (no token: counts only, no names).
fn metrics(app: &App) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: crate::fleet::metrics(app, now()).into_bytes(),
        content_type: "text/plain; version=0.0.4",
        results: 0,
        retry_after: None,
        user: None,
        headers: Vec::new(),
    }
}

/// `GET /v1/fleet` (admin): every sensor that pulled a release, with its state.
fn fleet(app: &App) -> Reply {
    match crate::fleet::view(app, now()) {
        Ok(v) => {
            let data = serde_json::to_value(&v).unwrap_or(Value::Null);
            let mut r = Reply::ok(data);
            r.results = v.len();
            r
        }
        Err(e) => {
            tracing::error!("fleet view: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn health(app: &App) -> Reply {
    Reply::ok(json!({
        "status": "ok",
        "snapshot_version": app.intel.snapshot_version(),
        "snapshot_created": app.intel.snapshot_created(),
    }))
}

fn help() -> Reply {
    Reply::ok(json!({
        "GET /ping": "check the token (write=1: the write right)",
        "GET /health": "liveness, no token",
        "GET /indicators, /search": "q or indicator, itype, confidence (0-10), tags (!tag excludes), provider, limit, nolog, days, hours, reporttime, reporttimeend, groups, tlp, seen_within (7d: sighted by a sensor in the last 7 days)",
        "POST /indicators": "one indicator object or a list (indicator, itype, confidence, tags, tlp, group, description, reference, external_id, expires); 201, or 422 naming each refused item (then nothing is stored)",
        "DELETE /indicators": "admin: delete submissions of {\"indicator\": ..., \"itype\": ...}",
        "POST /v1/sightings": "write right: a sensor's batch {\"batch_id\": UUID, \"sensor\": NAME, \"sightings\": [{\"itype\", \"value\", \"count\", \"first_seen\", \"last_seen\", \"clients\"}]}; at most 10000 items; a batch id sent before gets the same answer and changes nothing",
        "GET /feed": "itype required; the filters of /search; allowlist applied, deduplicated, by confidence then time",
        "GET|POST|DELETE /tokens": "admin: list, create ({\"username\", \"groups\", \"read\", \"write\", \"admin\", \"max_tlp\", \"itypes\", \"expires\"}), revoke ({\"username\"} or {\"token\"})",
        "GET /v1/fleet": "admin: every sensor that pulled a release (name, user, release, version, last pull, stale, behind)",
        "GET /metrics": "no token: trawl_fleet_sensors, trawl_fleet_sensors_stale, trawl_fleet_sensors_behind",
        "GET /v1/snapshot/latest.json": "the signed fleet release of what this token may see ([server] signing_key); bundles/... and deltas/... beside it, as `trawl publish` lays them out",
        "/v1/...": "the same with trawl's field names and confidence 0-100; GET /v1/feed?format=snort|suricata|iptables|ipset|nftables|zeek|rpz|csv|jsonl|json|html",
        "Authorization": "Token token=YOUR_TOKEN",
    }))
}

fn bad_request(e: impl std::fmt::Display) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, &e.to_string())
}

fn search(app: &App, token: &Token, query: &str, scale: Scale, native: bool) -> Reply {
    let f = match Filters::parse(query, scale, now()) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    match search_rows(app, token, &f) {
        Ok((q, rows)) => render(&q, &rows, native),
        Err(r) => r,
    }
}

/// The rows of one search (`f.q`, else a listing), logged unless `f.nolog`, at most `f`'s
/// limit: the one search of the API and the web page.
pub(crate) fn search_rows(
    app: &App,
    token: &Token,
    f: &Filters,
) -> Result<(String, Vec<Row>), Reply> {
    let t = now();
    if let Some(it) = f.itype {
        if !token.may_use_itype(it) {
            return Err(Reply::error(
                StatusCode::FORBIDDEN,
                &format!("this token may not search itype {it}"),
            ));
        }
    }
    let limit = f
        .limit
        .unwrap_or(SEARCH_LIMIT)
        .min(app.config.max_results());
    let (q, mut rows) = match &f.q {
        Some(q) => {
            let (normal, itype, rows) = match app.intel.search_value(token, q, f) {
                Ok(x) => x,
                Err(e) => return Err(bad_request(format!("{}: {e}", short(q)))),
            };
            if !token.may_use_itype(itype) {
                return Err(Reply::error(
                    StatusCode::FORBIDDEN,
                    &format!("this token may not search itype {itype}"),
                ));
            }
            if !f.nolog && !q.contains('*') {
                let rec = search_record(token, itype, &normal, t);
                if let Err(e) = app.intel.log_search(rec) {
                    tracing::warn!("search not logged: {e}");
                }
            }
            (q.clone(), rows)
        }
        None => (String::new(), app.intel.list(token, f, false)),
    };
    sighted(app, token, f, &mut rows, limit)?;
    Ok((q, rows))
}

/// Keep at most `limit` of `rows`, each with the sightings `token` may see; with
/// `seen_within`, only rows sighted since then (filtered before the limit applies).
fn sighted(
    app: &App,
    token: &Token,
    f: &Filters,
    rows: &mut Vec<Row>,
    limit: usize,
) -> Result<(), Reply> {
    let unavailable = |e: crate::store::StoreError| {
        tracing::error!("reading sightings: {e}");
        Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
    };
    match f.seen_since {
        Some(since) => {
            app.intel
                .attach_sightings(token, rows, f.itype)
                .map_err(unavailable)?;
            rows.retain(|r| r.sightings.is_some_and(|s| s.last_seen >= since));
            rows.truncate(limit);
        }
        None => {
            rows.truncate(limit);
            if let Err(e) = app.intel.attach_sightings(token, rows, f.itype) {
                // Answer without them rather than not at all.
                tracing::warn!("sightings left out: {e}");
            }
        }
    }
    Ok(())
}

fn render(q: &str, rows: &[Row], native: bool) -> Reply {
    let data: Vec<Value> = if native {
        rows.iter().map(|r| native_row(q, r)).collect()
    } else {
        rows.iter().map(cif_row).collect()
    };
    Reply::ok(Value::Array(data))
}

/// Merge rows of the same (itype, value) and order them by confidence, then time, newest
/// first.
fn dedup_sorted(rows: Vec<Row>) -> Vec<Row> {
    let mut by_key: std::collections::HashMap<(IndicatorType, String), Row> =
        std::collections::HashMap::with_capacity(rows.len());
    for r in rows {
        match by_key.entry((r.ind.itype, r.ind.value.clone())) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let kept = o.get_mut();
                kept.ind.merge(&r.ind);
                kept.searched = kept.searched.max(r.searched);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
        }
    }
    use std::cmp::Reverse;
    let out: Vec<Row> = by_key.into_values().collect();
    let when = |i: &Indicator| i.reported.or(i.last_seen).or(i.first_seen).unwrap_or(0);
    // Sort small keys, not the rows: moving 100k indicators through a sort cost more than
    // comparing them.
    let mut keys: Vec<(Reverse<u8>, Reverse<i64>, &str, usize)> = out
        .iter()
        .enumerate()
        .map(|(n, r)| {
            (
                Reverse(r.ind.confidence),
                Reverse(when(&r.ind)),
                r.ind.value.as_str(),
                n,
            )
        })
        .collect();
    keys.sort_unstable();
    let order: Vec<usize> = keys.into_iter().map(|k| k.3).collect();
    let mut slots: Vec<Option<Row>> = out.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|n| slots.get_mut(n).and_then(Option::take))
        .collect()
}

fn feed(app: &App, token: &Token, query: &str, scale: Scale, native: bool) -> Reply {
    let f = match Filters::parse(query, scale, now()) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let rows = match feed_rows(app, token, &f) {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    if let (true, Some(format)) = (native, f.format.as_deref()) {
        return export_feed(format, rows);
    }
    render("", &rows, native)
}

/// The rows of a feed of `f.itype`: deduplicated, sorted, at most `f`'s limit (the one
/// feed of the API and the web page).
pub(crate) fn feed_rows(app: &App, token: &Token, f: &Filters) -> Result<Vec<Row>, Reply> {
    let Some(itype) = f.itype else {
        return Err(bad_request(
            "itype: a feed needs one (ipv4, ipv6, fqdn, url, email, md5, sha1, sha256, ...)",
        ));
    };
    if !token.may_use_itype(itype) {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            &format!("this token may not pull itype {itype}"),
        ));
    }
    let limit = f.limit.unwrap_or(FEED_LIMIT).min(app.config.max_results());
    let mut rows = dedup_sorted(app.intel.list(token, f, true));
    sighted(app, token, f, &mut rows, limit)?;
    Ok(rows)
}

/// `/v1/feed?format=...`: the rows through `feeds::export`, the one implementation of every
/// format.
pub(crate) fn export_feed(format: &str, rows: Vec<Row>) -> Reply {
    use feeds::export::{export, ExportFormat, ExportOptions, Filter};
    let fmt: ExportFormat = match format.parse() {
        Ok(f) => f,
        Err(e) => return bad_request(format!("format: {e}")),
    };
    let opts = ExportOptions {
        created: now(),
        ..ExportOptions::default()
    };
    let mut out = Vec::new();
    let n = rows.len();
    let mut it = rows.into_iter().map(|r| r.ind);
    match export(fmt, &mut it, &Filter::default(), &opts, &mut out) {
        Ok(stats) => Reply {
            status: StatusCode::OK,
            body: out,
            content_type: match fmt {
                ExportFormat::Html => "text/html; charset=utf-8",
                ExportFormat::Json | ExportFormat::Misp => "application/json",
                ExportFormat::Stix => "application/stix+json;version=2.1",
                ExportFormat::Jsonl => "application/x-ndjson",
                ExportFormat::Csv => "text/csv; charset=utf-8",
                _ => "text/plain; charset=utf-8",
            },
            results: usize::try_from(stats.written).unwrap_or(n),
            retry_after: None,
            user: None,
            headers: Vec::new(),
        },
        Err(e) => bad_request(format!("format {format}: {e}")),
    }
}

fn submit(app: &App, token: &Token, body: &[u8], scale: Scale) -> Reply {
    let t = now();
    let items = match parse_submission(body, token, scale, t) {
        Ok(items) => items,
        Err(errors) => {
            return Reply::envelope(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "{} refused; nothing was stored: {}",
                    errors.len(),
                    errors.first().map(String::as_str).unwrap_or_default()
                ),
                json!(errors),
            )
        }
    };
    let n = items.len();
    if let Err(e) = app.intel.store().add_submissions(&items, t) {
        tracing::error!("storing submissions: {e}");
        return Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable");
    }
    if let Err(e) = app.intel.refresh(t) {
        tracing::error!("refreshing after a submission: {e}");
    }
    let mut r = Reply::envelope(StatusCode::CREATED, "success", json!(n));
    r.results = n;
    r
}

/// `POST /v1/sightings`: a sensor's batch, stored once (a batch id this token's user sent
/// before gets the answer it got then and changes nothing); bad items are counted and named,
/// the good ones stored.
fn sightings(app: &App, token: &Token, body: &[u8]) -> Reply {
    use crate::sighting::{parse_batch, BatchError};
    let t = now();
    let batch = match parse_batch(body, t) {
        Ok(b) => b,
        Err(e @ BatchError::TooMany(_)) => {
            return Reply::error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e) => return bad_request(e),
    };
    let groups = if token.grant.groups.is_empty() {
        vec![crate::intel::ADMIN_GROUP.to_string()]
    } else {
        token.grant.groups.clone()
    };
    let answer = batch.answer();
    let text = answer.to_string();
    match app
        .intel
        .store()
        .add_sightings(&token.grant.user, &groups, &batch, &text, t)
    {
        Ok(None) => {
            let mut r = Reply::ok(answer);
            r.results = batch.accepted;
            r
        }
        Ok(Some(before)) => {
            let mut r = Reply::ok(serde_json::from_str(&before).unwrap_or(Value::Null));
            r.headers.push(("x-trawl-replayed", "1".into()));
            r
        }
        Err(e) => {
            tracing::error!("storing sightings: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

/// A JSON body's object, else the query string's parameters, as one map.
fn params(query: &str, body: &[u8]) -> Result<serde_json::Map<String, Value>, Reply> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err(bad_request("body: expected a JSON object")),
        };
    }
    Ok(form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect())
}

fn delete(app: &App, query: &str, body: &[u8]) -> Reply {
    let p = match params(query, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(raw) = ["indicator", "q"]
        .iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str))
    else {
        return bad_request("indicator: which value to delete");
    };
    let hint = match p.get("itype").and_then(Value::as_str) {
        Some(t) => match t.parse::<IndicatorType>() {
            Ok(t) => Some(t),
            Err(e) => return bad_request(format!("itype: {e}")),
        },
        None => None,
    };
    let n = match matcher::normalize(raw, hint) {
        Ok(n) => n,
        Err(e) => return bad_request(format!("{}: {e}", short(raw))),
    };
    match app.intel.store().delete_submissions(hint, &n.value) {
        Ok(count) => {
            if let Err(e) = app.intel.refresh(now()) {
                tracing::error!("refreshing after a delete: {e}");
            }
            let mut r = Reply::ok(json!(count));
            r.results = count;
            r
        }
        Err(e) => {
            tracing::error!("deleting submissions: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn list_tokens(app: &App) -> Reply {
    match app.intel.store().tokens() {
        Ok(list) => {
            let data: Vec<Value> = list.iter().map(token_json).collect();
            Reply::ok(Value::Array(data))
        }
        Err(e) => {
            tracing::error!("listing tokens: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

/// A token as listed (never its secret, which is not stored).
pub fn token_json(t: &Token) -> Value {
    json!({
        "id": t.id,
        "username": t.grant.user,
        "groups": t.grant.groups,
        "read": t.grant.read,
        "write": t.grant.write,
        "admin": t.grant.admin,
        "max_tlp": t.grant.max_tlp.as_str(),
        "itypes": t.grant.itypes.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "expires": t.grant.expires.and_then(crate::query::format_time),
        "revoked": t.revoked,
        "created": crate::query::format_time(t.created),
        "hash_prefix": t.hash_prefix,
    })
}

fn list_field(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn flag_field(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true" | "yes"),
        _ => false,
    }
}

fn create_token(app: &App, body: &[u8]) -> Reply {
    let p = match params("", body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(user) = p
        .get("username")
        .or_else(|| p.get("user"))
        .and_then(Value::as_str)
        .filter(|u| !u.trim().is_empty())
    else {
        return bad_request("username: who the token is for");
    };
    let groups =
        list_field(p.get("groups")).unwrap_or_else(|| vec![matcher::DEFAULT_GROUP.to_string()]);
    for g in &groups {
        if let Err(e) = feeds::config::check_group_name(g) {
            return bad_request(format!("groups: {e}"));
        }
    }
    let max_tlp = match p.get("max_tlp").and_then(Value::as_str) {
        Some(t) => match t.parse() {
            Ok(t) => t,
            Err(e) => return bad_request(format!("max_tlp: {e}")),
        },
        None => matcher::Tlp::Green,
    };
    let itypes = match list_field(p.get("itypes"))
        .unwrap_or_default()
        .iter()
        .map(|t| t.parse::<IndicatorType>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(v) => v,
        Err(e) => return bad_request(format!("itypes: {e}")),
    };
    let expires = match p.get("expires").and_then(Value::as_str) {
        Some(s) => match crate::query::parse_time(s) {
            Some(t) => Some(t),
            None => return bad_request("expires: expected a time like 2027-01-01T00:00:00Z"),
        },
        None => None,
    };
    let read = flag_field(p.get("read"));
    let write = flag_field(p.get("write"));
    let mut grant = Grant {
        user: user.trim().to_string(),
        groups,
        read: read || !write,
        write,
        admin: flag_field(p.get("admin")),
        max_tlp,
        itypes,
        expires,
    };
    grant.tidy();
    let secret = match Secret::generate() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("no random source: {e}");
            return Reply::error(StatusCode::SERVICE_UNAVAILABLE, "no random source");
        }
    };
    match app
        .intel
        .store()
        .create_token(&secret.hash(), &grant, now())
    {
        Ok(t) => {
            let mut v = token_json(&t);
            if let Some(o) = v.as_object_mut() {
                o.insert("token".into(), json!(secret.expose()));
            }
            Reply::envelope(StatusCode::CREATED, "success", v)
        }
        Err(e) => {
            tracing::error!("creating a token: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn revoke_token(app: &App, query: &str, body: &[u8]) -> Reply {
    let p = match params(query, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let store = app.intel.store();
    let r = if let Some(t) = p.get("token").and_then(Value::as_str) {
        store.revoke_hash(&Secret::presented(t).hash())
    } else if let Some(u) = p
        .get("username")
        .or_else(|| p.get("user"))
        .and_then(Value::as_str)
    {
        store.revoke_user(u)
    } else {
        return bad_request("token or username: which tokens to revoke");
    };
    match r {
        Ok(n) => Reply::ok(json!(n)),
        Err(e) => {
            tracing::error!("revoking: {e}");
            Reply::error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}
