//! Measurements with limits, in the spirit of OpenHTF: a device fact a plan
//! expects (firmware at least X, four relays, AC power…), checked on its own
//! against the value a scenario measured, giving a record with the measured
//! value, the limits and pass or fail. Uses `device` and the run's facts.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::device::{Generation, InfoResponse};

/// A device fact a measurement can check. Each is measured by exactly one
/// scenario ([`Fact::measured_by`]); a plan may attach a measurement only to
/// that scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The MAC address, 12 upper-case hex digits (`mac`).
    Mac,
    /// Firmware version from `info/get` (`info`), compared part by part.
    FirmwareVersion,
    /// `hub.num_channels` (`info`).
    ChannelCount,
    /// `hub.num_actuators` (`info`).
    ActuatorCount,
    /// `hub.num_vsens` (`info`).
    VirtualSensorCount,
    /// `wifi.strength` in dBm (`info`).
    WifiStrengthDbm,
    /// `wifi.chan` (`info`).
    WifiChannel,
    /// `hub.batt_v` in volts (`info`).
    BatteryVolts,
    /// `ac` or `battery`, from `hub.is_ac` (`info`).
    PowerSource,
    /// `wifi.ssid` (`info`).
    Ssid,
    /// The name the hub goes by: the simulator profile's or discovered
    /// name, else the config's `hub.name` (`config-round-trip`, which reads
    /// the config).
    HubName,
    /// `new` (endpoints list) or `old` (api_key + server_url) (`config-round-trip`).
    FirmwareGeneration,
}

/// The scenario that measures a fact, by its trial name.
pub const MAC_SCENARIO: &str = "mac";
pub const INFO_SCENARIO: &str = "info";
pub const CONFIG_SCENARIO: &str = "config-round-trip";

/// What kind of value a fact has, which decides the limits it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Version,
    Integer,
    Number,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    Text,
    /// Normalised to 12 upper-case hex digits before comparing.
    Mac,
}

impl Fact {
    /// The unit the fact's value is in, for reports (`None` for words).
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Fact::FirmwareVersion => Some("version"),
            Fact::ChannelCount | Fact::ActuatorCount | Fact::VirtualSensorCount => Some("count"),
            Fact::WifiStrengthDbm => Some("dBm"),
            Fact::WifiChannel => Some("channel"),
            Fact::BatteryVolts => Some("V"),
            Fact::Mac
            | Fact::PowerSource
            | Fact::Ssid
            | Fact::HubName
            | Fact::FirmwareGeneration => None,
        }
    }

    pub const ALL: [Fact; 12] = [
        Fact::Mac,
        Fact::FirmwareVersion,
        Fact::ChannelCount,
        Fact::ActuatorCount,
        Fact::VirtualSensorCount,
        Fact::WifiStrengthDbm,
        Fact::WifiChannel,
        Fact::BatteryVolts,
        Fact::PowerSource,
        Fact::Ssid,
        Fact::HubName,
        Fact::FirmwareGeneration,
    ];

    /// The name used in plan files and records.
    pub fn name(self) -> &'static str {
        match self {
            Fact::Mac => "mac",
            Fact::FirmwareVersion => "firmware_version",
            Fact::ChannelCount => "channel_count",
            Fact::ActuatorCount => "actuator_count",
            Fact::VirtualSensorCount => "virtual_sensor_count",
            Fact::WifiStrengthDbm => "wifi_strength_dbm",
            Fact::WifiChannel => "wifi_channel",
            Fact::BatteryVolts => "battery_volts",
            Fact::PowerSource => "power_source",
            Fact::Ssid => "ssid",
            Fact::HubName => "hub_name",
            Fact::FirmwareGeneration => "firmware_generation",
        }
    }

    /// The scenario (trial name) that measures this fact.
    pub fn measured_by(self) -> &'static str {
        match self {
            Fact::Mac => MAC_SCENARIO,
            Fact::FirmwareGeneration | Fact::HubName => CONFIG_SCENARIO,
            _ => INFO_SCENARIO,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Fact::Mac => Kind::Mac,
            Fact::FirmwareVersion => Kind::Version,
            Fact::ChannelCount
            | Fact::ActuatorCount
            | Fact::VirtualSensorCount
            | Fact::WifiStrengthDbm
            | Fact::WifiChannel => Kind::Integer,
            Fact::BatteryVolts => Kind::Number,
            Fact::PowerSource => Kind::Choice(&["ac", "battery"]),
            Fact::FirmwareGeneration => Kind::Choice(&["new", "old"]),
            Fact::Ssid | Fact::HubName => Kind::Text,
        }
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
enum Operand {
    Version(Version),
    Number(f64),
    Text(String),
}

/// The limits of one measurement. Every limit given must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    equals: Option<Operand>,
    at_least: Option<Operand>,
    at_most: Option<Operand>,
    one_of: Option<Vec<Operand>>,
    starts_with: Option<String>,
    /// The limits as the plan stated them, for records.
    stated: Map<String, Value>,
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

fn cmp_operands(a: &Operand, b: &Operand) -> Option<Ordering> {
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

/// A value a scenario measured for a fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// A version string as the hub sent it (it may not parse).
    Version(String),
    Integer(i64),
    Number(f64),
    Text(String),
}

impl Measured {
    pub fn to_json(&self) -> Value {
        match self {
            Measured::Version(s) | Measured::Text(s) => Value::String(s.clone()),
            Measured::Integer(n) => json!(n),
            Measured::Number(n) => json!(n),
        }
    }
}

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
                        super::diff::quoted(s)
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
                        super::diff::quoted(s)
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

/// Everything the scenarios of one hub measured, fact by fact, as
/// measurements read it (built from the run's `scenario::HubFacts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasuredFacts {
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
    pub channel_count: Option<u32>,
    pub actuator_count: Option<u32>,
    pub virtual_sensor_count: Option<u32>,
    pub wifi_strength_dbm: Option<i64>,
    pub wifi_channel: Option<i64>,
    pub battery_volts: Option<f64>,
    pub is_ac: Option<bool>,
    pub ssid: Option<String>,
    pub hub_name: Option<String>,
    pub firmware_generation: Option<Generation>,
}

impl MeasuredFacts {
    /// Record what an `info/get` answer says. Wi-Fi numbers are strings on
    /// the wire; one that does not parse stays unmeasured.
    pub fn record_info(&mut self, info: &InfoResponse) {
        if let Some(hub) = &info.hub {
            self.firmware_version = Some(hub.version.clone());
            self.channel_count = Some(hub.num_channels);
            self.actuator_count = Some(hub.num_actuators);
            self.virtual_sensor_count = Some(hub.num_vsens);
            self.battery_volts = Some(hub.batt_v);
            self.is_ac = Some(hub.is_ac != 0);
        }
        if let Some(wifi) = &info.wifi {
            self.wifi_strength_dbm = wifi.strength.trim().parse().ok();
            self.wifi_channel = wifi.chan.trim().parse().ok();
            self.ssid = Some(wifi.ssid.clone());
            if let Some(mac) = crate::device::normalize_mac(&wifi.mac_addr) {
                self.mac = Some(mac);
            }
        }
    }

    /// The facts the run has gathered about a hub so far.
    pub fn from_run(facts: &crate::scenario::HubFacts) -> MeasuredFacts {
        let mut m = MeasuredFacts::default();
        if let Some(i) = facts.info.known() {
            m.record_info(&InfoResponse {
                hub: Some(i.hub.clone()),
                wifi: Some(i.wifi.clone()),
            });
        }
        if let Some(mac) = &facts.mac {
            m.mac = Some(mac.as_str().to_string());
        }
        m.hub_name = facts.name.clone();
        m.firmware_generation = facts.generation;
        m
    }

    /// The measured value of a fact, if it was measured.
    pub fn get(&self, fact: Fact) -> Option<Measured> {
        let int = |n: Option<u32>| n.map(|n| Measured::Integer(n.into()));
        match fact {
            Fact::Mac => self.mac.clone().map(Measured::Text),
            Fact::FirmwareVersion => self.firmware_version.clone().map(Measured::Version),
            Fact::ChannelCount => int(self.channel_count),
            Fact::ActuatorCount => int(self.actuator_count),
            Fact::VirtualSensorCount => int(self.virtual_sensor_count),
            Fact::WifiStrengthDbm => self.wifi_strength_dbm.map(Measured::Integer),
            Fact::WifiChannel => self.wifi_channel.map(Measured::Integer),
            Fact::BatteryVolts => self.battery_volts.map(Measured::Number),
            Fact::PowerSource => self
                .is_ac
                .map(|ac| Measured::Text(if ac { "ac" } else { "battery" }.into())),
            Fact::Ssid => self.ssid.clone().map(Measured::Text),
            Fact::HubName => self.hub_name.clone().map(Measured::Text),
            Fact::FirmwareGeneration => self.firmware_generation.map(|g| {
                Measured::Text(
                    match g {
                        Generation::New => "new",
                        Generation::Old => "old",
                    }
                    .into(),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn facts_from_info() {
        let info: InfoResponse = serde_json::from_value(json!({
            "hub": {"first_boot": false, "page_updated": false, "error_message": 0,
                    "num_channels": 2, "num_actuators": 4, "version": "5.1.1", "agenda": 1,
                    "batt_v": 9.0, "num_vsens": 0, "is_ac": 1, "has_sd": 0, "on_ap": 0},
            "wifi": {"ssid": "bench", "strength": "-29", "chan": "4", "ip": "x",
                     "status": "3", "mac_addr": "a1:b2:c3:d4:e5:f6"}
        }))
        .unwrap();
        let mut facts = MeasuredFacts::default();
        facts.record_info(&info);
        assert_eq!(facts.get(Fact::ActuatorCount), Some(Measured::Integer(4)));
        assert_eq!(
            facts.get(Fact::WifiStrengthDbm),
            Some(Measured::Integer(-29))
        );
        assert_eq!(
            facts.get(Fact::PowerSource),
            Some(Measured::Text("ac".into()))
        );
        assert_eq!(
            facts.get(Fact::Mac),
            Some(Measured::Text("A1B2C3D4E5F6".into()))
        );
        assert_eq!(
            facts.get(Fact::FirmwareVersion),
            Some(Measured::Version("5.1.1".into()))
        );
        assert_eq!(facts.get(Fact::HubName), None);
        for fact in Fact::ALL {
            assert!(
                ["mac", "info", "config-round-trip"].contains(&fact.measured_by()),
                "{fact}"
            );
        }
    }
}
