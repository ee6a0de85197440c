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
