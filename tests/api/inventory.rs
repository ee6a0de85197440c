//! Stock adjustments, the ledger invariant under concurrency, and idempotent creates.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn adjust(app: &TestApp, id: i64, delta: i64) -> reqwest::Response {
    app.send_json(
        Method::POST,
        &format!("/api/v1/products/{id}/stock-adjustments"),
        &json!({"delta": delta, "reason": "order"}),
    )
    .await
}

async fn product_with_stock(app: &TestApp, stock: i64) -> i64 {
    app.create_product(json!({"name": "Widget", "price": "1.00", "stock": stock}))
        .await["id"]
        .as_i64()
        .unwrap()
}

both_backends! {
    async fn an_adjustment_changes_stock_bumps_version_and_writes_the_ledger(app) {
        let id = product_with_stock(&app, 10).await;
        let response = app
            .send_json(Method::POST, &format!("/api/v1/products/{id}/stock-adjustments"), &json!({"delta": -3, "reason": " order 1001 "}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let adjustment: Value = response.json().await.unwrap();
        assert_eq!(adjustment["product_id"], id);
        assert_eq!(adjustment["delta"], -3);
        assert_eq!(adjustment["stock_after"], 7);
        assert_eq!(adjustment["reason"], "order 1001");
        let me: Value = app.get("/api/v1/auth/me").await.json().await.unwrap();
        assert_eq!(adjustment["actor"], me["id"]);
        assert!(adjustment["id"].as_i64().is_some() && adjustment["created_at"].as_str().is_some());
        let product = app.get_product(id).await;
        assert_eq!((product["stock"].as_i64(), product["version"].as_i64()), (Some(7), Some(2)));
        app.assert_stock_matches_ledger(id).await;
    }

    async fn the_ledger_lists_newest_first_in_offset_pages(app) {
        let id = product_with_stock(&app, 5).await;
        for delta in [1, 2, 3] {
            assert_eq!(adjust(&app, id, delta).await.status(), StatusCode::CREATED);
        }
        app.send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({"stock": 100})).await;
        let response = app.get(&format!("/api/v1/products/{id}/stock-adjustments?per_page=2")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["link"].to_str().unwrap().contains(r#"page=2&per_page=2>; rel="next""#));
        let page: Value = response.json().await.unwrap();
        assert_eq!((page["total"].as_u64(), page["total_pages"].as_u64()), (Some(5), Some(3)));
        let items = page["items"].as_array().unwrap();
        assert_eq!(items[0]["reason"], "manual set");
        assert_eq!(items[0]["delta"], 89);
        assert_eq!(items[0]["stock_after"], 100);
        assert_eq!(items[1]["delta"], 3);
        let (last, _) = app.get_page(&format!("/api/v1/products/{id}/stock-adjustments?per_page=2&page=3")).await;
        assert_eq!(last["items"][0]["reason"], "initial stock");
        assert_eq!(last["items"][0]["delta"], 5);
        app.assert_stock_matches_ledger(id).await;
        // Staff only; unknown products are 404; bad paging is named.
        let customer = app.user_token("c@example.com", "customer").await;
        let response = app.anonymous(Method::GET, &format!("/api/v1/products/{id}/stock-adjustments")).bearer_auth(&customer).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert_problem(app.get("/api/v1/products/999999/stock-adjustments").await, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let problem = assert_problem(app.get(&format!("/api/v1/products/{id}/stock-adjustments?per_page=0&x=1")).await,
            StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_fields(&problem), ["per_page", "x"]);
    }

    async fn going_below_zero_or_above_the_maximum_is_409_and_changes_nothing(app) {
        let id = product_with_stock(&app, 2).await;
        let before = app.get_product(id).await;
        assert_problem(adjust(&app, id, -3).await, StatusCode::CONFLICT, "/problems/insufficient-stock").await;
        assert_problem(adjust(&app, id, 2_147_483_646).await, StatusCode::CONFLICT, "/problems/stock-limit").await;
        assert_eq!(app.get_product(id).await, before);
        assert_eq!(adjust(&app, id, -2).await.status(), StatusCode::CREATED);
        assert_eq!(app.get_product(id).await["stock"], 0);
        app.assert_stock_matches_ledger(id).await;
        assert_problem(adjust(&app, 999_999, 1).await, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }

    async fn invalid_adjustments_are_422_and_change_nothing(app) {
        let id = product_with_stock(&app, 5).await;
        let path = format!("/api/v1/products/{id}/stock-adjustments");
        for (body, field, code) in [
            (json!({"delta": 0, "reason": "x"}), "delta", "zero"),
            (json!({"delta": 1.5, "reason": "x"}), "delta", "out_of_range"),
            (json!({"delta": "1", "reason": "x"}), "delta", "invalid_type"),
            (json!({"delta": 2147483648u64, "reason": "x"}), "delta", "out_of_range"),
            (json!({"reason": "x"}), "delta", "required"),
            (json!({"delta": 1}), "reason", "required"),
            (json!({"delta": 1, "reason": ""}), "reason", "blank"),
            (json!({"delta": 1, "reason": "r".repeat(201)}), "reason", "too_long"),
            (json!({"delta": 1, "reason": null}), "reason", "null_not_allowed"),
            (json!({"delta": 1, "reason": "x", "stock_after": 9}), "stock_after", "read_only"),
            (json!({"delta": 1, "reason": "x", "note": "y"}), "note", "unknown_field"),
        ] {
            let response = app.send_json(Method::POST, &path, &body).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, field), code, "{body}");
        }
        let customer = app.user_token("c2@example.com", "customer").await;
        let response = app.anonymous(Method::POST, &path).bearer_auth(&customer).json(&json!({"delta": 1, "reason": "x"})).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert_eq!(app.get_product(id).await["stock"], 5);
        assert_eq!(app.get_product(id).await["version"], 1);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn two_hundred_concurrent_decrements_sell_exactly_the_fifty_in_stock(app) {
        let id = product_with_stock(&app, 50).await;
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let request = app.request(Method::POST, &format!("/api/v1/products/{id}/stock-adjustments"))
                .json(&json!({"delta": -1, "reason": "order"}));
            tasks.push(tokio::spawn(async move { request.send().await.unwrap().status() }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((created, refused), (50, 150), "{statuses:?}");
        let product = app.get_product(id).await;
        assert_eq!(product["stock"], 0);
        assert_eq!(product["version"], 51);
        assert_eq!(app.ledger_sum(id).await, 0);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn mixed_concurrent_traffic_keeps_stock_equal_to_the_ledger(app) {
        let id = product_with_stock(&app, 10).await;
        let mut tasks = Vec::new();
        for n in 0..120 {
            let delta = if n % 2 == 0 { 2 } else { -3 };
            let request = app.request(Method::POST, &format!("/api/v1/products/{id}/stock-adjustments"))
                .json(&json!({"delta": delta, "reason": "mixed"}));
            tasks.push(tokio::spawn(async move { (delta, request.send().await.unwrap().status()) }));
        }
        let mut expected = 10;
        for task in tasks {
            let (delta, status) = task.await.unwrap();
            match status {
                StatusCode::CREATED => expected += delta,
                StatusCode::CONFLICT => assert_eq!(delta, -3),
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(app.get_product(id).await["stock"], expected);
        assert!(expected >= 0);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn an_idempotent_create_replays_the_first_answer_byte_for_byte(app) {
        let body = product_body(1).to_string();
        let send = || app.request(Method::POST, "/api/v1/products").header("idempotency-key", "create-1")
            .header("content-type", "application/json").body(body.clone()).send();
        let first = send().await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let (location, etag) = (first.headers()["location"].clone(), first.headers()["etag"].clone());
        let first_body = first.bytes().await.unwrap();
        let second = send().await.unwrap();
        assert_eq!(second.status(), StatusCode::CREATED);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        assert_eq!(second.headers()["location"], location);
        assert_eq!(second.headers()["etag"], etag);
        assert_eq!(second.bytes().await.unwrap(), first_body);
        assert_eq!(app.product_count().await, 1);
        // Another body, or another path, with the same key: 422, nothing written. (Only POSTs
        // take a key, so the method cannot differ.)
        let response = app.request(Method::POST, "/api/v1/products").header("idempotency-key", "create-1")
            .json(&product_body(2)).send().await.unwrap();
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/idempotency-key-reused").await;
        let id = serde_json::from_slice::<Value>(&first_body).unwrap()["id"].as_i64().unwrap();
        let response = app.request(Method::POST, &format!("/api/v1/products/{id}/stock-adjustments")).header("idempotency-key", "create-1")
            .header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/idempotency-key-reused").await;
        assert_eq!(app.product_count().await, 1);
        assert_eq!(app.get_product(id).await["stock"], 12);
        assert_eq!(app.ledger_sum(id).await, 12);
        // Keys belong to their user: another user's same key is a new request.
        let staff = app.user_token("s@example.com", "staff").await;
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&staff).header("idempotency-key", "create-1")
            .header("content-type", "application/json").body(product_body(3).to_string()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get("idempotent-replayed").is_none());
        assert_eq!(app.product_count().await, 2);
    }

    async fn an_idempotent_adjustment_is_applied_once(app) {
        let id = product_with_stock(&app, 10).await;
        let path = format!("/api/v1/products/{id}/stock-adjustments");
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let response = app.request(Method::POST, &path).header("idempotency-key", "adj-1")
                .json(&json!({"delta": -4, "reason": "order 7"})).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            bodies.push(response.bytes().await.unwrap());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(app.get_product(id).await["stock"], 6);
        app.assert_stock_matches_ledger(id).await;
        // A refused answer (4xx) is kept too: the retry gets the same 409, not a new attempt.
        let response = app.request(Method::POST, &path).header("idempotency-key", "adj-2")
            .json(&json!({"delta": -100, "reason": "too many"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        app.send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({"stock": 500})).await;
        let response = app.request(Method::POST, &path).header("idempotency-key", "adj-2")
            .json(&json!({"delta": -100, "reason": "too many"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        assert_eq!(app.get_product(id).await["stock"], 500);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn twenty_concurrent_requests_with_one_key_create_one_product(app) {
        let body = product_body(1).to_string();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let request = app.request(Method::POST, "/api/v1/products").header("idempotency-key", "burst")
                .header("content-type", "application/json").body(body.clone());
            tasks.push(tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status(), response.headers().get("idempotent-replayed").is_some())
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let fresh = outcomes.iter().filter(|(s, replayed)| *s == StatusCode::CREATED && !replayed).count();
        assert_eq!(fresh, 1, "{outcomes:?}");
        assert!(outcomes.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{outcomes:?}");
        assert_eq!(app.product_count().await, 1);
    }

    async fn malformed_idempotency_keys_are_400(app) {
        for key in ["", &"k".repeat(256), "tab\tkey"] {
            let response = app.request(Method::POST, "/api/v1/products").header("idempotency-key", key)
                .json(&product_body(1)).send().await.unwrap();
            let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-header").await;
            assert_eq!(error_fields(&problem), ["Idempotency-Key"]);
        }
        assert_eq!(app.product_count().await, 0);
        // 255 printable characters, spaces included, are fine.
        let key = format!("a b{}", "k".repeat(252));
        let response = app.request(Method::POST, "/api/v1/products").header("idempotency-key", key)
            .json(&product_body(1)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    async fn deleting_a_product_deletes_its_ledger(app) {
        let id = product_with_stock(&app, 3).await;
        adjust(&app, id, 1).await;
        app.request(Method::DELETE, &format!("/api/v1/products/{id}")).send().await.unwrap();
        assert_eq!(app.ledger_sum(id).await, 0);
        let response = app.get(&format!("/api/v1/products/{id}/stock-adjustments")).await;
        assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }
}
