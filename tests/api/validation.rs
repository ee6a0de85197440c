//! Every bad product body gets a 4xx problem naming the field, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Bodies that are each invalid in exactly one field, with the expected error code.
fn invalid_bodies() -> Vec<(Value, &'static str, &'static str)> {
    let long_name = "n".repeat(201);
    let long_description = "d".repeat(5001);
    let long_sku = "S".repeat(65);
    let base = || json!({"name": "Tee", "description": "d", "sku": "SKU-1", "price": "1.00", "stock": 1});
    let with = |field: &str, value: Value| {
        let mut body = base();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    vec![
        (without("name"), "name", "required"),
        (with("name", json!("")), "name", "blank"),
        (with("name", json!("   \t\n ")), "name", "blank"),
        (with("name", json!(long_name)), "name", "too_long"),
        (with("name", json!("a\u{0}b")), "name", "invalid_character"),
        (with("name", json!(12)), "name", "invalid_type"),
        (with("name", json!(["a"])), "name", "invalid_type"),
        (with("name", Value::Null), "name", "null_not_allowed"),
        (
            with("description", json!(long_description)),
            "description",
            "too_long",
        ),
        (with("description", json!(5)), "description", "invalid_type"),
        (
            with("description", json!("nul\u{0}")),
            "description",
            "invalid_character",
        ),
        (with("sku", json!("")), "sku", "invalid_length"),
        (with("sku", json!(long_sku)), "sku", "invalid_length"),
        (with("sku", json!("has space")), "sku", "invalid_character"),
        (with("sku", json!("ñ")), "sku", "invalid_character"),
        (with("sku", json!(123)), "sku", "invalid_type"),
        (without("price"), "price", "required"),
        (with("price", Value::Null), "price", "null_not_allowed"),
        (with("price", json!("19.999")), "price", "too_many_decimals"),
        (with("price", json!(19.999)), "price", "too_many_decimals"),
        (with("price", json!(0.001)), "price", "too_many_decimals"),
        (with("price", json!(-1)), "price", "out_of_range"),
        (with("price", json!("-0.01")), "price", "invalid_format"),
        (with("price", json!("1e2")), "price", "invalid_format"),
        (with("price", json!(-0.01)), "price", "out_of_range"),
        (with("price", json!(1000000000.01)), "price", "out_of_range"),
        (with("price", json!(1e300)), "price", "out_of_range"),
        (with("price", json!("abc")), "price", "invalid_format"),
        (with("price", json!("")), "price", "invalid_format"),
        (with("price", json!(" 1.00")), "price", "invalid_format"),
        (with("price", json!(true)), "price", "invalid_type"),
        (with("price", json!({"amount": 1})), "price", "invalid_type"),
        (without("stock"), "stock", "required"),
        (with("stock", Value::Null), "stock", "null_not_allowed"),
        (with("stock", json!(-1)), "stock", "out_of_range"),
        (with("stock", json!(2147483648u64)), "stock", "out_of_range"),
        (with("stock", json!(1.5)), "stock", "out_of_range"),
        (with("stock", json!(1e-1)), "stock", "out_of_range"),
        (with("stock", json!("3")), "stock", "invalid_type"),
        (with("stock", json!(false)), "stock", "invalid_type"),
        (with("colour", json!("red")), "colour", "unknown_field"),
        (with("id", json!(7)), "id", "read_only"),
        (with("version", json!(1)), "version", "read_only"),
        (
            with("created_at", json!("2026-01-01T00:00:00Z")),
            "created_at",
            "read_only",
        ),
        (
            with("updated_at", json!("2026-01-01T00:00:00Z")),
            "updated_at",
            "read_only",
        ),
    ]
}

both_backends! {
    async fn post_with_each_invalid_field_is_422_naming_it_and_creates_nothing(app) {
        for (body, field, code) in invalid_bodies() {
            let response = app.send_json(Method::POST, "/api/v1/products", &body).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_fields(&problem), [field], "body {body}");
            assert_eq!(error_code(&problem, field), code, "body {body}");
        }
        assert_eq!(app.product_count().await, 0);
    }

    async fn put_with_each_invalid_field_is_422_and_changes_nothing(app) {
        let created = app.create_product(product_body(9)).await;
        let path = format!("/api/v1/products/{}", created["id"]);
        for (body, field, code) in invalid_bodies() {
            let response = app.send_json(Method::PUT, &path, &body).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, field), code, "body {body}");
        }
        assert_eq!(app.get_product(created["id"].as_i64().unwrap()).await, created);
    }

    async fn patch_with_each_invalid_value_is_422_and_changes_nothing(app) {
        let created = app.create_product(product_body(9)).await;
        let path = format!("/api/v1/products/{}", created["id"]);
        for (body, field, code) in invalid_bodies() {
            if code == "required" {
                continue; // a patch leaves absent fields alone
            }
            let patch = json!({ field: body[field].clone() });
            let response = app.send_json(Method::PATCH, &path, &patch).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, field), code, "patch {patch}");
        }
        assert_eq!(app.get_product(created["id"].as_i64().unwrap()).await, created);
    }

    async fn every_invalid_field_is_reported_at_once(app) {
        let body = json!({"name": "", "price": "1.001", "stock": -1, "sku": "a b", "extra": 1});
        let response = app.send_json(Method::POST, "/api/v1/products", &body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        let mut fields = error_fields(&problem);
        fields.sort();
        assert_eq!(fields, ["extra", "name", "price", "sku", "stock"]);
        assert_eq!(problem["detail"], "5 fields are invalid");
    }

    async fn malformed_json_is_400(app) {
        for body in ["{", "{\"name\": }", "not json", "{\"name\": \"a\",}", "{\"a\":1}{}", "", "\u{feff}{}"] {
            let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), body).await;
            assert_problem(response, StatusCode::BAD_REQUEST, "/problems/malformed-json").await;
        }
        assert_eq!(app.product_count().await, 0);
    }

    async fn a_body_that_is_not_an_object_or_repeats_a_key_is_422(app) {
        for body in ["[]", "\"text\"", "42", "null", r#"{"name": "a", "name": "b", "price": 1, "stock": 1}"#] {
            let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), body).await;
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        }
        assert_eq!(app.product_count().await, 0);
    }

    async fn missing_or_wrong_content_type_is_415(app) {
        let body = product_body(1).to_string();
        for content_type in [None, Some("text/plain"), Some("application/xml"), Some("application/json; charset=latin1"),
                             Some("application/merge-patch+json"), Some("multipart/form-data")] {
            let response = app.send_raw(Method::POST, "/api/v1/products", content_type, &body).await;
            assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "/problems/unsupported-media-type").await;
        }
        assert_eq!(app.product_count().await, 0);
        for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
            let response = app.send_raw(Method::POST, "/api/v1/products", Some(content_type), &body).await;
            assert_eq!(response.status(), StatusCode::CREATED, "{content_type}");
            app.request(Method::DELETE, response.headers()["location"].to_str().unwrap()).send().await.unwrap();
        }
    }

    async fn body_over_one_mebibyte_is_413_and_creates_nothing(app) {
        let description = "d".repeat(1024 * 1024);
        let body = json!({"name": "big", "description": description, "price": 1, "stock": 1});
        let response = app.send_json(Method::POST, "/api/v1/products", &body).await;
        assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "/problems/payload-too-large").await;
        assert_eq!(app.product_count().await, 0);
    }

    async fn a_body_just_under_the_limit_is_read(app) {
        // Just under 1 MiB, but the description is over its own limit: 422, not 413.
        let description = "d".repeat(1024 * 1024 - 100);
        let body = json!({"name": "big", "description": description, "price": 1, "stock": 1});
        let response = app.send_json(Method::POST, "/api/v1/products", &body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        assert_eq!(error_code(&problem, "description"), "too_long");
    }
}
