//! The Instance HA domain, against traits only.
//!
//! Nova is reached through `iha_openstack::ComputeApi` and Pacemaker through
//! `iha_pacemaker::Cluster`; nothing here builds an HTTP client or spawns a process, so every
//! rule is unit-tested with in-memory fakes. Modules:
//!
//! * `naming`: the one rule that maps Pacemaker node names, `pcmk_host_map` aliases, nova.conf
//!   and DNS domains to Nova host names (shared by every agent, REFERENCE.md O27);
//! * `unfence`: the compute-node side — wait until a host's evacuation is settled, then clear
//!   forced-down and enable the service (fence_compute `on`, nova-compute-wait, NovaCompute);
//! * `policy`, `engine`, `storm`: which instances to evacuate, the tracked parallel evacuation,
//!   and mass-failure protection (NovaEvacuate, fence_evacuate); `state`: the values of the
//!   `evacuate` attribute and the in-progress marker rule; `clock`: Unix and ISO 8601 times;
//! * `fake`: an in-memory Nova ([`fake::FakeNova`]) for the domain tests.

pub mod naming;
pub mod unfence;

pub mod clock;
pub mod engine;
pub mod fake;
mod fanout;
pub mod policy;
pub mod state;
pub mod storm;
