//! `payfleet hold PROVIDER[/ACCOUNT] --reason TEXT --by NAME`: no new request goes to
//! that provider or account, fleet-wide, within `worker.holds_refresh_ms`. Commands
//! wait in the delay queues; status queries, callbacks and the reconciler go on.

use super::args::{Format, Signed};
use super::fleet;
use crate::config::Settings;
use crate::contract::hold::{Hold, HoldTarget};
use crate::contract::operator::{OperatorAction, OperatorEvent};
use crate::contract::{DEFAULT_ACCOUNT, ProviderName};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// `ecommpay`, `epay`, or one account: `ecommpay/kz_main`.
    #[arg(value_parser = HoldTarget::parse)]
    target: HoldTarget,
    // Kept with the hold (`payfleet holds`) and in its `operator.hold_set` event.
    #[command(flatten)]
    signed: Signed,
    #[command(flatten)]
    format: Format,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let Signed { by, reason } = args.signed;
    if let Some(why) = crate::ops::unsayable(&by, &reason) {
        anyhow::bail!(why);
    }
    if let Some(account) = &args.target.account
        && !configured(&settings, args.target.provider, account)
    {
        anyhow::bail!(
            "{} has no account {account:?} in this configuration",
            args.target.provider.as_str()
        );
    }
    let hold = Hold {
        target: args.target,
        reason,
        by,
        since: chrono::Utc::now(),
        automatic: false,
    };
    let replaced = fleet::store(&settings).await?.set_hold(&hold).await?;
    let event = OperatorEvent::new(
        OperatorAction::HoldSet,
        hold.target.to_string(),
        hold.by.clone(),
        hold.reason.clone(),
    );
    fleet::announce(&settings, &event).await?;
    args.format.print(&hold, |hold| {
        println!(
            "held {}: no new request goes there (in force on every worker within {} ms)",
            hold.target, settings.worker.holds_refresh_ms
        );
        if let Some(old) = replaced {
            println!(
                "replaced the hold of {} since {}: {}",
                old.by, old.since, old.reason
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `account` is one the configuration gives `provider` (a typo would hold
/// nothing).
fn configured(settings: &Settings, provider: ProviderName, account: &str) -> bool {
    account == DEFAULT_ACCOUNT
        || (provider == ProviderName::Ecommpay && settings.ecommpay.accounts.contains_key(account))
}
