//! One handler for every provider's callbacks: the provider proves and reads the request
//! into a verdict, [`outcome`](crate::outcome) applies it, and the verdict decides the
//! answer and the metric label here, in one place.
//!
//! Answers: 200 once an authentic callback's outcome is durably recorded and its event
//! confirmed (duplicates included: ECommPay resends until it gets 200), or when it has
//! nothing to record; 400 malformed or forged; 403 a wrong secret_hash; 404 a payment
//! payfleet never made (when nothing can prove the callback); 503 a redirect that came
//! before the worker recorded Gate's answer; 500 when it could not be checked or
//! recorded, so that the provider sends it again.

use super::Gateway;
use crate::contract::ProviderName;
use crate::outcome::{Report, Settled};
use crate::providers::callback::{Authentic, CallbackVerdict, Refusal, Settlement};
use crate::state::{State, TraceContext};
use crate::telemetry::label::{CallbackResult, LagSince};
use axum::http::{HeaderMap, StatusCode};
use tracing::Instrument;

type Answer = (StatusCode, &'static str);
const OK: Answer = (StatusCode::OK, "ok");
const AGAIN: Answer = (StatusCode::INTERNAL_SERVER_ERROR, "try again");

pub async fn handle(
    gw: &Gateway,
    provider: ProviderName,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let name = provider.as_str();
    gw.metrics.callback_received(name);
    let span = tracing::info_span!(
        "callback",
        provider = name,
        key = tracing::field::Empty,
        state = tracing::field::Empty,
        payment_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    // Instrumented, not entered: a span entered across an await stays entered on the
    // thread while the task sleeps, so other callbacks nest under it without end (under
    // `payfleet bench` load the gateway died of a stack overflow).
    let (answer, label) = async {
        let verdict = gw.providers.named(provider).callback(body).await;
        if let CallbackVerdict::Authentic(_) = verdict {
            gw.metrics.callback_verified(name);
        }
        answer(gw, name, verdict, header_traceparent(headers)).await
    }
    .instrument(span.clone())
    .await;
    // No await below: the guard keeps the span on this thread.
    let _enter = span.enter();
    gw.metrics.callback(name, label);
    answer
}

/// The answer to a verdict and its metric label.
async fn answer(
    gw: &Gateway,
    provider: &str,
    verdict: CallbackVerdict,
    traceparent: Option<&str>,
) -> (Answer, CallbackResult) {
    match verdict {
        CallbackVerdict::Refused(Refusal::Malformed(missing))
        | CallbackVerdict::Authentic(Authentic::Malformed(missing)) => (
            (StatusCode::BAD_REQUEST, missing),
            CallbackResult::Malformed,
        ),
        CallbackVerdict::Refused(Refusal::BadSignature) => (
            (StatusCode::BAD_REQUEST, "signature mismatch"),
            CallbackResult::RefusedSignature,
        ),
        CallbackVerdict::Refused(Refusal::WrongSecret) => (
            (StatusCode::FORBIDDEN, "secret_hash mismatch"),
            CallbackResult::RefusedSecret,
        ),
        CallbackVerdict::Refused(Refusal::UnknownPayment) => (
            (StatusCode::NOT_FOUND, "unknown payment"),
            CallbackResult::UnknownPayment,
        ),
        CallbackVerdict::Unchecked(why) => {
            tracing::error!(error = %why, "callback not checked; the provider will resend it");
            (AGAIN, CallbackResult::Error)
        }
        CallbackVerdict::Authentic(Authentic::NotOurs) => (OK, CallbackResult::UnknownPayment),
        CallbackVerdict::Authentic(Authentic::InProgress) => (OK, CallbackResult::InProgress),
        CallbackVerdict::Authentic(Authentic::Unconfirmed(why)) => {
            tracing::warn!(error = %why, "callback not confirmed; the provider will resend it");
            (AGAIN, CallbackResult::Error)
        }
        CallbackVerdict::Authentic(Authentic::Settle(s)) => {
            settle(gw, provider, s, traceparent).await
        }
    }
}

/// Applies an authentic callback's outcome. The event continues the provider's
/// `traceparent` header if it sent one, else the command's own trace.
async fn settle(
    gw: &Gateway,
    provider: &str,
    s: Settlement,
    traceparent: Option<&str>,
) -> (Answer, CallbackResult) {
    let span = tracing::Span::current();
    span.record("key", s.key.as_str());
    span.record("state", s.state.as_str());
    span.record("payment_id", s.payment_id.as_str());
    if s.state == State::ActionRequired && submitting(gw, &s).await {
        // The worker has not yet recorded Gate's answer: taken now, its `accepted`
        // would follow (and seem to replace) this `action_required`. Gate resends.
        return (
            (StatusCode::SERVICE_UNAVAILABLE, "try again"),
            CallbackResult::TooEarly,
        );
    }
    match apply(gw, &s, traceparent).await {
        Ok((Settled::Applied, context)) => {
            record_lag(gw, provider, &s, &context);
            (OK, CallbackResult::Applied)
        }
        Ok((Settled::Duplicate, _)) => (OK, CallbackResult::Duplicate),
        Ok((Settled::Conflicting, _)) => (OK, CallbackResult::Conflicting),
        Ok((Settled::Late, _)) => (OK, CallbackResult::Late),
        Ok((Settled::Publishing, _)) => {
            tracing::error!("another request is still publishing this outcome; resent later");
            (AGAIN, CallbackResult::Error)
        }
        Err(e) => {
            tracing::error!(error = %e, "callback not recorded; the provider will resend it");
            (AGAIN, CallbackResult::Error)
        }
    }
}

async fn apply(
    gw: &Gateway,
    s: &Settlement,
    traceparent: Option<&str>,
) -> anyhow::Result<(Settled, TraceContext)> {
    // Connected first: a broker outage must not leave the outcome recorded with its
    // publish claimed by a request that cannot publish.
    let announcer = gw.announcer().await?;
    let report = Report {
        key: &s.key,
        state: s.state,
        outcome: &s.outcome,
        payment_id: &s.payment_id,
        meta: &s.meta,
        traceparent,
    };
    Ok(crate::outcome::settle(&announcer, report).await?)
}

/// Whether a worker is still between sending the payment and recording the provider's
/// answer. Records only move on from `submitting`, so a look before settling is enough.
async fn submitting(gw: &Gateway, s: &Settlement) -> bool {
    match gw.store.record(&s.key).await {
        Ok(rec) => rec.is_some_and(|rec| rec.state == State::Submitting),
        // Settling will meet the same trouble and answer for it.
        Err(_) => false,
    }
}

/// How long after its submission, and after the provider reached it, an outcome arrived.
fn record_lag(gw: &Gateway, provider: &str, s: &Settlement, context: &TraceContext) {
    if let Some(lag) = context.sent_at.and_then(|t| t.elapsed().ok()) {
        gw.metrics
            .callback_lag(provider, LagSince::Submitted, lag.as_secs_f64());
    }
    if let Some(at) = s.reported_at {
        let lag = (chrono::Utc::now() - at).as_seconds_f64();
        gw.metrics
            .callback_lag(provider, LagSince::ProviderTime, lag);
    }
}

/// The `traceparent` header a provider sent with a callback, if any: the event
/// continues it rather than the command's own trace.
fn header_traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get("traceparent").and_then(|v| v.to_str().ok())
}
