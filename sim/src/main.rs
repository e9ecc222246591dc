//! `payfleet-sim` (also `payfleet sandbox`): serves the provider simulator until SIGTERM
//! or SIGINT.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The payfleet provider simulator (ECommPay Gate and Halyk epay).
#[derive(Parser)]
#[command(name = "payfleet-sim", version)]
struct Args {
    /// A configuration file; only its `[sandbox]` section is read.
    #[arg(long, env = "PAYFLEET_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `sandbox.listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    // Settings that do not load are the user's to fix: named, with exit code 2.
    let mut settings = match payfleet_sim::SimSettings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("payfleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    match payfleet_sim::run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payfleet-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
