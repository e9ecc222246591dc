//! `/metrics`, `/healthz` and `/readyz`, served by every long-running process.

use super::Metrics;
use super::label::Service;
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

pub fn ops_router(metrics: Arc<Metrics>, ready: Readiness) -> Router {
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

/// Serves the ops endpoints until `shutdown` resolves; returns the bound address.
pub async fn serve_ops(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_on(tokio::net::TcpListener::bind(addr).await?, router, shutdown)
}

/// [`serve_ops`] on a listener already bound (to learn its address before serving).
pub fn serve_on(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "ops server stopped");
        }
    });
    Ok((bound, handle))
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
