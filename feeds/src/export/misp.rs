//! A MISP event (the event file of a MISP feed, `{"Event": {...}}`): one attribute per
//! indicator, `to_ids` set, its uuid the kept MISP uuid or the uuid5 of its type and value
//! (as the STIX export names it), TLP and tags as MISP tags, the sensor as the `Orgc`. A
//! MISP instance imports it. [`write_feed`] writes a whole MISP feed directory, an event per
//! feed, which trawl's own `misp-feed` pull (and MISP's feed fetcher) reads back.

use super::stix::uuid5_id;
use super::{ExportError, ExportOptions, ExportStats, Item, Prepared};
use matcher::IndicatorType;
use serde_json::{json, Value};
use std::io::Write;

/// The MISP attribute type and category of an indicator, or `None` for a type MISP
/// attributes do not say as trawl reads them (JA4, substring patterns).
fn misp_type(t: IndicatorType) -> Option<(&'static str, &'static str)> {
    Some(match t {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => ("ip-dst", "Network activity"),
        IndicatorType::Fqdn => ("domain", "Network activity"),
        IndicatorType::Url => ("url", "Network activity"),
        IndicatorType::Email => ("email-src", "Payload delivery"),
        IndicatorType::Md5 => ("md5", "Payload delivery"),
        IndicatorType::Sha1 => ("sha1", "Payload delivery"),
        IndicatorType::Sha256 => ("sha256", "Payload delivery"),
        IndicatorType::Sha512 => ("sha512", "Payload delivery"),
        IndicatorType::X509Sha1 => ("x509-fingerprint-sha1", "Network activity"),
        IndicatorType::Ja3 => ("ja3-fingerprint-md5", "Network activity"),
        IndicatorType::Ja4 | IndicatorType::Pattern => return None,
    })
}

/// A bare uuid: the kept one when it is a MISP uuid, else that of the STIX export's uuid5.
fn attribute_uuid(it: &Item) -> String {
    match it.ind.external_id.as_deref() {
        Some(id) if !id.contains("--") && matcher::model::is_external_id(id) => id.to_string(),
        _ => {
            let id = uuid5_id(
                "indicator",
                &format!("{}:{}", it.ind.itype.as_str(), it.ind.value),
            );
            id.trim_start_matches("indicator--").to_string()
        }
    }
}

/// One event to write: its uuid, its `info`, and its time (`timestamp`, `date`).
struct Event {
    uuid: String,
    info: String,
    timestamp: i64,
}

/// The bare uuid5 of an event named `name`.
fn event_uuid(name: &str) -> String {
    uuid5_id("event", name)
        .trim_start_matches("event--")
        .to_string()
}

/// The one event of `--format misp`: stable for a sensor (each export is a new version of
/// one event), of the export's time.
fn whole_export(opts: &ExportOptions) -> Event {
    let name = sensor(opts);
    Event {
        uuid: event_uuid(&format!("misp-event:{name}")),
        info: format!("trawl indicators of {name}"),
        timestamp: opts.created,
    }
}

/// The event of one feed in a MISP feed export: its uuid stable for the sensor and the
/// feed, its time the newest of its attributes' ([`attribute_time`]), so that exporting
/// again changes only the events of feeds that gained indicators.
fn feed_event<'a>(
    opts: &ExportOptions,
    feed: &str,
    items: impl Iterator<Item = &'a Item>,
) -> Event {
    let name = sensor(opts);
    Event {
        uuid: event_uuid(&format!("misp-event:{name}:{feed}")),
        info: format!("trawl indicators of {name} from {feed}"),
        timestamp: items
            .map(|it| attribute_time(it, opts))
            .max()
            .unwrap_or(opts.created),
    }
}

/// An attribute's time: when the feed reported the indicator, else when it was first seen,
/// else the export's.
fn attribute_time(it: &Item, opts: &ExportOptions) -> i64 {
    it.ind
        .reported
        .or(it.ind.first_seen)
        .unwrap_or(opts.created)
}

fn sensor(opts: &ExportOptions) -> &str {
    match opts.sensor_name.trim() {
        "" => "trawl",
        n => n,
    }
}

/// The event's own fields (everything but its attributes).
fn head(opts: &ExportOptions, ev: &Event) -> Value {
    let name = sensor(opts);
    let created = ev.timestamp.to_string();
    let date = super::rfc3339(ev.timestamp)
        .and_then(|s| s.get(..10).map(str::to_string))
        .unwrap_or_else(|| "1970-01-01".into());
    json!({
        "uuid": ev.uuid,
        "info": ev.info,
        "date": date,
        "timestamp": created,
        "publish_timestamp": created,
        "published": true,
        "analysis": "2",
        "threat_level_id": "4",
        "distribution": "3",
        "Orgc": {"name": name, "uuid": uuid5_id("identity", name).trim_start_matches("identity--")},
    })
}

/// Write the one event of every exportable indicator (`--format misp`).
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let written = write_event(opts, &whole_export(opts), p.items.iter(), out)?;
    stats.written += written as u64;
    stats.rules += written as u64;
    stats.skipped_unsupported += (p.items.len() - written) as u64;
    Ok(())
}

/// Write event `ev` of `items` (those MISP can say); returns how many it holds.
fn write_event<'a>(
    opts: &ExportOptions,
    ev: &Event,
    items: impl Iterator<Item = &'a Item>,
    out: &mut dyn Write,
) -> std::io::Result<usize> {
    // The event's own fields, then its attributes one per line, so a large export is
    // written a line at a time.
    let text = head(opts, ev).to_string();
    let open = text.strip_suffix('}').unwrap_or(&text);
    write!(out, "{{\"Event\":{open},\"Attribute\":[")?;
    let mut written = 0;
    for it in items {
        let Some((kind, category)) = misp_type(it.ind.itype) else {
            continue;
        };
        let ind = &it.ind;
        let mut tags: Vec<Value> = vec![json!({ "name": format!("tlp:{}", ind.tlp.as_str()) })];
        tags.extend(ind.tags.iter().map(|t| json!({ "name": t })));
        let mut a = json!({
            "uuid": attribute_uuid(it),
            "type": kind,
            "category": category,
            "value": ind.value,
            "to_ids": true,
            "timestamp": attribute_time(it, opts).to_string(),
            "Tag": tags,
        });
        if let Some(d) = &ind.description {
            a["comment"] = json!(d);
        }
        write!(out, "{}\n{a}", if written == 0 { "" } else { "," })?;
        written += 1;
    }
    writeln!(out, "\n]}}}}")?;
    Ok(written)
}

/// The event's entry in a feed's `manifest.json`, as PyMISP's `MISPEvent.manifest` makes it
/// (numbers where the event has strings; no tags, the event has none of its own).
fn manifest_entry(opts: &ExportOptions, ev: &Event) -> Value {
    let h = head(opts, ev);
    json!({
        "Orgc": h["Orgc"], "Tag": [], "info": h["info"], "date": h["date"],
        "analysis": 2, "threat_level_id": 4, "timestamp": ev.timestamp,
    })
}

/// The feeds an indicator is exported under: those that listed it, else its provider, else
/// the sensor's own (`trawl`).
fn feeds_of(it: &Item) -> Vec<&str> {
    if !it.ind.sources.is_empty() {
        return it.ind.sources.iter().map(String::as_str).collect();
    }
    vec![it.ind.provider.as_deref().unwrap_or("trawl")]
}

/// Write a MISP feed into the empty directory `dir`, as PyMISP's feed generator writes one:
/// an event per feed (`<uuid>.json`, the attributes of the indicators that feed listed, in
/// the export's order; an indicator of several feeds is in each of their events),
/// `manifest.json` naming every event, and `hashes.csv` (`md5(value),event uuid` per
/// attribute, event by event in the order of the feeds' names).
pub(crate) fn write_feed(
    p: &Prepared,
    opts: &ExportOptions,
    dir: &std::path::Path,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    use md5::Digest;
    // Each feed's items, in the export's order.
    let mut by_feed: std::collections::BTreeMap<&str, Vec<&Item>> = Default::default();
    for it in &p.items {
        if misp_type(it.ind.itype).is_none() {
            stats.skipped_unsupported += 1;
            continue;
        }
        stats.written += 1;
        stats.rules += 1;
        for feed in feeds_of(it) {
            by_feed.entry(feed).or_default().push(it);
        }
    }
    let create = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut manifest = serde_json::Map::new();
    let mut hashes = create("hashes.csv")?;
    for (feed, items) in &by_feed {
        let ev = feed_event(opts, feed, items.iter().copied());
        let mut event = create(&format!("{}.json", ev.uuid))?;
        write_event(opts, &ev, items.iter().copied(), &mut event)?;
        event.flush()?;
        for it in items {
            let md5 = md5::Md5::digest(it.ind.value.as_bytes());
            let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(hashes, "{hex},{}", ev.uuid)?;
        }
        manifest.insert(ev.uuid.clone(), manifest_entry(opts, &ev));
    }
    hashes.flush()?;
    let mut m = create("manifest.json")?;
    writeln!(m, "{}", Value::Object(manifest))?;
    m.flush()?;
    Ok(())
}
