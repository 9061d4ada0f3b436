//! CIF v3's JSON: indicators as CIF clients read them (confidence 0-10, `firsttime`/
//! `lasttime`/`reporttime`, `group`) and submissions as they send them; the native `/v1`
//! shapes beside them (trawl's names, confidence 0-100).

use crate::intel::{Row, SUBMISSIONS_SOURCE};
use crate::query::{cif_confidence, format_time, parse_time, Scale};
use crate::token::Token;
use matcher::{normalize, Indicator, IndicatorType, Severity, Tlp, UnixTime};
use serde_json::{json, Map, Value};

/// CIF v3's TLP names (`white` for clear).
fn cif_tlp(t: Tlp) -> &'static str {
    match t {
        Tlp::Clear => "white",
        other => other.as_str(),
    }
}

/// One row as a CIF v3 indicator.
pub fn cif_row(r: &Row) -> Value {
    let i = &r.ind;
    let time = |t: Option<UnixTime>| t.and_then(format_time);
    let v = json!({
        "indicator": i.value,
        "itype": i.itype.as_str(),
        "confidence": cif_confidence(i.confidence),
        "tags": i.tags,
        "tlp": cif_tlp(i.tlp),
        "group": i.groups.join(","),
        "provider": i.provider.clone().or_else(|| i.sources.first().cloned()),
        "description": i.description,
        "reference": i.reference,
        "firsttime": time(i.first_seen),
        "lasttime": time(i.last_seen),
        "reporttime": time(i.reported.or(i.last_seen)),
        "expires": time(i.expires),
        "count": r.searched.max(1),
        "severity": i.severity.as_str(),
        "matched": r.kind.as_str(),
    });
    let v = with_external_id(v, i.external_id.as_deref());
    with_sightings(v, r)
}

/// `v` with the indicator's STIX id or MISP uuid as `external_id`, when it has one (so a
/// CIF pull from this server keeps it).
fn with_external_id(mut v: Value, id: Option<&str>) -> Value {
    if let (Some(id), Some(o)) = (id, v.as_object_mut()) {
        o.insert("external_id".into(), Value::from(id));
    }
    v
}

/// `v` with the row's `sightings` summary, when there is one.
fn with_sightings(mut v: Value, r: &Row) -> Value {
    if let (Some(s), Some(o)) = (r.sightings, v.as_object_mut()) {
        o.insert("sightings".into(), s.json());
    }
    v
}

/// One row as trawl's native JSON: `trawl query --format json`'s fields plus where it came
/// from and how often it was searched.
pub fn native_row(query: &str, r: &Row) -> Value {
    let mut v = matcher::query::row_json(query, &r.ind, r.kind);
    if let Some(o) = v.as_object_mut() {
        o.insert("origin".into(), json!(r.origin));
        o.insert("searched".into(), json!(r.searched));
        // What `trawl export --remote` needs to export a row as a local export would.
        o.insert("exact_only".into(), json!(r.ind.exact_only));
        o.insert("reported".into(), json!(r.ind.reported));
    }
    with_sightings(v, r)
}

/// Most indicators in one submission.
pub const MAX_SUBMISSION: usize = 100_000;

/// Parse a submission body (one object or a list) into indicators the token may submit:
/// the provider is the token's user, the group one of its groups (`everyone` when none is
/// given), the value normalised and checked like a feed's. All or nothing: the errors name
/// each refused item by index.
pub fn parse_submission(
    body: &[u8],
    token: &Token,
    scale: Scale,
    now: UnixTime,
) -> Result<Vec<Indicator>, Vec<String>> {
    let v: Value = serde_json::from_slice(body).map_err(|e| vec![format!("body: {e}")])?;
    let items = match v {
        Value::Array(a) => a,
        Value::Object(_) => vec![v],
        _ => {
            return Err(vec![
                "body: expected an indicator object or a list of them".into()
            ])
        }
    };
    if items.len() > MAX_SUBMISSION {
        return Err(vec![format!(
            "body: {} indicators; at most {MAX_SUBMISSION} per request",
            items.len()
        )]);
    }
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (n, item) in items.iter().enumerate() {
        match item
            .as_object()
            .ok_or_else(|| "expected an object".to_string())
            .and_then(|o| one(o, token, scale, now))
        {
            Ok(i) => out.push(i),
            Err(e) => errors.push(format!("item {n}: {e}")),
        }
        if errors.len() >= 100 {
            errors.push("...".into());
            break;
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A submitted or sighted value in normal form, checked for breadth like a feed's (the one
/// check of submissions and sightings).
fn normal_form(raw: &str, hint: Option<IndicatorType>) -> Result<matcher::Normalized, String> {
    let n = normalize(raw.trim(), hint).map_err(|e| format!("{}: {e}", short(raw)))?;
    feeds::breadth::check_feed_value(n.itype, &n.value, None)?;
    Ok(n)
}

/// [`normal_form`]'s type and value.
pub fn normal_value(
    raw: &str,
    hint: Option<IndicatorType>,
) -> Result<(IndicatorType, String), String> {
    normal_form(raw, hint).map(|n| (n.itype, n.value))
}

fn text<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn one(
    o: &Map<String, Value>,
    token: &Token,
    scale: Scale,
    now: UnixTime,
) -> Result<Indicator, String> {
    let raw = text(o, &["indicator", "value"]).ok_or("missing \"indicator\"")?;
    let hint = match text(o, &["itype"]) {
        Some(t) => Some(
            t.parse::<IndicatorType>()
                .map_err(|e| format!("itype: {e}"))?,
        ),
        None => None,
    };
    let n = normal_form(raw, hint)?;
    if !token.may_use_itype(n.itype) {
        return Err(format!("this token may not use itype {}", n.itype));
    }
    let mut ind = Indicator::new(n.value, n.itype, SUBMISSIONS_SOURCE);
    ind.exact_only = n.exact_only;
    ind.provider = Some(token.grant.user.clone());
    ind.first_seen = Some(now);
    ind.last_seen = Some(now);
    ind.reported = Some(now);
    if let Some(c) = o.get("confidence") {
        let t = match c {
            Value::Number(x) => x.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err("confidence: expected a number".into()),
        };
        ind.confidence = scale.to_trawl(&t).ok_or_else(|| {
            format!(
                "confidence: expected 0 to {}",
                if scale == Scale::Cif { 10 } else { 100 }
            )
        })?;
    }
    if let Some(s) = text(o, &["severity"]) {
        ind.severity = s
            .parse::<Severity>()
            .map_err(|e| format!("severity: {e}"))?;
    }
    if let Some(t) = text(o, &["tlp"]) {
        ind.tlp = t.parse::<Tlp>().map_err(|e| format!("tlp: {e}"))?;
    }
    ind.tags = match o.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(|s| s.trim().to_string()))
            .collect::<Option<Vec<_>>>()
            .ok_or("tags: expected strings")?,
        Some(_) => return Err("tags: expected a list or a comma-separated string".into()),
    };
    ind.tags.retain(|t| !t.is_empty());
    if ind.tags.len() > 32
        || ind
            .tags
            .iter()
            .any(|t| t.len() > 64 || t.chars().any(char::is_control))
    {
        return Err("tags: at most 32 tags of at most 64 printable characters".into());
    }
    let groups: Vec<String> = match o.get("group").or_else(|| o.get("groups")) {
        None | Some(Value::Null) => vec![matcher::DEFAULT_GROUP.to_string()],
        Some(Value::String(s)) => s.split(',').map(|g| g.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|g| g.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("group: expected strings")?,
        Some(_) => return Err("group: expected a name or a list of names".into()),
    };
    for g in &groups {
        feeds::config::check_group_name(g).map_err(|e| format!("group: {e}"))?;
        if !token.in_group(g) {
            return Err(format!("group: this token is not a member of {g:?}"));
        }
    }
    ind.groups = matcher::Groups::from_names(groups);
    for (key, field) in [
        ("description", &mut ind.description),
        ("reference", &mut ind.reference),
    ] {
        if let Some(s) = text(o, &[key]) {
            if s.len() > 4096 {
                return Err(format!("{key}: longer than 4096 bytes"));
            }
            *field = Some(s.to_string());
        }
    }
    if let Some(id) = text(o, &["external_id"]) {
        if !matcher::model::is_external_id(id) {
            return Err(format!(
                "external_id: not a STIX id (type--uuid) or a uuid: {}",
                short(id)
            ));
        }
        ind.external_id = Some(id.to_string());
    }
    for (key, field) in [
        ("firsttime", &mut ind.first_seen),
        ("lasttime", &mut ind.last_seen),
        ("reporttime", &mut ind.reported),
        ("expires", &mut ind.expires),
    ] {
        if let Some(s) = text(o, &[key]) {
            *field = Some(parse_time(s).ok_or_else(|| format!("{key}: not a time: {}", short(s)))?);
        }
    }
    if ind.expires.is_some_and(|e| e <= now) {
        return Err("expires: already past".into());
    }
    ind.tidy();
    Ok(ind)
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}
