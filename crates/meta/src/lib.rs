//! One declarative description per agent.
//!
//! Every agent of the suite is described exactly once, as a static [`Agent`]: its name, version,
//! descriptions, parameters (with types, defaults, aliases, getopt forms and secrecy) and actions
//! (with timeouts and the fence-specific `on_target`/`automatic` flags). Everything Pacemaker,
//! `pcs` and an operator see of an agent is derived from that one value:
//!
//! * [`ocf_xml`]: OCF 1.0 resource-agent metadata (valid against `ra-api-1.dtd`);
//! * [`fence_xml`]: fence-agent metadata in the fence-agents format (valid against
//!   `metadata.rng`), shaped like the reference agents' output so that Pacemaker derives the same
//!   host argument, reboot support and automatic unfencing;
//! * [`usage`]: `--help` text;
//! * [`man`]: a roff man page.
//!
//! The runtimes (`iha-ocf`, `iha-fence`) parse parameters against the same description, so a
//! parameter cannot be documented without being accepted, or accepted without being documented.
//! This crate is pure: no I/O, no allocation beyond building the rendered strings.

pub mod common;
mod fence_xml;
mod man;
mod ocf_xml;
mod usage;
mod values;
mod xml;

pub use fence_xml::fence_xml;
pub use man::man;
pub use ocf_xml::ocf_xml;
pub use usage::usage;
pub use values::{Problem, ProblemKind, Values, parse_bool};

/// Which Pacemaker protocol an agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An OCF resource agent: action in `argv[1]`, parameters in `OCF_RESKEY_*`.
    Ocf,
    /// A fence agent (RHCS protocol): `key=value` lines on stdin, or getopt-style arguments.
    Fence,
}

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Free text.
    String,
    /// A whole number (may be negative).
    Integer,
    /// A whole number of seconds (fence agents' `second` type; rendered `integer` for OCF).
    Second,
    /// A truth value: `1/yes/true/on` and `0/no/false/off`; a bare command-line flag is true.
    Boolean,
    /// One of a fixed list of values.
    Select(&'static [&'static str]),
}

impl Type {
    /// The name used in OCF metadata (`ra-api-1.dtd` allows string, integer, boolean, time).
    pub fn ocf_name(self) -> &'static str {
        match self {
            Type::String | Type::Select(_) => "string",
            Type::Integer | Type::Second => "integer",
            Type::Boolean => "boolean",
        }
    }

    /// The name used in fence-agent metadata.
    pub fn fence_name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Integer => "integer",
            Type::Second => "second",
            Type::Boolean => "boolean",
            Type::Select(_) => "select",
        }
    }
}

/// How a fence agent's parameter appears on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Getopt {
    /// The short option letter, if any (`-n`).
    pub short: Option<char>,
    /// The long option (`plug` for `--plug`).
    pub long: &'static str,
    /// Placeholder shown after `=` in help and metadata (`id` in `--plug=[id]`), `""` for a
    /// value-taking option shown without one, `None` for a flag that takes no value.
    pub value: Option<&'static str>,
    /// Overrides the `<getopt mixed>` text where the reference prints something irregular
    /// (`--record-only` takes a value but is documented as a flag).
    pub mixed: Option<&'static str>,
}

impl Getopt {
    /// A value-taking option with a short letter.
    pub const fn with_short(short: char, long: &'static str, value: &'static str) -> Self {
        Getopt { short: Some(short), long, value: Some(value), mixed: None }
    }

    /// A value-taking long-only option.
    pub const fn long(long: &'static str, value: &'static str) -> Self {
        Getopt { short: None, long, value: Some(value), mixed: None }
    }

    /// A flag (no value) with an optional short letter.
    pub const fn flag(short: Option<char>, long: &'static str) -> Self {
        Getopt { short, long, value: None, mixed: None }
    }

    /// Whether the option consumes a value on the command line.
    pub fn takes_value(&self) -> bool {
        self.value.is_some()
    }

    /// The text of `<getopt mixed="…">` and the left column of `--help`.
    pub fn mixed_text(&self) -> String {
        if let Some(m) = self.mixed {
            return m.to_string();
        }
        let mut s = String::new();
        if let Some(c) = self.short {
            s.push('-');
            s.push(c);
            s.push_str(", ");
        }
        s.push_str("--");
        s.push_str(self.long);
        match self.value {
            Some(v) if !v.is_empty() => {
                s.push_str("=[");
                s.push_str(v);
                s.push(']');
            }
            _ => {}
        }
        s
    }
}

/// One parameter of an agent.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The canonical name: the OCF `OCF_RESKEY_` suffix, or the fence stdin key.
    pub name: &'static str,
    /// Older names still accepted (fence: printed with `deprecated="1"`, the canonical name then
    /// carries `obsoletes="<old>"`).
    pub deprecated: &'static [&'static str],
    /// Accepted as a full synonym but never rendered (e.g. `compute_domain` for `domain`).
    pub aliases: &'static [&'static str],
    /// Command-line form (fence agents only).
    pub getopt: Option<Getopt>,
    pub ty: Type,
    /// The default, as the reference prints it.
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    /// Passwords, application-credential secrets, tokens: redacted everywhere.
    pub secret: bool,
    /// Listed in metadata, usage and man page (hidden parameters are accepted but undocumented).
    pub visible: bool,
    /// Sort key of the fence metadata (entries are sorted by `(order, name)` like fencing.py).
    pub order: u16,
    pub shortdesc: &'static str,
    /// Longer description; empty means "same as shortdesc".
    pub longdesc: &'static str,
}

impl Param {
    /// A visible, optional, non-secret string parameter; adjust with struct update syntax.
    pub const fn new(name: &'static str, shortdesc: &'static str) -> Self {
        Param {
            name,
            deprecated: &[],
            aliases: &[],
            getopt: None,
            ty: Type::String,
            default: None,
            required: false,
            unique: false,
            secret: false,
            visible: true,
            order: 100,
            shortdesc,
            longdesc: "",
        }
    }

    /// The long description, falling back to the short one.
    pub fn long_text(&self) -> &'static str {
        if self.longdesc.is_empty() { self.shortdesc } else { self.longdesc }
    }

    /// Whether `key` names this parameter (canonical name, deprecated name or alias), with `-`
    /// and `_` equivalent as fencing.py and Pacemaker users expect.
    pub fn matches(&self, key: &str) -> bool {
        let eq = |a: &str| same_key(a, key);
        eq(self.name)
            || self.deprecated.iter().any(|d| eq(d))
            || self.aliases.iter().any(|d| eq(d))
            || self.getopt.is_some_and(|g| eq(g.long))
    }
}

/// Compares two parameter keys treating `-` and `_` as the same character.
pub fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let n = |c: u8| if c == b'-' { b'_' } else { c };
            n(x) == n(y)
        })
}

/// One action an agent supports.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub name: &'static str,
    /// Default timeout in seconds (OCF metadata).
    pub timeout: Option<u32>,
    /// Recommended interval in seconds (OCF `monitor`).
    pub interval: Option<u32>,
    pub depth: Option<u8>,
    /// Fence: the action must run on the target node itself.
    pub on_target: bool,
    /// Fence `on`: Pacemaker unfences automatically with it.
    pub automatic: Option<bool>,
    /// Listed in metadata (some accepted actions, like OCF `usage`, are not advertised).
    pub advertised: bool,
    pub description: &'static str,
}

impl Action {
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Action {
            name,
            timeout: None,
            interval: None,
            depth: None,
            on_target: false,
            automatic: None,
            advertised: true,
            description,
        }
    }

    /// An OCF action with a default timeout.
    pub const fn timed(name: &'static str, timeout: u32, description: &'static str) -> Self {
        Action { timeout: Some(timeout), ..Action::new(name, description) }
    }
}

/// An exit status documented in the man page.
#[derive(Debug, Clone, Copy)]
pub struct ExitStatus {
    pub code: u8,
    pub meaning: &'static str,
}

/// The complete description of one agent.
#[derive(Debug, Clone, Copy)]
pub struct Agent {
    /// Installed name (`fence_compute`, `NovaEvacuate`).
    pub name: &'static str,
    pub protocol: Protocol,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    /// Fence metadata `<vendor-url>`.
    pub vendor_url: &'static str,
    /// Parameter groups, concatenated (agent-specific, shared OpenStack, shared runtime options).
    pub params: &'static [&'static [Param]],
    pub actions: &'static [Action],
    /// Fence agents: the action used when none is given.
    pub default_action: &'static str,
    /// Man page section (8 for fence agents, 7 for OCF agents as resource-agents ships them).
    pub man_section: u8,
    pub exit_statuses: &'static [ExitStatus],
    /// Free-form extra man page sections: (title, body paragraphs).
    pub notes: &'static [(&'static str, &'static str)],
}

impl Agent {
    /// Every parameter, in declaration order.
    pub fn all_params(&self) -> impl Iterator<Item = &'static Param> + '_ {
        self.params.iter().flat_map(|g| g.iter())
    }

    /// The parameter `key` names (canonical, deprecated or alias spelling).
    pub fn param(&self, key: &str) -> Option<&'static Param> {
        self.all_params().find(|p| p.matches(key))
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&'static Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The values of all parameters marked secret are redacted by the runtimes' loggers; this
    /// lists their names.
    pub fn secret_params(&self) -> impl Iterator<Item = &'static Param> + '_ {
        self.all_params().filter(|p| p.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_with_dash_and_underscore_equivalent() {
        assert!(same_key("project-domain", "project_domain"));
        assert!(same_key("auth_url", "auth-url"));
        assert!(!same_key("auth_url", "auth_ur"));
        assert!(!same_key("port ", "port"));
    }

    #[test]
    fn getopt_mixed_text_matches_fencing_py() {
        assert_eq!(Getopt::with_short('n', "plug", "id").mixed_text(), "-n, --plug=[id]");
        assert_eq!(Getopt::long("region-name", "region").mixed_text(), "--region-name=[region]");
        assert_eq!(Getopt::flag(None, "insecure").mixed_text(), "--insecure");
        assert_eq!(Getopt::flag(Some('q'), "quiet").mixed_text(), "-q, --quiet");
        assert_eq!(Getopt::long("verbose-level", "").mixed_text(), "--verbose-level");
    }
}
