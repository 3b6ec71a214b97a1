//! `--help` / `usage` text.

use crate::{Agent, Protocol};
use std::fmt::Write;

/// Width of the option column in fence-agent help (as fencing.py prints it).
const OPT_COL: usize = 31;
/// Indentation of wrapped description lines.
const WRAP_INDENT: usize = 40;
const WIDTH: usize = 80;

/// Renders the usage text of `agent` (ending with a newline).
pub fn usage(agent: &Agent) -> String {
    match agent.protocol {
        Protocol::Fence => fence_usage(agent),
        Protocol::Ocf => ocf_usage(agent),
    }
}

fn fence_usage(agent: &Agent) -> String {
    let mut s = format!("Usage:\n\t{} [options]\nOptions:\n", agent.name);
    for p in agent.all_params().filter(|p| p.visible) {
        let Some(g) = p.getopt else { continue };
        let left = g.mixed_text();
        let mut text = p.shortdesc.to_string();
        if let Some(d) = p.default.filter(|d| !d.is_empty()) {
            let _ = write!(text, " (default: {d})");
        }
        let first_width = WIDTH.saturating_sub(3 + OPT_COL.max(left.len() + 1));
        let lines = wrap(&text, first_width.max(20), WIDTH - WRAP_INDENT);
        let _ = write!(s, "   {left:<w$}", w = OPT_COL.max(left.len() + 1));
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                s.push_str(&" ".repeat(WRAP_INDENT));
            }
            s.push_str(l);
            s.push('\n');
        }
        if lines.is_empty() {
            s.push('\n');
        }
    }
    let actions: Vec<&str> =
        agent.actions.iter().filter(|a| a.advertised).map(|a| a.name).collect();
    let _ = writeln!(s, "Actions: {} (default: {})", actions.join(", "), agent.default_action);
    s.push_str(
        "Without arguments, options are read from standard input as key=value lines, \
         as Pacemaker sends them.\n",
    );
    s
}

fn ocf_usage(agent: &Agent) -> String {
    let actions: Vec<&str> = agent.actions.iter().map(|a| a.name).collect();
    let mut s = format!("usage: {} {{{}}}\n\n{}\n\n", agent.name, actions.join("|"), agent.shortdesc);
    s.push_str("Parameters (environment OCF_RESKEY_<name>):\n");
    let width = agent.all_params().filter(|p| p.visible).map(|p| p.name.len()).max().unwrap_or(0);
    for p in agent.all_params().filter(|p| p.visible) {
        let mut text = p.shortdesc.to_string();
        if p.required {
            text.push_str(" (required)");
        }
        if let Some(d) = p.default.filter(|d| !d.is_empty()) {
            let _ = write!(text, " (default: {d})");
        }
        let _ = writeln!(s, "   {:<width$}  {text}", p.name);
    }
    s
}

/// Greedy word wrap: the first line may be `first` wide, the rest `rest` wide.
fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let limit = if lines.is_empty() { first } else { rest };
        if !cur.is_empty() && cur.len() + 1 + word.len() > limit {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_on_word_boundaries() {
        let l = wrap("aa bb cc dd", 5, 8);
        assert_eq!(l, vec!["aa bb", "cc dd"]);
        assert!(wrap("", 5, 5).is_empty());
    }
}
