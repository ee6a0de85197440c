//! Webhook retention: housekeeping deletes delivered deliveries and the events nothing refers to
//! any more, keeps dead deliveries for their longer retention, and never touches a pending
//! delivery or an event not yet fanned out. Retentions and the purge interval are shortened to
//! seconds; deliveries go to a real receiver.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::hostile_input::count;
use crate::webhooks::{Behaviour, Receiver, adjust, deliveries, subscribe};

/// Events in the outbox, whatever their state.
async fn events(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM webhook_outbox").await
}

/// Waits until `done` holds, asserting it does within `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deliveries_page(app: &TestApp, webhook_id: i64, page: u32) -> Value {
    let response = app
        .get(&format!(
            "/api/v1/webhooks/{webhook_id}/deliveries?page={page}&per_page=2"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Delivers fast, keeps delivered deliveries and events 3 s, purges every second.
const SHORT_RETENTION: &[(&str, &str)] = &[
    ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("TIENDA_WEBHOOK_RETRY_BASE_MS", "50"),
    ("TIENDA_WEBHOOK_RETENTION_SECS", "3"),
    ("TIENDA_PURGE_INTERVAL_SECS", "1"),
];

both_backends! {
    async fn delivered_deliveries_and_their_events_are_purged_while_pending_ones_stay(app) with SHORT_RETENTION => {
        let ok = Receiver::start(&[]).await;
        let failing = Receiver::start(&[Behaviour::Status(500); 1000]).await;
        let delivered_to = subscribe(&app, &ok.url(), &["product.created"]).await["id"].as_i64().unwrap();
        let pending_at = subscribe(&app, &failing.url(), &["stock.adjusted"]).await["id"].as_i64().unwrap();

        let mut ids = Vec::new();
        for n in 1..=3 {
            ids.push(app.create_product(product_body(n)).await["id"].as_i64().unwrap());
        }
        // No endpoint takes product.updated: fanned out to no delivery at all.
        let response = app.send_json(Method::PATCH, &format!("/api/v1/products/{}", ids[0]), &json!({"price": "9.00"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(adjust(&app, ids[0], 1).await.status(), StatusCode::CREATED);
        ok.wait_for(3, Duration::from_secs(20)).await;
        failing.wait_for(1, Duration::from_secs(20)).await;
        assert_eq!(events(&app).await, 5);

        eventually("the delivered deliveries are purged", Duration::from_secs(30), || async {
            deliveries(&app, delivered_to).await.is_empty()
        })
        .await;
        // The created and updated events went with them; the adjustment's event stays for its
        // pending delivery, which is still being retried.
        eventually("the freed events are purged", Duration::from_secs(10), || async { events(&app).await == 1 }).await;
        let pending = deliveries(&app, pending_at).await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0]["status"], "pending", "{pending:?}");
        let kept = count(&app, "SELECT count(*) FROM webhook_outbox WHERE event_type = 'stock.adjusted'").await;
        assert_eq!(kept, 1);
        let page = deliveries_page(&app, delivered_to, 1).await;
        assert_eq!((page["total"].clone(), page["items"].clone()), (json!(0), json!([])), "{page}");

        // Deliveries made after a purge page as before: the purge left no hole in the listing.
        for n in 4..=6 {
            app.create_product(product_body(n)).await;
        }
        ok.wait_for(6, Duration::from_secs(20)).await;
        let first = deliveries_page(&app, delivered_to, 1).await;
        let second = deliveries_page(&app, delivered_to, 2).await;
        assert_eq!((first["total"].clone(), first["total_pages"].clone()), (json!(3), json!(2)), "{first}");
        assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
        assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
        let mut seen: Vec<i64> = first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).map(|d| d["id"].as_i64().unwrap()).collect();
        seen.dedup();
        assert_eq!(seen.len(), 3, "three distinct deliveries, newest first: {first} {second}");
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");

        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("tienda_webhook_rows_purged_total{kind=\"delivered\"}"), "{metrics}");
        assert!(metrics.contains("tienda_webhook_rows_purged_total{kind=\"event\"}"), "{metrics}");
    }

    async fn a_dead_delivery_and_its_event_stay_until_the_dead_retention(app) with &[
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TIENDA_WEBHOOK_RETRY_BASE_MS", "1"),
        ("TIENDA_WEBHOOK_RETENTION_SECS", "1"),
        ("TIENDA_WEBHOOK_DEAD_RETENTION_SECS", "8"),
        ("TIENDA_PURGE_INTERVAL_SECS", "1"),
    ] => {
        let ok = Receiver::start(&[]).await;
        let failing = Receiver::start(&[Behaviour::Status(500); 10]).await;
        let delivered_to = subscribe(&app, &ok.url(), &["product.created"]).await["id"].as_i64().unwrap();
        let dead_at = subscribe(&app, &failing.url(), &["product.created"]).await["id"].as_i64().unwrap();
        app.create_product(product_body(1)).await;
        failing.wait_for(10, Duration::from_secs(30)).await;
        eventually("the delivery is dead", Duration::from_secs(10), || async {
            deliveries(&app, dead_at).await.first().is_some_and(|d| d["status"] == "dead")
        })
        .await;
        let died = Instant::now();

        // Past the delivered retention: the delivered twin goes, the dead one and the event stay.
        eventually("the delivered delivery is purged", Duration::from_secs(10), || async {
            deliveries(&app, delivered_to).await.is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(died.elapsed() < Duration::from_secs(7), "the test was too slow to see the dead delivery kept");
        let dead = deliveries(&app, dead_at).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0]["status"], "dead");
        assert_eq!(events(&app).await, 1, "the dead delivery keeps its event (a retry sends it)");

        eventually("the dead delivery is purged", Duration::from_secs(30), || async {
            deliveries(&app, dead_at).await.is_empty()
        })
        .await;
        assert!(died.elapsed() >= Duration::from_secs(7), "purged {:?} after it died", died.elapsed());
        eventually("its event is purged", Duration::from_secs(10), || async { events(&app).await == 0 }).await;
    }

    async fn events_not_yet_fanned_out_are_never_purged(app) with &[
        ("TIENDA_WORKERS", "0"),
        ("TIENDA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TIENDA_WEBHOOK_RETENTION_SECS", "1"),
        ("TIENDA_WEBHOOK_DEAD_RETENTION_SECS", "1"),
        ("TIENDA_PURGE_INTERVAL_SECS", "1"),
    ] => {
        // No worker: nothing fans the events out, but housekeeping runs all the same.
        subscribe(&app, "http://127.0.0.1:9/hook", &["product.created"]).await;
        app.create_product(product_body(1)).await;
        app.create_product(product_body(2)).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let waiting = count(&app, "SELECT count(*) FROM webhook_outbox WHERE dispatched_at IS NULL").await;
        assert_eq!(waiting, 2, "both events are still waiting for their fan-out");
    }
}
