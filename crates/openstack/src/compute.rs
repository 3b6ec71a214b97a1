//! The narrow interface the domain code (`iha-core`) programs against.
//!
//! [`ComputeApi`] lists exactly the Nova and Glance operations the agents
//! need, in terms of this crate's models and [`Error`]. [`crate::Client`]
//! implements it over HTTP; tests of the evacuation engine implement it
//! with in-memory fakes. It is object-safe (`&dyn ComputeApi`,
//! `Arc<dyn ComputeApi>`) and `Send + Sync` so one instance can serve a
//! pool of evacuation threads.
//!
//! Microversion choices are the implementation's business: callers state
//! intent (e.g. [`EvacuateRequest::stop_after`]) and get
//! [`Error::Unsupported`] when the cloud cannot do it.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::microversion::VersionRange;
use crate::models::{
    Aggregate, EvacuateOutcome, EvacuateRequest, Flavor, Hypervisor, Image, ImageQuery,
    InstanceAction, Migration, MigrationQuery, ResetState, Server, Service, ServiceQuery,
    ServiceRef,
};

#[allow(unused_imports)]
use crate::error::Error;

/// Nova and Glance, as the agents use them.
pub trait ComputeApi: Send + Sync {
    /// The compute microversions the cloud offers.
    fn api_versions(&self) -> Result<VersionRange>;

    /// `GET /os-services`, filtered.
    fn list_services(&self, query: &ServiceQuery) -> Result<Vec<Service>>;
    /// Sets or clears `forced_down` (needs 2.11).
    fn force_down(&self, service: &ServiceRef, forced_down: bool) -> Result<()>;
    /// Disables a service, with a reason when given.
    fn disable_service(&self, service: &ServiceRef, reason: Option<&str>) -> Result<()>;
    /// Enables a service.
    fn enable_service(&self, service: &ServiceRef) -> Result<()>;

    /// `GET /os-hypervisors/detail`, every page.
    fn list_hypervisors(&self) -> Result<Vec<Hypervisor>>;

    /// Every server on `host` of every project, every page.
    fn list_servers_on_host(&self, host: &str) -> Result<Vec<Server>>;
    /// Every server of every project whose record changed at or after `since` (ISO 8601, UTC),
    /// every page: Nova's `changes-since` filter. One listing in place of a read per server when
    /// many have just changed (a host's evacuations finishing). Nova also lists deleted servers
    /// here (status `DELETED`); callers read those one by one.
    fn list_servers_changed_since(&self, since: &str) -> Result<Vec<Server>>;
    /// One server.
    fn get_server(&self, id: &str) -> Result<Server>;
    /// A server's metadata.
    fn server_metadata(&self, id: &str) -> Result<BTreeMap<String, String>>;
    /// A server's tags (needs 2.26).
    fn server_tags(&self, id: &str) -> Result<Vec<String>>;
    /// A server's instance actions, newest first.
    fn server_actions(&self, id: &str) -> Result<Vec<InstanceAction>>;

    /// Every flavor, public and private.
    fn list_flavors(&self) -> Result<Vec<Flavor>>;
    /// A flavor's extra specs.
    fn flavor_extra_specs(&self, flavor_id: &str) -> Result<BTreeMap<String, String>>;

    /// Glance v2 images matching `query`, every page.
    fn list_images(&self, query: &ImageQuery) -> Result<Vec<Image>>;

    /// Every host aggregate with its hosts and metadata.
    fn list_aggregates(&self) -> Result<Vec<Aggregate>>;

    /// Evacuates one server. Never repeated on an unknown outcome:
    /// [`Error::OutcomeUnknown`] means "look at the server first".
    fn evacuate(&self, server_id: &str, request: &EvacuateRequest) -> Result<EvacuateOutcome>;
    /// Locks a server, with a reason from 2.73.
    fn lock_server(&self, server_id: &str, reason: Option<&str>) -> Result<()>;
    /// Unlocks a server.
    fn unlock_server(&self, server_id: &str) -> Result<()>;
    /// `os-resetState`.
    fn reset_state(&self, server_id: &str, state: ResetState) -> Result<()>;

    /// `GET /os-migrations`, filtered, every page.
    fn list_migrations(&self, query: &MigrationQuery) -> Result<Vec<Migration>>;
}
