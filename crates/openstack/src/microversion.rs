//! Nova microversions: parsing, the range a cloud offers (read from the
//! compute endpoint's version document), and the choice made per call.
//!
//! The rule: every call uses the highest version we understand
//! ([`Microversion::MAX_SUPPORTED`]) capped by the cloud's maximum, except
//! where a version changes behaviour in a way the caller must choose
//! (evacuation stops the server from 2.95, `force` exists only in
//! 2.29–2.67); see [`crate::Client`] for those.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A compute API microversion `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Microversion {
    pub major: u16,
    pub minor: u16,
}

impl Microversion {
    /// The highest version whose semantics this crate implements.
    pub const MAX_SUPPORTED: Microversion = Microversion::new(2, 95);
    /// The base of the v2.1 API (no microversion header needed).
    pub const BASE: Microversion = Microversion::new(2, 1);

    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }

    /// Parses `2.53` (also `v2.1`).
    pub fn parse(s: &str) -> Option<Microversion> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let (a, b) = s.split_once('.')?;
        Some(Microversion::new(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The versions a compute endpoint offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    pub min: Microversion,
    pub max: Microversion,
}

impl VersionRange {
    /// A legacy v2.0 endpoint or one without microversions.
    pub const LEGACY: VersionRange = VersionRange {
        min: Microversion::BASE,
        max: Microversion::BASE,
    };

    /// The highest version ≤ `want` the cloud offers, or `None` when even
    /// its minimum is above `want`.
    pub fn best_up_to(&self, want: Microversion) -> Option<Microversion> {
        let v = self.max.min(want);
        (v >= self.min).then_some(v)
    }

    /// The default version for calls: best up to [`Microversion::MAX_SUPPORTED`].
    pub fn default_version(&self) -> Microversion {
        self.best_up_to(Microversion::MAX_SUPPORTED)
            .unwrap_or(self.min)
    }

    /// Whether `v` is offered.
    pub fn supports(&self, v: Microversion) -> bool {
        self.min <= v && v <= self.max
    }

    /// Parses a compute version document: `GET {compute endpoint}` answers
    /// `{"version": {...}}` at a versioned URL and `{"versions": [...]}` at
    /// the root.
    pub fn from_document(body: &[u8]) -> Result<VersionRange> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| Error::Decode {
            what: "compute version document".into(),
            message: e.to_string(),
        })?;
        let entry = if let Some(one) = v.get("version") {
            one.clone()
        } else if let Some(all) = v.get("versions").and_then(|a| a.as_array()) {
            // Prefer v2.1, the microversioned API; fall back to CURRENT.
            all.iter()
                .find(|e| e.get("id").and_then(|i| i.as_str()) == Some("v2.1"))
                .or_else(|| {
                    all.iter()
                        .find(|e| e.get("status").and_then(|s| s.as_str()) == Some("CURRENT"))
                })
                .cloned()
                .ok_or_else(|| Error::Decode {
                    what: "compute version document".into(),
                    message: "no v2.1 entry".into(),
                })?
        } else {
            return Err(Error::Decode {
                what: "compute version document".into(),
                message: "neither \"version\" nor \"versions\"".into(),
            });
        };
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(|x| x.as_str())
                .and_then(Microversion::parse)
        };
        match (field("min_version"), field("version")) {
            (Some(min), Some(max)) if min <= max => Ok(VersionRange { min, max }),
            // "" for both on a v2.0 endpoint: no microversions.
            _ => Ok(VersionRange::LEGACY),
        }
    }
}

/// The header value and the legacy header for a version.
pub(crate) fn headers(v: Microversion) -> [(&'static str, String); 2] {
    [
        ("OpenStack-API-Version", format!("compute {v}")),
        ("X-OpenStack-Nova-API-Version", v.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_34_document() {
        // Shape of GET /v2.1/ on Nova 34 (doc/api_samples/versions/v21-version-get-resp.json).
        let doc = br#"{"version": {"id": "v2.1", "status": "CURRENT", "version": "2.104", "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": "http://127.0.0.1:8774/v2.1/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}}"#;
        let r = VersionRange::from_document(doc).unwrap();
        assert_eq!(r.max, Microversion::new(2, 104));
        assert_eq!(r.default_version(), Microversion::new(2, 95));
        assert_eq!(
            r.best_up_to(Microversion::new(2, 67)),
            Some(Microversion::new(2, 67))
        );
        let root = br#"{"versions": [{"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": ""},
            {"id": "v2.1", "status": "CURRENT", "version": "2.60", "min_version": "2.1"}]}"#;
        let r = VersionRange::from_document(root).unwrap();
        assert_eq!(r.default_version(), Microversion::new(2, 60));
        assert_eq!(
            r.best_up_to(Microversion::new(2, 95)),
            Some(Microversion::new(2, 60))
        );
        let legacy = br#"{"version": {"id": "v2.0", "version": "", "min_version": ""}}"#;
        assert_eq!(
            VersionRange::from_document(legacy).unwrap(),
            VersionRange::LEGACY
        );
        assert!(VersionRange::from_document(b"nope").is_err());
        assert_eq!(Microversion::parse("v2.1"), Some(Microversion::BASE));
        assert!(Microversion::new(2, 9) < Microversion::new(2, 10));
    }
}
