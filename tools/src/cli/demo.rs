//! `payfleet demo`: sandbox, gateway and workers in one process, a varied batch of
//! HomeBank payouts (some succeed, some decline, some invalid, some published twice),
//! and a verdict: every command in exactly one terminal state, nothing paid twice, no
//! outcome the sandbox's executions contradict.

use super::send::Planned;
use crate::local::{EventTap, LocalFleet, isolated};
use crate::settings::FleetSettings;
use payfleet::contract::IdempotencyKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Distinct commands to publish (duplicates come on top).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Workers to run.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for every terminal event.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub commands: usize,
    pub published: usize,
    pub terminal: BTreeMap<&'static str, usize>,
    pub deferred_or_pending: usize,
    pub without_terminal_event: usize,
    pub with_several_terminal_events: usize,
    pub with_unexpected_outcome: usize,
    pub payouts_executed_twice: usize,
    /// Commands reported `declined`, `failed` or `rejected` whose money moved at the
    /// sandbox, or `succeeded` whose money never did.
    pub false_outcomes: usize,
    pub duplicate_submissions_refused: u64,
    /// The Banks of India share of the commands.
    pub banks_of_india: super::demo_india::Report,
    pub elapsed_seconds: f64,
    pub commands_per_second: f64,
    pub ok: bool,
}

pub async fn run(settings: FleetSettings, args: Args) -> anyhow::Result<ExitCode> {
    let mut settings = isolated(settings, "payfleet-demo");
    settings.sandbox.callback_delay_ms = 50;
    let (clock_offset_ms, window_opens) = super::demo_india::clock(super::demo_india::OPENS_IN);
    settings.ecommpay.clock_offset_ms = clock_offset_ms;
    settings.sandbox.clock_offset_ms = clock_offset_ms;
    let fleet = LocalFleet::start(settings, args.workers.max(1)).await?;
    let tap = EventTap::start(&fleet).await?;
    let (conn, publisher) = fleet.publisher().await?;
    let run_id = &fleet.settings.amqp.namespace[fleet.settings.amqp.namespace.len() - 6..];
    let mix = super::mix::Mix::plan(run_id, args.count);
    let started = Instant::now();
    let wait = Duration::from_secs(args.timeout);
    let driven = mix
        .drive(&publisher, &tap, window_opens, wait, &Default::default())
        .await?;
    let (published, mut india_report) = (driven.publishes, driven.india);
    let planned: Vec<Planned> = mix.planned().cloned().collect();
    let keys: Vec<IdempotencyKey> = planned.iter().map(|p| p.key.clone()).collect();
    tap.wait_terminal(&keys, wait).await;
    let elapsed = started.elapsed().as_secs_f64();
    // Give late duplicates a moment to show up before judging.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let by_key = tap.terminal_by_key();
    super::demo_india::explain(&mut india_report, &tap, &mix.india);
    let stats = fleet.sandbox.stats();
    let ledger = super::ledger::Ledger::new(&planned, &tap.events(), &stats.executed);
    let false_outcomes = ledger.false_outcomes(&by_key).count;
    let mut terminal: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut missing, mut several, mut unexpected) = (0, 0, 0);
    for p in &planned {
        match by_key.get(&p.key).map(Vec::as_slice) {
            None | Some([]) => missing += 1,
            Some([one]) => {
                *terminal.entry(one.status.as_str()).or_default() += 1;
                if one.status != p.expect {
                    unexpected += 1;
                }
            }
            Some(_) => several += 1,
        }
    }
    let summary = Summary {
        commands: planned.len(),
        published,
        terminal,
        deferred_or_pending: 0,
        without_terminal_event: missing,
        with_several_terminal_events: several,
        with_unexpected_outcome: unexpected,
        payouts_executed_twice: stats.executed_more_than_once.len(),
        false_outcomes,
        duplicate_submissions_refused: stats.duplicate_submissions_refused,
        banks_of_india: india_report,
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        commands_per_second: (planned.len() as f64 / elapsed * 10.0).round() / 10.0,
        ok: missing == 0
            && several == 0
            && unexpected == 0
            && false_outcomes == 0
            && stats.executed_more_than_once.is_empty(),
    };
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    fleet.stop().await?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(s: &Summary) {
    println!(
        "payfleet demo: {} commands ({} publishes)",
        s.commands, s.published
    );
    println!("{:<32} {:>8}", "terminal status", "count");
    for (status, n) in &s.terminal {
        println!("{status:<32} {n:>8}");
    }
    for (label, n) in [
        ("without a terminal event", s.without_terminal_event),
        (
            "with several terminal events",
            s.with_several_terminal_events,
        ),
        ("with an unexpected outcome", s.with_unexpected_outcome),
        ("payouts executed twice", s.payouts_executed_twice),
        ("false outcomes", s.false_outcomes),
    ] {
        println!("{label:<32} {n:>8}");
    }
    println!(
        "{:<32} {:>8}",
        "duplicates refused by provider", s.duplicate_submissions_refused
    );
    println!("{:<32} {:>8.3}", "elapsed seconds", s.elapsed_seconds);
    println!(
        "{:<32} {:>8.1}",
        "commands per second", s.commands_per_second
    );
    let india = &s.banks_of_india;
    println!(
        "Banks of India: {} purchases ({} completed or declined at the bank page by a simulated customer), {} payouts, {} refunds",
        india.purchases, india.completed_at_the_bank, india.payouts, india.refunds
    );
    println!(
        "deferred payouts: {}: {}",
        india.deferred_payouts, india.note
    );
    println!("verdict: {}", if s.ok { "OK" } else { "FAILED" });
}
