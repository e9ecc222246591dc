//! Halyk epay, simulated from the Google Pay/status and P2P documents: the token
//! endpoint, Google Pay payments, P2P transfers, 3-D Secure confirmation,
//! check-status, and postLinks echoing the transaction's secret_hash.
//!
//! Test rules: the P2P document's test cards: 4405639704015096 (01/25, 815) and
//! 377514500004820 (01/25, 4169) pay at once; 5522042705066736 (01/25, 525) asks for
//! 3-D Secure; the locked 4003032704547597 and 5578342710750560 decline (454); a test
//! card with the wrong expiry or CVC declines (455); other cards pay. Google Pay:
//! `info.cardDetails` "6736" asks for 3-D Secure, "7597" declines (454). 3-D Secure:
//! `PaRes` "FAIL" fails (456), any other completes it.

pub mod answer;
pub mod book;
pub mod check_status;
pub mod confirm;
pub mod google_pay;
pub mod p2p_transfer;
pub mod postlink;
pub mod token;

use crate::Sandbox;
use crate::faults::roll;
use answer::{INVALID_REQUEST, TOKEN_INVALID, failure};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use book::{Grant, Kind, Txn};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(token::PATH, post(token::handle))
        .route(google_pay::PATH, post(google_pay::handle))
        .route(p2p_transfer::PATH, post(p2p_transfer::handle))
        .route(confirm::PATH, post(confirm::handle))
        .route(check_status::PAYMENT_ROUTE, get(check_status::payment))
        .route(check_status::P2P_ROUTE, get(check_status::p2p))
}

/// Counts a request to `path` and reads its JSON body; `what` says what was expected.
pub fn accept<T: serde::de::DeserializeOwned>(
    sandbox: &Sandbox,
    path: &str,
    raw: &[u8],
    what: &str,
) -> Result<T, Response> {
    sandbox.with_stats(|s| s.request(&format!("POST {path}")));
    serde_json::from_slice(raw).map_err(|_| invalid(sandbox, what, ""))
}

/// Refuses a request with missing or malformed fields, and counts it.
pub fn invalid(sandbox: &Sandbox, message: &str, invoice_id: &str) -> Response {
    sandbox.with_stats(|s| s.invalid_requests_refused += 1);
    failure(
        StatusCode::BAD_REQUEST,
        INVALID_REQUEST,
        message,
        invoice_id,
    )
}

/// The request's bearer token, checked: known, unexpired, of `scope` (if given), bound
/// to `invoice_id` (if given), and not spent.
pub fn authorise(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    scope: Option<&str>,
    invoice_id: Option<&str>,
) -> Result<Grant, Response> {
    let refuse = |message: &str| {
        sandbox.with_stats(|s| s.epay_tokens_refused += 1);
        Err(failure(
            StatusCode::UNAUTHORIZED,
            TOKEN_INVALID,
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
    let mut book = sandbox.epay.lock().expect("epay lock");
    let Some(grant) = book.tokens.get_mut(token) else {
        drop(book);
        return refuse("unknown token");
    };
    let problem = if grant.expires <= Instant::now() {
        Some("token expired")
    } else if scope.is_some_and(|s| s != grant.scope) {
        Some("token scope does not allow this operation")
    } else if invoice_id.is_some_and(|i| grant.invoice_id.as_deref() != Some(i)) {
        Some("token was issued for another invoice")
    } else if grant.single_use && grant.used {
        Some("token was used already")
    } else {
        None
    };
    if let Some(problem) = problem {
        drop(book);
        return refuse(problem);
    }
    if scope.is_some() {
        grant.used = true;
    }
    Ok(grant.clone())
}

/// The amount of a request, exact, and the same as its token's.
pub fn bound_amount(
    sandbox: &Sandbox,
    grant: &Grant,
    raw_amount: &serde_json::value::RawValue,
    currency: &str,
    invoice_id: &str,
) -> Result<u64, Response> {
    match crate::money::epay_minor_json(raw_amount, currency) {
        Some(a) if Some(a) == grant.amount_minor && Some(currency) == grant.currency.as_deref() => {
            Ok(a)
        }
        _ => Err(invalid(
            sandbox,
            "amount and currency must match the token's",
            invoice_id,
        )),
    }
}

/// A new transaction, paid unless changed.
pub fn new_txn(
    grant: &Grant,
    kind: Kind,
    invoice_id: &str,
    amount_minor: u64,
    description: &str,
) -> Txn {
    Txn {
        id: uuid::Uuid::new_v4().to_string(),
        invoice_id: invoice_id.to_owned(),
        kind,
        amount_minor,
        currency: grant.currency.clone().unwrap_or_default(),
        description: description.to_owned(),
        account_id: String::new(),
        status: "AUTH",
        reason_code: 0,
        reason: "Successfully".to_owned(),
        card_mask: String::new(),
        secret_hash: grant.secret_hash.clone(),
        post_link: String::new(),
        failure_post_link: String::new(),
        md: None,
        created: chrono::Utc::now(),
        visible_from: Instant::now(),
    }
}

/// Declines a transaction: its status and the reason its answers give.
pub fn decline(t: &mut Txn, status: &'static str, code: i64, reason: &str) {
    t.status = status;
    t.reason_code = code;
    t.reason = reason.to_owned();
}

/// Starts a 3-D Secure check on a transaction.
pub fn ask_3ds(t: &mut Txn) {
    t.status = "NEW";
    t.md = Some(format!("{}-{}", t.invoice_id, &t.id[..8]));
}

/// Records a new transaction, or refuses its invoice id with 488 when it is taken
/// (also after a lost answer, while check-status may not show it yet), unless the
/// answers make it pay a taken one again.
pub fn record(sandbox: &Arc<Sandbox>, mut txn: Txn) -> Result<Txn, Response> {
    let answers = sandbox.answers();
    if roll(answers.epay_status_lag_rate) {
        sandbox.with_stats(|s| s.fault("epay_status_lag"));
        txn.visible_from = Instant::now() + Duration::from_millis(answers.epay_status_lag_ms);
    }
    {
        let mut book = sandbox.epay.lock().expect("epay lock");
        if book.txns.contains_key(&txn.invoice_id) {
            if roll(answers.epay_duplicate_invoice_paid_rate) {
                sandbox.with_stats(|s| s.fault("epay_duplicate_invoice_paid"));
            } else {
                drop(book);
                sandbox.with_stats(|s| s.duplicate_submissions_refused += 1);
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    answer::DUPLICATE_INVOICE,
                    answer::DUPLICATE_MESSAGE,
                    &txn.invoice_id,
                ));
            }
        }
        book.txns.insert(txn.invoice_id.clone(), txn.clone());
    }
    if txn.status == "AUTH" {
        sandbox.with_stats(|s| s.executed(&txn.invoice_id));
    }
    if txn.status != "NEW" {
        postlink::send(sandbox, &txn);
    }
    Ok(txn)
}

/// The P2P document's masked card: first four and last four digits.
pub fn mask(pan: &str) -> String {
    let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 12 {
        return "****".to_owned();
    }
    format!("{}********{}", &digits[..4], &digits[digits.len() - 4..])
}
