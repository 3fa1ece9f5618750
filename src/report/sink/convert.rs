//! The run's records in report form: a scenario's record (verdict,
//! measurements, the exchanges of a failed one, redacted), the hub's
//! identity as the run learns it, and the connection ledger's verdict.

use std::time::Duration;

use crate::report::json::{Exchange, HubIdentity, Outcome, ScenarioRecord};
use crate::safety::redact::Redactor;
use crate::scenario::{HubFacts, Record, Verdict};
use crate::session::client;

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Fill in what the run has learnt; addresses default to the one the hub
/// was reached at (discovery may have given all of them).
pub(super) fn update_identity(id: &mut HubIdentity, target: &str, facts: &HubFacts) {
    if facts.name.is_some() {
        id.name = facts.name.clone();
    }
    if let Some(m) = &facts.mac {
        id.mac = Some(m.as_str().to_string());
    }
    if let Some(i) = facts.info.known() {
        id.firmware = Some(i.hub.version.clone());
    }
    if id.addresses.is_empty() {
        let host = target
            .rsplit_once(':')
            .map_or(target, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        id.addresses.push(host.to_string());
    }
}

/// The report form of one scenario's record.
pub fn scenario_record(record: &Record, redactor: &Redactor) -> ScenarioRecord {
    let (outcome, message) = match &record.verdict {
        Verdict::Pass => (Outcome::Passed, None),
        Verdict::Fail(m) => (Outcome::Failed, Some(redactor.scrub(m))),
        Verdict::Skip(m) => (Outcome::Skipped, Some(redactor.scrub(m))),
    };
    let exchanges = if outcome == Outcome::Failed {
        exchanges(&record.exchanges, redactor)
    } else {
        Vec::new()
    };
    ScenarioRecord::new(
        record.scenario.name(),
        outcome,
        record.duration,
        message,
        record.measurements.clone(),
        exchanges,
    )
}

/// The client's exchanges in report form. The client keeps durations, not
/// start times; a scenario's exchanges run one after another, so each starts
/// where the previous ended.
fn exchanges(list: &[client::Exchange], redactor: &Redactor) -> Vec<Exchange> {
    // Secrets a hub sent (a config read) are hidden wherever they are quoted.
    // Learnt from the text, so a number keeps the hub's spelling.
    for b in list.iter().filter_map(|e| e.response_body.as_deref()) {
        redactor.learn_text(b);
    }
    let mut at = std::time::Duration::ZERO;
    list.iter()
        .map(|e| {
            let request = e
                .request_body
                .as_ref()
                .map(|b| serde_json::to_vec(b).unwrap_or_default());
            let mut x = Exchange::new(
                &e.method,
                &e.path,
                e.status,
                e.error.as_ref().map(|m| redactor.scrub(m)),
                at,
                e.elapsed,
                request.as_deref(),
                e.response_body.as_deref().map(str::as_bytes),
                redactor,
            );
            if x.response_body.is_none() {
                // Too long, not UTF-8 or cut at the answer limit: the
                // client kept only its length and hash.
                x.response_body = e.response_summary.clone().map(serde_json::Value::String);
            }
            at += e.elapsed;
            x
        })
        .collect()
}

/// The ledger's verdict as the record's `ledger` object.
pub fn ledger_json(v: &crate::session::ledger::Verdict) -> serde_json::Value {
    use crate::session::ledger::CloseCheck;
    let (confirmed, how) = match &v.close_check {
        CloseCheck::Confirmed { mechanism } => (true, mechanism.clone()),
        CloseCheck::Unconfirmed { reason } => (false, reason.clone()),
    };
    serde_json::json!({
        "sessions": v.sessions,
        "connections_opened": v.opened(),
        "connections_closed": v.closed(),
        "closes_confirmed": confirmed,
        "close_check": how,
        "leaked": v.leaked(),
        "problems": v.problems(),
        "budget": v.budget,
        "waited_ms": u64::try_from(v.waited.as_millis()).unwrap_or(u64::MAX),
        "receiver_inbound": v.inbound.iter().map(|i| serde_json::json!({
            "hub": i.hub,
            "receiver": i.receiver,
            "connections": i.connections,
        })).collect::<Vec<_>>(),
        "hubs": v.hubs.iter().map(|h| serde_json::json!({
            "hub": h.hub,
            "connections": h.connections,
            "requests": h.requests,
            "peak_open": h.peak_open,
        })).collect::<Vec<_>>(),
    })
}
