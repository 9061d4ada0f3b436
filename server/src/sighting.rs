//! Sightings pushed back by sensors (`POST /v1/sightings`, ARCHITECTURE.md §11): the batch
//! a sensor sends, checked item by item, and the per-indicator summary searches and feeds
//! show (`{count, sensors, first_seen, last_seen}`), counting only the sightings a token may
//! see.

use crate::query::parse_time;
use crate::token::Token;
use matcher::{IndicatorType, UnixTime};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// Most items in one batch.
pub const MAX_ITEMS: usize = 10_000;
/// Most client addresses kept per item.
pub const MAX_CLIENTS: usize = 32;
/// Most refused items named in an answer (all are counted).
pub const MAX_ERRORS: usize = 100;
/// Largest count one item may carry.
pub const MAX_COUNT: u64 = 1 << 40;
/// How far ahead of the server's clock a sighting's time may be (clock skew).
pub const MAX_AHEAD: i64 = 86_400;
/// How long the server remembers a batch id (a batch resent later than this counts again).
pub const BATCH_MEMORY: i64 = 90 * 86_400;
/// Longest sensor name, in bytes.
pub const MAX_SENSOR_NAME: usize = 128;

/// One checked item of a batch, in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingItem {
    /// The sighted indicator's type.
    pub itype: IndicatorType,
    /// Its value in normal form.
    pub value: String,
    /// How many alerts.
    pub count: u64,
    /// First alert.
    pub first_seen: UnixTime,
    /// Last alert.
    pub last_seen: UnixTime,
    /// Client addresses (canonical text), at most [`MAX_CLIENTS`], sorted, unique.
    pub clients: Vec<String>,
}

/// A checked batch: the good items merged per indicator, and what was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingBatch {
    /// The batch id: 32 lower-case hex digits (a UUID without dashes, or any 128 random bits).
    pub batch_id: String,
    /// The sensor's name.
    pub sensor: String,
    /// Good items, one per (itype, value).
    pub items: Vec<SightingItem>,
    /// How many items the batch held.
    pub received: usize,
    /// How many good items (before merging).
    pub accepted: usize,
    /// How many were refused.
    pub refused: usize,
    /// The first [`MAX_ERRORS`] refusals, `item N: reason`.
    pub errors: Vec<String>,
}

impl SightingBatch {
    /// The answer to the batch (stored with it, so a replay gets the same text).
    pub fn answer(&self) -> Value {
        serde_json::json!({
            "batch_id": self.batch_id,
            "sensor": self.sensor,
            "items": self.received,
            "accepted": self.accepted,
            "refused": self.refused,
            "errors": self.errors,
        })
    }
}

/// Why a whole batch is refused (nothing stored; the sender may fix and resend it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not the batch shape.
    #[error("{0}")]
    Shape(String),
    /// More than [`MAX_ITEMS`] items.
    #[error("{0} sightings in one batch; at most {MAX_ITEMS}: split it")]
    TooMany(usize),
}

/// Parse and check a batch body at server time `now`. Items are checked one by one: a bad
/// item is counted and named, the others kept.
pub fn parse_batch(body: &[u8], now: UnixTime) -> Result<SightingBatch, BatchError> {
    let shape = |m: &str| BatchError::Shape(m.to_string());
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| BatchError::Shape(format!("body: not JSON: {e}")))?;
    let o = v.as_object().ok_or_else(|| {
        shape("body: expected {\"batch_id\": ..., \"sensor\": ..., \"sightings\": [...]}")
    })?;
    let batch_id = o
        .get("batch_id")
        .and_then(Value::as_str)
        .and_then(batch_id)
        .ok_or_else(|| shape("batch_id: expected a UUID or 32 hex digits (128 random bits)"))?;
    let sensor = o
        .get("sensor")
        .and_then(Value::as_str)
        .ok_or_else(|| shape("sensor: expected the sensor's name"))?;
    check_sensor_name(sensor).map_err(BatchError::Shape)?;
    let list = o
        .get("sightings")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("sightings: expected a list"))?;
    if list.len() > MAX_ITEMS {
        return Err(BatchError::TooMany(list.len()));
    }
    let mut b = SightingBatch {
        batch_id,
        sensor: sensor.to_string(),
        items: Vec::new(),
        received: list.len(),
        accepted: 0,
        refused: 0,
        errors: Vec::new(),
    };
    let mut merged: HashMap<(IndicatorType, String), SightingItem> = HashMap::new();
    for (n, item) in list.iter().enumerate() {
        match item
            .as_object()
            .ok_or_else(|| "expected an object".to_string())
            .and_then(|o| parse_item(o, now))
        {
            Ok(it) => {
                b.accepted += 1;
                match merged.entry((it.itype, it.value.clone())) {
                    std::collections::hash_map::Entry::Occupied(mut e) => merge(e.get_mut(), it),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(it);
                    }
                }
            }
            Err(e) => {
                b.refused += 1;
                if b.errors.len() < MAX_ERRORS {
                    b.errors.push(format!("item {n}: {e}"));
                }
            }
        }
    }
    b.items = merged.into_values().collect();
    b.items
        .sort_by(|x, y| (x.itype, &x.value).cmp(&(y.itype, &y.value)));
    Ok(b)
}

/// Add `more` to `it` (same indicator): counts add up, times widen, clients join (bounded).
fn merge(it: &mut SightingItem, more: SightingItem) {
    it.count = it.count.saturating_add(more.count).min(MAX_COUNT);
    it.first_seen = it.first_seen.min(more.first_seen);
    it.last_seen = it.last_seen.max(more.last_seen);
    let set: BTreeSet<String> = it.clients.drain(..).chain(more.clients).collect();
    it.clients = set.into_iter().take(MAX_CLIENTS).collect();
}

/// A batch id in its stored form, if `s` is one: 32 hex digits, dashes anywhere ignored.
pub fn batch_id(s: &str) -> Option<String> {
    if s.len() > 40 {
        return None;
    }
    let hex: String = s
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// A sensor name: 1 to [`MAX_SENSOR_NAME`] letters, digits and `. _ - :`.
pub fn check_sensor_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SENSOR_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sensor: {:?} is not a sensor name (1 to {MAX_SENSOR_NAME} letters, digits, '.', '-', '_', ':')",
            s.chars().filter(|c| !c.is_control()).take(40).collect::<String>()
        ))
    }
}

fn parse_item(o: &Map<String, Value>, now: UnixTime) -> Result<SightingItem, String> {
    let raw = o
        .get("value")
        .or_else(|| o.get("indicator"))
        .and_then(Value::as_str)
        .ok_or("value: missing")?;
    let hint = match o.get("itype") {
        Some(Value::String(t)) => Some(
            t.parse::<IndicatorType>()
                .map_err(|e| format!("itype: {e}"))?,
        ),
        None | Some(Value::Null) => None,
        Some(_) => return Err("itype: expected a name".into()),
    };
    let (itype, value) = crate::cif::normal_value(raw, hint)?;
    let count = match o.get("count") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|c| (1..=MAX_COUNT).contains(c))
            .ok_or_else(|| format!("count: expected a whole number from 1 to {MAX_COUNT}"))?,
    };
    let time = |key: &str| -> Result<Option<UnixTime>, String> {
        let t = match o.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => parse_time(s),
            Some(_) => None,
        }
        .ok_or_else(|| format!("{key}: expected a time like 2026-05-01T00:00:00Z"))?;
        if !(0..=now + MAX_AHEAD).contains(&t) {
            return Err(format!(
                "{key}: more than a day ahead of the server's clock"
            ));
        }
        Ok(Some(t))
    };
    let last = time("last_seen")?;
    let first = time("first_seen")?;
    let (first, last) = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        (Some(t), None) | (None, Some(t)) => (t, t),
        (None, None) => return Err("first_seen, last_seen: at least one time needed".into()),
    };
    if first > last {
        return Err("first_seen: later than last_seen".into());
    }
    let mut clients = BTreeSet::new();
    match o.get("clients") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for c in a {
                let ip: std::net::IpAddr = c
                    .as_str()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or("clients: expected IP addresses")?;
                if clients.len() < MAX_CLIENTS {
                    clients.insert(ip.to_string());
                }
            }
        }
        Some(_) => return Err("clients: expected a list of IP addresses".into()),
    }
    Ok(SightingItem {
        itype,
        value,
        count,
        first_seen: first,
        last_seen: last,
        clients: clients.into_iter().collect(),
    })
}

/// One stored aggregate: a sensor's sightings of an indicator, under the groups of the token
/// that sent them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SightingRow {
    /// The indicator's type.
    pub itype: IndicatorType,
    /// Its value in normal form.
    pub value: String,
    /// The sensor.
    pub sensor: String,
    /// Who may see the row: the sending token's groups ([`crate::intel::ADMIN_GROUP`] for
    /// a token with none).
    pub groups: Vec<String>,
    /// How many alerts.
    pub count: u64,
    /// First alert.
    pub first_seen: UnixTime,
    /// Last alert.
    pub last_seen: UnixTime,
}

/// What a token may see of an indicator's sightings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sighted {
    /// Alerts, summed over the visible rows.
    pub count: u64,
    /// Distinct sensors.
    pub sensors: u64,
    /// First alert.
    pub first_seen: UnixTime,
    /// Last alert.
    pub last_seen: UnixTime,
}

impl Sighted {
    /// The JSON shape of searches and feeds (times as RFC 3339).
    pub fn json(&self) -> Value {
        let time = |t| crate::query::format_time(t).map_or(Value::Null, Value::String);
        serde_json::json!({
            "count": self.count,
            "sensors": self.sensors,
            "first_seen": time(self.first_seen),
            "last_seen": time(self.last_seen),
        })
    }
}

/// Whether `token` may see a sighting row: it is a member of every group the row carries
/// (admins: of all). The indicator's own rule (TLP, groups, itype) applies on top, since a
/// summary is only shown beside an indicator the token sees.
pub fn may_see(token: &Token, row: &SightingRow) -> bool {
    token.may_use_itype(row.itype) && row.groups.iter().all(|g| token.in_group(g))
}

/// The summaries of `rows` that `token` may see, per (itype, value).
pub fn summarize(token: &Token, rows: &[SightingRow]) -> HashMap<(IndicatorType, String), Sighted> {
    let mut acc: HashMap<(IndicatorType, String), (Sighted, BTreeSet<&str>)> = HashMap::new();
    for r in rows.iter().filter(|r| may_see(token, r)) {
        let e = acc.entry((r.itype, r.value.clone())).or_insert((
            Sighted {
                count: 0,
                sensors: 0,
                first_seen: r.first_seen,
                last_seen: r.last_seen,
            },
            BTreeSet::new(),
        ));
        e.0.count = e.0.count.saturating_add(r.count);
        e.0.first_seen = e.0.first_seen.min(r.first_seen);
        e.0.last_seen = e.0.last_seen.max(r.last_seen);
        e.1.insert(&r.sensor);
    }
    acc.into_iter()
        .map(|(k, (mut s, sensors))| {
            s.sensors = sensors.len() as u64;
            (k, s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn items_are_normalised_merged_and_bad_ones_named() {
        let body = serde_json::json!({
            "batch_id": "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "sensor": "ids-1",
            "sightings": [
                {"itype": "fqdn", "value": "Evil.Example.", "count": 2,
                 "first_seen": "2026-05-01T00:00:00Z", "last_seen": "2026-05-01T01:00:00Z",
                 "clients": ["10.0.0.1", "10.0.0.1", "::1"]},
                {"itype": "fqdn", "value": "evil.example", "count": 3, "first_seen": 1_700_000_000},
                {"itype": "ipv4", "value": "not an ip", "count": 1, "last_seen": NOW},
                {"itype": "fqdn", "value": "a.example", "count": 0, "last_seen": NOW},
                {"itype": "fqdn", "value": "b.example", "last_seen": NOW + 10 * 86_400},
                {"itype": "fqdn", "value": "c.example", "first_seen": NOW, "last_seen": NOW - 1},
                {"itype": "fqdn", "value": "d.example", "last_seen": NOW, "clients": ["x"]},
                7,
            ],
        });
        let b = parse_batch(body.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(b.batch_id, "0f8fad5bd9cb469fa16570867728950e");
        assert_eq!((b.received, b.accepted, b.refused), (8, 2, 6));
        assert_eq!(b.errors.len(), 6);
        for (n, e) in [2, 3, 4, 5, 6, 7].iter().zip(&b.errors) {
            assert!(e.starts_with(&format!("item {n}: ")), "{e}");
        }
        assert!(b.errors[1].contains("count"), "{:?}", b.errors);
        assert_eq!(b.items.len(), 1);
        let it = &b.items[0];
        assert_eq!((it.value.as_str(), it.count), ("evil.example", 5));
        assert_eq!(it.first_seen, 1_700_000_000);
        assert_eq!(it.clients, vec!["10.0.0.1".to_string(), "::1".to_string()]);
    }

    #[test]
    fn bad_batches_are_refused_whole() {
        let shape = |v: Value| parse_batch(v.to_string().as_bytes(), NOW).unwrap_err();
        let ok_id = "0f8fad5bd9cb469fa16570867728950e";
        assert!(matches!(
            shape(serde_json::json!({"sensor": "s", "sightings": []})),
            BatchError::Shape(m) if m.starts_with("batch_id")
        ));
        assert!(matches!(
            shape(serde_json::json!({"batch_id": "1234", "sensor": "s", "sightings": []})),
            BatchError::Shape(m) if m.starts_with("batch_id")
        ));
        assert!(matches!(
            shape(serde_json::json!({"batch_id": ok_id, "sensor": "a b", "sightings": []})),
            BatchError::Shape(m) if m.starts_with("sensor")
        ));
        let many: Vec<Value> = (0..=MAX_ITEMS).map(|_| Value::Null).collect();
        assert_eq!(
            shape(serde_json::json!({"batch_id": ok_id, "sensor": "s", "sightings": many})),
            BatchError::TooMany(MAX_ITEMS + 1)
        );
        assert!(parse_batch(b"[1,2", NOW).is_err());
    }
}
