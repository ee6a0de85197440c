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
        let response = app.get("/api/v1/products").await;
        assert!(response.headers().get("content-encoding").is_none());
        let plain = response.bytes().await.unwrap();
        for encoding in ["gzip", "br", "zstd", "deflate"] {
            let response = app.request(Method::GET, "/api/v1/products").header("accept-encoding", encoding).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-encoding"], encoding);
            assert!(response.headers().get("vary").is_some());
            let compressed = response.bytes().await.unwrap();
            assert!(compressed.len() < plain.len() / 4, "{encoding}: {} of {} bytes", compressed.len(), plain.len());
            assert!(decode(encoding, &compressed).await == plain, "{encoding}: the decoded body differs from the plain answer");
        }
        // Small bodies are not worth it.
        let response = app.request(Method::GET, "/nope").header("accept-encoding", "gzip").send().await.unwrap();
        assert!(response.headers().get("content-encoding").is_none());
    }
}

/// `body` decoded from a `Content-Encoding`.
async fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
    use tokio::io::AsyncReadExt;

    let mut decoded = Vec::new();
    let read = match encoding {
        "gzip" => GzipDecoder::new(body).read_to_end(&mut decoded).await,
        "br" => BrotliDecoder::new(body).read_to_end(&mut decoded).await,
        "zstd" => ZstdDecoder::new(body).read_to_end(&mut decoded).await,
        // HTTP's "deflate" is the zlib format (RFC 9110, 8.4.1.2).
        "deflate" => ZlibDecoder::new(body).read_to_end(&mut decoded).await,
        other => panic!("no decoder for {other}"),
    };
    read.unwrap_or_else(|error| panic!("{encoding}: {error}"));
    decoded
}

/// A request that outlives `TIENDA_REQUEST_TIMEOUT_SECS` (here: its body never finishes) is
/// answered 408 with a problem body and its request id, like every other error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_timeout_is_a_408_problem() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_REQUEST_TIMEOUT_SECS", "1")])
        .await
        .unwrap();
    let before = app.product_count().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nX-Request-Id: slow-1\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"sl",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        // Read until the whole problem body has arrived (the server keeps the connection open).
        while !String::from_utf8_lossy(&answer).contains("/problems/timeout\"") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(
        answer.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("x-request-id: slow-1"), "{answer}");
    assert!(answer.contains("\"request_id\":\"slow-1\""), "{answer}");
    assert_eq!(app.product_count().await, before, "nothing was created");
}
