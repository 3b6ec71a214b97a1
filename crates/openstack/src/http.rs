//! The HTTP transport: one lazily built blocking reqwest client per
//! process (connections pooled and reused), per-request timeouts capped by
//! the deadline, retries with exponential back-off and jitter, and debug
//! logging of every exchange (method, path, status, elapsed time; never a
//! header or a body, so never a token or password).
//!
//! Retry rules. Idempotent requests are retried on connection errors,
//! timeouts, 5xx and 429. A non-idempotent request (POST of a server
//! action) is retried only when it provably was not carried out: the
//! connection could not be established, or the service answered 429 or
//! 503. If it was sent and no answer came back (timeout, connection reset,
//! 502/504 from a proxy), the outcome is unknown and the transport returns
//! [`Error::OutcomeUnknown`] instead of repeating it. No wait ever runs past
//! the deadline; `Retry-After` (seconds) is honoured when the deadline
//! allows, otherwise the last answer is returned.

use std::collections::hash_map::RandomState;
use std::error::Error as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};

use crate::config::{RetryPolicy, TlsOptions};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::logging::LogSink;
use crate::secret::Secret;
use crate::url::path_of;

/// Longest `Retry-After` we wait for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One request to send.
pub(crate) struct Request<'a> {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Sent as `X-Auth-Token`, marked sensitive.
    pub token: Option<&'a Secret>,
    /// Sent as `X-Subject-Token` (Keystone token validation).
    pub subject_token: Option<&'a Secret>,
    /// JSON body.
    pub body: Option<Vec<u8>>,
    pub idempotent: bool,
}

impl Request<'_> {
    /// `GET /v2.1/servers?…` for logs and errors.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.method, path_of(&self.url))
    }
}

/// An answer, whatever its status.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub subject_token: Option<Secret>,
    /// The compute microversion Nova says it served (`OpenStack-API-Version:
    /// compute X.Y`, else `X-OpenStack-Nova-API-Version`); `None` when the
    /// answer names none (not Nova, or an endpoint without microversions).
    pub api_version: Option<crate::microversion::Microversion>,
}

/// The shared transport.
#[derive(Debug)]
pub(crate) struct Transport {
    tls: TlsOptions,
    request_timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    user_agent: String,
    log: LogSink,
    /// For `https://` URLs, with the configured trust.
    client: OnceLock<reqwest::blocking::Client>,
    /// For `http://` URLs: no trust store at all, because loading the
    /// system CA store costs tens of milliseconds per process.
    plain: OnceLock<reqwest::blocking::Client>,
}

enum Attempt {
    Done(Response),
    Retry { err: Error, after: Option<Duration> },
    Fail(Error),
}

impl Transport {
    pub(crate) fn new(
        tls: TlsOptions,
        request_timeout: Duration,
        connect_timeout: Duration,
        retry: RetryPolicy,
        user_agent: String,
        log: LogSink,
    ) -> Transport {
        Transport {
            tls,
            request_timeout,
            connect_timeout,
            retry,
            user_agent,
            log,
            client: OnceLock::new(),
            plain: OnceLock::new(),
        }
    }

    /// The reqwest client for `url`, built on first use: no CA file is read
    /// and no thread started until a request is made, and the CA store only
    /// when the first `https://` request is.
    fn client(&self, url: &str) -> Result<&reqwest::blocking::Client> {
        let plain = url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        let cell = if plain { &self.plain } else { &self.client };
        if let Some(c) = cell.get() {
            return Ok(c);
        }
        let c = self.build(plain)?;
        // Another thread may have won the race; either client is fine.
        let _ = cell.set(c);
        cell.get().ok_or_else(|| Error::Config {
            message: "http client unavailable".into(),
        })
    }

    fn build(&self, plain: bool) -> Result<reqwest::blocking::Client> {
        let tls_err = |m: String| Error::Tls {
            request: "client setup".into(),
            message: m,
        };
        // reqwest is built without a default crypto provider (no aws-lc):
        // use ring. Fails harmlessly if something already installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::blocking::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            // Redirects could carry the token elsewhere; OpenStack APIs do
            // not redirect.
            .redirect(reqwest::redirect::Policy::none());
        if plain {
            // Never used for TLS: an empty trust store keeps it cheap.
            return b
                .tls_certs_only(Vec::new())
                .build()
                .map_err(|e| tls_err(format!("cannot build http client: {}", chain(&e))));
        }
        if self.tls.insecure {
            b = b
                .tls_danger_accept_invalid_certs(true)
                .tls_danger_accept_invalid_hostnames(true);
        } else if let Some(ca) = &self.tls.cacert {
            let pem = std::fs::read(ca)
                .map_err(|e| tls_err(format!("cannot read cacert {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| tls_err(format!("cannot parse cacert {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(tls_err(format!(
                    "no certificate in cacert {}",
                    ca.display()
                )));
            }
            // Like requests' verify=<bundle>: the bundle replaces the system store.
            b = b.tls_certs_only(certs);
        }
        if let Some(cert) = &self.tls.cert {
            let mut pem = std::fs::read(cert)
                .map_err(|e| tls_err(format!("cannot read client cert {}: {e}", cert.display())))?;
            if let Some(key) = &self.tls.key {
                let k = std::fs::read(key).map_err(|e| {
                    tls_err(format!("cannot read client key {}: {e}", key.display()))
                })?;
                pem.push(b'\n');
                pem.extend_from_slice(&k);
            }
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| tls_err(format!("cannot use client cert {}: {e}", cert.display())))?;
            b = b.identity(id);
        }
        b.build()
            .map_err(|e| tls_err(format!("cannot build http client: {}", chain(&e))))
    }

    /// Sends with retries; returns the final answer whatever its status,
    /// or a transport error.
    pub(crate) fn send(&self, req: &Request<'_>, deadline: Deadline) -> Result<Response> {
        let what = req.describe();
        let mut attempt = 1u32;
        loop {
            if deadline.expired() {
                return Err(Error::Timeout { request: what });
            }
            let outcome = self.attempt(req, deadline, &what)?;
            let (err, after) = match outcome {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { err, after } => (err, after),
            };
            if attempt >= self.retry.max_attempts {
                return Err(err);
            }
            // A Retry-After is honoured, but a service asking for hours must
            // not park an agent without a deadline for that long.
            let wait = after
                .map(|a| a.min(MAX_RETRY_AFTER))
                .unwrap_or_else(|| self.backoff(attempt));
            // Do not start a wait that ends past the deadline, nor one that
            // leaves no time for the request itself.
            if let Some(left) = deadline.remaining() {
                if wait + Duration::from_millis(50) >= left {
                    return Err(err);
                }
            }
            self.log
                .warn(|| format!("{err}; retrying in {} ms", wait.as_millis()));
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn attempt(&self, req: &Request<'_>, deadline: Deadline, what: &str) -> Result<Attempt> {
        let client = self.client(&req.url)?;
        let timeout = deadline.cap(self.request_timeout);
        let deadline_bound = timeout < self.request_timeout;
        let mut rb = client
            .request(req.method.clone(), &req.url)
            .timeout(timeout)
            .header(ACCEPT, "application/json");
        for (k, v) in &req.headers {
            rb = rb.header(*k, v.as_str());
        }
        for (name, tok) in [
            ("X-Auth-Token", req.token),
            ("X-Subject-Token", req.subject_token),
        ] {
            if let Some(t) = tok {
                let mut hv = HeaderValue::from_str(t.expose()).map_err(|_| Error::Config {
                    message: "token contains invalid characters".into(),
                })?;
                hv.set_sensitive(true);
                rb = rb.header(name, hv);
            }
        }
        if let Some(b) = &req.body {
            rb = rb.header(CONTENT_TYPE, "application/json").body(b.clone());
        }
        let start = Instant::now();
        let result = rb.send().and_then(|resp| {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let subject = resp
                .headers()
                .get("X-Subject-Token")
                .and_then(|v| v.to_str().ok())
                .map(Secret::from);
            let api_version = served_microversion(resp.headers());
            let request_id = ["x-openstack-request-id", "x-compute-request-id"]
                .iter()
                .find_map(|h| {
                    resp.headers()
                        .get(*h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                });
            let body = resp.bytes()?.to_vec();
            Ok((status, retry_after, subject, request_id, api_version, body))
        });
        let ms = start.elapsed().as_millis();
        match result {
            Ok((status, retry_after, subject_token, request_id, api_version, body)) => {
                self.log.debug(|| match &request_id {
                    Some(id) => format!("{what} -> {status} ({ms} ms, {id})"),
                    None => format!("{what} -> {status} ({ms} ms)"),
                });
                let response = Response {
                    status,
                    body,
                    subject_token,
                    api_version,
                };
                let retryable = match status {
                    429 | 503 => true,
                    500..=599 => req.idempotent,
                    _ => false,
                };
                if !req.idempotent && matches!(status, 502 | 504) {
                    return Ok(Attempt::Fail(Error::OutcomeUnknown {
                        request: what.to_owned(),
                        message: format!("gateway answered {status}"),
                    }));
                }
                if retryable {
                    let err = Error::from_status(what.to_owned(), status, &response.body);
                    // Keep the answer for the caller when we stop retrying.
                    return Ok(Attempt::Retry {
                        err,
                        after: retry_after,
                    });
                }
                Ok(Attempt::Done(response))
            }
            Err(e) => {
                // reqwest's top message repeats the whole URL; the causes
                // and the server's address say more, in less.
                let causes = e.source().map(chain).unwrap_or_else(|| chain(&e));
                let message = match e.url().and_then(|u| {
                    u.host_str()
                        .map(|h| (h.to_owned(), u.port_or_known_default()))
                }) {
                    Some((h, Some(p))) => format!("{causes} ({h}:{p})"),
                    Some((h, None)) => format!("{causes} ({h})"),
                    None => causes,
                };
                self.log
                    .debug(|| format!("{what} -> error: {message} ({ms} ms)"));
                if is_tls(&e) {
                    return Ok(Attempt::Fail(Error::Tls {
                        request: what.to_owned(),
                        message,
                    }));
                }
                if e.is_timeout() && deadline_bound && deadline.expired() {
                    return Ok(Attempt::Fail(if req.idempotent || e.is_connect() {
                        Error::Timeout {
                            request: what.to_owned(),
                        }
                    } else {
                        Error::OutcomeUnknown {
                            request: what.to_owned(),
                            message: "timed out".into(),
                        }
                    }));
                }
                if e.is_connect() {
                    // Never reached the service: safe to repeat anything.
                    let err = if e.is_timeout() {
                        Error::Timeout {
                            request: what.to_owned(),
                        }
                    } else {
                        Error::Connection {
                            request: what.to_owned(),
                            message,
                        }
                    };
                    return Ok(Attempt::Retry { err, after: None });
                }
                if !req.idempotent {
                    return Ok(Attempt::Fail(Error::OutcomeUnknown {
                        request: what.to_owned(),
                        message,
                    }));
                }
                let err = if e.is_timeout() {
                    Error::Timeout {
                        request: what.to_owned(),
                    }
                } else {
                    Error::Connection {
                        request: what.to_owned(),
                        message,
                    }
                };
                Ok(Attempt::Retry { err, after: None })
            }
        }
    }

    /// Exponential back-off with jitter in [50 %, 100 %] of the step.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
            .min(self.retry.max_backoff);
        let mut h = RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(attempt));
        let frac = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
        step.mul_f64(frac)
    }
}

/// The error and its sources, joined: reqwest's own message is too terse.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn is_tls(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        cur = s.source();
    }
    let m = chain(e).to_ascii_lowercase();
    m.contains("certificate") || m.contains("tls handshake") || m.contains("invalid peer")
}

/// The compute microversion a response says it was served at.
fn served_microversion(h: &reqwest::header::HeaderMap) -> Option<crate::microversion::Microversion> {
    use crate::microversion::Microversion;
    let value = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
    value("OpenStack-API-Version")
        .and_then(|v| v.trim().strip_prefix("compute "))
        .and_then(Microversion::parse)
        .or_else(|| value("X-OpenStack-Nova-API-Version").and_then(Microversion::parse))
}

