//! Scenario `config-round-trip`: read the config, detect the firmware
//! generation, write the same document back, read again and compare
//! deep-equal; any difference fails naming the JSON paths. If the hub did
//! not keep the document, the original is written back and verified.

use super::diff::{diff, summarize};
use super::{setup, Cx, Permission, Step, Stop};
use crate::device::Generation;

pub(super) async fn run(cx: &mut Cx<'_>) -> Step {
    let original = cx.client.config_get().await?;
    cx.facts.record_config(&original);
    let generation = Generation::of(&original);
    cx.note(format!("firmware generation {generation}"));
    if let Permission::Denied(why) = &cx.opts.config_write {
        // Read-only: the config was read (its facts are recorded), nothing
        // is written.
        return Err(Stop::Skip(format!(
            "{why}: read the config only, wrote nothing"
        )));
    }
    cx.backup_before_write(&original).await?;
    cx.client.config_set(&original).await?;
    let back = match cx.client.config_get().await {
        Ok(b) => b,
        Err(e) => {
            // The hub took a write; make sure it still holds the original.
            let c = setup::restore(cx.client, &original).await;
            if c.verified {
                cx.config_restored();
            }
            cx.cleanup.push(c);
            return Err(e.into());
        }
    };
    let d = diff(&original, &back);
    if d.is_empty() {
        // The hub holds its original config: nothing is owed.
        cx.config_restored();
        return Ok(());
    }
    let c = setup::restore(cx.client, &original).await;
    if c.verified {
        cx.config_restored();
    }
    cx.cleanup.push(c);
    Err(Stop::Fail(format!(
        "config read back after writing it unchanged differs at {} path(s): {}",
        d.len(),
        summarize(&d, 5)
    )))
}
