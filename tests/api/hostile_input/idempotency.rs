//! Idempotency under abuse: answers that say who may call are not kept, and one caller's keys
//! are bounded.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::headers::assert_security_headers;
use super::{bounded_problem, count, execute};
use crate::helpers::*;

both_backends! {
    async fn a_403_is_not_kept_so_a_promoted_customer_is_not_replayed_it(app) {
        let customer = app.user_token("c@example.com", "customer").await;
        let send = || app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&customer)
            .header("idempotency-key", "order-1").json(&product_body(1)).send();
        assert_problem(send().await.unwrap(), StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert_eq!(count(&app, "SELECT count(*) FROM idempotency_keys").await, 0);
        // A 401 is not kept either (the key is never even taken).
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth("garbage")
            .header("idempotency-key", "order-1").json(&product_body(1)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(count(&app, "SELECT count(*) FROM idempotency_keys").await, 0);
        let user_id = count(&app, "SELECT CAST(id AS BIGINT) FROM users WHERE email = 'c@example.com'").await;
        let response = app.send_json(Method::PATCH, &format!("/api/v1/users/{user_id}"), &json!({"role": "staff"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get("idempotent-replayed").is_none());
        assert_eq!(app.product_count().await, 1);
        // From now on the key replays the 201.
        let response = send().await.unwrap();
        assert_eq!((response.status(), response.headers()["idempotent-replayed"].to_str().unwrap()), (StatusCode::CREATED, "true"));
    }

    async fn a_caller_holds_at_most_10000_live_idempotency_keys(app) {
        let admin = count(&app, &format!("SELECT CAST(id AS BIGINT) FROM users WHERE email = '{ADMIN_EMAIL}'")).await;
        let insert = if app.database_url.starts_with("sqlite") {
            let now = chrono::Utc::now().timestamp_micros();
            format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
                     INSERT INTO idempotency_keys (user_id, key, fingerprint, state, status, headers, body, created_at, updated_at) \
                     SELECT {admin}, 'held-' || i, 'f', 'done', 201, '[]', X'', {now}, {now} FROM n")
        } else {
            format!("INSERT INTO idempotency_keys (user_id, key, fingerprint, state, status, headers, body, created_at, updated_at) \
                     SELECT {admin}, 'held-' || i, 'f', 'done', 201, '[]', '\\x'::bytea, now(), now() FROM generate_series(1, 10000) AS i")
        };
        execute(&app, &insert).await;
        let send = |key: &str| app.request(Method::POST, "/api/v1/products").header("idempotency-key", key).json(&json!({"name": key, "price": "1", "stock": 1})).send();
        let response = send("one-more").await.unwrap();
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((86_000..=86_400).contains(&retry_after), "{retry_after}");
        assert_security_headers(&response, "429");
        bounded_problem(response, StatusCode::TOO_MANY_REQUESTS, "/problems/idempotency-key-limit").await;
        assert_eq!(app.product_count().await, 0);
        assert_eq!(count(&app, "SELECT count(*) FROM idempotency_keys").await, 10_000);
        // A key already held still works (a mismatching request on it, here), and so does a
        // request without a key.
        let response = send("held-7").await.unwrap();
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/idempotency-key-reused").await;
        assert_eq!(app.request(Method::POST, "/api/v1/products").json(&product_body(9)).send().await.unwrap().status(), StatusCode::CREATED);
        // Once a key expires, its place is free again.
        let expired = if app.database_url.starts_with("sqlite") {
            format!("UPDATE idempotency_keys SET created_at = {} WHERE key = 'held-1'", (chrono::Utc::now() - chrono::Duration::hours(25)).timestamp_micros())
        } else {
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'held-1'".to_owned()
        };
        execute(&app, &expired).await;
        assert_eq!(send("one-more").await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(send("two-more").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
        // Another caller has keys of their own.
        let staff = app.user_token("s@example.com", "staff").await;
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&staff).header("idempotency-key", "one-more")
            .json(&product_body(2)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}
