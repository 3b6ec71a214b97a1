//! Reading a fence agent's options: `key=value` lines on stdin, or getopt-style arguments.
//!
//! Pacemaker runs fence agents with no arguments and writes the options to stdin; operators run
//! them with GNU getopt-style arguments. Exactly one source is used: any argument at all selects
//! the command line (REFERENCE.md §2.1).
//!
//! Stdin: lines are trimmed (CRLF and trailing spaces tolerated), blank lines and `#` comments
//! skipped, each line split at its first `=` (so `=` may appear in values), one pair of
//! surrounding double quotes removed from the value, `-` and `_` equivalent in keys, the last
//! duplicate wins. Unknown keys are warned about by name only (the value may be a mistyped
//! secret). Booleans are read by value.
//!
//! Command line: short options (`-n x`, `-nx`, grouped flags `-vq`), long options (`--plug=x`,
//! `--plug x`, unique prefixes such as `--plu=x`), `--` ends the options, and leftover words are
//! warned about. `-v` may be repeated to raise the verbosity.

use iha_meta::{Agent, Param, Type, Values, parse_bool};

/// The outcome of reading the options.
#[derive(Debug)]
pub struct Parsed {
    pub values: Values,
    /// How many times `-v`/`--verbose` appeared (stdin `verbose=1` counts as one).
    pub verbose_count: u32,
    /// Problems that do not stop the agent, to be logged once logging is set up.
    pub warnings: Vec<String>,
    /// Whether the options came from stdin (as from Pacemaker).
    pub from_stdin: bool,
}

/// A command line the agent cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_flag(p: &Param) -> bool {
    p.getopt.map_or(matches!(p.ty, Type::Boolean), |g| !g.takes_value())
}

/// Parses `key=value` lines as Pacemaker writes them.
pub fn parse_stdin(agent: &'static Agent, text: &str) -> Parsed {
    let mut values = Values::new(agent);
    let mut warnings = Vec::new();
    let mut verbose_count = 0;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let Some(param) = agent.param(key) else {
            warnings.push(format!("Parse error: Ignoring unknown option '{key}'"));
            continue;
        };
        if is_flag(param) && matches!(param.ty, Type::Boolean) {
            match parse_bool(value) {
                Some(b) => {
                    values.set(param.name, if b { "1" } else { "0" });
                    if param.name == "verbose" {
                        verbose_count = u32::from(b);
                    }
                }
                None => warnings.push(format!(
                    "Parse error: Ignoring option '{key}' because it does not have value"
                )),
            }
        } else {
            values.set(param.name, value);
        }
    }
    Parsed { values, verbose_count, warnings, from_stdin: true }
}

/// Parses getopt-style arguments (without the program name).
pub fn parse_argv(agent: &'static Agent, args: &[String]) -> Result<Parsed, ParseError> {
    let mut values = Values::new(agent);
    let mut warnings = Vec::new();
    let mut verbose_count = 0u32;
    let mut leftovers: Vec<&str> = Vec::new();
    let with_getopt: Vec<&'static Param> = agent.all_params().filter(|p| p.getopt.is_some()).collect();
    let mut set = |p: &'static Param, v: String, vc: &mut u32| {
        if p.name == "verbose" {
            *vc += 1;
        }
        values.set(p.name, v);
    };
    let unknown = |opt: &str| {
        ParseError(format!("Parse error: option {opt} not recognized\nPlease use '-h' for usage"))
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "--" {
            leftovers.extend(args[i..].iter().map(String::as_str));
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let p = resolve_long(&with_getopt, name).map_err(|e| match e {
                LongError::Unknown => unknown(&format!("--{name}")),
                LongError::Ambiguous => ParseError(format!(
                    "Parse error: option --{name} not a unique prefix\nPlease use '-h' for usage"
                )),
            })?;
            if is_flag(p) {
                if inline.is_some() {
                    return Err(ParseError(format!(
                        "Parse error: option --{name} must not have an argument"
                    )));
                }
                set(p, "1".into(), &mut verbose_count);
            } else if let Some(v) = inline {
                set(p, v.to_string(), &mut verbose_count);
            } else if let Some(v) = args.get(i) {
                i += 1;
                set(p, v.clone(), &mut verbose_count);
            } else {
                return Err(ParseError(format!("Parse error: option --{name} requires argument")));
            }
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let p = with_getopt
                    .iter()
                    .copied()
                    .find(|p| p.getopt.is_some_and(|g| g.short == Some(c)))
                    .ok_or_else(|| unknown(&format!("-{c}")))?;
                if is_flag(p) {
                    set(p, "1".into(), &mut verbose_count);
                } else if j < chars.len() {
                    set(p, chars[j..].iter().collect(), &mut verbose_count);
                    break;
                } else if let Some(v) = args.get(i) {
                    i += 1;
                    set(p, v.clone(), &mut verbose_count);
                } else {
                    return Err(ParseError(format!("Parse error: option -{c} requires argument")));
                }
            }
        } else {
            leftovers.push(a);
        }
    }
    if !leftovers.is_empty() {
        warnings.push(format!("Unused arguments on command line: {leftovers:?}"));
    }
    Ok(Parsed { values, verbose_count, warnings, from_stdin: false })
}

enum LongError {
    Unknown,
    Ambiguous,
}

/// GNU getopt long-option lookup: an exact match wins, else a unique prefix.
fn resolve_long(params: &[&'static Param], name: &str) -> Result<&'static Param, LongError> {
    let long = |p: &Param| p.getopt.map(|g| g.long).unwrap_or("");
    if let Some(p) = params.iter().find(|p| long(p) == name) {
        return Ok(p);
    }
    let mut found = params.iter().filter(|p| !name.is_empty() && long(p).starts_with(name));
    match (found.next(), found.next()) {
        (Some(p), None) => Ok(p),
        (Some(_), Some(_)) => Err(LongError::Ambiguous),
        _ => Err(LongError::Unknown),
    }
}

/// Splits a command into words like a POSIX shell would, without running one: single quotes,
/// double quotes (with `\"` and `\\`) and backslash escapes. No expansion of any kind.
pub fn split_words(s: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(ParseError("unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(ParseError("unterminated double quote".into())),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(ParseError("unterminated double quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}
