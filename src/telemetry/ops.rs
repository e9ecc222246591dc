//! `/metrics`, `/healthz` and `/readyz`, served by every long-running process on a
//! listener of its own, apart from any public port.

use super::Metrics;
use super::label::Listener;
use super::label::Service;
use super::serve::{Limits, Served, bind_and_serve};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the process can do its work now: every backing service it needs reached.
/// Each part of a process reports the service it just reached or lost; none is assumed.
#[derive(Clone, Default)]
pub struct Readiness(Arc<[AtomicBool; 2]>);

impl Readiness {
    fn slot(service: Service) -> usize {
        match service {
            Service::Amqp => 0,
            Service::Redis => 1,
        }
    }

    pub fn set(&self, service: Service, up: bool) {
        self.0[Self::slot(service)].store(up, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.iter().all(|up| up.load(Ordering::SeqCst))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_service_is_reached() {
        let ready = Readiness::default();
        assert!(!ready.get(), "nothing reached yet");
        ready.set(Service::Amqp, true);
        assert!(!ready.get(), "Redis not reached yet");
        ready.set(Service::Redis, true);
        assert!(ready.get());
        ready.set(Service::Redis, false);
        assert!(!ready.get(), "Redis lost");
        ready.set(Service::Redis, true);
        assert!(ready.get(), "Redis back");
    }
}
