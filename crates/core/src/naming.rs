//! The one host-name rule every agent shares (REFERENCE.md O27, O2, O10).
//!
//! Pacemaker names compute nodes one way (usually the short host name), Nova another (the
//! `host` of the `nova-compute` service: usually the FQDN, or whatever `[DEFAULT] host` in
//! nova.conf says). The reference agents each guessed differently; here there is one rule:
//!
//! * **cluster side** ([`resolve`]): the target of a fence action (`port=`, which may already
//!   be a `pcmk_host_map` value, then `nodename=`) is matched against the hosts of Nova's
//!   `nova-compute` services, in this order: the exact name; the short name plus the
//!   configured `domain`; the one service whose short name equals the target's short name.
//!   Anything else is an error that names the candidates: never a guess. A Nova with services
//!   in several DNS domains (O2: the reference fails every action then) is handled by the same
//!   rule, and `compute_domain` is an alias of `domain` used when `domain` is unset (O10: the
//!   reference deleted `domain` instead).
//! * **compute-node side** ([`local_nova_host`]): the `host` option of `[DEFAULT]` in
//!   `/etc/nova/nova.conf` and then `/etc/nova/nova.conf.d/*.conf` in name order (the last
//!   value wins, as with oslo.config), else the machine's host name with `domain` appended
//!   when it is a short name. nova-compute-wait and NovaCompute use this, then [`resolve`]
//!   against Nova to confirm it.
//!
//! Every decision is explained at info level, so an operator can see from the log why a node
//! was mapped to a Nova host.

use log::info;
use std::path::{Path, PathBuf};

/// The first label of a host name (`compute-0.example.com` → `compute-0`).
pub fn short_name(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The DNS domain of a host name (text after the first label); `None` for a short name.
pub fn domain_of(host: &str) -> Option<&str> {
    host.split_once('.').map(|(_, d)| d).filter(|d| !d.is_empty())
}

/// The effective DNS domain: `domain` when set, else `compute_domain` (its old alias).
/// Surrounding dots and blanks are ignored; an empty value means "none".
pub fn effective_domain(domain: Option<&str>, compute_domain: Option<&str>) -> Option<String> {
    let clean = |d: Option<&str>| d.map(|d| d.trim().trim_matches('.').to_string()).filter(|d| !d.is_empty());
    clean(domain).or_else(|| clean(compute_domain))
}

/// How a target was matched to a Nova host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The target is the Nova host name.
    Exact,
    /// The target's short name plus the configured domain is the Nova host name.
    Domain,
    /// Exactly one Nova host has the target's short name.
    UniqueShortName,
}

impl MatchKind {
    fn explain(self, domain: Option<&str>) -> String {
        match self {
            MatchKind::Exact => "exact name".into(),
            MatchKind::Domain => format!("short name + domain {}", domain.unwrap_or("")),
            MatchKind::UniqueShortName => "the only nova-compute service with this short name".into(),
        }
    }
}

/// A target resolved to the host name Nova uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The Nova host name (the key of the `evacuate` attribute).
    pub host: String,
    /// Which of the given names matched.
    pub matched: String,
    pub kind: MatchKind,
}

/// Why a target could not be mapped to a Nova host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamingError {
    /// No nova-compute service matches any of the names.
    Unknown { names: Vec<String>, known: Vec<String> },
    /// Several services share the short name and nothing decides between them.
    Ambiguous { name: String, candidates: Vec<String> },
    /// Nova lists no nova-compute service at all.
    NoServices,
}

impl std::fmt::Display for NamingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamingError::Unknown { names, known } => {
                let shown: Vec<&str> = known.iter().take(10).map(String::as_str).collect();
                let more = if known.len() > 10 { format!(" and {} more", known.len() - 10) } else { String::new() };
                write!(
                    f,
                    "no nova-compute service matches {}: nova knows {}{more}",
                    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" or "),
                    if shown.is_empty() { "none".to_string() } else { shown.join(", ") }
                )
            }
            NamingError::Ambiguous { name, candidates } => write!(
                f,
                "host name '{name}' is ambiguous: nova-compute services {} share its short name; \
                 set domain= to the right DNS domain or use the full name (pcmk_host_map)",
                candidates.join(", ")
            ),
            NamingError::NoServices => f.write_str("nova lists no nova-compute service"),
        }
    }
}

impl std::error::Error for NamingError {}

/// Matches one name against Nova's hosts; `Ok(None)` when nothing matches.
fn match_one(name: &str, domain: Option<&str>, hosts: &[&str]) -> Result<Option<(String, MatchKind)>, NamingError> {
    if let Some(h) = hosts.iter().find(|h| **h == name) {
        return Ok(Some(((*h).to_string(), MatchKind::Exact)));
    }
    // DNS names are case-insensitive; Nova keeps what nova.conf said.
    let ci: Vec<&str> = hosts.iter().copied().filter(|h| h.eq_ignore_ascii_case(name)).collect();
    if ci.len() == 1 {
        return Ok(Some((ci[0].to_string(), MatchKind::Exact)));
    }
    let short = short_name(name);
    if short.is_empty() {
        return Ok(None);
    }
    if let Some(d) = domain {
        let want = format!("{short}.{d}");
        if let Some(h) = hosts.iter().find(|h| h.eq_ignore_ascii_case(&want)) {
            return Ok(Some(((*h).to_string(), MatchKind::Domain)));
        }
    }
    let mut same: Vec<&str> = hosts.iter().copied().filter(|h| short_name(h).eq_ignore_ascii_case(short)).collect();
    same.dedup();
    match same.len() {
        0 => Ok(None),
        1 => Ok(Some((same[0].to_string(), MatchKind::UniqueShortName))),
        _ => Err(NamingError::Ambiguous { name: name.to_string(), candidates: same.iter().map(|s| s.to_string()).collect() }),
    }
}

/// Maps the names Pacemaker gave for a target (`port`/`plug`, then `nodename`; empty and
/// repeated names are skipped) to the host of one of Nova's `nova-compute` services.
///
/// The first name that matches wins; an ambiguous name is an error even if a later name
/// would match, because the operator's mapping is wrong and guessing could fence (or
/// evacuate) the wrong host.
pub fn resolve(names: &[&str], domain: Option<&str>, nova_hosts: &[String]) -> Result<Resolved, NamingError> {
    let hosts: Vec<&str> = nova_hosts.iter().map(String::as_str).filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() {
        return Err(NamingError::NoServices);
    }
    let mut tried: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if tried.iter().any(|t| t == name) {
            continue;
        }
        tried.push(name.to_string());
        if let Some((host, kind)) = match_one(name, domain, &hosts)? {
            info!("nova host for '{name}' is {host} ({})", kind.explain(domain));
            if let (Some(d), Some(hd)) = (domain, domain_of(&host)) {
                if !hd.eq_ignore_ascii_case(d) {
                    info!("nova names {host} in domain {hd}, not the configured domain {d}: nova's name is used");
                }
            }
            return Ok(Resolved { host, matched: name.to_string(), kind });
        }
    }
    let mut known: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
    known.sort();
    known.dedup();
    Err(NamingError::Unknown { names: tried, known })
}

/// Where nova.conf lives; injectable for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NovaConfPaths {
    /// The main file (`/etc/nova/nova.conf`).
    pub file: PathBuf,
    /// The drop-in directory (`/etc/nova/nova.conf.d`); its `*.conf` files are read in name order.
    pub dir: Option<PathBuf>,
}

impl Default for NovaConfPaths {
    fn default() -> Self {
        NovaConfPaths { file: "/etc/nova/nova.conf".into(), dir: Some("/etc/nova/nova.conf.d".into()) }
    }
}

impl NovaConfPaths {
    /// The files to read, in order (later ones win). Missing files are simply absent.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = vec![self.file.clone()];
        if let Some(dir) = &self.dir {
            if let Ok(rd) = std::fs::read_dir(dir) {
                let mut extra: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
                    .collect();
                extra.sort();
                out.extend(extra);
            }
        }
        out
    }
}

/// `[DEFAULT] host` from one nova.conf text; the last assignment in the section wins.
pub fn conf_host(text: &str) -> Option<String> {
    let mut in_default = false;
    let mut found = None;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') {
            in_default = l.trim_start_matches('[').trim_end_matches(']').trim() == "DEFAULT";
            continue;
        }
        // Continuation lines (leading blanks) belong to the previous option.
        if !in_default || line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((k, v)) = l.split_once(['=', ':']) else { continue };
        if k.trim() == "host" {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            found = (!v.is_empty()).then(|| v.to_string());
        }
    }
    found
}

/// Where the local Nova host name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    /// `[DEFAULT] host` in this file.
    NovaConf(PathBuf),
    /// The machine's host name as it is.
    Hostname,
    /// The short host name plus the configured domain.
    HostnameWithDomain,
}

/// The Nova host name of this compute node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHost {
    pub name: String,
    pub source: LocalSource,
}

/// The Nova host name of the local compute node: nova.conf's `[DEFAULT] host` when set
/// (files read in [`NovaConfPaths::files`] order, last wins; unreadable files are skipped),
/// else `hostname`, with `domain` appended when `hostname` is a short name.
pub fn local_nova_host(paths: &NovaConfPaths, hostname: &str, domain: Option<&str>) -> LocalHost {
    let mut best: Option<LocalHost> = None;
    for f in paths.files() {
        if let Ok(text) = std::fs::read_to_string(&f) {
            if let Some(h) = conf_host(&text) {
                best = Some(LocalHost { name: h, source: LocalSource::NovaConf(f) });
            }
        }
    }
    let local = best.unwrap_or_else(|| {
        let h = hostname.trim();
        match domain.map(|d| d.trim().trim_matches('.')).filter(|d| !d.is_empty()) {
            Some(d) if domain_of(h).is_none() && !h.is_empty() => {
                LocalHost { name: format!("{h}.{d}"), source: LocalSource::HostnameWithDomain }
            }
            _ => LocalHost { name: h.to_string(), source: LocalSource::Hostname },
        }
    });
    match &local.source {
        LocalSource::NovaConf(p) => info!("local nova host is {} ([DEFAULT] host in {})", local.name, show(p)),
        LocalSource::Hostname => info!("local nova host is {} (host name; nova.conf sets no host)", local.name),
        LocalSource::HostnameWithDomain => {
            info!("local nova host is {} (short host name + domain; nova.conf sets no host)", local.name)
        }
    }
    local
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn short_and_domain() {
        assert_eq!(short_name("compute-0.example.com"), "compute-0");
        assert_eq!(short_name("compute-0"), "compute-0");
        assert_eq!(domain_of("compute-0.example.com"), Some("example.com"));
        assert_eq!(domain_of("compute-0"), None);
        assert_eq!(domain_of("compute-0."), None);
    }

    #[test]
    fn compute_domain_is_an_alias_used_when_domain_is_unset() {
        assert_eq!(effective_domain(None, Some("example.com")), Some("example.com".into()));
        assert_eq!(effective_domain(Some(""), Some(".example.com.")), Some("example.com".into()));
        assert_eq!(effective_domain(Some("a.org"), Some("b.org")), Some("a.org".into()));
        assert_eq!(effective_domain(Some(" "), None), None);
    }

    #[test]
    fn exact_then_domain_then_unique_short_name() {
        let nova = hosts(&["compute-0.example.com", "compute-1.example.com"]);
        let r = resolve(&["compute-0.example.com"], None, &nova).unwrap();
        assert_eq!((r.host.as_str(), r.kind), ("compute-0.example.com", MatchKind::Exact));
        let r = resolve(&["compute-0"], Some("example.com"), &nova).unwrap();
        assert_eq!((r.host.as_str(), r.kind), ("compute-0.example.com", MatchKind::Domain));
        let r = resolve(&["compute-0"], None, &nova).unwrap();
        assert_eq!((r.host.as_str(), r.kind), ("compute-0.example.com", MatchKind::UniqueShortName));
        // A wrong domain does not stop the unique short-name match (Nova's name wins, as in the reference).
        let r = resolve(&["compute-0"], Some("other.org"), &nova).unwrap();
        assert_eq!(r.host, "compute-0.example.com");
        // An FQDN in another domain still maps by its unique short name.
        let r = resolve(&["compute-1.other.org"], None, &nova).unwrap();
        assert_eq!(r.host, "compute-1.example.com");
        // Case does not matter for DNS names.
        assert_eq!(resolve(&["Compute-1"], None, &nova).unwrap().host, "compute-1.example.com");
    }

    #[test]
    fn nova_with_short_names_matches_fqdn_targets() {
        let nova = hosts(&["compute-0", "compute-1"]);
        assert_eq!(resolve(&["compute-0.example.com"], Some("example.com"), &nova).unwrap().host, "compute-0");
    }

    #[test]
    fn several_domains_in_nova_are_resolved_deterministically() {
        // O2: the reference fails every action here.
        let nova = hosts(&["compute-0.example.com", "compute-1.example.com", "compute-2.other.org", "compute-3"]);
        assert_eq!(resolve(&["compute-2"], Some("example.com"), &nova).unwrap().host, "compute-2.other.org");
        assert_eq!(resolve(&["compute-3"], None, &nova).unwrap().host, "compute-3");
        assert_eq!(resolve(&["compute-0"], None, &nova).unwrap().host, "compute-0.example.com");
    }

    #[test]
    fn ambiguity_is_an_error_unless_the_domain_decides() {
        let nova = hosts(&["compute-0.example.com", "compute-0.other.org", "compute-0"]);
        assert_eq!(resolve(&["compute-0"], None, &nova).unwrap().kind, MatchKind::Exact);
        let nova = hosts(&["compute-0.example.com", "compute-0.other.org"]);
        let e = resolve(&["compute-0"], None, &nova).unwrap_err();
        assert!(matches!(&e, NamingError::Ambiguous { candidates, .. } if candidates.len() == 2), "{e}");
        assert!(e.to_string().contains("ambiguous"));
        assert_eq!(resolve(&["compute-0"], Some("other.org"), &nova).unwrap().host, "compute-0.other.org");
        assert_eq!(resolve(&["compute-0.other.org"], None, &nova).unwrap().host, "compute-0.other.org");
        // An ambiguous first name is not papered over by a later one.
        assert!(resolve(&["compute-0", "compute-0.example.com"], None, &nova).is_err());
    }

    #[test]
    fn port_then_nodename_and_clear_errors() {
        let nova = hosts(&["nova-c0.example.com"]);
        // pcmk_host_map value in port=, Pacemaker node in nodename=.
        let r = resolve(&["nova-c0.example.com", "compute-0"], None, &nova).unwrap();
        assert_eq!(r.matched, "nova-c0.example.com");
        let r = resolve(&["", "nosuch", "nova-c0"], None, &nova).unwrap();
        assert_eq!((r.matched.as_str(), r.host.as_str()), ("nova-c0", "nova-c0.example.com"));
        let e = resolve(&["nosuch", "nosuch", "other"], None, &nova).unwrap_err();
        assert_eq!(e.to_string(), "no nova-compute service matches 'nosuch' or 'other': nova knows nova-c0.example.com");
        assert_eq!(resolve(&["x"], None, &[]).unwrap_err(), NamingError::NoServices);
        assert!(resolve(&[".", ""], None, &nova).is_err());
    }

    #[test]
    fn nova_conf_host_parsing() {
        let text = "# comment\n[DEFAULT]\nhost = first\n; x\ndebug=true\n[libvirt]\nhost = notme\n[DEFAULT]\nhost=second\n  continued\n";
        assert_eq!(conf_host(text).as_deref(), Some("second"));
        assert_eq!(conf_host("[DEFAULT]\n#host = x\n"), None);
        assert_eq!(conf_host("host = outside\n[DEFAULT]\n"), None);
        assert_eq!(conf_host("[DEFAULT]\nhost = \"quoted.example.com\"\n").as_deref(), Some("quoted.example.com"));
        assert_eq!(conf_host("[DEFAULT]\nhost=a\nhost=\n").as_deref(), None);
    }

    #[test]
    fn local_host_from_conf_dropins_last_wins() {
        let dir = std::env::temp_dir().join(format!("iha-naming-{}", std::process::id()));
        let d = dir.join("nova.conf.d");
        std::fs::create_dir_all(&d).unwrap();
        let file = dir.join("nova.conf");
        let paths = NovaConfPaths { file: file.clone(), dir: Some(d.clone()) };
        // Nothing configured: the host name, with the domain for a short name.
        assert_eq!(local_nova_host(&paths, "compute-0", Some("example.com")).name, "compute-0.example.com");
        assert_eq!(local_nova_host(&paths, "compute-0.lab", Some("example.com")).name, "compute-0.lab");
        assert_eq!(local_nova_host(&paths, "compute-0", None).source, LocalSource::Hostname);
        std::fs::write(&file, "[DEFAULT]\nhost = from-main\n").unwrap();
        assert_eq!(local_nova_host(&paths, "x", None).name, "from-main");
        std::fs::write(d.join("20-b.conf"), "[DEFAULT]\nhost = from-b\n").unwrap();
        std::fs::write(d.join("10-a.conf"), "[DEFAULT]\nhost = from-a\n").unwrap();
        std::fs::write(d.join("30-c.conf.bak"), "[DEFAULT]\nhost = ignored\n").unwrap();
        std::fs::write(d.join("40-d.conf"), "[DEFAULT]\ndebug = true\n").unwrap();
        let l = local_nova_host(&paths, "x", None);
        assert_eq!(l.name, "from-b");
        assert_eq!(l.source, LocalSource::NovaConf(d.join("20-b.conf")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
