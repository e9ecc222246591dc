//! A fleet as separate `payfleet` processes on the local RabbitMQ and Redis: starting,
//! stopping and configuring them, and restarting the local RabbitMQ and Redis under
//! them. Shared by `payfleet chaos` and `payfleet bench`.

use crate::settings::FleetSettings;
use anyhow::{Context, bail};
use payfleet::bus;
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A child process of the run, restartable.
pub struct Proc {
    pub name: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    pub child: Option<Child>,
}

impl Proc {
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let (program, args) = program(&self.args)?;
        let child = Command::new(program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    pub async fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(20), c.wait())
                .await
                .is_err()
            {
                let _ = c.start_kill();
            }
        }
    }
}

/// The binary that runs a fleet role: the simulator for `sandbox`, the production
/// `payfleet` binary for everything else (worker, gateway, reconciler).
fn program(args: &[String]) -> anyhow::Result<(PathBuf, &[String])> {
    match args.split_first() {
        Some((first, rest)) if first == "sandbox" => Ok((sibling("payfleet-sim")?, rest)),
        _ => Ok((sibling("payfleet")?, args)),
    }
}

/// A binary installed beside this one (cargo's target directory, or an image's bin).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("this executable has no folder")?;
    // Test binaries run from target/<profile>/deps; the binaries are one level up.
    for candidate in [dir.join(name), dir.join("..").join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} is not installed beside {} (build it: cargo build --workspace --bins)",
        exe.display()
    )
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The settings every child gets, as `PAYFLEET__…` variables: the sandbox and the
/// gateway's two listeners on the ports given.
pub fn child_env(
    s: &FleetSettings,
    sandbox: u16,
    gateway: u16,
    gateway_ops: u16,
) -> Vec<(String, String)> {
    let secret = s
        .secrets
        .ecommpay()
        .expect("isolated settings carry a secret");
    let secret = secret.expose_secret().to_owned();
    let epay_secret = s
        .secrets
        .epay()
        .expect("isolated settings carry epay's secret");
    let epay_secret = epay_secret.expose_secret().to_owned();
    let fingerprint_key = s
        .secrets
        .epay_fingerprint()
        .expect("isolated settings carry a fingerprint key");
    let fingerprint_key = fingerprint_key.expose_secret().to_owned();
    let sim_secret = |v: &Option<secrecy::SecretString>| {
        v.as_ref()
            .expect("isolated settings carry the simulator's secrets")
            .expose_secret()
            .to_owned()
    };
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    [
        ("AMQP__URL", s.amqp.url.joined()),
        ("AMQP__NAMESPACE", s.amqp.namespace.clone()),
        // RabbitMQ refuses a declaration whose group size differs from the queue's.
        (
            "AMQP__QUORUM_GROUP_SIZE",
            s.amqp.quorum_group_size.to_string(),
        ),
        ("REDIS__URL", s.redis.url.expose().join(",")),
        ("REDIS__CLUSTER", s.redis.cluster.to_string()),
        ("REDIS__KEY_PREFIX", s.redis.key_prefix.clone()),
        ("REDIS__RETENTION_MS", s.redis.retention_ms.to_string()),
        ("WORKER__OPS_LISTEN", "127.0.0.1:0".into()),
        ("WORKER__RETRY_DELAYS_MS", list(&s.worker.retry_delays_ms)),
        ("WORKER__MAX_ATTEMPTS", s.worker.max_attempts.to_string()),
        ("WORKER__LEASE_MS", s.worker.lease_ms.to_string()),
        ("RECONCILER__EMBEDDED", "false".into()),
        (
            "RECONCILER__TIME_SCALE",
            s.reconciler.time_scale.to_string(),
        ),
        (
            "RECONCILER__INTERVAL_MS",
            s.reconciler.interval_ms.to_string(),
        ),
        ("RECONCILER__OPS_LISTEN", "127.0.0.1:0".into()),
        ("GATEWAY__LISTEN", format!("127.0.0.1:{gateway}")),
        ("GATEWAY__OPS_LISTEN", format!("127.0.0.1:{gateway_ops}")),
        ("ECOMMPAY__BASE_URL", format!("http://127.0.0.1:{sandbox}")),
        (
            "ECOMMPAY__REQUEST_TIMEOUT_MS",
            s.ecommpay.request_timeout_ms.to_string(),
        ),
        ("ECOMMPAY__SECRET_KEY", secret),
        ("ECOMMPAY__PROJECT_ID", s.ecommpay.project_id.to_string()),
        (
            "SANDBOX__ECOMMPAY_PROJECT_ID",
            s.sandbox.ecommpay_project_id.to_string(),
        ),
        // Worker and sandbox judge Banks of India payout hours by the same clock.
        (
            "ECOMMPAY__CLOCK_OFFSET_MS",
            s.ecommpay.clock_offset_ms.to_string(),
        ),
        (
            "SANDBOX__CLOCK_OFFSET_MS",
            s.sandbox.clock_offset_ms.to_string(),
        ),
        (
            "SANDBOX__INDIA_SALE_THRESHOLD_MS",
            s.sandbox.india_sale_threshold_ms.to_string(),
        ),
        ("SANDBOX__LISTEN", format!("127.0.0.1:{sandbox}")),
        (
            "SANDBOX__ECOMMPAY_CALLBACK_URL",
            format!("http://127.0.0.1:{gateway}/callbacks/ecommpay"),
        ),
        (
            "SANDBOX__CALLBACK_DELAY_MS",
            s.sandbox.callback_delay_ms.to_string(),
        ),
        (
            "SANDBOX__CALLBACK_RETRY_MS",
            list(&s.sandbox.callback_retry_ms),
        ),
        (
            "SANDBOX__ECOMMPAY_SECRET_KEY",
            sim_secret(&s.sandbox_ecommpay_secret_key),
        ),
        ("EPAY__CLIENT_SECRET", epay_secret),
        (
            "SANDBOX__EPAY_CLIENT_SECRET",
            sim_secret(&s.sandbox_epay_client_secret),
        ),
        ("EPAY__FINGERPRINT_KEY", fingerprint_key),
        ("EPAY__CLIENT_ID", s.epay.client_id.clone()),
        ("EPAY__TERMINAL_ID", s.epay.terminal_id.clone()),
        ("SANDBOX__EPAY_CLIENT_ID", s.sandbox.epay_client_id.clone()),
        (
            "SANDBOX__EPAY_TERMINAL_ID",
            s.sandbox.epay_terminal_id.clone(),
        ),
        (
            "EPAY__REQUEST_TIMEOUT_MS",
            s.epay.request_timeout_ms.to_string(),
        ),
        ("EPAY__OAUTH_URL", format!("http://127.0.0.1:{sandbox}")),
        ("EPAY__API_URL", format!("http://127.0.0.1:{sandbox}")),
        ("EPAY__STATUS_URL", format!("http://127.0.0.1:{sandbox}")),
        (
            "EPAY__POST_LINK_URL",
            format!("http://127.0.0.1:{gateway}/callbacks/epay"),
        ),
        (
            "EPAY__FAILURE_POST_LINK_URL",
            format!("http://127.0.0.1:{gateway}/callbacks/epay"),
        ),
        ("TELEMETRY__LOG_FORMAT", "json".into()),
        ("TELEMETRY__LOG_LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("PAYFLEET__{k}"), v))
    .collect()
}

pub async fn wait_http(url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer")
}

async fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Restarts the local RabbitMQ (`rabbitmqctl stop_app` / `start_app`) and waits for it.
pub async fn restart_broker(url: &payfleet::config::AmqpNodes) -> anyhow::Result<()> {
    run_cmd("rabbitmqctl", &["stop_app"]).await?;
    run_cmd("rabbitmqctl", &["start_app"]).await?;
    for _ in 0..120 {
        if bus::connect(url, "payfleet-chaos-probe").await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("RabbitMQ did not come back within 60 s")
}

/// Restarts the local Redis with nothing saved: everything it held is lost.
pub async fn restart_redis(url: &str) -> anyhow::Result<()> {
    if !url.starts_with("redis://127.0.0.1:6379") {
        bail!("--restart-redis only restarts the local Redis at 127.0.0.1:6379, not {url}");
    }
    // SHUTDOWN closes the connection instead of answering; the error is expected.
    let _ = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"])
        .output()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run_cmd(
        "redis-server",
        &[
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
    .await?;
    for _ in 0..100 {
        if let Ok(c) = redis::Client::open(url)
            && let Ok(mut conn) = c.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("Redis did not come back within 10 s")
}
