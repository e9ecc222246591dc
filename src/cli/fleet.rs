//! What the commands that act on a running fleet share: its Redis, its broker, and the
//! audit event every operator action publishes (`operator.<action>`, see [`OperatorEvent`]).

use crate::bus::{self, Names, PublishError, Publisher, Shape};
use crate::config::Settings;
use crate::contract::operator::OperatorEvent;
use crate::state::StateStore;
use anyhow::Context;

/// The fleet's Redis, as its workers reach it.
pub(super) async fn store(settings: &Settings) -> anyhow::Result<StateStore> {
    let store = crate::app::connect_store(settings).await?;
    store
        .ping()
        .await
        .with_context(|| format!("redis.url {}", settings.redis.url))?;
    Ok(store)
}

/// Connects to the broker and declares the topology (idempotent), as `publish` does.
pub(super) async fn publisher(
    settings: &Settings,
    client: &str,
) -> anyhow::Result<(lapin::Connection, Publisher)> {
    let conn = bus::connect(&settings.amqp.url, client)
        .await
        .with_context(|| format!("amqp.url {}", settings.amqp.url.redacted()))?;
    let names = Names::new(&settings.amqp.namespace);
    bus::declare(&conn, &names, &Shape::of(settings)).await?;
    let publisher = Publisher::open(&conn, names).await?;
    Ok((conn, publisher))
}

/// Publishes the audit event of an action already taken. No queue bound to it is
/// said, not failed: the action stands either way.
pub(super) async fn announce(settings: &Settings, event: &OperatorEvent) -> anyhow::Result<()> {
    let (conn, publisher) = publisher(settings, "payfleet-operator").await?;
    let published = announce_on(&publisher, event).await;
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    published
}

/// [`announce`] on a publisher the command already has open.
pub(super) async fn announce_on(
    publisher: &Publisher,
    event: &OperatorEvent,
) -> anyhow::Result<()> {
    match publisher.publish_operator_event(event).await {
        Err(PublishError::Unroutable { routing_key, .. }) => {
            eprintln!("payfleet: no queue is bound to {routing_key}: its audit event went unread");
            Ok(())
        }
        other => other.with_context(|| format!("publishing {}", event.routing_key())),
    }
}
