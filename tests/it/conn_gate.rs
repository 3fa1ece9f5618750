//! The connection gate through the real binary, against the simulated hub
//! started in this test process: the ledger's counts are cross-checked with
//! the simulator's own (`ConnStats`), and each verdict is seen flipping.

use std::process::Output;
use std::time::Duration;

use vegehub_harness::sim::{ConnStats, SimHandle};

use crate::common::{harness_within, sim_with};

fn sim(faults: &[&str]) -> SimHandle {
    sim_with("hub-new-firmware", faults)
}

struct Run {
    code: i32,
    out: String,
}

/// The harness against `sim` with `extra`, which ends with `code`.
fn gate(sim: &SimHandle, extra: &[&str], code: i32) -> Run {
    let addr = sim.addr().to_string();
    let mut args = vec![
        "--device",
        &addr,
        "--color",
        "never",
        "--close-timeout",
        "1s",
    ];
    args.extend_from_slice(extra);
    let Output {
        status,
        stdout,
        stderr,
    } = harness_within(&args, Duration::from_secs(30));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    let run = Run {
        code: status.code().unwrap_or(-1),
        out,
    };
    assert_eq!(run.code, code, "{extra:?}: {}", run.out);
    run
}

/// `connections: opened N, closed N, still open N` -> (opened, closed, open).
fn connections(run: &Run) -> (u64, u64, u64) {
    let line = run
        .out
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("connections: opened "))
        .unwrap_or_else(|| panic!("no connections line in:\n{}", run.out));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

/// The harness has exited: the simulator sees every connection closed.
fn settled(sim: &SimHandle) -> ConnStats {
    assert!(
        sim.wait_for(Duration::from_secs(3), |s| s.open == 0),
        "simulator still has connections open: {:?}",
        sim.stats()
    );
    sim.stats()
}

/// The harness's connection counts agree with the simulator's, and every
/// connection it opened is closed: the simulator's stats.
fn all_closed(sim: &SimHandle, run: &Run) -> ConnStats {
    let stats = settled(sim);
    let all = (stats.accepted, stats.accepted, 0);
    assert_eq!(connections(run), all, "{}", run.out);
    stats
}

/// The JSON run record's `ledger` section.
fn ledger_record(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["ledger"].clone()
}

#[test]
fn a_normal_run_uses_one_connection_and_the_simulator_agrees() {
    let hub = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("run.json");
    let run = gate(&hub, &["--report-json", record.to_str().unwrap()], 0);
    let ledger = ledger_record(&record);
    assert_eq!(ledger["leaked"], false, "{ledger}");
    assert_eq!(ledger["connections_opened"], 1, "{ledger}");
    assert_eq!(ledger["connections_closed"], 1, "{ledger}");
    assert_eq!(ledger["sessions"], 1, "{ledger}");
    assert_eq!(connections(&run), (1, 1, 0), "{}", run.out);
    assert!(run.out.contains("sessions: 1"), "{}", run.out);
    let stats = settled(&hub);
    assert_eq!((stats.accepted, stats.refused), (1, 0));
    // Both sides count the same requests on that one connection.
    let requests = stats.requests_per_connection[0];
    assert!(
        run.out.contains(&format!(
            "1 connections, {requests} requests ({requests}.0 per connection)"
        )),
        "simulator saw {requests} requests:\n{}",
        run.out
    );
}

#[test]
fn a_request_left_in_flight_is_a_leak_named_with_its_scenario_and_exits_3() {
    let hub = sim(&[]);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("run.json");
    let run = gate(
        &hub,
        &["--debug-leak", "--report-json", record.to_str().unwrap()],
        3,
    );
    let ledger = ledger_record(&record);
    assert_eq!(ledger["leaked"], true, "{ledger}");
    assert!(
        ledger["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("opened during mac")),
        "{ledger}"
    );
    let leaks: Vec<&str> = run
        .out
        .lines()
        .filter(|l| l.contains("connection leak:"))
        .collect();
    assert!(!leaks.is_empty(), "no leak named:\n{}", run.out);
    // The leak's task starts beside `mac`; on a loaded machine it may only
    // get its connection after `mac` returned it to the pool, and `info`
    // then opens the pool's second one. Either way every leak names the
    // scenario that opened it, and one is `mac`'s.
    assert!(
        leaks.iter().any(|l| l.contains("opened during mac")),
        "{}",
        run.out
    );
    for leak in &leaks {
        assert!(leak.contains(&format!("-> hub {}", hub.addr())), "{leak}");
        assert!(
            leak.contains("opened during mac") || leak.contains("opened during info"),
            "{leak}"
        );
        assert!(leak.contains("still ESTABLISHED"), "{leak}");
    }
    // Two connections at once is within the default budget of 2.
    assert!(!run.out.contains("open at once, budget"), "{}", run.out);
    // The request in flight keeps the client, so its whole pool stays open.
    let (opened, closed, open) = connections(&run);
    assert_eq!((closed, open), (0, opened), "{}", run.out);
    assert_eq!(leaks.len() as u64, opened);
    // The process is gone, so are its sockets; both sides counted the same.
    assert_eq!(settled(&hub).accepted, opened);
}

#[test]
fn a_budget_of_one_fails_when_a_second_connection_opens_beside_the_first() {
    // The leak holds one connection from the start, so the plan needs a
    // second one beside it.
    let hub = sim(&[]);
    let run = gate(&hub, &["--debug-leak", "--conn-budget", "1"], 3);
    assert!(
        run.out.contains(&format!(
            "hub {}: 2 connections open at once, budget 1 (--conn-budget)",
            hub.addr()
        )),
        "{}",
        run.out
    );
    settled(&hub);
}

#[test]
fn a_session_per_request_is_flagged() {
    let hub = sim(&[]);
    let run = gate(&hub, &["--debug-session-per-request"], 3);
    assert!(
        run.out.contains("sessions created, expected 1"),
        "{}",
        run.out
    );
    let stats = all_closed(&hub, &run);
    assert!(stats.accepted > 1, "{stats:?}");
}

#[test]
fn connection_close_opens_one_connection_per_request_and_leaks_nothing() {
    let hub = sim(&["conn-close"]);
    let run = gate(&hub, &[], 0);
    let stats = all_closed(&hub, &run);
    assert!(stats.accepted > 1, "{stats:?}");
    assert!(stats.requests_per_connection.iter().all(|n| *n == 1));
}

#[test]
fn a_hub_allowing_one_connection_at_a_time_still_passes() {
    let hub = sim(&["max-conns:1"]);
    let run = gate(&hub, &[], 0);
    let stats = all_closed(&hub, &run);
    assert_eq!(stats.refused, 0, "{stats:?}");
}

#[test]
fn a_budget_of_zero_is_a_usage_error() {
    let hub = sim(&[]);
    let run = gate(&hub, &["--conn-budget", "0"], 2);
    assert!(run.out.contains("--conn-budget"), "{}", run.out);
    assert_eq!(settled(&hub).accepted, 0);
}
