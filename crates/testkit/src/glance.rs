//! Glance v2 images (read-only): `GET /v2/images` with `tag` (repeatable,
//! AND), `name`, `visibility`, `status`, `limit` (default 25, like Glance's
//! `limit_param_default`), `marker` and a `next` link; `GET /v2/images/{id}`.
//! Custom properties are top-level keys of each image, as in Glance.

use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::keystone;
use crate::util::{fmt_z, percent_encode};
use crate::world::{Image, World};

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

fn image_view(im: &Image, owner: &str) -> Value {
    let mut v = json!({
        "id": im.id,
        "name": im.name,
        "status": "active",
        "visibility": im.visibility,
        "tags": im.tags,
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": 0,
        "min_ram": 0,
        "size": 1_048_576,
        "virtual_size": null,
        "checksum": "b6d81b360a5672d80c27430f39153e2c",
        "os_hidden": false,
        "os_hash_algo": "sha512",
        "protected": false,
        "owner": owner,
        "created_at": fmt_z(im.created),
        "updated_at": fmt_z(im.created),
        "self": format!("/v2/images/{}", im.id),
        "file": format!("/v2/images/{}/file", im.id),
        "schema": "/v2/schemas/image",
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in &im.properties {
            o.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    v
}

fn not_found(msg: &str) -> Response {
    Response::text(404, &format!("404 Not Found\n\n{msg}\n\n   "))
}

pub fn handle(w: &mut World, req: &Request, now: f64, prefix: &str) -> Response {
    let origin = req.origin();
    let rest = req.path[prefix.len()..].trim_end_matches('/');
    if rest.is_empty() && req.method == "GET" {
        return Response::json(
            300,
            &json!({"versions": [{"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": format!("{origin}{prefix}/v2/")}]}]}),
        );
    }
    let owner = match req.header("x-auth-token") {
        None => return keystone::unauthorized(&origin),
        Some(t) if w.scenario.auth.mode == "noauth" => t.split_once(':').map(|(_, p)| p.to_string()).unwrap_or_default(),
        Some(t) => match keystone::check_token(w, t, now) {
            Some(tok) => tok.project_id.unwrap_or_default(),
            None => return keystone::unauthorized(&origin),
        },
    };
    let owner = if owner.is_empty() { w.scenario.auth.project_id.clone() } else { owner };
    match (req.method.as_str(), rest) {
        ("GET", "/v2/images") => list(w, req, &owner),
        ("GET", p) if p.starts_with("/v2/images/") && p.matches('/').count() == 3 => {
            let id = &p["/v2/images/".len()..];
            match w.images.iter().find(|i| i.id == id) {
                Some(im) => Response::json(200, &image_view(im, &owner)),
                None => not_found(&format!("No image found with ID {id}")),
            }
        }
        _ => not_found("The resource could not be found."),
    }
}

fn list(w: &World, req: &Request, owner: &str) -> Response {
    let tags = req.query_all("tag");
    let name = req.query_get("name");
    let visibility = req.query_get("visibility");
    let status = req.query_get("status");
    let limit = match req.query_get("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) => n.min(MAX_LIMIT),
        Some(Err(_)) => return Response::text(400, "400 Bad Request\n\nlimit param must be an integer\n\n   "),
    };
    let mut images: Vec<&Image> = w
        .images
        .iter()
        .filter(|i| tags.iter().all(|t| i.tags.iter().any(|x| x == t)))
        .filter(|i| name.is_none_or(|n| i.name == n))
        .filter(|i| visibility.is_none_or(|v| v == "all" || i.visibility == v))
        .filter(|_| status.is_none_or(|s| s == "active"))
        .collect();
    // Glance sorts by created_at desc, id desc by default.
    images.sort_by(|a, b| b.created.total_cmp(&a.created).then(b.id.cmp(&a.id)));
    if let Some(mk) = req.query_get("marker") {
        match images.iter().position(|i| i.id == mk) {
            Some(p) => {
                images.drain(..=p);
            }
            None => return Response::text(400, &format!("400 Bad Request\n\nmarker {mk} could not be found.\n\n   ")),
        }
    }
    let more = images.len() > limit;
    images.truncate(limit);
    let mut out = json!({
        "images": images.iter().map(|i| image_view(i, owner)).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if more {
        if let Some(last) = images.last() {
            let mut params: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k != "marker")
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
            params.push(format!("marker={}", last.id));
            out["next"] = json!(format!("/v2/images?{}", params.join("&")));
        }
    }
    Response::json(200, &out)
}
