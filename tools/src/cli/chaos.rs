//! `payfleet chaos`: the money-safety proof anyone can repeat. Runs worker processes, a
//! gateway, a reconciler and the sandbox (with faults on) as separate processes on the
//! local RabbitMQ and Redis; publishes the demo's mix over every method and operation
//! (with its bank-page customers and 3-D Secure confirmations); kill -9's a random worker every
//! few seconds and restarts it; restarts RabbitMQ once and Redis once (losing all its
//! data); waits for quiescence and prints one JSON verdict, which holds every command's
//! outcome against the money the sandbox saw move. With `--cluster`, the same on the
//! local RabbitMQ cluster and Redis Cluster, whose nodes it kills instead
//! ([`super::chaos_cluster`]).

use super::chaos_cluster::ClusterChaos;
use super::chaos_verdict::{Verdict, awaiting_operator, sandbox_stats};
use super::cluster::Cluster;
use super::ledger::Ledger;
use super::mix::{Mix, PacedSink};
use super::processes::{Proc, child_env, free_port, restart_broker, restart_redis, wait_http};
use crate::local::{EventTap, isolated};
use crate::settings::FleetSettings;
use payfleet::bus::{self, Names, PublisherLink, Shape};
use payfleet::contract::{IdempotencyKey, ProviderName};
use payfleet::telemetry::{Metrics, Readiness};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Distinct commands to publish (some are published twice on top).
    #[arg(long, default_value_t = 5000)]
    commands: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Pause between two kill -9's of a random worker.
    #[arg(long, default_value_t = 3000)]
    kill_every_ms: u64,
    /// Stop killing after this many kills (default: keep killing until 90% are done).
    #[arg(long)]
    max_kills: Option<usize>,
    /// Restart RabbitMQ once mid-run (`rabbitmqctl stop_app` / `start_app`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    restart_broker: bool,
    /// Restart Redis once mid-run, losing everything it held.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    restart_redis: bool,
    /// Inject provider faults, lost, late and duplicated callbacks and the providers'
    /// documented answers a client must not take at face value.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    faults: bool,
    /// Commands published per second (so the run lasts long enough for the chaos;
    /// default 150, 50 with --cluster, whose node failures must land while commands
    /// still flow).
    #[arg(long)]
    rate: Option<u32>,
    /// Make Redis unreachable for the fleet this long once mid-run (0: never). Redis
    /// keeps running and keeps its data; the path to it is cut.
    #[arg(long, default_value_t = 150)]
    redis_outage_secs: u64,
    /// Mix in what a hostile publisher sends (card data where it does not belong, a
    /// card number as the key, out-of-range numbers, a forged delivery count, 20 KiB of
    /// headers) and scan everything payfleet wrote for card numbers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    hostile: bool,
    /// Seconds to wait for quiescence before judging.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Run on the local RabbitMQ cluster and Redis Cluster of `scripts/cluster`
    /// (started if it is not whole, left whole), each queue with 3 replicas: instead of
    /// the broker restart, the Redis outage and the Redis restart, kill -9 the RabbitMQ
    /// node leading the commands queue, later a Redis primary, and start each again.
    #[arg(long)]
    cluster: bool,
}

/// How long after the start the provider's payout window opens: payouts published
/// before are held (deferred) until then.
const WINDOW_OPENS_IN: Duration = Duration::from_secs(5);

/// Open commands looked up in Redis each round once the publisher is done, at most.
const AWAITING_LOOKUPS: usize = 500;

pub async fn run(mut settings: FleetSettings, args: Args) -> anyhow::Result<ExitCode> {
    if !args.cluster {
        return run_on(settings, args, None).await;
    }
    let cluster = Arc::new(Cluster::locate()?);
    cluster.up().await?;
    cluster.point(&mut settings).await?;
    let ran = run_on(settings, args, Some(cluster.clone())).await;
    // Whatever ended the run, no node is left down.
    if !cluster.heal().await {
        eprintln!("chaos: the cluster is not whole (scripts/cluster status)");
    }
    ran
}

async fn run_on(
    settings: FleetSettings,
    args: Args,
    cluster: Option<Arc<Cluster>>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut s = isolated(settings, "payfleet-chaos");
    s.reconciler.time_scale = 0.005;
    s.reconciler.interval_ms = 500;
    s.worker.retry_delays_ms = vec![250, 1000, 3000, 8000];
    s.worker.max_attempts = 10;
    s.worker.lease_ms = 5000;
    s.ecommpay.request_timeout_ms = 2000;
    s.epay.request_timeout_ms = 2000;
    // Banks of India payouts: the provider's clock starts just before Monday's window
    // opens, so the first few are held (deferred) and the rest go at once.
    let (clock_offset_ms, window_opens) = super::demo_india::clock(WINDOW_OPENS_IN);
    s.ecommpay.clock_offset_ms = clock_offset_ms;
    s.sandbox.clock_offset_ms = clock_offset_ms;
    // The simulated Gate declines a purchase whose customer never came at the same
    // scaled threshold time the reconciler judges it by.
    s.sandbox.india_sale_threshold_ms =
        (s.sandbox.india_sale_threshold_ms as f64 * s.reconciler.time_scale) as u64;
    s.sandbox.callback_delay_ms = 100;
    s.sandbox.callback_retry_ms = vec![500, 1000, 2000];
    s.redis.retention_ms = 6 * 3_600_000;
    let names = Names::new(&s.amqp.namespace);
    let conn = bus::connect(&s.amqp.url, "payfleet-chaos").await?;
    bus::declare(&conn, &names, &Shape::of(&s)).await?;
    let _ = conn.close(200, "declared".into()).await;

    let logs = std::env::temp_dir().join(&s.amqp.namespace);
    std::fs::create_dir_all(&logs)?;
    let (sandbox_port, gateway_port, gateway_ops_port) = (free_port()?, free_port()?, free_port()?);
    let mut env = child_env(&s, sandbox_port, gateway_port, gateway_ops_port);
    // The relay stands in front of one Redis; a cluster's clients follow its topology
    // to every node.
    let relay = if args.redis_outage_secs > 0 && cluster.is_none() {
        let relay = super::outage::Relay::start(6379).await?;
        let local = "redis://127.0.0.1:6379";
        anyhow::ensure!(
            !s.redis.cluster && s.redis.url.first().starts_with(local),
            "--redis-outage-secs cuts the path to the local Redis at 127.0.0.1:6379 only"
        );
        let through =
            s.redis
                .url
                .first()
                .replacen(local, &format!("redis://127.0.0.1:{}", relay.port), 1);
        for (name, value) in &mut env {
            if name.ends_with("REDIS__URL") {
                *value = through.clone();
            }
        }
        Some(relay)
    } else {
        None
    };
    let proc = |name: &str, args: &[&str]| Proc {
        name: name.to_owned(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env.clone(),
        log: logs.join(format!("{name}.log")),
        child: None,
    };
    // The sandbox and the gateway listen on ports picked (and freed) here: they bind
    // them before any other process takes an ephemeral port that could be the same.
    let mut services = vec![proc("sandbox", &["sandbox"]), proc("gateway", &["gateway"])];
    for p in &mut services {
        p.start()?;
    }
    wait_http(&format!("http://127.0.0.1:{sandbox_port}/healthz")).await?;
    wait_http(&format!("http://127.0.0.1:{gateway_ops_port}/healthz")).await?;
    // The reconciler's metrics on a known port: the cluster run reads its delay queues'
    // canaries there.
    let reconciler_ops_port = free_port()?;
    let mut reconciler = proc("reconciler", &["reconciler"]);
    reconciler.env.push((
        "PAYFLEET__RECONCILER__OPS_LISTEN".into(),
        format!("127.0.0.1:{reconciler_ops_port}"),
    ));
    services.push(reconciler);
    services.last_mut().expect("pushed").start()?;
    let mut workers: Vec<Proc> = (0..args.workers.max(1))
        .map(|i| {
            let name = format!("worker-{i}");
            proc(&name, &["worker", "--name", &name])
        })
        .collect();
    for w in &mut workers {
        w.start()?;
    }
    if args.faults {
        reqwest::Client::new()
            .put(format!("http://127.0.0.1:{sandbox_port}/sandbox/faults"))
            .json(&super::chaos_faults::chaos_faults())
            .send()
            .await?
            .error_for_status()?;
    }

    let tap = EventTap::on_queue(&s.amqp.url, &names.events_queue()).await?;
    let run_id = &s.amqp.namespace[s.amqp.namespace.len() - 6..];
    let mix = Arc::new(Mix::plan(run_id, args.commands));
    let planned: Vec<IdempotencyKey> = mix.planned().map(|p| p.key.clone()).collect();
    let sink = Arc::new(PacedSink::new(
        PublisherLink::new(
            &s.amqp.url,
            "payfleet-chaos-publisher",
            names.clone(),
            Arc::new(Metrics::new("chaos")),
            Readiness::default(),
        ),
        args.rate
            .unwrap_or(if cluster.is_some() { 50 } else { 150 }),
    ));
    let abandoned: Arc<super::send::Abandoned> = Arc::default();
    let hostile = if args.hostile {
        super::hostile::commands(run_id)
    } else {
        Vec::new()
    };
    // Frames as large as the broker takes: payfleet's own 8 KiB could not carry the
    // oversize headers.
    let big_frames = s.amqp.url.with_query("frame_max=131072");
    let hostile_link = PublisherLink::new(
        &big_frames,
        "payfleet-chaos-hostile",
        names.clone(),
        Arc::new(Metrics::new("chaos")),
        Readiness::default(),
    );
    for h in &hostile {
        hostile_link
            .get()
            .await?
            .publish_command(h.routing_key, h.body.as_bytes(), h.headers.clone())
            .await?;
    }
    hostile_link.close().await;
    let publisher = {
        let (mix, sink, tap) = (mix.clone(), sink.clone(), tap.clone());
        let abandoned = abandoned.clone();
        let timeout = Duration::from_secs(args.timeout);
        tokio::spawn(async move {
            let driven = mix
                .drive(&*sink, &tap, window_opens, timeout, &abandoned)
                .await;
            sink.link.close().await;
            driven
        })
    };

    let progress = |tap: &EventTap| {
        let done = tap.terminal_by_key();
        planned.iter().filter(|k| done.contains_key(*k)).count() as f64
            / planned.len().max(1) as f64
    };
    // Published keys with no terminal event yet.
    let unended = |tap: &EventTap| {
        let done = tap.terminal_by_key();
        let mut open: Vec<IdempotencyKey> = sink.published().into_iter().collect();
        open.retain(|k| !done.contains_key(k));
        open
    };
    let store = payfleet::app::connect_store(&s).await?;
    let (mut awaiting, mut looked_up) = (HashMap::new(), Instant::now());
    let (mut kills, mut broker_restarts, mut redis_restarts) = (0, 0, 0);
    let mut outage: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut next_kill = Instant::now() + Duration::from_millis(args.kill_every_ms);
    let mut publisher = Some(publisher);
    let mut driven = None;
    let mut cluster_chaos = cluster.map(|c| {
        let queue = names.command_queue(ProviderName::Ecommpay);
        ClusterChaos::new(c, started, queue, reconciler_ops_port, names.clone())
    });
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let p = progress(&tap);
        if publisher.as_ref().is_some_and(|h| h.is_finished()) {
            driven = Some(publisher.take().expect("checked").await??);
        }
        // Done once everything published has ended or waits for an operator (a 3-D
        // Secure confirmation is not published for a transfer that ended without asking
        // for it).
        let open = unended(&tap);
        if open.len() <= AWAITING_LOOKUPS && looked_up.elapsed() > Duration::from_secs(2) {
            awaiting = awaiting_operator(&store, &open).await;
            looked_up = Instant::now();
            *abandoned.lock().expect("abandoned lock") = awaiting.keys().cloned().collect();
        }
        let settled = cluster_chaos.as_ref().is_none_or(ClusterChaos::settled);
        if publisher.is_none() && open.iter().all(|k| awaiting.contains_key(k)) && settled {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        let killing = (p < 0.9 || publisher.is_some()) && args.max_kills.is_none_or(|m| kills < m);
        if killing && Instant::now() >= next_kill {
            let i = rand::random_range(0..workers.len());
            workers[i].kill9().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            workers[i].start()?;
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(args.kill_every_ms);
        }
        // The restarts come after the first kill, so every run has both.
        let killed_first = kills > 0 || args.max_kills == Some(0);
        if let Some(c) = cluster_chaos.as_mut() {
            c.step(p, killed_first).await?;
            continue;
        }
        if args.restart_broker && broker_restarts == 0 && p >= 0.3 && killed_first {
            eprintln!("chaos: restarting RabbitMQ");
            restart_broker(&s.amqp.url).await?;
            broker_restarts += 1;
        }
        if let Some(relay) = relay
            .as_ref()
            .filter(|_| (broker_restarts > 0 || !args.restart_broker) && p >= 0.45)
        {
            match outage {
                None => {
                    eprintln!("chaos: Redis unreachable for {} s", args.redis_outage_secs);
                    relay.cut(true);
                    outage = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= Duration::from_secs(args.redis_outage_secs) => {
                    relay.cut(false);
                }
                Some(_) => {}
            }
        }
        let outage_over =
            outage.is_some_and(|at| at.elapsed() >= Duration::from_secs(args.redis_outage_secs));
        if args.restart_redis && redis_restarts == 0 && p >= 0.6 && (relay.is_none() || outage_over)
        {
            eprintln!("chaos: restarting Redis (everything in it is lost)");
            restart_redis(s.redis.url.first()).await?;
            redis_restarts += 1;
        }
    }
    if let Some(unfinished) = publisher {
        unfinished.abort();
    }
    let cluster_report = match cluster_chaos {
        Some(c) => Some(c.finish().await?),
        None => None,
    };
    // Late duplicates have a moment to show up before the verdict.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = sandbox_stats(sandbox_port).await?;
    let published = sink.published();
    let keys: Vec<&IdempotencyKey> = planned.iter().filter(|k| published.contains(*k)).collect();
    let events = tap.events();
    let ledger = Ledger::new(
        mix.planned().filter(|p| published.contains(&p.key)),
        &events,
        &stats.executed,
    );
    // `method.operation` of each command, from any of its events (one published
    // from a callback after Redis lost the record carries neither).
    let mut kinds: HashMap<&IdempotencyKey, String> = HashMap::new();
    for e in &events {
        if let (Some(m), Some(o)) = (e.method, e.operation) {
            kinds
                .entry(&e.idempotency_key)
                .or_insert_with(|| format!("{}.{}", m.as_str(), o.as_str()));
        }
    }
    let by_key = tap.terminal_by_key();
    let false_outcomes = ledger.false_outcomes(&by_key);
    let mut india = driven.map(|d| d.india).unwrap_or_default();
    super::demo_india::explain(&mut india, &tap, &mix.india);
    let mut terminal: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut terminal_by_method: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let (mut with_terminal, mut conflicting, mut under_several_ids) = (0, 0, 0);
    for k in &keys {
        if ledger.executions(k).len() > 1 {
            under_several_ids += 1;
        }
        let Some(events) = by_key.get(*k) else {
            continue;
        };
        with_terminal += 1;
        let statuses: BTreeSet<_> = events.iter().map(|e| e.status.as_str()).collect();
        if statuses.len() > 1 {
            conflicting += 1;
        }
        let first = &events[0];
        *terminal.entry(first.status.as_str()).or_default() += 1;
        let kind = kinds.get(*k).cloned().unwrap_or_else(|| "unparsed".into());
        *terminal_by_method
            .entry(kind)
            .or_default()
            .entry(first.status.as_str())
            .or_default() += 1;
    }
    // Everything payfleet wrote, for the card-data scan: metrics while the gateway
    // serves them, then events, dead letters, Redis and the logs.
    let mut written: Vec<(String, String)> = Vec::new();
    if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{gateway_ops_port}/metrics")).await {
        written.push(("gateway metrics".into(), r.text().await.unwrap_or_default()));
    }
    for w in &mut workers {
        w.terminate().await;
    }
    for p in services.iter_mut().rev() {
        p.terminate().await;
    }
    for e in &events {
        written.push((
            format!("event of {}", e.idempotency_key),
            serde_json::to_string(e)?,
        ));
    }
    let mut dead_letters = 0;
    let mut dead_letters_unexplained = 0;
    // Frames as large as the broker's: a dead letter may carry the oversize headers.
    if let Ok(conn) = bus::connect(&big_frames, "payfleet-chaos-cleanup").await {
        let ch = conn.create_channel().await?;
        dead_letters = bus::queue_depth(&ch, &names.dead())
            .await
            .unwrap_or_default();
        for (i, d) in super::hostile::dead_letters(&ch, &names.dead())
            .await
            .into_iter()
            .enumerate()
        {
            written.push((format!("dead letter {i}"), d));
        }
        // Only the hostile publications without a key payfleet may repeat belong there.
        let refused = hostile
            .iter()
            .filter(|h| h.expect == super::hostile::Expect::Refused);
        dead_letters_unexplained = (dead_letters as usize).saturating_sub(refused.count());
        let _ = bus::delete_all(&ch, &names, &s.worker.retry_delays_ms).await;
        let _ = conn.close(200, "bye".into()).await;
    }
    // Judged again now: one may have ended since, and a Redis restart loses notes.
    let awaiting = awaiting_operator(&store, &unended(&tap)).await;
    let awaiting_operator_keys = awaiting
        .iter()
        .take(10)
        .map(|(k, note)| {
            serde_json::json!({
                "key": k,
                "sandbox_executed": ledger.executions(k),
                "note": note,
            })
        })
        .collect();
    let mut lost_keys = Vec::new();
    let lost_now = |k: &&&IdempotencyKey| !by_key.contains_key(**k) && !awaiting.contains_key(**k);
    for k in keys.iter().filter(lost_now).take(10) {
        let seen: Vec<&str> = events
            .iter()
            .filter(|e| &e.idempotency_key == *k)
            .map(|e| e.status.as_str())
            .collect();
        lost_keys.push(serde_json::json!({
            "key": k,
            "events": seen,
            "sandbox_executed": ledger.executions(k),
            "record": format!("{:?}", store.record(k).await.ok().flatten()),
        }));
    }
    let lost = keys.len() - with_terminal - awaiting.len();
    for (i, entry) in super::hostile::redis_dump(&s.redis)
        .await?
        .into_iter()
        .enumerate()
    {
        written.push((format!("redis entry {i}"), entry));
    }
    written.extend(super::hostile::fleet_logs(&logs));
    let mut pans = super::hostile::hostile_pans();
    for p in mix.planned() {
        pans.extend(super::hostile::pans_in(&p.body));
    }
    let card_data_found = super::hostile::holding_cards(&written, &pans);
    let hostile_unanswered = super::hostile::unanswered(&hostile, &events);
    // Both nodes killed, and every node back.
    let cluster_ok = cluster_report
        .as_ref()
        .is_none_or(|c| c.whole_at_end && c.node_kills.len() == 2);
    let verdict = Verdict {
        commands_published: keys.len(),
        publishes: sink.publishes.load(Ordering::Relaxed),
        commands_with_terminal_event: with_terminal,
        awaiting_operator: awaiting.len(),
        awaiting_operator_keys,
        lost,
        lost_keys,
        dead_letters,
        keys_with_conflicting_terminal_statuses: conflicting,
        executed_more_than_once: stats.executed_more_than_once.len(),
        keys_executed_under_several_ids: under_several_ids,
        executions_no_command_names: ledger.unaccounted(),
        false_outcomes: false_outcomes.count,
        false_outcome_keys: false_outcomes.examples,
        duplicate_submissions_refused: stats.duplicate_submissions_refused,
        terminal,
        terminal_by_method,
        completed_at_the_bank: india.completed_at_the_bank,
        deferred_payouts: india.deferred_payouts,
        worker_kills: kills,
        broker_restarts,
        redis_restarts,
        redis_outage_seconds: outage.map_or(0, |_| args.redis_outage_secs),
        hostile_published: hostile.len(),
        hostile_unanswered: hostile_unanswered.clone(),
        dead_letters_unexplained,
        card_data_found: card_data_found.clone(),
        faults_injected: stats.faults,
        duration_seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        cluster: cluster_report,
        logs: logs.display().to_string(),
        ok: lost == 0
            && cluster_ok
            && conflicting == 0
            && stats.executed_more_than_once.is_empty()
            && under_several_ids == 0
            && false_outcomes.count == 0
            && hostile_unanswered.is_empty()
            && dead_letters_unexplained == 0
            && card_data_found.is_empty(),
    };
    println!("{}", serde_json::to_string(&verdict)?);
    Ok(if verdict.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
