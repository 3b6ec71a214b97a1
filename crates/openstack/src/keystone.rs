//! Keystone v3: the authentication request bodies, the token response and
//! its service catalog, endpoint selection, and the version discovery used
//! only to explain a failure (a v2-only Keystone is refused clearly).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{AuthConfig, Credentials, DomainRef, Interface, Scope, UserRef};
use crate::error::{Error, Result};

/// One service of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

/// Finds the URL of `service_type` for `interface` in `region` (`None` =
/// first match).
pub fn find_endpoint(
    catalog: &[CatalogEntry],
    service_type: &str,
    interface: Interface,
    region: Option<&str>,
) -> Result<String> {
    for entry in catalog.iter().filter(|e| e.service_type == service_type) {
        for ep in &entry.endpoints {
            let iface_ok = Interface::parse(&ep.interface).is_ok_and(|i| i == interface);
            let region_ok = region.is_none_or(|r| {
                ep.region_id.as_deref() == Some(r) || ep.region.as_deref() == Some(r)
            });
            if iface_ok && region_ok {
                return Ok(ep.url.clone());
            }
        }
    }
    Err(Error::Unsupported {
        message: format!(
            "no {} endpoint for service type {service_type}{} in the catalog",
            interface.as_str(),
            region
                .map(|r| format!(" in region {r}"))
                .unwrap_or_default()
        ),
    })
}

/// The versioned Keystone base (`…/v3`) for an `auth_url`, or `None` when
/// the URL is unversioned (then `{url}/v3` is tried first).
pub(crate) enum AuthBase {
    V3(String),
    Unversioned(String),
}

pub(crate) fn auth_base(auth_url: &str) -> Result<AuthBase> {
    let u = auth_url.trim().trim_end_matches('/');
    let last = u.rsplit('/').next().unwrap_or("");
    if last == "v3" || last.starts_with("v3.") {
        return Ok(AuthBase::V3(u.to_owned()));
    }
    if last == "v2.0" || last == "v2" {
        return Err(v2_unsupported(auth_url));
    }
    Ok(AuthBase::Unversioned(u.to_owned()))
}

pub(crate) fn v2_unsupported(auth_url: &str) -> Error {
    Error::Unsupported {
        message: format!(
            "keystone at {auth_url} offers only identity v2, which is not supported; use a v3 auth_url"
        ),
    }
}

/// Reads a discovery document: the v3 base URL if one is offered, an
/// `Unsupported` error if only v2 is.
pub(crate) fn v3_from_discovery(auth_url: &str, body: &[u8]) -> Result<String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: format!("keystone discovery document at {auth_url}"),
        message: e.to_string(),
    })?;
    let values: Vec<Value> = match v.get("versions") {
        Some(Value::Object(o)) => o
            .get("values")
            .and_then(|x| x.as_array())
            .cloned()
            .unwrap_or_default(),
        Some(Value::Array(a)) => a.clone(),
        _ => v.get("version").cloned().into_iter().collect(),
    };
    let mut saw_v2 = false;
    for ver in &values {
        let id = ver.get("id").and_then(|i| i.as_str()).unwrap_or("");
        if id.starts_with("v3") {
            let href = ver
                .get("links")
                .and_then(|l| l.as_array())
                .and_then(|l| {
                    l.iter()
                        .find(|l| l.get("rel").and_then(|r| r.as_str()) == Some("self"))
                })
                .and_then(|l| l.get("href"))
                .and_then(|h| h.as_str());
            return Ok(href
                .map(|h| h.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("{}/v3", auth_url.trim_end_matches('/'))));
        }
        saw_v2 |= id.starts_with("v2");
    }
    if saw_v2 {
        return Err(v2_unsupported(auth_url));
    }
    Err(Error::Unsupported {
        message: format!("keystone at {auth_url} offers no identity v3 API"),
    })
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(n) => json!({ "name": n }),
    }
}

fn user_json(u: &UserRef) -> Value {
    match u {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

/// The `POST /v3/auth/tokens` body. Contains the secret: never log it.
pub(crate) fn auth_body(auth: &AuthConfig) -> Value {
    let identity = match &auth.credentials {
        Credentials::Password { user, password } => {
            let mut u = user_json(user);
            u["password"] = json!(password.expose());
            json!({ "methods": ["password"], "password": { "user": u } })
        }
        Credentials::ApplicationCredential {
            id,
            name,
            user,
            secret,
        } => {
            let mut ac = json!({ "secret": secret.expose() });
            if let Some(id) = id {
                ac["id"] = json!(id);
            } else {
                if let Some(n) = name {
                    ac["name"] = json!(n);
                }
                if let Some(u) = user {
                    ac["user"] = user_json(u);
                }
            }
            json!({ "methods": ["application_credential"], "application_credential": ac })
        }
        Credentials::Token { token } => {
            json!({ "methods": ["token"], "token": { "id": token.expose() } })
        }
    };
    let mut body = json!({ "auth": { "identity": identity } });
    if let Some(scope) = &auth.scope {
        body["auth"]["scope"] = match scope {
            Scope::ProjectId(id) => json!({ "project": { "id": id } }),
            Scope::Project { name, domain } => {
                json!({ "project": { "name": name, "domain": domain_json(domain) } })
            }
            Scope::Domain(d) => json!({ "domain": domain_json(d) }),
            Scope::System => json!({ "system": { "all": true } }),
        };
    }
    body
}

/// What a token response tells us.
#[derive(Debug)]
pub(crate) struct TokenInfo {
    pub expires_at: Option<i64>,
    pub project_id: Option<String>,
    pub catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenPart,
}

#[derive(Deserialize)]
struct TokenPart {
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    project: Option<IdOnly>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

pub(crate) fn parse_token(body: &[u8]) -> Result<TokenInfo> {
    let t: TokenBody = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: "keystone token response".into(),
        message: e.to_string(),
    })?;
    Ok(TokenInfo {
        expires_at: t
            .token
            .expires_at
            .as_deref()
            .and_then(crate::timefmt::parse_rfc3339),
        project_id: t.token.project.map(|p| p.id),
        catalog: t.token.catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    // Trimmed from keystone's api-ref sample (auth-password-project-scoped-response.json).
    const TOKEN: &str = r#"{"token": {"methods": ["password"], "roles": [{"id": "r", "name": "admin"}],
      "expires_at": "2015-11-06T15:32:17.893769Z",
      "project": {"domain": {"id": "default", "name": "Default"}, "id": "a6944d763bf64ee6a275f1263fae0352", "name": "admin"},
      "catalog": [
        {"endpoints": [
          {"region_id": "RegionOne", "url": "http://public:8774/v2.1", "region": "RegionOne", "interface": "public", "id": "1"},
          {"region_id": "RegionOne", "url": "http://internal:8774/v2.1", "region": "RegionOne", "interface": "internal", "id": "2"},
          {"region_id": "RegionTwo", "url": "http://r2-internal:8774/v2.1", "region": "RegionTwo", "interface": "internal", "id": "3"}],
         "type": "compute", "id": "c", "name": "nova"},
        {"endpoints": [{"region_id": "RegionOne", "url": "http://glance:9292", "region": "RegionOne", "interface": "public", "id": "4"}],
         "type": "image", "id": "i", "name": "glance"}],
      "user": {"domain": {"id": "default", "name": "Default"}, "id": "u", "name": "admin", "password_expires_at": null},
      "audit_ids": ["x"], "issued_at": "2015-11-06T14:32:17.893797Z"}}"#;

    #[test]
    fn token_and_catalog() {
        let t = parse_token(TOKEN.as_bytes()).unwrap();
        assert_eq!(t.expires_at, Some(1_446_823_937));
        assert_eq!(
            t.project_id.as_deref(),
            Some("a6944d763bf64ee6a275f1263fae0352")
        );
        let c = &t.catalog;
        assert_eq!(
            find_endpoint(c, "compute", Interface::Public, None).unwrap(),
            "http://public:8774/v2.1"
        );
        assert_eq!(
            find_endpoint(c, "compute", Interface::Internal, None).unwrap(),
            "http://internal:8774/v2.1"
        );
        assert_eq!(
            find_endpoint(
                c,
                "compute",
                Interface::parse("internalURL").unwrap(),
                Some("RegionTwo")
            )
            .unwrap(),
            "http://r2-internal:8774/v2.1"
        );
        assert!(find_endpoint(c, "compute", Interface::Admin, None).is_err());
        assert!(find_endpoint(c, "image", Interface::Public, Some("RegionTwo")).is_err());
        assert_eq!(
            find_endpoint(c, "image", Interface::Public, Some("RegionOne")).unwrap(),
            "http://glance:9292"
        );
    }

    #[test]
    fn bodies() {
        let a = AuthConfig {
            auth_url: None,
            credentials: Credentials::Password {
                user: UserRef::Name {
                    name: "u".into(),
                    domain: DomainRef::Name("Default".into()),
                },
                password: Secret::new("p"),
            },
            scope: Some(Scope::Project {
                name: "admin".into(),
                domain: DomainRef::Id("default".into()),
            }),
        };
        assert_eq!(
            auth_body(&a),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u", "domain": {"name": "Default"}, "password": "p"}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        );
        let a = AuthConfig {
            auth_url: None,
            credentials: Credentials::ApplicationCredential {
                id: None,
                name: Some("ac".into()),
                user: Some(UserRef::Id("uid".into())),
                secret: Secret::new("s"),
            },
            scope: None,
        };
        assert_eq!(
            auth_body(&a),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"secret": "s", "name": "ac", "user": {"id": "uid"}}}}})
        );
    }

    #[test]
    fn versions() {
        assert!(
            matches!(auth_base("http://k:5000/v3/").unwrap(), AuthBase::V3(u) if u == "http://k:5000/v3")
        );
        assert!(matches!(
            auth_base("http://k:5000").unwrap(),
            AuthBase::Unversioned(_)
        ));
        let e = auth_base("http://k:5000/v2.0").err().unwrap();
        assert!(e.to_string().contains("v2, which is not supported"), "{e}");
        let doc = br#"{"versions": {"values": [{"id": "v3.14", "status": "stable",
            "links": [{"rel": "self", "href": "http://k:5000/v3/"}]}]}}"#;
        assert_eq!(
            v3_from_discovery("http://k:5000", doc).unwrap(),
            "http://k:5000/v3"
        );
        let v2 =
            br#"{"versions": {"values": [{"id": "v2.0", "status": "deprecated", "links": []}]}}"#;
        assert!(matches!(
            v3_from_discovery("http://k:5000", v2),
            Err(Error::Unsupported { .. })
        ));
    }
}
