//! A validated measurement checked against the value a scenario measured:
//! each limit on its own, giving a record with the measured value, the
//! stated limits, the unit and pass or fail, and the failure message of a
//! scenario whose measurements did not all pass.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{cmp_operands, Operand, Version};
use super::{Fact, Kind, Measured, Measurement};

/// Pass or fail of one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// The record of one measurement: what was measured, against which limits,
/// and the verdict, with a message saying why when it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasurementRecord {
    pub name: String,
    pub fact: Fact,
    /// `null` when the scenario could not measure the fact.
    pub measured: Option<Value>,
    /// The limits as the plan stated them.
    pub limits: Map<String, Value>,
    /// What the value counts in: `V`, `dBm`, `count`, `channel`, `version`;
    /// `null` for words and names.
    pub unit: Option<&'static str>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Measurement {
    /// Check the measured value against every limit, each on its own; the
    /// message names every limit that did not hold.
    pub fn evaluate(&self, measured: Option<&Measured>) -> MeasurementRecord {
        let failures = match measured {
            None => vec![format!("{} was not measured", self.fact)],
            Some(m) => self.violations(m),
        };
        MeasurementRecord {
            name: self.name.clone(),
            fact: self.fact,
            measured: measured.map(Measured::to_json),
            limits: self.limits.stated.clone(),
            unit: self.fact.unit(),
            verdict: if failures.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            message: (!failures.is_empty()).then(|| failures.join("; ")),
        }
    }

    fn violations(&self, m: &Measured) -> Vec<String> {
        let fact = self.fact;
        let value = match (fact.kind(), m) {
            (Kind::Version, Measured::Version(s)) => match Version::parse(s) {
                Some(v) => Operand::Version(v),
                None => {
                    return vec![format!(
                        "{fact} {} is not a comparable version",
                        crate::scenario::diff::quoted(s)
                    )]
                }
            },
            (Kind::Integer, Measured::Integer(n)) => Operand::Number(*n as f64),
            (Kind::Number, Measured::Number(n)) => Operand::Number(*n),
            (Kind::Number, Measured::Integer(n)) => Operand::Number(*n as f64),
            (Kind::Mac, Measured::Text(s)) => match crate::device::normalize_mac(s) {
                Some(mac) => Operand::Text(mac),
                None => {
                    return vec![format!(
                        "{fact} {} is not a MAC address",
                        crate::scenario::diff::quoted(s)
                    )]
                }
            },
            (Kind::Choice(_) | Kind::Text, Measured::Text(s)) => Operand::Text(s.clone()),
            (_, other) => {
                return vec![format!(
                    "{fact} was measured as {}, which is not a {fact} value",
                    other.to_json()
                )]
            }
        };
        let l = &self.limits;
        let mut out = Vec::new();
        if let Some(want) = &l.equals {
            if cmp_operands(&value, want) != Some(Ordering::Equal) {
                out.push(format!("{fact} {value} is not equal to {want}"));
            }
        }
        if let Some(lo) = &l.at_least {
            if !matches!(
                cmp_operands(&value, lo),
                Some(Ordering::Greater | Ordering::Equal)
            ) {
                out.push(format!("{fact} {value} is below the limit at_least {lo}"));
            }
        }
        if let Some(hi) = &l.at_most {
            if !matches!(
                cmp_operands(&value, hi),
                Some(Ordering::Less | Ordering::Equal)
            ) {
                out.push(format!("{fact} {value} is above the limit at_most {hi}"));
            }
        }
        if let Some(set) = &l.one_of {
            if !set
                .iter()
                .any(|w| cmp_operands(&value, w) == Some(Ordering::Equal))
            {
                let set: Vec<String> = set.iter().map(Operand::to_string).collect();
                out.push(format!("{fact} {value} is not one of {}", set.join(", ")));
            }
        }
        if let Some(prefix) = &l.starts_with {
            let Operand::Text(s) = &value else {
                unreachable!("starts_with is only accepted for text facts")
            };
            if !s.starts_with(prefix.as_str()) {
                out.push(format!("{fact} {value} does not start with \"{prefix}\""));
            }
        }
        out
    }
}

/// The failure message for a scenario whose measurements did not all pass,
/// naming each failed measurement and why; `None` when all passed.
pub fn failure_message(records: &[MeasurementRecord]) -> Option<String> {
    let failed: Vec<String> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| {
            format!(
                "measurement {} failed: {}",
                r.name,
                r.message.as_deref().unwrap_or("limits not met")
            )
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::measurement::MeasurementSpec;
    use serde_json::json;

    fn spec(v: Value) -> MeasurementSpec {
        serde_json::from_value(v).expect("spec parses")
    }

    fn measure(spec_json: Value, measured: Measured) -> MeasurementRecord {
        spec(spec_json)
            .validate()
            .expect("limits valid")
            .evaluate(Some(&measured))
    }

    fn assert_pass(r: &MeasurementRecord) {
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert_eq!(r.message, None);
    }

    fn assert_fail(r: &MeasurementRecord, needle: &str) {
        assert_eq!(r.verdict, Verdict::Fail, "{r:?}");
        let msg = r.message.as_deref().unwrap();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }

    #[test]
    fn firmware_at_least_passes_and_fails() {
        let s = json!({"fact": "firmware_version", "at_least": "5.1.0"});
        assert_pass(&measure(s.clone(), Measured::Version("5.1.1".into())));
        assert_pass(&measure(s.clone(), Measured::Version("5.1".into())));
        let r = measure(s, Measured::Version("3.4.5".into()));
        assert_fail(
            &r,
            "firmware_version 3.4.5 is below the limit at_least 5.1.0",
        );
        assert_eq!(r.measured, Some(json!("3.4.5")));
        assert_eq!(r.limits.get("at_least"), Some(&json!("5.1.0")));
    }

    #[test]
    fn firmware_at_most_and_unparsable_measured_version() {
        let s = json!({"fact": "firmware_version", "at_most": "5.1.1"});
        assert_pass(&measure(s.clone(), Measured::Version("5.1.1".into())));
        assert_fail(
            &measure(s.clone(), Measured::Version("5.2".into())),
            "above the limit at_most 5.1.1",
        );
        assert_fail(
            &measure(s, Measured::Version("beta".into())),
            "not a comparable version",
        );
    }

    #[test]
    fn counts_equal() {
        let s = json!({"name": "relays", "fact": "actuator_count", "equals": 4});
        let r = measure(s.clone(), Measured::Integer(4));
        assert_pass(&r);
        assert_eq!(r.name, "relays");
        assert_fail(
            &measure(s, Measured::Integer(2)),
            "actuator_count 2 is not equal to 4",
        );
        let s = json!({"fact": "channel_count", "equals": 2});
        assert_pass(&measure(s.clone(), Measured::Integer(2)));
        assert_fail(&measure(s, Measured::Integer(1)), "not equal to 2");
    }

    #[test]
    fn wifi_signal_at_least() {
        let s = json!({"fact": "wifi_strength_dbm", "at_least": -75});
        assert_pass(&measure(s.clone(), Measured::Integer(-29)));
        assert_pass(&measure(s.clone(), Measured::Integer(-75)));
        assert_fail(
            &measure(s, Measured::Integer(-80)),
            "wifi_strength_dbm -80 is below the limit at_least -75",
        );
    }

    #[test]
    fn battery_in_range() {
        let s = json!({"fact": "battery_volts", "at_least": 3.3, "at_most": 4.2});
        assert_pass(&measure(s.clone(), Measured::Number(3.9)));
        assert_fail(&measure(s.clone(), Measured::Number(3.1)), "below");
        let r = measure(s, Measured::Number(9.0));
        assert_fail(&r, "battery_volts 9 is above the limit at_most 4.2");
        assert!(!r.message.unwrap().contains("below"));
    }

    #[test]
    fn power_source_choice() {
        let s = json!({"fact": "power_source", "equals": "ac"});
        assert_pass(&measure(s.clone(), Measured::Text("ac".into())));
        assert_fail(
            &measure(s, Measured::Text("battery".into())),
            "power_source \"battery\" is not equal to \"ac\"",
        );
    }

    #[test]
    fn one_of_and_starts_with_on_text() {
        let s = json!({"fact": "hub_name", "starts_with": "Vege_"});
        assert_pass(&measure(s.clone(), Measured::Text("Vege_A6_20".into())));
        assert_fail(
            &measure(s, Measured::Text("Desk_Temp_Soil".into())),
            "does not start with \"Vege_\"",
        );
        let s = json!({"fact": "firmware_generation", "one_of": ["new"]});
        assert_pass(&measure(s.clone(), Measured::Text("new".into())));
        assert_fail(&measure(s, Measured::Text("old".into())), "is not one of");
    }

    #[test]
    fn mac_limits_normalise_both_sides() {
        let s = json!({"fact": "mac", "starts_with": "a1:b2:c3"});
        assert_pass(&measure(s.clone(), Measured::Text("A1B2C3D4E5F6".into())));
        assert_fail(
            &measure(s, Measured::Text("001122334455".into())),
            "does not start with \"A1B2C3\"",
        );
        let s = json!({"fact": "mac", "equals": "a1-b2-c3-d4-e5-f6"});
        assert_pass(&measure(
            s.clone(),
            Measured::Text("A1:B2:C3:D4:E5:F6".into()),
        ));
        assert_fail(
            &measure(s, Measured::Text("A1B2C3D4E5F7".into())),
            "not equal",
        );
    }

    #[test]
    fn failure_message_names_only_failed_measurements() {
        let pass = measure(
            json!({"name": "relays", "fact": "actuator_count", "equals": 4}),
            Measured::Integer(4),
        );
        assert_eq!(failure_message(std::slice::from_ref(&pass)), None);
        let fail = measure(
            json!({"name": "fw", "fact": "firmware_version", "at_least": "5.1.1"}),
            Measured::Version("3.4.5".into()),
        );
        assert_eq!(
            failure_message(&[pass, fail]).as_deref(),
            Some("measurement fw failed: firmware_version 3.4.5 is below the limit at_least 5.1.1")
        );
    }

    #[test]
    fn unmeasured_fact_fails() {
        let m = spec(json!({"fact": "hub_name", "equals": "x"}))
            .validate()
            .unwrap();
        let r = m.evaluate(None);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.measured, None);
        assert_eq!(r.message.as_deref(), Some("hub_name was not measured"));
    }
}
