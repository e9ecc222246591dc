//! The `payfleet` command line: one file per subcommand.

mod args;
mod banks;
mod dead;
mod fleet;
mod gateway;
mod health;
mod hold;
mod holds;
mod payments;
mod publish;
mod reconciler;
mod release;
mod schema;
mod tools;
mod worker;

use crate::config::{Needs, Settings};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
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
    /// Publish commands from a JSON-lines file or stdin, with confirms.
    Publish(publish::Args),
    /// List the banks a payment method supports (`payfleet banks india payout`).
    Banks(banks::Args),
    /// Read payments' records (`show KEY`, `list --state unknown --older-than 1h`), and
    /// settle one the provider cannot tell (`resolve KEY --outcome declined …`).
    #[command(subcommand)]
    Payments(payments::Args),
    /// Read and replay the dead-letter queue (`list`, `show ID`, `replay --all --dry-run`).
    #[command(subcommand)]
    Dead(dead::Args),
    /// Ask a process's ops listener whether it is ready (`/readyz`): exit 0 or 1.
    Health(health::Args),
    /// Stop new requests to a provider or account, fleet-wide (status queries go on).
    Hold(hold::Args),
    /// Lift a hold.
    Release(release::Args),
    /// List the holds in force.
    Holds(holds::Args),
    /// Print the contract: a message's JSON Schema, or the bus's AsyncAPI document.
    Schema(schema::Args),
    /// `sandbox`, `demo`, `bench`, `chaos`: handed to the `payfleet-sim` and
    /// `payfleet-tools` binaries, which the production binary does not link.
    #[command(external_subcommand)]
    Tool(Vec<OsString>),
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        // None needs settings: a healthcheck must not fail on this process's own, and
        // the contract is read before anything is configured.
        let command = match self.command {
            Command::Tool(args) => return tools::exec(self.config.as_deref(), &args),
            Command::Health(args) => return health::run(args).await,
            Command::Schema(args) => return schema::run(args),
            other => other,
        };
        // The processes that call providers need their secrets, named with every other
        // problem at once; publishing and the bank list do not.
        let needs = match command {
            Command::Worker(_) | Command::Gateway | Command::Reconciler => Needs::ProviderSecrets,
            _ => Needs::Settings,
        };
        let settings = match Settings::load(self.config.as_deref(), needs) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("payfleet: {e}");
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init_logging(&settings.telemetry);
        let result = match command {
            Command::Worker(args) => worker::run(settings, args).await,
            Command::Gateway => gateway::run(settings).await,
            Command::Reconciler => reconciler::run(settings).await,
            Command::Publish(args) => publish::run(settings, args).await,
            Command::Banks(args) => banks::run(settings, args).await,
            Command::Payments(args) => payments::run(settings, args).await,
            Command::Dead(args) => dead::run(settings, args).await,
            Command::Hold(args) => hold::run(settings, args).await,
            Command::Release(args) => release::run(settings, args).await,
            Command::Holds(args) => holds::run(settings, args).await,
            Command::Tool(_) | Command::Health(_) | Command::Schema(_) => {
                unreachable!("handed over above")
            }
        };
        let _ = tokio::task::spawn_blocking(crate::telemetry::flush_traces).await;
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("payfleet: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// A time as the operator commands print it (UTC, to the millisecond), or `-`.
fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("-".into(), |t| {
        t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
    })
}
