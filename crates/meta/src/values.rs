//! Parameter values as an agent receives them, checked against its description.
//!
//! Both runtimes collect raw `name → text` pairs (from `OCF_RESKEY_*`, stdin lines or getopt
//! arguments), resolve every spelling to the canonical parameter, and hand handlers a [`Values`]:
//! typed getters that fall back to the documented default, and [`Values::problems`], the checks
//! `validate-all` and every action run (required, types, allowed values).
//!
//! Booleans are read by value, never by presence: `insecure=false` means verification stays on
//! (the reference treats any present flag as true, REFERENCE.md O3).

use crate::{Agent, Param, Type};
use std::collections::BTreeMap;
use std::fmt;

/// Parses a boolean the way operators write them; `None` if it is not one.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "on" | "ja" => Some(true),
        "0" | "no" | "n" | "false" | "off" | "nein" => Some(false),
        _ => None,
    }
}

/// What is wrong with a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A required parameter is absent or empty.
    Missing,
    /// The value does not parse as the parameter's type or is not an allowed value.
    Invalid,
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub param: &'static str,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The parameters an agent was given.
#[derive(Clone)]
pub struct Values {
    agent: &'static Agent,
    /// Explicitly given values by canonical name.
    given: BTreeMap<&'static str, String>,
}

// Values hold secrets: Debug shows names only.
impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values")
            .field("agent", &self.agent.name)
            .field("given", &self.given.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Values {
    /// No values given yet.
    pub fn new(agent: &'static Agent) -> Self {
        Values { agent, given: BTreeMap::new() }
    }

    /// The agent these values belong to.
    pub fn agent(&self) -> &'static Agent {
        self.agent
    }

    /// Sets `key` (any accepted spelling) to `value`; the last one given wins. Returns the
    /// canonical parameter, or `None` if the agent has no such parameter.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Option<&'static Param> {
        let p = self.agent.param(key)?;
        self.given.insert(p.name, value.into());
        Some(p)
    }

    /// Removes an explicitly given value.
    pub fn unset(&mut self, name: &str) {
        if let Some(p) = self.agent.param(name) {
            self.given.remove(p.name);
        }
    }

    fn param(&self, name: &str) -> Option<&'static Param> {
        let p = self.agent.param(name);
        debug_assert!(p.is_some(), "{} has no parameter {name}", self.agent.name);
        p
    }

    /// Whether `name` was given explicitly (even empty).
    pub fn is_given(&self, name: &str) -> bool {
        self.param(name).is_some_and(|p| self.given.contains_key(p.name))
    }

    /// The value of `name`: the given one, else the documented default.
    pub fn get(&self, name: &str) -> Option<&str> {
        let p = self.param(name)?;
        self.given.get(p.name).map(String::as_str).or(p.default)
    }

    /// The value of `name` if it is present and not empty after trimming.
    pub fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The truth of a boolean parameter; unparsable values count as false (and are reported by
    /// [`Values::problems`]).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).and_then(parse_bool).unwrap_or(false)
    }

    /// An integer parameter; `None` when absent, empty or invalid.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.nonempty(name).and_then(|v| v.parse().ok())
    }

    /// Every explicitly given value that belongs to a secret parameter.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.given
            .iter()
            .filter(|(k, v)| !v.is_empty() && self.agent.param(k).is_some_and(|p| p.secret))
            .map(|(_, v)| v.as_str())
    }

    /// Explicitly given values, canonical names, sorted.
    pub fn given(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.given.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Checks every parameter against its description; `skip_required` names parameters whose
    /// requiredness the caller decides itself (the fence target for `list`).
    pub fn problems(&self, skip_required: &[&str]) -> Vec<Problem> {
        let mut out = Vec::new();
        for p in self.agent.all_params() {
            let value = self.given.get(p.name).map(String::as_str).or(p.default);
            let v = value.map(str::trim).unwrap_or("");
            if v.is_empty() {
                if p.required && !skip_required.contains(&p.name) {
                    out.push(Problem {
                        param: p.name,
                        kind: ProblemKind::Missing,
                        message: format!("required parameter {} is not set", p.name),
                    });
                }
                continue;
            }
            let bad = |what: &str| Problem {
                param: p.name,
                kind: ProblemKind::Invalid,
                // Secret values are never echoed back.
                message: if p.secret {
                    format!("parameter {} is not {what}", p.name)
                } else {
                    format!("parameter {} is not {what}: '{v}'", p.name)
                },
            };
            match p.ty {
                Type::String => {}
                Type::Integer => {
                    if v.parse::<i64>().is_err() {
                        out.push(bad("an integer"));
                    }
                }
                Type::Second => {
                    if v.parse::<f64>().map_or(true, |x| !(x >= 0.0 && x.is_finite())) {
                        out.push(bad("a valid time in seconds"));
                    }
                }
                Type::Boolean => {
                    if parse_bool(v).is_none() {
                        out.push(bad("a boolean (1/yes/true/on or 0/no/false/off)"));
                    }
                }
                Type::Select(allowed) => {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                        out.push(bad(&format!("one of {}", allowed.join(", "))));
                    }
                }
            }
        }
        out
    }

    /// A seconds parameter as a `Duration` (fractions allowed); `None` when absent or invalid.
    pub fn seconds(&self, name: &str) -> Option<std::time::Duration> {
        self.nonempty(name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|x| *x >= 0.0 && x.is_finite())
            .map(std::time::Duration::from_secs_f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Agent, Param, Protocol, Type};

    static PARAMS: &[Param] = &[
        Param { required: true, ..Param::new("auth_url", "url") },
        Param { deprecated: &["passwd"], secret: true, ..Param::new("password", "pw") },
        Param { ty: Type::Boolean, default: Some("0"), ..Param::new("insecure", "tls") },
        Param { ty: Type::Integer, default: Some("0"), ..Param::new("evacuate_delay", "d") },
        Param { ty: Type::Select(&["a", "b"]), ..Param::new("mode", "m") },
        Param { ty: Type::Second, default: Some("20"), ..Param::new("power_timeout", "t") },
    ];
    static AGENT: Agent = Agent {
        name: "t",
        protocol: Protocol::Ocf,
        version: "1",
        shortdesc: "",
        longdesc: "",
        vendor_url: "",
        params: &[PARAMS],
        actions: &[Action::new("start", "")],
        default_action: "",
        man_section: 7,
        exit_statuses: &[],
        notes: &[],
    };

    #[test]
    fn booleans_by_value_not_presence() {
        let mut v = Values::new(&AGENT);
        assert!(!v.flag("insecure"));
        v.set("insecure", "false");
        assert!(!v.flag("insecure"));
        v.set("insecure", "Yes");
        assert!(v.flag("insecure"));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn aliases_resolve_and_last_wins() {
        let mut v = Values::new(&AGENT);
        assert_eq!(v.set("passwd", "one").map(|p| p.name), Some("password"));
        v.set("password", "two");
        assert_eq!(v.get("password"), Some("two"));
        assert!(v.set("nosuch", "x").is_none());
        assert_eq!(v.secrets().collect::<Vec<_>>(), vec!["two"]);
        assert!(!format!("{v:?}").contains("two"));
    }

    #[test]
    fn problems_cover_required_types_and_choices() {
        let mut v = Values::new(&AGENT);
        v.set("evacuate_delay", "soon");
        v.set("mode", "c");
        v.set("insecure", "perhaps");
        v.set("power_timeout", "-1");
        v.set("password", "");
        let p = v.problems(&[]);
        let names: Vec<_> = p.iter().map(|p| (p.param, p.kind.clone())).collect();
        assert!(names.contains(&("auth_url", ProblemKind::Missing)));
        assert!(names.contains(&("evacuate_delay", ProblemKind::Invalid)));
        assert!(names.contains(&("mode", ProblemKind::Invalid)));
        assert!(names.contains(&("insecure", ProblemKind::Invalid)));
        assert!(names.contains(&("power_timeout", ProblemKind::Invalid)));
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(v.problems(&["auth_url"]).iter().all(|p| p.param != "auth_url"));
    }

    #[test]
    fn defaults_and_typed_getters() {
        let mut v = Values::new(&AGENT);
        assert_eq!(v.int("evacuate_delay"), Some(0));
        assert_eq!(v.seconds("power_timeout"), Some(std::time::Duration::from_secs(20)));
        v.set("power_timeout", "1.5");
        assert_eq!(v.seconds("power_timeout"), Some(std::time::Duration::from_millis(1500)));
        assert!(!v.is_given("auth_url"));
        v.set("auth_url", "  ");
        assert!(v.is_given("auth_url"));
        assert_eq!(v.nonempty("auth_url"), None);
    }
}
