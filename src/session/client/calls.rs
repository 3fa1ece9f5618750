//! The typed calls of the hub's API: `info/get`, `config/get` and
//! `config/set`, `actuators/status` and `actuators/set` (every `on` capped by
//! `--max-on-seconds`), `update/send`; every write behind the identity check.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::device::{paths, ActuatorSet, ActuatorStatus, InfoResponse, Mac};
use crate::session::actuator_limit::MaxOn;

use super::answer::{check_config_answer, kind_of, MAX_STATUS_ENTRIES};
use super::retry::Req;
use super::rules;
use super::{CallError, HubClient};

/// A `config/get` answer: the exact bytes the hub sent (what a backup keeps
/// and a restore writes back) and the parsed document (for display,
/// comparison and building a test config). Only answers that are UTF-8
/// JSON objects whose `error` says success get this far.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigAnswer {
    pub text: String,
    pub doc: Value,
}

impl HubClient {
    /// `info/get` naming the sections wanted, typed.
    pub async fn info(&self, sections: &[&str]) -> Result<InfoResponse, CallError> {
        let doc = self.info_raw(sections).await?;
        serde_json::from_value(doc)
            .map_err(|e| self.decode(&Method::POST, paths::INFO_GET, e.to_string()))
    }

    /// `info/get` answer as a raw document (for field-by-field type checks).
    /// It must be a JSON object. A MAC in its `wifi` section is held against
    /// the hub's first one: another MAC fails the call and stops every
    /// later write to this address.
    pub async fn info_raw(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        let doc: Value = self
            .call_json(Method::POST, paths::INFO_GET, Some(Req::json(body)))
            .await?;
        if !doc.is_object() {
            return Err(self.decode(
                &Method::POST,
                paths::INFO_GET,
                format!("{}, not a JSON object", kind_of(&doc)),
            ));
        }
        if let Some(why) = rules::missing_section(&doc, sections) {
            return Err(self.decode(&Method::POST, paths::INFO_GET, why));
        }
        if let Some(mac) = doc
            .get("wifi")
            .and_then(|w| w.get("mac_addr"))
            .and_then(Value::as_str)
            .and_then(Mac::parse)
        {
            self.observe_mac(mac)?;
        }
        Ok(doc)
    }

    /// `config/get` asking for every section: the exact answer and the
    /// parsed document, after the checks of [`check_config_answer`]. An
    /// answer that is not UTF-8, not JSON, not an object, reports an error,
    /// or has a shape the harness does not understand is an error here, so
    /// nothing is ever built on (or written from) it.
    pub async fn config_get(&self) -> Result<ConfigAnswer, CallError> {
        let body = crate::device::config::full_request();
        let (method, path) = (Method::POST, paths::CONFIG_GET);
        let bytes = self
            .call(method.clone(), path, Some(Req::json(body)))
            .await?;
        let text = String::from_utf8(bytes).map_err(|e| {
            self.decode(
                &method,
                path,
                format!(
                    "not valid UTF-8 (at byte {}): the config cannot be kept exactly, so nothing is written",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| self.decode(&method, path, format!("not JSON: {e}")))?;
        if rules::top_level_duplicate(&text, "error") {
            return Err(self.decode(
                &method,
                path,
                "the error field appears twice, so whether the hub succeeded is unknown".into(),
            ));
        }
        check_config_answer(&doc).map_err(|why| {
            self.decode(
                &method,
                path,
                format!("{why}; the harness does not write a config it does not understand"),
            )
        })?;
        self.check_error_field(&method, path, &doc)?;
        Ok(ConfigAnswer { text, doc })
    }

    /// `config/get` naming the sections wanted (`record` asks for every
    /// section a hub may hold, not just the ones the scenarios touch). The
    /// `error` field must say success.
    pub async fn config_get_sections(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        let (method, path) = (Method::POST, paths::CONFIG_GET);
        let doc: Value = self
            .call_json(method.clone(), path, Some(Req::json(body)))
            .await?;
        self.check_error_field(&method, path, &doc)?;
        Ok(doc)
    }

    /// `config/set` with a whole document built by the harness (a test
    /// config). Numbers keep their exact text (serde_json
    /// `arbitrary_precision`).
    pub async fn config_set(&self, config: &Value) -> Result<(), CallError> {
        self.write(Method::POST, paths::CONFIG_SET, Req::json(config.clone()))
            .await
    }

    /// `config/set` with exactly these bytes: a config as the hub sent it
    /// (a backup, or the document just read), never re-encoded.
    pub async fn config_set_exact(&self, text: &str) -> Result<(), CallError> {
        let shown = serde_json::from_str(text).unwrap_or(Value::Null);
        self.write(
            Method::POST,
            paths::CONFIG_SET,
            Req {
                bytes: text.as_bytes().to_vec(),
                shown,
            },
        )
        .await
    }

    /// `actuators/status`: every listed slot, typed. The `error` field must
    /// say success; more than [`MAX_STATUS_ENTRIES`] entries is refused.
    pub async fn actuator_status(&self) -> Result<ActuatorStatus, CallError> {
        let (method, path) = (Method::GET, paths::ACTUATORS_STATUS);
        let doc = self.actuator_status_raw().await?;
        let list = doc
            .get("actuators")
            .and_then(Value::as_array)
            .ok_or_else(|| self.decode(&method, path, "actuators missing or not a list".into()))?;
        if list.len() > MAX_STATUS_ENTRIES {
            return Err(self.decode(
                &method,
                path,
                format!(
                    "{} entries listed, more than the harness handles ({MAX_STATUS_ENTRIES})",
                    list.len()
                ),
            ));
        }
        let actuators = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                serde_json::from_value(e.clone())
                    .map_err(|err| self.decode(&method, path, format!("actuators[{i}]: {err}")))
            })
            .collect::<Result<Vec<crate::device::ActuatorSlot>, CallError>>()?;
        let slots: Vec<u32> = actuators.iter().map(|a| a.slot).collect();
        if let Some(slot) = rules::slot_listed_twice(&slots) {
            return Err(self.decode(
                &method,
                path,
                format!("slot {slot} is listed twice, so its state is unknown"),
            ));
        }
        Ok(ActuatorStatus {
            actuators,
            error: "success".into(),
        })
    }

    /// `actuators/status` as a raw document (for field-by-field checks); a
    /// JSON object whose `error` says success.
    pub async fn actuator_status_raw(&self) -> Result<Value, CallError> {
        let (method, path) = (Method::GET, paths::ACTUATORS_STATUS);
        let doc: Value = self.call_json(method.clone(), path, None).await?;
        if !doc.is_object() {
            return Err(self.decode(
                &method,
                path,
                format!("{}, not a JSON object", kind_of(&doc)),
            ));
        }
        self.check_error_field(&method, path, &doc)?;
        Ok(doc)
    }

    /// `actuators/set`. Private on purpose: callers go through
    /// [`HubClient::actuator_on`] (always with a device-side duration) or
    /// [`HubClient::actuator_off`].
    async fn actuator_set(&self, set: ActuatorSet) -> Result<(), CallError> {
        let body = serde_json::to_value(set).expect("ActuatorSet serialises");
        self.write(Method::POST, paths::ACTUATORS_SET, Req::json(body))
            .await
    }

    /// Switch a slot on for `seconds`, at least 1 and at most
    /// `--max-on-seconds`: the hub switches it off by itself when the
    /// duration ends, even if the harness dies.
    pub async fn actuator_on(&self, slot: u32, seconds: u32) -> Result<(), CallError> {
        self.actuator_set(self.cfg.max_on.on(slot, seconds)).await
    }

    /// Switch a slot off now.
    pub async fn actuator_off(&self, slot: u32) -> Result<(), CallError> {
        self.actuator_set(MaxOn::off(slot)).await
    }

    /// `update/send`.
    pub async fn update_send(&self) -> Result<(), CallError> {
        let (method, path) = (Method::GET, paths::UPDATE_SEND);
        let bytes = self.call(method.clone(), path, None).await?;
        self.check_write_answer(&method, path, &bytes)
    }

    /// A request that changes the hub: identity checked first, then the
    /// answer's `error` field.
    async fn write(&self, method: Method, path: &str, body: Req) -> Result<(), CallError> {
        self.check_identity(&method, path).await?;
        let bytes = self.call(method.clone(), path, Some(body)).await?;
        self.check_write_answer(&method, path, &bytes)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Req>,
    ) -> Result<T, CallError> {
        let bytes = self.call(method.clone(), path, body).await?;
        if let Some(why) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(rules::duplicate_key)
        {
            return Err(self.decode(&method, path, why));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.decode(&method, path, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::client::{build_http, SessionConfig};
    use crate::session::ledger::Ledger;

    /// The cap holds on the wire, not only in the command builder: every
    /// `actuators/set` the client sends carries a duration within it.
    #[tokio::test]
    async fn every_actuator_command_the_client_sends_is_capped() {
        let profile = crate::sim::Profile::load("hub-new-firmware").unwrap();
        let sim = crate::sim::spawn(crate::sim::SimOptions::new(profile))
            .await
            .unwrap();
        let cfg = SessionConfig {
            max_on: MaxOn::new(3).unwrap(),
            ..SessionConfig::default()
        };
        let http = build_http(&cfg, Ledger::new(2).new_session()).unwrap();
        let client = HubClient::new(http, sim.base_url(), sim.addr().to_string(), cfg, None);
        client.actuator_on(0, 60).await.unwrap();
        client.actuator_on(0, 0).await.unwrap();
        client.actuator_off(0).await.unwrap();
        let sent: Vec<ActuatorSet> = sim
            .received()
            .iter()
            .filter(|r| r.path == paths::ACTUATORS_SET)
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        let set = |duration, state| ActuatorSet {
            target: 0,
            duration,
            state,
        };
        assert_eq!(sent, vec![set(3, 1), set(1, 1), set(0, 0)]);
        sim.stop().await.unwrap();
    }
}
