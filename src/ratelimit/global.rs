//! The fleet-wide limiter: GCRA in Redis, one script call (one round trip) per
//! decision, timed by the Redis server's clock so every worker agrees. It has a
//! connection of its own, so its calls never queue behind the state machine's.

use super::{Limit, RateKey};
use crate::state::{Lua, RedisConn};
use std::sync::Arc;
use std::time::Duration;

/// What Redis decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A slot is reserved this far from now.
    Reserved(Duration),
    /// No slot within the longest wait: ask again after `after`, with `ticket`.
    Defer { after: Duration, ticket: u64 },
}

/// Cheap to clone; connects on first use (and reconnects by itself after that).
#[derive(Clone)]
pub struct Global {
    conn: RedisConn,
    prefix: Arc<str>,
    script: Arc<Lua>,
}

impl Global {
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Global {
            conn,
            prefix: prefix.into(),
            script: Arc::new(Lua::new(include_str!("gcra.lua"))),
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

    /// Reserves a slot for `requests` requests at most `max_wait` away, or says when to
    /// ask again. `ticket`: the one a previous deferral of this request handed out.
    pub async fn reserve(
        &self,
        key: &RateKey,
        limit: Limit,
        requests: u32,
        max_wait: Duration,
        ticket: Option<u64>,
    ) -> Result<Answer, redis::RedisError> {
        let interval_us = 1_000_000 / u64::from(limit.per_second.max(1));
        let mut conn = self.conn.clone();
        let (granted, micros, ticket): (i64, i64, u64) = self
            .script
            .key(self.key(key))
            .arg(interval_us)
            .arg(limit.burst)
            .arg(max_wait.as_micros() as u64)
            .arg(ticket.unwrap_or(0))
            .arg(requests.clamp(1, limit.burst.max(1)))
            .invoke_async(&mut conn)
            .await?;
        let after = Duration::from_micros(micros.max(0) as u64);
        Ok(if granted == 1 {
            Answer::Reserved(after)
        } else {
            Answer::Defer { after, ticket }
        })
    }
}
