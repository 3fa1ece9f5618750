//! Scenario `actuators` (opt-in): all slots off and verified; each slot on
//! (always with a device-side duration) and verified on, off and verified
//! off; on slot 0, the hub's own switch-off when the duration ends. Every
//! check polls `actuators/status` with a deadline. Whatever happens
//! (failure, error, panic) an all-off is attempted and its result reported.

use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{wait, Cleanup, Cx, Options, Permission, Step, Stop};
use crate::device::ActuatorStatus;
use crate::session::client::{HubClient, MAX_ACTUATORS};

/// The parameters of `actuators`: a plan's `actuators` step, the defaults
/// when it gives none (this is the only place they are written), and the
/// command line's overrides on top (`plan::ParamOverrides`).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub slots: Slots,
    /// Device-side duration of each slot's on/off check, in whole seconds
    /// (what `actuators/set` takes); the harness switches the slot off
    /// itself long before, so this only bounds how long a relay stays on if
    /// the harness dies.
    pub on_seconds: u32,
    /// Whether to check that the hub switches a slot off by itself when its
    /// duration ends.
    pub auto_off_check: bool,
    /// The slot the auto-off check uses; `None`: the first slot switched.
    pub auto_off_slot: Option<u32>,
    /// Device-side duration of the auto-off check, in whole seconds.
    pub auto_off_seconds: u32,
    /// How long a relay has to follow a command (polling status) before it
    /// counts as not following.
    pub verify_timeout: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            slots: Slots::All,
            on_seconds: 5,
            auto_off_check: true,
            auto_off_slot: None,
            auto_off_seconds: 1,
            // A relay gets as long to follow as a request gets to answer.
            verify_timeout: crate::session::client::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Which actuator slots `actuators` switches: `"all"` or a list of slot
/// numbers in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slots {
    /// Every slot the hub reports.
    All,
    /// These 0-based slots, in this order.
    List(Vec<u32>),
}

impl<'de> Deserialize<'de> for Slots {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Slots;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"all\" or a list of slot numbers")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Slots, E> {
                if s == "all" {
                    Ok(Slots::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(s), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Slots, A::Error> {
                let mut slots = Vec::new();
                while let Some(slot) = seq.next_element::<u32>()? {
                    slots.push(slot);
                }
                Ok(Slots::List(slots))
            }
        }
        d.deserialize_any(V)
    }
}

/// The slots of `0..count` that are not known to be off: on, or not
/// reported at all (unknown is not off), for messages.
fn not_off(st: &ActuatorStatus, count: u32) -> (Vec<u32>, Vec<u32>) {
    let mut on = Vec::new();
    let mut unknown = Vec::new();
    for slot in 0..count {
        let mut entries = st.actuators.iter().filter(|a| a.slot == slot).peekable();
        if entries.peek().is_none() {
            unknown.push(slot);
        } else if entries.any(|a| a.state != 0) {
            on.push(slot);
        }
    }
    (on, unknown)
}

/// Wait until `slot` reads `want` (0 off, 1 on).
async fn wait_slot(
    client: &HubClient,
    opts: &Options,
    slot: u32,
    want: u8,
    timeout: Duration,
) -> Result<(), wait::TimedOut> {
    let state = if want == 1 { "on" } else { "off" };
    let _shown = crate::session::wait::begin(
        format!("{}: slot {slot} to read {state}", client.hub()),
        Some(timeout),
    );
    wait::until(timeout, opts.poll_interval, || async move {
        let st = client.actuator_status().await.map_err(|e| e.to_string())?;
        match st.actuators.iter().find(|a| a.slot == slot) {
            Some(a) if a.state == want => Ok(Some(())),
            Some(a) => Err(format!("slot {slot} state {}", a.state)),
            None => Err(format!("slot {slot} missing from actuators/status")),
        }
    })
    .await
}

/// Wait until every slot `0..count` reads off on two reads in a row, a
/// poll apart: a relay that switches itself back on right after an off (a
/// schedule window opening again) is not taken for off.
async fn wait_all_off(
    client: &HubClient,
    count: u32,
    opts: &Options,
) -> Result<(), wait::TimedOut> {
    let _shown = crate::session::wait::begin(
        format!("{}: every slot to read off", client.hub()),
        Some(opts.actuator_params.verify_timeout),
    );
    let off_once = std::sync::atomic::AtomicBool::new(false);
    wait::until(
        opts.actuator_params.verify_timeout,
        opts.poll_interval,
        || async {
            let st = client.actuator_status().await.map_err(|e| e.to_string())?;
            let (on, unknown) = not_off(&st, count);
            let all_off = on.is_empty() && unknown.is_empty();
            if off_once.swap(all_off, std::sync::atomic::Ordering::Relaxed) && all_off {
                return Ok(Some(()));
            }
            match (on.is_empty(), unknown.is_empty()) {
                (true, true) => Ok(None),
                (_, true) => Err(format!("slot(s) {on:?} on")),
                (true, _) => Err(format!(
                    "slot(s) {unknown:?} unknown (not reported by actuators/status)"
                )),
                _ => Err(format!(
                "slot(s) {on:?} on, slot(s) {unknown:?} unknown (not reported by actuators/status)"
            )),
            }
        },
    )
    .await
}

/// Send off to every slot (all of them, even after an error), then verify.
pub async fn all_off(client: &HubClient, count: u32, opts: &Options) -> Cleanup {
    let mut errors = Vec::new();
    for slot in 0..count {
        if let Err(e) = client.actuator_off(slot).await {
            errors.push(format!("off for slot {slot}: {e}"));
        }
    }
    let verify = wait_all_off(client, count, opts).await;
    let what = format!("all {count} actuators off");
    match verify {
        Ok(()) => Cleanup {
            what,
            verified: true,
            detail: if errors.is_empty() {
                "every slot reads off".into()
            } else {
                format!("every slot reads off (despite: {})", errors.join("; "))
            },
        },
        Err(t) => {
            errors.push(format!(
                "not verified within {:?}: {}",
                opts.actuator_params.verify_timeout, t.last
            ));
            Cleanup {
                what,
                verified: false,
                detail: errors.join("; "),
            }
        }
    }
}

async fn exercise(client: &HubClient, count: u32, opts: &Options) -> Step {
    let p = &opts.actuator_params;
    let vt = p.verify_timeout;
    for slot in 0..count {
        client.actuator_off(slot).await?;
    }
    wait_all_off(client, count, opts).await.map_err(|t| {
        Stop::Fail(format!(
            "not all slots off at start within {vt:?}: {}",
            t.last
        ))
    })?;

    let owed = &opts.safety.obligations;
    let slots = chosen_slots(count, opts)?;
    for &slot in &slots {
        owed.slot_may_be_on(client.hub(), slot);
        client.actuator_on(slot, p.on_seconds).await?;
        wait_slot(client, opts, slot, 1, vt).await.map_err(|t| {
            Stop::Fail(format!(
                "slot {slot} did not turn on within {vt:?} (last seen: {})",
                t.last
            ))
        })?;
        client.actuator_off(slot).await?;
        wait_slot(client, opts, slot, 0, vt).await.map_err(|t| {
            Stop::Fail(format!(
                "slot {slot} did not turn off within {vt:?} of an off command (last seen: {})",
                t.last
            ))
        })?;
    }

    // The safety net every on relies on: the hub ends the duration itself.
    if !p.auto_off_check {
        return Ok(());
    }
    let slot = p.auto_off_slot.unwrap_or(slots[0]);
    let secs = p.auto_off_seconds;
    owed.slot_may_be_on(client.hub(), slot);
    client.actuator_on(slot, secs).await?;
    wait_slot(client, opts, slot, 1, vt).await.map_err(|t| {
        Stop::Fail(format!(
            "slot {slot} did not turn on for the auto-off check within {vt:?} (last seen: {})",
            t.last
        ))
    })?;
    let limit = Duration::from_secs(secs.into()) + vt;
    wait_slot(client, opts, slot, 0, limit).await.map_err(|t| {
        Stop::Fail(format!(
            "slot {slot} did not switch itself off: still on {limit:?} after an on with duration {secs} s (last seen: {})",
            t.last
        ))
    })?;
    Ok(())
}

/// The slots to switch: the plan's, or every slot. A plan slot the hub
/// does not have is a failure naming it.
fn chosen_slots(count: u32, opts: &Options) -> Result<Vec<u32>, Stop> {
    match &opts.actuator_params.slots {
        Slots::All => Ok((0..count).collect()),
        Slots::List(list) => match list.iter().find(|&&s| s >= count) {
            Some(bad) => Err(Stop::Fail(format!(
                "the plan names slot {bad}, but the hub has {count} actuator(s) (slots 0 to {})",
                count - 1
            ))),
            None => Ok(list.clone()),
        },
    }
}

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    if let Permission::Denied(why) = &cx.opts.actuators {
        return Err(Stop::Skip(why.clone()));
    }
    let count = cx.require_info().await?.hub.num_actuators;
    if count == 0 {
        return Err(Stop::Skip("hub has no actuators".into()));
    }
    if count > MAX_ACTUATORS {
        return Err(Stop::Fail(format!(
            "hub claims {count} actuators, more than the harness switches ({MAX_ACTUATORS}); nothing switched"
        )));
    }
    // Every slot this scenario sends a command to is owed "verified off"
    // from before the first command: the cleanup all-off below, or the
    // run's cleanup after a signal, must see it off (unknown is not off).
    for slot in 0..count {
        cx.opts
            .safety
            .obligations
            .slot_may_be_on(cx.client.hub(), slot);
    }
    let body = super::caught("actuators", exercise(cx.client, count, cx.opts)).await;
    let off = all_off(cx.client, count, cx.opts).await;
    let (ok, detail) = (off.verified, off.detail.clone());
    if ok {
        for slot in 0..count {
            cx.opts.safety.obligations.slot_off(cx.client.hub(), slot);
        }
    }
    cx.cleanup.push(off);
    body?;
    if !ok {
        return Err(Stop::Fail(format!("all-off not verified: {detail}")));
    }
    let switched = chosen_slots(count, cx.opts)?;
    let p = &cx.opts.actuator_params;
    let auto_off = match (p.auto_off_check, p.auto_off_slot) {
        (false, _) => "no auto-off check (plan)".to_owned(),
        (true, slot) => format!(
            "slot {} switched itself off after {} s",
            slot.unwrap_or(switched[0]),
            p.auto_off_seconds
        ),
    };
    cx.note(format!(
        "{} of {count} slots switched on and off; {auto_off}",
        switched.len()
    ));
    Ok(())
}
