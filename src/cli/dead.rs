//! `payfleet dead list|show|replay`: the live dead-letter queue (see
//! [`crate::ops::dead`]), as a table or as JSON.

use super::args::Format;
use super::when;
use crate::bus::Names;
use crate::config::Settings;
use crate::contract::FingerprintKey;
use crate::ops::dead::{self, Detail, Listing, Replay, Replayed};
use crate::ops::judge::Verdict;
use anyhow::Context;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Every dead letter: id, class, reason, key; and counts by class.
    List {
        #[command(flatten)]
        format: Format,
    },
    /// One dead letter whole (card data redacted).
    Show {
        id: String,
        #[command(flatten)]
        format: Format,
    },
    /// Put dead letters back on their routing key where that is safe, and remove those
    /// of payments already final (see README).
    Replay {
        /// The ids to replay.
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Say what each would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who replays: put on the replayed commands and the operator events.
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let url = &settings.amqp.url;
    let names = Names::new(&settings.amqp.namespace);
    let reading = || format!("reading {}", names.dead());
    match args {
        Args::List { format } => {
            let listing = dead::list(url, &names).await.with_context(reading)?;
            format.print(&listing, print_listing)?;
        }
        Args::Show { id, format } => {
            let found = dead::show(url, &names, &id).await.with_context(reading)?;
            if found.is_empty() {
                eprintln!("payfleet: no dead letter with id {id}");
                return Ok(ExitCode::FAILURE);
            }
            format.print(found.as_slice(), print_details)?;
        }
        Args::Replay {
            ids,
            all,
            dry_run,
            by,
            format,
        } => {
            if by
                .as_deref()
                .is_some_and(|b| crate::ops::holds_card_data(&[b]))
            {
                anyhow::bail!("--by may hold a card number, which is never recorded");
            }
            let fingerprint_key = FingerprintKey::new(settings.secrets.epay_fingerprint()?);
            let store = super::fleet::store(&settings).await?;
            let replay = Replay {
                ids: (!all).then_some(ids.as_slice()),
                dry_run,
                by: by.as_deref(),
                fingerprint_key: &fingerprint_key,
                retention_ms: settings.redis.retention_ms,
            };
            let done = dead::replay(url, &names, &store, &replay)
                .await
                .with_context(reading)?;
            format.print(&done, |done| print_replayed(done, dry_run))?;
            let missing: Vec<&String> = ids
                .iter()
                .filter(|id| !done.iter().any(|d| &d.letter.id == *id))
                .collect();
            for id in &missing {
                eprintln!("payfleet: no dead letter with id {id}");
            }
            if !missing.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_listing(listing: &Listing) {
    println!(
        "{:<16} {:<24} {:<20} {:<32} reason",
        "id", "dead-lettered", "class", "idempotency key"
    );
    for l in &listing.letters {
        println!(
            "{:<16} {:<24} {:<20} {:<32} {}",
            l.id,
            when(l.dead_lettered_at),
            l.class.unwrap_or("-"),
            l.idempotency_key.as_deref().unwrap_or("-"),
            l.reason
        );
    }
    let counts: Vec<String> = listing
        .by_class
        .iter()
        .map(|(class, n)| format!("{class} {n}"))
        .collect();
    println!(
        "{} dead letter(s){}{}",
        listing.letters.len(),
        if counts.is_empty() { "" } else { ": " },
        counts.join(", ")
    );
}

fn print_details(found: &[Detail]) {
    for d in found {
        let l = &d.letter;
        println!("id               {}", l.id);
        println!("dead-lettered    {}", when(l.dead_lettered_at));
        println!("class            {}", l.class.unwrap_or("-"));
        println!("reason           {}", l.reason);
        println!("routing key      {}", l.routing_key);
        println!(
            "idempotency key  {}",
            l.idempotency_key.as_deref().unwrap_or("-")
        );
        for (name, value) in &d.headers {
            println!("header           {name}: {value}");
        }
        println!("body             {}", d.body);
    }
}

fn print_replayed(done: &[Replayed], dry_run: bool) {
    if dry_run {
        println!("dry run: nothing was changed");
    }
    for d in done {
        let (action, detail) = match &d.verdict {
            Verdict::Republish { why } if d.republished => {
                ("republished", why.describe().to_owned())
            }
            Verdict::Republish { why } => ("would republish", why.describe().to_owned()),
            Verdict::AlreadyFinal { state } => (
                if d.removed { "removed" } else { "would remove" },
                format!("already {state}, its event out: nothing to send"),
            ),
            Verdict::StayDead { reason } => ("stays dead", reason.clone()),
        };
        println!(
            "{:<16} {:<32} {:<16} {detail}",
            d.letter.id,
            d.letter.idempotency_key.as_deref().unwrap_or("-"),
            action
        );
    }
    let republished = done.iter().filter(|d| d.republished).count();
    let removed = done.iter().filter(|d| d.removed).count();
    println!(
        "{} dead letter(s) judged, {republished} republished, {removed} removed",
        done.len()
    );
}
