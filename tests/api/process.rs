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

/// Starts `tienda serve` on a free port and returns the child and its address, read from the
/// "serving" log line.
fn serve(dir: &std::path::Path, extra: &[(&str, &str)]) -> (Child, String) {
    let mut command = tienda(dir);
    command
        .env("TIENDA_ADDR", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
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

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
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

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[]);

    // An in-flight request: headers and half the body sent, the rest still to come.
    let body = r#"{"name": "slow", "price": "1.00", "stock": 1}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /api/v1/products HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    // Still running: it waits for our request.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    // No new connections are accepted meanwhile.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "accepted a new connection after SIGTERM"
    );

    stream.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigint_on_an_idle_server_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _addr) = serve(dir.path(), &[]);
    signal(&child, "INT");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn the_grace_period_bounds_a_request_that_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[("TIENDA_SHUTDOWN_GRACE_SECS", "1")]);
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(stream, "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    signal(&child, "TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    assert!(status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}
