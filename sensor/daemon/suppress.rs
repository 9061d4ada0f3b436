//! Repeat suppression (DESIGN §6): repeats of the same (indicator, source ip) inside a window
//! are folded into one alert carrying `trawl.repeat_count`, never silently dropped.

use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Entry {
    window_start: Instant,
    suppressed: u64,
    last: Option<Value>,
}

/// Folds repeated alerts.
pub struct Suppressor {
    window: Duration,
    entries: HashMap<(String, String), Entry>,
}

fn key_of(alert: &Value) -> (String, String) {
    let ind = alert["trawl"]["matched"]["indicator"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let src = alert["source"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (ind, src)
}

fn with_count(mut alert: Value, count: u64) -> Value {
    if let Some(t) = alert.get_mut("trawl").and_then(Value::as_object_mut) {
        t.insert("repeat_count".into(), count.into());
    }
    alert
}

impl Suppressor {
    /// Fold repeats within `window`.
    pub fn new(window: Duration) -> Self {
        Suppressor {
            window,
            entries: HashMap::new(),
        }
    }

    /// Offer one alert at `now`: returns the alerts to emit now (zero or one).
    pub fn offer(&mut self, alert: Value, now: Instant) -> Option<Value> {
        let key = key_of(&alert);
        match self.entries.get_mut(&key) {
            Some(e) if now.duration_since(e.window_start) < self.window => {
                e.suppressed += 1;
                e.last = Some(alert);
                None
            }
            Some(e) => {
                // A new window: this alert carries the count folded in the last one.
                let count = e.suppressed;
                e.window_start = now;
                e.suppressed = 0;
                e.last = None;
                Some(if count > 0 {
                    with_count(alert, count)
                } else {
                    alert
                })
            }
            None => {
                self.entries.insert(
                    key,
                    Entry {
                        window_start: now,
                        suppressed: 0,
                        last: None,
                    },
                );
                Some(alert)
            }
        }
    }

    /// Windows that ended with folded repeats and no later alert: emit their last repeat with
    /// the count, so nothing is silently dropped. Idle entries are forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<Value> {
        let mut out = Vec::new();
        let window = self.window;
        self.entries.retain(|_, e| {
            if now.duration_since(e.window_start) < window {
                return true;
            }
            if let Some(last) = e.last.take() {
                out.push(with_count(last, e.suppressed));
            }
            false
        });
        out
    }

    /// Everything still folded (shutdown).
    pub fn drain(&mut self) -> Vec<Value> {
        let out = self
            .entries
            .drain()
            .filter_map(|(_, mut e)| e.last.take().map(|l| with_count(l, e.suppressed)))
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(n: u64) -> Value {
        json!({"source":{"ip":"10.0.0.1"},"trawl":{"matched":{"indicator":"evil.example"}},"n":n})
    }

    #[test]
    fn folds_and_counts() {
        let mut s = Suppressor::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(s.offer(alert(1), t0).is_some());
        assert!(s.offer(alert(2), t0 + Duration::from_secs(1)).is_none());
        assert!(s.offer(alert(3), t0 + Duration::from_secs(2)).is_none());
        let next = s.offer(alert(4), t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(next["trawl"]["repeat_count"], 2);
        assert_eq!(next["n"], 4);
    }

    #[test]
    fn expiry_emits_folded_repeats() {
        let mut s = Suppressor::new(Duration::from_secs(10));
        let t0 = Instant::now();
        s.offer(alert(1), t0);
        s.offer(alert(2), t0 + Duration::from_secs(1));
        let out = s.expire(t0 + Duration::from_secs(11));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["trawl"]["repeat_count"], 1);
        assert_eq!(out[0]["n"], 2);
        assert!(s.expire(t0 + Duration::from_secs(30)).is_empty());
    }
}
