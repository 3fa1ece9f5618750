//! Many hubs in one run, through the real binary: each hub keeps its own
//! verdict whatever its neighbours do, hubs are named (not addressed) in
//! result lines, `--list` and the summary, `--jobs` bounds the hubs in
//! flight, and `sim --count` serves a shelf of distinct hubs.

use std::time::Duration;

use crate::common::{harness, harness_cmd, output_of, sim_with, text, SimProcess, LIMIT};

/// A run to its end, no colour: the exit code and the output as text.
fn shelf(args: &[&str]) -> (i32, String) {
    let mut all = args.to_vec();
    all.extend(["--color", "never"]);
    let o = harness(&all);
    (o.status.code().unwrap_or(-1), text(&o))
}

/// The result of `scenario` on `hub` (libtest pads the hub names).
fn result<'a>(out: &'a str, hub: &str, scenario: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.starts_with(&format!("test [{hub}]")) && l.split_whitespace().nth(2) == Some(scenario)
        })
        .unwrap_or_else(|| panic!("no {scenario} line for {hub}:\n{out}"))
}

/// The summary table's row of `hub`: hub, mac, firmware, passed, failed,
/// skipped, conns, time, cleanup.
fn row(out: &str, hub: &str) -> Vec<String> {
    out.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(&format!("{hub} ")) && !l.starts_with("test "))
        .unwrap_or_else(|| panic!("no summary row for {hub}:\n{out}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn each_hub_keeps_its_own_verdict_next_to_a_failing_a_hanging_and_a_closing_hub() {
    let good = sim_with("hub-new-firmware", &[]);
    let failing = sim_with("hub-old-firmware", &["status:500@actuators/status"]);
    let hanging = sim_with("hub-4-relay-ac", &["hang@config/get"]);
    let closing = sim_with("hub-battery-sensor", &["conn-close"]);
    let addrs: Vec<String> = [&good, &failing, &hanging, &closing]
        .iter()
        .map(|h| h.addr().to_string())
        .collect();
    let mut args: Vec<&str> = Vec::new();
    for a in &addrs {
        args.extend(["--device", a.as_str()]);
    }
    args.extend([
        "--write-config",
        "--setup",
        "--timeout",
        "1s",
        "--verify-timeout",
        "1s",
    ]);
    let (code, out) = shelf(&args);
    // A scenario failed; nothing leaked, no hub went over its budget.
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("still open 0"), "{out}");
    assert!(!out.contains("budget 2 (--conn-budget)"), "{out}");

    // Named by the MAC each gave, never by address.
    let names = [
        good.state().profile().mac().as_str().to_owned(),
        failing.state().profile().mac().as_str().to_owned(),
        hanging.state().profile().mac().as_str().to_owned(),
        closing.state().profile().mac().as_str().to_owned(),
    ];
    for a in &addrs {
        assert!(!out.contains(&format!("test [{a}]")), "{out}");
    }
    let [good_n, failing_n, hanging_n, closing_n] = &names;
    let scenarios = [
        "mac",
        "info",
        "actuator-status",
        "config-round-trip",
        "setup",
    ];
    for s in scenarios {
        assert!(result(&out, good_n, s).ends_with("... ok"), "{out}");
    }
    // (The battery hub has no actuators to report.)
    for s in ["mac", "info", "config-round-trip", "setup"] {
        assert!(result(&out, closing_n, s).ends_with("... ok"), "{out}");
    }
    assert!(
        result(&out, failing_n, "actuator-status").ends_with("FAILED"),
        "{out}"
    );
    for s in ["mac", "info", "config-round-trip", "setup"] {
        assert!(result(&out, failing_n, s).ends_with("... ok"), "{out}");
    }
    for s in ["mac", "info", "actuator-status"] {
        assert!(result(&out, hanging_n, s).ends_with("... ok"), "{out}");
    }
    assert!(
        result(&out, hanging_n, "config-round-trip").ends_with("FAILED"),
        "{out}"
    );
    assert!(out.contains("config/get: no answer within 1s"), "{out}");

    // The table: a row each, failures counted per hub; the keep-alive hubs
    // used one connection each, the closing hub one per request.
    let (g, f, h, c) = (
        row(&out, good_n),
        row(&out, failing_n),
        row(&out, hanging_n),
        row(&out, closing_n),
    );
    assert_eq!(
        (&g[4][..], &g[6][..], &g[8][..]),
        ("0", "1", "verified"),
        "{out}"
    );
    assert_eq!(&f[4], "1", "{out}");
    assert_ne!(&h[4], "0", "{out}");
    assert_eq!(&c[4], "0", "{out}");
    let closing_conns: u64 = c[6].parse().unwrap();
    assert!(closing_conns > 5, "{out}");
    assert_eq!(closing.stats().accepted, closing_conns);
    assert_eq!(good.stats().accepted, 1);
    // Details follow for the hubs that failed, not for the others.
    assert!(
        out.contains(&format!("hub {failing_n} at {}", addrs[1])),
        "{out}"
    );
    assert!(
        out.contains(&format!("hub {hanging_n} at {}", addrs[2])),
        "{out}"
    );
    assert!(!out.contains(&format!("hub {good_n} at")), "{out}");
    assert!(!out.contains(&format!("hub {closing_n} at")), "{out}");
}

#[test]
fn list_names_filter_names_and_run_names_agree() {
    let a = sim_with("hub-new-firmware", &[]);
    let b = sim_with("hub-4-relay-ac", &[]);
    let (aa, ba) = (a.addr().to_string(), b.addr().to_string());
    let (code, listed) = shelf(&["--device", &aa, "--device", &ba, "--list"]);
    assert_eq!(code, 0, "{listed}");
    let b_name = b.state().profile().mac().as_str().to_owned();
    let a_name = a.state().profile().mac().as_str().to_owned();
    let list_line = format!("[{b_name}] info: test");
    assert!(listed.lines().any(|l| l == list_line), "{listed}");
    assert!(
        listed.lines().any(|l| l == format!("[{a_name}] mac: test")),
        "{listed}"
    );
    assert!(!listed.contains(&aa), "{listed}");
    // --list changed nothing on the hubs.
    assert_eq!(a.stats().requests, 1);

    // The listed name, given as an exact filter, runs that one trial.
    let exact = format!("[{b_name}] info");
    let (code, out) = shelf(&["--device", &aa, "--device", &ba, "--exact", &exact]);
    assert_eq!(code, 0, "{out}");
    assert!(result(&out, &b_name, "info").ends_with("... ok"), "{out}");
    assert_eq!(out.matches(" ... ok").count(), 1, "{out}");
    // And the name alone as a filter runs every scenario of that hub.
    let (code, out) = shelf(&["--device", &aa, "--device", &ba, &b_name]);
    assert_eq!(code, 0, "{out}");
    assert!(result(&out, &b_name, "mac").ends_with("... ok"), "{out}");
    assert!(!out.contains(&format!("test [{a_name}]")), "{out}");
}

#[test]
fn jobs_bounds_the_hubs_in_flight() {
    let hubs: Vec<_> = ["hub-new-firmware", "hub-old-firmware", "hub-4-relay-ac"]
        .iter()
        .map(|p| sim_with(p, &[]))
        .collect();
    let addrs: Vec<String> = hubs.iter().map(|h| h.addr().to_string()).collect();
    let names: Vec<String> = hubs
        .iter()
        .map(|h| h.state().profile().mac().as_str().to_owned())
        .collect();
    let mut args: Vec<&str> = Vec::new();
    for a in &addrs {
        args.extend(["--device", a.as_str()]);
    }
    let hub_order = |out: &str| -> Vec<usize> {
        let mut order: Vec<usize> = Vec::new();
        for l in out.lines().filter(|l| l.starts_with("test [")) {
            let i = names
                .iter()
                .position(|n| l.starts_with(&format!("test [{n}]")))
                .unwrap_or_else(|| panic!("unnamed line {l}"));
            if order.last() != Some(&i) {
                order.push(i);
            }
        }
        order
    };
    // --jobs 1: one hub at a time, each from its first scenario to its
    // last, in the order given.
    let mut one = args.clone();
    one.extend(["--jobs", "1"]);
    let (code, out) = shelf(&one);
    assert_eq!(code, 0, "{out}");
    assert_eq!(hub_order(&out), [0, 1, 2], "{out}");
    // By default every hub is in flight at once: scenario by scenario
    // across the hubs (so the hubs alternate in the result lines).
    let (code, out) = shelf(&args);
    assert_eq!(code, 0, "{out}");
    assert!(hub_order(&out).len() > 3, "{out}");

    // --jobs 0 is a usage error naming the flag.
    let (code, out) = shelf(&["--device", &addrs[0], "--jobs", "0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--jobs"), "{out}");
}

#[test]
fn sim_count_serves_distinct_hubs_and_prints_one_line_each() {
    let sim = SimProcess::start(&["--count", "5", "--profile", "hub-4-relay-ac"]);
    let mut lines = vec![sim.url.clone()];
    lines.extend((1..5).map(|_| sim.next_line(Duration::from_secs(20))));
    let mut urls = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::new();
    let mut macs = std::collections::HashSet::new();
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{l}");
        assert!(f[0].starts_with("http://127.0.0.1:"), "{l}");
        urls.insert(f[0].to_owned());
        names.insert(f[1].to_owned());
        macs.insert(f[2].to_owned());
    }
    assert_eq!(
        (urls.len(), names.len(), macs.len()),
        (5, 5, 5),
        "{lines:?}"
    );
    assert!(names.contains("Greenhouse_Relays") && names.contains("Greenhouse_Relays_5"));

    // The harness runs them all in one run, each by its own MAC.
    let mut args: Vec<String> = Vec::new();
    for u in &urls {
        args.extend([
            "--device".into(),
            u.trim_start_matches("http://").to_owned(),
        ]);
    }
    args.extend(["mac".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = shelf(&refs);
    assert_eq!(code, 0, "{out}");
    for mac in &macs {
        let mac = mac.replace(':', "");
        assert!(result(&out, &mac, "mac").ends_with("... ok"), "{out}");
    }

    let (code, _) = sim.terminate();
    assert_eq!(code, Some(0), "sim --count exit");
}

/// Run the harness against one hub with its thread stalled for 2.5 s right
/// after the first `info/get` is sent (`VEGEHUB_HARNESS_DEBUG_STALL`), as
/// an overloaded host would.
fn stalled_run(hub: &str) -> (i32, String) {
    let o = output_of(
        harness_cmd()
            .args([
                "--device",
                hub,
                "--color",
                "never",
                "--timeout",
                "1s",
                "mac",
            ])
            .env("VEGEHUB_HARNESS_DEBUG_STALL", "info/get:2500"),
        LIMIT,
    );
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn the_harness_falling_behind_is_not_the_hubs_timeout() {
    // The hub answers in 200 ms; the harness sleeps through its 1 s
    // timeout. The answer is taken: the hub is not blamed.
    let prompt = sim_with("hub-new-firmware", &["delay:200ms@info/get"]);
    let (code, out) = stalled_run(&prompt.addr().to_string());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("test mac ... ok"), "{out}");
    // The flip: a hub that never answers is still the hub's timeout, after
    // it was given its second again with the harness awake.
    let silent = sim_with("hub-new-firmware", &["hang@info/get"]);
    let (code, out) = stalled_run(&silent.addr().to_string());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("test mac ... FAILED"), "{out}");
    assert!(out.contains("info/get: no answer within 1s"), "{out}");
}
