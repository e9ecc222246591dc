use crate::app::{Shutdown, spawn_reconciler, termination_signal};
use crate::config::Settings;
use crate::telemetry::Metrics;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::default();
    let metrics = Arc::new(Metrics::new("reconciler"));
    let (ops, task) = spawn_reconciler(&settings, &shutdown, true, metrics).await?;
    tracing::info!(ops = ?ops, "reconciler started");
    termination_signal().await;
    shutdown.trigger();
    task.await?;
    Ok(ExitCode::SUCCESS)
}
