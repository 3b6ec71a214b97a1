//! Fault injection: rules matched per request (service, method, path glob,
//! body substring) that add latency, answer with an error, hang or reset the
//! connection; token expiry faults; one-shot evacuation failures.
//!
//! JSON shape (scenario `faults`, `POST /sim/faults`, [`FaultSet`]):
//! ```json
//! {"rules": [
//!    {"service": "nova", "method": "POST", "path": "*/servers/*/action",
//!     "body_contains": "evacuate", "probability": 0.2, "times": 3,
//!     "latency": {"uniform_ms": [50, 200]},
//!     "action": {"error": {"status": 503}}}],
//!  "token": {"expire_after_requests": 10},
//!  "evacuations": [{"server": "srv-a", "times": 2, "kind": "no_valid_host"}]}
//! ```
//! `POST /sim/faults` also accepts a bare array of rules.

use serde::{Deserialize, Serialize};

use crate::util::{Rng, glob_match};

/// Latency distribution. Exactly one field is normally set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ms: Option<u64>,
    /// Uniform in [lo, hi].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform_ms: Option<[u64; 2]>,
    /// Normal with mean and standard deviation, clamped at 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_ms: Option<[f64; 2]>,
}

impl Latency {
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if let Some(ms) = self.fixed_ms {
            return ms;
        }
        if let Some([lo, hi]) = self.uniform_ms {
            return rng.range(lo.min(hi), hi.max(lo));
        }
        if let Some([mean, sd]) = self.normal_ms {
            return (mean + sd * rng.normal()).max(0.0).round() as u64;
        }
        0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with this status; `body` (JSON value or string) defaults to a
    /// Nova-style fault body for the status.
    Error {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Reset the connection (RST) without answering.
    Reset,
    /// Process the request normally, then reset instead of answering: the
    /// change happened but the client never learns it.
    ResetAfter,
    /// Process normally, then hang instead of answering.
    HangAfter,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Free-form label, shown in the request log when the rule fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `keystone`, `nova`, `glance` or `sim`; absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Glob on the path without query (`*` matches across `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Substring of the raw query string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<FaultAction>,
    /// Chance that a matching request fires the action (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Let the first `skip` matching requests through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<u64>,
    /// Fire at most this many times, then the rule is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Counters (maintained by the simulator, visible in GET /sim/faults).
    #[serde(default)]
    pub matched: u64,
    #[serde(default)]
    pub fired: u64,
}

impl FaultRule {
    pub fn matches(&self, service: &str, method: &str, path: &str, query: &str, body: &[u8]) -> bool {
        if let Some(s) = &self.service {
            if s != "*" && !s.eq_ignore_ascii_case(service) {
                return false;
            }
        }
        if let Some(m) = &self.method {
            if m != "*" && !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            if !glob_match(p, path) {
                return false;
            }
        }
        if let Some(q) = &self.query_contains {
            if !query.contains(q.as_str()) {
                return false;
            }
        }
        if let Some(b) = &self.body_contains {
            let needle = b.as_bytes();
            if needle.is_empty() || !body.windows(needle.len()).any(|w| w == needle) {
                return false;
            }
        }
        true
    }

    pub fn spent(&self) -> bool {
        matches!(self.times, Some(t) if self.fired >= t)
    }
}

/// Token faults on top of the advertised lifetime.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenFaults {
    /// Tokens stop working this many seconds after issue (whatever
    /// `expires_at` says), e.g. a revocation or a clock skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_secs: Option<f64>,
    /// Tokens stop working after this many Nova/Glance requests each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_requests: Option<u64>,
    /// Make every issued token invalid right now (one-shot at set time).
    #[serde(default)]
    pub revoke_all: bool,
}

/// One-shot evacuation failures, consumed as evacuations are accepted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvacuationFault {
    /// Server id or name; absent or `*` = any server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Source host; absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How many evacuations to fail (default 1).
    #[serde(default = "d_one")]
    pub times: u64,
    /// `no_valid_host` (scheduler: migration `error`, instance ERROR),
    /// `rebuild_failed` (destination compute: migration `failed`, instance
    /// ERROR), `stuck` (migration stays `pre-migrating`, task_state stays
    /// `rebuilding` forever), or `api_error` (the API answers `status`
    /// without doing anything).
    #[serde(default = "d_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default)]
    pub fired: u64,
}

fn d_one() -> u64 {
    1
}
fn d_kind() -> String {
    "no_valid_host".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    #[serde(default)]
    pub token: TokenFaults,
    #[serde(default)]
    pub evacuations: Vec<EvacuationFault>,
}

impl FaultSet {
    /// Parses `POST /sim/faults`: either a FaultSet object or a bare list of rules.
    pub fn from_json(v: serde_json::Value) -> Result<Self, String> {
        if v.is_array() {
            let rules: Vec<FaultRule> = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(FaultSet { rules, ..Default::default() })
        } else {
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
    }
}

/// What the rules decided for one request.
#[derive(Debug, Default)]
pub struct Decision {
    pub latency_ms: u64,
    pub action: Option<FaultAction>,
    pub rule_ids: Vec<String>,
}

/// Evaluates the rules (mutating their counters). All matching rules add
/// their latency; the first matching rule with an action that fires wins.
pub fn decide(rules: &mut [FaultRule], rng: &mut Rng, service: &str, method: &str, path: &str, query: &str, body: &[u8]) -> Decision {
    let mut d = Decision::default();
    for (i, rule) in rules.iter_mut().enumerate() {
        if rule.spent() || !rule.matches(service, method, path, query, body) {
            continue;
        }
        rule.matched += 1;
        if rule.matched <= rule.skip.unwrap_or(0) {
            continue;
        }
        let p = rule.probability.unwrap_or(1.0);
        if p < 1.0 && rng.unit() >= p {
            continue;
        }
        let mut fired = false;
        if let Some(l) = &rule.latency {
            d.latency_ms += l.sample(rng);
            fired = true;
        }
        if d.action.is_none() {
            if let Some(a) = &rule.action {
                d.action = Some(a.clone());
                fired = true;
            }
        }
        if fired {
            rule.fired += 1;
            d.rule_ids.push(rule.id.clone().unwrap_or_else(|| format!("#{i}")));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_and_skip() {
        let mut rules = vec![FaultRule {
            path: Some("*/action".into()),
            skip: Some(1),
            times: Some(2),
            action: Some(FaultAction::Error { status: 500, body: None }),
            ..Default::default()
        }];
        let mut rng = Rng::new(1);
        let fire = |rules: &mut Vec<FaultRule>, rng: &mut Rng| decide(rules, rng, "nova", "POST", "/x/action", "", b"").action.is_some();
        assert!(!fire(&mut rules, &mut rng));
        assert!(fire(&mut rules, &mut rng));
        assert!(fire(&mut rules, &mut rng));
        assert!(!fire(&mut rules, &mut rng));
    }

    #[test]
    fn parse_forms() {
        let fs = FaultSet::from_json(serde_json::json!([{"action": "hang"}])).unwrap();
        assert_eq!(fs.rules[0].action, Some(FaultAction::Hang));
        let fs = FaultSet::from_json(serde_json::json!({"rules": [{"latency": {"uniform_ms": [1, 2]}, "action": {"error": {"status": 503}}}], "token": {"expire_after_requests": 3}})).unwrap();
        assert_eq!(fs.token.expire_after_requests, Some(3));
        assert!(FaultSet::from_json(serde_json::json!({"rulez": []})).is_err());
    }
}
