//! A minimal HTTP implementation of [`HubOps`] for the `restore` command:
//! one reqwest client for the command, a timeout on every request.
// TODO(safety phase 2): replace with the run's shared client (src/client.rs).

use std::time::Duration;

use reqwest::{Client, Url};
use serde_json::Value;

use crate::actuator_limit::MaxOn;
use crate::device::{self, paths, ActuatorSlot, ActuatorStatus, InfoResponse};
use crate::teardown::HubOps;

/// Parse `HOST[:PORT]` (port 80 when absent; IPv6 in brackets) into the
/// hub's base URL.
pub fn base_url(address: &str) -> Result<Url, String> {
    let a = address.trim();
    if a.is_empty() || a.contains('/') || a.contains('@') || a.contains('?') || a.contains('#') {
        return Err("expected HOST[:PORT]".into());
    }
    // A bare IPv6 address has more than one colon and no brackets.
    let a = if a.matches(':').count() > 1 && !a.starts_with('[') {
        format!("[{a}]")
    } else {
        a.to_owned()
    };
    let url =
        Url::parse(&format!("http://{a}/")).map_err(|e| format!("expected HOST[:PORT] ({e})"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("expected HOST[:PORT]".into());
    }
    Ok(url)
}

/// One hub over HTTP.
#[derive(Debug, Clone)]
pub struct HttpHub {
    client: Client,
    base: Url,
}

impl HttpHub {
    pub fn new(base: Url, timeout: Duration) -> Result<HttpHub, String> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| chain(&e))?;
        Ok(HttpHub { client, base })
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("API paths are valid")
    }

    async fn post(&self, path: &str, body: &Value) -> Result<reqwest::Response, String> {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{path}: {}", chain(&e)))?;
        check(path, r)
    }
}

fn check(path: &str, r: reqwest::Response) -> Result<reqwest::Response, String> {
    if r.status().is_success() {
        Ok(r)
    } else {
        Err(format!("{path}: HTTP {}", r.status()))
    }
}

/// The error with its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

async fn json<T: serde::de::DeserializeOwned>(
    path: &str,
    r: reqwest::Response,
) -> Result<T, String> {
    r.json().await.map_err(|e| format!("{path}: {}", chain(&e)))
}

impl HubOps for HttpHub {
    type Error = String;

    async fn actuator_off(&self, slot: u32) -> Result<(), String> {
        let body = serde_json::to_value(MaxOn::off(slot)).expect("serialisable");
        self.post(paths::ACTUATORS_SET, &body).await.map(drop)
    }

    async fn actuator_status(&self) -> Result<Vec<ActuatorSlot>, String> {
        let path = paths::ACTUATORS_STATUS;
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| format!("{path}: {}", chain(&e)))?;
        let s: ActuatorStatus = json(path, check(path, r)?).await?;
        Ok(s.actuators)
    }

    async fn config_get(&self) -> Result<Value, String> {
        let r = self
            .post(paths::CONFIG_GET, &device::config::full_request())
            .await?;
        json(paths::CONFIG_GET, r).await
    }

    async fn config_set(&self, config: &Value) -> Result<(), String> {
        self.post(paths::CONFIG_SET, config).await.map(drop)
    }

    async fn mac(&self) -> Result<String, String> {
        let body = device::info::sections_request(&["wifi"]);
        let r = self.post(paths::INFO_GET, &body).await?;
        let info: InfoResponse = json(paths::INFO_GET, r).await?;
        info.wifi
            .map(|w| w.mac_addr)
            .ok_or_else(|| format!("{}: no wifi section", paths::INFO_GET))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(base_url("127.0.0.1").unwrap().as_str(), "http://127.0.0.1/");
        assert_eq!(
            base_url("127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(base_url("[::1]:81").unwrap().as_str(), "http://[::1]:81/");
        assert_eq!(base_url("::1").unwrap().as_str(), "http://[::1]/");
        assert_eq!(base_url("hub.local").unwrap().as_str(), "http://hub.local/");
        for bad in ["", "http://x/", "a:b", "h:99999", "x/y"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
