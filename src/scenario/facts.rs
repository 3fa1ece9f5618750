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

    /// How this hub is named to people; see [`display_name`].
    pub fn display_name(&self, address: &str) -> String {
        display_name(self.name.as_deref(), self.mac.as_ref(), address)
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

/// THE name a hub goes by in front of people: result lines, `--list`,
/// filters, the summary table and prompts all use this. Its name (simulator
/// profile, mDNS instance, config `hub.name`), else its MAC (12 hex digits),
/// else its address. A name comes from the hub: control characters become
/// `?` and it is cut at 64 characters, so it cannot break a line.
pub fn display_name(name: Option<&str>, mac: Option<&Mac>, address: &str) -> String {
    let raw = match (name.map(str::trim).filter(|n| !n.is_empty()), mac) {
        (Some(n), _) => n,
        (None, Some(m)) => m.as_str(),
        (None, None) => address,
    };
    raw.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
}

/// The display names of a run's hubs, made unique: a name several hubs
/// share gets `#2`, `#3`... from its second hub on, in the order given
/// (the same order for `--list` and the run, so the names agree).
pub fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    names
        .into_iter()
        .map(|n| {
            let k = seen.entry(n.clone()).or_default();
            *k += 1;
            if *k == 1 {
                n
            } else {
                format!("{n}#{k}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_is_named_by_name_else_mac_else_address_and_names_are_unique() {
        let mac = Mac::parse("A1:B2:C3:D4:E5:F6").unwrap();
        assert_eq!(display_name(Some("Desk"), Some(&mac), "h:80"), "Desk");
        assert_eq!(display_name(Some("  "), Some(&mac), "h:80"), "A1B2C3D4E5F6");
        assert_eq!(display_name(None, None, "h:80"), "h:80");
        assert_eq!(display_name(Some("a\nb\x1b[31m"), None, "h"), "a?b?[31m");
        assert_eq!(display_name(Some(&"x".repeat(100)), None, "h").len(), 64);
        assert_eq!(
            unique_names(vec!["a".into(), "b".into(), "a".into(), "a".into()]),
            ["a", "b", "a#2", "a#3"]
        );
    }
}
