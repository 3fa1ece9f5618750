//! Scenario `info`: `info/get` with `hub` and `wifi`; every documented field
//! present with its documented type; records channel and actuator counts,
//! firmware version and power source for later scenarios and the summary.

use serde_json::Value;

use super::{Cx, HubInfo, Step, Stop};
use crate::device::{HubSection, WifiSection};
use crate::session::client::{HubClient, MAX_ACTUATORS, MAX_CHANNELS};

/// JSON type a documented field must have.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    /// Any JSON number.
    Number,
    /// A non-negative integer.
    Count,
    /// 0 or 1.
    Flag,
    Str,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Bool => v.is_boolean(),
            Kind::Number => v.is_number(),
            Kind::Count => v.is_u64(),
            Kind::Flag => matches!(v.as_u64(), Some(0 | 1)),
            Kind::Str => v.is_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::Count => "a non-negative integer",
            Kind::Flag => "0 or 1",
            Kind::Str => "a string",
        }
    }
}

const HUB_FIELDS: &[(&str, Kind)] = &[
    ("first_boot", Kind::Bool),
    ("page_updated", Kind::Bool),
    ("error_message", Kind::Number),
    ("num_channels", Kind::Count),
    ("num_actuators", Kind::Count),
    ("version", Kind::Str),
    ("agenda", Kind::Number),
    ("batt_v", Kind::Number),
    ("num_vsens", Kind::Count),
    ("is_ac", Kind::Flag),
    ("has_sd", Kind::Flag),
    ("on_ap", Kind::Flag),
];

/// Every `wifi` field is a string on the wire, numbers included.
const WIFI_FIELDS: &[(&str, Kind)] = &[
    ("ssid", Kind::Str),
    ("strength", Kind::Str),
    ("chan", Kind::Str),
    ("ip", Kind::Str),
    ("status", Kind::Str),
    ("mac_addr", Kind::Str),
];

/// Problems with one section of an `info/get` answer, each naming the field.
fn check_section(doc: &Value, section: &str, fields: &[(&str, Kind)]) -> Vec<String> {
    let Some(obj) = doc.get(section).and_then(Value::as_object) else {
        return vec![format!("section `{section}` missing or not an object")];
    };
    fields
        .iter()
        .filter_map(|(name, kind)| match obj.get(*name) {
            None => Some(format!("{section}.{name} missing")),
            Some(v) if !kind.accepts(v) => Some(format!(
                "{section}.{name} should be {}, got {}",
                kind.name(),
                crate::session::client::quote_value(v)
            )),
            Some(_) => None,
        })
        .collect()
}

/// Read and check both sections. The error is a one-line reason.
pub async fn gather(client: &HubClient) -> Result<HubInfo, String> {
    let doc = client
        .info_raw(&["hub", "wifi"])
        .await
        .map_err(|e| e.to_string())?;
    let mut problems = check_section(&doc, "hub", HUB_FIELDS);
    problems.extend(check_section(&doc, "wifi", WIFI_FIELDS));
    if !problems.is_empty() {
        return Err(format!("info/get answer: {}", problems.join("; ")));
    }
    let hub: HubSection =
        serde_json::from_value(doc["hub"].clone()).map_err(|e| format!("hub section: {e}"))?;
    // Counts the harness loops over are bounded (see `client`).
    if hub.num_actuators > MAX_ACTUATORS {
        problems.push(format!(
            "hub.num_actuators is {}, more than the harness handles ({MAX_ACTUATORS})",
            hub.num_actuators
        ));
    }
    if hub.num_channels > MAX_CHANNELS {
        problems.push(format!(
            "hub.num_channels is {}, more than the harness handles ({MAX_CHANNELS})",
            hub.num_channels
        ));
    }
    let wifi_doc = &doc["wifi"];
    for field in ["strength", "chan"] {
        if let Some(v) = wifi_doc[field].as_str() {
            if v.trim().parse::<i64>().is_err() {
                problems.push(format!(
                    "wifi.{field} {} is not a whole number",
                    super::diff::quoted(v)
                ));
            }
        }
    }
    if let Some(v) = doc["hub"]["version"].as_str() {
        if v.is_empty() || v.chars().any(|c| c.is_control()) || v.len() > 64 {
            problems.push(format!(
                "hub.version {} is not a version string",
                super::diff::quoted(v)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!("info/get answer: {}", problems.join("; ")));
    }
    let wifi: WifiSection =
        serde_json::from_value(doc["wifi"].clone()).map_err(|e| format!("wifi section: {e}"))?;
    if crate::device::Mac::parse(&wifi.mac_addr).is_none() {
        return Err(format!(
            "wifi.mac_addr {} is not a MAC address",
            super::diff::quoted(&wifi.mac_addr)
        ));
    }
    Ok(HubInfo { hub, wifi })
}

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    let info = match gather(cx.client).await {
        Ok(i) => i,
        Err(why) => {
            cx.facts.info = super::Gathered::Failed(why.clone());
            return Err(Stop::Fail(why));
        }
    };
    cx.facts.record_info(&info);
    let h = &info.hub;
    cx.note(format!(
        "firmware {}, {} channels, {} actuators, power {}, battery {} V, wifi {} dBm",
        h.version,
        h.num_channels,
        h.num_actuators,
        info.power_source(),
        h.batt_v,
        info.wifi.strength
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_missing_and_mistyped_fields() {
        let doc = json!({"hub": {"first_boot": false, "page_updated": false, "error_message": 0,
            "num_channels": "2", "num_actuators": 2, "version": "3.4.5", "agenda": 1,
            "batt_v": 9.0, "num_vsens": 0, "is_ac": 2, "has_sd": 0}});
        let p = check_section(&doc, "hub", HUB_FIELDS);
        assert_eq!(
            p,
            [
                "hub.num_channels should be a non-negative integer, got \"2\"",
                "hub.is_ac should be 0 or 1, got 2",
                "hub.on_ap missing"
            ]
        );
        assert_eq!(
            check_section(&doc, "wifi", WIFI_FIELDS),
            ["section `wifi` missing or not an object"]
        );
    }
}
