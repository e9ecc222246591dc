//! `payfleet-sim` (also `payfleet sandbox`): the provider simulator as a process.

use clap::Parser;
use payfleet::app::{Shutdown, termination_signal};
use payfleet::config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "payfleet-sim", version, about = "The local provider simulator")]
struct Cli {
    /// Configuration file layered over the built-in defaults.
    #[arg(long, env = "PAYFLEET_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("payfleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payfleet-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    payfleet::telemetry::init_logging(&settings.telemetry);
    let shutdown = Shutdown::default();
    let (addr, _, task) = payfleet_sim::spawn(&settings, &shutdown).await?;
    tracing::info!(%addr, "sandbox listening");
    termination_signal().await;
    shutdown.trigger();
    task.await?;
    Ok(())
}
