//! `/api/v1/jobs`: reading, listing and cancelling jobs; and the queue's guarantees with real
//! `tienda worker` processes: a worker killed with SIGKILL mid-import leaves its job to the next,
//! which ends with what one clean run leaves; two workers never run the same job.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;
use crate::job_helpers::*;

both_backends! {
    async fn a_job_is_read_and_listed_newest_first_with_kind_and_status_filters(app) with FAST => {
        let first = import_and_wait(&app, "", &csv_of(2)).await;
        let export = app.send_json(Method::POST, "/api/v1/exports", &serde_json::json!({})).await;
        assert_eq!(export.status(), StatusCode::ACCEPTED);
        let export: Value = export.json().await.unwrap();
        let export = wait_job(&app, &export["id"], 30).await;
        let job = get_job(&app, &first["id"]).await;
        for key in ["id", "kind", "status", "progress", "attempts", "created_by", "created_at", "started_at", "finished_at", "result", "error"] {
            assert!(job.get(key).is_some(), "{key} missing from {job}");
        }
        // The default (abort) validates the whole file first, so the total is known.
        assert_eq!(job["progress"], serde_json::json!({"done": 2, "total": 2}));
        let all: Value = app.get("/api/v1/jobs").await.json().await.unwrap();
        let ids: Vec<&Value> = all["items"].as_array().unwrap().iter().map(|j| &j["id"]).collect();
        assert_eq!(ids, [&export["id"], &first["id"]]);
        let imports: Value = app.get("/api/v1/jobs?kind=import&status=succeeded").await.json().await.unwrap();
        assert_eq!(imports["total"], 1);
        let none: Value = app.get("/api/v1/jobs?status=running").await.json().await.unwrap();
        assert_eq!(none["total"], 0);
        let response = app.get("/api/v1/jobs?status=done").await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_code(&problem, "status"), "invalid_status");
        assert_problem(app.get("/api/v1/jobs/999999").await, StatusCode::NOT_FOUND, "/problems/not-found").await;
        let customer = app.user_token("shopper@tienda.test", "customer").await;
        let response = app.anonymous(Method::GET, "/api/v1/jobs").bearer_auth(customer).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    }

    async fn a_cancelled_queued_job_never_starts_and_a_finished_one_cannot_be_cancelled(app) with NO_WORKERS => {
        let job = import_csv(&app, "", &csv_of(5)).await;
        assert_eq!(job["status"], "queued");
        let response = app.request(Method::POST, &format!("/api/v1/jobs/{}/cancel", job["id"])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let cancelled: Value = response.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        let app = app.restart_with(FAST).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = get_job(&app, &job["id"]).await;
        assert_eq!((job["status"].as_str(), job["attempts"].as_i64()), (Some("cancelled"), Some(0)));
        assert_eq!(app.product_count().await, 0);
        let response = app.request(Method::POST, &format!("/api/v1/jobs/{}/cancel", job["id"])).send().await.unwrap();
        assert_problem(response, StatusCode::CONFLICT, "/problems/job-finished").await;
    }

    async fn a_running_import_cancelled_stops_at_its_next_batch_with_what_it_did(app) with NO_WORKERS => {
        // Rows enough that the cancel lands long before the end, even on a loaded machine.
        const ROWS: u32 = 50_000;
        let job = import_csv(&app, "?on_error=skip", &csv_of(ROWS)).await;
        let worker = WorkerProcess::start(&app, "30");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = get_job(&app, &job["id"]).await;
            if seen["progress"]["done"].as_i64().unwrap_or(0) > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the import never started: {seen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // On SQLite the worker process's batches hold the one write lock: a cancel that waited
        // too long for it is a 503 with Retry-After (the contract's answer), and is sent again.
        let mut response = app.request(Method::POST, &format!("/api/v1/jobs/{}/cancel", job["id"])).send().await.unwrap();
        for _ in 0..5 {
            if response.status() != StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            assert!(response.headers().contains_key("retry-after"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            response = app.request(Method::POST, &format!("/api/v1/jobs/{}/cancel", job["id"])).send().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let ended = wait_job(&app, &job["id"], 60).await;
        drop(worker);
        assert_eq!(ended["status"], "cancelled", "{ended}");
        let created = ended["result"]["created"].as_i64().unwrap();
        assert!(created > 0 && created < i64::from(ROWS), "{ended}");
        assert_eq!(app.product_count().await, created);
        assert_eq!(ledger_mismatches(&app).await, 0);
    }

    async fn a_worker_killed_mid_import_leaves_the_job_to_the_next_and_the_catalogue_is_one_clean_run(app) with NO_WORKERS => {
        const ROWS: u32 = 30_000;
        let job = import_csv(&app, "?mode=create&on_error=skip", &csv_of(ROWS)).await;
        let first = WorkerProcess::start(&app, "2");
        let deadline = Instant::now() + Duration::from_secs(120);
        let done_at_kill = loop {
            let seen = get_job(&app, &job["id"]).await;
            let done = seen["progress"]["done"].as_i64().unwrap_or(0);
            if done >= i64::from(ROWS) / 3 {
                break done;
            }
            assert!(Instant::now() < deadline, "the import never started: {seen}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        first.kill_9();
        let after_kill = get_job(&app, &job["id"]).await;
        assert_eq!(after_kill["status"], "running", "the killed worker recorded nothing: {after_kill}");
        let written_at_kill = app.product_count().await;
        assert!(written_at_kill > 0 && written_at_kill < i64::from(ROWS), "killed too late to prove anything ({written_at_kill} written)");
        let _second = WorkerProcess::start(&app, "2");
        let ended = wait_job(&app, &job["id"], 180).await;
        eprintln!("kill -9 at progress {done_at_kill}, {written_at_kill} products; ended {ended}");
        assert_eq!(ended["status"], "succeeded", "{ended}");
        assert_eq!(ended["attempts"], 2);
        assert_eq!(ended["result"]["created"], i64::from(ROWS), "{ended}");
        assert_eq!(ended["result"]["invalid"], 0);
        assert_eq!(app.product_count().await, i64::from(ROWS));
        assert_eq!(duplicate_skus(&app).await, 0);
        assert_eq!(ledger_mismatches(&app).await, 0);
        assert_eq!(app.scalar("SELECT count(*) FROM stock_ledger").await, i64::from(ROWS));
        let expected_stock: i64 = (0..ROWS).map(|i| i64::from(i % 7)).sum();
        assert_eq!(app.scalar("SELECT CAST(SUM(stock) AS BIGINT) FROM products").await, expected_stock);
    }
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("TIENDA_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The command's last line on stdout (log lines come before it): the job as JSON.
fn last_line(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|_| panic!("{text}"))
}

both_backends! {
    async fn the_cli_imports_and_exports_on_the_same_code_and_exits_0_only_when_every_row_is_accepted(app) with NO_WORKERS => {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, csv_of(50)).unwrap();
        let out = cli(&app, &["import", good.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = last_line(&out);
        assert_eq!(printed["status"], "succeeded");
        assert_eq!(printed["result"]["created"], 50);
        assert_eq!(app.product_count().await, 50);

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "sku,name,price,stock\nN-1,New,1.00,1\nN-2,Bad,1.999,1\n").unwrap();
        let out = cli(&app, &["import", bad.to_str().unwrap()]);
        assert!(!out.status.success(), "an invalid row fails the command");
        let printed = last_line(&out);
        assert_eq!(printed["error"]["type"], "/problems/import-rejected");
        assert_eq!(app.product_count().await, 50);
        let out = cli(&app, &["import", "--on-error", "skip", bad.to_str().unwrap()]);
        assert!(!out.status.success(), "a skipped row still fails the command");
        assert_eq!(app.product_count().await, 51);
        let out = cli(&app, &["import", "--format", "xml", bad.to_str().unwrap()]);
        assert!(!out.status.success());
        let header = dir.path().join("header.csv");
        std::fs::write(&header, "sku,name,colour\n").unwrap();
        let out = cli(&app, &["import", header.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column `colour`"));

        let exported = dir.path().join("out.csv");
        let out = cli(&app, &["export", "-o", exported.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&exported).unwrap();
        assert_eq!(text.lines().count(), 52, "the header and 51 products");
        let out = cli(&app, &["import", exported.to_str().unwrap()]);
        assert!(out.status.success());
        let printed = last_line(&out);
        assert_eq!(printed["result"]["unchanged"], 51, "{printed}");
    }

    async fn a_worker_stopped_with_sigterm_records_its_batch_and_leaves_the_job_queued_for_the_next(app) with NO_WORKERS => {
        let job = import_csv(&app, "?mode=create&on_error=skip", &csv_of(30_000)).await;
        let worker = WorkerProcess::start(&app, "30");
        let deadline = Instant::now() + Duration::from_secs(120);
        while get_job(&app, &job["id"]).await["progress"]["done"].as_i64().unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "the import never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = worker.0.id().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let stopped_by = Instant::now() + Duration::from_secs(30);
        let mut worker = worker;
        let exit = loop {
            if let Some(exit) = worker.0.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < stopped_by, "the worker did not stop within the grace");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "{exit:?}");
        let left = get_job(&app, &job["id"]).await;
        let done = left["progress"]["done"].as_i64().unwrap();
        if left["status"] == "queued" {
            assert_eq!(left["attempts"], 0, "an interrupted run is not a failed attempt: {left}");
            assert_eq!(app.product_count().await, done, "the progress recorded is what was written");
        } else {
            assert_eq!(left["status"], "succeeded", "{left}");
        }
        let app = app.restart_with(FAST).await;
        let ended = wait_job(&app, &job["id"], 180).await;
        assert_eq!(ended["status"], "succeeded", "{ended}");
        assert_eq!(ended["result"]["created"], 30_000);
        assert_eq!(app.product_count().await, 30_000);
        assert_eq!(ledger_mismatches(&app).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tienda_test_postgres),
    ignore = "set TIENDA_TEST_DATABASE_URL to run the PostgreSQL variants"
)]
async fn two_worker_processes_on_postgres_never_run_the_same_job() {
    let app = TestApp::spawn_with(Backend::Postgres, NO_WORKERS).await.unwrap();
    const JOBS: u32 = 8;
    const ROWS: u32 = 500;
    let mut ids = Vec::new();
    for j in 0..JOBS {
        let mut csv = String::from("sku,name,price,stock\n");
        for i in 0..ROWS {
            csv.push_str(&format!("J{j}-{i},Item {i},1.00,1\n"));
        }
        ids.push(import_csv(&app, "?mode=create", &csv).await["id"].clone());
    }
    let workers = [WorkerProcess::start(&app, "30"), WorkerProcess::start(&app, "30")];
    for id in &ids {
        let job = wait_job(&app, id, 120).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        // One run each: a second worker taking a job already held would count a second attempt
        // and find every sku taken.
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(job["result"]["created"], ROWS, "{job}");
    }
    drop(workers);
    assert_eq!(app.product_count().await, i64::from(JOBS * ROWS));
    assert_eq!(duplicate_skus(&app).await, 0);
}
