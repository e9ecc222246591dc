//! Holds in Redis: one hash, `<prefix>:holds`, a field per target (`ecommpay`,
//! `ecommpay/kz_main`) holding the hold as JSON. Every worker reads it every
//! `worker.holds_refresh_ms` into its [`HoldBoard`], so a hold takes effect fleet-wide
//! within that time without a restart.

use super::StateStore;
use super::store::Result;
use crate::contract::ProviderName;
use crate::contract::hold::{Hold, HoldTarget, field_of, holding};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
            .hget(self.holds_key(), hold.field())
            .hset(self.holds_key(), hold.field(), json)
            .query_async(&mut conn)
            .await?;
        Ok(old.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Lifts every hold on exactly `target`, the operator's and the breaker's; returns
    /// those it lifted.
    pub async fn release_hold(&self, target: &HoldTarget) -> Result<Vec<Hold>> {
        let fields = [field_of(target, false), field_of(target, true)];
        let mut conn = self.conn.clone();
        let (old, _): (Vec<Option<String>>, ()) = redis::pipe()
            .atomic()
            .hmget(self.holds_key(), &fields)
            .hdel(self.holds_key(), &fields)
            .query_async(&mut conn)
            .await?;
        Ok(old
            .into_iter()
            .flatten()
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect())
    }

    /// Sets the breaker's hold on `hold.target` unless it holds it already (so its
    /// `since` stays the trip's); true if set.
    pub async fn trip_breaker(&self, hold: &Hold) -> Result<bool> {
        let json = serde_json::to_string(hold).expect("a hold serialises");
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HSETNX")
            .arg(self.holds_key())
            .arg(hold.field())
            .arg(json)
            .query_async(&mut conn)
            .await?)
    }

    /// Lifts the breaker's hold on `target` (its probe had an answer); true if it was
    /// there.
    pub async fn close_breaker(&self, target: &HoldTarget) -> Result<bool> {
        let mut conn = self.conn.clone();
        let gone: u32 = redis::cmd("HDEL")
            .arg(self.holds_key())
            .arg(field_of(target, true))
            .query_async(&mut conn)
            .await?;
        Ok(gone == 1)
    }

    /// Whether this caller is the one to probe `target` now: one probe per `every` for
    /// the whole fleet.
    pub async fn claim_probe(&self, target: &HoldTarget, every: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}:probe:{target}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(every.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
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

    /// The breaker's holds in force.
    pub fn tripped(&self) -> Vec<HoldTarget> {
        let holds = self.0.read().expect("hold board lock");
        holds
            .iter()
            .filter(|h| h.automatic)
            .map(|h| h.target.clone())
            .collect()
    }

    /// The hold that stops a new request in `account` of `provider`, if any.
    pub fn holding(&self, provider: ProviderName, account: &str) -> Option<Hold> {
        holding(&self.0.read().expect("hold board lock"), provider, account).cloned()
    }
}
