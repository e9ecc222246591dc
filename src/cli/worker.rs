use crate::app::{Shutdown, spawn_worker, termination_signal};
use crate::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Name shown in RabbitMQ's consumer list and in logs (default: worker-<pid>).
    #[arg(long)]
    name: Option<String>,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let shutdown = Shutdown::default();
    let (ops, mut task) = spawn_worker(&settings, &name, &shutdown, true).await?;
    tracing::info!(%name, ops = ?ops, "worker started");
    tokio::select! {
        _ = termination_signal() => {
            tracing::info!("stopping: no new commands, finishing those in flight");
            shutdown.trigger();
            (&mut task).await??;
        }
        result = &mut task => result??,
    }
    Ok(ExitCode::SUCCESS)
}
