//! ECS alert documents (ARCHITECTURE.md §6, a contract): one JSON object per indicator hit.

use base64::Engine as _;

use crate::correlate::FieldHit;
use ingest::observation::{format_timestamp, insert_path};
use ingest::Observation;
use matcher::{IndicatorType, UnixTime};
use serde_json::{Map, Value};

/// What every alert says about the sensor that raised it.
#[derive(Debug, Clone)]
pub struct AlertContext {
    /// `observer.name`.
    pub observer_name: String,
}

/// ECS `threat.indicator.confidence` from a 0-100 CIF confidence.
pub fn ecs_confidence(confidence: u8) -> &'static str {
    match confidence {
        85.. => "High",
        50..=84 => "Medium",
        1..=49 => "Low",
        0 => "None",
    }
}

fn rfc3339(t: UnixTime) -> String {
    let s = format_timestamp(t.saturating_mul(1_000_000_000));
    // Whole seconds: drop the ".000".
    s.replacen(".000Z", "Z", 1)
}

/// Build the alert for one hit on one observation.
///
/// `original` is the raw log line (absent for packets); invalid UTF-8 is kept losslessly in
/// `trawl.original_base64` beside the lossy `event.original`.
pub fn build_alert(
    ctx: &AlertContext,
    obs: &Observation<'_>,
    hit: &FieldHit,
    original: Option<&[u8]>,
    now_ns: i64,
) -> Value {
    let mut root = obs.to_ecs();
    if !root.contains_key("@timestamp") {
        root.insert("@timestamp".into(), format_timestamp(now_ns).into());
    }
    let ind = &hit.indicator;
    let dataset = if obs.dataset.is_empty() {
        "log"
    } else {
        obs.dataset
    };
    let mut event = Map::new();
    event.insert("kind".into(), "alert".into());
    event.insert("module".into(), "trawl".into());
    event.insert("dataset".into(), format!("trawl.{dataset}").into());
    event.insert(
        "severity".into(),
        ind.severity.event_severity(ind.confidence).into(),
    );
    let mut lossless = None;
    if let Some(line) = original {
        match std::str::from_utf8(line) {
            Ok(s) => {
                event.insert("original".into(), s.into());
            }
            Err(_) => {
                event.insert(
                    "original".into(),
                    String::from_utf8_lossy(line).into_owned().into(),
                );
                lossless = Some(base64::engine::general_purpose::STANDARD.encode(line));
            }
        }
    }
    root.insert("event".into(), Value::Object(event));
    let mut observer = Map::new();
    observer.insert("name".into(), ctx.observer_name.clone().into());
    observer.insert("type".into(), "sensor".into());
    observer.insert("vendor".into(), "trawl".into());
    root.insert("observer".into(), Value::Object(observer));

    let mut threat = Map::new();
    let mut indicator = Map::new();
    indicator.insert("type".into(), ind.itype.ecs_name().into());
    indicator.insert("name".into(), ind.value.clone().into());
    match ind.itype {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 if !ind.value.contains('/') => {
            indicator.insert("ip".into(), ind.value.clone().into());
        }
        IndicatorType::Url => {
            insert_path(&mut indicator, "url.full", ind.value.clone().into());
        }
        IndicatorType::Fqdn => {
            insert_path(&mut indicator, "url.domain", ind.value.clone().into());
        }
        IndicatorType::Email => {
            insert_path(&mut indicator, "email.address", ind.value.clone().into());
        }
        t if t.is_file_hash() => {
            insert_path(
                &mut indicator,
                &format!("file.hash.{}", t.as_str()),
                ind.value.clone().into(),
            );
        }
        _ => {}
    }
    indicator.insert("confidence".into(), ecs_confidence(ind.confidence).into());
    if let Some(p) = &ind.provider {
        indicator.insert("provider".into(), p.clone().into());
    }
    if let Some(d) = &ind.description {
        indicator.insert("description".into(), d.clone().into());
    }
    if let Some(r) = &ind.reference {
        indicator.insert("reference".into(), r.clone().into());
    }
    insert_path(&mut indicator, "marking.tlp", ind.tlp.ecs_name().into());
    if let Some(t) = ind.first_seen {
        indicator.insert("first_seen".into(), rfc3339(t).into());
    }
    if let Some(t) = ind.last_seen {
        indicator.insert("last_seen".into(), rfc3339(t).into());
    }
    threat.insert("indicator".into(), Value::Object(indicator));
    if let Some(feed) = ind.sources.first() {
        insert_path(&mut threat, "feed.name", feed.clone().into());
    }
    root.insert("threat".into(), Value::Object(threat));

    let mut trawl = match root.remove("trawl") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut matched = Map::new();
    matched.insert("field".into(), hit.field.into());
    matched.insert("value".into(), hit.value.clone().into());
    matched.insert("kind".into(), hit.hit.kind.as_str().into());
    matched.insert("indicator".into(), ind.value.clone().into());
    matched.insert("itype".into(), ind.itype.as_str().into());
    trawl.insert("matched".into(), Value::Object(matched));
    trawl.insert("confidence".into(), ind.confidence.into());
    trawl.insert("severity".into(), ind.severity.as_str().into());
    trawl.insert("tags".into(), ind.tags.clone().into());
    trawl.insert("sources".into(), ind.sources.clone().into());
    trawl.insert("derived".into(), ind.derived.into());
    if let Some(b) = lossless {
        trawl.insert("original_base64".into(), b.into());
    }
    root.insert("trawl".into(), Value::Object(trawl));
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_buckets() {
        assert_eq!(ecs_confidence(90), "High");
        assert_eq!(ecs_confidence(85), "High");
        assert_eq!(ecs_confidence(50), "Medium");
        assert_eq!(ecs_confidence(10), "Low");
        assert_eq!(ecs_confidence(0), "None");
    }
}
