//! Small self-contained helpers: a seeded PRNG, UUIDs, Nova/Keystone
//! timestamp formats, URL query parsing and glob matching.
//!
//! Written here rather than pulled in as crates because each is a few lines
//! and the simulator must stay quick to build for every test run.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// SplitMix64: tiny, fast, good enough for jitter, error rates and ids.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn from_time() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(nanos ^ (std::process::id() as u64).rotate_left(32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] (inclusive, integer).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.next_u64() % span,
            None => self.next_u64(), // the full u64 range
        }
    }

    /// Standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn uuid4(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        while s.len() < bytes * 2 {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(bytes * 2);
        s
    }
}

/// A process-wide RNG for places without access to the world (request ids).
pub fn global_rng<T>(f: impl FnOnce(&mut Rng) -> T) -> T {
    static RNG: Mutex<Option<Rng>> = Mutex::new(None);
    let mut guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let rng = guard.get_or_insert_with(Rng::from_time);
    f(rng)
}

/// Real wall clock in seconds since the epoch.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Is this string shaped like a UUID (Nova's `uuidutils.is_uuid_like` also
/// accepts the dash-less form)?
pub fn is_uuid_like(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && (s.len() == 32 || s.len() == 36)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm; valid for the whole proleptic Gregorian range.
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let m = m as u64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

fn split(t: f64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t.floor() as i64;
    let micros = ((t - t.floor()) * 1e6).round().min(999_999.0) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3600, (rem / 60) % 60, rem % 60, micros)
}

/// Nova's DB timestamp format as it appears in os-services, os-migrations,
/// aggregates: `2026-11-21T18:05:55.000000` (naive UTC, microseconds).
pub fn fmt_nova(t: f64) -> String {
    let (y, mo, d, h, mi, s, us) = split(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}")
}

/// The `Z` form used for servers (`created`, `updated`) and Glance.
pub fn fmt_z(t: f64) -> String {
    let (y, mo, d, h, mi, s, _) = split(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Keystone's `expires_at`: `2026-11-21T19:05:55.000000Z`.
pub fn fmt_keystone(t: f64) -> String {
    let (y, mo, d, h, mi, s, us) = split(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// Parses the ISO 8601 forms clients send in `changes-since`:
/// `2026-11-21T18:05:55`, with optional fraction, `Z` or `+HH:MM` offset.
pub fn parse_iso(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', ' '])?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0i64)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = &off[1..];
        let (oh, om) = off.split_once(':').unwrap_or((off.get(..2)?, off.get(2..).unwrap_or("0")));
        let oh: i64 = oh.parse().ok()?;
        let om: i64 = if om.is_empty() { 0 } else { om.parse().ok()? };
        (t, sign * (oh * 3600 + om * 60))
    } else {
        (rest, 0)
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut tp = hms.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: i64 = tp.next().unwrap_or("0").parse().ok()?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let frac: f64 = if frac.is_empty() {
        0.0
    } else if frac.chars().all(|c| c.is_ascii_digit()) {
        format!("0.{frac}").parse().ok()?
    } else {
        return None;
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

/// Decodes `%XX` and `+` (form encoding, as in query strings).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query component (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Glob with `*` (any run, including `/`) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Replaces the values of secret-bearing keys anywhere in a JSON document,
/// so the request log can be shown and asserted on without leaking them.
pub fn mask_secrets(v: &mut serde_json::Value) {
    const SECRET_KEYS: &[&str] = &["password", "secret", "adminpass", "token", "id_token", "passcode"];
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let lk = k.to_ascii_lowercase();
                if SECRET_KEYS.contains(&lk.as_str()) {
                    match val {
                        // `{"token": {"id": ...}}` in token auth: mask the id only.
                        serde_json::Value::Object(inner) => {
                            if let Some(id) = inner.get_mut("id") {
                                *id = serde_json::Value::String("***".into());
                            }
                            mask_secrets(val);
                        }
                        serde_json::Value::Null => {}
                        _ => *val = serde_json::Value::String("***".into()),
                    }
                } else {
                    mask_secrets(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_roundtrip() {
        let t = 1_795_284_355.25;
        assert_eq!(fmt_nova(t), "2026-11-21T18:05:55.250000");
        assert_eq!(parse_iso("2026-11-21T18:05:55.25"), Some(t));
        assert_eq!(parse_iso("2026-11-21T18:05:55.250000Z"), Some(t));
        assert_eq!(parse_iso("2026-11-21T19:05:55.25+01:00"), Some(t));
        assert_eq!(parse_iso("garbage"), None);
        assert_eq!(fmt_z(0.0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn glob() {
        assert!(glob_match("/compute/*/servers/*/action", "/compute/v2.1/servers/abc/action"));
        assert!(glob_match("*", "/x"));
        assert!(!glob_match("/identity*", "/compute"));
        assert!(glob_match("*os-services*", "/compute/v2.1/os-services/force-down"));
    }

    #[test]
    fn query() {
        let q = parse_query("host=a%2Cb&binary=nova-compute&x");
        assert_eq!(q[0], ("host".into(), "a,b".into()));
        assert_eq!(q[2], ("x".into(), "".into()));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn uuid_shape() {
        let mut r = Rng::new(1);
        let u = r.uuid4();
        assert!(is_uuid_like(&u), "{u}");
        assert!(!is_uuid_like("force-down"));
    }

    #[test]
    fn masking() {
        let mut v = serde_json::json!({"auth": {"identity": {"password": {"user": {"password": "s"}},
            "token": {"id": "abc"}, "application_credential": {"secret": "x", "id": "keep"}}}});
        mask_secrets(&mut v);
        let s = v.to_string();
        assert!(!s.contains("\"s\"") && !s.contains("abc") && !s.contains("\"x\""), "{s}");
        assert!(s.contains("keep"));
    }
}
