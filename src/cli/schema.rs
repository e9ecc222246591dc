//! `payfleet schema [command|event|operator-event|asyncapi]`: prints the contract as
//! files, JSON Schemas generated from the types payfleet decodes and encodes with, or
//! the AsyncAPI document of the bus. Needs no settings and no services: a team reads
//! the contract before it runs anything.

use crate::contract::schema::Message;
use std::process::ExitCode;

/// The AsyncAPI document, as kept in the repository (its messages point at the JSON
/// Schema files beside it in `schemas/`).
const ASYNCAPI: &str = include_str!("../../schemas/asyncapi.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Which document to print.
    #[arg(value_enum)]
    what: What,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// A command, as published to the commands exchange.
    Command,
    /// A payment event (`payment.<status>`).
    Event,
    /// An operator event (`operator.<action>`).
    OperatorEvent,
    /// The AsyncAPI 3.0 document: exchanges, routing keys, queues, headers.
    Asyncapi,
}

pub fn run(args: Args) -> ExitCode {
    let text = match args.what {
        What::Command => Message::Command.render(),
        What::Event => Message::Event.render(),
        What::OperatorEvent => Message::OperatorEvent.render(),
        What::Asyncapi => ASYNCAPI.to_owned(),
    };
    print!("{text}");
    ExitCode::SUCCESS
}
