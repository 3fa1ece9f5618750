//! Compatibility with the public clients real users run: the `vegehub`
//! Python client (the library Home Assistant uses) against the simulator,
//! and python-zeroconf (Home Assistant's mDNS library) against the
//! simulator's advertiser and the harness's discovery, both ways. The
//! scripts live in tests/compat/; they run under the pinned venv of
//! ci/compat-requirements.txt (ci/compat-venv.sh), always with a deadline.
//! Each check is also run against a misbehaving hub and must fail there.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    compat_run, fixture, harness_within, sim_with, text, CompatProcess, SimProcess, LIMIT,
};
use crate::{compat_test, netns_test};

/// Bound on one run of a compatibility script.
const SCRIPT_LIMIT: Duration = Duration::from_secs(90);

fn out_text(o: &Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `vegehub` client, HA's way, against an in-process simulated hub.
fn vegehub_client(profile: &str, faults: &[&str]) -> Output {
    let hub = sim_with(profile, faults);
    let addr = hub.addr().to_string();
    let path = fixture(profile);
    compat_run(
        "vegehub_client.py",
        &[
            "--hub",
            &addr,
            "--profile",
            path.to_str().unwrap(),
            "--deadline",
            "60",
            "--post-wait",
            "3",
        ],
        SCRIPT_LIMIT,
    )
}

fn passed(o: &Output, script: &str) -> String {
    let t = out_text(o);
    assert!(
        o.status.success() && t.contains(&format!("{script}: all ")),
        "{script} failed:\n{t}"
    );
    t
}

/// The checks `vegehub_client.py` passes on every hub, one per public
/// method of the library (the actuator checks depend on the hub).
const CLIENT_CHECKS: &str = "retrieve_mac_address setup setup-stored info-after-setup
    request_update update-posted update-as-ha-reads-it retrieve_mac_address-again
    setup-with-session-and-retries restored-equal client-close";

/// The run failed, and first at check `check`.
fn failed_at(o: &Output, check: &str, what: &str) {
    let t = out_text(o);
    assert!(
        !o.status.success() && t.contains(&format!("\nFAIL {check}: ")),
        "{what}: expected FAIL {check}, got:\n{t}"
    );
}

compat_test! {
    fn vegehub_client_works_with_every_profile_and_generation() {
        for profile in [
            "hub-new-firmware",
            "hub-old-firmware",
            "hub-4-relay-ac",
            "hub-battery-sensor",
        ] {
            let t = passed(&vegehub_client(profile, &[]), "vegehub-client");
            let actuator_checks = if profile == "hub-battery-sensor" {
                "client-actuator_states-none"
            } else {
                "actuator_states set_actuator-on-0 set_actuator-off-0"
            };
            // Every public method of the library was called and checked.
            for check in CLIENT_CHECKS.split_whitespace().chain(actuator_checks.split(' ')) {
                assert!(t.contains(&format!("ok {check}\n")), "{profile}: {check}:\n{t}");
            }
        }
    }
}

compat_test! {
    fn vegehub_client_checks_fail_when_the_hub_misbehaves() {
        // One misbehaving hub a row: its profile (hub-new-firmware or
        // hub-old-firmware), its fault, and the check that must fail
        // first. Of the `after=` faults: the third info/get is the hub
        // rebuilt from HA's stored entry; config/set 2 and 3 are both tries
        // of the second setup; the third config/set is the restore.
        let cases = "
            new  mac-change@info/get                     retrieve_mac_address
            old  error-field@config/get                  config-get-as-client-asks
            new  status:500@config/set                   setup
            new  ignore-set                              setup-stored
            old  ignore-set                              setup-stored
            new  claim-actuators:3                       info-after-setup
            new  status:500@update/send                  request_update
            new  no-post                                 update-posted
            new  bad-post:mac                            update-mac
            new  bad-post:slots                          update-as-ha-reads-it
            new  missing-slot:1                          actuator_states
            new  error-field@actuators/status            actuator_states
            new  stuck-off:0                             set_actuator-on-0
            new  stuck-on:0                              set_actuator-off-0
            new  mac-change@info/get,after=2             retrieve_mac_address-again
            new  status:500@config/set,after=1,times=2   setup-with-session-and-retries
            new  status:500@config/set,after=2           restore
            old  ignore-set,after=2                      restored-equal
        ";
        for row in cases.lines().filter(|l| !l.trim().is_empty()) {
            let [firmware, fault, check] = row.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("not a row of three: {row:?}");
            };
            let profile = format!("hub-{firmware}-firmware");
            let client = vegehub_client(&profile, &[fault]);
            failed_at(&client, check, &format!("{profile} with {fault}"));
        }
    }
}

/// The expected hub of `zeroconf_browse.py`: `PORT,MAC,NAME`.
fn hub_arg(port: u16, mac: &str, name: &str) -> String {
    format!("{port},{mac},{name}")
}

fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url:?}"))
}

fn browse(profile_path: &str, hubs: &[String], deadline: &str) -> Output {
    let mut args = vec!["--profile", profile_path, "--deadline", deadline];
    for h in hubs {
        args.extend(["--hub", h.as_str()]);
    }
    compat_run("zeroconf_browse.py", &args, SCRIPT_LIMIT)
}

/// `sim --advertise` of `profile` (plus `extra` arguments) browsed with
/// python-zeroconf, expecting what the fixture `expect` says.
fn browse_one_sim(profile: &str, extra: &[&str], expect: &str) -> Output {
    let mut args = vec!["--advertise", "--profile", profile];
    args.extend_from_slice(extra);
    let sim = SimProcess::start(&args);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(profile_file(profile)).unwrap())
        .expect("profile JSON");
    let hub = hub_arg(
        port_of(&sim.url),
        doc["mac"].as_str().unwrap(),
        doc["name"].as_str().unwrap(),
    );
    let path = fixture(expect);
    let out = browse(path.to_str().unwrap(), &[hub], "8");
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0), "sim exit: {rest:?}");
    out
}

/// A built-in profile name or a path to a profile file.
fn profile_file(profile: &str) -> std::path::PathBuf {
    if profile.ends_with(".json") {
        profile.into()
    } else {
        fixture(profile)
    }
}

netns_test! {
    fn python_zeroconf_resolves_every_advertised_simulated_hub() {
        for profile in [
            "hub-new-firmware",
            "hub-old-firmware",
            "hub-4-relay-ac",
            "hub-battery-sensor",
        ] {
            let out = browse_one_sim(profile, &[], profile);
            let t = passed(&out, "zeroconf-browse");
            for check in ["browse-finds-every-hub", "host-", "port-", "ipv4-", "txt-", "mac-"] {
                assert!(t.contains(&format!("ok {check}")), "{profile}: {check}:\n{t}");
            }
        }
        // Home Assistant's own path: a hub on port 80, found by
        // python-zeroconf, then driven by the vegehub client at the bare
        // address (as HA's config flow does with discovery_info.host).
        let sim = SimProcess::start(&["--advertise", "--bind", "127.0.0.1:80"]);
        let path = fixture("hub-new-firmware");
        let hub = hub_arg(80, "A1:B2:C3:D4:A6:20", "Vege_A6_20");
        passed(&browse(path.to_str().unwrap(), &[hub], "8"), "zeroconf-browse");
        let out = compat_run(
            "vegehub_client.py",
            &["--hub", "127.0.0.1", "--profile", path.to_str().unwrap(), "--deadline", "60"],
            SCRIPT_LIMIT,
        );
        passed(&out, "vegehub-client");
        let (code, rest) = sim.terminate();
        assert_eq!(code, Some(0), "sim exit: {rest:?}");

        // A shelf: one responder for every hub, named after their MACs or
        // numbered after a user-chosen name.
        for (profile, count) in [("hub-new-firmware", 12), ("hub-battery-sensor", 5)] {
            let n = count.to_string();
            let sim = SimProcess::start(&["--advertise", "--count", &n, "--profile", profile]);
            let mut lines = vec![sim.url.clone()];
            for _ in 1..count {
                lines.push(sim.next_line(Duration::from_secs(10)));
            }
            let hubs: Vec<String> = lines
                .iter()
                .map(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    hub_arg(port_of(f[0]), f[2], f[1])
                })
                .collect();
            let path = fixture(profile);
            let t = passed(&browse(path.to_str().unwrap(), &hubs, "15"), "zeroconf-browse");
            assert_eq!(t.matches("\nok txt-agrees-with-info-").count(), count, "{t}");
            let (code, rest) = sim.terminate();
            assert_eq!(code, Some(0), "sim exit: {rest:?}");
        }
    }
}

netns_test! {
    fn python_zeroconf_checks_fail_on_a_wrong_advertisement() {
        let dir = tempfile::tempdir().unwrap();
        let variant = |name: &str, edit: &dyn Fn(&mut Value)| {
            let mut doc: Value =
                serde_json::from_str(&std::fs::read_to_string(fixture("hub-new-firmware")).unwrap())
                    .unwrap();
            edit(&mut doc);
            let path = dir.path().join(name);
            std::fs::write(&path, doc.to_string()).unwrap();
            path.to_str().unwrap().to_string()
        };
        // Not announced at all.
        let sim = SimProcess::start(&["--profile", "hub-new-firmware"]);
        let hub = hub_arg(port_of(&sim.url), "A1:B2:C3:D4:A6:20", "Vege_A6_20");
        let path = fixture("hub-new-firmware");
        failed_at(
            &browse(path.to_str().unwrap(), &[hub], "3"),
            "browse-finds-every-hub",
            "a hub that does not advertise",
        );
        drop(sim);
        // TXT other than a hub of that profile sends (a sensor renamed).
        let renamed = variant("renamed.json", &|d| d["sensors"][1]["name"] = json!("Renamed"));
        failed_at(
            &browse_one_sim(&renamed, &[], "hub-new-firmware"),
            "txt-Vege_A6_20",
            "a sensor name the profile does not have",
        );
        // An instance name that is not the MAC's.
        let misnamed = variant("misnamed.json", &|d| d["name"] = json!("Vege_99_99"));
        failed_at(
            &browse_one_sim(&misnamed, &[], "hub-new-firmware"),
            "mac-Vege_99_99",
            "an instance named after another MAC",
        );
        // TXT says 2 actuators, info/get says 3.
        failed_at(
            &browse_one_sim("hub-new-firmware", &["--fault", "claim-actuators:3"], "hub-new-firmware"),
            "txt-agrees-with-info-Vege_A6_20",
            "info/get disagreeing with the TXT record",
        );
        // A responder announcing the wrong host, the wrong port, no IPv4.
        let sim = SimProcess::start(&["--profile", "hub-new-firmware", "--bind", "127.0.0.1:0"]);
        let port = port_of(&sim.url);
        let txt = hub_txt_new_firmware();
        for (instance, host, announced_port, addrs, check) in [
            ("Vege_A6_20", "Elsewhere.local.", port, vec!["127.0.0.1"], "host-Vege_A6_20"),
            ("Vege_A6_20", "Vege_A6_20.local.", port ^ 1, vec!["127.0.0.1"], "port-Vege_A6_20"),
            ("Vege_A6_20", "Vege_A6_20.local.", port, vec!["::1"], "ipv4-Vege_A6_20"),
        ] {
            let spec = json!([{"instance": instance, "host": host, "port": announced_port,
                               "addresses": addrs, "txt": txt}]);
            let file = dir.path().join("announce.json");
            std::fs::write(&file, spec.to_string()).unwrap();
            let mut responder =
                CompatProcess::start("zeroconf_register.py", &[file.to_str().unwrap()]);
            responder.wait_line("ready", Duration::from_secs(30));
            let hub = hub_arg(port, "A1:B2:C3:D4:A6:20", instance);
            failed_at(&browse(path.to_str().unwrap(), &[hub], "5"), check, check);
            assert_eq!(responder.finish(Duration::from_secs(30)), Some(0));
        }
        drop(sim);
    }
}

/// The TXT record of the `hub-new-firmware` profile, as a real hub sends it.
fn hub_txt_new_firmware() -> Value {
    json!([
        ["version", "5.1.1"],
        ["type", "hub"],
        ["receiver", "/api/vsens/data_in"],
        ["sensors", "2"],
        ["actuators", "2"],
        ["sens_1", "Sensor1"],
        ["sens_2", "Sensor2"],
        ["power_mode", "0"]
    ])
}

/// One hub announced by python-zeroconf, and what `discover --json` must
/// say of it.
struct Announced {
    /// The simulated hub behind it, served on its first address.
    profile: &'static str,
    /// What zeroconf_register.py announces: the instance, its addresses,
    /// its TXT record (and its host when not `<instance>.local.`).
    announce: Value,
    txt: Value,
    typed: Value,
}

impl Announced {
    fn instance(&self) -> &str {
        self.announce["instance"]
            .as_str()
            .expect("an instance name")
    }

    /// The host announced: as given, or zeroconf_register.py's default.
    fn host(&self) -> String {
        match self.announce["host"].as_str() {
            Some(host) => host.to_owned(),
            None => format!("{}.local.", self.instance()),
        }
    }

    fn addresses(&self) -> Vec<&str> {
        let addrs = self.announce["addresses"].as_array().expect("addresses");
        addrs
            .iter()
            .map(|a| a.as_str().expect("an address"))
            .collect()
    }
}

netns_test! {
    fn hubs_announced_by_python_zeroconf_are_discovered_and_tested() {
        let cases = [
            // As a real hub's responder announces it.
            Announced {
                profile: "hub-new-firmware",
                announce: json!({"instance": "Vege_A6_20", "addresses": ["127.0.0.2"],
                                 "txt": hub_txt_new_firmware()}),
                txt: json!({"version": "5.1.1", "type": "hub", "receiver": "/api/vsens/data_in",
                            "sensors": "2", "actuators": "2", "sens_1": "Sensor1",
                            "sens_2": "Sensor2", "power_mode": "0"}),
                typed: json!({"version": "5.1.1", "type": "hub",
                              "receiver": "/api/vsens/data_in", "sensors": 2, "actuators": 2,
                              "sensor_names": ["Sensor1", "Sensor2"], "power_mode": 0}),
            },
            // Names and TXT keys in other case (DNS names and TXT keys
            // compare case-insensitively).
            Announced {
                profile: "hub-old-firmware",
                announce: json!({"instance": "VEGE_1c_07", "host": "vege_1C_07.LOCAL.",
                                 "addresses": ["127.0.0.3"],
                                 "txt": [["Version", "3.4.5"], ["TYPE", "hub"],
                                         ["Receiver", "/api/vsens/data_in"], ["SENSORS", "1"],
                                         ["Actuators", "1"], ["SENS_1", "Sensor1"],
                                         ["Power_Mode", "0"]]}),
                txt: json!({"Version": "3.4.5", "TYPE": "hub", "Receiver": "/api/vsens/data_in",
                            "SENSORS": "1", "Actuators": "1", "SENS_1": "Sensor1",
                            "Power_Mode": "0"}),
                typed: json!({"version": "3.4.5", "type": "hub",
                              "receiver": "/api/vsens/data_in", "sensors": 1, "actuators": 1,
                              "sensor_names": ["Sensor1"], "power_mode": 0}),
            },
            // A user's name in UTF-8 with spaces; TXT values with spaces; a
            // key without a value; no receiver key.
            Announced {
                profile: "hub-battery-sensor",
                announce: json!({"instance": "Gewächshaus Süd 🌱", "addresses": ["127.0.0.4"],
                                 "txt": [["version", "5.1.1"], ["type", "hub"],
                                         ["sensors", "2"], ["actuators", "0"],
                                         ["sens_1", "Soil sensor 1"],
                                         ["sens_2", " Temp  in shade "], ["power_mode", null]]}),
                txt: json!({"version": "5.1.1", "type": "hub", "sensors": "2",
                            "actuators": "0", "sens_1": "Soil sensor 1",
                            "sens_2": " Temp  in shade ", "power_mode": ""}),
                typed: json!({"version": "5.1.1", "type": "hub", "receiver": null,
                              "sensors": 2, "actuators": 0,
                              "sensor_names": ["Soil sensor 1", " Temp  in shade "],
                              "power_mode": null}),
            },
            // An empty TXT record; an IPv6 address beside the IPv4 one.
            Announced {
                profile: "hub-4-relay-ac",
                announce: json!({"instance": "Desk_Relay", "addresses": ["127.0.0.5", "::1"],
                                 "txt": []}),
                txt: json!({}),
                typed: json!({"version": null, "type": null, "receiver": null,
                              "sensors": null, "actuators": null, "sensor_names": [],
                              "power_mode": null}),
            },
            // The service type itself in another case (mdns-sd alone does
            // not see it; discovery's own legacy query does).
            Announced {
                profile: "hub-old-firmware",
                announce: json!({"instance": "Vege_1C_07 Shed", "type": "_VEGE._TCP.local.",
                                 "addresses": ["127.0.0.7"], "txt": [
                                     ["version", "3.4.5"], ["type", "hub"], ["sensors", "1"],
                                     ["actuators", "1"], ["sens_1", "Sensor1"], ["power_mode", "0"]
                                 ]}),
                txt: json!({"version": "3.4.5", "type": "hub", "sensors": "1",
                            "actuators": "1", "sens_1": "Sensor1", "power_mode": "0"}),
                typed: json!({"version": "3.4.5", "type": "hub", "receiver": null,
                              "sensors": 1, "actuators": 1, "sensor_names": ["Sensor1"],
                              "power_mode": 0}),
            },
            // Empty values and keys without values only.
            Announced {
                profile: "hub-new-firmware",
                announce: json!({"instance": "Vege_A6_21 (2)", "addresses": ["127.0.0.6"],
                                 "txt": [["version", ""], ["type", "hub"], ["sensors", ""],
                                         ["actuators", null]]}),
                txt: json!({"version": "", "type": "hub", "sensors": "", "actuators": ""}),
                typed: json!({"version": "", "type": "hub", "receiver": null,
                              "sensors": null, "actuators": null, "sensor_names": [],
                              "power_mode": null}),
            },
        ];
        let mut sims = Vec::new();
        let mut spec = Vec::new();
        for c in &cases {
            let bind = format!("{}:0", c.addresses()[0]);
            let sim = SimProcess::start(&["--profile", c.profile, "--bind", &bind]);
            let mut a = c.announce.clone();
            a["port"] = json!(port_of(&sim.url));
            spec.push(a);
            sims.push(sim);
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("announce.json");
        std::fs::write(&file, Value::Array(spec).to_string()).unwrap();
        let mut responder = CompatProcess::start("zeroconf_register.py", &[file.to_str().unwrap()]);
        responder.wait_line("ready", Duration::from_secs(30));

        let n = cases.len().to_string();
        let out = harness_within(&["discover", "--json", "--expect", &n, "--timeout", "15"], LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).expect("discover --json");
        let hubs = doc["hubs"].as_array().expect("hubs");
        assert_eq!(hubs.len(), cases.len(), "{doc:#}");
        for (c, sim) in cases.iter().zip(&sims) {
            let h = hubs
                .iter()
                .find(|h| h["instance"] == c.instance())
                .unwrap_or_else(|| panic!("{} not discovered: {doc:#}", c.instance()));
            assert_eq!(h["host"], c.host(), "{h:#}");
            assert_eq!(h["port"], port_of(&sim.url), "{h:#}");
            let addrs: Vec<&str> = h["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["ip"].as_str().unwrap())
                .collect();
            assert_eq!(addrs, c.addresses(), "{h:#}");
            assert_eq!(h["txt"], c.txt, "{h:#}");
            assert_eq!(h["hub"], c.typed, "{h:#}");
        }

        // The listing shows each value so that it reads back as sent.
        let out = harness_within(&["discover", "--expect", &n, "--timeout", "15"], LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let listing = String::from_utf8_lossy(&out.stdout);
        for line in [
            "Gewächshaus Süd 🌱",
            "     host       vege_1C_07.LOCAL.:",
            "     sensors    Soil sensor 1, \" Temp  in shade \"",
            "     firmware   5.1.1  type hub  sensors 2  actuators 0  power_mode ?",
            "     firmware   \"\"  type hub  sensors ?  actuators ?  power_mode ?",
            "     firmware   ?  type ?  sensors ?  actuators ?  power_mode ?",
            "     addresses  127.0.0.5, ::1",
        ] {
            assert!(listing.lines().any(|l| l.contains(line)), "{line:?} in:\n{listing}");
        }

        // A harness run finds them and tests each at the address announced.
        let out = harness_within(
            &["--all", "--discover-timeout", "15", "--timeout", "2s"],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for c in &cases {
            // Its summary row: the name announced, the MAC its hub has.
            let mac = profile_mac(c.profile);
            assert!(
                stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(c.instance()) && l.contains(&mac)),
                "{} ({mac}) not tested:\n{}",
                c.instance(),
                text(&out)
            );
        }
        // And one picked by its non-ASCII name.
        let out = harness_within(
            &["mac", "--exact", "--select", "Gewächshaus Süd 🌱", "--discover-timeout", "15"],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let t = text(&out);
        assert!(t.lines().any(|l| l == "test mac ... ok"), "{t}");
        assert!(
            t.lines().any(|l| l.trim_start().starts_with("Gewächshaus Süd 🌱")
                && l.contains(&profile_mac("hub-battery-sensor"))),
            "{t}"
        );

        assert_eq!(responder.finish(Duration::from_secs(30)), Some(0));
        for sim in sims {
            let (code, rest) = sim.terminate();
            assert_eq!(code, Some(0), "sim exit: {rest:?}");
        }
    }
}

/// The MAC of a built-in profile, as the harness writes it (12 upper-case
/// hex digits).
fn profile_mac(profile: &str) -> String {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(profile)).unwrap()).unwrap();
    doc["mac"].as_str().unwrap().replace(':', "")
}
