//! Consent before a real hub is changed. Nothing is written to a real hub
//! unless a flag names the change (`--write-config`, `--actuators`,
//! `--setup`) or a person at the terminal agreed to it for that hub. The
//! questions come after the hubs are known and only for changes that will
//! run (the filter selects the scenario and the plan allows it): one per
//! hub and kind of change, naming the hub (name, MAC, address, relays) and
//! what will happen. Anything but yes/no is asked again; `all`/`none`
//! answer for every hub at once. Without a terminal nothing is asked.
//! [`ask_consent`] is the run's phase that asks, through `report::term`.

use crate::scenario::actuators::Slots;
use crate::scenario::{Options, Permission, Scenario};
use crate::session::client::HubClient;

use super::targets::Hub;
use super::RunConfig;

/// A kind of change a scenario makes to a hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// `config-round-trip`: the config written back unchanged.
    ConfigWrite,
    /// `actuators`: relays switched on and off.
    Actuators,
    /// `setup`: test settings written, then the original restored.
    Setup,
}

impl Change {
    /// The flag that allows it without a question.
    pub fn flag(self) -> &'static str {
        match self {
            Change::ConfigWrite => "--write-config",
            Change::Actuators => "--actuators",
            Change::Setup => "--setup",
        }
    }

    /// The scenario that makes this change.
    pub fn of(s: crate::scenario::Scenario) -> Option<Change> {
        use crate::scenario::Scenario;
        match s {
            Scenario::ConfigRoundTrip => Some(Change::ConfigWrite),
            Scenario::Actuators => Some(Change::Actuators),
            Scenario::Setup => Some(Change::Setup),
            _ => None,
        }
    }

    /// The skip reason when it is not allowed.
    pub fn not_enabled(self) -> String {
        format!("not enabled ({})", self.flag())
    }

    /// What will happen to the hub, given the scenario's options.
    pub fn what_happens(self, o: &Options, relays: Option<u32>) -> String {
        match self {
            Change::ConfigWrite => {
                "config-round-trip will write its config back unchanged and read it back \
                 (a backup is taken first)"
                    .to_owned()
            }
            Change::Actuators => {
                let a = &o.actuator_params;
                let which = match (&a.slots, relays) {
                    (Slots::List(l), _) => format!("relay slot(s) {l:?}"),
                    (Slots::All, Some(n)) => format!("each of its {n} relay(s)"),
                    (Slots::All, None) => "each of its relays".to_owned(),
                };
                let auto = if a.auto_off_check {
                    format!(
                        ", then one on for {} s to check it switches itself off",
                        a.auto_off_seconds
                    )
                } else {
                    String::new()
                };
                format!(
                    "actuators will switch {which} on for {} s and off{auto}; pumps and valves \
                     attached will run (every on ends by itself within {} s)",
                    a.on_seconds,
                    o.safety.max_on.seconds()
                )
            }
            Change::Setup => {
                let after = if o.setup_params.restore {
                    "then restore the original config and verify it"
                } else {
                    "and LEAVE them (the plan says restore: false)"
                };
                format!(
                    "setup will write a test API key and server ({}) to its config, verify \
                     them, {after} (a backup is taken first)",
                    o.setup_params.test_server_url
                )
            }
        }
    }
}

/// Who the hub is, for a question: read-only facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubId {
    pub name: Option<String>,
    pub mac: Option<String>,
    pub address: String,
    pub relays: Option<u32>,
}

impl HubId {
    /// Its name, else its MAC, else its address.
    pub fn short(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.mac.clone())
            .unwrap_or_else(|| self.address.clone())
    }

    /// `Vege_A6_20 (MAC A1B2C3D4A620, 127.0.0.1:8080, 2 relays)`; a hub
    /// without a name: `A1B2C3D4A620 (no name, 127.0.0.1:8080, 2 relays)`.
    pub fn describe(&self) -> String {
        let relays = match self.relays {
            Some(1) => "1 relay".to_owned(),
            Some(n) => format!("{n} relays"),
            None => "relays unknown".to_owned(),
        };
        let mac = self.mac.as_deref().unwrap_or("unknown");
        match &self.name {
            Some(n) => format!("{n} (MAC {mac}, {}, {relays})", self.address),
            None => format!("{} (no name, {}, {relays})", self.short(), self.address),
        }
    }
}

/// Read who a hub is without changing anything (`info/get` hub and wifi,
/// `config/get` for its name when discovery did not give one).
pub async fn identify(client: &HubClient, known_name: Option<String>) -> HubId {
    let mut id = HubId {
        name: known_name,
        address: client.hub().to_owned(),
        ..HubId::default()
    };
    if let Ok(info) = client.info(&["hub", "wifi"]).await {
        id.relays = info.hub.as_ref().map(|h| h.num_actuators);
        id.mac = info
            .wifi
            .and_then(|w| crate::device::Mac::parse(&w.mac_addr))
            .map(|m| m.as_str().to_owned());
    }
    if id.name.is_none() {
        if let Ok(cfg) = client.config_get().await {
            id.name = cfg
                .doc
                .pointer("/hub/name")
                .and_then(|v| v.as_str())
                .map(|n| crate::report::escape::escape_short(n, 64))
                .filter(|n| !n.is_empty());
        }
    }
    id
}

/// An answer to one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Yes to this kind of change on every hub.
    All,
    /// No to this kind of change on every hub.
    None,
}

/// Read an answer; `None` for anything that is not one (asked again).
pub fn parse_answer(s: &str) -> Option<Answer> {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(Answer::Yes),
        "n" | "no" => Some(Answer::No),
        "a" | "all" => Some(Answer::All),
        "none" => Some(Answer::None),
        _ => None,
    }
}

/// One question to a person, and the answers for every hub so far.
pub struct Asker<'a> {
    /// Reads one line after showing the prompt; `None` at end of input.
    pub ask: &'a mut dyn FnMut(&str) -> Option<String>,
    /// Shows a note (the hub and what will happen).
    pub say: &'a mut dyn FnMut(&str),
    /// Kinds answered for every hub.
    decided: std::collections::HashMap<Change, bool>,
    /// Input ended: everything still open is no.
    closed: bool,
}

impl<'a> Asker<'a> {
    pub fn new(
        ask: &'a mut dyn FnMut(&str) -> Option<String>,
        say: &'a mut dyn FnMut(&str),
    ) -> Self {
        Asker {
            ask,
            say,
            decided: Default::default(),
            closed: false,
        }
    }

    /// Whether `change` is answered for every hub already (`all`/`none`, or
    /// the input ended): no question, so the hub need not be identified.
    pub fn settled(&self, change: Change) -> bool {
        self.closed || self.decided.contains_key(&change)
    }

    /// Ask whether `change` may run on this hub.
    pub fn allow(&mut self, hub: &HubId, change: Change, what: &str) -> bool {
        if let Some(&d) = self.decided.get(&change) {
            return d;
        }
        if self.closed {
            return false;
        }
        (self.say)(&format!("\n{}:\n  {what}.", hub.describe()));
        let question = format!(
            "Allow this on {}? [y]es, [n]o, [a]ll hubs, none: ",
            hub.short()
        );
        loop {
            let Some(line) = (self.ask)(&question) else {
                self.closed = true;
                (self.say)("(no answer: not allowed)");
                return false;
            };
            match parse_answer(&line) {
                Some(Answer::Yes) => return true,
                Some(Answer::No) => return false,
                Some(Answer::All) => {
                    self.decided.insert(change, true);
                    return true;
                }
                Some(Answer::None) => {
                    self.decided.insert(change, false);
                    return false;
                }
                None => (self.say)(&format!(
                    "{line:?} is not an answer: type y (yes), n (no), a (yes on every hub) or none (no on every hub)"
                )),
            }
        }
    }
}

/// Ask, per real hub and kind of change that will run on it and that no
/// flag allowed, whether it may run; a yes lifts that hub's denial.
pub(super) fn ask_consent(
    runtime: &tokio::runtime::Runtime,
    hubs: &mut [Hub],
    expected: &[Vec<Scenario>],
    cfg: &RunConfig,
) {
    // A Ctrl-C at a question ends the questions (everything left is no)
    // and the run stops as usual.
    let interrupt = cfg.safety.interrupt.clone();
    let mut ask = |q: &str| crate::report::term::ask(q, &|| interrupt.is_interrupted());
    let mut say = |s: &str| crate::report::term::err(s);
    let mut asker = Asker::new(&mut ask, &mut say);
    for (hub, expected) in hubs.iter_mut().zip(expected) {
        if !hub.real {
            continue;
        }
        let pending: Vec<(Change, &crate::plan::Step)> = expected
            .iter()
            .filter_map(|&s| {
                let change = Change::of(s)?;
                let step = cfg.plan.steps.iter().find(|st| st.scenario() == s)?;
                let denied = match change {
                    Change::ConfigWrite => &hub.options.config_write,
                    Change::Actuators => &hub.options.actuators,
                    Change::Setup => &hub.options.setup,
                };
                (step.denied_by_plan().is_none() && *denied != Permission::Allowed)
                    .then_some((change, step))
            })
            .collect();
        if pending.is_empty() {
            continue;
        }
        let id = if pending.iter().all(|(c, _)| asker.settled(*c)) {
            HubId::default()
        } else {
            hub.ledger.set_scenario(&hub.label, Some("identify"));
            let id = runtime.block_on(identify(&hub.client, hub.name.clone()));
            hub.ledger.set_scenario(&hub.label, None);
            id
        };
        for (change, step) in pending {
            // A hub that says it has no relays gets no question about
            // switching them: the scenario skips it ("hub has no actuators").
            if change == Change::Actuators && id.relays == Some(0) {
                continue;
            }
            let o = step.options(&hub.options);
            let what = change.what_happens(&o, id.relays);
            if asker.allow(&id, change, &what) {
                let p = match change {
                    Change::ConfigWrite => &mut hub.options.config_write,
                    Change::Actuators => &mut hub.options.actuators,
                    Change::Setup => &mut hub.options.setup,
                };
                *p = Permission::Allowed;
            } else {
                let p = match change {
                    Change::ConfigWrite => &mut hub.options.config_write,
                    Change::Actuators => &mut hub.options.actuators,
                    Change::Setup => &mut hub.options.setup,
                };
                *p = Permission::Denied(format!(
                    "not allowed at the prompt ({} allows it)",
                    change.flag()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_yes_no_all_none_and_nothing_else() {
        assert_eq!(parse_answer(" Y "), Some(Answer::Yes));
        assert_eq!(parse_answer("no"), Some(Answer::No));
        assert_eq!(parse_answer("ALL"), Some(Answer::All));
        assert_eq!(parse_answer("none"), Some(Answer::None));
        for bad in ["", "yes please", "x", "1", "nope"] {
            assert_eq!(parse_answer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_bad_answer_is_asked_again_and_all_answers_for_later_hubs() {
        let mut lines = vec!["yes please", "", "all"].into_iter();
        let mut asked = Vec::new();
        let mut said = Vec::new();
        let mut ask = |q: &str| {
            asked.push(q.to_owned());
            lines.next().map(str::to_owned)
        };
        let mut say = |s: &str| said.push(s.to_owned());
        let mut a = Asker::new(&mut ask, &mut say);
        let hub = HubId {
            name: None,
            mac: Some("A1B2C3D4A620".into()),
            address: "127.0.0.1:8080".into(),
            relays: Some(2),
        };
        assert!(a.allow(&hub, Change::Actuators, "actuators will switch"));
        // Decided for every hub: no question for the second one.
        assert!(a.allow(&hub, Change::Actuators, "actuators will switch"));
        // Input ended: everything else is no.
        assert!(!a.allow(&hub, Change::Setup, "setup will write"));
        drop(a);
        assert_eq!(asked.len(), 4, "{asked:?}");
        assert!(
            asked[0].starts_with("Allow this on A1B2C3D4A620?"),
            "{asked:?}"
        );
        assert!(said[0].contains("A1B2C3D4A620 (no name, 127.0.0.1:8080, 2 relays):"));
        assert!(said
            .iter()
            .any(|s| s.contains("\"yes please\" is not an answer")));
    }
}
