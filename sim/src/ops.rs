//! The simulator's own `/healthz`, `/readyz` and `/metrics` (Prometheus text format,
//! written by hand from the stats).

use crate::Sandbox;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics))
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(sandbox): State<Arc<Sandbox>>) -> impl IntoResponse {
    let s = sandbox.stats();
    let mut out = String::new();
    // The fleet's dashboards list every process by this series, the simulator included.
    let _ = writeln!(
        out,
        "# HELP payfleet_build_info Build of this process (always 1).\n# TYPE payfleet_build_info gauge\npayfleet_build_info{{process=\"sandbox\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "# HELP payfleet_sim_requests_total Provider requests by endpoint.\n# TYPE payfleet_sim_requests_total counter"
    );
    for (endpoint, n) in &s.requests {
        let _ = writeln!(
            out,
            "payfleet_sim_requests_total{{endpoint=\"{}\"}} {n}",
            label(endpoint)
        );
    }
    let counters = [
        (
            "executions_total",
            "Money movements.",
            s.executed.values().sum::<u64>(),
        ),
        (
            "ids_executed_more_than_once_total",
            "Ids that moved money more than once.",
            s.executed_more_than_once.len() as u64,
        ),
        (
            "duplicate_submissions_refused_total",
            "Submissions refused as duplicates.",
            s.duplicate_submissions_refused,
        ),
        (
            "invalid_requests_refused_total",
            "Requests refused as invalid.",
            s.invalid_requests_refused,
        ),
        (
            "callbacks_scheduled_total",
            "Callbacks scheduled.",
            s.callbacks.scheduled,
        ),
        (
            "callback_attempts_total",
            "Callback HTTP attempts.",
            s.callbacks.attempts,
        ),
        (
            "callbacks_delivered_total",
            "Callbacks answered 200.",
            s.callbacks.delivered,
        ),
        (
            "callbacks_abandoned_total",
            "Callbacks given up.",
            s.callbacks.abandoned,
        ),
        (
            "epay_tokens_issued_total",
            "epay tokens issued.",
            s.epay_tokens_issued,
        ),
        (
            "epay_tokens_refused_total",
            "epay token requests or uses refused.",
            s.epay_tokens_refused,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(
            out,
            "# HELP payfleet_sim_{name} {help}\n# TYPE payfleet_sim_{name} counter\npayfleet_sim_{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP payfleet_sim_faults_total Faults and configured answers injected.\n# TYPE payfleet_sim_faults_total counter"
    );
    for (kind, n) in &s.faults {
        let _ = writeln!(
            out,
            "payfleet_sim_faults_total{{kind=\"{}\"}} {n}",
            label(kind)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
