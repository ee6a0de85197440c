//! The product resource: create, read, replace, patch, delete, ETags and preconditions.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

both_backends! {
    async fn post_creates_a_product_with_location_etag_and_trimmed_name(app) {
        let response = app
            .send_json(Method::POST, "/api/v1/products", &json!({
                "name": "  Red T-shirt \n", "description": "100% cotton", "sku": "TSHIRT-RED-M",
                "price": 19.99, "stock": 12
            }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: serde_json::Value = response.json().await.unwrap();
        let id = body["id"].as_i64().unwrap();
        assert_eq!(location, format!("/api/v1/products/{id}"));
        assert_eq!(etag, "\"v1\"");
        assert_eq!(body["name"], "Red T-shirt");
        assert_eq!(body["description"], "100% cotton");
        assert_eq!(body["sku"], "TSHIRT-RED-M");
        assert_eq!(body["price"], "19.99");
        assert_eq!(body["stock"], 12);
        assert_eq!(body["version"], 1);
        assert_eq!(body["created_at"], body["updated_at"]);
        let created = chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
        assert_eq!(created.offset().local_minus_utc(), 0);
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(app.get_product(id).await, body);
    }

    async fn optional_fields_default_to_null(app) {
        let body = app.create_product(json!({"name": "Mug", "price": "5", "stock": 0})).await;
        assert_eq!(body["sku"], serde_json::Value::Null);
        assert_eq!(body["description"], serde_json::Value::Null);
        assert_eq!(body["price"], "5.00");
    }

    async fn price_is_exact_in_every_accepted_spelling(app) {
        for (sent, shown) in [
            (json!(19.99), "19.99"), (json!("19.99"), "19.99"), (json!(19.990), "19.99"),
            (json!("19.990"), "19.99"), (json!(20), "20.00"), (json!(0), "0.00"),
            (json!(1000000000), "1000000000.00"), (json!("0.10"), "0.10"), (json!(0.07), "0.07"),
        ] {
            let body = app.create_product(json!({"name": "p", "price": sent, "stock": 1})).await;
            assert_eq!(body["price"], shown, "sent {sent}");
            let again = app.get_product(body["id"].as_i64().unwrap()).await;
            assert_eq!(again["price"], shown);
        }
        // Float-looking input that a binary float would mangle stays exact.
        let raw = r#"{"name": "p", "price": 0.30000000000000000, "stock": 1}"#;
        let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), raw).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["price"], "0.30");
    }

    async fn get_unknown_product_is_404(app) {
        assert_problem(app.get("/api/v1/products/999999").await, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }

    async fn ids_that_are_not_positive_integers_are_404(app) {
        for id in ["abc", "0", "-1", "1.5", "01", "+1", "9223372036854775808", "99999999999999999999999", "%FF", "1%20"] {
            let path = format!("/api/v1/products/{id}");
            for method in [Method::GET, Method::DELETE] {
                let response = app.request(method, &path).send().await.unwrap();
                assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
            }
            let response = app.send_json(Method::PUT, &path, &product_body(1)).await;
            assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        }
    }

    async fn if_none_match_with_current_etag_returns_304_without_body(app) {
        let id = app.create_product(product_body(1)).await["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        for header in ["\"v1\"", "W/\"v1\"", "\"v9\", \"v1\"", "*"] {
            let response = app.request(Method::GET, &path).header("if-none-match", header).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{header}");
            assert_eq!(response.headers()["etag"], "\"v1\"");
            assert!(response.bytes().await.unwrap().is_empty());
        }
        let response = app.request(Method::GET, &path).header("if-none-match", "\"v2\"").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"v1\"");
    }

    async fn put_replaces_every_field_and_bumps_version(app) {
        let created = app.create_product(product_body(1)).await;
        let id = created["id"].as_i64().unwrap();
        let response = app
            .send_json(Method::PUT, &format!("/api/v1/products/{id}"), &json!({"name": "New", "price": "1.50", "stock": 3}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"v2\"");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["name"], "New");
        assert_eq!(body["description"], serde_json::Value::Null, "PUT without description clears it");
        assert_eq!(body["sku"], serde_json::Value::Null);
        assert_eq!(body["price"], "1.50");
        assert_eq!(body["stock"], 3);
        assert_eq!(body["version"], 2);
        assert_eq!(body["created_at"], created["created_at"]);
        assert_ne!(body["updated_at"], created["updated_at"]);
        assert_eq!(app.get_product(id).await, body);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn put_on_a_missing_product_is_404_and_creates_nothing(app) {
        let response = app.send_json(Method::PUT, "/api/v1/products/4242", &product_body(1)).await;
        assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        assert_eq!(app.product_count().await, 0);
    }

    async fn patch_merges_and_null_clears_nullable_fields(app) {
        let created = app.create_product(product_body(1)).await;
        let id = created["id"].as_i64().unwrap();
        let response = app
            .send_raw(Method::PATCH, &format!("/api/v1/products/{id}"), Some("application/merge-patch+json"),
                r#"{"description": null, "stock": 40}"#)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["description"], serde_json::Value::Null);
        assert_eq!(body["stock"], 40);
        assert_eq!(body["name"], created["name"]);
        assert_eq!(body["sku"], created["sku"]);
        assert_eq!(body["price"], created["price"]);
        assert_eq!(body["version"], 2);
        // application/json is accepted too; an empty patch still counts as a write.
        let response = app.send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({"sku": null})).await;
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["sku"], serde_json::Value::Null);
        assert_eq!(body["version"], 3);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn patch_with_null_for_a_required_field_is_422_and_changes_nothing(app) {
        let created = app.create_product(product_body(1)).await;
        let id = created["id"].as_i64().unwrap();
        for field in ["name", "price", "stock"] {
            let response = app.send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({ field: null })).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, field), "null_not_allowed");
        }
        assert_eq!(app.get_product(id).await, created);
    }

    async fn delete_returns_204_then_404_and_frees_the_sku(app) {
        let id = app.create_product(product_body(1)).await["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        let response = app.request(Method::DELETE, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.bytes().await.unwrap().is_empty());
        assert_problem(app.get(&path).await, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let response = app.request(Method::DELETE, &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let again = app.create_product(json!({"name": "again", "sku": "sku-1", "price": 1, "stock": 1})).await;
        assert_ne!(again["id"], id, "ids are never reused");
    }

    async fn duplicate_sku_ignoring_case_is_409_and_writes_nothing(app) {
        let first = app.create_product(json!({"name": "a", "sku": "Tee-Red", "price": 1, "stock": 1})).await;
        let response = app.send_json(Method::POST, "/api/v1/products", &json!({"name": "b", "sku": "TEE-red", "price": 1, "stock": 1})).await;
        let problem = assert_problem(response, StatusCode::CONFLICT, "/problems/duplicate-sku").await;
        assert_eq!(error_fields(&problem), ["sku"]);
        assert_eq!(app.product_count().await, 1);
        // Taking another product's sku by PUT or PATCH is the same conflict.
        let second = app.create_product(json!({"name": "c", "sku": "other", "price": 1, "stock": 1})).await;
        let path = format!("/api/v1/products/{}", second["id"]);
        let response = app.send_json(Method::PATCH, &path, &json!({"sku": "tee-RED"})).await;
        assert_problem(response, StatusCode::CONFLICT, "/problems/duplicate-sku").await;
        assert_eq!(app.get_product(second["id"].as_i64().unwrap()).await, second);
        assert_eq!(app.get_product(first["id"].as_i64().unwrap()).await, first);
        // A product keeps its own sku across a PUT, in any case.
        let path = format!("/api/v1/products/{}", first["id"]);
        let response = app.send_json(Method::PUT, &path, &json!({"name": "a", "sku": "TEE-RED", "price": 1, "stock": 1})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn stale_if_match_returns_412_and_changes_nothing(app) {
        let created = app.create_product(product_body(1)).await;
        let id = created["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        for stale in ["\"v2\"", "W/\"v1\"", "v1", "\"v0\", \"v3\""] {
            let response = app.request(Method::PUT, &path).header("if-match", stale).header("content-type", "application/json")
                .body(product_body(2).to_string()).send().await.unwrap();
            assert_problem(response, StatusCode::PRECONDITION_FAILED, "/problems/precondition-failed").await;
            let response = app.request(Method::PATCH, &path).header("if-match", stale).header("content-type", "application/json")
                .body(r#"{"stock": 1}"#).send().await.unwrap();
            assert_problem(response, StatusCode::PRECONDITION_FAILED, "/problems/precondition-failed").await;
            let response = app.request(Method::DELETE, &path).header("if-match", stale).send().await.unwrap();
            assert_problem(response, StatusCode::PRECONDITION_FAILED, "/problems/precondition-failed").await;
        }
        assert_eq!(app.get_product(id).await, created);
    }

    async fn matching_if_match_lets_the_write_through(app) {
        let id = app.create_product(product_body(1)).await["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        let response = app.request(Method::PATCH, &path).header("if-match", "\"v1\"").header("content-type", "application/json")
            .body(r#"{"stock": 1}"#).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"v2\"");
        let response = app.request(Method::PUT, &path).header("if-match", "\"v0\", \"v2\"").header("content-type", "application/json")
            .body(product_body(1).to_string()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app.request(Method::DELETE, &path).header("if-match", "\"v3\"").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    async fn concurrent_conditional_updates_let_exactly_one_win(app) {
        let id = app.create_product(product_body(1)).await["id"].as_i64().unwrap();
        let path = format!("/api/v1/products/{id}");
        let mut tasks = Vec::new();
        for n in 0..10 {
            let request = app.request(Method::PATCH, &path).header("if-match", "\"v1\"")
                .header("content-type", "application/json").body(format!(r#"{{"stock": {n}}}"#));
            tasks.push(tokio::spawn(async move { request.send().await.unwrap().status() }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count(), 9);
        assert_eq!(app.get_product(id).await["version"], 2);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn stock_changes_are_recorded_in_the_ledger(app) {
        let id = app.create_product(json!({"name": "a", "price": 1, "stock": 7})).await["id"].as_i64().unwrap();
        app.assert_stock_matches_ledger(id).await;
        let path = format!("/api/v1/products/{id}");
        app.send_json(Method::PATCH, &path, &json!({"stock": 2})).await;
        app.send_json(Method::PUT, &path, &json!({"name": "a", "price": 1, "stock": 9})).await;
        app.send_json(Method::PATCH, &path, &json!({"name": "b"})).await;
        assert_eq!(app.ledger_sum(id).await, 9);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn list_returns_a_first_page_envelope(app) {
        for n in 0..3 {
            app.create_product(product_body(n)).await;
        }
        let response = app.get("/api/v1/products").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 3);
        assert_eq!(body["page"], 1);
        assert_eq!(body["per_page"], 20);
        assert_eq!(body["total"], 3);
        assert_eq!(body["total_pages"], 1);
    }
}
