//! Limits as a plan file states them (`MeasurementSpec`), checked against
//! the fact's kind into a validated `Measurement`; firmware versions and
//! the operands limits compare.

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Fact, Kind};

/// A firmware version such as `5.1.1`: up to four dot-separated numbers,
/// compared numerically part by part, missing parts counting as 0 (so
/// `5.1` == `5.1.0` and `5.10` > `5.9`). An optional leading `v` is allowed.
#[derive(Debug, Clone)]
pub struct Version(Vec<u64>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        let parts: Option<Vec<u64>> = s
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        parts.filter(|p| (1..=4).contains(&p.len())).map(Version)
    }

    fn part(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (0..self.0.len().max(other.0.len()))
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A limit operand, already checked against the fact's kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    Version(Version),
    Number(f64),
    Text(String),
}

/// The limits of one measurement. Every limit given must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub(super) equals: Option<Operand>,
    pub(super) at_least: Option<Operand>,
    pub(super) at_most: Option<Operand>,
    pub(super) one_of: Option<Vec<Operand>>,
    pub(super) starts_with: Option<String>,
    /// The limits as the plan stated them, for records.
    pub(super) stated: Map<String, Value>,
}

/// A measurement as a plan file states it (see `scenarios/*.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementSpec {
    /// Defaults to the fact's name.
    #[serde(default)]
    pub name: Option<String>,
    pub fact: Fact,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub at_least: Option<Value>,
    #[serde(default)]
    pub at_most: Option<Value>,
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    #[serde(default)]
    pub starts_with: Option<String>,
}

/// A limit that cannot apply: the field of the spec it is in (`at_least`,
/// `one_of[2]`…) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub field: String,
    pub expected: String,
}

/// A validated measurement: a name, the fact and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub fact: Fact,
    pub limits: Limits,
}

impl MeasurementSpec {
    /// Check every limit against the fact's kind.
    pub fn validate(&self) -> Result<Measurement, LimitError> {
        let kind = self.fact.kind();
        let err = |field: &str, expected: String| LimitError {
            field: field.to_string(),
            expected,
        };
        if self.equals.is_none()
            && self.at_least.is_none()
            && self.at_most.is_none()
            && self.one_of.is_none()
            && self.starts_with.is_none()
        {
            return Err(err(
                "fact",
                "at least one limit (equals, at_least, at_most, one_of, starts_with)".into(),
            ));
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                return Err(err("name", "a non-empty name".into()));
            }
        }
        let ordered = matches!(kind, Kind::Version | Kind::Integer | Kind::Number);
        let mut stated = Map::new();
        let mut one = |field: &str, v: &Option<Value>| -> Result<Option<Operand>, LimitError> {
            let Some(v) = v else { return Ok(None) };
            if !ordered && field != "equals" {
                return Err(err(
                    field,
                    format!("no {field} limit: {} is not ordered", self.fact),
                ));
            }
            stated.insert(field.to_string(), v.clone());
            operand(self.fact, v)
                .map(Some)
                .map_err(|expected| err(field, expected))
        };
        let equals = one("equals", &self.equals)?;
        let at_least = one("at_least", &self.at_least)?;
        let at_most = one("at_most", &self.at_most)?;
        if let (Some(lo), Some(hi)) = (&at_least, &at_most) {
            if cmp_operands(lo, hi) == Some(Ordering::Greater) {
                return Err(err("at_most", "a value not below at_least".into()));
            }
        }
        let one_of = match &self.one_of {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(err("one_of", "a non-empty list".into()));
            }
            Some(list) => {
                stated.insert("one_of".into(), Value::Array(list.clone()));
                let ops = list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        operand(self.fact, v).map_err(|e| err(&format!("one_of[{i}]"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(ops)
            }
        };
        let starts_with = match &self.starts_with {
            None => None,
            Some(prefix) => {
                let normalised = match kind {
                    Kind::Text => prefix.clone(),
                    Kind::Mac => {
                        let hex: String = prefix
                            .chars()
                            .filter(|c| !matches!(c, ':' | '-' | '.'))
                            .collect();
                        if hex.is_empty()
                            || hex.len() > 12
                            || !hex.chars().all(|c| c.is_ascii_hexdigit())
                        {
                            return Err(err(
                                "starts_with",
                                "a MAC prefix of hex digits, such as \"A1:B2:C3\"".into(),
                            ));
                        }
                        hex.to_ascii_uppercase()
                    }
                    _ => {
                        return Err(err(
                            "starts_with",
                            format!("no starts_with limit: {} is not text", self.fact),
                        ))
                    }
                };
                stated.insert("starts_with".into(), Value::String(prefix.clone()));
                Some(normalised)
            }
        };
        Ok(Measurement {
            name: self.name.clone().unwrap_or_else(|| self.fact.name().into()),
            fact: self.fact,
            limits: Limits {
                equals,
                at_least,
                at_most,
                one_of,
                starts_with,
                stated,
            },
        })
    }
}

/// Turn a limit value from a plan into an operand of the fact's kind, or say
/// what was expected.
fn operand(fact: Fact, v: &Value) -> Result<Operand, String> {
    match fact.kind() {
        Kind::Version => v
            .as_str()
            .and_then(Version::parse)
            .map(Operand::Version)
            .ok_or_else(|| "a version string such as \"5.1.1\"".to_string()),
        Kind::Integer => v
            .as_i64()
            .map(|n| Operand::Number(n as f64))
            .ok_or_else(|| format!("a whole number for {fact}")),
        Kind::Number => v
            .as_f64()
            .map(Operand::Number)
            .ok_or_else(|| format!("a number for {fact}")),
        Kind::Choice(words) => v
            .as_str()
            .filter(|s| words.contains(s))
            .map(|s| Operand::Text(s.to_string()))
            .ok_or_else(|| format!("one of {}", quoted(words))),
        Kind::Text => v
            .as_str()
            .map(|s| Operand::Text(s.to_string()))
            .ok_or_else(|| format!("a string for {fact}")),
        Kind::Mac => v
            .as_str()
            .and_then(crate::device::normalize_mac)
            .map(Operand::Text)
            .ok_or_else(|| "a MAC address such as \"A1:B2:C3:D4:E5:F6\"".to_string()),
    }
}

fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn cmp_operands(a: &Operand, b: &Operand) -> Option<Ordering> {
    match (a, b) {
        (Operand::Version(a), Operand::Version(b)) => Some(a.cmp(b)),
        (Operand::Number(a), Operand::Number(b)) => a.partial_cmp(b),
        (Operand::Text(a), Operand::Text(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Version(v) => {
                let parts: Vec<String> = v.0.iter().map(u64::to_string).collect();
                f.write_str(&parts.join("."))
            }
            Operand::Number(n) => write!(f, "{n}"),
            Operand::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> MeasurementSpec {
        serde_json::from_value(v).expect("spec parses")
    }

    #[test]
    fn versions_compare_part_by_part() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("5.10") > v("5.9"));
        assert_eq!(v("5.1"), v("5.1.0"));
        assert_eq!(v("5.1").cmp(&v("5.1.0")), Ordering::Equal);
        assert!(v("v5.1.1") > v("5.1.0"));
        assert!(v("3.4.5") < v("5"));
        for bad in ["", "5..1", "5.1.x", "5.1.1-beta", "1.2.3.4.5", "-1"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_limits_say_what_was_expected() {
        let bad = |v: Value, field: &str, expected: &str| {
            let e = spec(v.clone()).validate().unwrap_err();
            assert_eq!(e.field, field, "{v}");
            assert!(e.expected.contains(expected), "{v}: {e:?}");
        };
        bad(
            json!({"fact": "firmware_version", "at_least": "five"}),
            "at_least",
            "a version string",
        );
        bad(
            json!({"fact": "firmware_version", "at_least": 5}),
            "at_least",
            "a version string",
        );
        bad(
            json!({"fact": "channel_count", "equals": 2.5}),
            "equals",
            "a whole number",
        );
        bad(
            json!({"fact": "battery_volts", "at_least": "3.3"}),
            "at_least",
            "a number",
        );
        bad(
            json!({"fact": "power_source", "equals": "solar"}),
            "equals",
            "\"ac\", \"battery\"",
        );
        bad(
            json!({"fact": "power_source", "at_least": "ac"}),
            "at_least",
            "not ordered",
        );
        bad(
            json!({"fact": "battery_volts", "at_least": 4.2, "at_most": 3.3}),
            "at_most",
            "not below at_least",
        );
        bad(json!({"fact": "mac", "equals": "nope"}), "equals", "a MAC");
        bad(
            json!({"fact": "mac", "starts_with": "zz"}),
            "starts_with",
            "hex digits",
        );
        bad(
            json!({"fact": "channel_count", "starts_with": "1"}),
            "starts_with",
            "not text",
        );
        bad(
            json!({"fact": "channel_count", "one_of": [1, "two"]}),
            "one_of[1]",
            "a whole number",
        );
        bad(json!({"fact": "ssid", "one_of": []}), "one_of", "non-empty");
        bad(json!({"fact": "ssid"}), "fact", "at least one limit");
    }
}
