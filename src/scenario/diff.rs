//! Deep-equal comparison of JSON documents that names every differing path,
//! so a config that did not come back intact says exactly where.

use serde_json::Value;

/// One difference between an expected and an actual document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// JSON path such as `$.hub.server_url` or `$.endpoints[1].config.url`.
    pub path: String,
    /// What differs, e.g. `expected "a", got "b"` or `missing`.
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// Every difference between `expected` and `actual`, in document order.
/// Numbers compare as JSON values (`1` and `1.0` differ), objects by key
/// regardless of key order, arrays element by element.
pub fn diff(expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk("$".to_owned(), expected, actual, &mut out);
    out
}

/// The differences as one line, at most `max` paths then a count of the rest.
pub fn summarize(diffs: &[Difference], max: usize) -> String {
    let mut parts: Vec<String> = diffs.iter().take(max).map(|d| d.to_string()).collect();
    if diffs.len() > max {
        parts.push(format!("and {} more", diffs.len() - max));
    }
    parts.join("; ")
}

fn walk(path: String, expected: &Value, actual: &Value, out: &mut Vec<Difference>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = child(&path, k);
                match a.get(k) {
                    Some(av) => walk(p, ev, av, out),
                    None => out.push(Difference {
                        path: p,
                        what: format!("missing (expected {})", brief(ev)),
                    }),
                }
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    out.push(Difference {
                        path: child(&path, k),
                        what: format!("unexpected {}", brief(av)),
                    });
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(format!("{path}[{i}]"), ev, av, out);
            }
            if e.len() != a.len() {
                out.push(Difference {
                    path,
                    what: format!("expected {} elements, got {}", e.len(), a.len()),
                });
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(Difference {
            path,
            what: format!("expected {}, got {}", brief(e), brief(a)),
        }),
    }
}

fn child(path: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if simple {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

/// A value short enough for a one-line message.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_have_no_differences_whatever_the_key_order() {
        let a = json!({"hub": {"a": 1, "b": [1, 2]}, "endpoints": []});
        let b = json!({"endpoints": [], "hub": {"b": [1, 2], "a": 1}});
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn names_every_differing_path() {
        let e = json!({"api_key": "k", "hub": {"server_url": "u", "server_type": 3},
                       "endpoints": [{"config": {"url": "x"}}], "gone": 1});
        let a = json!({"api_key": "k", "hub": {"server_url": "v", "server_type": 3.0},
                       "endpoints": [{"config": {"url": "y"}}, {}], "extra": null});
        let paths: Vec<String> = diff(&e, &a).into_iter().map(|d| d.path).collect();
        assert_eq!(
            paths,
            [
                "$.hub.server_url",
                "$.hub.server_type",
                "$.endpoints[0].config.url",
                "$.endpoints",
                "$.gone",
                "$.extra"
            ]
        );
    }

    #[test]
    fn odd_keys_are_quoted_and_summaries_are_bounded() {
        let d = diff(&json!({"a b": 1}), &json!({"a b": 2}));
        assert_eq!(d[0].path, r#"$["a b"]"#);
        let many = diff(&json!([1, 2, 3, 4]), &json!([5, 6, 7, 8]));
        assert_eq!(
            summarize(&many, 2),
            "$[0]: expected 1, got 5; $[1]: expected 2, got 6; and 2 more"
        );
    }
}
