//! `payfleet payments show KEY` and `payfleet payments list`: payments' records read
//! from the live Redis (see [`crate::ops::payments`]), as a table or as JSON; and
//! `payfleet payments resolve KEY`: an operator settles a payment whose outcome the
//! provider cannot tell (see [`crate::ops::resolve`]).

use super::args::{Format, Signed};
use super::fleet;
use super::when;
use crate::config::Settings;
use crate::contract::operator::{OperatorAction, OperatorEvent};
use crate::contract::{IdempotencyKey, ProviderName, State};
use crate::ops::payments::{self, Filter, Payment};
use crate::ops::resolve::{self, Resolution, Resolved};
use crate::outcome::Announcer;
use crate::ratelimit::RateLimiter;
use crate::telemetry::Metrics;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Args {
    /// One payment: state, amount, provider id, attempts, lease, outcome, notes, events.
    Show {
        /// Its idempotency key.
        key: String,
        #[command(flatten)]
        format: Format,
    },
    /// Payments oldest first.
    List {
        /// Only in this state (received, submitting, submitted, action_required,
        /// unknown, succeeded, declined, failed, rejected).
        #[arg(long, value_parser = parse_state)]
        state: Option<State>,
        /// Only at this provider (ecommpay, epay).
        #[arg(long, value_parser = parse_provider)]
        provider: Option<ProviderName>,
        /// Only those created at least this long ago (`90s`, `10m`, `2h`, `1d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        format: Format,
    },
    /// Settle an open payment whose outcome the provider cannot tell (stuck unknown,
    /// or its customer action data lost). The provider is asked first: a final status
    /// of its own must agree, and is then what is recorded.
    Resolve {
        /// Its idempotency key.
        key: String,
        /// succeeded, declined or failed.
        #[arg(long, value_parser = parse_outcome)]
        outcome: State,
        // Also in its terminal event's reason and the record's note.
        #[command(flatten)]
        signed: Signed,
        #[command(flatten)]
        format: Format,
    },
}

fn parse_outcome(s: &str) -> Result<State, String> {
    match State::parse(s) {
        Some(st @ (State::Succeeded | State::Declined | State::Failed)) => Ok(st),
        _ => Err(format!("no outcome {s:?} (succeeded, declined, failed)")),
    }
}

fn parse_state(s: &str) -> Result<State, String> {
    State::parse(s).ok_or_else(|| format!("no state {s:?}"))
}

fn parse_provider(s: &str) -> Result<ProviderName, String> {
    ProviderName::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("no provider {s:?} (ecommpay, epay)"))
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let store = fleet::store(&settings).await?;
    match args {
        Args::Show { key, format } => {
            let key = IdempotencyKey::parse(key).map_err(anyhow::Error::msg)?;
            let Some(p) = payments::show(&store, &key)
                .await
                .context("reading Redis")?
            else {
                eprintln!(
                    "payfleet: no record for {key} (never seen, expired after \
                     redis.retention_ms, or lost)"
                );
                return Ok(ExitCode::FAILURE);
            };
            format.print(&p, print_payment)?;
        }
        Args::List {
            state,
            provider,
            older_than,
            limit,
            format,
        } => {
            let filter = Filter {
                state,
                provider,
                older_than,
            };
            let found = payments::list(&store, &filter, limit)
                .await
                .context("reading Redis")?;
            format.print(found.as_slice(), print_list)?;
        }
        Args::Resolve {
            key,
            outcome,
            signed,
            format,
        } => {
            let key = IdempotencyKey::parse(key).map_err(anyhow::Error::msg)?;
            let resolution = Resolution {
                key: &key,
                outcome,
                by: &signed.by,
                reason: &signed.reason,
            };
            return run_resolve(&settings, store, &resolution, format).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_resolve(
    settings: &Settings,
    store: crate::state::StateStore,
    r: &Resolution<'_>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let metrics = Arc::new(Metrics::new("operator"));
    let providers = crate::app::providers(settings, &metrics).await?;
    // The provider is asked as the fleet asks it, within the account's status limit.
    let limiter = RateLimiter::from_settings(settings, metrics.clone())?;
    let (conn, publisher) = fleet::publisher(settings, "payfleet-operator").await?;
    let announcer = Announcer {
        publisher: publisher.clone(),
        store: store.clone(),
        metrics,
    };
    let result = async {
        match resolve::resolve(&store, &providers, &limiter, &announcer, r).await? {
            Err(why) => {
                eprintln!("payfleet: {} not resolved: {why}", r.key);
                Ok(ExitCode::FAILURE)
            }
            Ok(done) => {
                let event = OperatorEvent::new(
                    OperatorAction::PaymentResolved,
                    r.key.as_str().to_owned(),
                    r.by.to_owned(),
                    format!("{} (outcome {})", r.reason, done.state),
                );
                fleet::announce_on(&publisher, &event).await?;
                format.print(&done, print_resolved)?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
    .await;
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    result
}

fn print_resolved(done: &Resolved) {
    let whose = match done.by_provider {
        true => "the provider's own outcome, which agrees",
        false => "the operator's outcome",
    };
    println!(
        "resolved {}: {} ({whose}; the provider says {}); its event is published",
        done.idempotency_key, done.state, done.provider_status
    );
    println!("note: {}", done.note);
}

fn print_payment(p: &Payment) {
    let row = |name: &str, value: String| println!("{name:<16} {value}");
    let or_none = |v: Option<&str>| v.unwrap_or("-").to_owned();
    row("idempotency key", p.idempotency_key.clone());
    row("state", p.state.to_owned());
    row(
        "method",
        format!(
            "{} {} at {} (account {})",
            or_none(p.method),
            or_none(p.operation),
            or_none(p.provider),
            or_none(p.account.as_deref())
        ),
    );
    row(
        "amount",
        p.amount.as_ref().map_or("-".into(), |a| {
            format!("{} {} ({} minor units)", a.decimal, a.currency, a.minor)
        }),
    );
    row("provider id", or_none(p.provider_payment_id.as_deref()));
    row("attempts", format!("{} (fence {})", p.attempts, p.fence));
    row(
        "lease",
        p.lease.as_ref().map_or("none".into(), |l| {
            format!(
                "held by {} until {}",
                or_none(l.owner.as_deref()),
                when(Some(l.until))
            )
        }),
    );
    row("created", when(p.created_at));
    row("updated", when(p.updated_at));
    row("last sent", when(p.last_sent_at));
    if let Some(o) = &p.outcome {
        let mut parts = Vec::new();
        if let Some(c) = &o.code {
            parts.push(format!("code {c}"));
        }
        if let Some(m) = &o.message {
            parts.push(format!("message {m:?}"));
        }
        if let Some(r) = &o.reason {
            parts.push(format!("reason {r:?}"));
        }
        if o.has_action {
            parts.push("customer action data sent".into());
        }
        row("outcome", parts.join(", "));
    } else {
        row("outcome", "none yet".into());
    }
    if let Some(note) = &p.note {
        row("note", format!("{note} (at {})", when(p.noted_at)));
    }
    if p.events.is_empty() {
        row("events", "none kept".into());
    }
    for (i, e) in p.events.iter().enumerate() {
        let name = if i == 0 { "events" } else { "" };
        let at = e
            .published_at
            .map_or(String::new(), |t| format!(" at {}", when(Some(t))));
        row(name, format!("payment.{} {}{at}", e.status, e.publication));
    }
    row("trace", or_none(p.traceparent.as_deref()));
}

fn print_list(found: &[Payment]) {
    println!(
        "{:<24} {:<16} {:<32} {:<28} {:>20} {:>3}",
        "created", "state", "idempotency key", "method", "amount", "att"
    );
    for p in found {
        let method = format!("{}.{}", p.method.unwrap_or("-"), p.operation.unwrap_or("-"));
        let amount = p
            .amount
            .as_ref()
            .map_or("-".into(), |a| format!("{} {}", a.decimal, a.currency));
        println!(
            "{:<24} {:<16} {:<32} {:<28} {:>20} {:>3}",
            when(p.created_at),
            p.state,
            p.idempotency_key,
            method,
            amount,
            p.attempts
        );
    }
    println!("{} payment(s)", found.len());
}
