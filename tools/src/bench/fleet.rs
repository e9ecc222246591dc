//! What is measured: worker processes (always separate `payfleet worker` processes of
//! this executable), with the gateway and the sandbox either as processes too or inside
//! the bench process, all in a namespace of their own on the local RabbitMQ and Redis.

use crate::cli::processes::{Proc, child_env, free_port, wait_http};
use crate::settings::FleetSettings;
use anyhow::{Context, bail};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use payfleet::app::{self, Shutdown};
use payfleet::bus::{self, Names};
use payfleet::config::Settings;
use payfleet::contract::ProviderName;
use payfleet_sim::Stats;
use payfleet_sim::arrivals::Arrival;
use payfleet_sim::faults::{EndpointFaults, Faults};
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Declares the fleet's topology in `names`' namespace; returns the connection and
/// channel used.
pub async fn declare(
    s: &Settings,
    names: &Names,
    connection_name: &str,
) -> anyhow::Result<(lapin::Connection, lapin::Channel)> {
    let conn = bus::connect(&s.amqp.url, connection_name).await?;
    bus::declare(&conn, names, &bus::Shape::of(s)).await?;
    let ch = conn.create_channel().await?;
    Ok((conn, ch))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Services {
    /// Gateway and sandbox as separate processes (their CPU is measured apart).
    Processes,
    /// Gateway and sandbox inside the bench process (no gateway CPU figure).
    InProcess,
}

pub struct Fleet {
    pub settings: FleetSettings,
    pub sandbox_url: String,
    pub logs: PathBuf,
    procs: Vec<Proc>,
    in_process: Option<(Shutdown, Vec<JoinHandle<()>>)>,
}

impl Fleet {
    /// Starts the sandbox and gateway, then `workers` workers, and returns once every
    /// worker consumes.
    pub async fn start(
        mut settings: FleetSettings,
        workers: usize,
        services: Services,
    ) -> anyhow::Result<Self> {
        let names = Names::new(&settings.amqp.namespace);
        let (conn, ch) = declare(&settings, &names, "payfleet-bench-setup").await?;
        let logs = std::env::temp_dir().join(&settings.amqp.namespace);
        std::fs::create_dir_all(&logs)?;
        let mut fleet = Fleet {
            sandbox_url: String::new(),
            logs,
            procs: Vec::new(),
            in_process: None,
            settings: settings.clone(),
        };
        let (sandbox_port, gateway_port, gateway_ops_port) = match services {
            Services::Processes => (free_port()?, free_port()?, free_port()?),
            Services::InProcess => {
                let shutdown = Shutdown::default();
                let (gateway, gateway_task) = app::spawn_gateway(&settings, &shutdown).await?;
                settings.sandbox.ecommpay_callback_url =
                    format!("http://{}/callbacks/ecommpay", gateway.callbacks);
                let listener = tokio::net::TcpListener::bind(settings.sandbox.listen).await?;
                let (sandbox, _, sandbox_task) =
                    crate::local::spawn_sandbox(listener, &settings, &shutdown)?;
                fleet.in_process = Some((shutdown, vec![gateway_task, sandbox_task]));
                (sandbox.port(), gateway.callbacks.port(), gateway.ops.port())
            }
        };
        fleet.sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
        let s = &settings;
        let mut env = child_env(s, sandbox_port, gateway_port, gateway_ops_port);
        // Later entries win over child_env's.
        env.extend(
            [
                ("AMQP__PREFETCH", s.amqp.prefetch.to_string()),
                ("WORKER__MAX_IN_FLIGHT", s.worker.max_in_flight.to_string()),
                ("SANDBOX__RECORD_ARRIVALS", "true".into()),
                ("TELEMETRY__LOG_LEVEL", s.telemetry.log_level.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (format!("PAYFLEET__{k}"), v)),
        );
        let mut start = |role: &str, args: &[&str]| -> anyhow::Result<()> {
            let mut p = Proc {
                name: role.to_owned(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: env.clone(),
                log: fleet.logs.join(format!("{role}.log")),
                child: None,
            };
            p.start()?;
            fleet.procs.push(p);
            Ok(())
        };
        if services == Services::Processes {
            start("sandbox", &["sandbox"])?;
            start("gateway", &["gateway"])?;
        }
        for i in 0..workers {
            let name = format!("worker-{i}");
            start(&name, &["worker", "--name", &name])?;
        }
        wait_http(&format!("{}/healthz", fleet.sandbox_url)).await?;
        wait_http(&format!("http://127.0.0.1:{gateway_ops_port}/readyz")).await?;
        let queue = names.command_queue(ProviderName::Ecommpay);
        let mut consumers = 0;
        for _ in 0..300 {
            let q = ch
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::default().passive(),
                    FieldTable::default(),
                )
                .await?;
            consumers = q.consumer_count() as usize;
            if consumers >= workers {
                let _ = conn.close(200, "ready".into()).await;
                return Ok(fleet);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "only {consumers} of {workers} workers consume after 30 s (logs in {})",
            fleet.logs.display()
        )
    }

    /// Every process to account for: role and pid.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.child.as_ref()?.id()?)))
            .collect()
    }

    /// Delays every provider answer by `ms` (the sandbox's `slow_ms` fault).
    pub async fn set_provider_latency(&self, ms: u64) -> anyhow::Result<()> {
        let faults = Faults {
            endpoints: [(
                "*".to_owned(),
                EndpointFaults {
                    slow_ms: ms,
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        reqwest::Client::new()
            .put(format!("{}/sandbox/faults", self.sandbox_url))
            .json(&faults)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub async fn sandbox_stats(&self) -> anyhow::Result<Stats> {
        Ok(reqwest::get(format!("{}/sandbox/stats", self.sandbox_url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn arrivals(&self) -> anyhow::Result<Vec<Arrival>> {
        reqwest::get(format!("{}/sandbox/arrivals", self.sandbox_url))
            .await?
            .error_for_status()?
            .json()
            .await
            .context("reading /sandbox/arrivals")
    }

    /// Stops the workers (SIGTERM), then the gateway and sandbox, then removes the
    /// namespace's exchanges and queues and its Redis keys (a run leaves a record per
    /// command, which would otherwise weigh on the next run's Redis for an hour).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for p in self.procs.iter_mut().rev() {
            p.terminate().await;
        }
        if let Some((shutdown, tasks)) = self.in_process.take() {
            shutdown.trigger();
            for t in tasks {
                let _ = t.await;
            }
        }
        let s = &self.settings;
        let conn = bus::connect(&s.amqp.url, "payfleet-bench-cleanup").await?;
        // Kept until the connection is closed: a channel dropped (closing) while its
        // connection closes is a connection error to lapin.
        let ch = conn.create_channel().await?;
        bus::delete_all(
            &ch,
            &Names::new(&s.amqp.namespace),
            &s.worker.retry_delays_ms,
        )
        .await
        .context("deleting the bench's queues")?;
        let _ = conn.close(200, "bye".into()).await;
        let conn = payfleet::state::RedisConn::open(&s.redis)?;
        payfleet::state::StateStore::new(conn, &s.redis.key_prefix, 0)
            .delete_all()
            .await
            .context("deleting the bench's Redis keys")?;
        Ok(())
    }
}
