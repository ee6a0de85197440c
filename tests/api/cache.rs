//! The response cache, black-box: `Cache-Status`, identical answers with the cache on or off,
//! no stale read after a write on the same instance, the time to live, conditional requests and
//! protected reads. `TIENDA_CACHE=local` on both databases (`auto` leaves it off on PostgreSQL
//! without Redis); the instances sharing invalidations over Redis are in `cache_redis.rs`.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, product_body};

const LOCAL: &[(&str, &str)] = &[("TIENDA_CACHE", "local")];
/// A secret that survives a restart, so the cursors in keyset answers compare equal.
const SECRET: (&str, &str) = ("TIENDA_JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes");

fn cache_status(response: &Response) -> Option<String> {
    response
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Status, `Cache-Status`, `ETag` and body bytes of a GET as the admin.
async fn read(app: &TestApp, path: &str) -> (StatusCode, Option<String>, Option<String>, Vec<u8>) {
    let response = app.get(path).await;
    let status = response.status();
    let cache = cache_status(&response);
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, cache, etag, response.bytes().await.unwrap().to_vec())
}

async fn read_json(app: &TestApp, path: &str) -> Value {
    let (status, _, _, body) = read(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    serde_json::from_slice(&body).unwrap()
}

const HIT: Option<&str> = Some("tienda; hit");
const MISS: Option<&str> = Some("tienda; fwd=miss");

both_backends! {
    async fn a_product_read_misses_then_hits_with_the_same_bytes_and_etag(app) with LOCAL => {
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        let (status, cache, etag, body) = read(&app, &path).await;
        assert_eq!((status, cache.as_deref()), (StatusCode::OK, MISS));
        let (status, cache, etag_again, body_again) = read(&app, &path).await;
        assert_eq!((status, cache.as_deref()), (StatusCode::OK, HIT));
        assert_eq!(etag_again, etag);
        assert_eq!(etag.as_deref(), Some("\"v1\""));
        assert_eq!(body_again, body, "a hit is the miss byte for byte");
    }

    async fn answers_are_the_same_with_the_cache_off_and_carry_no_cache_status(app) with &[("TIENDA_CACHE", "off"), SECRET] => {
        for n in 0..3 {
            app.create_product(product_body(n)).await;
        }
        let paths = ["/api/v1/products/2", "/api/v1/products?per_page=2&page=2", "/api/v1/products?limit=2"];
        let mut off = Vec::new();
        for path in paths {
            let (status, cache, etag, body) = read(&app, path).await;
            assert_eq!((status, cache), (StatusCode::OK, None), "{path}");
            let link = app.get(path).await.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
            off.push((etag, link, body));
        }
        let app = app.restart_with(&[("TIENDA_CACHE", "local"), SECRET]).await;
        for (path, expected) in paths.iter().zip(&off) {
            for lookup in [MISS, HIT] {
                let response = app.get(path).await;
                assert_eq!(cache_status(&response).as_deref(), lookup, "{path}");
                let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
                let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
                let body = response.bytes().await.unwrap().to_vec();
                assert_eq!(&(etag, link, body), expected, "{path}: the same answer with the cache on");
            }
        }
    }

    async fn a_listing_page_spelled_differently_is_the_same_entry(app) with LOCAL => {
        app.create_product(product_body(1)).await;
        let (_, cache, _, first) = read(&app, "/api/v1/products?page=1&per_page=20").await;
        assert_eq!(cache.as_deref(), MISS);
        for path in ["/api/v1/products?per_page=20&page=1", "/api/v1/products", "/api/v1/products?page=1"] {
            let (status, cache, _, body) = read(&app, path).await;
            assert_eq!((status, cache.as_deref()), (StatusCode::OK, HIT), "{path}");
            assert_eq!(body, first, "{path}");
        }
        let (_, cache, _, _) = read(&app, "/api/v1/products?page=2").await;
        assert_eq!(cache.as_deref(), MISS, "another page is another entry");
    }

    async fn every_kind_of_write_is_seen_by_the_next_read_on_the_same_instance(app) with LOCAL => {
        let listing = "/api/v1/products?per_page=100&sort=id";
        let mut stale = Vec::new();
        for round in 0..15 {
            let product = app.create_product(product_body(1000 + round)).await;
            let id = product["id"].as_i64().unwrap();
            let path = format!("/api/v1/products/{id}");
            // Warm both entries, so a stale answer would be there to serve.
            for _ in 0..2 {
                read(&app, &path).await;
                read(&app, listing).await;
            }
            let check = |what: &str, current: &Value, page: &Value, stale: &mut Vec<String>| {
                let listed = page["items"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned();
                if listed.as_ref() != Some(current) {
                    stale.push(format!("round {round} {what}: listing has {listed:?}, expected {current}"));
                }
            };

            let put = app.send_json(Method::PUT, &path, &json!({"name": format!("Put {round}"), "price": "5.00", "stock": 3})).await;
            assert_eq!(put.status(), StatusCode::OK);
            let put: Value = put.json().await.unwrap();
            let seen = read_json(&app, &path).await;
            if seen != put { stale.push(format!("round {round} PUT: read {seen}, expected {put}")); }
            check("PUT", &put, &read_json(&app, listing).await, &mut stale);

            let patch = app.send_json(Method::PATCH, &path, &json!({"price": format!("{}.25", round + 1)})).await;
            assert_eq!(patch.status(), StatusCode::OK);
            let patch: Value = patch.json().await.unwrap();
            let seen = read_json(&app, &path).await;
            if seen != patch { stale.push(format!("round {round} PATCH: read {seen}, expected {patch}")); }
            check("PATCH", &patch, &read_json(&app, listing).await, &mut stale);

            let adjust = app
                .send_json(Method::POST, &format!("{path}/stock-adjustments"), &json!({"delta": 4, "reason": "restock"}))
                .await;
            assert_eq!(adjust.status(), StatusCode::CREATED);
            let seen = read_json(&app, &path).await;
            if seen["stock"] != 7 || seen["version"] != 4 {
                stale.push(format!("round {round} stock adjustment: read {seen}"));
            }
            check("stock adjustment", &seen, &read_json(&app, listing).await, &mut stale);

            let keyed = app
                .request(Method::POST, "/api/v1/products")
                .header("idempotency-key", format!("cache-{round}"))
                .json(&product_body(5000 + round))
                .send()
                .await
                .unwrap();
            assert_eq!(keyed.status(), StatusCode::CREATED);
            let created: Value = keyed.json().await.unwrap();
            let page = read_json(&app, listing).await;
            if !page["items"].as_array().unwrap().iter().any(|p| p == &created) {
                stale.push(format!("round {round} POST: listing lacks {created}"));
            }

            let delete = app.request(Method::DELETE, &path).send().await.unwrap();
            assert_eq!(delete.status(), StatusCode::NO_CONTENT);
            let (status, _, _, _) = read(&app, &path).await;
            if status != StatusCode::NOT_FOUND { stale.push(format!("round {round} DELETE: read {status}")); }
            let page = read_json(&app, listing).await;
            if page["items"].as_array().unwrap().iter().any(|p| p["id"] == id) {
                stale.push(format!("round {round} DELETE: still listed"));
            }
        }
        assert!(stale.is_empty(), "{} stale reads: {stale:#?}", stale.len());
    }

    async fn no_entry_outlives_the_time_to_live(app) with &[("TIENDA_CACHE", "local"), ("TIENDA_CACHE_TTL_SECS", "1")] => {
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        read(&app, &path).await;
        // Changed behind the cache's back (no write through the API), so only the TTL can end it.
        app.execute(&format!("UPDATE products SET name = 'Renamed' WHERE id = {}", product["id"])).await;
        let (_, cache, _, body) = read(&app, &path).await;
        assert_eq!(cache.as_deref(), HIT);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["name"], "Product 1", "served from the cache");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (_, cache, _, body) = read(&app, &path).await;
        assert_eq!(cache.as_deref(), MISS);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["name"], "Renamed");
    }

    async fn if_none_match_gets_304_from_the_cached_etag(app) with LOCAL => {
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        for lookup in [MISS, HIT] {
            let response = app.request(Method::GET, &path).header("if-none-match", "\"v1\"").send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(cache_status(&response).as_deref(), lookup);
            assert_eq!(response.headers()["etag"], "\"v1\"");
            assert!(response.bytes().await.unwrap().is_empty());
        }
        let response = app.request(Method::GET, &path).header("if-none-match", "\"v0\"").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(cache_status(&response).as_deref(), HIT);
        let patched = app.send_json(Method::PATCH, &path, &json!({"stock": 1})).await;
        assert_eq!(patched.status(), StatusCode::OK);
        let response = app.request(Method::GET, &path).header("if-none-match", "\"v1\"").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "an old ETag after a write is not current");
        assert_eq!(response.headers()["etag"], "\"v2\"");
    }

    async fn protected_reads_check_the_token_before_a_cached_answer(app) with &[("TIENDA_CACHE", "local"), ("TIENDA_PROTECT_READS", "true")] => {
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        for listing_or_product in [path.as_str(), "/api/v1/products"] {
            for _ in 0..2 {
                assert_eq!(app.get(listing_or_product).await.status(), StatusCode::OK);
            }
            let anonymous = app.anonymous(Method::GET, listing_or_product).send().await.unwrap();
            assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{listing_or_product}");
            assert_eq!(cache_status(&anonymous), None);
            let forged = app
                .anonymous(Method::GET, listing_or_product)
                .bearer_auth("not-a-token")
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), StatusCode::UNAUTHORIZED, "{listing_or_product}");
        }
    }

    async fn cache_metrics_count_hits_misses_and_invalidations(app) with LOCAL => {
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        read(&app, &path).await;
        read(&app, &path).await;
        let text = app.get("/metrics").await.text().await.unwrap();
        for series in [
            "tienda_cache_requests_total{cache=\"product\",result=\"hit\"}",
            "tienda_cache_requests_total{cache=\"product\",result=\"miss\"}",
            "tienda_cache_requests_total{cache=\"listing\",result=\"bypass\"}",
            "tienda_cache_invalidations_total{source=\"local\"}",
            "tienda_cache_invalidations_total{source=\"remote\"}",
            "tienda_cache_entries{cache=\"product\"}",
        ] {
            assert!(text.contains(series), "/metrics lacks {series}");
        }
        assert!(text.contains("# HELP tienda_cache_requests_total"));
    }
}
