//! The items of one JSON document, each handed over as a [`Value`] and dropped before the
//! next is read (ARCHITECTURE.md §2.1.1): a STIX bundle of millions of objects is walked
//! with serde's `DeserializeSeed`, never held as one `Value` tree.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Hand `f` each item of the document in `bytes`: a top-level array's elements, else the
/// elements of the top-level object's `key` array, else that object itself (a scalar
/// document has none). The whole document is checked: a syntax error anywhere is the
/// error (after `f` saw the items before it; walk twice to act only on a valid document).
pub(crate) fn each_item(
    bytes: &[u8],
    key: &str,
    f: &mut dyn FnMut(Value),
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Doc { key, f }.deserialize(&mut de)?;
    de.end()
}

/// The top level of the document.
struct Doc<'a, 'f> {
    key: &'a str,
    f: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for Doc<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Doc<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            (self.f)(v);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut rest = Map::new();
        let mut streamed = false;
        while let Some(k) = map.next_key::<String>()? {
            if !streamed && k == self.key {
                match map.next_value_seed(Member { f: &mut *self.f })? {
                    None => streamed = true,
                    Some(v) => {
                        rest.insert(k, v);
                    }
                }
            } else {
                let v: Value = map.next_value()?;
                rest.insert(k, v);
            }
        }
        if !streamed {
            (self.f)(Value::Object(rest));
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The value of the object's `key`: an array is streamed (`None`), anything else is
/// returned whole (the document is then its own item).
struct Member<'f> {
    f: &'f mut dyn FnMut(Value),
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            (self.f)(v);
        }
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        let m = Map::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(Value::Object(m)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
        Ok(Some(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
        Ok(Some(Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Option<Value>, E> {
        Ok(Some(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(Some(Value::Null))
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
