//! Recording an outcome and publishing its event, once: the provider's (by its answer,
//! a callback or a status query) without a lease, since the provider is the authority
//! on it; a state the worker reached itself only while it holds the lease.

use super::announce::{AnnounceError, Announcement, Announcer};
use crate::contract::{EventStatus, IdempotencyKey};
use crate::state::{EventState, Lease, Meta, Outcome, Settle, State, TraceContext, Transition};
use std::time::SystemTime;

/// An outcome to record for one command.
pub struct Report<'a> {
    pub key: &'a IdempotencyKey,
    pub state: State,
    pub outcome: &'a Outcome,
    /// The id the provider knows the payment by.
    pub payment_id: &'a str,
    /// What is known of the command, for the event of a state reached with the lease;
    /// a settled outcome's event says what the record remembers.
    pub meta: &'a Meta,
    /// The trace the event continues (a callback's own header, the command's delivery);
    /// `None`: settling continues the command's trace its record keeps.
    pub traceparent: Option<&'a str>,
}

/// What settling a reported outcome came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Recorded now; its event is confirmed by the broker.
    Applied,
    /// Recorded so before; its event is out (a resent redirect's again, if it never was).
    Duplicate,
    /// Another outcome was recorded first and is kept; its event is out.
    Conflicting,
    /// A redirect for a payment that has moved on since, or an operator's resolution of
    /// one a worker took since (see [`settle_from`]): nothing recorded, nothing to say.
    Late,
    /// Recorded before, and another process still publishes its event: the caller must
    /// not ack, answer 200 or forget it, but look again later, so the event cannot be
    /// lost if that process dies.
    Publishing,
    /// No record: a payment payfleet never sent (or one Redis lost, which its command's
    /// own attempts settle). Nothing was recorded, so no command can adopt it.
    Missing,
}

/// What recording a state with the lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leased {
    /// Recorded; its event is confirmed by the broker.
    Announced(EventStatus),
    /// The lease was lost to another worker, or the provider's result got there first.
    Fenced,
    /// The record vanished (Redis lost its data).
    Missing,
}

/// The event a recorded state is announced with.
fn event_status(state: State) -> EventStatus {
    match state {
        State::Submitted => EventStatus::Accepted,
        State::ActionRequired => EventStatus::ActionRequired,
        other => other
            .terminal_event()
            .expect("only event-bearing states are recorded as outcomes"),
    }
}

/// Applies an outcome the provider reported (final, or asking for the customer's
/// action) to its record once, and publishes its event; a duplicate only makes sure the
/// recorded outcome's event is out. Also gives the command's trace context from its
/// record (read by the same script that settles).
pub async fn settle(
    announcer: &Announcer,
    report: Report<'_>,
) -> Result<(Settled, TraceContext), AnnounceError> {
    settle_from(announcer, report, &[]).await
}

/// [`settle`] only from one of the open states `from` (empty: any). An operator's
/// resolution names the states it was decided for: a payment a worker took since it
/// was read is left alone ([`Settled::Late`]).
pub async fn settle_from(
    announcer: &Announcer,
    report: Report<'_>,
    from: &[State],
) -> Result<(Settled, TraceContext), AnnounceError> {
    let Report {
        key,
        state,
        outcome,
        payment_id,
        meta: _,
        traceparent,
    } = report;
    let Some(settled) = announcer
        .store
        .settle_from(key, state, outcome, from)
        .await?
    else {
        return Ok((Settled::Missing, TraceContext::default()));
    };
    let (Settle::Applied { context, .. }
    | Settle::Duplicate { context, .. }
    | Settle::Moved { context, .. }) = &settled;
    let mut context = context.clone();
    if let Some(tp) = traceparent {
        context.traceparent = Some(tp.to_owned());
    }
    let traceparent = context.traceparent.as_deref();
    if let Some(trace_id) = traceparent.and_then(crate::telemetry::trace::trace_id) {
        tracing::Span::current().record("trace_id", trace_id);
    }
    let announce = |meta: Meta| async move {
        let a = Announcement {
            key,
            status: event_status(state),
            meta: &meta,
            outcome,
            payment_id: Some(payment_id),
            traceparent,
        };
        announcer.announce(a, state).await
    };
    let recorded = match &settled {
        Settle::Applied { .. } => state,
        Settle::Duplicate { state, .. } | Settle::Moved { state, .. } => *state,
    };
    let verdict = match settled {
        Settle::Applied { meta, .. } => {
            announcer.metrics.transition(state);
            announce(meta).await?;
            Settled::Applied
        }
        Settle::Duplicate {
            state: State::ActionRequired,
            event,
            meta,
            ..
        } if state == State::ActionRequired => {
            // A resent redirect: its event goes out again only if it never did.
            if event != EventState::Published {
                announce(meta).await?;
            }
            Settled::Duplicate
        }
        Settle::Moved { state: now, .. } => {
            tracing::info!(now = now.as_str(), "taken by a worker since: not settled");
            Settled::Late
        }
        Settle::Duplicate {
            state: recorded, ..
        } if state == State::ActionRequired => {
            tracing::info!(recorded = recorded.as_str(), "late redirect");
            Settled::Late
        }
        Settle::Duplicate {
            state: recorded,
            event,
            ..
        } => {
            if recorded != state {
                tracing::error!(
                    recorded = recorded.as_str(),
                    reported = state.as_str(),
                    "reported outcome contradicts the recorded one; keeping the first"
                );
            }
            if !announcer
                .ensure_published(key, recorded, event, traceparent)
                .await?
            {
                Settled::Publishing
            } else if recorded == state {
                Settled::Duplicate
            } else {
                Settled::Conflicting
            }
        }
    };
    // Settled for good, and its event out: the reconciler has nothing left to watch
    // (left in the index, it counted as open until its next check, minutes later).
    if recorded.is_terminal() && !matches!(verdict, Settled::Publishing) {
        announcer.store.untrack(key).await?;
    }
    Ok((verdict, context))
}

/// Records a state the worker reached while holding `lease` (the provider accepted the
/// payment, asked for the customer's action, or retries are spent), and publishes its
/// event. An open payment is indexed for the reconciler, due at `check_at`, in the same
/// round trip: two scripts cannot share it (the index is a hash slot of its own), and
/// so a crash cannot leave it recorded and unwatched. If the write is refused, the
/// entry only costs the reconciler one look at a settled record.
pub async fn record_leased(
    announcer: &Announcer,
    report: Report<'_>,
    lease: &Lease,
    check_at: SystemTime,
) -> Result<Leased, AnnounceError> {
    let store = &announcer.store;
    let (key, state) = (report.key, report.state);
    let (moved, tracked) = tokio::join!(
        store.transition(key, lease, state, Some(report.outcome)),
        store.track(key, check_at, false),
    );
    tracked?;
    match moved? {
        Transition::Ok => {}
        Transition::Missing => return Ok(Leased::Missing),
        Transition::Terminal(_) | Transition::Fenced => return Ok(Leased::Fenced),
    }
    announcer.metrics.transition(state);
    if state.is_terminal() {
        store.untrack(key).await?;
    }
    let status = event_status(state);
    announcer
        .announce(
            Announcement {
                key,
                status,
                meta: report.meta,
                outcome: report.outcome,
                payment_id: Some(report.payment_id),
                traceparent: report.traceparent,
            },
            state,
        )
        .await?;
    Ok(Leased::Announced(status))
}
