//! The token cache shared by successive agent invocations.
//!
//! Agents are short-lived processes started every few seconds; without a
//! cache every one of them would authenticate to Keystone. A cached session
//! (token, expiry, catalog, project id and the compute version document) is
//! kept in one JSON file per set of auth parameters, named by a SHA-256 of
//! those parameters, including a hash of the secret so a changed password
//! never reuses a token. The password or secret itself is never written.
//!
//! Safety rules: the directory is created 0700 and must belong to us; a
//! file is trusted only if it is a regular file owned by our effective uid
//! with no group/other permission bits, else it is ignored (and replaced on
//! the next write). Writes go to a fresh `O_EXCL` temporary file (0600) in
//! the same directory, renamed over the old one, so readers never see half a
//! file. Every cache problem is logged and otherwise ignored: the cache only
//! saves round trips, it never decides anything.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, Credentials, DomainRef, Scope, TokenCacheMode, UserRef};
use crate::keystone::CatalogEntry;
use crate::logging::LogSink;
use crate::microversion::VersionRange;

/// Bumped when the file format changes; older files are then ignored.
const FORMAT: u32 = 1;
/// Cache files untouched for this long are removed (tokens live 1 h by
/// default; a pruned file only costs one authentication).
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);
/// Cache files larger than this are not ours (a catalog is a few KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// What is stored for one set of auth parameters.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CachedSession {
    pub format: u32,
    pub key: String,
    pub token: String,
    /// Unix seconds; `None` when unknown.
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub catalog: Vec<CatalogEntry>,
    /// Compute version document, keyed by the version URL it came from.
    #[serde(default)]
    pub compute_versions: Vec<(String, VersionRange)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The cache key of an auth configuration and region.
pub(crate) fn cache_key(auth: &AuthConfig, region: Option<&str>) -> String {
    // A length-prefixed canonical form: no separator ambiguity.
    let mut canon = String::new();
    let mut add = |k: &str, v: &str| {
        canon.push_str(&format!("{k}:{}:{v};", v.len()));
    };
    add("format", &FORMAT.to_string());
    add(
        "auth_url",
        auth.auth_url.as_deref().unwrap_or("").trim_end_matches('/'),
    );
    let user = |u: &Option<UserRef>, add: &mut dyn FnMut(&str, &str)| match u {
        Some(UserRef::Id(id)) => add("user_id", id),
        Some(UserRef::Name { name, domain }) => {
            add("user_name", name);
            match domain {
                DomainRef::Id(d) => add("user_domain_id", d),
                DomainRef::Name(d) => add("user_domain_name", d),
            }
        }
        None => {}
    };
    match &auth.credentials {
        Credentials::Password { user: u, password } => {
            add("method", "password");
            user(&Some(u.clone()), &mut add);
            add("secret", &sha256_hex(password.expose().as_bytes()));
        }
        Credentials::ApplicationCredential {
            id,
            name,
            user: u,
            secret,
        } => {
            add("method", "application_credential");
            add("app_cred_id", id.as_deref().unwrap_or(""));
            add("app_cred_name", name.as_deref().unwrap_or(""));
            user(u, &mut add);
            add("secret", &sha256_hex(secret.expose().as_bytes()));
        }
        Credentials::Token { token } => {
            add("method", "token");
            add("secret", &sha256_hex(token.expose().as_bytes()));
        }
    }
    match &auth.scope {
        Some(Scope::ProjectId(id)) => add("project_id", id),
        Some(Scope::Project { name, domain }) => {
            add("project_name", name);
            match domain {
                DomainRef::Id(d) => add("project_domain_id", d),
                DomainRef::Name(d) => add("project_domain_name", d),
            }
        }
        Some(Scope::Domain(DomainRef::Id(d))) => add("domain_id", d),
        Some(Scope::Domain(DomainRef::Name(d))) => add("domain_name", d),
        Some(Scope::System) => add("system", "all"),
        None => add("scope", "none"),
    }
    add("region", region.unwrap_or(""));
    sha256_hex(canon.as_bytes())
}

/// Reads and writes cached sessions in one directory.
#[derive(Debug)]
pub(crate) struct TokenCache {
    dir: Option<PathBuf>,
    euid: u32,
    log: LogSink,
}

impl TokenCache {
    pub(crate) fn new(mode: &TokenCacheMode, log: LogSink) -> TokenCache {
        let euid = nix::unistd::geteuid().as_raw();
        let dir = match mode {
            TokenCacheMode::Disabled => None,
            TokenCacheMode::Dir(d) => Some(d.clone()),
            TokenCacheMode::Default => Some(default_dir(euid)),
        };
        TokenCache { dir, euid, log }
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{key}.json")))
    }

    /// The cached session for `key`, if a trustworthy one exists.
    pub(crate) fn load(&self, key: &str) -> Option<CachedSession> {
        let path = self.file(key)?;
        let mut f = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.log
                    .warn(|| format!("ignoring token cache {}: {e}", path.display()));
                return None;
            }
        };
        let meta = f.metadata().ok()?;
        if !meta.is_file()
            || meta.uid() != self.euid
            || meta.mode() & 0o077 != 0
            || meta.len() > MAX_FILE
        {
            self.log.warn(|| {
                format!(
                    "ignoring token cache {}: not a private file of uid {} (uid {}, mode {:o})",
                    path.display(),
                    self.euid,
                    meta.uid(),
                    meta.mode() & 0o7777
                )
            });
            return None;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return None;
        }
        match serde_json::from_slice::<CachedSession>(&buf) {
            Ok(s) if s.format == FORMAT && s.key == key && !s.token.is_empty() => Some(s),
            Ok(_) => None,
            Err(e) => {
                self.log
                    .warn(|| format!("ignoring corrupt token cache {}: {e}", path.display()));
                None
            }
        }
    }

    /// Writes `s` atomically; failures are logged only.
    pub(crate) fn store(&self, s: &CachedSession) {
        let Some(path) = self.file(&s.key) else {
            return;
        };
        if let Err(e) = self.try_store(&path, s) {
            self.log
                .warn(|| format!("cannot write token cache {}: {e}", path.display()));
            return;
        }
        // Writes happen only when authenticating, so this is the rare
        // moment to drop files nobody refreshed for a long time (other
        // clouds, old passwords, crashed writers' temporaries).
        static PRUNED: AtomicBool = AtomicBool::new(false);
        if !PRUNED.swap(true, Ordering::Relaxed) {
            if let Some(dir) = path.parent() {
                self.prune(dir, STALE_AFTER);
            }
        }
    }

    /// Removes our `*.json` and `*.tmp` files in `dir` not modified for `age`.
    pub(crate) fn prune(&self, dir: &Path, age: Duration) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.ends_with(".json") || name.ends_with(".tmp")) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|a| a > age);
            if old && meta.is_file() && meta.uid() == self.euid {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn try_store(&self, path: &Path, s: &CachedSession) -> std::io::Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("no parent directory"))?;
        self.ensure_dir(dir)?;
        let data = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        static N: AtomicU32 = AtomicU32::new(0);
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            s.key,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(&data)?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Forgets the session for `key` (after a 401).
    pub(crate) fn remove(&self, key: &str) {
        if let Some(p) = self.file(key) {
            let _ = fs::remove_file(p);
        }
    }

    /// Creates `dir` (0700) if needed and checks that it is ours and private.
    fn ensure_dir(&self, dir: &Path) -> std::io::Result<()> {
        if let Some(parent) = dir.parent() {
            // Parents such as /run/instance-ha or /tmp/instance-ha-UID are
            // created private too.
            if !parent.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            // Someone who can rename entries in the parent could swap our
            // directory: the parent must be ours or root's, and not
            // writable by others unless sticky (like /tmp).
            let pm = fs::metadata(parent)?;
            let owner_ok = pm.uid() == self.euid || pm.uid() == 0;
            let writable_by_others = pm.mode() & 0o022 != 0 && pm.mode() & 0o1000 == 0;
            if !owner_ok || writable_by_others {
                return Err(std::io::Error::other(format!(
                    "parent directory {} is not safe (uid {}, mode {:o})",
                    parent.display(),
                    pm.uid(),
                    pm.mode() & 0o7777
                )));
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = fs::symlink_metadata(dir)?;
        if !meta.is_dir() || meta.uid() != self.euid {
            return Err(std::io::Error::other(
                "cache directory is not a directory owned by us",
            ));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}

fn default_dir(euid: u32) -> PathBuf {
    if euid == 0 {
        return PathBuf::from("/run/instance-ha/tokens");
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        return Path::new(&x).join("instance-ha/tokens");
    }
    std::env::temp_dir().join(format!("instance-ha-{euid}/tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::testutil::TempDir;

    fn auth(password: &str) -> AuthConfig {
        AuthConfig {
            auth_url: Some("http://ks/v3".into()),
            credentials: Credentials::Password {
                user: UserRef::Name {
                    name: "admin".into(),
                    domain: DomainRef::Name("Default".into()),
                },
                password: Secret::new(password),
            },
            scope: Some(Scope::Project {
                name: "admin".into(),
                domain: DomainRef::Name("Default".into()),
            }),
        }
    }

    fn session(key: &str) -> CachedSession {
        CachedSession {
            format: FORMAT,
            key: key.into(),
            token: "tok".into(),
            expires_at: Some(1),
            project_id: None,
            catalog: vec![],
            compute_versions: vec![],
        }
    }

    #[test]
    fn key_depends_on_secret_and_scope() {
        let a = cache_key(&auth("p1"), None);
        assert_eq!(a, cache_key(&auth("p1"), None));
        assert_ne!(a, cache_key(&auth("p2"), None));
        assert_ne!(a, cache_key(&auth("p1"), Some("RegionOne")));
        let mut other = auth("p1");
        other.scope = Some(Scope::ProjectId("x".into()));
        assert_ne!(a, cache_key(&other, None));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn round_trip_private_and_atomic() {
        let d = TempDir::new("cache");
        let dir = d.path().join("tokens");
        let c = TokenCache::new(&TokenCacheMode::Dir(dir.clone()), LogSink::none());
        assert!(c.load("k").is_none());
        c.store(&session("k"));
        let meta = fs::metadata(dir.join("k.json")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(c.load("k").unwrap().token, "tok");
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // The password never reaches the file.
        c.remove("k");
        assert!(c.load("k").is_none());
    }

    #[test]
    fn prunes_old_files_only() {
        let d = TempDir::new("cache-prune");
        let c = TokenCache::new(
            &TokenCacheMode::Dir(d.path().to_path_buf()),
            LogSink::none(),
        );
        c.store(&session("old"));
        c.store(&session("new"));
        fs::write(d.path().join("keep.txt"), b"x").unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        for f in ["old.json", "keep.txt"] {
            let file = OpenOptions::new()
                .write(true)
                .open(d.path().join(f))
                .unwrap();
            file.set_modified(two_days_ago).unwrap();
        }
        c.prune(d.path(), STALE_AFTER);
        assert!(c.load("old").is_none());
        assert!(c.load("new").is_some());
        assert!(d.path().join("keep.txt").exists());
    }

    #[test]
    fn refuses_unsafe_or_corrupt_files() {
        let d = TempDir::new("cache-bad");
        let dir = d.path().to_path_buf();
        let c = TokenCache::new(&TokenCacheMode::Dir(dir.clone()), LogSink::none());
        c.store(&session("k"));
        let f = dir.join("k.json");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            c.load("k").is_none(),
            "group/other readable file must be ignored"
        );
        // ...and is replaced by the next write.
        c.store(&session("k"));
        assert!(c.load("k").is_some());
        fs::write(&f, b"{not json").unwrap();
        assert!(c.load("k").is_none());
        // A file claiming another key is ignored.
        c.store(&session("other"));
        fs::rename(dir.join("other.json"), &f).unwrap();
        assert!(c.load("k").is_none());
        // A symlink is never followed.
        let target = dir.join("target.json");
        c.store(&session("target"));
        fs::remove_file(&f).unwrap();
        std::os::unix::fs::symlink(&target, &f).unwrap();
        assert!(c.load("k").is_none());
        c.store(&session("k"));
        assert!(c.load("k").is_some());
        assert!(!fs::symlink_metadata(&f).unwrap().file_type().is_symlink());
        // An unsafe parent directory: nothing is written.
        let open = d.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let c2 = TokenCache::new(&TokenCacheMode::Dir(open.join("tokens")), LogSink::none());
        c2.store(&session("k"));
        assert!(!open.join("tokens").exists());
        // A file owned by someone else (only testable as root).
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
            assert!(c.load("k").is_none());
            c.store(&session("k"));
            assert_eq!(fs::metadata(&f).unwrap().uid(), 0);
            assert!(c.load("k").is_some());
        }
    }
}
