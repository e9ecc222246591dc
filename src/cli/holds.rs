//! `payfleet holds`: the holds in force, oldest first.

use super::fleet;
use crate::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Print the holds as a JSON array.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let holds = fleet::store(&settings).await?.holds().await?;
    if args.json {
        println!("{}", serde_json::to_string(&holds)?);
        return Ok(ExitCode::SUCCESS);
    }
    if holds.is_empty() {
        println!("no holds: every provider account takes new requests");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<28} {:<16} {:<21} REASON", "TARGET", "BY", "SINCE");
    for h in holds {
        let since = h.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        println!(
            "{:<28} {:<16} {:<21} {}",
            h.target.to_string(),
            h.by,
            since,
            h.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
