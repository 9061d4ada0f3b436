//! ECS alert documents (ARCHITECTURE.md §6, a contract): one JSON object per indicator hit,
//! made as a typed [`Alert`] that carries what repeat suppression groups it by, so nothing
//! reads a rendered alert back.

use base64::Engine as _;

use crate::correlate::FieldHit;
use ingest::observation::{format_timestamp, insert_path};
use ingest::Observation;
use matcher::{IndicatorType, UnixTime};
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::net::IpAddr;

/// What repeat suppression groups alerts by (ARCHITECTURE.md §6): the indicator hit
/// (`trawl.matched.indicator`) and the observation's `source.ip`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SuppressKey {
    /// The indicator's value.
    pub indicator: String,
    /// The observation's source address, when it has one.
    pub source_ip: Option<IpAddr>,
}

/// One alert: its ECS document, with its suppression key and event time taken from the
/// observation and the hit while the document was built.
#[derive(Debug, Clone)]
pub struct Alert {
    /// What suppression groups this alert by.
    pub key: SuppressKey,
    /// `@timestamp` in nanoseconds since the epoch: the observation's time, else the time the
    /// alert was made.
    pub time_ns: i64,
    doc: Map<String, Value>,
}

impl Alert {
    /// The ECS document.
    pub fn doc(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// Mark the alert as standing for `count` hits (a folded repeat): `trawl.repeat_count`.
    pub fn set_repeat_count(&mut self, count: u64) {
        if let Some(Value::Object(t)) = self.doc.get_mut("trawl") {
            t.insert("repeat_count".into(), count.into());
        }
    }

    /// Set a field at a dotted path (`trawl.retro`), creating the objects above it.
    pub fn insert_path(&mut self, path: &str, value: Value) {
        insert_path(&mut self.doc, path, value);
    }

    /// Write the document as one JSON line.
    pub fn write_line<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        serde_json::to_writer(&mut *out, &self.doc)?;
        out.write_all(b"\n")
    }

    /// An alert with the given parts (suppression tests).
    #[cfg(test)]
    pub(crate) fn from_parts(key: SuppressKey, time_ns: i64, doc: Map<String, Value>) -> Self {
        Alert { key, time_ns, doc }
    }
}

/// Alerts as they are made: rendered into JSON lines at once (the common case, so rendering
/// runs on the threads that matched), or kept typed for an output that folds repeats. Which
/// of the two is chosen when the batch is made; one batch holds alerts or (for `observe`)
/// observation lines, never both.
#[derive(Debug, Default)]
pub struct AlertBatch {
    /// Rendered lines, each ending in `\n`.
    pub lines: Vec<u8>,
    /// Alerts kept typed (only in a batch made with `typed`).
    pub typed: Vec<Alert>,
    keep_typed: bool,
    alerts: usize,
}

impl AlertBatch {
    /// An empty batch; `typed` keeps alerts as values instead of rendering them.
    pub fn new(typed: bool) -> Self {
        AlertBatch {
            keep_typed: typed,
            ..AlertBatch::default()
        }
    }

    /// Add one alert.
    pub fn push(&mut self, alert: Alert) {
        self.alerts += 1;
        if self.keep_typed {
            self.typed.push(alert);
        } else {
            // Writing into a Vec cannot fail.
            let _ = alert.write_line(&mut self.lines);
        }
    }

    /// Add the alerts of `other` after these.
    pub fn append(&mut self, mut other: AlertBatch) {
        self.alerts += other.alerts;
        self.lines.append(&mut other.lines);
        if self.keep_typed {
            self.typed.append(&mut other.typed);
        } else {
            for a in other.typed {
                let _ = a.write_line(&mut self.lines);
            }
        }
    }

    /// Alerts pushed (observation lines are not counted).
    pub fn len(&self) -> usize {
        self.alerts
    }

    /// No alert and no line.
    pub fn is_empty(&self) -> bool {
        self.alerts == 0 && self.lines.is_empty()
    }

    /// Every alert rendered, in order.
    pub fn into_lines(mut self) -> Vec<u8> {
        for a in std::mem::take(&mut self.typed) {
            let _ = a.write_line(&mut self.lines);
        }
        self.lines
    }
}

/// Where alerts are written: a plain writer takes them rendered; an output that folds
/// repeats ([`crate::daemon::suppress::SuppressWriter`]) asks for them typed.
pub trait AlertOutput {
    /// Whether producers should make [`AlertBatch`]es with `typed` for this output.
    fn wants_typed(&self) -> bool {
        false
    }
    /// Write a batch (lines as they are, typed alerts rendered or folded).
    fn write_batch(&mut self, batch: AlertBatch) -> io::Result<()>;
    /// Flush what was written.
    fn flush_alerts(&mut self) -> io::Result<()>;
}

/// A batch is an output too: what is written to it is appended (the daemon's batches).
impl AlertOutput for AlertBatch {
    fn wants_typed(&self) -> bool {
        self.keep_typed
    }
    fn write_batch(&mut self, batch: AlertBatch) -> io::Result<()> {
        self.append(batch);
        Ok(())
    }
    fn flush_alerts(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Any writer takes alerts rendered (it folds nothing).
impl<W: Write> AlertOutput for W {
    fn write_batch(&mut self, batch: AlertBatch) -> io::Result<()> {
        self.write_all(&batch.lines)?;
        for a in &batch.typed {
            a.write_line(self)?;
        }
        Ok(())
    }
    fn flush_alerts(&mut self) -> io::Result<()> {
        self.flush()
    }
}

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
) -> Alert {
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
    if let Some(id) = &ind.external_id {
        indicator.insert("id".into(), id.clone().into());
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
    Alert {
        key: SuppressKey {
            indicator: ind.value.clone(),
            source_ip: obs.source_ip,
        },
        time_ns: obs.timestamp_ns.unwrap_or(now_ns),
        doc: root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::{Hit, Indicator, MatchKind};

    fn hit_on(value: &str, itype: IndicatorType) -> FieldHit {
        FieldHit {
            field: "dns.question.name",
            value: format!("www.{value}"),
            hit: Hit {
                id: 0,
                kind: MatchKind::ParentDomain,
            },
            indicator: Indicator::new(value, itype, "feed"),
        }
    }

    /// The document as its rendered line reads back.
    fn rendered(a: &Alert) -> Value {
        let mut line = Vec::new();
        a.write_line(&mut line).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        serde_json::from_slice(&line).unwrap()
    }

    #[test]
    fn the_suppression_key_and_time_are_what_the_document_says() {
        let ctx = AlertContext {
            observer_name: "s".into(),
        };
        let hit = hit_on("evil.example", IndicatorType::Fqdn);
        let obs = Observation {
            dns_question_name: Some("www.evil.example".into()),
            source_ip: Some("2001:db8::5".parse().unwrap()),
            timestamp_ns: Some(1_764_306_000_123_456_789),
            ..Default::default()
        };
        let a = build_alert(&ctx, &obs, &hit, None, 42);
        let doc = rendered(&a);
        assert_eq!(
            doc["trawl"]["matched"]["indicator"].as_str(),
            Some(a.key.indicator.as_str())
        );
        assert_eq!(
            doc["source"]["ip"].as_str().map(str::to_string),
            a.key.source_ip.map(|ip| ip.to_string())
        );
        assert_eq!(doc["@timestamp"], format_timestamp(a.time_ns));
        assert_eq!(a.time_ns, 1_764_306_000_123_456_789);
        // No source address and no time of its own: the key has none, the time is `now`.
        let obs = Observation {
            dns_question_name: Some("www.evil.example".into()),
            ..Default::default()
        };
        let a = build_alert(&ctx, &obs, &hit, None, 1_700_000_000_000_000_000);
        let doc = rendered(&a);
        assert_eq!(a.key.source_ip, None);
        assert!(doc.get("source").is_none());
        assert_eq!(a.time_ns, 1_700_000_000_000_000_000);
        assert_eq!(doc["@timestamp"], format_timestamp(a.time_ns));
    }

    /// `threat.indicator` of an indicator pulled from TAXII, pinned byte for byte: the
    /// STIX id under `id`, the external reference URL under `reference`.
    #[test]
    fn the_stix_id_is_threat_indicator_id() {
        let ctx = AlertContext {
            observer_name: "s".into(),
        };
        let mut hit = hit_on("evil.example", IndicatorType::Fqdn);
        hit.indicator.external_id = Some("indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d".into());
        hit.indicator.reference = Some("https://intel.example/r/1".into());
        hit.indicator.first_seen = Some(1_764_306_000);
        let obs = Observation {
            dns_question_name: Some("www.evil.example".into()),
            timestamp_ns: Some(1_764_306_000_000_000_000),
            ..Default::default()
        };
        let doc = rendered(&build_alert(&ctx, &obs, &hit, None, 0));
        assert_eq!(
            doc["threat"]["indicator"].to_string(),
            concat!(
                r#"{"confidence":"Medium","first_seen":"2025-11-28T05:00:00Z","#,
                r#""id":"indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d","#,
                r#""marking":{"tlp":"GREEN"},"name":"evil.example","#,
                r#""reference":"https://intel.example/r/1","type":"domain-name","#,
                r#""url":{"domain":"evil.example"}}"#
            )
        );
        // Without one, no `id` at all (not a null).
        let doc = rendered(&build_alert(
            &ctx,
            &obs,
            &hit_on("evil.example", IndicatorType::Fqdn),
            None,
            0,
        ));
        assert!(doc["threat"]["indicator"].get("id").is_none());
    }

    #[test]
    fn a_batch_renders_or_keeps_alerts_typed_in_order() {
        let ctx = AlertContext {
            observer_name: "s".into(),
        };
        let obs = Observation {
            dns_question_name: Some("www.a.example".into()),
            ..Default::default()
        };
        let alerts: Vec<Alert> = ["a.example", "b.example", "c.example"]
            .iter()
            .map(|v| build_alert(&ctx, &obs, &hit_on(v, IndicatorType::Fqdn), None, 0))
            .collect();
        let mut rendered = AlertBatch::new(false);
        let mut typed = AlertBatch::new(true);
        for a in &alerts {
            rendered.push(a.clone());
            typed.push(a.clone());
        }
        assert!(rendered.typed.is_empty() && typed.lines.is_empty());
        assert_eq!((rendered.len(), typed.len()), (3, 3));
        let mut repeat = alerts[2].clone();
        repeat.set_repeat_count(4);
        let mut tail = AlertBatch::new(true);
        tail.push(repeat);
        rendered.append(tail);
        let lines = rendered.into_lines();
        let text = String::from_utf8(lines).unwrap();
        let docs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let names: Vec<&str> = docs
            .iter()
            .map(|d| d["trawl"]["matched"]["indicator"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a.example", "b.example", "c.example", "c.example"]);
        assert_eq!(docs[3]["trawl"]["repeat_count"], 4);
        assert!(docs[2]["trawl"].get("repeat_count").is_none());
        // The typed batch renders the same bytes as the rendered one did.
        let mut once = Vec::new();
        for a in &alerts {
            a.write_line(&mut once).unwrap();
        }
        assert_eq!(typed.into_lines(), once);
    }

    #[test]
    fn confidence_buckets() {
        assert_eq!(ecs_confidence(90), "High");
        assert_eq!(ecs_confidence(85), "High");
        assert_eq!(ecs_confidence(50), "Medium");
        assert_eq!(ecs_confidence(10), "Low");
        assert_eq!(ecs_confidence(0), "None");
    }
}
