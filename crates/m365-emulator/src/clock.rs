//! Wall-clock helpers.
//!
//! The identity logic never reads the clock itself: every operation takes a `now` so the unit
//! tests can drive expiry and polling intervals without sleeping. Only the HTTP layer and the
//! control API call [`SystemTime::now`]. This module also formats the `timestamp` field of
//! Microsoft's error bodies (`2016-01-09 02:02:12Z`) and Graph's `innerError.date`
//! (`2016-01-09T02:02:12`) without pulling in a date crate.
//!
//! The Graph presence logic runs on a clock of its own, wall-clock time plus an offset that
//! [`crate::Emulator::advance_clock`] moves forward, so tests can expire presence sessions
//! without sleeping (see `graph::GraphState::now`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch (0 for times before it), as JWT `iat`/`nbf`/`exp` use.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The time `secs` seconds after the Unix epoch.
pub(crate) fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Formats `t` as Microsoft's error bodies do: `YYYY-MM-DD hh:mm:ssZ` (UTC).
pub(crate) fn format_timestamp(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Formats `t` as Graph's `innerError.date`: `YYYY-MM-DDThh:mm:ss` (UTC, no zone suffix).
pub(crate) fn format_graph_date(t: SystemTime) -> String {
    format_timestamp(t).trim_end_matches('Z').replacen(' ', "T", 1)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_microsoft() {
        assert_eq!(format_timestamp(from_unix_seconds(0)), "1970-01-01 00:00:00Z");
        // The example in Microsoft's error-code reference.
        assert_eq!(format_timestamp(from_unix_seconds(1_452_304_932)), "2016-01-09 02:02:12Z");
        assert_eq!(format_timestamp(from_unix_seconds(1_709_210_096)), "2024-02-29 12:34:56Z");
        assert_eq!(format_graph_date(from_unix_seconds(1_709_210_096)), "2024-02-29T12:34:56");
    }
}
