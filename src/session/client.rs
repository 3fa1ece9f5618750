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

use crate::device::{paths, ActuatorSet, ActuatorStatus, InfoResponse, Mac};
use crate::session::answer;
use crate::session::ledger::{Ledger, SessionLayer};

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
    pub max_on: crate::safety::actuator_limit::MaxOn,
    /// Host names resolved by the harness itself (`.local` over mDNS), with
    /// the address the client connects to for them.
    pub resolved: Vec<(String, std::net::SocketAddr)>,
}

/// How long one request may take when neither a flag nor a plan says: the
/// one place this default is written.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: Duration::from_secs(3),
            retries: 2,
            backoff: Duration::from_millis(200),
            pool_max_idle_per_host: 1,
            pool_idle_timeout: Duration::from_secs(30),
            max_on: crate::safety::actuator_limit::MaxOn::default(),
            resolved: Vec::new(),
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
    let mut builder = reqwest::Client::builder();
    for (host, addr) in &cfg.resolved {
        builder = builder.resolve(host, *addr);
    }
    builder
        .connector_layer(session)
        // Hubs are on the local network: a proxy from the environment would
        // only get in the way (and would hide which socket reached the hub).
        .no_proxy()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.connect_timeout)
        .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
        .pool_idle_timeout(cfg.pool_idle_timeout)
        .http1_only()
        // The harness talks only to the hub's own address: a 3xx is a hub
        // failure naming its status and Location, never followed.
        .redirect(reqwest::redirect::Policy::none())
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

/// The largest answer body the harness reads from a hub. A hub's answers
/// are a few kilobytes; past this the harness stops reading (the
/// connection is dropped) and the call fails naming the limit, so no answer
/// can make a run use unbounded memory.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The longest answer body an exchange keeps for reports. A longer one is
/// kept as its length and a short hash only ([`Exchange::response_summary`]).
pub const MAX_RECORDED_BODY: usize = 16 * 1024;

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
    /// No answer in time, but the harness itself fell behind meanwhile
    /// (its own timer or runtime woke `lag` late), even after the hub was
    /// given its timeout again: the harness is overloaded, which says
    /// nothing about the hub.
    #[error(
        "{hub}: {method} {path}: no answer within {timeout:?}, but the harness itself fell \
         {lag:?} behind meanwhile (overloaded; not counted against the hub)"
    )]
    HarnessLag {
        hub: String,
        method: String,
        path: String,
        timeout: Duration,
        lag: Duration,
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
    #[error(
        "{hub}: {method} {path}: the hub answered a redirect (http status {status}, Location {location}); \
         the harness talks only to the hub's own address and does not follow it"
    )]
    Redirect {
        hub: String,
        method: String,
        path: String,
        status: u16,
        /// Escaped and bounded for messages.
        location: String,
    },
    #[error("{hub}: {method} {path}: answer larger than {limit} bytes; stopped reading it")]
    TooLarge {
        hub: String,
        method: String,
        path: String,
        limit: usize,
    },
    #[error(
        "{hub}: {method} {path}: the hub reported error {error} (it did not do what was asked)"
    )]
    HubError {
        hub: String,
        method: String,
        path: String,
        /// The `error` field as JSON, escaped and bounded.
        error: String,
    },
    #[error(
        "{hub}: the hub now answers with MAC {got}, not {expected} as before (another device at \
         that address?); every further write to it is stopped"
    )]
    IdentityChanged {
        hub: String,
        expected: Mac,
        got: Mac,
    },
    #[error("{hub}: {method} {path}: not sent: cannot confirm the hub's identity first: {detail}")]
    IdentityUnknown {
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
    /// The run's lag monitor, when the run has one.
    lag: Option<crate::session::lag::LagMonitor>,
    /// Test-only: reproduce the original bug, a new client per request.
    session_per_request: bool,
}

/// How many times a request's timeout is given again because the harness
/// itself fell behind while it ran.
const LAG_EXTENSIONS: u32 = 2;

/// Why an attempt ended without an answer.
enum Failure {
    Http(reqwest::Error),
    /// The request's clock ran out; with the harness's lag seen last.
    Expired {
        lag: Duration,
    },
}

/// Test-only (`VEGEHUB_HARNESS_DEBUG_STALL=PATH:MS`): the first request to
/// PATH stalls its thread for MS once it is sent, as an overloaded host
/// would: the harness falls behind, the hub does not.
fn debug_stall(path: &str) -> Option<Duration> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    static SPEC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let spec = SPEC
        .get_or_init(|| std::env::var("VEGEHUB_HARNESS_DEBUG_STALL").ok())
        .as_deref()?;
    let (p, ms) = spec.rsplit_once(':')?;
    if !path.ends_with(p) || DONE.swap(true, Ordering::SeqCst) {
        return None;
    }
    ms.parse().ok().map(Duration::from_millis)
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

/// A `config/get` answer: the exact bytes the hub sent (what a backup keeps
/// and a restore writes back) and the parsed document (for display,
/// comparison and building a test config). Only answers that are UTF-8
/// JSON objects whose `error` says success get this far.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigAnswer {
    pub text: String,
    pub doc: Value,
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

    /// Run one attempt on the request's clock: `request_timeout` of time
    /// the harness was awake for. When the clock runs out but the harness
    /// fell behind meanwhile (the timer itself woke late, or the runtime
    /// did), the same request in flight is given the timeout again, up to
    /// [`LAG_EXTENSIONS`] times: an answer waiting in the socket is taken,
    /// and the hub is never blamed for the harness's lag.
    async fn on_the_clock<F: std::future::Future>(
        &self,
        path: &str,
        attempt: F,
    ) -> Result<F::Output, Duration> {
        use tokio::time::Instant as TInstant;
        let timeout = self.cfg.request_timeout;
        tokio::pin!(attempt);
        if let Some(stall) = debug_stall(path) {
            // Sent, then the thread stops as if starved.
            let once = std::future::poll_fn(|cx| std::task::Poll::Ready(attempt.as_mut().poll(cx)));
            if let std::task::Poll::Ready(out) = once.await {
                return Ok(out);
            }
            std::thread::sleep(stall);
        }
        let mut since = TInstant::now();
        let mut deadline = since + timeout;
        let mut extensions = 0;
        loop {
            match tokio::time::timeout_at(deadline, attempt.as_mut()).await {
                Ok(out) => return Ok(out),
                Err(_) => {
                    let now = TInstant::now();
                    let late = now.saturating_duration_since(deadline);
                    let runtime = self
                        .lag
                        .as_ref()
                        .map_or(Duration::ZERO, |m| m.worst_since(since));
                    let lag = late.max(runtime);
                    if lag < crate::session::lag::significant(timeout) {
                        return Err(Duration::ZERO);
                    }
                    if extensions == LAG_EXTENSIONS {
                        return Err(lag);
                    }
                    extensions += 1;
                    self.incident(
                        IncidentKind::Retry,
                        format!(
                            "{path}: no answer within {timeout:?} while the harness fell \
                             {lag:?} behind; waiting {timeout:?} more for the same request"
                        ),
                    );
                    since = now;
                    deadline = now + timeout;
                }
            }
        }
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

    /// `info/get` naming the sections wanted, typed.
    pub async fn info(&self, sections: &[&str]) -> Result<InfoResponse, CallError> {
        let doc = self.info_raw(sections).await?;
        serde_json::from_value(doc)
            .map_err(|e| self.decode(&Method::POST, paths::INFO_GET, e.to_string()))
    }

    /// `info/get` answer as a raw document (for field-by-field type checks).
    /// It must be a JSON object. A MAC in its `wifi` section is held against
    /// the hub's first one: another MAC fails the call and stops every
    /// later write to this address.
    pub async fn info_raw(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        let doc: Value = self
            .call_json(Method::POST, paths::INFO_GET, Some(Req::json(body)))
            .await?;
        if !doc.is_object() {
            return Err(self.decode(
                &Method::POST,
                paths::INFO_GET,
                format!("{}, not a JSON object", kind_of(&doc)),
            ));
        }
        if let Some(why) = answer::missing_section(&doc, sections) {
            return Err(self.decode(&Method::POST, paths::INFO_GET, why));
        }
        if let Some(mac) = doc
            .get("wifi")
            .and_then(|w| w.get("mac_addr"))
            .and_then(Value::as_str)
            .and_then(Mac::parse)
        {
            self.observe_mac(mac)?;
        }
        Ok(doc)
    }

    /// The hub's MAC as this client holds it (the first one seen).
    pub fn pinned_mac(&self) -> Option<Mac> {
        self.lock().mac.clone()
    }

    /// The MAC change seen on this address, if any: (expected, got).
    pub fn identity_changed(&self) -> Option<(Mac, Mac)> {
        self.lock().identity_changed.clone()
    }

    fn observe_mac(&self, mac: Mac) -> Result<(), CallError> {
        let mut st = self.lock();
        if let Some((expected, got)) = &st.identity_changed {
            return Err(CallError::IdentityChanged {
                hub: self.hub.clone(),
                expected: expected.clone(),
                got: got.clone(),
            });
        }
        match &st.mac {
            None => {
                st.mac = Some(mac);
                Ok(())
            }
            Some(m) if *m == mac => Ok(()),
            Some(m) => {
                let (expected, got) = (m.clone(), mac);
                st.identity_changed = Some((expected.clone(), got.clone()));
                Err(CallError::IdentityChanged {
                    hub: self.hub.clone(),
                    expected,
                    got,
                })
            }
        }
    }

    /// Before every write: the hub at this address must still be the one
    /// this client first talked to. Reads its MAC now; a write is sent only
    /// when it matches (the first MAC seen is held from then on).
    async fn check_identity(&self, method: &Method, path: &str) -> Result<(), CallError> {
        if let Some((expected, got)) = self.identity_changed() {
            return Err(CallError::IdentityChanged {
                hub: self.hub.clone(),
                expected,
                got,
            });
        }
        let doc = match self.info_raw(&["wifi"]).await {
            Ok(doc) => doc,
            Err(e @ CallError::IdentityChanged { .. }) => return Err(e),
            Err(e) => {
                return Err(CallError::IdentityUnknown {
                    hub: self.hub.clone(),
                    method: method.to_string(),
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
            }
        };
        let has_mac = doc
            .get("wifi")
            .and_then(|w| w.get("mac_addr"))
            .and_then(Value::as_str)
            .and_then(Mac::parse)
            .is_some();
        if has_mac {
            Ok(())
        } else {
            Err(CallError::IdentityUnknown {
                hub: self.hub.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                detail: "info/get carried no valid wifi.mac_addr".into(),
            })
        }
    }

    /// `config/get` asking for every section: the exact answer and the
    /// parsed document, after the checks of [`check_config_answer`]. An
    /// answer that is not UTF-8, not JSON, not an object, reports an error,
    /// or has a shape the harness does not understand is an error here, so
    /// nothing is ever built on (or written from) it.
    pub async fn config_get(&self) -> Result<ConfigAnswer, CallError> {
        let body = crate::device::config::full_request();
        let (method, path) = (Method::POST, paths::CONFIG_GET);
        let bytes = self
            .call(method.clone(), path, Some(Req::json(body)))
            .await?;
        let text = String::from_utf8(bytes).map_err(|e| {
            self.decode(
                &method,
                path,
                format!(
                    "not valid UTF-8 (at byte {}): the config cannot be kept exactly, so nothing is written",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| self.decode(&method, path, format!("not JSON: {e}")))?;
        if answer::top_level_duplicate(&text, "error") {
            return Err(self.decode(
                &method,
                path,
                "the error field appears twice, so whether the hub succeeded is unknown".into(),
            ));
        }
        check_config_answer(&doc).map_err(|why| {
            self.decode(
                &method,
                path,
                format!("{why}; the harness does not write a config it does not understand"),
            )
        })?;
        self.check_error_field(&method, path, &doc)?;
        Ok(ConfigAnswer { text, doc })
    }

    /// `config/get` naming the sections wanted (`record` asks for every
    /// section a hub may hold, not just the ones the scenarios touch). The
    /// `error` field must say success.
    pub async fn config_get_sections(&self, sections: &[&str]) -> Result<Value, CallError> {
        let body = crate::device::info::sections_request(sections);
        let (method, path) = (Method::POST, paths::CONFIG_GET);
        let doc: Value = self
            .call_json(method.clone(), path, Some(Req::json(body)))
            .await?;
        self.check_error_field(&method, path, &doc)?;
        Ok(doc)
    }

    /// `config/set` with a whole document built by the harness (a test
    /// config). Numbers keep their exact text (serde_json
    /// `arbitrary_precision`).
    pub async fn config_set(&self, config: &Value) -> Result<(), CallError> {
        self.write(Method::POST, paths::CONFIG_SET, Req::json(config.clone()))
            .await
    }

    /// `config/set` with exactly these bytes: a config as the hub sent it
    /// (a backup, or the document just read), never re-encoded.
    pub async fn config_set_exact(&self, text: &str) -> Result<(), CallError> {
        let shown = serde_json::from_str(text).unwrap_or(Value::Null);
        self.write(
            Method::POST,
            paths::CONFIG_SET,
            Req {
                bytes: text.as_bytes().to_vec(),
                shown,
            },
        )
        .await
    }

    /// `actuators/status`: every listed slot, typed. The `error` field must
    /// say success; more than [`MAX_STATUS_ENTRIES`] entries is refused.
    pub async fn actuator_status(&self) -> Result<ActuatorStatus, CallError> {
        let (method, path) = (Method::GET, paths::ACTUATORS_STATUS);
        let doc = self.actuator_status_raw().await?;
        let list = doc
            .get("actuators")
            .and_then(Value::as_array)
            .ok_or_else(|| self.decode(&method, path, "actuators missing or not a list".into()))?;
        if list.len() > MAX_STATUS_ENTRIES {
            return Err(self.decode(
                &method,
                path,
                format!(
                    "{} entries listed, more than the harness handles ({MAX_STATUS_ENTRIES})",
                    list.len()
                ),
            ));
        }
        let actuators = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                serde_json::from_value(e.clone())
                    .map_err(|err| self.decode(&method, path, format!("actuators[{i}]: {err}")))
            })
            .collect::<Result<Vec<_>, CallError>>()?;
        let slots: Vec<u32> = actuators
            .iter()
            .map(|a: &crate::device::ActuatorSlot| a.slot)
            .collect();
        if let Some(slot) = answer::slot_listed_twice(&slots) {
            return Err(self.decode(
                &method,
                path,
                format!("slot {slot} is listed twice, so its state is unknown"),
            ));
        }
        Ok(ActuatorStatus {
            actuators,
            error: "success".into(),
        })
    }

    /// `actuators/status` as a raw document (for field-by-field checks); a
    /// JSON object whose `error` says success.
    pub async fn actuator_status_raw(&self) -> Result<Value, CallError> {
        let (method, path) = (Method::GET, paths::ACTUATORS_STATUS);
        let doc: Value = self.call_json(method.clone(), path, None).await?;
        if !doc.is_object() {
            return Err(self.decode(
                &method,
                path,
                format!("{}, not a JSON object", kind_of(&doc)),
            ));
        }
        self.check_error_field(&method, path, &doc)?;
        Ok(doc)
    }

    /// `actuators/set`. Private on purpose: callers go through
    /// [`HubClient::actuator_on`] (always with a device-side duration) or
    /// [`HubClient::actuator_off`].
    async fn actuator_set(&self, set: ActuatorSet) -> Result<(), CallError> {
        let body = serde_json::to_value(set).expect("ActuatorSet serialises");
        self.write(Method::POST, paths::ACTUATORS_SET, Req::json(body))
            .await
    }

    /// Switch a slot on for `seconds`, at least 1 and at most
    /// `--max-on-seconds`: the hub switches it off by itself when the
    /// duration ends, even if the harness dies.
    pub async fn actuator_on(&self, slot: u32, seconds: u32) -> Result<(), CallError> {
        self.actuator_set(self.cfg.max_on.on(slot, seconds)).await
    }

    /// Switch a slot off now.
    pub async fn actuator_off(&self, slot: u32) -> Result<(), CallError> {
        self.actuator_set(crate::safety::actuator_limit::MaxOn::off(slot))
            .await
    }

    /// `update/send`.
    pub async fn update_send(&self) -> Result<(), CallError> {
        let (method, path) = (Method::GET, paths::UPDATE_SEND);
        let bytes = self.call(method.clone(), path, None).await?;
        self.check_write_answer(&method, path, &bytes)
    }

    /// A request that changes the hub: identity checked first, then the
    /// answer's `error` field.
    async fn write(&self, method: Method, path: &str, body: Req) -> Result<(), CallError> {
        self.check_identity(&method, path).await?;
        let bytes = self.call(method.clone(), path, Some(body)).await?;
        self.check_write_answer(&method, path, &bytes)
    }

    /// A write's answer: `200` is success, unless its body is a JSON
    /// object whose `error` field says otherwise (`{"error":1}`).
    fn check_write_answer(
        &self,
        method: &Method,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), CallError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(doc) => {
                if let Some(why) = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(answer::duplicate_key)
                {
                    return Err(self.decode(
                        method,
                        path,
                        format!("{why}: the write is not known to be done"),
                    ));
                }
                self.check_error_field(method, path, &doc)
            }
            // The documented answer is a bare 200; a body that is not JSON
            // carries no error field to read.
            Err(_) => Ok(()),
        }
    }

    /// The `error` field, where an answer carries one, must say success
    /// (`0` on config answers, `"success"` on actuator status).
    fn check_error_field(&self, method: &Method, path: &str, doc: &Value) -> Result<(), CallError> {
        match doc.get("error") {
            None if answer::error_required(path) => Err(self.decode(
                method,
                path,
                "the error field is missing (this answer always carries one)".into(),
            )),
            None => Ok(()),
            Some(e) if answer::error_means_success(path, e) => Ok(()),
            Some(e) => Err(CallError::HubError {
                hub: self.hub.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                error: bounded(&e.to_string(), 80),
            }),
        }
    }

    fn decode(&self, method: &Method, path: &str, detail: String) -> CallError {
        CallError::Decode {
            hub: self.hub.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            detail: bounded(&detail, 300),
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Req>,
    ) -> Result<T, CallError> {
        let bytes = self.call(method.clone(), path, body).await?;
        if let Some(why) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(answer::duplicate_key)
        {
            return Err(self.decode(&method, path, why));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.decode(&method, path, e.to_string()))
    }

    /// One logical request: attempts with backoff on connection errors, then
    /// one recorded exchange. Returns the body of a 2xx answer, read up to
    /// [`MAX_ANSWER_BYTES`]; a 3xx is never followed.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Req>,
    ) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, path);
        let attempts_max = self.cfg.retries + 1;
        let mut backoff = self.cfg.backoff;
        let mut attempt = 1;
        // Shown as progress when it lasts (report::progress).
        let wait = crate::session::wait::begin(
            format!("{}: answer to {method} {path}", self.hub),
            Some(self.cfg.request_timeout),
        );
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
            // The request's own clock is `on_the_clock`; reqwest's timeout
            // only backs it up.
            let backstop = self.cfg.request_timeout * (LAG_EXTENSIONS + 2);
            let mut req = http.request(method.clone(), &url).timeout(backstop);
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.bytes.clone());
            }
            let exchange = async {
                match crate::session::ledger::for_hub(&self.hub, req.send()).await {
                    Ok(resp) => {
                        if let Some(ledger) = &self.ledger {
                            ledger.record_response(&self.hub, &resp);
                        }
                        let status = resp.status().as_u16();
                        let location = resp
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                        let encoding = answer::unasked_encoding(
                            resp.headers()
                                .get(reqwest::header::CONTENT_ENCODING)
                                .map(|v| v.as_bytes()),
                        );
                        read_bounded(resp, MAX_ANSWER_BYTES)
                            .await
                            .map(|read| (status, (location, encoding), read))
                    }
                    Err(e) => Err(e),
                }
            };
            let outcome = match self.on_the_clock(path, exchange).await {
                Ok(outcome) => outcome,
                Err(lag) => break Err(Failure::Expired { lag }),
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
                    // Doubling, up to a ceiling: ten retries stay bounded.
                    backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                    attempt += 1;
                    wait.retry(format!(
                        "attempt {attempt} of {attempts_max} after {}",
                        error_chain(&e)
                    ));
                }
                Err(e) => break Err(Failure::Http(e)),
            }
        };

        let mut exchange = Exchange {
            method: method.to_string(),
            path: path.to_owned(),
            request_body: body.map(|b| b.shown),
            status: None,
            response_body: None,
            response_summary: None,
            attempts: attempt,
            elapsed: started.elapsed(),
            error: None,
        };
        let (m, p) = (method.to_string(), path.to_owned());
        let ret = match result {
            Ok((status, (location, encoding), read)) => {
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
                self.note_contact(Contact::Reached);
                match &read {
                    Read::Complete(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) if bytes.len() <= MAX_RECORDED_BODY => {
                            exchange.response_body = Some(text.to_owned())
                        }
                        _ => exchange.response_summary = Some(body_summary(bytes)),
                    },
                    Read::TooLarge { seen } => {
                        exchange.response_summary = Some(format!(
                            "<more than {MAX_ANSWER_BYTES} bytes ({seen} read before stopping); not recorded>"
                        ))
                    }
                }
                match (status, read) {
                    (300..=399, _) => Err(CallError::Redirect {
                        hub: self.hub.clone(),
                        method: m,
                        path: p,
                        status,
                        location: location
                            .map(|l| bounded(&l, 200))
                            .unwrap_or_else(|| "(none)".into()),
                    }),
                    (200..=299, Read::Complete(_)) if encoding.is_some() => {
                        Err(self.decode(
                            &method,
                            path,
                            format!(
                                "Content-Encoding {} that the harness did not ask for; it cannot check the answer",
                                encoding.unwrap_or_default()
                            ),
                        ))
                    }
                    (200..=299, Read::Complete(bytes)) => Ok(bytes),
                    (200..=299, Read::TooLarge { .. }) => Err(CallError::TooLarge {
                        hub: self.hub.clone(),
                        method: m,
                        path: p,
                        limit: MAX_ANSWER_BYTES,
                    }),
                    _ => Err(CallError::Status {
                        hub: self.hub.clone(),
                        method: m,
                        path: p,
                        status,
                    }),
                }
            }
            Err(Failure::Expired { lag }) => {
                self.note_contact(Contact::Reached);
                let timeout = self.cfg.request_timeout;
                Err(if lag.is_zero() {
                    CallError::Timeout {
                        hub: self.hub.clone(),
                        method: m,
                        path: p,
                        timeout,
                    }
                } else {
                    let e = CallError::HarnessLag {
                        hub: self.hub.clone(),
                        method: m,
                        path: p,
                        timeout,
                        lag,
                    };
                    self.lock().lagged.push(e.to_string());
                    e
                })
            }
            Err(Failure::Http(e)) => {
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
/// The longest pause between two attempts of one request.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

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

/// Most entries an `actuators/status` answer may list. The harness never
/// handles more than [`MAX_ACTUATORS`] slots; a longer list is a hub fault.
pub const MAX_STATUS_ENTRIES: usize = 256;

/// Most actuator slots the harness switches or cleans up on one hub
/// (VegeHubs have up to 4). A hub claiming more is a failure, and nothing
/// is switched on it.
pub const MAX_ACTUATORS: u32 = 32;

/// Most sensor channels the harness accepts from one hub.
pub const MAX_CHANNELS: u32 = 64;

/// A request body: the bytes sent, and the document as recorded.
struct Req {
    bytes: Vec<u8>,
    shown: Value,
}

impl Req {
    fn json(v: Value) -> Req {
        Req {
            bytes: serde_json::to_vec(&v).expect("a JSON value serialises"),
            shown: v,
        }
    }
}

/// An answer body, read up to a limit.
enum Read {
    Complete(Vec<u8>),
    /// The limit was passed after `seen` bytes; reading stopped there.
    TooLarge {
        seen: usize,
    },
}

/// Read at most `max` bytes of `resp`'s body. A declared length over the
/// limit is refused before reading; otherwise chunks are read until the
/// limit is passed, then the response (and with it the connection) is
/// dropped, so memory stays bounded whatever the hub sends.
async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Result<Read, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Ok(Read::TooLarge { seen: 0 });
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Ok(Read::TooLarge {
                seen: buf.len() + chunk.len(),
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Read::Complete(buf))
}

/// How a body that is not kept is recorded: its length and a short hash.
pub fn body_summary(bytes: &[u8]) -> String {
    crate::safety::redact::opaque(bytes)
}

/// The JSON type of a document, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The shape every `config/get` answer must have before the harness backs
/// it up, compares it or builds on it: a JSON object; `endpoints` absent,
/// null or a list of objects; `hub` absent or an object; `api_key` absent,
/// null or a string.
pub fn check_config_answer(doc: &Value) -> Result<(), String> {
    let Some(obj) = doc.as_object() else {
        return Err(format!("the config is {}, not a JSON object", kind_of(doc)));
    };
    match obj.get("endpoints") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if let Some(i) = list.iter().position(|e| !e.is_object()) {
                return Err(format!(
                    "endpoints[{i}] is {}, not an object",
                    kind_of(&list[i])
                ));
            }
        }
        Some(other) => {
            return Err(format!(
                "endpoints is {}, not a list or null",
                kind_of(other)
            ))
        }
    }
    match obj.get("hub") {
        None | Some(Value::Object(_)) => {}
        Some(other) => return Err(format!("hub is {}, not an object", kind_of(other))),
    }
    match obj.get("api_key") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(other) => return Err(format!("api_key is {}, not a string", kind_of(other))),
    }
    if !["endpoints", "hub", "api_key"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err("none of the sections asked for (endpoints, hub, api_key) is there".into());
    }
    Ok(())
}

/// Hub text quoted in an error, cut to `max` characters. Escaping for the
/// terminal happens where it is printed (`report::escape`).
pub(crate) fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client_with(lag: crate::session::lag::LagMonitor) -> HubClient {
        let cfg = SessionConfig {
            request_timeout: Duration::from_secs(1),
            ..SessionConfig::default()
        };
        let http = build_http(&cfg, crate::session::ledger::Ledger::new(2).new_session()).unwrap();
        HubClient::new(http, "http://127.0.0.1:9", "127.0.0.1:9", cfg, None).with_lag_monitor(lag)
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_the_hubs_unless_the_harness_fell_behind() {
        use tokio::time::Instant as T;
        // No lag: the hub had its second and did not answer.
        let c = client_with(crate::session::lag::LagMonitor::default());
        let start = T::now();
        let r = c
            .on_the_clock("/api/info/get", std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Duration::ZERO));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(c.take_incidents().is_empty());

        // The harness keeps falling behind: the same request is given its
        // timeout again twice, then the lag is the verdict, not the hub.
        let lag = crate::session::lag::LagMonitor::default();
        let noter = lag.clone();
        let behind = tokio::spawn(async move {
            loop {
                noter.note(T::now(), Duration::from_millis(400));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let c = client_with(lag.clone());
        let start = T::now();
        let r = c
            .on_the_clock("/api/info/get", std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Duration::from_millis(400)));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(c.take_incidents().len(), 2);

        // An answer that comes during the extra time is taken.
        let c = client_with(lag);
        let answer = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            7
        };
        assert_eq!(c.on_the_clock("/api/info/get", answer).await, Ok(7));
        behind.abort();
    }

    #[test]
    fn config_shapes_the_harness_does_not_understand_are_named() {
        assert!(check_config_answer(&json!({"endpoints": [], "error": 0})).is_ok());
        assert!(check_config_answer(&json!({"hub": {}, "api_key": "", "endpoints": null})).is_ok());
        for (doc, want) in [
            (json!(null), "the config is null"),
            (json!([1]), "the config is an array"),
            (json!({"endpoints": 3}), "endpoints is a number"),
            (json!({"endpoints": [1]}), "endpoints[0] is a number"),
            (json!({"hub": "x"}), "hub is a string"),
            (json!({"api_key": 1}), "api_key is a number"),
            (json!({"error": 0}), "none of the sections asked for"),
        ] {
            let e = check_config_answer(&doc).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
