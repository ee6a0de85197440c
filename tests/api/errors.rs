//! Framework-level answers: unknown routes, wrong methods, request ids, compression.

use reqwest::{Method, StatusCode};

use crate::helpers::*;

both_backends! {
    async fn unknown_route_is_404_problem(app) {
        for path in ["/", "/nope", "/api/v1", "/api/v2/products", "/api/v1/products/1/nope"] {
            assert_problem(app.get(path).await, StatusCode::NOT_FOUND, "/problems/not-found").await;
        }
    }

    async fn wrong_method_is_405_problem_with_allow(app) {
        let response = app.request(Method::DELETE, "/api/v1/products").send().await.unwrap();
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "/problems/method-not-allowed").await;
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        let response = app.request(Method::POST, "/api/v1/products/1").send().await.unwrap();
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "/problems/method-not-allowed").await;
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            assert!(allow.contains(method), "{allow}");
        }
    }

    async fn a_sane_request_id_is_kept_and_an_insane_one_replaced(app) {
        let response = app.request(Method::GET, "/api/v1/products").header("x-request-id", "abc-123_X.y").send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-123_X.y");
        for insane in ["has space", &"a".repeat(129), "semi;colon", "ünï"] {
            let response = app.request(Method::GET, "/nope").header("x-request-id", insane).send().await.unwrap();
            let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_ne!(id, insane);
            assert!(!id.is_empty() && id.len() <= 128);
            let problem = assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
            assert_eq!(problem["request_id"], id.as_str());
        }
        let a = app.get("/api/v1/products").await.headers()["x-request-id"].clone();
        let b = app.get("/api/v1/products").await.headers()["x-request-id"].clone();
        assert_ne!(a, b, "generated ids are unique");
    }

    async fn large_responses_are_compressed_when_the_client_accepts_it(app) {
        for n in 0..20 {
            let mut body = product_body(n);
            body["description"] = serde_json::json!("cotton ".repeat(100));
            app.create_product(body).await;
        }
        for encoding in ["gzip", "br", "zstd"] {
            let response = app.request(Method::GET, "/api/v1/products").header("accept-encoding", encoding).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-encoding"], encoding);
            assert!(response.headers().get("vary").is_some());
        }
        let response = app.get("/api/v1/products").await;
        assert!(response.headers().get("content-encoding").is_none());
        // Small bodies are not worth it.
        let response = app.request(Method::GET, "/nope").header("accept-encoding", "gzip").send().await.unwrap();
        assert!(response.headers().get("content-encoding").is_none());
    }
}
