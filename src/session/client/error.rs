//! What a failed call is: every way a request to a hub can fail, each
//! message naming the hub and the API path, and how a transport error is
//! classified and put in one line.

use std::time::Duration;

use reqwest::Method;

use crate::device::Mac;

use super::HubClient;

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

impl HubClient {
    pub(super) fn classify(&self, method: &Method, path: &str, e: &reqwest::Error) -> CallError {
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
}

/// The causes of an error as one line. reqwest's own top message repeats
/// the URL (the hub and path are already named) and hyper-util adds a
/// generic "client error (..)" layer; both are left out when a more
/// specific cause exists.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
