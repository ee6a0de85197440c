//! Requests an attacker would send (API.md, "Hostile input: limits that hold"): each gets a
//! small problem at a cost in proportion to its size, and changes nothing.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::*;

mod headers;
mod idempotency;

/// A JSON object of `n` distinct unknown keys (`"k0":0,"k1":0,...`), ~9 bytes a key.
fn unknown_keys(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("\"k{i}\":0")).collect();
    format!("{{{}}}", fields.join(","))
}

/// Runs `sql` straight on the test database.
pub(super) async fn execute(app: &TestApp, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if app.database_url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

pub(super) async fn count(app: &TestApp, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if app.database_url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

/// Sends raw bytes on a fresh connection and returns the status line of the answer.
async fn raw_status_line(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A problem body, checked for the size limits every problem keeps.
pub(super) async fn bounded_problem(response: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    let length = response.content_length();
    let problem = assert_problem(response, status, kind).await;
    assert!(length.is_some_and(|n| n <= 16 * 1024), "{length:?} bytes");
    assert!(
        problem["errors"].as_array().map_or(0, Vec::len) <= 20,
        "{problem}"
    );
    problem
}

both_backends! {
    async fn a_body_of_32000_unknown_keys_is_a_brief_422_in_well_under_a_second(app) {
        let body = unknown_keys(32_000);
        assert!(body.len() > 280_000, "{}", body.len());
        for (path, token) in [("/api/v1/products", Some(&app.admin_token)), ("/api/v1/auth/login", None)] {
            let mut request = app.anonymous(Method::POST, path).header("content-type", "application/json").body(body.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let started = Instant::now();
            let response = request.send().await.unwrap();
            let elapsed = started.elapsed();
            // Measured: under 0.15 s on a debug build; the quadratic reader took 21 s (1.7 s release).
            assert!(elapsed < Duration::from_secs(2), "{path} took {elapsed:?}");
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(problem["errors"].as_array().unwrap().len(), 20);
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains("fields are invalid; the first 20 are listed"), "{detail}");
        }
        assert_eq!(app.product_count().await, 0);
    }

    async fn huge_field_names_and_duplicates_give_a_small_problem(app) {
        let huge = "é\u{0}\"".repeat(30_000);
        let body = format!("{{\"name\":\"x\",\"price\":\"1\",\"stock\":1,{}:1}}", serde_json::to_string(&huge).unwrap());
        let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), &body).await;
        let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        assert!(problem["errors"][0]["field"].as_str().unwrap().starts_with("é\u{0}\"é"), "{problem}");
        let body = format!("{{{}:1,{}:2}}", serde_json::to_string(&huge).unwrap(), serde_json::to_string(&huge).unwrap());
        let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), &body).await;
        bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        let body = serde_json::to_string(&huge).unwrap();
        let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), &body).await;
        bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        // Unknown query parameters are capped the same way.
        let query: Vec<String> = (0..2000).map(|i| format!("p{i}{}=1", "x".repeat(20))).collect();
        let response = app.get(&format!("/api/v1/products?{}", query.join("&"))).await;
        let problem = bounded_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert!(problem["detail"].as_str().unwrap().starts_with("2000 fields are invalid"), "{problem}");
        let response = app.get(&format!("/api/v1/users?{}", query.join("&"))).await;
        bounded_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(app.product_count().await, 0);
    }

    async fn integers_that_would_wrap_are_422_out_of_range_and_create_nothing(app) {
        let id = app.create_product(json!({"name": "Tee", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        for number in [
            "1e9223372036854775807", "-1e9223372036854775807", "1.5e-9223372036854775808",
            "1e9223372036854775808", "1E+99999999999999999999", "9223372036854775808", "1.5e-3", "1.5", "2147483648",
        ] {
            let body = format!("{{\"name\":\"x\",\"price\":\"1\",\"stock\":{number}}}");
            let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), &body).await;
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, "stock"), "out_of_range", "{number}");
            let body = format!("{{\"delta\":{number},\"reason\":\"r\"}}");
            let path = format!("/api/v1/products/{id}/stock-adjustments");
            let response = app.send_raw(Method::POST, &path, Some("application/json"), &body).await;
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, "delta"), "out_of_range", "{number}");
            let body = format!("{{\"name\":\"x\",\"price\":{number},\"stock\":1}}");
            let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), &body).await;
            if number == "1.5" {
                assert_eq!(response.status(), StatusCode::CREATED, "1.5 is a price");
                continue;
            }
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert!(["out_of_range", "too_many_decimals"].contains(&error_code(&problem, "price").as_str()), "{number}");
        }
        assert_eq!(app.product_count().await, 2, "the product and the one priced 1.5");
        assert_eq!(app.get_product(id).await["stock"], 5);
        app.assert_stock_matches_ledger(id).await;
        // The exponent form of an integer in range is the integer.
        let body = r#"{"name":"y","price":1E1,"stock":2.5E+3}"#;
        let response = app.send_raw(Method::POST, "/api/v1/products", Some("application/json"), body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        assert_eq!((created["stock"].as_i64(), created["price"].as_str()), (Some(2500), Some("10.00")));
    }

    async fn names_of_invisible_characters_only_are_blank(app) {
        let id = app.create_product(json!({"name": "Tee", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        for name in ["\u{200B}\u{202E}", "\u{2060}\u{FEFF}\u{200D}", " \u{200B} \u{3164} ", "\u{E0041}\u{FE0F}"] {
            let response = app.send_json(Method::POST, "/api/v1/products", &json!({"name": name, "price": "1", "stock": 1})).await;
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, "name"), "blank", "{name:?}");
            let response = app.send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({"name": name})).await;
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, "name"), "blank", "{name:?}");
        }
        assert_eq!(app.product_count().await, 1);
        assert_eq!(app.get_product(id).await["name"], "Tee");
        // Invisible characters next to visible ones are part of the name.
        app.create_product(json!({"name": "\u{200F}שלום\u{200F}", "price": "1", "stock": 1})).await;
    }

    async fn nul_in_any_text_field_is_422_and_changes_nothing(app) {
        let id = app.create_product(json!({"name": "Tee", "sku": "T-1", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        let nul = "a\u{0}b";
        let product = |field: &str| {
            let mut body = json!({"name": "x", "description": "d", "sku": "S-2", "price": "1", "stock": 1});
            body[field] = json!(nul);
            body
        };
        let users_before = count(&app, "SELECT count(*) FROM users").await;
        let admin = count(&app, &format!("SELECT CAST(id AS BIGINT) FROM users WHERE email = '{ADMIN_EMAIL}'")).await;
        let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let cases: Vec<(Method, String, Value, &str, bool)> = vec![
            (Method::POST, "/api/v1/products".into(), product("name"), "name", true),
            (Method::POST, "/api/v1/products".into(), product("description"), "description", true),
            (Method::POST, "/api/v1/products".into(), product("sku"), "sku", true),
            (Method::POST, "/api/v1/products".into(), product("price"), "price", true),
            (Method::PATCH, format!("/api/v1/products/{id}"), json!({"name": nul}), "name", true),
            (Method::PATCH, format!("/api/v1/products/{id}"), json!({"description": nul}), "description", true),
            (Method::PUT, format!("/api/v1/products/{id}"), product("sku"), "sku", true),
            (Method::POST, format!("/api/v1/products/{id}/stock-adjustments"), json!({"delta": 1, "reason": nul}), "reason", true),
            (Method::POST, "/api/v1/auth/register".into(), json!({"email": "a\u{0}@example.com", "password": "long-enough-1"}), "email", false),
            (Method::POST, "/api/v1/auth/register".into(), json!({"email": "n@example.com", "password": "long-enough\u{0}"}), "password", false),
            (Method::POST, "/api/v1/auth/login".into(), json!({"email": ADMIN_EMAIL, "password": "admin-password-1\u{0}"}), "password", false),
            (Method::POST, "/api/v1/auth/refresh".into(), json!({"refresh_token": format!("{}\u{0}", tokens["refresh_token"].as_str().unwrap())}), "refresh_token", false),
            (Method::POST, "/api/v1/auth/logout".into(), json!({"refresh_token": format!("{}\u{0}", tokens["refresh_token"].as_str().unwrap())}), "refresh_token", false),
            (Method::PATCH, format!("/api/v1/users/{admin}"), json!({"role": "admin\u{0}"}), "role", true),
        ];
        for (method, path, body, field, as_admin) in cases {
            let request = if as_admin { app.request(method.clone(), &path) } else { app.anonymous(method.clone(), &path) };
            let content_type = if method == Method::PATCH { "application/merge-patch+json" } else { "application/json" };
            let response = request.header("content-type", content_type).body(body.to_string()).send().await.unwrap();
            let problem = bounded_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert!(error_fields(&problem).contains(&field.to_owned()), "{method} {path}: {problem}");
        }
        assert_eq!(app.product_count().await, 1);
        let product = app.get_product(id).await;
        assert_eq!((product["name"].as_str(), product["version"].as_i64()), (Some("Tee"), Some(1)));
        app.assert_stock_matches_ledger(id).await;
        assert_eq!(count(&app, "SELECT count(*) FROM users").await, users_before);
        // The refresh token was not spent by the refused requests.
        let response = app.anonymous(Method::POST, "/api/v1/auth/refresh").json(&json!({"refresh_token": tokens["refresh_token"]})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn nul_in_query_values_is_400(app) {
        let id = app.create_product(json!({"name": "Tee", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        for query in ["q=a%00b", "q=%00", "sort=%00", "cursor=%00", "min_price=1%00", "max_price=%00", "in_stock=%00",
                      "page=1%00", "per_page=%00", "limit=%00", "a%00b=1"] {
            let response = app.get(&format!("/api/v1/products?{query}")).await;
            bounded_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        }
        for path in ["/api/v1/users?page=%00".to_owned(), format!("/api/v1/products/{id}/stock-adjustments?per_page=1%00")] {
            let response = app.get(&path).await;
            bounded_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        }
        assert_eq!(app.get(&format!("/api/v1/products/{id}%00")).await.status(), StatusCode::NOT_FOUND);
    }

    async fn nul_in_header_values_is_400_and_changes_nothing(app) {
        let id = app.create_product(json!({"name": "Tee", "price": "1.00", "stock": 5})).await["id"].as_i64().unwrap();
        let body = r#"{"name":"x","price":"1","stock":1}"#;
        let token = &app.admin_token;
        for (method, path, header) in [
            ("POST", "/api/v1/products".to_owned(), "Idempotency-Key: a\0b"),
            ("PATCH", format!("/api/v1/products/{id}"), "If-Match: \"v1\0\""),
            ("DELETE", format!("/api/v1/products/{id}"), "If-Match: \0"),
            ("GET", format!("/api/v1/products/{id}"), "If-None-Match: \"v1\"\0"),
            ("POST", "/api/v1/products".to_owned(), "X-Request-Id: a\0b"),
        ] {
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{header}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let status = raw_status_line(&app, request.as_bytes()).await;
            assert!(status.starts_with("HTTP/1.1 400"), "{header:?}: {status}");
        }
        // Bytes a header may carry but a key may not (obs-text) are our 400 problem.
        let response = app.request(Method::POST, "/api/v1/products")
            .header("idempotency-key", reqwest::header::HeaderValue::from_bytes(b"key-\xff").unwrap())
            .json(&json!({"name": "x", "price": "1", "stock": 1})).send().await.unwrap();
        bounded_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-header").await;
        assert_eq!(app.product_count().await, 1);
        assert_eq!(app.get_product(id).await["version"], 1);
    }
}
