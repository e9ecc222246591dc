//! The gateway: takes providers' callbacks over HTTP, applies each outcome to its
//! command's record once, publishes the event, and only then answers 200.

mod ecommpay;

use crate::bus::PublisherLink;
use crate::pipeline::announce::Announcer;
use crate::state::StateStore;
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
        .with_state(gateway.clone())
        .merge(ops_router(gateway.metrics.clone(), ready))
}
