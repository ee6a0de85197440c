//! `POST /api/v1/imports`: CSV and JSON Lines, upsert and create, abort and skip, dry runs, and
//! every kind of bad file.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::job_helpers::*;

const HEADER: &str = "sku,name,description,price,stock\n";

both_backends! {
    async fn upsert_creates_new_skus_updates_changed_ones_and_writes_the_stock_to_the_ledger(app) with FAST => {
        let existing = app.create_product(json!({"sku": "TEE-1", "name": "Tee", "price": "10.00", "stock": 5})).await;
        let csv = format!("{HEADER}tee-1,Tee,,12.50,8\nMUG-1,\"Mug, large\",\"Holds \"\"tea\"\"\",4.00,3\n");
        let job = import_and_wait(&app, "", &csv).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result = &job["result"];
        assert_eq!((result["rows"].as_u64(), result["created"].as_u64(), result["updated"].as_u64()), (Some(2), Some(1), Some(1)));
        assert_eq!(job["progress"]["done"], 2);
        let tee = app.get_product(existing["id"].as_i64().unwrap()).await;
        assert_eq!((tee["price"].as_str(), tee["stock"].as_i64(), tee["version"].as_i64()), (Some("12.50"), Some(8), Some(2)));
        assert_eq!(tee["sku"], "tee-1", "the sku is kept as the file spells it");
        app.assert_stock_matches_ledger(existing["id"].as_i64().unwrap()).await;
        let reason = app
            .get(&format!("/api/v1/products/{}/stock-adjustments", existing["id"]))
            .await
            .json::<Value>()
            .await
            .unwrap()["items"][0]["reason"]
            .clone();
        assert_eq!(reason, format!("import job {}", job["id"]));
        assert_eq!(app.product_count().await, 2);
        assert_eq!(ledger_mismatches(&app).await, 0);
    }

    async fn importing_the_same_file_again_leaves_every_row_unchanged_and_no_version_moves(app) with FAST => {
        let csv = csv_of(30);
        let first = import_and_wait(&app, "", &csv).await;
        assert_eq!(first["result"]["created"], 30);
        let versions = app.scalar("SELECT CAST(SUM(version) AS BIGINT) FROM products").await;
        let ledger_rows = app.scalar("SELECT count(*) FROM stock_ledger").await;
        let second = import_and_wait(&app, "", &csv).await;
        assert_eq!(second["status"], "succeeded");
        assert_eq!(second["result"]["unchanged"], 30, "{second}");
        assert_eq!(second["result"]["updated"], 0);
        assert_eq!(app.scalar("SELECT CAST(SUM(version) AS BIGINT) FROM products").await, versions);
        assert_eq!(app.scalar("SELECT count(*) FROM stock_ledger").await, ledger_rows);
    }

    async fn abort_with_an_invalid_row_writes_nothing_and_names_its_line_and_field(app) with FAST => {
        let csv = format!("{HEADER}A-1,Good,,1.00,1\nA-2,Bad price,,19.999,1\nA-3,,,1.00,1\n");
        let job = import_and_wait(&app, "?on_error=abort", &csv).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["error"]["type"], "/problems/import-rejected");
        assert_eq!(job["attempts"], 1, "a rejected file is never retried");
        let result = &job["result"];
        assert_eq!((result["rows"].as_u64(), result["invalid"].as_u64()), (Some(3), Some(2)));
        assert_eq!(result["errors"][0], json!({"line": 3, "field": "price", "code": "too_many_decimals", "message": "at most 2 decimal places"}));
        assert_eq!(result["errors"][1]["line"], 4);
        assert_eq!(result["errors"][1]["field"], "name");
        assert_eq!(app.product_count().await, 0);
    }

    async fn skip_writes_the_valid_rows_and_reports_the_invalid_ones(app) with FAST => {
        let csv = format!("{HEADER}A-1,Good,,1.00,1\nA-2,Bad,,-1,1\nA-3,Also good,,2.00,0\n");
        let job = import_and_wait(&app, "?on_error=skip", &csv).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["created"], 2);
        assert_eq!(job["result"]["invalid"], 1);
        assert_eq!(job["result"]["errors"][0]["line"], 3);
        assert_eq!(job["result"]["errors"][0]["code"], "invalid_format");
        assert_eq!(app.product_count().await, 2);
    }

    async fn a_dry_run_counts_what_a_real_run_would_do_and_writes_nothing(app) with FAST => {
        app.create_product(json!({"sku": "A-1", "name": "Same", "price": "1.00", "stock": 1})).await;
        app.create_product(json!({"sku": "A-2", "name": "Old", "price": "1.00", "stock": 1})).await;
        let csv = format!("{HEADER}A-1,Same,,1.00,1\nA-2,New name,,1.00,1\nA-3,New,,1.00,1\nA-4,Bad,,x,1\n");
        let job = import_and_wait(&app, "?dry_run=true&on_error=skip", &csv).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let counts: Vec<u64> = ["rows", "created", "updated", "unchanged", "invalid"]
            .iter()
            .map(|k| job["result"][*k].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [4, 1, 1, 1, 1]);
        assert_eq!(app.product_count().await, 2);
        assert_eq!(app.scalar("SELECT CAST(SUM(version) AS BIGINT) FROM products").await, 2);
    }

    async fn create_mode_refuses_a_sku_that_is_taken_in_the_catalogue_or_earlier_in_the_file(app) with FAST => {
        app.create_product(json!({"sku": "A-1", "name": "Taken", "price": "1.00", "stock": 1})).await;
        let csv = format!("{HEADER}a-1,Dup,,1.00,1\nB-1,New,,1.00,1\nb-1,Dup in file,,1.00,1\n");
        let job = import_and_wait(&app, "?mode=create&on_error=skip", &csv).await;
        assert_eq!(job["result"]["created"], 1, "{job}");
        assert_eq!(job["result"]["invalid"], 2);
        let codes: Vec<&str> = job["result"]["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["taken", "taken"]);
        assert_eq!(duplicate_skus(&app).await, 0);
    }

    async fn the_validation_pass_knows_the_skus_earlier_in_the_file_ignoring_case(app) with FAST => {
        let csv = format!("{HEADER}B-1,New,,1.00,1\nC-1,Other,,1.00,1\nb-1,Dup in file,,1.00,1\n");
        let job = import_and_wait(&app, "?mode=create&on_error=abort", &csv).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["result"]["errors"][0]["line"], 4);
        assert_eq!(job["result"]["errors"][0]["code"], "taken");
        assert_eq!(app.product_count().await, 0);
        let csv = format!("{HEADER}X-1,Same,,1.00,1\nX-1,Same,,1.00,1\nX-1,Changed,,1.00,1\nY-1,Other,,1.00,1\n");
        let job = import_and_wait(&app, "?dry_run=true", &csv).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let counts: Vec<u64> = ["created", "unchanged", "updated"]
            .iter()
            .map(|k| job["result"][*k].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [2, 1, 1], "{job}");
        assert_eq!(app.product_count().await, 0);
    }

    async fn json_lines_rows_follow_the_product_rules_with_their_line_numbers(app) with FAST => {
        let body = "{\"sku\":\"J-1\",\"name\":\"Json\",\"price\":19.99,\"stock\":2}\n{\"sku\":\"J-2\",\"name\":\"X\",\"price\":\"1.00\",\"stock\":1,\"colour\":\"red\"}\n";
        let response = post_import(&app, "?format=jsonl&on_error=skip", "application/x-ndjson", body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        let job = wait_job(&app, &job["id"], 30).await;
        assert_eq!(job["result"]["created"], 1, "{job}");
        assert_eq!(job["result"]["errors"][0], json!({"line": 2, "field": "colour", "code": "unknown_field", "message": "is not a field of this resource"}));
    }

    async fn a_bad_header_is_422_at_once_and_no_job_exists(app) with FAST => {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"sku,name,price,stock,colour\nA,b,1,1\n", "colour", "unknown_column"),
            (b"sku,name,price\nA,b,1\n", "stock", "missing_column"),
            (b"", "header", "empty_file"),
            (b"sku,n\xffme,price,stock\n", "header", "malformed_header"),
        ];
        for (body, field, code) in cases {
            let response = post_import(&app, "", "text/csv", body.to_vec()).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/import-rejected").await;
            assert_eq!(error_code(&problem, field), code, "{problem}");
        }
        let jobs: Value = app.get("/api/v1/jobs").await.json().await.unwrap();
        assert_eq!(jobs["total"], 0);
        assert_eq!(app.scalar("SELECT count(*) FROM job_files").await, 0);
    }

    async fn broken_rows_are_reported_by_line_not_utf8_too_many_columns_and_an_open_quote(app) with FAST => {
        let mut body = b"sku,name,price,stock\nA-1,ok,1.00,1\nA-2,b\xffd,1.00,1\nA-3,x,1.00,1,extra\nA-4,\"open,1.00,1\n".to_vec();
        body.extend_from_slice(b"A-5,never closed,1.00,1\n");
        let response = post_import(&app, "?on_error=skip", "text/csv", body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        let job = wait_job(&app, &job["id"], 30).await;
        let errors: Vec<(u64, String)> = job["result"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(errors, [(3, "invalid_encoding".to_owned()), (4, "field_count".to_owned()), (5, "unterminated_quote".to_owned())], "{job}");
        assert_eq!(job["result"]["created"], 1);
    }

    async fn an_8_mib_csv_row_is_one_invalid_row_by_its_line_and_skip_creates_the_others(app) with FAST => {
        // The long row's description is quoted and spans two lines: the rows after it keep theirs.
        let long = format!("L-1,Long,\"{}\n{}\",1.00,1\n", "x".repeat(4 << 20), "y".repeat(4 << 20));
        let csv = format!("{HEADER}A-1,First,,1.00,1\n{long}A-2,Second,,1.00,1\nA-3,Bad,,19.999,1\n");
        let dry = import_and_wait(&app, "?on_error=skip&dry_run=true", &csv).await;
        assert_eq!(dry["status"], "succeeded", "{dry}");
        assert_eq!((dry["result"]["created"].as_u64(), dry["result"]["invalid"].as_u64()), (Some(2), Some(2)));
        let job = import_and_wait(&app, "?on_error=skip", &csv).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result = &job["result"];
        assert_eq!((result["rows"].as_u64(), result["created"].as_u64(), result["invalid"].as_u64()), (Some(4), Some(2), Some(2)));
        assert_eq!(
            result["errors"][0],
            json!({"line": 3, "field": "row", "code": "row_too_long", "message": "is longer than 131072 bytes, more than any valid product takes"})
        );
        assert_eq!((result["errors"][1]["line"].as_u64(), result["errors"][1]["field"].as_str()), (Some(6), Some("price")));
        assert_eq!(app.product_count().await, 2);
        assert_eq!(app.scalar("SELECT count(*) FROM products WHERE sku = 'L-1'").await, 0);
    }

    async fn an_8_mib_json_line_with_abort_writes_nothing_and_names_its_line(app) with FAST => {
        let good = |sku: &str| format!("{{\"sku\":\"{sku}\",\"name\":\"n\",\"price\":1,\"stock\":1}}\n");
        let long = format!("{{\"sku\":\"L-1\",\"name\":\"{}\",\"price\":1,\"stock\":1}}\n", "x".repeat(8 << 20));
        let body = format!("{}{long}{}", good("A-1"), good("A-2"));
        let response = post_import(&app, "?format=jsonl&on_error=abort", "application/x-ndjson", body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        let job = wait_job(&app, &job["id"], 60).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["error"]["type"], "/problems/import-rejected");
        let result = &job["result"];
        assert_eq!((result["rows"].as_u64(), result["invalid"].as_u64()), (Some(3), Some(1)));
        assert_eq!((result["errors"][0]["line"].as_u64(), result["errors"][0]["code"].as_str()), (Some(2), Some("row_too_long")));
        assert_eq!(app.product_count().await, 0);
    }

    async fn a_body_over_the_limit_is_413_and_leaves_nothing_behind(app) with &[("TIENDA_IMPORT_MAX_MB", "1")] => {
        let big = csv_of(40_000);
        assert!(big.len() > 1 << 20);
        let response = post_import(&app, "", "text/csv", big.clone()).await;
        assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "/problems/payload-too-large").await;
        // Without a Content-Length (chunked), the limit holds as the body streams in.
        let status = post_chunked(&app, big.as_bytes()).await;
        assert!(status.starts_with("HTTP/1.1 413"), "{status}");
        assert_eq!(app.scalar("SELECT count(*) FROM job_files").await, 0);
        assert_eq!(app.scalar("SELECT count(*) FROM jobs").await, 0);
    }

    async fn bad_parameters_content_types_and_callers_are_refused(app) with FAST => {
        let csv = csv_of(1);
        let response = post_import(&app, "?mode=merge", "text/csv", csv.clone()).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_code(&problem, "mode"), "invalid_mode");
        let response = post_import(&app, "?colour=red", "text/csv", csv.clone()).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        let response = post_import(&app, "", "application/json", csv.clone()).await;
        assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "/problems/unsupported-media-type").await;
        let customer = app.user_token("shopper@tienda.test", "customer").await;
        let response = app.anonymous(Method::POST, "/api/v1/imports").bearer_auth(customer).header("content-type", "text/csv").body(csv.clone()).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        let response = app.anonymous(Method::POST, "/api/v1/imports").header("content-type", "text/csv").body(csv).send().await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
    }
}

/// Sends an import with `Transfer-Encoding: chunked` (no length known in advance) and returns the
/// answer's status line. Stops sending once the server has answered.
async fn post_chunked(app: &crate::helpers::TestApp, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/imports HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 512];
    let n = stream.read(&mut answer).await.unwrap_or(0);
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
