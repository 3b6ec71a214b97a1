//! [`Client`]: Keystone session handling plus the Nova and Glance calls,
//! implementing [`ComputeApi`].
//!
//! Construction does no I/O. The first call loads a cached session (token,
//! catalog, compute version document) or authenticates; a warm cache means
//! no Keystone request and no version discovery at all. With no range known
//! yet, reads do not wait for discovery: they assume Nova offers every
//! version we use and let its answer confirm it (`nova_read`); writes always
//! use a discovered range. A 401 drops the
//! session (memory and file) and re-authenticates once; a 406 drops the
//! version range and redoes the Nova operation once with a freshly
//! discovered one (`nova_op`). Clones share the
//! session, the connection pool and the cache; each clone may carry its own
//! [`Deadline`] ([`Client::with_deadline`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cache::{CachedSession, TokenCache, cache_key};
use crate::compute::ComputeApi;
use crate::config::{ConnectionOptions, Credentials};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::http::{Request, Response, Transport};
use crate::keystone::{self, AuthBase, CatalogEntry};
use crate::logging::LogSink;
use crate::microversion::{self, Microversion, VersionRange};
use crate::models::*;
use crate::secret::Secret;
use crate::timefmt::now_unix;
use crate::url::{encode, fill_project, join, query};

/// A runaway pagination (a server returning the same marker) stops here.
const MAX_PAGES: usize = 10_000;

const V2_11: Microversion = Microversion::new(2, 11);
const V2_14: Microversion = Microversion::new(2, 14);
const V2_26: Microversion = Microversion::new(2, 26);
const V2_29: Microversion = Microversion::new(2, 29);
const V2_52: Microversion = Microversion::new(2, 52);
const V2_53: Microversion = Microversion::new(2, 53);
const V2_59: Microversion = Microversion::new(2, 59);
const V2_67: Microversion = Microversion::new(2, 67);
const V2_73: Microversion = Microversion::new(2, 73);
const V2_94: Microversion = Microversion::new(2, 94);
const V2_95: Microversion = Microversion::new(2, 95);

struct Session {
    token: Secret,
    expires_at: Option<i64>,
    project_id: Option<String>,
    catalog: Vec<CatalogEntry>,
    compute_versions: Vec<(String, VersionRange)>,
    /// False for a token used directly (no Keystone): a 401 is then final.
    reauthable: bool,
    /// Issued to this process: used up to its expiry even inside the
    /// margin, so a cloud with very short token lifetimes does not get one
    /// authentication per request.
    issued_here: bool,
}

impl Session {
    fn to_cache(&self, key: &str) -> CachedSession {
        CachedSession {
            format: 1,
            key: key.to_owned(),
            token: self.token.expose().to_owned(),
            expires_at: self.expires_at,
            project_id: self.project_id.clone(),
            catalog: self.catalog.clone(),
            compute_versions: self.compute_versions.clone(),
        }
    }
}

struct Inner {
    opts: ConnectionOptions,
    transport: Transport,
    cache: TokenCache,
    key: String,
    session: Mutex<Option<Arc<Session>>>,
    /// Serialises version discovery so parallel workers fetch it once.
    discovery: Mutex<()>,
    page_size: u32,
}

/// The OpenStack client. Cheap to clone; clones share everything but the
/// deadline.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    deadline: Deadline,
    /// Set on the handle `nova_read` makes for a read at an assumed range:
    /// every 2xx must say it was served at the microversion asked for.
    confirm_version: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("auth_url", &self.inner.opts.auth.auth_url)
            .field("region_name", &self.inner.opts.region_name)
            .field("interface", &self.inner.opts.interface)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; no I/O happens until the first call.
    pub fn new(opts: ConnectionOptions) -> Client {
        let opts_page_size = opts.page_size.max(1);
        let log = opts.logger.clone();
        let transport = Transport::new(
            opts.tls.clone(),
            opts.request_timeout,
            opts.connect_timeout,
            opts.retry,
            opts.user_agent.clone(),
            log.clone(),
        );
        let cache = TokenCache::new(&opts.token_cache, log);
        let key = cache_key(&opts.auth, opts.region_name.as_deref());
        Client {
            inner: Arc::new(Inner {
                opts,
                transport,
                cache,
                key,
                session: Mutex::new(None),
                discovery: Mutex::new(()),
                page_size: opts_page_size,
            }),
            deadline: Deadline::NONE,
            confirm_version: false,
        }
    }

    /// Resolves `explicit` agent parameters over `clouds.yaml` and the
    /// `OS_*` environment ([`ConnectionOptions::from_process_env`]) and
    /// builds a client with default timeouts and token cache.
    pub fn from_params(explicit: crate::config::AuthParams) -> Result<Client> {
        Ok(Client::new(ConnectionOptions::from_process_env(explicit)?))
    }

    /// A clone whose calls all end by `deadline`.
    pub fn with_deadline(&self, deadline: Deadline) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            deadline,
            confirm_version: self.confirm_version,
        }
    }

    /// The deadline of this handle.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    fn log(&self) -> &LogSink {
        &self.inner.opts.logger
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Session>>> {
        // A panic while holding the lock cannot leave the Option half-written.
        self.inner.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, expires_at: Option<i64>) -> bool {
        let margin = i64::try_from(self.inner.opts.token_expiry_margin.as_secs()).unwrap_or(60);
        expires_at.is_none_or(|e| e - margin > now_unix())
    }

    /// The current session: in memory, from the cache file, or new.
    fn session(&self) -> Result<Arc<Session>> {
        let mut guard = self.lock();
        if let Some(s) = guard.as_ref() {
            let usable = self.fresh(s.expires_at)
                || (s.issued_here && s.expires_at.is_some_and(|e| e > now_unix()));
            if usable {
                return Ok(Arc::clone(s));
            }
        }
        if let Some(c) = self.inner.cache.load(&self.inner.key) {
            if self.fresh(c.expires_at) {
                self.log().debug(|| "using cached token".to_owned());
                let s = Arc::new(Session {
                    token: Secret::new(c.token),
                    expires_at: c.expires_at,
                    project_id: c.project_id,
                    catalog: c.catalog,
                    compute_versions: c.compute_versions,
                    reauthable: self.inner.opts.auth.auth_url.is_some(),
                    issued_here: false,
                });
                *guard = Some(Arc::clone(&s));
                return Ok(s);
            }
        }
        let s = Arc::new(self.authenticate()?);
        if s.reauthable {
            self.inner.cache.store(&s.to_cache(&self.inner.key));
        }
        *guard = Some(Arc::clone(&s));
        Ok(s)
    }

    /// Drops `stale` (if still current) from memory and from the cache.
    fn invalidate(&self, stale: &Arc<Session>) {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|s| Arc::ptr_eq(s, stale)) {
            *guard = None;
        }
        self.inner.cache.remove(&self.inner.key);
    }

    fn authenticate(&self) -> Result<Session> {
        let auth = &self.inner.opts.auth;
        let Some(auth_url) = auth.auth_url.as_deref() else {
            // A token used directly against explicit endpoints.
            let Credentials::Token { token } = &auth.credentials else {
                return Err(Error::Config {
                    message: "auth_url is required".into(),
                });
            };
            return Ok(Session {
                token: token.clone(),
                expires_at: None,
                project_id: None,
                catalog: Vec::new(),
                compute_versions: Vec::new(),
                reauthable: false,
                issued_here: true,
            });
        };
        match keystone::auth_base(auth_url)? {
            AuthBase::V3(base) => self.issue_token(&base),
            AuthBase::Unversioned(root) => match self.issue_token(&join(&root, "v3")) {
                Err(Error::NotFound { .. }) => {
                    // No /v3 under this URL: ask the discovery document why.
                    let req = Request {
                        method: Method::GET,
                        url: root.clone(),
                        headers: Vec::new(),
                        token: None,
                        subject_token: None,
                        body: None,
                        idempotent: true,
                    };
                    let r = self.inner.transport.send(&req, self.deadline)?;
                    if !(200..300).contains(&r.status) && r.status != 300 {
                        return Err(Error::from_status(req.describe(), r.status, &r.body));
                    }
                    let base = keystone::v3_from_discovery(auth_url, &r.body)?;
                    self.issue_token(&base)
                }
                other => other,
            },
        }
    }

    /// `POST {base}/auth/tokens`, or `GET` to validate a pre-issued,
    /// unscoped-by-us token.
    fn issue_token(&self, base: &str) -> Result<Session> {
        let auth = &self.inner.opts.auth;
        let url = join(base, "auth/tokens");
        let req = match (&auth.credentials, &auth.scope) {
            (Credentials::Token { token }, None) => Request {
                method: Method::GET,
                url,
                headers: Vec::new(),
                token: Some(token),
                subject_token: Some(token),
                body: None,
                idempotent: true,
            },
            _ => Request {
                method: Method::POST,
                url,
                headers: Vec::new(),
                token: None,
                subject_token: None,
                body: Some(keystone::auth_body(auth).to_string().into_bytes()),
                // Issuing a token has no side effect worth protecting.
                idempotent: true,
            },
        };
        let r = self.inner.transport.send(&req, self.deadline)?;
        if !(200..300).contains(&r.status) {
            return Err(
                match Error::from_status(req.describe(), r.status, &r.body) {
                    Error::Auth { message } => Error::Auth {
                        message: format!("keystone rejected the credentials: {message}"),
                    },
                    e => e,
                },
            );
        }
        let token = match (&r.subject_token, &auth.credentials) {
            (Some(t), _) => t.clone(),
            (None, Credentials::Token { token }) if req.method == Method::GET => token.clone(),
            _ => {
                return Err(Error::Decode {
                    what: "keystone token response".into(),
                    message: "no X-Subject-Token header".into(),
                });
            }
        };
        let info = keystone::parse_token(&r.body)?;
        self.log()
            .info(|| format!("authenticated to keystone at {base}"));
        Ok(Session {
            token,
            expires_at: info.expires_at,
            project_id: info.project_id,
            catalog: info.catalog,
            compute_versions: Vec::new(),
            reauthable: true,
            issued_here: true,
        })
    }

    /// The endpoint of `service_type`: the override, else the catalog.
    fn endpoint(&self, s: &Session, service_type: &str) -> Result<String> {
        let o = &self.inner.opts;
        let url = match o.endpoint_overrides.get(service_type) {
            Some(u) => u.clone(),
            None => keystone::find_endpoint(
                &s.catalog,
                service_type,
                o.interface,
                o.region_name.as_deref(),
            )?,
        };
        Ok(fill_project(&url, s.project_id.as_deref()))
    }

    /// The endpoint of `service_type` in `s`. A catalog loaded from the
    /// cache that lacks it may predate the service's registration: then the
    /// cache is dropped and a fresh token (and catalog) is fetched once.
    fn session_endpoint(
        &self,
        s: Arc<Session>,
        service_type: &str,
    ) -> Result<(Arc<Session>, String)> {
        match self.endpoint(&s, service_type) {
            Ok(e) => Ok((s, e)),
            Err(e) if s.issued_here || !s.reauthable => Err(e),
            Err(_) => {
                self.log().info(|| {
                    format!("cached catalog has no {service_type} endpoint, re-authenticating")
                });
                self.invalidate(&s);
                let fresh = self.session()?;
                let e = self.endpoint(&fresh, service_type)?;
                Ok((fresh, e))
            }
        }
    }

    /// The compute version range the session knows (cached or discovered
    /// earlier), without discovering it.
    fn known_versions(&self) -> Result<Option<VersionRange>> {
        let s = self.session()?;
        let (s, endpoint) = self.session_endpoint(s, "compute")?;
        Ok(cached_range(&s, &version_url(&endpoint)))
    }

    /// The compute version range, discovered once per cached session.
    fn versions(&self) -> Result<VersionRange> {
        if let Some(r) = self.known_versions()? {
            return Ok(r);
        }
        let _one_at_a_time = self
            .inner
            .discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut reauthed = false;
        let (url, r) = loop {
            let s = self.session()?;
            let (s, endpoint) = self.session_endpoint(s, "compute")?;
            let url = version_url(&endpoint);
            // Another thread may have discovered it while we waited.
            if let Some(r) = cached_range(&s, &url) {
                return Ok(r);
            }
            let req = Request {
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                token: Some(&s.token),
                subject_token: None,
                body: None,
                idempotent: true,
            };
            let r = self.inner.transport.send(&req, self.deadline)?;
            if r.status == 401 && s.reauthable && !reauthed {
                self.invalidate(&s);
                reauthed = true;
                continue;
            }
            if !(200..300).contains(&r.status) {
                return Err(Error::from_status(req.describe(), r.status, &r.body));
            }
            break (url, r);
        };
        let range = VersionRange::from_document(&r.body)?;
        self.log()
            .debug(|| format!("compute api versions {}..{}", range.min, range.max));
        // Remember it in the session and the cache file.
        self.update_versions(|versions| {
            versions.retain(|(u, _)| *u != url);
            versions.push((url, range));
            true
        });
        Ok(range)
    }

    /// Replaces the session's compute version ranges with what `change`
    /// makes of them (when it returns true), in memory and in the cache file.
    fn update_versions(&self, change: impl FnOnce(&mut Vec<(String, VersionRange)>) -> bool) {
        let mut guard = self.lock();
        let Some(cur) = guard.as_ref() else { return };
        let mut compute_versions = cur.compute_versions.clone();
        if !change(&mut compute_versions) {
            return;
        }
        let updated = Arc::new(Session {
            token: cur.token.clone(),
            expires_at: cur.expires_at,
            project_id: cur.project_id.clone(),
            catalog: cur.catalog.clone(),
            compute_versions,
            reauthable: cur.reauthable,
            issued_here: cur.issued_here,
        });
        if updated.reauthable {
            self.inner.cache.store(&updated.to_cache(&self.inner.key));
        }
        *guard = Some(updated);
    }

    /// Drops the version range `stale` from the session and the cache
    /// file, so that the next [`Client::versions`] discovers it again. A
    /// range another thread has already replaced is left alone.
    fn forget_versions(&self, stale: VersionRange) {
        self.update_versions(|versions| {
            let before = versions.len();
            versions.retain(|(_, r)| *r != stale);
            versions.len() != before
        });
    }

    /// Runs one Nova operation: `op` chooses its microversion(s) from the
    /// version range it is given and sends its requests. Every
    /// [`ComputeApi`] method that talks to Nova goes through here.
    ///
    /// If Nova answers 406, the range was stale: Nova was downgraded or
    /// rolled back since the range was discovered and cached (in tests:
    /// another simulator now listens on the same port with a lower maximum).
    /// The range is then forgotten, discovered again and `op` redone once
    /// with the fresh one, so every choice it makes (uuid calls from 2.53 or
    /// host calls before, pagination from 2.33, the evacuate body...) is made
    /// anew. Redoing is safe even for a POST such as evacuate: Nova checks
    /// the requested version in its API layer, before the request reaches
    /// any controller, so a 406 means nothing was done. A second 406 is
    /// returned as it is: no loop. Without microversions (a legacy range)
    /// no request carries one, so a 406 is not about versions and is final.
    fn nova_op<T>(&self, op: impl Fn(VersionRange) -> Result<T>) -> Result<T> {
        self.nova_op_in(self.versions()?, op)
    }

    /// [`Client::nova_op`] from the range `r` the session holds.
    fn nova_op_in<T>(&self, r: VersionRange, op: impl Fn(VersionRange) -> Result<T>) -> Result<T> {
        match op(r) {
            Err(e @ Error::NotAcceptable { .. }) if r != VersionRange::LEGACY => {
                self.log().info(|| {
                    format!(
                        "{e}; the compute api range {}..{} is stale, discovering it again",
                        r.min, r.max
                    )
                });
                self.forget_versions(r);
                op(self.versions()?)
            }
            other => other,
        }
    }

    /// Runs one Nova read (`op` makes only `GET`s). With a known range this
    /// is [`Client::nova_op`]. Without one (a cold cache), the read does not
    /// wait a round trip for the version document: `op` runs at
    /// [`ASSUMED`], the range whose every choice is the one we would make on
    /// any Nova offering 2.1 up to [`Microversion::MAX_SUPPORTED`] or more
    /// (every choice is a `best_up_to` something no higher), on a handle
    /// that insists each answer confirm the version asked for. Nova echoes it
    /// in `OpenStack-API-Version` and refuses a version it lacks with 406
    /// before doing anything; an endpoint without microversions echoes
    /// nothing. Either way nothing was done that a redo could repeat (reads),
    /// so the range is discovered and `op` redone with it. Writes never
    /// assume (they go through `nova_op`); a caller that wants its first
    /// write not to wait for discovery asks [`ComputeApi::api_versions`]
    /// alongside its reads.
    fn nova_read<T>(&self, op: impl Fn(&Client, VersionRange) -> Result<T>) -> Result<T> {
        if let Some(r) = self.known_versions()? {
            return self.nova_op_in(r, |r| op(self, r));
        }
        let probe = Client {
            confirm_version: true,
            ..self.clone()
        };
        match op(&probe, ASSUMED) {
            Err(e @ Error::NotAcceptable { .. }) => {
                self.log()
                    .debug(|| format!("{e}; discovering the compute api range"));
                // Freshly discovered: a 406 now is Nova's final word, not staleness.
                op(self, self.versions()?)
            }
            other => other,
        }
    }

    /// One authenticated request; 2xx or a typed error. A 401 re-authenticates once.
    fn call(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        mv: Option<Microversion>,
        idempotent: bool,
    ) -> Result<Response> {
        let mut reauthed = false;
        loop {
            let s = self.session()?;
            let (s, endpoint) = self.session_endpoint(s, service)?;
            let url = match service {
                "image" => join(&image_root(&endpoint), path),
                _ => join(&endpoint, path),
            };
            let headers = mv
                .map(|v| microversion::headers(v).to_vec())
                .unwrap_or_default();
            let req = Request {
                method: method.clone(),
                url,
                headers,
                token: Some(&s.token),
                subject_token: None,
                body: body.map(|b| b.to_string().into_bytes()),
                idempotent,
            };
            let r = self.inner.transport.send(&req, self.deadline)?;
            if r.status == 401 && s.reauthable && !reauthed {
                self.log()
                    .info(|| format!("{}: token rejected, re-authenticating", req.describe()));
                self.invalidate(&s);
                reauthed = true;
                continue;
            }
            if (200..300).contains(&r.status) {
                if self.confirm_version && mv.is_some() && r.api_version != mv {
                    // Not Nova's refusal but the same meaning for nova_read: the
                    // assumed version is not confirmed, discover the range.
                    return Err(Error::NotAcceptable {
                        request: req.describe(),
                        message: match r.api_version {
                            Some(v) => format!("asked for compute api {}, served at {v}", mv.unwrap_or(Microversion::BASE)),
                            None => "the answer names no compute api microversion".into(),
                        },
                    });
                }
                return Ok(r);
            }
            // A 406 is handled by the operation around this call (nova_op).
            return Err(Error::from_status(req.describe(), r.status, &r.body));
        }
    }

    fn get<T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        mv: Option<Microversion>,
    ) -> Result<T> {
        let r = self.call(service, Method::GET, path, None, mv, true)?;
        decode(&r.body, path)
    }

    /// A whole Nova read: one `GET` at the default microversion.
    fn nova_get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.nova_read(|c, r| c.get("compute", path, default_mv(r)))
    }

    /// `GET /servers/detail?all_tenants=1&<filter>`, every page.
    fn servers_of_every_project(&self, filter: (&str, String)) -> Result<Vec<Server>> {
        self.nova_read(|c, r| {
            c.paginate(
                "/servers/detail",
                vec![("all_tenants", "1".into()), filter.clone()],
                default_mv(r),
                |b: ServersBody| {
                    let next = next_page(&b.servers_links);
                    (b.servers, next)
                },
                |s| s.id.clone(),
            )
        })
    }

    /// Follows `*_links` `rel=next` markers until the last page.
    fn paginate<T, B>(
        &self,
        base_path: &str,
        mut params: Vec<(&str, String)>,
        mv: Option<Microversion>,
        split: impl Fn(B) -> (Vec<T>, Option<String>),
        id_of: impl Fn(&T) -> String,
    ) -> Result<Vec<T>>
    where
        B: DeserializeOwned,
    {
        params.push(("limit", self.inner.page_size.to_string()));
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = params.clone();
            if let Some(m) = &marker {
                p.push(("marker", m.clone()));
            }
            let body: B = self.get("compute", &format!("{base_path}{}", query(&p)), mv)?;
            let (items, next) = split(body);
            let last_id = items.last().map(&id_of);
            let n = items.len();
            out.extend(items);
            // Prefer the link's marker; fall back to the last id when a
            // link has none. Stop on an empty page or a repeated marker.
            let next = match next {
                Some(m) if !m.is_empty() => Some(m),
                Some(_) => last_id,
                None => None,
            };
            match next {
                Some(m) if n > 0 && marker.as_deref() != Some(m.as_str()) => marker = Some(m),
                _ => return Ok(out),
            }
        }
        Err(Error::Decode {
            what: base_path.into(),
            message: "too many pages".into(),
        })
    }

    /// `GET /os-services`, part of an operation using range `r`.
    fn services(&self, r: VersionRange, q: &ServiceQuery) -> Result<Vec<Service>> {
        let mut p = Vec::new();
        if let Some(b) = &q.binary {
            p.push(("binary", b.clone()));
        }
        if let Some(h) = &q.host {
            p.push(("host", h.clone()));
        }
        let b: ServicesBody = self.get(
            "compute",
            &format!("/os-services{}", query(&p)),
            default_mv(r),
        )?;
        Ok(b.services)
    }

    fn service_id(&self, r: VersionRange, service: &ServiceRef) -> Result<String> {
        if let Some(id) = &service.id {
            if !id.is_empty() && id.parse::<u64>().is_err() {
                return Ok(id.clone());
            }
        }
        let q = ServiceQuery {
            binary: Some(service.binary.clone()),
            host: Some(service.host.clone()),
        };
        self.services(r, &q)?
            .into_iter()
            .find(|s| s.host == service.host && s.binary == service.binary && !s.id.is_empty())
            .map(|s| s.id)
            .ok_or_else(|| Error::NotFound {
                request: "GET /os-services".into(),
                message: format!("no {} service on host {}", service.binary, service.host),
            })
    }

    /// `PUT /os-services/{uuid}` (2.53+) or the legacy host+binary call,
    /// chosen from `r`.
    fn update_service(
        &self,
        r: VersionRange,
        service: &ServiceRef,
        new: &Value,
        legacy_path: &str,
        legacy: &Value,
        need: Microversion,
    ) -> Result<()> {
        if r.max >= V2_53 {
            let id = self.service_id(r, service)?;
            let mv = r
                .best_up_to(Microversion::MAX_SUPPORTED)
                .unwrap_or(V2_53)
                .max(V2_53);
            self.call(
                "compute",
                Method::PUT,
                &format!("/os-services/{}", encode(&id)),
                Some(new),
                Some(mv),
                true,
            )?;
            return Ok(());
        }
        let mv = r
            .best_up_to(V2_52)
            .filter(|v| *v >= need)
            .ok_or_else(|| Error::Unsupported {
                message: format!(
                    "{legacy_path} needs compute api {need}, the cloud offers up to {}",
                    r.max
                ),
            })?;
        let mv = (r != VersionRange::LEGACY).then_some(mv);
        self.call("compute", Method::PUT, legacy_path, Some(legacy), mv, true)?;
        Ok(())
    }

    fn server_action(
        &self,
        id: &str,
        body: &Value,
        mv: Option<Microversion>,
        idempotent: bool,
    ) -> Result<Response> {
        self.call(
            "compute",
            Method::POST,
            &format!("/servers/{}/action", encode(id)),
            Some(body),
            mv,
            idempotent,
        )
    }

    /// The evacuate action, its microversion and body chosen from `r`.
    fn evacuate_in(
        &self,
        r: VersionRange,
        server_id: &str,
        req: &EvacuateRequest,
    ) -> Result<EvacuateOutcome> {
        let legacy = r == VersionRange::LEGACY;
        let unsupported = |m: String| Error::Unsupported { message: m };
        let mv = if req.stop_after {
            r.best_up_to(V2_95).filter(|v| *v >= V2_95).ok_or_else(|| {
                unsupported(format!(
                    "evacuate with stop needs compute api 2.95, the cloud offers up to {}",
                    r.max
                ))
            })?
        } else if req.force {
            // `force` exists only in 2.29–2.67; before 2.29 a target host
            // bypasses the scheduler anyway.
            r.best_up_to(V2_67).ok_or_else(|| {
                unsupported(format!("evacuate with force needs compute api 2.67 or older, the cloud's minimum is {}", r.min))
            })?
        } else {
            r.best_up_to(V2_94).ok_or_else(|| {
                unsupported(format!(
                    "evacuate: the cloud's minimum compute api {} is above 2.94",
                    r.min
                ))
            })?
        };
        let mut body = json!({});
        if let Some(h) = &req.host {
            body["host"] = json!(h);
        }
        if mv < V2_14 {
            body["onSharedStorage"] = json!(req.on_shared_storage.unwrap_or(false));
        }
        if let Some(p) = &req.admin_pass {
            // Nova refuses adminPass together with shared storage before 2.14.
            if !(mv < V2_14 && req.on_shared_storage == Some(true)) {
                body["adminPass"] = json!(p.expose());
            }
        }
        if req.force && (V2_29..=V2_67).contains(&mv) {
            body["force"] = json!(true);
        }
        let resp = self.server_action(
            server_id,
            &json!({ "evacuate": body }),
            (!legacy).then_some(mv),
            false,
        )?;
        let admin_pass = if resp.body.is_empty() {
            None
        } else {
            serde_json::from_slice::<AdminPassBody>(&resp.body)
                .ok()
                .and_then(|b| b.admin_pass)
                .map(Secret::from)
        };
        Ok(EvacuateOutcome {
            microversion: mv,
            admin_pass,
        })
    }
}

/// The range a read assumes before one is known (see `Client::nova_read`).
const ASSUMED: VersionRange = VersionRange {
    min: Microversion::BASE,
    max: Microversion::MAX_SUPPORTED,
};

fn cached_range(s: &Session, url: &str) -> Option<VersionRange> {
    s.compute_versions
        .iter()
        .find(|(u, _)| u == url)
        .map(|(_, r)| *r)
}

/// The version for ordinary calls in range `r`: none without microversions.
fn default_mv(r: VersionRange) -> Option<Microversion> {
    (r != VersionRange::LEGACY).then(|| r.default_version())
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: format!("response to {what}"),
        message: e.to_string(),
    })
}

/// Where the version document of a compute endpoint is: the endpoint up to
/// its `/v2.1` (or `/v2`) segment, which drops a legacy project id suffix.
fn version_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    let scheme_end = e.find("://").map_or(0, |i| i + 3);
    let mut end = e.len();
    let mut pos = scheme_end;
    for seg in e[scheme_end..].split('/') {
        if seg == "v2.1" || seg == "v2" {
            end = pos + seg.len();
            break;
        }
        pos += seg.len() + 1;
    }
    format!("{}/", &e[..end.min(e.len())])
}

/// Glance's root: its catalog URL with any trailing version segment removed
/// (paths below always start with `/v2`).
fn image_root(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    match e.rsplit_once('/') {
        Some((head, last)) if last.starts_with("v2") || last == "v1" => head.to_owned(),
        _ => e.to_owned(),
    }
}

impl ComputeApi for Client {
    fn api_versions(&self) -> Result<VersionRange> {
        self.versions()
    }

    fn list_services(&self, q: &ServiceQuery) -> Result<Vec<Service>> {
        self.nova_read(|c, r| c.services(r, q))
    }

    fn force_down(&self, s: &ServiceRef, forced_down: bool) -> Result<()> {
        let new = json!({ "forced_down": forced_down });
        let legacy = json!({ "host": s.host, "binary": s.binary, "forced_down": forced_down });
        self.nova_op(|r| self.update_service(r, s, &new, "/os-services/force-down", &legacy, V2_11))
    }

    fn disable_service(&self, s: &ServiceRef, reason: Option<&str>) -> Result<()> {
        let (new, path, legacy) = match reason {
            Some(r) => (
                json!({ "status": "disabled", "disabled_reason": r }),
                "/os-services/disable-log-reason",
                json!({ "host": s.host, "binary": s.binary, "disabled_reason": r }),
            ),
            None => (
                json!({ "status": "disabled" }),
                "/os-services/disable",
                json!({ "host": s.host, "binary": s.binary }),
            ),
        };
        self.nova_op(|r| self.update_service(r, s, &new, path, &legacy, Microversion::BASE))
    }

    fn enable_service(&self, s: &ServiceRef) -> Result<()> {
        let new = json!({ "status": "enabled" });
        let legacy = json!({ "host": s.host, "binary": s.binary });
        self.nova_op(|r| {
            self.update_service(
                r,
                s,
                &new,
                "/os-services/enable",
                &legacy,
                Microversion::BASE,
            )
        })
    }

    fn list_hypervisors(&self) -> Result<Vec<Hypervisor>> {
        self.nova_read(|c, r| {
            let mv = default_mv(r);
            if mv.is_some_and(|v| v >= Microversion::new(2, 33)) {
                c.paginate(
                    "/os-hypervisors/detail",
                    Vec::new(),
                    mv,
                    |b: HypervisorsBody| {
                        let next = next_page(&b.hypervisors_links);
                        (b.hypervisors, next)
                    },
                    |h| h.id.clone(),
                )
            } else {
                let b: HypervisorsBody = c.get("compute", "/os-hypervisors/detail", mv)?;
                Ok(b.hypervisors)
            }
        })
    }

    fn list_servers_on_host(&self, host: &str) -> Result<Vec<Server>> {
        self.servers_of_every_project(("host", host.to_owned()))
    }

    fn list_servers_changed_since(&self, since: &str) -> Result<Vec<Server>> {
        self.servers_of_every_project(("changes-since", since.to_owned()))
    }

    fn get_server(&self, id: &str) -> Result<Server> {
        let b: ServerBody = self.nova_get(&format!("/servers/{}", encode(id)))?;
        Ok(b.server)
    }

    fn server_metadata(&self, id: &str) -> Result<BTreeMap<String, String>> {
        let b: MetadataBody = self.nova_get(&format!("/servers/{}/metadata", encode(id)))?;
        Ok(b.metadata)
    }

    fn server_tags(&self, id: &str) -> Result<Vec<String>> {
        self.nova_read(|c, r| {
            let mv = r
                .best_up_to(Microversion::MAX_SUPPORTED)
                .filter(|v| *v >= V2_26)
                .ok_or_else(|| Error::Unsupported {
                    message: format!(
                        "server tags need compute api 2.26, the cloud offers up to {}",
                        r.max
                    ),
                })?;
            let b: TagsBody = c.get(
                "compute",
                &format!("/servers/{}/tags", encode(id)),
                Some(mv),
            )?;
            Ok(b.tags)
        })
    }

    fn server_actions(&self, id: &str) -> Result<Vec<InstanceAction>> {
        let b: InstanceActionsBody =
            self.nova_get(&format!("/servers/{}/os-instance-actions", encode(id)))?;
        Ok(b.instance_actions)
    }

    fn list_flavors(&self) -> Result<Vec<Flavor>> {
        self.nova_read(|c, r| {
            c.paginate(
                "/flavors/detail",
                vec![("is_public", "None".into())],
                default_mv(r),
                |b: FlavorsBody| {
                    let next = next_page(&b.flavors_links);
                    (b.flavors, next)
                },
                |f| f.id.clone(),
            )
        })
    }

    fn flavor_extra_specs(&self, flavor_id: &str) -> Result<BTreeMap<String, String>> {
        let b: ExtraSpecsBody =
            self.nova_get(&format!("/flavors/{}/os-extra_specs", encode(flavor_id)))?;
        Ok(b.extra_specs)
    }

    fn list_images(&self, q: &ImageQuery) -> Result<Vec<Image>> {
        let mut params: Vec<(&str, String)> = q.tags.iter().map(|t| ("tag", t.clone())).collect();
        for (k, v) in &q.filters {
            params.push((k.as_str(), v.clone()));
        }
        if let Some(n) = q.page_size {
            params.push(("limit", n.to_string()));
        }
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = params.clone();
            if let Some(m) = &marker {
                p.push(("marker", m.clone()));
            }
            let b: ImagesBody = self.get("image", &format!("/v2/images{}", query(&p)), None)?;
            let last = b.images.last().map(|i| i.id.clone());
            let empty = b.images.is_empty();
            out.extend(b.images);
            let next = b
                .next
                .map(|n| query_param(&n, "marker").or(last).unwrap_or_default());
            match next {
                Some(m) if !empty && !m.is_empty() && marker.as_deref() != Some(m.as_str()) => {
                    marker = Some(m)
                }
                _ => return Ok(out),
            }
        }
        Err(Error::Decode {
            what: "/v2/images".into(),
            message: "too many pages".into(),
        })
    }

    fn list_aggregates(&self) -> Result<Vec<Aggregate>> {
        let b: AggregatesBody = self.nova_get("/os-aggregates")?;
        Ok(b.aggregates)
    }

    fn evacuate(&self, server_id: &str, req: &EvacuateRequest) -> Result<EvacuateOutcome> {
        if req.force && req.host.is_none() {
            return Err(Error::Config {
                message: "evacuate: force needs a target host".into(),
            });
        }
        // Redone after a 406 with the body chosen again (see nova_op).
        self.nova_op(|r| self.evacuate_in(r, server_id, req))
    }

    fn lock_server(&self, server_id: &str, reason: Option<&str>) -> Result<()> {
        self.nova_op(|r| {
            let mv = default_mv(r);
            let body = match reason {
                Some(reason) if mv.is_some_and(|v| v >= V2_73) => {
                    json!({ "lock": { "locked_reason": reason } })
                }
                _ => json!({ "lock": null }),
            };
            self.server_action(server_id, &body, mv, true)?;
            Ok(())
        })
    }

    fn unlock_server(&self, server_id: &str) -> Result<()> {
        self.nova_op(|r| {
            self.server_action(server_id, &json!({ "unlock": null }), default_mv(r), true)?;
            Ok(())
        })
    }

    fn reset_state(&self, server_id: &str, state: ResetState) -> Result<()> {
        let s = match state {
            ResetState::Active => "active",
            ResetState::Error => "error",
        };
        let body = json!({ "os-resetState": { "state": s } });
        self.nova_op(|r| {
            self.server_action(server_id, &body, default_mv(r), true)?;
            Ok(())
        })
    }

    fn list_migrations(&self, q: &MigrationQuery) -> Result<Vec<Migration>> {
        let mut p: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("host", &q.host),
            ("source_compute", &q.source_compute),
            ("instance_uuid", &q.instance_uuid),
            ("migration_type", &q.migration_type),
            ("status", &q.status),
            ("changes-since", &q.changes_since),
        ] {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        }
        self.nova_read(|c, r| {
            let mv = default_mv(r);
            if mv.is_some_and(|v| v >= V2_59) {
                c.paginate(
                    "/os-migrations",
                    p.clone(),
                    mv,
                    |b: MigrationsBody| {
                        let next = next_page(&b.migrations_links);
                        (b.migrations, next)
                    },
                    // The 2.59 marker is the migration's uuid.
                    |m| m.uuid.clone().unwrap_or_else(|| m.id.clone()),
                )
            } else {
                let b: MigrationsBody =
                    c.get("compute", &format!("/os-migrations{}", query(&p)), mv)?;
                Ok(b.migrations)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_urls() {
        assert_eq!(version_url("http://n:8774/v2.1"), "http://n:8774/v2.1/");
        assert_eq!(version_url("http://n:8774/v2.1/"), "http://n:8774/v2.1/");
        assert_eq!(
            version_url("http://n:8774/v2.1/abc123"),
            "http://n:8774/v2.1/"
        );
        assert_eq!(
            version_url("https://cloud/compute/v2.1"),
            "https://cloud/compute/v2.1/"
        );
        assert_eq!(version_url("http://n:8774/v2/abc"), "http://n:8774/v2/");
        assert_eq!(version_url("http://n:8774"), "http://n:8774/");
        assert_eq!(image_root("http://g:9292/v2/"), "http://g:9292");
        assert_eq!(image_root("http://g:9292"), "http://g:9292");
        assert_eq!(image_root("https://cloud/image"), "https://cloud/image");
    }
}
