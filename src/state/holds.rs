//! Holds in Redis: one hash, `<prefix>:holds`, a field per target (`ecommpay`,
//! `ecommpay/kz_main`) holding the hold as JSON. Every worker reads it every
//! `worker.holds_refresh_ms` into its [`HoldBoard`], so a hold takes effect fleet-wide
//! within that time without a restart.

use super::StateStore;
use super::store::Result;
use crate::contract::ProviderName;
use crate::contract::hold::{Hold, HoldTarget, holding};
use std::sync::{Arc, RwLock};

impl StateStore {
    fn holds_key(&self) -> String {
        format!("{}:holds", self.prefix)
    }

    /// Sets a hold, replacing one on the same target; returns the one it replaced.
    pub async fn set_hold(&self, hold: &Hold) -> Result<Option<Hold>> {
        let mut conn = self.conn.clone();
        let json = serde_json::to_string(hold).expect("a hold serialises");
        let (old, _): (Option<String>, ()) = redis::pipe()
            .atomic()
            .hget(self.holds_key(), hold.target.to_string())
            .hset(self.holds_key(), hold.target.to_string(), json)
            .query_async(&mut conn)
            .await?;
        Ok(old.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Lifts the hold on exactly `target`; returns it, or `None` if there was none.
    pub async fn release_hold(&self, target: &HoldTarget) -> Result<Option<Hold>> {
        let mut conn = self.conn.clone();
        let (old, _): (Option<String>, ()) = redis::pipe()
            .atomic()
            .hget(self.holds_key(), target.to_string())
            .hdel(self.holds_key(), target.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(old.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Every hold in force, oldest first. A field that does not read as a hold (written
    /// by hand) is skipped with a warning rather than stopping every worker's refresh.
    pub async fn holds(&self) -> Result<Vec<Hold>> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.holds_key())
            .query_async(&mut conn)
            .await?;
        let mut holds: Vec<Hold> = all
            .into_iter()
            .filter_map(|(field, json)| match serde_json::from_str(&json) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(field, error = %e, "a hold that does not read is ignored");
                    None
                }
            })
            .collect();
        holds.sort_by_key(|h| h.since);
        Ok(holds)
    }
}

/// The holds a worker last read: asked before every new request, refreshed in the
/// background. While Redis cannot be read the last known holds stay in force.
#[derive(Clone, Default)]
pub struct HoldBoard(Arc<RwLock<Vec<Hold>>>);

impl HoldBoard {
    /// Puts `holds` in force; true if they differ from those before.
    pub fn replace(&self, holds: Vec<Hold>) -> bool {
        let mut current = self.0.write().expect("hold board lock");
        let changed = *current != holds;
        *current = holds;
        changed
    }

    /// The hold that stops a new request in `account` of `provider`, if any.
    pub fn holding(&self, provider: ProviderName, account: &str) -> Option<Hold> {
        holding(&self.0.read().expect("hold board lock"), provider, account).cloned()
    }
}
