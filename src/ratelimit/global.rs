//! The fleet-wide limiter: GCRA in Redis, one script call (one round trip) per
//! decision, timed by the Redis server's clock so every worker agrees.

use super::{Limit, RateKey};
use redis::Script;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;

/// What Redis decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A slot is reserved this far from now.
    Reserved(Duration),
    /// No slot within the longest wait: come back after this long.
    Defer(Duration),
}

/// Cheap to clone: shares the process's Redis connection.
#[derive(Clone)]
pub struct Global {
    conn: ConnectionManager,
    prefix: Arc<str>,
    script: Arc<Script>,
}

impl Global {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Global {
            conn,
            prefix: prefix.into(),
            script: Arc::new(Script::new(include_str!("gcra.lua"))),
        }
    }

    /// One key per limit, in a hash slot of its own (the braces), so a Redis Cluster
    /// spreads the accounts.
    pub fn key(&self, key: &RateKey) -> String {
        format!(
            "{}:rl:{{{}:{}:{}}}",
            self.prefix,
            key.provider.as_str(),
            key.account,
            key.class
        )
    }

    /// Reserves a slot at most `max_wait` away, or says when to come back.
    pub async fn reserve(
        &self,
        key: &RateKey,
        limit: Limit,
        max_wait: Duration,
    ) -> Result<Answer, redis::RedisError> {
        let interval_us = 1_000_000 / u64::from(limit.per_second.max(1));
        let mut conn = self.conn.clone();
        let (granted, micros): (i64, i64) = self
            .script
            .key(self.key(key))
            .arg(interval_us)
            .arg(limit.burst)
            .arg(max_wait.as_micros() as u64)
            .invoke_async(&mut conn)
            .await?;
        let after = Duration::from_micros(micros.max(0) as u64);
        Ok(if granted == 1 {
            Answer::Reserved(after)
        } else {
            Answer::Defer(after)
        })
    }
}
