//! What the run has learnt about one hub: identity for the summary, and the
//! facts later scenarios depend on (actuator count, firmware generation).

use crate::device::{Generation, HubSection, Mac, WifiSection};

/// A fact that a scenario gathers: not yet asked, known, or asking failed
/// (dependents skip with the reason instead of piling up timeouts).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Gathered<T> {
    #[default]
    NotYet,
    Known(T),
    Failed(String),
}

impl<T> Gathered<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Gathered::Known(t) => Some(t),
            _ => None,
        }
    }
}

/// The `hub` and `wifi` sections of `info/get`.
#[derive(Debug, Clone, PartialEq)]
pub struct HubInfo {
    pub hub: HubSection,
    pub wifi: WifiSection,
}

impl HubInfo {
    /// `AC` or `battery`, from `is_ac`.
    pub fn power_source(&self) -> &'static str {
        if self.hub.is_ac != 0 {
            "AC"
        } else {
            "battery"
        }
    }
}

/// Everything known about one hub so far.
#[derive(Debug, Clone, Default)]
pub struct HubFacts {
    /// Name the hub goes by (simulator profile, mDNS instance, or config
    /// `hub.name`), when known.
    pub name: Option<String>,
    pub mac: Option<Mac>,
    pub info: Gathered<HubInfo>,
    pub generation: Option<Generation>,
}

impl HubFacts {
    /// Keep an info answer, and the MAC it carries.
    pub fn record_info(&mut self, info: &HubInfo) {
        if self.mac.is_none() {
            self.mac = Mac::parse(&info.wifi.mac_addr);
        }
        self.info = Gathered::Known(info.clone());
    }

    /// Keep what a config read tells: the generation and the hub's name.
    pub fn record_config(&mut self, config: &serde_json::Value) {
        self.generation = Some(Generation::of(config));
        if self.name.is_none() {
            if let Some(n) = config["hub"]["name"].as_str().filter(|n| !n.is_empty()) {
                self.name = Some(n.to_owned());
            }
        }
    }
}
