//! epay's answer bodies and codes.
//!
//! From the documents: `0` with `status` (P2P "Success response"), `487` "Not
//! permitted to merchant" and the failure body `{code, message, invoiceId, id,
//! reference, accountId}` (P2P "Failure response"). `488` "invoice already exists" is
//! the code the brief gives for a resent invoice. The others are the simulator's: the
//! documents list none for tokens, locked cards or 3-D Secure failures.

use super::book::Txn;
use crate::money;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const SUCCESS: i64 = 0;
pub const NOT_PERMITTED: i64 = 487;
pub const DUPLICATE_INVOICE: i64 = 488;
pub const DUPLICATE_MESSAGE: &str = "Invoice already exists";
pub const CARD_LOCKED: i64 = 454;
pub const CARD_DATA_INVALID: i64 = 455;
pub const SECURE3D_FAILED: i64 = 456;
pub const TOKEN_INVALID: i64 = 1500;
pub const INVALID_REQUEST: i64 = 1502;

/// The long scope of the Google Pay and status documents.
pub const SCOPE_PAYMENT: &str =
    "webapi usermanagement email_send verification statement statistics payment";
/// "scope: transfer" (P2P document).
pub const SCOPE_TRANSFER: &str = "transfer";

/// Where the simulated issuer's 3-D Secure page would be.
pub const ACS_URL: &str = "https://acs.sandbox.invalid/3ds";

/// The P2P document's failure body.
pub fn failure(status: StatusCode, code: i64, message: &str, invoice_id: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "invoiceId": invoice_id,
        "id": "",
        "reference": "",
        "accountId": "",
    });
    (status, Json(body)).into_response()
}

/// A transaction's reference (12 digits, as the documents show it).
pub fn reference(t: &Txn) -> String {
    format!("{:012}", t.amount_minor % 1_000_000_000_000)
}

/// The fields every answer about a transaction shares.
pub fn base(t: &Txn) -> Value {
    json!({
        "id": t.id,
        "invoiceId": t.invoice_id,
        "amount": money::epay_json(t.amount_minor, &t.currency),
        "currency": t.currency,
        "description": t.description,
        "accountId": t.account_id,
        "reference": reference(t),
        "terminalID": "98120001",
    })
}

/// The 3-D Secure data a payment answer carries while the check is pending: "the
/// received parameters paReq, md, action are used" (P2P document).
pub fn secure3d(t: &Txn) -> Value {
    json!({
        "action": ACS_URL,
        "paReq": format!("sim-pareq-{}", t.invoice_id),
        "md": t.md,
    })
}
