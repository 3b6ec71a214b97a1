//! Small URL helpers: percent-encoding of query values and path segments,
//! joining endpoint bases with paths, and deriving version roots. Kept here
//! rather than pulling the `url` crate's API into every call site.

/// Percent-encodes a query value or path segment (RFC 3986 unreserved kept).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` and `+` in a query value; invalid escapes are kept as is.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Builds a query string from pairs (values encoded), with a leading `?`
/// unless empty.
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// `base` + `/` + `path` with exactly one slash between them.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The path (and query) part of a URL, for logs and error messages.
pub(crate) fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// Replaces the project-id placeholders legacy catalogs and overrides carry.
pub(crate) fn fill_project(url: &str, project_id: Option<&str>) -> String {
    match project_id {
        Some(p) => url
            .replace("%(tenant_id)s", p)
            .replace("%(project_id)s", p)
            .replace("$(tenant_id)s", p)
            .replace("$(project_id)s", p),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode() {
        assert_eq!(encode("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
        assert_eq!(decode("a%20b%2Fc%26d%3D%C3%A9"), "a b/c&d=é");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz+x"), "%zz x");
        assert_eq!(
            query(&[("host", "c 1".into()), ("limit", "5".into())]),
            "?host=c%201&limit=5"
        );
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn urls() {
        assert_eq!(join("http://h/v2.1/", "/servers"), "http://h/v2.1/servers");
        assert_eq!(
            path_of("http://h:8774/v2.1/servers?x=1"),
            "/v2.1/servers?x=1"
        );
        assert_eq!(path_of("http://h:8774"), "/");
        assert_eq!(
            fill_project("http://n/v2.1/%(tenant_id)s", Some("p1")),
            "http://n/v2.1/p1"
        );
    }
}
