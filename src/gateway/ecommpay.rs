//! ECommPay callbacks: verify the signature, apply the outcome once, publish, answer.
//!
//! ECommPay resends a callback until it gets HTTP 200, so every authentic callback is
//! answered 200 once durably recorded (duplicates included), a forged one 400, and a
//! failure on our side 500 so that it comes again.

use super::Gateway;
use crate::contract::{IdempotencyKey, Operation};
use crate::pipeline::announce::Announcement;
use crate::providers::ecommpay::{callback, signature};
use crate::state::{Meta, Settle, State};
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use std::sync::Arc;

const PROVIDER: &str = "ecommpay";

pub async fn callback(
    AxumState(gw): AxumState<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        gw.metrics.callback(PROVIDER, "malformed");
        return (StatusCode::BAD_REQUEST, "body is not JSON");
    };
    // Signed with the key of the project it is about: one of the fleet's accounts.
    let authentic = std::iter::once(&gw.ecommpay_secret)
        .chain(&gw.ecommpay_account_secrets)
        .any(|key| signature::verify_root(key.expose_secret().as_bytes(), &json));
    if !authentic {
        gw.metrics.callback(PROVIDER, "refused_signature");
        return (StatusCode::BAD_REQUEST, "signature mismatch");
    }
    let report = match callback::read(&json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "authentic callback that cannot be read");
            gw.metrics.callback(PROVIDER, "malformed");
            return (
                StatusCode::BAD_REQUEST,
                "callback is missing required fields",
            );
        }
    };
    let Ok(key) = IdempotencyKey::parse(report.payment_id.as_str()) else {
        // Authentic, but not a payment payfleet made: nothing to do, and no point in
        // having ECommPay resend it for eleven days.
        gw.metrics.callback(PROVIDER, "unknown_payment");
        return (StatusCode::OK, "ok");
    };
    let Some(state) = report.state else {
        gw.metrics.callback(PROVIDER, "in_progress");
        return (StatusCode::OK, "ok");
    };
    let span =
        tracing::info_span!("callback", provider = PROVIDER, key = %key, state = state.as_str());
    let _enter = span.enter();
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fallback = Meta {
        method: None,
        operation: match report.operation_type.as_str() {
            "payout" => Some(Operation::Payout),
            _ => None,
        },
        amount: None,
    };
    match apply(&gw, &key, state, &report, &fallback, traceparent.as_deref()).await {
        Ok(result) => {
            gw.metrics.callback(PROVIDER, result);
            (StatusCode::OK, "ok")
        }
        Err(e) => {
            tracing::error!(error = %e, "callback not recorded; ECommPay will resend it");
            gw.metrics.callback(PROVIDER, "error");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}

async fn apply(
    gw: &Gateway,
    key: &IdempotencyKey,
    state: State,
    report: &callback::Report,
    fallback: &Meta,
    traceparent: Option<&str>,
) -> anyhow::Result<&'static str> {
    // Connected first: a broker outage must not leave the outcome recorded with its
    // publish claimed by a request that cannot publish.
    let announcer = gw.announcer().await?;
    let settled = gw
        .store
        .settle(key, state, &report.outcome, fallback, &report.payment_id)
        .await?;
    match settled {
        Settle::Applied { meta, .. } => {
            gw.metrics.transition(state.as_str());
            let status = state
                .terminal_event()
                .expect("callbacks settle final states");
            announcer
                .announce(
                    Announcement {
                        key,
                        status,
                        meta: &meta,
                        outcome: &report.outcome,
                        payment_id: Some(&report.payment_id),
                        traceparent,
                    },
                    state,
                )
                .await?;
            Ok("applied")
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
            Ok(if recorded == state {
                "duplicate"
            } else {
                "conflicting"
            })
        }
    }
}
