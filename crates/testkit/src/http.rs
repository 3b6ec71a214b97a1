//! A small HTTP/1.1 server on `std::net`: one thread per connection,
//! keep-alive, `Content-Length` bodies (no chunked encoding), optional TLS.
//!
//! Written by hand instead of using a framework because the simulator needs
//! socket-level control that frameworks hide: a request can be answered, left
//! hanging forever (the connection stays open and silent) or reset (RST via
//! `SO_LINGER` 0). There is no async runtime: every connection has its own
//! thread, which comfortably serves the hundreds of concurrent connections
//! the benchmarks open.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::parse_query;

/// Largest header block and body we accept; anything bigger gets a 413.
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How often idle connection threads wake up to notice a shutdown.
const POLL: Duration = Duration::from_millis(100);
/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query exactly as received (`/compute/v2.1/servers?x=1`).
    pub target: String,
    /// The path part of `target`, not percent-decoded.
    pub path: String,
    /// The raw query string (without `?`), empty when absent.
    pub raw_query: String,
    /// Decoded query parameters in order; repeated keys are kept.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `http` or `https`, for building absolute links.
    pub scheme: &'static str,
}

impl Request {
    /// Case-insensitive header lookup (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_get(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn query_all(&self, key: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// `scheme://host[:port]` as the client addressed us.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.header("host").unwrap_or("127.0.0.1"))
    }
}

/// A body computed after the state lock is released (large lists).
pub struct Deferred(pub Box<dyn FnOnce() -> Vec<u8> + Send>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred(..)")
    }
}

/// A response to write back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When set, replaces `body`; the simulator's dispatcher runs it
    /// outside the state lock.
    pub deferred: Option<Deferred>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new(), deferred: None }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
            deferred: None,
        }
    }

    /// A JSON response whose body is built later, without the state lock.
    pub fn json_deferred(status: u16, build: impl FnOnce() -> serde_json::Value + Send + 'static) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Vec::new(),
            deferred: Some(Deferred(Box::new(move || serde_json::to_vec(&build()).unwrap_or_default()))),
        }
    }

    /// Runs a deferred body builder, if any.
    pub fn materialize(mut self) -> Self {
        if let Some(Deferred(f)) = self.deferred.take() {
            self.body = f();
        }
        self
    }

    pub fn text(status: u16, text: &str) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=UTF-8".into())],
            body: text.as_bytes().to_vec(),
            deferred: None,
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// Keep the connection open and never answer (until the client gives up
    /// or the server stops).
    Hang,
    /// Abort the connection with a TCP RST, without a response.
    Reset,
}

/// Turns requests into outcomes. Called on the connection's own thread, so a
/// handler may sleep (latency injection) without blocking anyone else.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Outcome;
}

/// Connection transport: plain TCP or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// TLS settings for [`HttpServer::bind`].
#[derive(Clone, Default)]
pub struct TlsConfig {
    #[cfg(feature = "tls")]
    pub server: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Builds a rustls server config from PEM-encoded certificate chain and
    /// private key.
    #[cfg(feature = "tls")]
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("bad certificate PEM: {e:?}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| anyhow::anyhow!("bad key PEM: {e:?}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(TlsConfig { server: Some(Arc::new(cfg)) })
    }

    fn enabled(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.server.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }
}

/// A running server; dropping it stops accepting and closes connections.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn bind(addr: &str, handler: Arc<dyn Handler>, tls: TlsConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let sd = shutdown.clone();
        let act = active.clone();
        let accept = std::thread::Builder::new().name("sim-accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if sd.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else {
                    // EMFILE and friends: back off rather than spin.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let handler = handler.clone();
                let sd = sd.clone();
                let conn_act = act.clone();
                let tls = tls.clone();
                act.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("sim-conn".into())
                    .stack_size(1 << 20)
                    .spawn(move || {
                        serve_connection(stream, handler, sd, tls);
                        conn_act.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    act.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
        Ok(HttpServer { addr, shutdown, active, accept: Some(accept) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of open connections (for diagnostics).
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    pub fn shutdown(&mut self) {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        // Give connection threads a moment to notice; they poll every POLL.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn serve_connection(tcp: TcpStream, handler: Arc<dyn Handler>, shutdown: Arc<AtomicBool>, tls: TlsConfig) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(POLL));
    let scheme = if tls.enabled() { "https" } else { "http" };
    let mut stream = match make_stream(tcp, &tls) {
        Some(s) => s,
        None => return,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut last_activity = Instant::now();
    loop {
        let req = match read_request(&mut stream, &mut buf, &shutdown, &mut last_activity, scheme) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(status) => {
                let resp = Response::text(status, "bad request");
                let _ = write_response(&mut stream, &resp, false, "GET");
                return;
            }
        };
        let keep_alive = wants_keep_alive(&req);
        let method = req.method.clone();
        match handler.handle(req) {
            Outcome::Respond(resp) => {
                let resp = resp.materialize();
                if write_response(&mut stream, &resp, keep_alive, &method).is_err() || !keep_alive {
                    let _ = stream.flush();
                    let _ = stream.tcp().shutdown(Shutdown::Write);
                    return;
                }
            }
            Outcome::Hang => {
                hang(&mut stream, &shutdown);
                return;
            }
            Outcome::Reset => {
                reset(stream.tcp());
                return;
            }
        }
        last_activity = Instant::now();
    }
}

#[cfg(feature = "tls")]
fn make_stream(tcp: TcpStream, tls: &TlsConfig) -> Option<Stream> {
    match &tls.server {
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg.clone()).ok()?;
            Some(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
        }
        None => Some(Stream::Plain(tcp)),
    }
}

#[cfg(not(feature = "tls"))]
fn make_stream(tcp: TcpStream, _tls: &TlsConfig) -> Option<Stream> {
    Some(Stream::Plain(tcp))
}

fn wants_keep_alive(req: &Request) -> bool {
    let conn = req.header("connection").map(|v| v.to_ascii_lowercase());
    match conn.as_deref() {
        Some(v) if v.contains("close") => false,
        Some(v) if v.contains("keep-alive") => true,
        _ => req.header(":http10").is_none(),
    }
}

/// Reads one request. `Ok(None)` = the peer closed or we are shutting down;
/// `Err(status)` = malformed request that deserves an error response.
fn read_request(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    shutdown: &AtomicBool,
    last_activity: &mut Instant,
    scheme: &'static str,
) -> Result<Option<Request>, u16> {
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(pos) = find_subslice(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(431);
        }
        if shutdown.load(Ordering::SeqCst) || last_activity.elapsed() > IDLE_TIMEOUT {
            return Ok(None);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                *last_activity = Instant::now();
            }
            Err(e) if is_timeout(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("");
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let mut headers = Vec::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if version == "HTTP/1.0" {
        // Marker consumed by wants_keep_alive: HTTP/1.0 defaults to close.
        headers.push((":http10".into(), "1".into()));
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .map_err(|_| 400u16)?
        .unwrap_or(0);
    if content_length > MAX_BODY_BYTES {
        return Err(413);
    }
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"))
    {
        return Err(411);
    }
    let body_start = header_end + 4;
    // curl sends `Expect: 100-continue` for larger bodies and waits a
    // second for the interim answer unless it gets one.
    let expects = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
    if expects
        && buf.len() < body_start + content_length
        && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").and_then(|_| stream.flush()).is_err()
    {
        return Ok(None);
    }
    while buf.len() < body_start + content_length {
        if shutdown.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        }
    }
    let body = buf[body_start..body_start + content_length].to_vec();
    buf.drain(..body_start + content_length);
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let query = parse_query(&raw_query);
    Ok(Some(Request { method, target, path, raw_query, query, headers, body, scheme }))
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(stream: &mut Stream, resp: &Response, keep_alive: bool, method: &str) -> io::Result<()> {
    let mut out = Vec::with_capacity(resp.body.len() + 256);
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes());
    for (k, v) in &resp.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    // 204 and 304 never carry a body or a Content-Length.
    let bodyless = resp.status == 204 || resp.status == 304;
    if !bodyless {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    }
    out.extend_from_slice(if keep_alive { b"Connection: keep-alive\r\n" } else { b"Connection: close\r\n" });
    out.extend_from_slice(b"\r\n");
    if !bodyless && method != "HEAD" {
        out.extend_from_slice(&resp.body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

fn hang(stream: &mut Stream, shutdown: &AtomicBool) {
    let mut sink = [0u8; 4096];
    while !shutdown.load(Ordering::SeqCst) {
        match stream.read(&mut sink) {
            Ok(0) => return, // the client gave up
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Closes with RST instead of FIN: SO_LINGER on with a zero timeout.
fn reset(tcp: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let linger = nix::libc::linger { l_onoff: 1, l_linger: 0 };
    let _ = setsockopt(tcp, sockopt::Linger, &linger);
    // Dropping the stream closes the fd, which now sends RST.
}
