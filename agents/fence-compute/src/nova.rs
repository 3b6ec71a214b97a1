//! From device options to an OpenStack client, and the credential checks of `validate-all`
//! (the mapping itself is shared by every agent: `iha_openstack::auth_params_from_values`; the
//! client logs through the `log` facade, so its records land in the agent's log).

use iha_fence::{Context, FenceError};
use iha_meta::Values;
use iha_openstack::{Client, ConnectionOptions, Deadline, check_values, options_from_values};

/// The connection options from the device options, clouds.yaml and `OS_*`; no network.
pub fn options(v: &Values, password: Option<&str>) -> Result<ConnectionOptions, FenceError> {
    options_from_values(v, password).map_err(|e| FenceError::new(format!("openstack credentials: {e}")))
}

/// Checks made by `validate-all` and before every action: a known `endpoint_type`, and a
/// complete set of credentials (password, application credential, token, or a `cloud`).
pub fn validate(ctx: &Context<'_>) -> Result<(), FenceError> {
    // password_script runs after validation; stand in for its output.
    let stand_in = ctx.values.nonempty("password_script").map(|_| "from-password-script");
    let problems = check_values(ctx.values, ctx.password().or(stand_in));
    if problems.is_empty() { Ok(()) } else { Err(FenceError::new(problems.join("; "))) }
}

/// A client bound to the action's deadline; nothing is sent until the first call.
pub fn connect(ctx: &Context<'_>) -> Result<Client, FenceError> {
    let opts = options(ctx.values, ctx.password())?;
    let deadline = ctx.deadline.map_or(Deadline::NONE, Deadline::at);
    Ok(Client::new(opts).with_deadline(deadline))
}
