//! Every fault kind of the simulated hub, each seen making the hub
//! misbehave (and, with `after`/`times`, stop misbehaving). Connection-level
//! faults run over a real socket.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use vegehub_harness::sim::{DropConnection, SimHandle};

use crate::common::{
    client, conns_reach, elapse, get, json_answer, post, router_with as faulty, set_actuator,
    sim_with as start,
};

const INFO: &str = "/api/info/get";
const HUB: &str = r#"{"hub":[]}"#;

/// `info/get` for the hub section, to `hub` over its socket.
fn info(http: &reqwest::Client, hub: &SimHandle) -> reqwest::RequestBuilder {
    http.post(format!("{}{INFO}", hub.base_url())).body(HUB)
}

#[tokio::test]
async fn status_answers_the_code_on_its_endpoint_within_its_window() {
    let (app, _) = faulty("hub-new-firmware", &["status:500@info/get,after=1,times=2"]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(post(&app, INFO, HUB).await.0);
    }
    use StatusCode as S;
    assert_eq!(
        seen,
        [
            S::OK,
            S::INTERNAL_SERVER_ERROR,
            S::INTERNAL_SERVER_ERROR,
            S::OK
        ]
    );
    // Other endpoints are untouched.
    let (status, _) = get(&app, "/api/actuators/status").await;
    assert_eq!(status, S::OK);

    let (app, _) = faulty("hub-old-firmware", &["status:404"]);
    assert_eq!(get(&app, "/api/actuators/status").await.0, S::NOT_FOUND);
    assert_eq!(post(&app, INFO, HUB).await.0, S::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_the_answer_back() {
    let (app, _) = faulty("hub-new-firmware", &["delay:300ms@info/get"]);
    let call = tokio::spawn(async move { post(&app, INFO, HUB).await });
    elapse(299).await;
    assert!(!call.is_finished(), "answered before the delay ended");
    elapse(2).await;
    let (status, answer) = tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .expect("no answer after the delay")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["hub"]["version"], "5.1.1");
}

#[tokio::test]
async fn malformed_answers_200_with_a_body_that_is_not_json() {
    let (app, _) = faulty("hub-new-firmware", &["malformed@info/get,times=1"]);
    let (status, body) = post(&app, INFO, HUB).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_string(), "body parsed as JSON: {body}");
    let (status, body) = post(&app, INFO, HUB).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_object(), "times=1 still malformed: {body}");
}

#[tokio::test]
async fn ignore_set_answers_200_but_stores_nothing() {
    let (app, state) = faulty("hub-old-firmware", &["ignore-set,times=1"]);
    let before = state.config();
    let set = r#"{"api_key":"changed"}"#;
    let (status, answer) = post(&app, "/api/config/set", set).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"error": 0})));
    assert_eq!(state.config(), before, "ignore-set stored the config");
    // The window is over: the next set is stored.
    post(&app, "/api/config/set", set).await;
    assert_eq!(state.config()["api_key"], "changed");
}

#[tokio::test]
async fn stuck_off_never_turns_its_slot_on() {
    let (app, state) = faulty("hub-new-firmware", &["stuck-off:1"]);
    let status = set_actuator(&app, 1, 30, 1).await;
    assert_eq!(status, StatusCode::OK, "the hub still says yes");
    set_actuator(&app, 0, 30, 1).await;
    assert_eq!(state.actuator_states(), [1, 0]);
    let (_, answer) = get(&app, "/api/actuators/status").await;
    assert_eq!(answer["actuators"][1]["state"], 0);

    let (app, state) = faulty("hub-4-relay-ac", &["stuck-off"]);
    for slot in 0..4 {
        set_actuator(&app, slot, 30, 1).await;
    }
    assert_eq!(state.actuator_states(), [0, 0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn stuck_on_survives_its_timer_and_state_0() {
    let (app, state) = faulty("hub-new-firmware", &["stuck-on:0"]);
    for slot in 0..2 {
        set_actuator(&app, slot, 5, 1).await;
    }
    elapse(6000).await;
    assert_eq!(state.actuator_states(), [1, 0], "only slot 0 is stuck");
    let status = set_actuator(&app, 0, 0, 0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.actuator_states(), [1, 0], "state 0 switched it off");
    let (_, answer) = get(&app, "/api/actuators/status").await;
    assert_eq!(answer["actuators"][0]["state"], 1);
}

#[tokio::test]
async fn stuck_on_times_counts_off_attempts() {
    let (app, state) = faulty("hub-new-firmware", &["stuck-on,times=1"]);
    set_actuator(&app, 0, 0, 1).await;
    set_actuator(&app, 0, 0, 0).await;
    assert_eq!(state.actuator_states(), [1, 0]);
    set_actuator(&app, 0, 0, 0).await;
    assert_eq!(state.actuator_states(), [0, 0]);
}

#[tokio::test]
async fn drop_closes_the_connection_without_an_answer() {
    // Through the router the dropped answer is marked, not sent.
    let (app, _) = faulty("hub-new-firmware", &["drop@config/get"]);
    let req = axum::http::Request::post("/api/config/get")
        .body(axum::body::Body::from(HUB))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
    assert!(resp.extensions().get::<DropConnection>().is_some());

    let hub = start("hub-new-firmware", &["drop@config/get,times=1"]);
    let http = client();
    let url = format!("{}/api/config/get", hub.base_url());
    let err = http.post(&url).body(HUB).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    conns_reach(&hub, "connection not closed", |s| {
        s.accepted == 1 && s.open == 0
    })
    .await;
    let ok = http.post(&url).body(HUB).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn hang_never_answers_until_shutdown_drops_it() {
    let hub = start("hub-new-firmware", &["hang@actuators/status"]);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = quick
        .get(format!("{}/api/actuators/status", hub.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // Other endpoints still answer.
    let ok = info(&client(), &hub).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    // A hung request on a connection the client keeps waiting on.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let url = format!("{}/api/actuators/status", hub.base_url());
    tokio::spawn(async move {
        let _ = tx.send(client().get(url).send().await);
    });
    conns_reach(&hub, "the hung request never arrived", |s| s.requests == 3).await;
    let stats = hub.shutdown();
    assert_eq!(stats.open, 0, "shutdown left a connection open");
    let waiting = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the hung request was not released by shutdown")
        .unwrap();
    assert!(waiting.is_err(), "a hung request got an answer");
}

#[tokio::test]
async fn conn_close_closes_the_connection_after_every_answer() {
    let hub = start("hub-new-firmware", &["conn-close"]);
    let http = client();
    for _ in 0..3 {
        let resp = info(&http, &hub).send().await.unwrap();
        assert_eq!(resp.headers()["connection"], "close");
        resp.bytes().await.unwrap();
    }
    conns_reach(&hub, "a connection stayed open despite conn-close", |s| {
        s.open == 0
    })
    .await;
    let stats = hub.shutdown();
    assert_eq!(stats.accepted, 3, "keep-alive despite conn-close");
    assert_eq!(stats.requests_per_connection, [1, 1, 1]);
}

#[tokio::test]
async fn max_conns_closes_the_connection_over_the_limit() {
    let hub = start("hub-new-firmware", &["max-conns:1"]);
    let first = tokio::net::TcpStream::connect(hub.addr()).await.unwrap();
    conns_reach(&hub, "the first connection never opened", |s| s.open == 1).await;
    let err = info(&client(), &hub).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    let stats = hub.stats();
    assert_eq!((stats.accepted, stats.refused), (1, 1));

    drop(first);
    conns_reach(&hub, "the first connection never closed", |s| s.open == 0).await;
    let ok = info(&client(), &hub).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(hub.shutdown().refused, 1);
}

#[tokio::test]
async fn reboot_after_drops_every_connection_and_resets_actuators_but_keeps_config() {
    let hub = start("hub-old-firmware", &["reboot-after:3"]);
    let base = hub.base_url();
    let a = client();
    let b = client();
    let set = a
        .post(format!("{base}/api/config/set"))
        .body(r#"{"api_key":"kept"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    a.post(format!("{base}/api/actuators/set"))
        .body(r#"{"target":0,"duration":600,"state":1}"#)
        .send()
        .await
        .unwrap();
    let info = b
        .post(format!("{base}{INFO}"))
        .body(HUB)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    assert_eq!(hub.actuator_states(), [1]);
    assert_eq!(hub.stats().open, 2);

    // The fourth request finds the hub rebooting.
    let err = a
        .get(format!("{base}/api/actuators/status"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    conns_reach(&hub, "the idle connection survived the reboot", |s| {
        s.open == 0
    })
    .await;
    assert_eq!(hub.actuator_states(), [0], "actuators survived the reboot");
    assert_eq!(hub.config()["api_key"], "kept", "config lost in the reboot");

    // Back up, and only one reboot by default.
    let fresh = client();
    for _ in 0..5 {
        let status = json_answer(fresh.get(format!("{base}/api/actuators/status"))).await;
        assert_eq!(status["actuators"][0]["state"], 0);
    }
}

#[tokio::test]
async fn reboot_after_times_allows_several_reboots() {
    let (app, state) = faulty("hub-new-firmware", &["reboot-after:1,times=2"]);
    let mut dropped = Vec::new();
    for _ in 0..6 {
        let req = axum::http::Request::get("/api/actuators/status")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
        dropped.push(resp.extensions().get::<DropConnection>().is_some());
    }
    assert_eq!(dropped, [false, true, false, true, false, false]);
    assert_eq!(state.reboot_count(), 2);
}
