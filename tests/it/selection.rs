//! A run with neither `--device` nor `--sim`: hubs found over mDNS, chosen
//! with `--select`/`--all` (or refused), then tested end to end. Every test
//! runs in a network namespace of its own, with simulated hubs advertising.

use std::io::Read;
use std::process::{Command, Output, Stdio};

use crate::common::netns::{Veth, PEER_ADDR};
use crate::common::{ended, harness, output_within, text, SimProcess, BIN, LIMIT};
use crate::netns_test;

/// Fast settings for simulated hubs: relays follow at once.
const FAST: &[&str] = &[
    "--timeout",
    "2s",
    "--verify-timeout",
    "1s",
    "--on-seconds",
    "1",
    "--auto-off-seconds",
    "1",
];

/// Simulated hubs advertising on loopback, each on an address of its own.
fn hubs(hubs: &[(&str, &str)]) -> Vec<SimProcess> {
    hubs.iter()
        .map(|(profile, ip)| {
            let bind = format!("{ip}:0");
            SimProcess::start(&["--advertise", "--profile", profile, "--bind", &bind])
        })
        .collect()
}

/// The run ended with exit 4 naming every one of `needles`, and no
/// scenario ran: its output.
fn runs_nothing(o: &Output, needles: &[&str]) -> String {
    let out = ended(o, 4, needles);
    assert!(!out.contains("test mac"), "a scenario ran: {out}");
    out
}

fn stop(hubs: Vec<SimProcess>) {
    for p in hubs {
        let (code, _) = p.terminate();
        assert_eq!(code, Some(0), "simulator exit");
    }
}

/// The old-firmware hub, the 4-relay hub, and one named like the first
/// one's MAC (see [`hub_named_like_a_mac`]), on 127.0.0.1, .2 and .3.
fn three_hubs(dir: &tempfile::TempDir) -> Vec<SimProcess> {
    let odd = hub_named_like_a_mac(dir);
    hubs(&[
        ("hub-old-firmware", "127.0.0.1"),
        ("hub-4-relay-ac", "127.0.0.2"),
        (&odd, "127.0.0.3"),
    ])
}

/// A profile file: the new-firmware hub renamed `A1B2C3D41C07`, which is
/// also the MAC of the old-firmware hub (a user may name a hub anything).
fn hub_named_like_a_mac(dir: &tempfile::TempDir) -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hub-new-firmware.json"
    );
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    doc["name"] = "A1B2C3D41C07".into();
    let path = dir.path().join("named-like-a-mac.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

netns_test! {
    fn select_by_name_mac_or_address_tests_that_hub_only() {
        let dir = tempfile::tempdir().unwrap();
        let hubs = three_hubs(&dir);
        for (select, mac) in [
            ("vege_1c_07", "A1B2C3D41C07"),           // instance name, any case
            ("a1b2.c3d4.4e51", "A1B2C3D44E51"),       // MAC, read from the hub
            ("127.0.0.3", "A1B2C3D4A620"),            // address
        ] {
            let o = harness(&["--select", select, "mac"]);
            let out = text(&o);
            assert_eq!(o.status.code(), Some(0), "--select {select}: {out}");
            assert!(out.contains(&format!("mac {mac}")), "--select {select}: {out}");
            assert!(out.contains("PASS (1 hub(s)"), "--select {select}: {out}");
        }
        let o = harness(&["--all", "mac"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(!out.contains("looking for hubs"), "spinner when piped: {out}");
        assert!(out.contains("PASS (3 hub(s)"), "{out}");
        stop(hubs);
    }
}

netns_test! {
    fn ambiguous_unmatched_or_unchosen_selection_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let hubs = three_hubs(&dir);
        // One hub's name is another hub's MAC: refused, both named.
        runs_nothing(&harness(&["--select", "A1B2C3D41C07", "mac"]), &[
            "--select A1B2C3D41C07 is ambiguous: it matches 2 hubs",
            "Vege_1C_07 (127.0.0.1:",
        ]);
        runs_nothing(&harness(&["--select", "Nope", "mac"]), &[
            "--select Nope matches none of the 3 hubs found",
        ]);
        // Several hubs, no terminal, no choice: list them and stop.
        runs_nothing(&harness(&["mac"]), &[
            "3 hubs found; say which with --select NAME|MAC|IP or --all",
            "A1B2C3D41C07",
            "Greenhouse_Relays (127.0.0.2:",
            "Vege_1C_07",
        ]);

        let o = harness(&["--select", " ", "mac"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        stop(hubs);
    }
}

netns_test! {
    fn no_hub_found_exits_4_with_a_hint() {
        // The one duration syntax of every flag (a bare 0.5 is the same).
        let o = harness(&["--discover-timeout", "500ms"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("vegehub-harness: error: no hub found on the network in 0.5 s."),
            "{err}"
        );
        assert!(last.contains("multicast") && last.contains("--device"), "{err}");
    }
}

netns_test! {
    fn hub_in_another_namespace_is_found_over_a_veth_and_tested_end_to_end() {
        // The hub listens on every address of its namespace and announces
        // the one on its end of the link; the harness runs here with no
        // target at all.
        let (veth, mut far_out) = Veth::spawn(&[
            BIN, "sim", "--advertise", "--profile", "hub-new-firmware", "--bind", "0.0.0.0:0",
        ]);
        let mut url = String::new();
        let mut byte = [0u8; 1];
        while far_out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            url.push(byte[0] as char);
        }
        let port = url.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
        let mut args = vec!["--write-config", "--actuators", "--setup"];
        args.extend_from_slice(FAST);
        let o = harness(&args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains(&format!("testing Vege_A6_20 ({PEER_ADDR}:{port})")), "{out}");
        assert!(out.contains("6 passed, 0 failed, 0 skipped"), "{out}");
        assert!(out.contains("harness: PASS (1 hub(s)"), "{out}");
        drop(veth);
    }
}

/// Run the harness on a pseudo-terminal (`script`), typing `input`.
fn on_a_terminal(args: &str, input: &[u8]) -> Output {
    use std::io::Write;
    let backups = tempfile::tempdir().expect("a temp dir");
    let cmd = format!("'{BIN}' {args}");
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("VEGEHUB_HARNESS_BACKUP_DIR", backups.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the harness on a pseudo-terminal");
    child.stdin.take().unwrap().write_all(input).unwrap();
    output_within(child, LIMIT, "the harness on a pseudo-terminal")
}

netns_test! {
    fn on_a_terminal_the_technician_picks_or_confirms() {
        let mut hubs = hubs(&[
            ("hub-4-relay-ac", "127.0.0.1"),
            ("hub-old-firmware", "127.0.0.2"),
        ]);
        // `mac` changes nothing, so the only question is which hub: an
        // answer that is not one is asked again, then hub number 2.
        let o = on_a_terminal("mac", b"x\n2\n");
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("looking for hubs"), "no spinner on a terminal: {out}");
        assert!(out.contains("1. Greenhouse_Relays (127.0.0.1:"), "{out}");
        assert!(out.contains("Hub to test (1-2, a = all, empty = none)"), "{out}");
        assert!(out.contains("mac A1B2C3D41C07"), "hub 2 (Vege_1C_07) not tested: {out}");

        // One hub left: asked to confirm; no means nothing runs.
        let gone = hubs.remove(0);
        assert_eq!(gone.terminate().0, Some(0));
        runs_nothing(&on_a_terminal("mac", b"maybe\nn\n"), &[
            "One hub found: Vege_1C_07 (127.0.0.2:",
            "not confirmed; nothing run",
        ]);
        stop(hubs);
    }
}

netns_test! {
    fn one_name_on_two_links_is_flagged_refused_and_separable_by_interface() {
        use crate::common::netns::Link;
        use std::io::BufRead;
        // Two hubs that both call themselves Vege_A6_20, each behind its own
        // link (a cloned config, or two benches with one naming habit).
        let sim = [BIN, "sim", "--advertise", "--profile", "hub-new-firmware", "--bind", "0.0.0.0:0"];
        let mut far = Vec::new();
        let mut ports = Vec::new();
        for n in 0..2 {
            let (veth, mut out) = Veth::spawn_on(&Link::nth(n), &sim);
            let mut url = String::new();
            out.read_line(&mut url).unwrap();
            ports.push(url.trim().rsplit(':').next().unwrap().to_string());
            far.push((veth, out));
        }
        let second = Link::nth(1);

        // mdns-sd merges them into one record; the listing says so.
        let o = harness(&["discover"]);
        let out = text(&o);
        assert!(out.starts_with("1 hub found"), "{out}");
        assert!(
            out.contains("warning    instance Vege_A6_20 answered on several interfaces with \
                          different addresses (169.254.77.2 on vh0, 169.254.78.2 on vh2)"),
            "{out}"
        );

        // A run refuses it (by address too: see the select unit tests).
        let refused = ["two hubs share that name", "--interface"];
        runs_nothing(&harness(&["--select", "Vege_A6_20", "mac"]), &refused);

        // One link at a time, each is one clean hub. (Each browse here
        // starts over a second after the previous one's answers: a responder
        // answers a record at most once a second.)
        let o = harness(&["--interface", &second.host_if, "--select", "Vege_A6_20", "mac"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(
            out.contains(&format!("testing Vege_A6_20 ({}:{})", second.peer_addr, ports[1])),
            "{out}"
        );
        let o = harness(&["discover", "--interface", &second.host_if, "--expect", "1"]);
        let out = text(&o);
        assert!(!out.contains("warning"), "{out}");
        assert!(out.contains(&format!("Vege_A6_20.local.:{}", ports[1])), "{out}");
        drop(far);
    }
}

/// Hub names are the hubs' own: on their way to the technician's terminal
/// (the run's refusal, its pick and confirm prompts) control characters are
/// shown (`\x1b`), never emitted (issue 10).
#[cfg(unix)]
mod hostile_names {
    use vegehub_harness::sim::advertise::Advertiser;

    use crate::common::netns::await_mdns_daemon_threads;
    use crate::common::pty::{finish, spawn};
    use crate::common::{advertisement, harness};
    use crate::netns_test;

    /// Retitles the terminal.
    const TITLE: &str = "Evil\u{1b}]0;pwned\u{7}";
    const TITLE_SHOWN: &str = "Evil\\x1b]0;pwned\\x07 (127.0.0.1:8080)";
    /// Clears the screen and homes the cursor.
    const WIPE: &str = "Wipe\u{1b}[2J\u{1b}[H";
    const WIPE_SHOWN: &str = "Wipe\\x1b[2J\\x1b[H (127.0.0.1:8081)";

    fn advertise(instance: &str, mac: &str, port: u16) -> Advertiser {
        Advertiser::register(&advertisement(mac, instance, port))
            .expect("the hostile hub advertises")
    }

    fn assert_nothing_raw(out: &str) {
        for raw in [TITLE, WIPE] {
            assert!(!out.contains(raw), "raw {raw:?} printed: {out:?}");
        }
    }

    netns_test! {
        fn hub_names_reach_the_prompts_escaped() {
            let title = advertise(TITLE, "02:00:00:00:E5:C0", 8080);
            let wipe = advertise(WIPE, "02:00:00:00:E5:C1", 8081);

            // No terminal: the refusal lists both, escaped.
            let listed = ["2 hubs found; say which with --select", TITLE_SHOWN, WIPE_SHOWN];
            assert_nothing_raw(&super::runs_nothing(&harness(&["mac"]), &listed));

            // On a terminal: the pick lists both, escaped; Enter picks none.
            let mut s = spawn(&["mac"]);
            s.expect("Hub to test (1-2, a = all, empty = none): ").unwrap();
            s.send_line("").unwrap();
            let (_, code) = finish(&mut s);
            // Raw bytes: an escape sequence must not reach the terminal at all.
            let out = s.raw();
            assert_eq!(code, 4, "{out}");
            assert!(out.contains("Hubs found:"), "{out}");
            assert!(out.contains(&format!(". {TITLE_SHOWN}")), "{out}");
            assert!(out.contains(&format!(". {WIPE_SHOWN}")), "{out}");
            assert!(out.contains("no hub picked; nothing run"), "{out}");
            assert_nothing_raw(&out);

            // One hub left: the confirmation names it escaped; no runs nothing.
            wipe.shutdown().unwrap();
            let mut s = spawn(&["mac"]);
            let question = format!("One hub found: {TITLE_SHOWN}. Test it? [Y/n]: ");
            s.expect(question.as_str()).unwrap();
            s.send_line("n").unwrap();
            let (_, code) = finish(&mut s);
            // Raw bytes: an escape sequence must not reach the terminal at all.
            let out = s.raw();
            assert_eq!(code, 4, "{out}");
            assert!(out.contains(&format!("{TITLE_SHOWN} not confirmed; nothing run")), "{out}");
            assert!(!out.contains("test mac"), "a scenario ran: {out}");
            assert_nothing_raw(&out);

            title.shutdown().unwrap();
            await_mdns_daemon_threads(0);
        }
    }
}
