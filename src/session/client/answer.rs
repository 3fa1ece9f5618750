//! Reading a hub's answer within bounds and checking it: the body read up
//! to a limit, kept for reports only when short (else its length and hash),
//! the status (a redirect named, never followed), the `error` field and the
//! documented shapes; the bounds on what a hub may claim.

use crate::device::bounded;
use reqwest::Method;
use serde_json::Value;

use super::retry::{Ended, Failure};
use super::{CallError, ClientEvent, Contact, Exchange, HubClient, IncidentKind};

/// The largest answer body the harness reads from a hub. A hub's answers
/// are a few kilobytes; past this the harness stops reading (the
/// connection is dropped) and the call fails naming the limit, so no answer
/// can make a run use unbounded memory.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The longest answer body an exchange keeps for reports. A longer one is
/// kept as its length and a short hash only ([`Exchange::response_summary`]).
pub const MAX_RECORDED_BODY: usize = 16 * 1024;

/// Most entries an `actuators/status` answer may list. The harness never
/// handles more than [`MAX_ACTUATORS`] slots; a longer list is a hub fault.
pub const MAX_STATUS_ENTRIES: usize = 256;

/// Most actuator slots the harness switches or cleans up on one hub
/// (VegeHubs have up to 4). A hub claiming more is a failure, and nothing
/// is switched on it.
pub const MAX_ACTUATORS: u32 = 32;

/// Most sensor channels the harness accepts from one hub.
pub const MAX_CHANNELS: u32 = 64;

/// An answer body, read up to a limit.
pub(super) enum Read {
    Complete(Vec<u8>),
    /// Not read: sent in a `Content-Encoding` the harness did not ask for
    /// (it sends no `Accept-Encoding`), so it could not be checked.
    Encoded(String),
    /// The limit was passed after `seen` bytes; reading stopped there.
    TooLarge {
        seen: usize,
    },
}

/// Read at most `max` bytes of `resp`'s body. A declared length over the
/// limit is refused before reading; otherwise chunks are read until the
/// limit is passed, then the response (and with it the connection) is
/// dropped, so memory stays bounded whatever the hub sends.
pub(super) async fn read_bounded(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Read, reqwest::Error> {
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

/// A body recorded without its content (an answer not kept, a report body
/// that is not JSON): its length and the first 12 hex digits of its
/// SHA-256, enough to tell two bodies apart.
pub fn opaque(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("<{} bytes, not recorded; sha256 {hex}>", bytes.len())
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

/// A hub's JSON value as a message quotes it: a scalar as its JSON text,
/// cut to 80 characters; an object or a list only by its kind. What a
/// container holds is the hub's, under keys no allow-list has seen
/// (`{"psk":"…"}` as an `error` field), so it is never quoted whole.
pub fn quote_value(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => kind_of(v).to_owned(),
        scalar => bounded(&scalar.to_string(), 80),
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

/// What this prints in place of a URL part that may carry a credential.
const HIDDEN: &str = "<redacted>";

/// A `Location` a hub sent, as messages and reports show it: where it
/// points (scheme, host, port, path), never a `user:password@`, query or
/// fragment, which can carry credentials or tokens. The hub's text is
/// untrusted, so nothing in those parts is shown, whatever it looks like.
pub(crate) fn shown_location(l: &str) -> String {
    let (head, tail) = match l.find(['?', '#']) {
        Some(i) => (&l[..i], Some(&l[i..i + 1])),
        None => (l, None),
    };
    let mut out = match head.find("//") {
        Some(i) => {
            let (before, after) = head.split_at(i + 2);
            let end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(end);
            match authority.rfind('@') {
                Some(at) => format!("{before}{HIDDEN}{}{path}", &authority[at..]),
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(mark) = tail {
        out.push_str(mark);
        out.push_str(HIDDEN);
    }
    out
}

impl HubClient {
    /// A write's answer: `200` is success, unless its body is a JSON
    /// object whose `error` field says otherwise (`{"error":1}`).
    pub(super) fn check_write_answer(
        &self,
        method: &Method,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), CallError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(doc) => {
                if let Some(why) = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(super::rules::duplicate_key)
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

    /// The `error` field, where an answer carries one, must say success in
    /// the form its endpoint documents (`rules::error_means_success`);
    /// `config/get` and `actuators/status` must carry one.
    pub(super) fn check_error_field(
        &self,
        method: &Method,
        path: &str,
        doc: &Value,
    ) -> Result<(), CallError> {
        match doc.get("error") {
            None if super::rules::error_required(path) => Err(self.decode(
                method,
                path,
                "the error field is missing (this answer always carries one)".into(),
            )),
            None => Ok(()),
            Some(e) if super::rules::error_means_success(path, e) => Ok(()),
            Some(e) => Err(CallError::HubError {
                hub: self.hub.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                error: quote_value(e),
            }),
        }
    }

    pub(super) fn decode(&self, method: &Method, path: &str, detail: String) -> CallError {
        CallError::Decode {
            hub: self.hub.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            detail: bounded(&detail, 300),
        }
    }

    /// The end of one logical request: the exchange recorded (the answer
    /// body kept when short UTF-8, else only its length and hash), the
    /// incident of a reconnect or reboot, the first contact, and the answer
    /// checked: a 2xx body read within [`MAX_ANSWER_BYTES`], a redirect
    /// named and not followed, any other status an error.
    pub(super) fn conclude(
        &self,
        method: &Method,
        path: &str,
        request_body: Option<Value>,
        ended: Ended,
    ) -> Result<Vec<u8>, CallError> {
        let Ended {
            result,
            attempts: attempt,
            refused,
            started,
        } = ended;
        let mut exchange = Exchange {
            method: method.to_string(),
            path: path.to_owned(),
            request_body,
            status: None,
            response_body: None,
            response_summary: None,
            attempts: attempt,
            elapsed: started.elapsed(),
            error: None,
        };
        let (m, p) = (method.to_string(), path.to_owned());
        let ret = match result {
            Ok((status, location, read)) => {
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
                        _ => exchange.response_summary = Some(opaque(bytes)),
                    },
                    Read::Encoded(enc) => {
                        exchange.response_summary =
                            Some(format!("<Content-Encoding {enc}; not read>"))
                    }
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
                            .map(|l| bounded(&shown_location(&l), 200))
                            .unwrap_or_else(|| "(none)".into()),
                    }),
                    (200..=299, Read::Complete(bytes)) => Ok(bytes),
                    (200..=299, Read::Encoded(enc)) => Err(self.decode(
                        method,
                        path,
                        format!(
                            "Content-Encoding {enc} that the harness did not ask for; it cannot check the answer"
                        ),
                    )),
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
                let err = self.classify(method, path, &e);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn a_value_is_quoted_whole_only_when_it_holds_nothing_else() {
        assert_eq!(quote_value(&json!(1)), "1");
        assert_eq!(quote_value(&json!("failure")), "\"failure\"");
        assert_eq!(quote_value(&json!({"psk": "SECRET"})), "an object");
        assert_eq!(quote_value(&json!(["SECRET"])), "an array");
        assert_eq!(quote_value(&json!("x".repeat(100))).chars().count(), 81);
    }

    #[test]
    fn a_location_shows_where_it_points_never_a_credential() {
        for (sent, shown) in [
            ("http://127.0.0.1:9/api/x", "http://127.0.0.1:9/api/x"),
            (
                "http://admin:hunter22@127.0.0.1:9/x",
                "http://<redacted>@127.0.0.1:9/x",
            ),
            ("//u:p@127.0.0.1:9", "//<redacted>@127.0.0.1:9"),
            ("/api/info/get?token=abc#k", "/api/info/get?<redacted>"),
            ("http://h/x#frag", "http://h/x#<redacted>"),
            ("../info/get", "../info/get"),
            ("", ""),
        ] {
            assert_eq!(shown_location(sent), shown, "{sent}");
        }
    }

    #[test]
    fn an_opaque_body_is_length_and_hash_only() {
        let body = b"{\"api_key\":\"SECRET-KEY\",";
        let o = opaque(body);
        assert!(
            o.starts_with(&format!("<{} bytes, not recorded; sha256 ", body.len())),
            "{o}"
        );
        assert!(!o.contains("SECRET"));
        assert_eq!(o, opaque(b"{\"api_key\":\"SECRET-KEY\","));
    }
}
