//! `iha-openstack`: the OpenStack client every instance-ha agent uses.
//!
//! * Keystone v3 authentication (password, application credential,
//!   pre-issued token), with a token cache shared across invocations
//!   ([`TokenCacheMode`]) so a warm agent makes no Keystone request at all.
//! * Endpoint selection from the catalog by service type, interface and
//!   region, or explicit overrides.
//! * Settings from agent parameters, `clouds.yaml` and `OS_*` variables,
//!   merged by precedence ([`ConnectionOptions::resolve`]).
//! * TLS with rustls and the ring provider: system CAs, a `cacert` bundle,
//!   a client certificate, and `insecure` only when asked.
//! * Nova microversion negotiation per call, and the Nova/Glance calls the
//!   agents need, behind the [`ComputeApi`] trait.
//! * Typed errors ([`Error`]), retries bounded by a [`Deadline`], and no
//!   secret ever in a log line, an error or a `Debug` output.
//!
//! Building a client from agent parameters:
//!
//! ```no_run
//! use iha_openstack::{AuthParams, Client, ComputeApi, ConnectionOptions, Deadline, ServiceQuery};
//! use std::time::Duration;
//!
//! let params = AuthParams {
//!     auth_url: Some("http://keystone:5000/v3".into()),
//!     username: Some("admin".into()),
//!     password: Some("secret".into()),
//!     project_name: Some("admin".into()),
//!     interface: Some("internalURL".into()),
//!     ..Default::default()
//! };
//! let opts = ConnectionOptions::from_process_env(params)?;
//! let nova = Client::new(opts).with_deadline(Deadline::after(Duration::from_secs(50)));
//! let services = nova.list_services(&ServiceQuery { binary: Some("nova-compute".into()), host: None })?;
//! # Ok::<(), iha_openstack::Error>(())
//! ```

mod cache;
mod client;
mod compute;
mod config;
mod deadline;
mod error;
mod http;
mod keystone;
mod logging;
mod microversion;
mod models;
mod params;
mod secret;
mod timefmt;
mod url;

#[cfg(test)]
mod testutil;

pub use client::Client;
pub use compute::ComputeApi;
pub use config::{
    AuthConfig, AuthParams, CloudsSearch, ConnectionOptions, Credentials, DomainRef, Interface,
    RetryPolicy, Scope, TlsOptions, TokenCacheMode, UserRef, truthy,
};
pub use deadline::Deadline;
pub use error::{Error, Result};
pub use keystone::{CatalogEntry, Endpoint, find_endpoint};
pub use logging::{Level, LogSink, Logger};
pub use microversion::{Microversion, VersionRange};
pub use models::{
    Aggregate, EvacuateOutcome, EvacuateRequest, Flavor, Hypervisor, HypervisorService, Image,
    ImageQuery, InstanceAction, Migration, MigrationQuery, ResetState, Server, ServerFault,
    ServerFlavor, Service, ServiceQuery, ServiceRef,
};
pub use params::{auth_params_from_values, check_values, options_from_values};
pub use secret::Secret;
