//! Integration tests: one binary, modules per area.
mod ledger;
mod safety;
