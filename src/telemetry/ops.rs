//! `/metrics`, `/healthz` and `/readyz`, served by every long-running process on a
//! listener of its own, apart from any public port.

use super::Metrics;
use super::label::Listener;
use super::serve::{Limits, Served, bind_and_serve};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the process can do its work now (connected to what it needs).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Ops {
    metrics: Arc<Metrics>,
    ready: Readiness,
}

fn ops_router(metrics: Arc<Metrics>, ready: Readiness) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(ops): State<Ops>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    ops.metrics.render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(ops): State<Ops>| async move {
                if ops.ready.get() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .with_state(Ops { metrics, ready })
}

/// Serves the ops endpoints on `addr` until `shutdown` resolves; returns the bound
/// address.
pub async fn serve_ops(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let served = Served {
        listener: Listener::Ops,
        limits: Limits::OPS,
        metrics: metrics.clone(),
    };
    bind_and_serve(addr, ops_router(metrics, ready), served, shutdown).await
}
