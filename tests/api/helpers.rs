//! `TestApp`: the real server on a random port with a database of its own.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tienda::config::Config;
use tienda::startup::Application;

pub const PG_ENV: &str = "TIENDA_TEST_DATABASE_URL";
pub const REDIS_ENV: &str = "TIENDA_TEST_REDIS_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test body once per backend: `name::sqlite` and `name::postgres`. The PostgreSQL
/// variant is compiled as ignored when `TIENDA_TEST_DATABASE_URL` was unset at compile time
/// (see build.rs), so a run without PostgreSQL reports it as ignored, never as passed.
/// Configuration variables for both apps go after `with`:
/// `async fn name(app) with &[("K", "v")] => { ... }`.
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
            #[cfg_attr(
                not(tienda_test_postgres),
                ignore = "set TIENDA_TEST_DATABASE_URL to run the PostgreSQL variants"
            )]
            async fn postgres() {
                let settings: &[(&str, &str)] = both_backends!(@settings $($settings)?);
                let $app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, settings).await.unwrap();
                $body
            }
        }
    )*};
}

/// One case of a property test, run on SQLite and, when the tests were built with
/// `TIENDA_TEST_DATABASE_URL`, on PostgreSQL at the same time, on a runtime of its own (a
/// `proptest!` body is synchronous). `check` returns whether it ran.
pub fn on_both_engines<F, Fut>(check: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let postgres = async {
            if cfg!(tienda_test_postgres) {
                check(Backend::Postgres).await
            } else {
                eprintln!("SKIPPED the PostgreSQL half: TIENDA_TEST_DATABASE_URL was not set at build time");
                false
            }
        };
        let (sqlite, _postgres) = tokio::join!(check(Backend::Sqlite), postgres);
        assert!(sqlite);
    });
}

/// The value of a test service's variable. Its test was compiled to run (the variable was set
/// when cargo built the tests), so a missing value now is an error, never a silent pass.
pub fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} was set when this test was compiled but is not set now: set it again \
             (or unset it and let cargo rebuild the tests, which are then ignored)"
        ),
    }
}

/// A test's own database, shared by every server the test starts on it (a restart keeps the
/// data) and dropped with the last of them.
enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// Creates an empty database; returns it with its URL.
    async fn create(backend: Backend) -> (Arc<TestDb>, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("tienda.db").display());
                (Arc::new(TestDb::Sqlite(dir)), url)
            }
            Backend::Postgres => {
                let admin_url = required_env(PG_ENV);
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
                (Arc::new(TestDb::Postgres { admin_url, name }), url.to_string())
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
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

/// A reqwest client builder, the process's TLS provider installed first (reqwest's rustls has
/// none of its own here and panics without one: see `tienda::install_tls_provider`).
pub fn client_builder() -> reqwest::ClientBuilder {
    tienda::install_tls_provider();
    reqwest::Client::builder()
}

pub const ADMIN_EMAIL: &str = "admin@tienda.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A running server: how to stop it and how to see that it stopped.
struct RunningServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub struct TestApp {
    pub address: String,
    /// `http://` address of the separate metrics listener, when `TIENDA_METRICS_ADDR` is set.
    pub metrics_address: Option<String>,
    /// An access token of the bootstrapped admin; `request` sends it.
    pub admin_token: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub backend: Backend,
    server: Option<RunningServer>,
    db: Arc<TestDb>,
}

impl TestApp {
    /// A server on a fresh database. Always `Some`: a backend that is not configured panics
    /// (its test was compiled as ignored unless the variable was set).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    /// Spawns with extra configuration variables. Always `Some`, as [`TestApp::spawn`].
    pub async fn spawn_with(backend: Backend, settings: &[(&str, &str)]) -> Option<TestApp> {
        let (db, database_url) = TestDb::create(backend).await;
        Some(Self::start(backend, db, database_url, settings).await)
    }

    /// Stops this server and spawns another with `settings` on a fresh database of the same
    /// backend: for a test of both backends that needs a configuration of its own.
    pub async fn respawn_with(self, settings: &[(&str, &str)]) -> TestApp {
        let backend = self.backend;
        drop(self);
        Self::spawn_with(backend, settings).await.unwrap()
    }

    /// Stops this server, waits until it has stopped, and starts another with `settings` on the
    /// same database: a restart of the process, the data kept.
    pub async fn restart_with(mut self, settings: &[(&str, &str)]) -> TestApp {
        let server = self.server.take().unwrap();
        let (backend, db, database_url) = (self.backend, self.db.clone(), self.database_url.clone());
        drop(self);
        let _ = server.stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(15), server.task)
            .await
            .expect("the server stopped within 15 s")
            .unwrap()
            .unwrap();
        Self::start(backend, db, database_url, settings).await
    }

    /// Serves on `database_url` (migrating it first), logged in as the bootstrapped admin.
    async fn start(
        backend: Backend,
        db: Arc<TestDb>,
        database_url: String,
        settings: &[(&str, &str)],
    ) -> TestApp {
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
        let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let mut app = TestApp {
            address: format!("http://{addr}"),
            metrics_address,
            admin_token: String::new(),
            client: crate::helpers::client_builder().no_proxy().build().unwrap(),
            database_url,
            backend,
            server: Some(RunningServer { stop, task }),
            db,
        };
        app.admin_token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        app
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
        matches!(self.backend, Backend::Postgres)
    }

    /// Runs one statement straight on the database, for a test that must arrange what no
    /// request can (a session started months ago).
    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
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
        // The database goes with the last server on it (`TestDb`'s drop).
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
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

    /// Follows `next_cursor` from `first` to the end; returns every item in order. A cursor
    /// handed out twice fails the walk (it would never end).
    pub async fn walk_cursor(&self, first: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let (mut page, _) = self.get_page(first).await;
        loop {
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    assert!(seen.insert(cursor.to_owned()), "the walk from {first} cycles");
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
