use crate::app::{Shutdown, spawn_sandbox, termination_signal};
use crate::config::Settings;
use std::process::ExitCode;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::default();
    let (addr, _, task) = spawn_sandbox(&settings, &shutdown).await?;
    tracing::info!(%addr, "sandbox listening");
    termination_signal().await;
    shutdown.trigger();
    task.await?;
    Ok(ExitCode::SUCCESS)
}
