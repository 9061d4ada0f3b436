//! A STIX 2.1 bundle: one `indicator` per trawl indicator (or per STIX indicator its
//! indicators came from), with a pattern in the forms trawl's own parser reads
//! (`parse::stix_pattern`), the kept STIX id or a uuid5 of `(itype, value)` so re-exports
//! are stable, `valid_from`/`valid_until`, `confidence`, tags as `labels`, TLP as the
//! standard marking definitions and the sensor as the `identity` that created them. One
//! object per line, so a bundle of millions is written a line at a time.

use super::{rfc3339, ExportError, ExportOptions, ExportStats, Item, Prepared};
use matcher::{IndicatorType, Tlp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

/// The STIX 2.1 namespace for deterministic identifiers (STIX 2.1 §2.9).
const NAMESPACE: [u8; 16] = [
    0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7,
];

/// A STIX id of type `kind` with the RFC 4122 version-5 UUID of `name` in [`NAMESPACE`].
pub fn uuid5_id(kind: &str, name: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&NAMESPACE);
    ctx.update(name.as_bytes());
    let digest = ctx.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{kind}--{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The standard TLP marking definition of `tlp`: TLP 1.0's (STIX 2.1 §7.2.1.4), and TLP
/// 2.0's for `amber+strict`, which 1.0 lacks; the object and its id.
fn marking(tlp: Tlp) -> (&'static str, Value) {
    let (id, name, created) = match tlp {
        Tlp::Clear => (
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            "white",
            "2017-01-20T00:00:00.000Z",
        ),
        Tlp::Green => (
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "green",
            "2017-01-20T00:00:00.000Z",
        ),
        Tlp::Amber => (
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            "amber",
            "2017-01-20T00:00:00.000Z",
        ),
        Tlp::AmberStrict => (
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            "amber+strict",
            "2022-10-01T00:00:00.000Z",
        ),
        Tlp::Red => (
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            "red",
            "2017-01-20T00:00:00.000Z",
        ),
    };
    let object = if tlp == Tlp::AmberStrict {
        json!({
            "type": "marking-definition", "spec_version": "2.1", "id": id,
            "created": created, "name": "TLP:AMBER+STRICT",
            "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
                {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}},
        })
    } else {
        json!({
            "type": "marking-definition", "spec_version": "2.1", "id": id,
            "created": created, "definition_type": "tlp",
            "name": format!("TLP:{}", name.to_ascii_uppercase()),
            "definition": {"tlp": name},
        })
    };
    (id, object)
}

/// A STIX string literal: quoted, `\` and `'` escaped.
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The pattern comparison of an indicator, or `None` for a type STIX patterns do not say
/// as trawl reads them (JA3, JA4, substring patterns).
fn comparison(it: &Item) -> Option<String> {
    let v = &it.ind.value;
    let value = literal(v);
    Some(match it.ind.itype {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
            let obj = if it.ind.itype == IndicatorType::Ipv4 {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            let op = if v.contains('/') { "ISSUBSET" } else { "=" };
            format!("{obj}:value {op} {value}")
        }
        IndicatorType::Fqdn => format!("domain-name:value = {value}"),
        IndicatorType::Url => format!("url:value = {value}"),
        IndicatorType::Email => format!("email-addr:value = {value}"),
        IndicatorType::Md5 => format!("file:hashes.MD5 = {value}"),
        IndicatorType::Sha1 => format!("file:hashes.'SHA-1' = {value}"),
        IndicatorType::Sha256 => format!("file:hashes.'SHA-256' = {value}"),
        IndicatorType::Sha512 => format!("file:hashes.'SHA-512' = {value}"),
        IndicatorType::X509Sha1 => format!("x509-certificate:hashes.'SHA-1' = {value}"),
        IndicatorType::Ja3 | IndicatorType::Ja4 | IndicatorType::Pattern => return None,
    })
}

/// The STIX id an indicator is exported under: the kept one when it is a STIX indicator
/// id, else the uuid5 of its type and value.
fn indicator_id(it: &Item) -> String {
    match it.ind.external_id.as_deref() {
        Some(id) if id.starts_with("indicator--") && matcher::model::is_external_id(id) => {
            id.to_string()
        }
        _ => uuid5_id(
            "indicator",
            &format!("{}:{}", it.ind.itype.as_str(), it.ind.value),
        ),
    }
}

/// Write the bundle.
pub(crate) fn write(
    p: &Prepared,
    opts: &ExportOptions,
    out: &mut dyn Write,
    stats: &mut ExportStats,
) -> Result<(), ExportError> {
    let created = stamp(opts.created);
    // STIX requires the identity's name: an unnamed sensor is "trawl".
    let name = match opts.sensor_name.trim() {
        "" => "trawl",
        n => n,
    };
    let identity = uuid5_id("identity", name);
    // Indicators that came from one STIX indicator (an OR pattern) go back as one.
    let mut groups: Vec<(String, Vec<(&Item, String)>)> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for it in &p.items {
        let Some(c) = comparison(it) else {
            stats.skipped_unsupported += 1;
            continue;
        };
        let id = indicator_id(it);
        let at = *by_id.entry(id.clone()).or_insert_with(|| {
            groups.push((id, Vec::new()));
            groups.len() - 1
        });
        if let Some(g) = groups.get_mut(at) {
            g.1.push((it, c));
        }
    }
    let bundle = uuid5_id("bundle", &format!("{name}|{created}"));
    writeln!(out, r#"{{"type":"bundle","id":"{bundle}","objects":["#)?;
    let sensor = json!({
        "type": "identity", "spec_version": "2.1", "id": identity,
        "created": created, "modified": created,
        "name": name, "identity_class": "system",
    });
    write!(out, "{sensor}")?;
    let mut used: Vec<Tlp> = groups
        .iter()
        .filter_map(|g| g.1.first())
        .map(|(it, _)| it.ind.tlp)
        .collect();
    used.sort();
    used.dedup();
    for tlp in used {
        write!(out, ",\n{}", marking(tlp).1)?;
    }
    for (id, members) in &groups {
        let Some((first, _)) = members.first() else {
            continue;
        };
        let ind = &first.ind;
        let pattern = members
            .iter()
            .map(|(_, c)| format!("[{c}]"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let from = ind.reported.or(ind.first_seen).unwrap_or(opts.created);
        let mut o = json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": created, "modified": created,
            "created_by_ref": identity,
            "pattern": pattern, "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": stamp(from),
            "confidence": ind.confidence,
            "object_marking_refs": [marking(ind.tlp).0],
        });
        if let Some(e) = ind.expires.filter(|&e| e > from) {
            o["valid_until"] = json!(stamp(e));
        }
        if !ind.tags.is_empty() {
            o["labels"] = json!(ind.tags);
        }
        if let Some(d) = &ind.description {
            o["description"] = json!(d);
        }
        if let Some(r) = &ind.reference {
            let key = if r.starts_with("http://") || r.starts_with("https://") {
                "url"
            } else {
                "external_id"
            };
            o["external_references"] = json!([{ "source_name": "trawl", key: r }]);
        }
        write!(out, ",\n{o}")?;
        stats.written += members.len() as u64;
        stats.rules += 1;
    }
    writeln!(out, "\n]}}")?;
    Ok(())
}

/// A STIX timestamp (RFC 3339 UTC, milliseconds as STIX examples write them).
fn stamp(t: i64) -> String {
    rfc3339(t)
        .map(|s| format!("{}.000Z", s.trim_end_matches('Z')))
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid5_is_the_rfc_4122_one() {
        // Python: uuid.uuid5(uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7"), "sensor-1")
        assert_eq!(
            uuid5_id("identity", "sensor-1"),
            "identity--ec3cba4e-efc9-590b-a5a8-64ca76685ec2"
        );
        let id = uuid5_id("indicator", "fqdn:evil.example");
        assert!(id.starts_with("indicator--"), "{id}");
        let u = &id["indicator--".len()..];
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5", "version 5: {u}");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "variant: {u}");
        assert_eq!(id, uuid5_id("indicator", "fqdn:evil.example"));
        assert_ne!(id, uuid5_id("indicator", "fqdn:evil.example."));
    }

    #[test]
    fn an_unnamed_sensor_is_named_trawl() {
        let p = Prepared {
            items: Vec::new(),
            allow: Vec::new(),
        };
        let opts = ExportOptions {
            sensor_name: " ".into(),
            ..ExportOptions::default()
        };
        let mut out = Vec::new();
        write(&p, &opts, &mut out, &mut ExportStats::default()).unwrap();
        let bundle: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(bundle["objects"][0]["name"], "trawl");
        assert_eq!(bundle["objects"][0]["id"], uuid5_id("identity", "trawl"));
    }

    #[test]
    fn literals_escape_what_the_parser_unescapes() {
        let v = r"http://x.example/a'b\c";
        let pattern = format!("[url:value = {}]", literal(v));
        let parsed = crate::parse::stix_pattern::parse(&pattern).expect("parses");
        assert_eq!(parsed.comparisons[0].1, v);
    }
}
