//! The connection ledger with a real reqwest client against a real HTTP
//! server on 127.0.0.1:0, closes read from this machine's socket table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use vegehub_harness::session::ledger::{Ledger, SessionLayer, Verdict};

/// A small server: `/` keeps the connection alive, `/close` answers with
/// `Connection: close`, `/big` sends a body too large to sit in buffers,
/// `/together` answers only once three requests are waiting.
async fn server() -> (String, tokio::task::JoinHandle<()>) {
    let together = Arc::new(tokio::sync::Barrier::new(3));
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/close",
            get(|| async { ([(header::CONNECTION, "close")], "bye") }),
        )
        .route("/big", get(|| async { vec![b'x'; 8 << 20] }))
        .route(
            "/together",
            get(move || {
                let together = together.clone();
                async move {
                    together.wait().await;
                    "all here"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr.to_string(), task)
}

fn client(layer: SessionLayer) -> reqwest::Client {
    reqwest::Client::builder()
        .connector_layer(layer)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get_text(ledger: &Ledger, client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    let hub = vegehub_harness::session::ledger::hub_label(response.url());
    ledger.record_response(&hub, &response);
    response.text().await.unwrap()
}

/// The server, a ledger with `budget`, and a client of one session in it.
async fn session(budget: usize) -> (String, tokio::task::JoinHandle<()>, Ledger, reqwest::Client) {
    let (hub, server) = server().await;
    let ledger = Ledger::new(budget);
    let client = client(ledger.new_session());
    (hub, server, ledger, client)
}

/// `ledger` settled (within 3 s) without a problem, its connections line
/// saying `counts` (`opened 1, closed 1, still open 0`).
async fn settled_clean(ledger: &Ledger, counts: &str) -> Verdict {
    let verdict = ledger.settle(Duration::from_secs(3)).await;
    assert!(verdict.problems().is_empty(), "{:?}", verdict.problems());
    assert_eq!(
        line(&verdict, "connections:"),
        format!("connections: {counts}")
    );
    verdict
}

fn line(verdict: &Verdict, start: &str) -> String {
    verdict
        .summary_lines()
        .into_iter()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line {start:?} in {:?}", verdict.summary_lines()))
}

#[tokio::test]
async fn a_keep_alive_session_uses_one_connection_and_closes_it() {
    let (hub, _server, ledger, client) = session(2).await;
    ledger.set_scenario(&hub, Some("info"));
    for _ in 0..5 {
        assert_eq!(
            get_text(&ledger, &client, &format!("http://{hub}/")).await,
            "ok"
        );
    }
    drop(client);
    let verdict = settled_clean(&ledger, "opened 1, closed 1, still open 0").await;
    let c = &verdict.connections[0];
    assert_eq!((c.requests, c.scenario.as_deref()), (5, Some("info")));
    assert_eq!(c.hub, hub);
    assert_eq!(c.remote.to_string(), hub);
    assert_eq!(verdict.hubs[0].peak_open, Some(1));
}

#[tokio::test]
async fn connection_close_means_one_connection_per_request_and_no_leak() {
    let (hub, _server, ledger, client) = session(2).await;
    ledger.set_scenario(&hub, Some("mac"));
    for _ in 0..4 {
        get_text(&ledger, &client, &format!("http://{hub}/close")).await;
    }
    drop(client);
    let verdict = settled_clean(&ledger, "opened 4, closed 4, still open 0").await;
    assert!(verdict.connections.iter().all(|c| c.requests == 1));
}

#[tokio::test]
async fn a_response_body_kept_past_the_session_is_a_leak_until_dropped() {
    let (hub, _server, ledger, client) = session(2).await;
    ledger.set_scenario(&hub, Some("mac"));
    get_text(&ledger, &client, &format!("http://{hub}/")).await;
    ledger.set_scenario(&hub, Some("config-round-trip"));
    // A second request while the first connection is idle reuses it; the
    // unread body then pins that connection.
    let kept = client
        .get(format!("http://{hub}/big"))
        .send()
        .await
        .unwrap();
    ledger.record_response(&hub, &kept);
    drop(client);

    let verdict = ledger.settle(Duration::from_millis(300)).await;
    assert!(verdict.leaked());
    let problems = verdict.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("connection leak: 127.0.0.1:"),
        "{problems:?}"
    );
    assert!(
        problems[0].contains(&format!("-> hub {hub}")),
        "{problems:?}"
    );
    // Opened by the first scenario, pinned by the second: the ledger names
    // the scenario that opened it.
    assert!(
        problems[0].contains("opened during mac, last used during config-round-trip"),
        "{problems:?}"
    );
    assert_eq!(
        line(&verdict, "connections:"),
        "connections: opened 1, closed 0, still open 1"
    );

    drop(kept);
    settled_clean(&ledger, "opened 1, closed 1, still open 0").await;
}

#[tokio::test]
async fn a_second_client_is_a_second_session() {
    let (hub, _server) = server().await;
    let ledger = Ledger::new(2);
    for _ in 0..2 {
        let client = client(ledger.new_session());
        get_text(&ledger, &client, &format!("http://{hub}/")).await;
    }
    let verdict = ledger.settle(Duration::from_secs(3)).await;
    assert!(!verdict.leaked());
    assert_eq!(
        verdict.problems(),
        vec!["2 sessions created, expected 1: every client is a new pool and new connections"]
    );
    assert_eq!(line(&verdict, "sessions:"), "sessions: 2");
}

#[tokio::test]
async fn a_client_outside_the_ledger_is_caught_by_its_requests_and_its_open_connection() {
    let (hub, _server, ledger, session) = session(2).await;
    get_text(&ledger, &session, &format!("http://{hub}/")).await;
    drop(session);
    let rogue = reqwest::Client::new();
    get_text(&ledger, &rogue, &format!("http://{hub}/")).await;

    let verdict = ledger.settle(Duration::from_secs(3)).await;
    let problems = verdict.problems().join("\n");
    assert!(verdict.leaked(), "{problems}");
    assert!(
        problems.contains("was opened outside the session"),
        "{problems}"
    );
    assert!(
        problems.contains("1 requests travelled on connections no session opened"),
        "{problems}"
    );
    drop(rogue);
}

#[tokio::test]
async fn connections_open_at_once_beyond_the_budget_fail() {
    for (budget, fails) in [(2, true), (3, false)] {
        let (hub, _server, ledger, client) = session(budget).await;
        let url = format!("http://{hub}/together");
        let (a, b, c) = tokio::join!(
            client.get(&url).send(),
            client.get(&url).send(),
            client.get(&url).send()
        );
        for response in [a, b, c] {
            ledger.record_response(&hub, &response.unwrap());
        }
        drop(client);
        let verdict = ledger.settle(Duration::from_secs(3)).await;
        assert_eq!(verdict.hubs[0].peak_open, Some(3));
        let expected = format!("hub {hub}: 3 connections open at once, budget 2 (--conn-budget)");
        assert_eq!(
            verdict.problems().contains(&expected),
            fails,
            "budget {budget}: {:?}",
            verdict.problems()
        );
        assert!(!verdict.leaked());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_inside_for_hub_reuse_one_connection() {
    let (hub, _server, ledger, client) = session(1).await;
    for _ in 0..60 {
        let response = vegehub_harness::session::ledger::for_hub(
            &hub,
            client.get(format!("http://{hub}/")).send(),
        )
        .await
        .unwrap();
        ledger.record_response(&hub, &response);
        response.text().await.unwrap();
    }
    drop(client);
    let verdict = settled_clean(&ledger, "opened 1, closed 1, still open 0").await;
    assert_eq!(verdict.connections[0].requests, 60);
}
