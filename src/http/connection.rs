//! One connection: hyper's HTTP/1 over the socket, with the peer's address on every request,
//! and the two time limits hyper lacks in the form we need them: a request head must arrive
//! whole within `header_timeout` of the connection opening (or of its first byte after an idle
//! spell), and a keep-alive connection idle for `idle_timeout` is closed. hyper's own header
//! timeout also runs while a connection idles between requests, which would cut keep-alive to
//! the head's 10 s, so both are kept here instead.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::server::ConnectionLimits;

/// Serves one accepted connection until it ends, times out, or drains after `stopping` fires;
/// `_slot` is its place under the connection cap, given back when this returns.
pub(super) async fn serve_connection<S>(
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
    // After the stop, with a linger: when the connection is shut down if still open.
    let mut linger_until = None;
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
                if limits.linger.is_zero() {
                    connection.as_mut().graceful_shutdown();
                } else {
                    // Still served (every answer then says `Connection: close`, see
                    // `health::close_while_draining`); a balancer's idle kept-alive connection is
                    // closed by the balancer first, never under a request it is sending.
                    linger_until = Some(Instant::now() + limits.linger);
                }
            }
            () = sleep_until(linger_until) => {
                linger_until = None;
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
