//! OCF 1.0 resource-agent metadata.
//!
//! Printed with the `ra-api-1.dtd` DOCTYPE so that `ocf-tester` and `xmllint --valid` (run from
//! `/usr/share/resource-agents`) resolve and enforce the DTD: every parameter carries a
//! `<content>` element (the reference `nova-compute-wait` omits one and fails, REFERENCE.md O24).

use crate::xml::esc;
use crate::{Agent, Type};
use std::fmt::Write;

/// The OCF API version the metadata claims (the `<version>` element).
const OCF_VERSION: &str = "1.0";

/// Renders `agent` as OCF resource-agent metadata XML (ending with a newline).
pub fn ocf_xml(agent: &Agent) -> String {
    let mut x = String::with_capacity(8192);
    x.push_str("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" version=\"{}\">",
        esc(agent.name),
        esc(agent.version)
    );
    let _ = writeln!(x, "<version>{OCF_VERSION}</version>\n");
    let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", esc(agent.longdesc.trim()));
    let _ = writeln!(x, "<shortdesc lang=\"en\">{}</shortdesc>\n", esc(agent.shortdesc));
    x.push_str("<parameters>\n\n");
    for p in agent.all_params().filter(|p| p.visible) {
        let _ = writeln!(
            x,
            "<parameter name=\"{}\" unique=\"{}\" required=\"{}\">",
            esc(p.name),
            u8::from(p.unique),
            u8::from(p.required)
        );
        let mut long = p.long_text().trim().to_string();
        if let Type::Select(values) = p.ty {
            let _ = write!(long, "\nAllowed values: {}.", values.join(", "));
        }
        if !p.deprecated.is_empty() || !p.aliases.is_empty() {
            let names: Vec<&str> = p.deprecated.iter().chain(p.aliases).copied().collect();
            let _ = write!(long, "\nAlso accepted as: {}.", names.join(", "));
        }
        let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", esc(&long));
        let _ = writeln!(x, "<shortdesc lang=\"en\">{}</shortdesc>", esc(p.shortdesc));
        let default = p.default.map(|d| format!(" default=\"{}\"", esc(d))).unwrap_or_default();
        let _ = writeln!(x, "<content type=\"{}\"{default} />", p.ty.ocf_name());
        x.push_str("</parameter>\n\n");
    }
    x.push_str("</parameters>\n\n<actions>\n");
    for a in agent.actions.iter().filter(|a| a.advertised) {
        let _ = write!(x, "<action name=\"{}\"", esc(a.name));
        // Pad like the reference scripts so diffs against them stay readable.
        for _ in a.name.len()..12 {
            x.push(' ');
        }
        let _ = write!(x, " timeout=\"{}\"", a.timeout.unwrap_or(20));
        if let Some(i) = a.interval {
            let _ = write!(x, " interval=\"{i}\"");
        }
        if let Some(d) = a.depth {
            let _ = write!(x, " depth=\"{d}\"");
        }
        x.push_str(" />\n");
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}
