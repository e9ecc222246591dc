//! `POST /v2/payment/status`: what Gate knows of a payment, signed at the root.

use super::{Answer, accept, signed_report};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use payfleet::providers::ecommpay::{codes, status};
use std::sync::Arc;

pub const PATH: &str = status::PATH;

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Answer {
    let req = match accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let payment = super::lookup(&sandbox, &req.payment_id);
    match payment {
        Some(p) => (
            StatusCode::OK,
            axum::Json(
                super::india_sale::status_answer(&sandbox, &req.payment_id, &p)
                    .unwrap_or_else(|| signed_report(&sandbox, &req.payment_id, &p, true)),
            ),
        ),
        None => req.error(
            sandbox.settings.ecommpay_project_id,
            codes::PAYMENT_NOT_FOUND,
            "Payment not found",
        ),
    }
}
