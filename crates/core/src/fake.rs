//! An in-memory Nova for the domain tests: services, servers, flavors, images, aggregates and
//! evacuation migrations, with Nova 34's evacuate rules and injectable faults.
//!
//! Evacuations progress when migrations are listed (one stage per listing: `accepted` →
//! `pre-migrating` → `done`), so tests drive time by polling, as the engine does, and need no
//! sleeps. Every call is counted by name ([`FakeNova::calls`]) and journaled in the order Nova
//! answered it ([`FakeNova::journal`]); [`FakeNova::hold_reads_until`] shows which reads are
//! issued together.

use iha_openstack::{
    Aggregate, ComputeApi, Error, EvacuateOutcome, EvacuateRequest, Flavor, Hypervisor, Image, ImageQuery,
    InstanceAction, Microversion, Migration, MigrationQuery, ResetState, Result, Server, Service, ServiceQuery,
    ServiceRef, VersionRange,
};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How an injected evacuation fault behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvacFault {
    /// The POST is refused synchronously with this status and message; nothing changes.
    Refuse(u16, String),
    /// Accepted, then the scheduler finds no host: migration `error`, instance ERROR with a fault.
    NoValidHost,
    /// Accepted, then the destination fails: migration `failed`, instance ERROR on the source.
    RebuildFailed,
    /// Accepted, then stuck in `pre-migrating` forever.
    Stuck,
    /// Carried out, but the answer is lost (`OutcomeUnknown`).
    LostAnswer,
    /// Not carried out, and the answer is lost.
    LostRequest,
}

#[derive(Debug, Default)]
struct State {
    versions: Option<VersionRange>,
    services: Vec<Service>,
    servers: BTreeMap<String, Server>,
    flavors: Vec<Flavor>,
    hide_specs: bool,
    images: Vec<Image>,
    aggregates: Vec<Aggregate>,
    migrations: Vec<Migration>,
    /// Migration id → (instance, prior vm_state, stuck).
    progress: BTreeMap<String, (String, String, bool)>,
    faults: BTreeMap<String, Vec<EvacFault>>,
    /// Successful placements left before every evacuation ends in NoValidHost.
    capacity: Option<u32>,
    /// The next `n` read calls fail with 503.
    read_errors: u32,
    calls: BTreeMap<String, u32>,
    /// Every call by name, in the order answered.
    journal: Vec<String>,
    evacuations: Vec<(String, Option<String>)>,
    disabled_reasons: BTreeMap<String, String>,
    /// Servers the `changes-since` listing leaves out.
    unlisted: std::collections::BTreeSet<String>,
    /// The `changes-since` listing answers 503.
    changes_listing_fails: bool,
    /// Server id → how many times it was read alone.
    server_reads: BTreeMap<String, u32>,
    clock: i64,
    next_dest: usize,
}

/// An in-memory [`ComputeApi`].
#[derive(Debug, Default)]
pub struct FakeNova {
    st: Mutex<State>,
    /// Time each evacuate call takes (outside the state lock), to observe concurrency.
    evac_latency: Mutex<Option<std::time::Duration>>,
    inflight: std::sync::atomic::AtomicUsize,
    max_inflight: std::sync::atomic::AtomicUsize,
    pace: Mutex<Pace>,
    pace_cv: std::sync::Condvar,
}

/// Reads held back until enough are waiting together ([`FakeNova::hold_reads_until`]).
#[derive(Debug, Default)]
struct Pace {
    want: Option<usize>,
    waiting: usize,
    most: usize,
}

fn unavailable(what: &str) -> Error {
    Error::ServerError { request: what.to_string(), status: 503, message: "injected: service unavailable".into() }
}

fn stamp(t: i64) -> String {
    crate::clock::iso8601(t)
}

impl FakeNova {
    /// An empty cloud speaking microversions 2.1–2.94.
    pub fn new() -> Self {
        let f = FakeNova::default();
        f.lock().clock = crate::clock::now_epoch();
        f
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, name: &str) -> MutexGuard<'_, State> {
        let mut s = self.lock();
        *s.calls.entry(name.to_string()).or_default() += 1;
        s.journal.push(name.to_string());
        s.clock = crate::clock::now_epoch();
        s
    }

    fn read(&self, name: &str) -> Result<MutexGuard<'_, State>> {
        self.pace_read();
        let mut s = self.count(name);
        if s.read_errors > 0 {
            s.read_errors -= 1;
            return Err(unavailable(name));
        }
        Ok(s)
    }

    /// While held ([`FakeNova::hold_reads_until`]): waits until enough reads wait together,
    /// which releases them all and ends the hold, or until 5 s have passed.
    fn pace_read(&self) {
        let mut p = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(want) = p.want else { return };
        p.waiting += 1;
        p.most = p.most.max(p.waiting);
        if p.waiting >= want {
            p.want = None;
            self.pace_cv.notify_all();
        } else {
            let (guard, _) = self
                .pace_cv
                .wait_timeout_while(p, std::time::Duration::from_secs(5), |p| p.want.is_some())
                .unwrap_or_else(PoisonError::into_inner);
            p = guard;
        }
        p.waiting -= 1;
    }

    /// Holds every read back until `n` reads wait at once (then lets them all go and stops
    /// holding), each read waiting at most 5 s: a caller that reads one thing at a time gets
    /// through slowly, one that issues `n` reads together at once.
    pub fn hold_reads_until(&self, n: usize) {
        self.pace.lock().unwrap_or_else(PoisonError::into_inner).want = Some(n);
    }

    /// The most reads that waited together while held.
    pub fn reads_held_together(&self) -> usize {
        self.pace.lock().unwrap_or_else(PoisonError::into_inner).most
    }

    /// Every call by name, in the order Nova answered them.
    pub fn journal(&self) -> Vec<String> {
        self.lock().journal.clone()
    }

    /// Adds a migration record as it is (e.g. one of an earlier incident).
    pub fn add_migration(&self, m: Migration) {
        self.lock().migrations.push(m);
    }

    /// A plain ACTIVE server on `host` (not added).
    pub fn server(id: &str, host: &str) -> Server {
        Server {
            id: id.into(),
            name: format!("vm-{id}"),
            status: "ACTIVE".into(),
            host: Some(host.into()),
            vm_state: Some("active".into()),
            tags: Some(Vec::new()),
            ..Default::default()
        }
    }

    /// Adds a `nova-compute` service.
    pub fn add_service(&self, host: &str, state: &str, status: &str, forced_down: bool) {
        let mut s = self.lock();
        let id = format!("svc-{host}");
        s.services.push(Service {
            id,
            binary: "nova-compute".into(),
            host: host.into(),
            status: status.into(),
            state: Some(state.into()),
            forced_down: Some(forced_down),
            updated_at: Some(stamp(crate::clock::now_epoch()).trim_end_matches('Z').to_string()),
            ..Default::default()
        });
    }

    /// A healthy host and a fenced (forced down, disabled) host.
    pub fn add_host_up(&self, host: &str) {
        self.add_service(host, "up", "enabled", false);
    }

    /// A host as fence_compute leaves it: forced down and disabled.
    pub fn add_host_fenced(&self, host: &str) {
        self.add_service(host, "down", "disabled", true);
    }

    /// Adds a server.
    pub fn add_server(&self, s: Server) {
        self.lock().servers.insert(s.id.clone(), s);
    }

    /// Adds `n` ACTIVE servers `p0..` on `host`.
    pub fn add_servers(&self, host: &str, prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let id = format!("{prefix}{i:04}");
                self.add_server(FakeNova::server(&id, host));
                id
            })
            .collect()
    }

    pub fn add_flavor(&self, id: &str, specs: &[(&str, &str)]) {
        let specs: BTreeMap<String, String> = specs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        self.lock().flavors.push(Flavor { id: id.into(), name: id.into(), extra_specs: Some(specs), ..Default::default() });
    }

    /// Flavor lists come without extra specs (before 2.61).
    pub fn hide_flavor_specs_in_list(&self) {
        self.lock().hide_specs = true;
    }

    pub fn add_image(&self, id: &str, tags: &[&str], props: &[(&str, &str)]) {
        let properties = props.iter().map(|(k, v)| ((*k).to_string(), serde_json::Value::String((*v).to_string()))).collect();
        self.lock().images.push(Image {
            id: id.into(),
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            properties,
            ..Default::default()
        });
    }

    pub fn add_aggregate(&self, name: &str, hosts: &[&str], meta: &[(&str, &str)]) {
        let mut s = self.lock();
        let id = s.aggregates.len().to_string();
        s.aggregates.push(Aggregate {
            id,
            name: name.into(),
            hosts: hosts.iter().map(|h| (*h).to_string()).collect(),
            metadata: meta.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            ..Default::default()
        });
    }

    /// Queues faults for the next evacuations of `server` (in order).
    pub fn fault(&self, server: &str, f: EvacFault) {
        self.lock().faults.entry(server.to_string()).or_default().push(f);
    }

    /// Only `n` more evacuations find a host.
    pub fn capacity(&self, n: u32) {
        self.lock().capacity = Some(n);
    }

    /// The `changes-since` servers listing leaves these servers out.
    pub fn leave_out_of_changes(&self, ids: &[String]) {
        self.lock().unlisted.extend(ids.iter().cloned());
    }

    /// The `changes-since` servers listing answers 503 (other reads are unaffected).
    pub fn fail_changes_listing(&self) {
        self.lock().changes_listing_fails = true;
    }

    /// The next `n` read calls answer 503.
    pub fn read_errors(&self, n: u32) {
        self.lock().read_errors = n;
    }

    /// Sets the microversion range.
    pub fn versions(&self, r: VersionRange) {
        self.lock().versions = Some(r);
    }

    /// Every evacuate call takes `d` (concurrent calls overlap).
    pub fn evacuate_latency(&self, d: std::time::Duration) {
        *self.evac_latency.lock().unwrap_or_else(PoisonError::into_inner) = Some(d);
    }

    /// The most evacuate calls that were in progress at once.
    pub fn max_concurrent_evacuations(&self) -> usize {
        self.max_inflight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many times `server` was read alone (`get_server`).
    pub fn server_reads(&self, server: &str) -> u32 {
        self.lock().server_reads.get(server).copied().unwrap_or(0)
    }

    /// How many times `name` was called.
    pub fn calls(&self, name: &str) -> u32 {
        self.lock().calls.get(name).copied().unwrap_or(0)
    }

    /// Every evacuate POST that reached Nova's logic: (server, requested host).
    pub fn evacuations(&self) -> Vec<(String, Option<String>)> {
        self.lock().evacuations.clone()
    }

    /// How many evacuations of `server` Nova accepted (migration records).
    pub fn accepted(&self, server: &str) -> usize {
        self.lock().migrations.iter().filter(|m| m.instance_uuid.as_deref() == Some(server)).count()
    }

    /// The server as Nova sees it now.
    pub fn get(&self, id: &str) -> Option<Server> {
        self.lock().servers.get(id).cloned()
    }

    /// Changes a server in place.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Server)) {
        if let Some(s) = self.lock().servers.get_mut(id) {
            f(s);
        }
    }

    /// Changes a service in place.
    pub fn edit_service(&self, host: &str, f: impl FnOnce(&mut Service)) {
        if let Some(s) = self.lock().services.iter_mut().find(|s| s.host == host) {
            f(s);
        }
    }

    /// The disabled reason last written for `host`.
    pub fn disabled_reason(&self, host: &str) -> Option<String> {
        self.lock().disabled_reasons.get(host).cloned()
    }

    /// Advances every in-flight evacuation by one stage.
    fn advance(s: &mut State) {
        let now = s.clock;
        let ids: Vec<String> = s.progress.keys().cloned().collect();
        for mid in ids {
            let Some((inst, prior, stuck)) = s.progress.get(&mid).cloned() else { continue };
            let Some(m) = s.migrations.iter_mut().find(|m| m.id == mid) else { continue };
            match m.status.as_str() {
                "accepted" => m.status = "pre-migrating".into(),
                "pre-migrating" if stuck => continue,
                "pre-migrating" => {
                    m.status = "done".into();
                    let dest = m.dest_compute.clone();
                    s.progress.remove(&mid);
                    if let Some(sv) = s.servers.get_mut(&inst) {
                        sv.host = dest;
                        sv.task_state = None;
                        let (vm, st) = if prior == "stopped" { ("stopped", "SHUTOFF") } else { ("active", "ACTIVE") };
                        sv.vm_state = Some(vm.into());
                        sv.status = st.into();
                        sv.fault = None;
                    }
                }
                _ => {
                    s.progress.remove(&mid);
                }
            }
            if let Some(m) = s.migrations.iter_mut().find(|m| m.id == mid) {
                m.updated_at = Some(stamp(now));
            }
        }
    }

    fn pick_dest(s: &mut State, source: &str, wanted: Option<&str>) -> Option<String> {
        let up: Vec<String> = s
            .services
            .iter()
            .filter(|v| v.host != source && v.is_up() && v.status == "enabled" && v.forced_down != Some(true))
            .map(|v| v.host.clone())
            .collect();
        if let Some(w) = wanted {
            return up.iter().find(|h| *h == w).cloned();
        }
        if up.is_empty() {
            return None;
        }
        s.next_dest += 1;
        Some(up[s.next_dest % up.len()].clone())
    }
}

impl ComputeApi for FakeNova {
    fn api_versions(&self) -> Result<VersionRange> {
        let s = self.count("api_versions");
        Ok(s.versions.unwrap_or(VersionRange { min: Microversion::new(2, 1), max: Microversion::new(2, 94) }))
    }

    fn list_services(&self, q: &ServiceQuery) -> Result<Vec<Service>> {
        let s = self.read("list_services")?;
        Ok(s.services
            .iter()
            .filter(|v| q.host.as_ref().is_none_or(|h| &v.host == h) && q.binary.as_ref().is_none_or(|b| &v.binary == b))
            .cloned()
            .collect())
    }

    fn force_down(&self, r: &ServiceRef, forced: bool) -> Result<()> {
        let mut s = self.count("force_down");
        for v in s.services.iter_mut().filter(|v| v.host == r.host) {
            v.forced_down = Some(forced);
        }
        Ok(())
    }

    fn disable_service(&self, r: &ServiceRef, reason: Option<&str>) -> Result<()> {
        let mut s = self.count("disable_service");
        if let Some(reason) = reason {
            if reason.chars().count() > 255 {
                return Err(Error::BadRequest { request: "PUT /os-services".into(), message: "disabled_reason too long".into() });
            }
            s.disabled_reasons.insert(r.host.clone(), reason.to_string());
        }
        for v in s.services.iter_mut().filter(|v| v.host == r.host) {
            v.status = "disabled".into();
            v.disabled_reason = reason.map(str::to_owned);
        }
        Ok(())
    }

    fn enable_service(&self, r: &ServiceRef) -> Result<()> {
        let mut s = self.count("enable_service");
        for v in s.services.iter_mut().filter(|v| v.host == r.host) {
            v.status = "enabled".into();
        }
        Ok(())
    }

    fn list_hypervisors(&self) -> Result<Vec<Hypervisor>> {
        let _s = self.read("list_hypervisors")?;
        Ok(Vec::new())
    }

    fn list_servers_on_host(&self, host: &str) -> Result<Vec<Server>> {
        let s = self.read("list_servers_on_host")?;
        Ok(s.servers.values().filter(|v| v.host.as_deref() == Some(host)).cloned().collect())
    }

    /// The fake keeps no change times: every server counts as changed (but those
    /// [`FakeNova::leave_out_of_changes`] names). Listing too many is harmless (callers take the
    /// ones they asked about); listing too few must only cost reads.
    fn list_servers_changed_since(&self, _since: &str) -> Result<Vec<Server>> {
        let s = self.read("list_servers_changed_since")?;
        if s.changes_listing_fails {
            return Err(unavailable("list_servers_changed_since"));
        }
        Ok(s.servers.values().filter(|v| !s.unlisted.contains(&v.id)).cloned().collect())
    }

    fn get_server(&self, id: &str) -> Result<Server> {
        let mut s = self.read("get_server")?;
        *s.server_reads.entry(id.to_string()).or_default() += 1;
        s.servers.get(id).cloned().ok_or_else(|| Error::NotFound {
            request: format!("GET /servers/{id}"),
            message: format!("Instance {id} could not be found."),
        })
    }

    fn server_metadata(&self, id: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.get_server(id)?.metadata)
    }

    fn server_tags(&self, id: &str) -> Result<Vec<String>> {
        Ok(self.get_server(id)?.tags.unwrap_or_default())
    }

    fn server_actions(&self, _id: &str) -> Result<Vec<InstanceAction>> {
        Ok(Vec::new())
    }

    fn list_flavors(&self) -> Result<Vec<Flavor>> {
        let s = self.read("list_flavors")?;
        let hide = s.hide_specs;
        Ok(s.flavors.iter().cloned().map(|mut f| {
            if hide {
                f.extra_specs = None;
            }
            f
        }).collect())
    }

    fn flavor_extra_specs(&self, id: &str) -> Result<BTreeMap<String, String>> {
        let s = self.read("flavor_extra_specs")?;
        Ok(s.flavors.iter().find(|f| f.id == id).and_then(|f| f.extra_specs.clone()).unwrap_or_default())
    }

    fn list_images(&self, q: &ImageQuery) -> Result<Vec<Image>> {
        let s = self.read("list_images")?;
        Ok(s.images.iter().filter(|i| q.tags.iter().all(|t| i.tags.contains(t))).cloned().collect())
    }

    fn list_aggregates(&self) -> Result<Vec<Aggregate>> {
        let s = self.read("list_aggregates")?;
        Ok(s.aggregates.clone())
    }

    fn evacuate(&self, id: &str, req: &EvacuateRequest) -> Result<EvacuateOutcome> {
        use std::sync::atomic::Ordering::SeqCst;
        let latency = *self.evac_latency.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = latency {
            let now = self.inflight.fetch_add(1, SeqCst) + 1;
            self.max_inflight.fetch_max(now, SeqCst);
            std::thread::sleep(d);
            self.inflight.fetch_sub(1, SeqCst);
        }
        let mut s = self.count("evacuate");
        let request = format!("POST /servers/{id}/action");
        let fault = s.faults.get_mut(id).and_then(|q| (!q.is_empty()).then(|| q.remove(0)));
        let lost = Error::OutcomeUnknown { request: request.clone(), message: "connection reset".into() };
        match &fault {
            Some(EvacFault::Refuse(code, msg)) => {
                return Err(match code {
                    400 => Error::BadRequest { request, message: msg.clone() },
                    409 => Error::Conflict { request, message: msg.clone() },
                    404 => Error::NotFound { request, message: msg.clone() },
                    c => Error::ServerError { request, status: *c, message: msg.clone() },
                });
            }
            Some(EvacFault::LostRequest) => return Err(lost),
            _ => {}
        }
        s.evacuations.push((id.to_string(), req.host.clone()));
        let Some(sv) = s.servers.get(id).cloned() else {
            return Err(Error::NotFound { request, message: format!("Instance {id} could not be found.") });
        };
        let source = sv.host.clone().unwrap_or_default();
        let source_down = s.services.iter().any(|v| v.host == source && (!v.is_up() || v.forced_down == Some(true)));
        if !source_down {
            return Err(Error::BadRequest { request, message: format!("Compute service of {source} is still in use.") });
        }
        let vm = sv.vm_state.clone().unwrap_or_default();
        if sv.task_state.is_some() || !matches!(vm.as_str(), "active" | "stopped" | "error") {
            return Err(Error::Conflict {
                request,
                message: format!(
                    "Cannot 'evacuate' instance {id} while it is in vm_state {vm} task_state {}",
                    sv.task_state.clone().unwrap_or_else(|| "None".into())
                ),
            });
        }
        if req.host.as_deref() == Some(source.as_str()) {
            return Err(Error::BadRequest { request, message: "The target host can't be the same one.".into() });
        }
        if let Some(h) = &req.host {
            if !s.services.iter().any(|v| &v.host == h) {
                return Err(Error::NotFound { request, message: format!("Compute host {h} could not be found.") });
            }
        }
        let no_room = match s.capacity {
            Some(0) => true,
            Some(n) => {
                s.capacity = Some(n - 1);
                false
            }
            None => false,
        };
        let dest = FakeNova::pick_dest(&mut s, &source, req.host.as_deref());
        let now = s.clock;
        let mid = (s.migrations.len() + 1).to_string();
        let mut m = Migration {
            id: mid.clone(),
            instance_uuid: Some(id.into()),
            source_compute: Some(source.clone()),
            dest_compute: dest.clone(),
            status: "accepted".into(),
            migration_type: Some("evacuation".into()),
            created_at: Some(stamp(now)),
            updated_at: Some(stamp(now)),
            ..Default::default()
        };
        const NO_HOST: &str = "No valid host was found. There are not enough hosts available.";
        let failed = match fault {
            _ if no_room || dest.is_none() => Some(("error", NO_HOST)),
            Some(EvacFault::NoValidHost) => Some(("error", NO_HOST)),
            Some(EvacFault::RebuildFailed) => Some(("failed", "Build of instance aborted: injected")),
            _ => None,
        };
        if let Some((status, message)) = failed {
            // Asynchronous failure: the API accepted, the conductor or destination failed and
            // put the instance in ERROR with a fault (nova's _set_vm_state_and_notify).
            m.status = status.into();
            if let Some(sv) = s.servers.get_mut(id) {
                sv.task_state = None;
                sv.vm_state = Some("error".into());
                sv.status = "ERROR".into();
                sv.fault = Some(iha_openstack::ServerFault { code: Some(500), message: Some(message.into()), created: None });
            }
        } else {
            s.progress.insert(mid, (id.to_string(), vm, fault == Some(EvacFault::Stuck)));
            if let Some(sv) = s.servers.get_mut(id) {
                sv.task_state = Some("rebuilding".into());
                sv.status = "REBUILD".into();
            }
        }
        s.migrations.push(m);
        if fault == Some(EvacFault::LostAnswer) {
            return Err(lost);
        }
        Ok(EvacuateOutcome { microversion: Microversion::new(2, 94), admin_pass: None })
    }

    fn lock_server(&self, _id: &str, _reason: Option<&str>) -> Result<()> {
        Ok(())
    }

    fn unlock_server(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    fn reset_state(&self, id: &str, state: ResetState) -> Result<()> {
        drop(self.count("reset_state"));
        self.edit(id, |s| {
            s.task_state = None;
            s.vm_state = Some(if state == ResetState::Error { "error" } else { "active" }.into());
        });
        Ok(())
    }

    fn list_migrations(&self, q: &MigrationQuery) -> Result<Vec<Migration>> {
        let mut s = self.read("list_migrations")?;
        FakeNova::advance(&mut s);
        Ok(s.migrations
            .iter()
            .filter(|m| {
                q.source_compute.as_ref().is_none_or(|h| m.source_compute.as_ref() == Some(h))
                    && q.instance_uuid.as_ref().is_none_or(|i| m.instance_uuid.as_ref() == Some(i))
                    && q.migration_type.as_ref().is_none_or(|t| m.migration_type.as_ref() == Some(t))
                    && q.changes_since.as_ref().is_none_or(|c| {
                        let since = crate::clock::parse_iso8601(c).unwrap_or(i64::MIN);
                        m.updated_at.as_deref().and_then(crate::clock::parse_iso8601).unwrap_or(i64::MAX) >= since
                    })
            })
            .cloned()
            .collect())
    }
}
