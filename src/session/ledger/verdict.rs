//! The leak verdict and its text: at the end of a run, from one read of the
//! whole socket table (and this process's own sockets, for strays), whether
//! a connection leaked, more than one session was made, or a hub's
//! connection budget was exceeded; one line per problem, and the summary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{ConnRecord, Inbound, Ledger, TcpEntry};

/// How closes were confirmed, if they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseCheck {
    /// The socket table was read; the counts are measured.
    Confirmed { mechanism: String },
    /// The socket table could not be read; whether connections closed is
    /// unknown.
    Unconfirmed { reason: String },
}

/// One hub's use of connections over the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUsage {
    pub hub: String,
    pub connections: usize,
    pub requests: u64,
    /// Most connections open to it at once; `None` when the socket table
    /// could not be read (closes unknown, so neither is overlap).
    pub peak_open: Option<usize>,
}

impl Ledger {
    /// The verdict as things stand, without waiting.
    pub fn verdict(&self, waited: Duration) -> Verdict {
        let mut st = self.lock();
        let confirmed = self.refresh(&mut st).is_ok();
        let close_check = match (&st.table_error, confirmed) {
            (_, true) => CloseCheck::Confirmed {
                mechanism: self.inner.table.mechanism(),
            },
            (Some(reason), false) => CloseCheck::Unconfirmed {
                reason: reason.clone(),
            },
            (None, false) => unreachable!("refresh failed without an error"),
        };
        // Connections from this process to a hub that no session opened: a
        // client built without the ledger's layer.
        let mut strays = Vec::new();
        let hub_addrs: Vec<SocketAddr> = st
            .conns
            .iter()
            .map(|c| c.remote)
            .chain(st.hubs.keys().copied())
            .collect();
        if confirmed && !hub_addrs.is_empty() {
            let mut remotes = hub_addrs.clone();
            remotes.sort();
            remotes.dedup();
            match self.inner.table.own_tcp_entries_to(&remotes) {
                Ok(own) => strays.extend(own.into_iter().filter(|e| {
                    e.open
                        && hub_addrs.contains(&e.remote)
                        && !st
                            .conns
                            .iter()
                            .any(|c| c.local == e.local && c.remote == e.remote)
                })),
                Err(e) => st.table_error = Some(e.0),
            }
        }
        let mut hubs: BTreeMap<String, HubUsage> = BTreeMap::new();
        for conn in &st.conns {
            let usage = hubs.entry(conn.hub.clone()).or_insert_with(|| HubUsage {
                hub: conn.hub.clone(),
                connections: 0,
                requests: 0,
                peak_open: confirmed.then_some(0),
            });
            usage.connections += 1;
            usage.requests += conn.requests;
            if let Some(peak) = usage.peak_open.as_mut() {
                *peak = (*peak).max(st.peak.get(&conn.remote).copied().unwrap_or(1));
            }
        }
        Verdict {
            close_check,
            inbound: st.inbound.clone(),
            sessions: st.sessions,
            connections: st.conns.clone(),
            unidentified: st.unidentified,
            unledgered_requests: st.unledgered_requests,
            strays,
            hubs: hubs.into_values().collect(),
            budget: self.inner.budget,
            waited,
        }
    }
}

/// What the ledger concluded at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub close_check: CloseCheck,
    /// Sessions (clients) created; a run must create exactly one.
    pub sessions: u32,
    pub connections: Vec<ConnRecord>,
    /// Connections the connector reported without addresses; they cannot
    /// be checked.
    pub unidentified: u32,
    /// Responses over connections no session opened.
    pub unledgered_requests: u64,
    /// Open connections from this process to a hub that no session opened.
    pub strays: Vec<TcpEntry>,
    /// Connections hubs made to the harness's data receiver: reported
    /// apart, never the client's, never a leak.
    pub inbound: Vec<Inbound>,
    pub hubs: Vec<HubUsage>,
    /// Connections a hub may have open at once.
    pub budget: usize,
    /// How long the ledger waited for closes.
    pub waited: Duration,
}

impl Verdict {
    pub fn opened(&self) -> usize {
        self.connections.len()
    }

    pub fn closed(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.closed_at.is_some())
            .count()
    }

    /// Connections still open after the wait (only meaningful when closes
    /// were confirmed).
    pub fn still_open(&self) -> impl Iterator<Item = &ConnRecord> {
        self.connections.iter().filter(|c| c.closed_at.is_none())
    }

    pub fn confirmed(&self) -> bool {
        matches!(self.close_check, CloseCheck::Confirmed { .. })
    }

    /// A connection to a hub was still open after the wait.
    pub fn leaked(&self) -> bool {
        self.confirmed() && (self.still_open().next().is_some() || !self.strays.is_empty())
    }

    /// Every reason the connection gate fails the run, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.confirmed() {
            for c in self.still_open() {
                let last_used = match &c.last_scenario {
                    Some(last) if c.scenario.as_ref() != Some(last) => {
                        format!(", last used during {last}")
                    }
                    _ => String::new(),
                };
                out.push(format!(
                    "connection leak: {} -> hub {} ({}), opened during {}{last_used}, \
                     still {} {:.1}s after the session closed",
                    c.local,
                    c.hub,
                    c.remote,
                    c.scenario_name(),
                    c.last_state.as_deref().unwrap_or("open"),
                    self.waited.as_secs_f64(),
                ));
            }
            for s in &self.strays {
                out.push(format!(
                    "connection leak: {} -> {} ({}) was opened outside the session",
                    s.local, s.remote, s.state
                ));
            }
        }
        if self.sessions > 1 {
            out.push(format!(
                "{} sessions created, expected 1: every client is a new pool and new connections",
                self.sessions
            ));
        }
        if self.unledgered_requests > 0 {
            out.push(format!(
                "{} requests travelled on connections no session opened (a client built outside the session)",
                self.unledgered_requests
            ));
        }
        for hub in &self.hubs {
            if let Some(peak) = hub.peak_open.filter(|p| *p > self.budget) {
                out.push(format!(
                    "hub {}: {} connections open at once, budget {} (--conn-budget)",
                    hub.hub, peak, self.budget
                ));
            }
        }
        out
    }

    /// The connection gate fails the run.
    pub fn failed(&self) -> bool {
        !self.problems().is_empty()
    }

    /// The summary lines for the report.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = vec![format!("sessions: {}", self.sessions)];
        match &self.close_check {
            CloseCheck::Confirmed { mechanism } => {
                out.push(format!(
                    "connections: opened {}, closed {}, still open {}",
                    self.opened(),
                    self.closed(),
                    self.opened() - self.closed() + self.strays.len()
                ));
                out.push(format!("closes confirmed from {mechanism}"));
            }
            CloseCheck::Unconfirmed { reason } => {
                out.push(format!(
                    "connections: opened {}, closes NOT confirmed on this platform ({reason}); leaks cannot be ruled out",
                    self.opened()
                ));
            }
        }
        if self.unidentified > 0 {
            out.push(format!(
                "{} connections without addresses could not be checked",
                self.unidentified
            ));
        }
        for i in &self.inbound {
            out.push(format!(
                "receiver {} (setup's delivery check): {} inbound connection(s) from hub {}; not the client's, not counted above",
                i.receiver, i.connections, i.hub
            ));
        }
        for hub in &self.hubs {
            let per_conn = hub.requests as f64 / hub.connections.max(1) as f64;
            let peak = match hub.peak_open {
                Some(p) => format!("at most {p} open at once"),
                None => "overlap unknown".to_string(),
            };
            out.push(format!(
                "hub {}: {} connections, {} requests ({per_conn:.1} per connection), {peak} (budget {})",
                hub.hub, hub.connections, hub.requests, self.budget
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ledger::tests::{addr, established, fake_ledger, HUB};

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_table_says_closes_are_unconfirmed_instead_of_claiming_zero() {
        let (_unreadable, ledger, layer) = fake_ledger(1);
        for port in [40000, 40001] {
            ledger.opened(
                layer.session,
                Some((addr(&format!("127.0.0.1:{port}")), addr(HUB))),
            );
        }
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(!verdict.confirmed());
        assert!(!verdict.leaked());
        // Overlap is unknown too, so the budget of 1 is not claimed exceeded.
        assert!(verdict.problems().is_empty(), "{:?}", verdict.problems());
        let lines = verdict.summary_lines().join("\n");
        assert!(lines.contains("closes NOT confirmed on this platform (not on this platform)"));
        assert!(!lines.contains("still open 0"));
        assert!(lines.contains("overlap unknown"));
    }

    #[test]
    fn a_second_session_and_an_exceeded_budget_fail_the_gate() {
        let (table, ledger, first) = fake_ledger(2);
        table.set(Some(vec![]));
        assert!(ledger.verdict(Duration::ZERO).problems().is_empty());
        let _second = ledger.new_session();
        let problems = ledger.verdict(Duration::ZERO).problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("2 sessions created, expected 1"));

        let (table, ledger, layer) = fake_ledger(2);
        let mut open = Vec::new();
        for port in [40000, 40001, 40002] {
            let local = format!("127.0.0.1:{port}");
            open.push(established(&local, HUB));
            table.set(Some(open.clone()));
            ledger.opened(layer.session, Some((addr(&local), addr(HUB))));
            let verdict = ledger.verdict(Duration::ZERO);
            let over = verdict.problems().iter().any(|p| p.contains("budget 2"));
            assert_eq!(over, port == 40002, "{port}: {:?}", verdict.problems());
        }
        let _ = first;
    }

    #[test]
    fn requests_on_unknown_connections_and_strays_are_reported() {
        let (table, ledger, _layer) = fake_ledger(2);
        table.set(Some(vec![established("127.0.0.1:40009", HUB)]));
        ledger.record_request(HUB, addr("127.0.0.1:40009"), addr(HUB));
        let verdict = ledger.verdict(Duration::ZERO);
        assert!(verdict.leaked());
        let problems = verdict.problems().join("\n");
        assert!(problems.contains(
            "127.0.0.1:40009 -> 127.0.0.1:8080 (ESTABLISHED) was opened outside the session"
        ));
        assert!(problems.contains("1 requests travelled on connections no session opened"));
    }
}
