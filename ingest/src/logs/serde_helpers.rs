//! serde helpers for the JSON formats: parse a line once-checked, borrow optional strings.

use std::borrow::Cow;

/// `serde_json::from_slice(line)`, the line's UTF-8 checked once up front so that
/// serde_json skips its check of every string (a tenth of an EVE line's parse); the same
/// answer for every input.
#[inline]
pub(crate) fn json_from_line<'a, T: serde::Deserialize<'a>>(
    line: &'a [u8],
) -> serde_json::Result<T> {
    match std::str::from_utf8(line) {
        Ok(s) => serde_json::from_str(s),
        Err(_) => serde_json::from_slice(line),
    }
}

/// A JSON string borrowed from the line when it has no escapes. serde borrows a field of
/// type `Cow<'a, str>` marked `#[serde(borrow)]`, but not one inside an `Option`, `Vec` or
/// map, whose every string it copies (serde-rs/serde#1497): these helpers borrow there too.
#[derive(serde::Deserialize)]
pub(crate) struct BorrowedStr<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// `Option<Cow<str>>` borrowed where it can be (`#[serde(borrow, default, deserialize_with =
/// "opt_str")]`).
#[inline]
pub(crate) fn opt_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<BorrowedStr<'a>>::deserialize(d)?.map(|s| s.0))
}

/// `Option<Vec<Cow<str>>>` borrowed where it can be (`#[serde(borrow, default,
/// deserialize_with = "opt_str_vec")]`).
#[inline]
pub(crate) fn opt_str_vec<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Cow<'a, str>>>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<Vec<BorrowedStr<'a>>>::deserialize(d)?
        .map(|v| v.into_iter().map(|s| s.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Checking the line's UTF-8 first changes nothing: the same value or the same error
        /// as `from_slice`, for JSON-ish text with escapes and bytes that are not UTF-8.
        #[test]
        fn json_from_line_agrees_with_from_slice(b in prop::collection::vec(prop::sample::select(vec![b'{', b'}', b'"', b':', b',', b'a', b'1', b'\\', b'u', b'[', b']', 0xc3, 0xa9, 0xff]), 0..40)) {
            let fast = json_from_line::<serde_json::Value>(&b).map_err(|e| e.to_string());
            let slow = serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string());
            prop_assert_eq!(fast, slow);
        }
    }

    /// Strings without escapes are borrowed from the line, inside `Option` and `Vec` too;
    /// escaped ones are decoded; absent and `null` fields are `None`.
    #[test]
    fn optional_strings_borrow_from_the_line() {
        #[derive(serde::Deserialize)]
        struct Rec<'a> {
            #[serde(borrow, default, deserialize_with = "opt_str")]
            a: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            b: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str_vec")]
            v: Option<Vec<Cow<'a, str>>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            n: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            missing: Option<Cow<'a, str>>,
        }
        let line = br#"{"a":"plain.example","b":"a\u002eb","v":["x","y\"z"],"n":null}"#;
        let r: Rec<'_> = json_from_line(line).unwrap();
        assert!(matches!(r.a, Some(Cow::Borrowed("plain.example"))));
        assert!(matches!(r.b.as_ref(), Some(Cow::Owned(s)) if s == "a.b"));
        let v = r.v.unwrap();
        assert!(matches!(v[0], Cow::Borrowed("x")));
        assert_eq!(v[1], "y\"z");
        assert!(r.n.is_none() && r.missing.is_none());
    }
}
