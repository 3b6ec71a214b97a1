//! The scenario: everything the simulator starts from, as JSON (file,
//! `POST /sim/scenario`) or built in Rust.
//!
//! Every field has a default so a scenario can be as small as
//! `{"hosts": [{"name": "compute-0"}]}`. Defaults follow real deployments:
//! admin/secret in project admin, domain Default; Nova's
//! `service_down_time` 60 s and `report_interval` 10 s; `[api] max_limit`
//! 1000; max microversion 2.104 (Nova 34).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultSet;

fn d_true() -> bool {
    true
}
fn d_admin() -> String {
    "admin".into()
}
fn d_secret() -> String {
    "secret".into()
}
fn d_default_domain() -> String {
    "Default".into()
}
fn d_regions() -> Vec<Region> {
    vec![Region { name: "RegionOne".into(), prefix: String::new() }, Region { name: "RegionTwo".into(), prefix: "r2-".into() }]
}
fn d_down_time() -> f64 {
    60.0
}
fn d_report() -> f64 {
    10.0
}
fn d_rebuild() -> u64 {
    500
}
fn d_sched() -> u64 {
    20
}
fn d_max_mv() -> String {
    "2.104".into()
}
fn d_max_limit() -> usize {
    1000
}
fn d_lifetime() -> f64 {
    3600.0
}
fn d_active() -> String {
    "active".into()
}
fn d_flavor() -> String {
    "1".into()
}

/// Credentials and Keystone behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `keystone` (default) or `noauth` (Nova accepts `X-Auth-Token: user:project`,
    /// like the lab's noauth mode).
    #[serde(default = "d_keystone_mode")]
    pub mode: String,
    #[serde(default = "d_admin")]
    pub username: String,
    #[serde(default = "d_admin_user_id")]
    pub user_id: String,
    #[serde(default = "d_secret")]
    pub password: String,
    #[serde(default = "d_admin")]
    pub project: String,
    #[serde(default = "d_admin_project_id")]
    pub project_id: String,
    #[serde(default = "d_default_domain")]
    pub user_domain: String,
    #[serde(default = "d_default_domain")]
    pub project_domain: String,
    /// Token lifetime advertised in `expires_at` and enforced.
    #[serde(default = "d_lifetime")]
    pub token_lifetime_secs: f64,
    #[serde(default)]
    pub app_credentials: Vec<AppCredential>,
    /// Extra users (non-admin users get 403 from admin-only Nova calls).
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

fn d_keystone_mode() -> String {
    "keystone".into()
}
fn d_admin_user_id() -> String {
    "5f7c0b1c1f5d4a6e9f0e0a0b0c0d0e01".into()
}
fn d_admin_project_id() -> String {
    "0a1b2c3d4e5f40718293a4b5c6d7e8f9".into()
}

impl Default for AuthConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable_default())
    }
}

fn unreachable_default() -> AuthConfig {
    AuthConfig {
        mode: d_keystone_mode(),
        username: d_admin(),
        user_id: d_admin_user_id(),
        password: d_secret(),
        project: d_admin(),
        project_id: d_admin_project_id(),
        user_domain: d_default_domain(),
        project_domain: d_default_domain(),
        token_lifetime_secs: d_lifetime(),
        app_credentials: Vec::new(),
        users: Vec::new(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredential {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub secret: String,
    /// Owner user name; defaults to the admin user.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    pub password: String,
    #[serde(default = "d_default_domain")]
    pub domain: String,
    /// Project the user is a member of (scoping to another one fails).
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

/// A Keystone region. Its endpoints are `/{prefix}compute`,
/// `/{prefix}public-compute`, `/{prefix}admin-compute` (internal, public,
/// admin interfaces) and the same with `image`, so a test can tell from the
/// request log which endpoint a client picked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    /// `up` (default), `down` (nova-compute stopped, heartbeat long stale),
    /// or `stopped` (stopped now; goes down after service_down_time).
    #[serde(default)]
    pub state: Option<String>,
    /// `enabled` (default) or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub forced_down: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// `auto` (default): the simulator heartbeats for the host while it runs.
    /// `external`: only `POST /sim/hosts/{h}/heartbeat` (e.g. `nova-sim
    /// compute`) keeps it up.
    #[serde(default)]
    pub heartbeat: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    /// Defaults to the host name.
    #[serde(default)]
    pub hypervisor_hostname: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    /// Capacity: each limit is optional (absent = unlimited).
    #[serde(default)]
    pub max_instances: Option<u32>,
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub ram_mb: Option<u64>,
    /// The host's cell database is unreachable: from 2.69 its service and
    /// servers are listed minimally with status `UNKNOWN`, before that they
    /// are left out of lists.
    #[serde(default)]
    pub cell_down: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlavorConfig {
    pub id: String,
    pub name: String,
    #[serde(default = "d_one")]
    pub vcpus: u32,
    #[serde(default = "d_ram")]
    pub ram: u64,
    #[serde(default = "d_one_u64")]
    pub disk: u64,
    #[serde(default)]
    pub ephemeral: u64,
    #[serde(default)]
    pub swap: u64,
    #[serde(default = "d_true")]
    pub is_public: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

fn d_one() -> u32 {
    1
}
fn d_one_u64() -> u64 {
    1
}
fn d_ram() -> u64 {
    512
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom properties, shown as top-level keys by Glance v2.
    #[serde(default)]
    pub properties: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub visibility: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    pub name: String,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// The host the server runs on (placed directly, no scheduling).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "d_flavor")]
    pub flavor: String,
    /// Image id; `""` means boot from volume. Absent = the first image.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default = "d_active")]
    pub vm_state: String,
    #[serde(default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub locked_reason: Option<String>,
    /// Owning project id; defaults to the admin project.
    #[serde(default)]
    pub project_id: Option<String>,
}

/// The whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default = "d_regions")]
    pub regions: Vec<Region>,
    /// Nova `[DEFAULT] service_down_time`.
    #[serde(default = "d_down_time")]
    pub service_down_time_secs: f64,
    /// Nova `[DEFAULT] report_interval` (heartbeat period of `auto` hosts and
    /// the default for `nova-sim compute`).
    #[serde(default = "d_report")]
    pub report_interval_secs: f64,
    /// Time an evacuation spends rebuilding on the destination.
    #[serde(default = "d_rebuild")]
    pub rebuild_delay_ms: u64,
    /// Extra uniformly random delay in [0, jitter] per evacuation.
    #[serde(default)]
    pub rebuild_jitter_ms: u64,
    /// Time from the API accepting an evacuation to the scheduler's decision.
    #[serde(default = "d_sched")]
    pub schedule_delay_ms: u64,
    /// Time from `POST /servers` to ACTIVE.
    #[serde(default)]
    pub boot_delay_ms: u64,
    /// How long enabling/disabling a service takes when Nova still thinks
    /// it is up but its nova-compute is dead: Nova makes a synchronous RPC
    /// to the compute (COMPUTE_STATUS_DISABLED trait sync) that runs into
    /// `rpc_response_timeout` (60 s in production) before answering 200.
    /// Default 0 to keep tests fast; set it to catch disable-before-force-down.
    #[serde(default)]
    pub rpc_timeout_ms: u64,
    #[serde(default = "d_max_mv")]
    pub max_microversion: String,
    /// Nova `[api] max_limit`.
    #[serde(default = "d_max_limit")]
    pub max_limit: usize,
    /// Nova `[api] enable_instance_password` (adminPass in pre-2.14 evacuate).
    #[serde(default = "d_true")]
    pub enable_instance_password: bool,
    /// Seed for jitter, error rates and generated ids (absent = from time).
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub hosts: Vec<HostConfig>,
    /// Defaults to m1.tiny/small/medium (ids 1, 2, 3) when absent.
    #[serde(default)]
    pub flavors: Option<Vec<FlavorConfig>>,
    /// Defaults to one `cirros` image when absent.
    #[serde(default)]
    pub images: Option<Vec<ImageConfig>>,
    #[serde(default)]
    pub aggregates: Vec<AggregateConfig>,
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
    #[serde(default)]
    pub faults: FaultSet,
    /// Host of the non-compute services (nova-scheduler, nova-conductor).
    #[serde(default = "d_controller")]
    pub controller_host: String,
    /// Are instance files on shared storage? When set, a pre-2.14
    /// evacuation whose `onSharedStorage` disagrees fails on the destination
    /// (`InvalidSharedStorage`: migration `failed`, instance ERROR), as Nova's
    /// `_do_rebuild_instance` checks it against the driver. Absent = no check.
    #[serde(default)]
    pub shared_storage: Option<bool>,
}

fn d_controller() -> String {
    "controller-0".into()
}

impl Default for Scenario {
    fn default() -> Self {
        serde_json::from_str("{}").expect("the empty scenario deserializes")
    }
}

impl Scenario {
    /// `n` up, enabled compute hosts `compute-0..n-1`, default flavors and
    /// image, fast timings for tests (rebuild 50 ms).
    pub fn with_hosts(n: usize) -> Self {
        Scenario {
            rebuild_delay_ms: 50,
            schedule_delay_ms: 5,
            hosts: (0..n).map(|i| HostConfig { name: format!("compute-{i}"), ..Default::default() }).collect(),
            ..Scenario::default()
        }
    }

    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// Adds `count` servers named `{prefix}-{i}` on `host`.
    pub fn add_servers(&mut self, host: &str, prefix: &str, count: usize) -> &mut Self {
        for i in 0..count {
            self.servers.push(ServerConfig {
                id: None,
                name: format!("{prefix}-{i}"),
                host: Some(host.to_string()),
                flavor: d_flavor(),
                image: None,
                vm_state: d_active(),
                task_state: None,
                metadata: BTreeMap::new(),
                tags: Vec::new(),
                locked: false,
                locked_reason: None,
                project_id: None,
            });
        }
        self
    }
}

pub fn default_flavors() -> Vec<FlavorConfig> {
    let f = |id: &str, name: &str, vcpus: u32, ram: u64, disk: u64| FlavorConfig {
        id: id.into(),
        name: name.into(),
        vcpus,
        ram,
        disk,
        ephemeral: 0,
        swap: 0,
        is_public: true,
        description: None,
        extra_specs: BTreeMap::new(),
    };
    vec![f("1", "m1.tiny", 1, 512, 1), f("2", "m1.small", 1, 2048, 20), f("3", "m1.medium", 2, 4096, 40)]
}

pub fn default_images() -> Vec<ImageConfig> {
    vec![ImageConfig {
        id: "70a599e0-31e7-49b7-b260-868f441e862b".into(),
        name: "cirros".into(),
        tags: Vec::new(),
        properties: BTreeMap::new(),
        visibility: None,
    }]
}

/// A scenario that uses every field (`nova-sim example-scenario`).
pub fn example() -> Scenario {
    let mut s = Scenario::with_hosts(3);
    s.seed = Some(42);
    s.rebuild_delay_ms = 500;
    s.rebuild_jitter_ms = 200;
    s.schedule_delay_ms = 20;
    s.hosts[0].max_instances = Some(20);
    s.hosts[1].vcpus = Some(16);
    s.hosts[1].ram_mb = Some(65536);
    s.hosts[2].heartbeat = Some("external".into());
    s.auth.app_credentials.push(AppCredential { id: "ac-ha".into(), name: Some("instance-ha".into()), secret: "s3cret".into(), user: None });
    let mut flavors = default_flavors();
    flavors[0].extra_specs.insert("evacuable".into(), "true".into());
    s.flavors = Some(flavors);
    let mut images = default_images();
    images[0].tags.push("evacuable".into());
    s.images = Some(images);
    s.aggregates.push(AggregateConfig {
        name: "ha".into(),
        availability_zone: None,
        hosts: vec!["compute-0".into(), "compute-1".into()],
        metadata: [("evacuable".to_string(), "true".to_string())].into(),
    });
    s.add_servers("compute-0", "vm", 3);
    s.servers[1].vm_state = "stopped".into();
    s.servers[2].image = Some(String::new());
    s.faults.rules.push(crate::faults::FaultRule {
        id: Some("slow-nova".into()),
        service: Some("nova".into()),
        latency: Some(crate::faults::Latency { uniform_ms: Some([50, 200]), ..Default::default() }),
        ..Default::default()
    });
    s.faults.evacuations.push(crate::faults::EvacuationFault {
        server: Some("vm-0".into()),
        host: None,
        times: 1,
        kind: "no_valid_host".into(),
        status: None,
        fired: 0,
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario() {
        let s = Scenario::from_json(r#"{"hosts":[{"name":"c0","max_instances":2}]}"#).unwrap();
        assert_eq!(s.hosts[0].max_instances, Some(2));
        assert_eq!(s.auth.password, "secret");
        assert_eq!(s.regions.len(), 2);
        assert!(Scenario::from_json(r#"{"bogus":1}"#).is_err());
    }

    #[test]
    fn example_round_trips_and_loads() {
        let text = serde_json::to_string(&example()).unwrap();
        let s = Scenario::from_json(&text).unwrap();
        crate::world::World::new(s).unwrap();
    }
}
