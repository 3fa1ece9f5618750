//! `--verbose`: each HTTP exchange and each retry, on stderr, as it happens.

use std::sync::Arc;

use crate::session::client::{ClientEvent, Observer};

/// One line per event.
pub fn line(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Exchange { hub, exchange: x } => {
            let status = match (x.status, &x.error) {
                (Some(s), _) => s.to_string(),
                (None, Some(e)) => format!("error: {e}"),
                (None, None) => "no answer".into(),
            };
            let tries = if x.attempts > 1 {
                format!(", {} attempts", x.attempts)
            } else {
                String::new()
            };
            format!(
                "[{hub}] {} {} -> {status} ({} ms{tries})",
                x.method,
                x.path,
                x.elapsed.as_millis()
            )
        }
        ClientEvent::Retry {
            hub,
            method,
            path,
            attempt,
            of,
            backoff,
            error,
        } => format!(
            "[{hub}] {method} {path}: attempt {attempt} of {of} failed ({error}); retrying in {} ms",
            backoff.as_millis()
        ),
    }
}

/// The observer the run installs with `--verbose`.
pub fn observer() -> Observer {
    // Errors quote the hub (a Location, a JSON error field): escaped.
    Arc::new(|e: &ClientEvent| super::term::err(&super::escape::escape(&line(e))))
}
