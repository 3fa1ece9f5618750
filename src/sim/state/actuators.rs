//! The hub's actuator slots: `actuators/set` and `actuators/status`, the
//! timer that switches a slot off when its duration ends, the stuck faults
//! that hold a slot, and the reset on a reboot.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{lock, unix_now, BadRequest, FaultKind, Inner, SimState};
use crate::device::{ActuatorSet, ActuatorSlot};

/// One actuator slot.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    on: bool,
    last_run: i64,
    window_end: i64,
    /// Bumped on every switch, so a timer armed for an earlier "on" does nothing.
    generation: u64,
    /// `relapse`: after an off command, the status reads that still show
    /// off, and for how many seconds the slot then switches itself on.
    relapse: Option<(u8, u32)>,
}

impl SimState {
    /// Live state (0/1) of every slot.
    pub fn actuator_states(&self) -> Vec<u8> {
        lock(&self.0.slots).iter().map(|s| s.on as u8).collect()
    }

    /// `actuators/status` entries.
    pub fn actuator_slots(&self) -> Vec<ActuatorSlot> {
        self.relapse_on_read();
        let typ = self.0.profile.typ_ma();
        lock(&self.0.slots)
            .iter()
            .enumerate()
            .map(|(i, s)| ActuatorSlot {
                slot: i as u32,
                state: s.on as u8,
                last_run: s.last_run,
                next_window_start: if s.on { s.last_run } else { 0 },
                next_window_end: if s.on { s.window_end } else { 0 },
                cur_ma: if s.on { typ } else { 0 },
                typ_ma: typ,
                error: 0,
            })
            .collect()
    }

    /// `actuators/set`: switch a slot on for `duration` seconds (0: until
    /// switched off) or off now.
    pub fn set_actuator(&self, set: ActuatorSet) -> Result<(), BadRequest> {
        let count = self.0.profile.actuator_count();
        if set.target >= count {
            return Err(BadRequest(format!(
                "target {} out of range (hub has {count} actuators)",
                set.target
            )));
        }
        match set.state {
            0 => {
                self.switch_off(set.target, None);
                Ok(())
            }
            1 => {
                if self.stuck(set.target, true) {
                    return Ok(());
                }
                let now = unix_now();
                let mut slots = lock(&self.0.slots);
                let slot = &mut slots[set.target as usize];
                slot.on = true;
                slot.last_run = now;
                slot.window_end = if set.duration > 0 {
                    now + i64::from(set.duration)
                } else {
                    0
                };
                slot.generation += 1;
                if set.duration > 0 {
                    self.arm_timer(set.target, slot.generation, set.duration);
                }
                drop(slots);
                self.state_changed();
                Ok(())
            }
            s => Err(BadRequest(format!("state must be 0 or 1, got {s}"))),
        }
    }

    fn arm_timer(&self, target: u32, generation: u64, secs: u32) {
        // Weak: a pending timer must not keep a shut-down hub alive.
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        // The deadline is fixed now, not when the task first runs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(secs));
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(inner) = weak.upgrade() {
                SimState(inner).switch_off(target, Some(generation));
            }
        });
    }

    /// Switch a slot off, unless a `stuck-on` fault holds it. `timer` is the
    /// generation a timer was armed for; a newer switch makes it a no-op.
    fn switch_off(&self, target: u32, timer: Option<u64>) {
        {
            let slots = lock(&self.0.slots);
            let slot = &slots[target as usize];
            if !slot.on || timer.is_some_and(|g| g != slot.generation) {
                return;
            }
        }
        if self.stuck(target, false) {
            return;
        }
        let relapse = timer.is_none() && self.relapses(target);
        let mut slots = lock(&self.0.slots);
        let slot = &mut slots[target as usize];
        if relapse {
            let secs = (slot.window_end - slot.last_run).clamp(1, 3600) as u32;
            slot.relapse = Some((1, secs));
        }
        slot.on = false;
        slot.window_end = 0;
        slot.generation += 1;
        drop(slots);
        self.state_changed();
    }

    /// A status read: a `relapse` slot read off once switches itself back
    /// on now, for the duration of its last on.
    fn relapse_on_read(&self) {
        let mut timers = Vec::new();
        let mut slots = lock(&self.0.slots);
        for (i, slot) in slots.iter_mut().enumerate() {
            match slot.relapse {
                Some((0, secs)) => {
                    let now = unix_now();
                    slot.relapse = None;
                    slot.on = true;
                    slot.last_run = now;
                    slot.window_end = now + i64::from(secs);
                    slot.generation += 1;
                    timers.push((i as u32, slot.generation, secs));
                }
                Some((n, secs)) => slot.relapse = Some((n - 1, secs)),
                None => {}
            }
        }
        drop(slots);
        if !timers.is_empty() {
            for (target, generation, secs) in timers {
                self.arm_timer(target, generation, secs);
            }
            self.state_changed();
        }
    }

    /// Whether a `relapse` fault makes this off command come undone.
    fn relapses(&self, target: u32) -> bool {
        let mut relapse = false;
        for (i, f) in self.0.faults.iter().enumerate() {
            if let FaultKind::Relapse(s) = f.kind {
                if s.is_none_or(|s| s == target) && self.fire(i) {
                    relapse = true;
                }
            }
        }
        relapse
    }

    /// Whether a stuck fault stops this switch (`on`: a switch on).
    fn stuck(&self, target: u32, on: bool) -> bool {
        let mut stuck = false;
        for (i, f) in self.0.faults.iter().enumerate() {
            let slot = match (&f.kind, on) {
                (FaultKind::StuckOff(s), true) | (FaultKind::StuckOn(s), false) => s,
                _ => continue,
            };
            if slot.is_none_or(|s| s == target) && self.fire(i) {
                stuck = true;
            }
        }
        stuck
    }

    /// A reboot's part: every slot off, every pending timer made a no-op.
    pub(super) fn reset_slots(&self) {
        for slot in lock(&self.0.slots).iter_mut() {
            let generation = slot.generation + 1;
            *slot = Slot {
                generation,
                ..Slot::default()
            };
        }
    }
}
