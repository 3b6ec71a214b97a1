//! Parsing `attrd_updater` query output.
//!
//! Every Pacemaker from 1.1 to 3.x prints one line per host:
//! `name="evacuate" host="compute-0.example.com" value="yes"`; Pacemaker 2.1 and later
//! XML-escape special characters inside the quotes.

/// Returns `(host, value)` for every well-formed line; other lines are ignored.
pub fn parse_attrd_lines(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<(String, String)> {
    let host = field(line, "host")?;
    let value = field(line, "value").unwrap_or_default();
    Some((unescape(&host), unescape(&value)))
}

/// The text between `key="` and the next `"` (values are escaped, so they hold no raw quote).
fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=\"");
    let mut rest = line;
    loop {
        let i = rest.find(&pat)?;
        // Require a word boundary so `host=` does not match inside `xhost=`.
        let boundary = i == 0 || rest.as_bytes()[i - 1] == b' ';
        rest = &rest[i + pat.len()..];
        if boundary {
            let end = rest.find('"')?;
            return Some(rest[..end].to_string());
        }
    }
}

/// Undoes XML escaping (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, numeric references).
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pacemaker_output() {
        let text = "name=\"evacuate\" host=\"compute-0.example.com\" value=\"yes\"\n\
                    name=\"evacuate\" host=\"compute-1\" value=\"ctl0@1795285850\"\n\
                    name=\"evacuate\" host=\"c2\" value=\"\"\n\
                    Could not query value\n\
                    name=\"evacuate\" host=\"a&amp;b\" value=\"x&quot;y&#39;z\"\n";
        assert_eq!(
            parse_attrd_lines(text),
            vec![
                ("compute-0.example.com".into(), "yes".into()),
                ("compute-1".into(), "ctl0@1795285850".into()),
                ("c2".into(), "".into()),
                ("a&b".into(), "x\"y'z".into()),
            ]
        );
    }

    #[test]
    fn unescape_is_total() {
        assert_eq!(unescape("a&b"), "a&b");
        assert_eq!(unescape("&bogus;&#x41;"), "&bogus;A");
        assert_eq!(unescape("&"), "&");
    }
}
