//! `record`: read a hub's info, config and actuator status (read-only: no
//! request that changes anything is ever sent) and turn them into a
//! simulator profile for `fixtures/`, with keys, passwords, SSIDs, IPs and
//! URLs replaced by a placeholder; then prove the profile reproduces the
//! hub by serving it from an in-process simulator and comparing every read
//! endpoint. Prints nothing (the `cli` part does).
//!
//! Harness code: it uses the client to read and `sim` as the device model
//! for the proof, never the other way round.

pub mod cli;

use serde_json::{json, Map, Value};

use crate::device::json_diff::diff_paths;
use crate::device::{paths, Mac};
use crate::safety::redact::{is_harmless_key, is_secret_key, REDACTED};
use crate::session::client::{CallError, HubClient};

/// `info/get` sections recorded.
pub const INFO_SECTIONS: &[&str] = &["hub", "wifi"];

/// `config/get` sections asked for: every section a hub is known to hold
/// (both generations, and the older public schema). A hub answers only the
/// ones it has.
pub const CONFIG_SECTIONS: &[&str] = &[
    "hub",
    "api_key",
    "endpoints",
    "sensors",
    "actuators",
    "schedules",
    "web_conditions",
    "schedule_overrides",
];

/// The placeholder every hidden value becomes (the reports' placeholder).
pub const PLACEHOLDER: &str = REDACTED;

/// Keys the reports show but a fixture must not carry: a fixture leaves
/// the site, so the customer's network name and address are hidden too.
pub const HIDDEN_IN_FIXTURES: &[&str] = &["ssid", "ip"];

/// What the hub answered to the three read endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Reads {
    /// `info/get` with [`INFO_SECTIONS`].
    pub info: Value,
    /// `config/get` with [`CONFIG_SECTIONS`].
    pub config: Value,
    /// `actuators/status`.
    pub actuators: Value,
}

impl Reads {
    /// Each answer with its endpoint path, in request order.
    pub fn by_endpoint(&self) -> [(&'static str, &Value); 3] {
        [
            (paths::INFO_GET, &self.info),
            (paths::CONFIG_GET, &self.config),
            (paths::ACTUATORS_STATUS, &self.actuators),
        ]
    }
}

/// Why a recording failed. Messages name the hub and the field.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("hub at {hub}: {source}")]
    Read {
        hub: String,
        #[source]
        source: Box<CallError>,
    },
    #[error("hub at {hub}: its answers do not make a simulator profile: {reason}")]
    NotAProfile { hub: String, reason: String },
}

/// Read the three read-only endpoints, in the order a technician would.
pub async fn read(hub: &HubClient) -> Result<Reads, RecordError> {
    let err = |source| RecordError::Read {
        hub: hub.hub().to_owned(),
        source: Box::new(source),
    };
    let info = hub.info_raw(INFO_SECTIONS).await.map_err(err)?;
    let config = hub
        .config_get_sections(CONFIG_SECTIONS)
        .await
        .map_err(err)?;
    let actuators = hub.actuator_status_raw().await.map_err(err)?;
    Ok(Reads {
        info,
        config,
        actuators,
    })
}

/// `reads` with every value outside the allow-list replaced, and the JSON
/// paths that were replaced (for the command's summary). Every non-empty
/// string not under an allow-listed key (API keys, passwords, SSIDs, IPs,
/// URLs, and any field the list does not know) becomes [`PLACEHOLDER`];
/// numbers and booleans are kept (a profile needs slots, durations and
/// counts) unless the key names a secret.
pub fn redact(reads: &Reads) -> (Reads, Vec<String>) {
    let mut hidden = Vec::new();
    let mut one = |name: &str, v: &Value| {
        let mut v = v.clone();
        hide(None, &mut v, name.to_owned(), &mut hidden);
        v
    };
    let out = Reads {
        info: one("info", &reads.info),
        config: one("config", &reads.config),
        actuators: one("actuators", &reads.actuators),
    };
    (out, hidden)
}

/// A string is kept only under a key of the reports' allow-list
/// ([`crate::safety::redact::HARMLESS_KEYS`]) that is not [`HIDDEN_IN_FIXTURES`].
fn kept_string(key: Option<&str>) -> bool {
    key.is_some_and(|k| {
        is_harmless_key(k)
            && !is_secret_key(k)
            && !HIDDEN_IN_FIXTURES.iter().any(|h| h.eq_ignore_ascii_case(k))
    })
}

/// Array items take their array's key, so `ssid: ["a","b"]` is hidden too.
fn hide(key: Option<&str>, v: &mut Value, path: String, hidden: &mut Vec<String>) {
    let replace = match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                hide(Some(k), item, format!("{path}.{k}"), hidden);
            }
            false
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                hide(key, item, format!("{path}[{i}]"), hidden);
            }
            false
        }
        Value::String(s) => !s.is_empty() && s != PLACEHOLDER && !kept_string(key),
        Value::Number(_) => key.is_some_and(is_secret_key),
        Value::Bool(_) | Value::Null => false,
    };
    if replace {
        *v = Value::String(PLACEHOLDER.to_owned());
        hidden.push(path);
    }
}

/// The simulator profile (the format of `fixtures/*.json`) for redacted
/// reads. Sensor values cannot be read without making the hub post data,
/// so every sensor reports 0; the power mode is only advertised over mDNS
/// and is recorded as 0.
pub fn profile(hub: &str, r: &Reads) -> Result<Value, RecordError> {
    let bad = |reason: String| RecordError::NotAProfile {
        hub: hub.to_owned(),
        reason,
    };
    let info_hub = r.info.get("hub").filter(|v| v.is_object());
    let info_hub = info_hub.ok_or_else(|| bad("info/get has no hub section".into()))?;
    let wifi = r.info.get("wifi").filter(|v| v.is_object());
    let wifi = wifi.ok_or_else(|| bad("info/get has no wifi section".into()))?;
    let mac_text = wifi["mac_addr"]
        .as_str()
        .ok_or_else(|| bad("info.wifi.mac_addr is not a string".into()))?;
    let mac = Mac::parse(mac_text).ok_or_else(|| {
        bad(format!(
            "info.wifi.mac_addr {:?} is not a MAC",
            crate::device::bounded(mac_text, 80)
        ))
    })?;
    let firmware = info_hub["version"]
        .as_str()
        .ok_or_else(|| bad("info.hub.version is not a string".into()))?;
    let channels = info_hub["num_channels"]
        .as_u64()
        .ok_or_else(|| bad("info.hub.num_channels is not a count".into()))?;
    let actuators = info_hub["num_actuators"]
        .as_u64()
        .ok_or_else(|| bad("info.hub.num_actuators is not a count".into()))?;
    // The profile has one typical current for every slot.
    let typ_ma = r.actuators["actuators"][0]["typ_ma"]
        .as_i64()
        .unwrap_or_default();
    let mut config = match &r.config {
        Value::Object(map) => map.clone(),
        _ => return Err(bad("config/get did not answer a JSON object".into())),
    };
    // `error` is part of the answer, not of the stored document.
    config.remove("error");
    let name = config
        .get("hub")
        .and_then(|h| h["name"].as_str())
        .filter(|n| !n.is_empty() && *n != PLACEHOLDER)
        .map(str::to_owned)
        .unwrap_or_else(|| mac.instance_name());
    let sensors: Vec<Value> = (1..=channels)
        .map(|slot| {
            let named = config
                .get("sensors")
                .and_then(Value::as_array)
                .and_then(|s| {
                    s.iter()
                        .find(|e| e["slot"].as_u64() == Some(slot))
                        .and_then(|e| e["name"].as_str())
                });
            let name = named.map_or_else(|| format!("Sensor{slot}"), str::to_owned);
            json!({"name": name, "value": 0.0})
        })
        .collect();
    let mut info = Map::new();
    info.insert("hub".into(), info_hub.clone());
    info.insert("wifi".into(), wifi.clone());
    Ok(json!({
        "name": name,
        "mac": mac.colon(),
        "firmware": firmware,
        "actuators": actuators,
        "typ_ma": typ_ma,
        "power_mode": 0,
        "sensors": sensors,
        "info": info,
        "config": config,
    }))
}

/// One read endpoint where the simulator from the profile does not answer
/// as the hub did (placeholders applied to the hub's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub endpoint: &'static str,
    /// JSON paths, never values.
    pub paths: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.paths.join(", "))
    }
}

/// Compare what the hub answered (redacted) with what the simulator
/// answered to the same requests; one entry per endpoint that differs.
pub fn compare(hub: &Reads, sim: &Reads) -> Vec<Mismatch> {
    hub.by_endpoint()
        .into_iter()
        .zip(sim.by_endpoint())
        .filter_map(|((endpoint, h), (_, s))| {
            let paths = diff_paths(h, s);
            (!paths.is_empty()).then_some(Mismatch { endpoint, paths })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads() -> Reads {
        Reads {
            info: json!({"hub": {"version": "5.1.1", "num_channels": 1, "num_actuators": 0},
                          "wifi": {"ssid": "HomeNet", "ip": "127.0.0.9", "strength": "-40",
                                   "mac_addr": "A1:B2:C3:D4:E5:F6"}}),
            config: json!({"endpoints": [{"id": 1, "name": "Cloud", "type": "custom",
                "config": {"api_key": "k-123", "url": "http://127.0.0.1:1/x", "data_format": "json"}}],
                "wifi_pass": "p", "pin": 1234, "default_duration": 60, "token": 99, "note": "", "error": 0}),
            actuators: json!({"actuators": [], "error": "success"}),
        }
    }

    #[test]
    fn only_allow_listed_strings_survive() {
        let (r, hidden) = redact(&reads());
        assert_eq!(r.info["wifi"]["ssid"], PLACEHOLDER);
        assert_eq!(r.info["wifi"]["ip"], PLACEHOLDER);
        assert_eq!(r.info["wifi"]["strength"], "-40");
        assert_eq!(r.info["hub"]["version"], "5.1.1");
        let e = &r.config["endpoints"][0];
        assert_eq!(e["config"]["api_key"], PLACEHOLDER);
        assert_eq!(e["config"]["url"], PLACEHOLDER);
        assert_eq!(e["config"]["data_format"], "json");
        assert_eq!(e["name"], "Cloud");
        // An unknown string key is hidden; a number only under a secret name.
        assert_eq!(r.config["wifi_pass"], PLACEHOLDER);
        assert_eq!(r.config["token"], PLACEHOLDER);
        assert_eq!(r.config["pin"], PLACEHOLDER);
        assert_eq!(r.config["default_duration"], 60);
        assert_eq!(r.config["note"], "");
        assert!(hidden.contains(&"info.wifi.ssid".to_owned()), "{hidden:?}");
        let text = serde_json::to_string(&r.config).unwrap() + &r.info.to_string();
        for secret in ["HomeNet", "127.0.0.9", "k-123", "http://"] {
            assert!(!text.contains(secret), "{secret} kept: {text}");
        }
    }

    #[test]
    fn profile_takes_identity_from_info_and_drops_the_error_field() {
        let (r, _) = redact(&reads());
        let p = profile("h", &r).unwrap();
        assert_eq!(p["mac"], "A1:B2:C3:D4:E5:F6");
        assert_eq!(p["name"], "Vege_E5_F6");
        assert_eq!(p["firmware"], "5.1.1");
        assert!(p["config"].get("error").is_none());
        assert_eq!(p["sensors"], json!([{"name": "Sensor1", "value": 0.0}]));
        let mut no_mac = r.clone();
        no_mac.info["wifi"]["mac_addr"] = json!("zz");
        let e = profile("h", &no_mac).unwrap_err().to_string();
        assert!(e.contains("info.wifi.mac_addr \"zz\" is not a MAC"), "{e}");
    }

    #[test]
    fn compare_names_endpoint_and_path() {
        let a = reads();
        let mut b = reads();
        assert!(compare(&a, &b).is_empty());
        b.actuators = json!({"actuators": [{"slot": 0}], "error": "success"});
        let m = compare(&a, &b);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].to_string(),
            "/api/actuators/status: actuators[0] (length 1 instead of 0)"
        );
    }
}
