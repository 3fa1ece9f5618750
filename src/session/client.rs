//! The shared session: the run's one reqwest client (built only here, so the
//! connection ledger can wrap its connector), and typed calls for one hub
//! with a timeout on every request and a bounded, visible retry on
//! connection errors. Uses `device`, and `ledger` to count the session and
//! attribute each answer to its connection.
//!
//! This file holds the client, its recorded exchanges, incidents and
//! contact; beside it: `config` (the session's settings and defaults, the
//! client built), `calls` (the typed endpoint calls), `identity` (the MAC
//! pinned and checked before writes), `retry` (attempts, backoff and the
//! request's clock against harness lag), `answer` (an answer read within
//! bounds and checked), `rules` (what an answer must be beyond HTTP: no key
//! twice, the documented `error` values, the sections asked for), `error`
//! (every way a call fails).

mod answer;
mod calls;
mod config;
mod error;
mod identity;
mod retry;
mod rules;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::device::{paths, Mac};
use crate::session::ledger::Ledger;

pub use answer::{
    check_config_answer, kind_of, opaque, quote_value, MAX_ACTUATORS, MAX_ANSWER_BYTES,
    MAX_CHANNELS, MAX_RECORDED_BODY, MAX_STATUS_ENTRIES,
};
pub use calls::ConfigAnswer;
pub use config::{
    build_http, BuildError, SessionConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRIES,
};
pub use error::CallError;
pub use retry::MAX_BACKOFF;

/// One request/answer pair as the harness saw it, kept for reports.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request_body: Option<Value>,
    /// `None` when no HTTP answer arrived.
    pub status: Option<u16>,
    /// The answer body when it is UTF-8 and at most [`MAX_RECORDED_BODY`]
    /// bytes; reports parse and redact it, and record an unparseable one
    /// only as its length and hash.
    pub response_body: Option<String>,
    /// For an answer body not kept in `response_body` (too long, not
    /// UTF-8, cut at [`MAX_ANSWER_BYTES`]): its length and a short hash.
    pub response_summary: Option<String>,
    /// Attempts made (1 when no retry was needed).
    pub attempts: u32,
    pub elapsed: Duration,
    /// The error that ended the exchange, if any.
    pub error: Option<String>,
}

/// Things the session reports while it works (printed with `--verbose`).
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A finished exchange.
    Exchange { hub: String, exchange: Exchange },
    /// A connection error; the request is tried again after `backoff`.
    Retry {
        hub: String,
        method: String,
        path: String,
        attempt: u32,
        of: u32,
        backoff: Duration,
        error: String,
    },
}

/// Receives client events; the run passes the verbose printer from `report`.
pub type Observer = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

/// Whether this run has ever reached the hub. Decided by the first request:
/// the hub is "unreachable" only when it could not be reached before any
/// answer (exit code 4); later connection errors are scenario failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    NotTried,
    Reached,
    Unreachable(String),
}

/// Typed calls to one hub over the shared client. Cheap to clone; clones
/// share the exchange log and contact state.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    hub: String,
    cfg: SessionConfig,
    observer: Option<Observer>,
    state: Arc<Mutex<HubState>>,
    ledger: Option<Ledger>,
    /// The run's lag monitor, when the run has one.
    lag: Option<crate::session::lag::LagMonitor>,
    /// Test-only: reproduce the original bug, a new client per request.
    session_per_request: bool,
}

#[derive(Default)]
struct HubState {
    exchanges: Vec<Exchange>,
    /// Requests that ran out of time while the harness lagged, since the
    /// last [`HubClient::take_lagged`].
    lagged: Vec<String>,
    incidents: Vec<Incident>,
    contact: Option<Contact>,
    /// The MAC of the first `info/get` answer that carried one: the hub
    /// this client writes to.
    mac: Option<Mac>,
    /// Set when a later answer carried another MAC: (expected, got). No
    /// write is sent to this address after that.
    identity_changed: Option<(Mac, Mac)>,
}

/// What kind of trouble a request ran into and recovered from (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// An attempt failed with a connection error and was tried again.
    Retry,
    /// A request answered only on a new connection, after a connection error.
    Reconnect,
    /// The hub dropped the connection and then refused new ones before
    /// answering again: it went away and came back (a reboot, as far as the
    /// harness can tell from outside).
    Reboot,
}

/// A retry, reconnect or detected reboot, kept per scenario for the reports:
/// a scenario that passed only after one is flaky.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub kind: IncidentKind,
    /// `POST /api/info/get: connection closed before message completed`.
    pub reason: String,
    pub at: Instant,
}

/// A request body that never ends (for `--debug-leak`).
struct NeverEnds;

impl http_body::Body for NeverEnds {
    type Data = &'static [u8];
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

impl HubClient {
    /// `base` is `http://HOST:PORT`; `hub` is the label used in messages.
    pub fn new(
        http: reqwest::Client,
        base: impl Into<String>,
        hub: impl Into<String>,
        cfg: SessionConfig,
        observer: Option<Observer>,
    ) -> HubClient {
        HubClient {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            hub: hub.into(),
            cfg,
            observer,
            state: Arc::default(),
            ledger: None,
            lag: None,
            session_per_request: false,
        }
    }

    /// Attribute every answer to its connection in `ledger` (the ledger the
    /// shared client's session belongs to).
    pub fn with_ledger(mut self, ledger: Ledger) -> HubClient {
        self.ledger = Some(ledger);
        self
    }

    /// Tell timeouts the harness caused from the hub's with `lag`.
    pub fn with_lag_monitor(mut self, lag: crate::session::lag::LagMonitor) -> HubClient {
        self.lag = Some(lag);
        self
    }

    /// Test-only (`--debug-session-per-request`): build a new client, a new
    /// session in the ledger, for every request, as the code this project
    /// replaces did. The connection gate must catch it.
    pub fn with_session_per_request(mut self, on: bool) -> HubClient {
        self.session_per_request = on;
        self
    }

    /// Test-only (`--debug-leak`): start an `info/get` whose request body
    /// never ends, on a task of its own that outlives the session until the
    /// runtime shuts down. The request holds the client, so its connection
    /// and the pool's stay open: the connection gate must catch them.
    pub fn debug_leak(&self) {
        let url = format!("{}{}", self.base, paths::INFO_GET);
        let request = self
            .http
            .post(url)
            .body(reqwest::Body::wrap(NeverEnds))
            // Longer than any --close-timeout: the leak must outlive the gate.
            .timeout(Duration::from_secs(24 * 3600))
            .send();
        tokio::spawn(request);
    }

    /// The client for one request: the shared one, or with
    /// `--debug-session-per-request` a new one.
    fn http_for_request(&self) -> Result<reqwest::Client, BuildError> {
        match (&self.ledger, self.session_per_request) {
            (Some(ledger), true) => build_http(&self.cfg, ledger.new_session()),
            _ => Ok(self.http.clone()),
        }
    }

    /// The same hub and session with another request timeout and retry
    /// count (a plan step's); shares the exchange log and contact state.
    pub fn with_limits(&self, request_timeout: Duration, retries: u32) -> HubClient {
        let mut c = self.with_request_timeout(request_timeout);
        c.cfg.retries = retries;
        c
    }

    /// The same hub and session with another request timeout only
    /// (cleanup's own, whatever `--timeout` or the plan said).
    pub fn with_request_timeout(&self, request_timeout: Duration) -> HubClient {
        let mut c = self.clone();
        c.cfg.request_timeout = request_timeout;
        c
    }

    /// The hub label used in messages (`HOST:PORT`).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// `http://HOST:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether the hub was ever reached (see [`Contact`]).
    pub fn contact(&self) -> Contact {
        self.lock().contact.clone().unwrap_or(Contact::NotTried)
    }

    /// Take the harness-lag timeouts seen since the last call: a scenario
    /// that failed on one is inconclusive, not the hub's failure.
    pub fn take_lagged(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().lagged)
    }

    /// Take the exchanges recorded since the last call.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut self.lock().exchanges)
    }

    /// Take the retries, reconnects and detected reboots recorded since the
    /// last call.
    pub fn take_incidents(&self) -> Vec<Incident> {
        std::mem::take(&mut self.lock().incidents)
    }

    fn incident(&self, kind: IncidentKind, reason: String) {
        self.lock().incidents.push(Incident {
            kind,
            reason,
            at: Instant::now(),
        });
    }

    /// The ledger this client's answers are attributed to, if any.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// Only the first contact decides reachability.
    fn note_contact(&self, c: Contact) {
        let mut st = self.lock();
        if st.contact.is_none() {
            st.contact = Some(c);
        }
    }

    fn emit(&self, event: ClientEvent) {
        if let Some(obs) = &self.observer {
            obs(&event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A panic elsewhere must not hide the log from the report.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
