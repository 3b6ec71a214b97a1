//! Agent parameters → connection settings, once for every agent.
//!
//! All five agents name their OpenStack parameters the same way (`crates/meta/src/common.rs`:
//! `auth_url`, `username`, `tenant_name`, `user_domain`, `endpoint_type`, `cloud`,
//! `application_credential_*`, `cacert`…), so one mapping serves them all.
//!
//! The reference's defaults (`user_domain=Default`, `endpoint_type=internalURL`) only apply
//! when no `cloud` is named, so a clouds.yaml entry is not overridden by defaults nobody wrote.
//! Booleans are read by value: `insecure=false` keeps verification on (docs/deviations.md D1).

use crate::{AuthParams, ConnectionOptions, Interface, Result, Secret};
use iha_meta::Values;

/// The agent's parameters as one layer of connection settings (explicit parameters win over
/// clouds.yaml and `OS_*`, see [`ConnectionOptions::resolve`]). `password` is the resolved
/// password (fence agents may run `password_script`; OCF agents pass their `password`).
pub fn auth_params_from_values(v: &Values, password: Option<&str>) -> AuthParams {
    let cloud = v.nonempty("cloud").map(str::to_string);
    let has = |name: &str| v.agent().param(name).is_some();
    let given = |name: &str| if has(name) { v.nonempty(name).map(str::to_string) } else { None };
    // A documented default is not a choice: it must not override the named cloud.
    let own = |name: &str| if cloud.is_some() && !(has(name) && v.is_given(name)) { None } else { given(name) };
    // Secrets are not trimmed: blanks may be part of a password.
    let secret = |name: &str| if has(name) { v.get(name).filter(|s| !s.is_empty()).map(Secret::from) } else { None };
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
        application_credential_secret: secret("application_credential_secret"),
        region_name: given("region_name"),
        interface: own("endpoint_type"),
        cacert: given("cacert").map(Into::into),
        cert: given("cert").map(Into::into),
        key: given("key").map(Into::into),
        insecure: (has("insecure") && v.flag("insecure")).then_some(true),
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

/// Connection options from the agent's parameters, clouds.yaml and `OS_*`; no network.
pub fn options_from_values(v: &Values, password: Option<&str>) -> Result<ConnectionOptions> {
    ConnectionOptions::from_process_env(auth_params_from_values(v, password))
}

/// The connection problems `validate-all` reports, without touching the network: an unknown
/// `endpoint_type`, and an incomplete set of credentials (password, application credential,
/// token or `cloud`).
pub fn check_values(v: &Values, password: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(t) = v.agent().param("endpoint_type").and_then(|_| v.nonempty("endpoint_type")) {
        if Interface::parse(t).is_err() {
            problems.push(format!(
                "endpoint_type '{t}' is not one of publicURL, internalURL, adminURL (or public, internal, admin)"
            ));
        }
    }
    if let Err(e) = options_from_values(v, password) {
        problems.push(format!("openstack credentials: {e}"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use iha_meta::common::{FENCE_OPENSTACK, OCF_OPENSTACK};
    use iha_meta::{Action, Agent, Protocol};

    static ACTIONS: &[Action] = &[Action::new("off", "")];
    const fn agent(params: &'static [&'static [iha_meta::Param]]) -> Agent {
        Agent {
            name: "t",
            protocol: Protocol::Fence,
            version: "0",
            shortdesc: "",
            longdesc: "",
            vendor_url: "",
            params,
            actions: ACTIONS,
            default_action: "off",
            man_section: 8,
            exit_statuses: &[],
            notes: &[],
        }
    }
    static FENCE: Agent = agent(&[FENCE_OPENSTACK]);
    static OCF: Agent = agent(&[OCF_OPENSTACK]);

    fn values(a: &'static Agent, pairs: &[(&str, &str)]) -> Values {
        let mut v = Values::new(a);
        for (k, val) in pairs {
            v.set(k, *val);
        }
        v
    }

    #[test]
    fn device_options_map_to_connection_settings() {
        let v = values(
            &FENCE,
            &[
                ("auth_url", "http://ks/v3"),
                ("login", "admin"),
                ("tenant_name", "admin"),
                ("insecure", "false"),
                ("compute_endpoint", "http://nova/v2.1"),
                ("application_credential_secret", "s"),
            ],
        );
        let p = auth_params_from_values(&v, Some("pw"));
        assert_eq!(p.username.as_deref(), Some("admin"));
        assert_eq!(p.project_name.as_deref(), Some("admin"));
        assert_eq!(p.user_domain_name.as_deref(), Some("Default"), "reference default");
        assert_eq!(p.interface.as_deref(), Some("internalURL"), "reference default");
        assert_eq!(p.insecure, None, "insecure=false keeps verification on (D1)");
        assert_eq!(p.endpoint_overrides.get("compute").map(String::as_str), Some("http://nova/v2.1"));
        assert!(p.password.is_some() && p.application_credential_secret.is_some());
        assert_eq!(auth_params_from_values(&values(&FENCE, &[("insecure", "1")]), None).insecure, Some(true));
    }

    #[test]
    fn defaults_do_not_override_a_cloud() {
        let p = auth_params_from_values(&values(&FENCE, &[("cloud", "mycloud")]), None);
        assert_eq!(p.cloud.as_deref(), Some("mycloud"));
        assert_eq!((p.user_domain_name, p.project_domain_name, p.interface), (None, None, None));
        let p = auth_params_from_values(&values(&FENCE, &[("cloud", "c"), ("endpoint_type", "publicURL")]), None);
        assert_eq!(p.interface.as_deref(), Some("publicURL"), "given explicitly");
    }

    #[test]
    fn ocf_parameters_map_the_same_way() {
        let v = values(&OCF, &[("auth_url", "http://ks/v3"), ("username", "u"), ("user_domain", ""), ("endpoint_type", "")]);
        let p = auth_params_from_values(&v, v.get("password"));
        assert_eq!(p.username.as_deref(), Some("u"));
        assert_eq!(p.user_domain_name, None, "empty OCF defaults mean unset");
        assert!(p.password.is_none());
    }

    #[test]
    fn checks_name_each_problem() {
        let v = values(&FENCE, &[("endpoint_type", "sideURL")]);
        let problems = check_values(&v, None);
        assert!(problems.iter().any(|p| p.contains("endpoint_type 'sideURL'")), "{problems:?}");
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let p = AuthParams {
            password: Some(Secret::from("Pa55-w0rd")),
            application_credential_secret: Some(Secret::from("AppSecret9")),
            token: Some(Secret::from("gAAAAtoken")),
            ..Default::default()
        };
        let text = format!("{p:?}");
        for s in ["Pa55-w0rd", "AppSecret9", "gAAAAtoken"] {
            assert!(!text.contains(s), "{text}");
        }
        let c = crate::Credentials::Token { token: Secret::from("gAAAAtoken") };
        assert!(!format!("{c:?}").contains("gAAAAtoken"));
    }
}
