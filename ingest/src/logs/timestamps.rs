//! Timestamps as log formats write them (epoch, CLF, ISO 8601, BIND, nginx, syslog) → ns.

use matcher::calendar::days_from_civil;
use matcher::simd::{self, Bytes16};

use super::tokens::trim;

/// `parse_epoch(b).is_some()` without computing the value or calling out for the dot (the
/// Squid pre-screen's timestamp check); only an integer part past 9,223,372,035 s, where
/// the nanosecond value may overflow, goes to [`parse_epoch`] itself.
#[inline]
pub(crate) fn is_epoch(b: &[u8]) -> bool {
    let int_len = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    let fraction_ok = match &b[int_len..] {
        [] => true,
        [b'.', fraction @ ..] => fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if int_len == 0 || !fraction_ok {
        return false;
    }
    // Equal-length digit strings compare like their values.
    if int_len <= 9 || (int_len == 10 && b[..10] < b"9223372036"[..]) {
        return true;
    }
    parse_epoch(b).is_some()
}

/// [`is_epoch`] of `line[..len]` (the first token of a line), read from one 16-byte block
/// when the token and the line allow: digits, at most one dot, not first.
#[inline]
pub(crate) fn is_epoch_at_start(line: &[u8], len: usize) -> bool {
    if let (1..=16, Some(block)) = (len, line.first_chunk::<16>()) {
        let (digits, dots) = simd::digit_dot_masks(simd::Native::load(block));
        let live = (1u32 << len) - 1;
        let (digits, dots) = (digits & live, dots & live);
        // Only digits and dots; at most one dot, and not the first byte.
        if digits | dots != live || dots & dots.wrapping_sub(1) != 0 || dots & 1 != 0 {
            return false;
        }
        let int_len = if dots == 0 {
            len
        } else {
            dots.trailing_zeros() as usize
        };
        // Ten digits starting below 9 are below 9,223,372,036 (see `is_epoch`).
        if int_len <= 9 || (int_len == 10 && block[0] < b'9') {
            return true;
        }
    }
    is_epoch(line.get(..len).unwrap_or(line))
}

/// Parse up to `n` leading ASCII digits exactly (`n` digits required).
fn digits(b: &[u8], n: usize) -> Option<i64> {
    let d = b.get(..n)?;
    let mut v = 0i64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// A fraction of a second (`.123456`): digits after the dot → nanoseconds, and how many bytes.
fn fraction(b: &[u8]) -> (i64, usize) {
    let mut ns = 0i64;
    let mut scale = 100_000_000i64;
    let mut n = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        ns += i64::from(c - b'0') * scale;
        scale /= 10;
        n += 1;
    }
    (ns, n)
}

/// Unix epoch seconds with an optional decimal fraction (`1157689312.049`) → ns.
pub(crate) fn parse_epoch(b: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b""[..]),
    };
    if int.is_empty() || int.len() > 11 {
        return None;
    }
    let secs = digits(int, int.len())?;
    let (ns, n) = fraction(frac);
    if n != frac.len() {
        return None;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// `Jan`..`Dec` → 1..12.
pub(crate) fn month_abbr(b: &[u8]) -> Option<i64> {
    let m: &[u8; 3] = b.get(..3)?.try_into().ok()?;
    let lower = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    let n = match &lower {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn civil_ns(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ns: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// `HH:MM:SS` at the start of `b`.
fn hms(b: &[u8]) -> Option<(i64, i64, i64)> {
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return None;
    }
    Some((
        digits(b, 2)?,
        digits(b.get(3..)?, 2)?,
        digits(b.get(6..)?, 2)?,
    ))
}

/// A numeric UTC offset `+0000`, `-04:00`, or `Z` → seconds east, and bytes used.
fn utc_offset(b: &[u8]) -> Option<(i64, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let h = digits(b.get(1..)?, 2)?;
            let (m, used) = if b.get(3) == Some(&b':') {
                (digits(b.get(4..)?, 2)?, 6)
            } else {
                (digits(b.get(3..)?, 2)?, 5)
            };
            Some((sign * (h * 3600 + m * 60), used))
        }
        _ => None,
    }
}

/// Apache/nginx `%t`: `04/Jan/2020:07:25:02 +0000` → ns.
pub(crate) fn parse_clf_time(b: &[u8]) -> Option<i64> {
    let d = digits(b, 2)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let mo = month_abbr(b.get(3..)?)?;
    let y = digits(b.get(7..)?, 4)?;
    let (h, mi, s) = hms(b.get(12..)?)?;
    let rest = trim(b.get(20..).unwrap_or_default());
    let off = if rest.is_empty() {
        0
    } else {
        utc_offset(rest)?.0
    };
    civil_ns(y, mo, d, h, mi, s, 0)?.checked_sub(off * 1_000_000_000)
}

/// BIND: `19-Oct-2022 05:34:02.425` (two tokens, local time taken as UTC) → ns.
pub(crate) fn parse_bind_time(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 11 || date.get(2) != Some(&b'-') || date.get(6) != Some(&b'-') {
        return None;
    }
    let d = digits(date, 2)?;
    let mo = month_abbr(date.get(3..)?)?;
    let y = digits(date.get(7..)?, 4)?;
    let (h, mi, s) = hms(time)?;
    let (ns, n) = match time.get(8) {
        Some(b'.') => fraction(&time[9..]),
        _ => (0, 0),
    };
    let used = if n > 0 { 9 + n } else { 8 };
    if used != time.len() {
        return None;
    }
    civil_ns(y, mo, d, h, mi, s, ns)
}

/// ISO 8601 / RFC 3339: `2018-07-05T15:01:09.820360-0400`, `...Z`, space separator allowed,
/// offset optional (then UTC) → ns.
pub(crate) fn parse_iso8601(b: &[u8]) -> Option<i64> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let y = digits(b, 4)?;
    let mo = digits(b.get(5..)?, 2)?;
    let d = digits(b.get(8..)?, 2)?;
    match b.get(10) {
        Some(b'T' | b't' | b' ') => {}
        _ => return None,
    }
    let (h, mi, s) = hms(b.get(11..)?)?;
    let mut i = 19;
    let mut ns = 0;
    if b.get(i) == Some(&b'.') {
        let (f, n) = fraction(b.get(i + 1..)?);
        ns = f;
        i += 1 + n;
    }
    let rest = b.get(i..).unwrap_or_default();
    let off = if rest.is_empty() {
        0
    } else {
        let (off, used) = utc_offset(rest)?;
        if used != rest.len() {
            return None;
        }
        off
    };
    civil_ns(y, mo, d, h, mi, s, ns)?.checked_sub(off * 1_000_000_000)
}

/// nginx error log: `2021/12/01 13:53:33` → ns (local time taken as UTC).
pub(crate) fn parse_slash_datetime(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || date.get(4) != Some(&b'/') || date.get(7) != Some(&b'/') {
        return None;
    }
    let (h, mi, s) = hms(time)?;
    civil_ns(
        digits(date, 4)?,
        digits(date.get(5..)?, 2)?,
        digits(date.get(8..)?, 2)?,
        h,
        mi,
        s,
        0,
    )
}

/// CEF `rt` / LEEF `devTime` text dates: `Apr 07 2017 00:10:10 GMT`,
/// `May 1 2016 09:29:11.356 -0400` (month, day, year, time with an optional fraction, then
/// an optional `GMT`/`UTC`/`Z`/numeric zone; none is UTC) → ns.
pub(crate) fn parse_month_day_year(b: &[u8]) -> Option<i64> {
    let mo = month_abbr(b)?;
    let mut parts = b.get(3..)?.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let day = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    let zone = parts.next();
    if parts.next().is_some() || day.len() > 2 || year.len() != 4 {
        return None;
    }
    let d = digits(day, day.len())?;
    let y = digits(year, 4)?;
    let (h, mi, s) = hms(time)?;
    let (ns, n) = match time.get(8) {
        Some(b'.') => fraction(&time[9..]),
        _ => (0, 0),
    };
    if time.len() != if n > 0 { 9 + n } else { 8 } {
        return None;
    }
    let off = match zone {
        None | Some(b"GMT" | b"UTC") => 0,
        Some(z) => {
            let (off, used) = utc_offset(z)?;
            if used != z.len() {
                return None;
            }
            off
        }
    };
    civil_ns(y, mo, d, h, mi, s, ns)?.checked_sub(off * 1_000_000_000)
}

/// Does a syslog header (`Mon DD HH:MM:SS `) start `b`? Returns the bytes it spans.
pub(crate) fn syslog_date_len(b: &[u8]) -> Option<usize> {
    month_abbr(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == day_start || i - day_start > 2 || b.get(i) != Some(&b' ') {
        return None;
    }
    hms(b.get(i + 1..)?)?;
    Some(i + 9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The screen's timestamp check answers exactly like the parser.
        #[test]
        fn is_epoch_agrees_with_parse_epoch(s in "[0-9]{0,12}(\\.[0-9]{0,12})?[.x0-9]{0,2}|92233720[0-9]{2,3}(\\.[0-9]{0,10})?") {
            prop_assert_eq!(is_epoch(s.as_bytes()), parse_epoch(s.as_bytes()).is_some(), "{:?}", s);
        }

        /// The block read of a line's first token answers exactly like `is_epoch`.
        #[test]
        fn is_epoch_at_start_agrees_with_is_epoch(s in "[0-9]{0,12}(\\.[0-9]{0,12})?[.x0-9]{0,2}|9?22337[0-9]{3,5}(\\.[0-9]{0,10})?|[.0-9 ]{0,20}", tail in "[ .0-9a]{0,20}") {
            let line = format!("{s}{tail}");
            prop_assert_eq!(is_epoch_at_start(line.as_bytes(), s.len()), is_epoch(s.as_bytes()), "{:?} in {:?}", s, line);
        }
    }

    #[test]
    fn timestamps() {
        // Values checked with `date -u -d '2020-01-04 07:25:02' +%s` = 1578122702.
        assert_eq!(
            parse_clf_time(b"04/Jan/2020:07:25:02 +0000"),
            Some(1_578_122_702_000_000_000)
        );
        assert_eq!(
            parse_clf_time(b"04/Jan/2020:09:25:02 +0200"),
            Some(1_578_122_702_000_000_000)
        );
        assert_eq!(
            parse_epoch(b"1157689312.049"),
            Some(1_157_689_312_049_000_000)
        );
        assert_eq!(
            parse_epoch(b"1521911720.865716"),
            Some(1_521_911_720_865_716_000)
        );
        assert_eq!(parse_epoch(b"12a"), None);
        // date -u -d '2018-07-05 19:01:09' +%s = 1530817269
        assert_eq!(
            parse_iso8601(b"2018-07-05T15:01:09.820360-0400"),
            Some(1_530_817_269_820_360_000)
        );
        assert_eq!(
            parse_iso8601(b"2018-07-05T19:01:09.820360Z"),
            Some(1_530_817_269_820_360_000)
        );
        // date -u -d '2022-10-19 05:34:02' +%s = 1666157642
        assert_eq!(
            parse_bind_time(b"19-Oct-2022", b"05:34:02.425"),
            Some(1_666_157_642_425_000_000)
        );
        assert_eq!(syslog_date_len(b"Mar  9 23:59:59 host"), Some(15));
        assert_eq!(syslog_date_len(b"Oct 4 10:18:07 a"), Some(14));
    }

    #[test]
    fn month_day_year() {
        assert_eq!(
            parse_month_day_year(b"May 1 2016 09:29:11.356 -0400"),
            parse_iso8601(b"2016-05-01T09:29:11.356-0400")
        );
        assert_eq!(
            parse_month_day_year(b"Apr 07 2017 00:10:10 GMT"),
            parse_iso8601(b"2017-04-07T00:10:10Z")
        );
        assert!(parse_month_day_year(b"Apr 07 2017").is_none());
        assert!(parse_month_day_year(b"Apr 07 2017 00:10:10 GMT x").is_none());
    }
}
