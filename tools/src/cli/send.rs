//! What every driver of the mix publishes and sees: the planned commands, where they
//! are published ([`Sink`]), and the events read back ([`Seen`]).

use crate::local::EventTap;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use payfleet::bus::{Publisher, trace_headers};
use payfleet::contract::{Event, EventStatus, IdempotencyKey};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// One demo command: its body, what it should end as, and how often it is published.
#[derive(Clone)]
pub struct Planned {
    pub key: IdempotencyKey,
    pub body: String,
    pub routing_key: &'static str,
    pub expect: EventStatus,
    pub copies: usize,
}

/// Publishes awaiting their confirm at once, per driver.
const IN_FLIGHT: usize = 64;

/// One command to publish.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub key: &'a IdempotencyKey,
    pub routing_key: &'a str,
    pub body: &'a [u8],
}

impl<'a> Outgoing<'a> {
    fn of(p: &'a Planned) -> Self {
        Outgoing {
            key: &p.key,
            routing_key: p.routing_key,
            body: p.body.as_bytes(),
        }
    }
}

/// Where the drivers publish commands.
pub trait Sink: Sync {
    /// Publishes one command, confirmed by the broker.
    fn send<'a>(&'a self, c: Outgoing<'a>) -> BoxFuture<'a, anyhow::Result<()>>;
}

impl Sink for Publisher {
    fn send<'a>(&'a self, c: Outgoing<'a>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.publish_command(c.routing_key, c.body, trace_headers())
                .await?;
            Ok(())
        })
    }
}

/// Publishes every copy of `planned`, `IN_FLIGHT` at a time; returns the publishes.
pub async fn send_all<'a, S: Sink>(
    sink: &'a S,
    planned: impl Iterator<Item = &'a Planned>,
) -> anyhow::Result<usize> {
    // A plain loop rather than stream combinators: their closures make the future
    // too general to be proven `Send` when it is spawned.
    let mut jobs: Vec<&Planned> = planned
        .flat_map(|p| std::iter::repeat_n(p, p.copies))
        .collect();
    jobs.reverse();
    let mut running = FuturesUnordered::new();
    let mut sent = 0;
    loop {
        while running.len() < IN_FLIGHT {
            let Some(p) = jobs.pop() else { break };
            running.push(sink.send(Outgoing::of(p)));
        }
        match running.next().await {
            Some(r) => {
                r?;
                sent += 1;
            }
            None => return Ok(sent),
        }
    }
}

/// What a driver has seen on the tap so far, read incrementally.
#[derive(Default)]
pub struct Seen {
    read: usize,
    /// The first `action_required` event of each key.
    pub asked: HashMap<IdempotencyKey, Event>,
    /// The first terminal status of each key.
    pub terminal: HashMap<IdempotencyKey, EventStatus>,
}

impl Seen {
    pub fn update(&mut self, tap: &EventTap) {
        for e in tap.events_from(self.read) {
            self.read += 1;
            if e.status == EventStatus::ActionRequired {
                self.asked.entry(e.idempotency_key.clone()).or_insert(e);
            } else if e.status.is_terminal() {
                self.terminal.entry(e.idempotency_key).or_insert(e.status);
            }
        }
    }
}

/// Keys whose payment waits for an operator (the record says so): nobody waits for
/// their customer any more.
pub type Abandoned = Mutex<HashSet<IdempotencyKey>>;
