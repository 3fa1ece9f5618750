//! Setup proven end to end through the real binary: the hub is pointed at a
//! receiver of the harness's, posts its data update there and the body is
//! checked; a hub that never posts fails (`required`) or is a skip
//! (`if-reachable`); a wrong body fails naming the JSON path; the original
//! config comes back exactly either way, and the receiver's connections are
//! reported apart from the client's.

use std::time::Duration;

use serde_json::{json, Value};
use vegehub_harness::sim::SimHandle;

use crate::common::{ended, harness, sim_with, ReportFiles, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

fn plan(dir: &std::path::Path, check: &str) -> String {
    let path = dir.join(format!("{check}.json"));
    let plan = json!({"scenarios": [{"scenario": "setup", "allow_changes": true,
        "deliver_check": check, "deliver_timeout_seconds": 1}]});
    std::fs::write(&path, plan.to_string()).unwrap();
    path.display().to_string()
}

/// A `--setup` run against `hub` with the plan's `deliver_check` set to
/// `check`, which ends with `code`: the setup scenario's record, the whole
/// record, and the output.
fn run(hub: &SimHandle, check: &str, code: i32) -> (Value, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let reports = ReportFiles::new();
    let addr = hub.addr().to_string();
    let plan = plan(dir.path(), check);
    let mut args: Vec<String> = ["--device", &addr, "--setup", "--plan", &plan]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--timeout".into(), "2s".into()]);
    args.extend(reports.args());
    let (got, out) = Spawned::start(&args, false).finish(LIMIT);
    let source = hub.state().profile().source().to_owned();
    assert_eq!(got, Some(code), "{check} on {source}: {out}");
    let record = reports.record();
    (record["hubs"][0]["scenarios"][0].clone(), record, out)
}

/// The hub holds its profile's config again.
fn restored(hub: &SimHandle) {
    let profile = hub.state().profile();
    let (source, original) = (profile.source(), profile.config());
    assert_eq!(&hub.config(), original, "{source}: config not restored");
}

#[test]
fn every_hub_delivers_to_the_receiver_with_the_documented_body() {
    for profile in ["hub-new-firmware", "hub-old-firmware", "hub-battery-sensor"] {
        let hub = sim_with(profile, &[]);
        let (_, record, out) = run(&hub, "required", 0);
        assert!(
            out.contains("hub delivered a data update to the harness's receiver"),
            "{out}"
        );
        // The hub really posted, to the harness's loopback receiver.
        let d = hub.deliveries();
        assert_eq!(d.len(), 1, "{profile}: {d:?}");
        assert!(d[0].url.starts_with("http://127.0.0.1:"), "{d:?}");
        assert!(d[0].url.contains("/VEGEHUB_HARNESS_TEST/"), "{d:?}");
        assert_eq!(d[0].result, Ok(200), "{d:?}");
        restored(&hub);
        let ledger = &record["ledger"];
        assert_eq!(
            ledger["receiver_inbound"][0]["connections"], 1,
            "{ledger:#}"
        );
        assert_eq!(ledger["leaked"], false, "{ledger:#}");
        assert_eq!(ledger["connections_opened"], 1, "{ledger:#}");
        assert!(out.contains("inbound connection(s) from hub"), "{out}");
        hub.shutdown();
    }
}

#[test]
fn a_hub_that_never_posts_fails_when_required_and_is_a_skip_if_reachable() {
    let hub = sim_with("hub-old-firmware", &["no-post"]);
    let (s, _, _) = run(&hub, "required", 1);
    assert_eq!(s["outcome"], "failed", "{s:#}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.starts_with("hub did not deliver data to http://127.0.0.1:")
            && msg.ends_with("within 1 s"),
        "{msg}"
    );
    restored(&hub);

    let (s, _, _) = run(&hub, "if-reachable", 0);
    assert_eq!(s["outcome"], "skipped", "{s:#}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("hub did not deliver data to") && msg.contains("if-reachable"),
        "{msg}"
    );
    restored(&hub);

    // Off: today's setup, no post asked for.
    let (s, _, _) = run(&hub, "off", 0);
    assert_eq!(s["outcome"], "passed");
    assert!(
        hub.received()
            .iter()
            .filter(|r| r.path == "/api/update/send")
            .count()
            == 2
    );
    hub.shutdown();
}

#[test]
fn a_wrong_body_fails_naming_the_json_path() {
    for (how, path) in [
        ("mac", "$.mac: 11:22:33:44:55:66 is not the hub's MAC"),
        ("key", "$.api_key: not the test key"),
        (
            "slots",
            "$.sensors: 4 slot(s), expected 5 (2 sensor channel(s), battery, 2 actuator(s))",
        ),
        (
            "time",
            "$.sensors[0].samples[0].t: expected an RFC 3339 time, got a number",
        ),
    ] {
        let hub = sim_with("hub-new-firmware", &[&format!("bad-post:{how}")]);
        // A wrong body fails even when an unreachable hub would be a skip.
        let (s, _, _) = run(&hub, "if-reachable", 1);
        let msg = s["message"].as_str().unwrap();
        assert!(msg.contains("with a wrong body: "), "{how}: {msg}");
        assert!(msg.contains(path), "{how}: {msg}");
        restored(&hub);
        hub.shutdown();
    }
}

#[test]
fn bad_deliver_check_values_are_refused_before_any_hub_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), "sometimes");
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let o = harness(&["--device", &addr, "--setup", "--plan", &plan]);
    ended(&o, 2, &["deliver_check"]);
    assert!(hub.received().is_empty());
    hub.shutdown();
}
