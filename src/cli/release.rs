//! `payfleet release PROVIDER[/ACCOUNT] --by NAME`: lifts the holds on that target, an
//! operator's and the breaker's. Held commands go out as they come back from their
//! delay queue (within about 30 s).

use super::fleet;
use crate::config::Settings;
use crate::contract::hold::HoldTarget;
use crate::contract::operator::{OperatorAction, OperatorEvent};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The target exactly as it was held (`payfleet holds` lists them).
    #[arg(value_parser = HoldTarget::parse)]
    target: HoldTarget,
    /// Who lifts it.
    #[arg(long)]
    by: String,
    /// Why (kept in its `operator.hold_released` event).
    #[arg(long, default_value = "")]
    reason: String,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    if args.by.trim().is_empty() {
        anyhow::bail!("--by must say who lifts the hold");
    }
    if crate::ops::holds_card_data(&[&args.by, &args.reason]) {
        anyhow::bail!("the reason or name may hold a card number, which is never recorded");
    }
    let lifted = fleet::store(&settings)
        .await?
        .release_hold(&args.target)
        .await?;
    if lifted.is_empty() {
        eprintln!("payfleet: no hold on {} (see payfleet holds)", args.target);
        return Ok(ExitCode::FAILURE);
    }
    let event = OperatorEvent::new(
        OperatorAction::HoldReleased,
        args.target.to_string(),
        args.by,
        args.reason,
    );
    fleet::announce(&settings, &event).await?;
    for old in lifted {
        println!(
            "released {} (held by {} since {}: {})",
            old.target, old.by, old.since, old.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
