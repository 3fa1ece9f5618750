//! How the session talks to hubs: `SessionConfig` and its defaults (the
//! request timeout's default is written here and nowhere else), and the one
//! place the run's reqwest client is built.

use std::time::Duration;

use crate::session::actuator_limit::MaxOn;
use crate::session::ledger::SessionLayer;

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
    pub max_on: MaxOn,
    /// Host names resolved by the harness itself (`.local` over mDNS), with
    /// the address the client connects to for them.
    pub resolved: Vec<(String, std::net::SocketAddr)>,
}

/// How long one request may take when neither a flag nor a plan says: the
/// one place this default is written.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one TCP connect may take (`--connect-timeout`): the one place
/// this default is written.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Extra attempts after a connection error when neither a flag nor a plan
/// says: the one place this default is written.
pub const DEFAULT_RETRIES: u32 = 2;

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff: Duration::from_millis(200),
            pool_max_idle_per_host: 1,
            pool_idle_timeout: Duration::from_secs(30),
            max_on: MaxOn::default(),
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
