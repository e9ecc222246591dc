//! `payfleet worker`: consumes commands until SIGTERM or SIGINT, then stops as the
//! pipeline's worker describes, losing nothing.

use crate::app::{Shutdown, spawn_worker, termination_signal};
use crate::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Name shown in RabbitMQ's consumer list and in logs (default:
    /// worker-<host name>-<pid>).
    #[arg(long)]
    name: Option<String>,
}

/// The name of an unnamed worker. The host name tells scaled replicas apart, where the
/// pid alone does not: in a container every worker is PID 1.
fn default_name(host: Option<&str>, pid: u32) -> String {
    match host.map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) => format!("worker-{host}-{pid}"),
        None => format!("worker-{pid}"),
    }
}

/// `HOSTNAME` (Docker sets it to the container's), else the kernel's host name.
fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .unwrap_or_else(|| default_name(host_name().as_deref(), std::process::id()));
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

#[cfg(test)]
mod tests {
    use super::default_name;

    #[test]
    fn replicas_are_named_by_host_and_pid() {
        assert_eq!(
            default_name(Some("3f2a9c1d7e0b"), 1),
            "worker-3f2a9c1d7e0b-1"
        );
        assert_eq!(default_name(Some("node-7\n"), 42), "worker-node-7-42");
        assert_eq!(default_name(Some(" "), 42), "worker-42");
        assert_eq!(default_name(None, 42), "worker-42");
    }
}
