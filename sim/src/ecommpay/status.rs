//! `POST /v2/payment/status` (ARCHITECTURE.md: "signed `general.project_id`,
//! `general.payment_id`"): what Gate knows of a payment, signed at the root, with every
//! operation (`operations`) and, for a purchase waiting for its customer, the
//! `redirect_data`, so a lost redirect callback can be recovered.
//!
//! A payment Gate never registered: 3061 "Transaction not found", by default HTTP 400
//! and unsigned (the answer carries no payment data); configured answers give it as
//! HTTP 404, as HTTP 200, or signed.

use super::report::{self, View};
use super::{book, codes, gate, signature};
use crate::Sandbox;
use crate::faults::roll;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::sync::Arc;

pub const PATH: &str = "/v2/payment/status";

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, raw: Bytes) -> Response {
    let req = match gate::accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let answers = sandbox.answers();
    if let Some(p) = book::lookup(&sandbox, &req.payment_id) {
        let with_action = !roll(answers.ecommpay_status_without_action_rate);
        return Json(report::body(&sandbox, &p, View::Status { with_action })).into_response();
    }
    let status = if roll(answers.ecommpay_not_found_404_rate) {
        sandbox.with_stats(|s| s.fault("not_found_404"));
        StatusCode::NOT_FOUND
    } else if roll(answers.ecommpay_not_found_200_rate) {
        sandbox.with_stats(|s| s.fault("not_found_200"));
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut body = gate::error_body(
        req.project_id,
        &req.payment_id,
        &req.request_id,
        codes::NOT_FOUND,
        codes::NOT_FOUND_MESSAGE,
    );
    if roll(answers.ecommpay_not_found_signed_rate) {
        sandbox.with_stats(|s| s.fault("not_found_signed"));
        signature::sign_root(
            sandbox.ecommpay_secret.expose_secret().as_bytes(),
            &mut body,
        );
    }
    (status, Json(body)).into_response()
}
