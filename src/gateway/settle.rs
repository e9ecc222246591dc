//! Applying an outcome a provider reported (by callback, or confirmed by a status
//! query) to its command's record, once, and publishing its event: shared by every
//! provider's callbacks.

use super::Gateway;
use crate::contract::IdempotencyKey;
use crate::pipeline::announce::Announcement;
use crate::state::{Meta, Settle, State, TraceContext};
use crate::telemetry::label::CallbackResult;

/// An outcome a provider reported (final, or asking for the customer's action), to
/// apply to a command's record.
pub(super) struct Settled<'a> {
    pub state: State,
    pub outcome: &'a crate::state::Outcome,
    pub payment_id: &'a str,
    pub fallback: &'a Meta,
}

/// What applying a reported outcome came to: `applied`, `duplicate`, `late` or
/// `conflicting`, and the command's trace context from its record.
pub(super) struct Applied {
    pub result: CallbackResult,
    pub context: TraceContext,
}

/// Records the outcome once and publishes its event; a duplicate only makes sure the
/// recorded outcome's event is out. Shared by every provider's callbacks. The event
/// continues the provider's `traceparent` header if it sent one, else the command's own
/// trace (read by the same script that settles, and recorded on the current span).
pub(super) async fn apply(
    gw: &Gateway,
    key: &IdempotencyKey,
    settled: Settled<'_>,
    header_traceparent: Option<&str>,
) -> anyhow::Result<Applied> {
    let Settled {
        state,
        outcome,
        payment_id,
        fallback,
    } = settled;
    // Connected first: a broker outage must not leave the outcome recorded with its
    // publish claimed by a request that cannot publish.
    let announcer = gw.announcer().await?;
    let settled = gw
        .store
        .settle(key, state, outcome, fallback, payment_id)
        .await?;
    let (Settle::Applied { context, .. } | Settle::Duplicate { context, .. }) = &settled;
    let mut context = context.clone();
    if let Some(tp) = header_traceparent {
        context.traceparent = Some(tp.to_owned());
    }
    let traceparent = context.traceparent.as_deref();
    if let Some(trace_id) = traceparent.and_then(crate::telemetry::trace::trace_id) {
        tracing::Span::current().record("trace_id", trace_id);
    }
    let status = match state {
        State::ActionRequired => crate::contract::EventStatus::ActionRequired,
        _ => state
            .terminal_event()
            .expect("callbacks settle final states or ask for action"),
    };
    let announcer = &announcer;
    let announce = |meta: Meta| async move {
        let a = Announcement {
            key,
            status,
            meta: &meta,
            outcome,
            payment_id: Some(payment_id),
            traceparent,
        };
        announcer.announce(a, state).await
    };
    let result = match settled {
        Settle::Applied { meta, .. } => {
            gw.metrics.transition(state);
            announce(meta).await?;
            CallbackResult::Applied
        }
        Settle::Duplicate {
            state: State::ActionRequired,
            event,
            meta,
            ..
        } if state == State::ActionRequired => {
            // A resent redirect: its event goes out again only if it never did.
            if event != crate::state::EventState::Published {
                announce(meta).await?;
            }
            CallbackResult::Duplicate
        }
        Settle::Duplicate {
            state: recorded, ..
        } if state == State::ActionRequired => {
            // The payment moved on before its redirect arrived: nothing to say now.
            tracing::info!(recorded = recorded.as_str(), "late redirect callback");
            CallbackResult::Late
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
                    "callback contradicts the recorded outcome; keeping the first"
                );
            }
            if !announcer
                .ensure_published(key, recorded, event, traceparent)
                .await?
            {
                anyhow::bail!("another request is still publishing this outcome");
            }
            if recorded == state {
                CallbackResult::Duplicate
            } else {
                CallbackResult::Conflicting
            }
        }
    };
    Ok(Applied { result, context })
}
