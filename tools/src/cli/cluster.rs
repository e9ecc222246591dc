//! The local cluster of `scripts/cluster` (RabbitMQ nodes 1-3 on 5681-5683, a Redis
//! Cluster of 3 primaries and 3 replicas on 7001-7006) under a run: settings pointing
//! at it, its nodes killed (kill -9) and started again through the script, and a check
//! that it is whole. Shared by `payfleet chaos --cluster` and `payfleet bench --cluster`.

use crate::settings::FleetSettings;
use anyhow::{Context, bail};
use payfleet::config::AmqpNodes;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::Command;

pub const RABBIT_NODES: [u8; 3] = [1, 2, 3];
pub const REDIS_PORTS: [u16; 6] = [7001, 7002, 7003, 7004, 7005, 7006];

/// One node of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Rabbit(u8),
    Redis(u16),
}

impl Node {
    pub fn name(self) -> String {
        match self {
            Node::Rabbit(n) => format!("rabbit-c{n}@localhost"),
            Node::Redis(port) => format!("redis 127.0.0.1:{port}"),
        }
    }
}

pub struct Cluster {
    script: PathBuf,
    /// Nodes killed and not started again: [`Cluster::heal`] starts them however the
    /// run ends.
    down: Mutex<Vec<Node>>,
}

impl Cluster {
    /// `scripts/cluster` of this checkout, or `PAYFLEET_CLUSTER_SCRIPT`.
    pub fn locate() -> anyhow::Result<Self> {
        let script = std::env::var_os("PAYFLEET_CLUSTER_SCRIPT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster"))
            });
        if !script.is_file() {
            bail!(
                "--cluster needs scripts/cluster, not found at {} (set PAYFLEET_CLUSTER_SCRIPT)",
                script.display()
            );
        }
        Ok(Cluster {
            script,
            down: Mutex::default(),
        })
    }

    /// Runs `scripts/cluster ARGS`; its standard output.
    async fn script(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.script)
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {}", self.script.display()))?;
        if !out.status.success() {
            bail!(
                "scripts/cluster {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Starts the cluster unless it is whole already.
    pub async fn up(&self) -> anyhow::Result<()> {
        if self.whole().await {
            return Ok(());
        }
        eprintln!("cluster: scripts/cluster up");
        self.script(&["up"]).await?;
        if !self.wait_whole(Duration::from_secs(120)).await {
            bail!("the cluster is not whole after scripts/cluster up (scripts/cluster status)");
        }
        Ok(())
    }

    /// Points `s` at the cluster: its URLs (`scripts/cluster urls`), Redis in cluster
    /// mode, and three replicas of every queue payfleet creates.
    pub async fn point(&self, s: &mut FleetSettings) -> anyhow::Result<()> {
        let urls = self.script(&["urls"]).await?;
        let (amqp, redis) = parse_urls(&urls)?;
        let amqp: Vec<&str> = amqp.split(',').collect();
        s.amqp.url = AmqpNodes::parse(&amqp).map_err(anyhow::Error::msg)?;
        s.redis.url = redis.parse().map_err(anyhow::Error::msg)?;
        s.redis.cluster = true;
        s.amqp.quorum_group_size = 3;
        Ok(())
    }

    /// Every RabbitMQ node running and a member, every Redis node answering, and the
    /// Redis Cluster's state ok (`scripts/cluster status`).
    pub async fn whole(&self) -> bool {
        let Ok(status) = self.script(&["status"]).await else {
            return false;
        };
        let members = status
            .lines()
            .find(|l| l.starts_with("rabbitmq running members:"))
            .unwrap_or_default();
        RABBIT_NODES
            .iter()
            .all(|&n| members.contains(&Node::Rabbit(n).name()))
    }

    pub async fn wait_whole(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.whole().await {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        true
    }

    /// The RabbitMQ node leading a quorum queue.
    pub async fn leader(&self, queue: &str) -> anyhow::Result<u8> {
        let n = self.script(&["leader", queue]).await?;
        n.parse()
            .with_context(|| format!("scripts/cluster leader {queue} said {n:?}"))
    }

    /// Moves a quorum queue's leader to another node (the runbook's remedy for a delay
    /// queue that stalled).
    pub async fn move_leader(&self, queue: &str) -> anyhow::Result<()> {
        self.script(&["move-leader", queue]).await.map(drop)
    }

    /// Kill -9: noted as down first, so [`Cluster::heal`] starts it whatever happens.
    pub async fn kill(&self, node: Node) -> anyhow::Result<()> {
        self.down.lock().expect("down lock").push(node);
        match node {
            Node::Rabbit(n) => self.script(&["kill-rabbit", &n.to_string()]).await,
            Node::Redis(port) => self.script(&["kill-redis", &port.to_string()]).await,
        }
        .map(drop)
    }

    /// Starts a killed node with the data it had: a RabbitMQ node rejoins its cluster,
    /// a Redis node rejoins as a replica of whichever node took its slots.
    pub async fn start(&self, node: Node) -> anyhow::Result<()> {
        match node {
            Node::Rabbit(n) => self.script(&["start-rabbit", &n.to_string()]).await,
            Node::Redis(port) => self.script(&["start-redis", &port.to_string()]).await,
        }?;
        self.down.lock().expect("down lock").retain(|d| *d != node);
        Ok(())
    }

    /// Starts every node killed and not started again, then waits (up to 2 minutes)
    /// for the cluster to be whole; whether it is.
    pub async fn heal(&self) -> bool {
        let down = self.down.lock().expect("down lock").clone();
        for node in down {
            eprintln!("cluster: starting {} again", node.name());
            if let Err(e) = self.start(node).await {
                eprintln!("cluster: {e:#}");
            }
        }
        self.wait_whole(Duration::from_secs(120)).await
    }
}

/// `PAYFLEET__AMQP__URL` and `PAYFLEET__REDIS__URL` from `scripts/cluster urls`
/// (`export NAME='value'` lines).
fn parse_urls(exports: &str) -> anyhow::Result<(String, String)> {
    let value = |name: &str| {
        exports.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("export ")?.strip_prefix(name)?;
            Some(rest.strip_prefix('=')?.trim_matches('\'').to_owned())
        })
    };
    match (value("PAYFLEET__AMQP__URL"), value("PAYFLEET__REDIS__URL")) {
        (Some(amqp), Some(redis)) => Ok((amqp, redis)),
        _ => bail!("scripts/cluster urls printed no AMQP and Redis URLs: {exports}"),
    }
}

/// A connection to one Redis node of the cluster, which must answer within a second.
async fn redis_node(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

pub async fn redis_query<T: redis::FromRedisValue>(
    port: u16,
    cmd: &redis::Cmd,
) -> redis::RedisResult<T> {
    cmd.query_async(&mut redis_node(port).await?).await
}

/// Slot ranges (by their first slot) and the ports serving them, primary first, as one
/// node that answers (other than `but`) sees them, with whether it says the cluster is
/// ok.
pub async fn redis_slots(but: Option<u16>) -> Option<(Vec<(i64, Vec<u16>)>, bool)> {
    for port in REDIS_PORTS.into_iter().filter(|p| Some(*p) != but) {
        let Ok(ranges) =
            redis_query::<Vec<redis::Value>>(port, redis::cmd("CLUSTER").arg("SLOTS")).await
        else {
            continue;
        };
        let info: String = redis_query(port, redis::cmd("CLUSTER").arg("INFO"))
            .await
            .unwrap_or_default();
        let ports = ranges
            .iter()
            .filter_map(|range| match range {
                redis::Value::Array(r) => match r.first() {
                    Some(redis::Value::Int(from)) => {
                        Some((*from, r.iter().skip(2).filter_map(node_port).collect()))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        return Some((ports, info.contains("cluster_state:ok")));
    }
    None
}

fn node_port(node: &redis::Value) -> Option<u16> {
    match node {
        redis::Value::Array(n) => match n.get(1) {
            Some(redis::Value::Int(p)) => u16::try_from(*p).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a Redis node is a replica whose link to its primary is up.
pub async fn redis_replica_linked(port: u16) -> bool {
    let Ok(role) = redis_query::<Vec<redis::Value>>(port, &redis::cmd("ROLE")).await else {
        return false;
    };
    let text = |v: Option<&redis::Value>| match v {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    };
    text(role.first()) == "slave" && text(role.get(3)) == "connected"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_urls_the_script_exports() {
        let out = "export PAYFLEET__AMQP__URL='amqp://g:g@127.0.0.1:5681/%2f,amqp://g:g@127.0.0.1:5682/%2f'\n\
                   export PAYFLEET__REDIS__URL='redis://127.0.0.1:7001,redis://127.0.0.1:7002'\n\
                   export PAYFLEET__REDIS__CLUSTER=true";
        let (amqp, redis) = parse_urls(out).unwrap();
        assert_eq!(
            amqp,
            "amqp://g:g@127.0.0.1:5681/%2f,amqp://g:g@127.0.0.1:5682/%2f"
        );
        assert_eq!(redis, "redis://127.0.0.1:7001,redis://127.0.0.1:7002");
        assert!(parse_urls("export PAYFLEET__REDIS__CLUSTER=true").is_err());
    }
}
