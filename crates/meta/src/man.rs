//! roff man pages.

use crate::{Agent, Protocol, Type};
use std::fmt::Write;

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would start a request.
fn roff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n') {
        if !out.is_empty() {
            out.push('\n');
        }
        let t = line.replace('\\', "\\e");
        if t.starts_with('.') || t.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&t);
    }
    out
}

/// Option names use `\-` so that they render as ASCII hyphens and can be searched for.
fn opt(s: &str) -> String {
    roff(s).replace('-', "\\-")
}

/// Renders the man page of `agent`.
pub fn man(agent: &Agent) -> String {
    let mut m = String::new();
    let upper = agent.name.to_uppercase();
    let manual = match agent.protocol {
        Protocol::Fence => "Cluster fence agents",
        Protocol::Ocf => "OCF resource agents",
    };
    let _ = writeln!(
        m,
        ".TH {} {} \"\" \"instance-ha {}\" \"{manual}\"",
        roff(&upper),
        agent.man_section,
        agent.version
    );
    let _ = writeln!(m, ".SH NAME\n{} \\- {}", roff(agent.name), roff(agent.shortdesc));
    m.push_str(".SH SYNOPSIS\n");
    match agent.protocol {
        Protocol::Fence => {
            let _ = writeln!(m, ".B {}\n[\\fIOPTIONS\\fR]", roff(agent.name));
            let _ = writeln!(m, ".br\n.B {}\n< \\fIkey=value lines\\fR", roff(agent.name));
        }
        Protocol::Ocf => {
            let names: Vec<&str> = agent.actions.iter().map(|a| a.name).collect();
            let _ = writeln!(
                m,
                "[\\fBOCF_RESKEY_\\fIname\\fB=\\fIvalue\\fR ...] \\fB{}\\fR {{{}}}",
                roff(agent.name),
                names.join("|")
            );
        }
    }
    let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff(agent.longdesc.trim()));
    m.push_str(match agent.protocol {
        Protocol::Fence => {
            ".PP\nWithout command-line arguments the agent reads its options from standard input, one \
             \\fIkey\\fR=\\fIvalue\\fR per line, as Pacemaker sends them. Keys may use \\- or _ \
             interchangeably.\n.SH OPTIONS\n"
        }
        Protocol::Ocf => {
            ".PP\nPacemaker passes each parameter as the environment variable \
             \\fBOCF_RESKEY_\\fIname\\fR.\n.SH PARAMETERS\n"
        }
    });
    for p in agent.all_params().filter(|p| p.visible) {
        m.push_str(".TP\n");
        match (agent.protocol, p.getopt) {
            (Protocol::Fence, Some(g)) => {
                let _ = writeln!(m, ".B {}", opt(&g.mixed_text()));
            }
            _ => {
                let _ = writeln!(m, ".B {}", opt(p.name));
            }
        }
        // Each fact on its own line so that roff does not run them into the description.
        let mut lines = vec![roff(p.long_text().trim())];
        if let Type::Select(v) = p.ty {
            lines.push(format!("Allowed values: {}.", roff(&v.join(", "))));
        }
        if agent.protocol == Protocol::Fence {
            let mut names = vec![p.name];
            names.extend(p.deprecated);
            names.extend(p.aliases);
            lines.push(format!("Stdin name: {}.", opt(&names.join(", "))));
        } else if !p.deprecated.is_empty() || !p.aliases.is_empty() {
            let names: Vec<&str> = p.deprecated.iter().chain(p.aliases).copied().collect();
            lines.push(format!("Also accepted as: {}.", opt(&names.join(", "))));
        }
        if let Some(d) = p.default.filter(|d| !d.is_empty()) {
            lines.push(format!("Default: {}.", roff(d)));
        }
        if p.required {
            lines.push("Required.".into());
        }
        if p.secret {
            lines.push("Secret: never logged.".into());
        }
        m.push_str(&lines.join("\n.br\n"));
        m.push('\n');
    }
    m.push_str(".SH ACTIONS\n");
    for a in agent.actions {
        let _ = writeln!(m, ".TP\n.B {}\n{}", opt(a.name), roff(a.description));
        if let Some(t) = a.timeout {
            let _ = writeln!(m, "Default timeout: {t} s.");
        }
    }
    if !agent.exit_statuses.is_empty() {
        m.push_str(".SH EXIT STATUS\n");
        for e in agent.exit_statuses {
            let _ = writeln!(m, ".TP\n.B {}\n{}", e.code, roff(e.meaning));
        }
    }
    for (title, body) in agent.notes {
        let _ = writeln!(m, ".SH {}\n{}", roff(&title.to_uppercase()), roff(body.trim()));
    }
    m.push_str(".SH SEE ALSO\n");
    m.push_str(match agent.protocol {
        Protocol::Fence => ".BR stonith_admin (8),\n.BR pcs (8),\n.BR fence_compute (8),\n.BR NovaEvacuate (7)\n",
        Protocol::Ocf => ".BR crm_resource (8),\n.BR pcs (8),\n.BR ocf-tester (8),\n.BR fence_compute (8)\n",
    });
    m
}

#[cfg(test)]
mod tests {
    use super::roff;

    #[test]
    fn escapes_requests_and_backslashes() {
        assert_eq!(roff(".x\n'y\na\\b"), "\\&.x\n\\&'y\na\\eb");
    }
}
