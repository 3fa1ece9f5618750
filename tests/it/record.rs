//! `record`: the real binary records a simulated hub read-only; a simulator
//! started from the profile answers every read endpoint as the hub did,
//! apart from placeholders; a profile that cannot reproduce the hub fails.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use vegehub_harness::device::ActuatorSet;
use vegehub_harness::sim::{self, Profile, SimHandle};

use crate::common::{harness_cmd, output_within, sim_with, text, ALL_SECTIONS};

const PLACEHOLDER: &str = "<redacted>";

fn record(hub: &SimHandle, out: &Path, extra: &[&str]) -> std::process::Output {
    let child = harness_cmd()
        .arg("record")
        .arg("--device")
        .arg(hub.addr().to_string())
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("harness starts");
    output_within(child, Duration::from_secs(30), "record")
}

/// The three read endpoints of a hub, over its socket.
fn reads(hub: &SimHandle) -> Vec<(String, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = crate::common::client();
        let base = hub.base_url();
        let post = |path: &'static str, body: &'static str| {
            let req = http.post(format!("{base}{path}")).body(body);
            async move {
                (
                    path,
                    req.send().await.unwrap().json::<Value>().await.unwrap(),
                )
            }
        };
        let info = post("/api/info/get", r#"{"hub":[],"wifi":[]}"#).await;
        let wifi = post("/api/info/get", r#"{"wifi":[]}"#).await;
        let config = post("/api/config/get", ALL_SECTIONS).await;
        let narrow = post(
            "/api/config/get",
            r#"{"hub":[],"api_key":[],"endpoints":[]}"#,
        )
        .await;
        let status = http
            .get(format!("{base}/api/actuators/status"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        [
            info,
            wifi,
            config,
            narrow,
            ("/api/actuators/status", status),
        ]
        .into_iter()
        .map(|(p, v)| (p.to_owned(), v))
        .collect()
    })
}

/// Equal, except where `copy` has the placeholder for a non-empty string
/// of `orig`. Returns the placeholder paths.
fn same_apart_from_placeholders(orig: &Value, copy: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, copy) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<_> = a.keys().collect();
            let mut kb: Vec<_> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "keys differ at {path}");
            for (k, v) in a {
                same_apart_from_placeholders(v, &b[k], &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "length differs at {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_apart_from_placeholders(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (Value::String(s), Value::String(p)) if p == PLACEHOLDER && !s.is_empty() => {
            out.push(path.to_owned());
        }
        (a, b) => assert_eq!(a, b, "value differs at {path}"),
    }
}

/// Secrets the test puts on the hub before recording, by generation.
fn plant_secrets(hub: &SimHandle) -> Vec<&'static str> {
    let new = hub.config()["endpoints"].is_array();
    let doc = if new {
        json!({"endpoints": [{"id": 7, "name": "Customer", "type": "custom", "enabled": true,
            "connection_method": "wifi", "config": {"api_key": "CUSTOMER-KEY-777",
            "data_format": "json", "url": "http://127.0.0.1:9/customer-hook"}}]})
    } else {
        let mut hub_section = hub.config()["hub"].clone();
        hub_section["server_url"] = json!("http://127.0.0.1:9/customer-hook");
        hub_section["server_type"] = json!(3);
        json!({"api_key": "CUSTOMER-KEY-777", "hub": hub_section})
    };
    hub.state()
        .set_config(&doc, true)
        .expect("the sim takes the config");
    vec![
        "CUSTOMER-KEY-777",
        "customer-hook",
        "GardenNet",
        "192.168.1.",
    ]
}

#[test]
fn a_simulator_from_the_recorded_profile_answers_every_read_like_the_hub() {
    for name in Profile::builtin_names() {
        let hub = sim_with(name, &[]);
        let secrets = plant_secrets(&hub);
        let config_before = hub.config();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("recorded.json");
        let o = record(&hub, &out, &[]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains("verified"), "{name}: {stderr}");

        // Read-only: nothing but reads reached the hub, and nothing changed.
        let received = hub.received();
        assert!(!received.is_empty());
        for r in &received {
            assert!(
                ["/api/info/get", "/api/config/get", "/api/actuators/status"]
                    .contains(&r.path.as_str()),
                "{name}: record sent {} {}",
                r.method,
                r.path
            );
        }
        assert_eq!(hub.config(), config_before, "{name}");
        assert!(hub.deliveries().is_empty(), "{name}");
        assert!(hub.actuator_states().iter().all(|s| *s == 0));

        let text = std::fs::read_to_string(&out).unwrap();
        for s in &secrets {
            assert!(!text.contains(s), "{name}: {s:?} in the profile:\n{text}");
        }
        let copy = sim::start(Profile::load(out.to_str().unwrap()).unwrap()).unwrap();
        let mut hidden = Vec::new();
        for ((path, orig), (_, rec)) in reads(&hub).iter().zip(reads(&copy)) {
            same_apart_from_placeholders(orig, &rec, path, &mut hidden);
        }
        for must in ["/api/info/get.wifi.ssid", "/api/info/get.wifi.ip"] {
            assert!(hidden.iter().any(|h| h == must), "{name}: {hidden:?}");
        }
        assert!(
            hidden.iter().any(|h| h.ends_with("api_key")),
            "{name}: {hidden:?}"
        );
        assert!(
            hidden.iter().any(|h| h.ends_with("url")),
            "{name}: {hidden:?}"
        );
        copy.shutdown();
        hub.shutdown();
    }
}

#[test]
fn a_hub_the_profile_cannot_reproduce_fails_naming_the_endpoint_and_path() {
    // An actuator running while recording: the profile's hub starts with
    // every slot off, so its status answer differs.
    let hub = sim_with("hub-new-firmware", &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let on = ActuatorSet {
        target: 1,
        duration: 600,
        state: 1,
    };
    let url = format!("{}/api/actuators/set", hub.base_url());
    rt.block_on(async { crate::common::client().post(url).json(&on).send().await })
        .unwrap();
    let before = hub.received().len();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.json");
    let o = record(&hub, &out, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does NOT reproduce the hub")
            && stderr.contains("/api/actuators/status: actuators[1].state"),
        "{stderr}"
    );
    // Written anyway, to be looked at; the hub is left as it was.
    assert!(out.exists());
    assert!(hub.received()[before..]
        .iter()
        .all(|r| r.path != "/api/actuators/set"));
    assert_eq!(hub.actuator_states(), vec![0, 1]);
    hub.shutdown();
}

#[test]
fn an_existing_file_an_unreachable_hub_and_a_bad_address_are_refused() {
    let hub = sim_with("hub-old-firmware", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("taken.json");
    std::fs::write(&out, "keep me").unwrap();
    let o = record(&hub, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("exists (pass --force"), "{stderr}");
    assert!(hub.received().is_empty(), "nothing sent before the checks");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    let o = record(&hub, &out, &["--force"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(Profile::load(out.to_str().unwrap()).is_ok());

    // A closed loopback port: the listener is dropped before recording.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let child = harness_cmd()
        .args(["record", "--device", &addr.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = output_within(child, Duration::from_secs(60), "record");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(o.stdout.is_empty());

    let child = harness_cmd()
        .args(["record", "--device", "127.0.0.1:notaport"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = output_within(child, Duration::from_secs(10), "record");
    assert_eq!(o.status.code(), Some(2));
    hub.shutdown();
}
