//! The Redis side of the state machine: one hash per command, scripts for every change.

use super::{Meta, Outcome, State};
use crate::contract::{Fingerprint, IdempotencyKey, Method};
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use std::collections::HashMap;
use std::sync::Arc;

struct Scripts {
    claim: Script,
    transition: Script,
    renew: Script,
    settle: Script,
    reject: Script,
    publish: Script,
    lead: Script,
}

/// Every script starts with the shared prelude (server time, state helpers).
fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{body}", include_str!("scripts/prelude.lua")))
}

/// Cheap to clone: one multiplexed, auto-reconnecting connection shared by all tasks.
#[derive(Clone)]
pub struct StateStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    retention_ms: u64,
    scripts: Arc<Scripts>,
}

/// Proof of ownership of a command being submitted: writes with a stale one are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub fence: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// Never sent, or known not to be in flight: submit.
    Fresh,
    /// May have reached the provider: ask it for the status before sending anything.
    Recover,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed {
        lease: Lease,
        mode: ClaimMode,
        attempt: u32,
        /// Time since the previous owner took it (and at most since it last sent it).
        since_last_claim: std::time::Duration,
    },
    /// The key is already used by a command with a different body.
    Conflict,
    /// Already finished; `event` says where its terminal event is.
    Terminal { state: State, event: EventState },
    /// Submitted and waiting for the provider's result.
    Awaiting(State),
    /// Another worker holds a live lease on it.
    Busy,
}

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
    fn from_flag(flag: i64) -> Self {
        match flag {
            1 => EventState::Published,
            2 => EventState::Publishing,
            _ => EventState::Unpublished,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Ok,
    /// The provider's result got there first.
    Terminal(State),
    /// The lease was lost to another worker.
    Fenced,
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    Applied {
        previous: Option<State>,
        meta: Meta,
        context: TraceContext,
    },
    Duplicate {
        state: State,
        meta: Meta,
        event: EventState,
        context: TraceContext,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectVerdict {
    Applied,
    Conflict,
    Duplicate { state: State, event: EventState },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis script answered something unexpected: {0}")]
    Protocol(String),
}

type Result<T> = std::result::Result<T, StoreError>;

impl StateStore {
    /// `retention_ms`: how long a record (and so the idempotency guarantee) lives.
    pub async fn connect(url: &str, prefix: &str, retention_ms: u64) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(StateStore {
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
            }),
        })
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
    async fn run(
        &self,
        script: &Script,
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

    /// Claims a command to submit it. `traceparent`: the command's W3C trace, kept in
    /// the record (the first one only) for whoever settles the payment.
    pub async fn claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        lease_ms: u64,
        payment_id: &str,
        meta: &Meta,
        traceparent: Option<&str>,
    ) -> Result<Claim> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let meta = serde_json::to_string(meta).expect("meta serialises");
        let r = self
            .run(
                &self.scripts.claim,
                key,
                &[
                    fingerprint.as_str(),
                    &owner,
                    &lease_ms.to_string(),
                    payment_id,
                    &meta,
                    traceparent.unwrap_or_default(),
                ],
            )
            .await?;
        let verdict = text(&r, 0)?;
        Ok(match verdict.as_str() {
            "claimed" => Claim::Claimed {
                lease: Lease {
                    owner,
                    fence: int(&r, 1)?,
                },
                mode: if text(&r, 2)? == "fresh" {
                    ClaimMode::Fresh
                } else {
                    ClaimMode::Recover
                },
                attempt: int(&r, 3)? as u32,
                since_last_claim: std::time::Duration::from_millis(int(&r, 4)?.max(0) as u64),
            },
            "conflict" => Claim::Conflict,
            "terminal" => Claim::Terminal {
                state: state(&r, 2)?,
                event: EventState::from_flag(int(&r, 3)?),
            },
            "awaiting" => Claim::Awaiting(state(&r, 2)?),
            "busy" => Claim::Busy,
            other => return Err(StoreError::Protocol(format!("claim: {other}"))),
        })
    }

    pub async fn transition(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        to: State,
        outcome: Option<&Outcome>,
    ) -> Result<Transition> {
        self.transition_with(key, lease, to, outcome, "").await
    }

    /// Hands a claimed command back to wait for the provider's working hours: a
    /// transition to `received` whose claim does not count as an attempt.
    pub async fn defer(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        outcome: &Outcome,
    ) -> Result<Transition> {
        self.transition_with(key, lease, State::Received, Some(outcome), "uncounted")
            .await
    }

    async fn transition_with(
        &self,
        key: &IdempotencyKey,
        lease: &Lease,
        to: State,
        outcome: Option<&Outcome>,
        counting: &str,
    ) -> Result<Transition> {
        let outcome = outcome
            .map(|o| serde_json::to_string(o).expect("outcome serialises"))
            .unwrap_or_default();
        let r = self
            .run(
                &self.scripts.transition,
                key,
                &[
                    &lease.owner,
                    &lease.fence.to_string(),
                    to.as_str(),
                    &outcome,
                    counting,
                ],
            )
            .await?;
        Ok(match text(&r, 0)?.as_str() {
            "ok" => Transition::Ok,
            "terminal" => Transition::Terminal(state(&r, 1)?),
            "fenced" => Transition::Fenced,
            "missing" => Transition::Missing,
            other => return Err(StoreError::Protocol(format!("transition: {other}"))),
        })
    }

    /// Extends the lease; false when it was lost.
    pub async fn renew(&self, key: &IdempotencyKey, lease: &Lease, lease_ms: u64) -> Result<bool> {
        let mut inv = self.scripts.renew.key(self.record_key(key));
        inv.arg(&lease.owner).arg(lease.fence).arg(lease_ms);
        let mut conn = self.conn.clone();
        let owned: i64 = inv.invoke_async(&mut conn).await?;
        Ok(owned == 1)
    }

    /// Applies an outcome the provider reported.
    pub async fn settle(
        &self,
        key: &IdempotencyKey,
        to: State,
        outcome: &Outcome,
        fallback_meta: &Meta,
        payment_id: &str,
    ) -> Result<Settle> {
        let outcome = serde_json::to_string(outcome).expect("outcome serialises");
        let fallback = serde_json::to_string(fallback_meta).expect("meta serialises");
        let r = self
            .run(
                &self.scripts.settle,
                key,
                &[to.as_str(), &outcome, &fallback, payment_id],
            )
            .await?;
        let meta: Meta = serde_json::from_str(&text(&r, 2)?).unwrap_or_default();
        let context = TraceContext {
            traceparent: Some(text(&r, 4)?).filter(|tp| !tp.is_empty()),
            sent_at: text(&r, 5)?
                .parse()
                .ok()
                .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        };
        Ok(match text(&r, 0)?.as_str() {
            "applied" => Settle::Applied {
                previous: State::parse(&text(&r, 1)?),
                meta,
                context,
            },
            "duplicate" => Settle::Duplicate {
                state: state(&r, 1)?,
                meta,
                event: EventState::from_flag(int(&r, 3)?),
                context,
            },
            other => return Err(StoreError::Protocol(format!("settle: {other}"))),
        })
    }

    pub async fn reject(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        meta: &Meta,
        outcome: &Outcome,
    ) -> Result<RejectVerdict> {
        let meta = serde_json::to_string(meta).expect("meta serialises");
        let outcome = serde_json::to_string(outcome).expect("outcome serialises");
        let r = self
            .run(
                &self.scripts.reject,
                key,
                &[fingerprint.as_str(), &meta, &outcome],
            )
            .await?;
        Ok(match text(&r, 0)?.as_str() {
            "applied" => RejectVerdict::Applied,
            "conflict" => RejectVerdict::Conflict,
            "duplicate" => RejectVerdict::Duplicate {
                state: state(&r, 1)?,
                event: EventState::from_flag(int(&r, 2)?),
            },
            other => return Err(StoreError::Protocol(format!("reject: {other}"))),
        })
    }

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

    /// Notes that the event announcing `state` was confirmed by the broker.
    pub async fn publish_done(&self, key: &IdempotencyKey, state: State) -> Result<()> {
        self.publish_bookkeeping(key, state, "done").await.map(drop)
    }

    /// Gives the right to publish back after a failed publish.
    pub async fn publish_release(&self, key: &IdempotencyKey, state: State) -> Result<()> {
        self.publish_bookkeeping(key, state, "release")
            .await
            .map(drop)
    }

    /// The index of payments waiting for the provider's result (its own hash slot).
    fn open_key(&self) -> String {
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

    /// Every key under this store's prefix (SCAN: never blocks Redis).
    pub async fn keys(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:*", self.prefix);
        let (mut cursor, mut keys) = (0u64, Vec::new());
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Deletes every key under this store's prefix (a benchmark's or a test's own
    /// namespace, never a live fleet's); returns how many went.
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
    /// records' meta; one pipelined round trip per thousand).
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
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("HGET").arg(self.record_key(k)).arg("meta");
            }
            let metas: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
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

    /// The whole record, for inspection by tests, the demo and operators.
    pub async fn record(&self, key: &IdempotencyKey) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(self.record_key(key))
            .query_async(&mut conn)
            .await?)
    }

    /// The recorded outcome of a command, if any.
    pub async fn outcome(&self, key: &IdempotencyKey) -> Result<Option<Outcome>> {
        let rec = self.record(key).await?;
        Ok(rec.get("out").and_then(|o| serde_json::from_str(o).ok()))
    }
}

/// The record field that holds the command's traceparent.
pub const TRACE_FIELD: &str = "tp";

/// What a settler needs to continue a command's trace and measure its callback lag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub sent_at: Option<std::time::SystemTime>,
}

fn epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn text(r: &[Value], i: usize) -> Result<String> {
    match r.get(i) {
        Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(Value::Int(n)) => Ok(n.to_string()),
        other => Err(StoreError::Protocol(format!("item {i}: {other:?}"))),
    }
}

fn int(r: &[Value], i: usize) -> Result<i64> {
    match r.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        _ => text(r, i)?
            .parse()
            .map_err(|_| StoreError::Protocol(format!("item {i} is not a number"))),
    }
}

fn state(r: &[Value], i: usize) -> Result<State> {
    let s = text(r, i)?;
    State::parse(&s).ok_or_else(|| StoreError::Protocol(format!("unknown state {s:?}")))
}
