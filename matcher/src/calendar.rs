//! Proleptic Gregorian dates ↔ days since 1970-01-01 (Howard Hinnant's algorithms): the
//! one calendar every timestamp parser and formatter of the workspace uses.

/// Days since 1970-01-01 of the date `y`-`m`-`d` (`m` 1-12; the caller checks ranges).
#[inline]
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month 1-12, day 1-31)` that is `days` days after 1970-01-01 (days
/// within 719,468 of `i64::MAX` read as `i64::MAX - 719_468`: far past any year a caller
/// accepts).
#[inline]
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.min(i64::MAX - 719_468) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        // `date -u -d 2000-03-01 +%s` / 86400 = 11017
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(civil_from_days(i64::MIN / 86_400).0, -292_277_022_657);
        assert!(civil_from_days(i64::MAX).0 > 9999);
    }

    proptest! {
        /// The two directions invert each other over a span far wider than any timestamp.
        #[test]
        fn round_trip(days in -1_000_000_000i64..1_000_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
