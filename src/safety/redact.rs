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

use serde_json::value::RawValue;
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

/// From this length a secret string is cut wherever it occurs in free
/// text. Shorter ones (and every number) are cut only where they stand
/// alone, as a whole token (see [`stands_alone`]): replacing every `ab`
/// inside words, or the `3` inside `1234`, would garble messages.
const MIN_TEXT_SECRET: usize = 4;

/// A one-character secret (a digit, a letter) is not searched for in text
/// at all: it hides nothing (ten or so values) and would cut every `1`.
const MIN_TOKEN_SECRET: usize = 2;

/// Values under keys that are neither harmless nor named as secrets are
/// masked in documents, but searched for in free text only from this
/// length (a Wi-Fi passphrase has at least 8 characters).
const MIN_UNNAMED_SECRET: usize = 8;

/// A secret as it is searched for in text: its spelling, and whether it
/// is cut only where it stands alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secret {
    text: String,
    whole_token: bool,
}

impl Secret {
    /// A string secret, as it reads decoded.
    fn string(text: &str) -> Secret {
        Secret {
            whole_token: text.chars().count() < MIN_TEXT_SECRET,
            text: text.to_owned(),
        }
    }

    /// A number secret in one spelling (`1.50`, `1.5`): a whole number only.
    fn number(text: &str) -> Secret {
        Secret {
            text: text.to_owned(),
            whole_token: true,
        }
    }

    /// `text` with every occurrence of this secret that counts replaced.
    fn cut(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (i, m) in text.match_indices(self.text.as_str()) {
            let end = i + m.len();
            if self.whole_token && !stands_alone(&text[..i], &text[end..]) {
                continue;
            }
            out.push_str(&text[last..i]);
            out.push_str(REDACTED);
            last = end;
        }
        out.push_str(&text[last..]);
        out
    }
}

/// Whether a match between `before` and `after` is a whole token: neither
/// side continues a word or number (a letter, digit or `_` next to it, or a
/// `.` followed by a digit: `1234` is not in `12345`, `1.1234` or `key_1234`,
/// but is in `pin 1234.` and `"1234"`).
fn stands_alone(before: &str, after: &str) -> bool {
    fn continues(mut side: impl Iterator<Item = char>) -> bool {
        match side.next() {
            Some(c) if c.is_alphanumeric() || c == '_' => true,
            Some('.') => side.next().is_some_and(|c| c.is_ascii_digit()),
            _ => false,
        }
    }
    !continues(before.chars().rev()) && !continues(after.chars())
}

/// Redacts, or passes through when secrets are to be shown. Clones share
/// the secrets learnt from configs, so text printed anywhere in the run
/// can be scrubbed of every key seen so far.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    show_secrets: bool,
    learned: Arc<Mutex<BTreeSet<Secret>>>,
}

impl Redactor {
    /// `show_secrets` is the `--show-secrets` flag.
    pub fn new(show_secrets: bool) -> Redactor {
        Redactor {
            show_secrets,
            learned: Arc::default(),
        }
    }

    /// Remember the secrets of a config, so [`scrub`] hides them wherever
    /// they are quoted later. Numbers are learnt as serde_json spells them;
    /// for a hub's answer use [`learn_text`], which also keeps the hub's
    /// own spelling.
    ///
    /// [`scrub`]: Redactor::scrub
    /// [`learn_text`]: Redactor::learn_text
    pub fn learn(&self, config: &Value) {
        self.learn_text(&config.to_string());
    }

    /// Remember the secrets of a JSON document as it came on the wire: a
    /// number under a secret key is learnt as the hub spelt it (`0.50`,
    /// `1e3`) and as serde_json spells it (`0.5`, `1000.0`). Text that is
    /// not JSON teaches nothing.
    pub fn learn_text(&self, text: &str) {
        let mut found = BTreeSet::new();
        collect_text(text, &mut found);
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
            redact_in_place(&mut v);
            scrub_strings(None, false, &mut v, &secrets);
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
        replace_all(text, secrets.iter())
    }
}

fn replace_all<'a>(text: &str, secrets: impl Iterator<Item = &'a Secret>) -> String {
    // Longest first, so a secret that contains another is replaced whole.
    let mut secrets: Vec<&Secret> = secrets.collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
    secrets.iter().fold(text.to_owned(), |t, s| s.cut(&t))
}

/// Every string a redacted document shows (one under a harmless key; the
/// others were masked whole, or cut to `scheme://host:port`, by their key)
/// with each of `secrets` replaced. Array items take their array's key.
fn scrub_strings(key: Option<&str>, inside: bool, value: &mut Value, secrets: &BTreeSet<Secret>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                scrub_strings(Some(k.as_str()), inside || is_secret_key(k), v, secrets);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| scrub_strings(key, inside, v, secrets)),
        v @ Value::String(_) if !masked(key, inside, v) => {
            if let Value::String(s) = v {
                if secrets.iter().any(|x| s.contains(x.text.as_str())) {
                    *s = replace_all(s, secrets.iter());
                }
            }
        }
        _ => {}
    }
}

/// Whether the scalar `v` under `key` is masked: strings and numbers
/// under any key not known to be harmless, and under secret-named keys
/// always, at any depth (`inside` one: `{"token": {"v": 1}}`); never empty
/// strings, null, booleans or the harness's own test values.
fn masked(key: Option<&str>, inside: bool, v: &Value) -> bool {
    let harmless = !inside && key.is_some_and(|k| is_harmless_key(k) && !is_secret_key(k));
    !harmless && is_secret_value(v) && !v.is_object() && !v.is_array()
}

/// Mask every value not under a harmless key, at any depth. Array items
/// take their array's key.
pub fn redact_in_place(value: &mut Value) {
    redact_under(None, false, value)
}

fn redact_under(key: Option<&str>, inside: bool, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_under(Some(k.as_str()), inside || is_secret_key(k), v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_under(key, inside, v)),
        v if masked(key, inside, v) => {
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
pub fn collect_secrets(value: &Value, out: &mut BTreeSet<Secret>) {
    collect_text(&value.to_string(), out)
}

/// The masked values in the JSON document `text`, numbers in the spelling
/// they have there. Nothing when `text` is not JSON.
fn collect_text(text: &str, out: &mut BTreeSet<Secret>) {
    // Parsed whole first: that bounds the nesting depth the walk below
    // recurses into (serde_json refuses more than 128 levels).
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return;
    }
    if let Ok(raw) = serde_json::from_str::<&RawValue>(text) {
        collect_under(None, false, raw, out);
    }
}

/// What `collect_text` keeps, walking the document as text so a number
/// keeps its spelling: every string or number under a secret-named key,
/// at any depth; strings masked under other keys from
/// [`MIN_UNNAMED_SECRET`] characters (short words such as "config" are
/// too common), but no numbers there (counts and readings, far more often
/// than secrets) and no bare document that is only a string. Booleans
/// are never secrets.
fn collect_under(key: Option<&str>, inside: bool, raw: &RawValue, out: &mut BTreeSet<Secret>) {
    let text = raw.get().trim();
    let named = inside || key.is_some_and(is_secret_key);
    match text.as_bytes().first() {
        Some(b'{') => {
            for (k, v) in serde_json::from_str::<Pairs>(text).map_or(vec![], |p| p.0) {
                collect_under(Some(&k), inside || is_secret_key(&k), v, out);
            }
        }
        Some(b'[') => {
            for v in serde_json::from_str::<Vec<&RawValue>>(text).unwrap_or_default() {
                collect_under(key, inside, v, out);
            }
        }
        Some(b'"') => {
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                return;
            };
            let chars = value.as_str().map_or(0, |s| s.chars().count());
            let wanted = chars >= MIN_TOKEN_SECRET && (named || chars >= MIN_UNNAMED_SECRET);
            match &value {
                Value::String(s) if key.is_some() && wanted && masked(key, inside, &value) => {
                    out.insert(Secret::string(s));
                }
                _ => {}
            }
        }
        Some(b'-' | b'0'..=b'9') if named => {
            let canonical = serde_json::from_str::<Value>(text).map(|v| v.to_string());
            for spelling in [Ok(text.to_owned()), canonical].into_iter().flatten() {
                if spelling.len() >= MIN_TOKEN_SECRET {
                    out.insert(Secret::number(&spelling));
                }
            }
        }
        _ => {}
    }
}

/// An object's members as raw text, in order, repeated keys included (a
/// hostile hub may repeat a key to hide a value from a parsed document).
struct Pairs<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Members<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Pairs<'a>, M::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = m.next_entry::<String, &'a RawValue>()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
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
        r.learn(&json!({"api_key": "ab", "pin": "x"}));
        let msg = "posted {\"api_key\":\"OLDKEY123\"} with hunter22; ab gone, abc, x stay";
        assert_eq!(
            other.scrub(msg),
            "posted {\"api_key\":\"<redacted>\"} with <redacted>; <redacted> gone, abc, x stay"
        );
        let shown = Redactor::new(true);
        shown.learn(&config());
        assert_eq!(shown.scrub(msg), msg);
    }

    #[test]
    fn numbers_under_secret_keys_are_cut_in_the_spelling_the_hub_used() {
        // `1.50` and `7e3` are what the hub sent; serde_json would print
        // `1.5` and `7000.0`. Both spellings are learnt.
        let r = Redactor::new(false);
        r.learn_text(
            r#"{"api_key": 90210.750, "wifi": {"pin": 7e3}, "id": 31337, "vh_total": 4444}"#,
        );
        let said = "stored; key 90210.750 (90210.75), pin 7e3 = 7000.0; id 31337, total 4444";
        assert_eq!(
            r.scrub(said),
            "stored; key <redacted> (<redacted>), pin <redacted> = <redacted>; id 31337, total 4444"
        );
        // In a document: masked by key, cut out of a harmless field.
        let answer = json!({"error": 0, "message": "api_key is 90210.750"});
        assert_eq!(r.json(&answer)["message"], "api_key is <redacted>");
        // Without learning first, `json` finds the document's own.
        let doc = json!({"token": 5150, "message": "token 5150 refused"});
        let shown = Redactor::new(false).json(&doc);
        assert_eq!(shown["token"], REDACTED);
        assert_eq!(shown["message"], "token <redacted> refused");
    }

    #[test]
    fn a_number_secret_is_cut_only_where_it_stands_alone() {
        let r = Redactor::new(false);
        r.learn(&json!({"pin": 1234, "api_key": 42, "key": 7}));
        assert_eq!(
            r.scrub("pin 1234, \"1234\", 1234. 12345 1.1234 1234.5 key_1234 a1234"),
            "pin <redacted>, \"<redacted>\", <redacted>. 12345 1.1234 1234.5 key_1234 a1234"
        );
        // Two digits: whole tokens only; one digit: never searched for.
        assert_eq!(
            r.scrub("key 42; 142 420 slot 7 of 7"),
            "key <redacted>; 142 420 slot 7 of 7"
        );
    }

    #[test]
    fn every_leaf_under_a_secret_key_is_masked_and_learnt_whatever_its_type() {
        let doc = json!({"credentials": {"token": {"id": 1, "v": 8080.0, "name": "tok-name-xyz",
            "list": [true, null, "", 2718]}}, "message": "8080.0 tok-name-xyz 2718 true"});
        let r = Redactor::new(false);
        let shown = r.json(&doc);
        let t = &shown["credentials"]["token"];
        for (k, v) in [
            ("id", json!(REDACTED)),
            ("v", json!(REDACTED)),
            ("name", json!(REDACTED)),
        ] {
            assert_eq!(t[k], v, "{k}");
        }
        // Booleans, null and empty strings say nothing, as elsewhere.
        assert_eq!(t["list"], json!([true, null, "", REDACTED]));
        assert_eq!(shown["message"], "<redacted> <redacted> <redacted> true");
        // Not JSON: nothing learnt, nothing garbled.
        r.learn_text("{\"api_key\": 123456");
        assert_eq!(r.scrub("123456"), "123456");
    }

    #[test]
    fn a_repeated_key_does_not_hide_its_first_value() {
        let r = Redactor::new(false);
        r.learn_text(r#"{"api_key": 55501, "api_key": "later"}"#);
        assert_eq!(r.scrub("55501"), REDACTED);
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
