//! The connector layer: each session's client is built with a
//! [`SessionLayer`], which records in the ledger every connection the
//! client opens, and makes a connect that races the pool wait for reuse.
//!
//! Reuse: hyper-util's pool races a new connect against the return of the
//! connection the previous request used (it goes back to the pool a moment
//! after the body is read, from another task). Left alone, a sequential run
//! opens a second connection now and then, overlapping the first. A request
//! run inside [`for_hub`] lets the connector see that this session already
//! has a connection to the hub that may still serve it (not known closed,
//! and its last answer did not say `Connection: close`): the connect then
//! waits, woken by the hub's next answer (no polling), and is abandoned if
//! the request was served on the reused connection. If no answer comes
//! soon, the ledger asks the OS whether that connection is still
//! established (a lookup of that socket alone, at growing intervals); a
//! connection gone or half-closed ends the wait at once, so a hub that drops
//! idle connections costs no grace.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Ledger;

/// How long a new connect waits for the session's established connection
/// to the same hub to come back to the pool.
const REUSE_GRACE: Duration = Duration::from_secs(1);

/// When that wait first asks the OS whether the connection is still
/// established; the gap doubles after each look.
const REUSE_FIRST_LOOK: Duration = Duration::from_millis(200);

tokio::task_local! {
    /// The hub the request being sent on this task goes to.
    static REQUEST_HUB: String;
}

/// Send one request to `hub` (the label given to [`Ledger::set_scenario`])
/// so that a connect it triggers knows its hub and can prefer reuse.
pub async fn for_hub<F: Future>(hub: &str, request: F) -> F::Output {
    REQUEST_HUB.scope(hub.to_string(), request).await
}

/// A connect abandoned because its request was served on a reused
/// connection; hyper-util drops such a background connect silently.
#[derive(Debug, thiserror::Error)]
#[error("connection not needed: the request was served on a reused connection")]
pub struct ConnectNotNeeded;

/// The connector layer of one session: records each connection its client
/// opens. Get it from [`Ledger::new_session`].
#[derive(Clone, Debug)]
pub struct SessionLayer {
    pub(super) ledger: Ledger,
    pub(super) session: u32,
}

impl<S> tower::Layer<S> for SessionLayer {
    type Service = SessionConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionConnector {
            inner,
            ledger: self.ledger.clone(),
            session: self.session,
        }
    }
}

/// The connector service [`SessionLayer`] wraps around reqwest's own.
#[derive(Clone, Debug)]
pub struct SessionConnector<S> {
    inner: S,
    ledger: Ledger,
    session: u32,
}

impl<S, R> tower::Service<R> for SessionConnector<S>
where
    S: tower::Service<R> + Clone + Send + 'static,
    R: Send + 'static,
    S::Response: Connection + Send + 'static,
    S::Error: From<ConnectNotNeeded> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // Called on the requesting task, so the task-local hub is visible.
        let reuse = REQUEST_HUB
            .try_with(|hub| hub.clone())
            .ok()
            .and_then(|hub| Some((self.ledger.reusable(self.session, &hub)?, hub)));
        // The service that was polled ready goes into the future; a clone
        // stays for the next call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let ledger = self.ledger.clone();
        let session = self.session;
        Box::pin(async move {
            if let Some(((seen, answered), hub)) = reuse {
                if ledger.served_by_reuse(session, &hub, seen, answered).await {
                    return Err(ConnectNotNeeded.into());
                }
            }
            let conn = inner.call(request).await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            let addrs = extras
                .get::<HttpInfo>()
                .map(|info| (info.local_addr(), info.remote_addr()));
            ledger.opened(session, addrs);
            Ok(conn)
        })
    }
}

impl Ledger {
    /// If `session` has a connection to `hub` that may still serve a
    /// request (not known closed, not closing), the number of answers
    /// `hub` has given so far, and the hub's answer signal.
    fn reusable(&self, session: u32, hub: &str) -> Option<(u64, Arc<Notify>)> {
        let mut st = self.lock();
        let candidate = st.conns.iter().any(|c| {
            c.session == session
                && c.hub == hub
                && c.closed_at.is_none()
                && !st.closing.contains(&(c.local, c.remote))
        });
        if !candidate {
            return None;
        }
        let seen = st.served.get(hub).copied().unwrap_or(0);
        Some((seen, st.answered(hub)))
    }

    /// Whether `session`'s candidate connections to `hub` include one the OS
    /// still lists as ESTABLISHED (asked about those sockets alone). An
    /// unreadable table answers yes: the grace then bounds the wait.
    fn still_established(&self, session: u32, hub: &str) -> bool {
        let pairs: Vec<(SocketAddr, SocketAddr)> = {
            let st = self.lock();
            st.conns
                .iter()
                .filter(|c| {
                    c.session == session
                        && c.hub == hub
                        && c.closed_at.is_none()
                        && !st.closing.contains(&(c.local, c.remote))
                })
                .map(|c| (c.local, c.remote))
                .collect()
        };
        if pairs.is_empty() || self.look_up(&pairs).is_err() {
            return !pairs.is_empty();
        }
        let st = self.lock();
        st.conns.iter().any(|c| {
            pairs.contains(&(c.local, c.remote))
                && c.closed_at.is_none()
                && c.last_state.as_deref() == Some("ESTABLISHED")
        })
    }

    /// Wait up to [`REUSE_GRACE`] for `hub` to answer a request (proof the
    /// request that wanted a new connection was served on the old one),
    /// woken by each answer. `false` at the deadline, or as soon as the OS
    /// says no established connection is left to serve it.
    async fn served_by_reuse(
        &self,
        session: u32,
        hub: &str,
        seen: u64,
        answered: Arc<Notify>,
    ) -> bool {
        let start = Instant::now();
        let deadline = start + REUSE_GRACE;
        let mut gap = REUSE_FIRST_LOOK;
        let mut look_at = start + gap;
        loop {
            let notified = answered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().served.get(hub).copied().unwrap_or(0) > seen {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if now >= look_at {
                if !self.still_established(session, hub) {
                    return false;
                }
                gap *= 2;
                look_at = now + gap;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(look_at.min(deadline)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ledger::tests::{addr, established, fake_ledger, HUB};
    use crate::session::ledger::TcpEntry;

    #[tokio::test(start_paused = true)]
    async fn a_connect_racing_the_pool_waits_for_the_answer_without_reading_the_table() {
        let (table, ledger, layer) = fake_ledger(1);
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        // One connection per hub: opening it reads nothing.
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        assert_eq!(table.reads(), 0);
        for _ in 0..50 {
            let (seen, answered) = ledger.reusable(layer.session, HUB).expect("reusable");
            let wait = ledger.served_by_reuse(layer.session, HUB, seen, answered);
            let answer = async {
                tokio::task::yield_now().await;
                ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
            };
            let (served, ()) = tokio::join!(wait, answer);
            assert!(served);
        }
        assert_eq!(table.reads(), 0, "the request path read the socket table");
        let verdict = ledger.verdict(Duration::ZERO);
        assert_eq!(verdict.connections[0].requests, 51);
        assert_eq!(
            table.reads(),
            1 + 1,
            "the verdict reads the table and own sockets"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_the_hub_dropped_ends_the_reuse_wait_at_the_first_look() {
        let (table, ledger, layer) = fake_ledger(2);
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        // The hub hung up; our side has not closed yet.
        table.set(Some(vec![TcpEntry {
            state: "CLOSE_WAIT".to_string(),
            ..established("127.0.0.1:40000", HUB)
        }]));
        let (seen, answered) = ledger.reusable(layer.session, HUB).expect("reusable");
        let start = Instant::now();
        assert!(
            !ledger
                .served_by_reuse(layer.session, HUB, seen, answered)
                .await
        );
        assert_eq!(start.elapsed(), REUSE_FIRST_LOOK);
        assert_eq!(table.reads(), 1);

        // Still established and never answering: the grace bounds the wait,
        // with a handful of looks, not a poll.
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        let start = Instant::now();
        let answered = ledger.lock().answered(HUB);
        assert!(
            !ledger
                .served_by_reuse(layer.session, HUB, seen, answered)
                .await
        );
        assert_eq!(start.elapsed(), REUSE_GRACE);
        assert!(table.reads() <= 1 + 8, "{} reads", table.reads());
    }

    #[test]
    fn an_answer_saying_connection_close_makes_the_connection_not_reusable() {
        let (table, ledger, layer) = fake_ledger(2);
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        assert!(ledger.reusable(layer.session, HUB).is_some());
        ledger
            .lock()
            .closing
            .insert((addr("127.0.0.1:40000"), addr(HUB)));
        assert!(ledger.reusable(layer.session, HUB).is_none());
        assert_eq!(table.reads(), 0);
    }
}
