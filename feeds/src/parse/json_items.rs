//! The items of one JSON document, each handed over as a [`Value`] and dropped before the
//! next is read (ARCHITECTURE.md §2.1.1): a STIX bundle of millions of objects, a MISP
//! event of a million attributes or a `{"data": [...]}` wrapper is walked with serde's
//! `DeserializeSeed`, never held as one `Value` tree.
//!
//! [`walk`] is the one walker: a [`Visit`] says which arrays and objects to walk into and
//! gets every other value whole; [`each_item`] is the common shape over it (an array's
//! elements, or those of one member of an object).

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// What a [`walk`] does at each value of the document; the visitor keeps its own place
/// (`enter` and `leave` nest).
pub(crate) trait Visit {
    /// Whether to walk into the array (`array`) or object that is member `key` of the
    /// object being walked (`None`: the document itself, or an element of an array being
    /// walked); declined, it is handed to [`Visit::value`] whole.
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool;
    /// A value not walked into: a scalar, or an array or object `enter` declined.
    fn value(&mut self, key: Option<&str>, v: Value);
    /// The end of an array or object walked into.
    fn leave(&mut self);
}

/// Walk the JSON document in `bytes` with `v`. The whole document is checked: a syntax
/// error anywhere is the error (the one a `Value` parse gives), after `v` saw what came
/// before it; walk twice to act only on a valid document.
pub(crate) fn walk(bytes: &[u8], v: &mut dyn Visit) -> Result<(), serde_json::Error> {
    walk_with(serde_json::Deserializer::from_slice(bytes), v)
}

/// [`walk`] of the document `r` reads (a file read a buffer at a time, never whole).
pub(crate) fn walk_reader(
    r: impl std::io::Read,
    v: &mut dyn Visit,
) -> Result<(), serde_json::Error> {
    walk_with(serde_json::Deserializer::from_reader(r), v)
}

fn walk_with<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    v: &mut dyn Visit,
) -> Result<(), serde_json::Error> {
    Node { key: None, v }.deserialize(&mut de)?;
    de.end()
}

/// Hand `f` each item of the document in `bytes`: a top-level array's elements, else the
/// elements of the top-level object's `key` array, else that object itself (a scalar
/// document has none). Errors as [`walk`].
pub(crate) fn each_item(
    bytes: &[u8],
    key: &str,
    f: &mut dyn FnMut(Value),
) -> Result<(), serde_json::Error> {
    let mut items = Items {
        key,
        f,
        depth: 0,
        object: false,
        streamed: false,
        rest: Map::new(),
    };
    walk(bytes, &mut items)
}

/// The [`Visit`] of [`each_item`].
struct Items<'a, 'f> {
    key: &'a str,
    f: &'f mut dyn FnMut(Value),
    depth: usize,
    /// The document is an object.
    object: bool,
    /// Its `key` array was walked.
    streamed: bool,
    /// Its other members, the item when there is no `key` array.
    rest: Map<String, Value>,
}

impl Visit for Items<'_, '_> {
    fn enter(&mut self, key: Option<&str>, array: bool) -> bool {
        let walk = match self.depth {
            0 => {
                self.object = !array;
                true
            }
            1 if array && !self.streamed && key == Some(self.key) => {
                self.streamed = true;
                true
            }
            _ => false,
        };
        self.depth += usize::from(walk);
        walk
    }

    fn value(&mut self, key: Option<&str>, v: Value) {
        match (self.depth, key) {
            (1, Some(k)) => {
                self.rest.insert(k.to_string(), v);
            }
            (1, None) | (2, _) => (self.f)(v),
            _ => {}
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
        if self.depth == 0 && self.object && !self.streamed {
            (self.f)(Value::Object(std::mem::take(&mut self.rest)));
        }
    }
}

/// One value of the document: walked into or handed over, as the [`Visit`] says.
struct Node<'k, 'v> {
    key: Option<&'k str>,
    v: &'v mut dyn Visit,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.v.enter(self.key, true) {
            while seq
                .next_element_seed(Node {
                    key: None,
                    v: &mut *self.v,
                })?
                .is_some()
            {}
            self.v.leave();
        } else {
            let a = Vec::<Value>::deserialize(SeqAccessDeserializer::new(seq))?;
            self.v.value(self.key, Value::Array(a));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.v.enter(self.key, false) {
            while let Some(k) = map.next_key::<String>()? {
                map.next_value_seed(Node {
                    key: Some(&k),
                    v: &mut *self.v,
                })?;
            }
            self.v.leave();
        } else {
            let m = Map::deserialize(MapAccessDeserializer::new(map))?;
            self.v.value(self.key, Value::Object(m));
        }
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.v.value(self.key, Value::Bool(b));
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.v.value(self.key, Value::from(n));
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.v.value(self.key, Value::from(n));
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        self.v.value(self.key, Value::from(n));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.v.value(self.key, Value::String(s.to_string()));
        Ok(())
    }

    fn visit_string<E>(self, s: String) -> Result<(), E> {
        self.v.value(self.key, Value::String(s));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.v.value(self.key, Value::Null);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(doc: &str) -> Result<Vec<Value>, serde_json::Error> {
        let mut got = Vec::new();
        each_item(doc.as_bytes(), "objects", &mut |v| got.push(v))?;
        Ok(got)
    }

    #[test]
    fn items_are_those_of_the_value_tree() {
        use serde_json::json;
        let bundle = r#"{"type":"bundle","id":"b","objects":[{"a":1},{"b":[2,3]}]}"#;
        assert_eq!(
            items(bundle).unwrap(),
            vec![json!({"a":1}), json!({"b":[2,3]})]
        );
        assert_eq!(
            items(r#"[{"a":1},2,"x"]"#).unwrap(),
            vec![json!({"a":1}), json!(2), json!("x")]
        );
        let single = r#"{"type":"indicator","objects":{"0":{"v":1}},"n":-1.5}"#;
        let whole: Value = serde_json::from_str(single).unwrap();
        assert_eq!(items(single).unwrap(), vec![whole]);
        assert_eq!(
            items(r#"{"objects":null}"#).unwrap(),
            vec![json!({"objects":null})]
        );
        assert_eq!(items("42").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn a_damaged_document_is_the_value_trees_error() {
        for bad in [
            r#"{"objects":[{"a":1},{"b":}]}"#,
            r#"[1,2"#,
            r#"{"objects":[]} trailing"#,
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ] {
            let want = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
            assert_eq!(items(bad).unwrap_err().to_string(), want, "{bad}");
        }
    }
}
