//! Conversions between ISO 8601 / RFC 3339 timestamps (Keystone's
//! `expires_at`) and Unix seconds, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Howard Hinnant's algorithm: exact for the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `2026-11-21T19:56:37.000000Z`, `2026-11-21T19:56:37+01:00` or a
/// zone-less `2026-11-21T19:56:37` (taken as UTC, as Keystone and Nova mean it).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let mut dp = date.split('-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let time = time.split('.').next()?;
    let mut tp = time.split(':');
    let (h, mi, sec) = (
        num(tp.next()?)?,
        num(tp.next()?)?,
        num(tp.next().unwrap_or("0"))?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let z = &z[1..];
            let (zh, zm) = z
                .split_once(':')
                .unwrap_or((z.get(..2)?, z.get(2..).unwrap_or("0")));
            sign * (num(zh)? * 3600 + num(if zm.is_empty() { "0" } else { zm })? * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keystone_and_nova_shapes() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2015-08-27T09:49:58.000000Z"),
            Some(1_440_668_998)
        );
        assert_eq!(parse_rfc3339("2015-08-27T09:49:58"), Some(1_440_668_998));
        assert_eq!(
            parse_rfc3339("2015-08-27T11:49:58+02:00"),
            Some(1_440_668_998)
        );
        assert_eq!(
            parse_rfc3339("2015-08-27T09:49:58.123-0100"),
            Some(1_440_672_598)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2015-13-27T09:49:58Z"), None);
        assert_eq!(parse_rfc3339("2015-08-2ä"), None);
    }
}

#[cfg(test)]
mod robustness {
    /// Input we do not control must never panic the parsers.
    #[test]
    fn parsers_never_panic() {
        let pieces = [
            "",
            "2026",
            "-",
            "T",
            ":",
            ".",
            "Z",
            "+",
            "+01:00",
            "ä",
            "9999999999",
            "00",
            "13",
            "60",
            "{",
            "}",
            "\"",
            "version",
            "[",
            "]",
            "v2.1",
            "%",
            "%zz",
            "null",
            "é€",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 7) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = super::parse_rfc3339(&s);
            let _ = crate::error::fault_message(s.as_bytes());
            let _ = crate::microversion::VersionRange::from_document(s.as_bytes());
            let _ = crate::microversion::Microversion::parse(&s);
            let _ = crate::url::decode(&s);
            let _ = crate::models::query_param(&s, "marker");
            let _ = crate::config::Interface::parse(&s);
        }
    }
}
