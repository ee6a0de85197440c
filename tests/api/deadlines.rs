//! Statements past `TIENDA_DB_STATEMENT_TIMEOUT_MS` end there, on both engines, with a 503 for a
//! client still waiting and the connection back in the pool for everyone else.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::Connection;

use crate::helpers::*;

/// `rows` products whose description is `words`: a search for them scores every one.
async fn seed_matches(app: &TestApp, rows: u32, words: &str) {
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO products (name, description, price_cents, stock, created_at, updated_at) \
         SELECT 'Item ' || i, '{words}', 100, 1, 0, 0 FROM n"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// A listing statement past its deadline is interrupted (SQLite has no statement timeout of its
/// own; a progress handler does it): a 503 problem, and the connection it held serves the next
/// request at once, with no deadline left behind on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_listing_statement_past_its_deadline_is_interrupted() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("TIENDA_DB_STATEMENT_TIMEOUT_MS", "40"),
            ("TIENDA_DB_MAX_CONNECTIONS", "2"),
        ],
    )
    .await
    .unwrap();
    // 200,000 matches for one word: scoring them all takes far longer than 40 ms.
    seed_matches(&app, 200_000, "a common word").await;

    let started = Instant::now();
    let response = app.get("/api/v1/products?q=common&limit=20").await;
    let elapsed = started.elapsed();
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "/problems/unavailable").await;
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Both pooled connections ran a part of that search; each answers a cheap page now.
    for _ in 0..4 {
        let (page, _) = app.get_page("/api/v1/products?limit=3").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
    }
}

/// A listing statement whose client went away mid-statement (the server drops the request)
/// still ends at its own deadline rather than when its scoring is done: the only reader
/// connection serves the next request from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_requests_statement_still_ends_at_its_deadline() {
    const WORDS: &str = "alpha bravo charlie delta echo foxtrot golf hotel";
    let settings = |statement_timeout_ms: &'static str| {
        [
            ("TIENDA_DB_MAX_CONNECTIONS", "1"),
            // A request waiting for the connection waits rather than giving up with a 503.
            ("TIENDA_DB_TIMEOUT_SECS", "120"),
            ("TIENDA_REQUEST_TIMEOUT_SECS", "120"),
            ("TIENDA_DB_STATEMENT_TIMEOUT_MS", statement_timeout_ms),
            // The statement is what is timed: a cached answer would never reach the database.
            ("TIENDA_CACHE", "off"),
        ]
    };
    let app = TestApp::spawn_with(Backend::Sqlite, &settings("120000"))
        .await
        .unwrap();
    let search = format!("/api/v1/products?q={}&limit=20", urlencode(WORDS));
    let (deadline, abandon_after) = (Duration::from_millis(500), Duration::from_millis(250));
    // How long the search takes when nothing cuts it, the behaviour to tell apart: matches are
    // added until it takes well over twice the deadline (fewer on a slow machine).
    let mut rows = 0;
    let uncut = loop {
        seed_matches(&app, 200_000, WORDS).await;
        rows += 200_000;
        let started = Instant::now();
        app.get_page(&search).await;
        let uncut = started.elapsed();
        if uncut >= 2 * deadline + Duration::from_millis(500) {
            break uncut;
        }
        assert!(
            // An idle machine scores 2,000,000 matches in about 2 s.
            rows < 4_000_000,
            "{rows} matches scored in {uncut:?}: too fast to tell a cut statement from a finished one"
        );
    };

    let app = app.restart_with(&settings("500")).await;
    let impatient = crate::helpers::client_builder()
        .no_proxy()
        .timeout(abandon_after)
        .build()
        .unwrap();
    let sent = Instant::now();
    let result = impatient.get(app.url(&search)).send().await;
    assert!(result.is_err(), "answered within {abandon_after:?}");
    let (page, _) = app.get_page("/api/v1/products?limit=3").await;
    let served_after = sent.elapsed();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    // Cut at its deadline, the statement frees the connection about `deadline` after the search
    // was sent; left to finish, about `uncut` after.
    assert!(
        served_after >= deadline - Duration::from_millis(200),
        "the abandoned search held no connection: the next page came {served_after:?} after it"
    );
    assert!(
        served_after < (deadline + uncut) / 2,
        "the abandoned statement ran past its deadline: the next page came {served_after:?} after \
         it, uncut it takes {uncut:?}"
    );
}

/// PostgreSQL cancels a statement past `statement_timeout`: the listing is a 503 problem with
/// `Retry-After`, never a hang. A transaction of the test's own holds the catalogue locked, so
/// the listing cannot end any other way than by its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tienda_test_postgres),
    ignore = "set TIENDA_TEST_DATABASE_URL to run the PostgreSQL variants"
)]
async fn a_postgresql_statement_past_its_timeout_is_a_503_problem() {
    let timeout = Duration::from_millis(500);
    let app = TestApp::spawn_with(Backend::Postgres, &[("TIENDA_DB_STATEMENT_TIMEOUT_MS", "500")])
        .await
        .unwrap();
    app.create_product(product_body(1)).await;
    let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    let mut lock = conn.begin().await.unwrap();
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    for path in ["/api/v1/products?limit=5", "/api/v1/products?q=product"] {
        let started = Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(10), app.get(path))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer within 10 s"));
        let elapsed = started.elapsed();
        assert!(response.headers().get("retry-after").is_some(), "{path}");
        assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "/problems/unavailable").await;
        assert!(
            elapsed >= timeout - Duration::from_millis(100),
            "{path}: {elapsed:?}"
        );
        assert!(elapsed < timeout + Duration::from_secs(4), "{path}: {elapsed:?}");
    }
    lock.rollback().await.unwrap();
    // The lock gone, the same listing answers on the same pool.
    let (page, _) = app.get_page("/api/v1/products?limit=5").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}
