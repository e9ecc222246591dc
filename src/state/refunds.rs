//! Which command refunds a purchase. A refund is known at the provider by its
//! purchase's payment id (ECommPay's Gate reports a purchase's refunds under it), so two
//! refund commands of one purchase could not be told apart there: one owns the
//! purchase's refund at a time, and another is refused before anything is sent.

use super::store::{Result, StoreError};
use super::{State, StateStore};
use crate::contract::{IdempotencyKey, ProviderName};

/// A purchase's refund owner, as a refund command asking sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOwner {
    /// This command refunds the purchase.
    Ours,
    /// Another command does; `state` is its record's (`None`: it has none).
    Other {
        key: IdempotencyKey,
        state: Option<State>,
    },
}

impl StateStore {
    /// The purchase's refund owner (one key, its own hash slot); it lives as long as
    /// the records do.
    fn refund_owner_key(&self, provider: ProviderName, purchase: &str) -> String {
        format!("{}:refund-of:{}:{purchase}", self.prefix, provider.as_str())
    }

    /// Makes `key` the owner of `purchase`'s refund if nobody is, or if the owner is
    /// `take_from`; otherwise says who is, and in what state.
    pub async fn refund_owner(
        &self,
        provider: ProviderName,
        purchase: &str,
        key: &IdempotencyKey,
        take_from: Option<&IdempotencyKey>,
    ) -> Result<RefundOwner> {
        let mut conn = self.conn.clone();
        let owner: String = self
            .scripts
            .refund
            .key(self.refund_owner_key(provider, purchase))
            .arg(key.as_str())
            .arg(take_from.map_or("", IdempotencyKey::as_str))
            .arg(self.retention_ms)
            .invoke_async(&mut conn)
            .await?;
        if owner == key.as_str() {
            return Ok(RefundOwner::Ours);
        }
        let other = IdempotencyKey::parse(owner)
            .map_err(|e| StoreError::Protocol(format!("refund owner: {e}")))?;
        let state: Option<String> = redis::cmd("HGET")
            .arg(self.record_key(&other))
            .arg("st")
            .query_async(&mut conn)
            .await?;
        Ok(RefundOwner::Other {
            key: other,
            state: state.as_deref().and_then(State::parse),
        })
    }
}
