//! From device options to an OpenStack client: the parameter mapping, the credential checks of
//! `validate-all`, and the bridge that puts the client's own log records into the agent's log.

use iha_fence::{Context, FenceError};
use iha_meta::Values;
use iha_openstack::{AuthParams, Client, ConnectionOptions, Deadline, Interface, Level, Logger, Secret};
use std::sync::Arc;

/// Forwards `iha-openstack` log records to the `log` facade (and so to syslog/stderr/debug_file
/// with the runner's levels and redaction).
#[derive(Debug)]
struct LogBridge;

impl Logger for LogBridge {
    fn log(&self, level: Level, message: &str) {
        let l = match level {
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log!(target: "openstack", l, "{message}");
    }
}

/// The device options as one layer of connection settings. Defaults of the reference
/// (`user_domain=Default`, `endpoint_type=internalURL`...) only apply when no `cloud` is
/// named, so a clouds.yaml entry is not overridden by defaults nobody wrote.
pub fn auth_params(v: &Values, password: Option<&str>) -> AuthParams {
    let cloud = v.nonempty("cloud").map(str::to_string);
    let own = |name: &str| -> Option<String> {
        if cloud.is_some() && !v.is_given(name) {
            return None;
        }
        v.nonempty(name).map(str::to_string)
    };
    let given = |name: &str| v.nonempty(name).map(str::to_string);
    let mut p = AuthParams {
        cloud: cloud.clone(),
        auth_url: given("auth_url"),
        username: given("username"),
        user_id: given("user_id"),
        password: password.filter(|p| !p.is_empty()).map(Secret::from),
        project_name: given("tenant_name"),
        project_id: given("project_id"),
        user_domain_name: own("user_domain"),
        project_domain_name: own("project_domain"),
        application_credential_id: given("application_credential_id"),
        application_credential_name: given("application_credential_name"),
        application_credential_secret: given("application_credential_secret").map(Secret::from),
        region_name: given("region_name"),
        interface: own("endpoint_type"),
        cacert: given("cacert").map(Into::into),
        cert: given("cert").map(Into::into),
        key: given("key").map(Into::into),
        // Booleans by value (D1): insecure=false keeps verification on.
        insecure: v.is_given("insecure").then(|| v.flag("insecure")).filter(|i| *i),
        ..Default::default()
    };
    if let Some(u) = given("compute_endpoint") {
        p.endpoint_overrides.insert("compute".into(), u);
    }
    if let Some(u) = given("image_endpoint") {
        p.endpoint_overrides.insert("image".into(), u);
    }
    p
}

/// The connection options from the device options, clouds.yaml and `OS_*`; no network.
pub fn options(v: &Values, password: Option<&str>) -> Result<ConnectionOptions, FenceError> {
    ConnectionOptions::from_process_env(auth_params(v, password))
        .map_err(|e| FenceError::new(format!("openstack credentials: {e}")))
}

/// Checks made by `validate-all` and before every action: a known `endpoint_type`, and a
/// complete set of credentials (password, application credential, token, or a `cloud`).
pub fn validate(ctx: &Context<'_>) -> Result<(), FenceError> {
    let mut problems = Vec::new();
    if let Some(t) = ctx.values.nonempty("endpoint_type") {
        if Interface::parse(t).is_err() {
            problems.push(format!(
                "endpoint_type '{t}' is not one of publicURL, internalURL, adminURL (or public, internal, admin)"
            ));
        }
    }
    // password_script runs after validation; stand in for its output.
    let stand_in = ctx.values.nonempty("password_script").map(|_| "from-password-script");
    if let Err(e) = options(ctx.values, ctx.password().or(stand_in)) {
        problems.push(e.message);
    }
    if problems.is_empty() { Ok(()) } else { Err(FenceError::new(problems.join("; "))) }
}

/// A client bound to the action's deadline; nothing is sent until the first call.
pub fn connect(ctx: &Context<'_>) -> Result<Client, FenceError> {
    let opts = options(ctx.values, ctx.password())?.with_logger(Arc::new(LogBridge));
    let deadline = ctx.deadline.map_or(Deadline::NONE, Deadline::at);
    Ok(Client::new(opts).with_deadline(deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        let mut v = Values::new(&crate::SPEC);
        for (k, val) in pairs {
            v.set(k, *val);
        }
        v
    }

    #[test]
    fn device_options_map_to_connection_settings() {
        let v = values(&[
            ("auth_url", "http://ks/v3"),
            ("login", "admin"),
            ("tenant_name", "admin"),
            ("insecure", "false"),
            ("compute_endpoint", "http://nova/v2.1"),
        ]);
        let p = auth_params(&v, Some("pw"));
        assert_eq!(p.username.as_deref(), Some("admin"));
        assert_eq!(p.project_name.as_deref(), Some("admin"));
        assert_eq!(p.user_domain_name.as_deref(), Some("Default"), "reference default");
        assert_eq!(p.interface.as_deref(), Some("internalURL"), "reference default");
        assert_eq!(p.insecure, None, "insecure=false keeps verification on (D1)");
        assert_eq!(p.endpoint_overrides.get("compute").map(String::as_str), Some("http://nova/v2.1"));
        assert!(p.password.is_some());
        assert!(auth_params(&values(&[("insecure", "1")]), None).insecure == Some(true));
    }

    #[test]
    fn defaults_do_not_override_a_cloud() {
        let p = auth_params(&values(&[("cloud", "mycloud")]), None);
        assert_eq!(p.cloud.as_deref(), Some("mycloud"));
        assert_eq!((p.user_domain_name, p.project_domain_name, p.interface), (None, None, None));
        let p = auth_params(&values(&[("cloud", "mycloud"), ("endpoint_type", "publicURL")]), None);
        assert_eq!(p.interface.as_deref(), Some("publicURL"), "given explicitly");
    }
}
