//! STIX 2.1 sightings of alerted indicators, for the `taxii` sink (ARCHITECTURE.md §2.5).
//!
//! A batch of alert lines becomes one TAXII envelope: the sensor as an `identity` (from
//! `observer.name`) and one `sighting` per indicator whose `threat.indicator.id` is a
//! STIX indicator id (the indicator's `external_id`, kept from STIX and TAXII), with the batch's `count` and the
//! first and last `@timestamp`. Alerts of other indicators are not sent. Ids and times come
//! from the alerts alone, so a batch retried from the spool is the same objects again (the
//! server keeps one version).

use feeds::export::uuid5_id;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The name the sensor's STIX identity is made from: the alerts' `observer.name`, an empty
/// one being `trawl` as in `trawl export --format stix`, so a sensor's sightings and its
/// exports carry one identity id.
fn identity_name(observer: Option<&str>) -> &str {
    match observer.map(str::trim) {
        None | Some("") => "trawl",
        Some(n) => n,
    }
}

/// A STIX indicator id (`indicator--` and a UUID's 36 characters).
fn is_indicator_id(s: &str) -> bool {
    s.strip_prefix("indicator--")
        .is_some_and(|u| u.len() == 36 && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

/// Per indicator: sightings in the batch, first and last time.
struct Seen {
    count: u64,
    first: String,
    last: String,
}

/// The TAXII envelope (JSON) of the sightings in `lines`, or `None` when no alert is of a
/// STIX indicator. Lines that are not JSON alerts are skipped (the spool only holds ours).
pub(crate) fn envelope(lines: &[&[u8]]) -> Option<Vec<u8>> {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut sensor = String::new();
    for line in lines {
        let Ok(alert) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        // `threat.indicator.id`; alerts spooled by a trawl before it carried the STIX id
        // in `reference`.
        let ti = &alert["threat"]["indicator"];
        let Some(id) = [&ti["id"], &ti["reference"]]
            .into_iter()
            .filter_map(Value::as_str)
            .find(|id| is_indicator_id(id))
        else {
            continue;
        };
        let Some(at) = alert["@timestamp"].as_str() else {
            continue;
        };
        if sensor.is_empty() {
            sensor = identity_name(alert["observer"]["name"].as_str()).into();
        }
        let repeats = alert["trawl"]["repeat_count"].as_u64().unwrap_or(1).max(1);
        let e = seen.entry(id.to_string()).or_insert_with(|| Seen {
            count: 0,
            first: at.to_string(),
            last: at.to_string(),
        });
        e.count += repeats;
        if at < e.first.as_str() {
            e.first = at.to_string();
        }
        if at > e.last.as_str() {
            e.last = at.to_string();
        }
    }
    if seen.is_empty() {
        return None;
    }
    let identity = uuid5_id("identity", &sensor);
    let mut objects = vec![json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity,
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2020-01-01T00:00:00.000Z",
        "name": sensor,
        "identity_class": "system",
    })];
    for (id, s) in seen {
        let seed = format!("{id}|{}|{}|{}|{sensor}", s.first, s.last, s.count);
        objects.push(json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": uuid5_id("sighting", &seed),
            "created": s.last,
            "modified": s.last,
            "created_by_ref": identity,
            "sighting_of_ref": id,
            "first_seen": s.first,
            "last_seen": s.last,
            "count": s.count,
            "where_sighted_refs": [identity],
        }));
    }
    serde_json::to_vec(&json!({ "objects": objects })).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, at: &str, repeats: Option<u64>) -> Vec<u8> {
        let mut a = json!({
            "@timestamp": at,
            "observer": {"name": "edge-1"},
            "threat": {"indicator": {"id": id}},
        });
        if let Some(r) = repeats {
            a["trawl"] = json!({ "repeat_count": r });
        }
        a.to_string().into_bytes()
    }

    #[test]
    fn one_sighting_per_stix_indicator_with_count_and_times() {
        let id = "indicator--00000000-0000-4000-8000-000000000001";
        let lines = [
            alert(id, "2026-01-01T00:00:05.000Z", None),
            alert(id, "2026-01-01T00:00:01.000Z", Some(3)),
            alert("SBL123", "2026-01-01T00:00:02.000Z", None),
            b"not json".to_vec(),
        ];
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let env: Value = serde_json::from_slice(&envelope(&refs).unwrap()).unwrap();
        let objs = env["objects"].as_array().unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["type"], "identity");
        assert_eq!(objs[0]["name"], "edge-1");
        let s = &objs[1];
        assert_eq!(s["sighting_of_ref"], id);
        assert_eq!(s["count"], 4);
        assert_eq!(s["first_seen"], "2026-01-01T00:00:01.000Z");
        assert_eq!(s["last_seen"], "2026-01-01T00:00:05.000Z");
        assert_eq!(s["where_sighted_refs"][0], objs[0]["id"]);
        // The same batch gives the same ids (a retry repeats, it does not add).
        assert_eq!(envelope(&refs), envelope(&refs));
        let sid = s["id"].as_str().unwrap();
        assert!(sid.starts_with("sighting--") && sid.len() == "sighting--".len() + 36);
        // uuid5 (the export's id function), not a random or a home-made layout.
        assert_eq!(&sid[24..25], "5", "{sid}");
    }

    #[test]
    fn the_id_field_is_read_and_a_spooled_older_alert_s_reference_too() {
        let new_id = "indicator--00000000-0000-4000-8000-00000000000a";
        let old_id = "indicator--00000000-0000-4000-8000-00000000000b";
        let with_url = json!({
            "@timestamp": "2026-01-01T00:00:00Z",
            "threat": {"indicator": {"id": new_id, "reference": "https://ref.example/1"}},
        })
        .to_string()
        .into_bytes();
        let older = json!({
            "@timestamp": "2026-01-01T00:00:01Z",
            "threat": {"indicator": {"reference": old_id}},
        })
        .to_string()
        .into_bytes();
        let misp = alert(
            "5f0c8a3e-1111-4000-8000-000000000003",
            "2026-01-01T00:00:02Z",
            None,
        );
        let refs: Vec<&[u8]> = vec![&with_url, &older, &misp];
        let env: Value = serde_json::from_slice(&envelope(&refs).unwrap()).unwrap();
        let of: Vec<&str> = env["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["sighting_of_ref"].as_str())
            .collect();
        assert_eq!(of, vec![new_id, old_id]);
    }

    #[test]
    fn the_sensor_identity_is_the_export_s() {
        let lines = [alert(
            "indicator--00000000-0000-4000-8000-000000000001",
            "2026-01-01T00:00:00Z",
            None,
        )];
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let env: Value = serde_json::from_slice(&envelope(&refs).unwrap()).unwrap();
        assert_eq!(env["objects"][0]["id"], uuid5_id("identity", "edge-1"));
        // An alert without an observer name is the export's unnamed sensor, "trawl".
        let bare = json!({
            "@timestamp": "2026-01-01T00:00:00Z",
            "observer": {"name": " "},
            "threat": {"indicator": {"id": "indicator--00000000-0000-4000-8000-000000000001"}},
        })
        .to_string()
        .into_bytes();
        let env: Value = serde_json::from_slice(&envelope(&[&bare]).unwrap()).unwrap();
        assert_eq!(env["objects"][0]["id"], uuid5_id("identity", "trawl"));
        assert_eq!(env["objects"][0]["name"], "trawl");
    }

    #[test]
    fn batches_without_stix_indicators_send_nothing() {
        let lines = [alert("https://ref.example/1", "2026-01-01T00:00:00Z", None)];
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        assert!(envelope(&refs).is_none());
        assert!(!is_indicator_id("indicator--../../x"));
    }
}
