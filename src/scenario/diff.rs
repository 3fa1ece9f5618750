//! How a scenario words a deep-equal failure: the JSON paths that differ
//! (from `json_diff`, which never shows values, so no API key reaches the
//! console), at most a few of them on one line.

use serde_json::Value;

use crate::device::bounded;

/// Hub text quoted in a scenario's message: cut to 80 characters (a hub
/// may send a 4 KiB "MAC"), in Rust debug quoting.
pub(crate) fn quoted(s: &str) -> String {
    format!("{:?}", bounded(s, 80))
}

/// Every path at which `actual` differs from `expected`; empty when
/// deep-equal.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    crate::device::json_diff::diff_paths(expected, actual)
}

/// The paths as one line: at most `max`, then a count of the rest.
pub fn summarize(paths: &[String], max: usize) -> String {
    // A path is made of the hub's key names: each is bounded, so a hub
    // cannot fill the console with one 200 KB key.
    let mut parts: Vec<String> = paths.iter().take(max).map(|p| bounded(p, 120)).collect();
    if paths.len() > max {
        parts.push(format!("and {} more", paths.len() - max));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_name_paths_not_values_and_are_bounded() {
        let e = json!({"api_key": "SECRET-A", "a": [1, 2, 3, 4]});
        let a = json!({"api_key": "SECRET-B", "a": [5, 6, 7, 8]});
        let s = summarize(&diff(&e, &a), 3);
        assert_eq!(s, "api_key, a[0], a[1], and 2 more");
        assert!(!s.contains("SECRET"));
    }
}
