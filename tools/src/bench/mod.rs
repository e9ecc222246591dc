//! `payfleet bench`: the measuring instrument. Drives a real fleet (worker processes;
//! gateway and sandbox as processes or in the bench process) over the local RabbitMQ
//! and Redis, in a namespace of its own, and measures in the same invocation the broker
//! ceiling the fleet is compared with.
//!
//! One file per measurement: [`ceiling`] (the broker alone), [`load`] (publishing and
//! publish → terminal timing), [`latency`] (percentiles), [`usage`] (CPU and RSS from
//! the kernel); [`fleet`] starts and stops what is measured; [`mix`] names the methods.

mod ceiling;
mod fleet;
mod latency;
mod load;
pub mod mix;
mod usage;

pub use ceiling::Ceiling;
pub use fleet::Services;
pub use latency::Percentiles;
pub use load::Pacing;
pub use mix::Mix;
pub use usage::ProcessUsage;

use crate::local::isolated;
use crate::settings::FleetSettings;
use fleet::Fleet;
use load::{Message, Target};
use payfleet::contract::EventStatus;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub commands: usize,
    /// Worker processes of each fleet run, in order (one run per entry).
    pub workers: Vec<usize>,
    pub provider_latency_ms: u64,
    pub prefetch: u16,
    pub in_flight: usize,
    /// Open-loop rate (commands/s); `None` is closed-loop.
    pub rate: Option<f64>,
    /// Closed loop: commands published and not yet terminal (default: twice what the
    /// workers may hold).
    pub outstanding: Option<usize>,
    pub mix: Mix,
    pub services: Services,
    pub timeout_seconds: u64,
}

/// What a run's RabbitMQ and Redis are: the single nodes of the settings, or the local
/// cluster of `scripts/cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nodes {
    Single,
    Cluster,
}

impl Nodes {
    /// The roles [`usage`] gives their processes.
    fn broker_role(self) -> &'static str {
        match self {
            Nodes::Single => "rabbitmq",
            Nodes::Cluster => "rabbitmq-cluster",
        }
    }

    fn redis_role(self) -> &'static str {
        match self {
            Nodes::Single => "redis",
            Nodes::Cluster => "redis-cluster",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub options: Options,
    pub pacing: Pacing,
    pub ceiling: Ceiling,
    /// The broker ceiling on the cluster, when runs on it were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_ceiling: Option<Ceiling>,
    pub runs: Vec<FleetRun>,
    /// Every command of every run reached a terminal event.
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// `/proc/loadavg` (1, 5, 15 min) when the bench started: how loaded the machine was.
    pub load_average: String,
}

#[derive(Debug, Serialize)]
pub struct FleetRun {
    pub nodes: Nodes,
    pub workers: usize,
    pub commands: usize,
    pub terminal: usize,
    pub terminal_by_status: BTreeMap<&'static str, usize>,
    pub seconds: f64,
    /// Commands per second, from the first publish to the last terminal event.
    pub commands_per_second: f64,
    /// This run's throughput ÷ the broker ceiling of the same invocation on the same
    /// nodes.
    pub ratio_to_ceiling: f64,
    /// With a provider latency: throughput ÷ (workers × in-flight ÷ latency).
    pub ratio_to_in_flight_bound: Option<f64>,
    /// Publish → terminal event.
    pub latency: Percentiles,
    /// Publish → the provider request arriving at the sandbox: the fleet's own part.
    pub overhead: Percentiles,
    /// Most provider requests the sandbox held at once.
    pub provider_peak_concurrent: usize,
    pub worker_cpu_us_per_command: f64,
    /// `None` when the gateway runs inside the bench process.
    pub gateway_cpu_us_per_callback: Option<f64>,
    pub callbacks: u64,
    pub worker_peak_rss_mib: f64,
    /// RabbitMQ CPU per command, every node of a cluster summed (shared with the rest of
    /// the machine: an upper bound).
    pub broker_cpu_us_per_command: f64,
    /// Redis CPU per command, every node of a cluster summed (shared: an upper bound).
    pub redis_cpu_us_per_command: f64,
    pub processes: Vec<ProcessUsage>,
    /// The local RabbitMQ and Redis over the same time.
    pub shared_services: Vec<ProcessUsage>,
    /// CPU of the bench process over the same time, in ms: the load generator (and the
    /// gateway and sandbox with `--services in-process`), on the same cores.
    pub bench_cpu_ms: f64,
    /// Where the fleet's processes logged.
    pub logs: String,
}

/// The key and status of a terminal event.
fn terminal_event(body: &[u8]) -> Option<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        idempotency_key: String,
        status: EventStatus,
    }
    let p: Probe = serde_json::from_slice(body).ok()?;
    p.status
        .is_terminal()
        .then(|| (p.idempotency_key, p.status.as_str()))
}

/// Runs the bench on `settings`' nodes and, given `cluster` (the same settings pointed
/// at the cluster), on the cluster too: a ceiling on each, then each worker count on
/// one, then on the other.
pub async fn run(
    settings: FleetSettings,
    cluster: Option<FleetSettings>,
    opts: Options,
) -> anyhow::Result<Report> {
    let machine = Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    };
    let base = prepare(settings, &opts);
    let run_id = base
        .amqp
        .namespace
        .rsplit('-')
        .next()
        .unwrap_or("run")
        .to_owned();
    let messages = Arc::new(opts.mix.messages(&run_id, opts.commands));
    let most_workers = opts.workers.iter().copied().max().unwrap_or(1);
    let pacing = match opts.rate {
        Some(per_second) => Pacing::Open { per_second },
        None => Pacing::Closed {
            outstanding: opts
                .outstanding
                .unwrap_or(2 * most_workers * opts.in_flight),
        },
    };
    let timeout = Duration::from_secs(opts.timeout_seconds);
    let mut targets = vec![(Nodes::Single, base)];
    if let Some(cluster) = cluster {
        targets.push((Nodes::Cluster, prepare(cluster, &opts)));
    }
    let mut ceilings = Vec::new();
    for (nodes, base) in &targets {
        ceilings.push(ceiling::measure(base, *nodes, messages.clone(), pacing, timeout).await?);
    }
    let mut runs = Vec::new();
    for &workers in &opts.workers {
        for ((nodes, base), ceiling) in targets.iter().zip(&ceilings) {
            // A fresh namespace, key prefix and sandbox per run, so keys never collide.
            let settings = isolated(base.clone(), "payfleet-bench");
            let fleet = Fleet::start(settings, workers, opts.services).await?;
            let run = Run {
                nodes: *nodes,
                workers,
                ceiling,
            };
            let measured = measure(&fleet, &opts, run, messages.clone(), pacing).await;
            fleet.stop().await?;
            runs.push(measured?);
        }
    }
    let mut ceilings = ceilings.into_iter();
    Ok(Report {
        machine,
        ok: runs.iter().all(|r| r.terminal == r.commands),
        options: opts,
        pacing,
        ceiling: ceilings.next().expect("the single nodes' ceiling"),
        cluster_ceiling: ceilings.next(),
        runs,
    })
}

/// The bench's settings on top of `settings`, in a namespace of their own.
fn prepare(settings: FleetSettings, opts: &Options) -> FleetSettings {
    let mut base = isolated(settings, "payfleet-bench");
    base.amqp.prefetch = opts.prefetch;
    base.worker.max_in_flight = opts.in_flight;
    // The provider's latency is the sandbox's answer delay; callbacks follow at once.
    base.sandbox.callback_delay_ms = 0;
    base.sandbox.record_arrivals = true;
    let clock_offset_ms = mix::in_working_hours();
    base.ecommpay.clock_offset_ms = clock_offset_ms;
    base.sandbox.clock_offset_ms = clock_offset_ms;
    base
}

/// One fleet run: on which nodes, with how many workers, against which ceiling.
struct Run<'a> {
    nodes: Nodes,
    workers: usize,
    ceiling: &'a Ceiling,
}

async fn measure(
    fleet: &Fleet,
    opts: &Options,
    run: Run<'_>,
    messages: Arc<Vec<Message>>,
    pacing: Pacing,
) -> anyhow::Result<FleetRun> {
    let Run {
        nodes,
        workers,
        ceiling,
    } = run;
    if opts.provider_latency_ms > 0 {
        fleet.set_provider_latency(opts.provider_latency_ms).await?;
    }
    let s = &fleet.settings;
    let names = payfleet::bus::Names::new(&s.amqp.namespace);
    let target = Target {
        url: s.amqp.url.clone(),
        exchange: names.commands_exchange(),
        results_queue: names.events_queue(),
        names,
        terminal: terminal_event,
    };
    let processes = fleet.processes();
    let cpu = usage::CpuMeter::start(&processes)?;
    let services = usage::CpuMeter::shared();
    let callbacks_before = fleet.sandbox_stats().await?.callbacks.attempts;
    // A process that dies mid-run ends the run at once, named.
    let died = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Some((role, _)) = processes.iter().find(|(_, pid)| !usage::alive(*pid)) {
                return role.clone();
            }
        }
    };
    let timeout = Duration::from_secs(opts.timeout_seconds);
    let timings = tokio::select! {
        t = load::drive(&target, messages.clone(), pacing, timeout) => t?,
        role = died => anyhow::bail!(
            "the {role} process exited during the run (its log: {}/{role}.log)",
            fleet.logs.display()
        ),
    };
    let processes = cpu.finish()?;
    let (bench_cpu_ms, shared_services) = usage::split_bench(services.finish()?);
    let callbacks = fleet.sandbox_stats().await?.callbacks.attempts - callbacks_before;
    let arrivals = fleet.arrivals().await?;

    let n = messages.len();
    let seconds = timings.elapsed.as_secs_f64();
    let commands_per_second = timings.done.len() as f64 / seconds;
    let mut first_arrival: HashMap<&str, u64> = HashMap::new();
    for a in &arrivals {
        let at = first_arrival.entry(&a.payment_id).or_insert(a.arrived_us);
        *at = (*at).min(a.arrived_us);
    }
    let (mut latency, mut overhead) = (Vec::new(), Vec::new());
    let mut terminal_by_status = BTreeMap::new();
    for (m, &published) in messages.iter().zip(&timings.published_us) {
        if let Some(&(done, status)) = timings.done.get(&m.key) {
            latency.push(done.saturating_sub(published));
            *terminal_by_status.entry(status).or_default() += 1;
        }
        if let Some(&arrived) = first_arrival.get(m.payment_id.as_str()) {
            overhead.push(arrived.saturating_sub(published));
        }
    }
    let is_worker = |r: &str| r.starts_with("worker");
    let has_gateway = processes.iter().any(|p| p.role == "gateway");
    let in_flight_bound = (opts.provider_latency_ms > 0)
        .then(|| (workers * opts.in_flight) as f64 / (opts.provider_latency_ms as f64 / 1000.0));
    Ok(FleetRun {
        nodes,
        workers,
        commands: n,
        terminal: timings.done.len(),
        terminal_by_status,
        seconds,
        commands_per_second,
        ratio_to_ceiling: commands_per_second / ceiling.messages_per_second,
        ratio_to_in_flight_bound: in_flight_bound.map(|b| commands_per_second / b),
        latency: Percentiles::of_micros(latency),
        overhead: Percentiles::of_micros(overhead),
        provider_peak_concurrent: peak_concurrent(&arrivals),
        worker_cpu_us_per_command: usage::cpu_us_per(&processes, "worker", n as u64),
        gateway_cpu_us_per_callback: has_gateway
            .then(|| usage::cpu_us_per(&processes, "gateway", callbacks)),
        callbacks,
        worker_peak_rss_mib: processes
            .iter()
            .filter(|p| is_worker(&p.role))
            .map(|p| p.peak_rss_mib)
            .fold(0.0, f64::max),
        broker_cpu_us_per_command: usage::cpu_us_per(
            &shared_services,
            nodes.broker_role(),
            n as u64,
        ),
        redis_cpu_us_per_command: usage::cpu_us_per(&shared_services, nodes.redis_role(), n as u64),
        processes,
        shared_services,
        bench_cpu_ms,
        logs: fleet.logs.display().to_string(),
    })
}

/// Most requests open at once, from their arrival and answer times.
fn peak_concurrent(arrivals: &[payfleet_sim::arrivals::Arrival]) -> usize {
    let mut edges: Vec<(u64, i64)> = arrivals
        .iter()
        .flat_map(|a| [(a.arrived_us, 1), (a.answered_us, -1)])
        .collect();
    // At equal times, answers first: a request answered as another arrives is not both.
    edges.sort_unstable();
    let (mut open, mut peak) = (0i64, 0i64);
    for (_, step) in edges {
        open += step;
        peak = peak.max(open);
    }
    peak as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use payfleet_sim::arrivals::Arrival;

    #[test]
    fn peak_concurrency_counts_overlaps_only() {
        let a = |arrived_us, answered_us| Arrival {
            payment_id: String::new(),
            arrived_us,
            answered_us,
        };
        assert_eq!(peak_concurrent(&[]), 0);
        assert_eq!(peak_concurrent(&[a(0, 10), a(10, 20), a(20, 30)]), 1);
        assert_eq!(
            peak_concurrent(&[a(0, 10), a(5, 20), a(6, 7), a(15, 30)]),
            3
        );
    }

    #[test]
    fn only_terminal_events_count() {
        let event =
            |status: &str| format!(r#"{{"version":1,"idempotency_key":"k1","status":"{status}"}}"#);
        assert_eq!(
            terminal_event(event("succeeded").as_bytes()),
            Some(("k1".into(), "succeeded"))
        );
        assert_eq!(terminal_event(event("accepted").as_bytes()), None);
        assert_eq!(terminal_event(b"not json"), None);
    }
}
