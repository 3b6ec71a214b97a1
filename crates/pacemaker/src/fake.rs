//! An in-memory [`Cluster`] for the domain tests: attributes, fencing history, resource
//! parameters in the CIB, a call log, and injectable failures.

use crate::{Cluster, FenceEvent, FenceState, PcmkError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Default)]
struct State {
    /// (attribute, host) → value, plus insertion order for `query_all`.
    attrs: BTreeMap<(String, String), String>,
    order: Vec<(String, String)>,
    history: BTreeMap<String, Vec<FenceEvent>>,
    history_unavailable: bool,
    writes: Vec<(String, String, String)>,
    fail_updates: u32,
    fail_queries: u32,
    /// (resource, parameter) → value, as `crm_resource --get-parameter` would read it.
    params: BTreeMap<(String, String), String>,
    /// Resources the CIB knows (any whose parameter was ever set).
    resources: std::collections::BTreeSet<String>,
    cib_unreachable: bool,
    param_reads: Vec<(String, String)>,
}

/// A cluster that lives in memory.
#[derive(Debug)]
pub struct FakeCluster {
    node: String,
    state: Mutex<State>,
}

impl FakeCluster {
    /// A cluster whose local node is `node`.
    pub fn new(node: &str) -> Self {
        FakeCluster { node: node.to_string(), state: Mutex::new(State::default()) }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets an attribute directly (not recorded as an agent write).
    pub fn set(&self, name: &str, host: &str, value: &str) {
        let mut s = self.st();
        let key = (name.to_string(), host.to_string());
        if !s.attrs.contains_key(&key) {
            s.order.push(key.clone());
        }
        s.attrs.insert(key, value.to_string());
    }

    /// The current value of an attribute.
    pub fn get(&self, name: &str, host: &str) -> Option<String> {
        self.st().attrs.get(&(name.to_string(), host.to_string())).cloned()
    }

    /// Every write the agents made, in order: (attribute, host, value).
    pub fn writes(&self) -> Vec<(String, String, String)> {
        self.st().writes.clone()
    }

    /// Records a successful fencing of `node` completed at `epoch`.
    pub fn fenced(&self, node: &str, epoch: i64) {
        self.st().history.entry(node.to_string()).or_default().push(FenceEvent {
            target: node.to_string(),
            action: "reboot".into(),
            state: FenceState::Success,
            completed: None,
            completed_epoch: Some(epoch),
            delegate: None,
        });
    }

    /// Adds an arbitrary history event.
    pub fn history_event(&self, ev: FenceEvent) {
        self.st().history.entry(ev.target.clone()).or_default().push(ev);
    }

    /// Makes the fencing history unreadable (as on a remote node).
    pub fn history_unavailable(&self) {
        self.st().history_unavailable = true;
    }

    /// The next `n` updates fail.
    pub fn fail_updates(&self, n: u32) {
        self.st().fail_updates = n;
    }

    /// The next `n` queries fail.
    pub fn fail_queries(&self, n: u32) {
        self.st().fail_queries = n;
    }

    /// Sets parameter `name` of `resource` in the CIB (`None` removes it, as
    /// `pcs resource update R name=` does); the resource exists from then on.
    pub fn set_resource_param(&self, resource: &str, name: &str, value: Option<&str>) {
        let key = (resource.to_string(), name.to_string());
        let mut s = self.st();
        s.resources.insert(resource.to_string());
        match value {
            Some(v) => s.params.insert(key, v.to_string()),
            None => s.params.remove(&key),
        };
    }

    /// Makes every resource parameter read fail (`true`), as with the cluster stopped, or
    /// readable again (`false`).
    pub fn cib_unreachable(&self, unreachable: bool) {
        self.st().cib_unreachable = unreachable;
    }

    /// Every resource parameter read, in order: (resource, parameter).
    pub fn param_reads(&self) -> Vec<(String, String)> {
        self.st().param_reads.clone()
    }
}

fn injected(program: &str) -> PcmkError {
    PcmkError::Failed { program: program.into(), code: Some(1), stderr: "injected failure".into() }
}

impl Cluster for FakeCluster {
    fn attr_query(&self, name: &str, host: &str, _d: Instant) -> Result<Option<String>, PcmkError> {
        let mut s = self.st();
        if s.fail_queries > 0 {
            s.fail_queries -= 1;
            return Err(injected("attrd_updater"));
        }
        Ok(s.attrs.get(&(name.to_string(), host.to_string())).cloned())
    }

    fn attr_query_all(&self, name: &str, _d: Instant) -> Result<Vec<(String, String)>, PcmkError> {
        let mut s = self.st();
        if s.fail_queries > 0 {
            s.fail_queries -= 1;
            return Err(injected("attrd_updater"));
        }
        Ok(s.order
            .iter()
            .filter(|(n, _)| n == name)
            .map(|k| (k.1.clone(), s.attrs.get(k).cloned().unwrap_or_default()))
            .collect())
    }

    fn attr_update(&self, name: &str, host: &str, value: &str, _d: Instant) -> Result<(), PcmkError> {
        {
            let mut s = self.st();
            if s.fail_updates > 0 {
                s.fail_updates -= 1;
                return Err(injected("attrd_updater"));
            }
            s.writes.push((name.into(), host.into(), value.into()));
        }
        self.set(name, host, value);
        Ok(())
    }

    fn local_node(&self, _d: Instant) -> Result<String, PcmkError> {
        Ok(self.node.clone())
    }

    fn fence_history(&self, node: &str, _d: Instant) -> Result<Option<Vec<FenceEvent>>, PcmkError> {
        let s = self.st();
        if s.history_unavailable {
            return Ok(None);
        }
        Ok(Some(s.history.get(node).cloned().unwrap_or_default()))
    }

    fn resource_param(&self, resource: &str, name: &str, _d: Instant) -> Result<Option<String>, PcmkError> {
        let mut s = self.st();
        s.param_reads.push((resource.to_string(), name.to_string()));
        if s.cib_unreachable {
            return Err(PcmkError::Failed {
                program: "crm_resource".into(),
                code: Some(102),
                stderr: "crm_resource: Could not connect to the CIB: Transport endpoint is not connected".into(),
            });
        }
        if !s.resources.contains(resource) {
            return Err(PcmkError::Failed {
                program: "crm_resource".into(),
                code: Some(105),
                stderr: format!("crm_resource: Resource '{resource}' not found"),
            });
        }
        Ok(s.params.get(&(resource.to_string(), name.to_string())).filter(|v| !v.is_empty()).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_behaves_like_attrd() {
        let c = FakeCluster::new("ctl0");
        let d = Instant::now();
        assert_eq!(c.attr_query("evacuate", "h", d), Ok(None));
        c.attr_update("evacuate", "h2", "yes", d).unwrap();
        c.attr_update("evacuate", "h1", "yes", d).unwrap();
        c.attr_update("evacuate", "h2", "no", d).unwrap();
        assert_eq!(
            c.attr_query_all("evacuate", d).unwrap(),
            vec![("h2".into(), "no".into()), ("h1".into(), "yes".into())]
        );
        c.fail_updates(1);
        assert!(c.attr_update("evacuate", "h1", "no", d).is_err());
        assert_eq!(c.writes().len(), 3);
        assert_eq!(c.fence_history("compute-0", d).unwrap(), Some(vec![]));
    }

    #[test]
    fn fake_resource_params_read_like_crm_resource() {
        let c = FakeCluster::new("ctl0");
        let d = Instant::now();
        // A resource the CIB does not know is an error, not "unset".
        assert!(c.resource_param("nova-evacuate", "storm_max_share", d).is_err());
        c.set_resource_param("nova-evacuate", "auth_url", Some("http://k"));
        assert_eq!(c.resource_param("nova-evacuate", "storm_max_share", d), Ok(None));
        c.set_resource_param("nova-evacuate", "storm_max_share", Some("100"));
        assert_eq!(c.resource_param("nova-evacuate", "storm_max_share", d), Ok(Some("100".into())));
        c.set_resource_param("nova-evacuate", "storm_max_share", Some(""));
        assert_eq!(c.resource_param("nova-evacuate", "storm_max_share", d), Ok(None));
        c.cib_unreachable(true);
        let e = c.resource_param("nova-evacuate", "auth_url", d).unwrap_err();
        assert!(e.to_string().contains("Could not connect to the CIB"), "{e}");
        c.cib_unreachable(false);
        c.set_resource_param("nova-evacuate", "auth_url", None);
        assert_eq!(c.resource_param("nova-evacuate", "auth_url", d), Ok(None));
        assert_eq!(c.param_reads().len(), 6);
    }
}
