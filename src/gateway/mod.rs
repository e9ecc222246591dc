//! The gateway: takes providers' callbacks over HTTP, applies each outcome to its
//! command's record once, publishes the event, and only then answers 200.

mod callback;

use crate::bus::PublisherLink;
use crate::contract::ProviderName;
use crate::outcome::Announcer;
use crate::providers::Providers;
use crate::state::StateStore;
use crate::telemetry::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use std::sync::Arc;

pub struct Gateway {
    pub store: StateStore,
    pub link: PublisherLink,
    pub metrics: Arc<Metrics>,
    /// Each proves and reads its own callbacks (epay's confirmed with check-status).
    pub providers: Providers,
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

/// The gateway's public routes: `/callbacks/<provider>` for each provider, nothing else
/// (its ops endpoints are on a listener of their own).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut router = Router::new();
    for provider in ProviderName::ALL {
        router = router.route(
            &format!("/callbacks/{}", provider.as_str()),
            post(
                move |State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes| async move {
                    callback::handle(&gw, provider, &headers, &body).await
                },
            ),
        );
    }
    router.with_state(gateway)
}
