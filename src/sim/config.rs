//! The stored config of a simulated hub: the document and each top-level
//! section as the exact text it was stored from (what `config/get` sends),
//! the shape a config must have for the hub's firmware generation (checked
//! when a profile loads and on every `config/set`), how a `config/set`
//! merges into it, and the data faults that seed it (`ctrl-chars`,
//! `secret-fields`, `big-number`). Plain data: the live, shared state that
//! holds it is `state`.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::fault::{FaultKind, FaultSpec};
use crate::device::Generation;

/// The stored config: the document, and each top-level section as the
/// exact text it was stored from (what `config/get` sends).
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) doc: Value,
    raw: Vec<(String, String)>,
}

/// A `config/set` body: its sections, and each as the exact text it came as.
pub(super) struct SetBody {
    sections: Map<String, Value>,
    raws: HashMap<String, Box<RawValue>>,
}

impl SetBody {
    pub(super) fn parse(body: &str) -> Result<SetBody, String> {
        let parsed: Value =
            serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let Value::Object(sections) = parsed else {
            return Err("config must be a JSON object".into());
        };
        let raws = serde_json::from_str(body).map_err(|e| format!("body: {e}"))?;
        Ok(SetBody { sections, raws })
    }
}

/// The integer above 2^64 `big-number` stores, exactly.
pub const BIG_NUMBER: &str = "123456789012345678901234567890";

impl Stored {
    /// The profile's config, with the data faults applied.
    pub(super) fn start(config: &Value, faults: &[FaultSpec]) -> Stored {
        let mut doc = config.clone();
        let mut raw: Vec<(String, String)> = doc
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default();
        for f in faults {
            match f.kind {
                FaultKind::CtrlChars => {
                    let name = Value::String(CTRL_NAME.into()).to_string();
                    add_to_hub(&mut doc, &mut raw, "name", &name);
                    add_to_hub(&mut doc, &mut raw, CTRL_KEY, "\"x\\u0007\"");
                }
                FaultKind::SecretFields => {
                    for (key, secret) in [("wifi_pass", 0), ("passphrase", 1), ("pwd", 2)] {
                        let v = Value::String(SECRETS[secret].into()).to_string();
                        add_to_hub(&mut doc, &mut raw, key, &v);
                    }
                    add_to_hub(&mut doc, &mut raw, "api_key", NUMBER_SECRET);
                    let url = format!("http://127.0.0.1:9/api/webhook/{}", SECRETS[3]);
                    add_to_hub(
                        &mut doc,
                        &mut raw,
                        "webhook",
                        &Value::String(url).to_string(),
                    );
                }
                FaultKind::BigNumber => add_to_hub(&mut doc, &mut raw, "vh_total", BIG_NUMBER),
                _ => {}
            }
        }
        Stored { doc, raw }
    }

    /// The whole config exactly: each section as the text it was stored from.
    pub(super) fn text(&self) -> String {
        let parts: Vec<String> = self
            .raw
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    /// `config/get`'s answer: the named sections, in request order, each as
    /// stored, then `"error":0`. Old firmware always answers `endpoints`
    /// with null.
    pub(super) fn sections_text(
        &self,
        wanted: &Map<String, Value>,
        generation: Generation,
    ) -> String {
        let mut parts = Vec::new();
        for name in wanted.keys() {
            if name == "error" {
                continue;
            }
            let key = Value::String(name.clone());
            if name == "endpoints" && generation == Generation::Old {
                parts.push(format!("{key}:null"));
            } else if let Some((_, raw)) = self.raw.iter().find(|(k, _)| k == name) {
                parts.push(format!("{key}:{raw}"));
            }
        }
        parts.push("\"error\":0".into());
        format!("{{{}}}", parts.join(","))
    }

    /// The config after `set`: each of its sections replaces the stored
    /// one, kept as the exact text it came as (re-serialised when `lossy`);
    /// sections not in it are kept. Refused unless the result keeps the
    /// hub's firmware `generation` and has the shape of its config.
    pub(super) fn merged(
        &self,
        set: &SetBody,
        lossy: bool,
        generation: Generation,
    ) -> Result<Stored, String> {
        let mut merged = self.doc.clone();
        let mut merged_raw = self.raw.clone();
        let target = merged.as_object_mut().expect("config is an object");
        for (name, value) in &set.sections {
            match name.as_str() {
                // Echoed back from config/get; not part of the document.
                "error" => {}
                "endpoints" if generation == Generation::Old && value.is_null() => {}
                _ => {
                    target.insert(name.clone(), value.clone());
                    let raw = match set.raws.get(name) {
                        Some(r) if !lossy => r.get().to_owned(),
                        _ => value.to_string(),
                    };
                    match merged_raw.iter_mut().find(|(k, _)| k == name) {
                        Some(slot) => slot.1 = raw,
                        None => merged_raw.push((name.clone(), raw)),
                    }
                }
            }
        }
        if Generation::of(&merged) != generation {
            return Err(format!(
                "config has the shape of {} firmware but this hub runs {}",
                Generation::of(&merged),
                generation
            ));
        }
        check_config(&merged, generation)?;
        Ok(Stored {
            doc: merged,
            raw: merged_raw,
        })
    }
}

/// Add `key` with the JSON text `text` to the `hub` section (a section
/// `config/get` returns), spliced in as text so a number no f64 holds
/// stays exact.
fn add_to_hub(doc: &mut Value, raw: &mut Vec<(String, String)>, key: &str, text: &str) {
    let mut hub = doc
        .get("hub")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    hub[key] = serde_json::from_str(text).unwrap_or_default();
    let hub_raw = raw
        .iter()
        .find(|(k, _)| k == "hub")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "{}".into());
    let trimmed = hub_raw.trim_end();
    let body = trimmed.strip_suffix('}').unwrap_or(trimmed).trim_end();
    let sep = if body.ends_with('{') { "" } else { "," };
    let hub_raw = format!("{body}{sep}{}:{text}}}", Value::String(key.to_owned()));
    match raw.iter_mut().find(|(k, _)| k == "hub") {
        Some(slot) => slot.1 = hub_raw,
        None => raw.push(("hub".into(), hub_raw)),
    }
    if let Some(m) = doc.as_object_mut() {
        m.insert("hub".into(), hub);
    }
}

/// The hub name `ctrl-chars` stores: ESC sequences (clear screen, retitle
/// the terminal), BEL, a C1 CSI (U+009B, which JSON writers leave as it is),
/// a right-to-left override, and a CR-LF with a fake verdict line.
pub const CTRL_NAME: &str =
    "Desk\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}2J\u{202e}\r\ntest result: ok. 99 passed";

/// A config key `ctrl-chars` adds (it shows in diff paths).
pub const CTRL_KEY: &str = "label\u{1b}[31m";

/// The secrets `secret-fields` stores: under `wifi.wifi_pass`,
/// `wifi.passphrase`, `wifi.pwd`, and the path of `webhook`.
pub const SECRETS: [&str; 4] = [
    "hunter2-SECRET-PASS",
    "open-SESAME-PHRASE",
    "pwd-SECRET-WORD",
    "SECRET-WEBHOOK-ID",
];

/// The number `secret-fields` stores under `hub.api_key` (an integer, so
/// a config holding it can be carried exactly and written back).
pub const NUMBER_SECRET: &str = "902107503";

/// Whether `doc` has the shape of a config document of `generation`.
pub fn check_config(doc: &Value, generation: Generation) -> Result<(), String> {
    let Value::Object(map) = doc else {
        return Err("config must be a JSON object".into());
    };
    if let Some(hub) = map.get("hub") {
        let Value::Object(hub) = hub else {
            return Err("hub must be an object".into());
        };
        for key in ["server_url", "name"] {
            if hub.get(key).is_some_and(|v| !v.is_string()) {
                return Err(format!("hub.{key} must be a string"));
            }
        }
        if hub.get("server_type").is_some_and(|v| !v.is_i64()) {
            return Err("hub.server_type must be an integer".into());
        }
    }
    for key in ["sensors", "actuators", "schedules"] {
        if map.get(key).is_some_and(|v| !v.is_array()) {
            return Err(format!("{key} must be a list"));
        }
    }
    if map.get("api_key").is_some_and(|v| !v.is_string()) {
        return Err("api_key must be a string".into());
    }
    match generation {
        Generation::New => {
            let Some(Value::Array(endpoints)) = map.get("endpoints") else {
                return Err("endpoints must be a list on new firmware".into());
            };
            for (i, e) in endpoints.iter().enumerate() {
                serde_json::from_value::<crate::device::Endpoint>(e.clone())
                    .map_err(|err| format!("endpoints[{i}]: {err}"))?;
            }
        }
        Generation::Old => {
            if map.get("endpoints").is_some_and(|v| !v.is_null()) {
                return Err("endpoints must be null on old firmware".into());
            }
            if !map.get("api_key").is_some_and(Value::is_string) {
                return Err("api_key (a string) is required on old firmware".into());
            }
            if !map.get("hub").is_some_and(Value::is_object) {
                return Err("hub (an object) is required on old firmware".into());
            }
        }
    }
    Ok(())
}
