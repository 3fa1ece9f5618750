//! Deep comparison of JSON documents that names the paths that differ
//! (`endpoints[1].config.url`), never the values, so a diff can be shown
//! without leaking secrets; and the exact form of a document as the hub
//! sent it, so numbers compare by their exact decimal value (never through
//! a lossy `f64`) and a document the harness could not rebuild exactly
//! (duplicate keys, numbers no `f64`/`i64`/`u64` holds) is recognised.

use std::collections::HashSet;

use serde_json::Value;

use super::bounded;

/// Marks a number in an exact form: a string that no hub string can be
/// (hub strings starting with it make the document inexact).
const NUM_TAG: &str = "\u{0}#num:";

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

/// How a JSON text compares with what the harness can rebuild from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exact {
    /// The document with every number replaced by its exact decimal value
    /// (a tagged string), for exact comparison with [`diff_paths`].
    pub form: Value,
    /// Why the parsed `serde_json::Value` is not the same document (so a
    /// config rebuilt from it would not be what the hub sent), if it is not.
    pub inexact: Option<String>,
    /// A key appears twice in one object: `form` holds only the last.
    pub duplicate_keys: bool,
    /// A number the parsed form holds exactly but would write otherwise
    /// (`9E2` as `900.0`, `1.50` as `1.5`, `-0` as `0`): a config rebuilt
    /// from it would not say it as the hub did, if there is one.
    pub respelled: Option<String>,
}

/// The exact form of a JSON text (which must be valid JSON).
pub fn exact(text: &str) -> Result<Exact, String> {
    let parsed: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let scan = scan(text)?;
    let duplicate_keys = scan.duplicate.is_some();
    let mut inexact = scan
        .duplicate
        .map(|k| format!("key {:?} appears twice in one object", bounded(&k, 40)));
    let mut literals = scan.numbers.into_iter();
    let mut form = parsed;
    let mut respelled = None;
    let mut seen = Seen {
        inexact: &mut inexact,
        respelled: &mut respelled,
    };
    replace_numbers(&mut form, &mut literals, &mut seen, "");
    if literals.next().is_some() && inexact.is_none() {
        inexact = Some("the document holds numbers its parsed form lost".into());
    }
    Ok(Exact {
        form,
        inexact,
        duplicate_keys,
        respelled,
    })
}

/// What [`replace_numbers`] found first: a number not held exactly, one
/// that would be written otherwise.
struct Seen<'a> {
    inexact: &'a mut Option<String>,
    respelled: &'a mut Option<String>,
}

/// Paths at which the JSON text `actual` differs from `expected`, numbers
/// compared by exact decimal value (`1.50` equals `1.5`; an integer above
/// 2^64 equals only itself). Texts that are not JSON differ at `$`.
pub fn diff_texts(expected: &str, actual: &str) -> Vec<String> {
    match (exact(expected), exact(actual)) {
        (Ok(a), Ok(b)) => {
            if a.duplicate_keys || b.duplicate_keys {
                // Duplicate keys: only the same token stream is the same.
                if minify(expected) == minify(actual) {
                    Vec::new()
                } else {
                    vec!["$ (documents with duplicate keys differ)".into()]
                }
            } else {
                diff_paths(&a.form, &b.form)
            }
        }
        (Err(_), _) => vec!["$ (expected document is not JSON)".into()],
        (_, Err(_)) => vec!["$ (not JSON)".into()],
    }
}

fn replace_numbers(
    v: &mut Value,
    literals: &mut std::vec::IntoIter<String>,
    seen: &mut Seen<'_>,
    path: &str,
) {
    // The path and the literal are the hub's text: bounded in messages.
    let at = bounded(if path.is_empty() { "$" } else { path }, 120);
    match v {
        Value::Number(n) => {
            let parsed = n.to_string();
            let Some(lit) = literals.next() else {
                if seen.inexact.is_none() {
                    *seen.inexact = Some("numbers out of step with the text".into());
                }
                return;
            };
            let exact = canonical(&lit);
            if seen.inexact.is_none() && exact != canonical(&parsed) {
                *seen.inexact = Some(format!(
                    "number at {at} cannot be held exactly ({} digits)",
                    lit.len()
                ));
            }
            if seen.respelled.is_none() && lit != parsed {
                *seen.respelled = Some(format!(
                    "number at {at} is written {}, a rebuilt config would say {}",
                    bounded(&lit, 40),
                    bounded(&parsed, 40)
                ));
            }
            *v = Value::String(format!("{NUM_TAG}{exact}"));
        }
        Value::String(s) if s.starts_with(NUM_TAG) && seen.inexact.is_none() => {
            *seen.inexact = Some("a string begins with a NUL character".into());
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                replace_numbers(item, literals, seen, &format!("{path}[{i}]"));
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                replace_numbers(item, literals, seen, &join(path, k));
            }
        }
        _ => {}
    }
}

/// A number literal as `digits e exponent` with no leading or trailing
/// zeros: equal strings mean equal values.
fn canonical(lit: &str) -> String {
    let (neg, rest) = match lit.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, lit),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i128>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i128;
    let trimmed = digits.trim_start_matches('0').to_owned();
    digits = trimmed;
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return "0".into();
    }
    format!("{}{digits}e{exp}", if neg { "-" } else { "" })
}

/// What a scan of a JSON text finds: its number literals in document
/// order, and the first key repeated within one object.
struct Scan {
    numbers: Vec<String>,
    duplicate: Option<String>,
    /// Objects open around the first repeated key (1: the top level).
    duplicate_depth: usize,
}

/// The first key repeated within one object of the JSON text `text`, and
/// how many objects and arrays are open around it (1: the top level).
/// Parsers keep one of the two values; which one the hub meant is unknown.
pub fn duplicate_key(text: &str) -> Option<(String, usize)> {
    let scan = scan(text).ok()?;
    scan.duplicate.map(|k| (k, scan.duplicate_depth))
}

/// Scan valid JSON text. Bounded by the text's length.
fn scan(text: &str) -> Result<Scan, String> {
    let b = text.as_bytes();
    let mut numbers = Vec::new();
    let mut duplicate = None;
    let mut duplicate_depth = 0;
    // Per open container: None for an array, Some(keys) for an object,
    // with whether the next string is a key.
    let mut stack: Vec<Option<(HashSet<String>, bool)>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                stack.push(Some((HashSet::new(), true)));
                i += 1;
            }
            b'[' => {
                stack.push(None);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                if let Some(Some((_, expect_key))) = stack.last_mut() {
                    *expect_key = true;
                }
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                let lit = text.get(start..i.min(b.len())).unwrap_or_default();
                let depth = stack.len();
                if let Some(Some((keys, expect_key))) = stack.last_mut() {
                    if *expect_key {
                        *expect_key = false;
                        let key: String = serde_json::from_str(lit).map_err(|e| e.to_string())?;
                        if !keys.insert(key.clone()) && duplicate.is_none() {
                            duplicate = Some(key);
                            duplicate_depth = depth;
                        }
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                numbers.push(text[start..i].to_owned());
            }
            _ => i += 1,
        }
    }
    Ok(Scan {
        numbers,
        duplicate,
        duplicate_depth,
    })
}

/// The text without whitespace outside strings.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
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

    #[test]
    fn numbers_compare_by_exact_value() {
        let big = r#"{"n": 123456789012345678901234567890, "f": 1.50}"#;
        assert!(diff_texts(
            big,
            r#"{ "f": 1.5e0, "n": 123456789012345678901234567890 }"#
        )
        .is_empty());
        // As f64 these two are the same number; exactly they are not.
        assert_eq!(
            diff_texts(big, r#"{"n": 123456789012345678901234567891, "f": 1.5}"#),
            ["n"]
        );
        assert_eq!(
            diff_texts(big, r#"{"n": 1.2345678901234568e+29, "f": 1.5}"#),
            ["n"]
        );
        assert!(diff_texts("[0, -0, 0.0]", "[0.00, 0, -0e5]").is_empty());
        assert_eq!(diff_texts("[1]", "[\"1\"]"), ["[0]"]);
    }

    #[test]
    fn what_cannot_be_rebuilt_exactly_is_named() {
        let e = exact(r#"{"a": 1.50, "b": [1e2, 0.1]}"#).unwrap();
        assert_eq!(e.inexact, None);
        // Held exactly, but a rebuilt document would write them otherwise.
        let said = "number at a is written 1.50, a rebuilt config would say 1.5";
        assert_eq!(e.respelled.as_deref(), Some(said));
        for text in [r#"{"u": 9E2}"#, r#"{"u": -0}"#, r#"{"u": 1e-05}"#] {
            assert!(exact(text).unwrap().respelled.is_some(), "{text}");
        }
        for text in [
            r#"{"u": 900, "v": 9.0, "w": -300, "x": 0.1}"#,
            "[1.5, 18446744073709551615]",
        ] {
            assert_eq!(exact(text).unwrap().respelled, None, "{text}");
        }
        let e = exact(r#"{"hub": {"n": 123456789012345678901234567890}}"#).unwrap();
        assert!(e.inexact.unwrap().contains("hub.n"));
        let e = exact(r#"{"a": 1, "a": 2}"#).unwrap();
        assert!(e.inexact.unwrap().contains("\"a\" appears twice"));
        // The hub's key names and literals are bounded in these messages.
        let (key, zeros) = ("k".repeat(10_000), "0".repeat(10_000));
        let e = exact(&format!(r#"{{"{key}": {{"{key}": 1.{zeros}}}}}"#)).unwrap();
        let said = e.respelled.unwrap();
        assert!(
            said.starts_with("number at kkk") && said.len() < 400,
            "{said}"
        );
        assert!(said.ends_with("a rebuilt config would say 1.0"), "{said}");
        let e = exact(&format!(r#"{{"{key}": 1, "{key}": 2}}"#)).unwrap();
        assert!(e.inexact.unwrap().len() < 100);
        assert_eq!(duplicate_key(r#"{"a":1,"a":2}"#), Some(("a".into(), 1)));
        assert_eq!(
            duplicate_key(r#"{"x":[{"s":1,"t":0,"s":0}]}"#),
            Some(("s".into(), 3))
        );
        assert_eq!(
            duplicate_key(r#"{"a":{"a":1},"b":[{"a":2},{"a":3}]}"#),
            None
        );
        assert!(diff_texts(r#"{"a": 1, "a": 2}"#, r#"{"a":1,"a":2}"#).is_empty());
        assert!(!diff_texts(r#"{"a": 1, "a": 2}"#, r#"{"a":2}"#).is_empty());
        // Strings with escapes and brackets do not confuse the scan.
        let e = exact(r#"{"s": "a\"b{[1,2", "t": "\\", "n": 3}"#).unwrap();
        assert_eq!(e.inexact, None);
        assert_eq!(e.form["n"], json!(format!("{NUM_TAG}3e0")));
    }
}
