//! HTTP behaviour of the client against a loopback fake Keystone/Nova/Glance.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use iha_openstack::*;
use serde_json::json;
use support::*;

fn services_reply(req: &Recorded) -> Option<Reply> {
    (req.path_only() == "/compute/v2.1/os-services").then(|| {
        Reply::json(200, json!({"services": [{"id": "e81d66a4-ddd3-4aba-8a84-171d1cb4d339", "binary": "nova-compute",
            "host": "compute1", "state": "up", "status": "enabled", "zone": "nova", "forced_down": false,
            "updated_at": "2026-01-01T00:00:00.000000", "disabled_reason": null}]}))
    })
}

#[test]
fn password_auth_catalog_microversion_and_logs() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |req, _| {
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("basic");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    let q = ServiceQuery {
        binary: Some("nova-compute".into()),
        host: Some("compute1".into()),
    };
    let s = c.list_services(&q).unwrap();
    assert_eq!(s[0].host, "compute1");
    let reqs = server.requests();
    // Auth body: user by name in a domain, project scope.
    let auth = reqs
        .iter()
        .find(|r| r.path == "/identity/v3/auth/tokens")
        .unwrap()
        .json();
    assert_eq!(
        auth["auth"]["identity"]["password"]["user"]["name"],
        "admin"
    );
    assert_eq!(
        auth["auth"]["identity"]["password"]["user"]["domain"]["name"],
        "Default"
    );
    assert_eq!(auth["auth"]["scope"]["project"]["name"], "admin");
    let list = reqs
        .iter()
        .find(|r| r.path_only() == "/compute/v2.1/os-services")
        .unwrap();
    assert_eq!(
        list.path,
        "/compute/v2.1/os-services?binary=nova-compute&host=compute1"
    );
    assert_eq!(list.header("x-auth-token"), Some("tok-1"));
    assert_eq!(list.header("openstack-api-version"), Some("compute 2.95"));
    assert_eq!(list.header("x-openstack-nova-api-version"), Some("2.95"));
    // Only the internal endpoint was used.
    assert_eq!(server.count("GET", "/public-is-wrong"), 0);
    let l = logs.all();
    assert!(
        l.contains("GET /compute/v2.1/os-services?binary=nova-compute&host=compute1 -> 200"),
        "{l}"
    );
    assert!(!l.contains("s3cr3t-pw") && !l.contains("tok-1"), "{l}");
    assert!(!format!("{c:?}").contains("s3cr3t-pw"));
    // Connections are reused: one TCP connection for all requests.
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "{reqs:?}");
}

#[test]
fn warm_cache_means_no_keystone_and_no_discovery() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |req, _| {
        services_reply(req).unwrap_or_else(|| match req.method.as_str() {
            "PUT" => Reply::json(200, json!({"service": {}})),
            _ => Reply::status(404),
        })
    }));
    let cache = TempDir::new("warm");
    let logs = Logs::default();
    let q = ServiceQuery::default();
    Client::new(password_options(&server, cache.path(), &logs))
        .list_services(&q)
        .unwrap();
    // The token, then the read itself: a read does not wait for version discovery
    // (Nova's answer confirms the version assumed).
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].header("openstack-api-version"), Some("compute 2.95"));
    let discoveries = || server.requests().iter().filter(|r| r.path == "/compute/v2.1/").count();
    assert_eq!(discoveries(), 0);
    // A write discovers the range (never assumed) and caches it with the token.
    Client::new(password_options(&server, cache.path(), &logs))
        .force_down(&ServiceRef::compute("compute1"), true)
        .unwrap();
    assert_eq!(discoveries(), 1);
    let seen = server.requests().len();
    // A new "process": only the Nova calls themselves, read and write.
    let c = Client::new(password_options(&server, cache.path(), &logs));
    c.list_services(&q).unwrap();
    c.force_down(&ServiceRef::compute("compute1"), false).unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), seen + 3, "{reqs:?}"); // the list; the uuid lookup and the PUT
    assert!(reqs[seen..].iter().all(|r| r.path.starts_with("/compute/v2.1/os-services")), "{reqs:?}");
    assert_eq!(reqs[seen].header("x-auth-token"), Some("tok-1"));
    // The cache file is private and holds no password.
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains("s3cr3t-pw"));
    // A changed password never reuses the token.
    let mut o = password_options(&server, cache.path(), &logs);
    if let Credentials::Password { password, .. } = &mut o.auth.credentials {
        *password = Secret::new("another");
    }
    Client::new(o).list_services(&q).unwrap();
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 2);
}

#[test]
fn token_near_expiry_is_renewed() {
    let cloud = Arc::new(Cloud {
        max_version: "2.60".into(),
        // Expires 30 s from now: inside the 60 s margin.
        expires_at: {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 30;
            let days = t / 86400;
            let secs = t % 86400;
            // civil_from_days
            let z = days as i64 + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
            let y = yoe + era * 400;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = if m <= 2 { y + 1 } else { y };
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )
        },
        tokens_issued: AtomicU32::new(0),
    });
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |req, _| {
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("expiry");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    c.list_services(&ServiceQuery::default()).unwrap();
    // Within this process the fresh token is used up to its expiry...
    c.list_services(&ServiceQuery::default()).unwrap();
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 1);
    // ...but the next process does not reuse a cached token that close to it.
    Client::new(password_options(&server, cache.path(), &logs))
        .list_services(&ServiceQuery::default())
        .unwrap();
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 2);
}

#[test]
fn reauthenticates_once_on_401() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |req, _| {
        if req.header("x-auth-token") == Some("tok-1") {
            return Reply::json(
                401,
                json!({"error": {"code": 401, "message": "The request you have made requires authentication."}}),
            );
        }
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("401");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    // tok-1 fetches the version document fine? No: it is rejected too, then tok-2 works.
    c.list_services(&ServiceQuery::default()).unwrap();
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 2);
    // A token that keeps failing: exactly one re-authentication, then Auth.
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |_, _| {
        Reply::json(401, json!({"error": {"message": "nope"}}))
    }));
    let cache = TempDir::new("401b");
    let c = Client::new(password_options(&server, cache.path(), &logs));
    let e = c.list_services(&ServiceQuery::default()).unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    // Version document (tok-1 fine), then services 401, re-auth, 401 again.
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 2);
}

#[test]
fn keystone_rejection_is_an_auth_error() {
    let server = MockServer::start(|req, _| {
        if req.path == "/identity/v3/auth/tokens" {
            return Reply::json(
                401,
                json!({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}),
            );
        }
        Reply::status(404)
    });
    let cache = TempDir::new("ksfail");
    let logs = Logs::default();
    let e = Client::new(password_options(&server, cache.path(), &logs))
        .list_services(&ServiceQuery::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Auth { message } if message.contains("keystone rejected")),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cr3t-pw"));
    assert_eq!(server.requests().len(), 1, "auth failures are not retried");
}

#[test]
fn unversioned_auth_url_and_v2_only_keystone() {
    // Root URL: /v3 is tried directly, no discovery round trip.
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("root");
    let logs = Logs::default();
    let mut o = password_options(&server, cache.path(), &logs);
    o.auth.auth_url = Some(format!("{}/identity/", server.base));
    Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap();
    assert_eq!(server.requests()[0].path, "/identity/v3/auth/tokens");

    // A v2-only Keystone.
    let server = MockServer::start(|req, _| {
        if req.method == "GET" && req.path == "/" {
            return Reply::json(
                300,
                json!({"versions": {"values": [{"id": "v2.0", "status": "stable",
                "links": [{"rel": "self", "href": "http://x/v2.0/"}]}]}}),
            );
        }
        Reply::status(404)
    });
    let mut o = password_options(&server, cache.path(), &logs);
    o.auth.auth_url = Some(server.base.clone());
    let e = Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { .. }) && e.to_string().contains("v2"),
        "{e}"
    );
    let mut o = password_options(&server, cache.path(), &logs);
    o.auth.auth_url = Some(format!("{}/v2.0", server.base));
    let before = server.requests().len();
    let e = Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap_err();
    assert!(e.to_string().contains("v2, which is not supported"), "{e}");
    assert_eq!(
        server.requests().len(),
        before,
        "no request for a /v2.0 auth_url"
    );
}

#[test]
fn application_credential_and_direct_token() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("appcred");
    let p = AuthParams {
        auth_url: Some(format!("{}/identity/v3", server.base)),
        application_credential_id: Some("ac-id".into()),
        application_credential_secret: Some("ac-secret".into()),
        interface: Some("internal".into()),
        ..Default::default()
    };
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Dir(cache.path().to_path_buf());
    Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap();
    let auth = server.requests()[0].json();
    assert_eq!(
        auth["auth"]["identity"]["methods"][0],
        "application_credential"
    );
    assert_eq!(
        auth["auth"]["identity"]["application_credential"]["id"],
        "ac-id"
    );
    assert!(auth["auth"].get("scope").is_none());

    // The lab's noauth mode: a token straight to an explicit endpoint.
    let server = MockServer::start(|req, _| {
        if req.path == "/v2.1/" {
            return Reply::json(
                200,
                json!({"version": {"id": "v2.1", "version": "2.53", "min_version": "2.1"}}),
            );
        }
        services_reply(&Recorded {
            path: req.path.replacen("/v2.1", "/compute/v2.1", 1),
            ..req.clone()
        })
        .unwrap_or_else(|| Reply::status(404))
    });
    let mut p = AuthParams {
        token: Some("admin:admin".into()),
        ..Default::default()
    };
    p.endpoint_overrides
        .insert("compute".into(), format!("{}/v2.1", server.base));
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Disabled;
    Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap();
    // This endpoint names no version in its answers (a proxy dropping the header, or no
    // microversions): the read at the assumed 2.95 is not confirmed, so the range is
    // discovered and the read made again at 2.53.
    let r = server.requests();
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(r[0].header("openstack-api-version"), Some("compute 2.95"));
    assert_eq!(r[1].path, "/v2.1/");
    assert_eq!(r[2].header("x-auth-token"), Some("admin:admin"));
    assert_eq!(r[2].header("openstack-api-version"), Some("compute 2.53"));
}

#[test]
fn servers_are_paginated() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, base| {
        if req.path_only() != "/compute/v2.1/servers/detail" {
            return Reply::status(404);
        }
        let marker = req
            .path
            .split("marker=")
            .nth(1)
            .map(|m| m.split('&').next().unwrap_or("").to_owned());
        let (ids, next): (Vec<&str>, Option<&str>) = match marker.as_deref() {
            None => (vec!["s1", "s2"], Some("s2")),
            Some("s2") => (vec!["s3", "s4"], Some("s4")),
            Some("s4") => (vec!["s5"], None),
            _ => (vec![], None),
        };
        let servers: Vec<_> = ids.iter().map(|i| json!({"id": i, "name": i, "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "compute1"})).collect();
        let mut body = json!({"servers": servers});
        if let Some(n) = next {
            // Nova builds links from its own public URL, possibly another host.
            body["servers_links"] = json!([{"rel": "next", "href": format!("http://elsewhere/v2.1/servers/detail?all_tenants=1&host=compute1&limit=2&marker={n}")}]);
        }
        let _ = base;
        Reply::json(200, body)
    }));
    let cache = TempDir::new("pages");
    let logs = Logs::default();
    let c = Client::new(ConnectionOptions {
        page_size: 2,
        ..password_options(&server, cache.path(), &logs)
    });
    let s = c.list_servers_on_host("compute1").unwrap();
    assert_eq!(
        s.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s1", "s2", "s3", "s4", "s5"]
    );
    let pages: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path_only() == "/compute/v2.1/servers/detail")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        pages,
        [
            "/compute/v2.1/servers/detail?all_tenants=1&host=compute1&limit=2",
            "/compute/v2.1/servers/detail?all_tenants=1&host=compute1&limit=2&marker=s2",
            "/compute/v2.1/servers/detail?all_tenants=1&host=compute1&limit=2&marker=s4",
        ]
    );
    // The servers changed since a moment (confirming many finished evacuations at once): every
    // project, Nova's changes-since filter, every page.
    let changed = c.list_servers_changed_since("2026-01-01T00:00:00Z").unwrap();
    assert_eq!(changed.len(), 5);
    let pages: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path_only() == "/compute/v2.1/servers/detail" && r.path.contains("changes-since"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        pages,
        [
            "/compute/v2.1/servers/detail?all_tenants=1&changes-since=2026-01-01T00%3A00%3A00Z&limit=2",
            "/compute/v2.1/servers/detail?all_tenants=1&changes-since=2026-01-01T00%3A00%3A00Z&limit=2&marker=s2",
            "/compute/v2.1/servers/detail?all_tenants=1&changes-since=2026-01-01T00%3A00%3A00Z&limit=2&marker=s4",
        ]
    );
}

#[test]
fn images_and_migrations_are_paginated() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| match req.path_only() {
        "/image/v2/images" => {
            if req.path.contains("marker=i2") {
                Reply::json(
                    200,
                    json!({"images": [{"id": "i3", "tags": ["evacuable"], "evacuable": "true"}], "first": "/v2/images"}),
                )
            } else {
                Reply::json(
                    200,
                    json!({"images": [{"id": "i1", "tags": ["evacuable"]}, {"id": "i2", "tags": ["evacuable"]}],
                        "next": "/v2/images?tag=evacuable&marker=i2", "first": "/v2/images"}),
                )
            }
        }
        "/compute/v2.1/os-migrations" => {
            if req.path.contains("marker=u1") {
                Reply::json(
                    200,
                    json!({"migrations": [{"id": 2, "uuid": "u2", "status": "done", "migration_type": "evacuation"}]}),
                )
            } else {
                Reply::json(
                    200,
                    json!({"migrations": [{"id": 1, "uuid": "u1", "status": "accepted", "migration_type": "evacuation"}],
                        "migrations_links": [{"rel": "next", "href": "http://x/v2.1/os-migrations?limit=1&marker=u1"}]}),
                )
            }
        }
        _ => Reply::status(404),
    }));
    let cache = TempDir::new("pages2");
    let logs = Logs::default();
    let c = Client::new(ConnectionOptions {
        page_size: 1,
        ..password_options(&server, cache.path(), &logs)
    });
    let imgs = c
        .list_images(&ImageQuery {
            tags: vec!["evacuable".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        imgs.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["i1", "i2", "i3"]
    );
    assert_eq!(imgs[2].property("evacuable").as_deref(), Some("true"));
    let paths: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path_only() == "/image/v2/images")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [
            "/image/v2/images?tag=evacuable",
            "/image/v2/images?tag=evacuable&marker=i2"
        ]
    );
    // Glance gets no microversion header.
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/image"))
            .all(|r| r.header("openstack-api-version").is_none())
    );
    let q = MigrationQuery {
        source_compute: Some("compute1".into()),
        migration_type: Some("evacuation".into()),
        changes_since: Some("2026-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    let m = c.list_migrations(&q).unwrap();
    assert_eq!(m.len(), 2);
    let first = server
        .requests()
        .into_iter()
        .find(|r| r.path_only() == "/compute/v2.1/os-migrations")
        .unwrap();
    assert_eq!(
        first.path,
        "/compute/v2.1/os-migrations?source_compute=compute1&migration_type=evacuation&changes-since=2026-01-01T00%3A00%3A00Z&limit=1"
    );
}

#[test]
fn services_by_uuid_at_253_and_by_host_before() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.method == "PUT" {
            return Reply::json(200, json!({"service": {}}));
        }
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("svc");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    c.force_down(&ServiceRef::compute("compute1"), true)
        .unwrap();
    c.disable_service(
        &ServiceRef::compute("compute1"),
        Some("fenced by pacemaker"),
    )
    .unwrap();
    let known = ServiceRef {
        id: Some("e81d66a4-ddd3-4aba-8a84-171d1cb4d339".into()),
        ..ServiceRef::compute("compute1")
    };
    c.enable_service(&known).unwrap();
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 3);
    assert!(
        puts.iter()
            .all(|p| p.path == "/compute/v2.1/os-services/e81d66a4-ddd3-4aba-8a84-171d1cb4d339")
    );
    assert_eq!(puts[0].json(), json!({"forced_down": true}));
    assert_eq!(
        puts[1].json(),
        json!({"status": "disabled", "disabled_reason": "fenced by pacemaker"})
    );
    assert_eq!(puts[2].json(), json!({"status": "enabled"}));
    // The id was looked up twice (the third call had it).
    assert_eq!(server.count("GET", "/compute/v2.1/os-services"), 2);

    let cloud = Cloud::new("2.40");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.method == "PUT" {
            return Reply::json(
                200,
                json!({"service": {"host": "compute1", "binary": "nova-compute", "forced_down": true}}),
            );
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("svc-legacy");
    let c = Client::new(password_options(&server, cache.path(), &logs));
    c.force_down(&ServiceRef::compute("compute1"), true)
        .unwrap();
    c.disable_service(&ServiceRef::compute("compute1"), Some("r"))
        .unwrap();
    c.enable_service(&ServiceRef {
        id: Some("7".into()),
        ..ServiceRef::compute("compute1")
    })
    .unwrap();
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts[0].path, "/compute/v2.1/os-services/force-down");
    assert_eq!(
        puts[0].json(),
        json!({"host": "compute1", "binary": "nova-compute", "forced_down": true})
    );
    assert_eq!(
        puts[0].header("openstack-api-version"),
        Some("compute 2.40")
    );
    assert_eq!(puts[1].path, "/compute/v2.1/os-services/disable-log-reason");
    assert_eq!(
        puts[1].json(),
        json!({"host": "compute1", "binary": "nova-compute", "disabled_reason": "r"})
    );
    assert_eq!(puts[2].path, "/compute/v2.1/os-services/enable");

    let cloud = Cloud::new("2.10");
    let server = MockServer::start(keystone_and_nova(cloud, |_, _| Reply::status(404)));
    let cache = TempDir::new("svc-old");
    let e = Client::new(password_options(&server, cache.path(), &logs))
        .force_down(&ServiceRef::compute("c"), true)
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
}

fn evacuate_with(max: &str, req: &EvacuateRequest) -> (Result<EvacuateOutcome>, Vec<Recorded>) {
    let cloud = Cloud::new(max);
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.path == "/compute/v2.1/servers/srv1/action" {
            if req.json()["evacuate"].get("onSharedStorage").is_some() {
                return Reply::json(200, json!({"adminPass": "generated-pass"}));
            }
            return Reply::status(200);
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("evac");
    let logs = Logs::default();
    let r = Client::new(password_options(&server, cache.path(), &logs)).evacuate("srv1", req);
    let actions = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/action"))
        .collect();
    assert!(!logs.all().contains("generated-pass"));
    (r, actions)
}

#[test]
fn evacuate_body_follows_microversion() {
    let (r, a) = evacuate_with("2.104", &EvacuateRequest::default());
    assert_eq!(r.unwrap().microversion, Microversion::new(2, 94));
    assert_eq!(a[0].json(), json!({"evacuate": {}}));
    assert_eq!(a[0].header("openstack-api-version"), Some("compute 2.94"));

    let req = EvacuateRequest {
        stop_after: true,
        ..Default::default()
    };
    let (r, a) = evacuate_with("2.104", &req);
    assert_eq!(r.unwrap().microversion, Microversion::new(2, 95));
    assert_eq!(a[0].header("openstack-api-version"), Some("compute 2.95"));
    let (r, a) = evacuate_with("2.60", &req);
    assert!(matches!(r, Err(Error::Unsupported { .. })));
    assert!(a.is_empty());

    let req = EvacuateRequest {
        host: Some("compute2".into()),
        force: true,
        ..Default::default()
    };
    let (r, a) = evacuate_with("2.104", &req);
    assert_eq!(r.unwrap().microversion, Microversion::new(2, 67));
    assert_eq!(
        a[0].json(),
        json!({"evacuate": {"host": "compute2", "force": true}})
    );
    let (_, a) = evacuate_with("2.20", &req);
    assert_eq!(a[0].json(), json!({"evacuate": {"host": "compute2"}}));

    let req = EvacuateRequest {
        host: Some("compute2".into()),
        ..Default::default()
    };
    let (_, a) = evacuate_with("2.50", &req);
    assert_eq!(a[0].json(), json!({"evacuate": {"host": "compute2"}}));

    let req = EvacuateRequest {
        on_shared_storage: Some(true),
        ..Default::default()
    };
    let (r, a) = evacuate_with("2.12", &req);
    assert_eq!(a[0].json(), json!({"evacuate": {"onSharedStorage": true}}));
    let out = r.unwrap();
    assert_eq!(
        out.admin_pass.as_ref().map(Secret::expose),
        Some("generated-pass")
    );
    assert!(!format!("{out:?}").contains("generated-pass"));
}

#[test]
fn lock_with_reason_from_273() {
    for (max, body) in [
        ("2.104", json!({"lock": {"locked_reason": "evacuating"}})),
        ("2.60", json!({"lock": null})),
    ] {
        let cloud = Cloud::new(max);
        let server = MockServer::start(keystone_and_nova(cloud, |_, _| Reply::status(202)));
        let cache = TempDir::new("lock");
        let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
        c.lock_server("srv1", Some("evacuating")).unwrap();
        c.unlock_server("srv1").unwrap();
        c.reset_state("srv1", ResetState::Error).unwrap();
        let a: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/action"))
            .map(|r| r.json())
            .collect();
        assert_eq!(
            a,
            [
                body,
                json!({"unlock": null}),
                json!({"os-resetState": {"state": "error"}})
            ]
        );
    }
}

#[test]
fn other_reads() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| match req.path.as_str() {
        "/compute/v2.1/servers/srv1" => Reply::json(
            200,
            json!({"server": {"id": "srv1", "status": "ACTIVE", "flavor": {"original_name": "m1", "extra_specs": {"evacuable": "true"}}}}),
        ),
        "/compute/v2.1/servers/srv1/metadata" => {
            Reply::json(200, json!({"metadata": {"evacuable": "true"}}))
        }
        "/compute/v2.1/servers/srv1/tags" => Reply::json(200, json!({"tags": ["evacuable"]})),
        "/compute/v2.1/servers/srv1/os-instance-actions" => Reply::json(
            200,
            json!({"instanceActions": [{"action": "evacuate", "request_id": "req-1"}]}),
        ),
        "/compute/v2.1/flavors/detail?is_public=None&limit=1000" => Reply::json(
            200,
            json!({"flavors": [{"id": "1", "name": "m1", "vcpus": 1, "ram": 512, "disk": 1}]}),
        ),
        "/compute/v2.1/flavors/1/os-extra_specs" => {
            Reply::json(200, json!({"extra_specs": {"evacuable": "true"}}))
        }
        "/compute/v2.1/os-aggregates" => Reply::json(
            200,
            json!({"aggregates": [{"id": 1, "name": "ha", "hosts": ["compute1"], "metadata": {"evacuable": "true"}}]}),
        ),
        "/compute/v2.1/os-hypervisors/detail?limit=1000" => Reply::json(
            200,
            json!({"hypervisors": [{"id": "h1", "hypervisor_hostname": "compute1.example", "state": "up", "status": "enabled"}]}),
        ),
        "/compute/v2.1/servers/missing" => Reply::json(
            404,
            json!({"itemNotFound": {"code": 404, "message": "Instance missing could not be found."}}),
        ),
        _ => Reply::status(404),
    }));
    let cache = TempDir::new("reads");
    let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
    assert_eq!(
        c.get_server("srv1").unwrap().flavor.extra_specs.unwrap()["evacuable"],
        "true"
    );
    assert_eq!(c.server_metadata("srv1").unwrap()["evacuable"], "true");
    assert_eq!(c.server_tags("srv1").unwrap(), ["evacuable"]);
    assert_eq!(c.server_actions("srv1").unwrap()[0].action, "evacuate");
    assert_eq!(c.list_flavors().unwrap()[0].name, "m1");
    assert_eq!(c.flavor_extra_specs("1").unwrap()["evacuable"], "true");
    assert_eq!(c.list_aggregates().unwrap()[0].hosts, ["compute1"]);
    assert_eq!(
        c.list_hypervisors().unwrap()[0].hypervisor_hostname,
        "compute1.example"
    );
    assert_eq!(c.api_versions().unwrap().max, Microversion::new(2, 104));
    let e = c.get_server("missing").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.service_message(),
        Some("Instance missing could not be found.")
    );
    // Usable as a trait object.
    let api: Arc<dyn ComputeApi> = Arc::new(c);
    assert_eq!(api.get_server("srv1").unwrap().id, "srv1");
}

#[test]
fn retries_5xx_and_honours_retry_after() {
    let cloud = Cloud::new("2.104");
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let server = MockServer::start(keystone_and_nova(cloud, move |req, _| {
        if req.path_only() == "/compute/v2.1/os-services" {
            return match n2.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::json(503, json!({"computeFault": {"message": "busy"}})),
                1 => Reply::status(429).header("Retry-After", "1"),
                _ => services_reply(req).unwrap(),
            };
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("retry");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    let t = Instant::now();
    c.list_services(&ServiceQuery::default()).unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert!(logs.all().contains("retrying"), "{}", logs.all());
}

#[test]
fn deadline_bounds_retries_and_slow_answers() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| match req.path_only() {
        "/compute/v2.1/os-services" => Reply::json(
            500,
            json!({"computeFault": {"code": 500, "message": "boom"}}),
        ),
        "/compute/v2.1/os-aggregates" => {
            Reply::json(200, json!({"aggregates": []})).delayed(Duration::from_secs(3))
        }
        _ => Reply::status(404),
    }));
    let cache = TempDir::new("deadline");
    let logs = Logs::default();
    let mut o = password_options(&server, cache.path(), &logs);
    o.retry = RetryPolicy {
        max_attempts: 100,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    let c = Client::new(o);
    c.api_versions().unwrap();
    let t = Instant::now();
    let e = c
        .with_deadline(Deadline::after(Duration::from_millis(800)))
        .list_services(&ServiceQuery::default())
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(
        matches!(&e, Error::ServerError { status: 500, message, .. } if message == "boom"),
        "{e}"
    );
    let t = Instant::now();
    let e = c
        .with_deadline(Deadline::after(Duration::from_millis(500)))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn evacuate_is_never_blindly_repeated() {
    // The connection drops after the POST was received.
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.path.ends_with("/action") {
            Reply::hang_up()
        } else {
            Reply::status(404)
        }
    }));
    let cache = TempDir::new("unknown");
    let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
    let e = c.evacuate("srv1", &EvacuateRequest::default()).unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e}");
    assert_eq!(server.count("POST", "/compute/v2.1/servers/srv1/action"), 1);

    // Timed out after sending.
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.path.ends_with("/action") {
            Reply::status(200).delayed(Duration::from_secs(2))
        } else {
            Reply::status(404)
        }
    }));
    let cache = TempDir::new("unknown2");
    let mut o = password_options(&server, cache.path(), &Logs::default());
    o.request_timeout = Duration::from_millis(300);
    let c = Client::new(o);
    let e = c.evacuate("srv1", &EvacuateRequest::default()).unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e}");
    assert_eq!(server.count("POST", "/compute/v2.1/servers/srv1/action"), 1);

    // 503 means "not processed": retried.
    let cloud = Cloud::new("2.104");
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let server = MockServer::start(keystone_and_nova(cloud, move |req, _| {
        if req.path.ends_with("/action") {
            return if n2.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(503)
            } else {
                Reply::status(200)
            };
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("unknown3");
    let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
    c.evacuate("srv1", &EvacuateRequest::default()).unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // 400 from Nova: the message comes through.
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, _| {
        if req.path.ends_with("/action") {
            return Reply::json(
                400,
                json!({"badRequest": {"code": 400, "message": "Compute service of compute3 is still in use."}}),
            );
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("unknown4");
    let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
    let e = c.evacuate("srv1", &EvacuateRequest::default()).unwrap_err();
    assert!(
        matches!(&e, Error::BadRequest { message, .. } if message.contains("still in use")),
        "{e}"
    );
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // A port with nothing listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut p = AuthParams {
        token: Some("t".into()),
        ..Default::default()
    };
    p.endpoint_overrides
        .insert("compute".into(), format!("http://127.0.0.1:{port}/v2.1"));
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Disabled;
    o.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    let logs = Logs::default();
    o.logger = LogSink::new(logs.logger());
    let e = Client::new(o)
        .evacuate("x", &EvacuateRequest::default())
        .unwrap_err();
    assert!(matches!(e, Error::Connection { .. }), "{e}");
    assert_eq!(logs.all().matches("retrying").count(), 2, "{}", logs.all());
}

#[test]
fn preissued_token_is_validated_then_reused() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud, |req, base| {
        if req.method == "GET" && req.path == "/identity/v3/auth/tokens" {
            assert_eq!(req.header("x-subject-token"), Some("pre-issued"));
            return Reply::json(200, token_body(base, "2999-01-01T00:00:00Z"))
                .header("X-Subject-Token", "pre-issued");
        }
        services_reply(req).unwrap_or_else(|| Reply::status(404))
    }));
    let cache = TempDir::new("preissued");
    let p = AuthParams {
        auth_url: Some(format!("{}/identity/v3", server.base)),
        token: Some("pre-issued".into()),
        interface: Some("internal".into()),
        ..Default::default()
    };
    let mut o = ConnectionOptions::from_params(p).unwrap();
    o.token_cache = TokenCacheMode::Dir(cache.path().to_path_buf());
    Client::new(o)
        .list_services(&ServiceQuery::default())
        .unwrap();
    let r = server.requests();
    assert_eq!(r[0].method, "GET");
    assert_eq!(r.last().unwrap().header("x-auth-token"), Some("pre-issued"));
}

#[test]
fn threads_share_one_session_and_pool() {
    let cloud = Cloud::new("2.104");
    let server = MockServer::start(keystone_and_nova(cloud.clone(), |req, _| {
        if req.path.ends_with("/action") {
            return Reply::status(200).delayed(Duration::from_millis(20));
        }
        Reply::status(404)
    }));
    let cache = TempDir::new("threads");
    let c = Client::new(password_options(&server, cache.path(), &Logs::default()));
    let api: &dyn ComputeApi = &c;
    std::thread::scope(|s| {
        for i in 0..8 {
            s.spawn(move || {
                api.evacuate(&format!("srv{i}"), &EvacuateRequest::default())
                    .unwrap()
            });
        }
    });
    assert_eq!(cloud.tokens_issued.load(Ordering::SeqCst), 1);
    assert_eq!(server.count("GET", "/compute/v2.1/"), 1);
    assert_eq!(server.count("POST", "/compute/v2.1/servers/"), 8);
    assert!(server.connections.load(Ordering::SeqCst) <= 9);
}

#[test]
fn cached_catalog_missing_a_service_is_refreshed_once() {
    let issued = Arc::new(AtomicU32::new(0));
    let i2 = issued.clone();
    let server = MockServer::start(move |req, base| {
        if req.path == "/identity/v3/auth/tokens" {
            let n = i2.fetch_add(1, Ordering::SeqCst);
            let mut body = token_body(base, "2999-01-01T00:00:00Z");
            if n == 0 {
                // The first catalog predates Glance's registration.
                body["token"]["catalog"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|e| e["type"] != "image");
            }
            return Reply::json(201, body).header("X-Subject-Token", &format!("tok-{n}"));
        }
        if req.path_only() == "/image/v2/images" {
            return Reply::json(200, json!({"images": []}));
        }
        Reply::status(404)
    });
    let cache = TempDir::new("stale-catalog");
    let logs = Logs::default();
    let c = Client::new(password_options(&server, cache.path(), &logs));
    // Freshly issued: the answer is final.
    assert!(matches!(
        c.list_images(&ImageQuery::default()),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    // Next process: the cached catalog lacks image, so it is refreshed once.
    let c = Client::new(password_options(&server, cache.path(), &logs));
    c.list_images(&ImageQuery::default()).unwrap();
    c.list_images(&ImageQuery::default()).unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

/// A Nova whose maximum microversion can be lowered under a client that has
/// the old range cached (a downgrade or rollback): above the maximum it
/// answers 406 as Nova does, before doing anything.
fn downgradable_nova(
    cloud: Arc<Cloud>,
    max_minor: Arc<AtomicU16>,
) -> impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static {
    let max = max_minor.clone();
    let nova = keystone_and_nova(cloud, move |req, _| {
        let max = max.load(Ordering::SeqCst);
        if let Some(v) = req.header("x-openstack-nova-api-version") {
            let minor: u16 = v.strip_prefix("2.").unwrap().parse().unwrap();
            if minor > max {
                return Reply::json(
                    406,
                    json!({"computeFault": {"code": 406, "message": format!(
                        "Version {v} is not supported by the API. Minimum is 2.1 and maximum is 2.{max}.")}}),
                );
            }
        }
        match (req.method.as_str(), req.path_only()) {
            ("GET", "/compute/v2.1/os-services") => services_reply(req).unwrap(),
            ("PUT", _) => Reply::json(200, json!({"service": {}})),
            ("GET", "/compute/v2.1/os-hypervisors/detail") => Reply::json(
                200,
                json!({"hypervisors": [{"id": "h1", "hypervisor_hostname": "compute1", "state": "up", "status": "enabled"}]}),
            ),
            ("POST", "/compute/v2.1/servers/srv1/action") => Reply::status(202),
            _ => Reply::status(404),
        }
    });
    move |req, base| {
        if req.method == "GET" && req.path == "/compute/v2.1/" {
            let max = max_minor.load(Ordering::SeqCst);
            return Reply::json(
                200,
                json!({"version": {"id": "v2.1", "status": "CURRENT", "version": format!("2.{max}"),
                    "min_version": "2.1", "updated": "2013-07-23T11:33:21Z", "links": []}}),
            );
        }
        nova(req, base)
    }
}

/// The maxima of the version ranges in the (single) cache file.
fn cached_maxima(cache: &TempDir) -> Vec<String> {
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    v["compute_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}.{}", e[1]["max"]["major"], e[1]["max"]["minor"]))
        .collect()
}

/// (method, path, microversion) of the requests from `from` on.
fn wire(server: &MockServer, from: usize) -> Vec<(String, String, Option<String>)> {
    server.requests()[from..]
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.header("x-openstack-nova-api-version").map(str::to_owned),
            )
        })
        .collect()
}

fn at(method: &str, path: &str, mv: Option<&str>) -> (String, String, Option<String>) {
    (method.into(), path.into(), mv.map(str::to_owned))
}

#[test]
fn a_stale_cached_range_is_rediscovered_and_the_operation_redone() {
    let cloud = Cloud::new("unused");
    let max = Arc::new(AtomicU16::new(95));
    let server = MockServer::start(downgradable_nova(cloud.clone(), max.clone()));
    let cache = TempDir::new("downgrade");
    let logs = Logs::default();
    let process = || Client::new(password_options(&server, cache.path(), &logs));
    // A first process discovers and caches the range 2.1–2.95.
    process().api_versions().unwrap();
    assert_eq!(cached_maxima(&cache), ["2.95"]);

    // Nova rolled back to 2.52. The next process starts from the cached
    // 2.95: the lookup for the 2.53 uuid call gets 406; the range is
    // discovered again (once) and force_down redone with the host call.
    max.store(52, Ordering::SeqCst);
    let seen = server.requests().len();
    process()
        .force_down(&ServiceRef::compute("compute1"), true)
        .unwrap();
    assert_eq!(
        wire(&server, seen),
        [
            at(
                "GET",
                "/compute/v2.1/os-services?binary=nova-compute&host=compute1",
                Some("2.95")
            ),
            at("GET", "/compute/v2.1/", None),
            at("PUT", "/compute/v2.1/os-services/force-down", Some("2.52")),
        ]
    );
    assert_eq!(
        server.requests().last().unwrap().json(),
        json!({"host": "compute1", "binary": "nova-compute", "forced_down": true})
    );
    assert_eq!(cached_maxima(&cache), ["2.52"], "the cache file is updated");
    assert_eq!(
        cloud.tokens_issued.load(Ordering::SeqCst),
        1,
        "no re-authentication"
    );
    assert!(
        logs.all().contains("discovering it again"),
        "{}",
        logs.all()
    );

    // Down to 2.30: no more 2.33 pagination for the hypervisors.
    max.store(30, Ordering::SeqCst);
    let seen = server.requests().len();
    let h = process().list_hypervisors().unwrap();
    assert_eq!(h[0].hypervisor_hostname, "compute1");
    assert_eq!(
        wire(&server, seen),
        [
            at(
                "GET",
                "/compute/v2.1/os-hypervisors/detail?limit=1000",
                Some("2.52")
            ),
            at("GET", "/compute/v2.1/", None),
            at("GET", "/compute/v2.1/os-hypervisors/detail", Some("2.30")),
        ]
    );

    // Down to 2.13: the evacuate POST refused with 406 is sent again, once,
    // with the body of the lower version (Nova did nothing the first time).
    max.store(13, Ordering::SeqCst);
    let seen = server.requests().len();
    let c = process();
    let out = c.evacuate("srv1", &EvacuateRequest::default()).unwrap();
    assert_eq!(out.microversion, Microversion::new(2, 13));
    assert_eq!(
        wire(&server, seen),
        [
            at("POST", "/compute/v2.1/servers/srv1/action", Some("2.30")),
            at("GET", "/compute/v2.1/", None),
            at("POST", "/compute/v2.1/servers/srv1/action", Some("2.13")),
        ]
    );
    assert_eq!(
        server.requests().last().unwrap().json(),
        json!({"evacuate": {"onSharedStorage": false}})
    );
    // The same process goes on with the fresh range.
    c.lock_server("srv1", None).unwrap();
    assert_eq!(server.requests().len(), seen + 4);
    assert_eq!(cached_maxima(&cache), ["2.13"]);

    // Parallel workers that all hit the 406: one rediscovery between them.
    max.store(11, Ordering::SeqCst);
    let seen = server.requests().len();
    let c = process();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| c.list_services(&ServiceQuery::default()).unwrap());
        }
    });
    let w = wire(&server, seen);
    assert_eq!(
        w.iter().filter(|r| r.1 == "/compute/v2.1/").count(),
        1,
        "{w:?}"
    );
    let fresh = |r: &(String, String, Option<String>)| r.2.as_deref() == Some("2.11");
    assert_eq!(w.iter().filter(|r| fresh(r)).count(), 8, "{w:?}");
    let discovery = w.iter().position(|r| r.1 == "/compute/v2.1/").unwrap();
    assert!(!w[..discovery].iter().any(fresh), "{w:?}");
    assert_eq!(cached_maxima(&cache), ["2.11"]);
}

#[test]
fn a_genuine_406_is_returned_after_one_retry() {
    let refuse = |req: &Recorded, _: &str| {
        if req.path_only() == "/compute/v2.1/os-aggregates" {
            return Reply::json(
                406,
                json!({"computeFault": {"code": 406, "message": "Version 2.95 is not supported by the API."}}),
            );
        }
        Reply::status(404)
    };
    let server = MockServer::start(keystone_and_nova(Cloud::new("2.104"), refuse));
    let cache = TempDir::new("406");
    let logs = Logs::default();
    let e = Client::new(password_options(&server, cache.path(), &logs))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::NotAcceptable { .. }), "{e}");
    // The read at the assumed version, discovery, the read again at the discovered one
    // (the same 2.95): Nova's final word, no loop.
    assert_eq!(
        wire(&server, 1),
        [
            at("GET", "/compute/v2.1/os-aggregates", Some("2.95")),
            at("GET", "/compute/v2.1/", None),
            at("GET", "/compute/v2.1/os-aggregates", Some("2.95")),
        ]
    );

    // Without microversions no request carries one: a 406 is final.
    let server = MockServer::start(keystone_and_nova(Cloud::new(""), refuse));
    let cache = TempDir::new("406-legacy");
    let e = Client::new(password_options(&server, cache.path(), &logs))
        .list_aggregates()
        .unwrap_err();
    assert!(matches!(e, Error::NotAcceptable { .. }), "{e}");
    assert_eq!(
        wire(&server, 1),
        [
            at("GET", "/compute/v2.1/os-aggregates", Some("2.95")),
            at("GET", "/compute/v2.1/", None),
            at("GET", "/compute/v2.1/os-aggregates", None),
        ]
    );
}
