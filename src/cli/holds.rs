//! `payfleet holds`: the holds in force, oldest first.

use super::args::Format;
use super::fleet;
use crate::config::Settings;
use crate::contract::hold::Hold;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    // A JSON array of the holds.
    #[command(flatten)]
    format: Format,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let holds = fleet::store(&settings).await?.holds().await?;
    args.format.print(holds.as_slice(), print_holds)?;
    Ok(ExitCode::SUCCESS)
}

fn print_holds(holds: &[Hold]) {
    if holds.is_empty() {
        println!("no holds: every provider account takes new requests");
        return;
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
}
