//! The simulated VegeHub: profiles, state, routes, faults, server handle and
//! mDNS advertiser. Uses only `crate::device`; never imports harness code.

pub mod advertise;
pub mod cli;
