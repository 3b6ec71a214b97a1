//! Connection settings and where they come from.
//!
//! [`AuthParams`] is one flat, all-optional layer of settings. Three layers are
//! read and merged by precedence: explicit agent parameters, then the
//! `clouds.yaml` entry named by `cloud` (merged with `secure.yaml`), then the
//! `OS_*` environment. The identity (which credential to use) is taken as a
//! whole from the highest layer that carries a credential, so a password given
//! to the agent is never combined with an application credential found in the
//! environment; every other setting is filled field by field.
//! [`ConnectionOptions::from_params`] then validates the result into the typed
//! [`ConnectionOptions`] the client is built from. Nothing here touches the
//! network, and the process environment is read only through a closure so
//! tests can supply their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

use crate::error::{Error, Result};
use crate::logging::{LogSink, Logger};
use crate::secret::Secret;

/// One layer of settings, every field optional. Field names follow
/// `clouds.yaml` (`auth` keys flattened). `Debug` is derived: every secret is a [`Secret`],
/// whose own `Debug` prints `Secret(***)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthParams {
    /// Name of a `clouds.yaml` entry.
    pub cloud: Option<String>,
    /// `password`/`v3password`, `v3applicationcredential`, `token`/`v3token`.
    pub auth_type: Option<String>,
    /// Keystone URL, with or without `/v3`.
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    /// Default for the user and project domains; a domain scope when no
    /// project is given.
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
    /// `all` for a system-scoped token.
    pub system_scope: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
    /// A pre-issued token.
    pub token: Option<Secret>,
    pub region_name: Option<String>,
    /// `public`, `internal`, `admin` or the legacy `publicURL`...
    pub interface: Option<String>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Disables TLS verification; only `Some(true)` does.
    pub insecure: Option<bool>,
    /// Explicit endpoint per service type (`compute`, `image`).
    pub endpoint_overrides: BTreeMap<String, String>,
}

fn or<T>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.or(b)
}

impl AuthParams {
    /// Empty strings mean "not given": agents pass their empty defaults
    /// (`tenant_name=""`), and an empty project name must not become a scope.
    fn without_empty(self) -> AuthParams {
        fn s(v: Option<String>) -> Option<String> {
            v.filter(|x| !x.trim().is_empty())
        }
        fn x(v: Option<Secret>) -> Option<Secret> {
            v.filter(|x| !x.is_empty())
        }
        fn path(v: Option<PathBuf>) -> Option<PathBuf> {
            v.filter(|x| !x.as_os_str().is_empty())
        }
        AuthParams {
            cloud: s(self.cloud),
            auth_type: s(self.auth_type),
            auth_url: s(self.auth_url),
            username: s(self.username),
            user_id: s(self.user_id),
            password: x(self.password),
            project_name: s(self.project_name),
            project_id: s(self.project_id),
            user_domain_name: s(self.user_domain_name),
            user_domain_id: s(self.user_domain_id),
            project_domain_name: s(self.project_domain_name),
            project_domain_id: s(self.project_domain_id),
            domain_name: s(self.domain_name),
            domain_id: s(self.domain_id),
            system_scope: s(self.system_scope),
            application_credential_id: s(self.application_credential_id),
            application_credential_name: s(self.application_credential_name),
            application_credential_secret: x(self.application_credential_secret),
            token: x(self.token),
            region_name: s(self.region_name),
            interface: s(self.interface),
            cacert: path(self.cacert),
            cert: path(self.cert),
            key: path(self.key),
            insecure: self.insecure,
            endpoint_overrides: self
                .endpoint_overrides
                .into_iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .collect(),
        }
    }

    fn has_credential(&self) -> bool {
        self.password.is_some()
            || self.application_credential_secret.is_some()
            || self.token.is_some()
    }

    /// `self` over `lower`: see the module documentation for the rule.
    pub fn merged_over(self, lower: AuthParams) -> AuthParams {
        let (hi, lo) = (self.without_empty(), lower.without_empty());
        let (hi_cred, lo_cred) = (hi.has_credential(), lo.has_credential());
        // The identity comes whole from the layer holding the credential;
        // without any credential, fields fill in one by one.
        fn pick<T>(hi_cred: bool, lo_cred: bool, a: Option<T>, b: Option<T>) -> Option<T> {
            if hi_cred {
                a
            } else if lo_cred {
                b
            } else {
                a.or(b)
            }
        }
        let mut endpoint_overrides = lo.endpoint_overrides;
        endpoint_overrides.extend(hi.endpoint_overrides);
        let pick_s = |a: Option<String>, b: Option<String>| pick(hi_cred, lo_cred, a, b);
        let pick_x = |a: Option<Secret>, b: Option<Secret>| pick(hi_cred, lo_cred, a, b);
        AuthParams {
            cloud: or(hi.cloud, lo.cloud),
            auth_type: pick_s(hi.auth_type, lo.auth_type),
            auth_url: or(hi.auth_url, lo.auth_url),
            username: pick_s(hi.username, lo.username),
            user_id: pick_s(hi.user_id, lo.user_id),
            password: pick_x(hi.password, lo.password),
            project_name: or(hi.project_name, lo.project_name),
            project_id: or(hi.project_id, lo.project_id),
            user_domain_name: or(hi.user_domain_name, lo.user_domain_name),
            user_domain_id: or(hi.user_domain_id, lo.user_domain_id),
            project_domain_name: or(hi.project_domain_name, lo.project_domain_name),
            project_domain_id: or(hi.project_domain_id, lo.project_domain_id),
            domain_name: or(hi.domain_name, lo.domain_name),
            domain_id: or(hi.domain_id, lo.domain_id),
            system_scope: or(hi.system_scope, lo.system_scope),
            application_credential_id: pick_s(
                hi.application_credential_id,
                lo.application_credential_id,
            ),
            application_credential_name: pick_s(
                hi.application_credential_name,
                lo.application_credential_name,
            ),
            application_credential_secret: pick_x(
                hi.application_credential_secret,
                lo.application_credential_secret,
            ),
            token: pick_x(hi.token, lo.token),
            region_name: or(hi.region_name, lo.region_name),
            interface: or(hi.interface, lo.interface),
            cacert: or(hi.cacert, lo.cacert),
            cert: or(hi.cert, lo.cert),
            key: or(hi.key, lo.key),
            insecure: or(hi.insecure, lo.insecure),
            endpoint_overrides,
        }
    }

    /// Reads the `OS_*` variables through `env`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> AuthParams {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        let secret = |k: &str| get(k).map(Secret::from);
        let mut endpoint_overrides = BTreeMap::new();
        for (var, service) in [
            ("OS_COMPUTE_ENDPOINT_OVERRIDE", "compute"),
            ("OS_IMAGE_ENDPOINT_OVERRIDE", "image"),
        ] {
            if let Some(v) = get(var) {
                endpoint_overrides.insert(service.to_owned(), v);
            }
        }
        AuthParams {
            cloud: get("OS_CLOUD"),
            auth_type: get("OS_AUTH_TYPE"),
            auth_url: get("OS_AUTH_URL"),
            username: get("OS_USERNAME"),
            user_id: get("OS_USER_ID"),
            password: secret("OS_PASSWORD"),
            project_name: get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME")),
            project_id: get("OS_PROJECT_ID").or_else(|| get("OS_TENANT_ID")),
            user_domain_name: get("OS_USER_DOMAIN_NAME"),
            user_domain_id: get("OS_USER_DOMAIN_ID"),
            project_domain_name: get("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: get("OS_PROJECT_DOMAIN_ID"),
            domain_name: get("OS_DOMAIN_NAME"),
            domain_id: get("OS_DOMAIN_ID"),
            system_scope: get("OS_SYSTEM_SCOPE"),
            application_credential_id: get("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: get("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: secret("OS_APPLICATION_CREDENTIAL_SECRET"),
            token: secret("OS_TOKEN"),
            region_name: get("OS_REGION_NAME"),
            interface: get("OS_INTERFACE").or_else(|| get("OS_ENDPOINT_TYPE")),
            cacert: get("OS_CACERT").map(PathBuf::from),
            cert: get("OS_CERT").map(PathBuf::from),
            key: get("OS_KEY").map(PathBuf::from),
            insecure: get("OS_INSECURE").map(|v| truthy(&v)),
            endpoint_overrides,
        }
    }

    /// Reads one cloud entry of a parsed `clouds.yaml` document.
    fn from_cloud_yaml(cloud: &Yaml) -> AuthParams {
        let auth = &cloud["auth"];
        let s = |y: &Yaml| scalar(y);
        let a = |k: &str| s(&auth[k]);
        let c = |k: &str| s(&cloud[k]);
        let mut endpoint_overrides = BTreeMap::new();
        if let Yaml::Hash(h) = cloud {
            for (k, v) in h {
                if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                    if let Some(service) = k.strip_suffix("_endpoint_override") {
                        endpoint_overrides.insert(service.to_owned(), v);
                    }
                }
            }
        }
        let verify = match &cloud["verify"] {
            Yaml::Boolean(b) => Some(*b),
            Yaml::String(v) => Some(truthy(v)),
            _ => None,
        };
        let insecure = match &cloud["insecure"] {
            Yaml::Boolean(b) => Some(*b),
            Yaml::String(v) => Some(truthy(v)),
            _ => None,
        }
        .or(verify.map(|v| !v));
        let region = c("region_name").or_else(|| match &cloud["regions"] {
            Yaml::Array(r) => r
                .first()
                .and_then(|r| scalar(r).or_else(|| scalar(&r["name"]))),
            _ => None,
        });
        AuthParams {
            cloud: None,
            auth_type: c("auth_type"),
            auth_url: a("auth_url"),
            username: a("username").or_else(|| a("user_name")),
            user_id: a("user_id"),
            password: a("password").map(Secret::from),
            project_name: a("project_name").or_else(|| a("tenant_name")),
            project_id: a("project_id").or_else(|| a("tenant_id")),
            user_domain_name: a("user_domain_name"),
            user_domain_id: a("user_domain_id"),
            project_domain_name: a("project_domain_name"),
            project_domain_id: a("project_domain_id"),
            domain_name: a("domain_name"),
            domain_id: a("domain_id"),
            system_scope: a("system_scope"),
            application_credential_id: a("application_credential_id"),
            application_credential_name: a("application_credential_name"),
            application_credential_secret: a("application_credential_secret").map(Secret::from),
            token: a("token").map(Secret::from),
            region_name: region,
            interface: c("interface").or_else(|| c("endpoint_type")),
            cacert: c("cacert").map(PathBuf::from),
            cert: c("cert").map(PathBuf::from),
            key: c("key").map(PathBuf::from),
            insecure,
            endpoint_overrides,
        }
    }
}

/// Truthiness as Pacemaker and OpenStack tools spell it.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) if !s.is_empty() => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Where `clouds.yaml` and `secure.yaml` are looked for, in order; the first
/// file that exists wins.
#[derive(Debug, Clone, Default)]
pub struct CloudsSearch {
    pub clouds_files: Vec<PathBuf>,
    pub secure_files: Vec<PathBuf>,
}

impl CloudsSearch {
    /// The standard openstacksdk search order: `OS_CLIENT_CONFIG_FILE`
    /// (`OS_CLIENT_SECURE_FILE`), the current directory,
    /// `~/.config/openstack/`, `/etc/openstack/`.
    pub fn standard(env: &dyn Fn(&str) -> Option<String>, cwd: Option<&Path>) -> CloudsSearch {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(cwd) = cwd {
            dirs.push(cwd.to_path_buf());
        }
        let config_home = env("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                env("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| Path::new(&h).join(".config"))
            });
        if let Some(c) = config_home {
            dirs.push(c.join("openstack"));
        }
        dirs.push(PathBuf::from("/etc/openstack"));
        let files = |base: &str, explicit: Option<String>| {
            let mut out: Vec<PathBuf> = explicit
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .into_iter()
                .collect();
            for d in &dirs {
                out.push(d.join(format!("{base}.yaml")));
                out.push(d.join(format!("{base}.yml")));
            }
            out
        };
        CloudsSearch {
            clouds_files: files("clouds", env("OS_CLIENT_CONFIG_FILE")),
            secure_files: files("secure", env("OS_CLIENT_SECURE_FILE")),
        }
    }

    /// Loads the named cloud, merged with its `secure.yaml` entry (which wins).
    pub fn load(&self, cloud: &str) -> Result<AuthParams> {
        let Some((path, doc)) = first_yaml(&self.clouds_files)? else {
            return Err(Error::Config {
                message: format!("cloud {cloud:?} requested but no clouds.yaml found"),
            });
        };
        let entry = &doc["clouds"][cloud];
        if matches!(entry, Yaml::BadValue | Yaml::Null) {
            return Err(Error::Config {
                message: format!("cloud {cloud:?} not found in {}", path.display()),
            });
        }
        let base = AuthParams::from_cloud_yaml(entry);
        let secure = match first_yaml(&self.secure_files)? {
            Some((_, sdoc)) => AuthParams::from_cloud_yaml(&sdoc["clouds"][cloud]),
            None => AuthParams::default(),
        };
        Ok(overlay(secure, base))
    }
}

/// Field-by-field overlay with no identity grouping: `secure.yaml` only adds
/// secrets to the same cloud entry.
fn overlay(hi: AuthParams, lo: AuthParams) -> AuthParams {
    let mut endpoint_overrides = lo.endpoint_overrides;
    endpoint_overrides.extend(hi.endpoint_overrides);
    AuthParams {
        cloud: or(hi.cloud, lo.cloud),
        auth_type: or(hi.auth_type, lo.auth_type),
        auth_url: or(hi.auth_url, lo.auth_url),
        username: or(hi.username, lo.username),
        user_id: or(hi.user_id, lo.user_id),
        password: or(hi.password, lo.password),
        project_name: or(hi.project_name, lo.project_name),
        project_id: or(hi.project_id, lo.project_id),
        user_domain_name: or(hi.user_domain_name, lo.user_domain_name),
        user_domain_id: or(hi.user_domain_id, lo.user_domain_id),
        project_domain_name: or(hi.project_domain_name, lo.project_domain_name),
        project_domain_id: or(hi.project_domain_id, lo.project_domain_id),
        domain_name: or(hi.domain_name, lo.domain_name),
        domain_id: or(hi.domain_id, lo.domain_id),
        system_scope: or(hi.system_scope, lo.system_scope),
        application_credential_id: or(hi.application_credential_id, lo.application_credential_id),
        application_credential_name: or(
            hi.application_credential_name,
            lo.application_credential_name,
        ),
        application_credential_secret: or(
            hi.application_credential_secret,
            lo.application_credential_secret,
        ),
        token: or(hi.token, lo.token),
        region_name: or(hi.region_name, lo.region_name),
        interface: or(hi.interface, lo.interface),
        cacert: or(hi.cacert, lo.cacert),
        cert: or(hi.cert, lo.cert),
        key: or(hi.key, lo.key),
        insecure: or(hi.insecure, lo.insecure),
        endpoint_overrides,
    }
}

fn first_yaml(files: &[PathBuf]) -> Result<Option<(PathBuf, Yaml)>> {
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Config {
                    message: format!("cannot read {}: {e}", f.display()),
                });
            }
        };
        let mut docs = YamlLoader::load_from_str(&text).map_err(|e| Error::Config {
            message: format!("cannot parse {}: {e}", f.display()),
        })?;
        let doc = if docs.is_empty() {
            Yaml::Null
        } else {
            docs.swap_remove(0)
        };
        return Ok(Some((f.clone(), doc)));
    }
    Ok(None)
}

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// A user, by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// How to authenticate to Keystone v3 (`Debug` redacts through [`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// `password` method.
    Password { user: UserRef, password: Secret },
    /// `application_credential` method: by id, or by name and its user.
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: Secret,
    },
    /// A pre-issued token; re-scoped when a scope is given, else validated
    /// as is. Without an `auth_url` it is used directly against the endpoint
    /// overrides (no Keystone at all).
    Token { token: Secret },
}

/// What the token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    ProjectId(String),
    Project { name: String, domain: DomainRef },
    Domain(DomainRef),
    System,
}

/// Keystone authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Keystone URL as given (normalised at use); `None` only for a token
    /// used directly against explicit endpoints.
    pub auth_url: Option<String>,
    pub credentials: Credentials,
    pub scope: Option<Scope>,
}

/// Catalog interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    Public,
    Internal,
    Admin,
}

impl Interface {
    /// Parses `public`/`publicURL`, `internal`/`internalURL`, `admin`/`adminURL`.
    pub fn parse(s: &str) -> Result<Interface> {
        let l = s.trim().to_ascii_lowercase();
        match l.strip_suffix("url").unwrap_or(&l) {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(Error::Config {
                message: format!("unknown endpoint interface {s:?}"),
            }),
        }
    }

    /// The v3 catalog spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM bundle of trusted CAs. When set, only these CAs are trusted (as
    /// `requests`' `verify=<path>` does); otherwise the system store is used.
    pub cacert: Option<PathBuf>,
    /// PEM client certificate (may also hold the key).
    pub cert: Option<PathBuf>,
    /// PEM client key.
    pub key: Option<PathBuf>,
    /// Turns verification off; nothing else does.
    pub insecure: bool,
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First back-off; doubles each retry, with jitter.
    pub initial_backoff: Duration,
    /// Longest back-off (a `Retry-After` may ask for more, within the deadline).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Where the token cache lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenCacheMode {
    /// `/run/instance-ha/tokens` as root, else `$XDG_RUNTIME_DIR/instance-ha/tokens`,
    /// else `/tmp/instance-ha-<uid>/tokens`.
    #[default]
    Default,
    /// This directory (created 0700 if missing).
    Dir(PathBuf),
    /// No cache: authenticate every process.
    Disabled,
}

/// Everything needed to build a [`crate::Client`].
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    pub auth: AuthConfig,
    /// Region; `None` = first matching endpoint.
    pub region_name: Option<String>,
    pub interface: Interface,
    /// Explicit endpoint per service type; wins over the catalog.
    pub endpoint_overrides: BTreeMap<String, String>,
    pub tls: TlsOptions,
    /// Upper bound for one HTTP exchange (the deadline may cut it shorter).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub token_cache: TokenCacheMode,
    /// Reuse a cached token until this long before it expires.
    pub token_expiry_margin: Duration,
    /// Where messages go; defaults to the `log` facade.
    pub logger: LogSink,
    pub user_agent: String,
    /// `limit` of paginated Nova lists (Nova's default `max_limit` is 1000).
    pub page_size: u32,
}

impl ConnectionOptions {
    /// Validates merged parameters into options with default timeouts.
    pub fn from_params(p: AuthParams) -> Result<ConnectionOptions> {
        let p = p.without_empty();
        let cfg = |m: &str| Error::Config {
            message: m.to_owned(),
        };
        let domain = |id: &Option<String>, name: &Option<String>| -> Option<DomainRef> {
            id.clone()
                .map(DomainRef::Id)
                .or_else(|| name.clone().map(DomainRef::Name))
        };
        let default_domain = domain(&p.domain_id, &p.domain_name);
        let user_domain = domain(&p.user_domain_id, &p.user_domain_name)
            .or_else(|| default_domain.clone())
            .unwrap_or_else(|| DomainRef::Name("Default".into()));
        let project_domain = domain(&p.project_domain_id, &p.project_domain_name)
            .or_else(|| default_domain.clone())
            .unwrap_or_else(|| DomainRef::Name("Default".into()));
        let user = match (&p.user_id, &p.username) {
            (Some(id), _) => Some(UserRef::Id(id.clone())),
            (None, Some(name)) => Some(UserRef::Name {
                name: name.clone(),
                domain: user_domain,
            }),
            (None, None) => None,
        };
        let kind = match p
            .auth_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("password" | "v3password") => "password",
            Some(
                "v3applicationcredential"
                | "applicationcredential"
                | "application_credential"
                | "v3_application_credential",
            ) => "appcred",
            Some("token" | "v3token" | "admin_token") => "token",
            Some(t @ ("v2password" | "v2token")) => {
                return Err(Error::Unsupported {
                    message: format!(
                        "auth_type {t} needs keystone v2, which is not supported; use v3"
                    ),
                });
            }
            Some(other) => {
                return Err(Error::Config {
                    message: format!("unsupported auth_type {other:?}"),
                });
            }
            None if p.application_credential_secret.is_some() => "appcred",
            None if p.password.is_some() => "password",
            None if p.token.is_some() => "token",
            None => {
                return Err(cfg(
                    "no credentials: need a password, an application credential or a token",
                ));
            }
        };
        let credentials = match kind {
            "password" => Credentials::Password {
                user: user
                    .ok_or_else(|| cfg("password authentication needs a username or user_id"))?,
                password: p
                    .password
                    .clone()
                    .ok_or_else(|| cfg("password authentication needs a password"))?,
            },
            "appcred" => {
                let secret = p.application_credential_secret.clone().ok_or_else(|| {
                    cfg("application credential authentication needs application_credential_secret")
                })?;
                if p.application_credential_id.is_none() {
                    if p.application_credential_name.is_none() {
                        return Err(cfg(
                            "application credential authentication needs application_credential_id or _name",
                        ));
                    }
                    if user.is_none() {
                        return Err(cfg(
                            "an application credential given by name needs a username or user_id",
                        ));
                    }
                }
                Credentials::ApplicationCredential {
                    id: p.application_credential_id.clone(),
                    name: p.application_credential_name.clone(),
                    user: if p.application_credential_id.is_none() {
                        user
                    } else {
                        None
                    },
                    secret,
                }
            }
            _ => Credentials::Token {
                token: p
                    .token
                    .clone()
                    .ok_or_else(|| cfg("token authentication needs a token"))?,
            },
        };
        let scope = if matches!(credentials, Credentials::ApplicationCredential { .. }) {
            // An application credential carries its own scope.
            None
        } else if let Some(id) = &p.project_id {
            Some(Scope::ProjectId(id.clone()))
        } else if let Some(name) = &p.project_name {
            Some(Scope::Project {
                name: name.clone(),
                domain: project_domain,
            })
        } else if p.system_scope.is_some() {
            Some(Scope::System)
        } else {
            default_domain.map(Scope::Domain)
        };
        let auth_url = p.auth_url.clone().filter(|u| !u.trim().is_empty());
        if auth_url.is_none() {
            let direct = matches!(credentials, Credentials::Token { .. })
                && p.endpoint_overrides.contains_key("compute");
            if !direct {
                return Err(cfg("auth_url is required"));
            }
        }
        let interface = match &p.interface {
            Some(i) if !i.is_empty() => Interface::parse(i)?,
            _ => Interface::Public,
        };
        if p.key.is_some() && p.cert.is_none() {
            return Err(cfg("a client key was given without a client certificate"));
        }
        Ok(ConnectionOptions {
            auth: AuthConfig {
                auth_url,
                credentials,
                scope,
            },
            region_name: p.region_name.filter(|r| !r.is_empty()),
            interface,
            endpoint_overrides: p
                .endpoint_overrides
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            tls: TlsOptions {
                cacert: p.cacert,
                cert: p.cert,
                key: p.key,
                insecure: p.insecure == Some(true),
            },
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            token_cache: TokenCacheMode::Default,
            token_expiry_margin: Duration::from_secs(60),
            logger: LogSink::log_crate(),
            user_agent: concat!("instance-ha/", env!("CARGO_PKG_VERSION")).to_owned(),
            page_size: 1000,
        })
    }

    /// Explicit parameters > `clouds.yaml` (`cloud`, from `explicit` or
    /// `OS_CLOUD`) > `OS_*` environment, with `env` and `cwd` supplied by
    /// the caller.
    pub fn resolve(
        explicit: AuthParams,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: Option<&Path>,
    ) -> Result<ConnectionOptions> {
        let from_env = AuthParams::from_env(env);
        let cloud = explicit.cloud.clone().or_else(|| from_env.cloud.clone());
        let merged = match cloud.filter(|c| !c.is_empty()) {
            Some(c) => {
                let yaml = CloudsSearch::standard(env, cwd).load(&c)?;
                explicit.merged_over(yaml.merged_over(from_env))
            }
            None => explicit.merged_over(from_env),
        };
        ConnectionOptions::from_params(merged)
    }

    /// [`ConnectionOptions::resolve`] with the process environment and
    /// current directory.
    pub fn from_process_env(explicit: AuthParams) -> Result<ConnectionOptions> {
        let cwd = std::env::current_dir().ok();
        ConnectionOptions::resolve(explicit, &|k| std::env::var(k).ok(), cwd.as_deref())
    }

    /// Sets the logger.
    pub fn with_logger(mut self, logger: Arc<dyn Logger>) -> Self {
        self.logger = LogSink::new(logger);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn env_password() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://ks:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "secret"),
            ("OS_TENANT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
            ("OS_REGION_NAME", "RegionOne"),
            ("OS_ENDPOINT_TYPE", "internalURL"),
            ("OS_INSECURE", "true"),
        ]);
        let o = ConnectionOptions::resolve(AuthParams::default(), &env, None).unwrap();
        assert_eq!(o.auth.auth_url.as_deref(), Some("http://ks:5000/v3"));
        assert_eq!(
            o.auth.credentials,
            Credentials::Password {
                user: UserRef::Name {
                    name: "admin".into(),
                    domain: DomainRef::Name("Default".into())
                },
                password: Secret::new("secret")
            }
        );
        assert_eq!(
            o.auth.scope,
            Some(Scope::Project {
                name: "admin".into(),
                domain: DomainRef::Id("default".into())
            })
        );
        assert_eq!(o.interface, Interface::Internal);
        assert_eq!(o.region_name.as_deref(), Some("RegionOne"));
        assert!(o.tls.insecure);
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[test]
    fn explicit_credential_is_not_mixed_with_env() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://ks/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "acs"),
            ("OS_REGION_NAME", "R2"),
        ]);
        let explicit = AuthParams {
            username: Some("nova".into()),
            password: Some("pw".into()),
            project_name: Some("service".into()),
            ..Default::default()
        };
        let o = ConnectionOptions::resolve(explicit, &env, None).unwrap();
        assert!(matches!(o.auth.credentials, Credentials::Password { .. }));
        assert_eq!(o.region_name.as_deref(), Some("R2"));
        // No credential given explicitly: the environment's is used.
        let o = ConnectionOptions::resolve(AuthParams::default(), &env, None).unwrap();
        assert!(
            matches!(&o.auth.credentials, Credentials::ApplicationCredential { id: Some(i), .. } if i == "ac")
        );
        assert_eq!(o.auth.scope, None);
    }

    #[test]
    fn empty_agent_defaults_mean_unset() {
        let env = env_of(&[("OS_PROJECT_NAME", "from-env")]);
        let explicit = AuthParams {
            auth_url: Some("http://k/v3".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            project_name: Some(String::new()),
            region_name: Some(String::new()),
            ..Default::default()
        };
        let o = ConnectionOptions::resolve(explicit, &env, None).unwrap();
        assert_eq!(
            o.auth.scope,
            Some(Scope::Project {
                name: "from-env".into(),
                domain: DomainRef::Name("Default".into())
            })
        );
        assert_eq!(o.region_name, None);
        let explicit = AuthParams {
            password: Some(Secret::new("")),
            ..Default::default()
        };
        assert!(ConnectionOptions::resolve(explicit, &env, None).is_err());
    }

    #[test]
    fn interfaces_and_errors() {
        assert_eq!(Interface::parse("publicURL").unwrap(), Interface::Public);
        assert_eq!(Interface::parse("admin").unwrap(), Interface::Admin);
        assert!(Interface::parse("private").is_err());
        let p = AuthParams {
            auth_url: Some("http://k/v3".into()),
            ..Default::default()
        };
        assert!(matches!(
            ConnectionOptions::from_params(p),
            Err(Error::Config { .. })
        ));
        let p = AuthParams {
            auth_url: Some("http://k/v2.0".into()),
            auth_type: Some("v2password".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        };
        assert!(matches!(
            ConnectionOptions::from_params(p),
            Err(Error::Unsupported { .. })
        ));
        // A token straight to an explicit endpoint needs no auth_url.
        let mut p = AuthParams {
            token: Some("admin:admin".into()),
            ..Default::default()
        };
        p.endpoint_overrides
            .insert("compute".into(), "http://127.0.0.1:8774/v2.1".into());
        assert!(ConnectionOptions::from_params(p).is_ok());
    }

    #[test]
    fn clouds_yaml_with_secure_yaml() {
        let dir = crate::testutil::TempDir::new("clouds");
        let cfg = dir.path().join("cfg");
        std::fs::create_dir_all(cfg.join("openstack")).unwrap();
        std::fs::write(
            cfg.join("openstack/clouds.yaml"),
            "clouds:\n  prod:\n    auth:\n      auth_url: https://ks.example:5000\n      username: fence\n      project_name: service\n      user_domain_name: Users\n      project_domain_id: default\n    region_name: RegionTwo\n    interface: internal\n    cacert: /etc/pki/ca.pem\n    verify: true\n    compute_endpoint_override: http://nova:8774/v2.1\n  other:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://x/v3\n      application_credential_id: abc\n      application_credential_secret: s3\n    verify: false\n",
        )
        .unwrap();
        std::fs::write(
            cfg.join("openstack/secure.yaml"),
            "clouds:\n  prod:\n    auth:\n      password: from-secure\n",
        )
        .unwrap();
        // A clouds.yaml in the current directory wins over the config dir.
        let cwd = dir.path().join("cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        let cfg_s = cfg.to_string_lossy().into_owned();
        let env = env_of(&[
            ("XDG_CONFIG_HOME", &cfg_s),
            ("OS_CLOUD", "prod"),
            ("OS_REGION_NAME", "Ignored"),
        ]);
        let o = ConnectionOptions::resolve(AuthParams::default(), &env, Some(&cwd)).unwrap();
        assert_eq!(o.auth.auth_url.as_deref(), Some("https://ks.example:5000"));
        assert_eq!(
            o.auth.credentials,
            Credentials::Password {
                user: UserRef::Name {
                    name: "fence".into(),
                    domain: DomainRef::Name("Users".into())
                },
                password: Secret::new("from-secure")
            }
        );
        assert_eq!(o.region_name.as_deref(), Some("RegionTwo"));
        assert_eq!(o.interface, Interface::Internal);
        assert_eq!(o.tls.cacert.as_deref(), Some(Path::new("/etc/pki/ca.pem")));
        assert!(!o.tls.insecure);
        assert_eq!(
            o.endpoint_overrides.get("compute").map(String::as_str),
            Some("http://nova:8774/v2.1")
        );
        // Explicit parameters beat clouds.yaml.
        let explicit = AuthParams {
            cloud: Some("other".into()),
            region_name: Some("R9".into()),
            ..Default::default()
        };
        let o = ConnectionOptions::resolve(explicit, &env, Some(&cwd)).unwrap();
        assert!(o.tls.insecure);
        assert_eq!(o.region_name.as_deref(), Some("R9"));
        assert!(matches!(
            o.auth.credentials,
            Credentials::ApplicationCredential { .. }
        ));
        std::fs::write(cwd.join("clouds.yaml"), "clouds:\n  prod:\n    auth_type: v3token\n    auth:\n      auth_url: http://local/v3\n      token: t\n").unwrap();
        let o = ConnectionOptions::resolve(AuthParams::default(), &env, Some(&cwd)).unwrap();
        assert_eq!(o.auth.auth_url.as_deref(), Some("http://local/v3"));
        // Unknown cloud, explicit OS_CLIENT_CONFIG_FILE, broken YAML.
        let explicit = AuthParams {
            cloud: Some("nope".into()),
            ..Default::default()
        };
        let e = ConnectionOptions::resolve(explicit, &env, Some(&cwd)).unwrap_err();
        assert!(e.to_string().contains("\"nope\" not found"), "{e}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "clouds: [unclosed").unwrap();
        let bad_s = bad.to_string_lossy().into_owned();
        let env = env_of(&[("OS_CLIENT_CONFIG_FILE", &bad_s), ("OS_CLOUD", "prod")]);
        let e = ConnectionOptions::resolve(AuthParams::default(), &env, None).unwrap_err();
        assert!(e.to_string().contains("cannot parse"), "{e}");
    }
}
