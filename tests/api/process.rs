//! The `tienda` binary itself: CLI, configuration errors, migrations, graceful shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tienda");

fn tienda(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TIENDA_LOG_FORMAT", "json");
    command
}

/// A server process that is killed if the test ends without stopping it, so a failing test
/// never leaves a server behind.
pub(crate) struct Server(Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl From<Child> for Server {
    fn from(child: Child) -> Self {
        Server(child)
    }
}

/// The address of a server whose JSON log goes to `log`, once it says it is serving.
pub fn wait_for_serving(log: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text.lines().find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            (value["message"] == "serving").then(|| value["addr"].as_str().unwrap_or_default().to_owned())
        });
        if let Some(addr) = found {
            return addr;
        }
        assert!(Instant::now() < deadline, "the server did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `tienda serve` on a free port and returns the child and its address, read from the
/// "serving" log line.
pub(crate) fn serve(dir: &std::path::Path, extra: &[(&str, &str)]) -> (Server, String) {
    let mut command = tienda(dir);
    command
        .env("TIENDA_ADDR", "127.0.0.1:0")
        .env("TIENDA_ADMIN_EMAIL", ADMIN.0)
        .env("TIENDA_ADMIN_PASSWORD", ADMIN.1)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = Server(command.spawn().unwrap());
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"] == "serving" {
            break value["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

pub(crate) const ADMIN: (&str, &str) = ("root@tienda.test", "root-password-1");

/// A minimal HTTP/1.1 exchange over a fresh connection: status and body.
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn admin_token(addr: &str) -> String {
    let body = format!(r#"{{"email": "{}", "password": "{}"}}"#, ADMIN.0, ADMIN.1);
    let (status, body) = http(addr, "POST", "/api/v1/auth/login", None, &body);
    assert_eq!(status, 200, "login as admin: {body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["access_token"].as_str().unwrap().to_owned()
}

pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

pub(crate) fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_lists_serve_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let output = tienda(dir.path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("serve") && text.contains("migrate") && text.contains("DATABASE_URL"),
        "{text}"
    );
}

#[test]
fn bad_configuration_exits_non_zero_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("DATABASE_URL", "mysql://localhost/x"),
        ("TIENDA_ADDR", "not-an-address"),
        ("PORT", "http"),
        ("DATABASE_URL", "postgres://127.0.0.1:1/none?connect_timeout=1"),
    ] {
        let output = tienda(dir.path()).env(var, value).arg("serve").output().unwrap();
        assert!(!output.status.success(), "{var}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={value}: {stderr}");
        assert!(lines[0].starts_with("tienda: "), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = tienda(dir.path())
        .env("TIENDA_ADDR", &addr)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn migrate_creates_the_default_sqlite_file_in_the_working_folder() {
    let dir = tempfile::tempdir().unwrap();
    let output = tienda(dir.path()).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("tienda.db").exists());
    // Running it again is a no-op.
    assert!(
        tienda(dir.path())
            .arg("migrate")
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// How long a test waits for any answer before it calls the server stuck.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A connection whose reads give up after [`ANSWER_WITHIN`], so a missing answer fails the test
/// instead of hanging it.
fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
    stream
}

/// Reads one response head (status line and headers) off `stream`.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!("connection closed mid-head: {}", String::from_utf8_lossy(&head)),
            Err(error) => panic!(
                "no answer within {ANSWER_WITHIN:?} ({error}): {}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Reads one whole response (head and `Content-Length` body) and leaves the connection open.
fn read_response(stream: &mut TcpStream) -> String {
    let head = read_head(stream);
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

/// Whether the peer has closed `stream`: a read ends at once (end of stream or reset) rather
/// than timing out.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Waits until `addr` refuses connections: the server stopped accepting.
fn wait_until_refused(addr: &str) {
    let deadline = Instant::now() + ANSWER_WITHIN;
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections {ANSWER_WITHIN:?} after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends the head of a product creation with `Expect: 100-continue` and waits for the `100
/// Continue` the server sends once the handler reads the body: from then on the request is in
/// flight, with no guessing how long that takes.
fn start_creation(addr: &str, token: &str, content_length: usize) -> TcpStream {
    let mut stream = connect(addr);
    write!(
        stream,
        "POST /api/v1/products HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .unwrap();
    let interim = read_head(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[]);
    let token = admin_token(&addr);

    // An in-flight request: the handler is reading a body of which only a part has come.
    let body = r#"{"name": "slow", "price": "1.00", "stock": 1}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = start_creation(&addr, &token, body.len());
    stream.write_all(first.as_bytes()).unwrap();

    signal(&child, "TERM");
    // No new connections are accepted meanwhile; the process still runs: it waits for us.
    wait_until_refused(&addr);
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    stream.write_all(rest.as_bytes()).unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    // Answered, the connection is closed rather than kept alive for a next request.
    assert!(
        closed_by_server(&mut stream),
        "the connection stayed open after the answer"
    );

    let status = wait_with_timeout(&mut child, ANSWER_WITHIN);
    assert!(status.success(), "{status:?}");
}

/// Idle keep-alive connections hold no request: SIGTERM closes them and the process exits at
/// once, long before the grace period (here 60 s) is over.
#[test]
fn sigterm_closes_idle_keep_alive_connections_and_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[("TIENDA_SHUTDOWN_GRACE_SECS", "60")]);
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(&addr);
            write!(stream, "GET /health/live HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            let response = read_response(&mut stream);
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            stream
        })
        .collect();

    let started = Instant::now();
    signal(&child, "TERM");
    for stream in &mut idle {
        assert!(
            closed_by_server(stream),
            "an idle keep-alive connection stayed open"
        );
    }
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// A connection that was opened but has sent nothing holds no request either.
#[test]
fn sigterm_does_not_wait_for_a_connection_that_sent_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[("TIENDA_SHUTDOWN_GRACE_SECS", "60")]);
    let mut silent = connect(&addr);
    // The server has taken the connection once it answers another one made after it.
    assert_eq!(http(&addr, "GET", "/health/live", None, "").0, 200);

    let started = Instant::now();
    signal(&child, "TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(closed_by_server(&mut silent));
}

#[test]
fn sigint_on_an_idle_server_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _addr) = serve(dir.path(), &[]);
    signal(&child, "INT");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)).success());
}

/// A request that never finishes holds shutdown for the grace period, and no longer: without
/// the bound, it would last until the request timeout (30 s).
#[test]
fn the_grace_period_bounds_a_request_that_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[("TIENDA_SHUTDOWN_GRACE_SECS", "1")]);
    let token = admin_token(&addr);
    let mut stream = start_creation(&addr, &token, 100);
    stream.write_all(b"{").unwrap();
    let started = Instant::now();
    signal(&child, "TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    let elapsed = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    // The abandoned request's connection went with the process.
    assert!(closed_by_server(&mut stream));
}

#[test]
fn production_refuses_to_start_without_a_strong_secret() {
    let dir = tempfile::tempdir().unwrap();
    for secret in [None, Some("too-short")] {
        let mut command = tienda(dir.path());
        command.env("TIENDA_ENV", "production").arg("serve");
        if let Some(secret) = secret {
            command.env("TIENDA_JWT_SECRET", secret);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("TIENDA_JWT_SECRET"), "{stderr}");
    }
}

#[test]
fn development_warns_that_a_generated_secret_dies_with_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tienda(dir.path());
    command
        .env("TIENDA_ADDR", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped());
    let mut child = Server(command.spawn().unwrap());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let warning = lines.next().unwrap().unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("TIENDA_JWT_SECRET"),
        "{warning}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn users_create_reads_the_password_from_stdin_and_the_admin_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tienda(dir.path())
        .args([
            "users",
            "create",
            "--email",
            "boss@shop.test",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"boss-password-1\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The same email again is a clear error.
    let mut again = tienda(dir.path())
        .args(["users", "create", "--email", "BOSS@shop.test", "--password-stdin"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    again
        .stdin
        .take()
        .unwrap()
        .write_all(b"other-password-1\n")
        .unwrap();
    let again = again.wait_with_output().unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    // A weak password is refused before anything is written.
    let mut weak = tienda(dir.path())
        .args(["users", "create", "--email", "new@shop.test", "--password-stdin"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    weak.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let weak = weak.wait_with_output().unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8"));

    let (mut server, addr) = serve(dir.path(), &[]);
    let body = r#"{"email": "boss@shop.test", "password": "boss-password-1"}"#;
    let (status, _) = http(&addr, "POST", "/api/v1/auth/login", None, body);
    assert_eq!(status, 200);
    signal(&server, "TERM");
    assert!(wait_with_timeout(&mut server, Duration::from_secs(10)).success());
}

#[test]
fn the_bootstrap_admin_is_created_once_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, addr) = serve(dir.path(), &[]);
    admin_token(&addr);
    signal(&first, "TERM");
    assert!(wait_with_timeout(&mut first, Duration::from_secs(10)).success());
    // Restart with another password for the same admin: the stored one stays.
    let (mut second, addr) = serve(dir.path(), &[("TIENDA_ADMIN_PASSWORD", "changed-password-1")]);
    admin_token(&addr);
    let body = format!(r#"{{"email": "{}", "password": "changed-password-1"}}"#, ADMIN.0);
    assert_eq!(http(&addr, "POST", "/api/v1/auth/login", None, &body).0, 401);
    signal(&second, "TERM");
    assert!(wait_with_timeout(&mut second, Duration::from_secs(10)).success());
}

/// Spans received by a small OTLP/HTTP receiver: (name, trace id, parent span id) in hex.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

async fn otlp_receiver() -> (String, Received) {
    use axum::body::Bytes;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let received: Received = Default::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
                if let Ok(request) = ExportTraceServiceRequest::decode(body) {
                    let mut sink = sink.lock().unwrap();
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                sink.push((span.name, hex(&span.trace_id), hex(&span.parent_span_id)));
                            }
                        }
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_and_continue_the_callers_trace() {
    let (endpoint, received) = otlp_receiver().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, addr) = serve(dir.path(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "GET /api/v1/products/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\ntraceparent: 00-{trace_id}-{parent}-01\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
        // Stopping flushes the batch exporter.
        signal(&child, "TERM");
        assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());
    })
    .await
    .unwrap();
    let spans = received.lock().unwrap().clone();
    let in_trace: Vec<&(String, String, String)> = spans.iter().filter(|(_, t, _)| t == trace_id).collect();
    let request = in_trace.iter().find(|(name, _, _)| name == "request");
    assert!(
        request.is_some(),
        "no request span in the caller's trace: {spans:?}"
    );
    assert_eq!(
        request.unwrap().2,
        parent,
        "the request span is a child of the caller's span"
    );
    assert!(
        in_trace.iter().any(|(name, _, _)| name == "db.get_product"),
        "no database span in the trace: {spans:?}"
    );
}

#[test]
fn without_an_otlp_endpoint_nothing_is_exported_and_nothing_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[]);
    let (status, _) = http(&addr, "GET", "/health/live", None, "");
    assert_eq!(status, 200);
    signal(&child, "TERM");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn request_logs_are_json_lines_with_the_user_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut command = tienda(dir.path());
    command
        .env("TIENDA_ADDR", "127.0.0.1:0")
        .env("TIENDA_ADMIN_EMAIL", ADMIN.0)
        .env("TIENDA_ADMIN_PASSWORD", ADMIN.1)
        .env("RUST_LOG", "debug")
        .arg("serve")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null());
    let mut child = Server(command.spawn().unwrap());
    let addr = wait_for_serving(&log);
    let token = admin_token(&addr);
    let (status, body) = http(&addr, "GET", "/api/v1/auth/me", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    let refresh_body = r#"{"refresh_token": "a-refresh-token-that-must-not-be-logged"}"#;
    http(&addr, "POST", "/api/v1/auth/refresh", None, refresh_body);
    signal(&child, "TERM");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)).success());

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        ADMIN.1,
        token.as_str(),
        "a-refresh-token-that-must-not-be-logged",
        "Bearer ",
    ] {
        assert!(!text.contains(secret), "a log line contains {secret:?}");
    }
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let me = lines
        .iter()
        .find(|l| l["message"] == "request served" && l["span"]["route"] == "/api/v1/auth/me")
        .expect("one line for the request");
    assert_eq!(me["status"], 200);
    assert!(me["latency_ms"].as_f64().is_some());
    assert_eq!(me["span"]["method"], "GET");
    assert!(me["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        me["span"]["user_id"].as_i64().is_some(),
        "the user id is in the request's line: {me}"
    );
}
