//! A fleet of real `payfleet` processes (sandbox, gateway, worker, reconciler) on
//! 127.0.0.1 ports of their own, in a namespace of their own on the local RabbitMQ and
//! Redis, for the observability tests: what they serve at /metrics is what Prometheus
//! would scrape in production. Also: running promtool, which must be installed.
#![allow(dead_code)] // each test binary uses its own part

use payfleet::bus::{self, Names};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port the OS had free a moment ago (for processes that need a fixed address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where one process serves /metrics.
#[derive(Debug, Clone)]
pub struct Target {
    pub process: &'static str,
    pub port: u16,
}

impl Target {
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }
}

pub struct ProcessFleet {
    pub namespace: String,
    pub targets: Vec<Target>,
    pub gateway_port: u16,
    retry_delays: Vec<u64>,
    children: Vec<(&'static str, Child)>,
    /// Settings every process gets (secrets, provider URLs).
    common_env: Vec<(&'static str, String)>,
    /// Each process's JSON log (stderr), kept after a failed test for diagnosis.
    log_dir: std::path::PathBuf,
}

const RETRY_DELAYS_MS: &str = "300,1000";

impl ProcessFleet {
    /// Starts the worker first (it declares the topology), then the gateway, the
    /// sandbox calling back to it, and a standalone reconciler; waits until each serves
    /// /metrics. Fails loudly when RabbitMQ or Redis is down.
    pub async fn start(label: &str) -> Self {
        Self::start_with(label, &[]).await
    }

    /// [`ProcessFleet::start`] with further settings for every process.
    pub async fn start_with(label: &str, env: &[(&'static str, String)]) -> Self {
        let run = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let namespace = format!("{label}-{run}");
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let (worker, gateway, gateway_ops, sandbox, reconciler) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let mut fleet = ProcessFleet {
            namespace: namespace.clone(),
            targets: vec![
                Target {
                    process: "worker",
                    port: worker,
                },
                Target {
                    process: "gateway",
                    port: gateway_ops,
                },
                Target {
                    process: "sandbox",
                    port: sandbox,
                },
                Target {
                    process: "reconciler",
                    port: reconciler,
                },
            ],
            gateway_port: gateway,
            retry_delays: vec![300, 1000],
            children: Vec::new(),
            common_env: Vec::new(),
            log_dir: std::env::temp_dir().join(format!("payfleet-{namespace}")),
        };
        std::fs::create_dir_all(&fleet.log_dir).expect("log dir");
        let base_url = format!("http://127.0.0.1:{sandbox}");
        let post_link = format!("http://127.0.0.1:{gateway}/callbacks/epay");
        // Every process gets every secret and provider URL; each takes what it needs.
        fleet.common_env = vec![
            ("PAYFLEET__ECOMMPAY__SECRET_KEY", secret.clone()),
            ("PAYFLEET__SANDBOX__ECOMMPAY_SECRET_KEY", secret.clone()),
            ("PAYFLEET__EPAY__CLIENT_SECRET", secret.clone()),
            ("PAYFLEET__SANDBOX__EPAY_CLIENT_SECRET", secret.clone()),
            ("PAYFLEET__EPAY__FINGERPRINT_KEY", secret),
            ("PAYFLEET__ECOMMPAY__BASE_URL", base_url.clone()),
            ("PAYFLEET__EPAY__OAUTH_URL", base_url.clone()),
            ("PAYFLEET__EPAY__API_URL", base_url.clone()),
            ("PAYFLEET__EPAY__STATUS_URL", base_url),
            ("PAYFLEET__EPAY__POST_LINK_URL", post_link.clone()),
            ("PAYFLEET__EPAY__FAILURE_POST_LINK_URL", post_link),
        ];
        fleet.common_env.extend_from_slice(env);
        let listen = |port: u16| format!("127.0.0.1:{port}");
        fleet
            .spawn(
                "worker",
                &[("PAYFLEET__WORKER__OPS_LISTEN", listen(worker))],
                worker,
            )
            .await;
        fleet
            .spawn(
                "gateway",
                &[
                    ("PAYFLEET__GATEWAY__LISTEN", listen(gateway)),
                    ("PAYFLEET__GATEWAY__OPS_LISTEN", listen(gateway_ops)),
                ],
                gateway_ops,
            )
            .await;
        fleet
            .spawn(
                "sandbox",
                &[
                    ("PAYFLEET__SANDBOX__LISTEN", listen(sandbox)),
                    (
                        "PAYFLEET__SANDBOX__ECOMMPAY_CALLBACK_URL",
                        format!("http://127.0.0.1:{gateway}/callbacks/ecommpay"),
                    ),
                    ("PAYFLEET__SANDBOX__CALLBACK_DELAY_MS", "20".into()),
                ],
                sandbox,
            )
            .await;
        fleet
            .spawn(
                "reconciler",
                &[("PAYFLEET__RECONCILER__OPS_LISTEN", listen(reconciler))],
                reconciler,
            )
            .await;
        fleet
    }

    async fn spawn(&mut self, process: &'static str, env: &[(&str, String)], port: u16) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payfleet"));
        cmd.arg(process)
            .env("PAYFLEET__AMQP__NAMESPACE", &self.namespace)
            .env("PAYFLEET__REDIS__KEY_PREFIX", &self.namespace)
            .env("PAYFLEET__REDIS__RETENTION_MS", "3600000")
            .env("PAYFLEET__WORKER__RETRY_DELAYS_MS", RETRY_DELAYS_MS)
            .env("PAYFLEET__RECONCILER__EMBEDDED", "false")
            .env("PAYFLEET__RECONCILER__INTERVAL_MS", "200")
            .env("PAYFLEET__TELEMETRY__LOG_LEVEL", "info")
            .env("PAYFLEET__TELEMETRY__LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(self.log_path(process)).expect("log file"));
        for (k, v) in self.common_env.iter().chain(env) {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the payfleet binary starts");
        self.children.push((process, child));
        let url = format!("http://127.0.0.1:{port}/metrics");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            let (_, child) = self.children.last_mut().expect("just pushed");
            if let Some(status) = child.try_wait().expect("child status") {
                panic!(
                    "payfleet {process} exited with {status} before serving {url}: \
                     are RabbitMQ (127.0.0.1:5672) and Redis (127.0.0.1:6379) running? \
                     scripts/ensure-services starts them. Its log: {}",
                    std::fs::read_to_string(self.log_path(process)).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "payfleet {process} did not serve {url} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_path(&self, process: &str) -> std::path::PathBuf {
        self.log_dir.join(format!("{process}.log"))
    }

    /// The JSON log lines a process has written so far.
    pub fn logs(&self, process: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log_path(process))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn names(&self) -> Names {
        Names::new(&self.namespace)
    }

    /// Publishes commands with confirms, each with the given headers (e.g. a
    /// traceparent).
    pub async fn publish(&self, bodies: &[String], headers: &[(&str, &str)]) {
        let conn = bus::connect(&amqp_url(), "observe-publisher")
            .await
            .expect("RabbitMQ at amqp.url");
        let publisher = bus::Publisher::open(&conn, self.names())
            .await
            .expect("publisher");
        for body in bodies {
            let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
            let rk = payfleet::contract::command::routing_key_of(&value).expect("routable");
            let mut table = lapin::types::FieldTable::default();
            for (name, value) in headers {
                table.insert((*name).into(), bus::header_text(value));
            }
            publisher
                .publish_command(&rk, body.as_bytes(), table)
                .await
                .expect("publish confirmed");
        }
        publisher.close().await;
        let _ = conn.close(200, "bye".into()).await;
    }

    /// Waits until the worker finished `n` commands (whatever their outcome).
    pub async fn wait_finished(&self, n: f64) {
        let worker = self.targets[0].clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.scrape(&worker).await;
            let finished: f64 = text
                .lines()
                .filter(|l| l.starts_with("payfleet_commands_finished_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            if finished >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the worker finished {finished} of {n} commands in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The text each process serves at /metrics.
    pub async fn scrape(&self, target: &Target) -> String {
        let r = reqwest::get(target.metrics_url())
            .await
            .unwrap_or_else(|e| panic!("{} /metrics: {e}", target.process));
        assert!(
            r.status().is_success(),
            "{} /metrics: {}",
            target.process,
            r.status()
        );
        r.text().await.expect("metrics text")
    }

    /// Stops every process with SIGTERM (killing what does not stop within 20 s), then
    /// removes this namespace's exchanges and queues.
    pub async fn stop(mut self) {
        self.terminate();
        let conn = bus::connect(&amqp_url(), "observe-cleanup")
            .await
            .expect("RabbitMQ for cleanup");
        let ch = conn.create_channel().await.expect("channel");
        bus::delete_all(&ch, &self.names(), &self.retry_delays)
            .await
            .expect("deleting the test namespace's queues");
        let _ = conn.close(200, "bye".into()).await;
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }

    fn terminate(&mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (process, child) in &mut self.children {
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("payfleet {process} ignored SIGTERM for 20 s: killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.clear();
    }
}

impl Drop for ProcessFleet {
    /// A failed test still leaves no process behind.
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The broker URL the processes use (the default, or PAYFLEET__AMQP__URL).
pub fn amqp_url() -> payfleet::config::AmqpNodes {
    settings().amqp.url
}

/// Settings from the defaults and the environment, as the processes load them.
pub fn settings() -> payfleet::config::Settings {
    payfleet::config::Settings::load(None, payfleet::config::Needs::Settings)
        .expect("settings load")
}

/// A HomeBank payout command: `decline` customers are declined by the sandbox.
pub fn payout(key: &str, customer: &str) -> String {
    serde_json::json!({
        "version": 1,
        "idempotency_key": key,
        "method": "homebank",
        "operation": "payout",
        "amount": {"minor": 200000, "currency": "KZT"},
        "details": {"customer": {"id": customer, "phone": "77074544579", "ip_address": "1.1.1.1"}}
    })
    .to_string()
}

/// A command for `binary` from Debian's `prometheus` package (promtool, prometheus).
/// Fails loudly when it is not installed.
pub fn prometheus_tool(binary: &str) -> Command {
    let found = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{binary} is not installed: run scripts/ensure-services --for-tests (installs Debian's prometheus package)"
    );
    Command::new(binary)
}

pub fn promtool() -> Command {
    prometheus_tool("promtool")
}

/// Runs promtool with `args`, feeding `stdin`; panics with its output unless it passes.
pub fn promtool_passes(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = promtool()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("feeding promtool");
        }
    }
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// The path of a file in the repository.
pub fn repo_path(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}
