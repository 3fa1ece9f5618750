//! The shared session to the hubs: the one HTTP client of a run, the
//! connection ledger that accounts for every socket it opens, and the
//! harness's own lag (so a slow harness is not blamed on a hub).

pub mod actuator_limit;
pub mod client;
pub mod lag;
pub mod ledger;
pub mod wait;
