//! The test harness: a whole fleet on the real local RabbitMQ and Redis, in a
//! namespace of its own, with the sandbox standing in for the providers.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod cluster;
pub mod contract;
pub mod logs;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use payfleet::contract::{Event, IdempotencyKey};
use payfleet_tools::local::{EventTap, LocalFleet, isolated};
use payfleet_tools::settings::FleetSettings;
use secrecy::ExposeSecret;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings from the defaults and the environment (so CI may point elsewhere), isolated.
pub fn settings(label: &str) -> FleetSettings {
    let mut s = FleetSettings::load(None).expect("settings load");
    s.secrets.ecommpay_secret_key = None;
    s.worker.retry_delays_ms = vec![300, 1000];
    s.sandbox.callback_delay_ms = 20;
    s.sandbox.callback_retry_ms = vec![200];
    isolated(s, label)
}

/// A `payfleet worker` child process on the fleet's namespace and Redis prefix, with
/// its enabled providers, their URLs and the secrets it has; add settings, then spawn it.
pub fn worker_process(s: &payfleet::config::Settings, name: &str) -> tokio::process::Command {
    payfleet_process(s, &["worker", "--name", name])
}

/// A `payfleet <args>` child process configured as [`worker_process`] describes.
pub fn payfleet_process(s: &payfleet::config::Settings, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_payfleet"));
    cmd.args(args)
        .env("PAYFLEET__AMQP__NAMESPACE", &s.amqp.namespace)
        .env("PAYFLEET__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("PAYFLEET__WORKER__OPS_LISTEN", "127.0.0.1:0")
        .env(
            "PAYFLEET__ECOMMPAY__ENABLED",
            s.ecommpay.enabled.to_string(),
        )
        .env("PAYFLEET__ECOMMPAY__BASE_URL", &s.ecommpay.base_url)
        .env("PAYFLEET__EPAY__ENABLED", s.epay.enabled.to_string())
        .env("PAYFLEET__EPAY__OAUTH_URL", &s.epay.oauth_url)
        .env("PAYFLEET__EPAY__API_URL", &s.epay.api_url)
        .env("PAYFLEET__EPAY__STATUS_URL", &s.epay.status_url)
        .env("PAYFLEET__EPAY__POST_LINK_URL", &s.epay.post_link_url)
        .env(
            "PAYFLEET__EPAY__FAILURE_POST_LINK_URL",
            &s.epay.failure_post_link_url,
        )
        .env("PAYFLEET__RECONCILER__EMBEDDED", "false")
        .env("PAYFLEET__TELEMETRY__LOG_LEVEL", "warn")
        .kill_on_drop(true);
    // The fleet's rate limits, which `payfleet payments resolve` keeps to as workers do.
    for (provider, accounts) in &s.rate_limit.limits {
        for (account, classes) in accounts {
            for (class, limit) in classes {
                let base = format!("PAYFLEET__RATE_LIMIT__LIMITS__{provider}__{account}__{class}")
                    .to_uppercase();
                cmd.env(format!("{base}__PER_SECOND"), limit.per_second.to_string())
                    .env(format!("{base}__BURST"), limit.burst.to_string());
            }
        }
    }
    let secrets = &s.secrets;
    for (var, secret) in [
        (
            "PAYFLEET__ECOMMPAY__SECRET_KEY",
            &secrets.ecommpay_secret_key,
        ),
        ("PAYFLEET__EPAY__CLIENT_SECRET", &secrets.epay_client_secret),
        (
            "PAYFLEET__EPAY__FINGERPRINT_KEY",
            &secrets.epay_fingerprint_key,
        ),
    ] {
        if let Some(secret) = secret {
            cmd.env(var, secret.expose_secret());
        }
    }
    cmd
}

pub struct TestFleet {
    pub fleet: LocalFleet,
    pub events: EventTap,
    pub dead: DeadLetters,
    conn: lapin::Connection,
    pub publisher: payfleet::bus::Publisher,
}

/// Starts a fleet with `workers` workers. Fails loudly when RabbitMQ or Redis is down.
pub async fn spawn_app(label: &str, workers: usize) -> TestFleet {
    spawn_app_with(settings(label), workers).await
}

pub async fn spawn_app_with(settings: FleetSettings, workers: usize) -> TestFleet {
    start(settings, workers, true).await
}

/// [`spawn_app`] whose dead letters stay in the queue (nothing taps them), for the
/// operator commands that read it.
pub async fn spawn_app_keeping_dead_letters(label: &str, workers: usize) -> TestFleet {
    spawn_keeping_dead_letters_with(settings(label), workers).await
}

pub async fn spawn_keeping_dead_letters_with(settings: FleetSettings, workers: usize) -> TestFleet {
    start(settings, workers, false).await
}

async fn start(settings: FleetSettings, workers: usize, tap_dead: bool) -> TestFleet {
    let fleet = LocalFleet::start(settings, workers)
        .await
        .expect("the fleet starts: are RabbitMQ (127.0.0.1:5672) and Redis (127.0.0.1:6379) running? scripts/ensure-services starts them");
    let events = EventTap::start_checked(&fleet, Arc::new(contract::check_event))
        .await
        .expect("event tap");
    let dead = match tap_dead {
        true => DeadLetters::start(&fleet).await,
        false => DeadLetters(Arc::default()),
    };
    let (conn, publisher) = fleet.publisher().await.expect("publisher");
    TestFleet {
        fleet,
        events,
        dead,
        conn,
        publisher,
    }
}

impl TestFleet {
    /// Publishes a command under its routing key; schema and decoder must agree on it
    /// ([`contract::check_command`]). Bodies that are no command at all (not JSON, no
    /// routing) go through [`TestFleet::publish_raw`], unchecked.
    pub async fn publish(&self, body: &str) {
        contract::check_command(body);
        let value: serde_json::Value = serde_json::from_str(body).expect("test bodies are JSON");
        let rk = payfleet::contract::command::routing_key_of(&value).expect("routable");
        self.publish_raw(&rk, body.as_bytes()).await;
    }

    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        self.publisher
            .publish_command(routing_key, body, FieldTable::default())
            .await
            .expect("publish confirmed");
    }

    /// The command queue a routing key lands in.
    pub fn queue_of(&self, routing_key: &str) -> String {
        let provider = routing_key.split('.').next().expect("a provider");
        let provider = payfleet::contract::ProviderName::ALL
            .into_iter()
            .find(|p| p.as_str() == provider)
            .expect("a known provider");
        self.fleet.names().command_queue(provider)
    }

    /// Takes the next command of `routing_key`'s queue and hands it back, `times` times
    /// (before any worker runs): the broker's delivery count rises as in a crash loop.
    pub async fn hand_back(&self, routing_key: &str, times: u32) {
        self.hand_back_each(routing_key, 1, times).await;
    }

    /// Takes the next `commands` commands of `routing_key`'s queue at once and hands them
    /// all back, `times` times: each one's delivery count rises as if a worker holding
    /// them had crashed.
    pub async fn hand_back_each(&self, routing_key: &str, commands: usize, times: u32) {
        use lapin::options::{BasicGetOptions, BasicNackOptions};
        let conn = payfleet::bus::connect(&self.fleet.settings.amqp.url, "test-hand-back")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let queue = self.queue_of(routing_key);
        for _ in 0..times {
            let mut held = Vec::with_capacity(commands);
            for _ in 0..commands {
                let get = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false });
                held.push(get.await.unwrap().expect("a command in the queue").delivery);
            }
            for delivery in held {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                };
                delivery.nack(requeue).await.unwrap();
            }
        }
        let _ = conn.close(200, "bye".into()).await;
    }

    /// How many messages the dead-letter queue holds now.
    pub async fn dead_depth(&self) -> u32 {
        let ch = self.conn.create_channel().await.expect("a channel");
        let depth = payfleet::bus::queue_depth(&ch, &self.fleet.names().dead()).await;
        let _ = ch.close(200, "bye".into()).await;
        depth.expect("the dead-letter queue exists")
    }

    pub fn secret(&self) -> Vec<u8> {
        self.fleet
            .settings
            .secrets
            .ecommpay()
            .unwrap()
            .expose_secret()
            .as_bytes()
            .to_vec()
    }

    /// Fails the test when an event the fleet published broke the contract's schemas.
    pub fn assert_events_keep_the_contract(&self) {
        let broken = self.events.broken();
        assert!(
            broken.is_empty(),
            "events that break the contract: {broken:?}"
        );
    }

    /// Waits for the key's terminal event and returns it.
    pub async fn terminal(&self, key: &str) -> Event {
        let key = IdempotencyKey::parse(key).unwrap();
        assert!(
            self.events
                .wait_terminal(std::slice::from_ref(&key), Duration::from_secs(30))
                .await,
            "no terminal event for {key}; events so far: {:?}",
            self.events.events()
        );
        self.assert_events_keep_the_contract();
        self.events.terminal_by_key()[&key][0].clone()
    }

    /// How many events `key` has once no more arrive for 300 ms: the worker's `accepted`
    /// and the gateway's terminal event race, so the terminal one can arrive first.
    pub async fn settled_event_count(&self, key: &str) -> usize {
        let mut seen = self.events_for(key).len();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.events_for(key).len();
            if now == seen {
                return now;
            }
            seen = now;
        }
    }

    pub fn events_for(&self, key: &str) -> Vec<Event> {
        self.assert_events_keep_the_contract();
        self.events
            .events()
            .into_iter()
            .filter(|e| e.idempotency_key.as_str() == key)
            .collect()
    }

    pub async fn stop(self) {
        self.assert_events_keep_the_contract();
        self.publisher.close().await;
        let _ = self.conn.close(200, "bye".into()).await;
        self.fleet.stop().await.expect("the fleet stops cleanly");
    }
}

/// A HomeBank payout command body.
pub fn payout(key: &str, minor: u64, currency: &str, customer: &str) -> String {
    serde_json::json!({
        "version": 1,
        "idempotency_key": key,
        "method": "homebank",
        "operation": "payout",
        "amount": {"minor": minor, "currency": currency},
        "details": {"customer": {"id": customer, "phone": "77074544579", "ip_address": "1.1.1.1"}}
    })
    .to_string()
}

/// An epay Google Pay payment command body.
pub fn google_pay(key: &str, minor: u64, last4: &str) -> String {
    serde_json::json!({
        "version": 1, "idempotency_key": key, "method": "google_pay", "operation": "payment",
        "amount": {"minor": minor, "currency": "KZT"},
        "details": {
            "name": "Test test", "description": "Оплата", "email": "payer@example.kz",
            "phone": "+77078071180", "card_save": false,
            "google_pay": {"apiVersionMinor": 0, "apiVersion": 2, "paymentMethodData": {
                "description": format!("Visa •••• {last4}"),
                "tokenizationData": {"type": "PAYMENT_GATEWAY", "token": "{\"signature\":\"MEQCIG0Pt0VSb8\",\"protocolVersion\":\"ECv2\",\"signedMessage\":\"{}\"}"},
                "type": "CARD", "info": {"cardNetwork": "VISA", "cardDetails": last4}}}
        }
    })
    .to_string()
}

/// A dead-lettered body and its reason header.
pub type DeadLetter = (Vec<u8>, String);

/// Messages in the dead-letter queue, with their reason header.
#[derive(Clone)]
pub struct DeadLetters(Arc<Mutex<Vec<DeadLetter>>>);

impl DeadLetters {
    async fn start(fleet: &LocalFleet) -> Self {
        let dl = DeadLetters(Arc::default());
        let conn = payfleet::bus::connect(&fleet.settings.amqp.url, "test-dead-letters")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut consumer = ch
            .basic_consume(
                fleet.names().dead().into(),
                "test-dead".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let store = dl.0.clone();
        tokio::spawn(async move {
            let _keep = conn;
            while let Some(Ok(d)) = consumer.next().await {
                let reason = d
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get(payfleet::bus::headers::REASON).cloned())
                    .map(|v| match v {
                        AMQPValue::LongString(s) => {
                            String::from_utf8_lossy(s.as_bytes()).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                store.lock().unwrap().push((d.data.clone(), reason));
                let _ = d.ack(BasicAckOptions::default()).await;
            }
        });
        dl
    }

    pub fn all(&self) -> Vec<DeadLetter> {
        self.0.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<DeadLetter> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.0.lock().unwrap().clone()
    }
}

impl TestFleet {
    /// Runs `payfleet ARGS` on the fleet's settings, as an operator would.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        payfleet_process(&self.fleet.settings, args)
            .output()
            .await
            .expect("the binary runs")
    }

    /// Runs `payfleet ARGS`, which must succeed; its stdout.
    pub async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "payfleet {args:?}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("$ payfleet {}\n{stdout}", args.join(" "));
        stdout
    }

    /// Runs `payfleet ARGS`, which must fail; its stderr.
    pub async fn cli_refused(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "payfleet {args:?} succeeded");
        println!("$ payfleet {}\n{stderr}", args.join(" "));
        stderr
    }

    pub async fn store(&self) -> payfleet::state::StateStore {
        payfleet::app::connect_store(&self.fleet.settings)
            .await
            .unwrap()
    }

    /// The recorded state of a key.
    pub async fn state(&self, key: &str) -> Option<payfleet::state::State> {
        let rec = self
            .store()
            .await
            .record(&IdempotencyKey::parse(key).unwrap())
            .await
            .unwrap();
        rec.map(|rec| rec.state)
    }

    /// Waits until the key's record is in `state`.
    pub async fn wait_for_state(&self, key: &str, state: payfleet::state::State) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state(key).await != Some(state) {
            assert!(Instant::now() < deadline, "{key} never reached {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts a callback body to the gateway, signed with `secret`.
    pub async fn callback(&self, mut body: serde_json::Value, secret: &[u8]) -> u16 {
        payfleet::providers::ecommpay::signature::sign_root(secret, &mut body);
        reqwest::Client::new()
            .post(format!(
                "http://{}/callbacks/ecommpay",
                self.fleet.gateway_addr
            ))
            .json(&body)
            .send()
            .await
            .expect("the gateway answers")
            .status()
            .as_u16()
    }
}

/// A HomeBank payout callback as the document shows it.
pub fn payout_callback(
    payment_id: &str,
    status: &str,
    code: &str,
    message: &str,
) -> serde_json::Value {
    serde_json::json!({
        "project_id": 198,
        "payment": {"id": payment_id, "type": "payout", "status": status, "method": "homebank-payout",
                    "sum": {"amount": 200000, "currency": "KZT"}, "description": ""},
        "customer": {"id": "444567", "phone": "7074544579"},
        "operation": {"id": 4780000001432u64, "type": "payout", "status": status, "request_id": "06a2b8c16cb5b",
                      "sum_initial": {"amount": 200000, "currency": "KZT"},
                      "sum_converted": {"amount": 200000, "currency": "KZT"},
                      "provider": {"id": 1112, "payment_id": "14177704", "auth_code": ""},
                      "code": code, "message": message}
    })
}

/// Faults under which the provider executes every request to `endpoint` and its answer
/// is lost (HTTP 502 after processing), and with `callbacks_lost` its callback too: only
/// a status query can then tell what happened.
pub fn answers_lost(endpoint: &str, callbacks_lost: bool) -> payfleet_sim::Faults {
    let executed_unanswered = payfleet_sim::faults::EndpointFaults {
        error_after_rate: 1.0,
        ..Default::default()
    };
    payfleet_sim::Faults {
        endpoints: [(endpoint.to_owned(), executed_unanswered)].into(),
        callbacks: payfleet_sim::faults::CallbackFaults {
            loss_rate: if callbacks_lost { 1.0 } else { 0.0 },
            ..Default::default()
        },
        ..Default::default()
    }
}
