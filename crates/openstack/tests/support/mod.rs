//! Test support: a tiny HTTP/1.1 server on loopback (plain or TLS) that
//! records every request and answers from a closure, and a fake Keystone +
//! Nova + Glance built on it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
    /// Close the connection without answering.
    pub hang_up: bool,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: body.to_string(),
            delay: None,
            hang_up: false,
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: None,
            hang_up: false,
        }
    }
    pub fn hang_up() -> Reply {
        Reply {
            hang_up: true,
            ..Reply::status(0)
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

type Handler = dyn Fn(&Recorded, &str) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub struct MockServer {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl MockServer {
    pub fn start(handler: impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static) -> MockServer {
        Self::start_inner(Arc::new(handler), None)
    }

    pub fn start_tls(
        handler: impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> MockServer {
        Self::start_inner(Arc::new(handler), Some(tls))
    }

    fn start_inner(handler: Arc<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if tls.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let base = format!("{scheme}://{host}:{}", addr.port());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (requests, connections, stop, base) = (
                requests.clone(),
                connections.clone(),
                stop.clone(),
                base.clone(),
            );
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (handler, requests, base, tls) =
                        (handler.clone(), requests.clone(), base.clone(), tls.clone());
                    std::thread::spawn(move || {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                        match tls {
                            None => {
                                let w = conn.try_clone().expect("clone");
                                serve(BufReader::new(conn), w, &*handler, &requests, &base);
                            }
                            Some(cfg) => {
                                let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                                    return;
                                };
                                let stream = rustls::StreamOwned::new(sc, conn);
                                let stream = Arc::new(Mutex::new(stream));
                                serve_tls(stream, &*handler, &requests, &base);
                            }
                        }
                    });
                }
            });
        }
        MockServer {
            base,
            requests,
            connections,
            stop,
            addr,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(r: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn render(reply: &Reply) -> Vec<u8> {
    let reason = match reply.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\n",
        reply.status,
        reply.body.len()
    );
    if !reply.body.is_empty() {
        out.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    out.into_bytes()
}

fn serve(
    mut r: BufReader<TcpStream>,
    mut w: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Recorded>>,
    base: &str,
) {
    while let Some(req) = read_request(&mut r) {
        log.lock().unwrap().push(req.clone());
        let reply = handler(&req, base);
        if let Some(d) = reply.delay {
            std::thread::sleep(d);
        }
        if reply.hang_up {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        if w.write_all(&render(&reply)).is_err() {
            return;
        }
    }
}

/// Reads through the TLS stream; a small adapter so `read_request` can use BufRead.
struct TlsRead(Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>);

impl Read for TlsRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().read(buf)
    }
}

fn serve_tls(
    s: Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>,
    handler: &Handler,
    log: &Mutex<Vec<Recorded>>,
    base: &str,
) {
    let mut r = BufReader::new(TlsRead(s.clone()));
    while let Some(req) = read_request(&mut r) {
        log.lock().unwrap().push(req.clone());
        let reply = handler(&req, base);
        let mut g = s.lock().unwrap();
        if g.write_all(&render(&reply)).is_err() || g.flush().is_err() {
            return;
        }
    }
}

/// A private temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "iha-openstack-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings of the fake cloud.
pub struct Cloud {
    pub max_version: String,
    pub expires_at: String,
    pub tokens_issued: AtomicU32,
}

impl Cloud {
    pub fn new(max_version: &str) -> Arc<Cloud> {
        Arc::new(Cloud {
            max_version: max_version.into(),
            expires_at: "2999-01-01T00:00:00.000000Z".into(),
            tokens_issued: AtomicU32::new(0),
        })
    }
}

/// Keystone (`/identity/v3`), the compute version document
/// (`/compute/v2.1/`) and a catalog pointing at this server. Anything else
/// goes to `rest`. Tokens are `tok-N`.
pub fn keystone_and_nova(
    cloud: Arc<Cloud>,
    rest: impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static {
    move |req, base| {
        if req.method == "POST" && req.path == "/identity/v3/auth/tokens" {
            let n = cloud.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(201, token_body(base, &cloud.expires_at))
                .header("X-Subject-Token", &format!("tok-{n}"));
        }
        if req.method == "GET" && req.path == "/compute/v2.1/" {
            return Reply::json(
                200,
                serde_json::json!({"version": {"id": "v2.1", "status": "CURRENT", "version": cloud.max_version,
                    "min_version": "2.1", "updated": "2013-07-23T11:33:21Z", "links": []}}),
            );
        }
        // Nova's API layer (nova/api/openstack/wsgi.py): a version above the cloud's maximum
        // is refused with 406 before any controller runs; every other answer of a
        // microversioned endpoint names the version it was served at.
        let microversioned = req.path.starts_with("/compute/v2.1/") && !cloud.max_version.is_empty();
        let asked = req
            .header("openstack-api-version")
            .and_then(|v| v.strip_prefix("compute "))
            .map(str::to_owned);
        if let (true, Some(v), Some(max)) = (microversioned, &asked, version_key(&cloud.max_version)) {
            {
                if version_key(v) > Some(max) {
                    return Reply::json(406, serde_json::json!({"computeFault": {"code": 406,
                        "message": format!("Version {v} is not supported by the API. Minimum is 2.1 and maximum is {}.", cloud.max_version)}}));
                }
            }
        }
        let reply = rest(req, base);
        match asked {
            Some(v) if microversioned && !reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("openstack-api-version")) => reply
                .header("OpenStack-API-Version", &format!("compute {v}"))
                .header("X-OpenStack-Nova-API-Version", &v),
            _ => reply,
        }
    }
}

/// `2.104` as (2, 104); `None` for a cloud whose maximum is not a version (its own closure
/// decides what it accepts).
fn version_key(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub fn token_body(base: &str, expires_at: &str) -> serde_json::Value {
    serde_json::json!({"token": {
    "methods": ["password"], "expires_at": expires_at, "issued_at": "2026-01-01T00:00:00.000000Z",
    "project": {"id": "p-admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
    "user": {"id": "u-admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
    "catalog": [
        {"type": "compute", "name": "nova", "id": "c", "endpoints": [
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": format!("{base}/public-is-wrong/v2.1"), "id": "1"},
            {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": format!("{base}/compute/v2.1"), "id": "2"}]},
        {"type": "image", "name": "glance", "id": "i", "endpoints": [
            {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": format!("{base}/image"), "id": "3"}]}
    ]}})
}

/// Collects log lines.
#[derive(Default, Clone)]
pub struct Logs(pub Arc<Mutex<Vec<String>>>);

impl Logs {
    pub fn logger(&self) -> Arc<dyn iha_openstack::Logger> {
        let l = self.0.clone();
        Arc::new(move |level: iha_openstack::Level, m: &str| {
            l.lock().unwrap().push(format!("{level:?} {m}"))
        })
    }
    pub fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// Options for a password login against `server`, with a private cache dir.
pub fn password_options(
    server: &MockServer,
    cache: &Path,
    logs: &Logs,
) -> iha_openstack::ConnectionOptions {
    let p = iha_openstack::AuthParams {
        auth_url: Some(format!("{}/identity/v3/", server.base)),
        username: Some("admin".into()),
        password: Some("s3cr3t-pw".into()),
        project_name: Some("admin".into()),
        user_domain_name: Some("Default".into()),
        project_domain_name: Some("Default".into()),
        interface: Some("internalURL".into()),
        region_name: Some("RegionOne".into()),
        ..Default::default()
    };
    let mut o = iha_openstack::ConnectionOptions::from_params(p).unwrap();
    o.token_cache = iha_openstack::TokenCacheMode::Dir(cache.to_path_buf());
    o.retry = iha_openstack::RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    o.logger = iha_openstack::LogSink::new(logs.logger());
    o
}
