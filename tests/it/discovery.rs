//! Discovery over real mDNS: the simulator's advertiser and the harness's
//! `discover`, each test in a network namespace of its own.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use vegehub_harness::device::Mac;
use vegehub_harness::discovery::{self, DiscoverOptions, Progress, StopReason};
use vegehub_harness::sim::advertise::{Advertisement, Advertiser};

use crate::common::netns::{await_mdns_daemon_threads, mdns_daemon_threads};
use crate::common::{assert_lacks, harness, SimProcess, BIN, TERMINAL_CONTROLS};
use crate::netns_test;

fn ad(mac: &str, instance: Option<&str>, port: u16) -> Advertisement {
    Advertisement {
        mac: Mac::parse(mac).expect("test MAC"),
        instance: instance.map(str::to_string),
        port,
        addrs: vec!["127.0.0.1".parse().unwrap()],
        version: "5.1.1".into(),
        sensors: vec!["Sensor1".into(), "Moist".into()],
        actuators: 2,
        power_mode: 0,
    }
}

/// A `vegehub-harness sim --advertise` process.
fn advertise(args: &[&str]) -> SimProcess {
    let mut all = vec!["--advertise"];
    all.extend_from_slice(args);
    SimProcess::start(&all)
}

/// SIGTERM, and the simulator must exit 0 (its advertiser unregistered
/// and its mdns daemon shut down).
fn stop(sim: SimProcess) {
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0), "sim exit; stdout after the URL: {rest:?}");
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn names(doc: &Value) -> Vec<String> {
    doc["hubs"]
        .as_array()
        .expect("hubs")
        .iter()
        .map(|h| h["instance"].as_str().unwrap().to_string())
        .collect()
}

fn resolved_ms(doc: &Value) -> Vec<u64> {
    doc["hubs"]
        .as_array()
        .expect("hubs")
        .iter()
        .map(|h| h["resolved_ms"].as_u64().expect("resolved_ms"))
        .collect()
}

fn last_resolved_ms(doc: &Value) -> u64 {
    resolved_ms(doc)
        .into_iter()
        .max()
        .expect("at least one hub")
}

netns_test! {
    fn advertised_hub_is_listed_with_its_txt_values() {
        let adv = Advertiser::register(&ad("02:00:00:00:A6:20", None, 8080)).unwrap();
        let out = harness(&["discover", "--expect", "1", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc = json_of(&out);
        assert_eq!(doc["stopped"], "expected");
        let hub = &doc["hubs"][0];
        assert_eq!(hub["instance"], "Vege_A6_20");
        assert_eq!(hub["fullname"], "Vege_A6_20._vege._tcp.local.");
        assert_eq!(hub["host"], "Vege_A6_20.local.");
        assert_eq!(hub["port"], 8080);
        assert_eq!(hub["addresses"][0]["ip"], "127.0.0.1");
        assert!(hub["addresses"][0]["refused"].is_null(), "{hub}");
        assert_eq!(hub["addresses"][0]["interfaces"][0], "lo");
        let txt: Vec<String> = hub["txt"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        assert_eq!(
            txt.join(" "),
            "version=5.1.1 type=hub receiver=/api/vsens/data_in sensors=2 actuators=2 \
             sens_1=Sensor1 sens_2=Moist power_mode=0"
        );
        assert_eq!(hub["hub"]["version"], "5.1.1");
        assert_eq!(hub["hub"]["sensors"], 2);
        assert_eq!(hub["hub"]["actuators"], 2);
        assert_eq!(hub["hub"]["sensor_names"][1], "Moist");

        // The text listing shows the same facts.
        let out = harness(&["discover", "--expect", "1"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("1 hub found in "), "{text}");
        assert!(text.contains("Vege_A6_20.local.:8080"), "{text}");
        assert!(text.contains("firmware   5.1.1  type hub  sensors 2  actuators 2"), "{text}");
        assert!(!text.contains('\u{1b}'), "nothing decorative when piped: {text:?}");

        adv.shutdown().unwrap();
        await_mdns_daemon_threads(0);
    }
}

netns_test! {
    fn no_hub_exits_4_with_a_hint() {
        let out = harness(&["discover", "--timeout", "0.5", "--json"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        let doc = json_of(&out);
        assert_eq!(doc["stopped"], "timeout");
        assert_eq!(doc["hubs"].as_array().unwrap().len(), 0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no hub found in 0.5 s"), "{err}");
        assert!(err.contains("multicast") && err.contains("--device"), "{err}");
    }
}

netns_test! {
    fn expect_three_returns_as_soon_as_the_third_resolves() {
        let sims: Vec<SimProcess> = ["hub-new-firmware", "hub-old-firmware", "hub-4-relay-ac"]
            .iter()
            .map(|p| advertise(&["--profile", p]))
            .collect();
        let out = harness(&["discover", "--expect", "3", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc = json_of(&out);
        assert_eq!(doc["stopped"], "expected");
        assert_eq!(names(&doc), ["Greenhouse_Relays", "Vege_1C_07", "Vege_A6_20"]);
        let elapsed = doc["elapsed_ms"].as_u64().unwrap();
        let last = last_resolved_ms(&doc);
        eprintln!("resolved at {:?} ms, stopped at {elapsed} ms", resolved_ms(&doc));
        // Freshly started responders rate-limit their answer to the first
        // query (they multicast their records an instant before), so hubs
        // resolve at the ~1 s re-query here; what matters is that the browse
        // ends with the third, not a quiet period later.
        assert!(
            elapsed <= last + 50,
            "returned at {elapsed} ms, last hub resolved at {last} ms: it waited for something"
        );

        // One more than there are: the browse runs to the timeout and says so.
        let out = harness(&["discover", "--expect", "4", "--timeout", "1.5", "--json"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        let doc = json_of(&out);
        assert_eq!(doc["stopped"], "timeout");
        assert_eq!(names(&doc).len(), 3);
        assert!(doc["elapsed_ms"].as_u64().unwrap() >= 1500);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--expect 4: found 3 hubs"), "{err}");

        for s in sims {
            stop(s);
        }
    }
}

netns_test! {
    fn simulator_advertises_its_profile_and_says_goodbye() {
        let sim = advertise(&["--profile", "hub-battery-sensor"]);
        let port: u64 = sim.url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
        let out = harness(&["discover", "--expect", "1", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc = json_of(&out);
        let hub = &doc["hubs"][0];
        assert_eq!(hub["instance"], "Desk_Temp_Soil");
        assert_eq!(hub["host"], "Desk_Temp_Soil.local.");
        assert_eq!(hub["port"], port);
        assert_eq!(hub["addresses"][0]["ip"], "127.0.0.1");
        let profile = vegehub_harness::sim::Profile::load("hub-battery-sensor").unwrap();
        assert_eq!(hub["hub"]["version"], profile.firmware());
        assert_eq!(hub["hub"]["type"], "hub");
        assert_eq!(hub["hub"]["actuators"], profile.actuator_count());
        let sensors: Vec<&str> = profile.sensors().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(hub["hub"]["sensor_names"], serde_json::json!(sensors));

        // After SIGTERM the hub is gone from the network: nothing answers.
        stop(sim);
        let out = harness(&["discover", "--timeout", "1.5", "--json"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        assert!(names(&json_of(&out)).is_empty());
    }
}

netns_test! {
    fn quiet_period_ends_a_browse_without_expect() {
        let a = Advertiser::register(&ad("02:00:00:00:04:01", Some("Desk_Temp_Soil"), 8001)).unwrap();
        let b = Advertiser::register(&ad("02:00:00:00:04:02", None, 8002)).unwrap();
        let out = harness(&["discover", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc = json_of(&out);
        assert_eq!(doc["stopped"], "quiet");
        assert_eq!(names(&doc), ["Desk_Temp_Soil", "Vege_04_02"]);
        let elapsed = doc["elapsed_ms"].as_u64().unwrap();
        let last = last_resolved_ms(&doc);
        let quiet = discovery::QUIET_PERIOD.as_millis() as u64;
        eprintln!("resolved at {:?} ms, stopped at {elapsed} ms", resolved_ms(&doc));
        assert!(
            (last + quiet..last + quiet + 200).contains(&elapsed) && elapsed < 4000,
            "stopped at {elapsed} ms, last hub at {last} ms: expected one quiet period after \
             the last hub, well before the 5 s timeout"
        );
        a.shutdown().unwrap();
        b.shutdown().unwrap();
    }
}

netns_test! {
    fn interface_limits_the_browse() {
        let adv = Advertiser::register(&ad("02:00:00:00:05:01", None, 8001)).unwrap();
        // A second interface the hub does not answer on.
        for argv in [
            "ip link add vd0 type veth peer name vd1",
            "ip addr add 169.254.5.1/16 dev vd0",
            "ip link set vd0 up",
            "ip link set vd1 up",
        ] {
            let argv: Vec<&str> = argv.split(' ').collect();
            assert!(Command::new(argv[0]).args(&argv[1..]).status().unwrap().success(), "{argv:?}");
        }
        let out = harness(&["discover", "--interface", "lo", "--expect", "1", "--json"]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(names(&json_of(&out)), ["Vege_05_01"]);

        let out = harness(&["discover", "--interface", "vd0", "--timeout", "1", "--json"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        assert!(names(&json_of(&out)).is_empty());

        let out = harness(&["discover", "--interface", "nosuch0"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--interface nosuch0: no such interface"), "{err}");
        assert!(err.contains("lo"), "lists the interfaces there are: {err}");
        adv.shutdown().unwrap();
    }
}

netns_test! {
    fn hub_leaving_during_the_browse_is_dropped_and_nothing_is_left_running() {
        let leaving = Arc::new(Mutex::new(Some(
            Advertiser::register(&ad("02:00:00:00:06:01", None, 8001)).unwrap(),
        )));
        let staying = Advertiser::register(&ad("02:00:00:00:06:02", None, 8002)).unwrap();
        assert_eq!(mdns_daemon_threads(), 2, "the thread check sees live daemons");

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A goodbye takes effect 1 s after it is sent (RFC 6762 10.1); give
        // the browse room to see it.
        let opts = DiscoverOptions { quiet: Duration::from_secs(3), ..Default::default() };
        let mut seen = Vec::new();
        let mut during = None;
        let d = rt
            .block_on(discovery::discover(&opts, |p| {
                seen.push(p.clone());
                if matches!(p, Progress::Found { count: 2, .. }) {
                    // The browse's own daemon is running now, too.
                    during = Some(mdns_daemon_threads());
                    let adv = leaving.lock().unwrap().take().unwrap();
                    adv.shutdown().unwrap();
                }
            }))
            .unwrap();
        assert_eq!(during, Some(3));
        assert_eq!(d.stopped, StopReason::Quiet);
        let left: Vec<&str> = d.hubs.iter().map(|h| h.instance.as_str()).collect();
        assert_eq!(left, ["Vege_06_02"]);
        assert!(
            seen.contains(&Progress::Removed { instance: "Vege_06_01".into(), count: 1 }),
            "{seen:?}"
        );
        // Only the staying advertiser's daemon: discover stopped its own.
        await_mdns_daemon_threads(1);
        staying.shutdown().unwrap();
        await_mdns_daemon_threads(0);
    }
}

netns_test! {
    fn hub_is_discovered_across_a_veth_link() {
        use crate::common::netns::{Veth, HOST_ADDR, PEER_IF};
        use std::io::Read;
        // The harness browses in the far namespace, on its end of the link
        // only; the hub answers from this one.
        let (mut veth, mut far_out) = Veth::spawn(&[
            BIN, "discover", "--interface", PEER_IF, "--expect", "1", "--json",
        ]);
        let mut hub = ad("02:00:00:00:07:01", Some("Bench_Hub"), 8080);
        hub.addrs = vec![HOST_ADDR.parse().unwrap()];
        let adv = Advertiser::register(&hub).unwrap();
        let mut json = String::new();
        far_out.read_to_string(&mut json).unwrap();
        let status = veth.wait();
        assert!(status.success(), "far side discover: {status}\n{json}");
        let doc: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(names(&doc), ["Bench_Hub"]);
        let hub = &doc["hubs"][0];
        assert_eq!(hub["addresses"][0]["ip"], HOST_ADDR);
        assert_eq!(hub["addresses"][0]["interfaces"][0], PEER_IF);
        adv.shutdown().unwrap();
    }
}

netns_test! {
    fn ipv6_link_local_first_then_ipv4_over_real_mdns() {
        // IPv6 multicast needs a real link (lo has none): a veth pair with a
        // fixed link-local address (no DAD wait, no generated one).
        let (v6, v4) = ("fe80::77:1", "169.254.6.1");
        for cmd in [
            "ip link add vd0 type veth peer name vd1".to_string(),
            "echo 1 > /proc/sys/net/ipv6/conf/vd0/addr_gen_mode".into(),
            "echo 1 > /proc/sys/net/ipv6/conf/vd1/addr_gen_mode".into(),
            format!("ip addr add {v6}/64 dev vd0 nodad"),
            format!("ip addr add {v4}/16 dev vd0"),
            "ip link set vd0 up && ip link set vd1 up".into(),
            "n=0; until ip -o link show dev vd0 | grep -q 'state UP'; do n=$((n+1)); \
             [ $n -lt 5000 ] || exit 1; done"
                .into(),
        ] {
            let st = Command::new("sh").args(["-c", &cmd]).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        let mut hub = ad("02:00:00:00:08:01", Some("Late_V4"), 8080);
        hub.addrs = vec![v6.parse().unwrap()];
        let adv = Mutex::new(Advertiser::register(&hub).unwrap());
        hub.addrs.push(v4.parse().unwrap());

        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // IPv6 only: after the grace the hub is usable over IPv6, scoped.
        let opts = DiscoverOptions {
            expect: Some(1),
            interface: Some("vd0".into()),
            ..Default::default()
        };
        let d = rt.block_on(discovery::discover(&opts, |_| {})).unwrap();
        let h = &d.hubs[0];
        assert_eq!(h.addresses.len(), 1, "{:?}", h.addresses);
        assert_eq!(h.addresses[0].display(), format!("{v6}%vd0"));
        match h.socket_addr().unwrap() {
            std::net::SocketAddr::V6(a) => assert!(a.scope_id() > 0, "unscoped {a}"),
            other => panic!("expected IPv6, got {other}"),
        }
        assert!(d.elapsed >= h.resolved_after + discovery::IPV4_GRACE, "{d:?}");

        let grace = Duration::from_secs(3);
        let opts = DiscoverOptions {
            expect: Some(1),
            interface: Some("vd0".into()),
            ipv4_grace: grace,
            ..Default::default()
        };
        let mut first = None;
        let d = rt
            .block_on(discovery::discover(&opts, |p| {
                if let Progress::Found { .. } = p {
                    // The hub is known by its IPv6 address only; now its
                    // IPv4 one comes up, as on a hub that just joined Wi-Fi.
                    first = Some(std::time::Instant::now());
                    adv.lock().unwrap().reannounce(&hub).unwrap();
                }
            }))
            .unwrap();
        let waited = first.expect("found").elapsed();
        assert_eq!(d.stopped, StopReason::Expected);
        assert!(waited < grace, "waited the whole grace ({waited:?}) instead of for IPv4");
        let h = &d.hubs[0];
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.display()).collect();
        assert_eq!(addrs, [v4.to_string(), format!("{v6}%vd0")]);
        assert_eq!(h.socket_addr().unwrap().to_string(), format!("{v4}:8080"));
        adv.into_inner().unwrap().shutdown().unwrap();
    }
}

netns_test! {
    fn hub_strings_in_mdns_reach_the_terminal_escaped() {
        // A hub's TXT values are its own: ESC, BEL and CR in them must be
        // shown (\x1b), never emitted (issue 10).
        let mut a = ad("02:00:00:00:E5:C0", Some("Evil\u{1b}]0;pwned\u{7}"), 8080);
        a.version = "5.1.1\u{1b}[2J\u{7}".into();
        let sensor = "Moist\r\u{1b}[1Atest result: ok.\u{9b}2J\u{202e}";
        a.sensors = vec![sensor.into()];
        let adv = Advertiser::register(&a).unwrap();
        // No raw ESC, BEL, CR, C1 CSI or right-to-left override, in the
        // listing or in its JSON (JSON writers escape only ESC, BEL and CR).
        let out = harness(&["discover", "--expect", "1"]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_lacks(&crate::common::text(&out), TERMINAL_CONTROLS);
        assert!(text.contains("5.1.1\\x1b[2J\\x07"), "{text}");
        assert!(
            text.contains("Moist\\r\\x1b[1Atest result: ok.\\u{9b}2J\\u{202e}"),
            "{text}"
        );
        let out = harness(&["discover", "--json", "--expect", "1"]);
        assert!(out.status.success(), "{out:?}");
        assert_lacks(&crate::common::text(&out), TERMINAL_CONTROLS);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["hubs"][0]["txt"]["sens_1"], sensor, "carried exactly: {doc}");
        adv.shutdown().unwrap();
        await_mdns_daemon_threads(0);
    }
}
