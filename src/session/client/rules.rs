//! What a hub's answer must be, beyond HTTP, before anything is built on
//! it: no key twice in one object (a parser keeps one of the two values,
//! and which one the hub meant is unknown: `"state":1,"state":0` must never
//! read as off), the `error` field in the form its endpoint documents, and
//! the sections asked for present, so an answer meant for another request
//! (a hub that answers before it is asked shifts every answer by one) is
//! never taken for this one. Pure functions; `answer` and `calls` apply
//! them.

use serde_json::Value;

use crate::device::{json_diff, paths};

/// Why a duplicate key makes an answer unusable, for messages; `None` when
/// no key appears twice in one object of `text`.
pub fn duplicate_key(text: &str) -> Option<String> {
    json_diff::duplicate_key(text).map(|(key, _)| {
        format!(
            "key {:?} appears twice in one object, so which value the hub means is unknown",
            crate::device::bounded(&key, 40)
        )
    })
}

/// A key repeated at the top level of `text`, if `key` is the one repeated.
pub fn top_level_duplicate(text: &str, key: &str) -> bool {
    json_diff::duplicate_key(text).is_some_and(|(k, depth)| depth == 1 && k == key)
}

/// Whether the `error` field `e` of an answer on `path` says success, in
/// the form that endpoint documents: `0` (an integer, not `"0"`, `0.0` or
/// `false`) on config answers, `"success"` on actuator status; either on
/// the other writes, whose answer is undocumented beyond the status.
pub fn error_means_success(path: &str, e: &Value) -> bool {
    let zero = matches!(e, Value::Number(n) if n.as_u64() == Some(0) && n.to_string() == "0");
    let success = matches!(e, Value::String(s) if s == "success");
    match path {
        paths::CONFIG_GET => zero,
        paths::ACTUATORS_STATUS => success,
        _ => zero || success,
    }
}

/// Answers whose `error` field must be present: both config generations
/// and the actuator status document carry one. (Write answers may be a
/// bare `200`.)
pub fn error_required(path: &str) -> bool {
    matches!(path, paths::CONFIG_GET | paths::ACTUATORS_STATUS)
}

/// An `info/get` answer must hold every section asked for, as an object.
pub fn missing_section(doc: &Value, sections: &[&str]) -> Option<String> {
    sections.iter().find_map(|s| match doc.get(*s) {
        Some(Value::Object(_)) => None,
        Some(other) => Some(format!(
            "section {s:?} is {}, not an object",
            super::kind_of(other)
        )),
        None => Some(format!("section {s:?} asked for is missing")),
    })
}

/// The first slot an `actuators/status` answer lists more than once.
pub fn slot_listed_twice(slots: &[u32]) -> Option<u32> {
    let mut seen = std::collections::BTreeSet::new();
    slots.iter().copied().find(|s| !seen.insert(*s))
}

/// A `Content-Encoding` the harness did not ask for (it sends no
/// `Accept-Encoding`): a body it cannot read, so cannot check.
pub fn unasked_encoding(value: Option<&[u8]>) -> Option<String> {
    let v = value?;
    let text = String::from_utf8_lossy(v);
    let t = text.trim();
    (!t.is_empty() && !t.eq_ignore_ascii_case("identity")).then(|| crate::device::bounded(t, 40))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_documented_success_value_of_each_endpoint_is_success() {
        let zero = json!(0);
        let success = json!("success");
        assert!(error_means_success(paths::CONFIG_GET, &zero));
        assert!(!error_means_success(paths::CONFIG_GET, &success));
        assert!(error_means_success(paths::ACTUATORS_STATUS, &success));
        assert!(!error_means_success(paths::ACTUATORS_STATUS, &zero));
        for p in [paths::CONFIG_SET, paths::ACTUATORS_SET, paths::UPDATE_SEND] {
            assert!(error_means_success(p, &zero) && error_means_success(p, &success));
        }
        let zero_point: Value = serde_json::from_str("0.0").unwrap();
        let minus: Value = serde_json::from_str("-0").unwrap();
        for bad in [
            json!("0"),
            json!(false),
            json!(null),
            json!(""),
            json!(1),
            json!(-1),
            json!("fail"),
            json!(true),
            zero_point,
            minus,
        ] {
            for p in [
                paths::CONFIG_GET,
                paths::CONFIG_SET,
                paths::ACTUATORS_SET,
                paths::ACTUATORS_STATUS,
            ] {
                assert!(!error_means_success(p, &bad), "{p} {bad}");
            }
        }
    }

    #[test]
    fn duplicates_sections_and_slots_are_named() {
        let e = duplicate_key(r#"{"actuators":[{"slot":0,"state":1,"state":0}]}"#).unwrap();
        assert!(e.contains("\"state\" appears twice"), "{e}");
        assert_eq!(duplicate_key(r#"{"a":{"b":1},"c":{"b":2}}"#), None);
        assert!(top_level_duplicate(
            r#"{"error":1,"x":{},"error":0}"#,
            "error"
        ));
        assert!(!top_level_duplicate(
            r#"{"x":{"error":1,"error":0}}"#,
            "error"
        ));
        let info = json!({"hub": {}, "wifi": "x"});
        assert_eq!(missing_section(&info, &["hub"]), None);
        assert!(missing_section(&info, &["wifi"])
            .unwrap()
            .contains("a string"));
        assert!(missing_section(&json!({}), &["hub"])
            .unwrap()
            .contains("missing"));
        assert_eq!(slot_listed_twice(&[0, 1, 0]), Some(0));
        assert_eq!(slot_listed_twice(&[0, 1]), None);
        assert_eq!(unasked_encoding(Some(b"gzip")), Some("gzip".into()));
        assert_eq!(unasked_encoding(Some(b"identity")), None);
        assert_eq!(unasked_encoding(None), None);
    }
}
