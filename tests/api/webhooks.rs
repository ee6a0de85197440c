//! Webhooks: endpoints, the transactional outbox, signed deliveries to a real receiver started
//! by the test, retries, SSRF refusals, secret rotation, and a server killed mid-delivery.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use axum::response::IntoResponse;

use crate::helpers::*;

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    Status(u16),
    /// Never answers.
    Hang,
    /// `307 Temporary Redirect` to another address.
    RedirectTo(SocketAddr),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers for the next requests, in order; 204 once empty.
    script: Mutex<VecDeque<Behaviour>>,
}

/// A webhook receiver on a random loopback port.
pub(crate) struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub(crate) async fn start(script: &[Behaviour]) -> Receiver {
        let state = Arc::new(ReceiverState::default());
        state.script.lock().unwrap().extend(script.iter().copied());
        let shared = state.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let state = shared.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.received.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    });
                    let next = state.script.lock().unwrap().pop_front();
                    match next.unwrap_or(Behaviour::Status(204)) {
                        Behaviour::Status(status) => {
                            axum::http::StatusCode::from_u16(status).unwrap().into_response()
                        }
                        Behaviour::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            axum::http::StatusCode::OK.into_response()
                        }
                        Behaviour::RedirectTo(target) => (
                            axum::http::StatusCode::TEMPORARY_REDIRECT,
                            [(axum::http::header::LOCATION, format!("http://{target}/hook"))],
                        )
                            .into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { addr, state, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} deliveries within {timeout:?}, got {}: {received:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for `n` requests, then a little longer to see that no other arrives.
    async fn exactly(&self, n: usize) -> Vec<Received> {
        self.wait_for(n, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let received = self.received();
        assert_eq!(received.len(), n, "{received:?}");
        received
    }
}

/// The Standard Webhooks check, written from the specification (not the server's code): the
/// signed content is `id.timestamp.body`, the key the base64 after `whsec_`, and the header
/// lists space-separated `v1,<base64 HMAC-SHA256>` signatures, any of which may match.
fn signature_is_valid(secret: &str, received: &Received) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    received
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

fn assert_fresh_and_signed(secret: &str, received: &Received) {
    assert!(
        signature_is_valid(secret, received),
        "bad signature on {received:?}"
    );
    let timestamp: i64 = received.timestamp.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - timestamp).abs() < 300,
        "timestamp {timestamp} vs now {now}"
    );
    assert_eq!(
        received.json()["id"],
        received.id.as_str(),
        "webhook-id is the event id"
    );
    assert!(received.id.starts_with("evt_"), "{}", received.id);
}

const ALL_EVENTS: [&str; 4] = [
    "product.created",
    "product.updated",
    "product.deleted",
    "stock.adjusted",
];

/// Settings of a test that delivers to its own receiver on loopback, retrying fast.
const DELIVERING: &[(&str, &str)] = &[
    ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("TIENDA_WEBHOOK_RETRY_BASE_MS", "50"),
];

/// Subscribes `url` to `events`; returns the endpoint with its secret.
pub(crate) async fn subscribe(app: &TestApp, url: &str, events: &[&str]) -> Value {
    let response = app
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn adjust(app: &TestApp, id: i64, delta: i64) -> reqwest::Response {
    app.send_json(
        Method::POST,
        &format!("/api/v1/products/{id}/stock-adjustments"),
        &json!({"delta": delta, "reason": "order 7"}),
    )
    .await
}

pub(crate) async fn deliveries(app: &TestApp, webhook_id: i64) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/api/v1/webhooks/{webhook_id}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

both_backends! {
    async fn endpoints_are_created_with_a_secret_shown_once_then_read_changed_and_deleted(app) with DELIVERING => {
        let created = subscribe(&app, "http://127.0.0.1:9/hook", &["product.created", "product.created"]).await;
        let id = created["id"].as_i64().unwrap();
        let secret = created["secret"].as_str().unwrap();
        let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(created["events"], json!(["product.created"]));
        assert_eq!(created["disabled"], false);

        let read: Value = app.get(&format!("/api/v1/webhooks/{id}")).await.json().await.unwrap();
        assert!(read.get("secret").is_none(), "{read}");
        let list: Value = app.get("/api/v1/webhooks").await.json().await.unwrap();
        assert_eq!(list["total"], 1);
        assert!(list["items"][0].get("secret").is_none());

        let response = app
            .send_json(Method::PATCH, &format!("/api/v1/webhooks/{id}"), &json!({"events": ["stock.adjusted"], "disabled": true, "description": "erp"}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let changed: Value = response.json().await.unwrap();
        assert_eq!((changed["events"].clone(), changed["disabled"].clone(), changed["description"].clone()), (json!(["stock.adjusted"]), json!(true), json!("erp")));

        let response = app.request(Method::POST, &format!("/api/v1/webhooks/{id}/rotate-secret")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let rotated: Value = response.json().await.unwrap();
        assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
        assert_ne!(rotated["secret"].as_str(), Some(secret));

        let response = app.request(Method::DELETE, &format!("/api/v1/webhooks/{id}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_problem(app.get(&format!("/api/v1/webhooks/{id}")).await, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }

    async fn only_admins_manage_webhooks(app) {
        let staff = app.user_token("staff@tienda.test", "staff").await;
        let response = app
            .client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&staff)
            .json(&json!({"url": "https://example.com/hook", "events": ["product.created"]}))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        let response = app.anonymous(Method::GET, "/api/v1/webhooks").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_bad_url_or_event_list_is_422_naming_each_field(app) {
        for (body, fields) in [
            (json!({"url": "ftp://example.com/x", "events": []}), vec!["url", "events"]),
            (json!({"url": "not a url", "events": ["product.exploded"]}), vec!["url", "events"]),
            (json!({"events": "product.created"}), vec!["url", "events"]),
            (json!({"url": "https://u:p@example.com/", "events": ["product.created"], "secret": "x"}), vec!["url", "secret"]),
        ] {
            let response = app.send_json(Method::POST, "/api/v1/webhooks", &body).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            let mut found = error_fields(&problem);
            found.sort();
            let mut fields = fields;
            fields.sort();
            assert_eq!(found, fields, "{body} -> {problem}");
        }
    }

    async fn private_loopback_and_metadata_targets_are_refused_with_422(app) {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://localhost:8080/hook",
        ] {
            let response = app
                .send_json(Method::POST, "/api/v1/webhooks", &json!({"url": url, "events": ["product.created"]}))
                .await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, "url"), "forbidden_address", "{url}: {problem}");
        }
        // A public target is accepted, and cannot be moved onto a private one.
        let created = subscribe(&app, "http://93.184.216.34/hook", &["product.created"]).await;
        let response = app
            .send_json(Method::PATCH, &format!("/api/v1/webhooks/{}", created["id"]), &json!({"url": "http://192.168.1.1/"}))
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        assert_eq!(error_code(&problem, "url"), "forbidden_address");
        let list: Value = app.get("/api/v1/webhooks").await.json().await.unwrap();
        assert_eq!(list["total"], 1, "nothing refused was stored");
    }

    async fn production_takes_only_https_targets(app) with &[
        ("TIENDA_ENV", "production"),
        ("TIENDA_JWT_SECRET", "a-production-secret-of-at-least-32-bytes"),
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
    ] => {
        let response = app
            .send_json(Method::POST, "/api/v1/webhooks", &json!({"url": "http://127.0.0.1:9/hook", "events": ["product.created"]}))
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        assert_eq!(error_code(&problem, "url"), "https_required");
        subscribe(&app, "https://127.0.0.1:9/hook", &["product.created"]).await;
    }

    async fn every_event_type_arrives_once_with_a_valid_signature(app) with DELIVERING => {
        let receiver = Receiver::start(&[]).await;
        let secret = subscribe(&app, &receiver.url(), &ALL_EVENTS).await["secret"].as_str().unwrap().to_owned();

        let created = app.create_product(product_body(1)).await;
        let id = created["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        let response = app.send_json(Method::PUT, &path, &json!({"name": "Renamed", "price": "5.00", "stock": 3})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = app.send_json(Method::PATCH, &path, &json!({"price": "6.00"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let patched: Value = response.json().await.unwrap();
        let response = adjust(&app, id, 4).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let adjustment: Value = response.json().await.unwrap();
        let before_delete = app.get_product(id).await;
        let response = app.request(Method::DELETE, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);

        let received = receiver.exactly(5).await;
        let mut ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "each event once, each with its own id");
        for r in &received {
            assert_fresh_and_signed(&secret, r);
        }
        let of_type = |kind: &str| -> Vec<Value> {
            received.iter().map(Received::json).filter(|e| e["type"] == kind).collect()
        };
        let created_events = of_type("product.created");
        assert_eq!(created_events.len(), 1);
        assert_eq!(created_events[0]["data"], created, "data is the product as the API returned it");
        assert!(created_events[0]["created_at"].as_str().is_some());
        let updated = of_type("product.updated");
        assert_eq!(updated.len(), 2);
        assert!(updated.iter().any(|e| e["data"] == patched));
        let adjusted = of_type("stock.adjusted");
        assert_eq!(adjusted.len(), 1);
        let mut expected = adjustment.clone();
        expected["version"] = before_delete["version"].clone();
        assert_eq!(adjusted[0]["data"], expected, "the ledger entry with the product's new version");
        let deleted = of_type("product.deleted");
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0]["data"], before_delete, "the product as it was");
    }

    async fn imports_and_exports_emit_product_and_finished_events_in_their_transactions(app) with DELIVERING => {
        let receiver = Receiver::start(&[]).await;
        let events = ["product.created", "product.updated", "import.finished", "export.finished"];
        let secret = subscribe(&app, &receiver.url(), &events).await["secret"].as_str().unwrap().to_owned();

        let first = crate::job_helpers::import_and_wait(&app, "", "sku,name,price,stock\nA-1,Alpha,1.00,2\nB-2,Beta,2.00,3\n").await;
        assert_eq!(first["status"], "succeeded", "{first}");
        // One row changed, one unchanged: one update event, none for the unchanged row.
        let second = crate::job_helpers::import_and_wait(&app, "", "sku,name,price,stock\nA-1,Alpha,1.50,2\nB-2,Beta,2.00,3\n").await;
        assert_eq!(second["result"]["updated"], 1, "{second}");
        let response = app.send_json(Method::POST, "/api/v1/exports", &json!({"format": "csv"})).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let export: Value = response.json().await.unwrap();
        let export = crate::job_helpers::wait_job(&app, &export["id"], 60).await;
        assert_eq!(export["status"], "succeeded", "{export}");

        // 2 created + 1 updated + 2 import.finished + 1 export.finished.
        let received = receiver.exactly(6).await;
        for r in &received {
            assert_fresh_and_signed(&secret, r);
        }
        let of_type = |kind: &str| -> Vec<Value> {
            received.iter().map(Received::json).filter(|e| e["type"] == kind).collect()
        };
        let mut created: Vec<String> = of_type("product.created").iter().map(|e| e["data"]["sku"].as_str().unwrap().to_owned()).collect();
        created.sort();
        assert_eq!(created, ["A-1", "B-2"]);
        let updated = of_type("product.updated");
        assert_eq!(updated.len(), 1);
        assert_eq!((updated[0]["data"]["sku"].clone(), updated[0]["data"]["price"].clone()), (json!("A-1"), json!("1.50")));
        let mut finished: Vec<Value> = of_type("import.finished").iter().map(|e| e["data"]["id"].clone()).collect();
        finished.sort_by_key(|id| id.as_i64());
        assert_eq!(finished, [first["id"].clone(), second["id"].clone()]);
        let exported = of_type("export.finished");
        assert_eq!(exported.len(), 1);
        assert_eq!(exported[0]["data"]["id"], export["id"]);
        assert_eq!(exported[0]["data"]["status"], "succeeded", "the job as it ended");
    }

    async fn a_refused_change_emits_nothing(app) with DELIVERING => {
        let receiver = Receiver::start(&[]).await;
        subscribe(&app, &receiver.url(), &ALL_EVENTS).await;
        let id = app.create_product(json!({"name": "Widget", "price": "1.00", "stock": 2})).await["id"].as_i64().unwrap();
        assert_problem(adjust(&app, id, -3).await, StatusCode::CONFLICT, "/problems/insufficient-stock").await;
        let response = app
            .request(Method::PATCH, &format!("/api/v1/products/{id}"))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "\"999\"")
            .body(r#"{"stock": 50}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        let response = app
            .request(Method::DELETE, &format!("/api/v1/products/{id}"))
            .header("if-match", "\"999\"")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        // A change that commits, after the refused ones: once it has arrived, anything the
        // refused ones had emitted would have arrived before it.
        assert_eq!(adjust(&app, id, -1).await.status(), StatusCode::CREATED);
        let received = receiver.exactly(2).await;
        // Order between events is not guaranteed.
        let mut events: Vec<Value> = received.iter().map(Received::json).collect();
        events.sort_by_key(|e| e["type"].as_str().unwrap_or_default().to_owned());
        let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
        assert_eq!(types, vec!["product.created", "stock.adjusted"]);
        assert_eq!(events[1]["data"]["delta"], -1, "only the adjustment that committed");
    }

    async fn a_failing_receiver_gets_the_event_after_retries(app) with DELIVERING => {
        let failures = [Behaviour::Status(500), Behaviour::Status(503), Behaviour::Status(404)];
        let receiver = Receiver::start(&failures).await;
        let endpoint = subscribe(&app, &receiver.url(), &["product.created"]).await;
        let secret = endpoint["secret"].as_str().unwrap();
        app.create_product(product_body(1)).await;

        let received = receiver.exactly(4).await;
        assert!(received.iter().all(|r| r.id == received[0].id && r.body == received[0].body), "the same event, byte for byte");
        assert!(received.iter().all(|r| signature_is_valid(secret, r)));
        let log = deliveries(&app, endpoint["id"].as_i64().unwrap()).await;
        assert_eq!(log.len(), 1);
        assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone(), log[0]["last_status"].clone()), (json!("delivered"), json!(4), json!(204)));
        assert_eq!(log[0]["event_id"], received[0].id.as_str());
        assert_eq!(log[0]["next_attempt_at"], Value::Null);
    }

    async fn a_delivery_dies_after_its_last_attempt_and_a_manual_retry_sends_it_again(app) with &[
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TIENDA_WEBHOOK_RETRY_BASE_MS", "1"),
    ] => {
        let receiver = Receiver::start(&[Behaviour::Status(500); 10]).await;
        let endpoint = subscribe(&app, &receiver.url(), &["product.created"]).await;
        let webhook_id = endpoint["id"].as_i64().unwrap();
        app.create_product(product_body(1)).await;
        receiver.exactly(10).await;
        let log = deliveries(&app, webhook_id).await;
        assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone(), log[0]["last_status"].clone()), (json!("dead"), json!(10), json!(500)));

        let response = app
            .request(Method::POST, &format!("/api/v1/webhooks/{webhook_id}/deliveries/{}/retry", log[0]["id"]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let received = receiver.exactly(11).await;
        assert_eq!(received[10].id, received[0].id);
        let deadline = Instant::now() + Duration::from_secs(5);
        while deliveries(&app, webhook_id).await[0]["status"] != "delivered" {
            assert!(Instant::now() < deadline, "the retried delivery is recorded as delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let response = app
            .request(Method::POST, &format!("/api/v1/webhooks/{}/deliveries/{}/retry", webhook_id + 1, log[0]["id"]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "a delivery of another endpoint");
    }

    async fn an_endpoint_failing_past_the_disable_window_is_disabled_then_resumes_when_enabled(app) with &[
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TIENDA_WEBHOOK_RETRY_BASE_MS", "200"),
        ("TIENDA_WEBHOOK_DISABLE_AFTER_SECS", "1"),
    ] => {
        // Attempts after 0, ~0.2, ~0.6, ~1.8 s: the fourth fails more than the window after the
        // first, and the fifth would be ~5 s later.
        let failing = Receiver::start(&[Behaviour::Status(500); 50]).await;
        let endpoint = subscribe(&app, &failing.url(), &["product.created"]).await;
        let path = format!("/api/v1/webhooks/{}", endpoint["id"]);
        let first = app.create_product(product_body(1)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let current: Value = app.get(&path).await.json().await.unwrap();
            if current["disabled"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "not disabled after 20 s of failures: {current}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let attempts = failing.received().len();
        assert!(attempts >= 2, "disabled after failures spanning the window, not at the first: {attempts}");
        let log = deliveries(&app, endpoint["id"].as_i64().unwrap()).await;
        assert_eq!((log.len(), log[0]["status"].clone()), (1, json!("pending")), "the delivery waits, it is not dead: {log:?}");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.lines().any(|l| l.starts_with("tienda_webhook_endpoints_disabled_total ") && !l.ends_with(" 0")), "{metrics}");

        // Disabled: nothing is attempted, and a change now is not kept for it.
        let while_disabled = app.create_product(product_body(2)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(failing.received().len(), attempts, "no attempt while disabled");

        // The operator fixes the receiver and enables the endpoint: the waiting delivery and new
        // events are sent, the event recorded while it was disabled is not.
        let fixed = Receiver::start(&[]).await;
        let response = app.send_json(Method::PATCH, &path, &json!({"url": fixed.url(), "disabled": false})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let enabled: Value = response.json().await.unwrap();
        assert_eq!(enabled["disabled"], false, "{enabled}");
        let after = app.create_product(product_body(3)).await;
        let received = fixed.exactly(2).await;
        let mut products: Vec<Value> = received.iter().map(|r| r.json()["data"]["id"].clone()).collect();
        products.sort_by_key(|id| id.as_i64());
        assert_eq!(products, vec![first["id"].clone(), after["id"].clone()], "not {}", while_disabled["id"]);
        assert!(received.iter().all(|r| signature_is_valid(endpoint["secret"].as_str().unwrap(), r)));
    }

    async fn a_redirect_is_a_failed_attempt_and_is_not_followed(app) with DELIVERING => {
        // The target the redirect names would accept anything: it must never be asked.
        let elsewhere = Receiver::start(&[]).await;
        let redirecting = Receiver::start(&[Behaviour::RedirectTo(elsewhere.addr)]).await;
        let endpoint = subscribe(&app, &redirecting.url(), &["product.created"]).await;
        app.create_product(product_body(1)).await;
        // The 307 counts as a failure, and the retry goes to the endpoint's own URL again.
        let received = redirecting.exactly(2).await;
        assert_eq!(received[0].id, received[1].id);
        assert!(elsewhere.received().is_empty(), "the redirect was not followed");
        let log = deliveries(&app, endpoint["id"].as_i64().unwrap()).await;
        assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone(), log[0]["last_status"].clone()), (json!("delivered"), json!(2), json!(204)));
    }

    async fn after_a_rotation_deliveries_carry_both_signatures(app) with DELIVERING => {
        let receiver = Receiver::start(&[]).await;
        let endpoint = subscribe(&app, &receiver.url(), &["product.created"]).await;
        let old = endpoint["secret"].as_str().unwrap().to_owned();
        let response = app.request(Method::POST, &format!("/api/v1/webhooks/{}/rotate-secret", endpoint["id"])).send().await.unwrap();
        let new = response.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
        app.create_product(product_body(1)).await;
        let received = receiver.exactly(1).await;
        let signatures: Vec<&str> = received[0].signature.split(' ').collect();
        assert_eq!(signatures.len(), 2, "{}", received[0].signature);
        assert!(signature_is_valid(&old, &received[0]), "signed with the old secret");
        assert!(signature_is_valid(&new, &received[0]), "signed with the new secret");
        assert_ne!(signatures[0], signatures[1]);
    }

    async fn a_target_that_turned_private_is_refused_at_delivery_time(app) with DELIVERING => {
        let receiver = Receiver::start(&[]).await;
        let by_ip = subscribe(&app, &receiver.url(), &["product.created"]).await;
        let by_name = subscribe(&app, &format!("http://localhost:{}/hook", receiver.addr.port()), &["product.created"]).await;
        // The same endpoints on a server that no longer allows private targets.
        let app = app.restart_with(&[("TIENDA_WEBHOOK_RETRY_BASE_MS", "50")]).await;
        app.create_product(product_body(1)).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        for endpoint in [&by_ip, &by_name] {
            let id = endpoint["id"].as_i64().unwrap();
            loop {
                let log = deliveries(&app, id).await;
                // Claimed (attempts counted) before its outcome is recorded: wait for the outcome.
                if log.first().is_some_and(|d| d["last_error"].is_string()) {
                    assert_eq!(log[0]["status"], "pending", "{log:?}");
                    assert_eq!(log[0]["last_status"], Value::Null);
                    let error = log[0]["last_error"].as_str().unwrap();
                    assert!(error.contains("refused") || error.contains("forbidden"), "{error}");
                    break;
                }
                assert!(Instant::now() < deadline, "no attempt was recorded for {endpoint}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(receiver.received().is_empty(), "nothing reached the private address");
    }

    async fn a_server_killed_mid_delivery_delivers_after_restart_with_the_same_webhook_id(app) with &[
        ("TIENDA_WORKERS", "0"),
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
    ] => {
        // This server (no worker) takes the writes; a `tienda serve` process delivers them.
        let receiver = Receiver::start(&[Behaviour::Hang]).await;
        let secret = subscribe(&app, &receiver.url(), &["product.created"]).await["secret"].as_str().unwrap().to_owned();
        app.create_product(product_body(1)).await;
        let dir = tempfile::tempdir().unwrap();
        let settings = [
            ("DATABASE_URL", app.database_url.as_str()),
            ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("TIENDA_WEBHOOK_TIMEOUT_SECS", "1"),
            ("TIENDA_WEBHOOK_RETRY_BASE_MS", "50"),
        ];
        let (mut worker, _) = crate::process::serve(dir.path(), &settings);
        let first = receiver.wait_for(1, Duration::from_secs(20)).await;
        crate::process::signal(&worker, "KILL");
        crate::process::wait_with_timeout(&mut worker, Duration::from_secs(5));
        assert_eq!(receiver.received().len(), 1, "the killed worker sent nothing more");

        let (_worker, _) = crate::process::serve(dir.path(), &settings);
        let received = receiver.wait_for(2, Duration::from_secs(30)).await;
        assert_eq!(received[1].id, first[0].id, "the same webhook-id, so the receiver can drop the duplicate");
        assert_eq!(received[1].body, first[0].body);
        assert_fresh_and_signed(&secret, &received[1]);
    }
}
