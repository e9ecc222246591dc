//! The tools' command line (`payfleet-tools`, reached as `payfleet demo|bench|chaos`):
//! one file per subcommand.

mod bench;
mod chaos;
mod chaos_cluster;
mod chaos_faults;
mod chaos_verdict;
pub mod cluster;
mod demo;
mod demo_epay;
mod demo_homebank;
mod demo_india;
mod hostile;
mod ledger;
mod mix;
mod outage;
pub mod processes;
mod send;

use crate::settings::FleetSettings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "payfleet",
    bin_name = "payfleet",
    version,
    about = "payfleet's tools: demo, benchmarks and the chaos proof"
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
    /// Prove money safety under kill -9, broker and Redis restarts (or, with --cluster,
    /// cluster node kills) and provider faults.
    Chaos(chaos::Args),
    /// Run sandbox, gateway and workers in one process against a varied batch of payouts.
    Demo(demo::Args),
    /// Measure throughput, latency, CPU and memory of a real fleet against the broker.
    Bench(bench::Args),
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        let settings = match FleetSettings::load(self.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("payfleet: {e}");
                return ExitCode::from(2);
            }
        };
        payfleet::telemetry::init_logging(&settings.telemetry);
        let result = match self.command {
            Command::Demo(args) => demo::run(settings, args).await,
            Command::Chaos(args) => chaos::run(settings, args).await,
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
