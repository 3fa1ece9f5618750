//! Scenario `actuator-status`: `actuators/status` lists exactly the hub's
//! actuator count of slots, each with the documented fields; skipped on a
//! hub without actuators.

use serde_json::Value;

use super::{Cx, Step, Stop};
use crate::device::actuators::SLOT_FIELDS;
use crate::session::client::quote_value;

/// Problems with an `actuators/status` answer for a hub with `count`
/// actuators, each naming the entry and field.
pub(super) fn check(doc: &Value, count: u32) -> Vec<String> {
    let mut problems = Vec::new();
    match doc.get("error") {
        Some(Value::String(s)) if s == "success" => {}
        Some(v) => problems.push(format!(
            "error should be \"success\", got {}",
            quote_value(v)
        )),
        None => problems.push("error missing".into()),
    }
    let Some(list) = doc.get("actuators").and_then(Value::as_array) else {
        problems.push("actuators missing or not a list".into());
        return problems;
    };
    if list.len() != count as usize {
        problems.push(format!(
            "{} slots listed, hub reports {count} actuators",
            list.len()
        ));
    }
    for (i, entry) in list.iter().enumerate() {
        for f in SLOT_FIELDS {
            match entry.get(*f) {
                None => problems.push(format!("actuators[{i}].{f} missing")),
                Some(v) if !v.is_i64() => problems.push(format!(
                    "actuators[{i}].{f} should be an integer, got {}",
                    quote_value(v)
                )),
                Some(_) => {}
            }
        }
        if let Some(s) = entry.get("slot").and_then(Value::as_u64) {
            if s != i as u64 {
                problems.push(format!("actuators[{i}].slot is {s}, expected {i}"));
            }
        }
        if let Some(s) = entry.get("state").and_then(Value::as_i64) {
            if s != 0 && s != 1 {
                problems.push(format!("actuators[{i}].state should be 0 or 1, got {s}"));
            }
        }
    }
    problems
}

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    let count = cx.require_info().await?.hub.num_actuators;
    if count == 0 {
        return Err(Stop::Skip("hub has no actuators".into()));
    }
    let doc = cx.client.actuator_status_raw().await?;
    let problems = check(&doc, count);
    if !problems.is_empty() {
        return Err(Stop::Fail(format!(
            "actuators/status: {}",
            problems.join("; ")
        )));
    }
    let on: Vec<String> = doc["actuators"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["state"] == 1)
        .map(|e| e["slot"].to_string())
        .collect();
    cx.note(format!(
        "{count} slots; on now: {}",
        if on.is_empty() {
            "none".into()
        } else {
            on.join(", ")
        }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(n: u32, state: u8) -> Value {
        json!({"slot": n, "state": state, "last_run": 0, "next_window_start": 0,
               "next_window_end": 0, "cur_ma": 0, "typ_ma": 40, "error": 0})
    }

    #[test]
    fn a_good_answer_has_no_problems() {
        let doc = json!({"actuators": [slot(0, 0), slot(1, 1)], "error": "success"});
        assert!(check(&doc, 2).is_empty());
    }

    #[test]
    fn wrong_count_order_and_fields_are_named() {
        let mut bad = slot(0, 2);
        bad.as_object_mut().unwrap().remove("cur_ma");
        let doc = json!({"actuators": [slot(1, 0), bad], "error": "oops"});
        assert_eq!(
            check(&doc, 3),
            [
                "error should be \"success\", got \"oops\"",
                "2 slots listed, hub reports 3 actuators",
                "actuators[0].slot is 1, expected 0",
                "actuators[1].cur_ma missing",
                "actuators[1].slot is 0, expected 1",
                "actuators[1].state should be 0 or 1, got 2",
            ]
        );
    }
}
