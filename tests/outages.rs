//! Redis away (for a while, or when a worker starts) costs no command, and a delivery
//! count a publisher wrote is not the broker's. Each test that takes Redis away runs a
//! redis-server of its own on a free port: the shared one is never touched.

mod common;

use common::{payout, spawn_app_with};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use payfleet::contract::{EventStatus, IdempotencyKey};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A redis-server of this test's own.
struct OwnRedis {
    port: u16,
    password: Option<String>,
    server: Option<tokio::process::Child>,
}

impl OwnRedis {
    fn new(password: Option<&str>) -> Self {
        OwnRedis {
            port: free_port(),
            password: password.map(str::to_owned),
            server: None,
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("payfleet-redis-{}", self.port))
    }

    fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    async fn start(&mut self) {
        let mut cmd = tokio::process::Command::new("redis-server");
        // Its data survives a restart (an AOF in its own directory), as in production.
        let dir = self.dir();
        std::fs::create_dir_all(&dir).unwrap();
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        self.server = Some(cmd.spawn().expect("redis-server is installed"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&mut self) {
        let mut server = self.server.take().expect("running");
        server.kill().await.unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// A payfleet child process whose output is kept.
struct Child {
    process: tokio::process::Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Child {
    fn spawn(mut cmd: tokio::process::Command) -> Self {
        let mut process = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("payfleet starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for mut pipe in [
            Box::new(process.stdout.take().unwrap())
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(process.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Child { process, output }
    }

    fn running(&mut self) -> bool {
        self.process.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then everything it printed.
    async fn stop(mut self) -> String {
        let pid = self.process.id().expect("running").to_string();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.process.wait())
            .await
            .expect("it stops")
            .unwrap();
        assert!(status.success(), "exit status {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

async fn readyz(port: u16) -> Option<u16> {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    answer.ok().map(|r| r.status().as_u16())
}

async fn wait_readyz(port: u16, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = readyz(port).await;
        if now == Some(status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz answers {now:?}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker process on `redis_url`, retrying quickly, with its ops endpoints on `ops`
/// and `more` settings.
fn worker(
    s: &payfleet::config::Settings,
    name: &str,
    redis_url: &str,
    ops: u16,
    more: &[(&str, &str)],
) -> Child {
    let mut cmd = common::worker_process(s, name);
    cmd.envs(more.iter().copied());
    cmd.env("PAYFLEET__REDIS__URL", redis_url)
        .env("PAYFLEET__WORKER__OPS_LISTEN", format!("127.0.0.1:{ops}"))
        .env("PAYFLEET__WORKER__RETRY_DELAYS_MS", "300,1000")
        .env(
            "PAYFLEET__AMQP__DELIVERY_LIMIT",
            s.amqp.delivery_limit.to_string(),
        )
        .env("PAYFLEET__RECONNECT__MIN_MS", "100")
        .env("PAYFLEET__RECONNECT__MAX_MS", "1000");
    Child::spawn(cmd)
}

/// What a dead letter is about: its key and reason.
fn reasons(dead: Vec<common::DeadLetter>) -> Vec<(String, String)> {
    dead.into_iter()
        .map(|(body, reason)| {
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            (body["idempotency_key"].to_string(), reason)
        })
        .collect()
}

fn keys(keys: &[String]) -> Vec<IdempotencyKey> {
    keys.iter()
        .map(|k| IdempotencyKey::parse(k.as_str()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_costs_no_command_and_the_worker_says_it_is_not_ready() {
    let mut redis = OwnRedis::new(None);
    redis.start().await;
    let mut s = common::settings("t-redis-outage");
    s.redis.url = redis.url().parse().unwrap();
    // Before the fix a handback came every ~8 s while Redis was away: three deliveries
    // fit well inside the outage, so every command held then was dead-lettered.
    s.amqp.delivery_limit = 3;
    let app = spawn_app_with(s, 0).await;
    let s = &app.fleet.settings;
    let ops = free_port();
    // A command it held would be put back as a fresh copy after 10 s.
    let hold = [("PAYFLEET__WORKER__HOLD_MS", "10000")];
    let worker = worker(s, "outage-test", &redis.url(), ops, &hold);
    wait_readyz(ops, 200, Duration::from_secs(20)).await;
    app.publish(&payout("out-before", 200000, "KZT", "1")).await;
    assert_eq!(
        app.terminal("out-before").await.status,
        EventStatus::Succeeded
    );

    // Three payouts are at the (slow) provider when Redis goes: held, then put back.
    app.fleet.sandbox.set_faults(payfleet_sim::Faults {
        endpoints: [(
            "*".to_owned(),
            payfleet_sim::faults::EndpointFaults {
                slow_ms: 2000,
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    });
    let in_flight: Vec<String> = (0..3).map(|i| format!("out-in-flight-{i}")).collect();
    for k in &in_flight {
        app.publish(&payout(k, 200000, "KZT", "1")).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.stop().await;
    wait_readyz(ops, 503, Duration::from_secs(10)).await;
    let during: Vec<String> = (0..3).map(|i| format!("out-during-{i}")).collect();
    for k in &during {
        app.publish(&payout(k, 200000, "KZT", "1")).await;
    }
    let outage = Instant::now() + Duration::from_secs(35);
    while Instant::now() < outage {
        assert_eq!(
            readyz(ops).await,
            Some(503),
            "not ready while Redis is away"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    redis.start().await;
    let during: Vec<String> = in_flight.into_iter().chain(during).collect();
    assert!(
        app.events
            .wait_terminal(&keys(&during), Duration::from_secs(30))
            .await,
        "every command held through the outage ends; dead-lettered: {:?}",
        reasons(app.dead.wait_for(1).await)
    );
    wait_readyz(ops, 200, Duration::from_secs(10)).await;
    let terminal = app.events.terminal_by_key();
    let stats = app.fleet.sandbox.stats();
    for k in &during {
        let key = IdempotencyKey::parse(k.as_str()).unwrap();
        assert_eq!(terminal[&key][0].status, EventStatus::Succeeded, "{k}");
        assert_eq!(stats.executed.get(k.as_str()), Some(&1), "{k}: {stats:?}");
    }
    assert!(stats.executed_more_than_once.is_empty(), "{stats:?}");
    let dead = reasons(app.dead.wait_for(1).await);
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");
    let output = worker.stop().await;
    assert!(
        output.contains("holding it until the service is back")
            && output.contains("a fresh copy of the command is back in its queue"),
        "held, then put back: {output}"
    );
    assert!(!output.contains("handing it back"), "{output}");
    app.stop().await;
}

fn forged_count() -> FieldTable {
    let mut h = FieldTable::default();
    h.insert("x-delivery-count".into(), AMQPValue::LongInt(50));
    h
}

fn header_count(d: &lapin::message::Delivery) -> Option<AMQPValue> {
    d.properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_count_written_by_the_publisher_dead_letters_nothing() {
    let mut app = spawn_app_with(common::settings("t-forged-count"), 0).await;
    // What RabbitMQ's quorum queue does (3.10): a first delivery carries the
    // publisher's header unflagged; a redelivery carries the broker's own count.
    let probe = payout("forged-probe", 200000, "KZT", "1");
    let value: serde_json::Value = serde_json::from_str(&probe).unwrap();
    let rk = payfleet::contract::command::routing_key_of(&value).unwrap();
    app.publisher
        .publish_command(&rk, probe.as_bytes(), forged_count())
        .await
        .unwrap();
    let conn = payfleet::bus::connect(&app.fleet.settings.amqp.url, "t-probe")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut probe = ch
        .basic_consume(
            app.queue_of(&rk).into(),
            "t-probe".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let first = probe.next().await.expect("the probe").unwrap();
    assert!(!first.redelivered);
    assert_eq!(header_count(&first), Some(AMQPValue::LongInt(50)));
    first
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let again = probe.next().await.expect("the probe again").unwrap();
    assert!(again.redelivered);
    assert_eq!(
        header_count(&again).and_then(|v| v.as_long_long_int().or(v.as_long_int().map(i64::from))),
        Some(1),
        "the broker's count: {:?}",
        header_count(&again)
    );
    again.ack(BasicAckOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;

    // So a first delivery's count is not trusted: the payout is paid, not dead-lettered.
    let body = payout("forged-count", 200000, "KZT", "1");
    app.publisher
        .publish_command(&rk, body.as_bytes(), forged_count())
        .await
        .unwrap();
    app.fleet.add_worker().await.unwrap();
    let event = app.terminal("forged-count").await;
    assert_eq!(event.status, EventStatus::Succeeded, "{event:?}");
    let dead = reasons(app.dead.wait_for(1).await);
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_started_while_redis_is_away_wait_for_it_and_never_print_its_password() {
    let password = format!("pw{}", uuid::Uuid::new_v4().simple());
    let mut redis = OwnRedis::new(Some(&password));
    let mut s = common::settings("t-redis-late");
    s.redis.url = redis.url().parse().unwrap();
    s.reconciler.embedded = false;
    let app = spawn_app_with(s, 0).await;
    let s = &app.fleet.settings;
    let ops = free_port();
    let mut worker = worker(s, "late-redis-test", &redis.url(), ops, &[]);
    let reconciler_ops = free_port();
    let mut reconciler = common::payfleet_process(s, &["reconciler"]);
    reconciler
        .env("PAYFLEET__REDIS__URL", redis.url())
        .env(
            "PAYFLEET__RECONCILER__OPS_LISTEN",
            format!("127.0.0.1:{reconciler_ops}"),
        )
        .env("PAYFLEET__RECONNECT__MIN_MS", "100")
        .env("PAYFLEET__RECONNECT__MAX_MS", "1000");
    let mut reconciler = Child::spawn(reconciler);
    let mut gateway = common::payfleet_process(s, &["gateway"]);
    gateway
        .env("PAYFLEET__REDIS__URL", redis.url())
        .env("PAYFLEET__GATEWAY__LISTEN", "127.0.0.1:0")
        .env("PAYFLEET__RECONNECT__MIN_MS", "100")
        .env("PAYFLEET__RECONNECT__MAX_MS", "1000");
    let mut gateway = Child::spawn(gateway);
    // Well past the ~9 s after which a worker used to give up.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(worker.running(), "the worker waits for Redis");
    assert!(reconciler.running(), "the reconciler waits for Redis");
    assert!(gateway.running(), "the gateway waits for Redis");
    assert_eq!(readyz(ops).await, Some(503));
    assert_eq!(readyz(reconciler_ops).await, Some(503));

    redis.start().await;
    wait_readyz(ops, 200, Duration::from_secs(10)).await;
    wait_readyz(reconciler_ops, 200, Duration::from_secs(10)).await;
    app.publish(&payout("late-redis", 200000, "KZT", "1")).await;
    assert_eq!(
        app.terminal("late-redis").await.status,
        EventStatus::Succeeded
    );

    let processes = [
        ("worker", worker),
        ("reconciler", reconciler),
        ("gateway", gateway),
    ];
    for (name, child) in processes {
        let output = child.stop().await;
        assert!(
            output.contains("reconnecting"),
            "{name} logs each failed attempt: {output}"
        );
        assert!(
            !output.contains(&password),
            "{name} printed the Redis password: {output}"
        );
    }
    app.stop().await;
}
