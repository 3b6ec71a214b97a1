//! Parameter groups shared by several agents.
//!
//! * [`FENCE_STANDARD`]: the options every fence agent accepts (fencing.py's defaults, with the
//!   compute agents' `shell_timeout` of 180), plus our `action_timeout`.
//! * [`FENCE_OPENSTACK`]: the OpenStack connection options of `fence_compute` and
//!   `fence_evacuate`, spelled as the reference spells them, plus ours (clouds.yaml, application
//!   credentials, CA bundle, client certificate, endpoint overrides).
//! * [`OCF_OPENSTACK`]: the same connection settings as the OCF agents name them.
//!
//! Orders reproduce the reference metadata's sort (`(order, name)`): the reference's parameters
//! come out in the reference's order, ours after them.

use crate::{Getopt, Param, Type};

const fn g(short: char, long: &'static str, value: &'static str) -> Option<Getopt> {
    Some(Getopt::with_short(short, long, value))
}
const fn gl(long: &'static str, value: &'static str) -> Option<Getopt> {
    Some(Getopt::long(long, value))
}
const fn gf(short: Option<char>, long: &'static str) -> Option<Getopt> {
    Some(Getopt::flag(short, long))
}

/// Order of our own additions: after every reference parameter.
const OURS: u16 = 300;

const CLOUD_LONG: &str = "Name of a cloud in clouds.yaml (searched in OS_CLIENT_CONFIG_FILE, \
./clouds.yaml, ~/.config/openstack/clouds.yaml and /etc/openstack/clouds.yaml, merged with \
secure.yaml). Explicit parameters override the cloud's settings; OS_* environment variables \
fill in what neither sets.";
const APPCRED_LONG: &str = "Keystone application credential used instead of a password. \
Give the id, or the name together with the user (username and user_domain).";

/// Options every fence agent of the suite accepts (the fencing library's).
pub static FENCE_STANDARD: &[Param] = &[
    Param {
        deprecated: &["port"],
        getopt: g('n', "plug", "id"),
        required: true,
        order: 1,
        ..Param::new("plug", "Physical plug number on device, UUID or identification of machine")
    },
    Param {
        getopt: gf(Some('q'), "quiet"),
        ty: Type::Boolean,
        order: 50,
        ..Param::new(
            "quiet",
            "Disable logging to stderr. Does not affect --verbose or --debug-file or logging to syslog.",
        )
    },
    Param {
        getopt: gf(Some('v'), "verbose"),
        ty: Type::Boolean,
        order: 51,
        ..Param::new(
            "verbose",
            "Verbose mode. Multiple -v flags can be stacked on the command line (e.g., -vvv) to increase verbosity.",
        )
    },
    Param {
        getopt: gl("verbose-level", ""),
        ty: Type::Integer,
        order: 52,
        ..Param::new(
            "verbose_level",
            "Level of debugging detail in output. Defaults to the number of --verbose flags specified on the command line, or to 1 if verbose=1 in a stonith device configuration (i.e., on stdin).",
        )
    },
    Param {
        deprecated: &["debug"],
        getopt: g('D', "debug-file", "debugfile"),
        order: 53,
        ..Param::new("debug_file", "Write debug information to given file")
    },
    Param {
        getopt: gf(Some('V'), "version"),
        ty: Type::Boolean,
        order: 54,
        ..Param::new("version", "Display version information and exit")
    },
    Param {
        getopt: gf(Some('h'), "help"),
        ty: Type::Boolean,
        order: 55,
        ..Param::new("help", "Display help and exit")
    },
    Param {
        getopt: gl("plug-separator", "char"),
        default: Some(","),
        order: 100,
        ..Param::new("plug_separator", "Separator for plug parameter when specifying more than 1 plug")
    },
    Param {
        getopt: g('C', "separator", "char"),
        default: Some(","),
        order: 100,
        ..Param::new("separator", "Separator for CSV created by 'list' operation")
    },
    Param {
        getopt: gl("delay", "seconds"),
        ty: Type::Second,
        default: Some("0"),
        order: 200,
        ..Param::new("delay", "Wait X seconds before fencing is started")
    },
    Param {
        getopt: gl("disable-timeout", "true/false"),
        order: 200,
        ..Param::new(
            "disable_timeout",
            "Disable timeout (true/false) (default: true when run from Pacemaker 2.0+)",
        )
    },
    Param {
        getopt: gl("login-timeout", "seconds"),
        ty: Type::Second,
        default: Some("5"),
        order: 200,
        ..Param::new("login_timeout", "Wait X seconds for cmd prompt after login")
    },
    Param {
        getopt: gl("power-timeout", "seconds"),
        ty: Type::Second,
        default: Some("20"),
        order: 200,
        ..Param::new("power_timeout", "Test X seconds for status change after ON/OFF")
    },
    Param {
        getopt: gl("power-wait", "seconds"),
        ty: Type::Second,
        default: Some("0"),
        order: 200,
        ..Param::new("power_wait", "Wait X seconds after issuing ON/OFF")
    },
    Param {
        getopt: gl("shell-timeout", "seconds"),
        ty: Type::Second,
        default: Some("180"),
        order: 200,
        ..Param::new("shell_timeout", "Wait X seconds for cmd prompt after issuing command")
    },
    Param {
        getopt: gl("stonith-status-sleep", "seconds"),
        ty: Type::Second,
        default: Some("1"),
        order: 200,
        ..Param::new(
            "stonith_status_sleep",
            "Sleep X seconds between status calls during a STONITH action",
        )
    },
    Param {
        getopt: gl("retry-on", "attempts"),
        ty: Type::Integer,
        default: Some("1"),
        order: 201,
        ..Param::new("retry_on", "Count of attempts to retry power on")
    },
    Param {
        getopt: gl("action-timeout", "seconds"),
        ty: Type::Second,
        default: Some("55"),
        order: OURS + 20,
        longdesc: "Deadline of one action in seconds. The agent stops waiting and fails with a \
clear reason when it passes, instead of being killed by the fencer. Keep it a little below the \
device's pcmk_<action>_timeout (default: stonith-timeout, 60 s). 0 means the reference \
behaviour under Pacemaker (no deadline of its own).",
        ..Param::new("action_timeout", "Deadline of one action in seconds")
    },
    // Sent by Pacemaker with every target-specific request; accepted, not documented.
    Param { visible: false, ..Param::new("nodename", "Pacemaker node name of the target") },
    Param { visible: false, ..Param::new("nodeid", "Pacemaker node id of the target") },
];

/// OpenStack connection options of the fence agents, as the reference spells them.
pub static FENCE_OPENSTACK: &[Param] = &[
    Param {
        getopt: g('k', "auth-url", "url"),
        default: Some(""),
        order: 1,
        ..Param::new("auth_url", "Keystone Admin Auth URL")
    },
    Param {
        getopt: g('e', "endpoint-type", "endpoint"),
        default: Some("internalURL"),
        order: 1,
        longdesc: "Nova Endpoint type: publicURL, internalURL or adminURL (public, internal and \
admin are accepted too)",
        ..Param::new("endpoint_type", "Nova Endpoint type")
    },
    Param {
        deprecated: &["login"],
        getopt: g('l', "username", "name"),
        order: 1,
        ..Param::new("username", "Login name")
    },
    Param {
        deprecated: &["passwd"],
        getopt: g('p', "password", "password"),
        secret: true,
        order: 1,
        ..Param::new("password", "Login password or passphrase")
    },
    Param {
        deprecated: &["passwd_script"],
        getopt: g('S', "password-script", "script"),
        order: 1,
        longdesc: "Script to run to retrieve password. It is run directly (no shell): its \
first word is the program, the rest its arguments; its standard output, right-stripped, is the \
password.",
        ..Param::new("password_script", "Script to run to retrieve password")
    },
    Param {
        getopt: gl("region-name", "region"),
        default: Some(""),
        order: 1,
        ..Param::new("region_name", "Region Name")
    },
    Param {
        getopt: g('t', "tenant-name", "name"),
        default: Some(""),
        order: 1,
        ..Param::new("tenant_name", "Keystone Admin Tenant or v3 Project")
    },
    Param {
        getopt: gf(None, "insecure"),
        ty: Type::Boolean,
        order: 2,
        ..Param::new("insecure", "Allow Insecure TLS Requests")
    },
    Param {
        deprecated: &["project-domain"],
        getopt: g('P', "project-domain", "name"),
        default: Some("Default"),
        order: 3,
        ..Param::new("project_domain", "Keystone v3 Project Domain")
    },
    Param {
        deprecated: &["user-domain"],
        getopt: g('u', "user-domain", "name"),
        default: Some("Default"),
        order: 4,
        ..Param::new("user_domain", "Keystone v3 User Domain")
    },
    Param {
        getopt: g('d', "domain", "string"),
        order: 5,
        ..Param::new("domain", "DNS domain in which hosts live")
    },
    Param {
        getopt: gf(None, "instance-filtering"),
        ty: Type::Boolean,
        default: Some("True"),
        order: 6,
        ..Param::new("instance_filtering", "Allow instances to be evacuated")
    },
    Param {
        getopt: gf(None, "no-shared-storage"),
        ty: Type::Boolean,
        default: Some("False"),
        order: 7,
        ..Param::new("no_shared_storage", "Disable functionality for dealing with shared storage")
    },
    Param {
        deprecated: &["compute-domain"],
        getopt: gl("compute-domain", "string"),
        order: 9,
        longdesc: "Replaced by domain: an alias of it, used when domain is not set",
        ..Param::new("compute_domain", "Replaced by domain")
    },
    Param {
        getopt: gl("cloud", "name"),
        order: OURS,
        longdesc: CLOUD_LONG,
        ..Param::new("cloud", "Cloud name in clouds.yaml")
    },
    Param {
        getopt: gl("cacert", "file"),
        order: OURS,
        longdesc: "PEM file of the certificate authorities that sign the OpenStack endpoints' \
certificates (default: the system store)",
        ..Param::new("cacert", "CA bundle for TLS verification")
    },
    Param {
        getopt: gl("cert", "file"),
        order: OURS,
        ..Param::new("cert", "Client certificate (PEM) for TLS client authentication")
    },
    Param {
        getopt: gl("key", "file"),
        order: OURS,
        ..Param::new("key", "Client private key (PEM) for TLS client authentication")
    },
    Param {
        getopt: gl("application-credential-id", "id"),
        order: OURS,
        longdesc: APPCRED_LONG,
        ..Param::new("application_credential_id", "Keystone application credential id")
    },
    Param {
        getopt: gl("application-credential-name", "name"),
        order: OURS,
        longdesc: APPCRED_LONG,
        ..Param::new("application_credential_name", "Keystone application credential name")
    },
    Param {
        getopt: gl("application-credential-secret", "secret"),
        secret: true,
        order: OURS,
        ..Param::new("application_credential_secret", "Keystone application credential secret")
    },
    Param {
        getopt: gl("project-id", "id"),
        order: OURS,
        ..Param::new("project_id", "Keystone v3 project id (instead of tenant_name)")
    },
    Param {
        getopt: gl("user-id", "id"),
        order: OURS,
        ..Param::new("user_id", "Keystone v3 user id (instead of username)")
    },
    Param {
        getopt: gl("compute-endpoint", "url"),
        order: OURS,
        ..Param::new("compute_endpoint", "Nova endpoint URL overriding the service catalog")
    },
    Param {
        getopt: gl("image-endpoint", "url"),
        order: OURS,
        ..Param::new("image_endpoint", "Glance endpoint URL overriding the service catalog")
    },
];

/// OpenStack connection parameters of the OCF agents.
///
/// `auth_url`, `username`, `password` and `tenant_name` are required by the reference; ours
/// can also take them from `cloud` (clouds.yaml) or an application credential, so they are
/// optional in the metadata and checked as a set by `validate-all` (docs/deviations.md).
pub static OCF_OPENSTACK: &[Param] = &[
    Param {
        default: Some(""),
        longdesc: "Authorization URL for connecting to keystone in admin context",
        ..Param::new("auth_url", "Authorization URL")
    },
    Param {
        default: Some(""),
        longdesc: "Username for connecting to keystone in admin context",
        ..Param::new("username", "Username")
    },
    Param {
        default: Some(""),
        secret: true,
        longdesc: "Password for connecting to keystone in admin context",
        ..Param::new("password", "Password")
    },
    Param {
        default: Some(""),
        longdesc: "Tenant(Project) name for connecting to keystone in admin context.\nNote that \
with Keystone V3 tenant names are only unique within a domain.",
        ..Param::new("tenant_name", "Tenant name")
    },
    Param {
        default: Some(""),
        longdesc: "Keystone domain the user belongs to (default: Default)",
        ..Param::new("user_domain", "Keystone v3 User Domain")
    },
    Param {
        default: Some(""),
        longdesc: "Keystone domain the tenant(project) belongs to (default: Default)",
        ..Param::new("project_domain", "Keystone v3 Project Domain")
    },
    Param {
        default: Some(""),
        longdesc: "DNS domain in which hosts live, useful when the cluster uses short names and \
nova uses FQDN",
        ..Param::new("domain", "DNS domain")
    },
    Param {
        default: Some(""),
        ty: Type::Select(&[
            "", "publicURL", "internalURL", "adminURL", "public", "internal", "admin",
        ]),
        longdesc: "Nova API location (internal, public or admin URL); empty means internal",
        ..Param::new("endpoint_type", "Nova API location (internal, public or admin URL)")
    },
    Param {
        default: Some(""),
        longdesc: "Region name for connecting to nova.",
        ..Param::new("region_name", "Region name")
    },
    Param {
        ty: Type::Boolean,
        default: Some("0"),
        longdesc: "Explicitly allow client to perform \"insecure\" TLS (https) requests.\nThe \
server's certificate will not be verified against any certificate authorities.\nThis option \
should be used with caution.",
        ..Param::new("insecure", "Allow insecure TLS requests")
    },
    Param {
        ty: Type::Boolean,
        default: Some("0"),
        longdesc: "Indicate that nova storage for instances is not shared across compute\nnodes. \
This must match the reality of how nova storage is configured!\nOtherwise VMs could end up in \
error state upon evacuation. When\nstorage is non-shared, instances on dead hypervisors will be \
rebuilt\nfrom their original image or volume, so anything on ephemeral storage\nwill be lost.",
        ..Param::new("no_shared_storage", "Disable shared storage recovery for instances")
    },
    Param {
        ty: Type::Boolean,
        default: Some("0"),
        longdesc: "Enable extra (debug) logging",
        ..Param::new("verbose", "Enable debug logging")
    },
    Param { longdesc: CLOUD_LONG, ..Param::new("cloud", "Cloud name in clouds.yaml") },
    Param {
        longdesc: "PEM file of the certificate authorities that sign the OpenStack endpoints' \
certificates (default: the system store)",
        ..Param::new("cacert", "CA bundle for TLS verification")
    },
    Param::new("cert", "Client certificate (PEM) for TLS client authentication"),
    Param::new("key", "Client private key (PEM) for TLS client authentication"),
    Param {
        longdesc: APPCRED_LONG,
        ..Param::new("application_credential_id", "Keystone application credential id")
    },
    Param {
        longdesc: APPCRED_LONG,
        ..Param::new("application_credential_name", "Keystone application credential name")
    },
    Param {
        secret: true,
        ..Param::new("application_credential_secret", "Keystone application credential secret")
    },
    Param::new("project_id", "Keystone v3 project id (instead of tenant_name)"),
    Param::new("user_id", "Keystone v3 user id (instead of username)"),
    Param::new("compute_endpoint", "Nova endpoint URL overriding the service catalog"),
    Param::new("image_endpoint", "Glance endpoint URL overriding the service catalog"),
];
