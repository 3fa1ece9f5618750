//! `update/send`: the simulated hub posts a data update to a real receiver
//! on 127.0.0.1:0, to the targets its firmware generation uses.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use vegehub_harness::device::DataUpdate;
use vegehub_harness::sim::{self, SimHandle};

use crate::common::{client, profile};

/// A receiver that records every body posted to `/in/<name>`.
struct Receiver {
    base: String,
    bodies: mpsc::UnboundedReceiver<(String, Value)>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, bodies) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/in/{name}",
                post(
                    |State(tx): State<mpsc::UnboundedSender<(String, Value)>>,
                     axum::extract::Path(name): axum::extract::Path<String>,
                     body: Bytes| async move {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send((name, value));
                        "ok"
                    },
                ),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            base,
            bodies,
            _task: task,
        }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/in/{name}", self.base)
    }

    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(5), self.bodies.recv())
            .await
            .expect("no data update within 5 s")
            .unwrap()
    }
}

async fn set_config(hub: &SimHandle, body: Value) {
    let resp = client()
        .post(format!("{}/api/config/set", hub.base_url()))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn update_send(hub: &SimHandle) {
    let resp = client()
        .get(format!("{}/api/update/send", hub.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn slots(update: &Value) -> Vec<(u64, f64)> {
    update["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let samples = s["samples"].as_array().unwrap();
            assert_eq!(samples.len(), 1, "{s}");
            (
                s["slot"].as_u64().unwrap(),
                samples[0]["v"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn old_firmware_posts_to_its_server_url() {
    let mut rx = Receiver::start().await;
    let hub = sim::start(profile("hub-old-firmware")).unwrap();
    // Nothing configured: the hub answers and posts nowhere.
    update_send(&hub).await;
    set_config(
        &hub,
        json!({"api_key": "old-key", "hub": {"name": "Vege_1C_07", "server_url": rx.url("old"), "server_type": 3}}),
    )
    .await;
    client()
        .post(format!("{}/api/actuators/set", hub.base_url()))
        .body(r#"{"target":0,"duration":60,"state":1}"#)
        .send()
        .await
        .unwrap();
    update_send(&hub).await;
    let (name, body) = rx.next().await;
    assert_eq!(name, "old");
    let update: DataUpdate = serde_json::from_value(body.clone()).expect("documented shape");
    assert_eq!(update.api_key, "old-key");
    assert_eq!(update.mac, "A1B2C3D41C07");
    assert_eq!(update.error_code, 0);
    assert_eq!(update.wifi_str, -51);
    assert!(update.send_time > 1_700_000_000);
    // One sensor, no battery slot (AC hub), then the actuator, now on.
    assert_eq!(slots(&body), [(1, 0.75), (2, 1.0)]);
    let t = &update.sensors[0].samples[0].t;
    assert!(
        chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
        "{t}"
    );
    assert!(hub.wait_deliveries(1, Duration::from_secs(5)).await);
    let deliveries = hub.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].result, Ok(200));
}

#[tokio::test]
async fn new_firmware_posts_to_every_enabled_endpoint_with_its_key() {
    let mut rx = Receiver::start().await;
    let hub = sim::start(profile("hub-new-firmware")).unwrap();
    let endpoint = |id: i64, enabled: bool, name: &str| {
        json!({"id": id, "name": name, "type": "custom", "enabled": enabled,
               "connection_method": "wifi",
               "config": {"api_key": format!("key-{name}"), "data_format": "json", "url": rx.url(name)}})
    };
    set_config(
        &hub,
        json!({"endpoints": [endpoint(1, true, "a"), endpoint(2, false, "off"), endpoint(3, true, "b")]}),
    )
    .await;
    update_send(&hub).await;
    let mut got = [rx.next().await, rx.next().await];
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got[0].0, "a");
    assert_eq!(got[1].0, "b");
    assert_eq!(got[0].1["api_key"], "key-a");
    assert_eq!(got[1].1["api_key"], "key-b");
    // Two sensors, the battery (9.0 V), then two actuators (off).
    assert_eq!(
        slots(&got[0].1),
        [(1, 1.5), (2, 2.25), (3, 9.0), (4, 0.0), (5, 0.0)]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.bodies.recv())
            .await
            .is_err(),
        "the disabled endpoint got an update"
    );
}

#[tokio::test]
async fn battery_sensor_hub_reports_sensors_and_battery_only() {
    let mut rx = Receiver::start().await;
    let hub = sim::start(profile("hub-battery-sensor")).unwrap();
    set_config(
        &hub,
        json!({"endpoints": [{"id": 1, "name": "x", "type": "custom", "enabled": true,
            "connection_method": "wifi",
            "config": {"api_key": "", "data_format": "json", "url": rx.url("bat")}}]}),
    )
    .await;
    update_send(&hub).await;
    let (_, body) = rx.next().await;
    assert_eq!(slots(&body), [(1, 1.8), (2, 21.5), (3, 3.7)]);
    assert_eq!(body["mac"], "A1B2C3D4B73A");
}

#[tokio::test]
async fn an_unreachable_target_is_recorded_and_update_send_still_answers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/in", closed.local_addr().unwrap());
    drop(closed);
    let hub = sim::start(profile("hub-old-firmware")).unwrap();
    set_config(
        &hub,
        json!({"hub": {"server_url": url, "server_type": 3}, "api_key": ""}),
    )
    .await;
    update_send(&hub).await;
    assert!(
        hub.wait_deliveries(1, Duration::from_secs(5)).await,
        "no delivery recorded"
    );
    let d = &hub.deliveries()[0];
    assert_eq!(d.url, url);
    assert!(d.result.is_err(), "{d:?}");
}
