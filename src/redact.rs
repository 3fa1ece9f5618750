//! Secret redaction: API keys, endpoint keys and passwords in a hub's config
//! (or any JSON, or text quoting it) are replaced before they reach the
//! console, logs or a report. `--show-secrets` turns it off. Backups are the
//! one place secrets are kept, which is why they are mode 0600.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Values the harness itself writes start with this; they are not secrets
/// and showing them makes setup failures readable.
pub const TEST_VALUE_PREFIX: &str = "VEGEHUB_HARNESS_TEST_";

/// Is this object key one whose value is a secret? Matches `api_key`,
/// `apikey`, `key`, `password`, `pass`, `psk`, `token`, `secret` and names
/// containing them (`wifi_password`, `auth_token`), case-insensitive.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "key"
        || k == "pass"
        || k == "psk"
        || [
            "api_key", "apikey", "_key", "password", "passwd", "token", "secret",
        ]
        .iter()
        .any(|s| k.contains(s))
}

/// Does this value need hiding? Empty strings, null and the harness's own
/// test values say nothing secret.
fn is_secret_value(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty() && !s.starts_with(TEST_VALUE_PREFIX),
        Value::Bool(_) => false,
        _ => true,
    }
}

/// Secrets shorter than this are not searched for in free text: replacing
/// every `0` or `ab` in a message would garble it, and no real key is that
/// short.
const MIN_TEXT_SECRET: usize = 4;

/// Redacts, or passes through when secrets are to be shown. Clones share
/// the secrets learnt from configs, so text printed anywhere in the run
/// can be scrubbed of every key seen so far.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    show_secrets: bool,
    learned: Arc<Mutex<BTreeSet<String>>>,
}

impl Redactor {
    /// `show_secrets` is the `--show-secrets` flag.
    pub fn new(show_secrets: bool) -> Redactor {
        Redactor {
            show_secrets,
            learned: Arc::default(),
        }
    }

    /// Remember the secrets of a config read from a hub, so [`scrub`]
    /// hides them wherever they are quoted later.
    ///
    /// [`scrub`]: Redactor::scrub
    pub fn learn(&self, config: &Value) {
        let mut found = BTreeSet::new();
        collect_secrets(config, &mut found);
        found.retain(|s| s.len() >= MIN_TEXT_SECRET);
        self.learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(found);
    }

    /// `text` with every learnt secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        if self.show_secrets {
            return text.to_owned();
        }
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        replace_all(text, learned.iter())
    }

    pub fn shows_secrets(&self) -> bool {
        self.show_secrets
    }

    /// A copy of `value` with every secret-named field replaced.
    pub fn json(&self, value: &Value) -> Value {
        let mut v = value.clone();
        if !self.show_secrets {
            redact_in_place(&mut v);
        }
        v
    }

    /// `text` with every secret found in `sources` replaced. For messages
    /// that quote parts of a config (diffs, errors with response bodies).
    pub fn text(&self, text: &str, sources: &[&Value]) -> String {
        if self.show_secrets {
            return text.to_owned();
        }
        let mut secrets = BTreeSet::new();
        for s in sources {
            collect_secrets(s, &mut secrets);
        }
        secrets.retain(|s| s.len() >= MIN_TEXT_SECRET);
        replace_all(text, secrets.iter())
    }
}

fn replace_all<'a>(text: &str, secrets: impl Iterator<Item = &'a String>) -> String {
    // Longest first, so a secret that contains another is replaced whole.
    let mut secrets: Vec<&String> = secrets.collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
}

/// Replace every secret-named field of `value`, at any depth.
pub fn redact_in_place(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) && is_secret_value(v) && !v.is_object() && !v.is_array() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact_in_place(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// The secret values in `value`, as they would appear in text.
pub fn collect_secrets(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if is_secret_key(k) && is_secret_value(v) && !v.is_object() && !v.is_array() {
                    match v {
                        Value::String(s) => out.insert(s.clone()),
                        other => out.insert(other.to_string()),
                    };
                } else {
                    collect_secrets(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Value {
        json!({
            "hub": {"name": "Desk", "server_url": "http://127.0.0.1:9/", "server_type": 3},
            "api_key": "OLDKEY123",
            "wifi": {"ssid": "home", "password": "hunter22"},
            "endpoints": [
                {"id": 1, "name": "HomeAssistant", "config": {"api_key": "ENDPOINTKEY9", "url": "http://127.0.0.1:9/x"}},
                {"id": 2, "config": {"api_key": ""}},
                {"id": 3, "config": {"api_key": "VEGEHUB_HARNESS_TEST_KEY"}}
            ],
            "error": 0
        })
    }

    #[test]
    fn redacts_keys_at_any_depth_and_keeps_the_rest() {
        let r = Redactor::new(false).json(&config());
        assert_eq!(r["api_key"], REDACTED);
        assert_eq!(r["wifi"]["password"], REDACTED);
        assert_eq!(r["endpoints"][0]["config"]["api_key"], REDACTED);
        // Nothing secret in an empty key or the harness's own test value.
        assert_eq!(r["endpoints"][1]["config"]["api_key"], "");
        assert_eq!(
            r["endpoints"][2]["config"]["api_key"],
            "VEGEHUB_HARNESS_TEST_KEY"
        );
        assert_eq!(r["hub"], config()["hub"]);
        assert_eq!(r["wifi"]["ssid"], "home");
        let text = r.to_string();
        for s in ["OLDKEY123", "hunter22", "ENDPOINTKEY9"] {
            assert!(!text.contains(s), "{s} leaked: {text}");
        }
    }

    #[test]
    fn show_secrets_passes_everything_through() {
        let r = Redactor::new(true);
        assert_eq!(r.json(&config()), config());
        assert_eq!(r.text("key OLDKEY123", &[&config()]), "key OLDKEY123");
    }

    #[test]
    fn text_quoting_a_config_is_scrubbed() {
        let c = config();
        let msg = "endpoints[0].config.api_key: expected \"ENDPOINTKEY9\", got \"OLDKEY123\"";
        let out = Redactor::new(false).text(msg, &[&c]);
        assert_eq!(
            out,
            "endpoints[0].config.api_key: expected \"<redacted>\", got \"<redacted>\""
        );
    }

    #[test]
    fn learnt_secrets_are_scrubbed_from_any_text_by_every_clone() {
        let r = Redactor::new(false);
        let other = r.clone();
        r.learn(&config());
        r.learn(&json!({"api_key": "ab"}));
        let msg = "posted {\"api_key\":\"OLDKEY123\"} with hunter22; ab stays";
        assert_eq!(
            other.scrub(msg),
            "posted {\"api_key\":\"<redacted>\"} with <redacted>; ab stays"
        );
        let shown = Redactor::new(true);
        shown.learn(&config());
        assert_eq!(shown.scrub(msg), msg);
    }

    #[test]
    fn secret_key_names() {
        for k in [
            "api_key",
            "API_KEY",
            "apikey",
            "key",
            "wifi_password",
            "pass",
            "psk",
            "auth_token",
            "client_secret",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["name", "url", "keyboard", "monkey", "passes", "id", "ssid"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
