//! Two tienda processes on one PostgreSQL database, `TIENDA_CACHE=redis`, sharing invalidations
//! over a Redis of the test's own (a free port, never the shared one), which the test kills and
//! starts again in the middle of the run: A serves in the test's process and takes the writes, B
//! is a `tienda serve` child process and takes the reads.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, product_body};

/// A throw-away `redis-server` without persistence on a free port; killed when dropped.
pub(crate) struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.up();
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it accepts connections.
    pub(crate) fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed where the Redis tests run");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An instance's base URL and a client for it.
#[derive(Clone)]
struct Instance {
    base: String,
    client: reqwest::Client,
}

impl Instance {
    fn of(app: &TestApp) -> Self {
        Instance {
            base: app.url(""),
            client: app.client.clone(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// Waits until the instance's readiness says its cache channel is `state`; returns the body.
async fn wait_for_cache(instance: &Instance, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let response = instance.get("/health/ready").await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if body["checks"]["cache"] == state {
            assert_eq!(
                status,
                StatusCode::OK,
                "Redis down never makes the instance unready: {body}"
            );
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the cache channel never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default)]
struct Tally {
    writes: AtomicUsize,
    stale: AtomicUsize,
    hits: AtomicUsize,
}

/// `rounds` of: write on A, wait 100 ms after A answered, read on B (the product twice, then
/// the listing page that shows it); a read showing an older version than A's answer is stale.
async fn run(a: &Arc<TestApp>, b: &Instance, ids: &[i64], rounds: usize, tally: &Arc<Tally>) {
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let (a, b, tally) = (a.clone(), b.clone(), tally.clone());
            tokio::spawn(async move {
                let path = format!("/api/v1/products/{id}");
                for round in 0..rounds {
                    let written = a.send_json(Method::PATCH, &path, &json!({"stock": round})).await;
                    assert_eq!(
                        written.status(),
                        StatusCode::OK,
                        "a write never fails, Redis or not"
                    );
                    let version = written.json::<Value>().await.unwrap()["version"]
                        .as_i64()
                        .unwrap();
                    tally.writes.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    for _ in 0..2 {
                        let read = b.get(&path).await;
                        assert_eq!(read.status(), StatusCode::OK);
                        if read
                            .headers()
                            .get("cache-status")
                            .is_some_and(|v| v == "tienda; hit")
                        {
                            tally.hits.fetch_add(1, Ordering::SeqCst);
                        }
                        let seen = read.json::<Value>().await.unwrap()["version"].as_i64().unwrap();
                        if seen < version {
                            tally.stale.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let page: Value = b
                        .get("/api/v1/products?per_page=100&sort=id")
                        .await
                        .json()
                        .await
                        .unwrap();
                    let listed = page["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["id"] == id)
                        .cloned();
                    if listed.is_none_or(|p| p["version"].as_i64().unwrap() < version) {
                        tally.stale.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tienda_test_postgres, tienda_test_redis)),
    ignore = "set TIENDA_TEST_DATABASE_URL and TIENDA_TEST_REDIS_URL (redis-server installed) to run it"
)]
async fn instances_see_each_others_writes_100_ms_later_through_a_redis_restart() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let settings = [("TIENDA_CACHE", "redis"), ("REDIS_URL", url.as_str())];
    let a = Arc::new(TestApp::spawn_with(Backend::Postgres, &settings).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let b_settings = [
        ("DATABASE_URL", a.database_url.as_str()),
        settings[0],
        settings[1],
    ];
    let (_b_process, b_addr) = tokio::task::block_in_place(|| crate::process::serve(dir.path(), &b_settings));
    let b = Instance {
        base: format!("http://{b_addr}"),
        client: crate::helpers::client_builder().no_proxy().build().unwrap(),
    };
    let a_instance = Instance::of(&a);
    wait_for_cache(&a_instance, "up").await;
    wait_for_cache(&b, "up").await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(a.create_product(product_body(n)).await["id"].as_i64().unwrap());
    }

    // 1. Redis up: 300 writes.
    let before = Arc::new(Tally::default());
    run(&a, &b, &ids, 30, &before).await;

    // 2. 400 writes while Redis is killed and started again on the same port.
    let during = Arc::new(Tally::default());
    let load = {
        let (a, b, ids, during) = (a.clone(), b.clone(), ids.clone(), during.clone());
        tokio::spawn(async move { run(&a, &b, &ids, 40, &during).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.kill();
    let degraded = wait_for_cache(&b, "down").await;
    assert_eq!(degraded["status"], "degraded");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.up();
    load.await.unwrap();

    // 3. Recovered by themselves: 300 more writes, and B serves hits again.
    wait_for_cache(&a_instance, "up").await;
    wait_for_cache(&b, "up").await;
    let after = Arc::new(Tally::default());
    run(&a, &b, &ids, 30, &after).await;

    let counts = |t: &Tally| {
        (
            t.writes.load(Ordering::SeqCst),
            t.stale.load(Ordering::SeqCst),
            t.hits.load(Ordering::SeqCst),
        )
    };
    let (before, during, after) = (counts(&before), counts(&during), counts(&after));
    eprintln!(
        "writes, stale reads, hits on B: before {before:?}, during the restart {during:?}, after {after:?}"
    );
    assert_eq!(before.0 + during.0 + after.0, 1000);
    assert_eq!((before.1, during.1, after.1), (0, 0, 0), "no stale read on B");
    assert!(
        before.2 > 0 && after.2 > 0,
        "B serves hits before and after the restart"
    );
}
