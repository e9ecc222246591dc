//! `payfleet banks india {sale,payout}`: the banks the provider supports now, asked of
//! Gate (`POST /v2/info/banks/india/{sale,payout}/list`) with the configured project.

use super::args::Format;
use crate::config::Settings;
use crate::providers::ecommpay::india_banks::{self, Direction};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The payment method whose banks to list.
    method: BankMethod,
    /// Banks for purchases or for payouts.
    operation: BankOperation,
    #[command(flatten)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BankMethod {
    /// ECommPay Banks of India.
    India,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BankOperation {
    Sale,
    Payout,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let BankMethod::India = args.method;
    let direction = match args.operation {
        BankOperation::Sale => Direction::Sale,
        BankOperation::Payout => Direction::Payout,
    };
    let ecommpay = crate::app::ecommpay(&settings)?;
    let banks = india_banks::fetch(ecommpay.gate(), direction).await?;
    args.format.print(&banks, |banks| {
        println!("{:>6}  name", "bank_id");
        for b in banks.iter() {
            println!("{:>6}  {}", b.id, b.name);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
