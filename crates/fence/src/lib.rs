//! The fence-agent runtime.
//!
//! A fence agent of the suite is its description (an [`iha_meta::Agent`] using
//! [`iha_meta::common::FENCE_STANDARD`]) plus an implementation of [`Handlers`]; its `main` is
//! `iha_fence::run(&SPEC, &Agent)`. This crate owns everything the fencing protocol defines:
//! option parsing from stdin or getopt-style arguments ([`args`]), the action set, `delay`,
//! `password_script`, logging set-up, metadata/usage/man page output, and exit codes.

pub mod args;
mod runner;

pub use runner::{Context, Env, FenceError, Handlers, ListEntry, Power, ProcessEnv, run, run_io};
