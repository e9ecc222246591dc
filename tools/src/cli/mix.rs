//! The mix over every method and operation, and what publishes it: HomeBank payouts,
//! Banks of India purchases (completed or declined at the bank page), payouts and
//! refunds, Halyk epay Google Pay payments and P2P transfers (3-D Secure ones confirmed
//! with `epay.confirm_3ds`). `payfleet demo` publishes it straight to the broker,
//! `payfleet chaos` paced and through broker restarts ([`PacedSink`]), both with the
//! same drivers.

use super::demo_india::{IndiaPlanned, Report};
use super::send::{Abandoned, Outgoing, Planned, Sink, send_all};
use crate::local::EventTap;
use futures::future::BoxFuture;
use payfleet::bus::PublisherLink;
use payfleet::bus::trace_headers;
use payfleet::contract::IdempotencyKey;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The mix, deterministic for a run id.
pub struct Mix {
    /// Published at once: HomeBank payouts and epay commands (epay's 3-D Secure
    /// confirmations among them, published once their transfer asks).
    pub queued: Vec<Planned>,
    /// The Banks of India share, published wave by wave.
    pub india: Vec<IndiaPlanned>,
}

/// What driving the mix did.
pub struct Driven {
    pub publishes: usize,
    pub india: Report,
}

impl Mix {
    /// `count` commands: a fifth go to Halyk epay, three in ten are Banks of India
    /// ones, the rest HomeBank payouts.
    pub fn plan(run: &str, count: usize) -> Mix {
        let epay = count / 5;
        let india = count * 3 / 10;
        let mut queued = super::demo_homebank::plan(run, count - epay - india);
        queued.extend(super::demo_epay::plan(run, epay));
        Mix {
            queued,
            india: super::demo_india::plan(run, india),
        }
    }

    /// Every planned command.
    pub fn planned(&self) -> impl Iterator<Item = &Planned> {
        self.queued
            .iter()
            .chain(self.india.iter().map(|p| &p.planned))
    }

    /// Publishes the whole mix, plays the Banks of India customers and confirms 3-D
    /// Secure transfers, until every command was published (or `timeout`); the caller
    /// then waits for the terminal events.
    pub async fn drive<S: Sink>(
        &self,
        sink: &S,
        tap: &EventTap,
        window_opens: Instant,
        timeout: Duration,
        abandoned: &Abandoned,
    ) -> anyhow::Result<Driven> {
        let confirmations = super::demo_epay::confirmations(&self.queued);
        let (queued, india, confirmed) = tokio::join!(
            send_all(sink, self.queued.iter()),
            super::demo_india::drive(sink, tap, &self.india, window_opens, timeout),
            super::demo_epay::confirm_3ds(tap, sink, confirmations, timeout, abandoned),
        );
        let (india, india_publishes) = india?;
        Ok(Driven {
            publishes: queued? + india_publishes + confirmed,
            india,
        })
    }
}

/// Publishes paced, and through broker restarts retries until confirmed (a repeat is
/// just another duplicate for payfleet to recognise); remembers what it published.
pub struct PacedSink {
    pub link: PublisherLink,
    pacer: tokio::sync::Mutex<tokio::time::Interval>,
    pub publishes: AtomicUsize,
    published: Mutex<HashSet<IdempotencyKey>>,
}

impl PacedSink {
    pub fn new(link: PublisherLink, rate: u32) -> Self {
        let mut ticks =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
        // After a stall (broker restart) keep the pace instead of bursting.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        PacedSink {
            link,
            pacer: tokio::sync::Mutex::new(ticks),
            publishes: AtomicUsize::new(0),
            published: Mutex::default(),
        }
    }

    pub fn published(&self) -> HashSet<IdempotencyKey> {
        self.published.lock().expect("published lock").clone()
    }
}

impl Sink for PacedSink {
    fn send<'a>(&'a self, c: Outgoing<'a>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.pacer.lock().await.tick().await;
            loop {
                let sent = match self.link.get().await {
                    Ok(publisher) => publisher
                        .publish_command(c.routing_key, c.body, trace_headers())
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if sent {
                    self.publishes.fetch_add(1, Ordering::Relaxed);
                    self.published
                        .lock()
                        .expect("published lock")
                        .insert(c.key.clone());
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}
