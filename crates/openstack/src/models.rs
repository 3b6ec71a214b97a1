//! Typed request and response models for the Nova, Glance and Keystone
//! calls the agents make. Field names follow the APIs; fields that only
//! exist from some microversion on are `Option`s, and unknown fields are
//! ignored so newer clouds keep working.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::secret::Secret;

/// Accepts a JSON string or number and keeps it as a string: service and
/// hypervisor ids are integers before 2.53 and UUIDs after.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or number, got {other}"
        ))),
    }
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        _ => Ok(None),
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Metadata values are strings in Nova; tolerate numbers and booleans from
/// odd clients, and drop nulls.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(m.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

fn opt_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let m = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    Ok(m.map(|m| {
        m.into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Null => None,
                other => Some((k, other.to_string())),
            })
            .collect()
    }))
}

/// A Nova service (`GET /os-services`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Service {
    /// Integer before 2.53, UUID from 2.53; empty for down-cell records.
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: String,
    pub binary: String,
    pub host: String,
    #[serde(default)]
    pub zone: Option<String>,
    /// `enabled`, `disabled`, or `UNKNOWN` for a service in a down cell (2.69).
    #[serde(default)]
    pub status: String,
    /// `up` or `down`; absent for a down-cell record.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// From 2.11.
    #[serde(default)]
    pub forced_down: Option<bool>,
}

impl Service {
    /// A reference for the update calls.
    pub fn to_ref(&self) -> ServiceRef {
        ServiceRef {
            id: Some(self.id.clone()).filter(|i| !i.is_empty()),
            host: self.host.clone(),
            binary: self.binary.clone(),
        }
    }

    /// True when Nova reports it `up` (and so not forced down).
    pub fn is_up(&self) -> bool {
        self.state.as_deref() == Some("up")
    }
}

/// Identifies a service for force-down, disable and enable: by UUID when the
/// cloud speaks 2.53+, else by host and binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// The UUID (from a 2.53+ listing); looked up when missing or numeric.
    pub id: Option<String>,
    pub host: String,
    pub binary: String,
}

impl ServiceRef {
    /// The `nova-compute` service of `host`.
    pub fn compute(host: &str) -> ServiceRef {
        ServiceRef {
            id: None,
            host: host.to_owned(),
            binary: "nova-compute".to_owned(),
        }
    }
}

/// Filters for listing services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceQuery {
    pub binary: Option<String>,
    pub host: Option<String>,
}

/// The service a hypervisor belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HypervisorService {
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub id: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

/// A hypervisor (`GET /os-hypervisors/detail`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hypervisor {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub hypervisor_hostname: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub hypervisor_type: Option<String>,
    #[serde(default)]
    pub host_ip: Option<String>,
    #[serde(default)]
    pub service: Option<HypervisorService>,
}

/// The flavor of a server: a reference before 2.47, an embedded copy after.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerFlavor {
    /// Before 2.47.
    #[serde(default)]
    pub id: Option<String>,
    /// From 2.47.
    #[serde(default)]
    pub original_name: Option<String>,
    #[serde(default)]
    pub vcpus: Option<u64>,
    #[serde(default)]
    pub ram: Option<u64>,
    #[serde(default)]
    pub disk: Option<u64>,
    /// From 2.47, when policy shows them.
    #[serde(default, deserialize_with = "opt_string_map")]
    pub extra_specs: Option<BTreeMap<String, String>>,
}

/// The image of a server: `""` for boot-from-volume, else `{"id": …}`.
fn server_image<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Object(m)) => {
            Ok(m.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        }
        _ => Ok(None),
    }
}

/// A server (`GET /servers/detail`, `GET /servers/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `ACTIVE`, `SHUTOFF`, `ERROR`, `REBUILD`...
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(rename = "OS-EXT-SRV-ATTR:host", default)]
    pub host: Option<String>,
    #[serde(rename = "OS-EXT-SRV-ATTR:hypervisor_hostname", default)]
    pub hypervisor_hostname: Option<String>,
    #[serde(rename = "OS-EXT-STS:vm_state", default)]
    pub vm_state: Option<String>,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    pub task_state: Option<String>,
    #[serde(rename = "OS-EXT-STS:power_state", default)]
    pub power_state: Option<i64>,
    #[serde(rename = "OS-EXT-AZ:availability_zone", default)]
    pub availability_zone: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub metadata: BTreeMap<String, String>,
    /// From 2.26.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// From 2.9.
    #[serde(default)]
    pub locked: Option<bool>,
    /// From 2.73.
    #[serde(default)]
    pub locked_reason: Option<String>,
    #[serde(default)]
    pub flavor: ServerFlavor,
    /// Image id; `None` for boot-from-volume.
    #[serde(default, deserialize_with = "server_image")]
    pub image: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
    /// The last fault, shown for servers in ERROR (e.g. "No valid host was found" after a
    /// failed evacuation).
    #[serde(default)]
    pub fault: Option<ServerFault>,
}

/// A server's fault record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerFault {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

/// A flavor (`GET /flavors/detail`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vcpus: u64,
    #[serde(default)]
    pub ram: u64,
    #[serde(default)]
    pub disk: u64,
    #[serde(rename = "os-flavor-access:is_public", default)]
    pub is_public: Option<bool>,
    /// In the body from 2.61.
    #[serde(default, deserialize_with = "opt_string_map")]
    pub extra_specs: Option<BTreeMap<String, String>>,
}

/// A Glance v2 image. Custom properties are top-level keys in Glance's
/// answer; they are collected in `properties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl Image {
    /// A property as a string (`"true"` for a JSON `true`).
    pub fn property(&self, key: &str) -> Option<String> {
        match self.properties.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// Filters for listing images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    /// Every tag must be present (AND).
    pub tags: Vec<String>,
    /// Other `name=value` filters passed to Glance as they are.
    pub filters: Vec<(String, String)>,
    /// Page size; Glance's default when `None`.
    pub page_size: Option<u32>,
}

/// A host aggregate (`GET /os-aggregates`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Aggregate {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// From 2.41.
    #[serde(default)]
    pub uuid: Option<String>,
    pub name: String,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub metadata: BTreeMap<String, String>,
}

/// A migration record (`GET /os-migrations`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Migration {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// From 2.59.
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub source_compute: Option<String>,
    #[serde(default)]
    pub source_node: Option<String>,
    #[serde(default)]
    pub dest_compute: Option<String>,
    #[serde(default)]
    pub dest_host: Option<String>,
    #[serde(default)]
    pub dest_node: Option<String>,
    /// `accepted`, `pre-migrating`, `done`, `completed`, `error`, `failed`...
    #[serde(default)]
    pub status: String,
    /// From 2.23: `evacuation`, `migration`, `resize`, `live-migration`.
    #[serde(default)]
    pub migration_type: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// Filters for `GET /os-migrations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationQuery {
    pub host: Option<String>,
    pub source_compute: Option<String>,
    pub instance_uuid: Option<String>,
    pub migration_type: Option<String>,
    pub status: Option<String>,
    /// ISO 8601 time: only records changed since then.
    pub changes_since: Option<String>,
}

/// An instance action (`GET /servers/{id}/os-instance-actions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstanceAction {
    pub action: String,
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// What to ask of an evacuation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EvacuateRequest {
    /// Target host; `None` lets the scheduler choose.
    pub host: Option<String>,
    /// Bypass the scheduler's check of `host` (only meaningful with a host;
    /// sent only at 2.29–2.67, implied by a host before 2.29).
    pub force: bool,
    /// Only for clouds older than 2.14, which cannot detect shared storage.
    pub on_shared_storage: Option<bool>,
    /// Admin password for the rebuilt server.
    pub admin_pass: Option<Secret>,
    /// Ask for the 2.95 behaviour (the server ends SHUTOFF on the new host).
    /// Off by default: before 2.95 servers come back in their prior state.
    pub stop_after: bool,
}

impl fmt::Debug for EvacuateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvacuateRequest")
            .field("host", &self.host)
            .field("force", &self.force)
            .field("on_shared_storage", &self.on_shared_storage)
            .field("admin_pass", &self.admin_pass.as_ref().map(|_| "***"))
            .field("stop_after", &self.stop_after)
            .finish()
    }
}

/// What an evacuation call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvacuateOutcome {
    /// The microversion the request was sent with.
    pub microversion: crate::Microversion,
    /// Returned before 2.14 when Nova generates passwords.
    pub admin_pass: Option<Secret>,
}

/// `os-resetState` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    Active,
    Error,
}

// Envelopes.

#[derive(Deserialize)]
pub(crate) struct Link {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub rel: String,
}

#[derive(Deserialize)]
pub(crate) struct ServicesBody {
    pub services: Vec<Service>,
}

#[derive(Deserialize)]
pub(crate) struct HypervisorsBody {
    pub hypervisors: Vec<Hypervisor>,
    #[serde(default)]
    pub hypervisors_links: Vec<Link>,
}

#[derive(Deserialize)]
pub(crate) struct ServersBody {
    pub servers: Vec<Server>,
    #[serde(default)]
    pub servers_links: Vec<Link>,
}

#[derive(Deserialize)]
pub(crate) struct ServerBody {
    pub server: Server,
}

#[derive(Deserialize)]
pub(crate) struct FlavorsBody {
    pub flavors: Vec<Flavor>,
    #[serde(default)]
    pub flavors_links: Vec<Link>,
}

#[derive(Deserialize)]
pub(crate) struct ExtraSpecsBody {
    #[serde(default, deserialize_with = "string_map")]
    pub extra_specs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub(crate) struct ImagesBody {
    pub images: Vec<Image>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AggregatesBody {
    pub aggregates: Vec<Aggregate>,
}

#[derive(Deserialize)]
pub(crate) struct MigrationsBody {
    pub migrations: Vec<Migration>,
    #[serde(default)]
    pub migrations_links: Vec<Link>,
}

#[derive(Deserialize)]
pub(crate) struct MetadataBody {
    #[serde(default, deserialize_with = "string_map")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub(crate) struct TagsBody {
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct InstanceActionsBody {
    #[serde(rename = "instanceActions", default)]
    pub instance_actions: Vec<InstanceAction>,
}

#[derive(Deserialize)]
pub(crate) struct AdminPassBody {
    #[serde(rename = "adminPass", default)]
    pub admin_pass: Option<String>,
}

/// The `marker` of a `rel=next` link, if there is one.
pub(crate) fn next_marker(links: &[Link]) -> Option<String> {
    let href = &links.iter().find(|l| l.rel == "next")?.href;
    query_param(href, "marker")
}

/// Whether there is a next page and its marker: `Some(marker)` with a `rel=next` link (an empty
/// marker when the link names none, so the caller continues from the last item it got), `None`
/// on the last page.
pub(crate) fn next_page(links: &[Link]) -> Option<String> {
    links.iter().any(|l| l.rel == "next").then(|| next_marker(links).unwrap_or_default())
}

/// One query parameter of a URL, percent-decoded.
pub(crate) fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or(q);
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| crate::url::decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes follow nova's doc/api_samples (trimmed).
    #[test]
    fn services_across_microversions() {
        let v253 = r#"{"services": [{"id": "e81d66a4-ddd3-4aba-8a84-171d1cb4d339", "binary": "nova-compute",
            "disabled_reason": "test2", "host": "host1", "state": "up", "status": "disabled",
            "updated_at": "2012-10-29T13:42:05.000000", "forced_down": false, "zone": "nova"}]}"#;
        let s: ServicesBody = serde_json::from_str(v253).unwrap();
        assert_eq!(s.services[0].id, "e81d66a4-ddd3-4aba-8a84-171d1cb4d339");
        assert!(s.services[0].is_up());
        assert_eq!(
            s.services[0].to_ref().id.as_deref(),
            Some("e81d66a4-ddd3-4aba-8a84-171d1cb4d339")
        );
        let v211 = r#"{"services": [{"id": 2, "binary": "nova-compute", "disabled_reason": null, "host": "host1",
            "state": "down", "status": "enabled", "updated_at": null, "forced_down": true, "zone": "nova"}]}"#;
        let s: ServicesBody = serde_json::from_str(v211).unwrap();
        assert_eq!(s.services[0].id, "2");
        assert_eq!(s.services[0].forced_down, Some(true));
        // 2.69: a service in a down cell comes back minimal.
        let v269 =
            r#"{"services": [{"binary": "nova-compute", "host": "host1", "status": "UNKNOWN"}]}"#;
        let s: ServicesBody = serde_json::from_str(v269).unwrap();
        assert_eq!(s.services[0].status, "UNKNOWN");
        assert_eq!(s.services[0].state, None);
        assert_eq!(s.services[0].to_ref().id, None);
    }

    #[test]
    fn server_with_embedded_flavor() {
        let body = r#"{"servers": [{"OS-EXT-AZ:availability_zone": "nova", "OS-EXT-SRV-ATTR:host": "compute",
            "OS-EXT-SRV-ATTR:hypervisor_hostname": "fake-mini", "OS-EXT-STS:power_state": 1,
            "OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "active", "created": "2019-04-23T15:19:14Z",
            "flavor": {"disk": 1, "ephemeral": 0, "extra_specs": {"evacuable": "true", "hw:numa_nodes": 1},
                       "original_name": "m1.tiny", "ram": 512, "swap": 0, "vcpus": 1},
            "id": "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9",
            "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []},
            "locked": true, "locked_reason": "I don't want to work", "metadata": {"My Server Name": "Apache1"},
            "name": "new-server-test", "status": "ACTIVE", "tags": [], "tenant_id": "6f70", "user_id": "fake",
            "addresses": {}, "links": []},
           {"id": "bfv", "status": "SHUTOFF", "image": "", "flavor": {"id": "1", "links": []}, "metadata": null}],
           "servers_links": [{"href": "http://x/v2.1/servers/detail?all_tenants=1&limit=2&marker=bfv", "rel": "next"}]}"#;
        let b: ServersBody = serde_json::from_str(body).unwrap();
        let s = &b.servers[0];
        assert_eq!(s.host.as_deref(), Some("compute"));
        assert_eq!(s.vm_state.as_deref(), Some("active"));
        assert_eq!(s.task_state, None);
        assert_eq!(s.flavor.original_name.as_deref(), Some("m1.tiny"));
        let specs = s.flavor.extra_specs.as_ref().unwrap();
        assert_eq!(specs.get("evacuable").map(String::as_str), Some("true"));
        assert_eq!(specs.get("hw:numa_nodes").map(String::as_str), Some("1"));
        assert_eq!(
            s.image.as_deref(),
            Some("70a599e0-31e7-49b7-b260-868f441e862b")
        );
        assert_eq!(s.locked_reason.as_deref(), Some("I don't want to work"));
        assert_eq!(b.servers[1].image, None);
        assert_eq!(b.servers[1].flavor.id.as_deref(), Some("1"));
        assert!(b.servers[1].metadata.is_empty());
        assert_eq!(next_marker(&b.servers_links).as_deref(), Some("bfv"));
    }

    #[test]
    fn migrations_hypervisors_aggregates_images() {
        let m = r#"{"migrations": [{"created_at": "2016-06-23T14:42:02.000000", "dest_compute": "compute20",
            "dest_host": "5.6.7.8", "dest_node": "node20", "id": 4, "instance_uuid": "9128d044",
            "new_instance_type_id": 6, "old_instance_type_id": 5, "source_compute": "compute10",
            "source_node": "node10", "status": "done", "migration_type": "evacuation",
            "updated_at": "2016-06-23T14:42:02.000000", "uuid": "42341d4b", "user_id": "u", "project_id": "p"}],
            "migrations_links": [{"href": "http://openstack.example.com/v2.1/6f70/os-migrations?limit=1&marker=42341d4b", "rel": "next"}]}"#;
        let b: MigrationsBody = serde_json::from_str(m).unwrap();
        assert_eq!(b.migrations[0].id, "4");
        assert_eq!(
            b.migrations[0].migration_type.as_deref(),
            Some("evacuation")
        );
        assert_eq!(
            next_marker(&b.migrations_links).as_deref(),
            Some("42341d4b")
        );
        let h = r#"{"hypervisors": [{"cpu_info": {"arch": "x86_64"}, "status": "enabled", "state": "up",
            "host_ip": "1.1.1.1", "hypervisor_hostname": "fake-mini", "hypervisor_type": "fake",
            "id": "1bb62a04-c576-402c-8147-9e89757a09e3",
            "service": {"host": "host1", "id": "62f62f6e-a713-4cbe-87d3-3ecf8a1e0f8d", "disabled_reason": null}},
            {"id": 7, "hypervisor_hostname": "old", "service": {"host": "h", "id": 3}}]}"#;
        let b: HypervisorsBody = serde_json::from_str(h).unwrap();
        assert_eq!(
            b.hypervisors[0].service.as_ref().unwrap().host.as_deref(),
            Some("host1")
        );
        assert_eq!(b.hypervisors[1].id, "7");
        assert_eq!(
            b.hypervisors[1].service.as_ref().unwrap().id.as_deref(),
            Some("3")
        );
        let a = r#"{"aggregates": [{"availability_zone": null, "created_at": "2016-12-27T23:47:30.563527",
            "deleted": false, "deleted_at": null, "hosts": ["compute"], "id": 1, "metadata": {"evacuable": "true"},
            "name": "name", "updated_at": null, "uuid": "6ba28ba7-f29b-45cc-a30b-6e3a40c2fb14"}]}"#;
        let b: AggregatesBody = serde_json::from_str(a).unwrap();
        assert_eq!(b.aggregates[0].id, "1");
        assert_eq!(b.aggregates[0].hosts, vec!["compute".to_owned()]);
        assert_eq!(
            b.aggregates[0]
                .metadata
                .get("evacuable")
                .map(String::as_str),
            Some("true")
        );
        let i = r#"{"images": [{"status": "active", "name": "cirros", "tags": ["evacuable"], "container_format": "bare",
            "visibility": "public", "id": "1bea47ed", "evacuable": "true", "hw_disk_bus": "scsi", "min_ram": 0,
            "self": "/v2/images/1bea47ed"}], "first": "/v2/images?tag=evacuable",
            "next": "/v2/images?tag=evacuable&marker=1bea47ed", "schema": "/v2/schemas/images"}"#;
        let b: ImagesBody = serde_json::from_str(i).unwrap();
        let img = &b.images[0];
        assert_eq!(img.tags, vec!["evacuable".to_owned()]);
        assert_eq!(img.property("evacuable").as_deref(), Some("true"));
        assert_eq!(img.property("min_ram").as_deref(), Some("0"));
        assert_eq!(
            query_param(b.next.as_deref().unwrap(), "marker").as_deref(),
            Some("1bea47ed")
        );
        let f = r#"{"flavors": [{"OS-FLV-DISABLED:disabled": false, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 0,
            "os-flavor-access:is_public": true, "id": "1", "links": [], "name": "m1.tiny", "ram": 512, "swap": "",
            "vcpus": 1, "rxtx_factor": 1.0, "description": null, "extra_specs": {"hw:cpu_policy": "shared"}}]}"#;
        let b: FlavorsBody = serde_json::from_str(f).unwrap();
        assert_eq!(b.flavors[0].is_public, Some(true));
        assert_eq!(b.flavors[0].extra_specs.as_ref().unwrap().len(), 1);
        let e: ExtraSpecsBody =
            serde_json::from_str(r#"{"extra_specs": {"evacuable": "true"}}"#).unwrap();
        assert_eq!(e.extra_specs.len(), 1);
    }

    #[test]
    fn evacuate_request_debug_hides_password() {
        let r = EvacuateRequest {
            admin_pass: Some(Secret::new("MySecretPass")),
            ..Default::default()
        };
        assert!(!format!("{r:?}").contains("MySecretPass"));
    }
}
