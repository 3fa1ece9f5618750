//! The simulated hub: every endpoint on both firmware generations (through
//! the router, no socket), the auto-off timer under paused time, and the
//! server handle over a real socket.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use vegehub_harness::device::actuators::SLOT_FIELDS;
use vegehub_harness::sim::{self, Profile, SimOptions, SimState};

use crate::common::{
    client, conns_reach, elapse, get, json_answer, post, profile, router, set_actuator,
    ALL_SECTIONS,
};

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn info_get_answers_only_the_sections_named_on_both_generations() {
    for name in ["hub-new-firmware", "hub-old-firmware"] {
        let (app, _) = router(name);
        let (status, wifi) = post(&app, "/api/info/get", r#"{"wifi":[]}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys(&wifi), ["wifi"], "{name}");
        for field in ["ssid", "strength", "chan", "ip", "status", "mac_addr"] {
            assert!(wifi["wifi"][field].is_string(), "{name}: wifi.{field}");
        }

        let (_, both) = post(&app, "/api/info/get", r#"{"hub":[],"wifi":[]}"#).await;
        assert_eq!(keys(&both), ["hub", "wifi"], "{name}");
        assert_eq!(
            keys(&both["hub"]),
            [
                "first_boot",
                "page_updated",
                "error_message",
                "num_channels",
                "num_actuators",
                "version",
                "agenda",
                "batt_v",
                "num_vsens",
                "is_ac",
                "has_sd",
                "on_ap"
            ]
        );
        let p = profile(name);
        assert_eq!(both["hub"]["version"], p.firmware());
        assert_eq!(both["wifi"]["mac_addr"], p.mac().colon());
        assert!(both["hub"]["batt_v"].is_f64());
        assert!(both["hub"]["first_boot"].is_boolean());
    }
}

#[tokio::test]
async fn info_and_config_get_reject_a_body_that_names_nothing() {
    let (app, _) = router("hub-new-firmware");
    for path in ["/api/info/get", "/api/config/get"] {
        for body in ["", "not json", "[]", "\"hub\""] {
            let (status, answer) = post(&app, path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body:?}");
            assert_eq!(answer["error"], 1);
        }
    }
}

/// A router for profile `name`, its `config/get` answer to the sections a
/// harness asks for (checked 200), and the profile's own config document.
async fn documented_config_get(name: &str) -> (Router, Value, Value) {
    let (app, _) = router(name);
    let body = r#"{"hub":[],"api_key":[],"endpoints":[]}"#;
    let (status, answer) = post(&app, "/api/config/get", body).await;
    assert_eq!(status, StatusCode::OK, "{name}");
    (app, answer, profile(name).config().clone())
}

#[tokio::test]
async fn config_get_old_firmware_has_the_documented_shape() {
    let (_, answer, config) = documented_config_get("hub-old-firmware").await;
    assert_eq!(
        answer,
        json!({"hub": config["hub"], "api_key": config["api_key"], "endpoints": null, "error": 0})
    );
    assert_eq!(keys(&answer), ["hub", "api_key", "endpoints", "error"]);
    assert!(answer["hub"]["server_url"].is_string());
}

#[tokio::test]
async fn config_get_new_firmware_has_the_documented_shape() {
    let (app, answer, config) = documented_config_get("hub-new-firmware").await;
    assert_eq!(
        answer,
        json!({"endpoints": config["endpoints"], "error": 0})
    );
    assert!(answer["endpoints"].is_array());
    // Other sections the document holds come back when named.
    let (_, more) = post(&app, "/api/config/get", r#"{"sensors":[],"schedules":[]}"#).await;
    assert_eq!(keys(&more), ["sensors", "schedules", "error"]);
}

#[tokio::test]
async fn config_set_stores_the_document_old_firmware() {
    let (app, state) = router("hub-old-firmware");
    let (_, mut doc) = post(&app, "/api/config/get", ALL_SECTIONS).await;
    doc["api_key"] = json!("harness-key");
    doc["hub"]["server_url"] = json!("http://127.0.0.1:9/in");
    doc["hub"]["server_type"] = json!(3);
    let (status, answer) = post(&app, "/api/config/set", &doc.to_string()).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"error": 0})));
    let (_, back) = post(&app, "/api/config/get", ALL_SECTIONS).await;
    assert_eq!(back, doc);
    // The stored document keeps no echoed `error` and no null endpoints.
    let stored = state.config();
    assert!(stored.get("error").is_none() && stored.get("endpoints").is_none());
    assert_eq!(stored["hub"]["server_url"], "http://127.0.0.1:9/in");
    assert_eq!(
        stored["sensors"],
        profile("hub-old-firmware").config()["sensors"]
    );
}

#[tokio::test]
async fn config_set_stores_the_document_new_firmware() {
    let (app, state) = router("hub-new-firmware");
    let (_, mut doc) = post(&app, "/api/config/get", ALL_SECTIONS).await;
    doc["endpoints"].as_array_mut().unwrap().push(json!({
        "id": 2, "name": "HomeAssistant", "type": "custom", "enabled": true,
        "connection_method": "wifi",
        "config": {"api_key": "k", "data_format": "json", "url": "http://127.0.0.1:9/hook"}}));
    let (status, _) = post(&app, "/api/config/set", &doc.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, back) = post(&app, "/api/config/get", ALL_SECTIONS).await;
    assert_eq!(back, doc);
    assert_eq!(state.config()["endpoints"].as_array().unwrap().len(), 2);

    // Sections left out of a set are kept (each section replaces its own).
    let before = state.config();
    let (status, _) = post(&app, "/api/config/set", r#"{"endpoints":[]}"#).await;
    assert_eq!(status, StatusCode::OK);
    let after = state.config();
    assert_eq!(after["endpoints"], json!([]));
    assert_eq!(after["sensors"], before["sensors"]);
}

#[tokio::test]
async fn config_set_rejects_bad_bodies_without_changing_state() {
    let endpoint = r#"{"id":2,"name":"x","type":"custom","enabled":true,"connection_method":"wifi","config":{"api_key":"k","data_format":"json","url":"http://127.0.0.1:9/"}}"#;
    let cases = [
        ("hub-old-firmware", "not json".to_owned()),
        ("hub-old-firmware", "[1,2]".to_owned()),
        (
            "hub-old-firmware",
            format!(r#"{{"endpoints":[{endpoint}]}}"#),
        ),
        ("hub-old-firmware", r#"{"api_key":5}"#.to_owned()),
        ("hub-old-firmware", r#"{"hub":"x"}"#.to_owned()),
        ("hub-old-firmware", r#"{"hub":{"server_url":7}}"#.to_owned()),
        ("hub-new-firmware", "".to_owned()),
        ("hub-new-firmware", r#"{"endpoints":null}"#.to_owned()),
        ("hub-new-firmware", r#"{"endpoints":{}}"#.to_owned()),
        (
            "hub-new-firmware",
            r#"{"endpoints":[{"id":"x"}]}"#.to_owned(),
        ),
        ("hub-new-firmware", r#"{"sensors":3}"#.to_owned()),
    ];
    for (name, body) in cases {
        let (app, state) = router(name);
        let before = state.config();
        let (status, answer) = post(&app, "/api/config/set", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name} {body}");
        assert!(answer["message"].is_string(), "{name} {body}: {answer}");
        assert_eq!(state.config(), before, "{name} {body}: state changed");
    }
}

#[tokio::test]
async fn actuators_switch_and_report_every_slot() {
    let (app, state) = router("hub-4-relay-ac");
    let (status, answer) = get(&app, "/api/actuators/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["error"], "success");
    let slots = answer["actuators"].as_array().unwrap();
    assert_eq!(slots.len(), 4);
    // Every field of a slot, in the wire order of the device model.
    assert_eq!(keys(&slots[0]), SLOT_FIELDS);
    let status = set_actuator(&app, 2, 30, 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.actuator_states(), [0, 0, 1, 0]);
    let (_, answer) = get(&app, "/api/actuators/status").await;
    let slot = &answer["actuators"][2];
    assert_eq!(slot["slot"], 2);
    assert_eq!(slot["state"], 1);
    assert_eq!(slot["cur_ma"], 250);
    assert!(slot["last_run"].as_i64().unwrap() > 0);
    assert_eq!(
        slot["next_window_end"].as_i64().unwrap() - slot["last_run"].as_i64().unwrap(),
        30
    );
    let status = set_actuator(&app, 2, 0, 0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.actuator_states(), [0, 0, 0, 0]);
    let (_, answer) = get(&app, "/api/actuators/status").await;
    assert_eq!(answer["actuators"][2]["state"], 0);
    assert_eq!(answer["actuators"][2]["cur_ma"], 0);
}

#[tokio::test]
async fn actuators_set_rejects_bad_requests_without_changing_state() {
    let (app, state) = router("hub-new-firmware");
    set_actuator(&app, 1, 60, 1).await;
    for body in [
        r#"{"target":2,"duration":5,"state":1}"#,
        r#"{"target":1,"duration":5,"state":2}"#,
        r#"{"target":-1,"duration":5,"state":0}"#,
        r#"{"target":1,"state":0}"#,
        "off",
        "",
    ] {
        let (status, answer) = post(&app, "/api/actuators/set", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"], 1, "{body}");
        assert_eq!(state.actuator_states(), [0, 1], "{body}: state changed");
    }
}

#[tokio::test]
async fn a_sensor_only_hub_has_no_actuators() {
    let (app, _) = router("hub-battery-sensor");
    let (_, answer) = get(&app, "/api/actuators/status").await;
    assert_eq!(answer, json!({"actuators": [], "error": "success"}));
    let status = set_actuator(&app, 0, 5, 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(start_paused = true)]
async fn an_actuator_switches_itself_off_when_its_duration_ends() {
    let (app, state) = router("hub-new-firmware");
    set_actuator(&app, 0, 5, 1).await;
    assert_eq!(state.actuator_states(), [1, 0]);
    elapse(4900).await;
    assert_eq!(state.actuator_states(), [1, 0], "off too early");
    elapse(200).await;
    assert_eq!(
        state.actuator_states(),
        [0, 0],
        "timer did not switch it off"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_switch_on_replaces_the_running_timer() {
    let (app, state) = router("hub-new-firmware");
    set_actuator(&app, 1, 5, 1).await;
    elapse(3000).await;
    set_actuator(&app, 1, 10, 1).await;
    elapse(3000).await;
    assert_eq!(
        state.actuator_states(),
        [0, 1],
        "the first timer switched it off"
    );
    elapse(8000).await;
    assert_eq!(state.actuator_states(), [0, 0]);
    // duration 0: on until told otherwise.
    set_actuator(&app, 0, 0, 1).await;
    elapse(3_600_000).await;
    assert_eq!(state.actuator_states(), [1, 0]);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_refused() {
    let (app, _) = router("hub-new-firmware");
    assert_eq!(get(&app, "/api/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/api/info/get").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

// ---- over a real socket ----

#[tokio::test]
async fn started_hub_serves_and_counts_requests_per_connection() {
    let hub = sim::start(profile("hub-old-firmware")).unwrap();
    assert!(hub.base_url().starts_with("http://127.0.0.1:"));
    let http = client();
    for _ in 0..3 {
        let answer = json_answer(
            http.post(format!("{}/api/info/get", hub.base_url()))
                .body(r#"{"hub":[]}"#),
        )
        .await;
        assert_eq!(answer["hub"]["version"], "3.4.5");
    }
    let stats = hub.stats();
    assert_eq!((stats.accepted, stats.open, stats.requests), (1, 1, 3));
    assert_eq!(stats.requests_per_connection, [3]);
    let received = hub.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(r.connection, Some(0));
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/info/get")
        );
        assert_eq!(r.body, r#"{"hub":[]}"#);
    }
    drop(http);
    conns_reach(
        &hub,
        "closing the client did not close its connection",
        |s| s.open == 0,
    )
    .await;
    let addr = hub.addr();
    let stats = hub.shutdown();
    assert_eq!(stats.accepted, 1);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn shutdown_drops_open_connections() {
    let hub = sim::start(profile("hub-new-firmware")).unwrap();
    let http = client();
    http.get(format!("{}/api/actuators/status", hub.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(hub.stats().open, 1);
    let stats = hub.shutdown();
    assert_eq!((stats.accepted, stats.open), (1, 0));
}

#[tokio::test]
async fn spawned_hub_runs_on_the_callers_runtime() {
    let hub = sim::spawn(SimOptions::new(profile("hub-battery-sensor")))
        .await
        .unwrap();
    let answer =
        json_answer(client().get(format!("{}/api/actuators/status", hub.base_url()))).await;
    assert_eq!(answer["actuators"], json!([]));
    let addr = hub.addr();
    let stats = hub.stop().await.unwrap();
    assert_eq!((stats.accepted, stats.open, stats.requests), (1, 0, 1));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn a_profile_file_loads_by_path_and_a_broken_one_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("my-hub.json");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hub-4-relay-ac.json"
    ))
    .unwrap();
    std::fs::write(&good, &text).unwrap();
    let p = Profile::load(good.to_str().unwrap()).unwrap();
    assert_eq!(p.actuator_count(), 4);

    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    let err = Profile::load(bad.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let missing = dir.path().join("missing.json");
    let err = Profile::load(missing.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
}

#[tokio::test]
async fn the_router_records_every_request_even_refused_ones() {
    let (app, state) = router("hub-new-firmware");
    post(&app, "/api/config/set", "not json").await;
    get(&app, "/api/nope").await;
    let received = state.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].path, "/api/config/set");
    assert_eq!(received[0].body, "not json");
    assert_eq!(received[0].connection, None);
    assert_eq!(received[1].path, "/api/nope");
}

#[test]
fn wait_for_blocks_until_the_stats_say_so() {
    let hub = sim::start(profile("hub-new-firmware")).unwrap();
    let conn = std::net::TcpStream::connect(hub.addr()).unwrap();
    assert!(hub.wait_for(Duration::from_secs(5), |s| s.open == 1));
    drop(conn);
    assert!(hub.wait_for(Duration::from_secs(5), |s| s.open == 0 && s.accepted == 1));
    // A condition that never comes true gives up at its deadline.
    assert!(!hub.wait_for(Duration::from_millis(50), |s| s.accepted == 2));
    assert_eq!(hub.shutdown().requests, 0);
}

#[test]
fn wait_state_wakes_on_a_change_and_gives_up_at_its_deadline() {
    let hub = sim::start(profile("hub-new-firmware")).expect("simulator starts");
    let slot_1_on = |s: &SimState| s.actuator_states() == vec![0, 1];
    assert!(
        !hub.wait_state(Duration::from_millis(50), slot_1_on),
        "nothing changed: the wait ends at its deadline, false"
    );
    let state = hub.state().clone();
    let switch = std::thread::spawn(move || {
        state.set_actuator(vegehub_harness::device::ActuatorSet {
            target: 1,
            duration: 0,
            state: 1,
        })
    });
    assert!(hub.wait_state(Duration::from_secs(10), slot_1_on));
    switch.join().unwrap().expect("slot 1 switched on");
    let config_changed = |s: &SimState| s.config()["endpoints"].as_array().map(Vec::len) == Some(0);
    assert!(!hub.wait_state(Duration::from_millis(50), config_changed));
    let state = hub.state().clone();
    let write = std::thread::spawn(move || state.set_config(&json!({"endpoints": []}), true));
    assert!(hub.wait_state(Duration::from_secs(10), config_changed));
    write.join().unwrap().expect("config stored");
}
