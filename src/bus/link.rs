//! A publisher that reconnects on first use after the broker went away, for processes
//! that publish but do not consume (gateway, publish command).

use super::{Names, PublishError, Publisher};
use crate::config::AmqpNodes;
use crate::telemetry::label::Service;
use crate::telemetry::{Metrics, Readiness};
use backon::Retryable;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct PublisherLink {
    nodes: AmqpNodes,
    name: String,
    names: Names,
    current: Mutex<Option<(lapin::Connection, Publisher)>>,
    metrics: Arc<Metrics>,
    ready: Readiness,
}

impl PublisherLink {
    pub fn new(
        nodes: &AmqpNodes,
        name: &str,
        names: Names,
        metrics: Arc<Metrics>,
        ready: Readiness,
    ) -> Self {
        PublisherLink {
            nodes: nodes.clone(),
            name: name.to_owned(),
            names,
            current: Mutex::new(None),
            metrics,
            ready,
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// A connected publisher, reconnecting if the last one was lost.
    pub async fn get(&self) -> Result<Publisher, PublishError> {
        let mut current = self.current.lock().await;
        if let Some((conn, publisher)) = current.as_ref() {
            if conn.status().connected() && publisher.is_connected() {
                return Ok(publisher.clone());
            }
            self.metrics
                .reconnect(Service::Amqp, "publisher connection lost");
        }
        self.ready.set(Service::Amqp, false);
        let conn = super::connect(&self.nodes, &self.name).await?;
        let publisher = Publisher::open(&conn, self.names.clone()).await?;
        *current = Some((conn, publisher.clone()));
        self.ready.set(Service::Amqp, true);
        Ok(publisher)
    }

    /// Connects, trying again after every failure (each one logged) until it works.
    pub async fn connect_patiently(&self, backoff: backon::ExponentialBuilder) {
        let connected = (|| self.get())
            .retry(backoff)
            .notify(|e, _| self.metrics.reconnect(Service::Amqp, &e.to_string()))
            .await;
        debug_assert!(connected.is_ok(), "retried forever");
    }

    pub async fn close(&self) {
        if let Some((conn, publisher)) = self.current.lock().await.take() {
            publisher.close().await;
            super::close(&conn).await;
        }
    }
}
