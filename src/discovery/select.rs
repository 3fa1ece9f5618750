//! Choosing the hubs of a run from a discovery: `--select NAME|MAC|IP`,
//! `--all`, or the technician's answer on a terminal. Never guesses: no
//! hub, an unmatched or ambiguous `--select`, or several hubs without a
//! choice end the run before anything is sent to a hub. Uses `discovery`
//! and `device`; the caller supplies the prompt and how to read a MAC.

use std::future::Future;
use std::net::IpAddr;

use crate::device::normalize_mac;
use crate::discovery::{self, DiscoverOptions, DiscoveredHub, Discovery, DiscoveryError, Progress};

/// What `--select` names. One string may read as several of these (a hub
/// named `A1B2C3D4E5F6`); a hub matching any reading matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    raw: String,
    ip: Option<IpAddr>,
    /// 12 upper-case hex digits.
    mac: Option<String>,
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, SelectError> {
        let raw = s.trim().to_string();
        if raw.is_empty() {
            return Err(SelectError::Usage("--select: empty value".into()));
        }
        // `fe80::1%eth0` is how `discover` prints a scoped address.
        let ip_part = raw.split_once('%').map_or(raw.as_str(), |(ip, _)| ip);
        Ok(Selector {
            ip: ip_part.parse().ok(),
            mac: normalize_mac(&raw),
            raw,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Matches by name or address, without asking the hub anything.
    fn matches_offline(&self, hub: &DiscoveredHub) -> bool {
        let bare = |name: &str| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name.strip_suffix(".local")
                .map_or(name.clone(), str::to_string)
        };
        hub.instance.eq_ignore_ascii_case(&self.raw)
            || bare(&hub.host) == bare(&self.raw)
            || self
                .ip
                .is_some_and(|ip| hub.addresses.iter().any(|a| a.ip == ip))
    }
}

/// The technician at a terminal.
pub trait Prompt {
    /// One hub was found: use it?
    fn confirm(&mut self, hub: &DiscoveredHub) -> bool;
    /// Several were found: the index of the one to use, all of them
    /// (`Pick::All`), or none (`Pick::Abort`).
    fn pick(&mut self, hubs: &[DiscoveredHub]) -> Pick;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    One(usize),
    All,
    Abort,
}

/// How the run asks for its hubs.
pub struct Request<'a> {
    pub select: Option<&'a Selector>,
    pub all: bool,
    /// `Some` only on a terminal; CI never blocks on a prompt.
    pub prompt: Option<&'a mut dyn Prompt>,
}

/// Why no hub was chosen. Each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// Bad `--select` value.
    #[error("{0}")]
    Usage(String),
    /// Nothing found, nothing matched, or no single hub could be chosen.
    #[error("{0}")]
    NoHub(String),
}

/// How a run finds its hubs when none was named on the command line.
pub struct DiscoverPlan {
    pub options: DiscoverOptions,
    pub select: Option<Selector>,
    pub all: bool,
    pub ui: Box<dyn ChooseUi>,
}

impl std::fmt::Debug for DiscoverPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoverPlan")
            .field("options", &self.options)
            .field("select", &self.select)
            .field("all", &self.all)
            .finish_non_exhaustive()
    }
}

/// What the technician (or a CI log) sees while a run finds its hubs. The
/// CLI implements it (spinner, prompts on stderr); the library never prints.
pub trait ChooseUi: Send {
    /// The browse starts.
    fn browsing(&mut self) {}
    /// A hub appeared, changed or left during the browse.
    fn progress(&mut self, _p: &Progress) {}
    /// The browse ended.
    fn browsed(&mut self, _d: &Discovery) {}
    /// The prompt, or `None` when nobody is there to answer.
    fn prompt(&mut self) -> Option<&mut dyn Prompt>;
    /// The hubs the run will use.
    fn chosen(&mut self, _hubs: &[DiscoveredHub]) {}
}

/// Browse, then choose as `plan` says. The mdns-sd daemon is shut down and
/// awaited before this returns (see `discovery::discover`).
pub async fn discover_and_choose<F, Fut>(
    plan: &mut DiscoverPlan,
    mac_of: F,
) -> Result<Vec<DiscoveredHub>, SelectError>
where
    F: Fn(DiscoveredHub) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    plan.ui.browsing();
    let ui = &mut plan.ui;
    let found = discovery::discover(&plan.options, |p| ui.progress(p))
        .await
        .map_err(|e| match e {
            DiscoveryError::UnknownInterface { .. } => SelectError::Usage(e.to_string()),
            DiscoveryError::Mdns(_) => SelectError::NoHub(e.to_string()),
        })?;
    plan.ui.browsed(&found);
    let req = Request {
        select: plan.select.as_ref(),
        all: plan.all,
        prompt: plan.ui.prompt(),
    };
    let hubs = choose(&found, req, mac_of).await?;
    plan.ui.chosen(&hubs);
    Ok(hubs)
}

/// Host and port a run connects to: the hub's first address that can be a
/// hub's (IPv4 when it has one; see `HubAddr::unusable`: never this
/// machine or a multicast group, whatever an answer says). A link-local
/// IPv6 address is useless without its interface scope, which an `http://`
/// URL cannot carry, so a hub known only by one is refused with what to do
/// instead of failing every request.
pub fn target_of(hub: &DiscoveredHub) -> Result<(String, u16), SelectError> {
    target_among(hub, &loopback_interfaces())
}

/// This machine's loopback interfaces, by name (for `HubAddr::unusable`).
pub fn loopback_interfaces() -> Vec<String> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.is_loopback())
        .map(|i| i.name)
        .collect()
}

fn target_among(hub: &DiscoveredHub, loopback: &[String]) -> Result<(String, u16), SelectError> {
    let usable = hub
        .addresses
        .iter()
        .find(|a| a.unusable(loopback).is_none());
    let Some(a) = usable else {
        let refused: Vec<String> = hub
            .addresses
            .iter()
            .filter_map(|a| Some(format!("{} ({})", a.display(), a.unusable(loopback)?)))
            .collect();
        return Err(SelectError::NoHub(if refused.is_empty() {
            format!("{}: no address", hub.instance)
        } else {
            format!(
                "{}: announced no address a hub can have, so nothing was sent to it: {}",
                hub.instance,
                refused.join(", ")
            )
        }));
    };
    match a.ip {
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Err(SelectError::NoHub(format!(
                "{}: only a link-local IPv6 address ({}) answered, and an http URL cannot \
                 carry its interface scope; give the hub's IPv4 address with --device",
                hub.instance,
                a.display()
            )))
        }
        ip => Ok((ip.to_string(), hub.port)),
    }
}

/// One line per hub for lists in messages: `Vege_A6_20 (127.0.0.1:80)`.
/// The instance name is the hub's, as it sent it: escaping for the
/// terminal happens where it is shown (the prompts in `cli::discover`, the
/// error line the harness prints).
pub fn label(hub: &DiscoveredHub) -> String {
    let addr = hub
        .addresses
        .first()
        .map_or_else(|| "no address".to_string(), |a| a.display());
    format!("{} ({}:{})", hub.instance, addr, hub.port)
}

/// What to check when nothing answers; `timeout_flag` is the browse's
/// own flag (`--timeout` for `discover`, `--discover-timeout` for a run).
pub fn no_hub_hint(timeout_flag: &str) -> String {
    format!(
        "Is this machine on the hubs' network (same Wi-Fi/LAN, no guest isolation)? Is \
         multicast UDP 5353 blocked by a firewall? Try a longer {timeout_flag}, --interface \
         NAME, or name the hub with --device HOST."
    )
}

fn listing(hubs: &[DiscoveredHub]) -> String {
    hubs.iter()
        .enumerate()
        .map(|(i, h)| format!("  {}. {}", i + 1, label(h)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Choose the hubs of a run. `mac_of` reads a hub's MAC (its `info/get`);
/// it is called only when `--select` reads as a MAC and no name or address
/// matched.
///
/// An entry that is really two hubs sharing one name on two interfaces is
/// never used, however it was chosen: mdns-sd merges them into one record
/// whose port and TXT come from one hub and whose addresses from both, so
/// no address of it can be trusted with that port. `--interface` browses
/// one link and sees one hub.
pub async fn choose<F, Fut>(
    found: &Discovery,
    req: Request<'_>,
    mac_of: F,
) -> Result<Vec<DiscoveredHub>, SelectError>
where
    F: Fn(DiscoveredHub) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let hubs = &found.hubs;
    if hubs.is_empty() {
        return Err(SelectError::NoHub(format!(
            "no hub found on the network in {:.1} s. {}",
            found.elapsed.as_secs_f64(),
            no_hub_hint("--discover-timeout")
        )));
    }
    let hubs = match req.select {
        Some(sel) => vec![by_selector(hubs, sel, mac_of).await?],
        None if req.all => hubs.clone(),
        None => unselected(hubs, req.prompt)?,
    };
    match hubs.iter().find_map(|h| h.name_conflict()) {
        Some(conflict) => Err(SelectError::NoHub(format!(
            "{conflict}: two hubs share that name, and which address goes with which port \
             is unknown; browse one link with --interface NAME"
        ))),
        None => Ok(hubs),
    }
}

/// Without --select or --all: the one hub found (confirmed on a
/// terminal), or the terminal's pick among several.
fn unselected(
    hubs: &[DiscoveredHub],
    prompt: Option<&mut dyn Prompt>,
) -> Result<Vec<DiscoveredHub>, SelectError> {
    match (hubs.len(), prompt) {
        (1, None) => Ok(hubs.to_vec()),
        (1, Some(p)) => {
            if p.confirm(&hubs[0]) {
                Ok(hubs.to_vec())
            } else {
                Err(SelectError::NoHub(format!(
                    "{} not confirmed; nothing run",
                    label(&hubs[0])
                )))
            }
        }
        (n, Some(p)) => match p.pick(hubs) {
            Pick::One(i) if i < n => Ok(vec![hubs[i].clone()]),
            Pick::All => Ok(hubs.to_vec()),
            Pick::One(_) | Pick::Abort => {
                Err(SelectError::NoHub("no hub picked; nothing run".into()))
            }
        },
        (n, None) => Err(SelectError::NoHub(format!(
            "{n} hubs found; say which with --select NAME|MAC|IP or --all:\n{}",
            listing(hubs)
        ))),
    }
}

async fn by_selector<F, Fut>(
    hubs: &[DiscoveredHub],
    sel: &Selector,
    mac_of: F,
) -> Result<DiscoveredHub, SelectError>
where
    F: Fn(DiscoveredHub) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let mut matched: Vec<&DiscoveredHub> = hubs.iter().filter(|h| sel.matches_offline(h)).collect();
    let mut unread = Vec::new();
    if let Some(mac) = &sel.mac {
        // Only the hub knows its whole MAC; ask every hub not matched yet.
        for h in hubs.iter().filter(|h| !sel.matches_offline(h)) {
            match mac_of(h.clone()).await {
                Some(m) if normalize_mac(&m).as_deref() == Some(mac.as_str()) => matched.push(h),
                Some(_) => {}
                None => unread.push(h.instance.clone()),
            }
        }
    }
    match matched.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let mut msg = format!(
                "--select {} matches none of the {} {} found:\n{}",
                sel.as_str(),
                hubs.len(),
                if hubs.len() == 1 { "hub" } else { "hubs" },
                listing(hubs)
            );
            if !unread.is_empty() {
                msg.push_str(&format!(
                    "\n(could not read the MAC of: {})",
                    unread.join(", ")
                ));
            }
            Err(SelectError::NoHub(msg))
        }
        many => {
            let owned: Vec<DiscoveredHub> = many.iter().map(|h| (*h).clone()).collect();
            Err(SelectError::NoHub(format!(
                "--select {} is ambiguous: it matches {} hubs:\n{}",
                sel.as_str(),
                many.len(),
                listing(&owned)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device::mdns::HubTxt;
    use crate::discovery::{HubAddr, StopReason};

    fn hub(instance: &str, ips: &[(&str, &str)]) -> DiscoveredHub {
        DiscoveredHub {
            instance: instance.into(),
            fullname: format!("{instance}._vege._tcp.local."),
            host: format!("{instance}.local."),
            port: 80,
            addresses: ips
                .iter()
                .map(|(ip, intf)| HubAddr {
                    ip: ip.parse().unwrap(),
                    interfaces: vec![intf.to_string()],
                    scope_id: 0,
                })
                .collect(),
            txt: vec![],
            hub_txt: HubTxt::default(),
            resolved_after: Duration::from_millis(40),
        }
    }

    fn found(hubs: Vec<DiscoveredHub>) -> Discovery {
        Discovery {
            hubs,
            stopped: StopReason::Quiet,
            elapsed: Duration::from_millis(1300),
        }
    }

    fn three() -> Discovery {
        found(vec![
            hub("Desk_Temp_Soil", &[("127.0.0.11", "eth0")]),
            hub("Vege_A6_20", &[("127.0.0.12", "eth0")]),
            hub("Vege_B7_31", &[("127.0.0.13", "eth0")]),
        ])
    }

    /// MACs the simulated hubs report: `..:A6:20` and `..:B7:31`; the
    /// user-named hub's MAC cannot be read.
    async fn mac_of(h: DiscoveredHub) -> Option<String> {
        match h.instance.as_str() {
            "Vege_A6_20" => Some("02:00:00:00:A6:20".into()),
            "Vege_B7_31" => Some("02:00:00:00:B7:31".into()),
            _ => None,
        }
    }

    fn req(select: Option<&Selector>) -> Request<'_> {
        Request {
            select,
            all: false,
            prompt: None,
        }
    }

    async fn pick(d: &Discovery, s: &str) -> Result<Vec<String>, SelectError> {
        let sel = Selector::parse(s)?;
        choose(d, req(Some(&sel)), mac_of)
            .await
            .map(|hs| hs.into_iter().map(|h| h.instance).collect())
    }

    #[tokio::test]
    async fn select_by_name_mac_in_any_notation_and_address() {
        let d = three();
        assert_eq!(
            pick(&d, "desk_temp_soil").await.unwrap(),
            ["Desk_Temp_Soil"]
        );
        assert_eq!(pick(&d, "Vege_A6_20.local").await.unwrap(), ["Vege_A6_20"]);
        for mac in [
            "02:00:00:00:B7:31",
            "02-00-00-00-b7-31",
            "0200.0000.b731",
            "02000000B731",
        ] {
            assert_eq!(pick(&d, mac).await.unwrap(), ["Vege_B7_31"], "{mac}");
        }
        assert_eq!(pick(&d, "127.0.0.12").await.unwrap(), ["Vege_A6_20"]);
    }

    #[tokio::test]
    async fn unmatched_select_lists_what_was_found() {
        let e = pick(&three(), "02:00:00:00:FF:FF").await.unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SelectError::NoHub(_)));
        assert!(msg.starts_with("--select 02:00:00:00:FF:FF matches none of the 3 hubs found"));
        assert!(msg.contains("3. Vege_B7_31 (127.0.0.13:80)"), "{msg}");
        assert!(
            msg.contains("could not read the MAC of: Desk_Temp_Soil"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn ambiguous_select_is_refused() {
        // A hub whose user-chosen name reads as another hub's MAC.
        let mut d = three();
        d.hubs.push(hub("02000000A620", &[("127.0.0.14", "eth0")]));
        let msg = pick(&d, "02000000A620").await.unwrap_err().to_string();
        assert!(msg.contains("is ambiguous: it matches 2 hubs"), "{msg}");
        assert!(
            msg.contains("Vege_A6_20") && msg.contains("02000000A620"),
            "{msg}"
        );

        // Two hubs with one name on two interfaces: nothing can choose one
        // of them from the merged record, not even an address.
        let twin = found(vec![hub(
            "Desk",
            &[("127.0.0.21", "eth0"), ("127.0.0.22", "eth1")],
        )]);
        for by in ["Desk", "127.0.0.22"] {
            let msg = pick(&twin, by).await.unwrap_err().to_string();
            assert!(msg.contains("two hubs share that name"), "{msg}");
            assert!(msg.contains("--interface"), "{msg}");
        }
        let one = choose(&twin, req(None), mac_of).await.unwrap_err();
        assert!(one.to_string().contains("--interface"), "{one}");
    }

    #[tokio::test]
    async fn none_found_is_no_hub_with_a_hint() {
        let e = choose(&found(vec![]), req(None), mac_of).await.unwrap_err();
        assert!(matches!(e, SelectError::NoHub(_)));
        let msg = e.to_string();
        assert!(
            msg.starts_with("no hub found on the network in 1.3 s."),
            "{msg}"
        );
        assert!(msg.contains("--device"), "{msg}");
    }

    #[tokio::test]
    async fn several_without_a_choice_lists_them_and_refuses() {
        let e = choose(&three(), req(None), mac_of).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("3 hubs found; say which with --select"),
            "{msg}"
        );
        assert!(msg.contains("1. Desk_Temp_Soil (127.0.0.11:80)"), "{msg}");
        let all = choose(
            &three(),
            Request {
                select: None,
                all: true,
                prompt: None,
            },
            mac_of,
        )
        .await
        .unwrap();
        assert_eq!(all.len(), 3);
    }

    #[tokio::test]
    async fn one_hub_is_used_without_asking_off_a_terminal() {
        let d = found(vec![hub("Vege_A6_20", &[("127.0.0.12", "eth0")])]);
        assert_eq!(choose(&d, req(None), mac_of).await.unwrap().len(), 1);
    }

    struct Scripted {
        confirm: bool,
        pick: Pick,
        asked: Vec<String>,
    }

    impl Prompt for Scripted {
        fn confirm(&mut self, hub: &DiscoveredHub) -> bool {
            self.asked.push(format!("confirm {}", hub.instance));
            self.confirm
        }
        fn pick(&mut self, hubs: &[DiscoveredHub]) -> Pick {
            self.asked.push(format!("pick of {}", hubs.len()));
            self.pick
        }
    }

    /// What `choose` makes of `found` when a terminal answers as scripted
    /// (`confirm` for one hub, `pick` among several), and what was asked.
    async fn ask(
        found: &Discovery,
        confirm: bool,
        pick: Pick,
    ) -> (Result<Vec<DiscoveredHub>, SelectError>, Vec<String>) {
        let mut p = Scripted {
            confirm,
            pick,
            asked: vec![],
        };
        let r = choose(
            found,
            Request {
                select: None,
                all: false,
                prompt: Some(&mut p),
            },
            mac_of,
        )
        .await;
        (r, p.asked)
    }

    #[tokio::test]
    async fn a_terminal_confirms_one_and_picks_among_several() {
        let one = found(vec![hub("Vege_A6_20", &[("127.0.0.12", "eth0")])]);
        for (answer, ok) in [(true, true), (false, false)] {
            let (r, asked) = ask(&one, answer, Pick::Abort).await;
            assert_eq!(r.is_ok(), ok);
            assert_eq!(asked, ["confirm Vege_A6_20"]);
        }
        for (answer, want) in [
            (Pick::One(1), Some(vec!["Vege_A6_20"])),
            (
                Pick::All,
                Some(vec!["Desk_Temp_Soil", "Vege_A6_20", "Vege_B7_31"]),
            ),
            (Pick::One(7), None),
            (Pick::Abort, None),
        ] {
            let (r, _) = ask(&three(), false, answer).await;
            let got = r
                .ok()
                .map(|hs| hs.into_iter().map(|h| h.instance).collect::<Vec<_>>());
            assert_eq!(got, want.map(|w| w.into_iter().map(String::from).collect()));
        }
    }

    #[test]
    fn a_run_reaches_a_hub_at_its_first_address_that_can_be_a_hub() {
        const NONE: &str = "announced no address a hub can have";
        // Announced addresses (with the interface each was learnt on), and
        // the target, or what the refusal names.
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<&'a str, [&'a str; 2]>);
        let cases: [Case; 13] = [
            (
                &[("127.0.0.12", "lo"), ("fe80::1", "eth0")],
                Ok("127.0.0.12"),
            ),
            (&[("::1", "lo")], Ok("::1")),
            // An address that cannot be a hub's is skipped for one that can.
            (&[("0.0.0.0", "lo"), ("127.0.0.7", "lo")], Ok("127.0.0.7")),
            (&[("fe80::1", "eth0")], Err(["fe80::1%eth0", "--device"])),
            (&[("0.0.0.0", "lo")], Err([NONE, "unspecified"])),
            (&[("::", "lo")], Err([NONE, "unspecified"])),
            (&[("::ffff:0.0.0.0", "lo")], Err([NONE, "unspecified"])),
            (&[("224.0.0.251", "lo")], Err([NONE, "multicast"])),
            (&[("ff02::fb", "lo")], Err([NONE, "multicast"])),
            (&[("255.255.255.255", "lo")], Err([NONE, "broadcast"])),
            // No other host is on this machine's loopback.
            (&[("127.0.0.1", "eth0")], Err([NONE, "another link"])),
            (&[("::1", "eth0")], Err([NONE, "another link"])),
            (&[("::ffff:127.0.0.1", "eth0")], Err([NONE, "another link"])),
        ];
        // A responder on this machine (a simulator) is heard on the
        // loopback as well as on its other links: its loopback address is
        // this machine's, as it says.
        let mut local = hub("Sim", &[("127.0.0.1", "eth0")]);
        local.addresses[0].interfaces.push("lo".into());
        let lo = ["lo".to_string()];
        assert_eq!(
            target_among(&local, &lo).unwrap(),
            ("127.0.0.1".to_string(), 80)
        );
        for (ips, want) in cases {
            let got = target_among(&hub("Vege_A6_20", ips), &lo);
            match (got, want) {
                (Ok(target), Ok(ip)) => assert_eq!(target, (ip.to_string(), 80), "{ips:?}"),
                (Err(e), Err(needles)) => {
                    let msg = e.to_string();
                    assert!(needles.iter().all(|n| msg.contains(n)), "{ips:?}: {msg}");
                }
                (got, _) => panic!("{ips:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn empty_select_is_a_usage_error() {
        assert!(matches!(Selector::parse("  "), Err(SelectError::Usage(_))));
    }
}
