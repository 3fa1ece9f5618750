//! Secret redaction by allow-list: in a JSON document from or for a hub,
//! only values under keys known to be harmless (ids, names, types, flags,
//! counts, the documented info and actuator fields) are shown; every other
//! string or number is replaced, whatever its key is called (`wifi_pass`,
//! `passphrase`, `pwd`, a webhook URL). A body that is not JSON is never
//! recorded raw: only its length and a short hash (`session::client::opaque`,
//! where answers are read). Secret values seen are
//! also learnt, so text quoting them is scrubbed. `--show-secrets` turns it
//! off. Backups are the one place secrets are kept (mode 0600, private dir).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::device::actuators::SLOT_FIELDS;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Values the harness itself writes start with this; they are not secrets
/// and showing them makes setup failures readable.
pub const TEST_VALUE_PREFIX: &str = "VEGEHUB_HARNESS_TEST_";

/// A value containing this was written by the harness (test key, endpoint
/// name, server URL) and is shown.
const TEST_MARK: &str = "VEGEHUB_HARNESS_TEST";

/// Keys whose values are shown: documented fields that carry no secret.
/// Everything else is masked. Matching is exact and case-insensitive.
pub const HARMLESS_KEYS: &[&str] = &[
    // identity and structure
    "id",
    "name",
    "type",
    "enabled",
    "connection_method",
    "data_format",
    "error",
    "message",
    "server_type",
    "format",
    "version",
    "mac",
    "mac_addr",
    // info: hub
    "first_boot",
    "page_updated",
    "error_message",
    "num_channels",
    "num_actuators",
    "agenda",
    "batt_v",
    "num_vsens",
    "is_ac",
    "has_sd",
    "on_ap",
    // info: wifi (the SSID is broadcast; the IP is a local address)
    "ssid",
    "strength",
    "chan",
    "ip",
    "status",
    // actuators (and every slot field, `SLOT_FIELDS`)
    "target",
    "duration",
    // config schedule and units
    "update_period",
    "utc_offset",
    "power_mode",
    "sensor_type",
    "units",
    // data updates
    "error_code",
    "send_time",
    "wifi_str",
    "v",
    "t",
];

/// Is the value under `key` shown? Only for [`HARMLESS_KEYS`] and the
/// fields of an actuator slot.
pub fn is_harmless_key(key: &str) -> bool {
    HARMLESS_KEYS
        .iter()
        .chain(SLOT_FIELDS)
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// Is this object key one whose value is a secret? Matches `api_key`,
/// `apikey`, `key`, `password`, `pass`, `psk`, `token`, `secret` and names
/// containing them (`wifi_password`, `auth_token`), case-insensitive.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "key"
        || k == "pass"
        || k == "psk"
        || k == "pwd"
        || k == "pin"
        || k.starts_with("pass_")
        || k.ends_with("_pass")
        || k.contains("passphrase")
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
        Value::String(s) => !s.is_empty() && !s.contains(TEST_MARK),
        Value::Bool(_) => false,
        _ => true,
    }
}

/// Secrets shorter than this are not searched for in free text: replacing
/// every `0` or `ab` in a message would garble it, and no real key is that
/// short.
const MIN_TEXT_SECRET: usize = 4;

/// Values under keys that are neither harmless nor named as secrets are
/// masked in documents, but searched for in free text only from this
/// length (a Wi-Fi passphrase has at least 8 characters).
const MIN_UNNAMED_SECRET: usize = 8;

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

    /// A copy of `value` with every value not under a harmless key
    /// replaced, and every secret (learnt from configs, or masked in
    /// `value` itself) cut out of the strings that stay: a hub may echo an
    /// API key inside a harmless field (`"message": "key … refused"`).
    pub fn json(&self, value: &Value) -> Value {
        let mut v = value.clone();
        if !self.show_secrets {
            let mut secrets = self
                .learned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            collect_secrets(value, &mut secrets);
            secrets.retain(|s| s.len() >= MIN_TEXT_SECRET);
            redact_in_place(&mut v);
            scrub_strings(None, &mut v, &secrets);
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

/// Every string a redacted document shows (one under a harmless key; the
/// others were masked whole, or cut to `scheme://host:port`, by their key)
/// with each of `secrets` replaced. Array items take their array's key.
fn scrub_strings(key: Option<&str>, value: &mut Value, secrets: &BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                scrub_strings(Some(k.as_str()), v, secrets);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| scrub_strings(key, v, secrets)),
        v @ Value::String(_) if !masked(key, v) => {
            if let Value::String(s) = v {
                if secrets.iter().any(|x| s.contains(x.as_str())) {
                    *s = replace_all(s, secrets.iter());
                }
            }
        }
        _ => {}
    }
}

/// Whether the scalar `v` under `key` is masked: strings and numbers
/// under any key not known to be harmless, and secret-named keys always;
/// never empty strings, null, booleans or the harness's own test values.
fn masked(key: Option<&str>, v: &Value) -> bool {
    let harmless = key.is_some_and(|k| is_harmless_key(k) && !is_secret_key(k));
    !harmless && is_secret_value(v) && !v.is_object() && !v.is_array()
}

/// Mask every value not under a harmless key, at any depth. Array items
/// take their array's key.
pub fn redact_in_place(value: &mut Value) {
    redact_under(None, value)
}

fn redact_under(key: Option<&str>, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_under(Some(k.as_str()), v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_under(key, v)),
        v if masked(key, v) => {
            let url = key.is_some_and(|k| k.to_ascii_lowercase().contains("url"));
            *v = Value::String(match (&*v, url) {
                // Where data goes is worth seeing; the path (a webhook id)
                // and any user:password@ are not.
                (Value::String(s), true) => redact_url(s),
                _ => REDACTED.to_owned(),
            });
        }
        _ => {}
    }
}

/// Keep `scheme://host:port` of a URL and replace the rest.
pub fn redact_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return REDACTED.into();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return REDACTED.into();
    }
    if rest.len() > host.len() || rest.contains('@') {
        format!("{scheme}://{host}/{REDACTED}")
    } else {
        s.to_string()
    }
}

/// The masked values in `value`, as they would appear in text.
pub fn collect_secrets(value: &Value, out: &mut BTreeSet<String>) {
    collect_under(None, value, out)
}

fn collect_under(key: Option<&str>, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_under(Some(k.as_str()), v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_under(key, v, out)),
        // Numbers are masked in documents but not searched for in text:
        // replacing every "3" in a message would garble it. Likewise short
        // values under keys not named as secrets (a word like "config"),
        // and a bare document that is only a string.
        Value::String(s) if key.is_some() && masked(key, value) => {
            let secret_named = key.is_some_and(is_secret_key);
            if secret_named || s.chars().count() >= MIN_UNNAMED_SECRET {
                out.insert(s.clone());
            }
        }
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
        assert_eq!(r["hub"]["name"], "Desk");
        assert_eq!(r["hub"]["server_type"], 3);
        assert_eq!(r["hub"]["server_url"], "http://127.0.0.1:9/<redacted>");
        assert_eq!(r["wifi"]["ssid"], "home");
        let text = r.to_string();
        for s in ["OLDKEY123", "hunter22", "ENDPOINTKEY9"] {
            assert!(!text.contains(s), "{s} leaked: {text}");
        }
    }

    #[test]
    fn values_under_unknown_keys_are_masked_whatever_their_name() {
        let doc = json!({"wifi_pass": "hunter22", "passphrase": "open sesame",
            "pwd": "pw-1234", "webhook": "http://127.0.0.1:8123/api/webhook/abcdef",
            "pin": 1234, "sensors": [{"slot": 1, "name": "Soil", "calib": "c-77"}],
            "enabled": true, "error": 0});
        let r = Redactor::new(false).json(&doc);
        for k in ["wifi_pass", "passphrase", "pwd", "webhook", "pin"] {
            assert_eq!(r[k], REDACTED, "{k}");
        }
        assert_eq!(r["sensors"][0]["calib"], REDACTED);
        assert_eq!(r["sensors"][0]["name"], "Soil");
        assert_eq!(r["sensors"][0]["slot"], 1);
        assert_eq!(r["enabled"], true);
        assert_eq!(r["error"], 0);
        let learnt = Redactor::new(false);
        learnt.learn(&doc);
        assert_eq!(
            learnt.scrub("got hunter22 and pw-1234"),
            "got <redacted> and <redacted>"
        );
    }

    #[test]
    fn a_secret_echoed_in_a_harmless_field_is_cut_out() {
        let r = Redactor::new(false);
        r.learn(&config());
        let answer = json!({"error": 1, "message": "key OLDKEY123 refused",
            "name": "hunter22", "version": "5.1.1"});
        let shown = r.json(&answer);
        assert_eq!(shown["message"], "key <redacted> refused");
        assert_eq!(shown["name"], "<redacted>");
        assert_eq!(shown["version"], "5.1.1");
        // Within one document too: a value masked under its key is cut out
        // where a harmless field repeats it.
        let doc = json!({"psk": "open-sesame-9", "message": "psk open-sesame-9 bad"});
        let shown = Redactor::new(false).json(&doc);
        assert_eq!(shown["message"], "psk <redacted> bad");
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
