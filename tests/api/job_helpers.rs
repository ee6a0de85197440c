//! What the job, import and export tests share: uploads, waiting for a job, worker processes,
//! and checks of the catalogue straight from the database.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

pub const BIN: &str = env!("CARGO_BIN_EXE_tienda");

/// Settings for a test whose jobs run quickly: a short poll.
pub const FAST: &[(&str, &str)] = &[("TIENDA_JOB_POLL_MS", "50")];
/// Settings for a test that runs no embedded worker (jobs stay queued).
pub const NO_WORKERS: &[(&str, &str)] = &[("TIENDA_WORKERS", "0"), ("TIENDA_JOB_POLL_MS", "50")];

/// Posts an import with `query` and a body of `content_type`.
pub async fn post_import(
    app: &TestApp,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Response {
    app.request(Method::POST, &format!("/api/v1/imports{query}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts a CSV import and returns the queued job, asserting 202 and its `Location`.
pub async fn import_csv(app: &TestApp, query: &str, csv: &str) -> Value {
    let response = post_import(app, query, "text/csv", csv.to_owned()).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "import {query}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/jobs/{}", job["id"]));
    assert_eq!(job["kind"], "import");
    job
}

/// The job as the API shows it.
pub async fn get_job(app: &TestApp, id: &Value) -> Value {
    let response = app.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Waits (at most `secs`) until the job has finished and returns it.
pub async fn wait_job(app: &TestApp, id: &Value, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let job = get_job(app, id).await;
        if matches!(job["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Imports a CSV and waits for the job to finish.
pub async fn import_and_wait(app: &TestApp, query: &str, csv: &str) -> Value {
    let job = import_csv(app, query, csv).await;
    wait_job(app, &job["id"], 60).await
}

/// A CSV of `n` products `P{i}` with skus `SKU-{i}`, stock `i % 7`.
pub fn csv_of(n: u32) -> String {
    let mut csv = String::from("sku,name,description,price,stock\n");
    for i in 0..n {
        csv.push_str(&format!(
            "SKU-{i},Product {i},\"Line, with comma\",{}.{:02},{}\n",
            i % 500,
            i % 100,
            i % 7
        ));
    }
    csv
}

/// Products whose stock differs from the sum of their ledger (must be 0).
pub async fn ledger_mismatches(app: &TestApp) -> i64 {
    app.scalar(
        "SELECT CAST(count(*) AS BIGINT) FROM products p WHERE p.stock <> \
         (SELECT COALESCE(SUM(delta), 0) FROM stock_ledger l WHERE l.product_id = p.id)",
    )
    .await
}

/// Skus held by more than one product (must be 0).
pub async fn duplicate_skus(app: &TestApp) -> i64 {
    app.scalar(
        "SELECT CAST(count(*) - count(DISTINCT lower(sku)) AS BIGINT) FROM products WHERE sku IS NOT NULL",
    )
    .await
}

/// A `tienda worker` process on the app's database, killed when dropped.
pub struct WorkerProcess(pub Child);

impl WorkerProcess {
    pub fn start(app: &TestApp, lease_secs: &str) -> Self {
        let child = Command::new(BIN)
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.database_url)
            .env("TIENDA_LOG_FORMAT", "json")
            .env("TIENDA_JOB_LEASE_SECS", lease_secs)
            .env("TIENDA_JOB_POLL_MS", "50")
            .env("TIENDA_DB_MAX_CONNECTIONS", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        WorkerProcess(child)
    }

    /// SIGKILL: no chance to record anything.
    pub fn kill_9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
