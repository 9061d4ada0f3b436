//! Timestamps as feeds write them: RFC 3339, `YYYY-MM-DD HH:MM:SS[ UTC]`, dates, Unix epochs.

use matcher::calendar::{civil_from_days, days_from_civil};
use matcher::UnixTime;

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse a feed timestamp to Unix seconds (UTC unless an offset is given). `None` when it
/// is not a time we understand.
pub fn parse_time(s: &str) -> Option<UnixTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        // Milliseconds when it is too large to be seconds.
        return Some(if n > 100_000_000_000 { n / 1000 } else { n });
    }
    let date = s.get(..10)?;
    let mut dp = date.split('-');
    let y = num(dp.next()?)?;
    let mo = num(dp.next()?)?;
    let d = num(dp.next()?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let mut secs = days_from_civil(i64::from(y), i64::from(mo), i64::from(d)) * 86_400;
    let rest = s.get(10..)?;
    let rest = rest.strip_prefix(['T', 't', ' ']).unwrap_or(rest);
    if rest.is_empty() {
        return Some(secs);
    }
    // HH:MM[:SS[.frac]]
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(end);
    let clock = clock.split('.').next().unwrap_or(clock);
    let mut cp = clock.split(':');
    let h = num(cp.next()?)?;
    let mi = num(cp.next()?)?;
    let se = cp.next().map_or(Some(0), num)?;
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    secs += i64::from(h * 3600 + mi * 60 + se);
    let zone = zone.trim();
    match zone {
        "" | "Z" | "z" | "UTC" | "GMT" | "+00:00" | "+0000" => Some(secs),
        z if z.starts_with('+') || z.starts_with('-') => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let (hh, mm) = (
                num(digits.get(..2)?)?,
                num(digits.get(2..4).unwrap_or("0"))?,
            );
            Some(secs - sign * i64::from(hh * 3600 + mm * 60))
        }
        _ => None,
    }
}

/// Format Unix seconds as RFC 3339 UTC.
pub fn format_time(t: UnixTime) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_feeds_use() {
        // Reference values from `date -u -d '2024-02-08 19:20:49' +%s` etc.
        assert_eq!(parse_time("2024-02-08 19:20:49"), Some(1_707_420_049));
        assert_eq!(parse_time("2016-03-23 20:35:01 UTC"), Some(1_458_765_301));
        assert_eq!(
            parse_time("2014-05-08T09:00:00.000000Z"),
            Some(1_399_539_600)
        );
        assert_eq!(parse_time("2016-03-26T12:17:32+00:00"), Some(1_458_994_652));
        assert_eq!(parse_time("2016-03-26T14:17:32+02:00"), Some(1_458_994_652));
        assert_eq!(parse_time("2016-06-09"), Some(1_465_430_400));
        assert_eq!(parse_time("1465681304"), Some(1_465_681_304));
        assert_eq!(parse_time("not a time"), None);
        assert_eq!(parse_time("2016-13-01"), None);
        assert_eq!(format_time(1_707_420_049), "2024-02-08T19:20:49Z");
    }
}
