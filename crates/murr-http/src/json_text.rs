//! The JSON text of values JSON has no type for: dates, timestamps and bytes.
//!
//! - a `date32` is `"YYYY-MM-DD"`;
//! - a timestamp is RFC 3339: `"2026-11-27T10:00:00.123456Z"`, with as many fraction digits as
//!   its unit has (none, 3, 6 or 9). Columns with a zone answer in UTC (`Z`); columns without
//!   one answer the wall-clock time without an offset. A write takes either form (an offset is
//!   applied, giving UTC) or an integer count of the unit;
//! - `binary` is standard base64 with padding.
//!
//! Values outside the years 0000 to 9999 (which RFC 3339 spells) are answered as integers
//! (days, or the count of the unit), which a write also takes.

use arrow_schema::TimeUnit;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat};

/// The years RFC 3339 spells.
const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from(date.signed_duration_since(NaiveDate::default()).num_days()).ok()
}

/// The `YYYY-MM-DD` text of a date, or `None` when chrono cannot spell it.
pub(crate) fn format_date(days: i32) -> Option<String> {
    NaiveDate::from_epoch_days(days)
        .filter(|d| YEARS.contains(&d.year()))
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// The count of `unit` since the epoch of an RFC 3339 text (with an offset) or of a wall-clock
/// text without one; `None` when it is not one, or is finer than the unit (that would lose the
/// fraction) or out of the unit's range.
pub(crate) fn parse_timestamp(s: &str, unit: TimeUnit) -> Option<i64> {
    let utc = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.naive_utc(),
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()?,
    };
    let t = utc.and_utc();
    let (secs, nanos) = (t.timestamp(), i64::from(t.timestamp_subsec_nanos()));
    let (per_sec, nanos_per) = match unit {
        TimeUnit::Second => (1, 1_000_000_000),
        TimeUnit::Millisecond => (1_000, 1_000_000),
        TimeUnit::Microsecond => (1_000_000, 1_000),
        TimeUnit::Nanosecond => (1_000_000_000, 1),
    };
    if nanos % nanos_per != 0 {
        return None;
    }
    secs.checked_mul(per_sec)?.checked_add(nanos / nanos_per)
}

/// The RFC 3339 text of a timestamp (`Z` when `zoned`, no offset otherwise), or `None` when
/// chrono cannot spell it.
pub(crate) fn format_timestamp(value: i64, unit: TimeUnit, zoned: bool) -> Option<String> {
    let (secs, nanos, digits) = match unit {
        TimeUnit::Second => (value, 0, SecondsFormat::Secs),
        TimeUnit::Millisecond => (
            value.div_euclid(1_000),
            value.rem_euclid(1_000) * 1_000_000,
            SecondsFormat::Millis,
        ),
        TimeUnit::Microsecond => (
            value.div_euclid(1_000_000),
            value.rem_euclid(1_000_000) * 1_000,
            SecondsFormat::Micros,
        ),
        TimeUnit::Nanosecond => (
            value.div_euclid(1_000_000_000),
            value.rem_euclid(1_000_000_000),
            SecondsFormat::Nanos,
        ),
    };
    let t = DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)?;
    if !YEARS.contains(&t.year()) {
        return None;
    }
    let text = t.to_rfc3339_opts(digits, true);
    Some(if zoned {
        text
    } else {
        text.strip_suffix('Z').unwrap_or(&text).to_owned()
    })
}

/// The bytes of a base64 text.
pub(crate) fn parse_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// The base64 text of bytes.
pub(crate) fn format_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [0, -1, 19_000, i32::from(i16::MAX), -719_162, 2_932_896] {
            let text = format_date(days).expect("spells");
            assert_eq!(parse_date(&text), Some(days), "{text}");
        }
        assert_eq!(format_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(format_date(i32::MAX), None);
    }

    #[test]
    fn timestamps_round_trip_in_every_unit() {
        for unit in [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ] {
            for v in [
                0i64,
                1,
                -1,
                1_764_237_600_123,
                i64::from(i32::MAX) * 7,
                -86_400_001,
            ] {
                for zoned in [false, true] {
                    // Years past 9999 are answered as integers.
                    if let Some(text) = format_timestamp(v, unit, zoned) {
                        assert_eq!(parse_timestamp(&text, unit), Some(v), "{text} {unit:?}");
                    } else {
                        assert!(unit == TimeUnit::Second && v > 1 << 40, "{v} {unit:?}");
                    }
                }
            }
        }
        assert_eq!(
            format_timestamp(1_500, TimeUnit::Millisecond, true).as_deref(),
            Some("1970-01-01T00:00:01.500Z")
        );
        assert_eq!(
            format_timestamp(-1, TimeUnit::Microsecond, false).as_deref(),
            Some("1969-12-31T23:59:59.999999")
        );
        assert_eq!(
            parse_timestamp("2026-11-27T12:00:00+02:00", TimeUnit::Second),
            parse_timestamp("2026-11-27T10:00:00Z", TimeUnit::Second)
        );
        // A fraction finer than the unit would be lost: refused.
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00.5Z", TimeUnit::Second),
            None
        );
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00.5Z", TimeUnit::Millisecond),
            Some(500)
        );
        assert_eq!(parse_timestamp("yesterday", TimeUnit::Second), None);
        assert_eq!(format_timestamp(i64::MAX, TimeUnit::Second, true), None);
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(format_base64(&[0, 255, 7]), "AP8H");
        assert_eq!(parse_base64("AP8H"), Some(vec![0, 255, 7]));
        assert_eq!(parse_base64("not base64!"), None);
    }
}
