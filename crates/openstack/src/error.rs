//! The typed error every call returns. HTTP failures carry the request
//! (method and path, never a token) and the message the service gave, parsed
//! from Nova's `{"badRequest": {"message": …}}` fault shapes, Keystone's
//! `{"error": {"message": …}}` and Glance's plain-text or HTML bodies.

use std::fmt;

/// Everything that can go wrong talking to OpenStack.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or contradictory.
    Config { message: String },
    /// Keystone refused the credentials, or a token was rejected twice (401).
    Auth { message: String },
    /// The service understood the request but refuses it for this user (403).
    Forbidden { request: String, message: String },
    /// The resource does not exist (404).
    NotFound { request: String, message: String },
    /// The service rejected the request as invalid (400).
    BadRequest { request: String, message: String },
    /// The resource is in a state that forbids the request (409).
    Conflict { request: String, message: String },
    /// The requested microversion is not acceptable (406).
    NotAcceptable { request: String, message: String },
    /// Still rate-limited (429) after the retries the deadline allowed.
    RateLimited { request: String, message: String },
    /// Any other 4xx.
    Client {
        request: String,
        status: u16,
        message: String,
    },
    /// 5xx, after the retries the deadline allowed.
    ServerError {
        request: String,
        status: u16,
        message: String,
    },
    /// The deadline or the per-request timeout passed before an answer.
    Timeout { request: String },
    /// The connection could not be established or broke (idempotent requests
    /// are retried before this is returned).
    Connection { request: String, message: String },
    /// The TLS handshake failed (certificate not trusted, bad client key...).
    Tls { request: String, message: String },
    /// A non-idempotent request (e.g. evacuate) may or may not have been
    /// carried out: it was sent but no answer came back. It is never repeated
    /// blindly; check the server's state before trying again.
    OutcomeUnknown { request: String, message: String },
    /// The answer could not be understood.
    Decode { what: String, message: String },
    /// The cloud (or this client) lacks what the call needs: Keystone v2
    /// only, a microversion too old, a service missing from the catalog.
    Unsupported { message: String },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The HTTP status this error came from, when it came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Auth { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::BadRequest { .. } => Some(400),
            Error::Conflict { .. } => Some(409),
            Error::NotAcceptable { .. } => Some(406),
            Error::RateLimited { .. } => Some(429),
            Error::Client { status, .. } | Error::ServerError { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's own message, when it sent one.
    pub fn service_message(&self) -> Option<&str> {
        match self {
            Error::Forbidden { message, .. }
            | Error::NotFound { message, .. }
            | Error::BadRequest { message, .. }
            | Error::Conflict { message, .. }
            | Error::NotAcceptable { message, .. }
            | Error::RateLimited { message, .. }
            | Error::Client { message, .. }
            | Error::ServerError { message, .. } => Some(message),
            _ => None,
        }
    }

    /// True for 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when the failure is plausibly transient (network, timeout, 5xx,
    /// 429): worth trying again in a later monitor cycle. `OutcomeUnknown` is
    /// not: the caller must look at the state first.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Connection { .. }
                | Error::ServerError { .. }
                | Error::RateLimited { .. }
        )
    }

    /// Builds the error for an HTTP error status and its body.
    pub(crate) fn from_status(request: String, status: u16, body: &[u8]) -> Error {
        let message = fault_message(body);
        match status {
            400 => Error::BadRequest { request, message },
            401 => Error::Auth {
                message: format!("{request}: {message}"),
            },
            403 => Error::Forbidden { request, message },
            404 => Error::NotFound { request, message },
            406 => Error::NotAcceptable { request, message },
            409 => Error::Conflict { request, message },
            429 => Error::RateLimited { request, message },
            500..=599 => Error::ServerError {
                request,
                status,
                message,
            },
            _ => Error::Client {
                request,
                status,
                message,
            },
        }
    }
}

fn with_message(
    f: &mut fmt::Formatter<'_>,
    head: &str,
    request: &str,
    message: &str,
) -> fmt::Result {
    if message.is_empty() {
        write!(f, "{request}: {head}")
    } else {
        write!(f, "{request}: {head}: {message}")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { message } => write!(f, "invalid openstack configuration: {message}"),
            Error::Auth { message } => write!(f, "authentication failed: {message}"),
            Error::Forbidden { request, message } => with_message(f, "forbidden", request, message),
            Error::NotFound { request, message } => with_message(f, "not found", request, message),
            Error::BadRequest { request, message } => {
                with_message(f, "bad request", request, message)
            }
            Error::Conflict { request, message } => with_message(f, "conflict", request, message),
            Error::NotAcceptable { request, message } => {
                with_message(f, "not acceptable (microversion)", request, message)
            }
            Error::RateLimited { request, message } => {
                with_message(f, "rate limited", request, message)
            }
            Error::Client {
                request,
                status,
                message,
            } => with_message(f, &format!("http {status}"), request, message),
            Error::ServerError {
                request,
                status,
                message,
            } => with_message(f, &format!("server error {status}"), request, message),
            Error::Timeout { request } => write!(f, "{request}: timed out"),
            Error::Connection { request, message } => {
                write!(f, "{request}: connection failed: {message}")
            }
            Error::Tls { request, message } => write!(f, "{request}: tls error: {message}"),
            Error::OutcomeUnknown { request, message } => write!(
                f,
                "{request}: outcome unknown (sent, no answer: {message}); check the state before retrying"
            ),
            Error::Decode { what, message } => write!(f, "cannot decode {what}: {message}"),
            Error::Unsupported { message } => write!(f, "unsupported: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Longest service message we keep: bodies can be whole HTML pages.
const MAX_MESSAGE: usize = 512;

/// Extracts the human message from an OpenStack error body.
///
/// Nova: `{"badRequest": {"code": 400, "message": "…"}}` (any single key:
/// `itemNotFound`, `conflictingRequest`, `forbidden`, `computeFault`...).
/// Keystone: `{"error": {"code": 401, "message": "…", "title": "…"}}`.
/// Others: `{"message": "…"}`, `{"title","description"}`, or text.
pub(crate) fn fault_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = json_message(&v) {
            return truncate(m.trim());
        }
    }
    let text = String::from_utf8_lossy(body);
    // Glance and proxies answer with HTML or plain text: keep it readable.
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    truncate(&out.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn json_message(v: &serde_json::Value) -> Option<&str> {
    let obj = v.as_object()?;
    if let Some(m) = obj.get("message").and_then(|m| m.as_str()) {
        return Some(m);
    }
    if let Some(m) = obj.get("description").and_then(|m| m.as_str()) {
        return Some(m);
    }
    if let Some(m) = obj.get("detail").and_then(|m| m.as_str()) {
        return Some(m);
    }
    // Nova: the single key names the fault type.
    obj.values().find_map(|inner| {
        let inner = inner.as_object()?;
        inner
            .get("message")
            .or_else(|| inner.get("title"))
            .and_then(|m| m.as_str())
    })
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_fault_shapes() {
        let b = br#"{"badRequest": {"code": 400, "message": "Compute service of compute3 is still in use."}}"#;
        let e = Error::from_status("POST /servers/x/action".into(), 400, b);
        assert_eq!(
            e,
            Error::BadRequest {
                request: "POST /servers/x/action".into(),
                message: "Compute service of compute3 is still in use.".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "POST /servers/x/action: bad request: Compute service of compute3 is still in use."
        );
        let b =
            br#"{"itemNotFound": {"code": 404, "message": "Instance abc could not be found."}}"#;
        assert!(Error::from_status("GET /servers/abc".into(), 404, b).is_not_found());
        let b =
            br#"{"conflictingRequest": {"code": 409, "message": "Cannot 'evacuate' instance"}}"#;
        assert_eq!(
            Error::from_status("r".into(), 409, b).service_message(),
            Some("Cannot 'evacuate' instance")
        );
        let b = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert!(
            matches!(Error::from_status("r".into(), 401, b), Error::Auth { message } if message.contains("requires authentication"))
        );
        let b =
            b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available</body></html>";
        assert_eq!(
            Error::from_status("r".into(), 503, b).service_message(),
            Some("503 Service Unavailable No server is available")
        );
        assert_eq!(
            fault_message(&[b'x'; 2000]).chars().count(),
            MAX_MESSAGE + 1
        );
    }
}
