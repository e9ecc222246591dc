//! Halyk epay, simulated: the token endpoint, Google Pay and P2P payments, 3-D Secure
//! confirmation, check-status, and postLinks carrying the transaction's secret_hash.
//!
//! Test rules (deterministic, documented in the README):
//! - the P2P document's test cards: 4405639704015096 (01/25, 815), 377514500004820
//!   (01/25, 4169) pay at once; 5522042705066736 (01/25, 525) asks for 3-D Secure;
//!   the locked 4003032704547597 and 5578342710750560 decline with code 454; a test
//!   card with the wrong expiry or CVC declines with code 455; other card numbers pay;
//! - Google Pay: `info.cardDetails` "6736" asks for 3-D Secure, "7597" declines (454);
//! - 3-D Secure: `PaRes` "FAIL" fails verification (456), any other completes it.

mod check_status;
mod confirm;
mod google_pay;
mod p2p_transfer;
mod token;

use super::Sandbox;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use payfleet::providers::epay::{amount, codes};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Where the simulated issuer's 3-D Secure page would be.
pub const ACS_URL: &str = "https://acs.sandbox.invalid/3ds";

/// A token the simulated OAuth server issued.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: String,
    /// The transaction it is bound to; `None` for a terminal-wide (status) token.
    pub invoice_id: Option<String>,
    pub amount_minor: Option<u64>,
    pub currency: Option<String>,
    pub secret_hash: String,
    pub expires: Instant,
}

/// A transaction the simulated epay knows.
#[derive(Debug, Clone)]
pub struct Txn {
    pub id: String,
    pub invoice_id: String,
    pub amount_minor: u64,
    pub currency: String,
    pub description: String,
    /// `NEW` (waiting for 3-D Secure), `AUTH`, `FAILED` or `3D`.
    pub status: &'static str,
    pub reason_code: i64,
    pub reason: &'static str,
    pub card_mask: String,
    pub secret_hash: String,
    pub post_link: String,
    pub failure_post_link: String,
    pub md: Option<String>,
}

#[derive(Default)]
pub struct Book {
    pub tokens: HashMap<String, Grant>,
    pub txns: HashMap<String, Txn>,
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(token::PATH, post(token::handle))
        .route(google_pay::PATH, post(google_pay::handle))
        .route(p2p_transfer::PATH, post(p2p_transfer::handle))
        .route(confirm::PATH, post(confirm::handle))
        .route(check_status::ROUTE, get(check_status::handle))
}

pub type Answer = (StatusCode, axum::Json<Value>);

/// The failure body of the P2P document.
pub fn failure(status: StatusCode, code: i64, message: &str, invoice_id: &str) -> Answer {
    (
        status,
        axum::Json(json!({
            "code": code,
            "message": message,
            "invoiceId": invoice_id,
            "id": "",
            "reference": "",
            "accountId": "",
        })),
    )
}

fn count(sandbox: &Sandbox, f: impl FnOnce(&mut super::Stats)) {
    f(&mut sandbox.stats.lock().expect("stats lock"));
}

/// The bearer token of a request, checked: known, unexpired, of `scope` (if given), and
/// bound to `invoice_id` (if given).
pub fn authorise(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    scope: Option<&str>,
    invoice_id: Option<&str>,
) -> Result<Grant, Answer> {
    let refuse = |message: &str| {
        count(sandbox, |s| s.epay_tokens_refused += 1);
        Err(failure(
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
            message,
            invoice_id.unwrap_or_default(),
        ))
    };
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refuse("Authorization: Bearer token required");
    };
    let Some(grant) = sandbox
        .epay
        .lock()
        .expect("epay lock")
        .tokens
        .get(token)
        .cloned()
    else {
        return refuse("unknown token");
    };
    if grant.expires <= Instant::now() {
        return refuse("token expired");
    }
    if scope.is_some_and(|s| s != grant.scope) {
        return refuse("token scope does not allow this operation");
    }
    if let Some(invoice) = invoice_id
        && grant.invoice_id.as_deref() != Some(invoice)
    {
        return refuse("token was issued for another invoice");
    }
    Ok(grant)
}

/// Reads a JSON amount exactly (from its text, never through a float).
pub fn exact_amount(raw: &serde_json::value::RawValue, currency: &str) -> Option<u64> {
    let currency = serde_json::from_value(Value::from(currency)).ok()?;
    amount::parse_minor(raw.get(), currency)
}

/// The payment as the check-status and postLink bodies describe it.
fn amount_json(t: &Txn) -> Value {
    let currency = serde_json::from_value(Value::from(t.currency.as_str()))
        .unwrap_or(payfleet::contract::Currency::KZT);
    let money = payfleet::contract::Money {
        minor: payfleet::contract::Amount::parse(t.amount_minor)
            .unwrap_or(payfleet::contract::Amount::parse(1).expect("1 > 0")),
        currency,
    };
    serde_json::from_str(
        &serde_json::to_string(&amount::EpayAmount::of(money)).expect("serialises"),
    )
    .expect("a decimal is JSON")
}

/// Sends the transaction's postLink (success) or failurePostLink, with its secret_hash.
pub fn post_link(sandbox: &Arc<Sandbox>, t: &Txn) {
    let ok = t.status == "AUTH";
    let body = json!({
        "id": t.id,
        "invoiceId": t.invoice_id,
        "amount": amount_json(t),
        "currency": t.currency,
        "description": t.description,
        "cardMask": t.card_mask,
        "code": if ok { "ok" } else { "error" },
        "reason": t.reason,
        "reasonCode": t.reason_code,
        "reference": if ok { format!("{:012}", t.amount_minor) } else { String::new() },
        "terminal": sandbox.settings.epay_terminal_id,
        "secret_hash": t.secret_hash,
        "dateTime": chrono::Utc::now().to_rfc3339(),
    });
    let url = if ok || t.failure_post_link.is_empty() {
        t.post_link.clone()
    } else {
        t.failure_post_link.clone()
    };
    if url.is_empty() {
        return;
    }
    super::callbacks::deliver(sandbox.clone(), url, body);
}

/// First six and last four digits, as epay shows cards.
pub fn mask(pan: &str) -> String {
    if pan.len() < 10 {
        return "******".into();
    }
    format!("{}******{}", &pan[..6], &pan[pan.len() - 4..])
}

/// Records a new transaction, or refuses its invoice id if it is taken.
pub fn record(sandbox: &Arc<Sandbox>, txn: Txn) -> Result<Txn, Answer> {
    let mut book = sandbox.epay.lock().expect("epay lock");
    if book.txns.contains_key(&txn.invoice_id) {
        drop(book);
        count(sandbox, |s| s.duplicate_submissions_refused += 1);
        return Err(failure(
            StatusCode::BAD_REQUEST,
            codes::DUPLICATE_INVOICE,
            "Invoice ID already exists",
            &txn.invoice_id,
        ));
    }
    book.txns.insert(txn.invoice_id.clone(), txn.clone());
    drop(book);
    if txn.status == "AUTH" {
        count(sandbox, |s| s.executed(&txn.invoice_id));
    }
    if txn.status != "NEW" {
        post_link(sandbox, &txn);
    }
    Ok(txn)
}

/// The answer to a payment request, by the transaction's state.
pub fn payment_answer(t: &Txn, extra: Value) -> Answer {
    let mut body = json!({
        "id": t.id,
        "invoiceId": t.invoice_id,
        "amount": amount_json(t),
        "currency": t.currency,
        "description": t.description,
        "reference": format!("{:012}", t.amount_minor),
        "terminalID": "98120001",
    });
    match t.status {
        "AUTH" => {
            body["code"] = json!(codes::SUCCESS);
            body["status"] = json!("AUTH");
        }
        "NEW" => {
            body["code"] = json!(codes::SUCCESS);
            body["status"] = json!("NEW");
            body["secure3D"] = json!({
                "action": ACS_URL,
                "paReq": format!("sandbox-pareq-{}", t.invoice_id),
                "md": t.md,
            });
        }
        _ => {
            return failure(
                StatusCode::BAD_REQUEST,
                t.reason_code,
                t.reason,
                &t.invoice_id,
            );
        }
    }
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (StatusCode::OK, axum::Json(body))
}

/// Fields the transaction inherits from its token, checked against the request.
pub fn bound_amount(
    sandbox: &Sandbox,
    grant: &Grant,
    raw_amount: &serde_json::value::RawValue,
    currency: &str,
    invoice_id: &str,
) -> Result<u64, Answer> {
    let amount = exact_amount(raw_amount, currency);
    if amount.is_none()
        || amount != grant.amount_minor
        || Some(currency) != grant.currency.as_deref()
    {
        count(sandbox, |s| s.invalid_requests_refused += 1);
        return Err(failure(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            "amount and currency must match the token's",
            invoice_id,
        ));
    }
    Ok(amount.expect("checked"))
}

pub fn new_txn(grant: &Grant, invoice_id: &str, amount_minor: u64, description: &str) -> Txn {
    Txn {
        id: uuid::Uuid::new_v4().to_string(),
        invoice_id: invoice_id.to_owned(),
        amount_minor,
        currency: grant.currency.clone().unwrap_or_default(),
        description: description.to_owned(),
        status: "AUTH",
        reason_code: 0,
        reason: "Successfully",
        card_mask: String::new(),
        secret_hash: grant.secret_hash.clone(),
        post_link: String::new(),
        failure_post_link: String::new(),
        md: None,
    }
}

/// Declines a transaction: its status and the reason the failure answer gives.
pub fn decline(t: &mut Txn, status: &'static str, code: i64, reason: &'static str) {
    t.status = status;
    t.reason_code = code;
    t.reason = reason;
}

/// Counts a request to `path` and reads its JSON body; `what` says what was expected.
pub fn accept<T: serde::de::DeserializeOwned>(
    sandbox: &Sandbox,
    path: &str,
    raw: &[u8],
    what: &str,
) -> Result<T, Answer> {
    count(sandbox, |s| s.request(&format!("POST {path}")));
    serde_json::from_slice(raw).map_err(|_| invalid(sandbox, what, ""))
}

/// Counts a request that failed the common checks.
pub fn invalid(sandbox: &Sandbox, message: &str, invoice_id: &str) -> Answer {
    count(sandbox, |s| s.invalid_requests_refused += 1);
    failure(
        StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST,
        message,
        invoice_id,
    )
}
