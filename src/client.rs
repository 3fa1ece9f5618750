//! The shared session: the run's one reqwest client (built only here, so the
//! connection ledger can wrap its connector), and typed calls for one hub
//! with a timeout on every request and a bounded, visible retry on
//! connection errors. Uses `device`, and `ledger` to count the session and
//! attribute each answer to its connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::device::{paths, ActuatorSet, ActuatorStatus, InfoResponse};
use crate::ledger::{Ledger, SessionLayer};

/// How the session talks to hubs. Every field has a flag in `run_args`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Whole-request timeout (connect, send, wait, read body).
    pub request_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Extra attempts after a connection error (0 = no retry).
    pub retries: u32,
    /// Pause before the first retry; doubles on each further one.
    pub backoff: Duration,
    /// Idle connections kept per hub. Small embedded servers handle few
    /// sockets; one kept-alive connection serves a sequential run.
    pub pool_max_idle_per_host: usize,
    /// An idle connection older than this is closed rather than reused.
    pub pool_idle_timeout: Duration,
    /// Cap on the device-side duration of every `on` (`--max-on-seconds`).
    pub max_on: crate::actuator_limit::MaxOn,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            retries: 2,
            backoff: Duration::from_millis(200),
            pool_max_idle_per_host: 1,
            pool_idle_timeout: Duration::from_secs(30),
            max_on: crate::actuator_limit::MaxOn::default(),
        }
    }
}

/// Building the client failed (a TLS or resolver backend would not start).
#[derive(Debug, thiserror::Error)]
#[error("building the http client: {0}")]
pub struct BuildError(#[source] reqwest::Error);

/// Build the run's one HTTP client. Every hub of the run shares it (clones
/// share one pool); nothing else in the crate may build a `reqwest::Client`.
/// `session` (from `Ledger::new_session`) counts the session and records
/// every connection the client opens.
pub fn build_http(
    cfg: &SessionConfig,
    session: SessionLayer,
) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .connector_layer(session)
        // Hubs are on the local network: a proxy from the environment would
        // only get in the way (and would hide which socket reached the hub).
        .no_proxy()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.connect_timeout)
        .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
        .pool_idle_timeout(cfg.pool_idle_timeout)
        .http1_only()
        // Retries are ours: bounded, with backoff, and reported.
        .retry(reqwest::retry::never())
        .build()
        .map_err(BuildError)
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

/// One request/answer pair as the harness saw it, kept for reports.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request_body: Option<Value>,
    /// `None` when no HTTP answer arrived.
    pub status: Option<u16>,
    pub response_body: Option<String>,
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

/// A failed call, naming the hub and the API path.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{hub}: {method} {path}: cannot connect: {detail}")]
    Connect {
        hub: String,
        method: String,
        path: String,
        detail: String,
    },
    #[error("{hub}: {method} {path}: no answer within {timeout:?}")]
    Timeout {
        hub: String,
        method: String,
        path: String,
        timeout: Duration,
    },
    #[error("{hub}: {method} {path}: http status {status}")]
    Status {
        hub: String,
        method: String,
        path: String,
        status: u16,
    },
    #[error("{hub}: {method} {path}: {detail}")]
    Transport {
        hub: String,
        method: String,
        path: String,
        detail: String,
    },
    #[error("{hub}: {method} {path}: answer is not the documented shape: {detail}")]
    Decode {
        hub: String,
        method: String,
        path: String,
        detail: String,
    },
}

impl CallError {
    /// The request never reached the hub's HTTP server.
    pub fn is_connect(&self) -> bool {
        matches!(self, CallError::Connect { .. })
    }
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
    /// Test-only: reproduce the original bug, a new client per request.
    session_per_request: bool,
}

#[derive(Default)]
struct HubState {
    exchanges: Vec<Exchange>,
    incidents: Vec<Incident>,
    contact: Option<Contact>,
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
            session_per_request: false,
        }
    }

    /// Attribute every answer to its connection in `ledger` (the ledger the
    /// shared client's session belongs to).
    pub fn with_ledger(mut self, ledger: Ledger) -> HubClient {
        self.ledger = Some(ledger);
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
        let mut c = self.clone();
        c.cfg.request_timeout = request_timeout;
        c.cfg.retries = retries;
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

    /// `info/get` naming the sections wanted.
    pub async fn info(&self, sections: &[&str]) -> Result<InfoResponse, CallError> {
        let body = crate::device::info::sections_request(sections);
        self.call_json(Method::POST, paths::INFO_GET, Some(body))
            .await
    }

    /// `info/get` answer as a raw document (for field-by-field type checks).
    pub async fn info_raw(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        self.call_json(Method::POST, paths::INFO_GET, Some(body))
            .await
    }

    /// `config/get` asking for every section; the whole document.
    pub async fn config_get(&self) -> Result<Value, CallError> {
        let body = crate::device::config::full_request();
        self.call_json(Method::POST, paths::CONFIG_GET, Some(body))
            .await
    }

    /// `config/get` naming the sections wanted (`record` asks for every
    /// section a hub may hold, not just the ones the scenarios touch).
    pub async fn config_get_sections(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        self.call_json(Method::POST, paths::CONFIG_GET, Some(body))
            .await
    }

    /// `config/set` with a whole document.
    pub async fn config_set(&self, config: &Value) -> Result<(), CallError> {
        self.call(Method::POST, paths::CONFIG_SET, Some(config.clone()))
            .await
            .map(drop)
    }

    /// `actuators/status`.
    pub async fn actuator_status(&self) -> Result<ActuatorStatus, CallError> {
        self.call_json(Method::GET, paths::ACTUATORS_STATUS, None)
            .await
    }

    /// `actuators/status` as a raw document (for field-by-field checks).
    pub async fn actuator_status_raw(&self) -> Result<Value, CallError> {
        self.call_json(Method::GET, paths::ACTUATORS_STATUS, None)
            .await
    }

    /// `actuators/set`. Private on purpose: callers go through
    /// [`HubClient::actuator_on`] (always with a device-side duration) or
    /// [`HubClient::actuator_off`].
    async fn actuator_set(&self, set: ActuatorSet) -> Result<(), CallError> {
        let body = serde_json::to_value(set).expect("ActuatorSet serialises");
        self.call(Method::POST, paths::ACTUATORS_SET, Some(body))
            .await
            .map(drop)
    }

    /// Switch a slot on for `seconds`, at least 1 and at most
    /// `--max-on-seconds`: the hub switches it off by itself when the
    /// duration ends, even if the harness dies.
    pub async fn actuator_on(&self, slot: u32, seconds: u32) -> Result<(), CallError> {
        self.actuator_set(self.cfg.max_on.on(slot, seconds)).await
    }

    /// Switch a slot off now.
    pub async fn actuator_off(&self, slot: u32) -> Result<(), CallError> {
        self.actuator_set(crate::actuator_limit::MaxOn::off(slot))
            .await
    }

    /// `update/send`.
    pub async fn update_send(&self) -> Result<(), CallError> {
        self.call(Method::GET, paths::UPDATE_SEND, None)
            .await
            .map(drop)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CallError> {
        let text = self.call(method.clone(), path, body).await?;
        serde_json::from_str(&text).map_err(|e| CallError::Decode {
            hub: self.hub.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// One logical request: attempts with backoff on connection errors, then
    /// one recorded exchange. Returns the body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, CallError> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, path);
        let attempts_max = self.cfg.retries + 1;
        let mut backoff = self.cfg.backoff;
        let mut attempt = 1;
        // For the reboot rule: the hub dropped a connection, then refused one.
        let (mut dropped, mut refused) = (false, false);
        let result = loop {
            let http = match self.http_for_request() {
                Ok(http) => http,
                Err(e) => {
                    return Err(CallError::Transport {
                        hub: self.hub.clone(),
                        method: method.to_string(),
                        path: path.to_owned(),
                        detail: e.to_string(),
                    })
                }
            };
            let mut req = http
                .request(method.clone(), &url)
                .timeout(self.cfg.request_timeout);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let outcome = match crate::ledger::for_hub(&self.hub, req.send()).await {
                Ok(resp) => {
                    if let Some(ledger) = &self.ledger {
                        ledger.record_response(&self.hub, &resp);
                    }
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(text) => Ok((status, text)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(ok) => break Ok(ok),
                Err(e) if is_connection_error(&e) && attempt < attempts_max => {
                    if e.is_connect() {
                        refused |= dropped;
                    } else {
                        dropped = true;
                    }
                    self.incident(
                        IncidentKind::Retry,
                        format!(
                            "{method} {path}: attempt {attempt} of {attempts_max}: {}",
                            error_chain(&e)
                        ),
                    );
                    self.emit(ClientEvent::Retry {
                        hub: self.hub.clone(),
                        method: method.to_string(),
                        path: path.to_owned(),
                        attempt,
                        of: attempts_max,
                        backoff,
                        error: error_chain(&e),
                    });
                    // Backoff between attempts, not a settle delay.
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };

        let mut exchange = Exchange {
            method: method.to_string(),
            path: path.to_owned(),
            request_body: body,
            status: None,
            response_body: None,
            attempts: attempt,
            elapsed: started.elapsed(),
            error: None,
        };
        let ret = match result {
            Ok((status, text)) => {
                if attempt > 1 {
                    let (kind, what) = if refused {
                        (
                            IncidentKind::Reboot,
                            "the hub dropped the connection, refused new ones, then answered again",
                        )
                    } else {
                        (IncidentKind::Reconnect, "answered on a new connection")
                    };
                    self.incident(kind, format!("{method} {path}: {what} (attempt {attempt})"));
                }
                exchange.status = Some(status);
                exchange.response_body = Some(text.clone());
                self.note_contact(Contact::Reached);
                if (200..300).contains(&status) {
                    Ok(text)
                } else {
                    Err(CallError::Status {
                        hub: self.hub.clone(),
                        method: method.to_string(),
                        path: path.to_owned(),
                        status,
                    })
                }
            }
            Err(e) => {
                let err = self.classify(&method, path, &e);
                if let CallError::Connect { detail, .. } = &err {
                    self.note_contact(Contact::Unreachable(detail.clone()));
                } else {
                    self.note_contact(Contact::Reached);
                }
                Err(err)
            }
        };
        if let Err(e) = &ret {
            exchange.error = Some(e.to_string());
        }
        self.lock().exchanges.push(exchange.clone());
        self.emit(ClientEvent::Exchange {
            hub: self.hub.clone(),
            exchange,
        });
        ret
    }

    fn classify(&self, method: &Method, path: &str, e: &reqwest::Error) -> CallError {
        let (hub, method, path) = (self.hub.clone(), method.to_string(), path.to_owned());
        if e.is_connect() {
            CallError::Connect {
                hub,
                method,
                path,
                detail: error_chain(e),
            }
        } else if e.is_timeout() {
            CallError::Timeout {
                hub,
                method,
                path,
                timeout: self.cfg.request_timeout,
            }
        } else {
            CallError::Transport {
                hub,
                method,
                path,
                detail: error_chain(e),
            }
        }
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

/// Errors worth another attempt on a fresh connection: the connection could
/// not be made, or it broke before an answer came. Timeouts are not retried:
/// a hub that does not answer in time would only multiply the wait. Every
/// call of the hub's API is idempotent (whole-document set, absolute
/// actuator state), so a repeat is safe.
fn is_connection_error(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return false;
    }
    if e.is_connect() {
        return true;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        src = s.source();
    }
    false
}

/// The causes of an error as one line. reqwest's own top message repeats
/// the URL (the hub and path are already named) and hyper-util adds a
/// generic "client error (..)" layer; both are left out when a more
/// specific cause exists.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}
