//! The Redis Cluster of `scripts/cluster` (127.0.0.1:7001-7006, 3 primaries with a
//! replica each): started when it does not answer, and made to lose a primary's last
//! writes on purpose.

use payfleet_tools::settings::FleetSettings;
use std::process::Command;
use std::time::{Duration, Instant};

pub const PORTS: [u16; 6] = [7001, 7002, 7003, 7004, 7005, 7006];
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster");

/// Isolated settings ([`super::settings`]) whose Redis is the cluster, which is up.
pub async fn cluster_settings(label: &str) -> FleetSettings {
    static UP: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    UP.get_or_init(|| async {
        if !cluster_ok().await {
            let up = Command::new(SCRIPT).arg("up").status();
            assert!(
                up.is_ok_and(|s| s.success()),
                "the Redis Cluster is not up and `scripts/cluster up` failed"
            );
            wait_until("the Redis Cluster is ok", cluster_ok).await;
        }
    })
    .await;
    let mut s = super::settings(label);
    let urls: Vec<String> = PORTS
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    s.redis.url = urls.join(",").parse().expect("URLs");
    s.redis.cluster = true;
    s
}

/// A connection to one node, which must answer within a second.
async fn node(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn query<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
    cmd.query_async(&mut node(port).await?).await
}

/// Whether every node that answers says the cluster is ok, and some do.
async fn cluster_ok() -> bool {
    let mut answered = 0;
    for port in PORTS {
        if let Ok(info) = query::<String>(port, redis::cmd("CLUSTER").arg("INFO")).await {
            if !info.contains("cluster_state:ok") {
                return false;
            }
            answered += 1;
        }
    }
    answered > 0
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The primary serving a key's slot now, and its replica.
pub struct Pair {
    pub primary: u16,
    pub replica: u16,
}

impl Pair {
    /// The primary and replica of `key`'s slot, once a node names both (a replica
    /// attaching, or a node a test restarted rejoining, takes the cluster seconds).
    pub async fn of(key: &str) -> Pair {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Self::named(key).await {
                Some(pair) => return pair,
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                None => panic!("no node names a replica for the slot of {key}"),
            }
        }
    }

    async fn named(key: &str) -> Option<Pair> {
        // Any node that answers (another test or run may have killed one).
        let mut port = PORTS[0];
        for p in PORTS {
            if query::<String>(p, &mut redis::cmd("PING")).await.is_ok() {
                port = p;
                break;
            }
        }
        let slot: i64 = query(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .expect("CLUSTER KEYSLOT");
        let ranges: Vec<redis::Value> = query(port, redis::cmd("CLUSTER").arg("SLOTS"))
            .await
            .expect("CLUSTER SLOTS");
        let port_of = |v: &redis::Value| match v {
            redis::Value::Array(node) => match node.get(1) {
                Some(redis::Value::Int(p)) => *p as u16,
                other => panic!("a node's port: {other:?}"),
            },
            other => panic!("a node: {other:?}"),
        };
        for range in ranges {
            let redis::Value::Array(r) = range else {
                panic!("a slot range: {range:?}")
            };
            let (redis::Value::Int(from), redis::Value::Int(to)) = (&r[0], &r[1]) else {
                panic!("a slot range: {r:?}")
            };
            if (*from..=*to).contains(&slot) {
                return (r.len() > 3).then(|| Pair {
                    primary: port_of(&r[2]),
                    replica: port_of(&r[3]),
                });
            }
        }
        None
    }

    /// Waits until the replica has everything the primary was sent.
    pub async fn wait_replicated(&self) {
        let acked: i64 = query(self.primary, redis::cmd("WAIT").arg(1).arg(900))
            .await
            .expect("WAIT");
        assert_eq!(acked, 1, "the replica of {} acknowledges", self.primary);
    }

    /// Cuts the replica off: it is stopped (SIGSTOP) and the primary drops its link, so
    /// whatever the primary is sent from now on reaches no replica.
    pub async fn cut(self) -> Loss {
        let replica_pid = pid(self.replica).await;
        let primary_pid = pid(self.primary).await;
        signal("-STOP", replica_pid);
        let loss = Loss {
            pair: self,
            replica_pid,
            primary_pid,
            killed: false,
        };
        let dropped: i64 = query(
            loss.pair.primary,
            redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica"),
        )
        .await
        .expect("CLIENT KILL");
        assert_eq!(dropped, 1, "the primary dropped its replica");
        loss
    }
}

async fn pid(port: u16) -> u32 {
    let info: String = query(port, redis::cmd("INFO").arg("server"))
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("process_id")
}

fn signal(sig: &str, pid: u32) {
    let sent = Command::new("kill").arg(sig).arg(pid.to_string()).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill {sig} {pid}");
}

/// A primary cut off from its replica. Dropped, it leaves the cluster whole again: the
/// replica running, the killed primary restarted (it comes back as a replica).
pub struct Loss {
    pair: Pair,
    replica_pid: u32,
    primary_pid: u32,
    killed: bool,
}

impl Loss {
    /// kill -9 the primary, wake the replica and make it take over at once (CLUSTER
    /// FAILOVER TAKEOVER): what only the primary had is gone.
    pub async fn fail_over(&mut self) {
        signal("-KILL", self.primary_pid);
        self.killed = true;
        signal("-CONT", self.replica_pid);
        let replica = self.pair.replica;
        let _: () = query(
            replica,
            redis::cmd("CLUSTER").arg("FAILOVER").arg("TAKEOVER"),
        )
        .await
        .expect("CLUSTER FAILOVER TAKEOVER");
        wait_until("the replica took over", || async move {
            let role: redis::RedisResult<Vec<redis::Value>> =
                query(replica, &mut redis::cmd("ROLE")).await;
            matches!(role.as_deref(), Ok([redis::Value::BulkString(r), ..]) if r == b"master")
        })
        .await;
        wait_until("the cluster is ok again", cluster_ok).await;
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.replica_pid.to_string()])
            .status();
        if self.killed {
            let port = self.pair.primary.to_string();
            let back = Command::new(SCRIPT).args(["start-redis", &port]).status();
            // Back as a replica in sync, so the next test finds every slot with one.
            let synced = || {
                Command::new("redis-cli")
                    .args(["-p", &port, "info", "replication"])
                    .output()
                    .is_ok_and(|o| {
                        String::from_utf8_lossy(&o.stdout).contains("master_link_status:up")
                    })
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while !synced() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            if !std::thread::panicking() {
                assert!(back.is_ok_and(|s| s.success()), "restarting Redis {port}");
                assert!(synced(), "Redis {port} is back as a replica in sync");
            }
        }
    }
}
