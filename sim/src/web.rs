//! Small text helpers for URLs and pages.

/// Percent-encodes `s` for a URL path segment or query value (RFC 3986 unreserved
/// characters kept).
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string from `pairs`, encoded.
pub fn query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Escapes text for HTML.
pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        assert_eq!(super::percent("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(super::query(&[("x", "1&2".into())]), "x=1%262");
        assert_eq!(super::html("<a\">"), "&lt;a&quot;&gt;");
    }
}
