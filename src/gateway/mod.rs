//! The gateway: takes providers' callbacks over HTTP, applies each outcome to its
//! command's record once, publishes the event, and only then answers 200.

mod ecommpay;
mod epay;
mod settle;

use crate::bus::PublisherLink;
use crate::pipeline::announce::Announcer;
use crate::state::StateStore;
use crate::telemetry::label::LagSince;
use crate::telemetry::{Metrics, Readiness, ops_router};
use axum::Router;
use axum::routing::post;
use secrecy::SecretString;
use std::sync::Arc;

pub struct Gateway {
    pub store: StateStore,
    pub link: PublisherLink,
    pub metrics: Arc<Metrics>,
    pub ecommpay_secret: SecretString,
    /// Confirms epay postLinks with check-status; finds their secret_hash.
    pub epay: Arc<crate::providers::epay::Epay>,
    /// The secret keys of the further ECommPay accounts (`ecommpay.accounts`).
    pub ecommpay_account_secrets: Vec<SecretString>,
}

impl Gateway {
    async fn announcer(&self) -> Result<Announcer, crate::bus::PublishError> {
        Ok(Announcer {
            publisher: self.link.get().await?,
            store: self.store.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

/// The gateway's routes, with the ops endpoints beside them.
pub fn router(gateway: Arc<Gateway>, ready: Readiness) -> Router {
    Router::new()
        .route("/callbacks/ecommpay", post(ecommpay::callback))
        .route("/callbacks/epay", post(epay::callback))
        .with_state(gateway.clone())
        .merge(ops_router(gateway.metrics.clone(), ready))
}

/// The `traceparent` header a provider sent with a callback, if any: the event
/// continues it rather than the command's own trace.
fn header_traceparent(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("traceparent").and_then(|v| v.to_str().ok())
}

/// How long after its submission a payment's result arrived.
fn record_submitted_lag(gw: &Gateway, provider: &str, context: &crate::state::TraceContext) {
    if let Some(lag) = context.sent_at.and_then(|t| t.elapsed().ok()) {
        gw.metrics
            .callback_lag(provider, LagSince::Submitted, lag.as_secs_f64());
    }
}
