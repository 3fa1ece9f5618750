//! The hub as an adversary on mDNS, each test in a network namespace of
//! its own: announcements are untrusted input too. A responder announcing
//! a port of 0, a TXT record too big for a packet, a thousand instances, or
//! one instance whose port keeps changing, never makes the harness hang,
//! panic or grow without bound; one announcing an address that means this
//! machine (0.0.0.0, or 127.0.0.1 from another link) or many (multicast,
//! broadcast) is refused before any connection.

use vegehub_harness::sim::advertise::{Advertiser, Responder};

use crate::common::mdns_raw::{RawHub, RawResponder};
use crate::common::{advertisement as ad, harness, harness_within, text, FAST};
use crate::netns_test;

netns_test! {
    fn a_hub_announcing_port_0_is_unreachable_not_a_hang() {
        let adv = Advertiser::register(&ad("02:00:00:00:0A:01", "Port_Zero", 0)).unwrap();
        let mut args = vec!["--select", "Port_Zero", "--discover-timeout", "3"];
        args.extend_from_slice(FAST);
        let o = harness(&args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(4), "{out}");
        assert!(!out.contains("panicked"), "{out}");
        adv.shutdown().unwrap();
    }
}

netns_test! {
    fn a_txt_record_too_big_for_a_packet_does_not_stop_the_browse() {
        // 1000 sensor names of 64 bytes: about 64 KiB of TXT.
        let mut big = ad("02:00:00:00:0A:02", "Big_Txt", 8080);
        big.sensors = (0..1000).map(|i| format!("{i:04}{}", "s".repeat(60))).collect();
        let big = Advertiser::register(&big);
        let fine = Advertiser::register(&ad("02:00:00:00:0A:03", "Fine_Hub", 8080)).unwrap();
        let o = harness(&["discover", "--json", "--timeout", "3"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("Fine_Hub"), "{out}");
        assert!(!out.contains("panicked"), "{out}");
        assert!(o.stdout.len() < 256 * 1024, "{} bytes of output", o.stdout.len());
        fine.shutdown().unwrap();
        if let Ok(big) = big {
            big.shutdown().unwrap();
        }
    }
}

netns_test! {
    fn a_thousand_instances_stop_the_browse_at_the_bound() {
        let responder = Responder::new().unwrap();
        let hubs: Vec<Advertiser> = (0..1000u32)
            .map(|i| {
                let mac = format!("02:00:00:01:{:02X}:{:02X}", i / 256, i % 256);
                let a = ad(&mac, &format!("Many_{i:04}"), 8080);
                Advertiser::register_on(&responder, &a).unwrap()
            })
            .collect();
        let o = harness_within(
            &["discover", "--json", "--timeout", "20"],
            std::time::Duration::from_secs(60),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["stopped"], "too_many", "{}", doc["stopped"]);
        assert_eq!(
            doc["hubs"].as_array().unwrap().len(),
            vegehub_harness::discovery::MAX_HUBS
        );
        for h in hubs {
            h.shutdown().unwrap();
        }
        responder.shutdown().unwrap();
    }
}

netns_test! {
    fn one_instance_changing_its_port_is_one_hub() {
        let mut a = ad("02:00:00:00:0A:04", "Restless", 8080);
        let mut adv = Advertiser::register(&a).unwrap();
        let child = std::process::Command::new(crate::common::BIN)
            .args(["discover", "--json", "--timeout", "3"])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        for port in 8081..8131 {
            a.port = port;
            adv.reannounce(&a).unwrap();
        }
        let o = crate::common::output_within(child, std::time::Duration::from_secs(60), "discover");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let hubs = doc["hubs"].as_array().unwrap();
        assert_eq!(hubs.len(), 1, "{doc}");
        let port = hubs[0]["port"].as_u64().unwrap();
        assert!((8080..8131).contains(&port), "{doc}");
        adv.shutdown().unwrap();
    }
}

netns_test! {
    fn an_announced_address_of_this_machine_or_many_is_refused_before_connecting() {
        // Something listens on every address of this namespace: a hub
        // announcing 0.0.0.0 (which a connect takes as this machine) must
        // not reach it, nor may a multicast or broadcast address be tried.
        let local = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        local.set_nonblocking(true).unwrap();
        let port = local.local_addr().unwrap().port();
        let cases = [
            ("Unspecified", "0.0.0.0"),
            ("Group", "224.0.0.251"),
            ("Everyone", "255.255.255.255"),
        ];
        let _responder = RawResponder::start(
            cases
                .iter()
                .map(|(instance, ip)| RawHub {
                    instance,
                    host: "elsewhere.example.com",
                    ips: vec![ip.parse().unwrap()],
                    port,
                })
                .collect(),
        );
        let o = harness(&["discover", "--expect", "3", "--timeout", "5"]);
        let listing = text(&o);
        assert_eq!(o.status.code(), Some(0), "{listing}");
        for (_, ip) in cases {
            assert!(listing.contains(&format!("{ip} (never contacted: ")), "{listing}");
        }
        // `--json` says so too, for scripts: each address's `refused`.
        let o = harness(&["discover", "--json", "--expect", "3", "--timeout", "5"]);
        let doc: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        let refused: Vec<(&str, bool)> = doc["hubs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["addresses"].as_array().unwrap())
            .map(|a| (a["ip"].as_str().unwrap(), a["refused"].is_string()))
            .collect();
        assert_eq!(refused.len(), cases.len(), "{doc}");
        assert!(refused.iter().all(|&(_, r)| r), "{doc}");
        for (instance, ip) in cases {
            let mut args = vec!["--select", instance, "--discover-timeout", "3"];
            args.extend_from_slice(FAST);
            let o = harness(&args);
            let out = text(&o);
            assert_eq!(o.status.code(), Some(4), "{instance}:\n{out}");
            assert!(
                out.contains(&format!("{instance}: announced no address a hub can have"))
                    && out.contains(ip),
                "{instance}:\n{out}"
            );
            assert!(!out.contains("cannot connect"), "{instance}: tried:\n{out}");
        }
        assert!(
            matches!(local.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a connection reached this machine's listener"
        );
    }
}

netns_test! {
    fn a_loopback_address_announced_from_another_link_is_refused() {
        use crate::common::netns::{Veth, HOST_ADDR};
        use std::io::BufRead;
        // The harness runs in the far namespace, started once this side
        // answers; from here, over the link, "Remote" announces 127.0.0.1:
        // the far side's own loopback, where no hub of this link can be.
        let script = "read go && \"$0\" --select Remote --discover-timeout 3 \
                      --timeout 1s --exact mac 2>&1; echo exit $?";
        let (mut veth, out) = Veth::spawn(&["sh", "-c", script, crate::common::BIN]);
        let _responder = RawResponder::start_on(
            HOST_ADDR.parse().unwrap(),
            vec![RawHub {
                instance: "Remote",
                host: "remote.local",
                ips: vec!["127.0.0.1".parse().unwrap()],
                port: 80,
            }],
        );
        veth.send_line("go");
        let text: Vec<String> = out.lines().map_while(Result::ok).collect();
        let text = text.join("\n");
        veth.wait();
        assert!(text.ends_with("exit 4"), "{text}");
        assert!(
            text.contains("Remote: announced no address a hub can have")
                && text.contains("127.0.0.1 (a loopback address announced from another link"),
            "{text}"
        );
    }
}
