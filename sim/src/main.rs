//! `payfleet-sim`: serves the provider simulator until SIGTERM or SIGINT.

use clap::Parser;
use std::path::PathBuf;

/// The payfleet provider simulator (ECommPay Gate and Halyk epay).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A configuration file; only its `[sandbox]` section is read.
    #[arg(long, env = "PAYFLEET_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `sandbox.listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut settings = payfleet_sim::SimSettings::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    payfleet_sim::run(settings).await
}
