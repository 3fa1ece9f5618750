//! The hub's HTTP API as an axum `Router` (`app(state)`), with the
//! request-level faults applied in front of the handlers. Callable without a
//! socket via `tower::ServiceExt::oneshot`.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::fault::{FaultKind, Route};
use super::state::{BadRequest, Received, SimState};
use super::update;
use crate::device::{paths, ActuatorSet, ActuatorStatus, InfoResponse};

/// Marks a response whose connection must be closed without sending it
/// (the `drop` fault, a reboot). The server turns it into a dropped
/// connection; called without a socket, it shows as a 503 carrying this
/// extension.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The body the `malformed` fault answers with: cut off mid-document.
pub const MALFORMED_BODY: &str = "{\"hub\":{\"first_boot\":fals";

/// The router of one simulated hub.
pub fn app(state: SimState) -> Router {
    Router::new()
        .route(paths::INFO_GET, post(info_get))
        .route(paths::CONFIG_GET, post(config_get))
        .route(paths::CONFIG_SET, post(config_set))
        .route(paths::UPDATE_SEND, get(update_send))
        .route(paths::ACTUATORS_SET, post(actuators_set))
        .route(paths::ACTUATORS_STATUS, get(actuators_status))
        .route_layer(middleware::from_fn_with_state(state.clone(), faults))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// The simulator's error answer: real firmware's error bodies are unknown.
fn bad_request(BadRequest(message): BadRequest) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": 1, "message": message}),
    )
}

/// A JSON object naming sections: `{"hub":[],"wifi":[]}`.
fn sections(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BadRequest(
            "body must be a JSON object naming the sections wanted".into(),
        )),
        Err(e) => Err(BadRequest(format!("body is not JSON: {e}"))),
    }
}

fn dropped() -> Response {
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, "connection dropped").into_response();
    r.extensions_mut().insert(DropConnection);
    r
}

/// The connection a request came on (set by the server; absent when the
/// router is called without a socket).
#[derive(Debug, Clone, Copy)]
pub struct ConnId(pub usize);

/// Largest request body the hub reads.
const BODY_LIMIT: usize = 1 << 20;

/// Record every request, before any fault, as the hub received it.
async fn record(State(state): State<SimState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    state.record_request(Received {
        connection: parts.extensions.get::<ConnId>().map(|c| c.0),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Request-level faults: reboot, delay, status, hang, drop, malformed,
/// conn-close. State faults (ignore-set, stuck-*) live in the handlers.
async fn faults(State(state): State<SimState>, req: Request, next: Next) -> Response {
    let Some(route) = Route::from_path(req.uri().path()) else {
        return next.run(req).await;
    };
    if state.count_for_reboot(route) {
        return dropped();
    }
    for (i, f) in state.faults().iter().enumerate() {
        if !f.matches(route) {
            continue;
        }
        match f.kind {
            FaultKind::Delay(d) if state.fire(i) => tokio::time::sleep(d).await,
            FaultKind::Status(code) if state.fire(i) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return code.into_response();
            }
            FaultKind::Hang if state.fire(i) => std::future::pending::<()>().await,
            FaultKind::Drop if state.fire(i) => return dropped(),
            // On config/get: the real document cut off two thirds in, so
            // it carries the hub's keys (what a report must not record).
            FaultKind::Malformed if route == Route::ConfigGet && state.fire(i) => {
                let resp = next.run(req).await;
                let (parts, body) = resp.into_parts();
                let bytes = axum::body::to_bytes(body, BODY_LIMIT)
                    .await
                    .unwrap_or_default();
                let cut = bytes.slice(..bytes.len() * 2 / 3);
                let mut parts = parts;
                parts.headers.remove(header::CONTENT_LENGTH);
                return Response::from_parts(parts, Body::from(cut));
            }
            FaultKind::Malformed if state.fire(i) => {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    MALFORMED_BODY,
                )
                    .into_response()
            }
            FaultKind::Redirect { status, port } if state.fire(i) => {
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
                let location = format!("http://127.0.0.1:{port}{}", route.path());
                return (code, [(header::LOCATION, location)]).into_response();
            }
            FaultKind::Shape(ref name) if state.fire(i) => {
                let body = super::fault::shape_body(name).unwrap_or("null");
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response();
            }
            // A write that reports failure and does nothing.
            FaultKind::ErrorField
                if matches!(
                    route,
                    Route::ConfigSet | Route::ActuatorsSet | Route::UpdateSend
                ) && state.fire(i) =>
            {
                return ok(&json!({"error": 1}));
            }
            // A write whose answer says two things, and is not done.
            FaultKind::DupKey
                if matches!(
                    route,
                    Route::ConfigSet | Route::ActuatorsSet | Route::UpdateSend
                ) && state.fire(i) =>
            {
                return raw_json(r#"{"error":1,"error":0}"#.into());
            }
            FaultKind::ErrorValue(ref v)
                if matches!(
                    route,
                    Route::ConfigSet | Route::ActuatorsSet | Route::UpdateSend
                ) && state.fire(i) =>
            {
                return raw_json(format!(r#"{{"error":{v}}}"#));
            }
            _ => {}
        }
    }
    // Faults that rewrite the real answer.
    let mut rewrite: Vec<FaultKind> = Vec::new();
    for (i, f) in state.faults().iter().enumerate() {
        if !f.matches(route) {
            continue;
        }
        let applies = match f.kind {
            FaultKind::ErrorField | FaultKind::ErrorValue(_) => {
                matches!(route, Route::ConfigGet | Route::ActuatorsStatus)
            }
            FaultKind::DupKey => matches!(
                route,
                Route::ConfigGet | Route::ActuatorsStatus | Route::InfoGet
            ),
            FaultKind::NonUtf8 => route == Route::ConfigGet,
            FaultKind::Huge(_) => true,
            _ => false,
        };
        if applies && state.fire(i) {
            rewrite.push(f.kind.clone());
        }
    }
    let mut resp = next.run(req).await;
    if !rewrite.is_empty() {
        resp = rewrite_answer(resp, &rewrite).await;
    }
    let close = state
        .faults()
        .iter()
        .enumerate()
        .filter(|(i, f)| f.kind == FaultKind::ConnClose && f.matches(route) && state.fire(*i))
        .count()
        > 0;
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Apply answer-rewriting faults to a handler's answer.
async fn rewrite_answer(resp: Response, faults: &[FaultKind]) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut bytes = bytes.to_vec();
    let mut pad_to = None;
    for f in faults {
        match f {
            FaultKind::ErrorField => {
                if let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) {
                    let failed = match doc.get("error") {
                        Some(Value::String(_)) => json!("failure"),
                        _ => json!(1),
                    };
                    doc["error"] = failed;
                    bytes = doc.to_string().into_bytes();
                }
            }
            FaultKind::NonUtf8 => {
                // Inside the first string value: after the first `":"`.
                if let Some(at) = bytes.windows(3).position(|w| w == b"\":\"") {
                    bytes.insert(at + 3, 0xE9);
                }
            }
            FaultKind::ErrorValue(v) => {
                if let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) {
                    doc["error"] = serde_json::from_str(v).unwrap_or(Value::Null);
                    bytes = doc.to_string().into_bytes();
                }
            }
            FaultKind::DupKey => bytes = dup_keys(&bytes),
            FaultKind::Huge(n) => pad_to = Some(*n),
            _ => {}
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    match pad_to {
        None => Response::from_parts(parts, Body::from(bytes)),
        Some(total) => Response::from_parts(parts, padded(bytes, total)),
    }
}

/// The `dup-key` rewrite of an answer's text: the deciding key twice, the
/// truth first. Status entries: `"state":S,"state":0`; info: another
/// device's MAC before the real one; config: `"error":1` before the rest.
fn dup_keys(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let out = if text.contains("\"actuators\":[") {
        text.replace("\"state\":0", "\"state\":0,\"state\":0")
            .replace("\"state\":1", "\"state\":1,\"state\":0")
    } else if text.contains("\"mac_addr\":") {
        text.replace(
            "\"mac_addr\":",
            &format!("\"mac_addr\":\"{}\",\"mac_addr\":", super::state::OTHER_MAC),
        )
    } else {
        match text.strip_prefix('{') {
            Some(rest) => format!("{{\"error\":1,{rest}"),
            None => text.into_owned(),
        }
    };
    out.into_bytes()
}

fn raw_json(text: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

/// `head` followed by spaces up to `total` bytes, streamed in 64 KiB chunks
/// of one shared buffer, without a length: the simulator never holds the
/// whole answer.
fn padded(head: Vec<u8>, total: u64) -> Body {
    const CHUNK: usize = 64 * 1024;
    let spaces = Bytes::from(vec![b' '; CHUNK]);
    let rest = total.saturating_sub(head.len() as u64);
    let full = rest / CHUNK as u64;
    let tail = (rest % CHUNK as u64) as usize;
    let chunks = std::iter::once(Bytes::from(head))
        .chain(std::iter::repeat_n(spaces.clone(), full as usize))
        .chain(std::iter::once(spaces.slice(..tail)))
        .map(Ok::<Bytes, std::convert::Infallible>);
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn info_get(State(state): State<SimState>, body: Bytes) -> Response {
    let wanted = match sections(&body) {
        Ok(w) => w,
        Err(e) => return bad_request(e),
    };
    let p = state.profile();
    let info = InfoResponse {
        hub: wanted.contains_key("hub").then(|| p.hub().clone()),
        wifi: wanted.contains_key("wifi").then(|| p.wifi().clone()),
    };
    // Sections in request order, as the hub builds its answer.
    let mut out = Map::new();
    let mut info = serde_json::to_value(info).unwrap_or_default();
    for (i, f) in state.faults().iter().enumerate() {
        if !f.matches(Route::InfoGet) {
            continue;
        }
        match f.kind {
            FaultKind::ClaimActuators(n) if info.get("hub").is_some() && state.fire(i) => {
                info["hub"]["num_actuators"] = json!(n);
            }
            FaultKind::MacChange if info.get("wifi").is_some() && state.fire(i) => {
                info["wifi"]["mac_addr"] = json!(super::state::OTHER_MAC);
            }
            FaultKind::CtrlChars if state.faults_enabled() => {
                if info.get("hub").is_some() {
                    info["hub"]["version"] = json!("5.1.1\u{1b}[2J\u{7}");
                }
                if info.get("wifi").is_some() {
                    info["wifi"]["strength"] = json!("-29\r\u{1b}[2Ktest result: ok.");
                }
            }
            _ => {}
        }
    }
    for name in wanted.keys() {
        if let Some(v) = info.get(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    ok(&Value::Object(out))
}

async fn config_get(State(state): State<SimState>, body: Bytes) -> Response {
    match sections(&body) {
        // The stored sections exactly as they were stored.
        Ok(wanted) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            state.config_sections_text(&wanted),
        )
            .into_response(),
        Err(e) => bad_request(e),
    }
}

async fn config_set(State(state): State<SimState>, body: Bytes) -> Response {
    let ignore = state
        .faults()
        .iter()
        .enumerate()
        .filter(|(i, f)| f.kind == FaultKind::IgnoreSet && state.fire(*i))
        .count()
        > 0;
    let Ok(text) = std::str::from_utf8(&body) else {
        return bad_request(BadRequest("body is not UTF-8".into()));
    };
    let partial = state
        .faults()
        .iter()
        .enumerate()
        .any(|(i, f)| f.kind == FaultKind::PartialSet && state.fire(i));
    let first;
    let text = match partial.then(|| first_section(text)).flatten() {
        Some(t) => {
            first = t;
            first.as_str()
        }
        None => text,
    };
    // `secret-fields`: the answer also echoes a secret in a harmless
    // field, as a chatty firmware might.
    let echo = state.faults_enabled()
        && state
            .faults()
            .iter()
            .any(|f| f.kind == FaultKind::SecretFields);
    match state.set_config_text(text, !ignore) {
        Ok(()) if echo => {
            let said = format!(
                "stored; wifi_pass is {}, api_key is {}",
                super::config::SECRETS[0],
                super::config::NUMBER_SECRET
            );
            ok(&json!({"error": 0, "message": said}))
        }
        Ok(()) => ok(&json!({"error": 0})),
        Err(e) => bad_request(e),
    }
}

/// The first top-level section of a config document, alone (`partial-set`).
fn first_section(text: &str) -> Option<String> {
    let doc: Map<String, Value> = serde_json::from_str(text).ok()?;
    let name = doc.keys().find(|k| *k != "error")?;
    let raws: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(text).ok()?;
    Some(format!(
        "{{{}:{}}}",
        Value::String(name.clone()),
        raws.get(name)?.get()
    ))
}

async fn update_send(State(state): State<SimState>) -> Response {
    // Post faults are decided per update/send request.
    let mut post = update::Post::Good;
    for (i, f) in state.faults().iter().enumerate() {
        match f.kind {
            FaultKind::NoPost if state.fire(i) => post = update::Post::None,
            FaultKind::BadPost(b) if state.fire(i) => post = update::Post::Bad(b),
            _ => {}
        }
    }
    update::send_updates_as(&state, post);
    ok(&json!({"error": 0}))
}

async fn actuators_set(State(state): State<SimState>, body: Bytes) -> Response {
    let set: ActuatorSet = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return bad_request(BadRequest(format!(
                "body must be {{\"target\":SLOT,\"duration\":SECONDS,\"state\":0|1}}: {e}"
            )))
        }
    };
    match state.set_actuator(set) {
        Ok(()) => ok(&json!({"error": 0})),
        Err(e) => bad_request(e),
    }
}

async fn actuators_status(State(state): State<SimState>) -> Response {
    let mut actuators = state.actuator_slots();
    for (i, f) in state.faults().iter().enumerate() {
        if let FaultKind::MissingSlot(slot) = f.kind {
            if f.matches(Route::ActuatorsStatus) && state.fire(i) {
                actuators.retain(|a| a.slot != slot);
            }
        }
        if f.kind == FaultKind::DupSlot && f.matches(Route::ActuatorsStatus) && state.fire(i) {
            actuators = actuators
                .into_iter()
                .flat_map(|a| {
                    let mut off = a.clone();
                    off.state = 0;
                    off.cur_ma = 0;
                    [off, a]
                })
                .collect();
        }
    }
    let status = ActuatorStatus {
        actuators,
        error: "success".into(),
    };
    ok(&serde_json::to_value(status).unwrap_or_default())
}

/// Turn a router answer into what hyper sends: a `DropConnection` answer
/// becomes an error, which makes hyper close the connection unanswered.
pub(crate) fn into_wire(resp: Response<Body>) -> Result<Response<Body>, ConnectionDropped> {
    if resp.extensions().get::<DropConnection>().is_some() {
        Err(ConnectionDropped)
    } else {
        Ok(resp)
    }
}

/// The error hyper sees for a dropped connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a simulated fault")]
pub(crate) struct ConnectionDropped;
