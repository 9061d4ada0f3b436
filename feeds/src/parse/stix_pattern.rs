//! STIX 2 patterning: the subset that says "this observable" (ARCHITECTURE.md §2.5),
//! parsed with `nom`.
//!
//! A pattern is turned into the comparisons an indicator set can hold: `=` on a value
//! property (`domain-name:value`, `url:value`, `email-addr:value`, `ipv4-addr:value`,
//! `ipv6-addr:value`, file and certificate hashes), `ISSUBSET` on an address (a CIDR), joined
//! by `OR` inside or between observations. Everything else is an error naming what the
//! pattern uses: `AND` (a conjunction is not one indicator, and splitting it would alert on
//! half of it), `FOLLOWEDBY`, qualifiers (`WITHIN`, `REPEATS`, `START`/`STOP`), other
//! operators and object paths.

use matcher::IndicatorType;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while1};
use nom::character::complete::{char, multispace0};
use nom::combinator::{map, opt, recognize};
use nom::multi::many0;
use nom::sequence::{delimited, pair, preceded};
use nom::IResult;

/// Parentheses and brackets nested deeper than this are refused (no stack to exhaust).
const MAX_DEPTH: u32 = 32;

/// One usable comparison: the type its object path implies (none for a path that names an
/// address of either family) and the value compared with.
pub type Comparison = (Option<IndicatorType>, String);

#[derive(Debug)]
enum Expr {
    Cmp {
        path: String,
        op: String,
        value: Literal,
    },
    /// A conjunction (`AND`, `FOLLOWEDBY`), with the object paths it joins.
    And(Vec<String>),
    Or(Vec<Expr>),
}

#[derive(Debug)]
enum Literal {
    Str(String),
    Other,
}

/// The hash algorithm a STIX hash name (`'SHA-256'`, `MD5`, ...) says.
pub(crate) fn hash_type(name: &str) -> Option<IndicatorType> {
    let n = name
        .trim_matches('\'')
        .to_ascii_uppercase()
        .replace('-', "");
    Some(match n.as_str() {
        "MD5" => IndicatorType::Md5,
        "SHA1" => IndicatorType::Sha1,
        "SHA256" => IndicatorType::Sha256,
        "SHA512" => IndicatorType::Sha512,
        _ => return None,
    })
}

/// The indicator type of an `x509-certificate` hash: SHA-1 is `x509-sha1`, SHA-256 a
/// `sha256` (both meet the sensor's `tls.server.hash.sha1`/`sha256`, which are looked up
/// as hashes of their length); other algorithms are not observed.
pub(crate) fn x509_hash_type(name: &str) -> Option<IndicatorType> {
    match hash_type(name)? {
        IndicatorType::Sha1 => Some(IndicatorType::X509Sha1),
        IndicatorType::Sha256 => Some(IndicatorType::Sha256),
        _ => None,
    }
}

/// Object path of a comparison → type hint, or why we cannot use it.
fn path_type(path: &str) -> Result<Option<IndicatorType>, String> {
    let (obj, prop) = path
        .split_once(':')
        .ok_or_else(|| format!("bad object path {path:?}"))?;
    match (obj, prop) {
        ("ipv4-addr", "value") => Ok(Some(IndicatorType::Ipv4)),
        ("ipv6-addr", "value") => Ok(Some(IndicatorType::Ipv6)),
        ("domain-name", "value") => Ok(Some(IndicatorType::Fqdn)),
        ("url", "value") => Ok(Some(IndicatorType::Url)),
        ("email-addr", "value")
        | ("email-message", "from_ref.value")
        | ("email-message", "sender_ref.value") => Ok(Some(IndicatorType::Email)),
        ("network-traffic", "dst_ref.value") | ("network-traffic", "src_ref.value") => Ok(None),
        ("file", p) | ("artifact", p) if p.starts_with("hashes.") => hash_type(&p[7..])
            .map(Some)
            .ok_or_else(|| format!("unsupported hash {path}")),
        ("x509-certificate", p) if p.starts_with("hashes.") => x509_hash_type(&p[7..])
            .map(Some)
            .ok_or_else(|| format!("unsupported certificate hash {path}")),
        _ => Err(format!("cannot express a comparison on {path}")),
    }
}

fn ws<'a, O>(
    inner: impl FnMut(&'a str) -> IResult<&'a str, O>,
) -> impl FnMut(&'a str) -> IResult<&'a str, O> {
    delimited(multispace0, inner, multispace0)
}

/// `'...'` with `\'` and `\\` escapes.
fn string_lit(i: &str) -> IResult<&str, String> {
    let (mut rest, _) = char('\'')(i)?;
    let mut out = String::new();
    loop {
        let mut chars = rest.chars();
        match chars.next() {
            None => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    rest,
                    nom::error::ErrorKind::Char,
                )))
            }
            Some('\'') => return Ok((chars.as_str(), out)),
            Some('\\') => match chars.next() {
                Some(c) => {
                    out.push(c);
                    rest = chars.as_str();
                }
                None => {
                    return Err(nom::Err::Error(nom::error::Error::new(
                        rest,
                        nom::error::ErrorKind::Escaped,
                    )))
                }
            },
            Some(c) => {
                out.push(c);
                rest = chars.as_str();
            }
        }
    }
}

fn literal(i: &str) -> IResult<&str, Literal> {
    alt((
        map(string_lit, Literal::Str),
        // Typed strings (t'...', h'...', b'...'), numbers, booleans, sets: kept as text.
        map(
            recognize(pair(
                take_while1(|c: char| c.is_ascii_alphanumeric() || "._-+".contains(c)),
                opt(string_lit),
            )),
            |_| Literal::Other,
        ),
        map(
            recognize(delimited(
                char('('),
                take_while1(|c: char| c != ')'),
                char(')'),
            )),
            |_| Literal::Other,
        ),
    ))(i)
}

fn object_path<'a>(i: &'a str) -> IResult<&'a str, String> {
    let ident = |i: &'a str| -> IResult<&'a str, &'a str> {
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')(i)
    };
    let step = alt((
        map(preceded(char('.'), string_lit), |s| format!(".'{s}'")),
        map(preceded(char('.'), ident), |s: &str| format!(".{s}")),
        map(
            recognize(delimited(
                char('['),
                take_while1(|c: char| c != ']'),
                char(']'),
            )),
            str::to_string,
        ),
    ));
    map(
        pair(recognize(pair(ident, pair(char(':'), ident))), many0(step)),
        |(head, steps): (&str, Vec<String>)| {
            // Hash names are compared without their quotes (`hashes.'SHA-256'`).
            let mut p = head.to_string();
            for s in steps {
                p.push_str(&s.replace('\'', ""));
            }
            p
        },
    )(i)
}

fn operator(i: &str) -> IResult<&str, String> {
    let (i, not) = opt(ws(tag_no_case("NOT")))(i)?;
    let (i, op) = alt((
        tag("!="),
        tag("<="),
        tag(">="),
        tag("="),
        tag("<"),
        tag(">"),
        take_while1(|c: char| c.is_ascii_alphabetic()),
    ))(i)?;
    let op = op.to_ascii_uppercase();
    Ok((
        i,
        if not.is_some() {
            format!("NOT {op}")
        } else {
            op
        },
    ))
}

fn comparison(i: &str) -> IResult<&str, Expr> {
    let (i, path) = ws(object_path)(i)?;
    let (i, op) = ws(operator)(i)?;
    let (i, value) = ws(literal)(i)?;
    Ok((i, Expr::Cmp { path, op, value }))
}

fn too_deep(i: &str) -> nom::Err<nom::error::Error<&str>> {
    nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge))
}

/// `a OR b OR ...` over `and`-terms, inside brackets.
fn cmp_or(i: &str, depth: u32) -> IResult<&str, Expr> {
    if depth > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let (mut i, first) = cmp_and(i, depth)?;
    let mut terms = vec![first];
    while let Ok((rest, _)) = ws(tag_no_case::<_, _, nom::error::Error<&str>>("OR"))(i) {
        let (rest, t) = cmp_and(rest, depth)?;
        terms.push(t);
        i = rest;
    }
    Ok((i, one_or(terms)))
}

fn cmp_and(i: &str, depth: u32) -> IResult<&str, Expr> {
    let (mut i, first) = cmp_atom(i, depth)?;
    let mut terms = vec![first];
    while let Ok((rest, _)) = ws(tag_no_case::<_, _, nom::error::Error<&str>>("AND"))(i) {
        let (rest, t) = cmp_atom(rest, depth)?;
        terms.push(t);
        i = rest;
    }
    Ok((i, and_of(terms)))
}

fn cmp_atom(i: &str, depth: u32) -> IResult<&str, Expr> {
    if let Ok((rest, _)) = ws(char::<_, nom::error::Error<&str>>('('))(i) {
        let (rest, e) = cmp_or(rest, depth + 1)?;
        let (rest, _) = ws(char(')'))(rest)?;
        return Ok((rest, e));
    }
    comparison(i)
}

/// What follows an observation and makes it more than "this value was seen".
fn qualifier(i: &str) -> IResult<&str, &str> {
    ws(alt((
        tag_no_case("WITHIN"),
        tag_no_case("REPEATS"),
        tag_no_case("START"),
    )))(i)
}

/// Observations joined by `OR` (`AND` and `FOLLOWEDBY` are recorded as [`Expr::And`]).
fn obs_or(i: &str, depth: u32) -> IResult<&str, Expr> {
    if depth > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let (mut i, first) = observation(i, depth)?;
    let mut terms = vec![first];
    while let Ok((rest, kw)) = ws(alt((
        tag_no_case::<_, _, nom::error::Error<&str>>("OR"),
        tag_no_case("AND"),
        tag_no_case("FOLLOWEDBY"),
    )))(i)
    {
        let (rest, t) = observation(rest, depth)?;
        if kw.eq_ignore_ascii_case("OR") {
            terms.push(t);
        } else {
            let before = terms.pop().unwrap_or(Expr::Or(Vec::new()));
            terms.push(and_of(vec![before, t]));
        }
        i = rest;
    }
    Ok((i, one_or(terms)))
}

fn observation(i: &str, depth: u32) -> IResult<&str, Expr> {
    let (i, e) = if let Ok((rest, _)) = ws(char::<_, nom::error::Error<&str>>('('))(i) {
        let (rest, e) = obs_or(rest, depth + 1)?;
        let (rest, _) = ws(char(')'))(rest)?;
        (rest, e)
    } else {
        let (rest, _) = ws(char('['))(i)?;
        let (rest, e) = cmp_or(rest, depth + 1)?;
        let (rest, _) = ws(char(']'))(rest)?;
        (rest, e)
    };
    if qualifier(i).is_ok() {
        // A qualified observation is about time or counts, not one sighting of a value.
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((i, e))
}

fn and_of(mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        return terms.pop().unwrap_or(Expr::Or(Vec::new()));
    }
    let mut paths = Vec::new();
    for t in &terms {
        t.paths(&mut paths);
    }
    paths.dedup();
    Expr::And(paths)
}

impl Expr {
    fn paths(&self, out: &mut Vec<String>) {
        match self {
            Expr::Cmp { path, .. } => out.push(path.clone()),
            Expr::And(p) => out.extend(p.iter().cloned()),
            Expr::Or(t) => t.iter().for_each(|t| t.paths(out)),
        }
    }
}

fn one_or(mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        terms.pop().unwrap_or(Expr::Or(Vec::new()))
    } else {
        Expr::Or(terms)
    }
}

/// The comparisons of `e`; a term of an `OR` that cannot be held is left out with its
/// reason in `dropped` (matching the other terms alone is still sound: any one suffices).
fn collect(e: Expr, out: &mut Vec<Comparison>, dropped: &mut Vec<String>) -> Result<(), String> {
    match e {
        Expr::And(paths) => Err(format!(
            "pattern uses AND (or FOLLOWEDBY) of {}: a conjunction is not matchable as one \
             indicator",
            paths.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )),
        Expr::Or(terms) => {
            for t in terms {
                if let Err(e) = collect(t, out, dropped) {
                    dropped.push(e);
                }
            }
            Ok(())
        }
        Expr::Cmp { path, op, value } => {
            let unsupported = || format!("operator {op} is not supported (on {path})");
            if op != "=" && op != "ISSUBSET" {
                return Err(unsupported());
            }
            let hint = path_type(&path)?;
            let address = matches!(
                hint,
                Some(IndicatorType::Ipv4) | Some(IndicatorType::Ipv6) | None
            );
            if op == "ISSUBSET" && !address {
                return Err(unsupported());
            }
            let Literal::Str(v) = value else {
                return Err(format!("comparison on {path} with a non-string value"));
            };
            out.push((hint, v));
            Ok(())
        }
    }
}

/// What a pattern gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The comparisons it is made of (`OR`ed: each one an indicator).
    pub comparisons: Vec<Comparison>,
    /// Why terms of its `OR`s were left out (a certificate's SHA-256, an `AND` group, ...).
    pub dropped: Vec<String>,
}

/// Parse a STIX pattern into the comparisons it is made of, or say why none of it can be
/// held as indicators.
pub fn parse(p: &str) -> Result<Pattern, String> {
    if p.trim().is_empty() {
        return Err("empty pattern".into());
    }
    let (rest, e) = match obs_or(p, 0) {
        Ok(r) => r,
        Err(nom::Err::Failure(e)) if e.code == nom::error::ErrorKind::Verify => {
            return Err(
                "pattern uses a qualifier (WITHIN, REPEATS, START/STOP), which cannot be \
                 expressed as indicators"
                    .into(),
            )
        }
        Err(nom::Err::Failure(e)) if e.code == nom::error::ErrorKind::TooLarge => {
            return Err(format!("pattern nested deeper than {MAX_DEPTH}"))
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            return Err(format!("syntax error at {:?}", short(e.input)))
        }
        Err(nom::Err::Incomplete(_)) => return Err("incomplete pattern".into()),
    };
    if !rest.trim().is_empty() {
        let word: String = rest.trim().chars().take(12).collect();
        if ["WITHIN", "REPEATS", "START"]
            .iter()
            .any(|q| word.to_ascii_uppercase().starts_with(q))
        {
            return Err(
                "pattern uses a qualifier (WITHIN, REPEATS, START/STOP), which cannot \
                        be expressed as indicators"
                    .into(),
            );
        }
        return Err(format!("syntax error at {:?}", short(rest)));
    }
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    collect(e, &mut out, &mut dropped)?;
    if out.is_empty() {
        return Err(dropped
            .into_iter()
            .next()
            .unwrap_or_else(|| "empty pattern".into()));
    }
    Ok(Pattern {
        comparisons: out,
        dropped,
    })
}

fn short(s: &str) -> String {
    s.trim().chars().take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType as T;

    #[test]
    fn or_joined_comparisons_each_give_a_value() {
        let ok = parse(
            "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] OR \
             [file:hashes.'SHA-256' = 'ab\\'c'] OR ([url:value = 'http://x.example/a'])",
        )
        .unwrap()
        .comparisons;
        assert_eq!(ok.len(), 4);
        assert_eq!(ok[0], (Some(T::Ipv4), "198.51.100.1".to_string()));
        assert_eq!(ok[1], (Some(T::Fqdn), "evil.example".to_string()));
        assert_eq!(ok[2], (Some(T::Sha256), "ab'c".to_string()));
        assert_eq!(ok[3], (Some(T::Url), "http://x.example/a".to_string()));
    }

    #[test]
    fn issubset_certificates_and_mail() {
        let ok = parse("[ipv4-addr:value ISSUBSET '198.51.100.0/24']").unwrap();
        assert_eq!(
            ok.comparisons,
            vec![(Some(T::Ipv4), "198.51.100.0/24".to_string())]
        );
        assert!(ok.dropped.is_empty());
        let ok = parse("[ipv6-addr:value ISSUBSET '2001:db8::/32']")
            .unwrap()
            .comparisons;
        assert_eq!(ok[0].0, Some(T::Ipv6));
        let ok = parse("[x509-certificate:hashes.'SHA-1' = 'aa']")
            .unwrap()
            .comparisons;
        assert_eq!(ok[0].0, Some(T::X509Sha1));
        let ok = parse("[x509-certificate:hashes.'SHA-256' = 'aa']")
            .unwrap()
            .comparisons;
        assert_eq!(ok[0].0, Some(T::Sha256));
        let ok = parse("[email-addr:value = 'a@b.example']")
            .unwrap()
            .comparisons;
        assert_eq!(ok[0].0, Some(T::Email));
        let ok = parse("[file:hashes.MD5 = 'aa']").unwrap().comparisons;
        assert_eq!(ok[0].0, Some(T::Md5));
    }

    #[test]
    fn what_cannot_be_an_indicator_is_named() {
        for (bad, says) in [
            ("[url:value MATCHES '^http']", "MATCHES"),
            (
                "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.b']",
                "AND",
            ),
            (
                "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.b']",
                "AND",
            ),
            ("[ipv4-addr:value = '1.2.3.4'] AND [url:value = 'a']", "AND"),
            (
                "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
                "qualifier",
            ),
            ("[ipv4-addr:value != '1.2.3.4']", "!="),
            ("[domain-name:value ISSUBSET 'a.b']", "ISSUBSET"),
            ("[process:name = 'x']", "process:name"),
            ("[x509-certificate:hashes.MD5 = 'aa']", "certificate hash"),
            ("[ipv4-addr:value = '1.2.3.4", "syntax"),
            ("[ipv4-addr:value = 5]", "non-string"),
            ("", "empty"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn or_terms_that_cannot_be_held_are_dropped_and_named() {
        let p = parse(
            "[x509-certificate:hashes.MD5 = 'aa' OR x509-certificate:hashes.'SHA-1' = 'bb'] \
             OR ([url:value = 'u'] AND [domain-name:value = 'd'])",
        )
        .unwrap();
        assert_eq!(p.comparisons, vec![(Some(T::X509Sha1), "bb".to_string())]);
        assert_eq!(p.dropped.len(), 2);
        assert!(p.dropped[0].contains("certificate hash"), "{:?}", p.dropped);
        assert!(p.dropped[1].contains("AND (or FOLLOWEDBY) of url:value, domain-name:value"));
        // Nothing left: the first reason is the error.
        let e = parse("[process:name = 'a' OR url:value MATCHES 'b']").unwrap_err();
        assert!(e.contains("process:name"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let p = format!("{}[url:value = 'a']{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&p).unwrap_err().contains("deeper"));
        let p = format!("[{}url:value = 'a'{}]", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&p).is_err());
    }
}
