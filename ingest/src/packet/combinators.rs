//! Small `nom` combinators shared by the application-layer parsers (DNS, HTTP, TLS, QUIC).
//!
//! The parsers run nom's primitives with the unit error `()` and attach their own typed
//! reason at each step with [`or_fail`], so a rejected message names what was wrong.

use nom::{IResult, Parser};

/// Run `parser`; if it fails, fail with `err` instead of nom's error.
pub(crate) fn or_fail<I, O, E: Copy, P: Parser<I, O, ()>>(
    err: E,
    mut parser: P,
) -> impl FnMut(I) -> IResult<I, O, E> {
    move |i| parser.parse(i).map_err(|e| e.map(|()| err))
}

/// Fail with `err` (a structure the parser does not accept).
pub(crate) fn reject<I, O, E>(err: E) -> IResult<I, O, E> {
    Err(nom::Err::Error(err))
}

/// The typed error of a finished parse (`Incomplete` never occurs: every parser here runs
/// on complete input, so it maps to `truncated`).
pub(crate) fn error_of<E>(e: nom::Err<E>, truncated: E) -> E {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => truncated,
    }
}
