//! Serving connections: our own accept loop over hyper's HTTP/1 connection, because
//! `axum::serve` exposes none of the limits a server facing the Internet needs.
//!
//! - At most `max_connections` are open at once. Past that the loop stops accepting, so new
//!   connections wait in the kernel's backlog until one closes, while the open ones (a load
//!   balancer's health checks among them) keep being served.
//! - A request head must arrive whole within `header_timeout`, and a keep-alive connection with
//!   no request for `idle_timeout` is closed (see [`super::connection`]).
//! - Accept errors such as EMFILE back off (up to 1 s) and are logged at most every 10 s.
//! - On shutdown the listener closes at once, idle connections close (after the linger, when
//!   there is one), requests in flight finish within the grace period, and whatever is left
//!   after it is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::Service;

use super::connection::serve_connection;
use crate::config::HttpLimits;

/// The per-connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a request head may take to arrive.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// After the listener closes, how long open connections are still served (each answer
    /// closing its connection) before the idle ones are closed; zero: closed at once.
    pub linger: Duration,
}

impl From<&HttpLimits> for ConnectionLimits {
    fn from(limits: &HttpLimits) -> Self {
        ConnectionLimits {
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            max_connections: limits.max_connections,
            linger: Duration::ZERO,
        }
    }
}

impl ConnectionLimits {
    /// Lowers the cap to what the process's descriptor limit leaves after `reserved` files (the
    /// database pool, the log, the listeners), so a full server queues connections in the
    /// backlog instead of failing `accept` with EMFILE and starving its own pool.
    pub fn within_descriptor_limit(self, reserved: u64) -> Self {
        let Some(limit) = open_files_limit() else {
            return self;
        };
        let room = limit.saturating_sub(reserved).max(1);
        if (self.max_connections as u64) <= room {
            return self;
        }
        tracing::warn!(
            configured = self.max_connections,
            open_files_limit = limit,
            serving_at_most = room,
            "TIENDA_MAX_CONNECTIONS is more than the open-files limit allows; raise `ulimit -n` to serve more"
        );
        ConnectionLimits {
            max_connections: room as usize,
            ..self
        }
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` when unknown or
/// unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `grace`.
/// Every request carries the peer's address as [`ConnectInfo<SocketAddr>`], as with axum's
/// `into_make_service_with_connect_info`.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stop, stopping) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // Wait for a free slot before accepting: at the cap, connections queue in the backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                let connection =
                    serve_connection(stream, peer, app.clone(), limits, stopping.clone(), permit);
                connections.spawn(connection);
            }
            Err(error) => {
                drop(permit);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = backoff.after(&error) => {}
                }
            }
        }
    }
    drop(listener);
    tracing::info!(
        grace_secs = grace.as_secs(),
        open_connections = connections.len(),
        "shutting down: no new connections, draining in-flight requests"
    );
    let _ = stop.send(());
    let drained =
        tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            abandoned = connections.len(),
            "grace period over: abandoning requests still in flight"
        );
        connections.abort_all();
    }
}

/// Paces the accept loop after an error, so running out of descriptors neither spins the CPU
/// nor writes a log line per attempt.
#[derive(Default)]
struct AcceptBackoff {
    delay: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    async fn after(&mut self, error: &std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
        // The peer gave up before we accepted: nothing wrong here.
        if matches!(error.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
            return;
        }
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10))
        {
            tracing::error!(%error, suppressed = self.suppressed, "accept error: backing off");
            self.last_logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.delay = (self.delay * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::time::sleep(self.delay).await;
    }
}
