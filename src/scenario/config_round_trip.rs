//! Scenario `config-round-trip`: read the config, detect the firmware
//! generation, write exactly the bytes read back, read again and compare
//! deep-equal (numbers exactly); any difference fails naming the JSON
//! paths. Whatever happens after the write, the hub must end holding the
//! run's original config (verified, written back if needed).

use super::diff::summarize;
use super::{Cx, Permission, Step, Stop};
use crate::device::json_diff::diff_texts;
use crate::device::Generation;

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    let read = cx.client.config_get().await?;
    cx.facts.record_config(&read.doc);
    let generation = Generation::of(&read.doc);
    cx.note(format!("firmware generation {generation}"));
    if let Permission::Denied(why) = &cx.opts.config_write {
        // Read-only: the config was read (its facts are recorded), nothing
        // is written.
        return Err(Stop::Skip(format!(
            "{why}: read the config only, wrote nothing"
        )));
    }
    let original = cx.backup_before_write(&read).await?;
    let verdict = async {
        cx.client.config_set_exact(&read.text).await?;
        let back = cx.client.config_get().await?;
        let d = diff_texts(&read.text, &back.text);
        if d.is_empty() {
            return Ok(());
        }
        Err(Stop::Fail(format!(
            "config read back after writing it unchanged differs at {} path(s): {}",
            d.len(),
            summarize(&d, 5)
        )))
    };
    let verdict = super::caught("config-round-trip", verdict).await;
    let c = cx.settle_config(&original).await;
    let restored = (c.verified, c.detail.clone());
    if !c.verified || verdict.is_err() {
        cx.cleanup.push(c);
    }
    verdict?;
    if !restored.0 {
        return Err(Stop::Fail(format!("restore not verified: {}", restored.1)));
    }
    Ok(())
}
