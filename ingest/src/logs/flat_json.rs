//! A scanner for flat JSON objects (one level of `"key": value`, values strings, numbers,
//! literals or arrays of those), the shape of Zeek's JSON records: the keys and borrowed
//! values without building a serde structure for the fields nobody reads. It accepts only
//! what it can read exactly as `serde_json` would: a line with a backslash (escapes),
//! control characters in strings, invalid UTF-8, nesting or anything malformed is refused
//! (`None`) and the caller takes the full parser.

/// One value of a flat object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A string (no escapes), without its quotes.
    Str(&'a str),
    /// A number, `true` or `false`, as written.
    Token(&'a str),
    /// `null`.
    Null,
    /// An array of scalars; `strings` is set when every element is a string.
    Array { inner: &'a str, strings: bool },
}

impl<'a> Value<'a> {
    /// The elements of an array of strings.
    pub(crate) fn strings(&self) -> Option<impl Iterator<Item = &'a str>> {
        match *self {
            Value::Array {
                inner,
                strings: true,
            } => Some(inner.split('"').skip(1).step_by(2)),
            _ => None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The end (after the closing quote) of the string opening at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    // Eight bytes at a time in a register (the strings of a record are short, where a SIMD
    // search costs more to set up than it saves), then byte by byte for the tail.
    let mut j = i + 1;
    while let Some(chunk) = b.get(j..j + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let stop = stop_bytes(u64::from_le_bytes(word));
        if stop != 0 {
            // The lowest flag is exact (the tricks' false flags only follow a true one).
            let at = j + (stop.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at + 1);
        }
        j += 8;
    }
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The high bit of each byte of `w` that is a quote or a control character (below 0x20),
/// and possibly of bytes after the first such one.
fn stop_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let is_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let is_control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    is_quote | is_control
}

/// The end of the number or literal opening at `i`, when it is valid JSON.
fn token_end(b: &[u8], i: usize) -> Option<usize> {
    let lit: &[u8] = match b.get(i)? {
        b't' => b"true",
        b'f' => b"false",
        b'n' => b"null",
        _ => b"",
    };
    if !lit.is_empty() {
        return b[i..].starts_with(lit).then_some(i + lit.len());
    }
    let digits = |mut j: usize| {
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        (j > start).then_some(j)
    };
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    let int_start = j;
    j = digits(j)?;
    if b[int_start] == b'0' && j - int_start > 1 {
        return None; // a leading zero
    }
    if b.get(j) == Some(&b'.') {
        j = digits(j + 1)?;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        j = digits(j)?;
    }
    Some(j)
}

/// The scalar at `i`: its value and end.
fn scalar<'a>(s: &'a str, i: usize) -> Option<(Value<'a>, usize)> {
    let b = s.as_bytes();
    match *b.get(i)? {
        b'"' => {
            let end = string_end(b, i)?;
            Some((Value::Str(&s[i + 1..end - 1]), end))
        }
        b'n' => {
            let end = token_end(b, i)?;
            Some((Value::Null, end))
        }
        _ => {
            let end = token_end(b, i)?;
            Some((Value::Token(&s[i..end]), end))
        }
    }
}

/// Every `(key, value)` of the flat object `line` (whitespace around it allowed), in order,
/// to `field`; `None` when the line is not a flat object this scanner reads exactly (see the
/// module doc) or when `field` returns `false`.
pub(crate) fn scan<'a>(
    line: &'a [u8],
    mut field: impl FnMut(&'a str, Value<'a>) -> bool,
) -> Option<()> {
    if memchr::memchr(b'\\', line).is_some() {
        return None;
    }
    let s = std::str::from_utf8(line).ok()?;
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            let key = &s[i + 1..key_end - 1];
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let value = if b.get(i) == Some(&b'[') {
                let start = i + 1;
                let mut j = skip_ws(b, start);
                let mut strings = true;
                if b.get(j) != Some(&b']') {
                    loop {
                        let (v, end) = scalar(s, j)?;
                        strings &= matches!(v, Value::Str(_));
                        j = skip_ws(b, end);
                        match b.get(j)? {
                            b',' => j = skip_ws(b, j + 1),
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                let inner = &s[start..j];
                i = j + 1;
                Value::Array { inner, strings }
            } else {
                let (v, end) = scalar(s, i)?;
                i = end;
                v
            };
            if !field(key, value) {
                return None;
            }
            i = skip_ws(b, i);
            match b.get(i)? {
                b',' => i = skip_ws(b, i + 1),
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Option<Vec<(String, Value<'_>)>> {
        let mut out = Vec::new();
        scan(line.as_bytes(), |k, v| {
            out.push((k.to_string(), v));
            true
        })?;
        Some(out)
    }

    #[test]
    fn reads_a_flat_object() {
        let f = fields(
            r#" {"ts":1.5e3, "q" : "a.b","n":null,"t":true,"a":["x", "y,z"],"m":[1,"u"],"e":[]} "#,
        )
        .unwrap();
        assert_eq!(f[0], ("ts".into(), Value::Token("1.5e3")));
        assert_eq!(f[1], ("q".into(), Value::Str("a.b")));
        assert_eq!(f[2], ("n".into(), Value::Null));
        assert_eq!(f[3], ("t".into(), Value::Token("true")));
        let a: Vec<&str> = f[4].1.strings().unwrap().collect();
        assert_eq!(a, ["x", "y,z"]);
        assert!(f[5].1.strings().is_none());
        assert_eq!(f[6].1.strings().unwrap().count(), 0);
        assert_eq!(fields("{}").unwrap().len(), 0);
    }

    /// The word-at-a-time search finds the first quote or control byte wherever it is.
    #[test]
    fn string_ends_at_the_first_quote_at_any_position() {
        for len in 0..20 {
            for (stop, want) in [(b'"', true), (b'\x1f', false), (b'\n', false)] {
                let mut line = vec![b'"'];
                line.extend(std::iter::repeat_n(b'a', len));
                line.push(stop);
                line.extend_from_slice(b"\x01\"\xc3\xa9 \"");
                let end = string_end(&line, 0);
                assert_eq!(end, want.then_some(len + 2), "{len} {stop}");
            }
            let mut utf8 = vec![b'"'];
            for _ in 0..len {
                utf8.extend_from_slice("é\u{7f}".as_bytes());
            }
            utf8.push(b'"');
            assert_eq!(string_end(&utf8, 0), Some(utf8.len()));
            assert_eq!(string_end(&utf8[..utf8.len() - 1], 0), None);
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        for bad in [
            r#"{"a":"x\"y"}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[[1]]}"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1} x"#,
            "{\"a\":\"x\ty\"}",
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"["a"]"#,
            r#"{"a":1"#,
            "",
        ] {
            assert!(fields(bad).is_none(), "{bad}");
        }
        assert!(scan(b"{\"a\":\"\xff\"}", |_, _| true).is_none());
    }
}
