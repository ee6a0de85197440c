//! `POST /api/v1/exports` and `GET /api/v1/jobs/{id}/file`: the listing's filters, the file from
//! the database, its expiry, and the round trip through the import.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::job_helpers::*;

async fn export(app: &TestApp, body: Value) -> Value {
    let response = app.send_json(Method::POST, "/api/v1/exports", &body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "export {body}");
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["kind"], "export");
    wait_job(app, &job["id"], 60).await
}

async fn download(app: &TestApp, job: &Value) -> (String, String) {
    let response = app.get(job["result"]["download"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, response.text().await.unwrap())
}

fn awkward_products() -> Vec<Value> {
    vec![
        json!({"sku": "Q-1", "name": "Comma, and \"quotes\"", "description": "two\nlines, \"quoted\"", "price": "19.99", "stock": 3}),
        json!({"sku": "Q-2", "name": "Ñandú café 日本 🚀", "description": null, "price": "0.07", "stock": 0}),
        json!({"sku": "q-3", "name": "Plain", "description": "  leading spaces\r\nand CRLF", "price": "1000000000", "stock": 2147483647}),
    ]
}

both_backends! {
    async fn a_csv_export_streams_the_filtered_catalogue_with_its_content_type(app) with FAST => {
        app.seed(vec![
            json!({"sku": "E-1", "name": "Cheap", "price": "1.00", "stock": 1}),
            json!({"sku": "E-2", "name": "Dear", "price": "50.00", "stock": 1}),
            json!({"sku": "E-3", "name": "Dear, none left", "price": "60.00", "stock": 0}),
        ]).await;
        let job = export(&app, json!({"min_price": "10.00", "in_stock": true})).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["rows"], 1);
        assert_eq!(job["result"]["download"], format!("/api/v1/jobs/{}/file", job["id"]));
        let (content_type, body) = download(&app, &job).await;
        assert!(content_type.starts_with("text/csv"), "{content_type}");
        assert_eq!(body, "sku,name,description,price,stock\nE-2,Dear,,50.00,1\n");
        assert_eq!(job["result"]["bytes"].as_u64(), Some(body.len() as u64));
        let all = export(&app, json!({"format": "jsonl"})).await;
        let (content_type, body) = download(&app, &all).await;
        assert_eq!(content_type, "application/x-ndjson");
        assert_eq!(body.lines().count(), 3);
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.contains(&json!({"sku": "E-1", "name": "Cheap", "description": null, "price": "1.00", "stock": 1})), "{body}");
    }

    async fn an_export_imported_in_upsert_mode_leaves_every_row_unchanged(app) with FAST => {
        app.seed(awkward_products()).await;
        for format in ["csv", "jsonl"] {
            let job = export(&app, json!({"format": format})).await;
            let (content_type, body) = download(&app, &job).await;
            let imported = post_import(&app, &format!("?format={format}"), &content_type, body).await;
            assert_eq!(imported.status(), StatusCode::ACCEPTED);
            let imported: Value = imported.json().await.unwrap();
            let imported = wait_job(&app, &imported["id"], 30).await;
            assert_eq!(imported["status"], "succeeded", "{imported}");
            assert_eq!(imported["result"]["unchanged"], 3, "{format}: {imported}");
            assert_eq!(imported["result"]["rows"], 3);
        }
        assert_eq!(app.scalar("SELECT CAST(SUM(version) AS BIGINT) FROM products").await, 3);
    }

    async fn the_file_is_409_before_the_export_succeeds_and_410_after_its_ttl(app) with NO_WORKERS => {
        let response = app.send_json(Method::POST, "/api/v1/exports", &json!({"format": "csv"})).await;
        let job: Value = response.json().await.unwrap();
        let response = app.get(&format!("/api/v1/jobs/{}/file", job["id"])).await;
        assert_problem(response, StatusCode::CONFLICT, "/problems/job-not-finished").await;
        let app = app.restart_with(FAST).await;
        let job = wait_job(&app, &job["id"], 30).await;
        assert_eq!(app.get(&format!("/api/v1/jobs/{}/file", job["id"])).await.status(), StatusCode::OK);
        let two_days_ago = if app.is_postgres() {
            "now() - interval '2 days'".to_owned()
        } else {
            format!("{}", (chrono::Utc::now() - chrono::Duration::days(2)).timestamp_micros())
        };
        app.execute(&format!("UPDATE jobs SET finished_at = {two_days_ago} WHERE id = {}", job["id"])).await;
        let response = app.get(&format!("/api/v1/jobs/{}/file", job["id"])).await;
        assert_problem(response, StatusCode::GONE, "/problems/gone").await;
        let import = import_and_wait(&app, "", &csv_of(1)).await;
        let response = app.get(&format!("/api/v1/jobs/{}/file", import["id"])).await;
        assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
    }

    async fn an_export_with_bad_filters_is_422_and_queues_nothing(app) with FAST => {
        for (body, field) in [
            (json!({"min_price": "5.00", "max_price": "1.00"}), "min_price"),
            (json!({"format": "xml"}), "format"),
            (json!({"colour": "red"}), "colour"),
            (json!({"min_price": "1.999"}), "min_price"),
        ] {
            let response = app.send_json(Method::POST, "/api/v1/exports", &body).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert!(error_fields(&problem).contains(&field.to_owned()), "{body}: {problem}");
        }
        assert_eq!(app.scalar("SELECT count(*) FROM jobs").await, 0);
    }
}
