//! The one connection every part of payfleet talks to Redis through: one Redis
//! (`ConnectionManager`) or a Redis Cluster (`ClusterConnection`), chosen by
//! `redis.cluster`. Both are multiplexed, cheap to clone, made on first use and remade
//! after they are lost; scripts, commands and pipelines run on either
//! ([`ConnectionLike`]). A single Redis pays one `match` per call for it, nothing more.
//!
//! What a cluster cannot do as one Redis does, this type does for it: reads of many
//! keys in many slots ([`RedisConn::query_each`]) and SCAN over every primary
//! ([`RedisConn::scan`]).

use crate::config::{RedisSettings, RedisUrls};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// The longest wait for a connection, or for one answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A cluster call's whole budget, redirections and retries included: a failover (the
/// cluster's node timeout plus an election, seconds) fits in it, so a call during one is
/// mostly answered late, and otherwise fails as an outage the caller waits out.
const CLUSTER_CALL_BUDGET: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// The connection `settings` describe. Only a malformed URL fails here: a Redis
    /// that cannot be reached fails each call until it can (callers wait and retry).
    pub fn open(settings: &RedisSettings) -> RedisResult<Self> {
        Self::to(&settings.url, settings.cluster)
    }

    /// The nodes of a Redis Cluster when `cluster`, else the one Redis at the first URL.
    pub fn to(urls: &RedisUrls, cluster: bool) -> RedisResult<Self> {
        if !cluster {
            // One quick second try, so the caller decides how to wait rather than the
            // connection retrying behind its back.
            let config = ConnectionManagerConfig::new()
                .set_number_of_retries(1)
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            let client = redis::Client::open(urls.first())?;
            return Ok(RedisConn::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?));
        }
        // Retries follow MOVED/ASK and wait out TRYAGAIN/CLUSTERDOWN while a replica
        // takes over: 200, 400, 800, then 1000 ms apart, within the call's budget.
        let client = ClusterClient::builder(urls.expose().iter().map(String::as_str))
            .retries(8)
            .min_retry_wait(100)
            .max_retry_wait(1000)
            .retry_wait_formula(100, 2)
            .connection_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .overall_response_timeout(Some(CLUSTER_CALL_BUDGET))
            .build()?;
        let config = ClusterConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT);
        Ok(RedisConn::Cluster(
            client.get_pending_async_connection_with_config(config),
        ))
    }

    /// Runs independent commands (reads of many keys) and returns their answers in
    /// order: one pipeline on one Redis; on a cluster, whose keys lie in many slots and
    /// a pipeline must keep to one, each command on its own, all at once (each node's
    /// connection pipelines what it is sent).
    pub async fn query_each<T: FromRedisValue>(&self, cmds: &[Cmd]) -> RedisResult<Vec<T>> {
        match self {
            RedisConn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query_async(&mut c.clone()).await
            }
            RedisConn::Cluster(c) => {
                futures::future::try_join_all(cmds.iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { cmd.query_async(&mut c).await }
                }))
                .await
            }
        }
    }

    /// A SCAN with MATCH and COUNT over every key: of the one Redis, or of every
    /// primary of the cluster in turn.
    pub async fn scan(&self, pattern: &str, count: usize) -> RedisResult<Scan> {
        let shards = match self {
            RedisConn::Single(_) => vec![None],
            RedisConn::Cluster(c) => primaries(c.clone()).await?.into_iter().map(Some).collect(),
        };
        Ok(Scan {
            conn: self.clone(),
            pattern: pattern.to_owned(),
            count,
            shards,
            cursor: 0,
        })
    }
}

/// One slot of each primary of the cluster: SCAN sent by that slot reaches the node
/// serving it now, even after a failover.
async fn primaries(mut conn: ClusterConnection) -> RedisResult<Vec<u16>> {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await?;
    let malformed = || redis::RedisError::from((redis::ErrorKind::Parse, "CLUSTER SLOTS"));
    let Value::Array(ranges) = slots else {
        return Err(malformed());
    };
    let mut seen = std::collections::HashMap::new();
    for range in ranges {
        // [start, end, [host, port, id, …], replicas…]
        let Value::Array(range) = range else {
            return Err(malformed());
        };
        let (Some(Value::Int(start)), Some(Value::Array(primary))) = (range.first(), range.get(2))
        else {
            return Err(malformed());
        };
        let node = format!("{:?}{:?}", primary.first(), primary.get(1));
        seen.entry(node).or_insert(*start as u16);
    }
    Ok(seen.into_values().collect())
}

/// A SCAN in progress (see [`RedisConn::scan`]). A key may be seen twice, as SCAN
/// allows; keys added or moved (resharding, failover) meanwhile may be missed.
pub struct Scan {
    conn: RedisConn,
    pattern: String,
    count: usize,
    /// The shards still to scan, the current one last: `None` for the one Redis.
    shards: Vec<Option<u16>>,
    cursor: u64,
}

impl Scan {
    /// The next batch of key names; `None` once every shard is done.
    pub async fn next_batch(&mut self) -> RedisResult<Option<Vec<String>>> {
        let Some(&shard) = self.shards.last() else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(self.count);
        let answer = match (&mut self.conn, shard) {
            (RedisConn::Cluster(c), Some(slot)) => {
                let at = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                c.route_command(cmd, RoutingInfo::SingleNode(at)).await?
            }
            (conn, _) => cmd.query_async(conn).await?,
        };
        let (next, names): (u64, Vec<String>) = redis::from_redis_value(answer)?;
        self.cursor = next;
        if next == 0 {
            self.shards.pop();
        }
        Ok(Some(names))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
