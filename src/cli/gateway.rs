use crate::app::{Shutdown, spawn_gateway, termination_signal};
use crate::config::Settings;
use std::process::ExitCode;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::default();
    let (addrs, task) = spawn_gateway(&settings, &shutdown).await?;
    tracing::info!(callbacks = %addrs.callbacks, ops = %addrs.ops, "gateway listening");
    termination_signal().await;
    shutdown.trigger();
    task.await?;
    Ok(ExitCode::SUCCESS)
}
