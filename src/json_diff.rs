//! Deep comparison of JSON documents that names the paths that differ
//! (`endpoints[1].config.url`), never the values, so a diff can be shown
//! without leaking secrets.

use serde_json::Value;

/// Paths at which `actual` differs from `expected`: changed values, keys
/// missing from either side, arrays of different length (named as the array
/// plus the first index past the shorter one). Object key order is ignored.
/// Empty means deep-equal.
pub fn diff_paths(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, String::new(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = join(&path, k);
                match y.get(k) {
                    Some(vb) => walk(va, vb, p, out),
                    None => out.push(format!("{p} (missing)")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{} (unexpected)", join(&path, k)));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                walk(va, vb, format!("{path}[{i}]"), out);
            }
            if x.len() != y.len() {
                out.push(format!(
                    "{path}[{}] (length {} instead of {})",
                    x.len().min(y.len()),
                    y.len(),
                    x.len()
                ));
            }
        }
        _ if a == b => {}
        _ => out.push(if path.is_empty() { "$".into() } else { path }),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_have_no_diff_whatever_the_key_order() {
        let a = json!({"a": 1, "b": {"c": [1, 2]}});
        let b = json!({"b": {"c": [1, 2]}, "a": 1});
        assert!(diff_paths(&a, &b).is_empty());
    }

    #[test]
    fn names_every_differing_path() {
        let a = json!({"hub": {"name": "x", "t": 3}, "endpoints": [{"id": 1}], "k": "s"});
        let b =
            json!({"hub": {"name": "y"}, "endpoints": [{"id": 1}, {"id": 2}], "extra": 0, "k": 1});
        assert_eq!(
            diff_paths(&a, &b),
            vec![
                "hub.name",
                "hub.t (missing)",
                "endpoints[1] (length 2 instead of 1)",
                "k",
                "extra (unexpected)"
            ]
        );
        assert_eq!(diff_paths(&json!(1), &json!(2)), vec!["$"]);
    }
}
