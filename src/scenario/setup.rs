//! Scenario `setup` (opt-in): keep the original config, configure a test API
//! key and server the way the firmware generation expects, read back and
//! verify, then restore the original and verify the restore deep-equal. The
//! restore runs whatever happened before it (failure, error, panic).

use serde_json::{json, Value};

use super::deliver::{self, DeliverCheck};
#[cfg(test)]
use super::diff::diff;
use super::diff::summarize;
use super::{Cleanup, Cx, Permission, Step, Stop};
use crate::device::config::SERVER_TYPE_CUSTOM;
use crate::device::json_diff::diff_texts;
use crate::device::Generation;
use crate::session::client::HubClient;

/// Test API key: recognisable, never a real key.
pub const TEST_API_KEY: &str = "VEGEHUB_HARNESS_TEST_API_KEY";
/// Test endpoint name (new firmware).
pub const TEST_ENDPOINT_NAME: &str = "VEGEHUB_HARNESS_TEST";
/// Test server: loopback discard port, so a hub that does post goes nowhere.
pub const TEST_SERVER_URL: &str = "http://127.0.0.1:9/VEGEHUB_HARNESS_TEST";

/// The parameters of `setup`: a plan's `setup` step, and the defaults when
/// it gives none (this is the only place they are written).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The API key the scenario configures; starts with
    /// `safety::redact::TEST_VALUE_PREFIX` (never a real key).
    pub test_api_key: String,
    /// The server address the scenario configures (never contacted by the
    /// harness).
    pub test_server_url: String,
    /// Whether to restore the original config afterwards. Only a plan that
    /// means to leave the hub configured turns this off.
    pub restore: bool,
    /// `deliver_check`: prove the hub posts data to a receiver of the
    /// harness's (`test_server_url` is then replaced by the receiver's).
    pub deliver_check: DeliverCheck,
    /// `deliver_timeout_seconds`: how long the hub has to post.
    pub deliver_timeout: std::time::Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            test_api_key: TEST_API_KEY.to_owned(),
            test_server_url: TEST_SERVER_URL.to_owned(),
            restore: true,
            deliver_check: DeliverCheck::Off,
            deliver_timeout: deliver::DEFAULT_DELIVER_TIMEOUT,
        }
    }
}

/// An endpoint id's integer value, however the hub spelt it: an integer,
/// a whole float (`1.0`) or a string of digits (`"1"`).
fn id_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The original config with the test key and server set the way its
/// generation expects: new firmware gets an endpoint appended (as the
/// reference client does); old firmware gets `api_key`, `hub.server_url`
/// and `hub.server_type` 3.
pub fn test_config(original: &Value) -> Value {
    test_config_with(original, TEST_API_KEY, TEST_SERVER_URL)
}

/// [`test_config`] with the plan's test key and server.
pub fn test_config_with(original: &Value, api_key: &str, server_url: &str) -> Value {
    let mut doc = original.clone();
    match Generation::of(original) {
        Generation::New => {
            let list = doc["endpoints"]
                .as_array_mut()
                .expect("new generation has a list");
            // One past the largest id; the hub's ids are untrusted, so one
            // at i64::MAX takes the smallest free id instead of overflowing.
            // An id counts by its value however it is spelt (`1.0`, `"1"`),
            // so the test endpoint never shares one with the hub's own.
            let ids: std::collections::BTreeSet<i64> =
                list.iter().filter_map(|e| id_value(&e["id"])).collect();
            let id = match ids.last() {
                None => 1,
                Some(max) => max
                    .checked_add(1)
                    .unwrap_or_else(|| (1..).find(|i| !ids.contains(i)).unwrap_or(0)),
            };
            list.push(json!({
                "id": id,
                "name": TEST_ENDPOINT_NAME,
                "type": "custom",
                "enabled": true,
                "connection_method": "wifi",
                "config": {
                    "api_key": api_key,
                    "data_format": "json",
                    "url": server_url,
                }
            }));
        }
        Generation::Old => {
            if !doc.is_object() {
                doc = json!({});
            }
            doc["api_key"] = json!(api_key);
            if !doc["hub"].is_object() {
                doc["hub"] = json!({});
            }
            doc["hub"]["server_url"] = json!(server_url);
            doc["hub"]["server_type"] = json!(SERVER_TYPE_CUSTOM);
        }
    }
    doc
}

/// Write the run's original back, byte for byte, and verify the hub holds
/// it deep-equal (numbers compared exactly).
pub async fn restore(client: &HubClient, original: &crate::safety::Original) -> Cleanup {
    let what = "config restored".to_owned();
    if let Err(e) = client.config_set_exact(&original.text).await {
        return Cleanup {
            what,
            verified: false,
            detail: format!("writing the original back failed: {e}"),
        };
    }
    match client.config_get().await {
        Err(e) => Cleanup {
            what,
            verified: false,
            detail: format!("reading the config back failed: {e}"),
        },
        Ok(back) => {
            let d = diff_texts(&original.text, &back.text);
            if d.is_empty() {
                Cleanup {
                    what,
                    verified: true,
                    detail: "read back deep-equal to the backup taken before the first write"
                        .into(),
                }
            } else {
                Cleanup {
                    what,
                    verified: false,
                    detail: format!(
                        "read back differs from the original at {} path(s): {}",
                        d.len(),
                        summarize(&d, 5)
                    ),
                }
            }
        }
    }
}

async fn apply_and_verify(client: &HubClient, test: &Value, generation: Generation) -> Step {
    client.config_set(test).await?;
    let back = client.config_get().await?;
    let d = diff_texts(&test.to_string(), &back.text);
    if d.is_empty() {
        return Ok(());
    }
    Err(Stop::Fail(format!(
        "config/set succeeded but the hub did not keep the test settings \
         ({generation} firmware); read back differs at {} path(s): {}",
        d.len(),
        summarize(&d, 5)
    )))
}

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    if let Permission::Denied(why) = &cx.opts.setup {
        return Err(Stop::Skip(why.clone()));
    }
    let read = cx.client.config_get().await?;
    cx.facts.record_config(&read.doc);
    let generation = Generation::of(&read.doc);
    cx.note(format!("firmware generation {generation}"));
    // The test config is rebuilt from the parsed document: refuse one that
    // would not come out as the hub sent it (numbers no f64/i64/u64 holds,
    // or that it would write otherwise, `9E2` as `900.0`; duplicate keys),
    // before anything is written.
    match crate::device::json_diff::exact(&read.text) {
        Ok(e) => {
            if let Some(why) = e.inexact.or(e.respelled) {
                return Err(Stop::Fail(format!(
                    "the hub's config cannot be carried exactly ({why}); setup writes nothing"
                )));
            }
        }
        Err(why) => return Err(Stop::Fail(format!("config/get: {why}"))),
    }
    // With a delivery check the hub is pointed at a receiver of this
    // scenario's, with a fresh key; it is started before anything is
    // written, so a hub it cannot be started for is left untouched.
    let check = cx.opts.setup_params.deliver_check;
    let mut receiver = None;
    let mut unreachable = None;
    if check != DeliverCheck::Off {
        match deliver::start_for(cx.client).await {
            Ok(r) => receiver = Some(r),
            Err(why) if check == DeliverCheck::Required => {
                return Err(Stop::Fail(format!(
                "deliver_check required: no receiver the hub could reach ({why}); nothing written"
            )))
            }
            Err(why) => unreachable = Some(why),
        }
    }
    let (key, url) = match &receiver {
        Some(r) => (
            format!("{}_{}", cx.opts.setup_params.test_api_key, r.nonce()),
            r.url(),
        ),
        None => (
            cx.opts.setup_params.test_api_key.clone(),
            cx.opts.setup_params.test_server_url.clone(),
        ),
    };
    let test = test_config_with(&read.doc, &key, &url);
    let original = match cx.backup_before_write(&read).await {
        Ok(o) => o,
        Err(e) => {
            if let Some(r) = receiver {
                r.close().await;
            }
            return Err(e);
        }
    };

    let mut body = super::caught("setup", apply_and_verify(cx.client, &test, generation)).await;
    let mut delivery_skip = unreachable.map(|why| {
        format!("config stored and restored; delivery not checked: no local address the hub could reach ({why})")
    });
    if let Some(r) = receiver.as_mut() {
        if body.is_ok() {
            let started = std::time::Instant::now();
            let timeout = cx.opts.setup_params.deliver_timeout;
            match super::caught("setup", deliver::prove(cx.client, r, &key, timeout)).await {
                Ok(()) => cx.note(format!(
                    "hub delivered a data update to the harness's receiver in {} ms: key, MAC, every slot and type as documented",
                    started.elapsed().as_millis()
                )),
                Err(Stop::Skip(why)) if check == DeliverCheck::IfReachable => {
                    delivery_skip = Some(format!(
                        "config stored and restored; {why} (deliver_check if-reachable: the hub may be on a network that cannot reach this machine)"
                    ))
                }
                Err(Stop::Skip(why)) => body = Err(Stop::Fail(why)),
                Err(e) => body = Err(e),
            }
        }
    }
    if debug_panic() {
        panic!("VEGEHUB_HARNESS_DEBUG_PANIC: setup fails on purpose");
    }
    if let Some(r) = receiver.take() {
        let receiver_url = r.url();
        let inbound = r.close().await;
        if let Some(ledger) = cx.client.ledger() {
            ledger.record_inbound(cx.client.hub(), &receiver_url, inbound.served);
        }
        let turned_away = match inbound.turned_away {
            0 => String::new(),
            n => format!("; {n} more turned away (the receiver was serving its limit)"),
        };
        cx.note(format!(
            "receiver {receiver_url}: {} inbound connection(s) from the hub (not the client's){turned_away}",
            inbound.served
        ));
    }

    if !cx.opts.setup_params.restore {
        // The plan asked to leave the hub configured with the test values:
        // not owed, so the run's cleanup leaves it too. The backup stays.
        cx.config_left_on_purpose();
        cx.note(format!(
            "original config not restored: the plan says restore false (backup: {})",
            original.backup.display()
        ));
        return body;
    }
    // Back to the run's original (not to what this scenario read, which an
    // earlier failure may have left damaged), verified against it.
    let restored = cx.settle_config(&original).await;
    let (ok, detail) = (restored.verified, restored.detail.clone());
    cx.cleanup.push(restored);
    body?;
    if !ok {
        return Err(Stop::Fail(format!("restore not verified: {detail}")));
    }
    match delivery_skip {
        Some(why) => Err(Stop::Skip(why)),
        None => Ok(()),
    }
}

/// Test-only (`VEGEHUB_HARNESS_DEBUG_PANIC=setup`): the scenario panics
/// with its test config on the hub and its receiver open, outside any
/// guard of its own; the run must still restore the one and stop the other.
fn debug_panic() -> bool {
    std::env::var("VEGEHUB_HARNESS_DEBUG_PANIC")
        .is_ok_and(|v| v.split(',').any(|w| w.trim() == "setup"))
}

/// The text of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-text panic payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_firmware_gets_an_endpoint_appended_and_nothing_else_changes() {
        let orig = json!({"endpoints": [{"id": 4, "name": "HomeAssistant"}], "error": 0});
        let t = test_config(&orig);
        assert_eq!(diff(&orig, &t), ["endpoints[1] (length 2 instead of 1)"]);
        assert_eq!(t["endpoints"][1]["id"], 5);
        let top = json!({"endpoints": [{"id": i64::MAX}, {"id": 1}], "error": 0});
        assert_eq!(test_config(&top)["endpoints"][2]["id"], 2);
        // Ids spelt otherwise still count: no test endpoint shares one.
        let spelt = json!({"endpoints": [{"id": 1.0}, {"id": "2"}], "error": 0});
        assert_eq!(test_config(&spelt)["endpoints"][2]["id"], 3);
        assert_eq!(t["endpoints"][1]["config"]["api_key"], TEST_API_KEY);
        assert_eq!(t["endpoints"][1]["config"]["url"], TEST_SERVER_URL);
    }

    #[test]
    fn old_firmware_gets_key_server_and_type() {
        let orig = json!({"hub": {"name": "x", "server_url": "", "server_type": 0},
                          "api_key": "", "endpoints": null, "error": 0});
        let t = test_config(&orig);
        assert_eq!(
            diff(&orig, &t),
            ["hub.server_url", "hub.server_type", "api_key"]
        );
        assert_eq!(t["hub"]["server_type"], 3);
    }

    #[test]
    fn test_values_are_recognisable_and_loopback() {
        assert!(TEST_API_KEY.starts_with("VEGEHUB_HARNESS_TEST"));
        assert!(TEST_SERVER_URL.starts_with("http://127.0.0.1:"));
    }
}
