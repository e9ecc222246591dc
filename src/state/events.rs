//! Where the event announcing each state of a record stands, so that it is published
//! once and never lost.

use super::store::Result;
use super::{State, StateStore};
use crate::contract::IdempotencyKey;

/// Where the event announcing a state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Confirmed by the broker.
    Published,
    /// Another process holds the right to publish it now.
    Publishing,
    /// Nobody publishes it: never claimed, released after a failure, or the claim of a
    /// process that died ran out.
    Unpublished,
}

impl EventState {
    pub(super) fn from_flag(flag: i64) -> Self {
        match flag {
            1 => EventState::Published,
            2 => EventState::Publishing,
            _ => EventState::Unpublished,
        }
    }
}

impl StateStore {
    async fn publish_bookkeeping(
        &self,
        key: &IdempotencyKey,
        state: State,
        action: &str,
    ) -> Result<bool> {
        let mut inv = self.scripts.publish.key(self.record_key(key));
        inv.arg(state.as_str()).arg(action);
        let mut conn = self.conn.clone();
        let r: i64 = inv.invoke_async(&mut conn).await?;
        Ok(r == 1)
    }

    /// Where the event for `state` stands.
    pub async fn event_state(&self, key: &IdempotencyKey, state: State) -> Result<EventState> {
        let mut inv = self.scripts.publish.key(self.record_key(key));
        inv.arg(state.as_str()).arg("peek");
        let mut conn = self.conn.clone();
        let flag: i64 = inv.invoke_async(&mut conn).await?;
        Ok(EventState::from_flag(flag))
    }

    /// Takes the right to publish the event for `state`; false when it was published
    /// or another process is publishing it now. Recording a terminal state takes it too.
    pub async fn claim_publish(&self, key: &IdempotencyKey, state: State) -> Result<bool> {
        self.publish_bookkeeping(key, state, "claim").await
    }

    /// Notes that the event announcing `state` was confirmed by the broker; the first
    /// time, returns how long ago the record was created (Redis's clock).
    pub async fn publish_done(
        &self,
        key: &IdempotencyKey,
        state: State,
    ) -> Result<Option<std::time::Duration>> {
        let mut inv = self.scripts.publish.key(self.record_key(key));
        inv.arg(state.as_str()).arg("done");
        let mut conn = self.conn.clone();
        let age_ms: i64 = inv.invoke_async(&mut conn).await?;
        Ok(u64::try_from(age_ms)
            .ok()
            .map(std::time::Duration::from_millis))
    }

    /// Gives the right to publish back after a failed publish.
    pub async fn publish_release(&self, key: &IdempotencyKey, state: State) -> Result<()> {
        self.publish_bookkeeping(key, state, "release")
            .await
            .map(drop)
    }
}
