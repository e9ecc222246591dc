//! Fleet-wide rate limits: real `payfleet worker` processes share one limit per
//! provider account through Redis, use most of it, and leave other accounts alone; the
//! sandbox's own per-second count of requests is the judge.

mod common;

use common::{TestFleet, payout, spawn_app_with};
use payfleet::contract::{EventStatus, IdempotencyKey};
use payfleet::ratelimit::{Decision, Global, Limit, RateKey, RateLimiter};
use payfleet_sim::limits::{LimitDoc, Limits};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::time::Duration;

/// Delay queues of these tests: a ladder of doublings, so a command deferred for a
/// while comes back to its slot in a few hops.
const DELAYS: &str = "250,500,1000,2000,4000,8000,16000,32000";
const DEFAULT_PROJECT: u64 = 198;
const SECOND_PROJECT: u64 = 199;

fn settings(label: &str) -> payfleet_tools::settings::FleetSettings {
    let mut s = common::settings(label);
    s.worker.retry_delays_ms = DELAYS.split(',').map(|d| d.parse().unwrap()).collect();
    s.sandbox.ecommpay_extra_project_ids = vec![SECOND_PROJECT];
    s
}

/// A payout for the named account (`None`: the default one).
fn payout_for(key: &str, account: Option<&str>) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&payout(key, 200000, "KZT", "1")).unwrap();
    if let Some(a) = account {
        body["account"] = a.into();
    }
    body.to_string()
}

/// Starts a `payfleet worker` process on the test's namespace with extra settings.
fn spawn_worker(app: &TestFleet, name: &str, extra: &[(&str, String)]) -> tokio::process::Child {
    let s = &app.fleet.settings;
    let secret = s.secrets.ecommpay().unwrap().expose_secret().to_owned();
    let mut cmd = common::worker_process(s, name);
    cmd.env("PAYFLEET__WORKER__RETRY_DELAYS_MS", DELAYS)
        .env(
            "PAYFLEET__ECOMMPAY__ACCOUNTS__SECOND__PROJECT_ID",
            SECOND_PROJECT.to_string(),
        )
        .env("PAYFLEET__ECOMMPAY__ACCOUNTS__SECOND__SECRET_KEY", &secret);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("the worker starts")
}

/// Stops worker processes together with SIGTERM; each must exit cleanly.
async fn stop_workers(workers: Vec<tokio::process::Child>) {
    let pids: Vec<String> = workers
        .iter()
        .map(|w| w.id().expect("running").to_string())
        .collect();
    let kill = std::process::Command::new("kill")
        .arg("-TERM")
        .args(&pids)
        .status()
        .unwrap();
    assert!(kill.success());
    for mut w in workers {
        let status = tokio::time::timeout(Duration::from_secs(20), w.wait())
            .await
            .expect("the worker stops")
            .unwrap();
        assert!(status.success(), "exit status {status:?}");
    }
}

fn limit_env(account: &str, per_second: u32, burst: u32) -> [(String, String); 2] {
    let base = format!("PAYFLEET__RATE_LIMIT__LIMITS__ECOMMPAY__{account}__ALL");
    [
        (format!("{base}__PER_SECOND"), per_second.to_string()),
        (format!("{base}__BURST"), burst.to_string()),
    ]
}

/// Waits for every key's terminal event and checks that each one succeeded.
async fn all_succeed(app: &TestFleet, keys: &[String], timeout: Duration) {
    let parsed: Vec<IdempotencyKey> = keys
        .iter()
        .map(|k| IdempotencyKey::parse(k.as_str()).unwrap())
        .collect();
    let done = app.events.wait_terminal(&parsed, timeout).await;
    let terminal = app.events.terminal_by_key();
    assert!(
        done,
        "{} of {} commands ended; sandbox: {:?}",
        terminal.len(),
        keys.len(),
        app.fleet.sandbox.stats().per_account_per_second
    );
    for k in &parsed {
        let statuses: Vec<EventStatus> = terminal[k].iter().map(|e| e.status).collect();
        assert!(
            statuses.iter().all(|s| *s == EventStatus::Succeeded),
            "{k}: {statuses:?}"
        );
    }
}

/// The per-second series of one account, and its rate over its full seconds (the
/// first and last second of a run are partial).
struct Series {
    seconds: BTreeMap<u64, u64>,
}

impl Series {
    fn of(app: &TestFleet, project: u64) -> Self {
        let stats = app.fleet.sandbox.stats();
        Series {
            seconds: stats
                .per_account_per_second
                .get(&project.to_string())
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn total(&self) -> u64 {
        self.seconds.values().sum()
    }

    fn busiest(&self) -> (u64, u64) {
        self.seconds
            .iter()
            .map(|(s, n)| (*s, *n))
            .max_by_key(|(_, n)| *n)
            .unwrap_or_default()
    }

    fn first(&self) -> u64 {
        *self.seconds.keys().next().expect("requests were made")
    }

    fn last(&self) -> u64 {
        *self.seconds.keys().next_back().expect("requests were made")
    }

    /// Requests per second over the full seconds of the run (a second without a
    /// request counts as 0).
    fn rate(&self) -> f64 {
        let (first, last) = (self.first(), self.last());
        assert!(
            last > first + 2,
            "the run is too short to measure: {:?}",
            self.seconds
        );
        let inner: u64 = (first + 1..last)
            .map(|s| self.seconds.get(&s).copied().unwrap_or(0))
            .sum();
        inner as f64 / (last - first - 1) as f64
    }
}

/// The tests of this file run one at a time: the first is a timing measurement, and
/// the others' workers would share its CPU.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The most commands seen parked in the delay queues at once.
static PARKED: std::sync::Mutex<u32> = std::sync::Mutex::new(0);

/// Samples the delay queues' depth (exact, by passive declare) until aborted.
async fn watch_delay_queues(app: &TestFleet) -> tokio::task::JoinHandle<()> {
    let conn = payfleet::bus::connect(&app.fleet.settings.amqp.url, "rl-watch")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let names = app.fleet.names();
    tokio::spawn(async move {
        let _keep = conn;
        loop {
            let mut total = 0;
            for ms in DELAYS.split(',') {
                let queue = names.delay(ms.parse().unwrap());
                total += payfleet::bus::queue_depth(&ch, &queue).await.unwrap();
            }
            {
                let mut most = PARKED.lock().unwrap();
                *most = (*most).max(total);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_share_each_accounts_limit_and_use_most_of_it() {
    // Limits low enough that three debug-built workers, the sandbox and the gateway
    // keep up on two slow cores: at 50/s and 20/s the backlog's deferrals starved them
    // (measured 41-44/s on 2026-11-29, before and after that day's changes alike).
    const LIMIT: u32 = 25;
    const BURST: u32 = 3;
    const SECOND_LIMIT: u32 = 10;
    const SECOND_BURST: u32 = 1;
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(settings("t-ratelimit"), 0).await;
    // Backlogs first, so the workers start saturated: 500 commands for the default
    // account (20 s at its limit) and 125 for the second (12.5 s at its own).
    let first: Vec<String> = (0..500).map(|i| format!("rl-a-{i}")).collect();
    let second: Vec<String> = (0..125).map(|i| format!("rl-b-{i}")).collect();
    for (a, b) in first
        .iter()
        .zip(second.iter().chain(std::iter::repeat(&String::new())))
    {
        app.publish(&payout_for(a, None)).await;
        if !b.is_empty() {
            app.publish(&payout_for(b, Some("second"))).await;
        }
    }
    let mut env: Vec<(&str, String)> = Vec::new();
    let limits = [
        limit_env("DEFAULT", LIMIT, BURST),
        limit_env("SECOND", SECOND_LIMIT, SECOND_BURST),
    ];
    for (k, v) in limits.iter().flatten() {
        env.push((k.as_str(), v.clone()));
    }
    env.push(("PAYFLEET__RATE_LIMIT__EXPECTED_WORKERS", "3".into()));
    // A few seconds' worth of the limits in flight, as the README advises for limited
    // accounts: with 512 each, the three debug-built workers spend their start parking
    // a herd of commands, and on this shared, loaded machine that starved their timers
    // (measured: 41-47/s instead of 50 in some runs).
    env.push(("PAYFLEET__AMQP__PREFETCH", "64".into()));
    env.push(("PAYFLEET__WORKER__MAX_IN_FLIGHT", "64".into()));
    let parked = watch_delay_queues(&app).await;
    let workers: Vec<_> = (0..3)
        .map(|i| spawn_worker(&app, &format!("rl-worker-{i}"), &env))
        .collect();
    let mut keys = first.clone();
    keys.extend(second.iter().cloned());
    all_succeed(&app, &keys, Duration::from_secs(180)).await;
    stop_workers(workers).await;
    parked.abort();
    let most_parked = *PARKED.lock().unwrap();
    // The backlog waited in delay queues, not in the workers' consumer slots.
    assert!(
        most_parked >= 100,
        "at most {most_parked} commands were parked at once"
    );

    let a = Series::of(&app, DEFAULT_PROJECT);
    let b = Series::of(&app, SECOND_PROJECT);
    eprintln!("default account per second: {:?}", a.seconds);
    eprintln!("second account per second: {:?}", b.seconds);
    // Each payout is one request; a status query would be counted too (and limited).
    assert!(a.total() >= first.len() as u64, "{}", a.total());
    assert!(b.total() >= second.len() as u64, "{}", b.total());
    let (at, most) = a.busiest();
    assert!(
        most <= u64::from(LIMIT + BURST),
        "second {at} saw {most} requests for the default account (limit {LIMIT} + burst {BURST})"
    );
    let (at, most) = b.busiest();
    assert!(
        most <= u64::from(SECOND_LIMIT + SECOND_BURST),
        "second {at} saw {most} requests for the second account (limit {SECOND_LIMIT} + burst {SECOND_BURST})"
    );
    let rate = a.rate();
    assert!(
        rate >= 0.9 * f64::from(LIMIT),
        "the default account ran at {rate:.1}/s, under 90% of {LIMIT}/s"
    );
    // The second account ran while the first was saturated, at its own limit.
    assert!(
        b.first() >= a.first() && b.last() < a.last(),
        "the second account's run ({}..{}) lies within the first's ({}..{})",
        b.first(),
        b.last(),
        a.first(),
        a.last()
    );
    let rate = b.rate();
    assert!(
        rate >= 0.9 * f64::from(SECOND_LIMIT),
        "the second account ran at {rate:.1}/s, under 90% of its {SECOND_LIMIT}/s"
    );
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_429_is_retried_after_its_retry_after_without_a_hot_loop() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app_with(settings("t-ratelimit-429"), 0).await;
    // No limit of payfleet's own: the sandbox throttles at 10/s.
    app.fleet.sandbox.limits.set(Limits(
        [(
            DEFAULT_PROJECT.to_string(),
            LimitDoc {
                per_second: 10,
                burst: 1,
            },
        )]
        .into(),
    ));
    let keys: Vec<String> = (0..60).map(|i| format!("rl-429-{i}")).collect();
    for k in &keys {
        app.publish(&payout_for(k, None)).await;
    }
    // Every 429 is logged as a warning: keep the test's output short.
    let quiet = [("PAYFLEET__TELEMETRY__LOG_LEVEL", "error".to_owned())];
    let worker = spawn_worker(&app, "rl-429-worker", &quiet);
    all_succeed(&app, &keys, Duration::from_secs(120)).await;
    stop_workers(vec![worker]).await;
    let stats = app.fleet.sandbox.stats();
    let throttled = stats.throttled.get("198").copied().unwrap_or(0);
    assert!(throttled > 0, "the sandbox never throttled: {stats:?}");
    // Each throttled command waits for Retry-After (1 s) before its next request, so
    // no second sees more requests than there are commands (plus the allowed ones).
    let series = Series::of(&app, DEFAULT_PROJECT);
    let (at, most) = series.busiest();
    assert!(
        most <= keys.len() as u64 + 10,
        "second {at} saw {most} requests: a hot loop"
    );
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_redis_gcra_reserves_a_burst_then_paces_and_spreads_deferrals() {
    let _serial = SERIAL.lock().await;
    let s = common::settings("t-gcra");
    let conn = payfleet::state::RedisConn::open(&s.redis).unwrap();
    let global = Global::new(conn, &s.redis.key_prefix);
    let key = RateKey::new(
        payfleet::contract::ProviderName::Ecommpay,
        Some("gcra"),
        "all",
    );
    // 10/s (100 ms apart), 3 at once, waits of up to 250 ms accepted.
    let limit = Limit {
        per_second: 10,
        burst: 3,
    };
    let max_wait = Duration::from_millis(250);
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(
            global
                .reserve(&key, limit, 1, max_wait, None)
                .await
                .unwrap(),
        );
    }
    use payfleet::ratelimit::Answer::{Defer, Reserved};
    let ms = |d: &Duration| d.as_millis() as i64;
    let near = |got: i64, want: i64| (got - want).abs() <= 40;
    for (i, a) in answers.iter().enumerate() {
        let ok = match (i, a) {
            (0..=2, Reserved(d)) => ms(d) == 0,
            (3, Reserved(d)) => near(ms(d), 100),
            (4, Reserved(d)) => near(ms(d), 200),
            // The next slot is 300 ms away: deferred, each one interval after the last,
            // asked back in time to reserve its slot within the longest wait.
            (5, Defer { after, .. }) => near(ms(after), 300 - 250),
            (6, Defer { after, .. }) => near(ms(after), 400 - 250),
            (7, Defer { after, .. }) => near(ms(after), 500 - 250),
            _ => false,
        };
        assert!(ok, "answer {i}: {a:?} (all: {answers:?})");
    }
    // Back early with its ticket, a request keeps its place; a new one queues behind.
    let Defer { ticket: last, .. } = answers[7] else {
        unreachable!()
    };
    let again = global
        .reserve(&key, limit, 1, max_wait, Some(last))
        .await
        .unwrap();
    assert!(
        matches!(again, Defer { ticket, .. } if ticket == last),
        "{again:?}"
    );
    let new = global
        .reserve(&key, limit, 1, max_wait, None)
        .await
        .unwrap();
    assert!(
        matches!(new, Defer { ticket, .. } if ticket == last + 100_000),
        "{new:?} after {last}"
    );
    // An epay call is two requests (token, then payment): it takes two slots.
    let pairs = RateKey::new(
        payfleet::contract::ProviderName::Epay,
        Some("gcra-pairs"),
        "all",
    );
    let limit = Limit {
        per_second: 10,
        burst: 4,
    };
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            global
                .reserve(&pairs, limit, 2, max_wait, None)
                .await
                .unwrap(),
        );
    }
    assert!(
        matches!(answers[..], [Reserved(a), Reserved(b), Reserved(c)]
            if ms(&a) == 0 && ms(&b) == 0 && near(ms(&c), 200)),
        "{answers:?}"
    );
}

#[tokio::test]
async fn without_redis_a_worker_keeps_to_its_share_after_a_grace_period() {
    let _serial = SERIAL.lock().await;
    let mut s = common::settings("t-rl-fallback").core.rate_limit;
    s.limits = [(
        "ecommpay".to_owned(),
        [(
            "default".to_owned(),
            [(
                "all".to_owned(),
                Limit {
                    per_second: 30,
                    burst: 3,
                },
            )]
            .into(),
        )]
        .into(),
    )]
    .into();
    s.expected_workers = 3;
    s.max_wait_ms = 1000;
    s.redis_timeout_ms = 200;
    s.redis_retry_ms = 1000;
    // Nothing listens on port 1: Redis is away.
    let nowhere = "redis://127.0.0.1:1/0".parse().unwrap();
    let away = || {
        Global::new(
            payfleet::state::RedisConn::to(&nowhere, false).unwrap(),
            "t",
        )
    };
    let key = RateKey::new(payfleet::contract::ProviderName::Ecommpay, None, "payment");
    let metrics = std::sync::Arc::new(payfleet::telemetry::Metrics::new("test"));

    // Within the grace period, nothing is sent on the local share.
    s.redis_grace_ms = 60_000;
    let limiter = RateLimiter::new(s.clone(), away(), metrics.clone());
    assert!(matches!(
        limiter.acquire(&key, 1, None).await,
        Decision::Defer { .. }
    ));

    // After it, the worker sends at its share: 30/s ÷ 3 workers = one per 100 ms.
    s.redis_grace_ms = 0;
    let limiter = RateLimiter::new(s, away(), metrics.clone());
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(2) {
        if let Decision::Go { .. } = limiter.acquire(&key, 1, None).await {
            sent += 1;
        }
    }
    assert!(
        (15..=23).contains(&sent),
        "{sent} requests in 2 s on a share of 10/s"
    );
    let text = metrics.render();
    assert!(
        text.contains(
            r#"payfleet_rate_limit_decisions_total{decision="fallback",provider="ecommpay"}"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_further_accounts_callbacks_are_verified_with_its_own_key() {
    let _serial = SERIAL.lock().await;
    let mut s = settings("t-rl-account-callback");
    s.ecommpay.accounts.insert(
        "second".to_owned(),
        payfleet::config::EcommpayAccount {
            project_id: SECOND_PROJECT,
        },
    );
    let key = b"the-second-projects-key".to_vec();
    s.secrets.ecommpay_accounts.insert(
        "second".to_owned(),
        String::from_utf8(key.clone()).unwrap().into(),
    );
    let app = spawn_app_with(s, 0).await;
    let mut body = common::payout_callback("rl-cb-1", "success", "0", "Success");
    body["project_id"] = SECOND_PROJECT.into();
    assert_eq!(app.callback(body.clone(), &key).await, 200);
    assert_eq!(app.callback(body, b"a-key-of-nobody").await, 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deferral_is_not_a_failed_attempt() {
    let _serial = SERIAL.lock().await;
    let mut s = settings("t-rl-attempts");
    // Two attempts per command, and a limit so tight that most commands are parked a
    // few times before their first request.
    s.worker.max_attempts = 2;
    s.rate_limit.max_wait_ms = 100;
    s.rate_limit.limits = [(
        "ecommpay".to_owned(),
        [(
            "default".to_owned(),
            [(
                "all".to_owned(),
                Limit {
                    per_second: 4,
                    burst: 1,
                },
            )]
            .into(),
        )]
        .into(),
    )]
    .into();
    let mut app = spawn_app_with(s, 0).await;
    // Nothing listens on port 1: every request fails before it leaves (not sent), so
    // each command makes exactly its two attempts, however often it was parked.
    app.fleet.settings.ecommpay.base_url = "http://127.0.0.1:1".into();
    app.fleet.add_worker().await.unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("rl-att-{i}")).collect();
    for k in &keys {
        app.publish(&payout_for(k, None)).await;
    }
    let mut claims = 0;
    for k in &keys {
        let event = app.terminal(k).await;
        assert_eq!(event.status, EventStatus::Failed, "{event:?}");
        let reason = event.reason.unwrap_or_default();
        assert!(reason.contains("after 2 attempts"), "{k}: {reason}");
        let rec = app
            .store()
            .await
            .record(&IdempotencyKey::parse(k.as_str()).unwrap())
            .await
            .unwrap()
            .expect("the record is kept");
        claims += rec.attempts;
    }
    // Claims beyond the two attempts each were returns from a deferral.
    assert!(
        claims > 2 * keys.len() as u32,
        "no command was deferred ({claims} claims)"
    );
    app.stop().await;
}

/// Issue 14, case 9: the reconciler's status queries take their slots from the
/// account's `status` class. Forty payouts whose callbacks are all lost come due at
/// once; the reconciler asks about each, never faster than the limit, and settles all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciler_status_queries_keep_to_the_accounts_status_limit() {
    const LIMIT: u32 = 4;
    const BURST: u32 = 1;
    const STATUS: &str = "POST /v2/payment/status";
    const PAYOUT: &str = "POST /v2/payment/cash-out-kz/homebank/payout";
    let _serial = SERIAL.lock().await;
    let mut s = settings("t-ratelimit-reconciler");
    // The payouts' basic time (15 minutes) becomes 1.8 s, their threshold 180 s.
    s.reconciler.time_scale = 0.002;
    s.reconciler.interval_ms = 100;
    let status = Limit {
        per_second: LIMIT,
        burst: BURST,
    };
    s.rate_limit.limits.insert(
        "ecommpay".into(),
        [("default".into(), [("status".into(), status)].into())].into(),
    );
    let app = spawn_app_with(s, 1).await;
    app.fleet.sandbox.set_faults(
        serde_json::from_value(serde_json::json!({"callbacks": {"loss_rate": 1.0}})).unwrap(),
    );
    let keys: Vec<String> = (0..40).map(|i| format!("rl-rec-{i}")).collect();
    for k in &keys {
        app.publish(&payout_for(k, None)).await;
    }
    let requests = |endpoint: &str| {
        let stats = app.fleet.sandbox.stats();
        stats.requests.get(endpoint).copied().unwrap_or(0)
    };
    let sent = tokio::time::timeout(Duration::from_secs(30), async {
        while requests(PAYOUT) < keys.len() as u64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(sent.is_ok(), "the payouts were not all sent");
    // Every request from the next full second on is a status query.
    let queries_from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    all_succeed(&app, &keys, Duration::from_secs(90)).await;
    let series = Series::of(&app, DEFAULT_PROJECT);
    let queried: Vec<(u64, u64)> = series
        .seconds
        .iter()
        .filter(|(s, _)| **s >= queries_from)
        .map(|(s, n)| (*s, *n))
        .collect();
    let total: u64 = queried.iter().map(|(_, n)| n).sum();
    assert!(total >= 30, "too few status queries measured: {queried:?}");
    assert!(
        queried.iter().all(|(_, n)| *n <= u64::from(LIMIT + BURST)),
        "a second saw more status queries than the limit: {queried:?}"
    );
    assert!(requests(STATUS) >= keys.len() as u64);
    let stats = app.fleet.sandbox.stats();
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    app.stop().await;
}
