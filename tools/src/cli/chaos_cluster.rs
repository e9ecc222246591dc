//! The node failures of `payfleet chaos --cluster`, in place of the single node's
//! broker restart, Redis outage and Redis restart: once the run is under way, kill -9
//! the RabbitMQ node leading the ECommPay commands queue, wait for a new leader, start
//! the node again; later kill -9 a Redis primary, wait for its replica to take over,
//! start the node again (it rejoins as a replica). Each is timed, and so is the longest
//! pause in commands ending that follows it. A delay queue the reconciler reports
//! stalled (`payfleet_delay_queue_stalled`) gets the runbook's remedy: its leader moved.

use super::cluster::{Cluster, Node, redis_replica_linked, redis_slots};
use anyhow::{Context, bail};
use payfleet::bus::Names;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long a killed node stays down.
const DOWN_FOR: Duration = Duration::from_secs(20);
/// How long a takeover or a rejoin may take before the run fails.
const WITHIN: Duration = Duration::from_secs(90);
/// The span after a kill (and before the first) in which pauses are measured, at most.
const STALL_WINDOW: f64 = 60.0;

#[derive(Debug, Serialize)]
pub struct NodeKill {
    pub node: String,
    /// What it was when killed: the leader of which queue, the primary of which slots.
    pub was: String,
    /// Seconds since the run started.
    pub killed_at_seconds: f64,
    pub taken_over_by: String,
    /// Kill → a new leader named by the cluster (RabbitMQ: polled with `rabbitmqctl`,
    /// about a second each), or the replica promoted and the cluster ok (Redis).
    pub taken_over_after_seconds: f64,
    pub restarted_at_seconds: f64,
    /// Start → booted and a member again (RabbitMQ), a replica linked to its primary
    /// (Redis).
    pub rejoined_after_seconds: f64,
    /// The longest time in which no command ended, in the minute after the kill (up to
    /// the next kill, if sooner).
    pub longest_pause_seconds: f64,
}

/// A delay queue the reconciler reported stalled, and the runbook applied to it.
#[derive(Debug, Serialize)]
pub struct DelayQueueStall {
    pub queue: String,
    /// Seconds since the run started.
    pub reported_at_seconds: f64,
    /// Its leader moved (`scripts/cluster move-leader`), seconds since the run started.
    pub leader_moved_at_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub node_kills: Vec<NodeKill>,
    /// The longest time without a command ending in the minute before the first node
    /// kill (worker kills and provider faults only): what the pauses compare with.
    pub longest_pause_before_seconds: f64,
    /// Every node running and a member again at the end.
    pub whole_at_end: bool,
    pub delay_queues_stalled: Vec<DelayQueueStall>,
}

enum Phase {
    Waiting,
    Running(JoinHandle<anyhow::Result<NodeKill>>),
    Done(NodeKill),
}

impl Phase {
    /// Takes a finished task's outcome (its error ends the run).
    async fn poll(&mut self) -> anyhow::Result<()> {
        if let Phase::Running(task) = self
            && task.is_finished()
        {
            *self = Phase::Done(task.await??);
        }
        Ok(())
    }

    async fn finish(self) -> anyhow::Result<Option<NodeKill>> {
        Ok(match self {
            Phase::Waiting => None,
            Phase::Running(task) => Some(task.await??),
            Phase::Done(k) => Some(k),
        })
    }
}

pub struct ClusterChaos {
    cluster: Arc<Cluster>,
    started: Instant,
    /// The queue whose leader is killed.
    queue: String,
    rabbit: Phase,
    redis: Phase,
    /// Seconds since the start at which the share of ended commands grew.
    ended_at: Vec<f64>,
    last_progress: f64,
    /// The reconciler's metrics, read every [`STALL_LOOK`] for stalled delay queues.
    reconciler_metrics: String,
    /// The run's namespace: its delay queues' names.
    names: Names,
    looked: Instant,
    /// The moves under way or done, in tasks of their own: a move takes seconds, in
    /// which the loop must go on noting when commands end.
    stalls: Vec<JoinHandle<anyhow::Result<DelayQueueStall>>>,
    last_moved: std::collections::HashMap<String, Instant>,
}

/// How often the reconciler's metrics are read for stalled delay queues.
const STALL_LOOK: Duration = Duration::from_secs(5);

impl ClusterChaos {
    pub fn new(
        cluster: Arc<Cluster>,
        started: Instant,
        queue: String,
        reconciler_ops_port: u16,
        names: Names,
    ) -> Self {
        ClusterChaos {
            cluster,
            started,
            queue,
            rabbit: Phase::Waiting,
            redis: Phase::Waiting,
            ended_at: Vec::new(),
            last_progress: 0.0,
            reconciler_metrics: format!("http://127.0.0.1:{reconciler_ops_port}/metrics"),
            names,
            looked: started,
            stalls: Vec::new(),
            last_moved: Default::default(),
        }
    }

    /// As an operator paged by `PayfleetDelayQueueStalled` would: moves the leader of a
    /// delay queue the reconciler reports stalled (once per queue and report).
    async fn mend_stalled_delay_queues(&mut self) {
        if self.looked.elapsed() < STALL_LOOK {
            return;
        }
        self.looked = Instant::now();
        let read = async { reqwest::get(&self.reconciler_metrics).await?.text().await };
        // The reconciler restarting or slow: read again at the next look.
        let Ok(Ok(text)) = tokio::time::timeout(Duration::from_secs(2), read).await else {
            return;
        };
        for ms in stalled_delays(&text) {
            let queue = self.names.delay(ms);
            // Its canary comes back a moment after the move, and the gauge with it.
            if self
                .last_moved
                .get(&queue)
                .is_some_and(|at| at.elapsed() < STALL_LOOK * 6)
            {
                continue;
            }
            self.last_moved.insert(queue.clone(), Instant::now());
            let (cluster, started) = (self.cluster.clone(), self.started);
            let reported_at_seconds = seconds(started.elapsed());
            eprintln!("chaos: {queue} stalled (the reconciler says): moving its leader");
            self.stalls.push(tokio::spawn(async move {
                cluster.move_leader(&queue).await?;
                Ok(DelayQueueStall {
                    queue,
                    reported_at_seconds,
                    leader_moved_at_seconds: seconds(started.elapsed()),
                })
            }));
        }
    }

    /// One turn of the run's loop at `progress` (share of commands ended); `may_start`
    /// once a worker was killed, so each run has both kinds of failure.
    pub async fn step(&mut self, progress: f64, may_start: bool) -> anyhow::Result<()> {
        if progress > self.last_progress {
            self.ended_at.push(self.started.elapsed().as_secs_f64());
            self.last_progress = progress;
        }
        if matches!(self.rabbit, Phase::Waiting) && may_start && progress >= 0.2 {
            let (cluster, queue) = (self.cluster.clone(), self.queue.clone());
            let started = self.started;
            self.rabbit = Phase::Running(tokio::spawn(async move {
                rabbit_leader_killed(&cluster, &queue, started).await
            }));
        }
        self.rabbit.poll().await?;
        if matches!(self.redis, Phase::Waiting)
            && matches!(self.rabbit, Phase::Done(_))
            && progress >= 0.5
        {
            let (cluster, started) = (self.cluster.clone(), self.started);
            self.redis = Phase::Running(tokio::spawn(async move {
                redis_primary_killed(&cluster, started).await
            }));
        }
        self.redis.poll().await?;
        self.mend_stalled_delay_queues().await;
        Ok(())
    }

    /// Both failures are over (the run may end).
    pub fn settled(&self) -> bool {
        matches!(
            (&self.rabbit, &self.redis),
            (Phase::Done(_), Phase::Done(_))
        )
    }

    /// Waits for a failure still under way, then for the cluster to be whole.
    pub async fn finish(self) -> anyhow::Result<ClusterReport> {
        let mut node_kills: Vec<NodeKill> =
            [self.rabbit.finish().await?, self.redis.finish().await?]
                .into_iter()
                .flatten()
                .collect();
        // Each kill's span ends at the next kill, so no pause is counted twice.
        let next: Vec<f64> = node_kills
            .iter()
            .skip(1)
            .map(|k| k.killed_at_seconds)
            .collect();
        for (i, k) in node_kills.iter_mut().enumerate() {
            let from = k.killed_at_seconds;
            let to = next
                .get(i)
                .copied()
                .unwrap_or(f64::MAX)
                .min(from + STALL_WINDOW);
            k.longest_pause_seconds = longest_pause(&self.ended_at, from, to);
        }
        let mut stalls = Vec::new();
        for moved in self.stalls {
            stalls.push(moved.await??);
        }
        let first = node_kills.first().map_or(f64::MAX, |k| k.killed_at_seconds);
        Ok(ClusterReport {
            longest_pause_before_seconds: longest_pause(
                &self.ended_at,
                (first - STALL_WINDOW).max(0.0),
                first,
            ),
            node_kills,
            whole_at_end: self.cluster.heal().await,
            delay_queues_stalled: stalls,
        })
    }
}

/// The delays (ms) whose queue `payfleet_delay_queue_stalled` says is stalled, in a
/// Prometheus text exposition.
fn stalled_delays(metrics: &str) -> Vec<u64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("payfleet_delay_queue_stalled{delay_ms=\""))
        .filter_map(|l| l.split_once("\"} "))
        .filter(|(_, value)| value.trim() == "1")
        .filter_map(|(ms, _)| ms.parse().ok())
        .collect()
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

async fn rabbit_leader_killed(
    cluster: &Cluster,
    queue: &str,
    started: Instant,
) -> anyhow::Result<NodeKill> {
    let leader = cluster.leader(queue).await?;
    let node = Node::Rabbit(leader);
    eprintln!("chaos: kill -9 {} (leads {queue})", node.name());
    let killed = Instant::now();
    cluster.kill(node).await?;
    let successor = loop {
        if let Ok(n) = cluster.leader(queue).await
            && n != leader
        {
            break n;
        }
        if killed.elapsed() > WITHIN {
            bail!("no new leader of {queue} within {WITHIN:?} of killing its leader");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let taken_over = killed.elapsed();
    tokio::time::sleep_until((killed + DOWN_FOR).into()).await;
    eprintln!("chaos: starting {} again", node.name());
    let restarted = Instant::now();
    // It returns once the node has booted, which includes rejoining its cluster.
    cluster.start(node).await?;
    Ok(NodeKill {
        node: node.name(),
        was: format!("leader of {queue}"),
        killed_at_seconds: seconds(killed - started),
        taken_over_by: Node::Rabbit(successor).name(),
        taken_over_after_seconds: seconds(taken_over),
        restarted_at_seconds: seconds(restarted - started),
        rejoined_after_seconds: seconds(restarted.elapsed()),
        longest_pause_seconds: 0.0,
    })
}

async fn redis_primary_killed(cluster: &Cluster, started: Instant) -> anyhow::Result<NodeKill> {
    let (ranges, _) = redis_slots(None).await.context("no Redis node answers")?;
    let primaries: Vec<(i64, u16)> = ranges
        .iter()
        .filter_map(|(from, ports)| Some((*from, *ports.first()?)))
        .collect();
    anyhow::ensure!(!primaries.is_empty(), "the Redis Cluster serves no slots");
    let (from, port) = primaries[rand::random_range(0..primaries.len())];
    let node = Node::Redis(port);
    eprintln!("chaos: kill -9 {} (a primary)", node.name());
    let killed = Instant::now();
    cluster.kill(node).await?;
    let successor = loop {
        if let Some((ranges, true)) = redis_slots(Some(port)).await
            && let Some((_, ports)) = ranges.iter().find(|(f, _)| *f == from)
            && let Some(&primary) = ports.first()
            && primary != port
        {
            break primary;
        }
        if killed.elapsed() > WITHIN {
            bail!(
                "no replica took over from {} within {WITHIN:?}",
                node.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let taken_over = killed.elapsed();
    tokio::time::sleep_until((killed + DOWN_FOR).into()).await;
    eprintln!("chaos: starting {} again", node.name());
    let restarted = Instant::now();
    cluster.start(node).await?;
    while !redis_replica_linked(port).await {
        if restarted.elapsed() > WITHIN {
            bail!(
                "{} did not rejoin as a replica within {WITHIN:?}",
                node.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(NodeKill {
        node: node.name(),
        was: format!("primary of the slots from {from}"),
        killed_at_seconds: seconds(killed - started),
        taken_over_by: Node::Redis(successor).name(),
        taken_over_after_seconds: seconds(taken_over),
        restarted_at_seconds: seconds(restarted - started),
        rejoined_after_seconds: seconds(restarted.elapsed()),
        longest_pause_seconds: 0.0,
    })
}

/// The longest time between `from` and `to` in which nothing ended, in seconds, from
/// the times things ended (ascending). The time after the run's last ending is not
/// counted: the run may simply have had nothing left to end.
fn longest_pause(ended_at: &[f64], from: f64, to: f64) -> f64 {
    let (mut last, mut longest) = (from, 0.0f64);
    for &t in ended_at.iter().filter(|&&t| t > from && t <= to) {
        longest = longest.max(t - last);
        last = t;
    }
    if ended_at.last().is_some_and(|&t| t > to) {
        longest = longest.max(to - last);
    }
    (longest * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_delays_whose_gauge_is_1_are_stalled() {
        let text = "# TYPE payfleet_delay_queue_stalled gauge\n\
                    payfleet_delay_queue_stalled{delay_ms=\"250\"} 1\n\
                    payfleet_delay_queue_stalled{delay_ms=\"1000\"} 0\n\
                    payfleet_holds{provider=\"x\"} 1\n";
        assert_eq!(stalled_delays(text), vec![250]);
    }

    #[test]
    fn a_pause_is_the_longest_gap_between_endings_inside_the_span() {
        let ended = [1.0, 1.1, 1.2, 5.0, 5.1, 9.0, 20.0];
        assert_eq!(longest_pause(&ended, 0.0, 10.0), 3.9);
        // From the span's start to the first ending in it.
        assert_eq!(longest_pause(&ended, 3.0, 6.0), 2.0);
        // Up to the span's end when something ended later; nothing after the run's
        // last ending.
        assert_eq!(longest_pause(&ended, 9.5, 15.0), 5.5);
        assert_eq!(longest_pause(&ended, 9.5, 25.0), 10.5);
        assert_eq!(longest_pause(&ended, 21.0, 30.0), 0.0);
        assert_eq!(longest_pause(&[], 0.0, 60.0), 0.0);
    }
}
