//! `config/get` and `config/set`: the config document of both firmware
//! generations.
//!
//! A config is handled as a JSON document (`serde_json::Value`), not a
//! struct, because a restore must give back the whole document, including
//! sections this crate does not model. The typed pieces here are the parts
//! whose shape both generations agree on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Firmware generation, decided by the type of `endpoints`: a list (even an
/// empty one) means new firmware; null or missing means old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// `api_key` string plus `hub.server_url`/`hub.server_type`; `endpoints` null.
    Old,
    /// `endpoints` array.
    New,
}

impl Generation {
    /// Detect the generation of a config document.
    pub fn of(config: &Value) -> Generation {
        match config.get("endpoints") {
            Some(Value::Array(_)) => Generation::New,
            _ => Generation::Old,
        }
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Generation::Old => "old (api_key + hub.server_url)",
            Generation::New => "new (endpoints)",
        })
    }
}

/// `server_type` value meaning "custom server" on old firmware.
pub const SERVER_TYPE_CUSTOM: i64 = 3;

/// Body of `config/get` asking for every section the harness knows.
pub fn full_request() -> Value {
    super::info::sections_request(&["hub", "api_key", "endpoints"])
}

/// One entry of the new firmware's `endpoints` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub connection_method: String,
    pub config: EndpointConfig,
}

/// The `config` object of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    pub api_key: String,
    pub data_format: String,
    pub url: String,
}

/// Where a config says data updates go: every enabled endpoint URL on new
/// firmware, `hub.server_url` on old firmware. Empty strings are skipped.
pub fn update_targets(config: &Value) -> Vec<String> {
    match Generation::of(config) {
        Generation::New => config["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["enabled"].as_bool().unwrap_or(false))
            .filter_map(|e| e["config"]["url"].as_str())
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        Generation::Old => config["hub"]["server_url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(|u| vec![u.to_owned()])
            .unwrap_or_default(),
    }
}

/// The API key a data update carries: the first enabled endpoint's key on
/// new firmware, the top-level `api_key` on old firmware.
pub fn update_api_key(config: &Value, url: &str) -> String {
    match Generation::of(config) {
        Generation::New => config["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["config"]["url"].as_str() == Some(url))
            .and_then(|e| e["config"]["api_key"].as_str())
            .unwrap_or_default()
            .to_owned(),
        Generation::Old => config["api_key"].as_str().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generation_is_decided_by_the_type_of_endpoints() {
        assert_eq!(Generation::of(&json!({"endpoints": []})), Generation::New);
        assert_eq!(Generation::of(&json!({"endpoints": null})), Generation::Old);
        assert_eq!(Generation::of(&json!({"api_key": "x"})), Generation::Old);
    }

    #[test]
    fn update_targets_follow_the_generation() {
        let new = json!({"endpoints": [
            {"enabled": true, "config": {"url": "http://127.0.0.1:1/a"}},
            {"enabled": false, "config": {"url": "http://127.0.0.1:1/b"}}]});
        assert_eq!(update_targets(&new), vec!["http://127.0.0.1:1/a"]);
        let old = json!({"endpoints": null, "hub": {"server_url": "http://127.0.0.1:2/"}});
        assert_eq!(update_targets(&old), vec!["http://127.0.0.1:2/"]);
        assert!(update_targets(&json!({"hub": {"server_url": ""}})).is_empty());
    }
}
