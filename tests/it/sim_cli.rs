//! `vegehub-harness sim` as a real process: the URL as the first stdout
//! line, answers like a hub, the connections line on SIGTERM, and one-line
//! errors with exit code 2 for bad input.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{client, harness_cmd, harness_within, json_answer, output_of, SimProcess};

/// `sim <args>` run to its end within 10 s.
fn run_to_end(args: &[&str]) -> Output {
    output_of(harness_cmd().arg("sim").args(args), Duration::from_secs(10))
}

#[tokio::test]
async fn sim_prints_its_url_answers_like_an_old_hub_and_reports_connections() {
    let sim = SimProcess::start(&["--profile", "hub-old-firmware"]);
    assert!(sim.url.starts_with("http://127.0.0.1:"), "{}", sim.url);
    // What `curl -d '{"hub":[],"api_key":[],"endpoints":[]}' URL/api/config/get`
    // sends: a form content type, which the hub ignores.
    let http = client();
    let answer = json_answer(
        http.post(format!("{}/api/config/get", sim.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(r#"{"hub":[],"api_key":[],"endpoints":[]}"#),
    )
    .await;
    let keys: Vec<_> = answer.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["hub", "api_key", "endpoints", "error"]);
    assert_eq!(answer["endpoints"], json!(null));
    assert_eq!(answer["error"], 0);
    assert!(answer["api_key"].is_string());
    assert!(answer["hub"]["server_url"].is_string());

    // The client's pooled connection is still open when the signal arrives.
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(rest, ["connections: accepted 1, open at shutdown 1"]);
    drop(http);
}

#[test]
fn sim_with_nothing_connected_reports_zero() {
    let sim = SimProcess::start(&[]);
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(rest, ["connections: accepted 0, open at shutdown 0"]);
}

fn assert_one_line_usage_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "printed a URL for a failed start");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} should name {needle:?}");
}

#[test]
fn unknown_or_malformed_profile_is_a_one_line_error_with_exit_2() {
    let out = run_to_end(&["--profile", "hub-nonexistent"]);
    assert_one_line_usage_error(&out, "hub-nonexistent");

    // Cut short; and whole but claiming 4294967295 relays (which aborted
    // the process trying to allocate them).
    let many = include_str!("../../fixtures/hub-new-firmware.json")
        .replace("\"actuators\": 2", "\"actuators\": 4294967295")
        .replace("\"num_actuators\": 2", "\"num_actuators\": 4294967295");
    let dir = tempfile::tempdir().unwrap();
    for (name, body, says) in [
        ("bad-hub.json", "{\"name\": ", "malformed"),
        (
            "many.json",
            many.as_str(),
            "actuators 4294967295 is more than",
        ),
    ] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, body).unwrap();
        let out = run_to_end(&["--profile", bad.to_str().unwrap()]);
        assert_one_line_usage_error(&out, bad.to_str().unwrap());
        assert_one_line_usage_error(&out, says);
    }
}

#[test]
fn bad_fault_spec_is_a_one_line_error_with_exit_2() {
    let out = run_to_end(&["--fault", "drop", "--fault", "status:9000@info/get"]);
    assert_one_line_usage_error(&out, "status:9000@info/get");
}

#[test]
fn bind_failure_is_a_one_line_error_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_to_end(&["--bind", &addr]);
    assert_one_line_usage_error(&out, &addr);
}

crate::netns_test! {
    fn sim_advertise_registers_the_profile_and_unregisters_on_sigterm() {
        let sim = SimProcess::start(&["--profile", "hub-battery-sensor", "--advertise"]);
        let port: u16 = sim.url.rsplit(':').next().unwrap().parse().unwrap();
        let out = harness_within(
            &["discover", "--expect", "1", "--timeout", "5", "--json"],
            Duration::from_secs(15),
        );
        assert!(out.status.success(), "{out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hub = &doc["hubs"][0];
        // The profile's own hub name, as a user-named real hub announces it.
        assert_eq!(hub["instance"], "Desk_Temp_Soil");
        assert_eq!(hub["port"], port);
        assert_eq!(hub["addresses"][0]["ip"], "127.0.0.1");
        let txt = &hub["txt"];
        assert_eq!(txt["version"], "5.1.1");
        assert_eq!(txt["type"], "hub");
        assert_eq!(txt["sensors"], "2");
        assert_eq!(txt["actuators"], "0");
        assert_eq!(txt["sens_1"], "Soil");
        assert_eq!(txt["sens_2"], "Temp");
        assert_eq!(txt["power_mode"], "1");

        let (code, rest) = sim.terminate();
        assert_eq!(code, Some(0));
        assert_eq!(rest, ["connections: accepted 0, open at shutdown 0"]);
        // The goodbye on shutdown is checked in
        // discovery::simulator_advertises_its_profile_and_says_goodbye.
    }
}

#[test]
fn sim_help_documents_every_fault_kind() {
    let out = run_to_end(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let kinds = "status:CODE delay:DUR hang drop malformed conn-close ignore-set \
        stuck-off[:SLOT] stuck-on[:SLOT] max-conns:N reboot-after:N after=N times=N";
    for kind in kinds.split_whitespace() {
        assert!(help.contains(kind), "--help lacks {kind}:\n{help}");
    }
}

#[test]
fn sim_stops_on_sigint_too() {
    let sim = SimProcess::start(&["--profile", "hub-4-relay-ac"]);
    let (code, rest) = sim.stop("INT");
    assert_eq!(code, Some(0));
    assert_eq!(rest, ["connections: accepted 0, open at shutdown 0"]);
}
