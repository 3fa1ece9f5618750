//! Setup proven end to end through the real binary: the hub is pointed at a
//! receiver of the harness's, posts its data update there and the body is
//! checked; a hub that never posts fails (`required`) or is a skip
//! (`if-reachable`); a wrong body fails naming the JSON path; the original
//! config comes back exactly either way, and the receiver's connections are
//! reported apart from the client's.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vegehub_harness::sim::SimHandle;

use crate::common::{ended, harness, sim_with, ReportFiles, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

fn plan(dir: &std::path::Path, check: &str) -> String {
    plan_within(dir, check, 1)
}

/// A plan of one `setup` step with `deliver_check` and its timeout.
fn plan_within(dir: &std::path::Path, check: &str, seconds: u64) -> String {
    let path = dir.join(format!("{check}.json"));
    let plan = json!({"scenarios": [{"scenario": "setup", "allow_changes": true,
        "deliver_check": check, "deliver_timeout_seconds": seconds}]});
    std::fs::write(&path, plan.to_string()).unwrap();
    path.display().to_string()
}

/// A `--setup` run against `hub` with `plan` and `extra`, writing
/// `reports`, started.
fn start(hub: &SimHandle, plan: &str, reports: &ReportFiles, extra: &[&str]) -> Spawned {
    let addr = hub.addr().to_string();
    let args = [&["--device", &addr, "--setup", "--plan", plan][..], extra].concat();
    let args: Vec<String> = args
        .iter()
        .map(|s| s.to_string())
        .chain(reports.args())
        .collect();
    Spawned::start(&args, false)
}

/// A `--setup` run against `hub` with the plan's `deliver_check` set to
/// `check`, which ends with `code`: the setup scenario's record, the whole
/// record, and the output.
fn run(hub: &SimHandle, check: &str, code: i32) -> (Value, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let reports = ReportFiles::new();
    let plan = plan(dir.path(), check);
    let (got, out) = start(hub, &plan, &reports, &["--timeout", "2s"]).finish(LIMIT);
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

/// Where the hub was told to post (`HOST:PORT` of the harness's receiver),
/// once its config names it.
fn receiver_of(config: &Value) -> Option<std::net::SocketAddr> {
    let text = config.to_string();
    let at = text.find("/VEGEHUB_HARNESS_TEST/")?;
    let start = text[..at].rfind("http://")? + "http://".len();
    text[start..at].parse().ok()
}

#[test]
fn a_flood_of_connections_to_the_receiver_is_turned_away_and_the_post_still_lands() {
    use std::io::Read;
    // update/send waits 3 s before the hub posts: the receiver listens
    // meanwhile, and the flood comes then.
    let hub = sim_with("hub-new-firmware", &["delay:3s@update/send"]);
    let dir = tempfile::tempdir().unwrap();
    let reports = ReportFiles::new();
    let run = start(&hub, &plan_within(dir.path(), "required", 5), &reports, &[]);
    crate::common::wait_hub(&hub, "the hub pointed at the receiver", |s| {
        receiver_of(&s.config()).is_some()
    });
    let receiver = receiver_of(&hub.config()).unwrap();
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", run.child.id())).map(|d| d.count());
    let before = fds();
    const FLOOD: usize = 300;
    let mut flood: Vec<std::net::TcpStream> = (0..FLOOD)
        .map(|_| std::net::TcpStream::connect(receiver).unwrap())
        .collect();
    flood.iter().for_each(|s| s.set_nonblocking(true).unwrap());
    // The receiver serves 8 at once and closes the rest as it accepts
    // them, well before the hub posts.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut closed = vec![false; FLOOD];
    while closed.iter().filter(|&&c| c).count() < FLOOD - 8 {
        assert!(
            Instant::now() < deadline,
            "the harness held {} of {FLOOD} flood connections open",
            closed.iter().filter(|&&c| !c).count()
        );
        for (s, c) in flood.iter_mut().zip(closed.iter_mut()) {
            *c = *c
                || match s.read(&mut [0u8; 64]) {
                    Ok(n) => n == 0,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                };
        }
        std::thread::yield_now();
    }
    // Linux: the harness's own file descriptors stayed bounded.
    if let (Ok(before), Ok(now)) = (before, fds()) {
        assert!(
            now <= before + 8 + 4,
            "{before} fds before the flood, {now} during"
        );
    }
    drop(flood);
    let (code, out) = run.finish(LIMIT);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("hub delivered a data update to the harness's receiver"),
        "{out}"
    );
    assert!(out.contains("more turned away"), "{out}");
    restored(&hub);
    hub.shutdown();
}
