//! HTTPS serving with the built-in test PKI (feature `tls`).
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use iha_testkit::{Scenario, Simulator, testcerts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn get(sim: &iha_testkit::SimHandle, host: &str, path: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(testcerts::CA_PEM) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let tcp = TcpStream::connect(sim.addr()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        // Servers may close without close_notify after Connection: close.
        Err(e) if !out.is_empty() => Ok(format!("{}{e}", String::from_utf8_lossy(&out))),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn serves_https_with_test_certificate() {
    let sim = Simulator::start_tls_test_cert(Scenario::with_hosts(1)).unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let text = get(&sim, "localhost", "/identity/v3").unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("https://localhost"), "links use the https origin: {text}");
    let text = get(&sim, "127.0.0.1", "/compute/v2.1").unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Wrong name: the client refuses the certificate.
    assert!(get(&sim, "example.com", "/identity/v3").is_err());
}
