//! The Redis side of the state machine: one hash per command, scripts for every change.
//! Its other jobs each have a file: [`changes`](super::changes) (the state machine's
//! scripts), [`events`](super::events) (publish bookkeeping), [`index`](super::index)
//! (the open payments), [`record`](super::record) (reading a record whole),
//! [`list`](super::list) (reading many, for operators) and [`refunds`](super::refunds)
//! (which command refunds a purchase).

use super::Lua;
use super::RedisConn;
use super::State;
use crate::contract::IdempotencyKey;
use redis::Value;
use std::sync::Arc;

pub(super) struct Scripts {
    pub(super) claim: Lua,
    pub(super) transition: Lua,
    pub(super) renew: Lua,
    pub(super) settle: Lua,
    pub(super) reject: Lua,
    pub(super) publish: Lua,
    pub(super) lead: Lua,
    pub(super) note: Lua,
    pub(super) refund: Lua,
}

/// Every script starts with the shared prelude (server time, state helpers).
fn script(body: &str) -> Lua {
    Lua::new(&format!("{}\n{body}", include_str!("scripts/prelude.lua")))
}

/// Cheap to clone: one multiplexed, auto-reconnecting connection shared by all tasks.
#[derive(Clone)]
pub struct StateStore {
    pub(super) conn: RedisConn,
    pub(super) prefix: Arc<str>,
    pub(super) retention_ms: u64,
    pub(super) scripts: Arc<Scripts>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis script answered something unexpected: {0}")]
    Protocol(String),
}

pub(super) type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Redis cannot serve anyone now (gone, loading, read-only, out of memory, refusing
    /// the credentials; a cluster failing over or resharding past the client's retries):
    /// waiting for it helps. Anything else is about the call itself.
    pub fn is_outage(&self) -> bool {
        use redis::ErrorKind::{AuthenticationFailed, ClusterConnectionNotFound, Server};
        use redis::ServerErrorKind::{
            Ask, BusyLoading, ClusterDown, MasterDown, Moved, ReadOnly, TryAgain,
        };
        let StoreError::Redis(e) = self else {
            return false;
        };
        e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.kind(),
                AuthenticationFailed
                    | ClusterConnectionNotFound
                    | Server(
                        Ask | BusyLoading | ClusterDown | MasterDown | Moved | ReadOnly | TryAgain
                    )
            )
            || matches!(e.code(), Some("OOM" | "NOAUTH" | "MISCONF" | "WRONGPASS"))
    }
}

impl StateStore {
    /// `retention_ms`: how long a record (and so the idempotency guarantee) lives.
    pub fn new(conn: RedisConn, prefix: &str, retention_ms: u64) -> Self {
        StateStore {
            conn,
            prefix: prefix.into(),
            retention_ms,
            scripts: Arc::new(Scripts {
                claim: script(include_str!("scripts/claim.lua")),
                transition: script(include_str!("scripts/transition.lua")),
                renew: script(include_str!("scripts/renew.lua")),
                settle: script(include_str!("scripts/settle.lua")),
                reject: script(include_str!("scripts/reject.lua")),
                publish: script(include_str!("scripts/publish.lua")),
                lead: script(include_str!("scripts/lead.lua")),
                note: script(include_str!("scripts/note.lua")),
                refund: script(include_str!("scripts/refund.lua")),
            }),
        }
    }

    /// The command's record. The braces make every key of one command one hash slot.
    pub fn record_key(&self, key: &IdempotencyKey) -> String {
        format!("{}:{{{}}}:rec", self.prefix, key.as_str())
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Runs a record-creating script; the retention is appended as its last argument.
    pub(super) async fn run(
        &self,
        script: &Lua,
        key: &IdempotencyKey,
        args: &[&str],
    ) -> Result<Vec<Value>> {
        let mut inv = script.key(self.record_key(key));
        for a in args {
            inv.arg(*a);
        }
        inv.arg(self.retention_ms);
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Every key under this store's prefix (SCAN: never blocks Redis; on a cluster,
    /// every primary).
    pub async fn keys(&self) -> Result<Vec<String>> {
        let mut scan = self.conn.scan(&format!("{}:*", self.prefix), 1000).await?;
        let mut keys = Vec::new();
        while let Some(batch) = scan.next_batch().await? {
            keys.extend(batch);
        }
        Ok(keys)
    }

    /// Deletes every key under this store's prefix (a benchmark's or a test's own
    /// namespace, never a live fleet's); returns how many went. (On a cluster the
    /// client splits each UNLINK by slot.)
    pub async fn delete_all(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        let mut deleted = 0;
        for chunk in self.keys().await?.chunks(1000) {
            deleted += redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        Ok(deleted)
    }

    /// How many of the first `limit` open payments belong to each method (their
    /// Takes or keeps a named leadership for `ttl`; true while `owner` holds it.
    pub async fn lead(&self, name: &str, owner: &str, ttl: std::time::Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .scripts
            .lead
            .key(format!("{}:leader:{name}", self.prefix))
            .arg(owner)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }
}

pub(super) fn epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

pub(super) fn text(r: &[Value], i: usize) -> Result<String> {
    match r.get(i) {
        Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(Value::Int(n)) => Ok(n.to_string()),
        other => Err(StoreError::Protocol(format!("item {i}: {other:?}"))),
    }
}

pub(super) fn int(r: &[Value], i: usize) -> Result<i64> {
    match r.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        _ => text(r, i)?
            .parse()
            .map_err(|_| StoreError::Protocol(format!("item {i} is not a number"))),
    }
}

pub(super) fn state(r: &[Value], i: usize) -> Result<State> {
    let s = text(r, i)?;
    State::parse(&s).ok_or_else(|| StoreError::Protocol(format!("unknown state {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    fn redis(e: impl Into<redis::RedisError>) -> StoreError {
        StoreError::Redis(e.into())
    }

    #[test]
    fn an_unreachable_or_unwilling_redis_is_an_outage() {
        use std::io::{Error, ErrorKind};
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::TimedOut,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            assert!(redis(Error::from(kind)).is_outage(), "{kind:?}");
        }
        let auth =
            redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "invalid password"));
        assert!(redis(auth).is_outage());
        let failing_over = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
            "CLUSTERDOWN",
        ));
        assert!(redis(failing_over).is_outage());
    }

    #[test]
    fn a_call_redis_refuses_or_answers_oddly_is_no_outage() {
        let protocol = StoreError::Protocol("item 0: nil".into());
        assert!(!protocol.is_outage());
        let typed = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a list"));
        assert!(!redis(typed).is_outage());
        let cross = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot),
            "CROSSSLOT",
        ));
        assert!(!redis(cross).is_outage(), "a bug, not an outage");
    }
}
