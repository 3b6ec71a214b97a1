//! TLS against a rustls server on loopback with certificates made by the
//! `openssl` CLI (skipped, with a note, when it is not installed).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use iha_openstack::*;
use serde_json::json;
use support::*;

struct Pki {
    _dir: TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn make_ca(dir: &Path, name: &str) -> bool {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
}

fn make_leaf(dir: &Path, name: &str, ext: &str) -> bool {
    std::fs::write(dir.join(format!("{name}.ext")), ext).is_ok()
        && openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        )
}

fn pki() -> Option<Pki> {
    let dir = TempDir::new("pki");
    let d = dir.path().to_path_buf();
    let ok = make_ca(&d, "ca")
        && make_ca(&d, "other")
        && make_leaf(
            &d,
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        && make_leaf(
            &d,
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
    if !ok {
        eprintln!("skipping TLS test: the openssl CLI is missing or failed");
        return None;
    }
    Some(Pki {
        ca: d.join("ca.pem"),
        other_ca: d.join("other.pem"),
        server_cert: d.join("server.pem"),
        server_key: d.join("server.key"),
        client_cert: d.join("client.pem"),
        client_key: d.join("client.key"),
        _dir: dir,
    })
}

fn server_config(p: &Pki, require_client: bool) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&p.server_cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&p.server_key).unwrap();
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = if require_client {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&p.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let v =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        b.with_client_cert_verifier(v)
    } else {
        b.with_no_client_auth()
    };
    Arc::new(b.with_single_cert(certs, key).unwrap())
}

fn nova(req: &Recorded, _: &str) -> Reply {
    match req.path_only() {
        "/v2.1/" => Reply::json(
            200,
            json!({"version": {"id": "v2.1", "version": "2.95", "min_version": "2.1"}}),
        ),
        "/v2.1/os-aggregates" => Reply::json(200, json!({"aggregates": []})),
        _ => Reply::status(404),
    }
}

fn options(server: &MockServer, tls: TlsOptions) -> ConnectionOptions {
    let mut p = AuthParams {
        token: Some("t".into()),
        ..Default::default()
    };
    p.endpoint_overrides
        .insert("compute".into(), format!("{}/v2.1", server.base));
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.tls = tls;
    o.token_cache = TokenCacheMode::Disabled;
    o.request_timeout = Duration::from_secs(10);
    o
}

#[test]
fn server_verification() {
    let Some(p) = pki() else { return };
    let server = MockServer::start_tls(nova, server_config(&p, false));
    // The right CA.
    let ok = TlsOptions {
        cacert: Some(p.ca.clone()),
        ..Default::default()
    };
    Client::new(options(&server, ok)).list_aggregates().unwrap();
    // Another CA: refused, as a TLS error, not retried into a timeout.
    let wrong = TlsOptions {
        cacert: Some(p.other_ca.clone()),
        ..Default::default()
    };
    let e = Client::new(options(&server, wrong))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // The system store does not know our test CA.
    let e = Client::new(options(&server, TlsOptions::default()))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    // insecure: accepted.
    let insecure = TlsOptions {
        insecure: true,
        ..Default::default()
    };
    Client::new(options(&server, insecure))
        .list_aggregates()
        .unwrap();
    // A cacert that is not PEM.
    let bad = TlsOptions {
        cacert: Some(p.server_key.with_extension("missing")),
        ..Default::default()
    };
    let e = Client::new(options(&server, bad))
        .list_aggregates()
        .unwrap_err();
    assert!(e.to_string().contains("cacert"), "{e}");
}

#[test]
fn client_certificate() {
    let Some(p) = pki() else { return };
    let server = MockServer::start_tls(nova, server_config(&p, true));
    let without = TlsOptions {
        cacert: Some(p.ca.clone()),
        ..Default::default()
    };
    assert!(
        Client::new(options(&server, without))
            .list_aggregates()
            .is_err()
    );
    let with = TlsOptions {
        cacert: Some(p.ca.clone()),
        cert: Some(p.client_cert.clone()),
        key: Some(p.client_key.clone()),
        insecure: false,
    };
    Client::new(options(&server, with))
        .list_aggregates()
        .unwrap();
}
