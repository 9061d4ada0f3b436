//! A MISP event (the event file of a MISP feed, `{"Event": {...}}`): one attribute per
//! indicator, `to_ids` set, its uuid the kept MISP uuid or the uuid5 of its type and value
//! (as the STIX export names it), TLP and tags as MISP tags, the sensor as the `Orgc`. A
//! MISP instance imports it; with a `manifest.json` naming it, it is a MISP feed trawl's
//! own `misp-feed` pull reads back; [`write_feed`] writes that whole feed directory.

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

/// The event's uuid: stable for a sensor (each export is a new version of one event).
pub(crate) fn event_uuid(opts: &ExportOptions) -> String {
    let name = sensor(opts);
    uuid5_id("event", &format!("misp-event:{name}"))
        .trim_start_matches("event--")
        .to_string()
}

fn sensor(opts: &ExportOptions) -> &str {
    match opts.sensor_name.trim() {
        "" => "trawl",
        n => n,
    }
}

/// The event's own fields (everything but its attributes).
fn head(opts: &ExportOptions) -> Value {
    let name = sensor(opts);
    let created = opts.created.to_string();
    let date = super::rfc3339(opts.created)
        .and_then(|s| s.get(..10).map(str::to_string))
        .unwrap_or_else(|| "1970-01-01".into());
    json!({
        "uuid": event_uuid(opts),
        "info": format!("trawl indicators of {name}"),
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

/// Write the event.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let head = head(opts);
    // The event's own fields, then its attributes one per line, so a large export is
    // written a line at a time.
    let text = head.to_string();
    let open = text.strip_suffix('}').unwrap_or(&text);
    write!(out, "{{\"Event\":{open},\"Attribute\":[")?;
    let mut first = true;
    for it in &p.items {
        let Some((kind, category)) = misp_type(it.ind.itype) else {
            stats.skipped_unsupported += 1;
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
            "timestamp": ind.reported.or(ind.first_seen).unwrap_or(opts.created).to_string(),
            "Tag": tags,
        });
        if let Some(d) = &ind.description {
            a["comment"] = json!(d);
        }
        write!(out, "{}\n{a}", if first { "" } else { "," })?;
        first = false;
        stats.written += 1;
        stats.rules += 1;
    }
    writeln!(out, "\n]}}}}")?;
    Ok(())
}

/// The event's entry in a feed's `manifest.json`, as PyMISP's `MISPEvent.manifest` makes it
/// (numbers where the event has strings; no tags, the event has none of its own).
fn manifest(opts: &ExportOptions) -> Value {
    let h = head(opts);
    json!({ event_uuid(opts): {
        "Orgc": h["Orgc"], "Tag": [], "info": h["info"], "date": h["date"],
        "analysis": 2, "threat_level_id": 4, "timestamp": opts.created,
    }})
}

/// Write a MISP feed into the empty directory `dir`: `<uuid>.json` (the event [`write`]
/// writes), `manifest.json` naming it and `hashes.csv` (`md5(value),event uuid` per
/// attribute, in the event's order), as PyMISP's feed generator writes them.
pub(crate) fn write_feed(
    p: &Prepared,
    opts: &ExportOptions,
    dir: &std::path::Path,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    use md5::Digest;
    let uuid = event_uuid(opts);
    let create = |name: &str| -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut event = create(&format!("{uuid}.json"))?;
    write(p, opts, &mut event, stats)?;
    event.flush()?;
    let mut hashes = create("hashes.csv")?;
    for it in &p.items {
        if misp_type(it.ind.itype).is_some() {
            let md5 = md5::Md5::digest(it.ind.value.as_bytes());
            let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(hashes, "{hex},{uuid}")?;
        }
    }
    hashes.flush()?;
    let mut m = create("manifest.json")?;
    writeln!(m, "{}", manifest(opts))?;
    m.flush()?;
    Ok(())
}
