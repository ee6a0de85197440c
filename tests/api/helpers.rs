//! `TestApp`: the real server on a random port with a database of its own.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Once;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tienda::config::Config;
use tienda::startup::Application;

pub const PG_ENV: &str = "TIENDA_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test body once per backend: `name::sqlite` and `name::postgres`. Configuration
/// variables for both apps go after `with`: `async fn name(app) with &[("K", "v")] => { ... }`.
macro_rules! both_backends {
    (@settings) => { &[] };
    (@settings $settings:expr) => { $settings };
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($app:ident) $(with $settings:expr =>)? $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let settings: &[(&str, &str)] = both_backends!(@settings $($settings)?);
                let $app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, settings)
                    .await
                    .unwrap();
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let settings: &[(&str, &str)] = both_backends!(@settings $($settings)?);
                let Some($app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, settings).await else {
                    return;
                };
                $body
            }
        }
    )*};
}

/// `TIENDA_TEST_REDIS_URL`, for the tests that need a shared Redis. Without it they are skipped
/// with a warning past the output capture, except in CI (`CI` set), where that is a failure.
pub fn test_redis_url() -> Option<String> {
    if let Ok(url) = std::env::var("TIENDA_TEST_REDIS_URL") {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "TIENDA_TEST_REDIS_URL must be set in CI: the Redis-shared throttle would go untested"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** WARNING: TIENDA_TEST_REDIS_URL is not set: a test of the Redis-shared throttle is SKIPPED ***\n"
    );
    None
}

/// Says once per run, past the test harness's output capture, that PostgreSQL is skipped.
fn warn_postgres_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** WARNING: {PG_ENV} is not set: every PostgreSQL variant of the API tests is SKIPPED \
             (it returns at once). Set it, e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/test ***\n"
        );
    });
}

enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

pub const ADMIN_EMAIL: &str = "admin@tienda.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestApp {
    pub address: String,
    /// An access token of the bootstrapped admin; `request` sends it.
    pub admin_token: String,
    pub client: reqwest::Client,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    db: TestDb,
}

impl TestApp {
    /// `None` for PostgreSQL when it is not configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    /// Spawns with extra configuration variables.
    pub async fn spawn_with(backend: Backend, settings: &[(&str, &str)]) -> Option<TestApp> {
        let (database_url, db) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("tienda.db").display());
                (url, TestDb::Sqlite(dir))
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(PG_ENV) else {
                    warn_postgres_skipped();
                    return None;
                };
                let name = format!("tienda_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("cannot reach the PostgreSQL in TIENDA_TEST_DATABASE_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                (url.to_string(), TestDb::Postgres { admin_url, name })
            }
        };
        let mut vars: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("TIENDA_ADDR".into(), "127.0.0.1:0".into()),
            ("TIENDA_LOG_FORMAT".into(), "json".into()),
            ("TIENDA_DB_MAX_CONNECTIONS".into(), "5".into()),
            ("TIENDA_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
            ("TIENDA_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ];
        vars.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config =
            Config::from_lookup(|key| vars.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .unwrap();
        let app = Application::build(config).await.unwrap();
        let addr: SocketAddr = app.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let mut app = TestApp {
            address: format!("http://{addr}"),
            admin_token: String::new(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            database_url,
            shutdown: Some(tx),
            db,
        };
        app.admin_token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        Some(app)
    }

    /// Logs in and returns the token response, asserting 200.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .anonymous(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login {email}");
        response.json().await.unwrap()
    }

    /// Registers a user, gives them `role` (as the admin) and returns their access token.
    pub async fn user_token(&self, email: &str, role: &str) -> String {
        let password = "user-password-1";
        let response = self
            .anonymous(Method::POST, "/api/v1/auth/register")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.unwrap();
        if role != "customer" {
            let response = self
                .send_json(
                    Method::PATCH,
                    &format!("/api/v1/users/{}", user["id"]),
                    &json!({"role": role}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        self.login(email, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// GETs a path without credentials and returns its JSON body.
    pub async fn anonymous_json(&self, path: &str) -> Value {
        self.anonymous(Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request as the admin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// Sends `body` as `application/json`.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.request(method, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Sends a raw body with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Response {
        let mut request = self.request(method, path).body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.unwrap()
    }

    /// Creates a product and returns its JSON.
    pub async fn create_product(&self, body: Value) -> Value {
        let response = self.send_json(Method::POST, "/api/v1/products", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "creating {body}");
        response.json().await.unwrap()
    }

    pub async fn get_product(&self, id: i64) -> Value {
        let response = self.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The number of products, straight from the database.
    pub async fn product_count(&self) -> i64 {
        self.scalar("SELECT count(*) FROM products").await
    }

    /// The sum of a product's ledger, straight from the database.
    pub async fn ledger_sum(&self, id: i64) -> i64 {
        self.scalar(&format!(
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM stock_ledger WHERE product_id = {id}"
        ))
        .await
    }

    /// Whether this app runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.db, TestDb::Postgres { .. })
    }

    /// Runs one statement straight on the database, for a test that must arrange what no
    /// request can (a session started months ago).
    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            TestDb::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            TestDb::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            TestDb::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            TestDb::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Asserts the invariant of the inventory: stock equals the sum of the ledger.
    pub async fn assert_stock_matches_ledger(&self, id: i64) {
        let stock = self
            .scalar(&format!("SELECT stock FROM products WHERE id = {id}"))
            .await;
        assert_eq!(
            stock,
            self.ledger_sum(id).await,
            "stock of product {id} differs from its ledger sum"
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let TestDb::Postgres { admin_url, name } = &self.db {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a thread with its own runtime can block.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A valid product body, distinct per `n`.
pub fn product_body(n: u32) -> Value {
    json!({
        "name": format!("Product {n}"),
        "description": "100% cotton",
        "sku": format!("SKU-{n}"),
        "price": "19.99",
        "stock": 12
    })
}

/// Asserts a problem+json answer with `status` and `type`, and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type was {content_type}"
    );
    let request_id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], kind, "problem type in {body}");
    assert_eq!(body["status"], status.as_u16(), "problem status in {body}");
    assert_eq!(body["request_id"], request_id.as_str(), "request id in {body}");
    body
}

/// The `field` names of a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `code` of the error naming `field`.
pub fn error_code(problem: &Value, field: &str) -> String {
    problem["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["field"] == field))
        .and_then(|e| e["code"].as_str())
        .unwrap_or_else(|| panic!("no error for {field} in {problem}"))
        .to_owned()
}

impl TestApp {
    /// Creates one product per body, a few requests at a time, and returns them in input order.
    pub async fn seed(&self, bodies: Vec<Value>) -> Vec<Value> {
        let mut created = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(8) {
            let mut tasks = Vec::new();
            for body in chunk {
                let request = self
                    .request(Method::POST, "/api/v1/products")
                    .header("content-type", "application/json")
                    .body(body.to_string());
                tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
            }
            for task in tasks {
                let response = task.await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                created.push(response.json::<Value>().await.unwrap());
            }
        }
        created
    }

    /// GETs a path and returns the JSON body and the `Link` header, asserting 200.
    pub async fn get_page(&self, path: &str) -> (Value, Option<String>) {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.json().await.unwrap(), link)
    }

    /// Follows `next_cursor` from `first` to the end; returns every item in order.
    pub async fn walk_cursor(&self, first: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let (mut page, _) = self.get_page(first).await;
        loop {
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    let path = format!("/api/v1/products?cursor={}", urlencode(cursor));
                    page = self.get_page(&path).await.0;
                }
                None => return items,
            }
        }
    }

    /// Walks numbered pages from 1 to `total_pages`; returns every item in order.
    pub async fn walk_pages(&self, query: &str, per_page: u64) -> Vec<Value> {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let path = format!("/api/v1/products?{query}{sep}page={page}&per_page={per_page}");
            let (body, _) = self.get_page(&path).await;
            items.extend(body["items"].as_array().unwrap().iter().cloned());
            if page >= body["total_pages"].as_u64().unwrap() {
                return items;
            }
            page += 1;
        }
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
