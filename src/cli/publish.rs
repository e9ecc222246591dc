//! `payfleet publish`: commands from a JSON-lines file or stdin onto the bus, each
//! confirmed by the broker. Lines that cannot be routed are reported, not published.

use crate::bus;
use crate::config::Settings;
use crate::contract::command::routing_key_of;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinSet;

#[derive(clap::Args)]
pub struct Args {
    /// JSON-lines file of commands; `-` or nothing reads stdin.
    file: Option<PathBuf>,
    /// Routing key for every line, instead of the one derived from method and operation
    /// (a worker rejects a command whose method and operation route elsewhere).
    #[arg(long)]
    routing_key: Option<String>,
    /// Publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &args.file {
        Some(p) if p.as_os_str() != "-" => Box::new(tokio::fs::File::open(p).await?),
        _ => Box::new(tokio::io::stdin()),
    };
    let (conn, publisher) = super::fleet::publisher(&settings, "payfleet-publish").await?;
    let mut lines = BufReader::new(reader).lines();
    let mut tasks = JoinSet::new();
    let (mut published, mut failed, mut line_no) = (0u64, 0u64, 0u64);
    let mut tally = |r: Result<(), String>| match r {
        Ok(()) => published += 1,
        Err(e) => {
            failed += 1;
            eprintln!("{e}");
        }
    };
    while let Some(line) = lines.next_line().await? {
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let routing = match &args.routing_key {
            Some(k) => Ok(k.clone()),
            None => serde_json::from_str(&line)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| routing_key_of(&v)),
        };
        let routing = match routing {
            Ok(r) => r,
            Err(e) => {
                tally(Err(format!(
                    "line {line_no}: cannot route it ({e}); use --routing-key"
                )));
                continue;
            }
        };
        while tasks.len() >= args.in_flight.max(1) {
            if let Some(r) = tasks.join_next().await {
                tally(r?);
            }
        }
        let publisher = publisher.clone();
        tasks.spawn(async move {
            publisher
                .publish_command(&routing, line.as_bytes(), bus::trace_headers())
                .await
                .map_err(|e| format!("line {line_no}: {e}"))
        });
    }
    while let Some(r) = tasks.join_next().await {
        tally(r?);
    }
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    println!("published {published} command(s), {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
