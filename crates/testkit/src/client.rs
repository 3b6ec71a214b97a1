//! A deliberately tiny blocking HTTP/1.1 client over `std::net::TcpStream`
//! (plain `http://` only, one request per connection).
//!
//! Used by the simulator's own tests and by `nova-sim compute`, so neither
//! depends on the project's real OpenStack client being written in parallel.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ClientResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
pub fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported: {url}"))?;
    Ok(match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    })
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<ClientResponse> {
    let (authority, target) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {authority}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(&[]);
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> anyhow::Result<ClientResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("incomplete response ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Ok(ClientResponse { status, headers, body })
}

/// Convenience wrapper for tests: JSON in, JSON out, fixed token/microversion.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub microversion: Option<String>,
    pub timeout: Duration,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api { base: base.trim_end_matches('/').to_string(), token: None, microversion: None, timeout: Duration::from_secs(10) }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    pub fn mv(mut self, v: &str) -> Self {
        self.microversion = Some(v.to_string());
        self
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> anyhow::Result<ClientResponse> {
        let url = if path.starts_with("http://") { path.to_string() } else { format!("{}{}", self.base, path) };
        let mv_header = self.microversion.as_ref().map(|v| format!("compute {v}"));
        let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
        if let Some(t) = &self.token {
            headers.push(("X-Auth-Token", t));
        }
        if let Some(h) = &mv_header {
            headers.push(("OpenStack-API-Version", h));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request(method, &url, &headers, bytes.as_deref(), self.timeout)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<ClientResponse> {
        self.call("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<ClientResponse> {
        self.call("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<ClientResponse> {
        self.call("PUT", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> anyhow::Result<ClientResponse> {
        self.call("DELETE", path, None)
    }
}
