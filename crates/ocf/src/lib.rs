//! The OCF resource-agent runtime.
//!
//! An OCF agent of the suite is its description (an [`iha_meta::Agent`]) plus an implementation
//! of [`ResourceAgent`]; its `main` is `iha_ocf::run(&SPEC, &Agent)`. This crate owns what the
//! OCF specification and Pacemaker define (REFERENCE.md §9):
//!
//! * the action from `argv[1]` (extra arguments ignored);
//! * parameters from `OCF_RESKEY_<name>` (every accepted spelling), defaults and typed values;
//! * `OCF_RESKEY_CRM_meta_timeout` (milliseconds) turned into a deadline with a safety margin, so
//!   an action fails with a reason before Pacemaker kills it;
//! * probes (`monitor` with `CRM_meta_interval=0`), `OCF_CHECK_LEVEL`, `HA_RSCTMP`;
//! * exit codes ([`Status`]) and an `ocf-exit-reason:` line on every failure;
//! * `meta-data` and `usage` from static data, working with nothing installed and no network;
//! * `validate-all` that really checks parameters (types, required, allowed values);
//! * logging (`HA_LOGFACILITY`, `HA_LOGFILE`, `HA_debug`), secrets redacted;
//! * a panic becomes `OCF_ERR_GENERIC` with a reason, never only a backtrace.

mod runner;

pub use runner::{Context, Env, OcfError, ProcessEnv, ResourceAgent, Running, Status, run, run_io};
