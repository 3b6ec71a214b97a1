//! Fence-agent metadata in the fence-agents format.
//!
//! Pacemaker derives three behaviours from this document, so its shape follows the reference
//! agents' output (`fencing.py`, see REFERENCE.md §2.8) closely: which parameter carries the
//! target (`port` if such a parameter exists, so both `port` and `plug` are listed), whether
//! `reboot` is supported (absent ⇒ remapped to `off`), and automatic unfencing (`automatic="1"`
//! on `on`). Renamed parameters are listed twice: the old name with `deprecated="1"`, the new one
//! with `obsoletes="<old>"`. Entries are sorted by `(order, name)` like fencing.py sorts them.

use crate::xml::esc;
use crate::{Agent, Param, Type};
use std::fmt::Write;

struct Entry<'a> {
    name: &'a str,
    param: &'a Param,
    deprecated: bool,
    obsoletes: Option<&'a str>,
}

/// Renders `agent` as fence-agent metadata XML (ending with a newline).
pub fn fence_xml(agent: &Agent) -> String {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for p in agent.all_params().filter(|p| p.visible && p.getopt.is_some()) {
        for d in p.deprecated {
            entries.push(Entry { name: d, param: p, deprecated: true, obsoletes: None });
        }
        entries.push(Entry {
            name: p.name,
            param: p,
            deprecated: false,
            obsoletes: p.deprecated.first().copied(),
        });
    }
    entries.sort_by(|a, b| (a.param.order, a.name).cmp(&(b.param.order, b.name)));

    let mut x = String::with_capacity(8192);
    x.push_str("<?xml version=\"1.0\" ?>\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" shortdesc=\"{}\" >",
        esc(agent.name),
        esc(agent.shortdesc)
    );
    let _ = writeln!(x, "<longdesc>{}</longdesc>", esc(agent.longdesc));
    let _ = writeln!(x, "<vendor-url>{}</vendor-url>", esc(agent.vendor_url));
    x.push_str("<parameters>\n");
    for e in &entries {
        let p = e.param;
        let _ = write!(
            x,
            "\t<parameter name=\"{}\" unique=\"{}\" required=\"{}\"",
            esc(e.name),
            u8::from(p.unique),
            u8::from(p.required)
        );
        if e.deprecated {
            x.push_str(" deprecated=\"1\"");
        }
        if let Some(o) = e.obsoletes {
            let _ = write!(x, " obsoletes=\"{}\"", esc(o));
        }
        x.push_str(">\n");
        if let Some(g) = p.getopt {
            let _ = writeln!(x, "\t\t<getopt mixed=\"{}\" />", esc(&g.mixed_text()));
        }
        let default = p.default.map(|d| format!(" default=\"{}\"", esc(d))).unwrap_or_default();
        match p.ty {
            Type::Select(values) => {
                let _ = writeln!(x, "\t\t<content type=\"select\"{default}  >");
                for v in values {
                    let _ = writeln!(x, "\t\t\t<option value=\"{}\" />", esc(v));
                }
                x.push_str("\t\t</content>\n");
            }
            ty => {
                let _ = writeln!(x, "\t\t<content type=\"{}\"{default}  />", ty.fence_name());
            }
        }
        let _ = writeln!(x, "\t\t<shortdesc lang=\"en\">{}</shortdesc>", esc(p.shortdesc));
        x.push_str("\t</parameter>\n");
    }
    x.push_str("</parameters>\n<actions>\n");
    // fencing.py lists `on` first, with its unfencing attributes, then the rest in order.
    let advertised = agent.actions.iter().filter(|a| a.advertised);
    for a in advertised.clone().filter(|a| a.name == "on") {
        x.push_str("\t<action name=\"on\"");
        if a.on_target {
            x.push_str(" on_target=\"1\"");
        }
        let _ = writeln!(x, " automatic=\"{}\"/>", u8::from(a.automatic.unwrap_or(false)));
    }
    for a in advertised.filter(|a| a.name != "on") {
        x.push_str("\t<action name=\"");
        x.push_str(&esc(a.name));
        x.push('"');
        if a.on_target {
            x.push_str(" on_target=\"1\"");
        }
        x.push_str(" />\n");
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}
