//! Slow and idle connections, and more connections than the server will hold.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

async fn send_health(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
}

/// Reads one `/health/live` answer: `Some(true)` when it came, `Some(false)` when the server
/// closed the connection instead, `None` when nothing came within `within`.
async fn read_health(stream: &mut TcpStream, within: Duration) -> Option<bool> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(false),
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&seen);
                if text.contains(r#"{"status":"ok"}"#) {
                    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                    return Some(true);
                }
            }
        }
    }
}

/// How long until the server closes `stream` (reading and dropping what it sends), at most
/// `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_does_not_arrive_in_time_closes_the_connection() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_HEADER_TIMEOUT_SECS", "1")])
        .await
        .unwrap();
    // Nothing at all.
    let mut silent = connect(&app).await;
    let closed = closed_within(&mut silent, Duration::from_secs(15)).await;
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(900)),
        "{closed:?}"
    );
    // One header line every 300 ms: bytes keep coming, the head never completes.
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let drip = tokio::spawn(async move {
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer
                .write_all(format!("X-Drip-{n}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    let outcome = tokio::time::timeout(Duration::from_secs(15), reader.read(&mut buffer)).await;
    drip.abort();
    assert!(
        matches!(outcome, Ok(Ok(0)) | Ok(Err(_))),
        "still open after {:?}: {outcome:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_head_timeout() {
    let settings = [
        ("TIENDA_HEADER_TIMEOUT_SECS", "1"),
        ("TIENDA_IDLE_TIMEOUT_SECS", "3"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let mut stream = connect(&app).await;
    send_health(&mut stream).await;
    assert_eq!(
        read_health(&mut stream, Duration::from_secs(10)).await,
        Some(true)
    );
    // Idle for longer than a head may take, shorter than the idle timeout: still served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    send_health(&mut stream).await;
    assert_eq!(
        read_health(&mut stream, Duration::from_secs(10)).await,
        Some(true)
    );
    let closed = closed_within(&mut stream, Duration::from_secs(20)).await;
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(2500)),
        "{closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_while_open_ones_are_served() {
    let settings = [
        ("TIENDA_MAX_CONNECTIONS", "3"),
        ("TIENDA_HEADER_TIMEOUT_SECS", "60"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    // The test client may still hold its own keep-alive connection from logging in: open
    // connections until one is not served, which must happen by the fourth.
    let mut served = Vec::new();
    let mut waiting = None;
    for _ in 0..4 {
        let mut stream = connect(&app).await;
        send_health(&mut stream).await;
        match read_health(&mut stream, Duration::from_millis(1500)).await {
            Some(true) => served.push(stream),
            None => {
                waiting = Some(stream);
                break;
            }
            Some(false) => panic!("the server closed a connection instead of queueing it"),
        }
    }
    let mut waiting = waiting.expect("a connection past the cap was served");
    assert!(served.len() >= 2, "only {} served under a cap of 3", served.len());
    // A connection already served keeps being answered, again and again.
    for _ in 0..3 {
        send_health(&mut served[0]).await;
        assert_eq!(
            read_health(&mut served[0], Duration::from_secs(5)).await,
            Some(true)
        );
    }
    assert_eq!(read_health(&mut waiting, Duration::from_millis(500)).await, None);
    // One closes: the waiting connection is accepted and answered.
    drop(served.pop());
    assert_eq!(
        read_health(&mut waiting, Duration::from_secs(10)).await,
        Some(true)
    );
}

/// Item 6 of issue 11 as reported: a descriptor limit of 256 and more idle sockets than that.
/// The server caps itself below the limit, so it never fails `accept` with EMFILE (nor floods
/// its log with it), keeps serving the connection it has, and serves a new one once the idle
/// ones time out.
#[test]
fn more_idle_sockets_than_descriptors_neither_flood_the_log_nor_stop_the_server() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut child = crate::process::Server::from(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(concat!(
                "ulimit -n 256 && exec ",
                env!("CARGO_BIN_EXE_tienda"),
                " serve"
            ))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TIENDA_ADDR", "127.0.0.1:0")
            .env("TIENDA_LOG_FORMAT", "json")
            .env("TIENDA_HEADER_TIMEOUT_SECS", "2")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = crate::process::wait_for_serving(&log);
    let health = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    let answered = |stream: &mut std::net::TcpStream, within: Duration| {
        stream.set_read_timeout(Some(within)).unwrap();
        let mut buffer = [0u8; 512];
        matches!(stream.read(&mut buffer), Ok(n) if n > 0 && buffer.starts_with(b"HTTP/1.1 200"))
    };
    let mut kept = std::net::TcpStream::connect(&addr).unwrap();
    kept.write_all(health).unwrap();
    assert!(answered(&mut kept, Duration::from_secs(10)));

    let idle: Vec<_> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    kept.write_all(health).unwrap();
    assert!(
        answered(&mut kept, Duration::from_secs(5)),
        "the open connection stopped being served"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut newcomer = std::net::TcpStream::connect(&addr).unwrap();
    newcomer.write_all(health).unwrap();
    assert!(
        answered(&mut newcomer, Duration::from_secs(30)),
        "a new connection was not served once the idle ones timed out"
    );
    drop(idle);
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let accept_errors = text.lines().filter(|l| l.contains("accept error")).count();
    assert!(accept_errors <= 2, "{accept_errors} accept errors logged");
    assert!(text.contains("more than the open-files limit allows"), "{text}");
}

/// At SIGTERM an idle keep-alive connection is closed at once: it does not hold the process for
/// the whole grace period (30 s by default).
#[test]
fn sigterm_closes_idle_keep_alive_connections_without_waiting_for_the_grace_period() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = crate::process::serve(dir.path(), &[]);
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buffer = [0u8; 512];
    let n = idle.read(&mut buffer).unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    idle.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(matches!(idle.read(&mut buffer), Ok(0) | Err(_)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
