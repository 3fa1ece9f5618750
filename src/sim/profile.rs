//! Hub profiles: the identity (MAC, name, firmware), info sections, config
//! document and actuator count of one simulated hub, loaded from a JSON file
//! in `fixtures/` (built in) or anywhere on disk.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::device::{Generation, HubSection, Mac, WifiSection};

/// Built-in profiles, embedded so the release binary works from any
/// directory. The files in `fixtures/` are read first when they exist, so an
/// edited fixture takes effect without a rebuild during development.
const BUILTIN: &[(&str, &str)] = &[
    (
        "hub-new-firmware",
        include_str!("../../fixtures/hub-new-firmware.json"),
    ),
    (
        "hub-old-firmware",
        include_str!("../../fixtures/hub-old-firmware.json"),
    ),
    (
        "hub-4-relay-ac",
        include_str!("../../fixtures/hub-4-relay-ac.json"),
    ),
    (
        "hub-battery-sensor",
        include_str!("../../fixtures/hub-battery-sensor.json"),
    ),
];

/// The most actuator slots a simulated hub serves (a real hub has a
/// handful; the harness itself switches at most 32). A profile claiming
/// more is refused, not allocated: 4294967295 slots would abort the
/// process. A hub that *claims* more is the `claim-actuators:N` fault.
pub const MAX_ACTUATORS: u32 = 256;

/// A profile could not be loaded. Each message names the profile file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile {name:?} (built in: {known}; or pass a path to a .json file)")]
    Unknown { name: String, known: String },
    #[error("profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {}: malformed: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("profile {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// One sensor channel: its name (`sens_N` in mDNS) and the value the
/// simulated hub reports for it in data updates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SensorProfile {
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    mac: String,
    firmware: String,
    actuators: u32,
    #[serde(default)]
    typ_ma: i64,
    #[serde(default)]
    power_mode: u32,
    sensors: Vec<SensorProfile>,
    info: InfoFile,
    config: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoFile {
    hub: HubSection,
    wifi: WifiSection,
}

/// A validated hub profile.
#[derive(Debug, Clone)]
pub struct Profile {
    source: String,
    name: String,
    mac: Mac,
    firmware: String,
    actuators: u32,
    typ_ma: i64,
    power_mode: u32,
    sensors: Vec<SensorProfile>,
    hub: HubSection,
    wifi: WifiSection,
    config: Value,
}

impl Profile {
    /// Load a built-in profile by name (`hub-new-firmware`) or a `.json`
    /// file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(format!("{name}.json"));
            // The on-disk fixture wins when present (edited during development);
            // the embedded copy keeps an installed binary self-contained.
            return match std::fs::read_to_string(&path) {
                Ok(disk) => Profile::parse(&disk, &path, name),
                Err(_) => Profile::parse(text, &path, name),
            };
        }
        let path = Path::new(name_or_path);
        let looks_like_path = name_or_path.ends_with(".json")
            || name_or_path.contains(std::path::MAIN_SEPARATOR)
            || path.exists();
        if !looks_like_path {
            return Err(ProfileError::Unknown {
                name: name_or_path.to_owned(),
                known: Profile::builtin_names().join(", "),
            });
        }
        let text =
            crate::device::file::read_text_bounded(path).map_err(|source| ProfileError::Read {
                path: path.to_owned(),
                source,
            })?;
        Profile::parse(&text, path, name_or_path)
    }

    /// Names of the built-in profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Parse and validate profile JSON; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path, source: &str) -> Result<Profile, ProfileError> {
        let file: ProfileFile =
            serde_json::from_str(text).map_err(|source| ProfileError::Malformed {
                path: path.to_owned(),
                source,
            })?;
        let invalid = |reason: String| ProfileError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mac =
            Mac::parse(&file.mac).ok_or_else(|| invalid(format!("bad mac {:?}", file.mac)))?;
        let hub = file.info.hub;
        let wifi = file.info.wifi;
        if Mac::parse(&wifi.mac_addr).as_ref() != Some(&mac) {
            return Err(invalid(format!(
                "info.wifi.mac_addr {:?} differs from mac {:?}",
                wifi.mac_addr, file.mac
            )));
        }
        if wifi.mac_addr != mac.colon() {
            return Err(invalid(format!(
                "info.wifi.mac_addr must be upper case with colons ({})",
                mac.colon()
            )));
        }
        if hub.version != file.firmware {
            return Err(invalid(format!(
                "info.hub.version {:?} differs from firmware {:?}",
                hub.version, file.firmware
            )));
        }
        if file.actuators > MAX_ACTUATORS {
            return Err(invalid(format!(
                "actuators {} is more than a simulated hub serves ({MAX_ACTUATORS})",
                file.actuators
            )));
        }
        if hub.num_actuators != file.actuators {
            return Err(invalid(format!(
                "info.hub.num_actuators {} differs from actuators {}",
                hub.num_actuators, file.actuators
            )));
        }
        if file.sensors.len() != hub.num_channels as usize {
            return Err(invalid(format!(
                "{} sensors listed but info.hub.num_channels is {}",
                file.sensors.len(),
                hub.num_channels
            )));
        }
        if wifi.strength.parse::<i64>().is_err() {
            return Err(invalid(format!(
                "info.wifi.strength {:?} is not a number",
                wifi.strength
            )));
        }
        if let Err(reason) = super::config::check_config(&file.config, Generation::of(&file.config))
        {
            return Err(invalid(format!("config: {reason}")));
        }
        Ok(Profile {
            source: source.to_owned(),
            name: file.name,
            mac,
            firmware: file.firmware,
            actuators: file.actuators,
            typ_ma: file.typ_ma,
            power_mode: file.power_mode,
            sensors: file.sensors,
            hub,
            wifi,
            config: file.config,
        })
    }

    /// The built-in name or the path the profile was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The hub's name (what a user called it, e.g. `Desk_Temp_Soil`).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn mac(&self) -> &Mac {
        &self.mac
    }
    /// Firmware version, e.g. `5.1.1`.
    pub fn firmware(&self) -> &str {
        &self.firmware
    }
    pub fn actuator_count(&self) -> u32 {
        self.actuators
    }
    /// Typical current of an actuator when on, in mA (`typ_ma`, `cur_ma`).
    pub fn typ_ma(&self) -> i64 {
        self.typ_ma
    }
    /// `power_mode` as advertised over mDNS.
    pub fn power_mode(&self) -> u32 {
        self.power_mode
    }
    pub fn sensors(&self) -> &[SensorProfile] {
        &self.sensors
    }
    /// The `hub` section of `info/get`.
    pub fn hub(&self) -> &HubSection {
        &self.hub
    }
    /// The `wifi` section of `info/get`.
    pub fn wifi(&self) -> &WifiSection {
        &self.wifi
    }
    /// The config document the hub starts with.
    pub fn config(&self) -> &Value {
        &self.config
    }
    /// Firmware generation, from the config document.
    pub fn generation(&self) -> Generation {
        Generation::of(&self.config)
    }
    /// Whether the hub runs on battery (and so reports a battery slot).
    pub fn on_battery(&self) -> bool {
        self.hub.is_ac == 0
    }

    /// Hub number `index` (0-based) of a shelf of identical hubs
    /// (`sim --count`): index 0 is this profile as it is; each other gets
    /// its own MAC (`index` added to the low 24 bits, the vendor part kept)
    /// and name (the new MAC's `Vege_XX_YY` when the profile is named after
    /// its MAC, else `NAME_<index+1>`); the config's `hub.name`, when it is
    /// the hub's name, follows.
    pub fn numbered(&self, index: u32) -> Profile {
        if index == 0 {
            return self.clone();
        }
        let hex = self.mac.as_str();
        let low = u32::from_str_radix(&hex[6..], 16).expect("a Mac is 12 hex digits");
        let mac = Mac::parse(&format!("{}{:06X}", &hex[..6], (low + index) & 0xFF_FFFF))
            .expect("12 hex digits are a MAC");
        let name = if self.name == self.mac.instance_name() {
            mac.instance_name()
        } else {
            format!("{}_{}", self.name, index + 1)
        };
        let mut p = self.clone();
        if p.config["hub"]["name"].as_str() == Some(self.name.as_str()) {
            p.config["hub"]["name"] = Value::String(name.clone());
        }
        p.wifi.mac_addr = mac.colon();
        p.mac = mac;
        p.name = name;
        p
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shelf_of_hubs_has_distinct_names_and_macs() {
        use std::collections::HashSet;
        for profile in super::Profile::builtin_names() {
            let p = super::Profile::load(profile).unwrap();
            let hubs: Vec<_> = (0..1000).map(|i| p.numbered(i)).collect();
            assert_eq!(hubs[0].name(), p.name());
            assert_eq!(hubs[0].mac(), p.mac());
            let names: HashSet<_> = hubs.iter().map(|h| h.name().to_owned()).collect();
            let macs: HashSet<_> = hubs.iter().map(|h| h.mac().clone()).collect();
            assert_eq!((names.len(), macs.len()), (1000, 1000), "{profile}");
            for h in &hubs {
                assert_eq!(h.wifi().mac_addr, h.mac().colon());
                assert_eq!(h.mac().as_str()[..6], p.mac().as_str()[..6]);
            }
        }
    }

    use super::*;

    #[test]
    fn every_builtin_profile_loads() {
        for name in Profile::builtin_names() {
            let p = Profile::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.source(), name);
        }
        assert_eq!(
            Profile::load("hub-old-firmware").unwrap().generation(),
            Generation::Old
        );
        assert_eq!(
            Profile::load("hub-new-firmware").unwrap().generation(),
            Generation::New
        );
        assert_eq!(
            Profile::load("hub-battery-sensor")
                .unwrap()
                .actuator_count(),
            0
        );
    }

    #[test]
    fn embedded_copy_matches_the_fixture_on_disk() {
        for (name, text) in BUILTIN {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(format!("{name}.json"));
            assert_eq!(std::fs::read_to_string(path).unwrap(), *text, "{name}");
        }
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = Profile::load("hub-nonexistent").unwrap_err().to_string();
        assert!(err.contains("hub-nonexistent"), "{err}");
        assert!(err.contains("hub-new-firmware"), "{err}");
    }

    #[test]
    fn inconsistent_profile_names_the_file() {
        let text = include_str!("../../fixtures/hub-new-firmware.json")
            .replace("\"num_actuators\": 2", "\"num_actuators\": 3");
        let err = Profile::parse(&text, Path::new("x/bad.json"), "bad")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("profile x/bad.json: "), "{err}");
        assert!(err.contains("num_actuators"), "{err}");
    }
}
