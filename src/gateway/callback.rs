//! One handler for every provider's callbacks: the provider proves and reads the request
//! into a verdict, [`outcome`](crate::outcome) applies it, and the verdict decides the
//! answer and the metric label here, in one place.
//!
//! Answers: 200 once an authentic callback's outcome is durably recorded and its event
//! confirmed (duplicates included: ECommPay resends until it gets 200), or when it has
//! nothing to record (a payment payfleet has no record of: nothing is created for it),
//! or once its refusal is durably noted (other money than the command's); 400 malformed or forged; 403 a wrong secret_hash; 404 a payment
//! payfleet never made (when nothing can prove the callback); 503 a redirect that came
//! before the worker recorded Gate's answer, or a provider not enabled here; 500 when it could not be checked or
//! recorded, so that the provider sends it again.

use super::Gateway;
use crate::contract::ProviderName;
use crate::contract::{IdempotencyKey, Money};
use crate::outcome::{Report, Settled};
use crate::providers::callback::{Authentic, CallbackVerdict, Refusal, Settlement, Sum};
use crate::providers::not_enabled;
use crate::state::{Meta, Record, State, TraceContext};
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
        let Some(client) = gw.providers.named(provider) else {
            let answer = (StatusCode::SERVICE_UNAVAILABLE, not_enabled(provider));
            return (answer, CallbackResult::NotEnabled);
        };
        let verdict = client.callback(body, &gw.store).await;
        if let CallbackVerdict::Authentic(_) = verdict {
            gw.metrics.callback_verified(name);
        }
        answer(gw, name, verdict, header_trace(headers).as_deref()).await
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
    let rec = match gw.store.record(&s.key).await {
        Ok(rec) => rec,
        Err(e) => {
            tracing::error!(error = %e, "record not read; the provider will resend the callback");
            return (AGAIN, CallbackResult::Error);
        }
    };
    match judge(rec.as_ref(), &s) {
        Judged::Apply => {}
        Judged::Unknown => return unknown(),
        Judged::OtherPayment => {
            let sent_as = rec.and_then(|r| r.payment_id).unwrap_or_default();
            tracing::error!(
                sent_as,
                "authentic callback about another payment than its command's; refused"
            );
            let note = format!(
                "refused a callback reporting {} for payment {}: the command was sent as \
                 payment {sent_as}; the status query settles it",
                s.state.as_str(),
                s.payment_id
            );
            let answer = (
                StatusCode::OK,
                "refused: another payment than the command's",
            );
            return refuse(gw, &s.key, &note, (answer, CallbackResult::UnknownPayment)).await;
        }
        Judged::TooEarly => {
            return (
                (StatusCode::SERVICE_UNAVAILABLE, "try again"),
                CallbackResult::TooEarly,
            );
        }
        Judged::Mismatch { named, command } => {
            tracing::error!(%named, %command, "callback names other money than the command; refused");
            let note = format!(
                "refused a callback reporting {} for {named}: the command is for {command}; \
                 the status query settles it",
                s.state.as_str()
            );
            let answer = (StatusCode::OK, "refused: other money than the payment's");
            return refuse(gw, &s.key, &note, (answer, CallbackResult::Mismatch)).await;
        }
    }
    // Settling announces what the record remembers of the command; this is the same.
    let meta = rec.map(|rec| rec.meta).unwrap_or_default();
    match apply(gw, &s, &meta, traceparent).await {
        Ok((Settled::Applied, context)) => {
            record_lag(gw, provider, &s, &context);
            (OK, CallbackResult::Applied)
        }
        Ok((Settled::Duplicate, _)) => (OK, CallbackResult::Duplicate),
        Ok((Settled::Conflicting, _)) => (OK, CallbackResult::Conflicting),
        Ok((Settled::Late, _)) => (OK, CallbackResult::Late),
        // Redis lost it since it was read.
        Ok((Settled::Missing, _)) => unknown(),
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
    meta: &Meta,
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
        meta,
        traceparent,
    };
    Ok(crate::outcome::settle(&announcer, report).await?)
}

/// What an authentic outcome comes to before it is applied, by its command's record.
#[derive(Debug, PartialEq)]
enum Judged {
    Apply,
    /// No command was ever sent with this key (or Redis lost its record, which the
    /// command's own attempts settle): creating a record would let a later command
    /// adopt an outcome it never had, unsent.
    Unknown,
    /// A redirect while the worker has not yet recorded Gate's answer: taken now, its
    /// `accepted` would follow (and seem to replace) this `action_required`. Records
    /// only move on from `submitting`, so a look before settling is enough.
    TooEarly,
    /// It is about another payment than the one the command was sent as (a refund is
    /// named by its own id, its payment by its purchase's): signed, but it proves
    /// nothing of this one.
    OtherPayment,
    /// It names other money than the command's: it proves less than it claims.
    Mismatch {
        named: Sum,
        command: Money,
    },
}

fn judge(rec: Option<&Record>, s: &Settlement) -> Judged {
    let Some(rec) = rec else {
        return Judged::Unknown;
    };
    if rec
        .payment_id
        .as_deref()
        .is_some_and(|id| id != s.payment_id)
    {
        return Judged::OtherPayment;
    }
    match (&s.sum, rec.meta.amount) {
        (Some(named), Some(command)) if named.contradicts(&command) => Judged::Mismatch {
            named: named.clone(),
            command,
        },
        _ if s.state == State::ActionRequired && rec.state == State::Submitting => Judged::TooEarly,
        _ => Judged::Apply,
    }
}

fn unknown() -> (Answer, CallbackResult) {
    tracing::warn!("authentic callback for a payment payfleet has no record of; nothing recorded");
    (OK, CallbackResult::UnknownPayment)
}

/// Refuses an outcome that proves less than it claims (other money, another payment):
/// `note` goes on the record for operators and the payment stays open, for the status
/// query to settle. Answered as `answered` once noted: the refusal is durable, and the
/// provider would only resend the same contradiction until its retries run out.
async fn refuse(
    gw: &Gateway,
    key: &IdempotencyKey,
    note: &str,
    answered: (Answer, CallbackResult),
) -> (Answer, CallbackResult) {
    match gw.store.note(key, note).await {
        Ok(_) => answered,
        Err(e) => {
            tracing::error!(error = %e, "refusal not noted; the provider will resend the callback");
            (AGAIN, CallbackResult::Error)
        }
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

/// The valid `traceparent` (and `tracestate`) a provider sent with a callback, if
/// any: the event continues it rather than the command's own trace.
fn header_trace(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    crate::telemetry::trace::received(text("traceparent"), text("tracestate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Amount, Currency, IdempotencyKey};
    use crate::state::Outcome;

    fn kzt(minor: u64) -> Money {
        Money {
            minor: Amount::parse(minor).unwrap(),
            currency: Currency::KZT,
        }
    }

    fn record(state: State, amount: Option<Money>) -> Record {
        Record {
            payment_id: Some("po-1".into()),
            meta: Meta {
                amount,
                ..Meta::default()
            },
            ..Record::claimed_once(state)
        }
    }

    fn reported(state: State, sum: Option<(u64, &str)>) -> Settlement {
        Settlement {
            key: IdempotencyKey::parse("po-1").unwrap(),
            state,
            outcome: Outcome::default(),
            payment_id: "po-1".into(),
            sum: sum.map(|(minor, currency)| Sum {
                minor,
                currency: currency.into(),
            }),
            reported_at: None,
        }
    }

    #[test]
    fn an_outcome_without_a_record_creates_nothing() {
        let s = reported(State::Succeeded, None);
        assert_eq!(judge(None, &s), Judged::Unknown);
    }

    /// A signed callback naming this refund (or command) but another payment: Gate's
    /// report of some other payment, carrying this command's id, settles nothing here.
    #[test]
    fn an_outcome_about_another_payment_settles_nothing() {
        let rec = record(State::Submitted, None);
        let mut s = reported(State::Declined, None);
        s.payment_id = "never-sent-1".into();
        assert_eq!(judge(Some(&rec), &s), Judged::OtherPayment);
        let unknown_payment = Record {
            payment_id: None,
            ..rec
        };
        assert_eq!(judge(Some(&unknown_payment), &s), Judged::Apply);
    }

    #[test]
    fn other_money_than_the_commands_is_refused_whatever_the_state() {
        let rec = record(State::Submitted, Some(kzt(20_000_000)));
        for state in [State::Succeeded, State::Declined, State::ActionRequired] {
            let s = reported(state, Some((100, "USD")));
            assert!(matches!(judge(Some(&rec), &s), Judged::Mismatch { .. }));
        }
        let s = reported(State::Succeeded, Some((20_000_000, "KZT")));
        assert_eq!(judge(Some(&rec), &s), Judged::Apply);
        // Nothing to compare: applied as before.
        let s = reported(State::Succeeded, None);
        assert_eq!(judge(Some(&rec), &s), Judged::Apply);
        let unknown_amount = record(State::Submitted, None);
        let s = reported(State::Succeeded, Some((1, "USD")));
        assert_eq!(judge(Some(&unknown_amount), &s), Judged::Apply);
    }

    #[test]
    fn a_redirect_before_gates_answer_is_recorded_is_too_early() {
        let rec = record(State::Submitting, None);
        let s = reported(State::ActionRequired, None);
        assert_eq!(judge(Some(&rec), &s), Judged::TooEarly);
        let s = reported(State::Succeeded, None);
        assert_eq!(judge(Some(&rec), &s), Judged::Apply);
    }
}
