//! Fault injection: what a real provider does on a bad day, per endpoint, on demand.
//!
//! `PUT /sandbox/faults` takes a [`Faults`] document; `GET` shows the one in force.
//! Rates are probabilities from 0 to 1, rolled per request or per callback.

use super::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// By endpoint (`"POST /v2/payment/status"`), or `"*"` for every provider endpoint.
    pub endpoints: BTreeMap<String, EndpointFaults>,
    pub callbacks: CallbackFaults,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointFaults {
    /// Answer HTTP 500 without processing the request.
    pub error_rate: f64,
    /// Process the request, then answer HTTP 500: the caller cannot know it worked.
    pub error_after_rate: f64,
    /// Process the request, then hold the answer for `timeout_ms` (past the caller's
    /// timeout).
    pub timeout_rate: f64,
    pub timeout_ms: u64,
    /// Added to every answer.
    pub slow_ms: u64,
    /// Drop the connection without an answer, before processing.
    pub reset_rate: f64,
    /// Process the request, then answer HTTP 200 with a body that is not JSON.
    pub malformed_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackFaults {
    /// Never send the callback at all.
    pub loss_rate: f64,
    /// Send it twice, at once.
    pub duplicate_rate: f64,
    /// Send it `late_ms` later than usual.
    pub late_rate: f64,
    pub late_ms: u64,
}

impl Faults {
    fn for_endpoint(&self, endpoint: &str) -> Option<&EndpointFaults> {
        self.endpoints
            .get(endpoint)
            .or_else(|| self.endpoints.get("*"))
    }
}

pub fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// Middleware in front of the simulated provider endpoints.
pub async fn inject(State(sandbox): State<Arc<Sandbox>>, req: Request, next: Next) -> Response {
    let endpoint = format!("{} {}", req.method(), req.uri().path());
    let Some(f) = sandbox.faults().for_endpoint(&endpoint).cloned() else {
        return next.run(req).await;
    };
    let count = |kind: &str| sandbox.stats.lock().expect("stats lock").fault(kind);
    if f.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.slow_ms)).await;
    }
    if roll(f.reset_rate) {
        count("reset");
        // Unwinding the connection's task drops the socket with no answer; resuming
        // skips the panic hook, so nothing is printed.
        std::panic::resume_unwind(Box::new("sandbox: injected connection reset"));
    }
    if roll(f.error_rate) {
        count("error");
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let response = next.run(req).await;
    if roll(f.error_after_rate) {
        count("error_after");
        return (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response();
    }
    if roll(f.timeout_rate) {
        count("timeout");
        tokio::time::sleep(Duration::from_millis(f.timeout_ms)).await;
    }
    if roll(f.malformed_rate) {
        count("malformed");
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>upstream hiccup</body></html>"))
            .expect("a static response builds");
    }
    response
}
