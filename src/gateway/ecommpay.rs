//! ECommPay callbacks: verify the signature, apply the outcome once, publish, answer.
//!
//! ECommPay resends a callback until it gets HTTP 200, so every authentic callback is
//! answered 200 once durably recorded (duplicates included), a forged one 400, and a
//! failure on our side 500 so that it comes again.

use super::Gateway;
use super::settle::{Settled, apply};
use crate::contract::{IdempotencyKey, Operation};
use crate::providers::ecommpay::{callback, signature};
use crate::state::{Meta, State};
use crate::telemetry::label::{CallbackResult, LagSince};
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use std::sync::Arc;
use tracing::Instrument;

const PROVIDER: &str = "ecommpay";

pub async fn callback(
    AxumState(gw): AxumState<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    gw.metrics.callback_received(PROVIDER);
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        gw.metrics.callback(PROVIDER, CallbackResult::Malformed);
        return (StatusCode::BAD_REQUEST, "body is not JSON");
    };
    // Signed with the key of the project it is about: one of the fleet's accounts. The
    // body is flattened once, whatever the number of keys.
    let authentic = signature::Signed::root(&json).is_some_and(|signed| {
        std::iter::once(&gw.ecommpay_secret)
            .chain(&gw.ecommpay_account_secrets)
            .any(|key| signed.verified_by(key.expose_secret().as_bytes()))
    });
    if !authentic {
        gw.metrics
            .callback(PROVIDER, CallbackResult::RefusedSignature);
        return (StatusCode::BAD_REQUEST, "signature mismatch");
    }
    gw.metrics.callback_verified(PROVIDER);
    let report = match callback::read(&json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "authentic callback that cannot be read");
            gw.metrics.callback(PROVIDER, CallbackResult::Malformed);
            return (
                StatusCode::BAD_REQUEST,
                "callback is missing required fields",
            );
        }
    };
    let Ok(key) = IdempotencyKey::parse(report.payment_id.as_str()) else {
        // Authentic, but not a payment payfleet made: nothing to do, and no point in
        // having ECommPay resend it for eleven days.
        gw.metrics
            .callback(PROVIDER, CallbackResult::UnknownPayment);
        return (StatusCode::OK, "ok");
    };
    let Some(state) = report.state else {
        gw.metrics.callback(PROVIDER, CallbackResult::InProgress);
        return (StatusCode::OK, "ok");
    };
    let span = tracing::info_span!(
        "callback",
        provider = PROVIDER,
        key = %key,
        state = state.as_str(),
        trace_id = tracing::field::Empty,
    );
    let fallback = Meta {
        method: None,
        operation: match report.operation_type.as_str() {
            "payout" => Some(Operation::Payout),
            "sale" => Some(Operation::Sale),
            "refund" => Some(Operation::Refund),
            _ => None,
        },
        amount: None,
    };
    if state == State::ActionRequired && submitting(&gw, &key).await {
        // The worker has not yet recorded Gate's answer: taken now, its `accepted`
        // would follow (and seem to replace) this `action_required`. Gate resends.
        gw.metrics.callback(PROVIDER, CallbackResult::TooEarly);
        return (StatusCode::SERVICE_UNAVAILABLE, "try again");
    }
    let settled = Settled {
        state,
        outcome: &report.outcome,
        payment_id: &report.gate_payment_id,
        fallback: &fallback,
    };
    // Instrumented, not entered: a span entered across an await stays entered on the
    // thread while the task sleeps, so other callbacks nest under it without end (under
    // `payfleet bench` load the gateway died of a stack overflow).
    let applied = apply(&gw, &key, settled, super::header_traceparent(&headers))
        .instrument(span.clone())
        .await;
    // No await below: the guard keeps the span on this thread.
    let _enter = span.enter();
    match applied {
        Ok(super::settle::Applied { result, context }) => {
            if result == CallbackResult::Applied {
                super::record_submitted_lag(&gw, PROVIDER, &context);
                if let Some(at) = provider_time(&json) {
                    let lag = (chrono::Utc::now() - at).as_seconds_f64();
                    gw.metrics
                        .callback_lag(PROVIDER, LagSince::ProviderTime, lag);
                }
            }
            gw.metrics.callback(PROVIDER, result);
            (StatusCode::OK, "ok")
        }
        Err(e) => {
            tracing::error!(error = %e, "callback not recorded; ECommPay will resend it");
            gw.metrics.callback(PROVIDER, CallbackResult::Error);
            (StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}

/// Whether a worker is still between sending the payment and recording Gate's answer.
/// Records only move on from `submitting`, so a look before settling is enough.
async fn submitting(gw: &Gateway, key: &IdempotencyKey) -> bool {
    match gw.store.record(key).await {
        Ok(rec) => rec.get("st").map(String::as_str) == Some(State::Submitting.as_str()),
        // Settling will meet the same trouble and answer for it.
        Err(_) => false,
    }
}

/// When the provider says the operation reached its status (`operation.date`, else
/// `payment.date`, e.g. `2018-09-28T12:04:40+0000`), for the callback's delivery lag.
fn provider_time(json: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    ["/operation/date", "/payment/date"]
        .iter()
        .find_map(|p| json.pointer(p)?.as_str())
        .and_then(|s| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z").ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}
