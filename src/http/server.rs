//! Serving connections: our own accept loop over hyper's HTTP/1 connection, because
//! `axum::serve` exposes none of the limits a server facing the Internet needs.
//!
//! - At most `max_connections` are open at once. Past that the loop stops accepting, so new
//!   connections wait in the kernel's backlog until one closes, while the open ones (a load
//!   balancer's health checks among them) keep being served.
//! - A request head must arrive whole within `header_timeout` of the connection opening, or of
//!   its first byte after an idle spell; a keep-alive connection with no request for
//!   `idle_timeout` is closed. (hyper's own header timeout also runs while a connection idles
//!   between requests, which would cut keep-alive to the head's 10 s, so both are kept here.)
//! - Accept errors such as EMFILE back off (up to 1 s) and are logged at most every 10 s.
//! - On shutdown the listener closes at once, idle connections close, requests in flight finish
//!   within the grace period, and whatever is left after it is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::HttpLimits;

/// The per-connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl From<&HttpLimits> for ConnectionLimits {
    fn from(limits: &HttpLimits) -> Self {
        ConnectionLimits {
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            max_connections: limits.max_connections,
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

async fn serve_connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<()>,
    _slot: OwnedSemaphorePermit,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(requests.clone());
        request.extensions_mut().insert(ConnectInfo(peer));
        let answer = app.clone().oneshot(request.map(Body::new));
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, in_flight })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = activity.deadline();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.expired() {
                    tracing::debug!(%peer, "closing a connection: no complete request head in time, or idle");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            _ = stopping.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, to time it out: waiting for a request head (since it opened, or
/// since its first byte after an idle spell), serving requests (no limit here; the request
/// timeout applies), or idle between requests.
struct Activity {
    limits: ConnectionLimits,
    state: Mutex<ActivityState>,
    /// Woken when the deadline moves earlier, so the connection's task sleeps until the new one.
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle: bool,
    deadline: Option<Instant>,
}

impl Activity {
    fn new(limits: ConnectionLimits) -> Self {
        Activity {
            limits,
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle: false,
                deadline: Some(Instant::now() + limits.header_timeout),
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut ActivityState, &ConnectionLimits) -> bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if change(&mut state, &self.limits) {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: after an idle spell they start a request head, which must complete in
    /// time.
    fn bytes_read(&self) {
        self.update(|state, limits| {
            let starts_head = state.in_flight == 0 && state.idle;
            if starts_head {
                state.idle = false;
                state.deadline = Some(Instant::now() + limits.header_timeout);
            }
            starts_head
        });
    }

    fn request_started(&self) {
        self.update(|state, _| {
            state.in_flight += 1;
            state.deadline = None;
            false
        });
    }

    fn request_finished(&self) {
        self.update(|state, limits| {
            state.in_flight = state.in_flight.saturating_sub(1);
            let now_idle = state.in_flight == 0;
            if now_idle {
                state.idle = true;
                state.deadline = Some(Instant::now() + limits.idle_timeout);
            }
            now_idle
        });
    }

    fn deadline(&self) -> Option<Instant> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).deadline
    }

    fn expired(&self) -> bool {
        self.deadline().is_some_and(|deadline| deadline <= Instant::now())
    }
}

/// A request from the moment its head is parsed until its response body is done with.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.request_started();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that ends its request's [`InFlight`] when hyper drops it (sent or abandoned).
struct Tracked {
    body: Body,
    #[allow(dead_code)]
    in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
