//! Scenario `mac`: `info/get` asking only for `wifi`; the MAC is present,
//! well formed, and normalised to 12 upper-case hex digits.

use super::{Cx, Step, Stop};
use crate::device::Mac;

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    let doc = cx.client.info_raw(&["wifi"]).await?;
    let raw = match doc.get("wifi").and_then(|w| w.get("mac_addr")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(Stop::Fail(format!(
                "wifi.mac_addr should be a string, got {}",
                crate::session::client::quote_value(other)
            )))
        }
        None => return Err(Stop::Fail("wifi.mac_addr missing from info/get".into())),
    };
    let mac = Mac::parse(&raw).ok_or_else(|| {
        Stop::Fail(format!(
            "wifi.mac_addr {} is not a MAC address",
            super::diff::quoted(&raw)
        ))
    })?;
    // The normalised form is what data updates and backups are keyed by.
    let norm = mac.as_str();
    if norm.len() != 12
        || !norm
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    {
        return Err(Stop::Fail(format!(
            "normalised MAC {norm:?} is not 12 upper-case hex digits"
        )));
    }
    cx.note(format!("mac {norm} (hub sends {raw:?})"));
    cx.facts.mac = Some(mac);
    Ok(())
}
