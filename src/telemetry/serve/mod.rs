//! The HTTP server every listener runs (the gateway's callbacks, every ops endpoint):
//! HTTP/1.1 with a deadline for each part of a request and a cap on connections, so that
//! slow, idle or too many clients cannot hold the process's file descriptors.
//!
//! axum::serve has neither timeouts nor a cap, so connections are served here with
//! hyper directly: [`connection`] keeps the header and idle deadlines, a middleware the
//! body deadline, and a semaphore the cap. A connection past the cap is answered 503
//! (`Connection: close`) at once; past 64 such answers in progress, it is closed unanswered.

mod connection;

use super::Metrics;
use super::label::{ConnectionCut, Label, Listener};
use crate::config::GatewaySettings;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// How long and how many: see `[gateway]` in config/default.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From a request's first byte to the end of its head.
    pub header_read: Duration,
    /// From the end of the head to the end of the body.
    pub body: Duration,
    /// Silence allowed while no request is in progress.
    pub idle: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    pub max_body_bytes: usize,
}

impl Limits {
    /// The ops endpoints': probes and scrapes are few, small and quick.
    pub const OPS: Limits = Limits {
        header_read: Duration::from_secs(5),
        body: Duration::from_secs(5),
        idle: Duration::from_secs(30),
        max_connections: 64,
        max_body_bytes: 64 * 1024,
    };
}

impl From<&GatewaySettings> for Limits {
    fn from(g: &GatewaySettings) -> Self {
        Limits {
            header_read: Duration::from_millis(g.header_read_timeout_ms),
            body: Duration::from_millis(g.body_timeout_ms),
            idle: Duration::from_millis(g.idle_timeout_ms),
            max_connections: g.max_connections,
            max_body_bytes: g.max_body_bytes,
        }
    }
}

/// 503 answers in progress at once; past them a connection is closed unanswered.
const REFUSALS: usize = 64;
/// How long a refused client has to send its request head and read the 503.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors): retrying at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a listener is, for its metrics and logs.
#[derive(Clone)]
pub struct Served {
    pub listener: Listener,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// Binds `addr` and serves `router` there until `shutdown`; returns the bound address
/// and the task, which ends once every connection has.
pub async fn bind_and_serve(
    addr: SocketAddr,
    router: Router,
    served: Served,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((
        bound,
        tokio::spawn(serve(listener, router, served, shutdown)),
    ))
}

/// Serves until `shutdown`, then asks every connection to finish its request and close,
/// and returns once all have.
async fn serve(
    listener: TcpListener,
    router: Router,
    served: Served,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router.layer(axum::middleware::from_fn_with_state(
        served.clone(),
        read_body_in_time,
    ));
    let (closing_tx, closing) = watch::channel(false);
    let cap = served.limits.max_connections;
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let listener_name = served.listener.as_str();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(listener = listener_name, error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            let (router, served, closing) = (router.clone(), served.clone(), closing.clone());
            tokio::spawn(async move {
                connection::serve(stream, router, &served, closing).await;
                drop(slot);
            });
        } else if let Ok(permit) = refusals.clone().try_acquire_owned() {
            served
                .metrics
                .connection_cut(served.listener, ConnectionCut::Full);
            tokio::spawn(async move {
                refuse(stream).await;
                drop(permit);
            });
        } else {
            // Dropped: closed at once, unanswered.
            served
                .metrics
                .connection_cut(served.listener, ConnectionCut::Shed);
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every slot back means every connection has ended.
    let _ = slots.acquire_many(cap as u32).await;
}

/// Answers one request 503 and closes: a client past the cap learns it at once instead
/// of waiting in the accept queue.
async fn refuse(stream: TcpStream) {
    let service = hyper::service::service_fn(|_| async {
        Ok::<_, Infallible>(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONNECTION, "close"), (header::RETRY_AFTER, "1")],
                "too many connections\n",
            )
                .into_response(),
        )
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(REFUSAL_TIME)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(REFUSAL_TIME, conn).await;
}

/// Reads the whole body within `limits.body` (else 408, and the connection closes) and
/// up to `limits.max_body_bytes` (else 413), so no handler waits on a slow client.
async fn read_body_in_time(State(served): State<Served>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limits = served.limits;
    match tokio::time::timeout(
        limits.body,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            match too_large {
                true => (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response(),
                false => (StatusCode::BAD_REQUEST, "body unreadable\n").into_response(),
            }
        }
        Err(_) => {
            served
                .metrics
                .connection_cut(served.listener, ConnectionCut::BodyTimeout);
            (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "body not received in time\n",
            )
                .into_response()
        }
    }
}
