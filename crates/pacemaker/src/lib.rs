//! The Pacemaker side of the agents: node attributes, the local node name, fencing history and
//! a resource's parameters as the CIB holds them now.
//!
//! Everything goes through the [`Cluster`] trait so that the domain code (`iha-core`) is tested
//! against [`fake::FakeCluster`]; [`Tools`] implements it with Pacemaker's own command-line tools,
//! run with argument vectors (never a shell: host names and attribute values are
//! attacker-influenced input), `LC_ALL=C`, and a deadline after which the child is killed.
//!
//! The shared state of Instance HA is the private attrd attribute `evacuate`, keyed by the Nova
//! host name (REFERENCE.md §1.2): private (`-p`) so it never reaches the CIB, and keyed by the
//! Nova name so the purge of a fenced remote node's own attributes does not erase it.

mod attrd;
mod exec;
pub mod fake;
mod history;

pub use attrd::{parse_attrd_lines, unescape};
pub use exec::{PcmkError, run_tool, run_tool_unsetting};
pub use history::{FenceEvent, FenceState, parse_history_xml};

use std::time::Instant;

/// The attribute that carries the evacuation state of each compute host.
pub const EVACUATE_ATTR: &str = "evacuate";

/// The Pacemaker operations the agents need.
pub trait Cluster: Send + Sync {
    /// The value of attribute `name` for `host`; `None` when it does not exist.
    fn attr_query(&self, name: &str, host: &str, deadline: Instant) -> Result<Option<String>, PcmkError>;
    /// Every host's value of attribute `name`, in attrd's order.
    fn attr_query_all(&self, name: &str, deadline: Instant) -> Result<Vec<(String, String)>, PcmkError>;
    /// Sets the private attribute `name` of `host` to `value`.
    fn attr_update(&self, name: &str, host: &str, value: &str, deadline: Instant) -> Result<(), PcmkError>;
    /// The name of the node this process runs on (`crm_node -n`).
    fn local_node(&self, deadline: Instant) -> Result<String, PcmkError>;
    /// The fencing history of `node`; `Ok(None)` when the history cannot be read here (no
    /// fencer reachable, e.g. on a pacemaker_remote node), which callers treat as "unknown".
    fn fence_history(&self, node: &str, deadline: Instant) -> Result<Option<Vec<FenceEvent>>, PcmkError>;
    /// The instance attribute `name` of the primitive `resource` as the CIB holds it *now*
    /// (`crm_resource --resource R --get-parameter NAME`); `Ok(None)` when it is not set or set
    /// to the empty string. A running resource sees the values it was started with; Pacemaker
    /// applies a change only by restarting it, in a transition that waits for any fencing in
    /// flight, so this is how an agent honours an operator's change at once. `Err` when the
    /// CIB cannot be asked (cluster not running, no such resource, tool missing).
    fn resource_param(&self, resource: &str, name: &str, deadline: Instant) -> Result<Option<String>, PcmkError>;
}

/// The primitive's id for a resource instance name: `OCF_RESOURCE_INSTANCE` of a clone instance
/// is `<primitive>:<n>` (anonymous clones), which the CIB tools do not know.
pub fn primitive_id(instance: &str) -> &str {
    match instance.rsplit_once(':') {
        Some((id, n)) if !id.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => instance,
    }
}

/// [`Cluster`] implemented with `attrd_updater`, `crm_node`, `stonith_admin` and `crm_resource`.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// Directory to find the tools in; `None` searches `PATH` (as Pacemaker's agents do).
    pub dir: Option<std::path::PathBuf>,
}

impl Tools {
    fn prog(&self, name: &str) -> std::path::PathBuf {
        self.dir.as_ref().map_or_else(|| name.into(), |d| d.join(name))
    }
}

impl Cluster for Tools {
    fn attr_query(&self, name: &str, host: &str, deadline: Instant) -> Result<Option<String>, PcmkError> {
        let out = run_tool(&self.prog("attrd_updater"), &["-p", "-n", name, "-Q", "-N", host], deadline);
        match out {
            Ok(text) => Ok(parse_attrd_lines(&text).into_iter().find(|(h, _)| h == host).map(|(_, v)| v)),
            Err(e) if e.is_absent_attribute() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn attr_query_all(&self, name: &str, deadline: Instant) -> Result<Vec<(String, String)>, PcmkError> {
        // Under pacemaker-execd, OCF_RESKEY_CRM_meta_on_node is set and attrd_updater takes it as
        // the node to query even with -A: it would answer for this node only (seen on the lab:
        // `host="ctl0" value=""` while compute-0 was marked yes), and nothing is ever evacuated.
        match run_tool_unsetting(
            &self.prog("attrd_updater"),
            &["-n", name, "-Q", "-A"],
            deadline,
            &["OCF_RESKEY_CRM_meta_on_node", "OCF_RESKEY_CRM_meta_on_node_uuid"],
        ) {
            Ok(text) => Ok(parse_attrd_lines(&text)),
            // "attribute does not exist": no host was ever marked (REFERENCE.md §5.5 filters it).
            Err(e) if e.is_absent_attribute() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn attr_update(&self, name: &str, host: &str, value: &str, deadline: Instant) -> Result<(), PcmkError> {
        run_tool(&self.prog("attrd_updater"), &["-p", "-n", name, "-U", value, "-N", host], deadline).map(|_| ())
    }

    fn local_node(&self, deadline: Instant) -> Result<String, PcmkError> {
        let out = run_tool(&self.prog("crm_node"), &["-n"], deadline)?;
        let name = out.trim();
        if name.is_empty() {
            return Err(PcmkError::Parse("crm_node -n printed no node name".into()));
        }
        Ok(name.to_string())
    }

    fn fence_history(&self, node: &str, deadline: Instant) -> Result<Option<Vec<FenceEvent>>, PcmkError> {
        // --verbose: without it stonith_admin prints one event, not necessarily the latest.
        let arg = format!("--history={node}");
        match run_tool(&self.prog("stonith_admin"), &[&arg, "--output-as=xml", "--verbose"], deadline) {
            Ok(xml) => Ok(Some(parse_history_xml(&xml))),
            Err(PcmkError::NotInstalled(_)) => Ok(None),
            // No fencer to ask (a remote node, a stopped cluster): the history is unknown.
            Err(PcmkError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn resource_param(&self, resource: &str, name: &str, deadline: Instant) -> Result<Option<String>, PcmkError> {
        // Pacemaker 2.1.5, observed: set -> exit 0, the value alone on stdout; not set -> exit 0,
        // nothing on stdout, "Attribute 'NAME' not found for 'R'" on stderr; no such resource ->
        // 105 "No such object"; cluster down -> 102 "Could not connect to the CIB: Transport
        // endpoint is not connected". In text output the value is all stdout holds.
        let out = run_tool(&self.prog("crm_resource"), &["--resource", resource, "--get-parameter", name], deadline)?;
        let value = out.trim();
        Ok((!value.is_empty()).then(|| value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_id_strips_a_clone_instance_number_only() {
        assert_eq!(primitive_id("nova-evacuate"), "nova-evacuate");
        assert_eq!(primitive_id("nova-evacuate:0"), "nova-evacuate");
        assert_eq!(primitive_id("nova-evacuate:12"), "nova-evacuate");
        assert_eq!(primitive_id("odd:name"), "odd:name");
        assert_eq!(primitive_id("trailing:"), "trailing:");
        assert_eq!(primitive_id(":3"), ":3");
    }
}
