//! The `payfleet` command line: one file per subcommand.

mod banks;
mod bench;
mod chaos;
mod demo;
mod demo_epay;
mod demo_india;
mod gateway;
mod mix;
pub(crate) mod processes;
mod publish;
mod reconciler;
mod sandbox;
mod worker;

use crate::config::Settings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "payfleet",
    version,
    about = "A fleet of workers that moves money"
)]
pub struct Cli {
    /// Configuration file layered over the built-in defaults (see config/default.toml).
    #[arg(long, global = true, env = "PAYFLEET_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume commands, call providers, publish events.
    Worker(worker::Args),
    /// Receive provider callbacks over HTTP.
    Gateway,
    /// Settle payments whose provider result is late or lost (one leads at a time).
    Reconciler,
    /// Run the local provider simulator.
    Sandbox,
    /// Publish commands from a JSON-lines file or stdin, with confirms.
    Publish(publish::Args),
    /// Prove money safety under kill -9, broker and Redis restarts and provider faults.
    Chaos(chaos::Args),
    /// Run sandbox, gateway and workers in one process against a varied batch of payouts.
    Demo(demo::Args),
    /// List the banks a payment method supports (`payfleet banks india payout`).
    Banks(banks::Args),
    /// Measure throughput, latency, CPU and memory of a real fleet against the broker.
    Bench(bench::Args),
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        let settings = match Settings::load(self.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("payfleet: {e}");
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init_logging(&settings.telemetry);
        let result = match self.command {
            Command::Worker(args) => worker::run(settings, args).await,
            Command::Gateway => gateway::run(settings).await,
            Command::Reconciler => reconciler::run(settings).await,
            Command::Sandbox => sandbox::run(settings).await,
            Command::Publish(args) => publish::run(settings, args).await,
            Command::Demo(args) => demo::run(settings, args).await,
            Command::Chaos(args) => chaos::run(settings, args).await,
            Command::Banks(args) => banks::run(settings, args).await,
            Command::Bench(args) => bench::run(settings, args).await,
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("payfleet: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
