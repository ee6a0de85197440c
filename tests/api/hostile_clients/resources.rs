//! Work that costs the server more than the request: repeated search words, searches and
//! password hashes by the dozen, and business figures on the public port.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use super::retry_after;
use crate::helpers::*;

both_backends! {
    async fn search_words_are_capped_and_repeated_words_cost_nothing_more(app) {
        app.seed((0..20).map(product_body).collect()).await;
        let nine = "one two three four five six seven eight nine";
        let response = app.get(&format!("/api/v1/products?q={}", urlencode(nine))).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_code(&problem, "q"), "too_many_terms");
        // One word that the engines would split into a hundred terms is no way around it.
        let response = app.get(&format!("/api/v1/products?q={}", vec!["a"; 100].join("-"))).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_code(&problem, "q"), "too_many_terms");
        // Eight distinct words, each repeated, are fine.
        let eight = "one two three four five six seven eight";
        let response = app.get(&format!("/api/v1/products?q={}", urlencode(&format!("{eight} {eight} ONE")))).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The same word many times is one word: `a` a hundred times (199 characters), and
        // `Product` as often as 200 characters allow.
        let started = Instant::now();
        let (page, _) = app.get_page(&format!("/api/v1/products?q={}", urlencode(&vec!["a"; 100].join(" ")))).await;
        assert_eq!(page["total"], 0);
        let (page, _) = app.get_page(&format!("/api/v1/products?q={}", urlencode(&vec!["Product"; 25].join(" ")))).await;
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let (once, _) = app.get_page("/api/v1/products?q=product").await;
        assert_eq!(page["total"], 20);
        assert_eq!(page["items"], once["items"]);
    }

    async fn searches_beyond_the_gate_wait_their_turn_when_it_frees_in_time(app)
        with &[("TIENDA_SEARCH_CONCURRENCY", "1")] => {
        app.seed((0..3).map(product_body).collect()).await;
        let searches: Vec<_> = (0..4)
            .map(|_| {
                let request = app.request(Method::GET, "/api/v1/products?q=product");
                tokio::spawn(async move { request.send().await.unwrap().status() })
            })
            .collect();
        for search in searches {
            assert_eq!(search.await.unwrap(), StatusCode::OK);
        }
    }
}

/// Saturated: one search holds the only slot (the test holds the products table, which
/// PostgreSQL lets it do deterministically; the gate sits above the store, so the engine does
/// not matter to it), and the next is turned away after its second of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relevance_search_that_cannot_start_within_a_second_is_503() {
    let settings = [("TIENDA_SEARCH_CONCURRENCY", "1")];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &settings).await else {
        return;
    };
    app.seed((0..3).map(product_body).collect()).await;
    let mut blocker = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let first = {
        let request = app.request(Method::GET, "/api/v1/products?q=product");
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = app.get("/api/v1/products?q=product&min_price=1").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(retry_after(&response) >= 1);
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "/problems/overloaded").await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    assert_eq!(first.await.unwrap().status(), StatusCode::OK);
    let response = app.get("/api/v1/products?q=product").await;
    assert_eq!(response.status(), StatusCode::OK);
}

const PRODUCTION_SECRET: &str = "a-production-secret-of-at-least-32-bytes";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn in_production_metrics_stay_off_the_public_port() {
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let base = [
        ("TIENDA_ENV", "production"),
        ("TIENDA_JWT_SECRET", PRODUCTION_SECRET),
    ];
    // A private listener: served there only.
    let mut settings = base.to_vec();
    settings.push(("TIENDA_METRICS_ADDR", metrics_addr.as_str()));
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let private = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), StatusCode::OK);
    assert!(
        private
            .text()
            .await
            .unwrap()
            .contains("tienda_http_requests_total")
    );
    drop(app);
    // Neither a private listener nor TIENDA_METRICS_PUBLIC: not served.
    let app = TestApp::spawn_with(Backend::Sqlite, &base).await.unwrap();
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
    drop(app);
    // Asked for explicitly: public.
    let mut settings = base.to_vec();
    settings.push(("TIENDA_METRICS_PUBLIC", "true"));
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Resident and peak memory of a process, in MiB, from /proc.
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap()
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The server runs as its own process here, so its memory is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_registrations_keep_memory_bounded_and_give_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (server, addr) = tokio::task::spawn_blocking(move || {
        crate::process::serve(&path, &[("TIENDA_HASH_CONCURRENCY", "2")])
    })
    .await
    .unwrap();
    let client = crate::helpers::client_builder().no_proxy().build().unwrap();
    let register = |n: usize| {
        let request = client
            .post(format!("http://{addr}/api/v1/auth/register"))
            .json(&json!({"email": format!("burst{n}@example.com"), "password": "long-enough-1"}));
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    // Warm up: one registration, then the process at rest.
    assert_eq!(register(1000).await.unwrap().status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = memory_mib(server.id());

    let burst: Vec<_> = (0..64).map(register).collect();
    let (mut created, mut overloaded) = (0, 0);
    for task in burst {
        let response = task.await.unwrap();
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after(&response) >= 1);
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "/problems/overloaded");
                overloaded += 1;
            }
            other => panic!("registration answered {other}"),
        }
    }
    assert_eq!(created + overloaded, 64);
    assert!(created >= 2, "only {created} of 64 registered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, peak) = memory_mib(server.id());
    eprintln!(
        "64 registrations: {created} created, {overloaded} overloaded; resident {idle} MiB before, {after} MiB after, peak {peak} MiB"
    );
    assert!(peak < 300, "peak resident memory {peak} MiB (idle {idle} MiB)");
    assert!(
        after < idle + 100,
        "resident memory {after} MiB after the burst, {idle} MiB before"
    );
}
