//! Wall-clock helpers: the current Unix time and the ISO 8601 forms Nova reads and writes
//! (`2026-11-21T18:05:54.000000`, with or without a zone suffix), without a time-zone database.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_epoch() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `epoch` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), the form `changes-since` accepts.
pub fn iso8601(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses Nova's and Glance's timestamps (`2026-11-21T18:05:54.000000`, `…Z`, `…+00:00`, or a
/// space instead of `T`); a missing zone means UTC, as Nova means it. `None` when unparsable.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|b| b.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !matches!(s.as_bytes().get(10), Some(b'T' | b' ')) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut epoch = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    // Skip fractional seconds, then apply an explicit offset.
    let rest = s.get(19..)?.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = rest.strip_prefix(['+', '-']) {
        let sign = if rest.starts_with('-') { -1 } else { 1 };
        let digits: String = off.chars().filter(char::is_ascii_digit).collect();
        let hh: i64 = digits.get(0..2)?.parse().ok()?;
        let mm: i64 = digits.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
        epoch -= sign * (hh * 3600 + mm * 60);
    }
    Some(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_nova_forms() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        let t = parse_iso8601("2026-11-21T18:05:54.000000").unwrap();
        assert_eq!(iso8601(t), "2026-11-21T18:05:54Z");
        assert_eq!(parse_iso8601("2026-11-21T18:05:54Z"), Some(t));
        assert_eq!(parse_iso8601("2026-11-21 19:05:54+01:00"), Some(t));
        assert_eq!(parse_iso8601("2024-02-29T00:00:00"), Some(1_709_164_800));
        assert_eq!(parse_iso8601("garbage"), None);
        assert_eq!(parse_iso8601(""), None);
        assert_eq!(parse_iso8601("2026-13-01T00:00:00"), None);
    }
}
