//! `payfleet bench`: throughput, latency, overhead, CPU and memory of a real fleet,
//! against the broker ceiling measured in the same run (the logic is in `crate::bench`).

use crate::bench::{self, Mix, Options, Report, Services};
use crate::settings::FleetSettings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Commands per run (and messages through the broker ceiling).
    #[arg(long, default_value_t = 5000)]
    commands: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Runs one fleet per worker count, e.g. `1,2,4` (overrides --workers).
    #[arg(long, value_delimiter = ',')]
    scaling: Vec<usize>,
    /// Delay of every provider answer at the sandbox, in ms.
    #[arg(long, default_value_t = 0)]
    provider_latency: u64,
    /// Deliveries the broker may push to a worker before an ack (default: amqp.prefetch).
    #[arg(long)]
    prefetch: Option<u16>,
    /// Commands a worker processes at once (default: worker.max_in_flight).
    #[arg(long)]
    in_flight: Option<usize>,
    /// Publish at this fixed rate (commands/s, open loop) instead of as fast as the
    /// fleet finishes them (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Closed loop: commands published and not yet terminal (default: 2 × workers ×
    /// in-flight).
    #[arg(long, conflicts_with = "rate")]
    outstanding: Option<usize>,
    /// Methods to publish, in turn, comma-separated (known: homebank-payout,
    /// india-payout).
    #[arg(long, default_value = "homebank-payout")]
    mix: Mix,
    /// Where the gateway and the sandbox run (workers are always processes).
    #[arg(long, value_enum, default_value_t = Services::Processes)]
    services: Services,
    /// Seconds to wait for every terminal event of one run.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also measure on the local RabbitMQ cluster and Redis Cluster of `scripts/cluster`
    /// (started if it is not whole; queues with 3 replicas): a ceiling on each, then
    /// each worker count on the single nodes, then on the cluster.
    #[arg(long)]
    cluster: bool,
}

pub async fn run(settings: FleetSettings, args: Args) -> anyhow::Result<ExitCode> {
    if args.commands == 0 {
        anyhow::bail!("--commands must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        anyhow::bail!("--rate must be greater than 0");
    }
    let workers = match args.scaling.is_empty() {
        true => vec![args.workers],
        false => args.scaling,
    };
    if workers.contains(&0) {
        anyhow::bail!("worker counts must be at least 1");
    }
    let opts = Options {
        commands: args.commands,
        workers,
        provider_latency_ms: args.provider_latency,
        prefetch: args.prefetch.unwrap_or(settings.amqp.prefetch),
        in_flight: args.in_flight.unwrap_or(settings.worker.max_in_flight),
        rate: args.rate,
        outstanding: args.outstanding,
        mix: args.mix,
        services: args.services,
        timeout_seconds: args.timeout,
    };
    let cluster = match args.cluster {
        true => {
            let cluster = super::cluster::Cluster::locate()?;
            cluster.up().await?;
            let mut on_cluster = settings.clone();
            cluster.point(&mut on_cluster).await?;
            Some(on_cluster)
        }
        false => None,
    };
    let report = bench::run(settings, cluster, opts).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(r: &Report) {
    let o = &r.options;
    println!(
        "payfleet bench: {} commands of {}, provider latency {} ms, prefetch {}, in-flight {}, {:?}, services {:?}",
        o.commands, o.mix, o.provider_latency_ms, o.prefetch, o.in_flight, r.pacing, o.services
    );
    println!(
        "machine: {} cores, load average {}",
        r.machine.cores, r.machine.load_average
    );
    for (label, c) in [
        ("", Some(&r.ceiling)),
        ("cluster ", r.cluster_ceiling.as_ref()),
    ] {
        let Some(c) = c else { continue };
        println!(
            "{label}broker ceiling: {} messages of {} bytes in {:.2} s = {:.0} msg/s, RabbitMQ CPU {:.0} µs/message, bench process CPU {:.0} ms",
            c.messages,
            c.message_bytes,
            c.seconds,
            c.messages_per_second,
            c.broker_cpu_us_per_message,
            c.bench_cpu_ms
        );
        println!(
            "{label}broker ceiling latency (publish → relayed result, two hops) p50/p95/p99/max ms: {:.1}/{:.1}/{:.1}/{:.1}",
            c.latency.p50_ms, c.latency.p95_ms, c.latency.p99_ms, c.latency.max_ms
        );
    }
    println!();
    type Cell<'a> = &'a dyn Fn(&bench::FleetRun) -> String;
    let rows: [(&str, Cell); 18] = [
        ("nodes", &|f| format!("{:?}", f.nodes).to_lowercase()),
        ("terminal / commands", &|f| {
            format!("{}/{}", f.terminal, f.commands)
        }),
        ("commands/s", &|f| format!("{:.0}", f.commands_per_second)),
        ("÷ broker ceiling", &|f| {
            format!("{:.1}%", f.ratio_to_ceiling * 100.0)
        }),
        ("÷ in-flight/latency", &|f| {
            f.ratio_to_in_flight_bound
                .map_or("-".into(), |x| format!("{:.1}%", x * 100.0))
        }),
        ("latency p50/p95 ms", &|f| {
            format!("{:.1}/{:.1}", f.latency.p50_ms, f.latency.p95_ms)
        }),
        ("latency p99/max ms", &|f| {
            format!("{:.1}/{:.1}", f.latency.p99_ms, f.latency.max_ms)
        }),
        ("overhead p50/p95 ms", &|f| {
            format!("{:.1}/{:.1}", f.overhead.p50_ms, f.overhead.p95_ms)
        }),
        ("overhead p99/max ms", &|f| {
            format!("{:.1}/{:.1}", f.overhead.p99_ms, f.overhead.max_ms)
        }),
        ("provider peak in flight", &|f| {
            f.provider_peak_concurrent.to_string()
        }),
        ("worker CPU µs/command", &|f| {
            format!("{:.0}", f.worker_cpu_us_per_command)
        }),
        ("gateway CPU µs/callback", &|f| {
            f.gateway_cpu_us_per_callback
                .map_or("-".into(), |x| format!("{x:.0}"))
        }),
        ("worker peak RSS MiB", &|f| {
            format!("{:.1}", f.worker_peak_rss_mib)
        }),
        ("RabbitMQ CPU µs/command", &|f| {
            format!("{:.0}", f.broker_cpu_us_per_command)
        }),
        ("Redis CPU µs/command", &|f| {
            format!("{:.0}", f.redis_cpu_us_per_command)
        }),
        ("bench process CPU ms", &|f| {
            format!("{:.0}", f.bench_cpu_ms)
        }),
        ("callbacks", &|f| f.callbacks.to_string()),
        ("seconds", &|f| format!("{:.2}", f.seconds)),
    ];
    print!("{:<26}", "workers");
    for f in &r.runs {
        print!("{:>16}", f.workers);
    }
    println!();
    for (label, cell) in rows {
        print!("{label:<26}");
        for f in &r.runs {
            print!("{:>16}", cell(f));
        }
        println!();
    }
    for f in &r.runs {
        for p in f.processes.iter().chain(&f.shared_services) {
            println!(
                "  {} workers: {:<10} pid {:<8} CPU {:>9.1} ms  peak RSS {:>6.1} MiB",
                f.workers, p.role, p.pid, p.cpu_ms, p.peak_rss_mib
            );
        }
    }
    println!(
        "(RabbitMQ and Redis are shared with the rest of the machine: their CPU is an upper bound)"
    );
    println!("verdict: {}", if r.ok { "OK" } else { "INCOMPLETE" });
}
