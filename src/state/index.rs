//! The index of open payments (a sorted set by due time): what the reconciler checks.

use super::store::{Result, epoch_ms};
use super::{Meta, StateStore, record};
use crate::contract::{IdempotencyKey, Method};
use std::collections::HashMap;

impl StateStore {
    /// The index of payments waiting for the provider's result (its own hash slot).
    pub(super) fn open_key(&self) -> String {
        format!("{}:open", self.prefix)
    }

    /// Puts a key in the open index, to be checked by the reconciler at `due`;
    /// `keep` leaves an existing entry's time alone.
    pub async fn track(
        &self,
        key: &IdempotencyKey,
        due: std::time::SystemTime,
        keep: bool,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.open_key());
        if keep {
            cmd.arg("NX");
        }
        cmd.arg(epoch_ms(due))
            .arg(key.as_str())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn untrack(&self, key: &IdempotencyKey) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.open_key())
            .arg(key.as_str())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Keys whose check is due by `now`, oldest first.
    pub async fn due(
        &self,
        now: std::time::SystemTime,
        limit: usize,
    ) -> Result<Vec<IdempotencyKey>> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.open_key())
            .arg("-inf")
            .arg(epoch_ms(now))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| IdempotencyKey::parse(k).ok())
            .collect())
    }

    /// How many payments wait for the provider's result.
    pub async fn open_count(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZCARD")
            .arg(self.open_key())
            .query_async(&mut conn)
            .await?)
    }

    /// records' meta; one pipelined round trip per thousand, or on a cluster a thousand
    /// concurrent reads, the records being in slots of their own).
    pub async fn open_by_method(&self, limit: usize) -> Result<HashMap<Method, u64>> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.open_key())
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut conn)
            .await?;
        let mut counts = HashMap::new();
        let keys: Vec<IdempotencyKey> = keys
            .into_iter()
            .filter_map(|k| IdempotencyKey::parse(k).ok())
            .collect();
        for chunk in keys.chunks(1000) {
            let reads: Vec<redis::Cmd> = chunk
                .iter()
                .map(|k| {
                    redis::cmd("HGET")
                        .arg(self.record_key(k))
                        .arg(record::META)
                        .clone()
                })
                .collect();
            let metas: Vec<Option<String>> = self.conn.query_each(&reads).await?;
            for method in metas
                .iter()
                .flatten()
                .filter_map(|m| serde_json::from_str::<Meta>(m).ok()?.method)
            {
                *counts.entry(method).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }
}
