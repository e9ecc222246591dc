//! epay postLink / failurePostLink: epay signs nothing, so a postLink is authenticated
//! by the `secret_hash` payfleet gave the transaction's token request (compared in
//! constant time), and its outcome is never taken from the postLink itself: it is asked
//! of check-status, and only a final status is applied and published.
//!
//! Answers: 200 once applied (or already applied, or still in progress at epay, which
//! the reconciler then settles); 400 malformed; 404 an invoice payfleet never made;
//! 403 a wrong secret_hash; 500 when it could not be checked or recorded (epay resends).

use super::Gateway;
use super::settle::{Settled, apply};
use crate::contract::IdempotencyKey;
use crate::providers::Status;
use crate::providers::epay::{check_status, invoice};
use crate::state::Meta;
use crate::telemetry::label::CallbackResult;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

const PROVIDER: &str = "epay";

pub async fn callback(
    AxumState(gw): AxumState<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    gw.metrics.callback_received(PROVIDER);
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        gw.metrics.callback(PROVIDER, CallbackResult::Malformed);
        return (StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| json.get(*n).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    };
    let invoice_id = field(&["invoiceId", "invoiceID", "invoice_id"]);
    let secret_hash = field(&["secret_hash", "secretHash"]);
    if invoice_id.is_empty() || secret_hash.is_empty() {
        gw.metrics.callback(PROVIDER, CallbackResult::Malformed);
        return (
            StatusCode::BAD_REQUEST,
            "invoiceId and secret_hash are required",
        );
    }
    let found = match gw.epay.invoices.find(&invoice_id).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot look the invoice up; epay will resend");
            gw.metrics.callback(PROVIDER, CallbackResult::Error);
            return (StatusCode::INTERNAL_SERVER_ERROR, "try again");
        }
    };
    let Some((key, expected)) = found else {
        gw.metrics
            .callback(PROVIDER, CallbackResult::UnknownPayment);
        return (StatusCode::NOT_FOUND, "unknown invoice");
    };
    if !invoice::secret_matches(&expected, &secret_hash) {
        tracing::warn!(invoice_id, "postLink with a wrong secret_hash refused");
        gw.metrics.callback(PROVIDER, CallbackResult::RefusedSecret);
        return (StatusCode::FORBIDDEN, "secret_hash mismatch");
    }
    let Ok(key) = IdempotencyKey::parse(key) else {
        gw.metrics
            .callback(PROVIDER, CallbackResult::UnknownPayment);
        return (StatusCode::NOT_FOUND, "unknown invoice");
    };
    gw.metrics.callback_verified(PROVIDER);
    let span = tracing::info_span!(
        "callback",
        provider = PROVIDER,
        key = %key,
        invoice_id,
        trace_id = tracing::field::Empty,
    );
    // Instrumented, not entered: a span entered across an await nests every callback
    // the thread takes meanwhile under it.
    confirm(&gw, &headers, &key, &invoice_id)
        .instrument(span)
        .await
}

/// Asks check-status what an authentic postLink's payment came to, and applies it.
async fn confirm(
    gw: &Gateway,
    headers: &HeaderMap,
    key: &IdempotencyKey,
    invoice_id: &str,
) -> (StatusCode, &'static str) {
    // The postLink only says "look": check-status says what happened.
    let (state, outcome) = match check_status::query(&gw.epay, invoice_id).await {
        Ok(Status::Final { state, outcome }) => (state, outcome),
        Ok(_) => {
            gw.metrics.callback(PROVIDER, CallbackResult::InProgress);
            return (StatusCode::OK, "ok");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot confirm the postLink with check-status");
            gw.metrics.callback(PROVIDER, CallbackResult::Error);
            return (StatusCode::INTERNAL_SERVER_ERROR, "try again");
        }
    };
    let settled = Settled {
        state,
        outcome: &outcome,
        payment_id: invoice_id,
        fallback: &Meta::default(),
    };
    match apply(gw, key, settled, super::header_traceparent(headers)).await {
        Ok(super::settle::Applied { result, context }) => {
            if result == CallbackResult::Applied {
                super::record_submitted_lag(gw, PROVIDER, &context);
            }
            gw.metrics.callback(PROVIDER, result);
            (StatusCode::OK, "ok")
        }
        Err(e) => {
            tracing::error!(error = %e, "postLink not recorded; epay will resend it");
            gw.metrics.callback(PROVIDER, CallbackResult::Error);
            (StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}
